//! State behind one small lock, with blocking until an attempt succeeds: the
//! shared skeleton of the primitives in this module.

use super::waiter::{Outcome, Waiting, Waker, Wakes};
use crate::error::Cancelled;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

/// Why a blocking attempt gave up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GaveUp {
    TimedOut,
    Cancelled,
}

/// The error of a wait that had no deadline, so only cancellation could end it
/// early (used by the semaphore, the barrier, the wait group and the once cell).
pub(crate) fn cancelled_only(g: GaveUp) -> Cancelled {
    match g {
        GaveUp::Cancelled => Cancelled,
        GaveUp::TimedOut => unreachable!("waited without a deadline"),
    }
}

pub(crate) struct Monitor<S> {
    state: Mutex<S>,
}

impl<S> Monitor<S> {
    pub(crate) fn new(state: S) -> Monitor<S> {
        Monitor {
            state: Mutex::new(state),
        }
    }

    fn lock(&self) -> MutexGuard<'_, S> {
        // A panic while the lock is held can only come from user code run by
        // `with` (e.g. a Drop impl); the state itself stays consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the state; the waiters it claims into its vector are woken
    /// after the lock is released.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut S, &mut Wakes) -> R) -> R {
        let mut wakes = Wakes::default();
        let result = f(&mut self.lock(), &mut wakes);
        wakes.wake();
        result
    }

    /// Calls `attempt` under the lock until it returns `Some`. When it returns
    /// `None` it must have queued a waker — made by calling the `waker`
    /// function it is given, which starts the wait only when one is needed —
    /// where the state's changes will claim it. The caller then blocks until
    /// claimed, `deadline`, or cancellation. On giving up, `withdraw` removes
    /// the waker again (and may pass on to another waiter what this one was
    /// offered).
    pub(crate) fn wait_until<R>(
        &self,
        deadline: Option<Instant>,
        mut attempt: impl FnMut(&mut S, &mut Wakes, &mut dyn FnMut() -> Waker) -> Option<R>,
        mut withdraw: impl FnMut(&mut S, &mut Wakes, &Waker),
    ) -> Result<R, GaveUp> {
        // Nothing is registered or locked yet: an unwind point of a
        // runtime's shutdown (see `Header::cancel_point`).
        crate::strand::unwind_if_doomed();
        loop {
            let mut waiting: Option<Waiting> = None;
            let mut waker = || waiting.get_or_insert_with(Waiting::begin).waker();
            if let Some(result) = self.with(|s, wakes| attempt(s, wakes, &mut waker)) {
                return Ok(result);
            }
            let waiting = waiting.expect("a blocking attempt queued a waker");
            let gave_up = match waiting.block(deadline) {
                Outcome::Signalled => continue,
                Outcome::TimedOut => GaveUp::TimedOut,
                Outcome::Cancelled => GaveUp::Cancelled,
            };
            self.with(|s, wakes| withdraw(s, wakes, &waiting.waker()));
            if gave_up == GaveUp::Cancelled {
                // Withdrawn: another unwind point.
                crate::strand::unwind_if_doomed();
            }
            return Err(gave_up);
        }
    }
}

/// Whether the caller is a strand whose group was cancelled: blocking calls then
/// fail at once.
pub(crate) fn cancelled() -> bool {
    crate::api::is_cancelled()
}
