//! Named events: wait on a name, signal a name.
//!
//! An event has no handle and is never created or destroyed: it exists while a
//! strand waits on it or a signal is stored for it, and is reclaimed right after
//! (see [`crate::Stats::live_events`]).
//!
//! - [`signal`] wakes one waiter, or stores one permit when nobody waits; a
//!   later [`wait`] takes a stored permit without blocking.
//! - [`broadcast`] wakes every strand waiting at that moment and stores nothing.
//! - [`wait`] blocks the strand (not the thread) until a signal reaches it;
//!   [`wait_timeout`] gives up after a while. Both return
//!   [`EventError::Cancelled`] as soon as the strand's group is cancelled.
//!
//! Names live in two namespaces that can never collide. A plain name (`wait`,
//! `signal`, [`local`]) is scoped to the caller's top-level group — the tree of
//! strands under one `Runtime::block_on` or `Runtime::spawn` — so unrelated
//! programs sharing a runtime cannot reach each other's events. [`global`] names
//! are shared by every strand of the runtime, and may be signalled from threads
//! outside it.
//!
//! [`on_signal`] registers a scheduler closure: a short callback run inside the
//! scheduler, with the signal's payload, ahead of waiting strands. Registering
//! one needs a [`ClosureCap`], which only the program owning the runtime can
//! mint.
//!
//! On one core, waiting and signalling touch only that core's wait graph. Across
//! cores a signal is placed by the negotiated wakeup protocol of
//! `braid_core::event`: the event's home core (chosen by hashing the name) stores
//! permits and grants each signal to the core whose waiter has waited longest.
//!
//! ```
//! # let rt = braid::Runtime::builder().cores(2).build()?;
//! rt.block_on(|| {
//!     let waiter = braid::spawn(|| braid::event::wait("ready"));
//!     braid::event::signal("ready").unwrap();
//!     waiter.join().unwrap().unwrap();
//! });
//! # Ok::<(), braid::ConfigError>(())
//! ```

pub(crate) mod key;
pub(crate) mod local;

pub(crate) use key::{EventKey, Namespace, Payload};
pub(crate) use local::forbid_blocking_in_closure;

use crate::context;
use crate::core::Msg;
use crate::runtime::RuntimeShared;
use crate::sync::waiter::{Outcome, Waiting};
use braid_core::event::EventMsg;
use local::{core_bit, in_closure, ClosureFn};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest event name, in bytes.
pub const MAX_NAME_LEN: usize = 256;
/// Largest payload a signal may carry, in bytes.
pub const MAX_PAYLOAD: usize = 64;
/// Most scheduler closures one strand may have registered at a time.
pub const MAX_CLOSURES_PER_STRAND: u32 = 16;

/// Why an event operation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventError {
    /// The name was empty; names are 1 to [`MAX_NAME_LEN`] bytes.
    EmptyName,
    /// The name was longer than [`MAX_NAME_LEN`] bytes.
    NameTooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The payload was longer than [`MAX_PAYLOAD`] bytes.
    PayloadTooLarge {
        /// Its length in bytes.
        len: usize,
    },
    /// Called outside a strand: local names belong to a strand's group, only
    /// strands block on events, and threads outside the runtime signal global
    /// events through [`Runtime::signal`](crate::Runtime::signal).
    NotInStrand,
    /// The waiting strand's group was cancelled.
    Cancelled,
    /// `wait_timeout` ran out of time.
    TimedOut,
    /// A wait inside a scheduler closure: closures run inside the scheduler
    /// and must not block.
    InClosure,
    /// The [`ClosureCap`] belongs to another runtime.
    WrongRuntime,
    /// The strand already has [`MAX_CLOSURES_PER_STRAND`] closures.
    TooManyClosures,
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventError::EmptyName => {
                write!(
                    f,
                    "event name is empty (names are 1 to {MAX_NAME_LEN} bytes)"
                )
            }
            EventError::NameTooLong { len } => write!(
                f,
                "event name is {len} bytes long (names are 1 to {MAX_NAME_LEN} bytes)"
            ),
            EventError::PayloadTooLarge { len } => write!(
                f,
                "signal payload is {len} bytes (at most {MAX_PAYLOAD} bytes)"
            ),
            EventError::NotInStrand => f.write_str(
                "not in a strand: local event names, waits and signals need a strand \
                 (threads outside the runtime use Runtime::signal on global events)",
            ),
            EventError::Cancelled => f.write_str("the waiting strand's group was cancelled"),
            EventError::TimedOut => f.write_str("timed out waiting for the event"),
            EventError::InClosure => {
                f.write_str("a scheduler closure cannot wait on an event (closures must not block)")
            }
            EventError::WrongRuntime => {
                f.write_str("the closure capability was minted by another runtime")
            }
            EventError::TooManyClosures => write!(
                f,
                "the strand already has {MAX_CLOSURES_PER_STRAND} scheduler closures (the limit)"
            ),
        }
    }
}

impl std::error::Error for EventError {}

/// A named event: a name and its namespace, nothing more. Cheap to clone; two
/// `Event`s with the same name and namespace are the same event.
#[derive(Clone, PartialEq, Eq)]
pub struct Event {
    key: EventKey,
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.key.namespace {
            Namespace::Global => write!(f, "Event(global {:?})", self.key.name),
            Namespace::Local(_) => write!(f, "Event(local {:?})", self.key.name),
        }
    }
}

fn check_name(name: &str) -> Result<(), EventError> {
    if name.is_empty() {
        return Err(EventError::EmptyName);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(EventError::NameTooLong { len: name.len() });
    }
    Ok(())
}

fn key(namespace: Namespace, name: &str) -> EventKey {
    // SipHash with fixed keys: the same name has the same home for the life of
    // the process (homes only need to agree within one runtime).
    let mut h = std::collections::hash_map::DefaultHasher::new();
    namespace.hash(&mut h);
    name.hash(&mut h);
    EventKey {
        namespace,
        name: Arc::from(name),
        hash: h.finish(),
    }
}

/// The event `name` in the runtime-wide namespace. Callable from any thread.
pub fn global(name: &str) -> Result<Event, EventError> {
    check_name(name)?;
    Ok(Event {
        key: key(Namespace::Global, name),
    })
}

/// The event `name` in the calling strand's top-level group.
pub fn local(name: &str) -> Result<Event, EventError> {
    check_name(name)?;
    let me = context::current_header().ok_or(EventError::NotInStrand)?;
    let root = me.root();
    // Read first: the flag is written once per group, not per call.
    if !root
        .named_local_events
        .load(crate::facade::Ordering::Relaxed)
    {
        root.named_local_events
            .store(true, crate::facade::Ordering::Relaxed);
    }
    Ok(Event {
        key: key(Namespace::Local(root.id), name),
    })
}

/// Waits on the local event `name`; see [`Event::wait`].
pub fn wait(name: &str) -> Result<(), EventError> {
    if in_closure() {
        return Err(EventError::InClosure);
    }
    local(name)?.wait()
}

/// Waits on the local event `name` for at most `timeout`; see
/// [`Event::wait_timeout`].
pub fn wait_timeout(name: &str, timeout: Duration) -> Result<(), EventError> {
    if in_closure() {
        return Err(EventError::InClosure);
    }
    local(name)?.wait_timeout(timeout)
}

/// Signals the local event `name`; see [`Event::signal`].
pub fn signal(name: &str) -> Result<(), EventError> {
    local(name)?.signal()
}

/// Broadcasts the local event `name`; see [`Event::broadcast`].
pub fn broadcast(name: &str) -> Result<(), EventError> {
    local(name)?.broadcast()
}

impl Event {
    /// The event's name.
    pub fn name(&self) -> &str {
        &self.key.name
    }

    /// Whether the name is in the global namespace.
    pub fn is_global(&self) -> bool {
        self.key.namespace == Namespace::Global
    }

    /// Blocks the calling strand until a signal reaches it, or takes a stored
    /// permit at once. Returns `Err(Cancelled)` if the strand's group is
    /// cancelled (before or while waiting).
    pub fn wait(&self) -> Result<(), EventError> {
        self.wait_until(None)
    }

    /// As [`wait`](Self::wait), giving up with `Err(TimedOut)` after `timeout`.
    /// A signal that races with the timeout is never lost: either this wait
    /// took it (and returns `Ok`) or it goes to another waiter or is stored.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<(), EventError> {
        self.wait_until(Some(Instant::now() + timeout))
    }

    /// Wakes one waiter (the one that has waited longest, approximately, when
    /// several cores have waiters), or stores a permit when nobody waits.
    /// Must be called from a strand; threads outside the runtime signal global
    /// events with [`Runtime::signal`](crate::Runtime::signal).
    pub fn signal(&self) -> Result<(), EventError> {
        self.signal_with(&[])
    }

    /// As [`signal`](Self::signal), carrying up to [`MAX_PAYLOAD`] bytes for
    /// scheduler closures registered on the event.
    pub fn signal_with(&self, payload: &[u8]) -> Result<(), EventError> {
        let payload = Payload::new(payload)?;
        if context::current_ptr().is_null() && !in_closure() {
            return Err(EventError::NotInStrand);
        }
        on_core(|local| local.event_signal(&self.key, payload));
        crate::api::yield_if_slice_expired();
        Ok(())
    }

    /// Wakes every strand waiting on the event now, on every core. Stores
    /// nothing: a strand that starts waiting afterwards waits for the next
    /// signal.
    /// Must be called from a strand; see [`signal`](Self::signal).
    pub fn broadcast(&self) -> Result<(), EventError> {
        if context::current_ptr().is_null() && !in_closure() {
            return Err(EventError::NotInStrand);
        }
        on_core(|local| local.event_broadcast(&self.key));
        crate::api::yield_if_slice_expired();
        Ok(())
    }

    fn wait_until(&self, deadline: Option<Instant>) -> Result<(), EventError> {
        if in_closure() {
            return Err(EventError::InClosure);
        }
        let me = context::current_header().ok_or(EventError::NotInStrand)?;
        if me.cancel_point() {
            return Err(EventError::Cancelled);
        }
        let waiting = Waiting::begin();
        let queued = on_core(|local| {
            local
                .event_wait(&self.key, waiting.waker())
                .map(|ticket| (ticket, local.core))
        });
        let Some((ticket, queue_core)) = queued else {
            return Ok(()); // took a stored permit
        };
        let error = match waiting.block(deadline) {
            Outcome::Signalled => return Ok(()),
            Outcome::TimedOut => EventError::TimedOut,
            Outcome::Cancelled => EventError::Cancelled,
        };
        // Take the wait out of the table of the core it is queued on (this
        // strand may have moved since it was woken).
        on_core(|local| {
            if local.core == queue_core {
                local.event_cancel(&self.key, ticket);
            } else {
                let key = self.key.clone();
                local.send(queue_core, Msg::EventCancel(key, ticket));
            }
        });
        if error == EventError::Cancelled {
            crate::strand::unwind_if_doomed();
        }
        Err(error)
    }
}

/// The capability to register scheduler closures. Minted only by
/// [`Runtime::closure_cap`](crate::Runtime::closure_cap), so the program that
/// owns the runtime decides which strands may run code inside the scheduler.
#[derive(Clone, Debug)]
pub struct ClosureCap {
    runtime_id: u64,
}

impl ClosureCap {
    pub(crate) fn new(runtime_id: u64) -> ClosureCap {
        ClosureCap { runtime_id }
    }
}

/// Registers `closure` to run inside the scheduler when `event` is signalled,
/// with the signal's payload (up to [`MAX_PAYLOAD`] bytes). It runs on the
/// calling strand's current core, takes the event's signals there ahead of
/// waiting strands (signals from other cores are granted to it as to any
/// waiter), and stays registered until the calling strand exits (on the
/// strand's last core at once; on other cores as soon as they read the notice
/// from the bus, so a signal racing with the exit may still reach it).
///
/// A closure must be short and must not block: a wait inside it returns
/// [`EventError::InClosure`], and other blocking calls panic with a clear
/// message; a closure that panics is dropped (counted in
/// [`Stats::closure_failures`](crate::Stats::closure_failures)) and the core
/// carries on. It may signal or broadcast events.
///
/// ```
/// # let rt = braid::Runtime::builder().cores(1).build()?;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
/// let cap = rt.closure_cap();
/// let seen = Arc::new(AtomicUsize::new(0));
/// let s = seen.clone();
/// rt.block_on(move || {
///     let ev = braid::event::local("tick").unwrap();
///     braid::event::on_signal(&cap, &ev, move |payload| {
///         s.fetch_add(payload.len(), Ordering::SeqCst);
///     })
///     .unwrap();
///     ev.signal_with(b"abc").unwrap();
///     braid::yield_now(); // the scheduler runs the closure at its next pass
/// });
/// assert_eq!(seen.load(Ordering::SeqCst), 3);
/// # Ok::<(), braid::ConfigError>(())
/// ```
pub fn on_signal(
    cap: &ClosureCap,
    event: &Event,
    closure: impl FnMut(&[u8]) + Send + 'static,
) -> Result<(), EventError> {
    if in_closure() {
        return Err(EventError::InClosure);
    }
    let me = context::current_header().ok_or(EventError::NotInStrand)?;
    if cap.runtime_id != me.runtime_id {
        return Err(EventError::WrongRuntime);
    }
    if me.closures.fetch_add(1, crate::facade::Ordering::Relaxed) >= MAX_CLOSURES_PER_STRAND {
        me.closures.fetch_sub(1, crate::facade::Ordering::Relaxed);
        return Err(EventError::TooManyClosures);
    }
    let mut closure: Option<ClosureFn> = Some(Box::new(closure));
    on_core(|local| {
        // Release: the core that runs this strand's exit sees the bit.
        me.closure_cores
            .fetch_or(core_bit(local.core), crate::facade::Ordering::Release);
        local.register_closure(&event.key, &me, closure.take().expect("registered once"));
    });
    Ok(())
}

/// Signals or broadcasts global `event` of `rt` from a thread outside it.
pub(crate) fn signal_from_outside(
    rt: &RuntimeShared,
    event: &Event,
    payload: &[u8],
    all: bool,
) -> Result<(), EventError> {
    if !event.is_global() {
        return Err(EventError::NotInStrand);
    }
    let payload = Payload::new(payload)?;
    let key = event.key.clone();
    if all {
        for core in 0..rt.cores.len() {
            let msg = EventMsg::WakeAll { event: key.clone() };
            rt.inject(core, Msg::Event(Box::new(msg)));
        }
    } else {
        let home = key.home(rt.cores.len());
        let msg = EventMsg::Signal {
            event: key,
            payload,
        };
        rt.inject(home, Msg::Event(Box::new(msg)));
    }
    Ok(())
}

/// Runs `f` on the calling strand's (or closure's) core (see
/// `context::with_core`). Callers have checked they are in one.
fn on_core<R>(f: impl FnMut(&mut crate::core::Local) -> R) -> R {
    context::with_core(f).expect("event operations run in a strand or a closure")
}
