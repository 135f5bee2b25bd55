//! A source registered with a core's poller, and waiting for its readiness.

use super::readiness::{ERROR, READABLE, READ_CLOSED, WRITABLE, WRITE_CLOSED};
use super::IoState;
use crate::facade::Ordering;
use crate::runtime::RuntimeShared;
use crate::sync::monitor::GaveUp;
use crate::{context, Cancelled};
use mio::Interest;
use std::io;
use std::os::fd::RawFd;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Which readiness an operation needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    Read,
    Write,
}

impl Direction {
    /// The readiness bits that let an operation of this direction proceed
    /// (closed and error states too: the system call then reports them).
    pub(crate) fn mask(self) -> u64 {
        match self {
            Direction::Read => READABLE | READ_CLOSED | ERROR,
            Direction::Write => WRITABLE | WRITE_CLOSED | ERROR,
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Direction::Read => "read",
            Direction::Write => "write",
        }
    }
}

/// A file descriptor registered with the poller of one core of a runtime.
///
/// The owner must drop this before closing `fd` (declare it before the socket
/// in a struct), or a reused fd number could be deregistered by mistake.
pub(crate) struct Registration {
    rt: Arc<RuntimeShared>,
    state: Arc<IoState>,
    fd: RawFd,
    interest: Interest,
    /// The core whose poller holds the source.
    home: Mutex<usize>,
}

/// The calling strand's runtime and core.
fn here() -> Option<(Arc<RuntimeShared>, usize)> {
    context::current_header()?;
    context::with_core(|local| (local.rt_arc(), local.core))
}

/// The error for creating a socket where no runtime can poll it.
pub(crate) fn not_in_strand() -> io::Error {
    io::Error::other(
        "braid::net: sockets are created inside a braid strand (the runtime polls them); \
         create it in a strand, then any strand or thread may use it",
    )
}

impl Registration {
    /// Registers `fd` with the calling strand's core.
    pub(crate) fn new(fd: RawFd, interest: Interest) -> io::Result<Registration> {
        let (rt, core) = here().ok_or_else(not_in_strand)?;
        Registration::with(rt, core, fd, interest)
    }

    /// Registers `fd` (a socket born of this one: accepted, cloned) with the
    /// calling strand's core, or, called from a plain thread, with this
    /// one's core.
    pub(crate) fn sibling(&self, fd: RawFd, interest: Interest) -> io::Result<Registration> {
        let (rt, core) = here().unwrap_or_else(|| {
            let home = *self.home.lock().unwrap_or_else(|e| e.into_inner());
            (self.rt.clone(), home)
        });
        Registration::with(rt, core, fd, interest)
    }

    fn with(
        rt: Arc<RuntimeShared>,
        core: usize,
        fd: RawFd,
        interest: Interest,
    ) -> io::Result<Registration> {
        let state = Arc::new(IoState::new());
        rt.cores[core].io.register(fd, &state, interest)?;
        Ok(Registration {
            rt,
            state,
            fd,
            interest,
            home: Mutex::new(core),
        })
    }

    /// Runs `op` until it returns something other than `WouldBlock`, waiting
    /// for `dir` readiness in between (until `deadline`: then `TimedOut`; a
    /// cancelled strand gets an error wrapping [`Cancelled`]).
    pub(crate) fn io<R>(
        &self,
        dir: Direction,
        deadline: Option<Instant>,
        mut op: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        loop {
            let snapshot = self.state.snapshot();
            if snapshot & dir.mask() != 0 {
                match op() {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        self.state.clear(snapshot, dir.mask());
                    }
                    done => {
                        // A strand whose I/O keeps succeeding never parks:
                        // let it yield when its time slice is used up.
                        crate::api::yield_if_slice_expired();
                        return done;
                    }
                }
                continue;
            }
            self.wait(dir, deadline)?;
        }
    }

    /// A stream read or write of up to `want` bytes, as [`io`](Self::io),
    /// that also takes a short transfer as proof that the socket is drained
    /// (reads) or full (writes): a stream socket transfers less than asked
    /// only when that is all it has or has room for. Its readiness bit is
    /// cleared then (unless an event came in meanwhile), so the next call
    /// waits for the next edge instead of making a system call that would
    /// only say `WouldBlock`.
    pub(crate) fn io_stream(
        &self,
        dir: Direction,
        want: usize,
        deadline: Option<Instant>,
        mut op: impl FnMut() -> io::Result<usize>,
    ) -> io::Result<usize> {
        let bit = match dir {
            Direction::Read => READABLE,
            Direction::Write => WRITABLE,
        };
        let mut snapshot = 0;
        let result = self.io(dir, deadline, || {
            snapshot = self.state.snapshot();
            op()
        });
        if let Ok(n) = result {
            if n > 0 && n < want {
                self.state.clear(snapshot, bit);
            }
        }
        result
    }

    /// Blocks until the source is ready for `dir` (or was when last seen).
    pub(crate) fn wait(&self, dir: Direction, deadline: Option<Instant>) -> io::Result<()> {
        if crate::api::cancel_point() {
            return Err(io::Error::other(Cancelled));
        }
        // Inside the attempt below this load runs under the waiters' lock,
        // which `wake_foreign_waiters` takes after the shutdown flag is set:
        // the lock orders the two, so a waiter either sees the flag or is
        // queued before the wake-up claims it. SeqCst pairs with the store in
        // `Runtime::drop` for the check before the lock.
        let shut_down = || self.rt.shutdown.load(Ordering::SeqCst);
        if shut_down() {
            return Err(io::Error::other(
                "braid::net: the socket's runtime has shut down; nothing polls it any more",
            ));
        }
        let me = context::current_header();
        if me.is_some() {
            // The core the strand runs on, if it is one of this socket's
            // runtime (a strand of another runtime leaves it where it is).
            let rt_id = self.rt.id;
            if let Some(Some(core)) =
                context::with_core(|local| (local.runtime_id == rt_id).then_some(local.core))
            {
                self.follow(core, dir);
            }
        }
        if let Some(me) = &me {
            me.io_wait.store(true, Ordering::Relaxed);
        }
        let state = &self.state;
        let waited = state
            .waiters
            .wait_until(
                deadline,
                |w, _, waker| {
                    // Shut down while waiting (woken by `wake_foreign_waiters`):
                    // return, and the next `wait` reports it.
                    if state.snapshot() & dir.mask() != 0 || shut_down() {
                        return Some(());
                    }
                    w.list(dir).push(waker());
                    None
                },
                |w, _, waker| w.list(dir).remove(waker),
            )
            .map_err(|gave_up| match gave_up {
                GaveUp::TimedOut => io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("braid::net: timed out waiting to {}", dir.verb()),
                ),
                GaveUp::Cancelled => io::Error::other(Cancelled),
            });
        if let Some(me) = &me {
            me.io_wait.store(false, Ordering::Relaxed);
        }
        waited
    }

    /// Moves the registration to `core`'s poller if it is elsewhere, so that
    /// readiness is handled on the core the waiting strand runs on — unless
    /// someone waits for the other direction (a reader and a writer sharing
    /// the socket from two cores would otherwise move it back and forth).
    fn follow(&self, core: usize, dir: Direction) {
        let mut home = self.home.lock().unwrap_or_else(|e| e.into_inner());
        if *home == core {
            return;
        }
        let other = match dir {
            Direction::Read => Direction::Write,
            Direction::Write => Direction::Read,
        };
        if self.state.waiters.with(|w, _| !w.list(other).is_empty()) {
            return;
        }
        // Add to the new poller first, then remove from the old: an fd may
        // sit in two epoll sets for a moment (both report to the same state),
        // and ADD reports the current readiness, so no edge is lost.
        if self.rt.cores[core]
            .io
            .register(self.fd, &self.state, self.interest)
            .is_ok()
        {
            self.rt.cores[*home].io.deregister(self.fd, &self.state);
            *home = core;
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let home = *self.home.get_mut().unwrap_or_else(|e| e.into_inner());
        self.rt.cores[home].io.deregister(self.fd, &self.state);
    }
}
