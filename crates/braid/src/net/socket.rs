//! What every braid socket shares: a non-blocking OS socket, its registration
//! with a core's poller, timeouts, and the line helpers.

use crate::facade::{AtomicU64, Ordering};
use crate::io::{Direction, Registration};
use mio::Interest;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

/// A non-blocking socket registered with the poller of the core that made it.
pub(crate) struct Socket<S: AsRawFd> {
    /// Declared before `inner`: deregistered before the fd closes.
    reg: Registration,
    pub(crate) inner: S,
    /// Nanoseconds; 0 = no timeout.
    read_timeout: AtomicU64,
    write_timeout: AtomicU64,
}

impl<S: AsRawFd> Socket<S> {
    /// Registers `inner`, which must already be in non-blocking mode.
    pub(crate) fn new(inner: S, interest: Interest) -> io::Result<Socket<S>> {
        Ok(Socket {
            reg: Registration::new(inner.as_raw_fd(), interest)?,
            inner,
            read_timeout: AtomicU64::new(0),
            write_timeout: AtomicU64::new(0),
        })
    }

    /// Registers `inner` (non-blocking, born of this socket) like
    /// [`Registration::sibling`].
    pub(crate) fn sibling<T: AsRawFd>(
        &self,
        inner: T,
        interest: Interest,
    ) -> io::Result<Socket<T>> {
        Ok(Socket {
            reg: self.reg.sibling(inner.as_raw_fd(), interest)?,
            inner,
            read_timeout: AtomicU64::new(0),
            write_timeout: AtomicU64::new(0),
        })
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }

    fn deadline(timeout: &AtomicU64) -> Option<Instant> {
        match timeout.load(Ordering::Relaxed) {
            0 => None,
            ns => Some(Instant::now() + Duration::from_nanos(ns)),
        }
    }

    /// Runs a read-side operation, parking the strand while it would block.
    pub(crate) fn read_with<R>(&self, mut op: impl FnMut(&S) -> io::Result<R>) -> io::Result<R> {
        let deadline = Self::deadline(&self.read_timeout);
        self.reg.io(Direction::Read, deadline, || op(&self.inner))
    }

    /// Runs a write-side operation, parking the strand while it would block.
    pub(crate) fn write_with<R>(&self, mut op: impl FnMut(&S) -> io::Result<R>) -> io::Result<R> {
        let deadline = Self::deadline(&self.write_timeout);
        self.reg.io(Direction::Write, deadline, || op(&self.inner))
    }

    /// A stream read of up to `want` bytes (see [`Registration::io_stream`]).
    pub(crate) fn read_stream(
        &self,
        want: usize,
        mut op: impl FnMut(&S) -> io::Result<usize>,
    ) -> io::Result<usize> {
        let deadline = Self::deadline(&self.read_timeout);
        self.reg
            .io_stream(Direction::Read, want, deadline, || op(&self.inner))
    }

    /// A stream write of up to `want` bytes (see [`Registration::io_stream`]).
    pub(crate) fn write_stream(
        &self,
        want: usize,
        mut op: impl FnMut(&S) -> io::Result<usize>,
    ) -> io::Result<usize> {
        let deadline = Self::deadline(&self.write_timeout);
        self.reg
            .io_stream(Direction::Write, want, deadline, || op(&self.inner))
    }

    /// A write-side operation with its own deadline (connecting).
    pub(crate) fn write_until<R>(
        &self,
        deadline: Option<Instant>,
        mut op: impl FnMut(&S) -> io::Result<R>,
    ) -> io::Result<R> {
        self.reg.io(Direction::Write, deadline, || op(&self.inner))
    }

    pub(crate) fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        store_timeout(&self.read_timeout, timeout)
    }

    pub(crate) fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        store_timeout(&self.write_timeout, timeout)
    }

    pub(crate) fn read_timeout(&self) -> Option<Duration> {
        load_timeout(&self.read_timeout)
    }

    pub(crate) fn write_timeout(&self) -> Option<Duration> {
        load_timeout(&self.write_timeout)
    }

    /// Reads one line into `buf` (the `\n` included), without reading past
    /// it: the bytes after the line stay in the socket for the next read.
    /// Returns the bytes read; 0 at end of stream. Invalid UTF-8 is an
    /// `InvalidData` error, and then nothing is appended. An error part-way
    /// (a timeout, a reset) appends what was read before it, as std's
    /// `read_line` does, so no byte taken from the socket is lost.
    ///
    /// Two strands must not read lines from one socket at once (each peeks
    /// at what the other may take).
    pub(crate) fn read_line(&self, buf: &mut String) -> io::Result<usize> {
        let mut line = Vec::new();
        let read = self.read_line_bytes(&mut line);
        match String::from_utf8(line) {
            Ok(text) => {
                buf.push_str(&text);
                read.map(|()| text.len())
            }
            Err(e) => Err(read.err().unwrap_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("braid::net: the line read is not UTF-8 ({e})"),
                )
            })),
        }
    }

    /// The bytes of one line, into `line`; on error, `line` holds what was
    /// taken from the socket before it.
    fn read_line_bytes(&self, line: &mut Vec<u8>) -> io::Result<()> {
        let mut chunk = [0u8; 1024];
        loop {
            // Look at what is waiting without taking it, then take exactly up
            // to the newline.
            let seen = self.read_with(|s| peek(s.as_raw_fd(), &mut chunk))?;
            if seen == 0 {
                return Ok(());
            }
            let take = match chunk[..seen].iter().position(|&b| b == b'\n') {
                Some(i) => i + 1,
                None => seen,
            };
            let mut got = 0;
            while got < take {
                match self.read_with(|s| recv(s.as_raw_fd(), &mut chunk[got..take])) {
                    Ok(0) => break,
                    Ok(n) => got += n,
                    Err(e) => {
                        line.extend_from_slice(&chunk[..got]);
                        return Err(e);
                    }
                }
            }
            line.extend_from_slice(&chunk[..got]);
            if line.last() == Some(&b'\n') || got < take {
                return Ok(());
            }
        }
    }
}

/// A listening socket and its accept back-off: what `TcpListener` and
/// `UnixListener` share.
pub(crate) struct Listening<L: AsRawFd> {
    pub(crate) io: Socket<L>,
    backoff: Backoff,
}

impl<L: AsRawFd> Listening<L> {
    /// Registers `listener`, which must already be in non-blocking mode.
    pub(crate) fn new(listener: L) -> io::Result<Listening<L>> {
        Ok(Listening {
            io: Socket::new(listener, Interest::READABLE)?,
            backoff: Backoff::default(),
        })
    }

    /// Waits (after the back-off, if any) for `accept` to return a
    /// connection, and registers it like a sibling of the listener.
    pub(crate) fn accept<T: AsRawFd, A>(
        &self,
        mut accept: impl FnMut(&L) -> io::Result<(T, A)>,
        nonblocking: impl FnOnce(&T) -> io::Result<()>,
    ) -> io::Result<(Socket<T>, A)> {
        self.backoff.wait()?;
        let result = self.io.read_with(&mut accept);
        self.backoff.record(&result);
        let (stream, peer) = result?;
        nonblocking(&stream)?;
        let io = self
            .io
            .sibling(stream, Interest::READABLE | Interest::WRITABLE)?;
        Ok((io, peer))
    }

    /// The wait the next accept will make.
    pub(crate) fn backoff(&self) -> Duration {
        self.backoff.current()
    }
}

/// Writes `line` and a `\n` with one `write_all`.
pub(crate) fn write_line(mut w: impl io::Write, line: &str) -> io::Result<()> {
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    w.write_all(&bytes)
}

fn store_timeout(slot: &AtomicU64, timeout: Option<Duration>) -> io::Result<()> {
    let ns = match timeout {
        None => 0,
        Some(d) if d.is_zero() => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "braid::net: a zero timeout is not allowed (use None for no timeout)",
            ))
        }
        Some(d) => d.as_nanos().clamp(1, u64::MAX as u128) as u64,
    };
    slot.store(ns, Ordering::Relaxed);
    Ok(())
}

fn load_timeout(slot: &AtomicU64) -> Option<Duration> {
    match slot.load(Ordering::Relaxed) {
        0 => None,
        ns => Some(Duration::from_nanos(ns)),
    }
}

/// `recv(MSG_PEEK)`: the bytes waiting, left in the socket.
fn peek(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    recv_flags(fd, buf, libc::MSG_PEEK)
}

fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    recv_flags(fd, buf, 0)
}

fn recv_flags(fd: RawFd, buf: &mut [u8], flags: libc::c_int) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes; `fd` is a
    // socket owned by the caller for the duration of the call.
    let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), flags) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Errors of `accept` that mean the process or system is out of a resource
/// (file descriptors, memory): the listener backs off before trying again.
pub(crate) fn is_resource_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Accept back-off after running out of a resource: 1 ms doubling to 100 ms,
/// reset by the next successful accept.
#[derive(Default)]
pub(crate) struct Backoff {
    /// Nanoseconds of the next wait; 0 = not backing off.
    next_ns: AtomicU64,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(1);
    const MAX: Duration = Duration::from_millis(100);

    /// Before an accept: sleeps the strand for the current back-off, if any.
    pub(crate) fn wait(&self) -> io::Result<()> {
        let ns = self.next_ns.load(Ordering::Relaxed);
        if ns > 0 {
            crate::sleep(Duration::from_nanos(ns)).map_err(io::Error::other)?;
        }
        Ok(())
    }

    /// After an accept: grows the back-off on resource exhaustion, clears it
    /// on success.
    pub(crate) fn record<T>(&self, result: &io::Result<T>) {
        match result {
            Ok(_) => self.next_ns.store(0, Ordering::Relaxed),
            Err(e) if is_resource_exhaustion(e) => {
                let now = self.next_ns.load(Ordering::Relaxed);
                let next = if now == 0 {
                    Self::FIRST.as_nanos() as u64
                } else {
                    (now * 2).min(Self::MAX.as_nanos() as u64)
                };
                self.next_ns.store(next, Ordering::Relaxed);
            }
            Err(_) => {}
        }
    }

    /// The wait the next accept will make.
    pub(crate) fn current(&self) -> Duration {
        Duration::from_nanos(self.next_ns.load(Ordering::Relaxed))
    }
}
