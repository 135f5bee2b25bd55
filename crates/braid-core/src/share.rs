//! Share groups: strands that split one weight between them.
//!
//! A strand's [weight](crate::SchedParams::weight) is its own: ten strands
//! of weight 1 024 weigh ten times one. A *share group* gives a whole set of
//! strands one weight `W`, however many of them there are: its members split
//! `W` in proportion to their own weights, among those that are runnable
//! (ready or running, on any core) — as a Linux `cpu` cgroup splits its
//! shares. A member of weight `w` weighs
//!
//! ```text
//!     w · W / Σ (own weights of the group's runnable members)
//! ```
//!
//! on its core, so the group's members together weigh `W` summed over the
//! cores, whether it has one strand or a thousand and wherever they sit.
//! A group inside a group is one member of the outer one, of its weight
//! `W`, while any of its strands is runnable; the factors multiply down
//! the chain.
//!
//! The sums are shared between cores, so they are kept by the driver: a
//! [`Counter`] is an atomic in the runtime and a plain cell in the
//! simulator. This module holds the rules — when a group counts in its
//! parent, what a member weighs — and calls the counter for the effects.
//! A fair policy asks a member for its weight each time it enters the ready
//! strands ([`Schedulable::weight_now`](crate::Schedulable::weight_now)) and
//! re-weighs it there, so a change reaches a CPU-bound member within one
//! slice and a sleeping one when it wakes.

use crate::fair::WEIGHTS;
use std::sync::Arc;

/// How deep share groups may nest: each level costs a step of every
/// member's weight computation.
pub const MAX_DEPTH: usize = 8;

/// A sum shared between the cores, kept by the driver.
pub trait Counter: Default {
    /// Adds `n`; returns the sum before.
    fn add(&self, n: u64) -> u64;
    /// Subtracts `n`; returns the sum after.
    fn sub(&self, n: u64) -> u64;
    /// The sum now.
    fn get(&self) -> u64;
}

/// A share group's weight, parent and runnable sum (see the module docs).
#[derive(Debug)]
pub struct Share<C> {
    weight: u32,
    parent: Option<Arc<Share<C>>>,
    depth: usize,
    /// Σ own weight of the runnable members, and the weight of each child
    /// group with a runnable member.
    runnable: C,
}

/// Why a share group could not be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShareError {
    /// The weight is outside [`WEIGHTS`].
    Weight(u32),
    /// It would nest deeper than [`MAX_DEPTH`].
    TooDeep,
}

impl std::fmt::Display for ShareError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShareError::Weight(w) => write!(
                f,
                "share group weight {w} is outside {}..={}",
                WEIGHTS.start(),
                WEIGHTS.end()
            ),
            ShareError::TooDeep => write!(f, "share groups may nest at most {MAX_DEPTH} deep"),
        }
    }
}

impl std::error::Error for ShareError {}

impl<C: Counter> Share<C> {
    /// A group of weight `weight`, a member of `parent` if given.
    pub fn new(weight: u32, parent: Option<Arc<Share<C>>>) -> Result<Share<C>, ShareError> {
        if !WEIGHTS.contains(&weight) {
            return Err(ShareError::Weight(weight));
        }
        let depth = parent.as_ref().map_or(1, |p| p.depth + 1);
        if depth > MAX_DEPTH {
            return Err(ShareError::TooDeep);
        }
        Ok(Share {
            weight,
            parent,
            depth,
            runnable: C::default(),
        })
    }

    /// The group's weight.
    pub fn weight(&self) -> u32 {
        self.weight
    }

    /// The group it is a member of, if any.
    pub fn parent(&self) -> Option<&Arc<Share<C>>> {
        self.parent.as_ref()
    }

    /// The own weights of its runnable members summed (child groups with a
    /// runnable member count their group weight).
    pub fn runnable(&self) -> u64 {
        self.runnable.get()
    }

    /// A member of own weight `own` became runnable (entered a core's set).
    pub fn enter(&self, own: u32) {
        let mut level = self;
        let mut n = own;
        // The first runnable member makes the group count in its parent.
        while level.runnable.add(n as u64) == 0 {
            let Some(parent) = level.parent.as_deref() else {
                break;
            };
            n = level.weight;
            level = parent;
        }
    }

    /// A member of own weight `own` stopped being runnable (left its core's
    /// set: parked, exited, throttled, or in flight to another core).
    pub fn leave(&self, own: u32) {
        let mut level = self;
        let mut n = own;
        // The last one makes it stop counting there.
        while level.runnable.sub(n as u64) == 0 {
            let Some(parent) = level.parent.as_deref() else {
                break;
            };
            n = level.weight;
            level = parent;
        }
    }

    /// What a member of own weight `own` weighs now (see the module docs),
    /// within [`WEIGHTS`]. A sum read while another core is between its
    /// member's entry here and in the parent may be short; it is taken as at
    /// least the member's own part, so the weight never exceeds the
    /// outermost group's (a nested member may for a moment weigh more than
    /// its group's share of the parent; braid's `tests/share_loom.rs`).
    ///
    /// Weights are whole numbers: the factors of every level are multiplied
    /// first and the product rounded once, to the nearest (IEEE doubles, so
    /// the same on every machine), at least 1. A member that weighs a few
    /// units is off by up to half a unit: a group needs about 50 units (of
    /// the unit weight's 1 024) per runnable strand for its share to hold
    /// within 1 %.
    pub fn weight_of(&self, own: u32) -> u32 {
        let mut weight = own as f64;
        let mut part = own as u64;
        let mut level = self;
        loop {
            let sum = level.runnable.get().max(part).max(1);
            weight *= level.weight as f64 / sum as f64;
            match level.parent.as_deref() {
                Some(parent) => {
                    part = level.weight as u64;
                    level = parent;
                }
                None => break,
            }
        }
        (weight.round() as u32).clamp(*WEIGHTS.start(), *WEIGHTS.end())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[derive(Default, Debug)]
    struct Plain(Cell<u64>);

    impl Counter for Plain {
        fn add(&self, n: u64) -> u64 {
            let before = self.0.get();
            self.0.set(before + n);
            before
        }
        fn sub(&self, n: u64) -> u64 {
            let after = self.0.get() - n;
            self.0.set(after);
            after
        }
        fn get(&self) -> u64 {
            self.0.get()
        }
    }

    // One thread: the plain cell stands for the driver's shared counter.
    #[allow(clippy::arc_with_non_send_sync)]
    fn share(weight: u32, parent: Option<&Arc<Share<Plain>>>) -> Arc<Share<Plain>> {
        Arc::new(Share::new(weight, parent.cloned()).unwrap())
    }

    #[test]
    fn members_split_the_group_weight_by_their_own() {
        let g = share(4096, None);
        g.enter(1024);
        assert_eq!(g.weight_of(1024), 4096, "alone it has the whole weight");
        g.enter(1024);
        g.enter(2048);
        assert_eq!(g.runnable(), 4096);
        assert_eq!((g.weight_of(1024), g.weight_of(2048)), (1024, 2048));
        g.leave(2048);
        assert_eq!(g.weight_of(1024), 2048);
    }

    #[test]
    fn a_nested_group_counts_once_in_its_parent_while_it_has_runnable_members() {
        let outer = share(3072, None);
        let inner = share(2048, Some(&outer));
        outer.enter(1024);
        assert_eq!(outer.runnable(), 1024);
        inner.enter(1024);
        inner.enter(1024);
        // The inner group weighs 2048 in the outer, once.
        assert_eq!(outer.runnable(), 3072);
        // Outer's own member: 1024 of 3072's 3072. Inner's: half of the
        // inner group's 2048 / 3072 of 3072.
        assert_eq!(outer.weight_of(1024), 1024);
        assert_eq!(inner.weight_of(1024), 1024);
        inner.leave(1024);
        assert_eq!(outer.runnable(), 3072);
        assert_eq!(inner.weight_of(1024), 2048);
        inner.leave(1024);
        assert_eq!((outer.runnable(), inner.runnable()), (1024, 0));
        assert_eq!(outer.weight_of(1024), 3072);
    }

    #[test]
    fn a_short_sum_never_gives_a_member_more_than_its_group() {
        let g = share(1024, None);
        // Read before the member's own entry counted.
        assert_eq!(g.weight_of(4096), 1024);
        let tiny = share(1, None);
        for _ in 0..10 {
            tiny.enter(1024);
        }
        assert_eq!(tiny.weight_of(1024), 1, "never below the least weight");
    }

    /// A strand of a share group, for a fair policy.
    struct Member {
        group: usize,
        share: Arc<Share<Plain>>,
        e: crate::Entity,
    }

    impl crate::Schedulable for Member {
        fn entity(&self) -> &crate::Entity {
            &self.e
        }
        fn entity_mut(&mut self) -> &mut crate::Entity {
            &mut self.e
        }
        fn weight_now(&self) -> Option<u32> {
            Some(self.share.weight_of(crate::fair::UNIT_WEIGHT))
        }
        fn entered_set(&self) {
            self.share.enter(crate::fair::UNIT_WEIGHT);
        }
        fn left_set(&self) {
            self.share.leave(crate::fair::UNIT_WEIGHT);
        }
    }

    /// Runs the ready members, each its slice, for `total` ns from `now`;
    /// returns the CPU each group got and the new time.
    fn run(
        policy: &mut crate::Fair<Member>,
        groups: usize,
        mut now: u64,
        total: u64,
    ) -> (Vec<u64>, u64) {
        use crate::Policy;
        let mut got = vec![0; groups];
        let end = now + total;
        while now < end {
            let mut m = policy.pick_next(now).expect("always something ready");
            let ran = policy.slice(&m);
            now += ran;
            policy.charge(&mut m, ran);
            got[m.group] += ran;
            policy.enqueue(m, crate::Insert::Tail, now);
        }
        (got, now)
    }

    fn shares(got: &[u64]) -> Vec<f64> {
        let total: u64 = got.iter().sum();
        got.iter().map(|&g| g as f64 / total as f64).collect()
    }

    #[test]
    fn groups_get_their_weights_share_whatever_their_member_counts() {
        use crate::{Policy, Rule};
        const MS: u64 = 1_000_000;
        for rule in [Rule::EarliestEligibleDeadline, Rule::LeastVirtualRuntime] {
            // Weights 1 : 2 : 4 with 3, 1 and 2 members of weight 1 024:
            // weighing strands, not groups, would give them 1/2, 1/6, 1/3.
            let groups = [share(1024, None), share(2048, None), share(4096, None)];
            let counts = [3, 1, 2];
            let mut policy = crate::Fair::new(rule, 4 * MS);
            for (g, share) in groups.iter().enumerate() {
                for _ in 0..counts[g] {
                    let m = Member {
                        group: g,
                        share: share.clone(),
                        e: crate::Entity::UNPLACED,
                    };
                    policy.enqueue(m, crate::Insert::Tail, 0);
                }
            }
            assert_eq!(groups[0].runnable(), 3 * 1024);
            // A second of settling (the first enqueues saw partial sums),
            // then seven measured.
            let (_, now) = run(&mut policy, 3, 0, 1_000 * MS);
            let (got, now) = run(&mut policy, 3, now, 7_000 * MS);
            let s = shares(&got);
            for (g, want) in [1.0 / 7.0, 2.0 / 7.0, 4.0 / 7.0].into_iter().enumerate() {
                assert!((s[g] - want).abs() < 0.005, "{rule:?}: shares {s:?}");
            }
            // One of the heavy group's members parks: the other takes the
            // group's whole share.
            let mut parked = None;
            let mut now = now;
            while parked.is_none() {
                let mut m = policy.pick_next(now).unwrap();
                if m.group == 2 {
                    policy.stopped(&mut m);
                    parked = Some(m);
                } else {
                    let ran = policy.slice(&m);
                    now += ran;
                    policy.charge(&mut m, ran);
                    policy.enqueue(m, crate::Insert::Tail, now);
                }
            }
            assert_eq!(groups[2].runnable(), 1024);
            let (_, now) = run(&mut policy, 3, now, 1_000 * MS);
            let (got, _) = run(&mut policy, 3, now, 7_000 * MS);
            let s = shares(&got);
            assert!(
                (s[2] - 4.0 / 7.0).abs() < 0.005,
                "{rule:?}: after a park {s:?}"
            );
        }
    }

    #[test]
    fn bad_weights_and_deep_nesting_are_refused_by_name() {
        assert_eq!(
            Share::<Plain>::new(0, None).unwrap_err(),
            ShareError::Weight(0)
        );
        let mut level = share(1024, None);
        for _ in 1..MAX_DEPTH {
            level = share(1024, Some(&level));
        }
        let err = Share::new(1024, Some(level)).unwrap_err();
        assert_eq!(err, ShareError::TooDeep);
        assert!(err.to_string().contains("at most 8"), "{err}");
        assert!(ShareError::Weight(0).to_string().contains("1..=1048576"));
    }
}
