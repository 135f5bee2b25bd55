//! Share groups in the runtime: braid-core's rules (`braid_core::share`)
//! over a sum every core updates.
//!
//! A member's entry to and exit from its core's set is one atomic add or
//! subtract on its group's sum (and on its parent group's when the group's
//! first or last runnable member comes or goes), and its weight is read
//! from the sums each time it enters the ready strands. Strands outside
//! share groups pay one null check at each of those points.

use crate::error::SpawnError;
use crate::facade::{AtomicU64, Ordering};
use braid_core::share::{Counter, Share, ShareError, MAX_DEPTH};
use std::sync::Arc;

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
        self.0.fetch_sub(n, Ordering::Relaxed).wrapping_sub(n)
    }
    #[inline]
    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A new share group of weight `weight` inside `parent`'s, if any, for
/// `Builder::group_weight`.
#[cold]
pub(crate) fn start(
    weight: u32,
    parent: Option<&Arc<ShareCell>>,
) -> Result<Arc<ShareCell>, SpawnError> {
    match Share::new(weight, parent.cloned()) {
        Ok(share) => Ok(Arc::new(share)),
        Err(ShareError::Weight(w)) => Err(SpawnError::config(crate::ConfigError::new(
            "group_weight",
            w,
            format!(
                "{}..={}",
                braid_core::fair::WEIGHTS.start(),
                braid_core::fair::WEIGHTS.end()
            ),
        ))),
        Err(ShareError::TooDeep) => Err(SpawnError::config(crate::ConfigError::new(
            "group_weight",
            format!("a share group {} deep", MAX_DEPTH + 1),
            format!("share groups nested at most {MAX_DEPTH} deep"),
        ))),
    }
}
