//! Spawning strands and joining them.

use crate::config::check_stack_size;
use crate::context;
use crate::error::{SpawnError, StrandError};
use crate::group::Group;
use crate::runtime::RuntimeShared;
use crate::scope::ScopeState;
use crate::stack::StrandStack;
use crate::stats::StrandStats;
use crate::strand::{self, Header, Launch, StrandCoroutine, StrandYielder, Task};
use crate::sync::waiter::Waiter;

use crate::facade::Ordering;
use crate::join::JoinCell;
use std::cell::UnsafeCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

/// Where a strand's result travels from the strand to its joiner (the protocol
/// is `join::JoinCell`'s), and the scope told when it goes away.
pub(crate) struct Packet<T> {
    cell: JoinCell<Result<T, StrandError>, Waiter>,
    /// The scope this strand belongs to, told when the packet goes away.
    pub(crate) scope: Option<Arc<ScopeState>>,
}

// SAFETY: the cells are accessed under the join protocol (`join`), which hands
// each of them from one thread to another with release/acquire.
unsafe impl<T: Send> Sync for Packet<T> {}
// SAFETY: moving a `Packet` to another thread moves what its cells hold: the
// result (a `T`, which `T: Send` allows to change threads, or a `StrandError`,
// whose payload is `Send`) and the joiner's `Waiter`, which may be woken from any
// thread. A moved packet is not shared, so nothing touches the cells meanwhile.
unsafe impl<T: Send> Send for Packet<T> {}

impl<T> Packet<T> {
    fn new(scope: Option<Arc<ScopeState>>) -> Packet<T> {
        Packet {
            cell: JoinCell::new(),
            scope,
        }
    }

    /// The strand's result, once (by `run_body` or `fail`).
    fn complete(&self, result: Result<T, StrandError>) {
        // SAFETY: a strand's body runs (or fails to start) once, and only
        // that path completes its packet.
        if let Some(waiter) = unsafe { self.cell.complete(result) } {
            waiter.wake();
        }
    }

    fn is_done(&self) -> bool {
        self.cell.is_done()
    }

    /// Blocks until the result is in, then takes it. A joiner that is itself
    /// cancelled gives up with a cancellation error.
    fn wait(
        &self,
        joiner_cancelled: impl Fn() -> bool,
        strand_name: impl Fn() -> String,
    ) -> Result<T, StrandError> {
        // SAFETY: `wait` is reached through `JoinHandle::join`, which consumes
        // the one handle: this is the packet's only joiner, once.
        if !self.is_done() && unsafe { self.cell.register(Waiter::current()) } {
            while !self.is_done() {
                if joiner_cancelled() {
                    return Err(StrandError::cancelled(strand_name()));
                }
                strand::park_current();
            }
        }
        // SAFETY: the one joiner (see above), and the result is in: either
        // `is_done` was seen, or `register` failed because it was.
        unsafe { self.cell.take() }.unwrap_or_else(|| Err(StrandError::cancelled(strand_name())))
    }
}

impl<T> Drop for Packet<T> {
    fn drop(&mut self) {
        if let Some(scope) = self.scope.take() {
            let result = self.cell.take_unjoined();
            let unjoined_panic = matches!(&result, Some(Err(e)) if e.is_panic());
            // Drop the result before telling the scope: it may borrow from it.
            drop(result);
            scope.strand_done(unjoined_panic);
        }
    }
}

/// Owns the right to join a strand. Dropping it detaches the strand: it keeps
/// running, stays in its group, and its panic (if any) is only reported.
pub struct JoinHandle<T> {
    header: Arc<Header>,
    /// The strand's body and packet, one allocation (see `StrandBody`).
    packet: Arc<dyn Joinable<T>>,
}

/// The packet part of a `StrandBody`, without naming its closure type.
trait Joinable<T>: Send + Sync {
    fn packet(&self) -> &Packet<T>;
}

impl<T> std::fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinHandle")
            .field("strand", &strand_label(&self.header))
            .finish()
    }
}

pub(crate) fn strand_label(header: &Header) -> String {
    match &header.name {
        Some(name) => format!("'{name}'"),
        None => format!("#{}", header.id),
    }
}

impl<T> JoinHandle<T> {
    /// Waits for the strand to finish and returns its value, or why there is none.
    /// Blocks only the calling strand (or thread, outside the runtime).
    pub fn join(self) -> Result<T, StrandError> {
        let header = self.header.clone();
        self.packet
            .packet()
            .wait(crate::api::cancel_point, move || strand_label(&header))
    }

    /// Whether the strand has finished.
    pub fn is_finished(&self) -> bool {
        self.packet.packet().is_done()
    }

    /// The strand's identity and state.
    pub fn strand(&self) -> crate::Strand {
        crate::Strand::from_header(self.header.clone())
    }

    /// The group made of this strand and its descendants.
    pub fn group(&self) -> Group {
        Group::of(self.header.clone())
    }

    /// The strand's accounting so far.
    pub fn stats(&self) -> StrandStats {
        StrandStats::read(&self.header)
    }
}

/// Configures a strand before spawning it, like `std::thread::Builder`.
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct Builder {
    name: Option<String>,
    stack_size: Option<usize>,
    core: Option<usize>,
    weight: Option<u32>,
    class: Option<LatencyClass>,
    slice: Option<Duration>,
    /// Head: enter the ready strands first when spawned or woken (an
    /// `Insert::After` is among the rarer requests).
    wakes_first: bool,
    /// The rarer requests, boxed: every field here is paid by every spawn
    /// (the builder is moved by value), and these three measured +2.5 %
    /// on spawn + join as plain fields.
    authority: Option<Box<Authorized>>,
}

/// A builder's rarer requests: CPU authority, accounting.
#[derive(Clone, Debug, Default)]
struct Authorized {
    context: Option<crate::budget::ContextHandle>,
    tally: Option<crate::stats::Tally>,
    /// `Insert::After`: the strand to enter the ready strands behind.
    after: Option<u64>,
    lease: Option<crate::lease::Lease>,
    performance_sensitive: bool,
    /// A share group to start, of this weight.
    group_weight: Option<u32>,
}

impl Builder {
    /// A builder with the runtime's defaults.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the strand (shown in panics, overflow reports and diagnostics).
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// The strand's stack size in bytes: whole pages, 16 KiB to 1 GiB.
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = Some(bytes);
        self
    }

    /// Runs the strand on core `core` and keeps it there: balancing never moves
    /// it. Without this, a strand starts on its parent's core and may move.
    pub fn core(mut self, core: usize) -> Builder {
        self.core = Some(core);
        self
    }

    /// The strand's share of the CPU relative to others under a fair policy
    /// (`PolicyKind::Eevdf`, `Cfs`): weight 2 048 gets twice the CPU of the
    /// default 1 024 ([`braid_core::fair::UNIT_WEIGHT`]) when both want it.
    /// Allowed: 1 ..= 1 048 576. Default: the spawning strand's.
    pub fn weight(mut self, weight: u32) -> Builder {
        self.weight = Some(weight);
        self
    }

    /// The strand's latency class: `Latency` strands get short slices and
    /// run soon when they become ready; `Batch` ones long slices (and, under
    /// `PolicyKind::Priority`, are served after the others, with aging).
    /// Default: the spawning strand's.
    pub fn latency_class(mut self, class: LatencyClass) -> Builder {
        self.class = Some(class);
        self
    }

    /// Where the strand enters its core's ready strands when it is spawned
    /// or woken: `Insert::Head` runs it before what is queued there (a
    /// service or completion strand others wait on; under EEVDF it is
    /// placed no later than the others without being granted CPU it is not
    /// owed). Default `Insert::Tail`; a yield always goes to the tail, and
    /// children do not inherit it. `Insert::After` names no strand here and
    /// enters at the tail: see [`insert_after`](Self::insert_after).
    pub fn insert(mut self, hint: Insert) -> Builder {
        self.wakes_first = hint == Insert::Head;
        if let Some(asked) = self.authority.as_deref_mut() {
            asked.after = None;
        }
        self
    }

    /// Enters the strand into its core's ready strands right behind strand
    /// `strand` (by [`Strand::id`](crate::Strand::id)) when it is spawned or
    /// woken and that strand is ready on the same core, or as with
    /// `Insert::Head` when that strand is the one running there (a consumer
    /// behind its producer: next, under round robin); else at the tail. See
    /// [`Insert::After`] for what each policy makes of it. Children do not
    /// inherit it.
    pub fn insert_after(mut self, strand: u64) -> Builder {
        self.wakes_first = false;
        self.authority.get_or_insert_default().after = Some(strand);
        self
    }

    /// The time slice the strand asks for (EEVDF: a short one buys an early
    /// deadline, so low latency, not more CPU). Allowed: 100 µs ..= 1 s, kept
    /// in steps of 100 µs (rounded down).
    /// Default: its class's share of the runtime's
    /// [`time_slice`](crate::RuntimeBuilder::time_slice), or the spawning
    /// strand's request.
    pub fn slice(mut self, slice: Duration) -> Builder {
        self.slice = Some(slice);
        self
    }

    /// Starts a share group of weight `weight` at the strand: it and every
    /// strand it spawns (unless one starts a group of its own) share
    /// `weight` between them under a fair policy (`PolicyKind::Eevdf`,
    /// `Cfs`), however many they are and on whichever cores they run, as
    /// a Linux `cpu` cgroup shares its `cpu.shares`. The group's runnable
    /// strands split it in proportion to their own
    /// [`weight`](Self::weight)s; a group started inside another is one
    /// member of it, of weight `weight` (at most 8 deep). See
    /// [`braid_core::share`].
    ///
    /// Weights are whole numbers (a member's rounded to the nearest, at
    /// least 1, of the unit 1 024): give a group about 50 units per strand
    /// it will have runnable for its share to hold within 1 % — a group of
    /// weight 1 024 split over 3 000 strands counts each as 1, three times
    /// its share. A strand its budget holds in the middle of a run (one
    /// that does not yield) keeps counting in its group until it stops.
    /// Allowed: 1 ..= 1 048 576. Default: the spawning strand's group, if
    /// any. Round robin, `Priority` and a program's own policy ignore
    /// weights, and so groups.
    pub fn group_weight(mut self, weight: u32) -> Builder {
        self.authority.get_or_insert_default().group_weight = Some(weight);
        self
    }

    /// Binds the strand, and every strand it spawns, to scheduling context
    /// `context` (see [`crate::sched::SchedContext`]): they share its CPU
    /// budget. Default: the spawning strand's context, if it has one. The
    /// spawn fails with [`SpawnError::context_error`] if the handle was
    /// revoked, its context ended, or it belongs to another runtime.
    pub fn context(mut self, context: &crate::budget::ContextHandle) -> Builder {
        self.authority.get_or_insert_default().context = Some(context.clone());
        self
    }

    /// Counts the strand, and every strand it spawns, in `tally` (see
    /// [`Tally`](crate::Tally)): their accounting adds up there, exited
    /// strands included. Default: the spawning strand's tally, if it has
    /// one (a strand counts in one tally at a time: this moves its subtree
    /// to `tally`).
    pub fn tally(mut self, tally: &crate::stats::Tally) -> Builder {
        self.authority.get_or_insert_default().tally = Some(tally.clone());
        self
    }

    /// Starts the strand on `lease`'s core as the first strand of the group
    /// the core is leased to (see [`crate::sched::Lease`]); the strands it
    /// spawns belong to the group too. The spawn fails with
    /// [`SpawnError::lease_error`] if the lease ended or already has a group.
    pub fn lease(mut self, lease: &crate::lease::Lease) -> Builder {
        self.authority.get_or_insert_default().lease = Some(lease.clone());
        self
    }

    /// Marks the strand's group performance-sensitive: if a core of the
    /// runtime's lease pool is free, the group takes it (a lease that ends
    /// when the group exits, see [`crate::Runtime::leases`]); otherwise it
    /// runs as any other.
    pub fn performance_sensitive(mut self, yes: bool) -> Builder {
        self.authority.get_or_insert_default().performance_sensitive = yes;
        self
    }

    /// What the new strand asks of the scheduler: `parent`'s, with this
    /// builder's changes, checked.
    #[inline]
    fn params(&self, parent: &SchedParams) -> Result<SchedParams, SpawnError> {
        // The insertion hint is the strand's own: children go to the tail.
        let insert = match self.authority.as_deref().and_then(|a| a.after) {
            Some(_) => Insert::After,
            None if self.wakes_first => Insert::Head,
            None => Insert::Tail,
        };
        if self.weight.is_none() && self.class.is_none() && self.slice.is_none() {
            return Ok(SchedParams { insert, ..*parent });
        }
        let params = self.changed_params(parent)?;
        Ok(SchedParams { insert, ..params })
    }

    #[cold]
    fn changed_params(&self, parent: &SchedParams) -> Result<SchedParams, SpawnError> {
        let mut params = *parent;
        if let Some(weight) = self.weight {
            if !braid_core::fair::WEIGHTS.contains(&weight) {
                let allowed = format!(
                    "{}..={}",
                    braid_core::fair::WEIGHTS.start(),
                    braid_core::fair::WEIGHTS.end()
                );
                return Err(SpawnError::config(crate::ConfigError::new(
                    "weight", weight, allowed,
                )));
            }
            params.weight = weight;
        }
        if let Some(class) = self.class {
            params.class = class;
        }
        if let Some(slice) = self.slice {
            if !crate::config::SLICES.contains(&slice) {
                return Err(SpawnError::config(crate::ConfigError::new(
                    "slice",
                    format!("{slice:?}"),
                    crate::config::SLICES_ALLOWED,
                )));
            }
            params.slice = Some(slice.as_nanos() as u64);
        }
        Ok(params)
    }

    /// Spawns the strand into `rt` from outside it (`main`, any plain
    /// thread) as a top-level strand, with this builder's settings: what
    /// [`Runtime::spawn`](crate::Runtime::spawn) does with the defaults. It
    /// starts on the runtime's next core in turn (skipping leased ones), or
    /// on [`core`](Self::core), pinned; it may be bound to a scheduling
    /// context, counted in a tally and start a share group, as from inside.
    /// Without a spawning strand to inherit from, what the builder leaves
    /// unset is the runtime's default. A lease cannot be joined from
    /// outside (its group's first strand must be spawned by a strand):
    /// [`lease`](Self::lease) and
    /// [`performance_sensitive`](Self::performance_sensitive) are refused
    /// with a typed error, as is [`insert_after`](Self::insert_after)
    /// (there is no core queue to place it in yet).
    pub fn spawn_in<F, T>(self, rt: &crate::Runtime, f: F) -> Result<JoinHandle<T>, SpawnError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        spawn_foreign_with(rt.shared(), self, f)
    }

    /// Spawns the strand as a child of the calling strand, on its core.
    pub fn spawn<F, T>(self, f: F) -> Result<JoinHandle<T>, SpawnError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        // SAFETY: `F` and `T` are `'static`.
        unsafe { self.spawn_unchecked(None, f) }
    }

    /// Spawns without requiring `'static`.
    ///
    /// # Safety
    /// If `F` or `T` borrow anything, `scope` must be `Some` and the scope's
    /// owner must not let those borrows end before the scope's `running` count
    /// returns to zero (see `scope::ScopeState`).
    pub(crate) unsafe fn spawn_unchecked<F, T>(
        self,
        scope: Option<Arc<ScopeState>>,
        f: F,
    ) -> Result<JoinHandle<T>, SpawnError>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        let parent = context::current_header().ok_or_else(SpawnError::not_in_runtime)?;
        let stack_size = self
            .stack_size
            .map(|s| check_stack_size("stack_size", s))
            .transpose()
            .map_err(SpawnError::config)?;
        let params = self.params(&parent.params())?;
        let (context, mut claim, performance_sensitive) = match self.authority.as_deref() {
            None => (parent.own_context().cloned(), None, false),
            Some(asked) => asked.apply(&parent)?,
        };
        let after = self.authority.as_deref().and_then(|a| a.after);
        let mut tally = match self.authority.as_deref().and_then(|a| a.tally.as_ref()) {
            Some(tally) => Some(tally.cell().clone()),
            None => parent.own_tally().cloned(),
        };
        let mut share = match self.authority.as_deref().and_then(|a| a.group_weight) {
            Some(weight) => Some(start_share(weight, parent.own_share())?),
            None => parent.own_share().cloned(),
        };
        let name = self.name;
        let pin = self.core;
        let mut request = Some((f, scope));
        // A strand always has a core (see `context::with_core`).
        let local_result = context::with_core(|local| {
            let (f, scope) = request.take().expect("taken once");
            let mut placement = local.sched.place(pin).map_err(|e| {
                let allowed = format!("0..{} (the runtime's cores)", e.cores);
                SpawnError::config(crate::ConfigError::new("core", e.asked, allowed))
            })?;
            if let Some(cell) = context.as_deref() {
                placement = within_mask(placement, local.rt().cores.len(), cell)?;
            }
            if placement.pinned {
                crate::lease::may_pin(local.rt(), placement.core, &parent)
                    .map_err(SpawnError::lease)?;
            }
            let asked_lease = claim.is_some();
            if performance_sensitive && claim.is_none() {
                claim = crate::lease::claim_free(&local.rt_arc());
            }
            // A lease outside the context's CPU mask: refused when asked
            // for, let go when it was only offered (the claim's drop
            // releases it).
            let leased = claim.as_ref().and_then(crate::lease::Claim::core);
            if let (Some(cell), Some(core)) = (context.as_deref(), leased) {
                if !cell.allows(core) {
                    if asked_lease {
                        return Err(SpawnError::config(crate::ConfigError::new(
                            "lease",
                            core,
                            "a lease on one of the cores of the strand's scheduling context",
                        )));
                    }
                    claim = None;
                }
            }
            let size = stack_size.unwrap_or(local.rt().config.stack_size);
            if !local.admit() {
                return Err(SpawnError::too_many_strands(local.rt().config.max_strands));
            }
            // Counted in last: nothing after this fails before the strand
            // exists (its exit counts it out).
            if let Some(cell) = context.as_deref() {
                if let Err(err) = cell.strand_started() {
                    local.release_permit();
                    return Err(SpawnError::context(err));
                }
            }
            let id = local.next_strand_id();
            let parent = Some(parent.clone());
            let (task, handle) = build(
                local.rt(),
                id,
                placement,
                name.clone(),
                parent,
                size,
                (
                    params,
                    crate::strand::Bound {
                        context: context.clone(),
                        tally: tally.take(),
                        after,
                        share: share.take(),
                    },
                ),
                scope,
                f,
            );
            crate::core::shared::bump(&local.shared().counters.spawned, 1);
            let core = claim
                .take()
                .and_then(|claim| claim.bind(local.rt(), &task.header))
                .unwrap_or(placement.core);
            local.start(task, core);
            Ok(handle)
        });
        crate::api::yield_if_slice_expired();
        local_result.unwrap_or_else(|| Err(SpawnError::not_in_runtime()))
    }
}

/// A placement moved onto the cores a context's CPU mask allows: a strand
/// pinned outside them is refused; one free to move starts on the next
/// allowed core.
fn within_mask(
    placement: Placement,
    cores: usize,
    cell: &crate::budget::ContextCell,
) -> Result<Placement, SpawnError> {
    if cell.allows(placement.core) {
        return Ok(placement);
    }
    let refused = || {
        let allowed: Vec<usize> = (0..cores).filter(|&c| cell.allows(c)).collect();
        SpawnError::config(crate::ConfigError::new(
            "core",
            placement.core,
            format!("{allowed:?} (the cores of the strand's scheduling context)"),
        ))
    };
    if placement.pinned {
        return Err(refused());
    }
    let core =
        braid_core::sched::placement::first_allowed(placement.core, cores, |c| cell.allows(c))
            .ok_or_else(refused)?;
    Ok(Placement { core, ..placement })
}

/// `Builder::spawn_in`: a top-level strand spawned from outside `rt` with
/// `builder`'s settings.
#[cold]
fn spawn_foreign_with<F, T>(
    rt: &Arc<RuntimeShared>,
    builder: Builder,
    f: F,
) -> Result<JoinHandle<T>, SpawnError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    if rt.shutdown.load(Ordering::Relaxed) {
        return Err(SpawnError::shutting_down());
    }
    let stack_size = builder
        .stack_size
        .map(|s| check_stack_size("stack_size", s))
        .transpose()
        .map_err(SpawnError::config)?;
    let params = builder.params(&SchedParams::default())?;
    let asked = builder.authority.as_deref();
    let inside_only = |setting: &'static str| {
        SpawnError::config(crate::ConfigError::new(
            setting,
            "a spawn from outside the runtime",
            "only for strands spawned by a strand (Builder::spawn)",
        ))
    };
    if let Some(asked) = asked {
        if asked.lease.is_some() {
            return Err(inside_only("lease"));
        }
        if asked.performance_sensitive {
            return Err(inside_only("performance_sensitive"));
        }
        if asked.after.is_some() {
            return Err(inside_only("insert_after"));
        }
    }
    let context = match asked.and_then(|a| a.context.as_ref()) {
        Some(handle) => Some(handle.bind(rt.id).map_err(SpawnError::context)?),
        None => None,
    };
    let tally = asked
        .and_then(|a| a.tally.as_ref())
        .map(|t| t.cell().clone());
    let share = match asked.and_then(|a| a.group_weight) {
        Some(weight) => Some(start_share(weight, None)?),
        None => None,
    };
    let mut placement = match builder.core {
        Some(core) if core >= rt.cores.len() => {
            let allowed = format!("0..{} (the runtime's cores)", rt.cores.len());
            return Err(SpawnError::config(crate::ConfigError::new(
                "core", core, allowed,
            )));
        }
        Some(core) => Placement { core, pinned: true },
        None => Placement {
            core: rt.next_foreign_core(),
            pinned: false,
        },
    };
    if let Some(cell) = context.as_deref() {
        placement = within_mask(placement, rt.cores.len(), cell)?;
    }
    // A leased core takes only its group's strands, and this one, without
    // a parent, is in none: asked for, or the first its context allows.
    if rt.cores[placement.core].leased.load(Ordering::Acquire) {
        return Err(SpawnError::lease(crate::lease::LeaseError::CoreLeased {
            core: placement.core,
        }));
    }
    rt.admit_foreign()?;
    if let Some(cell) = context.as_deref() {
        // Counted in last: nothing after this fails before the strand
        // exists (its exit counts it out).
        if let Err(err) = cell.strand_started() {
            rt.return_permits(1);
            return Err(SpawnError::context(err));
        }
    }
    let size = stack_size.unwrap_or(rt.config.stack_size);
    let bound = crate::strand::Bound {
        context,
        tally,
        after: None,
        share,
    };
    Ok(inject_foreign(
        rt,
        placement,
        builder.name,
        None,
        size,
        (params, bound),
        None,
        f,
    ))
}

/// Builds a strand spawned from outside `rt` and sends it to its core.
#[allow(clippy::too_many_arguments)]
fn inject_foreign<F, T>(
    rt: &Arc<RuntimeShared>,
    placement: Placement,
    name: Option<String>,
    parent: Option<Arc<Header>>,
    stack_size: usize,
    params: (SchedParams, crate::strand::Bound),
    scope: Option<Arc<ScopeState>>,
    f: F,
) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    let id =
        braid_core::sched::ids::compose(rt.foreign_ids.fetch_add(1, Ordering::Relaxed) + 1, None);
    let core = placement.core;
    let (task, handle) = build(
        rt, id, placement, name, parent, stack_size, params, scope, f,
    );
    rt.inject(
        core,
        crate::core::Msg::Sched(braid_core::Mail::Spawn(Box::new(task))),
    );
    handle
}

/// Spawns a strand from a thread that is not running one of `rt`'s strands.
pub(crate) fn spawn_foreign<F, T>(
    rt: &Arc<RuntimeShared>,
    name: Option<String>,
    parent: Option<Arc<Header>>,
    f: F,
) -> Result<JoinHandle<T>, SpawnError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    spawn_foreign_sized(rt, name, None, parent, None, f)
}

fn spawn_foreign_sized<F, T>(
    rt: &Arc<RuntimeShared>,
    name: Option<String>,
    stack_size: Option<usize>,
    parent: Option<Arc<Header>>,
    scope: Option<Arc<ScopeState>>,
    f: F,
) -> Result<JoinHandle<T>, SpawnError>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    if rt.shutdown.load(Ordering::Relaxed) {
        return Err(SpawnError::shutting_down());
    }
    rt.admit_foreign()?;
    let size = stack_size.unwrap_or(rt.config.stack_size);
    let placement = Placement {
        core: rt.next_foreign_core(),
        pinned: false,
    };
    let params = (SchedParams::default(), crate::strand::Bound::default());
    Ok(inject_foreign(
        rt, placement, name, parent, size, params, scope, f,
    ))
}

use braid_core::sched::placement::Placement;
use braid_core::{Insert, LatencyClass, SchedParams};
use std::time::Duration;

/// Creates the header, packet and pending body of a new strand. The stack comes
/// later, when the strand first runs (see `strand::Launch`).
#[allow(clippy::too_many_arguments)]
fn build<F, T>(
    rt: &RuntimeShared,
    id: u64,
    placement: Placement,
    name: Option<String>,
    parent: Option<Arc<Header>>,
    stack_size: usize,
    (params, bound): (SchedParams, crate::strand::Bound),
    scope: Option<Arc<ScopeState>>,
    f: F,
) -> (Task, JoinHandle<T>)
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    let header = Arc::new(Header::new(
        id,
        name.map(String::into_boxed_str),
        stack_size,
        placement.pinned,
        rt.id,
        parent,
        placement.core,
        params,
    ));
    header.enter_subtree();
    header.readied(rt.clock_ns.load(Ordering::Relaxed));
    if let Some(tally) = &bound.tally {
        tally.joined(&header);
    }
    let body = Arc::new(StrandBody {
        f: UnsafeCell::new(Some(f)),
        packet: Packet::new(scope),
    });
    let pending: Arc<dyn Launch + '_> = body.clone();
    let packet: Arc<dyn Joinable<T> + '_> = body;
    // SAFETY: only the lifetime bounds of the trait objects change. Unscoped
    // strands are `'static` anyway; a scoped strand's closure and result may
    // borrow from the enclosing `scope` call, which does not return before every
    // scoped packet (and with it the closure and result) is gone, see
    // `scope::ScopeState`.
    let (pending, packet) = unsafe {
        (
            std::mem::transmute::<Arc<dyn Launch + '_>, Arc<dyn Launch + 'static>>(pending),
            std::mem::transmute::<Arc<dyn Joinable<T> + '_>, Arc<dyn Joinable<T> + 'static>>(
                packet,
            ),
        )
    };
    let task = Task::new(
        header.clone(),
        pending,
        rt.config.policy.keeps_entities(),
        bound,
    );
    (task, JoinHandle { header, packet })
}

impl Authorized {
    /// For a strand spawned by `parent`: its context, the lease claimed for
    /// it, and whether it should take a free pool core.
    #[cold]
    #[allow(clippy::type_complexity)]
    fn apply(
        &self,
        parent: &Header,
    ) -> Result<
        (
            Option<Arc<crate::budget::ContextCell>>,
            Option<crate::lease::Claim>,
            bool,
        ),
        SpawnError,
    > {
        let context = match &self.context {
            None => parent.own_context().cloned(),
            Some(handle) => Some(
                handle
                    .bind(parent.runtime_id)
                    .map_err(SpawnError::context)?,
            ),
        };
        let claim = match &self.lease {
            Some(lease) => Some(lease.claim(parent.runtime_id).map_err(SpawnError::lease)?),
            None => None,
        };
        let performance_sensitive = self.performance_sensitive && claim.is_none();
        Ok((context, claim, performance_sensitive))
    }
}

/// A strand's closure and its join packet, in one allocation shared by the task
/// (until the strand starts) and the join handle.
struct StrandBody<F, T> {
    /// Taken once, by the carrier that starts (or fails to start) the strand.
    /// Declared before `packet` so it is dropped before the packet tells its
    /// scope that the strand is gone.
    f: UnsafeCell<Option<F>>,
    packet: Packet<T>,
}

// SAFETY: `f` is touched only by the one carrier that launches the strand, before
// and while it runs the body, and moves between threads only with the task (see
// `Task`'s Send); `packet` is Sync by its own protocol. `F: Send` and `T: Send`.
unsafe impl<F: Send, T: Send> Sync for StrandBody<F, T> {}

impl<F: Send, T: Send> Joinable<T> for StrandBody<F, T> {
    fn packet(&self) -> &Packet<T> {
        &self.packet
    }
}

impl<F, T> StrandBody<F, T> {
    /// Takes the closure out.
    ///
    /// # Safety
    /// Only the carrier that launches the strand may call this.
    unsafe fn take_f(&self) -> Option<F> {
        // SAFETY: the caller is the only thread touching `f`.
        unsafe { (*self.f.get()).take() }
    }
}

/// Gives a strand that never ran its stack and coroutine. When no stack can be
/// had, or the strand was cancelled before it started, its joiner gets the error
/// instead and `false` is returned: the caller then finishes the task.
///
/// Must be called from scheduler code with no reference to the core's local
/// state live (a failed strand's joiner is woken through the usual paths).
pub(crate) fn launch(
    task: &mut Task,
    take_stack: impl FnOnce(usize) -> std::io::Result<StrandStack>,
) -> bool {
    let pending = task
        .pending
        .take()
        .expect("launch of a strand that never ran");
    let header = &task.header;
    if header.doomed.load(Ordering::Relaxed) {
        pending.fail(StrandError::shut_down(strand_label(header)));
        return false;
    }
    if header.is_cancelled() {
        pending.fail(StrandError::cancelled(strand_label(header)));
        return false;
    }
    match take_stack(header.stack_size) {
        Ok(stack) => {
            let (lo, hi) = stack.guard();
            header.guard[0].store(lo, Ordering::Relaxed);
            header.guard[1].store(hi, Ordering::Relaxed);
            task.coroutine = Some(pending.launch(stack));
            true
        }
        Err(err) => {
            let reason = format!(
                "no stack of {} bytes could be mapped ({err})",
                header.stack_size
            );
            pending.fail(StrandError::not_started(reason, strand_label(header)));
            false
        }
    }
}

impl<F: FnOnce() -> T + Send, T: Send> Launch for StrandBody<F, T> {
    fn launch(self: Arc<Self>, stack: StrandStack) -> StrandCoroutine {
        let entry = move |yielder: &StrandYielder, ()| {
            let me = context::current_ptr();
            // SAFETY: the strand runs, so `me` is its live header.
            unsafe {
                (*me).yielder.store(
                    yielder as *const StrandYielder as *mut StrandYielder,
                    Ordering::Relaxed,
                )
            };
            // SAFETY: this is the launched strand itself.
            let f = unsafe { self.take_f() }.expect("a strand's body runs once");
            run_body(f, &self.packet);
        };
        // SAFETY: `with_stack_unchecked` waives the `'static` bound on `entry`,
        // which owns `self` and so may carry a scoped strand's borrows (in `F`
        // and `T`; unscoped strands borrow nothing). `self` keeps the packet
        // alive, and the enclosing `scope` call does not return before that
        // packet is dropped, so the borrows outlive the coroutine; a coroutine
        // leaked unfinished leaks `self` too, and the scope then never returns.
        unsafe { StrandCoroutine::with_stack_unchecked(stack, entry) }
    }

    fn fail(self: Arc<Self>, error: StrandError) {
        // SAFETY: called by the carrier launching the strand, instead of running it.
        drop(unsafe { self.take_f() });
        self.packet.complete(Err(error));
    }
}

/// Runs a strand's closure on the strand and completes its packet.
fn run_body<F: FnOnce() -> T, T>(f: F, packet: &Packet<T>) {
    let me = context::current_ptr();
    // SAFETY: the strand runs, so `me` is its live header.
    let header = unsafe { &*me };
    let result = if header.is_cancelled() {
        Err(StrandError::cancelled(strand_label(header)))
    } else {
        match catch_unwind(AssertUnwindSafe(f)) {
            Ok(value) => Ok(value),
            // Unwound by its runtime's shutdown (see `strand::unwind_doomed`).
            Err(payload) if payload.is::<strand::ShutDownUnwind>() => {
                Err(StrandError::shut_down(strand_label(header)))
            }
            Err(payload) => {
                // A panic ends the strand's subtree: its descendants are
                // cancelled; the joiner gets the payload.
                crate::group::cancel_subtree(header);
                if let Some(rt) = crate::runtime::lookup(header.runtime_id) {
                    rt.panics.fetch_add(1, Ordering::Relaxed);
                }
                Err(StrandError::panicked(payload, strand_label(header)))
            }
        }
    };
    packet.complete(result);
}

/// Spawns a strand running `f` as a child of the calling strand, on the calling
/// strand's core (balancing may move it).
///
/// # Panics
/// Outside a strand of a braid runtime, or possibly when the runtime is already
/// shutting down; use [`Builder::spawn`] to get these as errors. Running out of
/// stacks does not make it panic: stacks are mapped when a strand first runs,
/// and a strand for which none can be had never starts; joining it gives an
/// error for which [`StrandError::is_not_started`] is true.
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    Builder::new()
        .spawn(f)
        .unwrap_or_else(|e| panic!("braid::spawn: {e}"))
}

/// A new share group of weight `weight` inside `parent`'s, if any, for
/// `Builder::group_weight`.
#[cold]
fn start_share(
    weight: u32,
    parent: Option<&Arc<crate::share::ShareCell>>,
) -> Result<Arc<crate::share::ShareCell>, SpawnError> {
    use braid_core::share::{Share, ShareError, MAX_DEPTH};
    match Share::new(weight, parent.cloned()) {
        Ok(share) => Ok(Arc::new(share)),
        Err(ShareError::Weight(w)) => Err(SpawnError::config(crate::ConfigError::new(
            "group_weight",
            w,
            format!(
                "{}..={}",
                braid_core::fair::WEIGHTS.start(),
                braid_core::fair::WEIGHTS.end()
            ),
        ))),
        Err(ShareError::TooDeep) => Err(SpawnError::config(crate::ConfigError::new(
            "group_weight",
            format!("a share group {} deep", MAX_DEPTH + 1),
            format!("share groups nested at most {MAX_DEPTH} deep"),
        ))),
    }
}
