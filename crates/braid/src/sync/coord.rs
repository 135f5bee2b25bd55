//! Coordination: `Semaphore`, `Barrier`, `WaitGroup`, `OnceCell`.

use super::monitor::{cancelled, GaveUp, Monitor};
use super::waiter::WaitList;
use crate::error::Cancelled;
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

fn cancelled_only(g: GaveUp) -> Cancelled {
    match g {
        GaveUp::Cancelled => Cancelled,
        GaveUp::TimedOut => unreachable!("waited without a deadline"),
    }
}

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

struct Phase {
    parties: usize,
    arrived: usize,
    generation: u64,
    waiting: WaitList,
}

/// Lets `n` strands wait until all of them have arrived, then releases them
/// together; reusable for the next round.
pub struct Barrier {
    state: Monitor<Phase>,
}

/// What [`Barrier::wait`] returns: exactly one strand per round is the leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BarrierWaitResult {
    leader: bool,
}

impl BarrierWaitResult {
    /// Whether this strand was the last to arrive (one per round).
    pub fn is_leader(&self) -> bool {
        self.leader
    }
}

impl Barrier {
    /// A barrier for `parties` strands (0 is treated as 1).
    pub fn new(parties: usize) -> Barrier {
        Barrier {
            state: Monitor::new(Phase {
                parties: parties.max(1),
                arrived: 0,
                generation: 0,
                waiting: WaitList::default(),
            }),
        }
    }

    /// Arrives and blocks the strand until every party of this round has. A
    /// strand whose group is cancelled while waiting leaves the round (it no
    /// longer counts as arrived) and gets `Err(Cancelled)`.
    pub fn wait(&self) -> Result<BarrierWaitResult, Cancelled> {
        // Arriving changes the round's count before the wait could be refused.
        crate::core::events::forbid_blocking_in_closure("Barrier::wait");
        let round = std::cell::Cell::new(None);
        // Set when this party gave up only after its round had completed: it
        // was counted, so it is released with the others.
        let completed = std::cell::Cell::new(false);
        let result = self
            .state
            .wait_until(
                None,
                |s, wakes, waker| {
                    let gen = match round.get() {
                        Some(gen) => gen,
                        None => {
                            s.arrived += 1;
                            round.set(Some(s.generation));
                            s.generation
                        }
                    };
                    if s.generation != gen {
                        return Some(BarrierWaitResult { leader: false });
                    }
                    if s.arrived == s.parties {
                        s.arrived = 0;
                        s.generation += 1;
                        s.waiting.claim_all(wakes);
                        return Some(BarrierWaitResult { leader: true });
                    }
                    s.waiting.push(waker());
                    None
                },
                |s, _, waker| {
                    s.waiting.remove(waker);
                    if round.get() == Some(s.generation) {
                        s.arrived -= 1;
                    } else {
                        completed.set(true);
                    }
                },
            )
            .map_err(cancelled_only);
        match result {
            Err(Cancelled) if completed.get() => Ok(BarrierWaitResult { leader: false }),
            other => other,
        }
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Barrier { .. }")
    }
}

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

struct Init {
    running: bool,
    waiting: WaitList,
}

/// A value set once, with strands that need it before it is set blocking until
/// it is (not spinning, not blocking their threads).
pub struct OnceCell<T> {
    value: OnceLock<T>,
    init: Monitor<Init>,
}

impl<T> Default for OnceCell<T> {
    fn default() -> OnceCell<T> {
        OnceCell::new()
    }
}

impl<T> OnceCell<T> {
    /// An empty cell.
    pub fn new() -> OnceCell<T> {
        OnceCell {
            value: OnceLock::new(),
            init: Monitor::new(Init {
                running: false,
                waiting: WaitList::default(),
            }),
        }
    }

    /// The value, if set.
    pub fn get(&self) -> Option<&T> {
        self.value.get()
    }

    /// Sets the value if it is not set yet (and no initializer is running);
    /// otherwise hands `value` back.
    pub fn set(&self, value: T) -> Result<(), T> {
        let mut value = Some(value);
        self.init.with(|s, wakes| {
            if s.running {
                return;
            }
            match self.value.set(value.take().expect("set once")) {
                Ok(()) => s.waiting.claim_all(wakes),
                Err(v) => value = Some(v),
            }
        });
        value.map_or(Ok(()), Err)
    }

    /// The value, running `init` to make it if nobody has. Concurrent callers
    /// block (as strands) until the one running `init` is done; if it panics,
    /// the next caller runs its own `init`.
    pub fn get_or_init(&self, init: impl FnOnce() -> T) -> Result<&T, Cancelled> {
        if let Some(v) = self.value.get() {
            return Ok(v);
        }
        let mine = self
            .init
            .wait_until(
                None,
                |s, _, waker| {
                    if self.value.get().is_some() {
                        return Some(Ok(false));
                    }
                    if !s.running {
                        s.running = true;
                        return Some(Ok(true));
                    }
                    if cancelled() {
                        return Some(Err(Cancelled));
                    }
                    s.waiting.push(waker());
                    None
                },
                |s, _, waker| s.waiting.remove(waker),
            )
            .map_err(cancelled_only)??;
        if !mine {
            return Ok(self.value.get().expect("set before the waiters were woken"));
        }
        // `init` runs without the lock; the guard lets the next caller try if it
        // panics.
        struct Running<'a, T>(&'a OnceCell<T>);
        impl<T> Drop for Running<'_, T> {
            fn drop(&mut self) {
                self.0.init.with(|s, wakes| {
                    s.running = false;
                    if self.0.value.get().is_some() {
                        s.waiting.claim_all(wakes);
                    } else {
                        s.waiting.claim_one(wakes);
                    }
                });
            }
        }
        let guard = Running(self);
        let _ = self.value.set(init());
        drop(guard);
        Ok(self.value.get().expect("just set"))
    }
}

impl<T: fmt::Debug> fmt::Debug for OnceCell<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("OnceCell").field(&self.value.get()).finish()
    }
}
