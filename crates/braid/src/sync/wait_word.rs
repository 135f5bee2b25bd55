//! The wait word: the generation of a waiter's current wait above two state
//! bits, resolved once per generation (see `sync::waiter`). These functions are
//! the whole protocol; `tests/wait_word_loom.rs` model-checks them (this file is
//! compiled there against loom's atomics).

use crate::facade::{AtomicU64, Ordering};

const STATE_BITS: u64 = 2;
const WAITING: u64 = 0;
/// Resolved by a waker's claim.
pub(crate) const SIGNALLED: u64 = 1;
/// Resolved by the waiter giving up.
pub(crate) const ABANDONED: u64 = 2;

/// The waiter starts a new wait: returns its generation. Only the waiter
/// writes a new generation, and only between its waits.
pub(crate) fn begin(word: &AtomicU64) -> u64 {
    let generation = (word.load(Ordering::Relaxed) >> STATE_BITS) + 1;
    word.store(generation << STATE_BITS | WAITING, Ordering::Relaxed);
    generation
}

/// Resolves wait `generation` as `to` (`SIGNALLED` or `ABANDONED`). True for
/// exactly one caller per generation; false when it was resolved already or
/// belongs to an older generation.
pub(crate) fn resolve(word: &AtomicU64, generation: u64, to: u64) -> bool {
    // AcqRel: the waiter sees what the waker wrote before claiming, and the
    // waker sees what the waiter wrote before it started waiting.
    word.compare_exchange(
        generation << STATE_BITS | WAITING,
        generation << STATE_BITS | to,
        Ordering::AcqRel,
        Ordering::Acquire,
    )
    .is_ok()
}

/// Whether wait `generation` was resolved by a waker.
pub(crate) fn is_signalled(word: &AtomicU64, generation: u64) -> bool {
    word.load(Ordering::Acquire) == generation << STATE_BITS | SIGNALLED
}
