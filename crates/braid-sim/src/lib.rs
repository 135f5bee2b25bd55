//! braid-sim: a deterministic discrete-event simulator of braid's scheduler.
//!
//! It runs *the same* per-core scheduler the runtime runs —
//! [`braid_core::CoreSched`] with its policy and balancer — on 1 … 1024
//! virtual cores, over a simulated bus (FIFO rings per ordered pair of cores,
//! flight time by topology distance), with a cost per operation ([`Costs`])
//! and synthetic [`workloads`]. The same configuration and seed give the same
//! run, event for event: [`SimReport::trace_hash`] folds every event in.
//!
//! Every run checks the invariants listed in the engine's documentation (no
//! strand lost or run twice, every message delivered once, every wake
//! arriving, strand counts conserved) and ends with an error rather than a
//! report if one fails.
//!
//! What the model leaves out, so its figures are read with care: caches and
//! memory bandwidth (a strand costs the same wherever it runs, migration has
//! no cache penalty beyond [`Costs::per_task_moved`]), ring capacity (rings
//! never fill), the watchdog's hand-off of a hogging core, the holding of a
//! carrier whose budget-bound strand does not yield (a run that makes no
//! runtime call overruns its budget here), sockets, and the kernel's own
//! scheduling of carrier threads.

pub mod calibrate;
pub mod cli;
pub mod cost;
mod engine;
pub mod metrics;
pub mod plots;
pub mod workload;
pub mod workloads;

pub use cost::{Costs, Topology};
pub use engine::{ContextReport, MessageCounts, CATCH_UP};
pub use workload::{Ctx, StrandIdx, Then, Workload};

use braid_core::sched::SchedConfig;
pub use braid_core::{BalancerKind, PolicyKind};
use braid_core::{Nanos, UnknownName};
use serde::Serialize;
use std::fmt;

/// One simulation's settings.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Virtual cores, 1 ..= [`MAX_CORES`].
    pub cores: usize,
    /// The policy every core runs.
    pub policy: PolicyKind,
    /// The balancer every core runs.
    pub balancer: BalancerKind,
    /// The policy's time slice.
    pub slice_ns: Nanos,
    /// The scheduler's clock resolution: 0 gives it the exact simulated
    /// time; `t` floors every time it is given (dispatch, charge, enqueue)
    /// to a multiple of `t`, as the runtime's coarse clock does with
    /// [`RUNTIME_CLOCK_TICK`].
    pub clock_tick: Nanos,
    /// Seeds every core's random generator (and nothing else: workloads
    /// have their own seeds).
    pub seed: u64,
    /// The cost model.
    pub costs: Costs,
    /// Distances between cores.
    pub topology: Topology,
    /// The scheduler's knobs (idle plan, stay rules).
    pub sched: SchedConfig,
    /// A run that handles more events than this ends with an error.
    pub max_events: u64,
}

/// The most virtual cores a simulation may have.
pub const MAX_CORES: usize = 1024;

/// The tick of the runtime's coarse clock, the one its schedulers read
/// (1 ms): a [`SimConfig::clock_tick`] that models it.
pub const RUNTIME_CLOCK_TICK: Nanos = 1_000_000;

impl SimConfig {
    /// Defaults for `cores` cores.
    pub fn new(cores: usize) -> SimConfig {
        SimConfig {
            cores,
            policy: PolicyKind::RoundRobin,
            balancer: BalancerKind::StealHalf,
            slice_ns: 2_000_000,
            clock_tick: 0,
            seed: 1,
            costs: Costs::default(),
            topology: Topology::Flat,
            sched: SchedConfig::default(),
            max_events: 2_000_000_000,
        }
    }
}

/// Why a simulation could not run or did not finish.
#[derive(Debug, Clone, PartialEq)]
pub enum SimError {
    /// A setting is out of range or unknown.
    BadArgument {
        /// Which setting.
        what: &'static str,
        /// What was given.
        value: String,
        /// What is allowed.
        allowed: String,
    },
    /// A checked invariant failed: a scheduler bug (or a simulator bug).
    Invariant {
        /// Simulated time of the failure.
        at_ns: Nanos,
        /// What was found.
        detail: String,
    },
    /// The workload's own check failed after the run.
    Workload {
        /// The workload.
        workload: String,
        /// What was wrong.
        detail: String,
    },
    /// The run handled more events than allowed.
    TooManyEvents {
        /// The limit.
        limit: u64,
        /// Simulated time when it was reached.
        at_ns: Nanos,
    },
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimError::BadArgument {
                what,
                value,
                allowed,
            } => write!(f, "{what} '{value}' is not allowed: allowed are {allowed}"),
            SimError::Invariant { at_ns, detail } => {
                write!(f, "invariant broken at {at_ns} ns: {detail}")
            }
            SimError::Workload { workload, detail } => {
                write!(f, "workload {workload} computed a wrong result: {detail}")
            }
            SimError::TooManyEvents { limit, at_ns } => write!(
                f,
                "the run passed {limit} events (at {at_ns} ns simulated); raise the limit or shrink the workload"
            ),
        }
    }
}

impl std::error::Error for SimError {}

/// The figures of one simulated run.
#[derive(Clone, Debug, Serialize)]
pub struct SimReport {
    /// Workload name and size.
    pub workload: String,
    /// Virtual cores.
    pub cores: usize,
    /// Policy name.
    pub policy: String,
    /// Balancer name.
    pub balancer: String,
    /// Topology name.
    pub topology: String,
    /// The seed.
    pub seed: u64,
    /// Time of the last strand's exit.
    pub makespan_ns: Nanos,
    /// Sum of the workload's compute segments.
    pub work_ns: Nanos,
    /// Useful work over capacity: work / (cores × makespan).
    pub work_fraction: f64,
    /// Makespan on one core / makespan here, when the sweep made a one-core
    /// run of the same work.
    pub speedup: Option<f64>,
    /// Parallel efficiency: speedup / cores (with a speedup), else the work
    /// fraction.
    pub efficiency: f64,
    /// Strands spawned.
    pub strands: u64,
    /// Events handled.
    pub events: u64,
    /// FNV-1a hash of every event: equal for equal runs.
    pub trace_hash: String,
    /// Messages sent, by kind.
    pub messages: MessageCounts,
    /// Strands that changed cores.
    pub migrations: u64,
    /// Non-empty grants and offers.
    pub transfers: u64,
    /// Requests, replies and offers per non-empty grant or offer.
    pub balancing_messages_per_transfer: Option<f64>,
    /// Requests, replies and offers per strand moved.
    pub balancing_messages_per_migration: Option<f64>,
    /// Work requests answered empty-handed.
    pub requests_refused: u64,
    /// Wakes of strands already woken (or exited).
    pub wakes_coalesced: u64,
    /// From a parked strand's wake to it running.
    pub wake_latency: metrics::Latency,
    /// Request response times (the `server` workload).
    pub response: Option<metrics::Latency>,
    /// Busy fraction over time and per core.
    pub utilisation: metrics::UtilisationReport,
    /// Real seconds the simulation took.
    pub wall_s: f64,
    /// What the workload adds (the `share` workload: each group's share).
    pub summary: Option<String>,
    /// Each weighted group's share of the CPU (the `share` workload).
    pub group_shares: Option<Vec<f64>>,
    /// Each scheduling context's figures, for workloads that bind strands
    /// to contexts (the `budget` workload).
    pub contexts: Vec<ContextReport>,
    /// The workload's lease, if it took one (the `lease` workloads).
    pub lease: Option<LeaseReport>,
}

/// What became of a workload's exclusive-core lease.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct LeaseReport {
    /// When it started, in ns.
    pub started_ns: Nanos,
    /// When it was terminated for fairness, if it was.
    pub terminated_ns: Option<Nanos>,
    /// Strands the leased core sent to the shared cores.
    pub evicted: u64,
}

impl From<UnknownName> for SimError {
    fn from(e: UnknownName) -> SimError {
        SimError::BadArgument {
            what: e.what,
            value: e.value,
            allowed: e.allowed,
        }
    }
}

/// Runs `workload` once under `config`.
pub fn run(config: &SimConfig, workload: &mut dyn Workload) -> Result<SimReport, SimError> {
    if config.cores == 0 || config.cores > MAX_CORES {
        return Err(SimError::BadArgument {
            what: "cores",
            value: config.cores.to_string(),
            allowed: format!("1..={MAX_CORES}"),
        });
    }
    let started = std::time::Instant::now();
    let n = config.cores;
    let engine = engine::Engine::new(config, workload, |core| {
        (
            config.policy.build(config.slice_ns),
            config.balancer.build(core, n),
        )
    });
    let mut report = engine?.run()?;
    report.policy = config.policy.name().to_owned();
    report.balancer = config.balancer.name().to_owned();
    report.seed = config.seed;
    report.wall_s = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Runs the workload `spec` names at each core count, filling in speedups
/// and parallel efficiencies against the one-core run when one is among them
/// and the workload's work does not grow with the cores.
pub fn sweep(
    config: &SimConfig,
    spec: &workloads::Spec,
    cores: &[usize],
) -> Result<Vec<SimReport>, SimError> {
    let mut reports = Vec::with_capacity(cores.len());
    for &n in cores {
        let mut c = config.clone();
        c.cores = n;
        let mut workload = spec.build(n)?;
        reports.push(run(&c, workload.as_mut())?);
    }
    let base = reports.iter().find(|r| r.cores == 1).map(|r| r.makespan_ns);
    if let (Some(base), true) = (base, spec.fixed_size()) {
        for r in &mut reports {
            let speedup = base as f64 / r.makespan_ns as f64;
            r.speedup = Some(speedup);
            r.efficiency = speedup / r.cores as f64;
        }
    }
    Ok(reports)
}
