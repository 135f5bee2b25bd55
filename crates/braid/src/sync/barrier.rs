//! `Barrier`: a reusable rendezvous of a fixed number of strands.

use super::monitor::{cancelled_only, Monitor};
use super::waiter::WaitList;
use crate::error::Cancelled;
use std::fmt;

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
        crate::event::forbid_blocking_in_closure("Barrier::wait");
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
