//! The ownership handshake: which carrier thread owns a core.
//!
//! A core's local state is owned by one carrier thread at a time. Normally that
//! never changes, but when a strand runs for a long time without calling into the
//! runtime, the monitor gives the core to a fresh carrier so the queued strands get
//! to run (see `monitor`). The old carrier must then never touch the local state
//! again, and must find out at its next runtime call. The fast path costs two
//! plain stores and one plain load per switch:
//!
//! Every carrier of a core holds a [`Claim`]: an epoch, and an `in_scheduler`
//! flag of its own; `owner` holds the owning carrier's epoch, plus a `REVOKING`
//! bit while the monitor considers taking the core, and the `handoff` lock
//! holds the owner's flag and the [`Seat`].
//!
//! 1. Carrier, leaving scheduler code to run strand code: `in_scheduler = 0`.
//! 2. Carrier, entering scheduler code from strand code (`enter_scheduler`):
//!    `in_scheduler = 1`, a compiler fence, then load `owner`; equal to its epoch
//!    means it still owns the core.
//! 3. Monitor, to take the core: set `REVOKING`, then a process-wide barrier
//!    (`membarrier`), then under the `handoff` lock: if the owner's flag is
//!    still 0 and the core made no progress, store the next epoch in `owner`
//!    and give the local state to a new carrier with that epoch; otherwise
//!    clear `REVOKING`.
//! 4. Carrier that saw `REVOKING`: takes the `handoff` lock and compares `owner`
//!    without the bit: its epoch means the monitor backed off (or will, because it
//!    sees its flag at 1); anything else means the core is gone for good.
//!
//! Because the flags are per carrier, a carrier that lost the core long ago
//! and comes back from its strand (step 2) sets only its own flag: it cannot
//! make the monitor believe the current owner is in scheduler code.
//!
//! 5. **Vacancy.** From step 3 until a carrier with the new epoch starts, the
//!    core is *vacant*. The monitor claims the vacancy before it starts that
//!    carrier (`take_vacant`: the seat is `Starting`), and settles it after
//!    (`started`, or `leave_vacant` when the thread could not be started, to
//!    try again later). The carrier the core was taken from, finding it
//!    vacant at step 4, takes it back: it adopts the new epoch and carries on
//!    as the owner, so a core whose replacement cannot start is run again as
//!    soon as its hog returns; finding it `Starting`, it waits for the seat
//!    to settle. Older carriers never take a core back: they were demoted as
//!    hogs (see `monitor`).
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

use crate::facade::{compiler_fence, fence, Arc, AtomicU32, Condvar, Mutex, Ordering};

/// Set in `owner` while the monitor decides whether to take the core.
const REVOKING: u32 = 1 << 31;

/// What one carrier holds of the handshake: its epoch, and its own flag,
/// 1 while it runs scheduler code and 0 while it runs a strand. Each carrier
/// has a flag of its own, so one that lost the core writes nothing the
/// monitor reads of the owner.
#[derive(Debug)]
pub(crate) struct Claim {
    epoch: u32,
    in_scheduler: Arc<AtomicU32>,
}

impl Claim {
    /// Step 1: about to run strand code.
    #[inline]
    pub(crate) fn leave_scheduler(&self) {
        self.in_scheduler.store(0, Ordering::Release);
    }

    /// The epoch this carrier owns the core under (or last did).
    #[allow(dead_code)] // read by the model (tests/handshake_loom.rs)
    pub(crate) fn epoch(&self) -> u32 {
        self.epoch
    }

    /// This carrier's flag, for code on its own thread that must tell
    /// scheduler code from strand code without the lock (a signal handler).
    pub(crate) fn flag(&self) -> Arc<AtomicU32> {
        self.in_scheduler.clone()
    }
}

/// Who has the core, under the `handoff` lock.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Seat {
    /// The carrier of the current epoch runs it.
    Owned,
    /// Taken from the carrier of epoch `from`; no carrier for the current
    /// epoch has started (step 5).
    Vacant { from: u32 },
    /// The monitor is starting the carrier for the current epoch.
    Starting { from: u32 },
}

#[derive(Debug)]
struct Handoff {
    seat: Seat,
    /// The flag of the current epoch's carrier (a fresh one, set, while the
    /// seat is not `Owned`).
    owner_flag: Arc<AtomicU32>,
}

/// The handshake's state for one core.
#[derive(Debug)]
pub(crate) struct Ownership {
    /// The owning carrier's epoch, with `REVOKING` while the monitor decides.
    owner: AtomicU32,
    handoff: Mutex<Handoff>,
    /// Signalled when a `Starting` seat settles.
    settled: Condvar,
    /// Whether the fast path may use a compiler fence (the monitor has
    /// `membarrier`).
    light: bool,
}

impl Ownership {
    /// A core owned by the carrier of epoch 0, in scheduler code.
    pub(crate) fn new(light: bool) -> Ownership {
        Ownership {
            owner: AtomicU32::new(0),
            handoff: Mutex::new(Handoff {
                seat: Seat::Owned,
                owner_flag: Arc::new(AtomicU32::new(1)),
            }),
            settled: Condvar::new(),
            light,
        }
    }

    /// The claim of the runtime's first carrier (epoch 0).
    pub(crate) fn first_claim(&self) -> Claim {
        let handoff = self.handoff.lock().unwrap_or_else(|e| e.into_inner());
        Claim {
            epoch: 0,
            in_scheduler: handoff.owner_flag.clone(),
        }
    }

    /// Step 2 (and 4, 5): the carrier of `claim` is about to touch local
    /// state from strand context. Returns whether it owns the core; the
    /// carrier the core was taken from, finding it vacant, takes it back (its
    /// epoch becoming the owner's) and runs `took_back` (under the lock).
    #[inline]
    pub(crate) fn enter_scheduler(&self, claim: &mut Claim, took_back: impl FnOnce()) -> bool {
        claim.in_scheduler.store(1, Ordering::Relaxed);
        if self.light {
            // The monitor's membarrier supplies the hardware barrier.
            compiler_fence(Ordering::SeqCst);
        } else {
            // StoreLoad ordering between our store and the load below.
            fence(Ordering::SeqCst);
        }
        if self.owner.load(Ordering::Relaxed) == claim.epoch {
            return true;
        }
        self.enter_slow(claim, took_back)
    }

    #[cold]
    fn enter_slow(&self, claim: &mut Claim, took_back: impl FnOnce()) -> bool {
        let mut handoff = self.handoff.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let owner = self.owner.load(Ordering::Relaxed) & !REVOKING;
            if owner == claim.epoch {
                return true;
            }
            match handoff.seat {
                // No carrier took the core: it is ours again, under the new
                // epoch (the lock orders this with the revocation). Only the
                // carrier it was taken from: an older one was demoted as a
                // hog, and would run the core at its demoted priority.
                Seat::Vacant { from } if from == claim.epoch => {
                    handoff.seat = Seat::Owned;
                    handoff.owner_flag = claim.in_scheduler.clone();
                    claim.epoch = owner;
                    took_back();
                    return true;
                }
                // A replacement is starting: wait to see whether it does.
                Seat::Starting { from } if from == claim.epoch => {
                    handoff = self
                        .settled
                        .wait(handoff)
                        .unwrap_or_else(|e| e.into_inner());
                }
                _ => return false,
            }
        }
    }

    /// Step 5, the monitor: claims the vacancy of `epoch` before starting a
    /// carrier for it, which gets the returned claim. `None` if the core is
    /// not vacant under that epoch any more (its old carrier took it back).
    /// The monitor must then call [`started`](Self::started) or
    /// [`leave_vacant`](Self::leave_vacant).
    pub(crate) fn take_vacant(&self, epoch: u32) -> Option<Claim> {
        let mut handoff = self.handoff.lock().unwrap_or_else(|e| e.into_inner());
        match handoff.seat {
            Seat::Vacant { from } if self.owner.load(Ordering::Relaxed) & !REVOKING == epoch => {
                handoff.seat = Seat::Starting { from };
                Some(Claim {
                    epoch,
                    in_scheduler: handoff.owner_flag.clone(),
                })
            }
            _ => None,
        }
    }

    /// Step 5, the monitor: the carrier for `epoch` (claimed with
    /// [`take_vacant`](Self::take_vacant)) started.
    pub(crate) fn started(&self, epoch: u32) {
        self.settle(epoch, |_| Seat::Owned);
    }

    /// Step 5, the monitor: the carrier for `epoch` (claimed with
    /// [`take_vacant`](Self::take_vacant)) could not be started.
    pub(crate) fn leave_vacant(&self, epoch: u32) {
        self.settle(epoch, |from| Seat::Vacant { from });
    }

    fn settle(&self, epoch: u32, to: impl FnOnce(u32) -> Seat) {
        let mut handoff = self.handoff.lock().unwrap_or_else(|e| e.into_inner());
        if let Seat::Starting { from } = handoff.seat {
            if self.owner.load(Ordering::Relaxed) & !REVOKING == epoch {
                handoff.seat = to(from);
                self.settled.notify_all();
            }
        }
    }

    /// Step 3: the monitor tries to take the core from a carrier stuck in
    /// strand code; `heavy_barrier` is the process-wide barrier (used only
    /// when `light`). `still_stuck` re-checks the monitor's progress condition
    /// under the lock. Returns the new owner's epoch if the core was taken:
    /// the caller must start a carrier with it. Gives up at once when the
    /// lock is held (a carrier that lost the core is checking; the monitor
    /// tries again at its next tick rather than wait behind a carrier
    /// demoted as a hog).
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
        // Only the monitor writes `owner`, so the bit can be cleared without
        // the lock.
        let Ok(mut handoff) = self.handoff.try_lock() else {
            self.owner.fetch_and(!REVOKING, Ordering::Relaxed);
            return None;
        };
        let current = self.owner.load(Ordering::Relaxed) & !REVOKING;
        if handoff.seat == Seat::Owned
            && handoff.owner_flag.load(Ordering::Acquire) == 0
            && still_stuck()
        {
            let next = current.wrapping_add(1) & !REVOKING;
            // The lock's release orders this before the new carrier's start.
            self.owner.store(next, Ordering::Relaxed);
            handoff.seat = Seat::Vacant { from: current };
            handoff.owner_flag = Arc::new(AtomicU32::new(1));
            Some(next)
        } else {
            self.owner.store(current, Ordering::Relaxed);
            None
        }
    }

    /// Whether the owning carrier is in strand code (for the monitor); `None`
    /// while the lock is held (ask again later).
    pub(crate) fn in_strand(&self) -> Option<bool> {
        let handoff = self.handoff.try_lock().ok()?;
        Some(handoff.owner_flag.load(Ordering::Relaxed) == 0)
    }
}
