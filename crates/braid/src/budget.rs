//! Scheduling contexts: CPU budgets that hold strands to a share of the CPU.
//!
//! A [`SchedContext`] grants `budget` of CPU per `period` to the strands
//! bound to it — a strand spawned with
//! [`Builder::context`](crate::Builder::context) and every strand it spawns
//! afterwards (its group). Contexts are minted only from the runtime's
//! [`Authority`], which the embedding program takes once
//! ([`Runtime::take_authority`](crate::Runtime::take_authority)); strands
//! cannot mint one for themselves, nor escape the one they were born into.
//!
//! The budget is braid-core's sporadic server ([`braid_core::budget`]): the
//! CPU a context's strands get in any window of one period is at most the
//! budget (plus a catch-up allowance of [`CATCH_UP`] for releases that come
//! a little late, and what a run overruns before it is stopped, which is
//! paid back from the next refills), and over many periods the budget per
//! period when they always want to run.
//!
//! How it is held:
//! - **Accounting** is by CPU time: a bound strand's carrier reads its
//!   thread's CPU clock when it dispatches the strand and when the strand
//!   stops, so time the kernel gave to other threads is not charged.
//! - **At dispatch**, a strand whose context has nothing left is not run:
//!   its core keeps it aside (`CoreSched::throttle`, where no balancer sees
//!   it) until some of the budget is free again — the next refill, or the
//!   end of a run on another core that was given the rest — and runs the
//!   others meanwhile.
//! - **While it runs**, a timer on the carrier thread's CPU clock fires when
//!   the budget runs out. The first expiry ends the strand's time slice, so a
//!   cooperative strand yields at its next runtime call; if it has not after
//!   [`GRACE`] more CPU, the second expiry holds the carrier thread itself,
//!   in the signal handler, until budget is free — wherever the strand is in its
//!   code, runtime calls or not. The monitor then gives the held carrier's
//!   core to a new carrier (as for any hog), so the core's other strands run
//!   meanwhile, charges the context and releases the thread then.
//!   The held strand continues where it was stopped; at its next runtime call
//!   it returns to its core's queue.
//!
//! A context dies with the strands bound to it: once the last one exits,
//! nothing more can be bound to it or changed ([`ContextError::Ended`]); its
//! figures stay readable ([`ContextStats::ended`]). [`Authority::revoke`] gives a
//! context a new generation: the handles given out before fail with
//! [`ContextError::Revoked`] (the strands stay held to the context).
//!
//! Notices: a context made with [`SchedContext::notices`] signals that global
//! event each time its budget runs out (payload `b"depleted"`) and each time a
//! throttled strand runs again later than its relative deadline after its
//! refill (payload `b"deadline-miss"`).
//!
//! Passive servers: a strand serving a call on a
//! [`Endpoint`](crate::sched::Endpoint) runs on its caller's context until
//! it replies (see `endpoint`).
//!
//! Strands of one context on several cores: what a dispatch gives a run is
//! set aside from the budget until the run is charged
//! ([`braid_core::budget::Account`]), so two cores cannot each run the
//! whole budget in one period.
//!
//! The budget timer's signal can cut short a system call of the bound
//! strand itself that does not restart (`poll`, sleeps: `EINTR`), as any
//! signal can; a timer a run left armed is disarmed before a strand it
//! does not limit runs, or anything else runs on the carrier.
//!
//! Known limits: the monitor's notices allocate and take the injector's
//! lock while a carrier is held; a program's own policy's code runs with
//! the timer possibly armed. Not done yet (see the fairness issue):
//! binding a context to a group that already runs.

use crate::event::{Event, EventError};
use crate::facade::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use crate::runtime::RuntimeShared;
use crate::sys;
pub use braid_core::budget::Overrun;
use braid_core::budget::{Account, Dispatch, Notices, RunId};
use braid_core::{BudgetError, Nanos};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How late a refill may be taken and still count as on time (see
/// [`braid_core::budget`]): the coarse clock's tick plus the rounding of an
/// idle core's sleep, 2 ms (at most the idle part of the period).
pub const CATCH_UP: Duration = Duration::from_millis(2);

/// How much more CPU a strand whose budget ran out gets to reach a runtime
/// call and yield before its carrier thread is held: 200 µs.
pub const GRACE: Duration = Duration::from_micros(200);

/// The figures of a scheduling context, to mint one with
/// [`Authority::mint`].
#[derive(Clone, Debug)]
#[must_use]
pub struct SchedContext {
    budget: Duration,
    period: Duration,
    deadline: Option<Duration>,
    overrun: Overrun,
    notices: Option<Event>,
    cores: Option<Vec<usize>>,
}

impl SchedContext {
    /// `budget` of CPU per `period` (period 100 µs ..= 1 h, budget
    /// 1 ns ..= period; checked by [`Authority::mint`]).
    pub fn new(budget: Duration, period: Duration) -> SchedContext {
        SchedContext {
            budget,
            period,
            deadline: None,
            overrun: Overrun::Throttle,
            notices: None,
            cores: None,
        }
    }

    /// A throttled strand should run again within `deadline` of its refill
    /// (at most the period); later counts as a deadline miss.
    pub fn deadline(mut self, deadline: Duration) -> SchedContext {
        self.deadline = Some(deadline);
        self
    }

    /// What happens when the budget runs out.
    pub fn overrun(mut self, overrun: Overrun) -> SchedContext {
        self.overrun = overrun;
        self
    }

    /// Signals global event `event` at each depletion and deadline miss.
    pub fn notices(mut self, event: Event) -> SchedContext {
        self.notices = Some(event);
        self
    }

    /// The CPU mask: its strands run only on these of the runtime's cores
    /// (indexes `0..cores`; default: all). A strand spawned on another core
    /// starts on the next one of these; no balancer or lease eviction moves
    /// it off them; pinning it elsewhere is refused.
    pub fn cores(mut self, cores: impl IntoIterator<Item = usize>) -> SchedContext {
        self.cores = Some(cores.into_iter().collect());
        self
    }
}

/// A context's CPU mask over the runtime's cores, one bit each.
#[derive(Debug)]
struct CoreMask(Box<[u64]>);

impl CoreMask {
    fn new(cores: &[usize], of: usize) -> CoreMask {
        let mut words = vec![0u64; of.div_ceil(64)].into_boxed_slice();
        for &c in cores {
            words[c / 64] |= 1 << (c % 64);
        }
        CoreMask(words)
    }

    fn contains(&self, core: usize) -> bool {
        self.0
            .get(core / 64)
            .is_some_and(|w| w & (1 << (core % 64)) != 0)
    }
}

/// What was wrong with a context or a request about one.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ContextError {
    /// The budget's figures (see [`BudgetError`]).
    Budget(BudgetError),
    /// The relative deadline was 0 or longer than the period.
    Deadline {
        /// The deadline asked for.
        deadline: Duration,
        /// The period it must fit in.
        period: Duration,
    },
    /// The notice event was a local one; notices need a global event.
    LocalNotices(String),
    /// The handle's generation was revoked.
    Revoked,
    /// Every strand bound to the context has exited.
    Ended,
    /// The handle belongs to another runtime.
    OtherRuntime,
    /// The CPU mask named no core, or a core the runtime does not have.
    Cores {
        /// The cores asked for.
        asked: Vec<usize>,
        /// The runtime's cores (`0..cores`).
        cores: usize,
    },
}

impl std::fmt::Display for ContextError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ContextError::Budget(e) => write!(f, "scheduling context: {e}"),
            ContextError::Deadline { deadline, period } => write!(
                f,
                "scheduling context: a relative deadline of {deadline:?} must be more than 0 \
                 and at most the period, {period:?}"
            ),
            ContextError::LocalNotices(name) => write!(
                f,
                "scheduling context: notices go to a global event, and `{name}` is local"
            ),
            ContextError::Revoked => {
                f.write_str("scheduling context: this handle's generation was revoked")
            }
            ContextError::Ended => {
                f.write_str("scheduling context: it ended (every strand bound to it has exited)")
            }
            ContextError::OtherRuntime => {
                f.write_str("scheduling context: the handle belongs to another runtime")
            }
            ContextError::Cores { asked, cores } => write!(
                f,
                "scheduling context: a CPU mask of cores {asked:?} is not allowed: it must name \
                 at least one core, each in 0..{cores} (the runtime's cores)"
            ),
        }
    }
}

impl std::error::Error for ContextError {}

impl From<BudgetError> for ContextError {
    fn from(e: BudgetError) -> ContextError {
        ContextError::Budget(e)
    }
}

/// What a context's strands have had.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ContextStats {
    /// The budget per period.
    pub budget: Duration,
    /// The period.
    pub period: Duration,
    /// CPU its strands used.
    pub used: Duration,
    /// Runs charged (dispatches, and holds of a strand that did not yield).
    pub runs: u64,
    /// Times a strand was held back at dispatch because the budget was spent.
    pub throttles: u64,
    /// Times the budget ran out.
    pub depletions: u64,
    /// Throttled strands that ran again later than the deadline.
    pub deadline_misses: u64,
    /// Carrier threads held for a strand that did not yield in time.
    pub holds: u64,
    /// Strands bound to it now.
    pub strands: usize,
    /// Whether it ended: strands were bound to it and all have exited.
    pub ended: bool,
}

/// The right to mint scheduling contexts in one runtime. The embedding
/// program takes it once with
/// [`Runtime::take_authority`](crate::Runtime::take_authority) and hands it
/// (it is `Clone`) to whatever it trusts.
#[derive(Clone, Debug)]
pub struct Authority {
    runtime_id: u64,
    started: Instant,
    cores: usize,
    rt: std::sync::Weak<RuntimeShared>,
}

impl Authority {
    pub(crate) fn new(rt: &Arc<RuntimeShared>) -> Authority {
        Authority {
            runtime_id: rt.id,
            started: rt.started,
            cores: rt.cores.len(),
            rt: Arc::downgrade(rt),
        }
    }

    /// Leases a free core of the runtime's lease pool (see
    /// [`crate::sched::Lease`]) for `lifetime` (`None`: until it is revoked
    /// or its group exits). The core is exclusive from now on; start the
    /// group with [`Builder::lease`](crate::Builder::lease).
    pub fn lease(
        &self,
        lifetime: Option<Duration>,
    ) -> Result<crate::sched::Lease, crate::sched::LeaseError> {
        let rt = self
            .rt
            .upgrade()
            .ok_or(crate::sched::LeaseError::OtherRuntime)?;
        crate::lease::grant(&rt, lifetime, false)
    }

    /// A new context with `spec`'s figures, its budget full.
    pub fn mint(&self, spec: &SchedContext) -> Result<ContextHandle, ContextError> {
        let (budget, period) = (nanos(spec.budget), nanos(spec.period));
        let now = crate::runtime::ns_since(self.started);
        let deadline = match spec.deadline {
            None => Nanos::MAX,
            Some(d) if d.is_zero() || d > spec.period => {
                return Err(ContextError::Deadline {
                    deadline: d,
                    period: spec.period,
                })
            }
            Some(d) => nanos(d),
        };
        let books = Account::new(budget, period, nanos(CATCH_UP), now, spec.overrun)?
            .with_deadline(deadline);
        if let Some(event) = &spec.notices {
            if !event.is_global() {
                return Err(ContextError::LocalNotices(event.name().to_owned()));
            }
        }
        let cores = match &spec.cores {
            None => None,
            Some(asked) if asked.is_empty() || asked.iter().any(|&c| c >= self.cores) => {
                return Err(ContextError::Cores {
                    asked: asked.clone(),
                    cores: self.cores,
                })
            }
            Some(asked) => Some(CoreMask::new(asked, self.cores)),
        };
        let cell = Arc::new(ContextCell {
            runtime_id: self.runtime_id,
            started: self.started,
            generation: AtomicU64::new(0),
            strands: AtomicUsize::new(0),
            notices: spec.notices.clone(),
            cores,
            books: Mutex::new(books),
        });
        Ok(ContextHandle {
            cell,
            generation: 0,
        })
    }

    /// Revokes every handle of `handle`'s context given out so far; returns
    /// the one handle of the new generation. The context and its strands
    /// carry on.
    pub fn revoke(&self, handle: &ContextHandle) -> Result<ContextHandle, ContextError> {
        let cell = handle.current()?;
        if cell.runtime_id != self.runtime_id {
            return Err(ContextError::OtherRuntime);
        }
        let generation = cell.generation.fetch_add(1, Ordering::AcqRel) + 1;
        Ok(ContextHandle {
            cell: cell.clone(),
            generation,
        })
    }
}

/// A handle on a scheduling context, of one generation (see
/// [`Authority::revoke`]). Bind strands to it with
/// [`Builder::context`](crate::Builder::context).
#[derive(Clone, Debug)]
pub struct ContextHandle {
    cell: Arc<ContextCell>,
    generation: u64,
}

impl ContextHandle {
    /// The context, unless this handle's generation was revoked.
    fn current(&self) -> Result<&Arc<ContextCell>, ContextError> {
        if self.cell.generation.load(Ordering::Acquire) != self.generation {
            return Err(ContextError::Revoked);
        }
        Ok(&self.cell)
    }

    /// The context, unless revoked or ended.
    fn check(&self) -> Result<&Arc<ContextCell>, ContextError> {
        let cell = self.current()?;
        if cell.ended() {
            return Err(ContextError::Ended);
        }
        Ok(cell)
    }

    /// What the context's strands have had so far (also once it ended).
    pub fn stats(&self) -> Result<ContextStats, ContextError> {
        let cell = self.current()?;
        let books = cell.lock();
        let (budget, stats) = (books.budget(), books.stats());
        Ok(ContextStats {
            budget: Duration::from_nanos(budget.budget()),
            period: Duration::from_nanos(budget.period()),
            used: Duration::from_nanos(stats.used),
            runs: stats.runs,
            throttles: stats.throttles,
            depletions: stats.depletions,
            deadline_misses: stats.misses,
            holds: stats.holds,
            strands: cell.strands.load(Ordering::Relaxed) & !EVER_BOUND,
            ended: cell.ended(),
        })
    }

    /// Changes the budget. The new one starts full when the old one's last
    /// promised refill is due (now, if none is pending), so no window gets
    /// both.
    pub fn set_budget(&self, budget: Duration, period: Duration) -> Result<(), ContextError> {
        let cell = self.check()?;
        let now = crate::runtime::ns_since(cell.started);
        cell.lock().set_budget(nanos(budget), nanos(period), now)?;
        Ok(())
    }

    /// The context for a strand about to be spawned into runtime `runtime_id`.
    pub(crate) fn bind(&self, runtime_id: u64) -> Result<Arc<ContextCell>, ContextError> {
        let cell = self.check()?;
        if cell.runtime_id != runtime_id {
            return Err(ContextError::OtherRuntime);
        }
        Ok(cell.clone())
    }
}

fn nanos(d: Duration) -> Nanos {
    d.as_nanos().min(Nanos::MAX as u128) as Nanos
}

/// [`ContextCell::strands`]' flag: a strand was bound once.
const EVER_BOUND: usize = 1 << (usize::BITS - 1);

/// One scheduling context, shared by its strands' headers and its handles.
#[derive(Debug)]
pub(crate) struct ContextCell {
    runtime_id: u64,
    started: Instant,
    generation: AtomicU64,
    /// Strands bound to it and not yet exited, with [`EVER_BOUND`] set once
    /// a strand was (a context with none yet is alive): one word, so the
    /// count and the flag change together (see `strand_started`).
    strands: AtomicUsize,
    notices: Option<Event>,
    /// Its CPU mask (`None`: every core).
    cores: Option<CoreMask>,
    /// Its budget's decisions and counts, locked at each dispatch and stop
    /// of its strands.
    books: Mutex<Account>,
}

impl ContextCell {
    /// Whether its strands may run on `core` (its CPU mask).
    #[inline]
    pub(crate) fn allows(&self, core: usize) -> bool {
        self.cores.as_ref().is_none_or(|mask| mask.contains(core))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Account> {
        self.books.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn ended(&self) -> bool {
        self.strands.load(Ordering::Acquire) == EVER_BOUND
    }

    /// A strand is being bound to this context (at its spawn, once nothing
    /// else can fail): counted in, unless the context ended since its handle
    /// was checked — its last strand exited meanwhile, on another core. A
    /// context that ended stays ended: once anything saw it so, no spawn
    /// brings it back.
    pub(crate) fn strand_started(&self) -> Result<(), ContextError> {
        let mut strands = self.strands.load(Ordering::Acquire);
        loop {
            if strands == EVER_BOUND {
                return Err(ContextError::Ended);
            }
            match self.strands.compare_exchange_weak(
                strands,
                (strands + 1) | EVER_BOUND,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(()),
                Err(now) => strands = now,
            }
        }
    }

    /// A strand bound to this context exited.
    pub(crate) fn strand_exited(&self) {
        self.strands.fetch_sub(1, Ordering::AcqRel);
    }

    /// A strand of this context is about to run at `now`.
    pub(crate) fn dispatch(&self, now: Nanos) -> (Dispatch, Notices) {
        self.lock().dispatch(now)
    }

    /// Books `run`, of `used` ns of CPU that began at `start`; `now` is
    /// when it was booked.
    pub(crate) fn charge(&self, run: RunId, start: Nanos, used: Nanos, now: Nanos) -> Notices {
        self.lock().charge(run, start, used, now)
    }

    /// For a carrier held at `now`: books `used` ns from `start`, and says
    /// when to release it and how much CPU it may use then. `None` if the
    /// books are locked: the held thread may be the one holding them (a
    /// bound strand reading its context's figures in a loop), so the monitor
    /// must not wait for them.
    fn try_hold(
        &self,
        run: RunId,
        start: Nanos,
        used: Nanos,
        now: Nanos,
    ) -> Option<(Nanos, Nanos, Notices)> {
        let mut books = match self.books.try_lock() {
            Ok(books) => books,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        Some(books.hold(run, start, used, now))
    }

    /// Sends `notices` (after the books are unlocked).
    pub(crate) fn send(&self, rt: &RuntimeShared, notices: Notices) {
        let Some(event) = &self.notices else { return };
        for (due, what) in [
            (notices.depleted, &b"depleted"[..]),
            (notices.missed, &b"deadline-miss"[..]),
        ] {
            if due {
                let sent: Result<(), EventError> =
                    crate::event::signal_from_outside(rt, event, what, false);
                debug_assert!(sent.is_ok(), "notice events are checked global");
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Holding a carrier whose strand does not yield.

/// The signal the budget timers send: `SIGRTMIN + 6` (glibc keeps the
/// first real-time signals for itself; programs that use this one should
/// not bind strands to scheduling contexts).
fn budget_signal() -> i32 {
    libc::SIGRTMIN() + 6
}

const IDLE: u32 = 0;
const ARMED: u32 = 1;
const STRUCK: u32 = 2;
const HELD: u32 = 3;
const RELEASED: u32 = 4;
/// Set by the monitor at shutdown: a held thread goes on at once, unheld.
const LET_GO: u32 = 5;

/// One carrier thread's budget timer and hold state. Made by the carrier
/// the first time it runs a bound strand, registered with the runtime (the
/// monitor looks at every registered hold), and kept until the thread ends.
///
/// States (`state`): `IDLE` (no bound strand running), `ARMED` (one runs,
/// the timer set to its budget), `STRUCK` (the budget ran out: its slice
/// ended, the timer set to [`GRACE`]), `HELD` (the grace ran out too: the
/// thread waits in the signal handler for the monitor), `RELEASED` (the
/// monitor set `until` and `rearm`: the thread sleeps until `until`, then
/// carries on `ARMED`).
///
/// Orderings: every field but `state` is Relaxed. Each is written by one
/// side (the carrier and its handler, one thread; or the monitor) before a
/// Release store of `state`, and read by the other after an Acquire load
/// that saw it. The stores that make or end a hold (HELD, IDLE at
/// shutdown) are SeqCst against the shutdown flag (see `let_go_all`).
pub(crate) struct Hold {
    state: AtomicU32,
    timer: OnceLock<sys::ThreadTimer>,
    /// The carrier's `slice_end`, which the first expiry sets to 0.
    slice_end: *const AtomicU64,
    /// The monitor's futex word, bumped when a thread is held.
    monitor: *const AtomicU32,
    /// The runtime's shutdown flag: no thread is held once it is set.
    shutdown: *const AtomicBool,
    /// The core the carrier was started for: a carrier that still owns it
    /// is not held inside runtime code (see the handler).
    core_state: *const crate::core::CoreShared,
    /// The carrier's own scheduler-code flag (`core::handshake::Claim`):
    /// the handler reads it, not the owner's behind the hand-off lock.
    in_scheduler: Arc<crate::facade::AtomicU32>,
    /// The bound strand's context while it runs (kept alive by its task),
    /// and its run there ([`RunId`]'s bits).
    ctx: AtomicPtr<ContextCell>,
    run: AtomicU64,
    /// The run being charged: its start on the runtime's clock, and the
    /// thread's CPU time then.
    wall_start: AtomicU64,
    cpu_start: AtomicU64,
    /// The thread's CPU time when it was held.
    cpu_held: AtomicU64,
    /// Wall time it spent held during the current run (ns): not time the
    /// strand ran, though a clock around the run counts it.
    held_ns: AtomicU64,
    /// The thread's CPU time at which the current state ends (the budget
    /// runs out, or the grace does). The timer runs on wall time, so at each
    /// expiry the handler checks the CPU clock and re-arms for what is left
    /// if the thread was not running all along.
    cpu_due: AtomicU64,
    /// When the timer fires (`CLOCK_MONOTONIC` ns; 0: not armed). A run
    /// that needs it no later than that leaves it armed: consecutive runs
    /// of bound strands then cost no timer call each (the expiry checks the
    /// CPU clock against `cpu_due` and re-arms for what is left).
    fires_at: AtomicU64,
    /// Set by the monitor for a release: `CLOCK_MONOTONIC` time to sleep
    /// until, the same on the runtime's clock, and the CPU to arm for.
    until_mono: AtomicU64,
    until: AtomicU64,
    rearm: AtomicU64,
    /// Set by the monitor with a release that charged nothing: the run
    /// goes on from its old start.
    keep: AtomicBool,
    /// The kernel thread id and the core of the carrier.
    pub(crate) tid: i32,
    pub(crate) core: usize,
}

// SAFETY: the raw pointers point at atomics that outlive the hold (the
// carrier's, on its own stack, which lives as long as the thread that owns
// this hold; the runtime's, which every carrier keeps alive); everything else
// is atomic or a kernel handle.
unsafe impl Send for Hold {}
// SAFETY: as above.
unsafe impl Sync for Hold {}

impl Hold {
    /// The calling carrier thread's hold, and why it has no timer if it
    /// has none (then its strands are charged, but only at their switches).
    pub(crate) fn new(
        rt: &RuntimeShared,
        slice_end: &AtomicU64,
        in_scheduler: Arc<crate::facade::AtomicU32>,
        core: usize,
    ) -> (Arc<Hold>, Option<std::io::Error>) {
        static HANDLER: OnceLock<Result<(), String>> = OnceLock::new();
        let handler = HANDLER
            .get_or_init(|| {
                sys::install_signal_handler(budget_signal(), on_budget_signal)
                    .map_err(|e| e.to_string())
            })
            .clone()
            .map_err(std::io::Error::other);
        let hold = Arc::new(Hold {
            state: AtomicU32::new(IDLE),
            timer: OnceLock::new(),
            slice_end,
            monitor: &rt.monitor_seq,
            shutdown: &rt.shutdown,
            ctx: AtomicPtr::new(std::ptr::null_mut()),
            run: AtomicU64::new(0),
            wall_start: AtomicU64::new(0),
            cpu_start: AtomicU64::new(0),
            cpu_held: AtomicU64::new(0),
            held_ns: AtomicU64::new(0),
            cpu_due: AtomicU64::new(0),
            fires_at: AtomicU64::new(0),
            until_mono: AtomicU64::new(0),
            until: AtomicU64::new(0),
            rearm: AtomicU64::new(0),
            keep: AtomicBool::new(false),
            core_state: &rt.cores[core],
            in_scheduler,
            tid: sys::thread_id(),
            core,
        });
        // Releases at a refill are sleeps that end on time (the hold's
        // sleep in the handler, the core's park until a throttled strand's
        // release).
        sys::set_timer_slack(1_000);
        let value = Arc::as_ptr(&hold) as *mut libc::c_void;
        let failed = match handler.and_then(|()| sys::ThreadTimer::new(budget_signal(), value)) {
            Ok(timer) => {
                let _ = hold.timer.set(timer);
                None
            }
            Err(err) => Some(err),
        };
        rt.holds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(hold.clone());
        (hold, failed)
    }

    /// Arms the timer to fire in `ns` (at least 1), if there is one.
    /// Async-signal-safe.
    fn arm(&self, ns: Nanos) {
        if let Some(timer) = self.timer.get() {
            let ns = ns.max(1);
            self.fires_at
                .store(sys::monotonic_ns() + ns, Ordering::Relaxed);
            timer.arm(ns);
        }
    }

    /// A bound strand of `ctx` starts running at `now` with `available` ns
    /// of its budget left (0: do not arm).
    pub(crate) fn start(&self, ctx: &ContextCell, run: RunId, now: Nanos, available: Nanos) {
        self.ctx.store(
            ctx as *const ContextCell as *mut ContextCell,
            Ordering::Relaxed,
        );
        self.run.store(run.to_bits(), Ordering::Relaxed);
        self.wall_start.store(now, Ordering::Relaxed);
        let cpu = sys::thread_cpu_ns();
        self.cpu_start.store(cpu, Ordering::Relaxed);
        if available > 0 && self.timer.get().is_some() {
            self.cpu_due.store(cpu + available, Ordering::Relaxed);
            self.state.store(ARMED, Ordering::Release);
            // The thread's CPU time cannot run ahead of the wall clock: a
            // timer due by `available` from now fires in time.
            let fires_at = self.fires_at.load(Ordering::Relaxed);
            if fires_at == 0 || fires_at > sys::monotonic_ns() + available {
                self.arm(available);
            }
        } else if self.armed() {
            // No limit (a measuring context): a timer an earlier run left
            // would only interrupt this strand's system calls.
            self.disarm();
        }
    }

    /// Whether the timer may be armed (it has not fired since it was).
    pub(crate) fn armed(&self) -> bool {
        self.fires_at.load(Ordering::Relaxed) != 0
    }

    /// Disarms the timer. A signal already due is delivered as the call
    /// returns, and finds the hold idle.
    pub(crate) fn disarm(&self) {
        if let Some(timer) = self.timer.get() {
            self.fires_at.store(0, Ordering::Relaxed);
            timer.arm(0);
        }
    }

    /// The bound strand stopped: returns its run, when it began (on the
    /// runtime's clock), the CPU it used since, and the wall time it spent
    /// held while it ran (what a clock around the run must not charge it). The timer stays armed for
    /// the next run, bound strands back to back costing no timer call each
    /// (an expiry with no bound strand running does nothing); the carrier
    /// disarms it before anything else runs or it parks
    /// (`Carrier::timer_armed`).
    pub(crate) fn stop(&self) -> (RunId, Nanos, Nanos, Nanos) {
        self.state.store(IDLE, Ordering::Release);
        self.ctx.store(std::ptr::null_mut(), Ordering::Relaxed);
        let used = sys::thread_cpu_ns().saturating_sub(self.cpu_start.load(Ordering::Relaxed));
        let run = RunId::from_bits(self.run.load(Ordering::Relaxed));
        let held = self.held_ns.swap(0, Ordering::Relaxed);
        (run, self.wall_start.load(Ordering::Relaxed), used, held)
    }

    /// Takes the hold out of the runtime's list (its thread is ending).
    ///
    /// Called on the carrier's own thread: disarming here means no expiry
    /// is left to run the handler on this hold after it is freed (a signal
    /// already due is delivered as the disarming call returns).
    pub(crate) fn retire(self: &Arc<Hold>, rt: &RuntimeShared) {
        self.state.store(IDLE, Ordering::SeqCst);
        if let Some(timer) = self.timer.get() {
            timer.arm(0);
        }
        let mut holds = rt.holds.lock().unwrap_or_else(|e| e.into_inner());
        holds.retain(|h| !Arc::ptr_eq(h, self));
    }
}

/// The budget timer's signal handler. Only async-signal-safe calls: atomics,
/// clock reads, timer arming and futexes.
extern "C" fn on_budget_signal(_: i32, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the signal comes only from a hold's timer, whose value is the
    // hold's address; the hold lives as long as its thread (the one running
    // this handler) and its timer is disarmed before it is freed (`retire`).
    let hold = unsafe { &*((*info).si_value().sival_ptr as *const Hold) };
    // SAFETY: errno is thread-local; the handler must leave it as it was.
    let errno = unsafe { *libc::__errno_location() };
    on_expiry(hold);
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// What an expiry of `hold`'s timer does, on its carrier's thread.
fn on_expiry(hold: &Hold) {
    hold.fires_at.store(0, Ordering::Relaxed);
    let cpu = sys::thread_cpu_ns();
    let due = hold.cpu_due.load(Ordering::Relaxed);
    match hold.state.load(Ordering::Acquire) {
        // The thread was not on a CPU all the while: wait for the rest.
        ARMED | STRUCK if cpu < due => hold.arm(due - cpu),
        ARMED => {
            // End the slice: a cooperative strand yields at its next call.
            // SAFETY: see `Hold`'s Send: the carrier outlives its hold.
            unsafe { (*hold.slice_end).store(0, Ordering::Relaxed) };
            hold.cpu_due.store(cpu + nanos(GRACE), Ordering::Relaxed);
            hold.state.store(STRUCK, Ordering::Release);
            hold.arm(nanos(GRACE));
        }
        STRUCK => hold.hold_until_refill(cpu),
        _ => {}
    }
}

impl Hold {
    /// The grace ran out at CPU time `cpu`: holds the thread until the
    /// monitor releases it and the refill is due, then goes on armed for
    /// the refill. Not held after all inside runtime code (retried after a
    /// grace), nor at shutdown (the hold is then idle).
    fn hold_until_refill(&self, cpu: Nanos) {
        if !self.wait_for_refill(cpu) {
            return;
        }
        let cpu = sys::thread_cpu_ns();
        if !self.keep.swap(false, Ordering::Relaxed) {
            self.wall_start
                .store(self.until.load(Ordering::Relaxed), Ordering::Relaxed);
            self.cpu_start.store(cpu, Ordering::Relaxed);
        }
        let rearm = self.rearm.load(Ordering::Relaxed).max(1);
        self.cpu_due.store(cpu + rearm, Ordering::Relaxed);
        self.state.store(ARMED, Ordering::Release);
        self.arm(rearm);
    }

    /// [`hold_until_refill`](Self::hold_until_refill)'s wait; false if the
    /// thread was not held or was let go.
    fn wait_for_refill(&self, cpu: Nanos) -> bool {
        // SAFETY: the runtime, and so its cores, outlive its carriers.
        let core = unsafe { &*self.core_state };
        if core.carrier_tid.load(Ordering::Relaxed) == self.tid
            && self.in_scheduler.load(Ordering::Relaxed) == 1
        {
            // Inside runtime code (it holds the core's state): a hold here
            // could not hand the core on.
            self.arm(nanos(GRACE));
            return false;
        }
        self.cpu_held.store(cpu, Ordering::Relaxed);
        self.state.store(HELD, Ordering::SeqCst);
        // SAFETY: the runtime outlives its carriers (see `Hold`).
        let (monitor, shutdown) = unsafe { (&*self.monitor, &*self.shutdown) };
        // Either the monitor's last look at shutdown (`let_go_all`) sees
        // HELD, or this sees the shutdown (both SeqCst).
        if shutdown.load(Ordering::SeqCst) {
            self.state.store(IDLE, Ordering::SeqCst);
            return false;
        }
        let held_from = sys::monotonic_ns();
        monitor.fetch_add(1, Ordering::SeqCst);
        sys::futex_wake_all(monitor);
        while self.state.load(Ordering::Acquire) == HELD {
            sys::futex_wait(&self.state, HELD, None);
        }
        // Sleep to the refill, unless let go (a period may be an hour).
        let until = self.until_mono.load(Ordering::Relaxed);
        loop {
            let now = sys::monotonic_ns();
            if self.state.load(Ordering::Acquire) != RELEASED || now >= until {
                break;
            }
            sys::futex_wait(
                &self.state,
                RELEASED,
                Some(Duration::from_nanos(until - now)),
            );
        }
        let held = sys::monotonic_ns().saturating_sub(held_from);
        self.held_ns.fetch_add(held, Ordering::Relaxed);
        if self.state.load(Ordering::Acquire) == LET_GO {
            self.state.store(IDLE, Ordering::Release);
            return false;
        }
        true
    }

    /// The monitor's release of a held thread: it sleeps until
    /// `until_mono` (`CLOCK_MONOTONIC`; 0: at once), then goes on with
    /// `rearm` of CPU, its run starting at `until` on the runtime's clock —
    /// or, with `keep`, its run going on uncharged from where it began.
    fn release(&self, until_mono: u64, until: Nanos, rearm: Nanos, keep: bool) {
        self.keep.store(keep, Ordering::Relaxed);
        self.until_mono.store(until_mono, Ordering::Relaxed);
        self.until.store(until, Ordering::Relaxed);
        self.rearm.store(rearm, Ordering::Relaxed);
        // Release: the handler reads the fields above after its Acquire
        // load of RELEASED.
        self.state.store(RELEASED, Ordering::Release);
        sys::futex_wake_all(&self.state);
    }
}

/// At shutdown (the monitor's last act): lets every held or sleeping
/// carrier go on at once, so the runtime's carriers can be joined.
pub(crate) fn let_go_all(rt: &RuntimeShared) {
    let holds = rt.holds.lock().unwrap_or_else(|e| e.into_inner());
    for hold in holds.iter() {
        for from in [HELD, RELEASED] {
            if hold
                .state
                .compare_exchange(from, LET_GO, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                sys::futex_wake_all(&hold.state);
            }
        }
    }
}

/// The monitor's part: for each carrier held since the last look, charges
/// its context, gives its core to a new carrier if it still has it, and
/// releases it at the refill. `revoke(core, tid)` takes the core from the
/// held carrier `tid` if that one still owns it.
pub(crate) fn release_held(rt: &RuntimeShared, now: Nanos, mut revoke: impl FnMut(usize, i32)) {
    let held: Vec<Arc<Hold>> = rt
        .holds
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|h| h.state.load(Ordering::Acquire) == HELD)
        .cloned()
        .collect();
    for hold in held {
        // SAFETY: a held carrier is inside its bound strand's run (its
        // context was stored before ARMED, cleared only after IDLE), whose
        // task keeps the context alive until the run stops, which cannot
        // happen before the release below.
        let charged = unsafe { hold.ctx.load(Ordering::Relaxed).as_ref() }.and_then(|ctx| {
            let used = hold
                .cpu_held
                .load(Ordering::Relaxed)
                .saturating_sub(hold.cpu_start.load(Ordering::Relaxed));
            let start = hold.wall_start.load(Ordering::Relaxed);
            let run = RunId::from_bits(hold.run.load(Ordering::Relaxed));
            ctx.try_hold(run, start, used, now).map(|held| (ctx, held))
        });
        let Some((ctx, (until, rearm, notices))) = charged else {
            // The books are locked, maybe by the held thread itself: let
            // it go on for another grace, its run still uncharged.
            hold.release(0, 0, nanos(GRACE), true);
            continue;
        };
        ctx.send(rt, notices);
        revoke(hold.core, hold.tid);
        let mono_now = sys::monotonic_ns();
        let now = rt.now_ns();
        hold.release(
            mono_now + until.saturating_sub(now),
            until.max(now),
            rearm,
            false,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A spawn checks the handle, then counts its strand in once nothing
    /// else can fail; the context's last strand may exit in between (on
    /// another core). Played here one step at a time: the late count is
    /// refused, and the context stays ended.
    #[test]
    fn a_spawn_racing_the_last_exit_does_not_revive_the_context() {
        let rt = crate::Runtime::builder().cores(1).build().unwrap();
        let authority = rt.take_authority().unwrap();
        let handle = authority
            .mint(&SchedContext::new(
                Duration::from_millis(2),
                Duration::from_millis(10),
            ))
            .unwrap();
        let cell = handle.bind(handle.cell.runtime_id).unwrap();
        cell.strand_started().unwrap();
        // The second spawn's check passes while the first strand lives …
        let late = handle.bind(handle.cell.runtime_id).unwrap();
        // … which exits before that spawn counts its strand in.
        cell.strand_exited();
        assert_eq!(late.strand_started(), Err(ContextError::Ended));
        assert!(handle.stats().unwrap().ended);
        assert!(matches!(
            handle.bind(handle.cell.runtime_id),
            Err(ContextError::Ended)
        ));
    }
}
