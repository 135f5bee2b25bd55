//! The calling thread's view of the runtime: which core it drives and which strand
//! it is running.
//!
//! Each carrier thread keeps a [`Carrier`] on its own stack and publishes a pointer
//! to it in a thread-local. A strand reaches the runtime only through [`carrier`],
//! which re-reads the thread-local on every call: a strand may resume on another
//! carrier thread after any blocking call, so nothing derived from the thread-local
//! may be kept across a suspension. The getter is opaque to the optimiser
//! (`black_box`) so it cannot reuse a value computed before a suspension.

use crate::core::{CoreShared, Local};
use crate::facade::{AtomicU64, Ordering};
use crate::strand::{Header, StrandYielder};
use std::cell::Cell;
use std::ptr;
use std::sync::Arc;

/// Why a strand suspended, read by its carrier when `resume` returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Suspend {
    /// Still ready: requeue it behind the others.
    Yield,
    /// Blocked: file it until it is woken.
    Park,
}

/// Per-thread state of a carrier. Lives on the carrier thread's own stack.
pub(crate) struct Carrier {
    /// The core this carrier drives.
    pub(crate) core: *const CoreShared,
    /// The core's local state. Valid while this carrier owns the core.
    pub(crate) local: *mut Local,
    /// The strand being run, or null while in the scheduler.
    pub(crate) current: *const Header,
    /// The runtime's coarse clock (see `monitor`).
    pub(crate) clock: *const AtomicU64,
    /// When the current strand's time slice ends on that clock: its policy's
    /// slice from when it was dispatched (see `api::yield_if_slice_expired`).
    /// Atomic because the budget timer's signal handler, on this thread,
    /// ends the slice early (see `budget`).
    pub(crate) slice_end: AtomicU64,
    /// Why the current strand suspended.
    pub(crate) reason: Suspend,
    /// This carrier's ownership epoch and flag (see `core::handshake`).
    pub(crate) claim: crate::core::Claim,
    /// Set when this carrier lost its core to a replacement (see the ownership
    /// handshake in `core::handshake`):
    /// from then on it must not touch `local`.
    pub(crate) retired: bool,
    /// Set while the core's scheduler runs a program's own policy (see
    /// [`deciding`]): the scheduler holds the core's state, so nothing may
    /// reach it or suspend.
    pub(crate) deciding: bool,
    /// Strands woken by scheduler code on this carrier (socket readiness,
    /// scheduler closures, drops during shutdown): the
    /// scheduling loop routes them at its next pass, so waking from inside
    /// the loop never re-enters the core's `Local` through the thread-local.
    pub(crate) wakes: Vec<Arc<Header>>,
    /// This thread's budget timer, made when it first runs a strand bound
    /// to a scheduling context (see `budget::Hold`).
    pub(crate) hold: Option<Arc<crate::budget::Hold>>,
    /// Its timer may be armed: a bound run left it so for the next (see
    /// `budget::Hold::stop`); disarmed before anything else runs here or
    /// the core parks, or its expiry's signal would interrupt their system
    /// calls (`poll`, `epoll_wait` and sleeps fail with EINTR even under
    /// `SA_RESTART`).
    pub(crate) timer_armed: bool,
    /// The clock each run is measured by, for a policy that charges by
    /// measured runs (see `cycles`); `None`: charged by the coarse clock.
    pub(crate) fine: Option<&'static crate::cycles::FineClock>,
    /// Its reading when the current run started (`cycles::UNREAD`: none
    /// yet).
    pub(crate) run_started: u64,
}

thread_local! {
    static CARRIER: Cell<*mut Carrier> = const { Cell::new(ptr::null_mut()) };
}

/// Installs `carrier` as this thread's carrier for the duration of `f`.
pub(crate) fn with_carrier<R>(carrier: &mut Carrier, f: impl FnOnce(*mut Carrier) -> R) -> R {
    let ptr: *mut Carrier = carrier;
    let previous = CARRIER.replace(ptr);
    let result = f(ptr);
    CARRIER.set(previous);
    result
}

/// This thread's carrier, or null outside the runtime.
#[inline(never)]
pub(crate) fn carrier() -> *mut Carrier {
    std::hint::black_box(CARRIER.get())
}

/// The current strand's header as a raw pointer, or null when not in a strand.
#[inline]
pub(crate) fn current_ptr() -> *const Header {
    let c = carrier();
    if c.is_null() {
        return ptr::null();
    }
    // SAFETY: a non-null carrier pointer refers to the live `Carrier` on this
    // thread's stack (installed by `with_carrier`), and only this thread uses it.
    unsafe { (*c).current }
}

/// The current strand's header, or `None` outside a strand.
pub(crate) fn current_header() -> Option<Arc<Header>> {
    let h = current_ptr();
    if h.is_null() {
        return None;
    }
    // SAFETY: `current` points into an `Arc<Header>` kept alive by the running
    // task, which cannot exit while it is executing this call.
    unsafe {
        Arc::increment_strong_count(h);
        Some(Arc::from_raw(h))
    }
}

/// Runs `f` with the core-local state of the calling strand's core, wherever
/// that core is now driven from: the one answer to "which core am I on, or
/// am I foreign" for code that may suspend.
///
/// A strand's carrier can lose its core to a replacement while the strand
/// runs (a hog hand-off, see `monitor`). Then the strand yields first, which
/// hands it to the core's new carrier, and `f` runs there: the operation
/// happens on the strand's own core as if nothing had happened. Scheduler
/// code (closures, socket readiness) owns its core. `None` off the
/// runtime's carriers (a foreign thread), and for code that cannot reach
/// the core from where it runs (scheduler code of a carrier that lost its
/// core, a program's policy called by the scheduler): the caller takes the
/// foreign path. Code that must not suspend (wakes, which may run under a
/// lock) uses [`with_local_of`] instead.
///
/// `f` must not suspend the strand: the reference does not outlive the call.
#[inline]
pub(crate) fn with_core<R>(mut f: impl FnMut(&mut Local) -> R) -> Option<R> {
    loop {
        let c = carrier();
        if let Some(result) = with_local_of(c, &mut f) {
            return Some(result);
        }
        // SAFETY: a non-null carrier pointer refers to this thread's live
        // carrier; reading its fields is sound.
        if c.is_null() || unsafe { (*c).current.is_null() || (*c).deciding } {
            // Not a carrier; scheduler code of a carrier that lost its core,
            // which has nothing left to run on it; or inside the scheduler,
            // which must not suspend.
            return None;
        }
        crate::api::yield_strand();
    }
}

/// Runs `f` with the core-local state of this carrier `c` (as [`carrier`]
/// just read it; null: not a carrier) if it owns its core, without ever
/// suspending. `None` off the runtime, or when this carrier lost its core to
/// a replacement: the caller takes the path a foreign thread would.
#[inline]
pub(crate) fn with_local_of<R>(c: *mut Carrier, f: impl FnOnce(&mut Local) -> R) -> Option<R> {
    if c.is_null() {
        return None;
    }
    // SAFETY: a non-null carrier pointer refers to this thread's live `Carrier`,
    // installed on its stack by `with_carrier` and used by no other thread, so
    // reading and writing its fields is sound. In scheduler code (`current` is
    // null) this carrier already owns the core. From a strand, `enter_scheduler` runs the ownership
    // handshake with the monitor; while it reports ownership, this thread is the
    // only one touching `local`, and no other reference to it is live because the
    // scheduler loop holds none across `resume`.
    unsafe {
        if (*c).retired || (*c).deciding {
            return None;
        }
        if (*c).current.is_null() {
            return Some(f(&mut *(*c).local));
        }
        if (*(*c).core).enter_scheduler(&mut (*c).claim) {
            let result = f(&mut *(*c).local);
            (*c).claim.leave_scheduler();
            Some(result)
        } else {
            (*c).retired = true;
            None
        }
    }
}

/// Runs `f`, a program's own scheduling policy called by the core's
/// scheduler, with this carrier marked as deciding: runtime calls made from
/// it find no core ([`with_local_of`], [`with_core`] return `None`, so they
/// take the foreign path) and cannot suspend the strand whose runtime call
/// reached the scheduler ([`suspend`] returns at once), because the
/// scheduler holds the core's state meanwhile.
pub(crate) fn deciding<R>(f: impl FnOnce() -> R) -> R {
    let c = carrier();
    if c.is_null() {
        return f();
    }
    // SAFETY: a non-null carrier pointer refers to this thread's live
    // carrier, which only this thread touches; `f` does not unwind (callers
    // catch panics inside it), so the flag is always restored.
    unsafe {
        let was = (*c).deciding;
        (*c).deciding = true;
        let result = f();
        (*c).deciding = was;
        result
    }
}

/// Suspends the current strand for `reason`. Must be called from a strand.
/// Inside a program's policy ([`deciding`]) it returns at once: to the
/// caller, a spurious wake.
#[inline(always)]
pub(crate) fn suspend(reason: Suspend) {
    let c = carrier();
    debug_assert!(!c.is_null(), "suspend outside a strand");
    // SAFETY: called from a running strand, so the carrier is live and `current`
    // is the running strand, whose yielder was stored when it started and lives on
    // its own stack for as long as it runs.
    unsafe {
        if (*c).deciding {
            return;
        }
        (*c).reason = reason;
        let yielder: *const StrandYielder = (*(*c).current).yielder.load(Ordering::Relaxed);
        (*yielder).suspend(());
    }
}
