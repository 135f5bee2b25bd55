//! TCP: listeners and streams whose blocking calls park only the strand.

use super::socket::{Listening, Socket};
use mio::Interest;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

/// A TCP socket server, listening for connections.
///
/// [`accept`](Self::accept) parks the calling strand until a connection
/// arrives. When the process runs out of file descriptors (or the system out
/// of memory for sockets), `accept` returns that error and the next call backs
/// off first (1 ms, doubling up to 100 ms) instead of spinning; it recovers by
/// itself once descriptors are free again.
///
/// ```no_run
/// # let rt = braid::Runtime::new()?;
/// rt.block_on(|| -> std::io::Result<()> {
///     let listener = braid::net::TcpListener::bind("127.0.0.1:7000")?;
///     loop {
///         let (mut stream, _) = listener.accept()?;
///         braid::spawn(move || std::io::copy(&mut stream.try_clone()?, &mut stream));
///     }
/// })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct TcpListener {
    l: Listening<std::net::TcpListener>,
}

impl TcpListener {
    /// Binds to `addr` (the first of its addresses that works). Must be
    /// called in a strand. A host name is resolved on the calling core; use
    /// [`lookup_host`](super::lookup_host) to resolve on the blocking pool.
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        each_addr(addr, |a| {
            TcpListener::from_std(std::net::TcpListener::bind(a)?)
        })
    }

    /// Takes over a listener made with the standard library (made
    /// non-blocking here). Must be called in a strand.
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        listener.set_nonblocking(true)?;
        Ok(TcpListener {
            l: Listening::new(listener)?,
        })
    }

    /// Waits for a connection; returns it and the peer's address. The stream
    /// is registered with the calling strand's core (and follows whichever
    /// strand uses it later).
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (io, peer) = self.l.accept(|l| l.accept(), |s| s.set_nonblocking(true))?;
        Ok((TcpStream { io }, peer))
    }

    /// The back-off the next [`accept`](Self::accept) will make (zero unless
    /// the last accept ran out of a resource).
    pub fn accept_backoff(&self) -> Duration {
        self.l.backoff()
    }

    /// An endless iterator over accepted connections.
    pub fn incoming(&self) -> impl Iterator<Item = io::Result<TcpStream>> + '_ {
        std::iter::repeat_with(|| self.accept().map(|(s, _)| s))
    }

    /// The address this listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.l.io.inner.local_addr()
    }

    /// Sets the IP time-to-live of accepted sockets.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.l.io.inner.set_ttl(ttl)
    }

    /// The socket's pending error, if any (clears it).
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.l.io.inner.take_error()
    }
}

impl AsRawFd for TcpListener {
    fn as_raw_fd(&self) -> RawFd {
        self.l.io.fd()
    }
}

impl std::fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpListener")
            .field("addr", &self.local_addr().ok())
            .field("fd", &self.l.io.fd())
            .finish()
    }
}

/// A TCP connection. Implements [`Read`] and [`Write`] (also through `&`), so
/// `BufReader`, `BufWriter`, `io::copy` and crates written against the std
/// traits work unchanged; a call that would block parks only the strand.
///
/// Several strands may share one stream (say one reading, one writing) through
/// `&TcpStream` or [`try_clone`](Self::try_clone).
pub struct TcpStream {
    io: Socket<std::net::TcpStream>,
}

impl TcpStream {
    /// Connects to `addr`, trying each of its addresses in turn. Must be
    /// called in a strand. A host name is resolved on the calling core; use
    /// [`lookup_host`](super::lookup_host) to resolve on the blocking pool.
    pub fn connect(addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        each_addr(addr, |a| TcpStream::connect_until(a, None))
    }

    /// Connects to `addr`, giving up with `TimedOut` after `timeout`.
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "braid::net: a zero connect timeout is not allowed",
            ));
        }
        TcpStream::connect_until(*addr, Instant::now().checked_add(timeout))
    }

    fn connect_until(addr: SocketAddr, deadline: Option<Instant>) -> io::Result<TcpStream> {
        // A non-blocking connect: it returns at once and completes when the
        // socket turns writable.
        let stream: std::net::TcpStream = mio::net::TcpStream::connect(addr)?.into();
        let io = Socket::new(stream, Interest::READABLE | Interest::WRITABLE)?;
        io.write_until(deadline, |s| match s.take_error()? {
            Some(e) => Err(e),
            None => match s.peer_addr() {
                Ok(_) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                    Err(io::ErrorKind::WouldBlock.into())
                }
                Err(e) => Err(e),
            },
        })?;
        Ok(TcpStream { io })
    }

    /// Receives data without removing it from the socket.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.read_with(|s| s.peek(buf))
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.inner.peer_addr()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.inner.local_addr()
    }

    /// Sets `TCP_NODELAY` (no Nagle delay for small writes).
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.io.inner.set_nodelay(nodelay)
    }

    /// Whether `TCP_NODELAY` is set.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.io.inner.nodelay()
    }

    /// Sets the IP time-to-live.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.io.inner.set_ttl(ttl)
    }

    /// The IP time-to-live.
    pub fn ttl(&self) -> io::Result<u32> {
        self.io.inner.ttl()
    }
}

super::stream_common!(TcpStream, std::net::TcpStream);

/// Tries `f` on each address of `addr`; the last error if none works.
/// Runs `f` again (a few times) when a system call in it was interrupted by
/// a signal: nothing was done then, and the caller asked for it to be done.
/// (Seen twice in full test runs: binding a listener in a strand failed with
/// `Interrupted`; the signal's source is not known.)
pub(crate) fn retry_interrupted<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    let mut tries = 0;
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted && tries < 8 => tries += 1,
            other => return other,
        }
    }
}

pub(crate) fn each_addr<T>(
    addr: impl ToSocketAddrs,
    mut f: impl FnMut(SocketAddr) -> io::Result<T>,
) -> io::Result<T> {
    let mut last = None;
    for a in addr.to_socket_addrs()? {
        match retry_interrupted(|| f(a)) {
            Ok(v) => return Ok(v),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "braid::net: the address resolved to nothing",
        )
    }))
}

impl std::fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpStream")
            .field("local", &self.local_addr().ok())
            .field("peer", &self.peer_addr().ok())
            .field("fd", &self.io.fd())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interrupted_call_is_tried_again_a_few_times() {
        let interrupted = || io::Error::from(io::ErrorKind::Interrupted);
        let mut calls = 0;
        let ok = retry_interrupted(|| {
            calls += 1;
            if calls < 3 {
                Err(interrupted())
            } else {
                Ok(calls)
            }
        });
        assert_eq!(ok.unwrap(), 3);
        let mut calls = 0;
        let err = retry_interrupted::<()>(|| {
            calls += 1;
            Err(interrupted())
        });
        assert_eq!(err.unwrap_err().kind(), io::ErrorKind::Interrupted);
        assert_eq!(calls, 9, "gives up after eight retries");
        let mut calls = 0;
        let other = retry_interrupted::<()>(|| {
            calls += 1;
            Err(io::Error::from(io::ErrorKind::AddrInUse))
        });
        assert!(other.is_err() && calls == 1, "other errors are not retried");
    }
}
