//! The `Mutex`'s state word: who holds the lock, and whether an unlocker must
//! look at the wait list.
//!
//! `LOCKED` is the lock; `HAS_WAITERS` says some strand may be queued. The
//! protocol, with the wait list under its own small lock:
//! 1. Locking uncontended is one CAS `0 -> LOCKED` ([`try_lock_fast`]).
//! 2. A strand that fails takes the wait list's lock and, under it, either
//!    takes a lock that became free or sets `HAS_WAITERS` in the same CAS
//!    ([`lock_or_mark`]), then queues itself and blocks. Since the mark and the
//!    queueing happen under the list's lock, an unlocker that saw the mark
//!    finds the waiter queued.
//! 3. Unlocking swaps in 0 ([`unlock`]); if `HAS_WAITERS` was set it takes the
//!    list's lock, wakes one waiter, and sets `HAS_WAITERS` again if more are
//!    queued ([`mark_waiters`]). The woken waiter retries from step 2; a strand
//!    arriving meanwhile may take the lock first (no convoys).
//!
//! `tests/mutex_loom.rs` model-checks this file (compiled there against loom's
//! atomics) with a wait list and blocking like the real ones.

use crate::facade::{AtomicU8, Ordering};

/// The lock bit.
pub(crate) const LOCKED: u8 = 1;
/// Some strand may be queued: the unlocker must look at the wait list.
pub(crate) const HAS_WAITERS: u8 = 2;

/// Takes a lock nobody holds and nobody waits for. Acquire: the holder sees
/// what the previous holder wrote.
#[inline]
pub(crate) fn try_lock_fast(state: &AtomicU8) -> bool {
    state
        .compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
        .is_ok()
}

/// Takes the lock if it is free now, whether or not strands wait.
pub(crate) fn try_lock(state: &AtomicU8) -> bool {
    let mut s = state.load(Ordering::Relaxed);
    while s & LOCKED == 0 {
        match state.compare_exchange_weak(s, s | LOCKED, Ordering::Acquire, Ordering::Relaxed) {
            Ok(_) => return true,
            Err(now) => s = now,
        }
    }
    false
}

/// Under the wait list's lock: takes the lock if it is free (true), else marks
/// that a waiter is about to queue (false).
pub(crate) fn lock_or_mark(state: &AtomicU8) -> bool {
    let mut s = state.load(Ordering::Relaxed);
    loop {
        let (next, acquired) = if s & LOCKED == 0 {
            (s | LOCKED, true)
        } else {
            (s | HAS_WAITERS, false)
        };
        match state.compare_exchange_weak(s, next, Ordering::Acquire, Ordering::Relaxed) {
            Ok(_) => return acquired,
            Err(now) => s = now,
        }
    }
}

/// Releases the lock; returns whether the caller must wake a waiter (take the
/// list's lock, wake one, then [`mark_waiters`] if more remain). Release: the
/// next holder sees what this one wrote.
#[inline]
pub(crate) fn unlock(state: &AtomicU8) -> bool {
    state.swap(0, Ordering::Release) & HAS_WAITERS != 0
}

/// Under the wait list's lock, after waking one: waiters remain queued.
pub(crate) fn mark_waiters(state: &AtomicU8) {
    state.fetch_or(HAS_WAITERS, Ordering::Relaxed);
}

/// Under the wait list's lock, for a waiter that gave up: whether the lock is
/// free, so the wake it may have been given must go to the next waiter.
pub(crate) fn is_free(state: &AtomicU8) -> bool {
    state.load(Ordering::Relaxed) & LOCKED == 0
}
