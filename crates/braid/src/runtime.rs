//! The runtime: its cores, carrier threads, monitor and teardown.

use crate::config::{Config, RuntimeBuilder};
use crate::core::{worker, CoreShared, Local, Msg};
use crate::error::SpawnError;
use crate::facade::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use crate::spawn::{self, JoinHandle};
use crate::stack::SlabRegistry;
use crate::stats::{CoreStats, Stats};
use crate::{monitor, overflow, sys, ConfigError};
use braid_bus::{Bus, Notify};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::thread::JoinHandle as ThreadHandle;
use std::time::Instant;

/// State shared by every thread of one runtime.
pub(crate) struct RuntimeShared {
    pub(crate) id: u64,
    pub(crate) config: Config,
    pub(crate) bus: Bus<Msg>,
    pub(crate) cores: Box<[CoreShared]>,
    pub(crate) slabs: SlabRegistry,
    /// Strands spawned from threads outside the runtime (their ids).
    pub(crate) foreign_ids: AtomicU64,
    foreign_next_core: AtomicUsize,
    /// Coarse clock: nanoseconds since `started`, advanced by the monitor
    /// every tick while a core is awake, and by a core that wakes up (the
    /// monitor sleeps while every core does).
    pub(crate) clock_ns: AtomicU64,
    pub(crate) started: Instant,
    pub(crate) shutdown: AtomicBool,
    /// Cores whose shutdown drain has not begun: a core that began it gives
    /// no strand away, so once this is 0 nothing more can reach a core
    /// that ran out of strands (see `core::worker::drain`).
    pub(crate) open_cores: AtomicUsize,
    /// When the shutdown's drain ends, on the runtime's clock (see
    /// `core::worker::drain`); `u64::MAX` until it starts.
    pub(crate) shutdown_deadline: AtomicU64,
    /// Strands abandoned unfinished at shutdown (their stacks stay mapped),
    /// with the carriers that were still running one.
    pub(crate) leaked: AtomicUsize,
    /// The names of the first [`NAMED_LEFT`] of them, for the warning.
    left_names: Mutex<Vec<String>>,
    pub(crate) panics: AtomicU64,
    /// Bus messages from threads that own no core (see `Stats::injected`).
    injected: AtomicU64,
    /// Scheduler closures that panicked or tried to block (and were dropped).
    pub(crate) closure_failures: AtomicU64,
    /// Shared named objects (`braid::registry`).
    pub(crate) registry: crate::registry::Registry,
    /// The pool that runs `braid::blocking` calls.
    pub(crate) blocking: Arc<crate::blocking::BlockingPool>,
    /// Cores not parked; the monitor sleeps while this is zero.
    awake_cores: AtomicUsize,
    /// Bumped when a core wakes an idle runtime; the monitor sleeps on it.
    pub(crate) monitor_seq: AtomicU32,
    /// The live carrier thread of each core, and the retired ones.
    pub(crate) carriers: Mutex<Carriers>,
    /// The cgroup for carriers left running hogs (see `monitor`).
    pub(crate) hog_group: Mutex<HogGroupState>,
    /// Permits for new strands not held by any core (see
    /// `braid_core::sched::quota`).
    pub(crate) strand_permits: AtomicU64,
    /// Budget timers of carrier threads that ran bound strands (see
    /// `budget::Hold`), for the monitor.
    pub(crate) holds: Mutex<Vec<Arc<crate::budget::Hold>>>,
    /// Leases in force (see `lease`).
    pub(crate) leases: Mutex<Vec<Arc<crate::lease::LeaseCell>>>,
    /// Whether the program took the scheduling authority.
    authority_taken: AtomicBool,
    warned: AtomicBool,
}

#[derive(Default)]
pub(crate) struct Carriers {
    pub(crate) active: Vec<Option<ThreadHandle<()>>>,
    /// Carriers that lost their core while running a strand, until their
    /// thread ends (it hands the strand back at its next runtime call).
    pub(crate) retired: Vec<Retired>,
}

/// A carrier that lost its core (see `monitor`).
pub(crate) struct Retired {
    pub(crate) core: usize,
    pub(crate) tid: i32,
    /// How a carrier left running a hog was demoted; `None` for one that lost
    /// its core for another reason (a CPU budget hold).
    pub(crate) demoted: Option<Demoted>,
    pub(crate) thread: ThreadHandle<()>,
}

/// How a carrier left running a hog was made to weigh little.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Demoted {
    /// Its nice level before.
    pub(crate) base: i32,
    /// How far below `base` it went.
    pub(crate) to: braid_core::sched::watchdog::Demotion,
    /// Whether it was also handed to the hog group's mover.
    pub(crate) grouped: bool,
}

/// Whether the runtime has a hog group.
#[derive(Debug, Default)]
pub(crate) enum HogGroupState {
    /// No hog was demoted yet.
    #[default]
    Untried,
    Made(crate::monitor::HogMover),
    /// The process may not make one (or the program said not to).
    Unavailable,
}

impl Carriers {
    /// Joins the retired carriers whose thread ended: an ended thread's stack
    /// stays mapped until then.
    pub(crate) fn reap(&mut self) {
        let (ended, live): (Vec<Retired>, Vec<Retired>) = std::mem::take(&mut self.retired)
            .into_iter()
            .partition(|r| r.thread.is_finished());
        self.retired = live;
        for retired in ended {
            let _ = retired.thread.join();
        }
    }

    /// Live carriers of `core` left running a hog.
    pub(crate) fn demoted_on(&self, core: usize) -> usize {
        self.retired
            .iter()
            .filter(|r| r.core == core && r.demoted.is_some())
            .count()
    }
}

static NEXT_RUNTIME_ID: AtomicU64 = AtomicU64::new(1);

/// How many of the strands a shutdown left unfinished its warning names.
const NAMED_LEFT: usize = 8;

/// How long a drop waits for carriers past the shutdown's deadline: the
/// drains stop at the deadline, and finish what they run (a yield away).
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_millis(100);

/// Live runtimes by id, for waking strands from threads outside them.
type Registry = Mutex<Vec<(u64, Weak<RuntimeShared>)>>;

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Mutex::default)
}

/// Carriers pinned to each CPU by the runtimes alive in this process.
fn cpu_load() -> &'static Mutex<std::collections::HashMap<usize, usize>> {
    static LOAD: OnceLock<Mutex<std::collections::HashMap<usize, usize>>> = OnceLock::new();
    LOAD.get_or_init(Mutex::default)
}

/// Picks a CPU out of `cpus` for each of `cores` cores: the least used one in
/// this process, earliest in `cpus` on ties. One runtime gets `cpus` in order;
/// a second runtime starts on the CPUs the first left free instead of stacking
/// its carriers on the same ones.
fn place_cores(cpus: &[usize], cores: usize) -> Vec<usize> {
    let mut load = cpu_load().lock().unwrap_or_else(|e| e.into_inner());
    braid_core::sched::placement::pick_cpus(cpus, cores, &mut load)
}

/// Gives back the CPUs `place_cores` handed out.
fn release_cores(cpus: impl Iterator<Item = usize>) {
    let mut load = cpu_load().lock().unwrap_or_else(|e| e.into_inner());
    for cpu in cpus {
        if let Some(n) = load.get_mut(&cpu) {
            *n = n.saturating_sub(1);
        }
    }
}

/// The runtime with id `id`, if it still exists (the foreign wake path).
pub(crate) fn lookup(id: u64) -> Option<Arc<RuntimeShared>> {
    let registry = registry().lock().unwrap_or_else(|e| e.into_inner());
    registry
        .iter()
        .find(|(rid, _)| *rid == id)
        .and_then(|(_, w)| w.upgrade())
}

impl RuntimeShared {
    /// Delivers `msg` to `core` from a thread that is not one of our cores.
    pub(crate) fn inject(&self, core: usize, msg: Msg) {
        self.injected.fetch_add(1, Ordering::Relaxed);
        match self.bus.inject(core, msg) {
            Ok(Notify::WakeReceiver) => self.cores[core].io.wake(),
            Ok(Notify::None) => {}
            Err(err) => debug_assert!(false, "inject to a missing core: {err}"),
        }
    }

    /// The core a strand spawned from outside the runtime starts on.
    pub(crate) fn next_foreign_core(&self) -> usize {
        // Leased cores are skipped (at most one lap: one core stays shared).
        loop {
            let nth = self.foreign_next_core.fetch_add(1, Ordering::Relaxed);
            let core = braid_core::sched::placement::foreign_core(nth as u64, self.cores.len());
            if !self.cores[core].leased.load(Ordering::Relaxed) {
                return core;
            }
        }
    }

    /// Now on the runtime's clock: nanoseconds since it started.
    #[inline]
    pub(crate) fn now_ns(&self) -> u64 {
        ns_since(self.started)
    }

    /// Moves the coarse clock to now (it never goes back); returns it.
    pub(crate) fn advance_clock(&self) -> u64 {
        let now = self.now_ns();
        // Relaxed: the clock orders nothing else; readers only compare it
        // with times they read from it, and fetch_max keeps it monotonic
        // whichever of the monitor and the cores writes last.
        self.clock_ns.fetch_max(now, Ordering::Relaxed).max(now)
    }

    /// Counts what a shutdown left unfinished — strands a core's drain did
    /// not end (see `core::worker::drain`), carriers still inside one — by
    /// name.
    pub(crate) fn strands_left(&self, names: Vec<String>) {
        if names.is_empty() {
            return;
        }
        self.leaked.fetch_add(names.len(), Ordering::Relaxed);
        let mut kept = self.left_names.lock().unwrap_or_else(|e| e.into_inner());
        let room = NAMED_LEFT.saturating_sub(kept.len());
        kept.extend(names.into_iter().take(room));
    }

    /// Writes a warning (each time).
    pub(crate) fn warn(&self, message: &str) {
        eprintln!("{message}");
    }

    /// Takes up to `want` permits for new strands from the pool; how many it
    /// got (see `braid_core::sched::quota`).
    pub(crate) fn draw_permits(&self, want: u64) -> u64 {
        let mut granted = 0;
        let _ = self
            .strand_permits
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                granted = braid_core::sched::quota::grant(left, want);
                (granted > 0).then(|| left - granted)
            });
        granted
    }

    /// Returns `n` permits to the pool.
    pub(crate) fn return_permits(&self, n: u64) {
        self.strand_permits.fetch_add(n, Ordering::Relaxed);
    }

    /// A permit for a strand spawned from outside the runtime, or the error.
    pub(crate) fn admit_foreign(&self) -> Result<(), SpawnError> {
        if self.draw_permits(1) == 1 {
            Ok(())
        } else {
            Err(SpawnError::too_many_strands(self.config.max_strands))
        }
    }

    pub(crate) fn warn_once(&self, message: &str) {
        if !self.warned.swap(true, Ordering::Relaxed) {
            eprintln!("{message}");
        }
    }

    pub(crate) fn core_parked(&self) {
        self.awake_cores.fetch_sub(1, Ordering::SeqCst);
    }

    pub(crate) fn core_unparked(&self) {
        // SeqCst with the monitor's loads of `monitor_seq` then `awake_cores`:
        // either it sees us awake, or its futex wait sees the new sequence.
        if self.awake_cores.fetch_add(1, Ordering::SeqCst) == 0 {
            self.monitor_seq.fetch_add(1, Ordering::SeqCst);
            sys::futex_wake_all(&self.monitor_seq);
        }
    }

    pub(crate) fn awake_cores(&self) -> usize {
        self.awake_cores.load(Ordering::SeqCst)
    }

    /// Starts a carrier thread for `core` with ownership claim `claim`.
    pub(crate) fn start_carrier(
        self: &Arc<Self>,
        core: usize,
        claim: crate::core::Claim,
    ) -> std::io::Result<ThreadHandle<()>> {
        let rt = self.clone();
        std::thread::Builder::new()
            .name(format!("braid-core-{core}"))
            .spawn(move || worker::carrier_main(rt, core, claim))
    }
}

/// Nanoseconds since `start` (the runtime's clock when `start` is its
/// `started`).
#[inline]
pub(crate) fn ns_since(start: Instant) -> u64 {
    start.elapsed().as_nanos() as u64
}

impl Drop for RuntimeShared {
    fn drop(&mut self) {
        crate::lease::shut_down(self);
        for core in self.cores.iter() {
            drop(core.take_local());
        }
        if self.leaked.load(Ordering::Relaxed) == 0 {
            // SAFETY: every carrier has stopped and no strand is left unfinished,
            // so no stack of ours is in use or pointed into.
            unsafe { self.slabs.release_all() };
        }
    }
}

/// A braid runtime: one scheduler per core, each on its own carrier thread.
///
/// ```
/// let rt = braid::Runtime::builder().cores(2).build()?;
/// let answer = rt.block_on(|| {
///     let h = braid::spawn(|| 40 + 2);
///     h.join().unwrap()
/// });
/// assert_eq!(answer, 42);
/// # Ok::<(), braid::ConfigError>(())
/// ```
pub struct Runtime {
    shared: Arc<RuntimeShared>,
    monitor: Option<ThreadHandle<()>>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("id", &self.shared.id)
            .field("cores", &self.shared.cores.len())
            .finish()
    }
}

impl Runtime {
    /// A builder with every setting at its default.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder::default()
    }

    /// A runtime with default settings.
    pub fn new() -> Result<Runtime, ConfigError> {
        RuntimeBuilder::default().build()
    }

    pub(crate) fn start(config: Config) -> Result<Runtime, ConfigError> {
        overflow::install_handler();
        crate::hook::install();
        let cores = config.cores;
        let (bus, endpoints) = Bus::new(cores, config.ring_capacity)
            .map_err(|e| ConfigError::new("ring_capacity", config.ring_capacity, e.to_string()))?;
        let placed = if config.pin && !config.cpus.is_empty() {
            place_cores(&config.cpus, cores)
        } else {
            Vec::new()
        };
        let mut pollers = Vec::with_capacity(cores);
        let mut core_shared = Vec::with_capacity(cores);
        for i in 0..cores {
            let (poller, io) = crate::io::poller().map_err(|e| {
                // The runtime will not exist: give its CPUs back.
                release_cores(placed.iter().copied());
                ConfigError::new(
                    "cores",
                    cores,
                    format!("as many as the system lets us create pollers ({e})"),
                )
            })?;
            pollers.push(poller);
            core_shared.push(CoreShared::new(i, placed.get(i).copied(), io));
        }
        let core_shared: Box<[CoreShared]> = core_shared.into_boxed_slice();
        let id = NEXT_RUNTIME_ID.fetch_add(1, Ordering::Relaxed);
        let shared = Arc::new(RuntimeShared {
            id,
            bus,
            cores: core_shared,
            slabs: SlabRegistry::default(),
            foreign_ids: AtomicU64::new(0),
            foreign_next_core: AtomicUsize::new(0),
            clock_ns: AtomicU64::new(0),
            started: Instant::now(),
            shutdown: AtomicBool::new(false),
            open_cores: AtomicUsize::new(cores),
            shutdown_deadline: AtomicU64::new(u64::MAX),
            leaked: AtomicUsize::new(0),
            left_names: Mutex::default(),
            injected: AtomicU64::new(0),
            closure_failures: AtomicU64::new(0),
            registry: crate::registry::Registry::default(),
            blocking: Arc::new(crate::blocking::BlockingPool::new(config.blocking_threads)),
            panics: AtomicU64::new(0),
            awake_cores: AtomicUsize::new(cores),
            monitor_seq: AtomicU32::new(0),
            carriers: Mutex::default(),
            hog_group: Mutex::default(),
            strand_permits: AtomicU64::new(config.max_strands),
            holds: Mutex::default(),
            leases: Mutex::default(),
            authority_taken: AtomicBool::new(false),
            warned: AtomicBool::new(false),
            config,
        });
        let slice_ns = shared.config.time_slice.as_nanos() as u64;
        for ((core, endpoint), poller) in endpoints.into_iter().enumerate().zip(pollers) {
            let choices = crate::sched::build(
                &shared.config.policy,
                &shared.config.balancer,
                slice_ns,
                core,
                cores,
            );
            let local = Local::new(
                core,
                Arc::as_ptr(&shared),
                id,
                endpoint,
                choices,
                shared.config.seed,
                poller,
            );
            shared.cores[core].install_local(Box::new(local));
        }
        registry()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((id, Arc::downgrade(&shared)));
        let mut handles = Vec::with_capacity(cores);
        for core in 0..cores {
            let handle = shared
                .start_carrier(core, shared.cores[core].first_claim())
                .map_err(|e| {
                    ConfigError::new(
                        "cores",
                        cores,
                        format!("as many as the system lets us start threads ({e})"),
                    )
                })?;
            handles.push(Some(handle));
        }
        shared
            .carriers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .active = handles;
        let monitor = monitor::start(shared.clone());
        Ok(Runtime {
            shared,
            monitor: Some(monitor),
        })
    }

    /// Runs `f` as a strand of this runtime and blocks the calling thread until it
    /// returns its value. A panic in `f` is resumed here.
    ///
    /// # Panics
    /// When called from inside a strand (it would block a core's thread): use
    /// [`spawn`](crate::spawn) and [`JoinHandle::join`] there.
    pub fn block_on<F, T>(&self, f: F) -> T
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        assert!(
            crate::context::current_ptr().is_null(),
            "Runtime::block_on called from inside a strand; use braid::spawn and join instead"
        );
        let handle = self
            .spawn(f)
            .unwrap_or_else(|e| panic!("Runtime::block_on: {e}"));
        let strand = handle.strand();
        let result = handle.join();
        // The result arrives just before the strand's core counts it out; wait
        // for that (microseconds) so `stats()` right after sees it gone.
        while strand.state() != crate::StrandState::Exited {
            std::thread::yield_now();
        }
        match result {
            Ok(value) => value,
            Err(err) => match err.into_panic() {
                Ok(payload) => std::panic::resume_unwind(payload),
                Err(err) => panic!("Runtime::block_on: {err}"),
            },
        }
    }

    /// Starts `f` as a top-level strand from outside the runtime (it has no parent
    /// strand). Cores are chosen round robin; balancing moves work from there.
    /// [`Builder::spawn_in`](crate::Builder::spawn_in) does the same with a
    /// builder's settings (name, core, weight, tally, share group, context …).
    pub fn spawn<F, T>(&self, f: F) -> Result<JoinHandle<T>, SpawnError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        spawn::spawn_foreign(&self.shared, None, None, f)
    }

    /// The runtime's shared state (for `Builder::spawn_in`).
    pub(crate) fn shared(&self) -> &Arc<RuntimeShared> {
        &self.shared
    }

    /// The right to mint scheduling contexts (CPU budgets) in this runtime,
    /// the first time it is asked for; `None` after that. The embedding
    /// program takes it before running untrusted work and hands it only to
    /// what may grant CPU (see [`crate::sched::SchedContext`]).
    pub fn take_authority(&self) -> Option<crate::sched::Authority> {
        if self.shared.authority_taken.swap(true, Ordering::AcqRel) {
            return None;
        }
        Some(crate::budget::Authority::new(&self.shared))
    }

    /// The leases in force (see [`crate::sched::Lease`]).
    pub fn leases(&self) -> Vec<crate::sched::LeaseInfo> {
        crate::lease::list(&self.shared)
    }

    /// Number of cores.
    pub fn cores(&self) -> usize {
        self.shared.cores.len()
    }

    /// Signals global `event` from a thread outside the runtime (strands call
    /// [`Event::signal`](crate::event::Event::signal)). Local names belong to a
    /// strand's group and cannot be reached from here.
    pub fn signal(&self, event: &crate::event::Event) -> Result<(), crate::event::EventError> {
        crate::event::signal_from_outside(&self.shared, event, &[], false)
    }

    /// As [`signal`](Self::signal), with up to
    /// [`MAX_PAYLOAD`](crate::event::MAX_PAYLOAD) bytes of payload.
    pub fn signal_with(
        &self,
        event: &crate::event::Event,
        payload: &[u8],
    ) -> Result<(), crate::event::EventError> {
        crate::event::signal_from_outside(&self.shared, event, payload, false)
    }

    /// Broadcasts global `event` from a thread outside the runtime.
    pub fn broadcast(&self, event: &crate::event::Event) -> Result<(), crate::event::EventError> {
        crate::event::signal_from_outside(&self.shared, event, &[], true)
    }

    /// Publishes `value` as `name` in this runtime's registry, from any thread
    /// (strands call [`crate::registry::publish`]).
    pub fn publish<T: Send + Sync + 'static>(
        &self,
        name: &str,
        value: T,
    ) -> Result<crate::registry::Shared<T>, crate::registry::RegistryError> {
        crate::registry::publish_in(&self.shared, name, value)
    }

    /// The value published as `name` in this runtime's registry, from any
    /// thread (strands call [`crate::registry::lookup`]).
    pub fn lookup<T: Send + Sync + 'static>(
        &self,
        name: &str,
    ) -> Result<crate::registry::Shared<T>, crate::registry::RegistryError> {
        crate::registry::lookup_in(&self.shared, name)
    }

    /// Names published in this runtime's registry and still held.
    pub fn published(&self) -> usize {
        crate::registry::count(&self.shared)
    }

    /// The capability to register scheduler closures
    /// ([`event::on_signal`](crate::event::on_signal)). Only the program holding
    /// the runtime can mint it; hand it to the strands that may register
    /// closures. None exists until this is called.
    pub fn closure_cap(&self) -> crate::event::ClosureCap {
        crate::event::ClosureCap::new(self.shared.id)
    }

    /// A snapshot of the runtime's counters.
    pub fn stats(&self) -> Stats {
        let shared = &*self.shared;
        let cores: Vec<CoreStats> = shared.cores.iter().map(CoreStats::read).collect();
        let mut stats = Stats::new(
            cores,
            shared.foreign_ids.load(Ordering::Relaxed),
            shared.panics.load(Ordering::Relaxed),
            shared.slabs.slab_count(),
            shared.leaked.load(Ordering::Relaxed),
            shared.injected.load(Ordering::Relaxed),
            shared.closure_failures.load(Ordering::Relaxed),
        );
        stats.blocking_threads = shared.blocking.threads();
        stats.demoted_carriers = shared
            .carriers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retired
            .iter()
            .filter(|r| r.demoted.is_some() && !r.thread.is_finished())
            .count();
        stats.hog_isolation = match &*shared.hog_group.lock().unwrap_or_else(|e| e.into_inner()) {
            HogGroupState::Untried => crate::stats::HogIsolation::NoneYet,
            HogGroupState::Made(group) => {
                crate::stats::HogIsolation::Cgroup(group.dir().to_path_buf())
            }
            HogGroupState::Unavailable => crate::stats::HogIsolation::Priority,
        };
        stats
    }
}

impl Drop for Runtime {
    /// Shuts the runtime down: cancels every strand, unwinds each one at its
    /// next blocking call or yield so that what it owns is released, and
    /// waits up to [`RuntimeBuilder::shutdown_timeout`] for them; what is
    /// left then is counted in [`Stats::leaked`] and named in a warning.
    /// Joiners of strands that were unwound get an error for which
    /// [`StrandError::is_shut_down`](crate::StrandError::is_shut_down) holds.
    ///
    /// Dropped from inside one of its own strands (or scheduler code), the
    /// runtime cannot wait for the carrier thread it is on: the shutdown
    /// then goes on in the background, on a thread of its own, and the
    /// dropping strand is unwound at its next blocking call or yield.
    fn drop(&mut self) {
        let shared = self.shared.clone();
        let monitor = self.monitor.take();
        begin_shutdown(&shared);
        if !on_a_carrier_of(&shared) {
            finish_shutdown(&shared, monitor);
            return;
        }
        let background = shared.clone();
        let started = std::thread::Builder::new()
            .name("braid-shutdown".into())
            .spawn(move || finish_shutdown(&background, monitor));
        if let Err(err) = started {
            // Nobody can wait for the carriers: they end on their own after
            // their drains, and the runtime's memory stays until they do.
            shared.warn_once(&format!(
                "braid: runtime {} shuts down without waiting for its carriers: no thread \
                 could be started to wait for them ({err})",
                shared.id
            ));
        }
    }
}

/// Whether the calling thread is a carrier of `rt` (a strand or scheduler
/// code of it), which cannot wait for itself.
fn on_a_carrier_of(rt: &RuntimeShared) -> bool {
    let c = crate::context::carrier();
    // SAFETY: a non-null carrier pointer is this thread's live carrier.
    !c.is_null() && rt.cores.as_ptr_range().contains(&unsafe { (*c).core })
}

/// The first half of a shutdown, which does not wait: sets the drains'
/// deadline, tells every core, and lets go of what waits from outside.
fn begin_shutdown(shared: &RuntimeShared) {
    release_cores(shared.cores.iter().filter_map(|c| c.cpu));
    let timeout = shared.config.shutdown_timeout.as_nanos() as u64;
    shared
        .shutdown_deadline
        .store(shared.now_ns().saturating_add(timeout), Ordering::Relaxed);
    crate::strand::SHUTTING_DOWN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    shared.shutdown.store(true, Ordering::SeqCst);
    shared.blocking.shut_down();
    for core in shared.cores.iter() {
        core.io.wake_foreign_waiters(shared.id);
    }
    for core in 0..shared.cores.len() {
        shared.inject(core, Msg::Shutdown);
    }
    shared.monitor_seq.fetch_add(1, Ordering::SeqCst);
    sys::futex_wake_all(&shared.monitor_seq);
}

/// The second half: waits for the monitor and for the carriers (to the
/// drains' deadline and a grace), detaches those still running a strand,
/// and warns about what was left.
fn finish_shutdown(shared: &RuntimeShared, monitor: Option<ThreadHandle<()>>) {
    if let Some(monitor) = monitor {
        let _ = monitor.join();
    }
    let carriers = std::mem::take(&mut *shared.carriers.lock().unwrap_or_else(|e| e.into_inner()));
    let mut threads: Vec<ThreadHandle<()>> = carriers.active.into_iter().flatten().collect();
    threads.extend(carriers.retired.into_iter().map(|r| r.thread));
    let deadline = shared.shutdown_deadline.load(Ordering::Relaxed);
    let give_up = std::time::Duration::from_nanos(deadline.saturating_sub(shared.now_ns()))
        .saturating_add(SHUTDOWN_GRACE);
    let waited = Instant::now();
    while threads.iter().any(|t| !t.is_finished()) && waited.elapsed() < give_up {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let mut detached = Vec::new();
    for thread in threads {
        if thread.is_finished() {
            let _ = thread.join();
        } else {
            // Still inside a strand that never returns to the runtime: the
            // thread keeps the runtime's memory alive until it ends.
            detached.push(thread.thread().name().unwrap_or("braid-core").to_string());
        }
    }
    // Empty unless a carrier was detached (then a later runtime's sweep
    // removes it once this process ended).
    drop(std::mem::take(
        &mut *shared.hog_group.lock().unwrap_or_else(|e| e.into_inner()),
    ));
    shared.strands_left(
        detached
            .iter()
            .map(|t| format!("the strand running on {t}"))
            .collect(),
    );
    registry()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|(id, _)| *id != shared.id);
    // (A detached carrier's strand that reaches an unwind point later is
    // not unwound once no runtime is shutting down: it is past its
    // deadline, left as it is.)
    crate::strand::SHUTTING_DOWN.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    let leaked = shared.leaked.load(Ordering::Relaxed);
    if leaked > 0 {
        let names = shared.left_names.lock().unwrap_or_else(|e| e.into_inner());
        let more = leaked.saturating_sub(names.len());
        let tail = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        eprintln!(
            "braid: runtime {} shut down with {leaked} strands that did not end within its \
             shutdown_timeout ({:?}; their stacks stay mapped): {}{tail}",
            shared.id,
            shared.config.shutdown_timeout,
            names.join(", ")
        );
    }
}
