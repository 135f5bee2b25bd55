//! A core's timers: deadlines on the caller's clock, earliest first.

use crate::policy::Nanos;
use std::collections::BTreeMap;

/// Names one armed timer, to cancel it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimerId {
    deadline: Nanos,
    seq: u64,
}

impl TimerId {
    /// When the timer fires.
    pub fn deadline(&self) -> Nanos {
        self.deadline
    }
}

/// Armed timers, each carrying a `W` (what to wake when it fires). Timers with
/// the same deadline fire in the order they were armed.
#[derive(Clone, Debug, Hash)]
pub struct Timers<W> {
    armed: BTreeMap<TimerId, W>,
    seq: u64,
}

impl<W> Default for Timers<W> {
    fn default() -> Self {
        Timers {
            armed: BTreeMap::new(),
            seq: 0,
        }
    }
}

impl<W> Timers<W> {
    /// Arms a timer for `deadline`.
    pub fn insert(&mut self, deadline: Nanos, what: W) -> TimerId {
        self.seq += 1;
        let id = TimerId {
            deadline,
            seq: self.seq,
        };
        self.armed.insert(id, what);
        id
    }

    /// Disarms a timer that has not fired; returns what it carried.
    pub fn cancel(&mut self, id: TimerId) -> Option<W> {
        self.armed.remove(&id)
    }

    /// Whether no timer is armed.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.armed.is_empty()
    }

    /// Timers armed and not yet fired or cancelled.
    pub fn len(&self) -> usize {
        self.armed.len()
    }

    /// The earliest deadline.
    pub fn next_deadline(&self) -> Option<Nanos> {
        self.armed.first_key_value().map(|(id, _)| id.deadline)
    }

    /// Moves what the timers due at `now` carry into `fired`, earliest first.
    pub fn expire(&mut self, now: Nanos, fired: &mut Vec<W>) {
        while let Some(entry) = self.armed.first_entry() {
            if entry.key().deadline > now {
                break;
            }
            fired.push(entry.remove());
        }
    }

    /// Disarms everything (at shutdown).
    pub fn clear(&mut self) {
        self.armed.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancelled_timers_are_gone_and_the_rest_fire_in_order() {
        let mut timers = Timers::default();
        let ids: Vec<_> = (0..10u64).map(|i| timers.insert(100 - i, i)).collect();
        for id in &ids[..5] {
            assert!(timers.cancel(*id).is_some());
        }
        assert!(timers.cancel(ids[0]).is_none(), "a timer is cancelled once");
        assert_eq!(timers.len(), 5);
        assert_eq!(timers.next_deadline(), Some(91));
        let mut fired = Vec::new();
        timers.expire(93, &mut fired);
        assert_eq!(fired, vec![9, 8, 7]);
        timers.insert(50, 42);
        timers.insert(50, 43);
        timers.expire(1_000, &mut fired);
        assert_eq!(fired, vec![9, 8, 7, 42, 43, 6, 5]);
        assert!(timers.is_empty());
    }
}
