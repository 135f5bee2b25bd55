//! Who waits, and one wait resolved exactly once: the vocabulary of every
//! blocking primitive (join, groups, events, channels, locks).
//!
//! - [`Waiter`]: who waits — a strand, or a thread outside the runtime — and
//!   how to make it run again. Waits with their own exactly-once protocol (a
//!   join packet, a group's last exit) keep just this.
//! - [`Waker`]: the right to resolve one wait of a waiter, for primitives where
//!   several parties may race to end it (below).
//! - `event::local::EventWaiter`: an event's waiter, a [`Waker`] or a core's
//!   scheduler closures.
//!
//! A waiter — a strand, or a thread outside the runtime — has a **wait word**:
//! the generation of its current wait above two state bits. Starting a wait
//! ([`Waiting::begin`]) moves to a fresh generation in state `WAITING` and hands
//! out a [`Waker`] naming that generation. The wait is then resolved once, by
//! whichever compare-and-swap comes first:
//! - a waker's [`claim`](Waker::claim): `WAITING -> SIGNALLED` (the waker then
//!   unparks the waiter);
//! - the waiter giving up (timeout, cancellation): `WAITING -> ABANDONED`.
//!
//! A waker whose claim fails — the waiter gave up, or the waker belongs to an
//! older wait — wakes nobody, and the primitive passes what it had to offer to
//! the next waiter. One wait may hand out several wakers (a select registers one
//! in each channel): the first claim wins, the others fail.

use crate::context;
use crate::facade::AtomicU64;
use crate::strand::{self, Header};
use braid_core::sched::TimerId;
use std::sync::Arc;
use std::time::Instant;

use super::wait_word::{self, ABANDONED, SIGNALLED};

/// The wait word of a thread outside the runtime.
#[derive(Debug)]
pub(crate) struct ThreadWord {
    word: AtomicU64,
    thread: std::thread::Thread,
}

thread_local! {
    static THREAD_WORD: Arc<ThreadWord> = Arc::new(ThreadWord {
        word: AtomicU64::new(0),
        thread: std::thread::current(),
    });
}

/// Who waits: a strand, or a thread outside the runtime.
#[derive(Clone, Debug)]
pub(crate) enum Waiter {
    /// A strand: woken through its park word.
    Strand(Arc<Header>),
    /// A thread: woken with `Thread::unpark`.
    Thread(Arc<ThreadWord>),
}

impl Waiter {
    /// The calling strand, else the calling thread.
    pub(crate) fn current() -> Waiter {
        match context::current_header() {
            Some(h) => Waiter::Strand(h),
            None => Waiter::Thread(THREAD_WORD.with(Arc::clone)),
        }
    }

    /// Makes the waiter run again (a spurious wake if it is not waiting).
    pub(crate) fn wake(&self) {
        match self {
            Waiter::Strand(h) => strand::unpark(h),
            Waiter::Thread(t) => t.thread.unpark(),
        }
    }

    fn word(&self) -> &AtomicU64 {
        match self {
            Waiter::Strand(h) => &h.wait,
            Waiter::Thread(t) => &t.word,
        }
    }
}

/// The right to resolve one wait as signalled.
#[derive(Clone, Debug)]
pub(crate) struct Waker {
    target: Waiter,
    generation: u64,
}

impl Waker {
    /// Resolves the wait as signalled. True if this call did it (the caller
    /// must then [`wake`](Self::wake) the waiter); false if the wait was
    /// already resolved (given up, or claimed by another waker).
    pub(crate) fn claim(&self) -> bool {
        resolve(self.target.word(), self.generation, SIGNALLED)
    }

    /// Makes the waiter run again after a successful claim.
    pub(crate) fn wake(&self) {
        self.target.wake();
    }

    /// The strand waiting, if the waiter is a strand.
    pub(crate) fn strand(&self) -> Option<&Arc<Header>> {
        match &self.target {
            Waiter::Strand(h) => Some(h),
            Waiter::Thread(_) => None,
        }
    }

    /// Whether this waker and `other` belong to the same wait.
    pub(crate) fn same_wait(&self, other: &Waker) -> bool {
        self.generation == other.generation && std::ptr::eq(self.target.word(), other.target.word())
    }
}

fn resolve(word: &AtomicU64, generation: u64, to: u64) -> bool {
    wait_word::resolve(word, generation, to)
}

/// How a wait ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A waker claimed it.
    Signalled,
    /// The deadline passed first.
    TimedOut,
    /// The waiting strand's group was cancelled first.
    Cancelled,
}

/// The waiting side of one wait.
pub(crate) struct Waiting {
    target: Waiter,
    generation: u64,
}

impl Waiting {
    /// Starts a new wait of the calling strand (or thread).
    pub(crate) fn begin() -> Waiting {
        crate::event::forbid_blocking_in_closure("a sync primitive");
        let target = Waiter::current();
        let generation = wait_word::begin(target.word());
        Waiting { target, generation }
    }

    /// A waker for this wait (as many as needed).
    pub(crate) fn waker(&self) -> Waker {
        Waker {
            target: self.target.clone(),
            generation: self.generation,
        }
    }

    /// Whether a waker claimed this wait.
    pub(crate) fn is_signalled(&self) -> bool {
        wait_word::is_signalled(self.target.word(), self.generation)
    }

    /// Gives the wait up. False if a waker claimed it first (the wait then
    /// counts as signalled).
    pub(crate) fn abandon(&self) -> bool {
        resolve(self.target.word(), self.generation, ABANDONED)
    }

    /// Blocks until a waker claims the wait, `deadline` passes, or the strand's
    /// group is cancelled. Timeouts and cancellation resolve the wait as given
    /// up (so a racing waker fails and passes its offer on); if a waker won that
    /// race the outcome is `Signalled`.
    pub(crate) fn block(&self, deadline: Option<Instant>) -> Outcome {
        match &self.target {
            Waiter::Strand(me) => {
                let timer = deadline.map(|d| arm_timer(me, d));
                let outcome = loop {
                    if self.is_signalled() {
                        break Outcome::Signalled;
                    }
                    let give_up = if me.is_cancelled() {
                        Outcome::Cancelled
                    } else if deadline.is_some_and(|d| Instant::now() >= d) {
                        Outcome::TimedOut
                    } else {
                        strand::park_current();
                        continue;
                    };
                    break if self.abandon() {
                        give_up
                    } else {
                        Outcome::Signalled
                    };
                };
                if let Some((core, id)) = timer {
                    if outcome != Outcome::TimedOut {
                        disarm_timer(core, id);
                    }
                }
                outcome
            }
            Waiter::Thread(_) => loop {
                if self.is_signalled() {
                    return Outcome::Signalled;
                }
                match deadline {
                    Some(d) => {
                        let now = Instant::now();
                        if now >= d {
                            return if self.abandon() {
                                Outcome::TimedOut
                            } else {
                                Outcome::Signalled
                            };
                        }
                        std::thread::park_timeout(d - now);
                    }
                    None => std::thread::park(),
                }
            },
        }
    }
}

/// Makes the strand `me` (the caller) runnable again at `deadline`. Returns
/// the core and id of the timer.
fn arm_timer(me: &Arc<Header>, deadline: Instant) -> (usize, TimerId) {
    context::with_core(|local| (local.core, local.arm_timer(deadline, me.clone())))
        .expect("timers are armed by strands, which always have a core")
}

/// Cancels a timer of the calling strand that is no longer needed, if the
/// strand still runs on the core that armed it (otherwise it fires later as a
/// spurious wake, which every wait loop tolerates).
fn disarm_timer(core: usize, id: TimerId) {
    context::with_core(|local| {
        if local.core == core {
            local.disarm_timer(id);
        }
    });
}

/// Waiters of one object, in arrival order, kept under the object's own lock.
#[derive(Debug, Default)]
pub(crate) struct WaitList {
    queue: std::collections::VecDeque<Waker>,
}

impl WaitList {
    pub(crate) fn push(&mut self, waker: Waker) {
        self.queue.push_back(waker);
    }

    /// Claims the first waiter still waiting and puts it in `wakes` (to be
    /// woken once the object's lock is released). Returns whether one was found.
    pub(crate) fn claim_one(&mut self, wakes: &mut Wakes) -> bool {
        while let Some(waker) = self.queue.pop_front() {
            if waker.claim() {
                wakes.push(waker);
                return true;
            }
        }
        false
    }

    /// Claims every waiter still waiting into `wakes`.
    pub(crate) fn claim_all(&mut self, wakes: &mut Wakes) {
        for waker in self.queue.drain(..) {
            if waker.claim() {
                wakes.push(waker);
            }
        }
    }

    /// Claims into `wakes` every waiter still waiting for which `pick` holds;
    /// the others stay queued.
    pub(crate) fn claim_where(&mut self, mut pick: impl FnMut(&Waker) -> bool, wakes: &mut Wakes) {
        self.queue.retain(|waker| {
            if !pick(waker) {
                return true;
            }
            if waker.claim() {
                wakes.push(waker.clone());
            }
            false
        });
    }

    /// Removes the entries of the wait `waker` belongs to.
    pub(crate) fn remove(&mut self, waker: &Waker) {
        self.queue.retain(|w| !w.same_wait(waker));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

/// Waiters claimed while an object's lock was held, to wake once it is
/// released. Holds one without allocating (the usual case).
#[derive(Default)]
pub(crate) struct Wakes {
    first: Option<Waker>,
    rest: Vec<Waker>,
}

impl Wakes {
    pub(crate) fn push(&mut self, waker: Waker) {
        if self.first.is_none() {
            self.first = Some(waker);
        } else {
            self.rest.push(waker);
        }
    }

    /// Wakes them all.
    pub(crate) fn wake(self) {
        if let Some(w) = self.first {
            w.wake();
        }
        // Usually empty: skip building and dropping an iterator then.
        if !self.rest.is_empty() {
            for w in self.rest {
                w.wake();
            }
        }
    }
}
