//! The park word: how a strand blocks and how wakers make it ready exactly once.
//!
//! Blocking follows the park/unpark token discipline of `std::thread::park`:
//! 1. A running strand is `RUNNING`. To block it CASes `RUNNING -> PARKED`
//!    ([`begin_park`]) and suspends; its carrier then files the task in the
//!    core's blocked table, unless a wake already came ([`woken_before_filing`]),
//!    in which case the task goes straight back to the ready queue.
//! 2. A waker swaps in `NOTIFIED` ([`notify`]). Only the waker that saw `PARKED`
//!    schedules the task (locally, or by a `Wake` message to the strand's home
//!    core), so a strand is made ready exactly once per park however many wakers
//!    race.
//! 3. If the CAS in step 1 finds `NOTIFIED`, a wake came first: the strand
//!    consumes it and does not block. The strand consumes the token in any case
//!    when it continues ([`end_park`]). Every blocking call re-checks its
//!    condition in a loop, so a stale or spurious wake is harmless.
//! 4. An exited strand is `EXITED` ([`exit`]): wakes addressed to it are ignored.
//!
//! A `Wake` message is applied by the home core in its scheduling loop, which only
//! runs after the parking strand has suspended and been filed (or requeued), so
//! the message never finds a half-parked strand. It can find a stale one: a wake
//! that raced with the park was seen by the early-wake check, the strand was
//! requeued and may have moved and parked on another core since; the home core
//! then finds it not filed in its own table and drops the message
//! (`Local::wake_filed`), the wake having taken effect already.
//!
//! The functions here are the whole protocol; `tests/park_loom.rs` model-checks
//! them (this file is compiled there against loom's atomics).

use crate::facade::{AtomicU32, Ordering};

/// Running, or ready to run, with no wake pending.
pub(crate) const RUNNING: u32 = 0;
/// Suspended (or about to be) waiting for a wake.
pub(crate) const PARKED: u32 = 1;
/// A wake arrived that the strand has not consumed yet.
pub(crate) const NOTIFIED: u32 = 2;
/// The strand's body returned.
pub(crate) const EXITED: u32 = 3;

/// Strand, step 1: returns true if the strand must now suspend; false if a wake
/// came first (the strand then goes on without blocking).
#[inline]
pub(crate) fn begin_park(word: &AtomicU32) -> bool {
    // Release publishes what the strand wrote before parking (its `home`, its
    // blocked-table slot) to the waker that sees PARKED; Acquire on failure sees
    // what that waker published.
    word.compare_exchange(RUNNING, PARKED, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
}

/// Strand, when it continues after `begin_park` (woken, or never suspended):
/// consumes the wake token.
#[inline]
pub(crate) fn end_park(word: &AtomicU32) {
    // Acquire pairs with the waker's swap, so what it wrote before waking is
    // visible to the strand.
    word.swap(RUNNING, Ordering::Acquire);
}

/// Waker: records a wake. Returns true if this waker must schedule the strand
/// (it saw `PARKED`); at most one waker per park gets true.
#[inline]
pub(crate) fn notify(word: &AtomicU32) -> bool {
    // AcqRel: Release publishes what the waker wrote before waking; Acquire makes
    // the strand's writes before it parked visible to the waker.
    word.swap(NOTIFIED, Ordering::AcqRel) == PARKED
}

/// Carrier, right after a strand suspended to park: whether a wake already
/// arrived (the task must be made ready rather than filed). Only possible for a
/// strand handed over by a carrier that lost its core.
#[inline]
pub(crate) fn woken_before_filing(word: &AtomicU32) -> bool {
    word.load(Ordering::Acquire) == NOTIFIED
}

/// Carrier, when a strand's body returned: later wakes are ignored.
#[inline]
pub(crate) fn exit(word: &AtomicU32) {
    word.store(EXITED, Ordering::Release);
}
