//! Unix-domain stream sockets whose blocking calls park only the strand.

use super::socket::{Listening, Socket};
use mio::Interest;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::SocketAddr;
use std::path::Path;

/// A Unix-domain socket server. Like [`TcpListener`](super::TcpListener),
/// `accept` parks the strand, and backs off after running out of descriptors.
pub struct UnixListener {
    l: Listening<std::os::unix::net::UnixListener>,
}

impl UnixListener {
    /// Binds to the socket file `path` (which must not exist). Must be called
    /// in a strand.
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        let path = path.as_ref();
        super::tcp::retry_interrupted(|| {
            UnixListener::from_std(std::os::unix::net::UnixListener::bind(path)?)
        })
    }

    /// Takes over a listener made with the standard library (made
    /// non-blocking here). Must be called in a strand.
    pub fn from_std(listener: std::os::unix::net::UnixListener) -> io::Result<UnixListener> {
        listener.set_nonblocking(true)?;
        Ok(UnixListener {
            l: Listening::new(listener)?,
        })
    }

    /// Waits for a connection.
    pub fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (io, peer) = self.l.accept(|l| l.accept(), |s| s.set_nonblocking(true))?;
        Ok((UnixStream { io }, peer))
    }

    /// An endless iterator over accepted connections.
    pub fn incoming(&self) -> impl Iterator<Item = io::Result<UnixStream>> + '_ {
        std::iter::repeat_with(|| self.accept().map(|(s, _)| s))
    }

    /// The address this listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.l.io.inner.local_addr()
    }
}

impl AsRawFd for UnixListener {
    fn as_raw_fd(&self) -> RawFd {
        self.l.io.fd()
    }
}

impl std::fmt::Debug for UnixListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnixListener")
            .field("fd", &self.l.io.fd())
            .finish()
    }
}

/// A Unix-domain stream connection; the same interface as
/// [`TcpStream`](super::TcpStream) where it applies.
pub struct UnixStream {
    io: Socket<std::os::unix::net::UnixStream>,
}

impl UnixStream {
    /// Connects to the socket file `path`. Must be called in a strand.
    ///
    /// A Unix-socket connect completes or fails at once; when the server's
    /// backlog is full it fails with `WouldBlock`, and this retries with a
    /// fresh socket after a short sleep (1 ms doubling to 100 ms) until it
    /// gets in, fails otherwise, or the strand is cancelled.
    pub fn connect(path: impl AsRef<Path>) -> io::Result<UnixStream> {
        let mut pause = std::time::Duration::from_millis(1);
        let stream: std::os::unix::net::UnixStream = loop {
            match mio::net::UnixStream::connect(path.as_ref()) {
                Ok(s) => break s.into(),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    crate::sleep(pause).map_err(io::Error::other)?;
                    pause = (pause * 2).min(std::time::Duration::from_millis(100));
                }
                Err(e) => return Err(e),
            }
        };
        let io = Socket::new(stream, Interest::READABLE | Interest::WRITABLE)?;
        io.write_until(None, |s| match s.take_error()? {
            Some(e) => Err(e),
            None => match s.peer_addr() {
                Ok(_) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                    Err(io::ErrorKind::WouldBlock.into())
                }
                Err(e) => Err(e),
            },
        })?;
        Ok(UnixStream { io })
    }

    /// Two connected streams. Must be called in a strand.
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = std::os::unix::net::UnixStream::pair()?;
        Ok((UnixStream::from_std(a)?, UnixStream::from_std(b)?))
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.inner.peer_addr()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.inner.local_addr()
    }
}

super::stream_common!(UnixStream, std::os::unix::net::UnixStream);

impl std::fmt::Debug for UnixStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnixStream")
            .field("fd", &self.io.fd())
            .finish()
    }
}
