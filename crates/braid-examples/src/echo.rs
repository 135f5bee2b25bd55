//! An echo server: every connection gets its own strand, which writes back
//! whatever it reads. Blocking-style code, no futures; a read that would block
//! parks only that connection's strand.
//!
//! ```text
//! cargo run --release -p braid-examples --example echo -- 127.0.0.1:7000
//! ```
//! (or `braid demo echo 127.0.0.1:7000`), then `nc 127.0.0.1 7000`.
//!
//! A client that sends nothing for [`IDLE`] is disconnected; when the process
//! runs out of file descriptors, `accept` reports it and backs off, and the
//! server goes on serving the connections it has.

use braid::net::{TcpListener, TcpStream};
use std::io::{self, Read, Write};
use std::time::Duration;

/// How long a connection may stay silent before the server closes it.
pub const IDLE: Duration = Duration::from_secs(60);

/// Accepts connections forever, one strand each.
pub fn serve(listener: TcpListener) -> io::Result<()> {
    loop {
        match listener.accept() {
            Ok((stream, _peer)) => {
                braid::spawn(move || {
                    if let Err(e) = echo(stream) {
                        // Resets and timeouts end that connection only.
                        if e.kind() != io::ErrorKind::ConnectionReset {
                            eprintln!("echo: connection closed: {e}");
                        }
                    }
                });
            }
            // Out of descriptors or memory: reported here; `accept` backs off
            // by itself before trying again.
            Err(e) => eprintln!("echo: accept failed: {e}"),
        }
    }
}

/// Echoes one connection until the client closes it (or stays silent too
/// long). Returns the bytes echoed.
pub fn echo(mut stream: TcpStream) -> io::Result<u64> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(IDLE))?;
    let mut buf = [0u8; 16 * 1024];
    let mut total = 0;
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(total);
        }
        stream.write_all(&buf[..n])?;
        total += n as u64;
    }
}

/// Binds `addr` and serves on a runtime of `cores` cores (default: one per
/// CPU).
pub fn run(addr: &str, cores: Option<usize>) -> Result<(), Box<dyn std::error::Error>> {
    crate::serve_on(addr, cores, "echo: listening on ", serve)
}
