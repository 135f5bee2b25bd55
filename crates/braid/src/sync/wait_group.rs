//! `WaitGroup`: waiting for a count of pieces of work to reach zero.

use super::monitor::{cancelled, cancelled_only, Monitor};
use super::waiter::WaitList;
use crate::error::Cancelled;
use std::fmt;
use std::sync::Arc;

struct Count {
    pending: usize,
    waiting: WaitList,
}

/// Waits for a set of tasks to finish, like Go's `sync.WaitGroup`: `add` before
/// starting work, `done` when a piece finishes, `wait` until the count is 0.
/// Clones share the same count.
#[derive(Clone)]
pub struct WaitGroup {
    state: Arc<Monitor<Count>>,
}

impl Default for WaitGroup {
    fn default() -> WaitGroup {
        WaitGroup::new()
    }
}

impl WaitGroup {
    /// A wait group with a count of 0.
    pub fn new() -> WaitGroup {
        WaitGroup {
            state: Arc::new(Monitor::new(Count {
                pending: 0,
                waiting: WaitList::default(),
            })),
        }
    }

    /// Adds `n` to the count.
    pub fn add(&self, n: usize) {
        self.state.with(|s, _| s.pending += n);
    }

    /// Takes 1 from the count, releasing the waiters when it reaches 0.
    ///
    /// # Panics
    /// If the count is already 0 (more `done`s than `add`s): a bug in the
    /// caller, reported where it happens rather than hiding a miscount.
    pub fn done(&self) {
        self.state.with(|s, wakes| {
            s.pending = s
                .pending
                .checked_sub(1)
                .expect("WaitGroup::done called more times than add");
            if s.pending == 0 {
                s.waiting.claim_all(wakes);
            }
        });
    }

    /// Blocks the strand until the count is 0.
    pub fn wait(&self) -> Result<(), Cancelled> {
        self.state
            .wait_until(
                None,
                |s, _, waker| {
                    if s.pending == 0 {
                        return Some(Ok(()));
                    }
                    if cancelled() {
                        return Some(Err(Cancelled));
                    }
                    s.waiting.push(waker());
                    None
                },
                |s, _, waker| s.waiting.remove(waker),
            )
            .map_err(cancelled_only)?
    }

    /// The count now.
    pub fn count(&self) -> usize {
        self.state.with(|s, _| s.pending)
    }
}

impl fmt::Debug for WaitGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WaitGroup {{ count: {} }}", self.count())
    }
}
