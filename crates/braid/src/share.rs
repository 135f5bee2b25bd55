//! Share groups in the runtime: braid-core's rules (`braid_core::share`)
//! over a sum every core updates.
//!
//! A member's entry to and exit from its core's set is one atomic add or
//! subtract on its group's sum (and on its parent group's when the group's
//! first or last runnable member comes or goes), and its weight is read
//! from the sums each time it enters the ready strands. Strands outside
//! share groups pay one null check at each of those points.
//!
//! `tests/share_loom.rs` model-checks the sums under concurrent entries and
//! exits (this file compiled against loom's atomics).

use crate::facade::{AtomicU64, Ordering};
use braid_core::share::{Counter, Share};

/// A share group as the runtime keeps it.
pub(crate) type ShareCell = Share<Runnable>;

/// A share group's runnable sum. Relaxed: a member's weight is a hint read
/// afresh at every entry, and nothing else is published through it.
#[derive(Debug, Default)]
pub(crate) struct Runnable(AtomicU64);

impl Counter for Runnable {
    #[inline]
    fn add(&self, n: u64) -> u64 {
        self.0.fetch_add(n, Ordering::Relaxed)
    }
    #[inline]
    fn sub(&self, n: u64) -> u64 {
        let before = self.0.fetch_sub(n, Ordering::Relaxed);
        // A member leaves only after its own entry (its core's set is one
        // thread's), so a sum never goes below zero.
        debug_assert!(before >= n, "a share group's sum went below zero");
        before.wrapping_sub(n)
    }
    #[inline]
    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}
