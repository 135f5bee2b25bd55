//! The readiness word of a registered source: bits the poller sets, with a
//! generation count so that an operation that found the source not ready
//! clears only what it saw (model-checked by `tests/readiness_loom.rs`).
//!
//! Protocol, with the wait list of `IoState` beside it:
//! - the poller, for an event: [`Readiness::set`] (bits and a new generation),
//!   *then* takes the wait list's lock and wakes the waiters of the direction;
//! - an operation: [`Readiness::snapshot`]; if the direction's bits are set it
//!   tries the system call, and on `WouldBlock` calls [`Readiness::clear`] with
//!   the snapshot, which clears nothing if an event came in since;
//! - a waiter: takes the wait list's lock, reads the word again, and queues
//!   itself only if the bits are still clear.
//!
//! So an event either comes before the waiter's read under the lock (the
//! waiter sees its bits and does not sleep) or after it (the poller then finds
//! the waiter queued); and a clear never erases an event it did not see.

use crate::facade::{AtomicU64, Ordering};

/// Readiness bits (the low byte of the word).
pub(crate) const READABLE: u64 = 1;
pub(crate) const WRITABLE: u64 = 2;
pub(crate) const READ_CLOSED: u64 = 4;
pub(crate) const WRITE_CLOSED: u64 = 8;
pub(crate) const ERROR: u64 = 16;
const BITS: u64 = 0xff;
const GENERATION: u64 = 0x100;

/// `generation << 8 | bits`.
pub(crate) struct Readiness {
    word: AtomicU64,
}

impl Readiness {
    /// A new source, assumed ready both ways: the first operation tries the
    /// system call at once instead of waiting for the first event.
    pub(crate) fn new() -> Readiness {
        Readiness {
            word: AtomicU64::new(READABLE | WRITABLE),
        }
    }

    /// The word (bits and generation).
    pub(crate) fn snapshot(&self) -> u64 {
        // Acquire: pairs with `set`, so an operation that sees an event's bits
        // also sees what the kernel made ready before it.
        self.word.load(Ordering::Acquire)
    }

    /// Clears `mask` after an operation found the source not ready, unless an
    /// event came in since `snapshot` was taken.
    pub(crate) fn clear(&self, snapshot: u64, mask: u64) {
        let _ = self.word.compare_exchange(
            snapshot,
            snapshot & !mask,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }

    /// An event: sets `bits` and bumps the generation.
    pub(crate) fn set(&self, bits: u64) {
        let _ = self
            .word
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| {
                Some((w & !BITS).wrapping_add(GENERATION) | (w & BITS) | bits)
            });
    }
}
