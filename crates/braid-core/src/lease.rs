//! Fairness termination of exclusive-core leases (seed 002's
//! `CpuIsolationLease`): a lease keeps its core from everyone outside its
//! group, so it ends when that keeps work waiting that the rest of the
//! machine cannot take — work of the group's latency class or a higher one,
//! queued on every shared core, lasting.
//!
//! The driver looks at the shared cores now and then (the runtime's monitor
//! every tick, 1 ms) and gives each look to each lease's [`Fairness`]; the
//! decision is here, pure, with time as input (braid-sim's `lease` and
//! `lease-contended` workloads run it every simulated millisecond).

use crate::fair::LatencyClass;
use crate::policy::Nanos;

/// Ready strands a shared core must hold at a look to count as backlogged:
/// 2, i.e. more than one waiting behind the one that runs. One is not
/// starvation (a strand that just woke waits at most a slice); a lasting
/// queue on every shared core is work that cannot run anywhere else while
/// the leased core is kept from it.
pub const BACKLOG: usize = 2;

/// How long every shared core must have kept the lease's class of work
/// waiting before the lease is terminated: 20 ms.
pub const TERMINATION_AFTER: Nanos = 20_000_000;

/// One shared core at one look.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SharedCore {
    /// Its ready strands.
    pub ready: usize,
    /// The highest latency class among them (`None`: not known, as for a
    /// program's own policy; then any waiting work counts).
    pub top: Option<LatencyClass>,
}

impl SharedCore {
    /// Whether this core keeps work waiting that a lease of `class` keeps
    /// its core from: a backlog with a strand of `class` or higher in it.
    /// Lower classes wait behind a higher class's lease by design: a batch
    /// queue does not end a latency group's lease.
    pub fn kept_waiting(&self, class: LatencyClass) -> bool {
        self.ready >= BACKLOG && self.top.is_none_or(|top| top >= class)
    }
}

/// One lease's fairness state: since when every shared core has kept work
/// of its class waiting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Fairness {
    since: Option<Nanos>,
}

impl Fairness {
    /// A look at `now` at the shared cores, for a lease whose group is of
    /// `class`: whether the lease is to be terminated (every shared core
    /// kept such work waiting at every look for [`TERMINATION_AFTER`]).
    /// No shared core (every core leased): nothing waits anywhere else.
    pub fn look(
        &mut self,
        now: Nanos,
        class: LatencyClass,
        shared: impl IntoIterator<Item = SharedCore>,
    ) -> bool {
        let mut any = false;
        let all = shared.into_iter().all(|core| {
            any = true;
            core.kept_waiting(class)
        });
        if !(any && all) {
            self.since = None;
            return false;
        }
        let since = *self.since.get_or_insert(now);
        now - since >= TERMINATION_AFTER
    }

    /// Since when every shared core has kept such work waiting, if it has.
    pub fn backlogged_since(&self) -> Option<Nanos> {
        self.since
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use LatencyClass::{Batch, Latency, Normal};

    const MS: Nanos = 1_000_000;

    fn cores(ready: usize, top: Option<LatencyClass>, n: usize) -> Vec<SharedCore> {
        vec![SharedCore { ready, top }; n]
    }

    #[test]
    fn a_lasting_backlog_of_the_class_terminates_and_a_gap_restarts_the_count() {
        let mut f = Fairness::default();
        for t in 0..20 {
            assert!(!f.look(t * MS, Normal, cores(3, Some(Normal), 2)), "{t} ms");
        }
        assert!(f.look(20 * MS, Normal, cores(3, Some(Normal), 2)));
        // One core with a single strand at one look: the count restarts.
        let mut g = Fairness::default();
        assert!(!g.look(0, Normal, cores(3, Some(Latency), 2)));
        let mut gap = cores(3, Some(Normal), 2);
        gap[1].ready = 1;
        assert!(!g.look(10 * MS, Normal, gap));
        assert_eq!(g.backlogged_since(), None);
        assert!(!g.look(11 * MS, Normal, cores(2, Some(Normal), 2)));
        assert!(!g.look(30 * MS, Normal, cores(2, Some(Normal), 2)));
        assert!(g.look(31 * MS, Normal, cores(2, Some(Normal), 2)));
    }

    #[test]
    fn lower_classes_waiting_do_not_end_a_higher_class_lease() {
        let mut f = Fairness::default();
        for t in 0..100 {
            assert!(!f.look(t * MS, Latency, cores(8, Some(Normal), 2)));
            assert!(!f.look(t * MS, Normal, cores(8, Some(Batch), 2)));
        }
        // Not known (a custom policy): any waiting work counts.
        let mut g = Fairness::default();
        assert!(!g.look(0, Latency, cores(2, None, 1)));
        assert!(g.look(TERMINATION_AFTER, Latency, cores(2, None, 1)));
        // Every core leased: nothing waits elsewhere.
        assert!(!Fairness::default().look(0, Batch, Vec::new()));
    }
}
