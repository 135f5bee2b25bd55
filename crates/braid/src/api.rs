//! What a strand calls about itself: yield, sleep, identity, cancellation.

use crate::context::{self, Suspend};
use crate::error::Cancelled;
use crate::facade::Ordering;
use crate::group::Group;
use crate::stats::StrandStats;
use crate::strand::{self, Header, StrandState};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Lets the other ready strands of this core run, then continues. Outside a
/// strand it yields the OS thread.
// Inlined so the context switch sits in the caller's frame: a stack switch
// unbalances the CPU's return predictor, and each frame returned through after
// one costs a misprediction (measured: 30 ns vs 12 ns per switch in a bare
// corosensei loop with the switch one call deeper).
///
/// This is an unwind point of a runtime's shutdown: a strand its runtime
/// is shutting down unwinds from here (see
/// [`RuntimeBuilder::shutdown_timeout`](crate::RuntimeBuilder::shutdown_timeout)).
#[inline]
pub fn yield_now() {
    let me = context::current_ptr();
    if me.is_null() {
        std::thread::yield_now();
        return;
    }
    context::suspend(Suspend::Yield);
    // The header stays where it is when the strand moves to another
    // carrier: no second read of the thread's carrier.
    // SAFETY: `me` is the running strand's header, kept alive by its task.
    let me = unsafe { &*me };
    if me.doomed.load(crate::facade::Ordering::Relaxed) {
        strand::unwind_doomed(me);
    }
}

/// Whether `payload`, caught by `std::panic::catch_unwind` inside a strand,
/// is its runtime's shutdown unwinding it (see
/// [`RuntimeBuilder::shutdown_timeout`](crate::RuntimeBuilder::shutdown_timeout)).
/// Code that catches panics — a server isolating its requests — should
/// resume it (`std::panic::resume_unwind`): a strand that swallows it is not
/// unwound again, and its blocking calls then wait until the shutdown's
/// deadline, after which it is left unfinished.
pub fn is_shutdown_unwind(payload: &(dyn std::any::Any + Send)) -> bool {
    payload.is::<strand::ShutDownUnwind>()
}

/// [`yield_now`] for the runtime's own waits, which may hold registrations
/// an unwind would leave behind: never an unwind point.
pub(crate) fn yield_strand() {
    if context::current_ptr().is_null() {
        std::thread::yield_now();
        return;
    }
    context::suspend(Suspend::Yield);
}

/// [`is_cancelled`] at an unwind point of the caller (see
/// [`Header::cancel_point`]).
pub(crate) fn cancel_point() -> bool {
    let h = context::current_ptr();
    // SAFETY: a non-null current header belongs to the running strand.
    !h.is_null() && unsafe { (*h).cancel_point() }
}

/// Yields if this strand used up the time slice its core's policy gave it
/// (on the coarse clock); cheap otherwise. Called by runtime operations that
/// do not block.
pub(crate) fn yield_if_slice_expired() {
    let c = context::carrier();
    if c.is_null() {
        return;
    }
    // SAFETY: a non-null carrier is this thread's live carrier, and its clock
    // points into the runtime its thread holds alive. Only carrier-owned
    // fields are read: the core's `Local` may already belong to another
    // carrier (a hog hand-off).
    let expired = unsafe {
        !(*c).current.is_null()
            && (*(*c).clock).load(Ordering::Relaxed) >= (*c).slice_end.load(Ordering::Relaxed)
    };
    if expired {
        // SAFETY: `expired` implies a current strand, whose header its
        // running task keeps alive; only its own carrier writes its counters.
        unsafe {
            crate::strand::StrandCounters::bump32(&(*(*c).current).counters.preemptions, 1);
        }
        yield_strand();
    }
}

/// Blocks the strand (not the thread) for at least `duration`. Returns
/// `Err(Cancelled)` as soon as its group is cancelled. Outside a strand it
/// sleeps the thread.
pub fn sleep(duration: Duration) -> Result<(), Cancelled> {
    let deadline = Instant::now() + duration;
    let Some(me) = context::current_header() else {
        crate::event::forbid_blocking_in_closure("sleep");
        std::thread::sleep(duration);
        return Ok(());
    };
    if me.cancel_point() {
        return Err(Cancelled);
    }
    if duration.is_zero() {
        yield_now();
        return if me.is_cancelled() {
            Err(Cancelled)
        } else {
            Ok(())
        };
    }
    let armed = context::with_core(|local| local.arm_timer(deadline, me.clone()));
    debug_assert!(armed.is_some(), "a strand always has a core");
    loop {
        strand::park_current();
        // A timer left armed fires as a spurious wake: nothing to withdraw.
        if me.cancel_point() {
            return Err(Cancelled);
        }
        if Instant::now() >= deadline {
            return Ok(());
        }
    }
}

/// Blocks the calling strand until [`Strand::unpark`] is called for it, like
/// `std::thread::park`: an unpark that came first is consumed instead, and the
/// call may also return spuriously, so check your condition in a loop. Outside a
/// strand it parks the thread.
///
/// Like [`yield_now`], an unwind point of a runtime's shutdown.
pub fn park() {
    strand::park_current();
    strand::unwind_if_doomed();
}

/// Whether the calling strand's group (or an enclosing one) was cancelled.
/// Always false outside a strand.
pub fn is_cancelled() -> bool {
    let h = context::current_ptr();
    // SAFETY: a non-null current header belongs to the running strand.
    !h.is_null() && unsafe { (*h).is_cancelled() }
}

/// A handle on the calling strand, or `None` outside one.
pub fn current() -> Option<Strand> {
    context::current_header().map(Strand::from_header)
}

/// Identity, placement and accounting of a strand.
#[derive(Clone)]
pub struct Strand {
    header: Arc<Header>,
}

impl std::fmt::Debug for Strand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Strand")
            .field("id", &self.id())
            .field("name", &self.name())
            .field("core", &self.core())
            .field("state", &self.state())
            .finish()
    }
}

impl Strand {
    pub(crate) fn from_header(header: Arc<Header>) -> Strand {
        Strand { header }
    }

    /// The strand's id, unique within its runtime.
    pub fn id(&self) -> u64 {
        self.header.id
    }

    /// The strand's name, if it was given one.
    pub fn name(&self) -> Option<&str> {
        self.header.name.as_deref()
    }

    /// The core that owns the strand now (it may move while ready).
    pub fn core(&self) -> usize {
        self.header.home.load(Ordering::Relaxed)
    }

    /// Ready, running, blocked or exited.
    pub fn state(&self) -> StrandState {
        self.header.state()
    }

    /// The strand's stack size in bytes.
    pub fn stack_size(&self) -> usize {
        self.header.stack_size
    }

    /// What the strand asks of the scheduler: weight, latency class, slice
    /// (see [`Builder::weight`](crate::Builder::weight)).
    pub fn sched_params(&self) -> crate::sched::SchedParams {
        self.header.params()
    }

    /// The group made of this strand and its descendants.
    pub fn group(&self) -> Group {
        Group::of(self.header.clone())
    }

    /// The strand's accounting so far.
    pub fn stats(&self) -> StrandStats {
        StrandStats::read(&self.header)
    }

    /// Wakes the strand if it is blocked in [`park`], or makes its next `park`
    /// return at once. Callable from any thread.
    pub fn unpark(&self) {
        strand::unpark(&self.header);
    }
}
