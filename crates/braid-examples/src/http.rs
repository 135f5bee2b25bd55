//! A small HTTP/1.1 "hello" server on strands, parsing with `httparse`:
//! keep-alive, pipelined requests, request bodies skipped by
//! `Content-Length`, `400 Bad Request` (and close) for malformed requests,
//! `431` for oversized heads, and an idle timeout.
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
    Request { len: usize, keep_alive: bool },
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
    let mut body = 0usize;
    let mut keep_alive = req.version == Some(1);
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            match std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse().ok())
            {
                Some(n) => body = n,
                None => return Parsed::Reject("400 Bad Request"),
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            // Chunked bodies are not needed for a hello server.
            return Parsed::Reject("400 Bad Request");
        } else if h.name.eq_ignore_ascii_case("connection") {
            let v = h.value.to_ascii_lowercase();
            if v == b"close" {
                keep_alive = false;
            } else if v == b"keep-alive" {
                keep_alive = true;
            }
        }
    }
    if buf.len() < head + body {
        return Parsed::Partial;
    }
    Parsed::Request {
        len: head + body,
        keep_alive,
    }
}

/// Serves one connection until the client closes it, asks to, sends
/// something malformed, or stays silent for [`IDLE`].
pub fn connection(mut stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(IDLE))?;
    let mut buf = vec![0u8; MAX_HEAD + 4096];
    let mut filled = 0;
    let mut out = Vec::with_capacity(1024);
    loop {
        // Answer every whole request in the buffer (pipelining), then write
        // the replies at once.
        let mut start = 0;
        let mut close = false;
        loop {
            match parse(&buf[start..filled]) {
                Parsed::Request { len, keep_alive } => {
                    write!(
                        out,
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{}\r\n",
                        HELLO.len(),
                        if keep_alive { "" } else { "Connection: close\r\n" }
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
                    close = true;
                    break;
                }
            }
        }
        if !out.is_empty() {
            stream.write_all(&out)?;
            out.clear();
        }
        if close {
            return stream.shutdown(std::net::Shutdown::Write);
        }
        buf.copy_within(start..filled, 0);
        filled -= start;
        if filled == buf.len() {
            // A body larger than the buffer: not for a hello server.
            stream.write_all(
                b"HTTP/1.1 413 Payload Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            )?;
            return Ok(());
        }
        match stream.read(&mut buf[filled..]) {
            Ok(0) => return Ok(()),
            Ok(n) => filled += n,
            Err(e) => return Err(e),
        }
    }
}

/// Binds `addr` and serves on a runtime of `cores` cores (default: one per
/// CPU).
pub fn run(addr: &str, cores: Option<usize>) -> Result<(), Box<dyn std::error::Error>> {
    crate::serve_on(addr, cores, "http: listening on http://", serve)
}
