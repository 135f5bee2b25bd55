//! Strand-native I/O: one poller per core, in the scheduling loop.
//!
//! Every core owns a mio `Poll` (epoll on Linux). A socket is registered, edge
//! triggered for both directions, with the poller of the core its strand runs
//! on. An operation that would block parks only the strand; readiness wakes
//! it. There is no I/O thread:
//! - a busy core with sockets registered polls without waiting as often as
//!   its scheduler says (`braid_core::CoreSched::busy_poll_due`), so I/O is
//!   not starved by ready strands;
//! - an idle core parks *in* its poller (with the timeout of its next timer),
//!   and the bus doorbell wakes it through the poller's `Waker` (an eventfd),
//!   so mail and I/O both end the wait.
//!
//! # Readiness
//!
//! Each registered source has an [`IoState`]: a word of readiness bits with a
//! generation count (`readiness`, model-checked), and a wait list per
//! direction. An event sets bits and bumps the generation, then wakes the
//! direction's waiters. An operation takes a snapshot, tries the system call,
//! and on `WouldBlock` clears the direction's bits only if the generation did
//! not move since the snapshot (a newer event means try again). A waiter
//! queues itself and checks the bits under the wait list's lock, so an event
//! either is seen by that check or finds the waiter queued.
//!
//! # Sources that move
//!
//! Strands migrate (balancing, stealing). A strand that must wait on a source
//! registered with another core's poller moves the registration to its own
//! core first (epoll `DEL` there, `ADD` here; `ADD` reports the current
//! readiness, so nothing is missed), so readiness is handled where the strand
//! runs instead of costing a cross-core wake every time.
//!
//! # Tokens
//!
//! A source's token is the address of its `IoState`, and the poller holds a
//! strong reference per registration. A deregistered source's reference goes
//! to that core's `released` list and is dropped at the core's next poll,
//! after every event that poll could have returned for it was handled.

mod readiness;
mod registration;

use readiness::{Readiness, ERROR, READABLE, READ_CLOSED, WRITABLE, WRITE_CLOSED};
pub(crate) use registration::{Direction, Registration};

use crate::facade::{AtomicBool, AtomicUsize, Ordering};
use crate::sync::monitor::Monitor;
use crate::sync::waiter::{WaitList, Waker};
use mio::{Events, Interest, Poll, Token};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// The token of the poller's waker (the doorbell).
const WAKE: Token = Token(usize::MAX);
/// The token of the poller's timer (see [`Poller`]).
const TIMER: Token = Token(usize::MAX - 1);

/// Events taken from the poller per call.
const EVENTS: usize = 256;

/// One registered source: readiness and who waits for it.
pub(crate) struct IoState {
    ready: Readiness,
    waiters: Monitor<Waiters>,
}

#[derive(Default)]
struct Waiters {
    read: WaitList,
    write: WaitList,
}

impl Waiters {
    fn list(&mut self, dir: Direction) -> &mut WaitList {
        match dir {
            Direction::Read => &mut self.read,
            Direction::Write => &mut self.write,
        }
    }
}

impl IoState {
    /// A new source, assumed ready both ways: the first operation tries the
    /// system call at once instead of waiting for the first event.
    fn new() -> IoState {
        IoState {
            ready: Readiness::new(),
            waiters: Monitor::new(Waiters::default()),
        }
    }

    /// The readiness word (bits and generation).
    pub(crate) fn snapshot(&self) -> u64 {
        self.ready.snapshot()
    }

    /// See [`Readiness::clear`].
    pub(crate) fn clear(&self, snapshot: u64, mask: u64) {
        self.ready.clear(snapshot, mask);
    }

    /// An event: sets `bits`, then wakes the waiters of each direction the
    /// bits concern.
    fn set(&self, bits: u64) {
        self.ready.set(bits);
        self.waiters.with(|w, wakes| {
            if bits & Direction::Read.mask() != 0 {
                w.read.claim_all(wakes);
            }
            if bits & Direction::Write.mask() != 0 {
                w.write.claim_all(wakes);
            }
        });
    }
}

/// The part of a core's poller other threads use.
pub(crate) struct IoShared {
    registry: mio::Registry,
    waker: mio::Waker,
    /// Poller references of deregistered sources, dropped at the next poll.
    released: Mutex<Vec<Arc<IoState>>>,
    /// Sources registered with this core.
    sources: AtomicUsize,
    /// The sources registered with this core, by address, for waking their
    /// waiters when the runtime shuts down (threads outside the runtime may
    /// be blocked on them with no timeout).
    live: Mutex<HashMap<usize, Weak<IoState>>>,
    /// Whether `released` has entries.
    release_pending: AtomicBool,
}

impl IoShared {
    /// Wakes the core out of its poller (the doorbell's wake).
    pub(crate) fn wake(&self) {
        // An eventfd write; it only fails if the counter is saturated, and then
        // the poller is already due to return.
        let _ = self.waker.wake();
    }

    /// Runtime `runtime` shut down: wakes the threads, and the strands of
    /// other runtimes, waiting on a source of this core; their waits see the
    /// shutdown and fail (see `Registration::wait`). Its own strands stay
    /// parked: they end with their cores.
    pub(crate) fn wake_foreign_waiters(&self, runtime: u64) {
        let live: Vec<Arc<IoState>> = self
            .live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter_map(Weak::upgrade)
            .collect();
        let foreign = |w: &Waker| w.strand().is_none_or(|h| h.runtime_id != runtime);
        for state in live {
            state.waiters.with(|w, wakes| {
                w.read.claim_where(foreign, wakes);
                w.write.claim_where(foreign, wakes);
            });
        }
    }

    /// Whether any source is registered with this core.
    pub(crate) fn has_sources(&self) -> bool {
        self.sources() > 0
    }

    /// Whether a busy core should poll: sources to watch, or released ones
    /// to free.
    pub(crate) fn wants_poll(&self) -> bool {
        self.has_sources() || self.release_pending.load(Ordering::Relaxed)
    }

    /// Sources registered with this core.
    pub(crate) fn sources(&self) -> usize {
        self.sources.load(Ordering::Relaxed)
    }

    fn register(
        &self,
        fd: std::os::fd::RawFd,
        state: &Arc<IoState>,
        interest: Interest,
    ) -> std::io::Result<()> {
        let token = Token(Arc::into_raw(state.clone()) as usize);
        let registered = loop {
            // Seen once under a full test run: `epoll_ctl` interrupted.
            // Nothing was registered then; try again.
            match self
                .registry
                .register(&mut mio::unix::SourceFd(&fd), token, interest)
            {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        match registered {
            Ok(()) => {
                self.sources.fetch_add(1, Ordering::Relaxed);
                self.live
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(Arc::as_ptr(state) as usize, Arc::downgrade(state));
                Ok(())
            }
            Err(e) => {
                // SAFETY: the pointer came from `Arc::into_raw` just above and
                // was never handed to the poller.
                drop(unsafe { Arc::from_raw(token.0 as *const IoState) });
                Err(e)
            }
        }
    }

    fn deregister(&self, fd: std::os::fd::RawFd, state: &Arc<IoState>) {
        // An fd that was already closed (or never made it into the epoll set)
        // has nothing to remove; either way no further event can name it.
        let _ = self.registry.deregister(&mut mio::unix::SourceFd(&fd));
        self.sources.fetch_sub(1, Ordering::Relaxed);
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(Arc::as_ptr(state) as usize));
        // SAFETY: `register` leaked one strong reference for the poller
        // (`into_raw` of a clone of this same Arc); this takes it back, to be
        // dropped at this core's next poll.
        let held = unsafe { Arc::from_raw(Arc::as_ptr(state)) };
        self.released
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(held);
        self.release_pending.store(true, Ordering::Relaxed);
    }
}

/// The part of a core's poller only its carrier uses.
///
/// `epoll_wait` takes its timeout in whole milliseconds (mio rounds up), so a
/// core parking until its next strand timer would oversleep by up to a
/// millisecond. A timerfd in the same epoll set, armed to the exact timeout,
/// ends the wait on time instead; the millisecond timeout stays as a backstop.
pub(crate) struct Poller {
    poll: Poll,
    timer: std::os::fd::OwnedFd,
    /// The deadline the timerfd is armed for, if any.
    armed: Option<std::time::Instant>,
    events: Events,
}

impl Poller {
    /// Arms the timerfd to expire `after` from now, unless it is already
    /// armed for (about) that deadline.
    fn arm(&mut self, after: Duration) {
        let deadline = std::time::Instant::now() + after;
        if let Some(armed) = self.armed {
            let gap = if armed > deadline {
                armed - deadline
            } else {
                deadline - armed
            };
            if gap < Duration::from_micros(20) {
                return;
            }
        }
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: after.as_secs().min(i64::MAX as u64) as libc::time_t,
                // At least 1 ns: an all-zero value would disarm the timer.
                tv_nsec: after.subsec_nanos().max(1) as libc::c_long,
            },
        };
        // SAFETY: a valid timerfd and a valid itimerspec; the old value is
        // not asked for.
        let rc = unsafe {
            libc::timerfd_settime(
                std::os::fd::AsRawFd::as_raw_fd(&self.timer),
                0,
                &spec,
                std::ptr::null_mut(),
            )
        };
        // On failure the millisecond timeout of the wait still applies.
        self.armed = (rc == 0).then_some(deadline);
    }

    /// The timer fired: consume its expiration count (it stays readable, and
    /// so would not report its next expiry, until read).
    fn disarm(&mut self) {
        let mut count = [0u8; 8];
        // SAFETY: reading 8 bytes into an 8-byte buffer from our timerfd.
        let _ = unsafe {
            libc::read(
                std::os::fd::AsRawFd::as_raw_fd(&self.timer),
                count.as_mut_ptr().cast(),
                count.len(),
            )
        };
        self.armed = None;
    }
}

/// Makes a core's poller and its shared half.
pub(crate) fn poller() -> std::io::Result<(Poller, IoShared)> {
    let poll = Poll::new()?;
    let registry = poll.registry().try_clone()?;
    let waker = mio::Waker::new(poll.registry(), WAKE)?;
    // SAFETY: plain system call; the result is checked.
    let fd = unsafe {
        libc::timerfd_create(
            libc::CLOCK_MONOTONIC,
            libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new descriptor that nothing else owns.
    let timer = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    poll.registry()
        .register(&mut mio::unix::SourceFd(&fd), TIMER, Interest::READABLE)?;
    Ok((
        Poller {
            poll,
            timer,
            armed: None,
            events: Events::with_capacity(EVENTS),
        },
        IoShared {
            registry,
            waker,
            released: Mutex::new(Vec::new()),
            sources: AtomicUsize::new(0),
            live: Mutex::new(HashMap::new()),
            release_pending: AtomicBool::new(false),
        },
    ))
}

impl Poller {
    /// Polls, waiting at most `timeout` (`None`: until an event or a doorbell
    /// wake), and marks the sources that became ready, which wakes their
    /// strands: from the scheduling loop that is a push to the carrier's wake
    /// buffer (see `context::Carrier::wakes`), so nothing here reaches back
    /// into the core's state. `io` is this core's shared half. Returns how
    /// many source events it handled; an interrupted or failed wait handles
    /// none and is retried by the scheduling loop.
    pub(crate) fn poll(&mut self, io: &IoShared, timeout: Option<Duration>) -> usize {
        // Every event a previous poll returned has been handled: the sources
        // deregistered before this point can be freed.
        if io.release_pending.swap(false, Ordering::Relaxed) {
            drop(std::mem::take(
                &mut *io.released.lock().unwrap_or_else(|e| e.into_inner()),
            ));
        }
        if let Some(t) = timeout.filter(|t| !t.is_zero()) {
            self.arm(t);
        }
        if self.poll.poll(&mut self.events, timeout).is_err() {
            return 0;
        }
        let mut handled = 0;
        let mut timer_fired = false;
        for event in self.events.iter() {
            if event.token() == WAKE {
                continue;
            }
            if event.token() == TIMER {
                timer_fired = true;
                continue;
            }
            let mut bits = 0;
            if event.is_readable() {
                bits |= READABLE;
            }
            if event.is_writable() {
                bits |= WRITABLE;
            }
            if event.is_read_closed() {
                bits |= READ_CLOSED;
            }
            if event.is_write_closed() {
                bits |= WRITE_CLOSED;
            }
            if event.is_error() {
                bits |= ERROR;
            }
            // SAFETY: the token is the address of an `IoState` whose poller
            // reference is held until after this poll's events are handled
            // (see "Tokens" above).
            let state = unsafe { &*(event.token().0 as *const IoState) };
            state.set(bits);
            handled += 1;
        }
        if timer_fired {
            self.disarm();
        }
        handled
    }
}
