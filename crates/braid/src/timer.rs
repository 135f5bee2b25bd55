//! A core's timers: strands sleeping until a deadline.

use crate::strand::Header;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::Instant;

struct Entry {
    deadline: Instant,
    seq: u64,
    header: Arc<Header>,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.deadline, self.seq) == (other.deadline, other.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.deadline, self.seq).cmp(&(other.deadline, other.seq))
    }
}

/// Deadlines of sleeping strands on one core, earliest first. A fired timer unparks
/// its strand; a strand that woke for another reason leaves its entry behind, and
/// the later unpark is a harmless spurious wake (see `strand`).
#[derive(Default)]
pub(crate) struct TimerHeap {
    heap: BinaryHeap<Reverse<Entry>>,
    seq: u64,
}

impl TimerHeap {
    pub(crate) fn insert(&mut self, deadline: Instant, header: Arc<Header>) {
        self.seq += 1;
        self.heap.push(Reverse(Entry {
            deadline,
            seq: self.seq,
            header,
        }));
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|e| e.0.deadline)
    }

    /// Removes and returns the strands whose deadline is at or before `now`.
    pub(crate) fn expire(&mut self, now: Instant, fired: &mut Vec<Arc<Header>>) {
        while let Some(top) = self.heap.peek() {
            if top.0.deadline > now {
                break;
            }
            let Reverse(entry) = self.heap.pop().expect("peeked");
            fired.push(entry.header);
        }
    }

    /// Drops every entry (at shutdown).
    pub(crate) fn clear(&mut self) {
        self.heap.clear();
    }
}
