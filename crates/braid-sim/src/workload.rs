//! What simulated strands do: the [`Workload`] trait and its context.

use braid_core::{CoreId, Nanos};

/// A simulated strand's index: dense, from 0, in spawn order.
pub type StrandIdx = u32;

/// What a strand does next, returned by [`Workload::act`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Then {
    /// Compute this long without a runtime call, then act again.
    Run(Nanos),
    /// Compute this long making runtime calls now and then (as a loop that
    /// sends, spawns or signals does), then act again: the strand yields
    /// whenever its time slice (its policy's) is used up, and carries on
    /// when it next runs.
    Compute(Nanos),
    /// Yield: back to the ready queue; act again when next run.
    Yield,
    /// Park until woken; act again when next run. A wake that arrived since
    /// the strand last ran makes the park return at once (the park word's
    /// `NOTIFIED`), so a workload re-checks its condition in `act`.
    Block,
    /// The strand's body returns.
    Exit,
}

/// A spawn a strand asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SpawnReq {
    pub(crate) idx: StrandIdx,
    /// The core asked for (pinned there), or `None`: the spawning core.
    pub(crate) core: Option<CoreId>,
}

/// What an `act` call may do besides returning: spawn strands, wake strands,
/// record a response time.
#[derive(Debug, Default)]
pub struct Ctx {
    pub(crate) now: Nanos,
    pub(crate) spawns: Vec<SpawnReq>,
    pub(crate) wakes: Vec<StrandIdx>,
    pub(crate) responses: Vec<Nanos>,
    pub(crate) next_idx: StrandIdx,
    pub(crate) cores: usize,
}

impl Ctx {
    /// The simulated time of this call.
    pub fn now(&self) -> Nanos {
        self.now
    }

    /// How many cores the simulation has.
    pub fn cores(&self) -> usize {
        self.cores
    }

    /// Spawns a strand (on the calling strand's core, free to move, or pinned
    /// to `core`); returns its index. Its first `act` comes when it first runs.
    pub fn spawn(&mut self, core: Option<CoreId>) -> StrandIdx {
        let idx = self.next_idx;
        self.next_idx += 1;
        self.spawns.push(SpawnReq { idx, core });
        idx
    }

    /// Wakes strand `idx` (a no-op for a strand already woken and not yet
    /// run, as with the park word).
    pub fn wake(&mut self, idx: StrandIdx) {
        self.wakes.push(idx);
    }

    /// Records a request's response time (the `server` workload).
    pub fn respond(&mut self, latency: Nanos) {
        self.responses.push(latency);
    }
}

/// An exclusive-core lease a workload asks for (see
/// [`Workload::lease`]): core `core` is leased to the strands
/// [`Workload::in_lease_group`] names from time `at`, and the lease is
/// terminated for fairness as the runtime's monitor does (braid-core's
/// `lease::Fairness`, looked at every millisecond), its group being of
/// latency class `class`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SimLease {
    /// The leased core.
    pub core: CoreId,
    /// When the lease starts.
    pub at: Nanos,
    /// The group's latency class.
    pub class: braid_core::LatencyClass,
}

/// A synthetic program: what each strand does each time it runs.
pub trait Workload {
    /// The workload's name in reports.
    fn name(&self) -> String;

    /// Strands started from outside the cores at time 0 (injected round robin,
    /// like a runtime's `block_on` root): how many. Their indices are `0..n`.
    /// Most workloads have one root that spawns the rest.
    fn roots(&mut self, cores: usize) -> u32 {
        let _ = cores;
        1
    }

    /// Strand `idx` runs: what it does until its next suspension.
    fn act(&mut self, idx: StrandIdx, ctx: &mut Ctx) -> Then;

    /// Requests that arrive from outside (the `server` workload): the time of
    /// the next arrival after `now`, if any. Each arrival injects a new strand.
    fn next_arrival(&mut self, now: Nanos) -> Option<Nanos> {
        let _ = now;
        None
    }

    /// Called for each injected arrival strand before it first runs; with a
    /// [`receiver`](Self::receiver), for each arrival, with its index.
    fn arrived(&mut self, idx: StrandIdx, now: Nanos) {
        let _ = (idx, now);
    }

    /// The strand arrivals are handed to, if any: each arrival then wakes
    /// it (as a send on a channel from a thread outside the runtime wakes
    /// the strand receiving) instead of injecting a strand of its own.
    fn receiver(&self) -> Option<StrandIdx> {
        None
    }

    /// After the run: whether the program computed what it should (every
    /// leaf counted, every request answered …).
    fn verify(&self) -> Result<(), String>;

    /// A line about what the run showed beyond the common figures (the
    /// `share` workload's shares), for the report.
    fn summary(&self) -> Option<String> {
        None
    }

    /// Each group's share of the CPU its groups got, for workloads made of
    /// weighted groups (the `share` workload).
    fn group_shares(&self) -> Option<Vec<f64>> {
        None
    }

    /// The scheduling contexts the workload's strands may be bound to:
    /// each one's budget and period in ns (checked as the runtime checks
    /// them). Default: none.
    fn contexts(&self) -> Vec<(Nanos, Nanos)> {
        Vec::new()
    }

    /// The context strand `idx` is bound to, an index into
    /// [`contexts`](Self::contexts); asked once, when it is created.
    fn context(&self, idx: StrandIdx) -> Option<usize> {
        let _ = idx;
        None
    }

    /// The share groups the workload's strands may be in (see
    /// [`braid_core::share`]): each one's weight and the earlier group it
    /// is a member of, if any. Default: none.
    fn shares(&self) -> Vec<(u32, Option<usize>)> {
        Vec::new()
    }

    /// The share group strand `idx` is in, an index into
    /// [`shares`](Self::shares); asked once, when it is created.
    fn share(&self, idx: StrandIdx) -> Option<usize> {
        let _ = idx;
        None
    }

    /// An exclusive-core lease, if the workload takes one. Default: none.
    fn lease(&self, cores: usize) -> Option<SimLease> {
        let _ = cores;
        None
    }

    /// Whether strand `idx` is in the lease's group; asked once, when it is
    /// created.
    fn in_lease_group(&self, idx: StrandIdx) -> bool {
        let _ = idx;
        false
    }

    /// What strand `idx` asks of the scheduler (weight, latency class,
    /// slice); asked once, when it is created. Default: nothing special.
    fn params(&self, idx: StrandIdx) -> braid_core::SchedParams {
        let _ = idx;
        braid_core::SchedParams::default()
    }
}
