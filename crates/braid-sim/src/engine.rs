//! The event loop: virtual cores, each running braid-core's `CoreSched`, a
//! simulated bus between them, and the checks made on every run.
//!
//! Each core is one `CoreSched` (the very code the runtime's carriers run)
//! plus what a carrier does around it, modelled in simulated time: at every
//! scheduling point it applies its mail, runs the next ready strand's
//! segments, and with nothing to run asks for work, spins, and parks. The bus
//! is FIFO per ordered pair of cores; a message's flight time grows with the
//! topology distance; a message to a parked core costs its sender a doorbell
//! and its receiver an unpark.
//!
//! Checked as the run goes (a failure ends the run with
//! [`SimError::Invariant`]): a strand is only ever run when ready and on its
//! home core (never twice at once, never after its exit); after every step a
//! core's ready and blocked counts in the scheduler equal the simulator's own
//! account of which strands it holds; every `cores` events the strands in all
//! states add up to the strands spawned; every wake message finds its strand
//! parked on the core it was sent to. At the end: every message was delivered
//! exactly once, every strand exited, and the workload verifies its result.

use crate::cost::{Costs, Topology};
use crate::metrics::{Histogram, TraceHash, Utilisation};
use crate::workload::{Ctx, StrandIdx, Then, Workload};
use crate::{SimConfig, SimError, SimReport};
use braid_core::budget::{Account, Dispatch, Overrun, RunId};
use braid_core::sched::placement::RoundRobinPlacer;
use braid_core::sched::{IdleEnd, Park, Slot};
use braid_core::share::{Counter, Share};
use braid_core::{
    AnyBalancer, AnyPolicy, CoreSched, Entity, Insert, Mail, Nanos, Received, SchedParams,
    Schedulable, TaskHandle,
};
use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::Arc;

/// The simulator's task handle: a strand index, whether it is pinned, and
/// its place in its core's policy.
#[derive(Clone, Debug)]
pub(crate) struct SimTask {
    idx: StrandIdx,
    pinned: bool,
    /// The scheduling context it is bound to (`UNBOUND`: none).
    context: u32,
    entity: Entity,
    /// Its share group and its own weight in it, if it is in one.
    share: Option<(Arc<SimShare>, u32)>,
    /// In the workload's lease group (see `Workload::in_lease_group`).
    leased: bool,
}

const UNBOUND: u32 = u32::MAX;

/// A share group as the simulator keeps it: braid-core's rules over a
/// plain sum (the simulation runs on one thread; an atomic keeps the task
/// `Send` and is never contended).
pub(crate) type SimShare = Share<SimSum>;

/// A share group's runnable sum.
#[derive(Debug, Default)]
pub(crate) struct SimSum(AtomicU64);

impl Counter for SimSum {
    fn add(&self, n: u64) -> u64 {
        self.0.fetch_add(n, AtomicOrdering::Relaxed)
    }
    fn sub(&self, n: u64) -> u64 {
        self.0.fetch_sub(n, AtomicOrdering::Relaxed) - n
    }
    fn get(&self) -> u64 {
        self.0.load(AtomicOrdering::Relaxed)
    }
}

impl SimTask {
    fn new(
        idx: StrandIdx,
        pinned: bool,
        params: SchedParams,
        context: Option<usize>,
        share: Option<Arc<SimShare>>,
    ) -> SimTask {
        SimTask {
            idx,
            pinned,
            context: context.map_or(UNBOUND, |c| c as u32),
            entity: Entity::new(params),
            share: share.map(|s| (s, params.weight)),
            leased: false,
        }
    }
}

impl Schedulable for SimTask {
    #[inline]
    fn entity(&self) -> &Entity {
        &self.entity
    }
    #[inline]
    fn entity_mut(&mut self) -> &mut Entity {
        &mut self.entity
    }
    #[inline]
    fn weight_now(&self) -> Option<u32> {
        self.share.as_ref().map(|(s, own)| s.weight_of(*own))
    }
    #[inline]
    fn entered_set(&self) {
        if let Some((s, own)) = &self.share {
            s.enter(*own);
        }
    }
    #[inline]
    fn left_set(&self) {
        if let Some((s, own)) = &self.share {
            s.leave(*own);
        }
    }
}

impl TaskHandle for SimTask {
    #[inline]
    fn pinned(&self) -> bool {
        self.pinned
    }
    fn in_group(&self, _group: u64) -> bool {
        self.leased
    }
}

pub(crate) type SimPolicy = AnyPolicy<SimTask>;
pub(crate) type SimBalancer = AnyBalancer;
type Sched = CoreSched<SimTask, StrandIdx, SimPolicy, SimBalancer>;
type SimMail = Mail<SimTask, StrandIdx>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum St {
    /// Spawned onto another core: the spawn message is in flight.
    Spawning,
    Ready,
    Running,
    Blocked(Slot),
    /// In a grant or offer in flight.
    Moving,
    Exited,
    /// Held back by its core because its context's budget is spent, or
    /// released since and not yet run (the scheduler does not say which).
    Throttled,
}

impl St {
    fn index(self) -> usize {
        match self {
            St::Spawning => 0,
            St::Ready => 1,
            St::Running => 2,
            St::Blocked(_) => 3,
            St::Moving => 4,
            St::Exited => 5,
            St::Throttled => 6,
        }
    }
}

struct StrandRec {
    st: St,
    home: usize,
    /// A wake arrived since the strand last parked (the park word's NOTIFIED).
    notified: bool,
    /// When the wake that made it ready was made (`NEVER`: not woken).
    woke_at: Nanos,
    /// What is left of a `Then::Compute` cut short by the end of a slice.
    left: Nanos,
}

const NEVER: Nanos = Nanos::MAX;

/// How often the lease's fairness is looked at: the runtime monitor's tick.
const LEASE_LOOK: Nanos = 1_000_000;

/// How late a context's refill may be taken and still be booked as on
/// time: the runtime's `CATCH_UP`, 2 ms.
pub const CATCH_UP: Nanos = 2_000_000;

#[derive(Clone, Debug)]
enum Mode {
    /// Taking a scheduling step (mail, pick) or about to.
    Busy,
    /// Running a strand's segment.
    Running(SimTask),
    Spinning,
    Parked {
        since: Nanos,
    },
}

struct Core {
    sched: Sched,
    inbox: VecDeque<Letter>,
    mode: Mode,
    /// Bumped when a pending Step or SpinEnd of this core becomes stale.
    gen: u64,
    /// The end of the core's last step: it cannot act earlier.
    free_at: Nanos,
    /// When the current busy spell started.
    busy_from: Nanos,
    /// The simulator's own account of what the scheduler holds.
    ready: usize,
    blocked: usize,
    /// Strands its scheduler holds throttled.
    throttled: usize,
    /// When the running strand's slice ends (its policy's, from dispatch).
    slice_end: Nanos,
    /// The running strand's run: when it began (exact); for a bound strand
    /// its id and when its budget runs out (`NEVER`: no limit).
    run: RunId,
    run_start: Nanos,
    budget_end: Nanos,
    /// Its policy charges runs as measured (see
    /// [`CoreSched::fine_clock`](braid_core::CoreSched::fine_clock)): the
    /// runtime times them with the cycle counter, not the coarse clock.
    fine: bool,
}

/// A scheduling context: braid-core's account, as the runtime keeps one,
/// and what the checks need.
struct SimContext {
    account: Account,
    /// Every run of its strands, (start, end), in order of their ends.
    runs: Vec<(Nanos, Nanos)>,
    /// The most a run used beyond what it was given.
    overrun: Nanos,
    /// Runs going on now, and the most at once.
    running: u32,
    most_running: u32,
}

struct Letter {
    id: u64,
    from: Option<usize>,
    mail: SimMail,
}

enum Ev {
    Step {
        core: usize,
        gen: u64,
    },
    /// A parked core's timer: a throttled strand's release is due.
    Timer {
        core: usize,
        gen: u64,
    },
    SegmentEnd {
        core: usize,
    },
    SpinEnd {
        core: usize,
        gen: u64,
    },
    Deliver {
        to: usize,
        letter: Box<Letter>,
    },
    Arrival,
    /// The lease's monitor look (see `Workload::lease`).
    LeaseLook,
}

struct Queued {
    at: Nanos,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Queued {
    /// Reversed: the heap pops the earliest event, ties in scheduling order.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// Messages sent and delivered, by kind.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct MessageCounts {
    /// Wakes of strands parked on another core.
    pub wake: u64,
    /// Spawns onto another core (and injected strands).
    pub spawn: u64,
    /// Work requests of idle cores.
    pub request: u64,
    /// Replies to work requests, empty or not.
    pub reply: u64,
    /// Offers to cores known idle, or to lighter busy cores.
    pub offer: u64,
    /// Load notices between busy cores (weight balancing).
    pub load: u64,
}

impl MessageCounts {
    fn bump(&mut self, mail: &SimMail) {
        match mail {
            Mail::Wake(_) => self.wake += 1,
            Mail::Spawn(_) => self.spawn += 1,
            Mail::WorkRequest => self.request += 1,
            Mail::WorkReply(_) => self.reply += 1,
            Mail::Offer(_) => self.offer += 1,
            Mail::Load(_) => self.load += 1,
            Mail::Orphan(..) => {}
        }
    }

    /// Every message.
    pub fn total(&self) -> u64 {
        self.wake + self.spawn + self.request + self.reply + self.offer + self.load
    }
}

pub(crate) struct Engine<'w> {
    cores: Vec<Core>,
    strands: Vec<StrandRec>,
    states: [u64; 7],
    contexts: Vec<SimContext>,
    /// The workload's share groups (see [`Workload::shares`]).
    shares: Vec<Arc<SimShare>>,
    /// The workload's lease, its fairness state, when it started and when
    /// it was terminated.
    lease: Option<crate::workload::SimLease>,
    lease_fairness: braid_core::lease::Fairness,
    lease_started: Option<Nanos>,
    lease_ended: Option<Nanos>,
    workload: &'w mut dyn Workload,
    costs: Costs,
    /// See [`SimConfig::clock_tick`].
    clock_tick: Nanos,
    topology: Topology,
    events: BinaryHeap<Queued>,
    seq: u64,
    now: Nanos,
    ctx: Ctx,
    /// The last delivery time per ordered pair (FIFO rings), `from * n + to`;
    /// injected messages use `n * n + to`.
    last_delivery: Vec<Nanos>,
    next_letter: u64,
    in_flight: u64,
    sent: MessageCounts,
    delivered: MessageCounts,
    wakes_coalesced: u64,
    migrations: u64,
    work: Nanos,
    last_exit: Nanos,
    placer: RoundRobinPlacer,
    wake_latency: Histogram,
    responses: Histogram,
    util: Utilisation,
    trace: TraceHash,
    handled: u64,
    max_events: u64,
    /// A scheduler's outbox, taken out to send (kept for its capacity).
    outbox: Vec<(usize, SimMail)>,
}

impl Core {
    /// Charges the strand that ran here and stops at `t` (exact), `clock`
    /// on the scheduler's clock, as the runtime's carrier does.
    fn charge(&mut self, task: &mut SimTask, t: Nanos, clock: Nanos) {
        if self.fine {
            self.sched.ran_measured(task, t - self.run_start);
        } else {
            self.sched.ran(task, clock);
        }
    }
}

impl<'w> Engine<'w> {
    pub(crate) fn new(
        config: &SimConfig,
        workload: &'w mut dyn Workload,
        make: impl Fn(usize) -> (SimPolicy, SimBalancer),
    ) -> Result<Engine<'w>, SimError> {
        let n = config.cores;
        let cores = (0..n)
            .map(|c| {
                let (policy, balancer) = make(c);
                let sched = CoreSched::new(c, n, policy, balancer, config.seed, config.sched);
                Core {
                    fine: sched.fine_clock(),
                    sched,
                    inbox: VecDeque::new(),
                    mode: Mode::Parked { since: 0 },
                    gen: 0,
                    free_at: 0,
                    busy_from: 0,
                    ready: 0,
                    blocked: 0,
                    throttled: 0,
                    slice_end: 0,
                    run: RunId::NONE,
                    run_start: 0,
                    budget_end: NEVER,
                }
            })
            .collect();
        let contexts = workload
            .contexts()
            .into_iter()
            .map(|(budget, period)| {
                Account::new(budget, period, CATCH_UP, 0, Overrun::Throttle).map(|account| {
                    SimContext {
                        account,
                        runs: Vec::new(),
                        overrun: 0,
                        running: 0,
                        most_running: 0,
                    }
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| SimError::Workload {
                workload: workload.name(),
                detail: format!("a context's figures: {err}"),
            })?;
        let mut shares: Vec<Arc<SimShare>> = Vec::new();
        for (weight, parent) in workload.shares() {
            let parent = parent.and_then(|p| shares.get(p)).cloned();
            let share = Share::new(weight, parent).map_err(|err| SimError::Workload {
                workload: workload.name(),
                detail: format!("a share group: {err}"),
            })?;
            shares.push(Arc::new(share));
        }
        Ok(Engine {
            cores,
            strands: Vec::new(),
            states: [0; 7],
            contexts,
            shares,
            lease: None,
            lease_fairness: Default::default(),
            lease_started: None,
            lease_ended: None,
            workload,
            costs: config.costs,
            clock_tick: config.clock_tick,
            topology: config.topology,
            events: BinaryHeap::new(),
            seq: 0,
            now: 0,
            ctx: Ctx {
                cores: n,
                ..Ctx::default()
            },
            last_delivery: vec![0; n * n + n],
            next_letter: 0,
            in_flight: 0,
            sent: MessageCounts::default(),
            delivered: MessageCounts::default(),
            wakes_coalesced: 0,
            migrations: 0,
            work: 0,
            last_exit: 0,
            placer: RoundRobinPlacer::default(),
            wake_latency: Histogram::default(),
            responses: Histogram::default(),
            util: Utilisation::new(n),
            trace: TraceHash::default(),
            handled: 0,
            max_events: config.max_events,
            outbox: Vec::new(),
        })
    }

    fn push(&mut self, at: Nanos, ev: Ev) {
        self.seq += 1;
        self.events.push(Queued {
            at,
            seq: self.seq,
            ev,
        });
    }

    fn invariant(&self, detail: String) -> SimError {
        SimError::Invariant {
            at_ns: self.now,
            detail,
        }
    }

    fn set_state(&mut self, idx: StrandIdx, st: St) {
        let rec = &mut self.strands[idx as usize];
        self.states[rec.st.index()] -= 1;
        self.states[st.index()] += 1;
        rec.st = st;
    }

    fn new_strand(&mut self, home: usize) -> StrandIdx {
        let idx = self.strands.len() as StrandIdx;
        self.strands.push(StrandRec {
            st: St::Spawning,
            home,
            notified: false,
            woke_at: NEVER,
            left: 0,
        });
        self.states[St::Spawning.index()] += 1;
        idx
    }

    fn new_task(&self, idx: StrandIdx, pinned: bool) -> SimTask {
        let context = self
            .workload
            .context(idx)
            .filter(|&c| c < self.contexts.len());
        let share = self
            .workload
            .share(idx)
            .and_then(|s| self.shares.get(s))
            .cloned();
        let mut task = SimTask::new(idx, pinned, self.workload.params(idx), context, share);
        task.leased = self.workload.in_lease_group(idx);
        task
    }

    pub(crate) fn run(mut self) -> Result<SimReport, SimError> {
        let n = self.cores.len();
        // Every core starts as a runtime's carriers do: its first pass finds
        // nothing to run, asks for work, spins and parks.
        for core in 0..n {
            self.cores[core].mode = Mode::Busy;
            self.push(0, Ev::Step { core, gen: 0 });
        }
        let roots = self.workload.roots(n);
        for r in 0..roots {
            let core = self.placer.next(n);
            let idx = self.new_strand(core);
            let task = self.new_task(idx, false);
            let mut t = 0;
            self.send(None, core, Mail::Spawn(Box::new(task)), &mut t);
            debug_assert_eq!(idx, r);
        }
        if let Some(at) = self.workload.next_arrival(0) {
            self.push(at, Ev::Arrival);
        }
        self.lease = self.workload.lease(n).filter(|l| l.core < n && n > 1);
        if let Some(lease) = self.lease {
            self.push(lease.at, Ev::LeaseLook);
        }
        while let Some(Queued { at, ev, .. }) = self.events.pop() {
            debug_assert!(at >= self.now, "time went back");
            self.now = at;
            self.handled += 1;
            if self.handled > self.max_events {
                return Err(SimError::TooManyEvents {
                    limit: self.max_events,
                    at_ns: at,
                });
            }
            match ev {
                Ev::Step { core, gen } => {
                    if self.cores[core].gen == gen {
                        self.trace.add([1, at, core as u64, 0]);
                        self.step(core)?;
                    }
                }
                Ev::SegmentEnd { core } => {
                    let Mode::Running(task) = &self.cores[core].mode else {
                        return Err(
                            self.invariant(format!("core {core}: segment end, not running"))
                        );
                    };
                    let task = task.clone();
                    self.trace.add([2, at, core as u64, u64::from(task.idx)]);
                    let mut t = at;
                    self.act(core, task, &mut t)?;
                }
                Ev::SpinEnd { core, gen } => {
                    let (clock, tick) = (self.clock(at), self.clock_tick);
                    let c = &mut self.cores[core];
                    if c.gen == gen && matches!(c.mode, Mode::Spinning) {
                        self.trace.add([3, at, core as u64, 0]);
                        match c.sched.park(clock, false) {
                            Park::Sleep(wake) => {
                                c.mode = Mode::Parked { since: at };
                                if let Some(wake) = wake {
                                    // When the scheduler's clock shows it.
                                    let at = match tick {
                                        0 => wake,
                                        tick => wake.div_ceil(tick) * tick,
                                    };
                                    let gen = c.gen;
                                    self.push(at, Ev::Timer { core, gen });
                                }
                            }
                            Park::Return => {
                                c.gen += 1;
                                c.mode = Mode::Busy;
                                c.sched.idle_ended(at, IdleEnd::Returned);
                                c.busy_from = at;
                                let gen = c.gen;
                                self.push(at, Ev::Step { core, gen });
                            }
                            other => {
                                return Err(self.invariant(format!(
                                    "core {core}: park plan {other:?} with no overflow"
                                )))
                            }
                        }
                    }
                }
                Ev::Timer { core, gen } => {
                    if self.cores[core].gen == gen {
                        self.trace.add([6, at, core as u64, 0]);
                        self.unpark(core);
                    }
                }
                Ev::Deliver { to, letter } => {
                    self.trace.add([4, at, to as u64, letter.id]);
                    self.deliver(to, *letter);
                }
                Ev::Arrival => {
                    let mut t = at;
                    if let Some(receiver) = self.workload.receiver() {
                        self.trace.add([5, at, n as u64, u64::from(receiver)]);
                        self.workload.arrived(receiver, at);
                        self.wake(None, receiver, &mut t);
                    } else {
                        let core = self.placer.next(n);
                        let idx = self.new_strand(core);
                        self.trace.add([5, at, core as u64, u64::from(idx)]);
                        self.workload.arrived(idx, at);
                        let task = self.new_task(idx, false);
                        self.send(None, core, Mail::Spawn(Box::new(task)), &mut t);
                    }
                    if let Some(next) = self.workload.next_arrival(at) {
                        self.push(next.max(at), Ev::Arrival);
                    }
                }
                Ev::LeaseLook => self.lease_look(at),
            }
            if self.handled % n as u64 == 0 {
                self.check_conservation()?;
            }
        }
        self.finish()
    }

    /// Every strand is in exactly one place: the scheduler counts of all
    /// cores plus running, in-flight and exited strands add up to all spawned.
    fn check_conservation(&self) -> Result<(), SimError> {
        let ready: u64 = self.cores.iter().map(|c| c.sched.ready_len() as u64).sum();
        let blocked: u64 = self
            .cores
            .iter()
            .map(|c| c.sched.blocked().len() as u64)
            .sum();
        let throttled: u64 = self.cores.iter().map(|c| c.sched.throttled() as u64).sum();
        let running = self
            .cores
            .iter()
            .filter(|c| matches!(c.mode, Mode::Running(_)))
            .count() as u64;
        let s = &self.states;
        // (A strand released by its core is ready there, but the simulator
        // sees it as throttled until it runs.)
        let held =
            ready + throttled + blocked + running + s[St::Spawning.index()] + s[St::Moving.index()];
        let total = held + s[St::Exited.index()];
        if total != self.strands.len() as u64
            || ready + throttled != s[St::Ready.index()] + s[St::Throttled.index()]
            || blocked != s[St::Blocked(0).index()]
            || running != s[St::Running.index()]
        {
            return Err(self.invariant(format!(
                "strands not conserved: schedulers hold {ready} ready, {throttled} throttled, \
                 {blocked} blocked, {running} running; states {s:?}; {} spawned",
                self.strands.len()
            )));
        }
        Ok(())
    }

    fn deliver(&mut self, to: usize, letter: Letter) {
        self.in_flight -= 1;
        self.delivered.bump(&letter.mail);
        let c = &mut self.cores[to];
        c.inbox.push_back(letter);
        self.poke(to);
    }

    /// Parked core `core` is woken now (mail, or its timer).
    fn unpark(&mut self, core: usize) {
        let now = self.now;
        let c = &mut self.cores[core];
        let Mode::Parked { since } = c.mode else {
            return;
        };
        let at = now.max(c.free_at) + self.costs.unpark;
        c.gen += 1;
        c.mode = Mode::Busy;
        c.sched
            .idle_ended(at, IdleEnd::Parked(now.saturating_sub(since)));
        c.busy_from = at;
        let gen = c.gen;
        self.push(at, Ev::Step { core, gen });
    }

    /// The lease's monitor: starts it at its time, then every millisecond
    /// asks braid-core's `Fairness` whether to terminate it, from every
    /// shared core's ready count and highest ready class, as the runtime's
    /// monitor does. Stops once the lease ended or every strand exited.
    fn lease_look(&mut self, at: Nanos) {
        let Some(lease) = self.lease.filter(|_| self.lease_ended.is_none()) else {
            return;
        };
        let n = self.cores.len();
        let shared: Vec<usize> = (0..n).filter(|&c| c != lease.core).collect();
        let clock = self.clock(at);
        if self.lease_started.is_none() {
            self.lease_started = Some(at);
            self.cores[lease.core]
                .sched
                .set_exclusive(Some((shared, Some(0))), clock);
            // A parked or spinning core acts on it now.
            self.poke(lease.core);
        } else {
            let looks = shared.iter().map(|&c| braid_core::lease::SharedCore {
                ready: self.cores[c].sched.ready_len(),
                top: self.cores[c].sched.policy().highest_ready_class(),
            });
            if self.lease_fairness.look(at, lease.class, looks) {
                self.lease_ended = Some(at);
                self.cores[lease.core].sched.set_exclusive(None, clock);
                self.poke(lease.core);
                return;
            }
        }
        if self.states[St::Exited.index()] < self.strands.len() as u64 {
            self.push(at + LEASE_LOOK, Ev::LeaseLook);
        }
    }

    /// Makes an idle core take a scheduling step now (mail came, or its
    /// lease changed).
    fn poke(&mut self, core: usize) {
        let now = self.now;
        let c = &mut self.cores[core];
        match c.mode {
            Mode::Spinning => {
                let at = now.max(c.free_at);
                c.gen += 1;
                c.mode = Mode::Busy;
                c.sched.idle_ended(at, IdleEnd::Spun);
                c.busy_from = at;
                let gen = c.gen;
                self.push(at, Ev::Step { core, gen });
            }
            Mode::Parked { .. } => self.unpark(core),
            Mode::Busy | Mode::Running(_) => {}
        }
    }

    /// A scheduling point of core `core`: apply mail, then run the next
    /// ready strand or go idle.
    fn step(&mut self, core: usize) -> Result<(), SimError> {
        let mut t = self.now;
        while let Some(letter) = self.cores[core].inbox.pop_front() {
            t += self.costs.receive;
            self.apply(core, letter, &mut t)?;
        }
        self.flush(core, &mut t);
        self.check_core(core)?;
        let next = loop {
            let clock = self.clock(t);
            let next = self.cores[core].sched.next(clock);
            // Strands whose release came are ready again.
            let c = &mut self.cores[core];
            let released = c.throttled - c.sched.throttled();
            c.throttled -= released;
            c.ready += released;
            let Some(task) = next else { break None };
            c.ready -= 1;
            t += self.costs.switch;
            if task.context == UNBOUND {
                break Some(task);
            }
            // As the runtime's carrier does: ask the strand's context.
            let ctx = &mut self.contexts[task.context as usize];
            match ctx.account.dispatch(t) {
                (Dispatch::Run { available, run }, _) => {
                    ctx.running += 1;
                    ctx.most_running = ctx.most_running.max(ctx.running);
                    let c = &mut self.cores[core];
                    c.run = run;
                    c.budget_end = if available == 0 { NEVER } else { t + available };
                    break Some(task);
                }
                (Dispatch::Throttle(until), _) => {
                    let c = &mut self.cores[core];
                    let idx = task.idx;
                    c.sched.throttle(task, until);
                    c.throttled += 1;
                    self.set_state(idx, St::Throttled);
                }
            }
        };
        // Strands a leased core evicted while picking leave now.
        if self.cores[core].sched.is_exclusive() {
            self.flush(core, &mut t);
        }
        match next {
            Some(task) => {
                if self.cores[core].sched.is_exclusive() && !task.leased && !task.pinned {
                    return Err(self.invariant(format!(
                        "core {core} is leased, and ran strand {}, not of its group",
                        task.idx
                    )));
                }
                let rec = &self.strands[task.idx as usize];
                if !matches!(rec.st, St::Ready | St::Throttled) || rec.home != core {
                    return Err(self.invariant(format!(
                        "core {core} picked strand {} in state {:?} homed on core {}",
                        task.idx, rec.st, rec.home
                    )));
                }
                if rec.woke_at != NEVER {
                    self.wake_latency.record(t - rec.woke_at);
                    self.strands[task.idx as usize].woke_at = NEVER;
                }
                self.set_state(task.idx, St::Running);
                // As the runtime does: from the clock's reading, allowing
                // for its tick; the strand yields at its first runtime call
                // once the clock shows that time.
                let (now, tick) = (self.clock(t), self.clock_tick);
                let end = self.cores[core].sched.slice_end(&task, now, tick);
                let end = self.first_showing(end);
                let c = &mut self.cores[core];
                c.slice_end = end;
                c.run_start = t;
                c.mode = Mode::Running(task.clone());
                self.act(core, task, &mut t)
            }
            None => {
                let _spin = self.cores[core].sched.idle(false);
                self.flush(core, &mut t);
                let c = &mut self.cores[core];
                self.util.add(core, c.busy_from, t);
                c.free_at = t;
                c.gen += 1;
                c.mode = Mode::Spinning;
                let (gen, spin) = (c.gen, c.sched.spin());
                self.push(t + spin, Ev::SpinEnd { core, gen });
                Ok(())
            }
        }
    }

    /// Time `t` as the scheduler's clock shows it (see
    /// [`SimConfig::clock_tick`]).
    fn clock(&self, t: Nanos) -> Nanos {
        match self.clock_tick {
            0 => t,
            tick => t - t % tick,
        }
    }

    /// When the scheduler's clock first shows `t` or later.
    fn first_showing(&self, t: Nanos) -> Nanos {
        match self.clock_tick {
            0 => t,
            tick => t.checked_next_multiple_of(tick).unwrap_or(t),
        }
    }

    /// The scheduler's counts of core `core` equal the simulator's account.
    fn check_core(&self, core: usize) -> Result<(), SimError> {
        let c = &self.cores[core];
        // Under EEVDF every ready strand's lag stays within a slice either
        // way (see `Fair::lag_outside_bound`): the strands at both ends of
        // the virtual-time order at every step, all of them every 64th
        // event while a core holds at most 4 096.
        if let braid_core::AnyPolicy::Fair(f) = c.sched.policy() {
            if f.rule() == braid_core::Rule::EarliestEligibleDeadline {
                let scan_all = self.handled % 64 == 0 && c.ready <= 4_096;
                if let Some((lag, bound)) = f.lag_outside_bound(scan_all, self.clock_tick) {
                    return Err(self.invariant(format!(
                        "core {core}: a ready strand's lag is {lag} virtual ns, beyond its bound {bound} under EEVDF"
                    )));
                }
            }
        }
        if c.sched.ready_len() != c.ready
            || c.sched.blocked().len() != c.blocked
            || c.sched.throttled() != c.throttled
        {
            return Err(self.invariant(format!(
                "core {core}: scheduler holds {} ready, {} blocked and {} throttled, the simulator counts {}, {} and {}",
                c.sched.ready_len(),
                c.sched.blocked().len(),
                c.sched.throttled(),
                c.ready,
                c.blocked,
                c.throttled
            )));
        }
        Ok(())
    }

    /// Runs `task`'s next segments on `core` from time `*t` until it computes
    /// (a segment end is scheduled) or suspends (a step is scheduled).
    fn act(&mut self, core: usize, mut task: SimTask, t: &mut Nanos) -> Result<(), SimError> {
        loop {
            self.ctx.now = *t;
            self.ctx.next_idx = self.strands.len() as StrandIdx;
            let left = std::mem::take(&mut self.strands[task.idx as usize].left);
            let mut then = if left > 0 {
                Then::Compute(left)
            } else {
                let then = self.workload.act(task.idx, &mut self.ctx);
                self.apply_effects(core, t)?;
                then
            };
            if let Then::Compute(d) = then {
                // The slice ends at its end or when the budget runs out
                // (the runtime's budget timer ends it then).
                let c = &self.cores[core];
                let room = c.slice_end.min(c.budget_end).saturating_sub(*t);
                if d <= room {
                    then = Then::Run(d);
                } else if room > 0 {
                    // Up to the end of the slice; the rest after it.
                    self.strands[task.idx as usize].left = d - room;
                    then = Then::Run(room);
                } else {
                    // The slice is used up: the strand yields at its next
                    // runtime call, keeping what is left.
                    self.strands[task.idx as usize].left = d;
                    then = Then::Yield;
                }
            }
            let clock = self.clock(*t);
            match then {
                // (A `Compute` was turned into `Run` or `Yield` above.)
                Then::Run(d) | Then::Compute(d) => {
                    self.work += d;
                    self.push(*t + d, Ev::SegmentEnd { core });
                    return Ok(());
                }
                Then::Block if self.strands[task.idx as usize].notified => {
                    // Woken since it last parked: the park returns at once.
                    self.strands[task.idx as usize].notified = false;
                    continue;
                }
                Then::Yield => {
                    self.stopped(core, &task, *t);
                    self.set_state(task.idx, St::Ready);
                    let c = &mut self.cores[core];
                    c.ready += 1;
                    c.charge(&mut task, *t, clock);
                    c.sched.enqueue(task, Insert::Tail, clock);
                }
                Then::Block => {
                    self.stopped(core, &task, *t);
                    let c = &mut self.cores[core];
                    c.charge(&mut task, *t, clock);
                    let idx = task.idx;
                    let slot = c.sched.block(task);
                    c.blocked += 1;
                    self.set_state(idx, St::Blocked(slot));
                }
                Then::Exit => {
                    *t += self.costs.exit;
                    self.stopped(core, &task, *t);
                    let clock = self.clock(*t);
                    let c = &mut self.cores[core];
                    c.charge(&mut task, *t, clock);
                    c.sched.exited(&mut task);
                    self.set_state(task.idx, St::Exited);
                    self.last_exit = *t;
                }
            }
            self.flush(core, t);
            let c = &mut self.cores[core];
            c.mode = Mode::Busy;
            c.free_at = *t;
            let gen = c.gen;
            self.push(*t, Ev::Step { core, gen });
            return Ok(());
        }
    }

    /// `task`'s run on `core` ended at `t`: charges its context, if bound.
    fn stopped(&mut self, core: usize, task: &SimTask, t: Nanos) {
        if task.context == UNBOUND {
            return;
        }
        let c = &mut self.cores[core];
        let (run, start, given) = (c.run, c.run_start, c.budget_end);
        c.budget_end = NEVER;
        let ctx = &mut self.contexts[task.context as usize];
        let _ = ctx.account.charge(run, start, t - start, t);
        ctx.runs.push((start, t));
        ctx.overrun = ctx.overrun.max(t.saturating_sub(given));
        ctx.running -= 1;
    }

    /// Applies what the last `act` asked for: spawns, wakes, responses.
    fn apply_effects(&mut self, core: usize, t: &mut Nanos) -> Result<(), SimError> {
        let spawns = std::mem::take(&mut self.ctx.spawns);
        for req in &spawns {
            *t += self.costs.spawn;
            let sched = &mut self.cores[core].sched;
            let id = sched.mint_id();
            debug_assert_eq!(braid_core::sched::ids::minted_by(id), Some(core));
            let place = sched.place(req.core).map_err(|err| SimError::Workload {
                workload: self.workload.name(),
                detail: err.to_string(),
            })?;
            let idx = self.new_strand(place.core);
            if idx != req.idx {
                return Err(self.invariant(format!("spawn index {} != {idx}", req.idx)));
            }
            let task = self.new_task(idx, place.pinned);
            if place.core == core {
                self.set_state(idx, St::Ready);
                self.cores[core].ready += 1;
            }
            self.cores[core].sched.spawn(task, place.core, *t);
            self.flush(core, t);
        }
        self.ctx.spawns = spawns;
        self.ctx.spawns.clear();
        let wakes = std::mem::take(&mut self.ctx.wakes);
        for &idx in &wakes {
            self.wake(Some(core), idx, t);
        }
        self.ctx.wakes = wakes;
        self.ctx.wakes.clear();
        for latency in self.ctx.responses.drain(..) {
            self.responses.record(latency);
        }
        Ok(())
    }

    /// A strand running on `core` (`None`: a thread outside the cores)
    /// wakes strand `idx`.
    fn wake(&mut self, core: Option<usize>, idx: StrandIdx, t: &mut Nanos) {
        let rec = &mut self.strands[idx as usize];
        if rec.notified || rec.st == St::Exited {
            self.wakes_coalesced += 1;
            return;
        }
        rec.notified = true;
        let St::Blocked(slot) = rec.st else {
            return; // not parked: its next park returns at once
        };
        rec.woke_at = *t;
        let home = rec.home;
        if core == Some(home) {
            *t += self.costs.local_wake;
            self.wake_here(home, idx, slot, *t);
            self.flush(home, t);
        } else {
            self.send(core, home, Mail::Wake(idx), t);
        }
    }

    fn wake_here(&mut self, core: usize, idx: StrandIdx, slot: Slot, t: Nanos) -> bool {
        let c = &mut self.cores[core];
        if !c.sched.wake(slot, t) {
            return false;
        }
        c.blocked -= 1;
        c.ready += 1;
        self.strands[idx as usize].notified = false;
        self.set_state(idx, St::Ready);
        true
    }

    /// Applies one message on `core`.
    fn apply(&mut self, core: usize, letter: Letter, t: &mut Nanos) -> Result<(), SimError> {
        let arrived: &[SimTask] = match &letter.mail {
            Mail::Spawn(task) => std::slice::from_ref(&**task),
            Mail::WorkReply(tasks) | Mail::Offer(tasks) => tasks,
            _ => &[],
        };
        let moved = matches!(letter.mail, Mail::WorkReply(_) | Mail::Offer(_));
        for task in arrived {
            let expected = if moved { St::Moving } else { St::Spawning };
            let st = self.strands[task.idx as usize].st;
            if st != expected {
                return Err(self.invariant(format!(
                    "strand {} arrived on core {core} in state {st:?}",
                    task.idx
                )));
            }
            self.strands[task.idx as usize].home = core;
            if moved {
                self.migrations += 1;
                *t += self.costs.per_task_moved;
            }
            self.set_state(task.idx, St::Ready);
            self.cores[core].ready += 1;
        }
        let from = letter.from;
        match self.cores[core].sched.receive(from, letter.mail, *t) {
            Received::Done => Ok(()),
            Received::Wake(idx) => {
                let (st, home) = {
                    let rec = &self.strands[idx as usize];
                    (rec.st, rec.home)
                };
                let St::Blocked(slot) = st else {
                    return Err(self.invariant(format!(
                        "a wake for strand {idx} reached core {core} but it is {st:?}"
                    )));
                };
                if home != core || !self.wake_here(core, idx, slot, *t) {
                    return Err(self.invariant(format!(
                        "a wake for strand {idx} reached core {core}, but it is parked on core {home}"
                    )));
                }
                *t += self.costs.local_wake;
                Ok(())
            }
            Received::Orphan(task, _) => Err(self.invariant(format!(
                "strand {} arrived as an orphan: the simulator hands no core off",
                task.idx
            ))),
        }
    }

    /// Sends what the scheduler of `core` put in its outbox.
    fn flush(&mut self, core: usize, t: &mut Nanos) {
        if !self.cores[core].sched.has_outbox() {
            return;
        }
        let mut out = std::mem::take(&mut self.outbox);
        out.extend(self.cores[core].sched.take_outbox());
        for (to, mail) in out.drain(..) {
            self.send(Some(core), to, mail, t);
        }
        self.outbox = out;
    }

    fn send(&mut self, from: Option<usize>, to: usize, mail: SimMail, t: &mut Nanos) {
        let n = self.cores.len();
        if let Some(f) = from {
            *t += self.costs.send;
            if let Mail::WorkReply(tasks) | Mail::Offer(tasks) = &mail {
                *t += self.costs.per_task_moved * tasks.len() as u64;
                self.cores[f].ready -= tasks.len();
                for task in tasks {
                    self.set_state(task.idx, St::Moving);
                }
            }
        }
        if let Mail::Spawn(task) = &mail {
            debug_assert_eq!(self.strands[task.idx as usize].st, St::Spawning);
        }
        if matches!(self.cores[to].mode, Mode::Parked { .. }) && from.is_some() {
            *t += self.costs.doorbell;
        }
        self.sent.bump(&mail);
        self.next_letter += 1;
        self.in_flight += 1;
        let (lane, distance) = match from {
            Some(f) => (f * n + to, self.topology.distance(f, to)),
            None => (n * n + to, 1),
        };
        let at = (*t + self.costs.hop * distance).max(self.last_delivery[lane]);
        self.last_delivery[lane] = at;
        let letter = Box::new(Letter {
            id: self.next_letter,
            from,
            mail,
        });
        self.push(at, Ev::Deliver { to, letter });
    }

    fn finish(self) -> Result<SimReport, SimError> {
        let s = &self.states;
        let exited = s[St::Exited.index()];
        if exited != self.strands.len() as u64 {
            return Err(self.invariant(format!(
                "the run ended with strands that never finished: states \
                 [spawning, ready, running, blocked, moving, exited] = {s:?}"
            )));
        }
        if self.in_flight != 0 || self.sent.total() != self.delivered.total() {
            return Err(self.invariant(format!(
                "{} messages sent, {} delivered",
                self.sent.total(),
                self.delivered.total()
            )));
        }
        self.workload
            .verify()
            .map_err(|detail| SimError::Workload {
                workload: self.workload.name(),
                detail,
            })?;
        let n = self.cores.len();
        let makespan = self.last_exit.max(1);
        let mut counters = braid_core::sched::SchedCounters::default();
        for c in &self.cores {
            let k = c.sched.counters();
            counters.given += k.given;
            counters.stolen += k.stolen;
            counters.requests += k.requests;
            counters.refusals += k.refusals;
            counters.offers += k.offers;
            counters.evicted += k.evicted;
        }
        // Every strand left its core's set: each share group's runnable sum
        // is back at zero (a missed exit would leave it high).
        if let Some((i, share)) = self
            .shares
            .iter()
            .enumerate()
            .find(|(_, s)| s.runnable() != 0)
        {
            return Err(self.invariant(format!(
                "share group {i} still counts {} of runnable weight after every strand exited",
                share.runnable()
            )));
        }
        // A context's strands never had more in one period than the
        // sporadic server allows.
        let contexts: Vec<ContextReport> = self.contexts.iter().map(SimContext::report).collect();
        for (i, c) in contexts.iter().enumerate() {
            if c.max_window_ns > c.window_bound_ns {
                return Err(self.invariant(format!(
                    "context {i} ({} ns per {} ns) had {} ns in one period, beyond its bound {} ns \
                     ({} runs at once at most)",
                    c.budget_ns, c.period_ns, c.max_window_ns, c.window_bound_ns, c.most_running
                )));
            }
        }
        let balancing = self.sent.request + self.sent.reply + self.sent.offer;
        let transfers = (self.sent.reply - counters.refusals) + self.sent.offer;
        Ok(SimReport {
            workload: self.workload.name(),
            cores: n,
            policy: String::new(),
            balancer: String::new(),
            topology: self.topology.name(),
            seed: 0,
            makespan_ns: makespan,
            work_ns: self.work,
            work_fraction: self.work as f64 / (n as f64 * makespan as f64),
            speedup: None,
            efficiency: self.work as f64 / (n as f64 * makespan as f64),
            strands: self.strands.len() as u64,
            events: self.handled,
            trace_hash: format!("{:016x}", self.trace.value()),
            messages: self.sent,
            migrations: self.migrations,
            transfers,
            balancing_messages_per_transfer: ratio(balancing, transfers),
            balancing_messages_per_migration: ratio(balancing, self.migrations),
            requests_refused: counters.refusals,
            wakes_coalesced: self.wakes_coalesced,
            wake_latency: self.wake_latency.summary(),
            response: (self.responses.count() > 0).then(|| self.responses.summary()),
            utilisation: self.util.summary(makespan),
            wall_s: 0.0,
            summary: self.workload.summary(),
            group_shares: self.workload.group_shares(),
            contexts,
            lease: self.lease_started.map(|started_ns| crate::LeaseReport {
                started_ns,
                terminated_ns: self.lease_ended,
                evicted: counters.evicted,
            }),
        })
    }
}

/// What one scheduling context's strands had in a run.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct ContextReport {
    /// The budget per period, in ns.
    pub budget_ns: Nanos,
    /// The period, in ns.
    pub period_ns: Nanos,
    /// CPU its strands used.
    pub used_ns: Nanos,
    /// Runs charged.
    pub runs: u64,
    /// Dispatches refused because the budget was spent.
    pub throttles: u64,
    /// The most CPU its strands had in any window of one period.
    pub max_window_ns: Nanos,
    /// What the sporadic server allows in one window: the budget, its
    /// catch-up, the merge allowance and twice the longest overrun.
    pub window_bound_ns: Nanos,
    /// The most runs of its strands at once (on different cores).
    pub most_running: u32,
}

impl SimContext {
    fn report(&self) -> ContextReport {
        let budget = self.account.budget();
        let stats = self.account.stats();
        let mut runs = self.runs.clone();
        runs.sort_unstable();
        ContextReport {
            budget_ns: budget.budget(),
            period_ns: budget.period(),
            used_ns: stats.used,
            runs: stats.runs,
            throttles: stats.throttles,
            max_window_ns: max_window(&runs, budget.period()),
            window_bound_ns: budget.budget()
                + budget.catch_up()
                + braid_core::budget::MERGE_GAP
                + 2 * self.overrun,
            most_running: self.most_running,
        }
    }
}

/// The most of `runs` (sorted by start) that falls in any window of
/// `period`: the sum is largest with the window starting at a run's start
/// or ending at a run's end, so those are the windows looked at.
fn max_window(runs: &[(Nanos, Nanos)], period: Nanos) -> Nanos {
    let longest = runs.iter().map(|&(s, e)| e - s).max().unwrap_or(0);
    let in_window = |from: Nanos| -> Nanos {
        let to = from + period;
        let first = runs.partition_point(|&(s, _)| s + longest < from);
        runs[first..]
            .iter()
            .take_while(|&&(s, _)| s < to)
            .map(|&(s, e)| e.min(to).saturating_sub(s.max(from)))
            .sum()
    };
    runs.iter()
        .flat_map(|&(s, e)| [s, e.saturating_sub(period)])
        .map(in_window)
        .max()
        .unwrap_or(0)
}

fn ratio(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}
