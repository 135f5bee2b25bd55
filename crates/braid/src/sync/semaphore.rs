//! `Semaphore`: counting permits that block the strand, not the thread.

use super::monitor::{cancelled, cancelled_only, GaveUp, Monitor};
use super::waiter::WaitList;
use crate::error::Cancelled;
use std::fmt;
use std::time::{Duration, Instant};

struct Permits {
    available: usize,
    waiting: WaitList,
}

/// A counting semaphore for strands. `acquire` takes one permit, blocking the
/// strand while none is left; the permit returns when its guard is dropped.
pub struct Semaphore {
    state: Monitor<Permits>,
}

/// One permit of a [`Semaphore`]; returned when dropped.
pub struct SemaphorePermit<'a> {
    sem: &'a Semaphore,
}

impl Semaphore {
    /// A semaphore with `permits` permits.
    pub fn new(permits: usize) -> Semaphore {
        Semaphore {
            state: Monitor::new(Permits {
                available: permits,
                waiting: WaitList::default(),
            }),
        }
    }

    fn acquire_until(&self, deadline: Option<Instant>) -> Result<(), GaveUp> {
        self.state.wait_until(
            deadline,
            |s, _, waker| {
                if s.available > 0 {
                    s.available -= 1;
                    return Some(Ok(()));
                }
                if cancelled() {
                    return Some(Err(GaveUp::Cancelled));
                }
                s.waiting.push(waker());
                None
            },
            |s, wakes, waker| {
                s.waiting.remove(waker);
                if s.available > 0 {
                    s.waiting.claim_one(wakes);
                }
            },
        )?
    }

    /// Takes a permit, blocking the strand while none is available.
    pub fn acquire(&self) -> Result<SemaphorePermit<'_>, Cancelled> {
        self.acquire_until(None).map_err(cancelled_only)?;
        Ok(SemaphorePermit { sem: self })
    }

    /// As [`acquire`](Self::acquire), giving up (`Ok(None)`) after `timeout`.
    pub fn acquire_timeout(
        &self,
        timeout: Duration,
    ) -> Result<Option<SemaphorePermit<'_>>, Cancelled> {
        match self.acquire_until(Some(Instant::now() + timeout)) {
            Ok(()) => Ok(Some(SemaphorePermit { sem: self })),
            Err(GaveUp::TimedOut) => Ok(None),
            Err(GaveUp::Cancelled) => Err(Cancelled),
        }
    }

    /// Takes a permit if one is available now.
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        self.state
            .with(|s, _| {
                let got = s.available > 0;
                if got {
                    s.available -= 1;
                }
                got
            })
            .then(|| SemaphorePermit { sem: self })
    }

    /// Adds `n` permits.
    pub fn add_permits(&self, n: usize) {
        self.state.with(|s, wakes| {
            s.available += n;
            for _ in 0..n {
                if !s.waiting.claim_one(wakes) {
                    break;
                }
            }
        });
    }

    /// Permits available now.
    pub fn available(&self) -> usize {
        self.state.with(|s, _| s.available)
    }
}

impl SemaphorePermit<'_> {
    /// Keeps the permit taken for good (it is not returned on drop).
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        self.sem.add_permits(1);
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Semaphore {{ available: {} }}", self.available())
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SemaphorePermit")
    }
}
