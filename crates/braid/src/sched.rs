//! Choosing each core's scheduling policy and balancer.
//!
//! Every core runs braid-core's per-core scheduler (`braid_core::CoreSched`,
//! the same code the simulator runs); what it orders its ready strands by and
//! how it trades work with other cores are the [`Policy`] and the
//! [`Balancer`] the program picks with
//! [`RuntimeBuilder::policy`](crate::RuntimeBuilder::policy) and
//! [`RuntimeBuilder::balancer`](crate::RuntimeBuilder::balancer): one of
//! braid's by name ([`PolicyKind`], [`BalancerKind`]), or the program's own.
//!
//! A program's own policy orders [`StrandRef`]s — small copyable handles —
//! while the runtime keeps the strands themselves: a policy cannot lose,
//! duplicate or move a strand, only choose among the ones it was given. A
//! handle it returns that is not one of this core's ready strands (stale,
//! made up, from another runtime) is ignored. A policy that panics is
//! dropped: the core warns once and runs its strands in arrival order from
//! then on. Policy code runs inside the scheduler, on the core's carrier
//! thread: it must be quick and must not block; calls into the runtime from
//! it (spawning, waking, cancelling) take the path a foreign thread takes.
//!
//! ```
//! use braid::sched::{Insert, Nanos, Policy, PolicyChoice, StrandRef};
//! use std::collections::VecDeque;
//!
//! /// Last in, first out, 1 ms slices.
//! struct Lifo(VecDeque<StrandRef>);
//!
//! impl Policy<StrandRef> for Lifo {
//!     fn enqueue(&mut self, strand: StrandRef, _: Insert, _: Nanos) {
//!         self.0.push_front(strand);
//!     }
//!     fn pick_next(&mut self, _: Nanos) -> Option<StrandRef> {
//!         self.0.pop_front()
//!     }
//!     fn slice(&self, _: &StrandRef) -> Nanos {
//!         1_000_000
//!     }
//!     fn len(&self) -> usize {
//!         self.0.len()
//!     }
//!     fn take_for_transfer(&mut self, count: usize) -> Vec<StrandRef> {
//!         let keep = self.0.len().saturating_sub(count);
//!         self.0.drain(keep..).collect()
//!     }
//! }
//!
//! let rt = braid::Runtime::builder()
//!     .cores(1)
//!     .policy(PolicyChoice::custom(|_core| Box::new(Lifo(VecDeque::new()))))
//!     .build()
//!     .unwrap();
//! assert_eq!(rt.block_on(|| braid::spawn(|| 6 * 7).join().unwrap()), 42);
//! ```

pub use crate::budget::{
    Authority, ContextError, ContextHandle, ContextStats, Overrun, SchedContext, CATCH_UP, GRACE,
};
pub use crate::endpoint::{CallError, Endpoint, Reply};
pub use crate::lease::{
    Lease, LeaseEnd, LeaseError, LeaseInfo, LeaseStatus, BACKLOG, TERMINATION_AFTER,
};
pub use braid_core::BudgetError;

use std::fmt;
use std::sync::Arc;

use crate::facade::{AtomicBool, Ordering};
use crate::strand::Task;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};

pub use braid_core::fair::{LatencyClass, SchedParams, UNIT_WEIGHT, WEIGHTS};
pub use braid_core::{
    Balancer, BalancerKind, CoreId, Grant, Insert, Nanos, Policy, PolicyKind, Rng, UnknownName,
};

type PolicyFactory = dyn Fn(CoreId) -> Box<dyn Policy<StrandRef> + Send> + Send + Sync;
type BalancerFactory = dyn Fn(CoreId, usize) -> Box<dyn Balancer + Send> + Send + Sync;

/// The local scheduling policy of every core: one of braid's (by
/// [`PolicyKind`], which converts into this), or the program's own (a boxed
/// [`Policy`] per core, which costs an indirect call per scheduling step).
#[derive(Clone, Default)]
pub struct PolicyChoice(Choice<PolicyKind, PolicyFactory>);

/// The balancer of every core: one of braid's (by [`BalancerKind`]), or the
/// program's own.
#[derive(Clone, Default)]
pub struct BalancerChoice(Choice<BalancerKind, BalancerFactory>);

enum Choice<K, F: ?Sized> {
    Builtin(K),
    Custom(Arc<F>),
}

impl<K: Copy, F: ?Sized> Clone for Choice<K, F> {
    fn clone(&self) -> Self {
        match self {
            Choice::Builtin(kind) => Choice::Builtin(*kind),
            Choice::Custom(make) => Choice::Custom(make.clone()),
        }
    }
}

impl<K: Default, F: ?Sized> Default for Choice<K, F> {
    fn default() -> Self {
        Choice::Builtin(K::default())
    }
}

impl<K: fmt::Display, F: ?Sized> fmt::Debug for Choice<K, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Choice::Builtin(kind) => write!(f, "{kind}"),
            Choice::Custom(_) => f.write_str("custom"),
        }
    }
}

impl PolicyChoice {
    /// The program's own policy: `make(core)` builds core `core`'s. Its
    /// slices are its own (the runtime's `time_slice` is not used), measured
    /// on the runtime's coarse clock (1 ms ticks); a strand that makes no
    /// runtime call is still handed off after the hog threshold.
    pub fn custom(
        make: impl Fn(CoreId) -> Box<dyn Policy<StrandRef> + Send> + Send + Sync + 'static,
    ) -> PolicyChoice {
        PolicyChoice(Choice::Custom(Arc::new(make)))
    }
}

impl PolicyChoice {
    /// Whether the policy keeps per-strand state (braid's fair ones do): a
    /// task then carries an entity from its spawn.
    pub(crate) fn keeps_entities(&self) -> bool {
        matches!(self.0, Choice::Builtin(kind) if kind != PolicyKind::RoundRobin)
    }
}

impl From<PolicyKind> for PolicyChoice {
    fn from(kind: PolicyKind) -> PolicyChoice {
        PolicyChoice(Choice::Builtin(kind))
    }
}

impl fmt::Debug for PolicyChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl BalancerChoice {
    /// The program's own balancer: `make(core, cores)` builds core `core`'s.
    pub fn custom(
        make: impl Fn(CoreId, usize) -> Box<dyn Balancer + Send> + Send + Sync + 'static,
    ) -> BalancerChoice {
        BalancerChoice(Choice::Custom(Arc::new(make)))
    }
}

impl From<BalancerKind> for BalancerChoice {
    fn from(kind: BalancerKind) -> BalancerChoice {
        BalancerChoice(Choice::Builtin(kind))
    }
}

impl fmt::Debug for BalancerChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Core `core`'s policy and balancer, of `cores`.
pub(crate) fn build(
    policy: &PolicyChoice,
    balancer: &BalancerChoice,
    slice: Nanos,
    core: CoreId,
    cores: usize,
) -> (braid_core::AnyPolicy<Task>, braid_core::AnyBalancer) {
    let policy = match &policy.0 {
        Choice::Builtin(kind) => kind.build(slice),
        Choice::Custom(make) => {
            braid_core::AnyPolicy::Custom(Box::new(ByHandle::new(make(core), slice)))
        }
    };
    let balancer = match &balancer.0 {
        Choice::Builtin(kind) => kind.build(core, cores),
        Choice::Custom(make) => braid_core::AnyBalancer::Custom(make(core, cores)),
    };
    (policy, balancer)
}

/// A ready strand as a program's own [`Policy`] sees it: a handle, cheap to
/// copy, that names one ready strand of the core while it is ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StrandRef {
    index: u32,
    generation: u32,
    id: u64,
    pinned: bool,
}

impl StrandRef {
    /// The strand's id (as [`Strand::id`](crate::Strand::id) gives it).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Whether the strand must stay on its core (it was spawned onto a
    /// chosen core); the runtime keeps it there even if `take_for_transfer`
    /// returns it.
    pub fn is_pinned(&self) -> bool {
        self.pinned
    }
}

/// One slot of [`ByHandle`]'s table: the strand it holds and the generation
/// its handles carry.
struct Entry {
    generation: u32,
    task: Option<Task>,
}

/// A program's policy over the runtime's strands: the strands stay in this
/// table, the policy orders handles to them; its calls are caught if they
/// panic, after which the core runs its ready strands first in, first out.
struct ByHandle {
    policy: Option<Box<dyn Policy<StrandRef> + Send>>,
    entries: Vec<Entry>,
    free: Vec<u32>,
    ready: usize,
    /// After a panic: every ready strand, in arrival order.
    fallback: VecDeque<StrandRef>,
    /// The slice after a panic (the runtime's `time_slice`).
    slice: Nanos,
}

impl ByHandle {
    fn new(policy: Box<dyn Policy<StrandRef> + Send>, slice: Nanos) -> ByHandle {
        ByHandle {
            policy: Some(policy),
            entries: Vec::new(),
            free: Vec::new(),
            ready: 0,
            fallback: VecDeque::new(),
            slice,
        }
    }

    fn file(&mut self, task: Task) -> StrandRef {
        let (id, pinned) = (task.header.id, task.header.pinned);
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                self.entries.push(Entry {
                    generation: 0,
                    task: None,
                });
                (self.entries.len() - 1) as u32
            }
        };
        let entry = &mut self.entries[index as usize];
        entry.task = Some(task);
        self.ready += 1;
        StrandRef {
            index,
            generation: entry.generation,
            id,
            pinned,
        }
    }

    /// Takes the strand `handle` names, if it is still one of ours.
    fn take(&mut self, handle: StrandRef) -> Option<Task> {
        let entry = self.entries.get_mut(handle.index as usize)?;
        if entry.generation != handle.generation {
            return None;
        }
        let task = entry.task.take()?;
        entry.generation = entry.generation.wrapping_add(1);
        self.free.push(handle.index);
        self.ready -= 1;
        Some(task)
    }

    /// Runs `f` on the program's policy with the carrier marked as deciding
    /// (so runtime calls from it take the foreign path). A panic drops the
    /// policy; every ready strand then goes to the fallback queue.
    fn call<R>(&mut self, f: impl FnOnce(&mut dyn Policy<StrandRef>) -> R) -> Option<R> {
        let policy = self.policy.as_mut()?;
        let result =
            crate::context::deciding(|| catch_unwind(AssertUnwindSafe(|| f(&mut **policy))));
        match result {
            Ok(r) => Some(r),
            Err(_) => {
                self.policy = None;
                static WARNED: AtomicBool = AtomicBool::new(false);
                if !WARNED.swap(true, Ordering::Relaxed) {
                    eprintln!(
                        "braid: a scheduling policy panicked; its core runs its strands \
                         first in, first out from now on"
                    );
                }
                self.fallback = (0..self.entries.len())
                    .filter_map(|index| self.handle_at(index))
                    .collect();
                None
            }
        }
    }
}

impl ByHandle {
    /// Files `task` and hands its handle to the policy with `give`.
    fn admit(&mut self, task: Task, give: impl FnOnce(&mut dyn Policy<StrandRef>, StrandRef)) {
        let handle = self.file(task);
        if self.call(|p| give(p, handle)).is_none() {
            // Filed, and either the policy failed just now (the fallback
            // holds every filed strand, this one included) or earlier.
            if !self.fallback.contains(&handle) {
                self.fallback.push_back(handle);
            }
        }
    }
}

impl Policy<Task> for ByHandle {
    fn enqueue(&mut self, task: Task, hint: Insert, now: Nanos) {
        self.admit(task, |p, handle| p.enqueue(handle, hint, now));
    }

    fn released(&mut self, task: Task, now: Nanos) {
        self.admit(task, |p, handle| p.released(handle, now));
    }

    fn pick_next(&mut self, now: Nanos) -> Option<Task> {
        if self.ready == 0 {
            return None;
        }
        let handle = match self.call(|p| p.pick_next(now)) {
            Some(handle) => handle,
            None => {
                // The policy failed: the fallback holds every ready strand.
                let handle = self.fallback.pop_front()?;
                return self.take(handle);
            }
        };
        if let Some(task) = handle.and_then(|h| self.take(h)) {
            return Some(task);
        }
        // Nothing, or not a ready strand of ours, though strands are ready:
        // the policy lost some. Run them in slot order rather than never.
        let handle = self.first_filed()?;
        self.take(handle)
    }

    fn slice(&self, task: &Task) -> Nanos {
        let Some(policy) = self.policy.as_ref() else {
            return self.slice;
        };
        let handle = running(task);
        crate::context::deciding(|| catch_unwind(AssertUnwindSafe(|| policy.slice(&handle))))
            .unwrap_or(self.slice)
    }

    fn charge(&mut self, task: &mut Task, ran: Nanos) {
        let mut handle = running(task);
        self.call(|p| p.charge(&mut handle, ran));
    }

    fn fine_clock(&self) -> bool {
        self.policy.as_ref().is_some_and(|policy| {
            crate::context::deciding(|| catch_unwind(AssertUnwindSafe(|| policy.fine_clock())))
                .unwrap_or(false)
        })
    }

    fn stopped(&mut self, task: &mut Task) {
        let mut handle = running(task);
        self.call(|p| p.stopped(&mut handle));
    }

    fn len(&self) -> usize {
        self.ready
    }

    fn take_for_transfer(&mut self, count: usize) -> Vec<Task> {
        let handles = match self.call(|p| p.take_for_transfer(count)) {
            Some(handles) => handles,
            None => {
                let keep = self.fallback.len().saturating_sub(count);
                self.fallback.drain(keep..).collect()
            }
        };
        handles
            .into_iter()
            .take(count)
            .filter_map(|h| self.take(h))
            .collect()
    }
}

/// A handle for a strand that is not filed (it is running): the policy can
/// ask about it, but not take it anywhere.
fn running(task: &Task) -> StrandRef {
    StrandRef {
        index: u32::MAX,
        generation: 0,
        id: task.header.id,
        pinned: task.header.pinned,
    }
}

impl ByHandle {
    /// The handle of the strand filed at `index`, if one is.
    fn handle_at(&self, index: usize) -> Option<StrandRef> {
        let entry = &self.entries[index];
        entry.task.as_ref().map(|t| StrandRef {
            index: index as u32,
            generation: entry.generation,
            id: t.header.id,
            pinned: t.header.pinned,
        })
    }

    /// The filed strand with the lowest slot, when the policy forgot them.
    fn first_filed(&self) -> Option<StrandRef> {
        (0..self.entries.len()).find_map(|index| self.handle_at(index))
    }
}
