//! The part of a core other threads may look at.
//!
//! # Ownership handshake
//!
//! A core's local state is owned by one carrier thread at a time. Normally that
//! never changes, but when a strand runs for a long time without calling into the
//! runtime, the monitor gives the core to a fresh carrier so the queued strands get
//! to run (see `monitor`). The old carrier must then never touch the local state
//! again, and must find out at its next runtime call. The fast path costs two
//! plain stores and one plain load per switch:
//!
//! Every carrier of a core holds an epoch; `owner` holds the owning carrier's
//! epoch, plus a `REVOKING` bit while the monitor considers taking the core.
//!
//! 1. Carrier, leaving scheduler code to run strand code: `in_scheduler = 0`.
//! 2. Carrier, entering scheduler code from strand code (`enter_scheduler`):
//!    `in_scheduler = 1`, a compiler fence, then load `owner`; equal to its epoch
//!    means it still owns the core.
//! 3. Monitor, to take the core: set `REVOKING`, then a process-wide barrier
//!    (`membarrier`), then under the `handoff` lock: if `in_scheduler` is still 0
//!    and the core made no progress, store the next epoch in `owner` and give the
//!    local state to a new carrier with that epoch; otherwise clear `REVOKING`.
//! 4. Carrier that saw `REVOKING`: takes the `handoff` lock and compares `owner`
//!    without the bit: its epoch means the monitor backed off (or will, because it
//!    sees `in_scheduler == 1`); anything else means the core is gone for good.
//!
//! The barrier in step 3 splits the carrier's execution: its store in step 2
//! either happened before (the monitor sees `in_scheduler == 1` and backs off) or
//! after (its load sees `REVOKING` and it takes the lock, which orders it with
//! the monitor's decision). Without `membarrier` both sides use `SeqCst` fences.

use crate::core::Local;
use crate::facade::{
    compiler_fence, fence, AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering,
};
use crate::sys;
use std::cell::UnsafeCell;

/// Set in `owner` while the monitor decides whether to take the core.
const REVOKING: u32 = 1 << 31;
use std::sync::{Mutex, OnceLock};

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
    in_scheduler: AtomicU32,
    owner: AtomicU32,
    handoff: Mutex<()>,
    /// Whether the carrier is parked (idle, sleeping on its doorbell).
    pub(crate) parked: AtomicBool,
    /// Ready strands, published at every switch for the monitor.
    pub(crate) ready_len: AtomicUsize,
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
    /// Whether the fast path may use a compiler fence (membarrier available).
    light: bool,
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
            in_scheduler: AtomicU32::new(1),
            owner: AtomicU32::new(0),
            carrier_tid: crate::facade::AtomicI32::new(0),
            handoff: Mutex::new(()),
            parked: AtomicBool::new(false),
            ready_len: AtomicUsize::new(0),
            counters: CoreCounters::default(),
            live_events: AtomicUsize::new(0),
            timers: AtomicUsize::new(0),
            io,
            light: heavy_barrier_available(),
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

    /// Step 1 of the handshake: about to run strand code.
    #[inline]
    pub(crate) fn leave_scheduler(&self) {
        self.in_scheduler.store(0, Ordering::Release);
    }

    /// Step 2 (and 4): the carrier of `epoch` is about to touch local state from
    /// strand context. Returns whether it still owns the core.
    #[inline]
    pub(crate) fn enter_scheduler(&self, epoch: u32) -> bool {
        self.in_scheduler.store(1, Ordering::Relaxed);
        if self.light {
            // The monitor's membarrier supplies the hardware barrier.
            compiler_fence(Ordering::SeqCst);
        } else {
            // StoreLoad ordering between our store and the load below.
            fence(Ordering::SeqCst);
        }
        if self.owner.load(Ordering::Relaxed) == epoch {
            return true;
        }
        self.enter_slow(epoch)
    }

    #[cold]
    fn enter_slow(&self, epoch: u32) -> bool {
        let _guard = self.handoff.lock().unwrap_or_else(|e| e.into_inner());
        self.owner.load(Ordering::Relaxed) & !REVOKING == epoch
    }

    /// Step 3: the monitor tries to take the core from a carrier stuck in strand
    /// code. `still_stuck` re-checks the monitor's progress condition under the
    /// lock. Returns the new owner's epoch if the core was taken: the caller must
    /// start a carrier with it.
    pub(crate) fn try_revoke(&self, still_stuck: impl FnOnce() -> bool) -> Option<u32> {
        self.owner.fetch_or(REVOKING, Ordering::Relaxed);
        if self.light {
            sys::heavy_barrier();
        } else {
            fence(Ordering::SeqCst);
        }
        let _guard = self.handoff.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.owner.load(Ordering::Relaxed) & !REVOKING;
        if self.in_scheduler.load(Ordering::Acquire) == 0 && still_stuck() {
            let next = current.wrapping_add(1) & !REVOKING;
            // The lock's release orders this before the new carrier's start.
            self.owner.store(next, Ordering::Relaxed);
            self.in_scheduler.store(1, Ordering::Relaxed);
            bump(&self.counters.handoffs, 1);
            Some(next)
        } else {
            self.owner.store(current, Ordering::Relaxed);
            None
        }
    }

    /// Whether the carrier is currently in strand code (for the monitor).
    pub(crate) fn in_strand(&self) -> bool {
        self.in_scheduler.load(Ordering::Relaxed) == 0
    }
}
