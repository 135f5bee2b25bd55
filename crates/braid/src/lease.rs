//! Exclusive-core leases: a core given to one group.
//!
//! The embedding program declares which cores may be leased
//! ([`RuntimeBuilder::lease_pool`](crate::RuntimeBuilder::lease_pool); one
//! core at least stays shared). A lease is granted from that pool by the
//! runtime's [`Authority`](crate::sched::Authority)
//! ([`Authority::lease`](crate::sched::Authority::lease)), or taken
//! automatically by a strand spawned
//! [`performance_sensitive`](crate::Builder::performance_sensitive) when a
//! pool core is free. A strand spawned with
//! [`Builder::lease`](crate::Builder::lease) starts on the leased core, and
//! it and every strand it spawns (its group) have the core to themselves:
//!
//! - the core takes part in no balancing (braid-core's
//!   `CoreSched::set_exclusive`): nothing is stolen from it or offered to it,
//!   and it sends no load notices;
//! - any other strand found ready there is sent to the shared cores
//!   (`CoreSched::next` evicts it), except strands pinned there before the lease
//!   (a pinned spawn onto a leased core by a strand outside the group is
//!   refused, [`LeaseError::CoreLeased`]); strands started from outside the
//!   runtime skip leased cores.
//!
//! A lease ends ([`LeaseEnd`]) when its lifetime runs out (renewable with
//! [`Lease::renew`]), when it is revoked ([`Lease::revoke`]), when its group
//! has exited, or when it is *terminated* for fairness: every shared core
//! has held a queue of at least [`BACKLOG`] ready strands, with a strand of
//! the group's latency class or a higher one among them, at every monitor
//! tick for [`TERMINATION_AFTER`] — work the leased core was kept from (a
//! queue of batch work does not end a normal group's lease; a custom
//! policy's queue counts whatever it holds; a core counts once it has
//! reported its classes, a tick after the backlog began). Then the core balances like any
//! other again; the group's strands carry on and may spread. The monitor
//! checks leases every tick (1 ms); the decision is braid-core's
//! ([`braid_core::lease::Fairness`]), the group's class its first strand's.

use crate::core::Msg;
use crate::facade::Ordering;
use crate::runtime::RuntimeShared;
use crate::strand::Header;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// How long every shared core must have been backlogged (see
/// [`BACKLOG`]) before a lease is terminated for fairness: 20 ms.
pub const TERMINATION_AFTER: Duration = Duration::from_nanos(braid_core::lease::TERMINATION_AFTER);

/// Ready strands a shared core must hold at every monitor tick to count as
/// backlogged: 2 (see [`braid_core::lease::BACKLOG`]).
pub const BACKLOG: usize = braid_core::lease::BACKLOG;

/// `CoreShared::top_class` before the core reported (or once forgotten).
const NOT_REPORTED: u8 = 0;
/// `CoreShared::top_class` of a core that reported no class it knows (a
/// program's own policy): any waiting work counts.
const ANY_CLASS: u8 = 4;

/// A core's report, with `ready` strands whose highest class is `top`
/// (`None`: not known), as `CoreShared::top_class` holds it: 1 + the
/// class's rank, [`ANY_CLASS`], or — nothing ready (taken by a steal since
/// the look) — [`NOT_REPORTED`], to be asked again.
pub(crate) fn report_code(ready: usize, top: Option<braid_core::LatencyClass>) -> u8 {
    match (ready, top) {
        (0, _) => NOT_REPORTED,
        (_, None) => ANY_CLASS,
        (_, Some(class)) => 1 + class as u8,
    }
}

/// A shared core as a lease's fairness sees it: until it reports its
/// classes it counts as keeping nothing waiting (a report comes within a
/// tick; counting it as any work would let a core too busy to answer end
/// a lease its queue does not contend for).
fn fairness_view(ready: usize, code: u8) -> braid_core::lease::SharedCore {
    use braid_core::LatencyClass::{Batch, Latency, Normal};
    let top = [Batch, Normal, Latency]
        .get(usize::from(code).wrapping_sub(1))
        .copied();
    let ready = if code == NOT_REPORTED { 0 } else { ready };
    braid_core::lease::SharedCore { ready, top }
}

/// Why a lease ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LeaseEnd {
    /// Its lifetime ran out.
    Expired,
    /// [`Lease::revoke`] was called.
    Revoked,
    /// Its group's strands have all exited.
    GroupExited,
    /// Every shared core was backlogged for [`TERMINATION_AFTER`].
    Terminated,
    /// The runtime shut down.
    Shutdown,
    /// Every handle was dropped before a group was started on it.
    Released,
}

impl std::fmt::Display for LeaseEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LeaseEnd::Expired => "its lifetime ran out",
            LeaseEnd::Revoked => "it was revoked",
            LeaseEnd::GroupExited => "its group exited",
            LeaseEnd::Terminated => {
                "it was terminated: every shared core had a queue of waiting strands for 20 ms"
            }
            LeaseEnd::Shutdown => "the runtime shut down",
            LeaseEnd::Released => "every handle was dropped before a group started on it",
        })
    }
}

/// Why a lease could not be had, bound, renewed or respected.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LeaseError {
    /// The runtime declares no lease pool.
    NoPool,
    /// Every core of the pool is leased.
    PoolExhausted {
        /// The pool's cores.
        pool: Vec<usize>,
    },
    /// The lease ended, for this reason.
    Ended(LeaseEnd),
    /// A group was already started on this lease.
    AlreadyBound,
    /// The lifetime asked for was 0.
    ZeroLifetime,
    /// A strand outside the group asked to be pinned to the leased core.
    CoreLeased {
        /// The core.
        core: usize,
    },
    /// The lease belongs to another runtime, or its runtime is gone.
    OtherRuntime,
}

impl std::fmt::Display for LeaseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LeaseError::NoPool => f.write_str(
                "lease: the runtime has no lease pool (RuntimeBuilder::lease_pool)",
            ),
            LeaseError::PoolExhausted { pool } => {
                write!(f, "lease: every core of the pool {pool:?} is leased")
            }
            LeaseError::Ended(why) => write!(f, "lease: it ended: {why}"),
            LeaseError::AlreadyBound => f.write_str("lease: a group already runs on it"),
            LeaseError::ZeroLifetime => f.write_str("lease: a lifetime must be more than 0"),
            LeaseError::CoreLeased { core } => write!(
                f,
                "lease: core {core} is leased to another group; only its strands may be pinned there"
            ),
            LeaseError::OtherRuntime => {
                f.write_str("lease: it belongs to another runtime, or its runtime is gone")
            }
        }
    }
}

impl std::error::Error for LeaseError {}

/// Where a lease stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseStatus {
    /// Granted; no group started on it yet (the core is already exclusive).
    Reserved,
    /// Its group (named by its first strand's id) runs on the core.
    Active {
        /// The id of the strand spawned with the lease.
        group: u64,
    },
    /// It ended.
    Ended(LeaseEnd),
}

pub(crate) struct LeaseCell {
    runtime_id: u64,
    core: usize,
    /// Taken by a performance-sensitive strand, not granted by the authority.
    pub(crate) automatic: bool,
    /// Live `Lease` handles.
    handles: crate::facade::AtomicUsize,
    state: Mutex<State>,
}

struct State {
    expires: Option<Instant>,
    end: Option<LeaseEnd>,
    root: Option<Arc<Header>>,
    /// A spawn is binding its first strand (see `Lease::claim`).
    claimed: bool,
    /// Whether every shared core has kept work of its class waiting, and
    /// since when (fairness).
    fairness: braid_core::lease::Fairness,
}

impl LeaseCell {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A lease on one core (see the module docs). Cloning it gives another
/// handle on the same lease. Dropping the last handle of a lease that no
/// group was started on ends it ([`LeaseEnd::Released`]); once a group
/// runs, the lease lives on without handles until it ends.
pub struct Lease {
    rt: Weak<RuntimeShared>,
    cell: Arc<LeaseCell>,
}

impl Clone for Lease {
    fn clone(&self) -> Lease {
        self.cell.handles.fetch_add(1, Ordering::Relaxed);
        Lease {
            rt: self.rt.clone(),
            cell: self.cell.clone(),
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.cell.handles.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        let unused = {
            let state = self.cell.lock();
            state.end.is_none() && state.root.is_none() && !state.claimed
        };
        if let (true, Some(rt)) = (unused, self.rt.upgrade()) {
            let _ = end(&rt, &self.cell, LeaseEnd::Released);
        }
    }
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("core", &self.cell.core)
            .field("status", &self.status())
            .finish()
    }
}

/// One lease as [`Runtime::leases`](crate::Runtime::leases) lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseInfo {
    /// The leased core.
    pub core: usize,
    /// Where it stands (never `Ended`: ended leases are not listed).
    pub status: LeaseStatus,
    /// Taken by a performance-sensitive strand.
    pub automatic: bool,
}

impl Lease {
    /// The leased core.
    pub fn core(&self) -> usize {
        self.cell.core
    }

    /// Where the lease stands.
    pub fn status(&self) -> LeaseStatus {
        status_of(&self.cell.lock())
    }

    /// Extends the lease to `lifetime` from now.
    pub fn renew(&self, lifetime: Duration) -> Result<(), LeaseError> {
        if lifetime.is_zero() {
            return Err(LeaseError::ZeroLifetime);
        }
        let mut state = self.cell.lock();
        if let Some(end) = state.end {
            return Err(LeaseError::Ended(end));
        }
        state.expires = Some(Instant::now() + lifetime);
        Ok(())
    }

    /// Ends the lease now; the core balances again.
    pub fn revoke(&self) -> Result<(), LeaseError> {
        let rt = self.rt.upgrade().ok_or(LeaseError::OtherRuntime)?;
        end(&rt, &self.cell, LeaseEnd::Revoked).map_err(LeaseError::Ended)
    }

    /// Reserves the lease for a strand about to be spawned into runtime
    /// `runtime_id` as its group's first strand (before the strand exists,
    /// so a refusal leaves nothing behind).
    pub(crate) fn claim(&self, runtime_id: u64) -> Result<Claim, LeaseError> {
        if self.cell.runtime_id != runtime_id {
            return Err(LeaseError::OtherRuntime);
        }
        claim(self)
    }
}

/// A lease reserved for a strand being spawned. Dropped unbound (the spawn
/// failed), it frees the lease for another spawn — or ends it, if it was
/// taken automatically for this one.
pub(crate) struct Claim(Option<Lease>);

impl Drop for Claim {
    fn drop(&mut self) {
        let Some(lease) = self.0.take() else { return };
        lease.cell.lock().claimed = false;
        if lease.cell.automatic {
            let _ = lease.revoke();
        }
    }
}

impl Claim {
    /// The core the claimed lease is on.
    pub(crate) fn core(&self) -> Option<usize> {
        self.0.as_ref().map(|lease| lease.cell.core)
    }

    /// Binds the new strand `root` as the lease's group; returns the core it
    /// must start on (`None`: the lease ended meanwhile).
    pub(crate) fn bind(mut self, rt: &RuntimeShared, root: &Arc<Header>) -> Option<usize> {
        let lease = self.0.take()?;
        let cell = &lease.cell;
        let mut state = cell.lock();
        if state.end.is_some() {
            return None;
        }
        state.root = Some(root.clone());
        // Under the lease's lock: no end can overtake it (see `end`).
        rt.inject(
            cell.core,
            Msg::Lease(Some((Some(root.id), shared_cores(rt)))),
        );
        drop(state);
        Some(cell.core)
    }
}

/// The cores not leased now: where a leased core sends the strands it
/// evicts.
fn shared_cores(rt: &RuntimeShared) -> Vec<usize> {
    (0..rt.cores.len())
        .filter(|&c| !rt.cores[c].leased.load(Ordering::Acquire))
        .collect()
}

fn claim(lease: &Lease) -> Result<Claim, LeaseError> {
    let mut state = lease.cell.lock();
    if let Some(end) = state.end {
        return Err(LeaseError::Ended(end));
    }
    if state.claimed {
        return Err(LeaseError::AlreadyBound);
    }
    state.claimed = true;
    Ok(Claim(Some(lease.clone())))
}

/// Whether a strand descending from `parent` may be pinned to `core`: not
/// if the core is leased to a group it is not in.
pub(crate) fn may_pin(rt: &RuntimeShared, core: usize, parent: &Header) -> Result<(), LeaseError> {
    if !rt.cores[core].leased.load(Ordering::Acquire) {
        return Ok(());
    }
    let leases = rt.leases.lock().unwrap_or_else(|e| e.into_inner());
    let member = leases.iter().filter(|l| l.core == core).any(|l| {
        l.lock()
            .root
            .as_ref()
            .is_some_and(|root| parent.descends_from(root))
    });
    if member {
        Ok(())
    } else {
        Err(LeaseError::CoreLeased { core })
    }
}

fn status_of(state: &State) -> LeaseStatus {
    match (state.end, &state.root) {
        (Some(end), _) => LeaseStatus::Ended(end),
        (None, Some(root)) => LeaseStatus::Active { group: root.id },
        (None, None) => LeaseStatus::Reserved,
    }
}

/// Grants a lease on a free pool core (`lifetime`: until it is revoked or
/// its group exits, if `None`).
pub(crate) fn grant(
    rt: &Arc<RuntimeShared>,
    lifetime: Option<Duration>,
    automatic: bool,
) -> Result<Lease, LeaseError> {
    if lifetime.is_some_and(|l| l.is_zero()) {
        return Err(LeaseError::ZeroLifetime);
    }
    let pool = &rt.config.lease_pool;
    if pool.is_empty() {
        return Err(LeaseError::NoPool);
    }
    let mut leases = rt.leases.lock().unwrap_or_else(|e| e.into_inner());
    let Some(&core) = pool.iter().find(|&&c| !leases.iter().any(|l| l.core == c)) else {
        return Err(LeaseError::PoolExhausted { pool: pool.clone() });
    };
    let cell = Arc::new(LeaseCell {
        runtime_id: rt.id,
        core,
        automatic,
        handles: crate::facade::AtomicUsize::new(1),
        state: Mutex::new(State {
            expires: lifetime.map(|l| Instant::now() + l),
            end: None,
            root: None,
            claimed: false,
            fairness: braid_core::lease::Fairness::default(),
        }),
    });
    leases.push(cell.clone());
    rt.cores[core].leased.store(true, Ordering::Release);
    // Under the list's lock: no end can overtake it (see `end`).
    rt.inject(core, Msg::Lease(Some((None, shared_cores(rt)))));
    drop(leases);
    Ok(Lease {
        rt: Arc::downgrade(rt),
        cell,
    })
}

/// Reserves a free pool core for a performance-sensitive strand about to be
/// spawned, if there is one: its lease ends when the strand's group exits.
pub(crate) fn claim_free(rt: &Arc<RuntimeShared>) -> Option<Claim> {
    let lease = grant(rt, None, true).ok()?;
    claim(&lease).ok()
}

/// Ends `cell`'s lease for `why`; fails with the reason it had already
/// ended for.
fn end(rt: &RuntimeShared, cell: &Arc<LeaseCell>, why: LeaseEnd) -> Result<(), LeaseEnd> {
    // Locks in the one order (the list, then the lease), and the message
    // sent under them: the core gets a lease's messages in the order its
    // state changed (`grant` and `Claim::bind` send theirs under a lock
    // this takes too).
    let mut leases = rt.leases.lock().unwrap_or_else(|e| e.into_inner());
    let mut state = cell.lock();
    if let Some(end) = state.end {
        return Err(end);
    }
    state.end = Some(why);
    state.root = None;
    leases.retain(|l| !Arc::ptr_eq(l, cell));
    rt.cores[cell.core].leased.store(false, Ordering::Release);
    rt.inject(cell.core, Msg::Lease(None));
    Ok(())
}

/// The runtime is going: its leases end.
pub(crate) fn shut_down(rt: &RuntimeShared) {
    let leases = std::mem::take(&mut *rt.leases.lock().unwrap_or_else(|e| e.into_inner()));
    for cell in leases {
        let mut state = cell.lock();
        state.end.get_or_insert(LeaseEnd::Shutdown);
        state.root = None;
    }
}

/// The leases in force, for `Runtime::leases`.
pub(crate) fn list(rt: &RuntimeShared) -> Vec<LeaseInfo> {
    let leases = rt.leases.lock().unwrap_or_else(|e| e.into_inner());
    leases
        .iter()
        .map(|l| LeaseInfo {
            core: l.core,
            status: status_of(&l.lock()),
            automatic: l.automatic,
        })
        .collect()
}

/// The monitor's look at every lease: ends the expired, those whose group
/// exited, and those that keep waiting work from a core.
pub(crate) fn check(rt: &RuntimeShared) {
    let leases: Vec<Arc<LeaseCell>> = {
        let leases = rt.leases.lock().unwrap_or_else(|e| e.into_inner());
        if leases.is_empty() {
            return;
        }
        leases.clone()
    };
    let now = Instant::now();
    // (core, ready strands, reported class code)
    let shared: Vec<(usize, usize, u8)> = rt
        .cores
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.leased.load(Ordering::Acquire))
        .map(|(i, c)| {
            let ready = c.ready_len.load(Ordering::Relaxed);
            (i, ready, c.top_class.load(Ordering::Relaxed))
        })
        .collect();
    // The classes waiting matter only while every shared core is
    // backlogged: then ask for them, for the next look; otherwise forget
    // them (a class reported long ago must not count).
    // (A leased core's too: it may be shared again by the next look. A
    // report asked for before a reset may still land after it: at most two
    // ticks old.)
    let backlogged = shared.iter().all(|&(_, ready, _)| ready >= BACKLOG);
    let mut ask = vec![false; rt.cores.len()];
    for &(i, _, _) in &shared {
        ask[i] = backlogged;
    }
    for (i, core) in rt.cores.iter().enumerate() {
        if ask[i] {
            rt.inject(i, Msg::ReportClass);
        } else {
            core.top_class.store(NOT_REPORTED, Ordering::Relaxed);
        }
    }
    let t = crate::runtime::ns_since(rt.started);
    for cell in leases {
        let why = {
            let mut state = cell.lock();
            let exited = state
                .root
                .as_ref()
                .is_some_and(|r| r.live.load(Ordering::Acquire) == 0);
            let class = state
                .root
                .as_ref()
                .map_or(braid_core::LatencyClass::Batch, |r| r.params().class);
            let terminate = state.fairness.look(
                t,
                class,
                shared
                    .iter()
                    .map(|&(_, ready, code)| fairness_view(ready, code)),
            );
            if exited {
                Some(LeaseEnd::GroupExited)
            } else if state.expires.is_some_and(|e| now >= e) {
                Some(LeaseEnd::Expired)
            } else if terminate {
                Some(LeaseEnd::Terminated)
            } else {
                None
            }
        };
        if let Some(why) = why {
            let _ = end(rt, &cell, why);
        }
    }
}
