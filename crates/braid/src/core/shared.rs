//! The part of a core other threads may look at.
//!
//! The ownership handshake between a core's carrier and the monitor is in
//! `handshake`.

use super::handshake::{Claim, Ownership};
use crate::core::Local;
use crate::facade::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use crate::sys;
use std::cell::UnsafeCell;
use std::sync::OnceLock;

/// Counters of one core, written only by its owning carrier.
#[derive(Debug, Default)]
pub(crate) struct CoreCounters {
    pub(crate) switches: AtomicU64,
    pub(crate) steals: AtomicU64,
    pub(crate) given: AtomicU64,
    pub(crate) sent: AtomicU64,
    pub(crate) received: AtomicU64,
    pub(crate) parks: AtomicU64,
    pub(crate) spawned: AtomicU64,
    pub(crate) exited: AtomicU64,
    pub(crate) handoffs: AtomicU64,
    pub(crate) evicted: AtomicU64,
    pub(crate) io_events: AtomicU64,
}

/// Adds `by` to a single-writer counter (a load and a store, no read-modify-write).
#[inline]
pub(crate) fn bump(counter: &AtomicU64, by: u64) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(by),
        Ordering::Relaxed,
    );
}

/// Whether the asymmetric barrier is available (probed once per process).
fn heavy_barrier_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(sys::register_heavy_barrier)
}

/// One core as seen by everybody.
pub(crate) struct CoreShared {
    pub(crate) id: usize,
    /// The CPU this core's carriers are pinned to, if pinning succeeded.
    pub(crate) cpu: Option<usize>,
    /// Which carrier owns the core (see `handshake`).
    ownership: Ownership,
    /// Whether the core is leased to one group (see `lease`).
    pub(crate) leased: AtomicBool,
    /// Whether the carrier is parked (idle, sleeping on its doorbell).
    pub(crate) parked: AtomicBool,
    /// Ready strands, published at every switch for the monitor.
    pub(crate) ready_len: AtomicUsize,
    /// The highest latency class among them when the monitor last asked
    /// (`Msg::ReportClass`, while leases exist and the shared cores are
    /// backlogged; see `lease::report_code`).
    pub(crate) top_class: crate::facade::AtomicU8,
    pub(crate) counters: CoreCounters,
    /// Events this core holds state for (waiters, or homed here), published
    /// after every event operation.
    pub(crate) live_events: AtomicUsize,
    /// Timers armed on this core, published when they change.
    pub(crate) timers: AtomicUsize,
    /// The shared half of this core's poller: registry, waker, releases.
    pub(crate) io: crate::io::IoShared,
    /// Kernel thread id of the carrier that owns the core (0 before the first
    /// one starts).
    pub(crate) carrier_tid: crate::facade::AtomicI32,
    /// Times a carrier took this core back because its replacement could not
    /// start.
    pub(crate) reclaims: AtomicU64,
    local: UnsafeCell<Option<Box<Local>>>,
}

// SAFETY: every field but `local` is Sync. `local` is accessed only by the carrier
// that owns the core, which the handshake above makes exclusive; ownership moves
// to a new carrier only under the `handoff` lock after the old one provably left.
unsafe impl Sync for CoreShared {}
// SAFETY: every field but `local` is Send. `local`'s `Local` is used by one
// thread at a time whichever thread holds the `CoreShared`: the runtime's builder
// installs it before any carrier exists, then only the owning carrier touches it
// (handed over under the `handoff` lock), and it is taken after every carrier
// stopped.
unsafe impl Send for CoreShared {}

impl CoreShared {
    pub(crate) fn new(id: usize, cpu: Option<usize>, io: crate::io::IoShared) -> CoreShared {
        CoreShared {
            id,
            cpu,
            ownership: Ownership::new(heavy_barrier_available()),
            carrier_tid: crate::facade::AtomicI32::new(0),
            reclaims: AtomicU64::new(0),
            parked: AtomicBool::new(false),
            leased: AtomicBool::new(false),
            ready_len: AtomicUsize::new(0),
            top_class: crate::facade::AtomicU8::new(0),
            counters: CoreCounters::default(),
            live_events: AtomicUsize::new(0),
            timers: AtomicUsize::new(0),
            io,
            local: UnsafeCell::new(None),
        }
    }

    /// Installs the local state before any carrier starts.
    pub(crate) fn install_local(&self, local: Box<Local>) {
        // SAFETY: called once during runtime construction, before any carrier
        // thread exists, so nobody else can observe `local`.
        unsafe { *self.local.get() = Some(local) };
    }

    /// The local state. Only the owning carrier may dereference it.
    pub(crate) fn local_ptr(&self) -> *mut Local {
        // SAFETY: the Option is set before carriers start and never changed
        // until the runtime is dropped, after every carrier has stopped.
        unsafe {
            (*self.local.get())
                .as_deref_mut()
                .map_or(std::ptr::null_mut(), |l| l as *mut Local)
        }
    }

    /// Drops the local state (runtime teardown, no carrier alive).
    pub(crate) fn take_local(&self) -> Option<Box<Local>> {
        // SAFETY: called after every carrier thread of the runtime stopped.
        unsafe { (*self.local.get()).take() }
    }

    /// The carrier of `claim` is about to touch local state from strand
    /// context. Returns whether it owns the core (taking it back, under a new
    /// epoch, if no replacement could be started; see `handshake`).
    #[inline]
    pub(crate) fn enter_scheduler(&self, claim: &mut Claim) -> bool {
        self.ownership.enter_scheduler(claim, || self.took_back())
    }

    /// The calling carrier took this core back (its replacement never
    /// started): it owns it again. It was never demoted (only carriers
    /// replaced by a started one are).
    #[cold]
    fn took_back(&self) {
        bump(&self.reclaims, 1);
        self.carrier_tid.store(sys::thread_id(), Ordering::Relaxed);
    }

    /// The claim of the runtime's first carrier for this core.
    pub(crate) fn first_claim(&self) -> Claim {
        self.ownership.first_claim()
    }

    /// Claims the core, taken from its carrier under `epoch`, for a new
    /// carrier about to start, which gets the claim (see `handshake`, step
    /// 5); then [`started`](Self::started) or
    /// [`leave_vacant`](Self::leave_vacant).
    pub(crate) fn take_vacant(&self, epoch: u32) -> Option<Claim> {
        self.ownership.take_vacant(epoch)
    }

    /// The carrier claimed with [`take_vacant`](Self::take_vacant) started.
    pub(crate) fn started(&self, epoch: u32) {
        self.ownership.started(epoch);
    }

    /// The carrier claimed with [`take_vacant`](Self::take_vacant) could not
    /// start.
    pub(crate) fn leave_vacant(&self, epoch: u32) {
        self.ownership.leave_vacant(epoch);
    }

    /// The monitor tries to take the core from a carrier stuck in strand
    /// code. `still_stuck` re-checks the monitor's progress condition under the
    /// lock. Returns the new owner's epoch if the core was taken: the caller must
    /// claim it (`take_vacant`) and start a carrier with it.
    pub(crate) fn try_revoke(&self, still_stuck: impl FnOnce() -> bool) -> Option<u32> {
        let next = self.ownership.try_revoke(still_stuck, sys::heavy_barrier)?;
        bump(&self.counters.handoffs, 1);
        Some(next)
    }

    /// Whether the owning carrier is in strand code (for the monitor);
    /// `None` while a carrier holds the hand-off lock.
    pub(crate) fn in_strand(&self) -> Option<bool> {
        self.ownership.in_strand()
    }
}
