//! Networking for strands: TCP, UDP and Unix-domain sockets whose blocking
//! calls park only the calling strand (see the poller in `io`).
//!
//! The types mirror `std::net` and `std::os::unix::net`; streams implement
//! [`std::io::Read`] and [`std::io::Write`] (also through `&`), so
//! `BufReader`, `BufWriter`, `io::copy` and crates written against the std
//! traits just work. Streams add [`read_line`](TcpStream::read_line) and
//! [`write_line`](TcpStream::write_line), and every socket has read and write
//! timeouts; streams also connect with a timeout.
//!
//! Sockets are created inside a strand (its core's poller watches them);
//! afterwards any strand, on any core, or a plain thread may use them. A
//! strand that waits on a socket registered with another core moves the
//! registration to its own core, so connections spread over cores with the
//! strands that serve them: a listener's accepted connections go wherever
//! the normal balancing puts their strands.
//!
//! A socket can outlive its runtime. Once the runtime is dropped nothing
//! polls it: data already there is still read, but an operation that would
//! wait fails with an error saying the runtime shut down — also for a
//! thread, or a strand of another runtime, that was already waiting when the
//! runtime went away.
//!
//! ```
//! use std::io::{BufRead, BufReader};
//! let rt = braid::Runtime::builder().cores(2).build()?;
//! let reply = rt.block_on(|| -> std::io::Result<String> {
//!     let listener = braid::net::TcpListener::bind("127.0.0.1:0")?;
//!     let addr = listener.local_addr()?;
//!     braid::spawn(move || -> std::io::Result<()> {
//!         let (stream, _) = listener.accept()?;
//!         let mut line = String::new();
//!         BufReader::new(&stream).read_line(&mut line)?;
//!         stream.write_line(&line.trim().to_uppercase())
//!     });
//!     let stream = braid::net::TcpStream::connect(addr)?;
//!     stream.write_line("hello")?;
//!     let mut reply = String::new();
//!     stream.read_line(&mut reply)?;
//!     Ok(reply)
//! })?;
//! assert_eq!(reply, "HELLO\n");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod socket;
mod tcp;
mod udp;
mod unix;

pub use tcp::{TcpListener, TcpStream};
pub use udp::UdpSocket;
pub use unix::{UnixListener, UnixStream};

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

/// Resolves `host` (e.g. `"example.com:443"`) on the blocking pool, parking
/// only the calling strand while the system resolver runs.
pub fn lookup_host(host: impl Into<String>) -> io::Result<Vec<SocketAddr>> {
    let host = host.into();
    crate::fs::pooled(move || host.to_socket_addrs().map(Iterator::collect))
}

/// What the stream types share: line helpers, shutdown, timeouts, the std
/// I/O traits. `$t` has an `io: Socket<S>` field where `&S: Read + Write`.
macro_rules! stream_common {
    ($t:ident, $std:ty) => {
        impl $t {
            /// Takes over a stream made with the standard library (made
            /// non-blocking here). Must be called in a strand.
            pub fn from_std(stream: $std) -> std::io::Result<$t> {
                stream.set_nonblocking(true)?;
                let interest = mio::Interest::READABLE | mio::Interest::WRITABLE;
                Ok($t {
                    io: super::socket::Socket::new(stream, interest)?,
                })
            }

            /// A second handle to the same connection (its own descriptor
            /// and registration; timeouts start unset).
            pub fn try_clone(&self) -> std::io::Result<$t> {
                let inner = self.io.inner.try_clone()?;
                let interest = mio::Interest::READABLE | mio::Interest::WRITABLE;
                Ok($t {
                    io: self.io.sibling(inner, interest)?,
                })
            }

            /// Reads one line into `buf`, the `\n` included, and nothing past
            /// it (the rest stays for the next read). Returns the bytes read:
            /// 0 at end of stream. Not UTF-8: an `InvalidData` error, and
            /// nothing is appended.
            pub fn read_line(&self, buf: &mut String) -> std::io::Result<usize> {
                self.io.read_line(buf)
            }

            /// Writes `line` followed by `\n`.
            pub fn write_line(&self, line: &str) -> std::io::Result<()> {
                $crate::net::socket::write_line(self, line)
            }

            /// Shuts down the read half, the write half, or both.
            pub fn shutdown(&self, how: std::net::Shutdown) -> std::io::Result<()> {
                self.io.inner.shutdown(how)
            }

            /// Reads give up with `TimedOut` after `timeout` without data
            /// (`None`: wait as long as it takes). A zero duration is refused.
            pub fn set_read_timeout(
                &self,
                timeout: Option<std::time::Duration>,
            ) -> std::io::Result<()> {
                self.io.set_read_timeout(timeout)
            }

            /// Writes give up with `TimedOut` after `timeout` without progress.
            pub fn set_write_timeout(
                &self,
                timeout: Option<std::time::Duration>,
            ) -> std::io::Result<()> {
                self.io.set_write_timeout(timeout)
            }

            /// The read timeout.
            pub fn read_timeout(&self) -> Option<std::time::Duration> {
                self.io.read_timeout()
            }

            /// The write timeout.
            pub fn write_timeout(&self) -> Option<std::time::Duration> {
                self.io.write_timeout()
            }

            /// The socket's pending error, if any (clears it).
            pub fn take_error(&self) -> std::io::Result<Option<std::io::Error>> {
                self.io.inner.take_error()
            }
        }

        impl std::io::Read for &$t {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let want = buf.len();
                self.io
                    .read_stream(want, |mut s| std::io::Read::read(&mut s, buf))
            }

            fn read_vectored(
                &mut self,
                bufs: &mut [std::io::IoSliceMut<'_>],
            ) -> std::io::Result<usize> {
                let want = bufs.iter().map(|b| b.len()).sum();
                self.io
                    .read_stream(want, |mut s| std::io::Read::read_vectored(&mut s, bufs))
            }
        }

        impl std::io::Write for &$t {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.io
                    .write_stream(buf.len(), |mut s| std::io::Write::write(&mut s, buf))
            }

            fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
                let want = bufs.iter().map(|b| b.len()).sum();
                self.io
                    .write_stream(want, |mut s| std::io::Write::write_vectored(&mut s, bufs))
            }

            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }

        impl std::io::Read for $t {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                std::io::Read::read(&mut &*self, buf)
            }

            fn read_vectored(
                &mut self,
                bufs: &mut [std::io::IoSliceMut<'_>],
            ) -> std::io::Result<usize> {
                std::io::Read::read_vectored(&mut &*self, bufs)
            }
        }

        impl std::io::Write for $t {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                std::io::Write::write(&mut &*self, buf)
            }

            fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
                std::io::Write::write_vectored(&mut &*self, bufs)
            }

            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }

        impl std::os::fd::AsRawFd for $t {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                self.io.fd()
            }
        }
    };
}
pub(crate) use stream_common;
