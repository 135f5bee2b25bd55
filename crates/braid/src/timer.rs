//! A core's timers: strands sleeping until a deadline.

use crate::strand::Header;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

/// Names one armed timer, to cancel it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct TimerId {
    deadline: Instant,
    seq: u64,
}

/// Deadlines of sleeping strands on one core, earliest first. A fired timer
/// unparks its strand. A wait that ends early cancels its timer (so a loop of
/// long timed waits that succeed at once does not pile timers up); a timer that
/// cannot be cancelled (its strand moved to another core) fires later as a
/// harmless spurious wake (see `strand`).
#[derive(Default)]
pub(crate) struct TimerHeap {
    timers: BTreeMap<TimerId, Arc<Header>>,
    seq: u64,
}

impl TimerHeap {
    pub(crate) fn insert(&mut self, deadline: Instant, header: Arc<Header>) -> TimerId {
        self.seq += 1;
        let id = TimerId {
            deadline,
            seq: self.seq,
        };
        self.timers.insert(id, header);
        id
    }

    /// Removes a timer that has not fired. Returns whether it was there.
    pub(crate) fn cancel(&mut self, id: TimerId) -> bool {
        self.timers.remove(&id).is_some()
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.timers.is_empty()
    }

    /// Timers armed and not yet fired or cancelled.
    pub(crate) fn len(&self) -> usize {
        self.timers.len()
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.timers.first_key_value().map(|(id, _)| id.deadline)
    }

    /// Removes and returns the strands whose deadline is at or before `now`.
    pub(crate) fn expire(&mut self, now: Instant, fired: &mut Vec<Arc<Header>>) {
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().deadline > now {
                break;
            }
            fired.push(entry.remove());
        }
    }

    /// Drops every entry (at shutdown).
    pub(crate) fn clear(&mut self) {
        self.timers.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn cancelled_timers_are_gone_and_the_rest_fire_in_order() {
        // Headers are only carried, never read: any header will do.
        let mut ids = Vec::new();
        let mut heap = TimerHeap::default();
        let now = Instant::now();
        let header = crate::strand::test_header();
        for i in 0..10u64 {
            ids.push(heap.insert(now + Duration::from_millis(10 - i), header.clone()));
        }
        assert_eq!(heap.len(), 10);
        for id in &ids[..5] {
            assert!(heap.cancel(*id));
        }
        assert!(!heap.cancel(ids[0]), "a timer is cancelled once");
        assert_eq!(heap.len(), 5);
        assert_eq!(heap.next_deadline(), Some(now + Duration::from_millis(1)));
        let mut fired = Vec::new();
        heap.expire(now + Duration::from_millis(3), &mut fired);
        assert_eq!(fired.len(), 3);
        assert_eq!(heap.len(), 2);
    }
}
