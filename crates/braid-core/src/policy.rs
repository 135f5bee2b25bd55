//! The local scheduling policy: which ready strand a core runs next.
//!
//! A policy owns the ready structure of one core. The runtime calls it from that
//! core only, so it needs no synchronisation; time is passed in as [`Nanos`] from
//! whatever clock the caller uses (a real coarse clock, or a simulated one).

use crate::fair::{Fair, LatencyClass, Priority, Schedulable};
use std::collections::VecDeque;

/// Nanoseconds on the caller's clock. Only differences are meaningful.
pub type Nanos = u64;

/// Where a newly ready strand enters the ready structure.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Insert {
    /// Behind everything already ready: the normal case (spawn, yield, wake).
    #[default]
    Tail,
    /// In front of everything: a strand that should run next (for example one woken
    /// by the strand that just blocked on it, to keep a hand-off on one core hot).
    Head,
    /// Right behind the strand it names ([`Schedulable::insert_after`], by
    /// [`Schedulable::strand_id`]), a dependency it consumes the work of,
    /// when that strand is ready on the same core; at the tail otherwise.
    /// Round robin puts it right behind; strict priority too, when the
    /// dependency is in the newcomer's own class (it looks nowhere else);
    /// EEVDF gives it a virtual deadline just after the dependency's when
    /// that is earlier than its own, which orders it without changing its
    /// share (it still runs only once eligible); CFS orders by virtual
    /// runtime alone, which is the share, so there it enters as at the
    /// tail. A driver turns a hint that names the strand running on the
    /// core into [`Insert::Head`] (under the fair policies that forgives
    /// what the newcomer owes, as any head insertion does).
    After,
}

/// A core's ready structure and the rule that orders it.
///
/// `T` is whatever the runtime schedules (a boxed strand, an id in a simulator).
pub trait Policy<T> {
    /// Makes `item` ready at time `now`, placed according to `hint`.
    fn enqueue(&mut self, item: T, hint: Insert, now: Nanos);

    /// Makes `item`, held back by its CPU budget until now, ready again:
    /// it should run soon, or the refill it waited for is used late and
    /// lost (see [`CoreSched::slice_end`](crate::sched::CoreSched::slice_end)).
    /// Strands released together come the one due last first: a policy
    /// that runs each before all it holds serves them in the order they
    /// came due. Default: a head insertion ([`Priority`] heads only its
    /// strand's class).
    fn released(&mut self, item: T, now: Nanos) {
        self.enqueue(item, Insert::Head, now);
    }

    /// Removes and returns the strand to run next, or `None` when nothing is ready.
    fn pick_next(&mut self, now: Nanos) -> Option<T>;

    /// How long `item`, about to run, may run before it is asked to yield to
    /// the others at its next runtime call (its time slice).
    ///
    /// The driver asks when it dispatches the strand and checks the clock
    /// against the answer at the strand's runtime calls: the check runs on the
    /// strand's own thread, where the core's state may already belong to
    /// another carrier (a hog hand-off), so it cannot ask the policy then.
    #[must_use]
    fn slice(&self, item: &T) -> Nanos;

    /// `item`, picked by [`pick_next`](Self::pick_next), ran for `ran` ns and
    /// came back (it yielded, parked or exited). The driver calls this before
    /// it enqueues the strand again or reports it [`stopped`](Self::stopped).
    fn charge(&mut self, item: &mut T, ran: Nanos) {
        let _ = (item, ran);
    }
    /// Whether the policy's decisions depend on how long each run took,
    /// finer than a driver's coarse clock shows it: the runtime then
    /// measures every run with a cycle counter and charges that
    /// ([`CoreSched::ran_measured`](crate::sched::CoreSched::ran_measured)).
    /// Virtual-time policies do; round robin and priority do not.
    fn fine_clock(&self) -> bool {
        false
    }

    /// `item`, which ran here, parked or exited: it leaves the core's set of
    /// runnable strands until it is enqueued again.
    fn stopped(&mut self, item: &mut T) {
        let _ = item;
    }
    /// `item`, picked by [`pick_next`](Self::pick_next), is sent to another
    /// core instead of running (a leased core evicting it): it leaves this
    /// core's set as a strand taken for transfer does.
    fn given_away(&mut self, item: &mut T) {
        let _ = item;
    }

    /// Number of ready strands.
    fn len(&self) -> usize;

    /// Whether nothing is ready.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes up to `count` strands that are the best candidates to run elsewhere
    /// (the ones this core would run last), for the balancer to give away.
    fn take_for_transfer(&mut self, count: usize) -> Vec<T>;

    /// Puts back a strand that [`take_for_transfer`](Self::take_for_transfer)
    /// or [`take_near_weight`](Self::take_near_weight) returned but that may
    /// not move (pinned, woken by I/O): as it was, not as newly ready. By
    /// default, enqueued at the tail.
    fn untake(&mut self, item: T, now: Nanos) {
        self.enqueue(item, Insert::Tail, now);
    }

    /// How loaded the core is, as a weight-aware balancer compares cores:
    /// the weight of its runnable strands and its virtual time. By default
    /// every ready strand weighs [`UNIT_WEIGHT`](crate::fair::UNIT_WEIGHT)
    /// and there is no virtual time.
    fn load(&self) -> Load {
        Load {
            weight: self.len() as u64 * crate::fair::UNIT_WEIGHT as u64,
            vtime: 0,
        }
    }

    /// Removes the ready strand whose weight is nearest `weight` without
    /// exceeding `limit`, for a weight-aware balancer to give away; `None`
    /// if none qualifies (or the policy keeps no weights).
    fn take_near_weight(&mut self, weight: u64, limit: u64) -> Option<T> {
        let _ = (weight, limit);
        None
    }
}

/// A core's load as weight-aware balancing sees it (see [`Policy::load`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Load {
    /// The weight of the strands that want the CPU (ready and running).
    pub weight: u64,
    /// The core's virtual time (how far its strands have progressed per
    /// unit of weight); 0 for policies without one.
    pub vtime: u64,
}

/// A policy chosen at run time (for example by a command-line flag).
impl<T, P: Policy<T> + ?Sized> Policy<T> for Box<P> {
    #[inline]
    fn enqueue(&mut self, item: T, hint: Insert, now: Nanos) {
        (**self).enqueue(item, hint, now);
    }
    #[inline]
    fn pick_next(&mut self, now: Nanos) -> Option<T> {
        (**self).pick_next(now)
    }
    #[inline]
    fn slice(&self, item: &T) -> Nanos {
        (**self).slice(item)
    }
    #[inline]
    fn charge(&mut self, item: &mut T, ran: Nanos) {
        (**self).charge(item, ran);
    }
    #[inline]
    fn stopped(&mut self, item: &mut T) {
        (**self).stopped(item);
    }
    #[inline]
    fn len(&self) -> usize {
        (**self).len()
    }
    fn take_for_transfer(&mut self, count: usize) -> Vec<T> {
        (**self).take_for_transfer(count)
    }
    fn untake(&mut self, item: T, now: Nanos) {
        (**self).untake(item, now);
    }
    fn released(&mut self, item: T, now: Nanos) {
        (**self).released(item, now);
    }
    fn load(&self) -> Load {
        (**self).load()
    }
    fn take_near_weight(&mut self, weight: u64, limit: u64) -> Option<T> {
        (**self).take_near_weight(weight, limit)
    }
    fn fine_clock(&self) -> bool {
        (**self).fine_clock()
    }
    fn given_away(&mut self, item: &mut T) {
        (**self).given_away(item);
    }
}

/// The policy of a runtime or simulation, chosen when it is built: braid's own
/// policies by value (their calls inline), or any other behind a box.
pub enum AnyPolicy<T> {
    /// [`RoundRobin`].
    RoundRobin(RoundRobin<T>),
    /// [`Fair`]: EEVDF or CFS-like.
    Fair(Fair<T>),
    /// [`Priority`].
    Priority(Priority<T>),
    /// Any other policy.
    Custom(Box<dyn Policy<T> + Send>),
}

impl<T> std::fmt::Debug for AnyPolicy<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AnyPolicy::RoundRobin(rr) => write!(f, "RoundRobin(slice {} ns)", rr.time_slice()),
            AnyPolicy::Fair(p) => write!(f, "Fair({:?}, slice {} ns)", p.rule(), p.base_slice()),
            AnyPolicy::Priority(_) => f.write_str("Priority"),
            AnyPolicy::Custom(_) => f.write_str("Custom"),
        }
    }
}

macro_rules! each_policy {
    ($self:expr, $p:ident => $e:expr) => {
        match $self {
            AnyPolicy::RoundRobin($p) => $e,
            AnyPolicy::Fair($p) => $e,
            AnyPolicy::Priority($p) => $e,
            AnyPolicy::Custom($p) => $e,
        }
    };
}

/// Round robin, the default, is tried first and inline: one compare, then
/// its code. The other policies go through one call each (`others_*`), so
/// their larger code does not keep the dispatch from inlining into the
/// scheduler's hot path (measured: with one four-way match a yield took
/// about 100 more instructions, mostly moves and calls that had been inline).
impl<T: Schedulable> AnyPolicy<T> {
    /// The highest latency class among the ready strands (`None`: none
    /// ready, or a custom policy, whose ready set is its own): what a
    /// lease's fairness termination compares (see [`crate::lease`]).
    /// O(ready strands); for an occasional look, not the hot path.
    pub fn highest_ready_class(&self) -> Option<LatencyClass> {
        let class = |t: &T| t.params().class;
        match self {
            AnyPolicy::RoundRobin(p) => p.ready.iter().map(class).max(),
            AnyPolicy::Fair(p) => p.ready_strands().map(class).max(),
            AnyPolicy::Priority(p) => p.highest_ready_class(),
            AnyPolicy::Custom(_) => None,
        }
    }

    /// Round robin's [`Insert::After`]: behind the strand `item` names.
    #[cold]
    #[inline(never)]
    fn enqueue_after(p: &mut RoundRobin<T>, item: T) {
        match item.insert_after() {
            Some(dependency) => p.enqueue_after(item, |t| t.strand_id() == Some(dependency)),
            None => p.enqueue(item, Insert::Tail, 0),
        }
    }
}

impl<T: Schedulable> Policy<T> for AnyPolicy<T> {
    #[inline(always)]
    fn enqueue(&mut self, item: T, hint: Insert, now: Nanos) {
        match self {
            AnyPolicy::RoundRobin(p) => match hint {
                Insert::After => Self::enqueue_after(p, item),
                _ => p.enqueue(item, hint, now),
            },
            _ => self.others_enqueue(item, hint, now),
        }
    }
    #[inline(always)]
    fn pick_next(&mut self, now: Nanos) -> Option<T> {
        match self {
            AnyPolicy::RoundRobin(p) => p.pick_next(now),
            _ => self.others_pick_next(now),
        }
    }
    #[inline(always)]
    fn slice(&self, item: &T) -> Nanos {
        match self {
            AnyPolicy::RoundRobin(p) => p.slice(item),
            _ => self.others_slice(item),
        }
    }
    #[inline(always)]
    fn charge(&mut self, item: &mut T, ran: Nanos) {
        if !matches!(self, AnyPolicy::RoundRobin(_)) {
            self.others_charge(item, ran);
        }
    }
    #[inline(always)]
    fn stopped(&mut self, item: &mut T) {
        if !matches!(self, AnyPolicy::RoundRobin(_)) {
            self.others_stopped(item);
        }
    }
    #[inline(always)]
    fn len(&self) -> usize {
        match self {
            AnyPolicy::RoundRobin(p) => p.len(),
            _ => self.others_len(),
        }
    }
    #[inline(always)]
    fn take_for_transfer(&mut self, count: usize) -> Vec<T> {
        match self {
            AnyPolicy::RoundRobin(p) => p.take_for_transfer(count),
            _ => self.others_take_for_transfer(count),
        }
    }
    fn untake(&mut self, item: T, now: Nanos) {
        each_policy!(self, p => p.untake(item, now));
    }
    fn released(&mut self, item: T, now: Nanos) {
        each_policy!(self, p => p.released(item, now));
    }
    fn load(&self) -> Load {
        each_policy!(self, p => p.load())
    }
    fn take_near_weight(&mut self, weight: u64, limit: u64) -> Option<T> {
        each_policy!(self, p => p.take_near_weight(weight, limit))
    }
    fn fine_clock(&self) -> bool {
        each_policy!(self, p => p.fine_clock())
    }
    fn given_away(&mut self, item: &mut T) {
        each_policy!(self, p => p.given_away(item));
    }
}

impl<T: Schedulable> AnyPolicy<T> {
    #[inline(never)]
    fn others_take_for_transfer(&mut self, count: usize) -> Vec<T> {
        each_policy!(self, p => p.take_for_transfer(count))
    }
    #[inline(never)]
    fn others_enqueue(&mut self, item: T, hint: Insert, now: Nanos) {
        each_policy!(self, p => p.enqueue(item, hint, now));
    }
    #[inline(never)]
    fn others_pick_next(&mut self, now: Nanos) -> Option<T> {
        each_policy!(self, p => p.pick_next(now))
    }
    #[inline(never)]
    fn others_slice(&self, item: &T) -> Nanos {
        each_policy!(self, p => p.slice(item))
    }
    #[inline(never)]
    fn others_charge(&mut self, item: &mut T, ran: Nanos) {
        each_policy!(self, p => p.charge(item, ran));
    }
    #[inline(never)]
    fn others_stopped(&mut self, item: &mut T) {
        each_policy!(self, p => p.stopped(item));
    }
    #[inline(never)]
    fn others_len(&self) -> usize {
        each_policy!(self, p => p.len())
    }
}

/// First-in, first-out round robin with a fixed time slice.
#[derive(Clone, Debug, Hash)]
pub struct RoundRobin<T> {
    ready: VecDeque<T>,
    slice: Nanos,
}

impl<T> RoundRobin<T> {
    /// A round-robin policy whose strands may run `slice` nanoseconds before they
    /// are asked to yield.
    pub fn new(slice: Nanos) -> RoundRobin<T> {
        RoundRobin {
            ready: VecDeque::new(),
            slice,
        }
    }

    /// The time slice every strand gets.
    pub fn time_slice(&self) -> Nanos {
        self.slice
    }
}

impl<T> RoundRobin<T> {
    /// Makes `item` ready right behind the first ready strand `is_dependency`
    /// picks out, or at the tail if none (see [`Insert::After`]).
    pub fn enqueue_after(&mut self, item: T, is_dependency: impl Fn(&T) -> bool) {
        insert_behind(&mut self.ready, item, is_dependency);
    }
}

/// Puts `item` into `queue` right behind the first entry `is_dependency`
/// picks out, or at the back if none: an [`Insert::After`] in a FIFO.
pub(crate) fn insert_behind<T>(
    queue: &mut VecDeque<T>,
    item: T,
    is_dependency: impl Fn(&T) -> bool,
) {
    match queue.iter().position(is_dependency) {
        Some(at) => queue.insert(at + 1, item),
        None => queue.push_back(item),
    }
}

impl<T> Policy<T> for RoundRobin<T> {
    /// An [`Insert::After`] goes to the tail here: a bare round robin
    /// cannot tell its strands apart (see [`RoundRobin::enqueue_after`]).
    #[inline]
    fn enqueue(&mut self, item: T, hint: Insert, _now: Nanos) {
        match hint {
            Insert::Head => self.ready.push_front(item),
            Insert::Tail | Insert::After => self.ready.push_back(item),
        }
    }

    #[inline]
    fn pick_next(&mut self, _now: Nanos) -> Option<T> {
        self.ready.pop_front()
    }

    #[inline]
    fn slice(&self, _item: &T) -> Nanos {
        self.slice
    }

    #[inline]
    fn len(&self) -> usize {
        self.ready.len()
    }

    fn take_for_transfer(&mut self, count: usize) -> Vec<T> {
        let count = count.min(self.ready.len());
        let keep = self.ready.len() - count;
        self.ready.drain(keep..).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_order_with_head_insertion() {
        let mut rr = RoundRobin::new(1_000);
        rr.enqueue(1, Insert::Tail, 0);
        rr.enqueue(2, Insert::Tail, 0);
        rr.enqueue(0, Insert::Head, 0);
        assert_eq!(rr.len(), 3);
        assert_eq!(rr.pick_next(0), Some(0));
        assert_eq!(rr.pick_next(0), Some(1));
        assert_eq!(rr.pick_next(0), Some(2));
        assert_eq!(rr.pick_next(0), None);
        assert!(rr.is_empty());
    }

    #[test]
    fn every_strand_gets_the_configured_slice() {
        let rr = RoundRobin::<u32>::new(2_000_000);
        assert_eq!(rr.slice(&1), 2_000_000);
        assert_eq!(rr.slice(&7), 2_000_000);
    }

    #[test]
    fn transfer_takes_the_strands_that_would_run_last() {
        let mut rr = RoundRobin::new(1);
        for i in 0..6 {
            rr.enqueue(i, Insert::Tail, 0);
        }
        assert_eq!(rr.take_for_transfer(2), vec![4, 5]);
        assert_eq!(rr.take_for_transfer(10), vec![0, 1, 2, 3]);
        assert!(rr.take_for_transfer(1).is_empty());
    }
}
