//! The ownership handshake: which carrier thread owns a core.
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
//! 5. **Vacancy.** From step 3 until a carrier with the new epoch starts, the
//!    core is *vacant* (a flag under the `handoff` lock). The monitor claims the
//!    vacancy before it starts that carrier (`take_vacant`) and gives it back
//!    when the thread could not be started (`leave_vacant`), to try again
//!    later. A carrier that lost the core and finds it vacant at step 4 takes
//!    it back: it adopts the new epoch and carries on as the owner, so a core
//!    whose replacement cannot start is run again as soon as its hog returns.
//!
//! The barrier in step 3 splits the carrier's execution: its store in step 2
//! either happened before (the monitor sees `in_scheduler == 1` and backs off) or
//! after (its load sees `REVOKING` and it takes the lock, which orders it with
//! the monitor's decision). Without `membarrier` both sides use `SeqCst` fences.
//!
//! This file is compiled a second time by `tests/handshake_loom.rs` against
//! loom's types, which explores the fence variant (`light == false`); with
//! `membarrier` the monitor's barrier makes the carrier's compiler fence act
//! as a full one, which reduces the light variant to the same orderings.

use crate::facade::{compiler_fence, fence, AtomicU32, Mutex, Ordering};

/// Set in `owner` while the monitor decides whether to take the core.
const REVOKING: u32 = 1 << 31;

/// The handshake's state for one core.
#[derive(Debug)]
pub(crate) struct Ownership {
    /// 1 while the carrier runs scheduler code, 0 while it runs a strand.
    in_scheduler: AtomicU32,
    /// The owning carrier's epoch, with `REVOKING` while the monitor decides.
    owner: AtomicU32,
    /// Whether the owner's epoch has no carrier yet (step 5).
    handoff: Mutex<bool>,
    /// Whether the fast path may use a compiler fence (the monitor has
    /// `membarrier`).
    light: bool,
}

impl Ownership {
    /// A core owned by the carrier of epoch 0, in scheduler code.
    pub(crate) fn new(light: bool) -> Ownership {
        Ownership {
            in_scheduler: AtomicU32::new(1),
            owner: AtomicU32::new(0),
            handoff: Mutex::new(false),
            light,
        }
    }

    /// Step 1: about to run strand code.
    #[inline]
    pub(crate) fn leave_scheduler(&self) {
        self.in_scheduler.store(0, Ordering::Release);
    }

    /// Step 2 (and 4, 5): the carrier of `*epoch` is about to touch local
    /// state from strand context. Returns whether it owns the core; a carrier
    /// that lost it to a vacancy takes it back, its `*epoch` becoming the
    /// owner's, and runs `took_back` (under the lock).
    #[inline]
    pub(crate) fn enter_scheduler(&self, epoch: &mut u32, took_back: impl FnOnce()) -> bool {
        self.in_scheduler.store(1, Ordering::Relaxed);
        if self.light {
            // The monitor's membarrier supplies the hardware barrier.
            compiler_fence(Ordering::SeqCst);
        } else {
            // StoreLoad ordering between our store and the load below.
            fence(Ordering::SeqCst);
        }
        if self.owner.load(Ordering::Relaxed) == *epoch {
            return true;
        }
        self.enter_slow(epoch, took_back)
    }

    #[cold]
    fn enter_slow(&self, epoch: &mut u32, took_back: impl FnOnce()) -> bool {
        let mut vacant = self.handoff.lock().unwrap_or_else(|e| e.into_inner());
        let owner = self.owner.load(Ordering::Relaxed) & !REVOKING;
        if owner == *epoch {
            return true;
        }
        if *vacant {
            // No carrier took the core: it is ours again, under the new
            // epoch (the lock orders this with the monitor's revocation).
            *vacant = false;
            *epoch = owner;
            took_back();
            return true;
        }
        false
    }

    /// Step 5, the monitor: claims the vacancy of `epoch` before starting a
    /// carrier for it. False if the core is not vacant under that epoch any
    /// more (its old carrier took it back).
    pub(crate) fn take_vacant(&self, epoch: u32) -> bool {
        let mut vacant = self.handoff.lock().unwrap_or_else(|e| e.into_inner());
        if *vacant && self.owner.load(Ordering::Relaxed) & !REVOKING == epoch {
            *vacant = false;
            true
        } else {
            false
        }
    }

    /// Step 5, the monitor: the carrier for `epoch` (claimed with
    /// [`take_vacant`](Self::take_vacant)) could not be started.
    pub(crate) fn leave_vacant(&self, epoch: u32) {
        let mut vacant = self.handoff.lock().unwrap_or_else(|e| e.into_inner());
        if self.owner.load(Ordering::Relaxed) & !REVOKING == epoch {
            *vacant = true;
        }
    }

    /// Step 3: the monitor tries to take the core from a carrier stuck in
    /// strand code; `heavy_barrier` is the process-wide barrier (used only
    /// when `light`). `still_stuck` re-checks the monitor's progress condition
    /// under the lock. Returns the new owner's epoch if the core was taken:
    /// the caller must start a carrier with it.
    pub(crate) fn try_revoke(
        &self,
        still_stuck: impl FnOnce() -> bool,
        heavy_barrier: impl FnOnce(),
    ) -> Option<u32> {
        self.owner.fetch_or(REVOKING, Ordering::Relaxed);
        if self.light {
            heavy_barrier();
        } else {
            fence(Ordering::SeqCst);
        }
        let mut vacant = self.handoff.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.owner.load(Ordering::Relaxed) & !REVOKING;
        if !*vacant && self.in_scheduler.load(Ordering::Acquire) == 0 && still_stuck() {
            let next = current.wrapping_add(1) & !REVOKING;
            // The lock's release orders this before the new carrier's start.
            self.owner.store(next, Ordering::Relaxed);
            self.in_scheduler.store(1, Ordering::Relaxed);
            *vacant = true;
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
