//! The synthetic workloads: the benchmark suite's thread-scale profile (static
//! map/reduce, heavy-tailed pool, barrier phases, independent groups, one
//! process, service calls), fork-join trees (skynet, an unbalanced UTS-like
//! tree), event ping-pong, a token ring, and a request server with a bimodal
//! service time at a given offered load.
//!
//! Every workload but `server` does the same total work at every core count
//! (strong scaling), so a speedup against one core is meaningful. Sizes are
//! named on the command line as `NAME` or `NAME:N` (N: the main size
//! parameter, see [`Spec::parse`]); compute costs are the defaults below or
//! what `braid sim calibrate` fitted.

use crate::workload::{Ctx, StrandIdx, Then, Workload};
use crate::SimError;
use braid_core::{LatencyClass, Nanos, Rng, SchedParams};
use std::collections::VecDeque;

/// A workload by name, with its size and costs, buildable for any core count.
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    /// Which workload.
    pub kind: Kind,
    /// The main size parameter (see [`Spec::parse`]).
    pub size: u64,
    /// The main compute cost in ns (per element, task unit, leaf … see
    /// [`Kind::cost_meaning`]).
    pub cost_ns: f64,
}

/// The workloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Static map/reduce: one strand per core, each a fixed share of the work.
    Map,
    /// Heavy-tailed dynamic pool: one puller per core takes tasks of Pareto
    /// cost from a shared counter.
    Pool,
    /// Barrier phases: one strand per core, equal work, a barrier per phase.
    Barrier,
    /// Independent groups: unrelated subtrees (a root and its children each),
    /// all spawned on one core for the balancer to spread.
    Groups,
    /// One process: fixed units of independent work split over the cores.
    Process,
    /// Service calls: clients (two per core) call one server strand on core 0.
    Service,
    /// Skynet: a 10-ary tree of strands, each leaf returns its number.
    Skynet,
    /// An unbalanced tree (binomial, UTS-like): most nodes are leaves, a few
    /// have many children, fixed by a hash of the node's path.
    Uts,
    /// Event ping-pong: pairs of strands on different cores wake each other.
    PingPong,
    /// A token ring: the token passes strand to strand.
    Ring,
    /// A request server: requests arrive at random (Poisson) at a given
    /// offered load, 99.5 % take 4 µs and 0.5 % 10 ms.
    Server,
    /// The request server of `braid bench dispersive_latency`: the same
    /// mix at a chosen load, the long requests computed in 100 µs steps
    /// with a yield between, short requests of latency class `Latency` and
    /// long ones `Batch`; the response times are the short requests'.
    Dispersive,
    /// Weighted sharing: three groups of CPU-bound strands (as many per
    /// group as cores) of weights 1 : 2 : 4, computing with runtime calls
    /// until the time is up; reports each group's share of the CPU.
    Share,
    /// Weighted sharing by share groups: the `share` workload's three groups
    /// of weights 1 : 2 : 4, each a share group (see `braid_core::share`)
    /// of strands of the default weight, with 3, 1 and 2 strands per core —
    /// weighing strands instead of groups would give them 1/2, 1/6, 1/3.
    GroupShare,
    /// An exclusive-core lease: one CPU-bound strand (the group) and two
    /// batch-class strands per core (the others), all computing with
    /// runtime calls; core 0 is leased to the group from 10 ms. The group
    /// must then have core 0 to itself, from 5 ms after (the strand
    /// running there finishes its slice): 99 % of that time.
    /// Batch work waiting elsewhere does not end a normal group's lease.
    Lease,
    /// The `lease` workload with four others per core, of the group's class
    /// (normal): every shared core keeps such work waiting, and the lease
    /// is terminated for fairness (braid-core's `lease::Fairness`: after
    /// 20 ms of backlog everywhere, looked at every millisecond).
    LeaseContended,
    /// CPU budgets: one strand bound to a context of 2 ms per 10 ms, as
    /// many strands as cores bound to one of 3 ms per 10 ms (spread over
    /// the cores), and as many unbound strands, all computing with runtime
    /// calls until the time is up; each context must get its budget's
    /// share within 1 % of it.
    Budget,
}

impl Kind {
    /// Every workload: name, kind, default size, default cost, what the size
    /// means.
    #[rustfmt::skip]
    pub const ALL: [(&'static str, Kind, u64, f64, &'static str); 17] = [
        ("map", Kind::Map, 2_097_152, 40.0, "elements (cost: per element)"),
        ("pool", Kind::Pool, 20_000, 2_000.0, "tasks (cost: per task unit; units are Pareto, 1..=201)"),
        ("barrier", Kind::Barrier, 2_000, 4.0, "phases of 200 000 elements (cost: per element)"),
        ("groups", Kind::Groups, 256, 50_000.0, "groups of 8 children (cost: per child)"),
        ("process", Kind::Process, 800, 100_000.0, "units (cost: per unit)"),
        ("service", Kind::Service, 200_000, 1_000.0, "calls (cost: client work per call; the server's is 1/32 of it)"),
        ("skynet", Kind::Skynet, 6, 10.0, "levels of a 10-ary tree (cost: per leaf)"),
        ("uts", Kind::Uts, 2_000, 2_000.0, "children of the root (cost: per node)"),
        ("pingpong", Kind::PingPong, 200_000, 50.0, "round trips in all (cost: per turn)"),
        ("ring", Kind::Ring, 10_000, 50.0, "strands, 100 laps (cost: per hop)"),
        ("server", Kind::Server, 100_000, 4_000.0, "requests at 70 % load (cost: the short service time)"),
        ("dispersive", Kind::Dispersive, 80, 4_000.0, "per cent load, 100 000 requests (cost: the short service time)"),
        ("share", Kind::Share, 1_000, 50_000.0, "ms of simulated time (cost: work between runtime calls)"),
        ("group-share", Kind::GroupShare, 1_000, 50_000.0, "ms of simulated time (cost: work between runtime calls)"),
        ("lease", Kind::Lease, 200, 50_000.0, "ms of simulated time (cost: work between runtime calls)"),
        ("lease-contended", Kind::LeaseContended, 200, 50_000.0, "ms of simulated time (cost: work between runtime calls)"),
        ("budget", Kind::Budget, 1_000, 50_000.0, "ms of simulated time (cost: work between runtime calls)"),
    ];

    fn entry(self) -> &'static (&'static str, Kind, u64, f64, &'static str) {
        Self::ALL.iter().find(|e| e.1 == self).expect("listed")
    }

    /// The workload's name.
    pub fn name(self) -> &'static str {
        self.entry().0
    }

    /// What the size and cost mean.
    pub fn cost_meaning(self) -> &'static str {
        self.entry().4
    }
}

impl Spec {
    /// Reads `NAME` or `NAME:SIZE` (see [`Kind::ALL`] for each size's meaning).
    pub fn parse(text: &str) -> Result<Spec, SimError> {
        let (name, size) = match text.split_once(':') {
            Some((name, size)) => (name, Some(size)),
            None => (text, None),
        };
        let Some(&(_, kind, default, cost, _)) = Kind::ALL.iter().find(|e| e.0 == name) else {
            return Err(SimError::BadArgument {
                what: "workload",
                value: text.to_owned(),
                allowed: Kind::ALL.iter().map(|e| e.0).collect::<Vec<_>>().join(", "),
            });
        };
        let size = match size {
            None => default,
            Some(s) => match s.parse::<u64>() {
                Ok(n)
                    if n > 0
                        && (kind != Kind::Skynet || n <= 7)
                        && (kind != Kind::Dispersive || n < 100) =>
                {
                    n
                }
                _ => {
                    return Err(SimError::BadArgument {
                        what: "workload size",
                        value: text.to_owned(),
                        allowed: format!(
                            "{name}:N with N a positive whole number ({}){}",
                            kind.cost_meaning(),
                            match kind {
                                Kind::Skynet => ", at most 7",
                                Kind::Dispersive => ", below 100",
                                _ => "",
                            }
                        ),
                    })
                }
            },
        };
        Ok(Spec {
            kind,
            size,
            cost_ns: cost,
        })
    }

    /// Every workload at its default size.
    pub fn all() -> Vec<Spec> {
        Kind::ALL
            .iter()
            .map(|e| Spec {
                kind: e.1,
                size: e.2,
                cost_ns: e.3,
            })
            .collect()
    }

    /// Whether the total work is the same at every core count.
    pub fn fixed_size(&self) -> bool {
        !matches!(
            self.kind,
            Kind::Server
                | Kind::Dispersive
                | Kind::Share
                | Kind::GroupShare
                | Kind::Budget
                | Kind::Lease
                | Kind::LeaseContended
        )
    }

    /// The workload's label in reports: `name:size`.
    pub fn label(&self) -> String {
        format!("{}:{}", self.kind.name(), self.size)
    }

    /// The workload for `cores` cores.
    pub fn build(&self, cores: usize) -> Result<Box<dyn Workload>, SimError> {
        let w = cores as u64;
        let c = self.cost_ns;
        let n = self.size;
        let ns = |x: f64| x.round().max(0.0) as Nanos;
        Ok(match self.kind {
            Kind::Map | Kind::Process => Box::new(Split::new(self.label(), ns(n as f64 * c), w)),
            Kind::Pool => Box::new(Pool::new(self.label(), n, c, w)),
            Kind::Barrier => Box::new(Barrier::new(self.label(), n, ns(200_000.0 * c), w)),
            Kind::Groups => Box::new(Tree::groups(self.label(), n, ns(c))),
            Kind::Service => Box::new(Service::new(self.label(), n, ns(c), ns(c / 32.0), w)),
            Kind::Skynet => Box::new(Tree::skynet(self.label(), n as u32, ns(c))),
            Kind::Uts => Box::new(Tree::uts(self.label(), n, ns(c))),
            Kind::PingPong => Box::new(PingPong::new(self.label(), n, ns(c), cores)),
            Kind::Ring => Box::new(Ring::new(self.label(), n, 100, ns(c))),
            Kind::Server => Box::new(Server::new(self.label(), n, ns(c), 0.7, cores)),
            Kind::Dispersive => Box::new(Dispersive::new(
                self.label(),
                100_000,
                ns(c),
                n as f64 / 100.0,
                cores,
            )),
            Kind::Share => Box::new(Share::new(self.label(), n * 1_000_000, ns(c), cores, false)),
            Kind::GroupShare => {
                Box::new(Share::new(self.label(), n * 1_000_000, ns(c), cores, true))
            }
            Kind::Budget => Box::new(Budgeted::new(self.label(), n * 1_000_000, ns(c), cores)),
            Kind::Lease | Kind::LeaseContended => Box::new(Leased::new(
                self.label(),
                n * 1_000_000,
                ns(c),
                cores,
                self.kind == Kind::LeaseContended,
            )),
        })
    }
}

/// Joins: how many children each strand still waits for. Strand 0, the
/// root, is tracked from the start.
struct Joins {
    pending: Vec<u32>,
    parent: Vec<Option<StrandIdx>>,
}

impl Default for Joins {
    fn default() -> Joins {
        Joins {
            pending: vec![0],
            parent: vec![None],
        }
    }
}

impl Joins {
    fn spawn(&mut self, ctx: &mut Ctx, parent: StrandIdx, core: Option<usize>) -> StrandIdx {
        let idx = ctx.spawn(core);
        self.track(idx, Some(parent));
        self.pending[parent as usize] += 1;
        idx
    }

    fn track(&mut self, idx: StrandIdx, parent: Option<StrandIdx>) {
        let i = idx as usize;
        if self.pending.len() <= i {
            self.pending.resize(i + 1, 0);
            self.parent.resize(i + 1, None);
        }
        self.parent[i] = parent;
    }

    /// `idx` exits: its parent may wake.
    fn exit(&mut self, ctx: &mut Ctx, idx: StrandIdx) -> Then {
        if let Some(p) = self.parent[idx as usize] {
            self.pending[p as usize] -= 1;
            if self.pending[p as usize] == 0 {
                ctx.wake(p);
            }
        }
        Then::Exit
    }

    /// The root's program in most workloads: its first run spawns `n`
    /// workers (pinned one per core in turn when `pinned`) and yields; later
    /// runs wait for them all, then exit.
    fn root(&mut self, started: &mut bool, ctx: &mut Ctx, n: u64, pinned: bool) -> Then {
        if *started {
            return self.wait(0, Then::Exit);
        }
        *started = true;
        for i in 0..n {
            let core = pinned.then(|| (i % ctx.cores() as u64) as usize);
            self.spawn(ctx, 0, core);
        }
        Then::Yield
    }

    /// Block until every child of `idx` exited, then `done`.
    fn wait(&self, idx: StrandIdx, done: Then) -> Then {
        if self.pending[idx as usize] > 0 {
            Then::Block
        } else {
            done
        }
    }
}

/// A strand's progress through its program.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
enum Phase {
    #[default]
    Start,
    Waiting,
    Done,
}

/// Map/reduce and one-process: the root spawns one strand per core, pinned,
/// each with an equal share.
struct Split {
    label: String,
    total: Nanos,
    workers: u64,
    joins: Joins,
    started: bool,
    phase: Vec<Phase>,
    done: u64,
}

impl Split {
    fn new(label: String, total: Nanos, workers: u64) -> Split {
        Split {
            label,
            total,
            workers,
            joins: Joins::default(),
            started: false,
            phase: Vec::new(),
            done: 0,
        }
    }
}

fn phase_of(phases: &mut Vec<Phase>, idx: StrandIdx) -> &mut Phase {
    let i = idx as usize;
    if phases.len() <= i {
        phases.resize(i + 1, Phase::Start);
    }
    &mut phases[i]
}

impl Workload for Split {
    fn name(&self) -> String {
        self.label.clone()
    }
    fn act(&mut self, idx: StrandIdx, ctx: &mut Ctx) -> Then {
        let phase = *phase_of(&mut self.phase, idx);
        match (idx, phase) {
            (0, _) => self.joins.root(&mut self.started, ctx, self.workers, true),
            (_, Phase::Start) => {
                *phase_of(&mut self.phase, idx) = Phase::Done;
                Then::Run(self.total / self.workers)
            }
            _ => {
                self.done += 1;
                self.joins.exit(ctx, idx)
            }
        }
    }
    fn verify(&self) -> Result<(), String> {
        check_eq("workers finished", self.done, self.workers)
    }
}

fn check_eq(what: &str, got: u64, want: u64) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: {got}, expected {want}"))
    }
}

/// The bench's heavy-tailed cost of task `i` in units: Pareto (shape 1.5),
/// capped; the same formula as `braid-bench`'s dynamic pool.
pub fn pool_task_units(i: u64) -> u64 {
    let mut x = (i + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 31;
    let u = ((x >> 11) as f64 / (1u64 << 53) as f64).max(1e-9);
    (u.powf(-1.0 / 1.5)).min(200.0) as u64 + 1
}

/// The dynamic pool: pullers pinned one per core take the next task.
struct Pool {
    label: String,
    tasks: u64,
    unit: f64,
    workers: u64,
    next: u64,
    joins: Joins,
    started: bool,
    taken: u64,
}

impl Pool {
    fn new(label: String, tasks: u64, unit: f64, workers: u64) -> Pool {
        Pool {
            label,
            tasks,
            unit,
            workers,
            next: 0,
            joins: Joins::default(),
            started: false,
            taken: 0,
        }
    }
}

impl Workload for Pool {
    fn name(&self) -> String {
        self.label.clone()
    }
    fn act(&mut self, idx: StrandIdx, ctx: &mut Ctx) -> Then {
        if idx == 0 {
            return self.joins.root(&mut self.started, ctx, self.workers, true);
        }
        if self.next < self.tasks {
            let t = self.next;
            self.next += 1;
            self.taken += 1;
            return Then::Run((pool_task_units(t) as f64 * self.unit).round() as Nanos);
        }
        self.joins.exit(ctx, idx)
    }
    fn verify(&self) -> Result<(), String> {
        check_eq("tasks taken", self.taken, self.tasks)
    }
}

/// Barrier phases: workers pinned one per core; the last to arrive at the
/// barrier wakes the others.
struct Barrier {
    label: String,
    phases: u64,
    phase_work: Nanos,
    workers: u64,
    joins: Joins,
    started: bool,
    /// Per worker: phases completed, and whether it is computing.
    done: Vec<u64>,
    computing: Vec<bool>,
    arrived: u64,
    generation: u64,
    waiting_for: Vec<u64>,
    waiters: Vec<StrandIdx>,
}

impl Barrier {
    fn new(label: String, phases: u64, phase_work: Nanos, workers: u64) -> Barrier {
        let n = workers as usize + 1;
        Barrier {
            label,
            phases,
            phase_work,
            workers,
            joins: Joins::default(),
            started: false,
            done: vec![0; n],
            computing: vec![false; n],
            arrived: 0,
            generation: 0,
            waiting_for: vec![u64::MAX; n],
            waiters: Vec::new(),
        }
    }
}

impl Workload for Barrier {
    fn name(&self) -> String {
        self.label.clone()
    }
    fn act(&mut self, idx: StrandIdx, ctx: &mut Ctx) -> Then {
        if idx == 0 {
            return self.joins.root(&mut self.started, ctx, self.workers, true);
        }
        let i = idx as usize;
        if self.waiting_for[i] != u64::MAX {
            if self.generation <= self.waiting_for[i] {
                return Then::Block; // a spurious wake: the barrier has not opened
            }
            self.waiting_for[i] = u64::MAX;
        }
        if self.computing[i] {
            // A phase's work is done: arrive at the barrier.
            self.computing[i] = false;
            self.done[i] += 1;
            self.arrived += 1;
            if self.arrived == self.workers {
                self.arrived = 0;
                self.generation += 1;
                for w in self.waiters.drain(..) {
                    ctx.wake(w);
                }
            } else {
                self.waiting_for[i] = self.generation;
                self.waiters.push(idx);
                return Then::Block;
            }
        }
        if self.done[i] == self.phases {
            return self.joins.exit(ctx, idx);
        }
        self.computing[i] = true;
        Then::Run(self.phase_work / self.workers)
    }
    fn verify(&self) -> Result<(), String> {
        for (i, &d) in self.done.iter().enumerate().skip(1) {
            check_eq(&format!("phases of worker {i}"), d, self.phases)?;
        }
        check_eq("barrier generations", self.generation, self.phases)
    }
}

/// Fork-join trees: skynet, an unbalanced tree, independent groups.
struct Tree {
    label: String,
    shape: Shape,
    node_cost: Nanos,
    joins: Joins,
    phase: Vec<Phase>,
    /// Per strand: its depth, and its path hash (the UTS shape) or number
    /// (skynet).
    depth: Vec<u32>,
    key: Vec<u64>,
    /// Sum of the leaves' numbers (skynet) or nodes seen.
    total: u64,
    expected: u64,
}

#[derive(Clone, Copy)]
enum Shape {
    /// `fanout` children per node down to `levels`.
    Full { fanout: u64, levels: u32 },
    /// Binomial: the root has `root` children, every other node `m` children
    /// with probability `q`.
    Binomial { root: u64, m: u64, q: f64 },
    /// `groups` children of the root, each with `children` leaf children.
    Groups { groups: u64, children: u64 },
}

fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl Shape {
    fn children(&self, depth: u32, key: u64) -> u64 {
        match *self {
            Shape::Full { fanout, levels } => {
                if depth < levels {
                    fanout
                } else {
                    0
                }
            }
            Shape::Binomial { root, m, q } => {
                if depth == 0 {
                    root
                } else if ((mix(key) >> 11) as f64 / (1u64 << 53) as f64) < q {
                    m
                } else {
                    0
                }
            }
            Shape::Groups { groups, children } => match depth {
                0 => groups,
                1 => children,
                _ => 0,
            },
        }
    }

    fn child_key(&self, key: u64, i: u64) -> u64 {
        match self {
            Shape::Full { fanout, .. } => key * fanout + i,
            _ => mix(key ^ mix(i + 1)),
        }
    }
}

impl Tree {
    fn new(label: String, shape: Shape, node_cost: Nanos) -> Tree {
        let expected = match shape {
            Shape::Full { fanout, levels } => {
                let leaves = fanout.pow(levels);
                leaves * (leaves - 1) / 2
            }
            _ => Self::count(&shape, 0, 1),
        };
        Tree {
            label,
            shape,
            node_cost,
            joins: Joins::default(),
            phase: Vec::new(),
            depth: Vec::new(),
            key: Vec::new(),
            total: 0,
            expected,
        }
    }

    /// Nodes in the subtree at (`depth`, `key`), counted without simulating.
    fn count(shape: &Shape, depth: u32, key: u64) -> u64 {
        let mut nodes = 0;
        let mut stack = vec![(depth, key)];
        while let Some((d, k)) = stack.pop() {
            nodes += 1;
            for i in 0..shape.children(d, k) {
                stack.push((d + 1, shape.child_key(k, i)));
            }
        }
        nodes
    }

    fn skynet(label: String, levels: u32, leaf: Nanos) -> Tree {
        Tree::new(label, Shape::Full { fanout: 10, levels }, leaf)
    }

    fn uts(label: String, root: u64, node: Nanos) -> Tree {
        // m·q = 0.992 < 1: finite, ~root / (1 − m·q) nodes, heavy subtrees.
        Tree::new(
            label,
            Shape::Binomial {
                root,
                m: 8,
                q: 0.124,
            },
            node,
        )
    }

    fn groups(label: String, groups: u64, child: Nanos) -> Tree {
        Tree::new(
            label,
            Shape::Groups {
                groups,
                children: 8,
            },
            child,
        )
    }

    fn set(&mut self, idx: StrandIdx, depth: u32, key: u64) {
        let i = idx as usize;
        if self.depth.len() <= i {
            self.depth.resize(i + 1, 0);
            self.key.resize(i + 1, 0);
        }
        self.depth[i] = depth;
        self.key[i] = key;
    }
}

impl Workload for Tree {
    fn name(&self) -> String {
        self.label.clone()
    }
    fn roots(&mut self, _cores: usize) -> u32 {
        self.set(
            0,
            0,
            if matches!(self.shape, Shape::Full { .. }) {
                0
            } else {
                1
            },
        );
        1
    }
    fn act(&mut self, idx: StrandIdx, ctx: &mut Ctx) -> Then {
        let i = idx as usize;
        let (depth, key) = (self.depth[i], self.key[i]);
        let phase = *phase_of(&mut self.phase, idx);
        match phase {
            Phase::Start => {
                let kids = self.shape.children(depth, key);
                let full = matches!(self.shape, Shape::Full { .. });
                if kids == 0 {
                    *phase_of(&mut self.phase, idx) = Phase::Done;
                    self.total += if full { key } else { 1 };
                    return Then::Run(self.node_cost);
                }
                for k in 0..kids {
                    let child = self.joins.spawn(ctx, idx, None);
                    self.set(child, depth + 1, self.shape.child_key(key, k));
                }
                if !full {
                    self.total += 1;
                }
                *phase_of(&mut self.phase, idx) = Phase::Waiting;
                if full {
                    Then::Block // joins its children; woken by the last
                } else {
                    Then::Run(self.node_cost)
                }
            }
            Phase::Waiting => {
                if self.joins.pending[i] > 0 {
                    Then::Block
                } else {
                    self.joins.exit(ctx, idx)
                }
            }
            Phase::Done => self.joins.exit(ctx, idx),
        }
    }
    fn verify(&self) -> Result<(), String> {
        let what = match self.shape {
            Shape::Full { .. } => "sum of the leaves' numbers",
            _ => "nodes visited",
        };
        check_eq(what, self.total, self.expected)
    }
}

/// Service calls: one server strand pinned to core 0, two clients per core.
struct Service {
    label: String,
    calls: u64,
    client_work: Nanos,
    server_work: Nanos,
    clients: u64,
    joins: Joins,
    started: bool,
    queue: VecDeque<StrandIdx>,
    /// Per strand: calls left (clients), whether a reply is pending.
    left: Vec<u64>,
    awaiting: Vec<bool>,
    computing: Vec<bool>,
    server_busy_with: Option<StrandIdx>,
    server: StrandIdx,
    served: u64,
    clients_done: u64,
}

impl Service {
    fn new(label: String, calls: u64, client: Nanos, server: Nanos, workers: u64) -> Service {
        let clients = (2 * workers).max(2);
        let n = clients as usize + 2;
        Service {
            label,
            calls,
            client_work: client,
            server_work: server,
            clients,
            joins: Joins::default(),
            started: false,
            queue: VecDeque::new(),
            left: vec![0; n],
            awaiting: vec![false; n],
            computing: vec![false; n],
            server_busy_with: None,
            server: 1,
            served: 0,
            clients_done: 0,
        }
    }
}

impl Workload for Service {
    fn name(&self) -> String {
        self.label.clone()
    }
    fn act(&mut self, idx: StrandIdx, ctx: &mut Ctx) -> Then {
        let cores = ctx.cores() as u64;
        if idx == 0 {
            if !self.started {
                self.started = true;
                self.server = self.joins.spawn(ctx, 0, Some(0));
                for c in 0..self.clients {
                    let client = self.joins.spawn(ctx, 0, Some((c % cores) as usize));
                    // Client c makes calls c, c + clients, … below `calls`.
                    self.left[client as usize] =
                        self.calls.saturating_sub(c).div_ceil(self.clients);
                }
                return Then::Yield;
            }
            return self.joins.wait(0, Then::Exit);
        }
        let i = idx as usize;
        if idx == self.server {
            if let Some(client) = self.server_busy_with.take() {
                self.awaiting[client as usize] = false;
                self.served += 1;
                ctx.wake(client);
            }
            if let Some(client) = self.queue.pop_front() {
                self.server_busy_with = Some(client);
                return Then::Run(self.server_work);
            }
            if self.clients_done == self.clients {
                return self.joins.exit(ctx, idx);
            }
            return Then::Block;
        }
        if self.awaiting[i] {
            return Then::Block;
        }
        if self.computing[i] {
            self.computing[i] = false;
            self.left[i] -= 1;
            self.awaiting[i] = true;
            self.queue.push_back(idx);
            ctx.wake(self.server);
            return Then::Block;
        }
        if self.left[i] == 0 {
            self.clients_done += 1;
            if self.clients_done == self.clients {
                ctx.wake(self.server);
            }
            return self.joins.exit(ctx, idx);
        }
        self.computing[i] = true;
        Then::Run(self.client_work)
    }
    fn verify(&self) -> Result<(), String> {
        check_eq("calls served", self.served, self.calls)
    }
}

/// Ping-pong pairs, the two strands of a pair pinned to neighbouring cores.
struct PingPong {
    label: String,
    pairs: u64,
    rounds: u64,
    turn_cost: Nanos,
    joins: Joins,
    started: bool,
    /// Per pair: whose turn (0 or 1), turns taken; per strand: its pair, side.
    turn: Vec<u8>,
    taken: Vec<u64>,
    pair_of: Vec<(u64, u8)>,
    working: Vec<bool>,
    first: StrandIdx,
}

impl PingPong {
    fn new(label: String, round_trips: u64, cost: Nanos, cores: usize) -> PingPong {
        let pairs = (cores as u64 / 2).max(1);
        PingPong {
            label,
            pairs,
            rounds: round_trips.div_ceil(pairs),
            turn_cost: cost,
            joins: Joins::default(),
            started: false,
            turn: vec![0; pairs as usize],
            taken: vec![0; pairs as usize],
            pair_of: Vec::new(),
            working: Vec::new(),
            first: 1,
        }
    }
}

impl Workload for PingPong {
    fn name(&self) -> String {
        self.label.clone()
    }
    fn act(&mut self, idx: StrandIdx, ctx: &mut Ctx) -> Then {
        let cores = ctx.cores() as u64;
        if idx == 0 {
            if !self.started {
                self.started = true;
                self.pair_of = vec![(0, 0); 1];
                for p in 0..self.pairs {
                    for side in 0..2u64 {
                        let core = ((2 * p + side) % cores) as usize;
                        let s = self.joins.spawn(ctx, 0, Some(core));
                        if p == 0 && side == 0 {
                            self.first = s;
                        }
                        self.pair_of.push((p, side as u8));
                    }
                }
                self.working = vec![false; self.pair_of.len()];
                return Then::Yield;
            }
            return self.joins.wait(0, Then::Exit);
        }
        let i = (idx - self.first + 1) as usize;
        let (pair, side) = self.pair_of[i];
        let p = pair as usize;
        if self.working[i] {
            // Turn done: hand over to the partner.
            self.working[i] = false;
            self.taken[p] += 1;
            self.turn[p] ^= 1;
            let partner = if side == 0 { idx + 1 } else { idx - 1 };
            ctx.wake(partner);
        }
        if self.taken[p] >= 2 * self.rounds {
            return self.joins.exit(ctx, idx);
        }
        if self.turn[p] != side {
            return Then::Block;
        }
        self.working[i] = true;
        Then::Run(self.turn_cost)
    }
    fn verify(&self) -> Result<(), String> {
        let taken: u64 = self.taken.iter().sum();
        check_eq("turns", taken, 2 * self.rounds * self.pairs)
    }
}

/// A token ring of `tasks` strands spawned on one core (the balancer spreads
/// them); each passes the token `laps` times.
struct Ring {
    label: String,
    tasks: u64,
    laps: u64,
    hop: Nanos,
    joins: Joins,
    started: bool,
    token: u64,
    passes: Vec<u64>,
    holding: Vec<bool>,
    hops: u64,
}

impl Ring {
    fn new(label: String, tasks: u64, laps: u64, hop: Nanos) -> Ring {
        Ring {
            label,
            tasks,
            laps,
            hop,
            joins: Joins::default(),
            started: false,
            token: 0,
            passes: vec![0; tasks as usize + 1],
            holding: vec![false; tasks as usize + 1],
            hops: 0,
        }
    }
}

impl Workload for Ring {
    fn name(&self) -> String {
        self.label.clone()
    }
    fn act(&mut self, idx: StrandIdx, ctx: &mut Ctx) -> Then {
        if idx == 0 {
            return self.joins.root(&mut self.started, ctx, self.tasks, false);
        }
        let i = idx as usize;
        let me = u64::from(idx) - 1;
        if self.holding[i] {
            self.holding[i] = false;
            self.passes[i] += 1;
            self.hops += 1;
            self.token = (me + 1) % self.tasks;
            ctx.wake(self.token as StrandIdx + 1);
            if self.passes[i] == self.laps {
                return self.joins.exit(ctx, idx);
            }
        }
        if self.token != me {
            return Then::Block;
        }
        self.holding[i] = true;
        Then::Run(self.hop)
    }
    fn verify(&self) -> Result<(), String> {
        check_eq("hops", self.hops, self.tasks * self.laps)
    }
}

/// Poisson arrivals of requests, 0.5 % of them slow (10 ms), at an offered
/// load: what the `server` and `dispersive` workloads share.
struct Arrivals {
    requests: u64,
    arrived: u64,
    mean_gap: f64,
    rng: Rng,
}

/// The slow requests' service time, and how many of the requests are slow.
const SLOW: Nanos = 10_000_000;
const SLOW_FRACTION: f64 = 0.005;

impl Arrivals {
    fn new(requests: u64, fast: Nanos, load: f64, cores: usize) -> Arrivals {
        let mean = (1.0 - SLOW_FRACTION) * fast as f64 + SLOW_FRACTION * SLOW as f64;
        Arrivals {
            requests,
            arrived: 0,
            mean_gap: mean / (load * cores as f64),
            rng: Rng::new(0x5eed),
        }
    }

    fn uniform(&mut self) -> f64 {
        ((self.rng.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn next_after(&mut self, now: Nanos) -> Option<Nanos> {
        if self.arrived == self.requests {
            return None;
        }
        let gap = -self.uniform().ln() * self.mean_gap;
        Some(now + gap.round() as Nanos)
    }

    /// One more arrived: whether it is slow.
    fn arrive(&mut self) -> bool {
        self.arrived += 1;
        self.uniform() < SLOW_FRACTION
    }

    fn all_arrived(&self) -> bool {
        self.arrived == self.requests
    }
}

/// Grows `v` to hold index `i`.
fn slot<T: Default + Clone>(v: &mut Vec<T>, i: usize) -> &mut T {
    if v.len() <= i {
        v.resize(i + 1, T::default());
    }
    &mut v[i]
}

/// Requests arriving at random: a strand each, injected round robin.
struct Server {
    label: String,
    fast: Nanos,
    arrivals: Arrivals,
    arrival_at: Vec<Nanos>,
    slow_req: Vec<bool>,
    running: Vec<bool>,
    answered: u64,
}

impl Server {
    fn new(label: String, requests: u64, fast: Nanos, load: f64, cores: usize) -> Server {
        Server {
            label,
            fast,
            arrivals: Arrivals::new(requests, fast, load, cores),
            arrival_at: Vec::new(),
            slow_req: Vec::new(),
            running: Vec::new(),
            answered: 0,
        }
    }
}

impl Workload for Server {
    fn name(&self) -> String {
        self.label.clone()
    }
    fn roots(&mut self, _cores: usize) -> u32 {
        0
    }
    fn next_arrival(&mut self, now: Nanos) -> Option<Nanos> {
        self.arrivals.next_after(now)
    }
    fn arrived(&mut self, idx: StrandIdx, now: Nanos) {
        let i = idx as usize;
        *slot(&mut self.arrival_at, i) = now;
        *slot(&mut self.slow_req, i) = self.arrivals.arrive();
        *slot(&mut self.running, i) = false;
    }
    fn act(&mut self, idx: StrandIdx, ctx: &mut Ctx) -> Then {
        let i = idx as usize;
        if self.running[i] {
            self.answered += 1;
            ctx.respond(ctx.now() - self.arrival_at[i]);
            return Then::Exit;
        }
        self.running[i] = true;
        Then::Run(if self.slow_req[i] { SLOW } else { self.fast })
    }
    fn verify(&self) -> Result<(), String> {
        check_eq("requests answered", self.answered, self.arrivals.requests)
    }
}

/// The request server of `braid bench dispersive_latency` (see
/// [`Kind::Dispersive`]): strand 0, the dispatcher (class `Latency`), is
/// woken by each arrival as a channel's receiver is by a thread outside
/// the runtime, and spawns a strand per request on its own core: short
/// ones `Latency`, slow ones `Batch`, computed in [`DISPERSIVE_STEP`]s with
/// a yield between.
struct Dispersive {
    label: String,
    fast: Nanos,
    arrivals: Arrivals,
    /// Arrivals the dispatcher has not taken yet.
    queued: VecDeque<Nanos>,
    arrival_at: Vec<Nanos>,
    slow_req: Vec<bool>,
    /// How many times each request has acted.
    acts: Vec<u32>,
    answered: u64,
    /// When the dispatcher spawned each request.
    spawned_at: Vec<Nanos>,
    /// The fast requests' response times, and of that the waits before the
    /// dispatcher took them and between their spawn and first run.
    latencies: Vec<Nanos>,
    to_dispatch: Vec<Nanos>,
    to_run: Vec<Nanos>,
}

/// A slow `dispersive` request's steps.
pub const DISPERSIVE_STEP: Nanos = 100_000;

impl Dispersive {
    fn new(label: String, requests: u64, fast: Nanos, load: f64, cores: usize) -> Dispersive {
        Dispersive {
            label,
            fast,
            arrivals: Arrivals::new(requests, fast, load, cores),
            queued: VecDeque::new(),
            arrival_at: vec![0],
            slow_req: vec![false],
            acts: vec![0],
            answered: 0,
            spawned_at: vec![0],
            latencies: Vec::new(),
            to_dispatch: Vec::new(),
            to_run: Vec::new(),
        }
    }

    /// The dispatcher: a strand per queued arrival, then wait for more.
    fn dispatch(&mut self, ctx: &mut Ctx) -> Then {
        while let Some(at) = self.queued.pop_front() {
            let i = ctx.spawn(None) as usize;
            *slot(&mut self.arrival_at, i) = at;
            *slot(&mut self.slow_req, i) = self.arrivals.arrive();
            *slot(&mut self.acts, i) = 0;
            *slot(&mut self.spawned_at, i) = ctx.now();
        }
        if self.arrivals.all_arrived() {
            Then::Exit
        } else {
            Then::Block
        }
    }
}

impl Workload for Dispersive {
    fn name(&self) -> String {
        self.label.clone()
    }
    fn next_arrival(&mut self, now: Nanos) -> Option<Nanos> {
        // `arrive` counts a request when the dispatcher takes it.
        if self.arrivals.arrived + self.queued.len() as u64 == self.arrivals.requests {
            return None;
        }
        let gap = -self.arrivals.uniform().ln() * self.arrivals.mean_gap;
        Some(now + gap.round() as Nanos)
    }
    fn receiver(&self) -> Option<StrandIdx> {
        Some(0)
    }
    fn arrived(&mut self, _receiver: StrandIdx, now: Nanos) {
        self.queued.push_back(now);
    }
    fn act(&mut self, idx: StrandIdx, ctx: &mut Ctx) -> Then {
        if idx == 0 {
            return self.dispatch(ctx);
        }
        // A request of `k` steps acts 2k times: a run, then a yield or (the
        // last time) the exit, after each.
        let i = idx as usize;
        let act = self.acts[i];
        self.acts[i] += 1;
        let slow = self.slow_req[i];
        let steps = if slow {
            SLOW.div_ceil(DISPERSIVE_STEP) as u32
        } else {
            1
        };
        if act == 2 * steps - 1 {
            self.answered += 1;
            if !slow {
                let latency = ctx.now() - self.arrival_at[i];
                ctx.respond(latency);
                self.latencies.push(latency);
            }
            return Then::Exit;
        }
        if act % 2 == 1 {
            return Then::Yield;
        }
        if act == 0 && !slow {
            self.to_dispatch
                .push(self.spawned_at[i] - self.arrival_at[i]);
            self.to_run.push(ctx.now() - self.spawned_at[i]);
        }
        Then::Run(if slow {
            DISPERSIVE_STEP.min(SLOW - DISPERSIVE_STEP * u64::from(act / 2))
        } else {
            self.fast
        })
    }
    fn verify(&self) -> Result<(), String> {
        check_eq("requests answered", self.answered, self.arrivals.requests)
    }
    fn params(&self, idx: StrandIdx) -> SchedParams {
        let class = match self.slow_req.get(idx as usize) {
            _ if idx == 0 => LatencyClass::Latency,
            Some(true) => LatencyClass::Batch,
            _ => LatencyClass::Latency,
        };
        SchedParams {
            class,
            ..SchedParams::default()
        }
    }
    fn summary(&self) -> Option<String> {
        let quantiles = |v: &[Nanos]| {
            let mut v = v.to_vec();
            v.sort_unstable();
            move |q: f64| {
                let i = (v.len().saturating_sub(1) as f64 * q).round() as usize;
                v.get(i).map_or(0.0, |&ns| ns as f64 / 1e3)
            }
        };
        let (all, dispatch, run) = (
            quantiles(&self.latencies),
            quantiles(&self.to_dispatch),
            quantiles(&self.to_run),
        );
        Some(format!(
            "short requests ({}): p50 {:.1} us, p99 {:.1} us, p999 {:.1} us, max {:.1} us; \
             waiting for the dispatcher p50 {:.1} / p99 {:.1} us, from spawn to run p50 {:.1} / p99 {:.1} us",
            self.latencies.len(),
            all(0.5),
            all(0.99),
            all(0.999),
            all(1.0),
            dispatch(0.5),
            dispatch(0.99),
            run(0.5),
            run(0.99),
        ))
    }
}

/// The weights of the `share` workload's groups.
pub const SHARE_WEIGHTS: [u32; 3] = [1024, 2048, 4096];

/// Strands per core of each group of the `group-share` workload.
const GROUP_SHARE_MEMBERS: [usize; 3] = [3, 1, 2];

/// Weighted sharing (see [`Kind::Share`] and [`Kind::GroupShare`]). Strand 0
/// spawns the workers, the groups in turn while each has strands to come,
/// all on its own core for the balancer to spread, and waits for them.
struct Share {
    label: String,
    until: Nanos,
    chunk: Nanos,
    /// The group of each worker, in spawn order.
    workers: Vec<usize>,
    /// Share groups (`group-share`) rather than weighted strands.
    grouped: bool,
    started: bool,
    joins: Joins,
    /// Group of each strand (`None`: the root).
    group: Vec<Option<usize>>,
    /// CPU each group computed.
    cpu: [Nanos; 3],
}

impl Share {
    fn new(label: String, until: Nanos, chunk: Nanos, cores: usize, grouped: bool) -> Share {
        let per_core = if grouped { GROUP_SHARE_MEMBERS } else { [1; 3] };
        let counts = per_core.map(|n| n * cores);
        let most = counts.iter().copied().max().unwrap_or(0);
        let workers = (0..most)
            .flat_map(|i| (0..3).filter(move |&g| i < counts[g]))
            .collect();
        Share {
            label,
            until,
            chunk: chunk.max(1),
            workers,
            grouped,
            started: false,
            joins: Joins::default(),
            group: vec![None],
            cpu: [0; 3],
        }
    }

    /// Each group's share of the CPU the groups got.
    fn shares(&self) -> [f64; 3] {
        let total = self.cpu.iter().sum::<Nanos>().max(1) as f64;
        self.cpu.map(|c| c as f64 / total)
    }
}

impl Workload for Share {
    fn name(&self) -> String {
        self.label.clone()
    }

    fn act(&mut self, idx: StrandIdx, ctx: &mut Ctx) -> Then {
        if idx == 0 {
            if self.started {
                return self.joins.wait(0, Then::Exit);
            }
            self.started = true;
            for i in 0..self.workers.len() {
                let child = self.joins.spawn(ctx, 0, None) as usize;
                if self.group.len() <= child {
                    self.group.resize(child + 1, None);
                }
                self.group[child] = Some(self.workers[i]);
            }
            return Then::Yield;
        }
        if ctx.now() >= self.until {
            return self.joins.exit(ctx, idx);
        }
        if let Some(g) = self.group[idx as usize] {
            self.cpu[g] += self.chunk;
        }
        Then::Compute(self.chunk)
    }

    fn params(&self, idx: StrandIdx) -> SchedParams {
        match self.group.get(idx as usize).copied().flatten() {
            Some(g) if !self.grouped => SchedParams {
                weight: SHARE_WEIGHTS[g],
                ..SchedParams::default()
            },
            _ => SchedParams::default(),
        }
    }

    fn shares(&self) -> Vec<(u32, Option<usize>)> {
        match self.grouped {
            true => SHARE_WEIGHTS.iter().map(|&w| (w, None)).collect(),
            false => Vec::new(),
        }
    }

    fn share(&self, idx: StrandIdx) -> Option<usize> {
        self.group
            .get(idx as usize)
            .copied()
            .flatten()
            .filter(|_| self.grouped)
    }

    fn verify(&self) -> Result<(), String> {
        if self.cpu.contains(&0) {
            return Err(format!("a group got no CPU: {:?}", self.cpu));
        }
        Ok(())
    }

    fn group_shares(&self) -> Option<Vec<f64>> {
        Some(self.shares().to_vec())
    }

    fn summary(&self) -> Option<String> {
        let total: u32 = SHARE_WEIGHTS.iter().sum();
        let s = self.shares();
        let err = (0..3)
            .map(|g| (s[g] - SHARE_WEIGHTS[g] as f64 / total as f64).abs())
            .fold(0.0, f64::max);
        Some(format!(
            "group shares {:.4} : {:.4} : {:.4} (weights 1 : 2 : 4{}, ideal {:.4} : {:.4} : {:.4}), largest error {:.2} % absolute",
            s[0],
            s[1],
            s[2],
            if self.grouped {
                " as share groups of 3 : 1 : 2 strands per core"
            } else {
                ""
            },
            1.0 / 7.0,
            2.0 / 7.0,
            4.0 / 7.0,
            100.0 * err
        ))
    }
}

/// The `budget` workload's contexts: (budget, period) in ns.
pub const BUDGET_CONTEXTS: [(Nanos, Nanos); 2] = [(2_000_000, 10_000_000), (3_000_000, 10_000_000)];

/// CPU budgets (see [`Kind::Budget`]). Strand 0 spawns the workers on its
/// own core for the balancer to spread, and waits for them: worker 1 is
/// bound to context 0, the next `cores` to context 1, the last `cores` to
/// none.
struct Budgeted {
    label: String,
    until: Nanos,
    chunk: Nanos,
    cores: u64,
    started: bool,
    joins: Joins,
    /// CPU computed by context 0's strand, context 1's, and the unbound:
    /// chunks counted once done (at the strand's next act).
    cpu: [Nanos; 3],
    computing: Vec<bool>,
}

impl Budgeted {
    fn new(label: String, until: Nanos, chunk: Nanos, cores: usize) -> Budgeted {
        Budgeted {
            label,
            until,
            chunk: chunk.max(1),
            cores: cores as u64,
            started: false,
            joins: Joins::default(),
            cpu: [0; 3],
            computing: Vec::new(),
        }
    }

    /// Which of `cpu` strand `idx` counts in (`None`: the root).
    fn class(&self, idx: StrandIdx) -> Option<usize> {
        match u64::from(idx) {
            0 => None,
            1 => Some(0),
            i if i <= 1 + self.cores => Some(1),
            _ => Some(2),
        }
    }

    /// Each context's share of the time, and the unbound strands'.
    fn shares(&self) -> [f64; 3] {
        self.cpu.map(|c| c as f64 / self.until as f64)
    }
}

impl Workload for Budgeted {
    fn name(&self) -> String {
        self.label.clone()
    }

    fn act(&mut self, idx: StrandIdx, ctx: &mut Ctx) -> Then {
        let Some(class) = self.class(idx) else {
            if self.started {
                return self.joins.wait(0, Then::Exit);
            }
            self.started = true;
            for _ in 0..1 + 2 * self.cores {
                self.joins.spawn(ctx, 0, None);
            }
            return Then::Yield;
        };
        if std::mem::replace(slot(&mut self.computing, idx as usize), true) {
            self.cpu[class] += self.chunk;
        }
        if ctx.now() >= self.until {
            return self.joins.exit(ctx, idx);
        }
        Then::Compute(self.chunk)
    }

    fn contexts(&self) -> Vec<(Nanos, Nanos)> {
        BUDGET_CONTEXTS.to_vec()
    }

    fn context(&self, idx: StrandIdx) -> Option<usize> {
        self.class(idx).filter(|&c| c < BUDGET_CONTEXTS.len())
    }

    fn verify(&self) -> Result<(), String> {
        // No context more than its budget's share plus 1 % (and the last
        // chunk of each strand, which may end after the time is up: a
        // throttled one's a period later). Whether each also got its share
        // depends on the policy running released strands soon (the
        // `budget` test in braid-sim's runs).
        let shares = self.shares();
        let strands = [1, self.cores];
        for (c, &(budget, period)) in BUDGET_CONTEXTS.iter().enumerate() {
            let want = budget as f64 / period as f64;
            let last = (strands[c] * self.chunk) as f64 / self.until as f64;
            if shares[c] - want > 0.01 * want + last {
                return Err(format!(
                    "context {c} got {:.4} of the time, more than its budget's {want:.4} by over 1 % (+{last:.4})",
                    shares[c]
                ));
            }
        }
        if self.cpu[2] == 0 {
            return Err("the unbound strands got no CPU".into());
        }
        Ok(())
    }

    fn summary(&self) -> Option<String> {
        let s = self.shares();
        Some(format!(
            "context shares {:.4} (budget 0.2000), {:.4} (budget 0.3000, over {} strands); unbound strands {:.4}",
            s[0], s[1], self.cores, s[2]
        ))
    }
}

/// When the `lease` workloads' lease starts: 10 ms.
pub const LEASE_AT: Nanos = 10_000_000;

/// How long after the lease starts its group's share is counted from: the
/// strand running on the core then finishes its slice first (a lease
/// preempts nothing), up to a slice and a clock tick.
const LEASE_SETTLE: Nanos = 5_000_000;

/// An exclusive-core lease (see [`Kind::Lease`]). Strand 0 spawns the group
/// strand (index 1, pinned to core 0) and the others, on its core, and waits
/// for them.
struct Leased {
    label: String,
    until: Nanos,
    chunk: Nanos,
    others: u64,
    /// The others are of the group's class (`lease-contended`).
    contended: bool,
    started: bool,
    joins: Joins,
    /// CPU the group strand computed after the lease started.
    group_cpu: Nanos,
    cores: usize,
}

impl Leased {
    fn new(label: String, until: Nanos, chunk: Nanos, cores: usize, contended: bool) -> Leased {
        Leased {
            label,
            until: until.max(LEASE_AT + 4 * LEASE_SETTLE),
            chunk: chunk.max(1),
            others: if contended { 4 } else { 2 } * cores as u64,
            contended,
            started: false,
            joins: Joins::default(),
            group_cpu: 0,
            cores,
        }
    }

    /// The group strand's share of the leased core since the lease settled.
    fn group_share(&self) -> f64 {
        self.group_cpu as f64 / (self.until - LEASE_AT - LEASE_SETTLE) as f64
    }
}

impl Workload for Leased {
    fn name(&self) -> String {
        self.label.clone()
    }

    fn act(&mut self, idx: StrandIdx, ctx: &mut Ctx) -> Then {
        if idx == 0 {
            if self.started {
                return self.joins.wait(0, Then::Exit);
            }
            self.started = true;
            // The group's strand starts on the core it will lease, and stays
            // (as a strand spawned onto a lease does in the runtime).
            self.joins.spawn(ctx, 0, Some(0));
            for _ in 0..self.others {
                self.joins.spawn(ctx, 0, None);
            }
            return Then::Yield;
        }
        let now = ctx.now();
        if now >= self.until {
            return self.joins.exit(ctx, idx);
        }
        if idx == 1 && now >= LEASE_AT + LEASE_SETTLE {
            self.group_cpu += self.chunk.min(self.until - now);
        }
        Then::Compute(self.chunk)
    }

    fn lease(&self, cores: usize) -> Option<crate::workload::SimLease> {
        (cores > 1).then_some(crate::workload::SimLease {
            core: 0,
            at: LEASE_AT,
            class: braid_core::LatencyClass::Normal,
        })
    }

    fn in_lease_group(&self, idx: StrandIdx) -> bool {
        idx == 1
    }

    fn params(&self, idx: StrandIdx) -> SchedParams {
        match idx {
            0 | 1 => SchedParams::default(),
            _ if self.contended => SchedParams::default(),
            _ => SchedParams {
                class: braid_core::LatencyClass::Batch,
                ..SchedParams::default()
            },
        }
    }

    fn verify(&self) -> Result<(), String> {
        // Alone on its core once the lease settled (while the lease lasts):
        // all of that time, less the last chunk's rounding.
        if self.cores > 1 && !self.contended && self.group_share() < 0.99 {
            return Err(format!(
                "the lease's group had {:.4} of its core",
                self.group_share()
            ));
        }
        Ok(())
    }

    fn summary(&self) -> Option<String> {
        Some(format!(
            "the group strand computed {:.4} of the time from 5 ms after the lease began ({} others of class {})",
            self.group_share(),
            self.others,
            if self.contended { "normal" } else { "batch" }
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_with_sizes_and_bad_ones_say_what_is_allowed() {
        let s = Spec::parse("pool:500").unwrap();
        assert_eq!((s.kind, s.size), (Kind::Pool, 500));
        assert_eq!(Spec::parse("skynet").unwrap().size, 6);
        let err = Spec::parse("nope").unwrap_err().to_string();
        assert!(err.contains("map, pool"), "{err}");
        let err = Spec::parse("skynet:9").unwrap_err().to_string();
        assert!(err.contains("at most 7"), "{err}");
        assert!(Spec::parse("ring:0").is_err());
        assert_eq!(Spec::all().len(), Kind::ALL.len());
    }

    #[test]
    fn the_unbalanced_tree_is_fixed_by_its_hash_and_unbalanced() {
        let shape = Shape::Binomial {
            root: 200,
            m: 8,
            q: 0.124,
        };
        let a = Tree::count(&shape, 0, 1);
        assert_eq!(a, Tree::count(&shape, 0, 1));
        assert!(a > 200, "{a}");
        let sizes: Vec<u64> = (0..200)
            .map(|i| Tree::count(&shape, 1, shape.child_key(1, i)))
            .collect();
        let max = *sizes.iter().max().unwrap();
        let leaves = sizes.iter().filter(|&&s| s == 1).count();
        assert!(
            leaves > 150 && max > 20,
            "leaves {leaves}, largest subtree {max}"
        );
    }
}
