//! The blocked table: strands parked on one core, each in a numbered slot.
//!
//! The slot is what a wake names once it reaches the core (the runtime keeps
//! it in the strand's header, the simulator in its strand record). Freed
//! slots are reused, newest first, so the table stays as large as the most
//! strands ever parked at once.

/// Index of a slot in a [`Blocked`] table.
pub type Slot = u32;

/// Parked strands of one core.
#[derive(Clone, Debug, Hash)]
pub struct Blocked<T> {
    slots: Vec<Option<T>>,
    free: Vec<Slot>,
    filed: usize,
}

impl<T> Default for Blocked<T> {
    fn default() -> Self {
        Blocked {
            slots: Vec::new(),
            free: Vec::new(),
            filed: 0,
        }
    }
}

impl<T> Blocked<T> {
    /// Files `task`; returns its slot.
    #[inline]
    pub fn file(&mut self, task: T) -> Slot {
        self.filed += 1;
        match self.free.pop() {
            Some(slot) => {
                debug_assert!(self.slots[slot as usize].is_none());
                self.slots[slot as usize] = Some(task);
                slot
            }
            None => {
                self.slots.push(Some(task));
                (self.slots.len() - 1) as Slot
            }
        }
    }

    /// The slot the next [`Blocked::file`] will use.
    #[inline]
    pub fn next_slot(&self) -> Slot {
        match self.free.last() {
            Some(&slot) => slot,
            None => self.slots.len() as Slot,
        }
    }

    /// Takes the strand filed in `slot`, if any.
    #[inline]
    pub fn take(&mut self, slot: Slot) -> Option<T> {
        let task = self.slots.get_mut(slot as usize)?.take()?;
        self.free.push(slot);
        self.filed -= 1;
        Some(task)
    }

    /// The strand filed in `slot`, if any.
    pub fn get(&self, slot: Slot) -> Option<&T> {
        self.slots.get(slot as usize)?.as_ref()
    }

    /// Strands filed.
    #[inline]
    pub fn len(&self) -> usize {
        self.filed
    }

    /// Whether no strand is filed.
    pub fn is_empty(&self) -> bool {
        self.filed == 0
    }

    /// Every filed strand, with its slot.
    pub fn iter(&self) -> impl Iterator<Item = (Slot, &T)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(slot, t)| t.as_ref().map(|t| (slot as Slot, t)))
    }

    /// Takes every filed strand out (at shutdown).
    pub fn drain(&mut self) -> Vec<T> {
        self.free.clear();
        self.filed = 0;
        self.slots.drain(..).flatten().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_reused_and_counted() {
        let mut b = Blocked::default();
        assert_eq!(b.next_slot(), 0);
        let s1 = b.file("a");
        let s2 = b.file("b");
        assert_ne!(s1, s2);
        assert_eq!(b.len(), 2);
        assert_eq!(b.take(s1), Some("a"));
        assert_eq!(b.take(s1), None, "a slot is emptied once");
        assert_eq!(b.take(99), None);
        assert_eq!(b.next_slot(), s1);
        assert_eq!(b.file("c"), s1, "the freed slot is reused");
        assert_eq!(b.get(s1), Some(&"c"));
        assert_eq!(b.iter().count(), 2);
        let mut all = b.drain();
        all.sort_unstable();
        assert_eq!(all, vec!["b", "c"]);
        assert!(b.is_empty());
    }
}
