//! A small HTTP/1.1 "hello" server on strands, parsing with `httparse`:
//! keep-alive (HTTP/1.1 by default, HTTP/1.0 when asked with
//! `Connection: keep-alive`, which the reply then confirms), pipelined
//! requests, request bodies skipped by `Content-Length`, `400 Bad Request`
//! for malformed requests (a `Content-Length` that is not a plain number,
//! overflows, or is given twice with different values; chunked bodies),
//! `431` for oversized heads, `413` for bodies larger than its buffer, and an
//! idle timeout. A rejected request is answered, then the connection is
//! closed gracefully: the server stops writing and reads what the client
//! still sends (for a bounded time) before it closes, so the reply is not
//! lost to a reset.
//!
//! ```text
//! cargo run --release -p braid-examples --example http -- 127.0.0.1:8080
//! ```
//! (or `braid demo http 127.0.0.1:8080`), then `curl http://127.0.0.1:8080/`.

use braid::net::{TcpListener, TcpStream};
use std::io::{self, Read, Write};
use std::time::Duration;

/// The body of every `200` reply.
pub const HELLO: &[u8] = b"Hello, world!";
/// Largest request head (request line and headers) accepted.
pub const MAX_HEAD: usize = 8 * 1024;
/// How long a kept-alive connection may stay silent.
pub const IDLE: Duration = Duration::from_secs(10);
const MAX_HEADERS: usize = 32;
/// Room for one request: its head and body.
const BUFFER: usize = MAX_HEAD + 4096;
/// How long, and how much, a rejected client's remaining input is read
/// before the connection closes.
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 1 << 20;

/// Accepts connections forever, one strand each.
pub fn serve(listener: TcpListener) -> io::Result<()> {
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                braid::spawn(move || {
                    let _ = connection(stream);
                });
            }
            Err(e) => eprintln!("http: accept failed: {e}"),
        }
    }
}

/// What to do with one request.
enum Parsed {
    /// A whole request of `len` bytes (head and body); keep the connection?
    /// `http10`: an HTTP/1.0 request, which keeps it only when asked to.
    Request {
        len: usize,
        keep_alive: bool,
        http10: bool,
    },
    /// More bytes are needed.
    Partial,
    /// Not HTTP, or not allowed: answer with this status and close.
    Reject(&'static str),
}

fn parse(buf: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => {
            return Parsed::Reject("431 Request Header Fields Too Large")
        }
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(httparse::Error::TooManyHeaders) => {
            return Parsed::Reject("431 Request Header Fields Too Large")
        }
        Err(_) => return Parsed::Reject("400 Bad Request"),
    };
    let http10 = req.version == Some(0);
    let mut body: Option<usize> = None;
    let mut keep_alive = !http10;
    let mut close_asked = false;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            // Digits only (`parse` would take a sign), within usize; a
            // second length must say the same (RFC 9112 §6.3): anything
            // else could frame the body differently from a proxy in front.
            let length = std::str::from_utf8(h.value)
                .ok()
                // Spaces and tabs only (RFC 9110 §5.6.3), not Unicode
                // white space a proxy in front would not strip.
                .map(|v| v.trim_matches([' ', '\t']))
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<usize>().ok());
            match (length, body) {
                (Some(n), None) => body = Some(n),
                (Some(n), Some(m)) if n == m => {}
                _ => return Parsed::Reject("400 Bad Request"),
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            // Chunked bodies are not needed for a hello server.
            return Parsed::Reject("400 Bad Request");
        } else if h.name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    close_asked = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    keep_alive = true;
                }
            }
        }
    }
    // `close` wins over anything else said (RFC 9112 §9.6).
    if close_asked {
        keep_alive = false;
    }
    let len = match head.checked_add(body.unwrap_or(0)) {
        Some(len) if len <= BUFFER => len,
        _ => return Parsed::Reject("413 Payload Too Large"),
    };
    if buf.len() < len {
        return Parsed::Partial;
    }
    Parsed::Request {
        len,
        keep_alive,
        http10,
    }
}

/// Serves one connection until the client closes it, asks to, sends
/// something malformed, or stays silent for [`IDLE`].
pub fn connection(mut stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(IDLE))?;
    let mut buf = vec![0u8; BUFFER];
    let mut filled = 0;
    let mut out = Vec::with_capacity(1024);
    loop {
        // Answer every whole request in the buffer (pipelining), then write
        // the replies at once.
        let mut start = 0;
        let mut close = false;
        loop {
            match parse(&buf[start..filled]) {
                Parsed::Request {
                    len,
                    keep_alive,
                    http10,
                } => {
                    let connection = match (keep_alive, http10) {
                        (true, false) => "",
                        // HTTP/1.0 closes unless the reply says otherwise.
                        (true, true) => "Connection: keep-alive\r\n",
                        (false, _) => "Connection: close\r\n",
                    };
                    write!(
                        out,
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{connection}\r\n",
                        HELLO.len(),
                    )?;
                    out.extend_from_slice(HELLO);
                    start += len;
                    if !keep_alive {
                        close = true;
                        break;
                    }
                }
                Parsed::Partial => break,
                Parsed::Reject(status) => {
                    write!(
                        out,
                        "HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
                    )?;
                    stream.write_all(&out)?;
                    return linger_close(&mut stream, &mut buf);
                }
            }
        }
        if !out.is_empty() {
            stream.write_all(&out)?;
            out.clear();
        }
        if close {
            // Requests pipelined behind the last one may be unread.
            return linger_close(&mut stream, &mut buf);
        }
        buf.copy_within(start..filled, 0);
        filled -= start;
        // (A request always fits: longer heads and bodies are rejected.)
        match stream.read(&mut buf[filled..]) {
            Ok(0) => return Ok(()),
            Ok(n) => filled += n,
            Err(e) => return Err(e),
        }
    }
}

/// Closes after a rejection without losing the reply: stops writing, then
/// reads and drops what the client still sends, for at most [`LINGER`] and
/// [`LINGER_BYTES`]. Closing with unread input would make the kernel send a
/// reset, and a client that is still writing (a body the server refused)
/// may then lose the reply it has not read yet.
fn linger_close(stream: &mut TcpStream, scratch: &mut [u8]) -> io::Result<()> {
    stream.shutdown(std::net::Shutdown::Write)?;
    let until = std::time::Instant::now() + LINGER;
    let mut drained = 0;
    while drained < LINGER_BYTES {
        let left = until.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            break;
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(scratch) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
    Ok(())
}

/// Binds `addr` and serves on a runtime of `cores` cores (default: one per
/// CPU).
pub fn run(addr: &str, cores: Option<usize>) -> Result<(), Box<dyn std::error::Error>> {
    crate::serve_on(addr, cores, "http: listening on http://", serve)
}
