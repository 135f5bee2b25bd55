//! Fair policies: weights, latency classes and virtual time.
//!
//! Every strand carries an [`Entity`]: its [`SchedParams`] (weight, latency
//! class, slice request) and its place in its core's virtual time. The
//! entity lives in the task handle ([`Schedulable`]), so it travels with a
//! strand that moves to another core: a strand's *lag* — how much CPU it is
//! owed or has had in advance, in virtual time — is saved when it leaves a
//! core's set (blocks, exits, is given away) and restored against the new
//! core's virtual time when it is placed there again.
//!
//! Virtual time: a strand of weight `w` that runs `t` ns advances its
//! virtual runtime `v` by `t · UNIT_WEIGHT / w`. A core's virtual time `V` is
//! the weight-averaged `v` of the strands in its set (ready, and the one
//! running). Two rules pick among the ready ones:
//! - [`Rule::LeastVirtualRuntime`] (CFS-like): the smallest `v`;
//! - [`Rule::EarliestEligibleDeadline`] (EEVDF): among the *eligible*
//!   strands (`v ≤ V`, i.e. lag `V − v ≥ 0`), the earliest virtual deadline
//!   `v + slice · UNIT_WEIGHT / w` — a strand asking for a short slice gets
//!   an early deadline, and so low latency, without getting more CPU.
//!
//! The eligible set is scanned in `v` order for at most [`EEVDF_SCAN`]
//! entries; past that the choice is among the first ones (a bounded
//! approximation: shares are kept by the virtual runtimes either way, only
//! the order within one round can differ from exact EEVDF).
//!
//! Eligibility has a little slack: a strand owing up to
//! [`ELIGIBLE_SLACK`] of the base slice (`v ≤ V + base / 32`) counts as
//! eligible. Strict `v ≤ V` made a latency-class strand that had just run
//! for a microsecond and parked wait behind a whole cooperative step of
//! batch work when it woke: its debt was a fraction of a microsecond, but
//! `V` moves only when the running strand is charged, at its next yield
//! (braid-sim's `dispersive` workload: p99 190 µs strict, 104 µs with the
//! slack, for a floor of one 100 µs step). The slack is not forgiven debt:
//! lag is still carried and charged, so a strand can be ahead of its share
//! by at most the slack, not by the slack per wake.
//!
//! [`Priority`] is the other kind: strict priority by latency class, with
//! aging so a lower class never starves.
//!
//! Time comes from the driver's clock. `Fair` asks for runs measured finer
//! than the runtime's coarse 1 ms clock ([`Policy::fine_clock`]): charged
//! the ticks a run crossed — unbiased, as a run of `t` ns crosses one with
//! probability `t / tick` — a strand that ran a microsecond is now and then
//! charged a millisecond, and then waits that debt out.

use crate::policy::{Insert, Load, Nanos, Policy};
use std::collections::{BTreeMap, VecDeque};

/// The weight of a strand that asks for nothing: the unit of virtual time.
pub const UNIT_WEIGHT: u32 = 1024;

/// The weights a strand may have.
pub const WEIGHTS: std::ops::RangeInclusive<u32> = 1..=1_048_576;

/// How many eligible strands [`Rule::EarliestEligibleDeadline`] compares.
pub const EEVDF_SCAN: usize = 16;

/// How far ahead of the core's virtual time a strand may be and still be
/// eligible, as a fraction `1 / ELIGIBLE_SLACK` of the base slice (see the
/// module docs).
pub const ELIGIBLE_SLACK: u64 = 32;

/// How soon a strand wants the CPU when it becomes ready.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LatencyClass {
    /// Throughput work: a long slice (4×), served after the others.
    Batch,
    /// The default.
    #[default]
    Normal,
    /// Latency-sensitive work (request handlers, completions): a short slice
    /// (¼), so under EEVDF an early deadline, and it runs soon when it
    /// becomes ready — without more CPU than its weight gives it.
    Latency,
}

impl LatencyClass {
    /// The slice a strand of this class gets out of `base`.
    pub fn slice(self, base: Nanos) -> Nanos {
        match self {
            LatencyClass::Batch => base.saturating_mul(4),
            LatencyClass::Normal => base,
            LatencyClass::Latency => (base / 4).max(1),
        }
    }
}

/// What a strand asks of the scheduler.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SchedParams {
    /// Its share of the CPU relative to others (default [`UNIT_WEIGHT`]).
    pub weight: u32,
    /// Its latency class.
    pub class: LatencyClass,
    /// The slice it asks for (`None`: its class's slice of the policy's).
    pub slice: Option<Nanos>,
    /// Where it enters its core's ready strands when it is spawned or woken
    /// ([`Insert::Head`]: a service or completion strand, to run before
    /// what is queued). A yield always goes to the tail.
    pub insert: Insert,
}

impl Default for SchedParams {
    fn default() -> SchedParams {
        SchedParams {
            weight: UNIT_WEIGHT,
            class: LatencyClass::Normal,
            slice: None,
            insert: Insert::Tail,
        }
    }
}

impl SchedParams {
    /// The slice this strand gets from a policy whose base slice is `base`.
    pub fn slice_of(&self, base: Nanos) -> Nanos {
        self.slice.unwrap_or_else(|| self.class.slice(base)).max(1)
    }
}

/// A strand's scheduling state, kept in its task handle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Entity {
    /// What it asks for.
    pub params: SchedParams,
    /// Virtual runtime, on its current core's virtual clock.
    vruntime: u64,
    /// Virtual deadline (EEVDF).
    deadline: u64,
    /// `V − v` when it last left a core's set, in virtual ns.
    lag: i64,
    /// The core's virtual time when it last parked there (`NOT_PARKED`
    /// after it left by moving): how much of its debt the others' progress
    /// has repaid by the time it wakes.
    parked_at_v: u64,
    /// In a core's set (ready or running there).
    in_set: bool,
    /// When it became ready (for aging).
    ready_since: Nanos,
    /// CPU time charged to it, in ns.
    charged: u64,
}

impl Entity {
    /// A default strand's entity, in no core's set.
    pub const UNPLACED: Entity = Entity {
        params: SchedParams {
            weight: UNIT_WEIGHT,
            class: LatencyClass::Normal,
            slice: None,
            insert: Insert::Tail,
        },
        vruntime: 0,
        deadline: 0,
        lag: 0,
        parked_at_v: NOT_PARKED,
        in_set: false,
        ready_since: 0,
        charged: 0,
    };

    /// An entity with `params`, in no core's set.
    pub fn new(params: SchedParams) -> Entity {
        Entity {
            params,
            ..Entity::UNPLACED
        }
    }

    /// CPU time charged to the strand so far (ns, on the driver's clock).
    pub fn charged(&self) -> u64 {
        self.charged
    }

    /// The lag it carries (`V − v` when it last left a core; positive: it
    /// is owed CPU), in virtual ns.
    pub fn lag(&self) -> i64 {
        self.lag
    }
}

/// A task handle that carries an [`Entity`].
pub trait Schedulable {
    /// Its scheduling state.
    fn entity(&self) -> &Entity;
    /// Its scheduling state, to update.
    fn entity_mut(&mut self) -> &mut Entity;
    /// What it asks for: its entity's, unless the handle keeps them
    /// elsewhere too (a handle whose entity is made only when a fair policy
    /// first needs it).
    fn params(&self) -> SchedParams {
        self.entity().params
    }
    /// The strand's id, for [`Insert::After`](crate::Insert::After) hints
    /// naming it (`None`: it cannot be named).
    fn strand_id(&self) -> Option<u64> {
        None
    }
    /// The strand this one asked to enter the ready strands behind, for
    /// an [`Insert::After`](crate::Insert::After) hint.
    fn insert_after(&self) -> Option<u64> {
        None
    }
    /// What it weighs now, when something besides its own
    /// [`SchedParams::weight`] decides that: its share group's split (see
    /// [`crate::share`]). Asked each time it enters a core's ready strands;
    /// `None` (the default): its entity's weight stands.
    fn weight_now(&self) -> Option<u32> {
        None
    }
    /// It entered a core's set (ready or running there): for a driver that
    /// keeps share groups' runnable sums ([`crate::share::Share::enter`]).
    fn entered_set(&self) {}
    /// It left a core's set (parked, exited, throttled at a dispatch, or
    /// taken for another core). A strand that does not yield and is held
    /// by its budget in the middle of a run stays in its core's set, so
    /// counted runnable, until it stops.
    fn left_set(&self) {}
}

/// How a [`Fair`] policy picks among its ready strands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rule {
    /// The smallest virtual runtime (CFS-like).
    LeastVirtualRuntime,
    /// The earliest virtual deadline among the eligible (EEVDF).
    EarliestEligibleDeadline,
}

/// [`Entity::parked_at_v`] of a strand that did not park where it is placed.
const NOT_PARKED: u64 = u64::MAX;

/// `ns` of CPU time as virtual time at `weight`: `ns` × [`UNIT_WEIGHT`] /
/// `weight` (what a fair policy charges a strand for a run).
#[inline]
pub fn virtual_ns(ns: Nanos, weight: u32) -> u64 {
    // Most strands have the unit weight: no 128-bit division for them.
    if weight == UNIT_WEIGHT {
        return ns;
    }
    ((ns as u128 * UNIT_WEIGHT as u128) / weight.max(1) as u128) as u64
}

/// Weighted fair sharing of one core by virtual time (see the module docs).
#[derive(Clone, Debug, Hash)]
pub struct Fair<T> {
    rule: Rule,
    base_slice: Nanos,
    /// The eligibility slack in virtual ns (see [`ELIGIBLE_SLACK`]).
    slack: u64,
    /// Ready strands by (virtual runtime, arrival).
    ready: ReadySet<T>,
    arrivals: u64,
    /// Σ weight and Σ weight·v over the set (ready and running).
    sum_w: u128,
    sum_wv: u128,
    /// The last virtual time, for a set that becomes empty.
    last_v: u64,
    /// Strands released from a budget's throttle that run before any
    /// other, the last first (see [`Policy::released`]); a key whose strand
    /// has left the ready set since (taken for another core) is skipped.
    /// A `Vec` used as a stack (the scheduler releases the latest first):
    /// a fair policy's size is every policy's (`AnyPolicy`), and a
    /// `VecDeque`'s 32 bytes cost round robin 14 instructions per yield,
    /// the `Vec`'s 24 none (callgrind, `switches` example).
    first: Vec<Key>,
}

/// A core's ready strands in key order: a deque while there are few (the
/// common case: a handful per core), a B-tree past [`ReadySet::SMALL`].
/// With two strands yielding to each other the B-tree's insert and remove
/// were a third of an EEVDF switch (`perf`, `switches` example); a deque
/// keeps the ends O(1) and shifts at most the smaller side.
#[derive(Clone, Debug, Hash)]
enum ReadySet<T> {
    Small(VecDeque<(Key, T)>),
    Large(BTreeMap<Key, T>),
}

/// (virtual runtime, arrival): unique.
type Key = (u64, u64);

impl<T> Default for ReadySet<T> {
    fn default() -> Self {
        ReadySet::Small(VecDeque::new())
    }
}

impl<T> ReadySet<T> {
    /// The most a deque holds; a B-tree goes back to one below half of it.
    const SMALL: usize = 32;

    fn len(&self) -> usize {
        match self {
            ReadySet::Small(d) => d.len(),
            ReadySet::Large(m) => m.len(),
        }
    }

    fn insert(&mut self, key: Key, item: T) {
        match self {
            ReadySet::Small(d) if d.len() < Self::SMALL => {
                let at = d.partition_point(|(k, _)| *k < key);
                d.insert(at, (key, item));
            }
            ReadySet::Small(d) => {
                let mut m: BTreeMap<Key, T> = std::mem::take(d).into_iter().collect();
                m.insert(key, item);
                *self = ReadySet::Large(m);
            }
            ReadySet::Large(m) => {
                m.insert(key, item);
            }
        }
    }

    fn remove(&mut self, key: &Key) -> Option<T> {
        let item = match self {
            ReadySet::Small(d) => {
                let at = d.binary_search_by(|(k, _)| k.cmp(key)).ok()?;
                return d.remove(at).map(|(_, item)| item);
            }
            ReadySet::Large(m) => m.remove(key)?,
        };
        self.shrink();
        Some(item)
    }

    fn pop_last(&mut self) -> Option<(Key, T)> {
        let last = match self {
            ReadySet::Small(d) => return d.pop_back(),
            ReadySet::Large(m) => m.pop_last()?,
        };
        self.shrink();
        Some(last)
    }

    /// A B-tree that shrank below half of `SMALL` becomes a deque again.
    fn shrink(&mut self) {
        if let ReadySet::Large(m) = self {
            if m.len() < Self::SMALL / 2 {
                *self = ReadySet::Small(std::mem::take(m).into_iter().collect());
            }
        }
    }

    fn first(&self) -> Option<(Key, &T)> {
        self.iter().next()
    }

    fn last(&self) -> Option<(Key, &T)> {
        match self {
            ReadySet::Small(d) => d.back().map(|(k, item)| (*k, item)),
            ReadySet::Large(m) => m.last_key_value().map(|(k, item)| (*k, item)),
        }
    }

    /// In key order.
    fn iter(&self) -> impl Iterator<Item = (Key, &T)> {
        let (small, large) = match self {
            ReadySet::Small(d) => (Some(d.iter().map(|(k, item)| (*k, item))), None),
            ReadySet::Large(m) => (None, Some(m.iter().map(|(k, item)| (*k, item)))),
        };
        small
            .into_iter()
            .flatten()
            .chain(large.into_iter().flatten())
    }
}

impl<T> Fair<T> {
    /// A fair policy with `rule`, whose strands get `base_slice` (scaled by
    /// their class) unless they ask for their own.
    pub fn new(rule: Rule, base_slice: Nanos) -> Fair<T> {
        let base_slice = base_slice.max(1);
        Fair {
            rule,
            base_slice,
            slack: virtual_ns(base_slice, UNIT_WEIGHT) / ELIGIBLE_SLACK,
            ready: ReadySet::default(),
            arrivals: 0,
            sum_w: 0,
            sum_wv: 0,
            last_v: 0,
            first: Vec::new(),
        }
    }

    /// The core's virtual time.
    pub fn virtual_time(&self) -> u64 {
        if self.sum_w == 0 {
            return self.last_v;
        }
        // A 64-bit division while the sum fits (hours of virtual time for
        // thousands of strands), the 128-bit one after.
        match (u64::try_from(self.sum_wv), u64::try_from(self.sum_w)) {
            (Ok(wv), Ok(w)) => wv / w,
            _ => (self.sum_wv / self.sum_w) as u64,
        }
    }

    /// A ready strand whose lag (`V − v`, virtual ns; positive: owed) is
    /// beyond what EEVDF bounds it to, with that bound, if any: what
    /// braid-sim checks. A strand owes at most its own slice (plus the
    /// eligibility slack): it runs only while eligible and yields when its
    /// slice is used. It is owed at most the longest slice it may wait
    /// behind: the longest of the ready strands' (when `scan_all`), else
    /// the longest its class table gives at its weight (a batch slice).
    /// Looks at the first and last strands in virtual-time order, where
    /// the extremes are, and at all of them when `scan_all`.
    ///
    /// `resolution` is the tick of the clock the driver ends slices by (0:
    /// exact): a slice then ends at the first tick a tick past its length
    /// (see [`CoreSched::slice_end`](crate::CoreSched::slice_end)), and a
    /// run may be charged that much — both bounds grow to it, at the
    /// strand's weight.
    ///
    /// A member of a share group ([`Schedulable::weight_now`]) may owe, and
    /// be owed, one such longest slice more, of CPU time at its weight. A
    /// strand that joins a core carrying credit lowers the core's virtual
    /// time, and so deepens the debt of every strand there by a share of
    /// that credit (one that leaves owing raises it: the others' credit
    /// grows); with fixed weights that has stayed within the bounds above,
    /// but a group's split over many strands makes weights on one core
    /// differ widely (1 : 9 at 256 cores in braid-sim's `group-share`), and
    /// a light strand's credit then weighs on a heavy one past them (seen
    /// in braid-sim: by up to 45 % of that bound; a quarter-slice allowance
    /// failed, the whole one held over seeds 1–6 at 2–256 cores).
    pub fn lag_outside_bound(&self, scan_all: bool, resolution: Nanos) -> Option<(i64, i64)>
    where
        T: Schedulable,
    {
        let v_now = self.virtual_time() as i64;
        let run_bound = |p: &SchedParams| {
            let slice = p.slice_of(self.base_slice);
            let run = match resolution {
                0 => slice,
                tick => slice.div_ceil(tick).saturating_add(1).saturating_mul(tick),
            };
            virtual_ns(run, p.weight).min(i64::MAX as u64) as i64
        };
        let longest = scan_all.then(|| {
            self.ready
                .iter()
                .map(|(_, item)| run_bound(&item.entity().params))
                .max()
                .unwrap_or(0)
        });
        let longest_cpu = scan_all.then(|| {
            self.ready
                .iter()
                .map(|(_, item)| {
                    let p = item.entity().params;
                    run_bound(&SchedParams {
                        weight: UNIT_WEIGHT,
                        ..p
                    })
                })
                .max()
                .unwrap_or(0)
        });
        let outside = |(key, item): (Key, &T)| {
            let lag = v_now - key.0 as i64;
            let p = &item.entity().params;
            let batch = SchedParams {
                class: LatencyClass::Batch,
                slice: None,
                ..*p
            };
            let mut owes_at_most = run_bound(p) + self.slack as i64;
            let mut owed_at_most = longest.unwrap_or_else(|| run_bound(p).max(run_bound(&batch)));
            if item.weight_now().is_some() {
                // A whole one: a quarter failed (seeds 2–6 of `group-share`
                // at 16–256 cores: up to 45 % past the bound).
                let cpu = longest_cpu.map_or_else(
                    || run_bound(&batch),
                    |ns| virtual_ns(ns as u64, p.weight).min(i64::MAX as u64) as i64,
                );
                owes_at_most = owes_at_most.saturating_add(cpu);
                owed_at_most = owed_at_most.saturating_add(cpu);
            }
            if lag < -owes_at_most {
                Some((lag, -owes_at_most))
            } else if lag > owed_at_most {
                Some((lag, owed_at_most))
            } else {
                None
            }
        };
        let ends = self.ready.first().into_iter().chain(self.ready.last());
        let all = self
            .ready
            .iter()
            .take(if scan_all { usize::MAX } else { 0 });
        ends.chain(all).find_map(outside)
    }

    /// The ready strands, in virtual-time order.
    pub fn ready_strands(&self) -> impl Iterator<Item = &T> {
        self.ready.iter().map(|(_, item)| item)
    }

    /// Its rule.
    pub fn rule(&self) -> Rule {
        self.rule
    }

    /// The base slice.
    pub fn base_slice(&self) -> Nanos {
        self.base_slice
    }

    fn join_entity(&mut self, e: &mut Entity, v: u64) {
        e.vruntime = v;
        e.in_set = true;
        self.sum_w += e.params.weight as u128;
        self.sum_wv += e.params.weight as u128 * v as u128;
    }

    /// Takes `e` out of the set, saving its lag against virtual time
    /// `now_v`; returns whether it was in.
    fn part_entity(&mut self, e: &mut Entity, now_v: u64) -> bool {
        if !e.in_set {
            return false;
        }
        e.lag = self.clamp_lag(now_v as i64 - e.vruntime as i64, &e.params);
        e.in_set = false;
        self.sum_w -= e.params.weight as u128;
        self.sum_wv -= e.params.weight as u128 * e.vruntime as u128;
        self.last_v = now_v;
        if self.sum_w == 0 {
            self.sum_wv = 0;
        }
        true
    }

    /// Lag is kept within one slice either way: a strand cannot bank more
    /// than a slice of CPU by sleeping, nor owe more than one.
    fn clamp_lag(&self, lag: i64, p: &SchedParams) -> i64 {
        let bound = self.clamp_bound(p);
        lag.clamp(-bound, bound)
    }

    fn clamp_bound(&self, p: &SchedParams) -> i64 {
        virtual_ns(p.slice_of(self.base_slice), p.weight).min(i64::MAX as u64) as i64
    }
}

impl<T: Schedulable> Fair<T> {
    /// `item`, not in the set, enters it: counted runnable in its share
    /// group first, so the weight it is given counts it too.
    #[inline]
    fn join(&mut self, item: &mut T, hint: Insert) {
        item.entered_set();
        self.reweigh(item);
        let v = self.placement(item.entity_mut(), hint);
        self.join_entity(item.entity_mut(), v);
    }

    /// Takes `item` out of the set (see [`Fair::part_entity`]).
    #[inline]
    fn part(&mut self, item: &mut T, now_v: u64) -> bool {
        let parted = self.part_entity(item.entity_mut(), now_v);
        if parted {
            item.left_set();
        }
        parted
    }

    /// Gives `item` the weight its share group says it has now, if that
    /// changed (see [`Schedulable::weight_now`]). In the set, it keeps the
    /// CPU it is owed or owes: its lag `V − v` is rescaled to the new weight
    /// (virtual time is CPU time over weight), which leaves the core's
    /// virtual time where it was. Out of it, the lag it carries is rescaled.
    #[inline]
    fn reweigh(&mut self, item: &mut T) {
        let Some(weight) = item.weight_now() else {
            return;
        };
        if weight != item.entity().params.weight {
            self.reweigh_to(item, weight);
        }
    }

    #[cold]
    #[inline(never)]
    fn reweigh_to(&mut self, item: &mut T, weight: u32) {
        let rescale = |lag: i64, from: u32| {
            (lag as i128 * from as i128 / weight.max(1) as i128)
                .clamp(i64::MIN as i128, i64::MAX as i128) as i64
        };
        let e = item.entity_mut();
        let from = e.params.weight;
        if !e.in_set {
            e.params.weight = weight;
            e.lag = self.clamp_lag(rescale(e.lag, from), &e.params);
            return;
        }
        let now_v = self.virtual_time();
        let lag = now_v as i64 - e.vruntime as i64;
        self.sum_w -= from as u128;
        self.sum_wv -= from as u128 * e.vruntime as u128;
        e.params.weight = weight;
        // Not clamped: the same CPU owed or owing at the new weight keeps
        // the core's virtual time where it was (a clamp would move it, and
        // every other strand's lag with it).
        let lag = rescale(lag, from);
        let v = (now_v as i64 - lag).max(0) as u64;
        self.join_entity(e, v);
    }

    /// Under EEVDF, for an [`Insert::After`]: just after the virtual
    /// deadline of the strand `item` names, if that is ready here
    /// (`u64::MAX`: no cap).
    #[cold]
    #[inline(never)]
    fn deadline_after(&self, item: &T) -> u64 {
        let Some(dependency) = item.insert_after() else {
            return u64::MAX;
        };
        if self.rule != Rule::EarliestEligibleDeadline {
            return u64::MAX;
        }
        self.ready
            .iter()
            .find(|(_, t)| t.strand_id() == Some(dependency))
            .map_or(u64::MAX, |(_, t)| t.entity().deadline.saturating_add(1))
    }

    /// Files `item` as ready, its virtual deadline no later than `cap`
    /// (`u64::MAX`: none; see [`Fair::deadline_after`]); returns its key.
    fn file(&mut self, mut item: T, cap: u64, now: Nanos) -> Key {
        let e = item.entity_mut();
        let deadline = e.vruntime + virtual_ns(e.params.slice_of(self.base_slice), e.params.weight);
        e.deadline = deadline.min(cap);
        e.ready_since = now;
        let key = (e.vruntime, self.arrivals);
        self.arrivals += 1;
        self.ready.insert(key, item);
        key
    }

    /// The first released strand still ready here, if any (see
    /// [`Fair::first`]).
    #[cold]
    #[inline(never)]
    fn take_released(&mut self) -> Option<T> {
        while let Some(key) = self.first.pop() {
            if let Some(item) = self.ready.remove(&key) {
                return Some(item);
            }
        }
        None
    }
}

impl<T: Schedulable> Fair<T> {
    /// Where `e`, entering the set, is placed (its virtual runtime): this
    /// core's virtual time less the lag it carries, as `hint` and its sleep
    /// amend that. Consumes the lag it carried.
    fn placement(&self, e: &mut Entity, hint: Insert) -> u64 {
        let v_now = self.virtual_time() as i64;
        // A head insertion forgives what the strand owes (it is placed
        // no later than the others) but grants nothing: a strand woken
        // that way again and again must not take more than its share.
        // Latency strands get no placement help either: their short
        // slice gives them early deadlines, which is what makes them run
        // soon under EEVDF.
        let lag = if hint == Insert::Head {
            e.lag.max(0)
        } else {
            e.lag
        };
        // Debt is repaid while the strand sleeps, as far as the others
        // advanced meanwhile (never turned into credit). Without this a
        // strand that runs in bursts and parks between them — a
        // dispatcher — only ever pays: it is ready for a moment each
        // time, so it never earns, and a wake after a longer burst finds
        // it owing most of it, behind every batch step that is eligible
        // (the real `dispersive` run: a dispatcher owing 150–250 µs past
        // the slack on some wakes; p99 at 80 % load 665 → 193 µs).
        let lag = match e.parked_at_v {
            at if at != NOT_PARKED && lag < 0 => {
                let repaid = v_now.saturating_sub(at as i64).max(0);
                lag.saturating_add(repaid).min(0)
            }
            _ => lag,
        };
        e.parked_at_v = NOT_PARKED;
        let lag = self.clamp_lag(lag, &e.params);
        e.lag = 0;
        (v_now - lag).max(0) as u64
    }
}

impl<T: Schedulable> Policy<T> for Fair<T> {
    fn enqueue(&mut self, mut item: T, hint: Insert, now: Nanos) {
        if item.entity().in_set {
            // Back from a yield: a share group's split may have changed.
            self.reweigh(&mut item);
        } else {
            // New, woken, or arrived from another core.
            self.join(&mut item, hint);
        }
        let cap = if hint == Insert::After {
            self.deadline_after(&item)
        } else {
            u64::MAX
        };
        self.file(item, cap, now);
    }

    /// Its budget held it, not its share. Placed as a wake: what it still
    /// owes once the others' progress meanwhile is counted stays owed, so a
    /// budget above the strand's share buys it nothing. If that leaves it
    /// eligible it runs next, before the pick's rule (the earlier released
    /// first), as a refill used late is lost; its virtual runtime is not
    /// changed for it, so it is granted no credit.
    fn released(&mut self, mut item: T, now: Nanos) {
        debug_assert!(
            !item.entity().in_set,
            "a throttled strand is still in the set"
        );
        let placed = !item.entity().in_set;
        if placed {
            self.join(&mut item, Insert::Tail);
        }
        let eligible = placed && item.entity().vruntime <= self.virtual_time() + self.slack;
        let key = self.file(item, u64::MAX, now);
        if eligible {
            self.first.push(key);
        }
    }

    fn pick_next(&mut self, _now: Nanos) -> Option<T> {
        if !self.first.is_empty() {
            if let Some(item) = self.take_released() {
                return Some(item);
            }
        }
        let key = match self.rule {
            Rule::LeastVirtualRuntime => self.ready.iter().next()?.0,
            Rule::EarliestEligibleDeadline => {
                let eligible_up_to = self.virtual_time() + self.slack;
                let mut best: Option<((u64, u64), u64)> = None;
                for (key, item) in self.ready.iter().take(EEVDF_SCAN) {
                    if key.0 > eligible_up_to && best.is_some() {
                        break;
                    }
                    let deadline = item.entity().deadline;
                    if best.is_none_or(|(_, d)| deadline < d) {
                        best = Some((key, deadline));
                    }
                }
                best?.0
            }
        };
        // Still in the set while it runs.
        self.ready.remove(&key)
    }

    fn slice(&self, item: &T) -> Nanos {
        item.entity().params.slice_of(self.base_slice)
    }

    fn fine_clock(&self) -> bool {
        true
    }

    fn charge(&mut self, item: &mut T, ran: Nanos) {
        let e = item.entity_mut();
        e.charged = e.charged.saturating_add(ran);
        if !e.in_set {
            return;
        }
        let dv = virtual_ns(ran, e.params.weight);
        e.vruntime = e.vruntime.saturating_add(dv);
        self.sum_wv += e.params.weight as u128 * dv as u128;
    }

    fn given_away(&mut self, item: &mut T) {
        let now_v = self.virtual_time();
        self.part(item, now_v);
        item.entity_mut().parked_at_v = NOT_PARKED;
    }

    fn stopped(&mut self, item: &mut T) {
        let now_v = self.virtual_time();
        if self.part(item, now_v) {
            // The others' virtual time without it, which their progress
            // moves on from.
            item.entity_mut().parked_at_v = self.virtual_time();
        }
    }

    fn len(&self) -> usize {
        self.ready.len()
    }

    fn untake(&mut self, mut item: T, now: Nanos) {
        // Back at the virtual runtime it left with: a strand that could not
        // move keeps its debt or credit whole (its lag was clamped when it
        // was taken out).
        debug_assert!(!item.entity().in_set, "put back while in the set");
        item.entered_set();
        let e = item.entity_mut();
        let v = e.vruntime;
        e.lag = 0;
        self.join_entity(e, v);
        self.file(item, u64::MAX, now);
    }

    fn load(&self) -> Load {
        Load {
            weight: self.sum_w as u64,
            vtime: self.virtual_time(),
        }
    }

    fn take_near_weight(&mut self, weight: u64, limit: u64) -> Option<T> {
        let key = self
            .ready
            .iter()
            .map(|(k, item)| (k, item.entity().params.weight as u64))
            .filter(|&(_, w)| w <= limit)
            .min_by_key(|&(k, w)| (w.abs_diff(weight), std::cmp::Reverse(k)))?
            .0;
        let mut item = self.ready.remove(&key)?;
        let now_v = self.virtual_time();
        self.part(&mut item, now_v);
        Some(item)
    }

    fn take_for_transfer(&mut self, count: usize) -> Vec<T> {
        let mut taken = Vec::with_capacity(count.min(self.ready.len()));
        // Every lag against the virtual time before any of them leaves.
        let now_v = self.virtual_time();
        while taken.len() < count {
            // The ones this core would run last: the largest virtual runtimes.
            let Some((_, mut item)) = self.ready.pop_last() else {
                break;
            };
            self.part(&mut item, now_v);
            taken.push(item);
        }
        taken
    }
}

/// Strict priority by latency class (latency before normal before batch),
/// first in, first out within a class, with aging: a strand ready for
/// longer than the aging period is served as one class higher for every
/// period it has waited, so nothing starves.
#[derive(Clone, Debug, Hash)]
pub struct Priority<T> {
    /// One queue per class, lowest class first.
    queues: [VecDeque<T>; 3],
    base_slice: Nanos,
    aging: Nanos,
}

impl<T> Priority<T> {
    /// The highest class with a strand ready (its queue's: a strand aged
    /// into a higher class's service stays in its own queue).
    pub fn highest_ready_class(&self) -> Option<LatencyClass> {
        const BY_INDEX: [LatencyClass; 3] = [
            LatencyClass::Batch,
            LatencyClass::Normal,
            LatencyClass::Latency,
        ];
        let index = self.queues.iter().rposition(|q| !q.is_empty())?;
        Some(BY_INDEX[index])
    }

    /// A priority policy with `base_slice` (scaled by class) and `aging`.
    pub fn new(base_slice: Nanos, aging: Nanos) -> Priority<T> {
        Priority {
            queues: [VecDeque::new(), VecDeque::new(), VecDeque::new()],
            base_slice: base_slice.max(1),
            aging: aging.max(1),
        }
    }
}

fn class_index(class: LatencyClass) -> usize {
    match class {
        LatencyClass::Batch => 0,
        LatencyClass::Normal => 1,
        LatencyClass::Latency => 2,
    }
}

impl<T: Schedulable> Policy<T> for Priority<T> {
    fn enqueue(&mut self, mut item: T, hint: Insert, now: Nanos) {
        let e = item.entity_mut();
        e.ready_since = now;
        let queue = &mut self.queues[class_index(e.params.class)];
        match hint {
            Insert::Tail => queue.push_back(item),
            Insert::Head => queue.push_front(item),
            Insert::After => {
                let dependency = item.insert_after();
                let is_dependency = |t: &T| dependency.is_some() && t.strand_id() == dependency;
                crate::policy::insert_behind(queue, item, is_dependency);
            }
        }
    }

    fn pick_next(&mut self, now: Nanos) -> Option<T> {
        // The head of each queue waited longest in it; its effective class
        // is its own plus one per aging period waited.
        let mut best: Option<(usize, usize, Nanos)> = None;
        for (class, queue) in self.queues.iter().enumerate() {
            let Some(head) = queue.front() else { continue };
            let since = head.entity().ready_since;
            let waited = now.saturating_sub(since);
            let effective = class + (waited / self.aging).min(2) as usize;
            // Higher effective class first; among equals the longest waiting.
            let better = match best {
                None => true,
                Some((c, _, s)) => effective > c || (effective == c && since < s),
            };
            if better {
                best = Some((effective, class, since));
            }
        }
        let (_, class, _) = best?;
        self.queues[class].pop_front()
    }

    fn slice(&self, item: &T) -> Nanos {
        item.entity().params.slice_of(self.base_slice)
    }

    fn charge(&mut self, item: &mut T, ran: Nanos) {
        item.entity_mut().charged += ran;
    }

    fn untake(&mut self, item: T, _now: Nanos) {
        // Back where it waited, still aging from when it became ready.
        self.queues[class_index(item.entity().params.class)].push_back(item);
    }

    fn len(&self) -> usize {
        self.queues.iter().map(VecDeque::len).sum()
    }

    fn take_for_transfer(&mut self, count: usize) -> Vec<T> {
        let mut taken = Vec::new();
        for queue in self.queues.iter_mut() {
            while taken.len() < count {
                match queue.pop_back() {
                    Some(item) => taken.push(item),
                    None => break,
                }
            }
        }
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Job {
        id: usize,
        e: Entity,
        after: Option<u64>,
    }

    impl Schedulable for Job {
        fn entity(&self) -> &Entity {
            &self.e
        }
        fn entity_mut(&mut self) -> &mut Entity {
            &mut self.e
        }
        fn strand_id(&self) -> Option<u64> {
            Some(self.id as u64)
        }
        fn insert_after(&self) -> Option<u64> {
            self.after
        }
    }

    fn job(id: usize, weight: u32, class: LatencyClass, slice: Option<Nanos>) -> Job {
        Job {
            id,
            e: Entity::new(SchedParams {
                weight,
                class,
                slice,
                insert: Insert::Tail,
            }),
            after: None,
        }
    }

    const MS: Nanos = 1_000_000;

    /// Runs CPU-bound `jobs` on one core under `policy` for `total` ns: each
    /// runs its slice, is charged and requeued. Calls `check` after every
    /// run with the time so far and the jobs' charged CPU by id. Returns the
    /// CPU each got.
    fn run(
        policy: &mut dyn Policy<Job>,
        jobs: Vec<Job>,
        total: Nanos,
        mut check: impl FnMut(Nanos, &[u64]),
    ) -> Vec<u64> {
        let n = jobs.len();
        for j in jobs {
            policy.enqueue(j, Insert::Tail, 0);
        }
        let mut now = 0;
        let mut got = vec![0; n];
        while now < total {
            let mut j = policy.pick_next(now).expect("always something ready");
            let ran = policy.slice(&j);
            now += ran;
            policy.charge(&mut j, ran);
            got[j.id] = j.e.charged();
            policy.enqueue(j, Insert::Tail, now);
            check(now, &got);
        }
        got
    }

    fn weighted(weights: &[u32]) -> Vec<Job> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &w)| job(i, w, LatencyClass::Normal, None))
            .collect()
    }

    /// The most any strand's CPU differs from its weighted share of `now`.
    fn worst_lag(weights: &[u32], now: Nanos, got: &[u64]) -> i64 {
        let total: u64 = weights.iter().map(|&w| w as u64).sum();
        weights
            .iter()
            .zip(got)
            .map(|(&w, &g)| ((now as u128 * w as u128 / total as u128) as i64 - g as i64).abs())
            .max()
            .unwrap()
    }

    #[test]
    fn weights_one_two_four_get_one_two_four_sevenths_exactly() {
        for rule in [Rule::EarliestEligibleDeadline, Rule::LeastVirtualRuntime] {
            let weights = [1024, 2048, 4096];
            let mut p = Fair::new(rule, 2 * MS);
            let mut worst = 0;
            let got = run(&mut p, weighted(&weights), 7_000 * MS, |now, got| {
                worst = worst.max(worst_lag(&weights, now, got));
            });
            assert_eq!(got, [1_000 * MS, 2_000 * MS, 4_000 * MS], "{rule:?}");
            // Under EEVDF every strand stays within one slice of its share
            // at all times; least-virtual-runtime only within two.
            let bound = match rule {
                Rule::EarliestEligibleDeadline => 2 * MS,
                Rule::LeastVirtualRuntime => 4 * MS,
            };
            assert!(worst <= bound as i64, "{rule:?}: lag reached {worst} ns");
        }
    }

    #[test]
    fn a_short_slice_buys_latency_not_cpu() {
        // Same weight; one asks for 0.5 ms slices, two for the default 4 ms.
        let mut jobs = weighted(&[1024, 1024, 1024]);
        jobs[0].e.params.slice = Some(MS / 2);
        let mut p = Fair::new(Rule::EarliestEligibleDeadline, 4 * MS);
        let mut last_run = [0u64; 3];
        let mut longest_wait = [0u64; 3];
        let mut before = vec![0u64; 3];
        let got = run(&mut p, jobs, 3_000 * MS, |now, got| {
            for i in 0..3 {
                if got[i] != before[i] {
                    let started = now - (got[i] - before[i]);
                    longest_wait[i] = longest_wait[i].max(started - last_run[i]);
                    last_run[i] = now;
                }
            }
            before = got.to_vec();
        });
        let spread = got.iter().max().unwrap() - got.iter().min().unwrap();
        assert!(spread <= 4 * MS, "equal weights, equal CPU: {got:?}");
        assert!(
            longest_wait[0] * 2 <= longest_wait[1],
            "the short-slice strand waits less: {longest_wait:?}"
        );
    }

    #[test]
    fn lag_travels_with_a_strand_to_another_core() {
        let mut a: Fair<Job> = Fair::new(Rule::EarliestEligibleDeadline, 2 * MS);
        let mut b: Fair<Job> = Fair::new(Rule::EarliestEligibleDeadline, 2 * MS);
        // Core a: two strands; one runs a slice, the other is then owed.
        a.enqueue(job(0, 1024, LatencyClass::Normal, None), Insert::Tail, 0);
        a.enqueue(job(1, 1024, LatencyClass::Normal, None), Insert::Tail, 0);
        let mut first = a.pick_next(0).unwrap();
        a.charge(&mut first, 2 * MS);
        a.enqueue(first, Insert::Tail, 2 * MS);
        // The one that did not run is given away (it is the one with the
        // smaller virtual runtime, so take both and keep the runner).
        let mut moved = a.take_for_transfer(2);
        let owed_index = moved.iter().position(|j| j.e.lag() > 0).unwrap();
        let owed = moved.swap_remove(owed_index);
        assert_eq!(owed.e.lag(), MS as i64, "owed half a slice of the pair's");
        // Core b has a strand that has run a lot; the newcomer is placed
        // behind b's virtual time by its lag, so it runs first.
        b.enqueue(job(2, 1024, LatencyClass::Normal, None), Insert::Tail, 0);
        let mut busy = b.pick_next(0).unwrap();
        b.charge(&mut busy, 50 * MS);
        b.enqueue(busy, Insert::Tail, 50 * MS);
        b.enqueue(owed, Insert::Tail, 50 * MS);
        assert_eq!(b.pick_next(50 * MS).unwrap().id, 1);
    }

    /// Two equal strands under least virtual runtime, 2 ms slices; the
    /// first picked (strand 0) has run a whole second and is ready again.
    fn two_after_a_hog() -> Fair<Job> {
        let mut p: Fair<Job> = Fair::new(Rule::LeastVirtualRuntime, 2 * MS);
        p.enqueue(job(0, 1024, LatencyClass::Normal, None), Insert::Tail, 0);
        p.enqueue(job(1, 1024, LatencyClass::Normal, None), Insert::Tail, 0);
        let mut hog = p.pick_next(0).unwrap();
        p.charge(&mut hog, 1_000 * MS);
        p.enqueue(hog, Insert::Tail, 1_000 * MS);
        p
    }

    #[test]
    fn lag_is_clamped_to_one_slice_either_way() {
        // One runs a whole second (a hog); then both are taken away: the
        // hog owes half a second and the other is owed as much, but neither
        // carries more than one slice to its next core.
        let mut p = two_after_a_hog();
        let mut moved = p.take_for_transfer(2);
        moved.sort_by_key(|j| j.id);
        let lags: Vec<i64> = moved.iter().map(|j| j.e.lag()).collect();
        assert_eq!(lags, [-2 * MS as i64, 2 * MS as i64]);
        assert_eq!(p.len(), 0);
        assert_eq!(p.sum_w, 0, "nothing left in the set");
    }

    #[test]
    fn a_strand_put_back_keeps_its_place() {
        // Under Fair: taken out (lag clamped to a slice) and put back, a
        // strand that owed half a second still owes it.
        let mut p = two_after_a_hog();
        let v_before = p.virtual_time();
        for j in p.take_for_transfer(2) {
            p.untake(j, 1_000 * MS);
        }
        assert_eq!(p.virtual_time(), v_before);
        assert_eq!(p.pick_next(1_000 * MS).unwrap().id, 1, "the owed one first");
        // Under Priority: put back, a batch strand keeps aging from when it
        // became ready.
        let mut q: Priority<Job> = Priority::new(MS, 10 * MS);
        q.enqueue(job(0, 1024, LatencyClass::Batch, None), Insert::Tail, 0);
        for j in q.take_for_transfer(1) {
            q.untake(j, 30 * MS);
        }
        q.enqueue(
            job(1, 1024, LatencyClass::Latency, None),
            Insert::Tail,
            30 * MS,
        );
        assert_eq!(q.pick_next(30 * MS).unwrap().id, 0, "aged past latency");
    }

    #[test]
    fn priority_serves_classes_in_order_and_ages_the_waiting() {
        let mut p: Priority<Job> = Priority::new(MS, 10 * MS);
        p.enqueue(job(0, 1024, LatencyClass::Batch, None), Insert::Tail, 0);
        p.enqueue(job(1, 1024, LatencyClass::Normal, None), Insert::Tail, 0);
        p.enqueue(job(2, 1024, LatencyClass::Latency, None), Insert::Tail, 0);
        assert_eq!(p.slice(&job(9, 1, LatencyClass::Batch, None)), 4 * MS);
        // At time 0: latency, normal, batch.
        let order: Vec<usize> = (0..3).map(|_| p.pick_next(0).unwrap().id).collect();
        assert_eq!(order, [2, 1, 0]);
        // A batch strand that waited two aging periods beats fresh normal
        // and latency strands (nothing starves).
        p.enqueue(job(0, 1024, LatencyClass::Batch, None), Insert::Tail, 0);
        p.enqueue(
            job(1, 1024, LatencyClass::Normal, None),
            Insert::Tail,
            20 * MS,
        );
        p.enqueue(
            job(2, 1024, LatencyClass::Latency, None),
            Insert::Tail,
            20 * MS,
        );
        assert_eq!(p.pick_next(20 * MS).unwrap().id, 0);
        assert_eq!(p.pick_next(20 * MS).unwrap().id, 2);
    }

    #[test]
    fn a_latency_strand_that_keeps_waking_does_not_starve_the_others() {
        // One CPU-bound strand and one latency strand that runs 0.2 ms,
        // parks and is woken again at once, forever, equal weights. (Before
        // the fix, every wake of a latency strand placed it as owed a full
        // slice, and the CPU-bound strand never ran again.)
        let mut p: Fair<Job> = Fair::new(Rule::EarliestEligibleDeadline, 2 * MS);
        p.enqueue(job(0, 1024, LatencyClass::Normal, None), Insert::Tail, 0);
        p.enqueue(job(1, 1024, LatencyClass::Latency, None), Insert::Tail, 0);
        let mut now = 0;
        let mut got = [0u64; 2];
        for _ in 0..10_000 {
            let mut j = p.pick_next(now).unwrap();
            let ran = if j.id == 1 { MS / 5 } else { p.slice(&j) };
            now += ran;
            p.charge(&mut j, ran);
            got[j.id] += ran;
            if j.id == 1 {
                p.stopped(&mut j);
            }
            p.enqueue(j, Insert::Tail, now);
        }
        // Neither starves. (The waking strand gets less than half: each park
        // keeps at most one of its own — short — slices of lag, and a
        // strand joining a set moves the set's virtual time.)
        let share = got[0] as f64 / (got[0] + got[1]) as f64;
        assert!((0.45..=0.85).contains(&share), "CPU-bound share {share}");
    }

    #[test]
    fn a_latency_strand_that_wakes_runs_before_the_queue() {
        let mut p: Fair<Job> = Fair::new(Rule::EarliestEligibleDeadline, 2 * MS);
        for i in 0..4 {
            p.enqueue(job(i, 1024, LatencyClass::Normal, None), Insert::Tail, 0);
        }
        p.enqueue(job(4, 1024, LatencyClass::Latency, None), Insert::Tail, 0);
        assert_eq!(p.pick_next(0).unwrap().id, 4);
    }

    /// A latency strand runs for `ran`, parks, and wakes while a batch
    /// strand runs; the batch strand yields without having been charged
    /// (its cooperative step is not over by the clock yet). Returns who is
    /// picked next.
    fn picked_after_a_park(ran: Nanos) -> usize {
        let mut p: Fair<Job> = Fair::new(Rule::EarliestEligibleDeadline, 2 * MS);
        p.enqueue(job(0, 1024, LatencyClass::Batch, None), Insert::Tail, 0);
        p.enqueue(job(1, 1024, LatencyClass::Latency, None), Insert::Tail, 0);
        let mut latency = p.pick_next(0).unwrap();
        assert_eq!(latency.id, 1);
        p.charge(&mut latency, ran);
        p.stopped(&mut latency);
        let mut batch = p.pick_next(ran).unwrap();
        assert_eq!(batch.id, 0);
        p.enqueue(latency, Insert::Tail, ran);
        p.charge(&mut batch, 0);
        p.enqueue(batch, Insert::Tail, ran);
        p.pick_next(ran).unwrap().id
    }

    #[test]
    fn a_latency_strand_owing_a_little_is_eligible_and_one_owing_more_is_not() {
        // It owes half of its microsecond: within the slack, it runs first.
        assert_eq!(picked_after_a_park(1_000), 1);
        // It owes half a millisecond (its whole slice): it waits its turn.
        assert_eq!(picked_after_a_park(2 * MS), 0);
    }

    /// A dispatcher (latency class) and `batch` batch strands on one core:
    /// each round the dispatcher runs `burst` ns and parks, the batch
    /// strand picked next computes a 100 µs step, wakes it and yields.
    /// Returns how many of 1 000 wakes waited behind another step.
    fn dispatcher_late_wakes(batch: usize, burst: Nanos) -> usize {
        let mut p: Fair<Job> = Fair::new(Rule::EarliestEligibleDeadline, 2 * MS);
        for id in 0..batch {
            p.enqueue(job(id, 1024, LatencyClass::Batch, None), Insert::Tail, 0);
        }
        p.enqueue(
            job(batch, 1024, LatencyClass::Latency, None),
            Insert::Tail,
            0,
        );
        let mut late = 0;
        for _ in 0..1_000 {
            let mut first = p.pick_next(0).unwrap();
            while first.id != batch {
                // A batch strand went first: one more step.
                late += 1;
                p.charge(&mut first, 100_000);
                p.enqueue(first, Insert::Tail, 0);
                first = p.pick_next(0).unwrap();
            }
            p.charge(&mut first, burst);
            p.stopped(&mut first);
            let mut step = p.pick_next(0).unwrap();
            p.charge(&mut step, 100_000);
            p.enqueue(first, Insert::Tail, 0);
            p.enqueue(step, Insert::Tail, 0);
        }
        late
    }

    #[test]
    fn a_strand_that_runs_in_bursts_and_parks_repays_its_debt_while_parked() {
        // Each burst leaves the dispatcher owing most of it, and it is never
        // ready long enough to earn; what the batch strands advance while it
        // is parked repays that, so every wake finds it eligible. (Without
        // the repayment: 142 late with 3 batch strands and 30 µs bursts, 996
        // with 6. Bursts of 60 µs among 6 batch strands outrun it: 1 496
        // late with it, 2 494 without.)
        for batch in [1, 3, 6] {
            for burst in [5_000, 30_000] {
                let late = dispatcher_late_wakes(batch, burst);
                assert_eq!(late, 0, "{batch} batch strands, {burst} ns bursts");
            }
        }
    }

    #[test]
    fn the_ready_set_keeps_key_order_as_it_grows_past_a_deque_and_shrinks_back() {
        // Against a B-tree model, with random operations that take it over
        // SMALL and back many times.
        let mut rng = crate::Rng::new(12);
        let mut set: ReadySet<u64> = ReadySet::default();
        let mut model: BTreeMap<Key, u64> = BTreeMap::new();
        let mut next = 0;
        let mut was_large = false;
        for step in 0..20_000 {
            let grow = (step / 500) % 2 == 0;
            match rng.below(4) {
                0 | 1 if grow || model.is_empty() => {
                    let key = (rng.below(1_000), next);
                    next += 1;
                    set.insert(key, key.1);
                    model.insert(key, key.1);
                }
                0 | 1 => assert_eq!(set.pop_last(), model.pop_last(), "step {step}"),
                _ => {
                    let nth = rng.below(model.len().max(1) as u64) as usize;
                    let key = model.keys().nth(nth).copied().unwrap_or((0, u64::MAX));
                    assert_eq!(set.remove(&key), model.remove(&key), "step {step}");
                }
            }
            was_large |= matches!(set, ReadySet::Large(_));
            assert_eq!(set.len(), model.len());
            if step % 97 == 0 {
                let got: Vec<(Key, u64)> = set.iter().map(|(k, v)| (k, *v)).collect();
                let want: Vec<(Key, u64)> = model.iter().map(|(k, v)| (*k, *v)).collect();
                assert_eq!(got, want, "step {step}");
            }
        }
        assert!(
            was_large && matches!(set, ReadySet::Small(_)),
            "it crossed over both ways"
        );
    }

    #[test]
    fn the_lag_check_finds_a_strand_that_ran_past_its_slice() {
        // A strand that computed 10 ms without a runtime call owes beyond
        // its 2 ms slice; one that yielded within its slice does not.
        let lag_after = |ran: Nanos| {
            let mut p: Fair<Job> = Fair::new(Rule::EarliestEligibleDeadline, 2 * MS);
            p.enqueue(job(0, 1024, LatencyClass::Normal, None), Insert::Tail, 0);
            p.enqueue(job(1, 1024, LatencyClass::Normal, None), Insert::Tail, 0);
            let mut j = p.pick_next(0).unwrap();
            p.charge(&mut j, ran);
            p.enqueue(j, Insert::Tail, ran);
            (p.lag_outside_bound(false, 0), p.lag_outside_bound(true, 0))
        };
        assert_eq!(lag_after(2 * MS), (None, None));
        // V is the average of 0 and 10 ms: it owes 5 ms, beyond its slice
        // and the slack; the other is owed 5 ms, within a batch slice (all
        // a strand could wait behind, looking at the ends only) but beyond
        // the longest slice of the strands actually ready (scanning all).
        let ms = MS as i64;
        let owing = Some((-5 * ms, -(2 * ms + 2 * ms / 32)));
        assert_eq!(lag_after(10 * MS), (owing, Some((5 * ms, 2 * ms))));
    }

    /// A strand that names a ready dependency runs right after it under
    /// round robin, priority (within its class) and EEVDF (as its share
    /// allows), and at the tail when the dependency is not ready here.
    #[test]
    fn a_strand_inserted_after_its_dependency_runs_right_after_it() {
        let order = |mut p: crate::policy::AnyPolicy<Job>, after: u64| {
            // Deadlines in the order of arrival (slices of 1 to 4 ms); the
            // newcomer's own (a 10 ms slice) is the latest.
            for id in 0..4 {
                let slice = Some((id as u64 + 1) * MS);
                p.enqueue(
                    job(id, UNIT_WEIGHT, LatencyClass::Normal, slice),
                    Insert::Tail,
                    0,
                );
            }
            let mut newcomer = job(9, UNIT_WEIGHT, LatencyClass::Normal, Some(10 * MS));
            newcomer.after = Some(after);
            p.enqueue(newcomer, Insert::After, 0);
            std::iter::from_fn(|| p.pick_next(0).map(|j| j.id)).collect::<Vec<_>>()
        };
        let policies = || {
            [
                (
                    "round robin",
                    crate::policy::AnyPolicy::RoundRobin(crate::policy::RoundRobin::new(MS)),
                ),
                (
                    "priority",
                    crate::policy::AnyPolicy::Priority(Priority::new(MS, 10 * MS)),
                ),
                (
                    "eevdf",
                    crate::policy::AnyPolicy::Fair(Fair::new(
                        Rule::EarliestEligibleDeadline,
                        2 * MS,
                    )),
                ),
            ]
        };
        for (name, p) in policies() {
            assert_eq!(order(p, 1), [0, 1, 9, 2, 3], "{name}");
        }
        for (name, p) in policies() {
            assert_eq!(order(p, 7), [0, 1, 2, 3, 9], "{name}: no such strand ready");
        }
        // CFS: the virtual runtime is the order and the share; no reordering.
        let cfs = crate::policy::AnyPolicy::Fair(Fair::new(Rule::LeastVirtualRuntime, 2 * MS));
        assert_eq!(order(cfs, 1), [0, 1, 2, 3, 9]);
    }

    /// Strands released from a budget's throttle run next, the one due
    /// first first (the scheduler releases the latest first), however many
    /// strands are ready (more than EEVDF compares in a pick); one still in
    /// debt when released waits like any other.
    #[test]
    fn released_strands_run_next_in_the_order_they_came_due_unless_in_debt() {
        for rule in [Rule::EarliestEligibleDeadline, Rule::LeastVirtualRuntime] {
            let mut p = Fair::new(rule, 2 * MS);
            for i in 0..20 {
                p.enqueue(
                    job(i, UNIT_WEIGHT, LatencyClass::Normal, None),
                    Insert::Tail,
                    0,
                );
            }
            let mut now = 0;
            let slice = |p: &mut Fair<Job>, now: &mut Nanos| {
                let mut j = p.pick_next(*now).expect("ready");
                *now += 2 * MS;
                p.charge(&mut j, 2 * MS);
                j
            };
            // Two run a slice each and are throttled (out of the set).
            let mut held = Vec::new();
            for _ in 0..2 {
                let mut j = slice(&mut p, &mut now);
                p.stopped(&mut j);
                held.push(j);
            }
            // The others run ten slices each meanwhile: the debt is repaid.
            for _ in 0..180 {
                let j = slice(&mut p, &mut now);
                p.enqueue(j, Insert::Tail, now);
            }
            let later = held.pop().unwrap();
            let earlier = held.pop().unwrap();
            let (a, b) = (earlier.id, later.id);
            p.released(later, now);
            p.released(earlier, now);
            assert_eq!(p.pick_next(now).unwrap().id, a, "{rule:?}");
            assert_eq!(p.pick_next(now).unwrap().id, b, "{rule:?}");
            // Throttled after its slice and released at once: it owes
            // almost the whole slice, and waits.
            let mut j = slice(&mut p, &mut now);
            let id = j.id;
            p.stopped(&mut j);
            p.released(j, now);
            assert_ne!(p.pick_next(now).unwrap().id, id, "{rule:?}");
        }
    }

    /// What a lease's fairness check asks of a shared core, under each
    /// policy: the highest class ready, none when nothing is.
    #[test]
    fn each_policy_names_its_highest_ready_class() {
        use crate::policy::{AnyPolicy, RoundRobin};
        let policies: [AnyPolicy<Job>; 3] = [
            AnyPolicy::RoundRobin(RoundRobin::new(2 * MS)),
            AnyPolicy::Fair(Fair::new(Rule::EarliestEligibleDeadline, 2 * MS)),
            AnyPolicy::Priority(Priority::new(2 * MS, 20 * MS)),
        ];
        for mut p in policies {
            assert_eq!(p.highest_ready_class(), None, "{p:?}");
            p.enqueue(
                job(0, UNIT_WEIGHT, LatencyClass::Batch, None),
                Insert::Tail,
                0,
            );
            assert_eq!(p.highest_ready_class(), Some(LatencyClass::Batch), "{p:?}");
            p.enqueue(
                job(1, UNIT_WEIGHT, LatencyClass::Normal, None),
                Insert::Tail,
                0,
            );
            p.enqueue(
                job(2, UNIT_WEIGHT, LatencyClass::Batch, None),
                Insert::Tail,
                0,
            );
            assert_eq!(p.highest_ready_class(), Some(LatencyClass::Normal), "{p:?}");
            let latency = job(3, UNIT_WEIGHT, LatencyClass::Latency, None);
            p.enqueue(latency, Insert::Tail, 0);
            assert_eq!(
                p.highest_ready_class(),
                Some(LatencyClass::Latency),
                "{p:?}"
            );
        }
    }
}
