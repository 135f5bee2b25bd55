//! Snapshots of the runtime's accounting.

use crate::core::CoreShared;
use crate::facade::Ordering;
use crate::strand::Header;
use crate::sys::{self, GuardKind};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

/// Accounting of one strand.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StrandStats {
    /// Time spent running, in nanoseconds: measured with the fine clock
    /// (cycle counter) under policies that read it (CFS and EEVDF, see
    /// [`PolicyKind`](crate::sched::PolicyKind), and a program's own policy
    /// that asks for it), so it is what they charged;
    /// otherwise sampled with the runtime's coarse clock (1 ms ticks): exact
    /// for long runs, statistical for short ones.
    pub runtime_ns: u64,
    /// Times the strand was switched in.
    pub switches: u64,
    /// Times the strand blocked (parked) voluntarily.
    pub blocks: u64,
    /// Times the strand moved to another core.
    pub migrations: u64,
    /// Times it yielded because its time slice was used up (at a runtime
    /// call that does not block).
    pub preemptions: u64,
    /// Time spent ready but not running — waiting for its core after a
    /// spawn, a wake or a yield, in flight to another core, or held back by
    /// its scheduling context's budget — in nanoseconds, counted on the
    /// coarse clock in units of 2^20 ns (about its 1 ms tick): exact for
    /// long waits, statistical for short ones, like `runtime_ns`.
    pub runnable_wait_ns: u64,
    /// `runtime_ns` scaled by the strand's weight (`runtime_ns` ×
    /// [`UNIT_WEIGHT`](crate::sched::UNIT_WEIGHT) / weight): the CPU time
    /// fair policies charge it, comparable between strands of different
    /// weights and across cores (each core's own virtual clock is not).
    pub virtual_runtime_ns: u64,
}

impl StrandStats {
    pub(crate) fn read(header: &Header) -> StrandStats {
        let c = &header.counters;
        let runtime_ns = c.runtime_ns.load(Ordering::Relaxed);
        StrandStats {
            runtime_ns,
            switches: c.switches.load(Ordering::Relaxed),
            blocks: c.blocks.load(Ordering::Relaxed).into(),
            migrations: c.migrations.load(Ordering::Relaxed).into(),
            preemptions: c.preemptions.load(Ordering::Relaxed).into(),
            runnable_wait_ns: u64::from(c.ready_wait.load(Ordering::Relaxed))
                << crate::strand::READY_UNIT_SHIFT,
            virtual_runtime_ns: braid_core::fair::virtual_ns(runtime_ns, header.params().weight),
        }
    }

    /// Adds `other`'s figures to these.
    fn add(&mut self, other: &StrandStats) {
        self.runtime_ns += other.runtime_ns;
        self.switches += other.switches;
        self.blocks += other.blocks;
        self.migrations += other.migrations;
        self.preemptions += other.preemptions;
        self.runnable_wait_ns += other.runnable_wait_ns;
        self.virtual_runtime_ns += other.virtual_runtime_ns;
    }
}

/// Accounting of a group of strands, the exited ones included: every strand
/// spawned with [`Builder::tally`](crate::Builder::tally), and every strand
/// those spawn (unless spawned into another tally).
///
/// Each strand's own counters are always kept (see [`StrandStats`]); a tally
/// adds nothing to a switch. It knows its live strands (a lock and a map
/// insertion at each spawn into it, a removal at each exit) and folds each
/// one's final figures in when it exits, so [`stats`](Tally::stats) sums
/// the exited strands and reads the live ones' counters.
///
/// ```
/// # let rt = braid::Runtime::builder().cores(2).build()?;
/// rt.block_on(|| {
///     let tally = braid::Tally::new();
///     let root = braid::Builder::new()
///         .tally(&tally)
///         .spawn(|| {
///             // Children count in the root's tally too.
///             let kids: Vec<_> = (0..3).map(|_| braid::spawn(braid::yield_now)).collect();
///             kids.into_iter().for_each(|k| k.join().unwrap());
///         })
///         .unwrap();
///     let group = root.group();
///     root.join().unwrap();
///     // A join returns as soon as the value is in, a moment before the
///     // strand is counted out; waiting for its group covers that.
///     group.wait().unwrap();
///     let stats = tally.stats();
///     assert_eq!((stats.spawned, stats.exited), (4, 4));
///     assert!(stats.total.switches >= 7);
/// });
/// # Ok::<(), braid::ConfigError>(())
/// ```
#[derive(Clone, Default)]
pub struct Tally {
    cell: Arc<TallyCell>,
}

impl std::fmt::Debug for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tally")
            .field("stats", &self.stats())
            .finish()
    }
}

/// What a [`Tally`] counts, at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TallyStats {
    /// Strands that joined the tally (spawned into it).
    pub spawned: u64,
    /// Of those, strands that exited.
    pub exited: u64,
    /// Of those, strands whose header is gone without their exit being
    /// counted: abandoned unfinished when their runtime was dropped (their
    /// figures are lost with them).
    pub abandoned: u64,
    /// Their accounting summed, exited strands included.
    pub total: StrandStats,
}

impl TallyStats {
    /// Strands of the tally that have not exited (nor been abandoned
    /// unfinished when their runtime was dropped).
    pub fn live(&self) -> u64 {
        self.spawned - self.exited - self.abandoned
    }
}

impl Tally {
    /// An empty tally.
    pub fn new() -> Tally {
        Tally::default()
    }

    /// The tally's figures now: the exited strands' final ones plus the
    /// live strands' so far.
    ///
    /// It copies the list of live strands under the tally's lock (which
    /// spawns into the tally and exits from it take too) and reads their
    /// counters after it: O(live strands).
    pub fn stats(&self) -> TallyStats {
        let (mut stats, live) = {
            let books = self.cell.lock();
            let live: Vec<Arc<Header>> = books.live.values().filter_map(Weak::upgrade).collect();
            let stats = TallyStats {
                spawned: books.spawned,
                exited: books.exited,
                abandoned: books.live.len() as u64 - live.len() as u64,
                total: books.exited_total,
            };
            (stats, live)
        };
        for header in &live {
            stats.total.add(&StrandStats::read(header));
        }
        stats
    }

    pub(crate) fn cell(&self) -> &Arc<TallyCell> {
        &self.cell
    }
}

/// The shared state of a [`Tally`].
#[derive(Default)]
pub(crate) struct TallyCell {
    books: Mutex<TallyBooks>,
}

#[derive(Default)]
struct TallyBooks {
    spawned: u64,
    exited: u64,
    /// The live strands, by header address (ids are unique only within a
    /// runtime; a tally may count strands of several). Weak: a strand's
    /// extras box holds the tally, so a strong reference here would keep
    /// the header of a strand abandoned at shutdown (which never leaves)
    /// alive, and the tally with it.
    live: HashMap<usize, Weak<Header>>,
    /// The exited strands' figures, summed.
    exited_total: StrandStats,
}

impl TallyCell {
    fn lock(&self) -> std::sync::MutexGuard<'_, TallyBooks> {
        self.books.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A strand was spawned into the tally.
    pub(crate) fn joined(&self, header: &Arc<Header>) {
        let mut books = self.lock();
        books.spawned += 1;
        books
            .live
            .insert(Arc::as_ptr(header) as usize, Arc::downgrade(header));
    }

    /// A strand of the tally exited: its final figures stay counted.
    pub(crate) fn left(&self, header: &Header) {
        let mut books = self.lock();
        if books
            .live
            .remove(&(header as *const Header as usize))
            .is_some()
        {
            books.exited += 1;
            books.exited_total.add(&StrandStats::read(header));
        }
    }
}

/// Accounting of one core.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CoreStats {
    /// The core's index.
    pub core: usize,
    /// The CPU it is pinned to, if pinned.
    pub cpu: Option<usize>,
    /// Strand switches (resumes) on this core.
    pub switches: u64,
    /// Strands received from other cores (stolen or offered).
    pub steals: u64,
    /// Strands given to other cores.
    pub given: u64,
    /// Bus messages sent.
    pub bus_sent: u64,
    /// Bus messages received.
    pub bus_received: u64,
    /// Times the core parked idle.
    pub parks: u64,
    /// Strands spawned on this core.
    pub spawned: u64,
    /// Strands that exited on this core.
    pub exited: u64,
    /// Times the core's queue moved to a replacement carrier (a hog was running).
    pub handoffs: u64,
    /// Times a carrier that lost the core took it back because no
    /// replacement could be started.
    pub reclaims: u64,
    /// Strands sent off this core while it was leased to a group they are
    /// not in.
    pub evicted: u64,
    /// Whether the core was leased to one group at the snapshot.
    pub leased: bool,
    /// Strands ready to run at the snapshot.
    pub ready: usize,
    /// Events with state on this core at the snapshot: local waiters, or homed
    /// here with stored signals or waiters elsewhere.
    pub live_events: usize,
    /// Timers armed on this core at the snapshot (sleeps and timed waits).
    pub timers: usize,
    /// Whether the core was parked at the snapshot.
    pub parked: bool,
    /// Sockets registered with this core's poller at the snapshot.
    pub io_sources: usize,
    /// Readiness events this core's poller has handled.
    pub io_events: u64,
}

impl CoreStats {
    pub(crate) fn read(core: &CoreShared) -> CoreStats {
        let c = &core.counters;
        let load = |v: &crate::facade::AtomicU64| v.load(Ordering::Relaxed);
        CoreStats {
            core: core.id,
            cpu: core.cpu,
            switches: load(&c.switches),
            steals: load(&c.steals),
            given: load(&c.given),
            bus_sent: load(&c.sent),
            bus_received: load(&c.received),
            parks: load(&c.parks),
            spawned: load(&c.spawned),
            exited: load(&c.exited),
            handoffs: load(&c.handoffs),
            reclaims: core.reclaims.load(Ordering::Relaxed),
            evicted: load(&c.evicted),
            leased: core.leased.load(Ordering::Relaxed),
            ready: core.ready_len.load(Ordering::Relaxed),
            live_events: core.live_events.load(Ordering::Relaxed),
            timers: core.timers.load(Ordering::Relaxed),
            parked: core.parked.load(Ordering::Relaxed),
            io_sources: core.io.sources(),
            io_events: load(&c.io_events),
        }
    }
}

/// A snapshot of a runtime's accounting.
#[derive(Clone, Debug)]
pub struct Stats {
    /// Per-core figures.
    pub cores: Vec<CoreStats>,
    /// Strands spawned and not yet exited. A strand's `join` returns as soon
    /// as its value is in, a moment before its core counts it out
    /// (`Runtime::block_on` waits for that moment).
    pub live_strands: u64,
    /// Strands that panicked.
    pub panics: u64,
    /// Stack slabs mapped (each one kernel mapping holding 64 stacks).
    pub stack_slabs: usize,
    /// How stack guard pages are made on this kernel.
    pub guard: GuardKind,
    /// Strands abandoned unfinished at shutdown.
    pub leaked: usize,
    /// Bus messages put in by threads that do not own a core (spawns, wakes and
    /// joins from outside the runtime, strands handed back by a replaced
    /// carrier). Once the bus is quiet, the cores' `bus_received` sum equals
    /// their `bus_sent` sum plus this.
    pub injected: u64,
    /// Scheduler closures dropped because they panicked or tried to block.
    pub closure_failures: u64,
    /// Threads of the blocking pool (running or idle) at the snapshot.
    pub blocking_threads: usize,
    /// Threads that lost their core while running a hog and still run it
    /// (each ends when its strand next calls the runtime).
    pub demoted_carriers: usize,
    /// How those threads are kept from slowing the cores' carriers.
    pub hog_isolation: HogIsolation,
}

/// How a runtime keeps threads left running hogs from taking the CPU from its
/// cores (see [`RuntimeBuilder::hog_cgroup`](crate::RuntimeBuilder::hog_cgroup)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HogIsolation {
    /// No hog has been handed off yet.
    NoneYet,
    /// In this cgroup, weighed together as about one thread at nice 10 per core.
    Cgroup(std::path::PathBuf),
    /// By priority: nice levels that drop with their number, then the idle class.
    Priority,
}

impl Stats {
    pub(crate) fn new(
        cores: Vec<CoreStats>,
        foreign_spawned: u64,
        panics: u64,
        stack_slabs: usize,
        leaked: usize,
        injected: u64,
        closure_failures: u64,
    ) -> Stats {
        let spawned: u64 = cores.iter().map(|c| c.spawned).sum::<u64>() + foreign_spawned;
        let exited: u64 = cores.iter().map(|c| c.exited).sum();
        Stats {
            cores,
            live_strands: spawned.saturating_sub(exited),
            panics,
            stack_slabs,
            guard: sys::guard_kind(),
            leaked,
            injected,
            closure_failures,
            blocking_threads: 0,
            demoted_carriers: 0,
            hog_isolation: HogIsolation::NoneYet,
        }
    }

    /// Events that exist right now (waited on, or with a stored signal), summed
    /// over the cores. Returns to 0 when nobody waits and nothing is stored.
    pub fn live_events(&self) -> usize {
        self.cores.iter().map(|c| c.live_events).sum()
    }

    /// Total switches over all cores.
    pub fn switches(&self) -> u64 {
        self.cores.iter().map(|c| c.switches).sum()
    }

    /// Total strands moved between cores.
    pub fn steals(&self) -> u64 {
        self.cores.iter().map(|c| c.steals).sum()
    }
}
