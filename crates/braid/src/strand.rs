//! A strand's two halves: the shared [`Header`] and the runnable [`Task`].
//!
//! The header is reference counted and reachable from anywhere (join handles,
//! timers, group handles, wakers on other cores); the task owns the coroutine and
//! its stack and is owned by exactly one place at a time: a ready queue, a core's
//! blocked table, a bus message, or the carrier that is running it.
//!
//! Blocking and waking follow the park word protocol of [`crate::park`].

use crate::error::StrandError;
use crate::facade::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use crate::stack::StrandStack;
use braid_core::{Entity, Insert, LatencyClass, SchedParams, Schedulable};
use corosensei::{Coroutine, Yielder};
use std::sync::{Arc, Mutex};

pub(crate) use crate::park::RUNNING;

/// No blocked-table slot.
pub(crate) const NO_SLOT: u32 = u32::MAX;

/// The coroutine a strand runs on.
pub(crate) type StrandCoroutine = Coroutine<(), (), (), StrandStack>;
/// The handle a strand uses to suspend itself.
pub(crate) type StrandYielder = Yielder<(), ()>;

/// A strand's scheduling state, for diagnostics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StrandState {
    /// Waiting in a ready queue (or in flight to another core).
    Ready,
    /// Running on a core right now.
    Running,
    /// Blocked: parked until a wake, a timer or a cancellation.
    Blocked,
    /// Finished; its result waits for (or went to) its joiner.
    Exited,
}

impl StrandState {
    fn from_u8(v: u8) -> StrandState {
        match v {
            0 => StrandState::Ready,
            1 => StrandState::Running,
            2 => StrandState::Blocked,
            _ => StrandState::Exited,
        }
    }
}

/// Per-strand counters, written only by the core running the strand (so plain
/// relaxed loads and stores suffice) and readable from anywhere.
///
/// 32 bytes, and they must stay so: a 64-bit runnable-wait total (with its
/// ready timestamp, 8 bytes more of header, out of its allocator size
/// class) measured +9.5 % on spawn + join (100 000 strands spawned then
/// joined, medians of 7 interleaved runs, 288.8 → 316.2 ns). The rarer
/// counts are 32 bits (4 billion blocks, moves or preemptions of one
/// strand), and so is the runnable wait, in `READY_UNIT`s: it fills what
/// was padding.
#[derive(Debug, Default)]
pub(crate) struct StrandCounters {
    pub(crate) runtime_ns: AtomicU64,
    pub(crate) switches: AtomicU64,
    pub(crate) blocks: AtomicU32,
    pub(crate) migrations: AtomicU32,
    /// Yields made because the time slice was used up.
    pub(crate) preemptions: AtomicU32,
    /// Time spent ready but not running, in `READY_UNIT`s of the coarse
    /// clock (saturating: 2^32 units are 52 days).
    pub(crate) ready_wait: AtomicU32,
}

/// The unit of the runnable-wait accounting: 2^20 ns, about the coarse
/// clock's 1 ms tick (a shift, not a division, on every switch).
pub(crate) const READY_UNIT_SHIFT: u32 = 20;

impl StrandCounters {
    #[inline]
    pub(crate) fn bump(counter: &AtomicU64, by: u64) {
        // Single writer: a load and a store, not a read-modify-write.
        counter.store(counter.load(Ordering::Relaxed) + by, Ordering::Relaxed);
    }

    /// The strand, which became ready at `ready_since` (see
    /// [`Header::readied`]), is dispatched at `now` (coarse clock, ns):
    /// counts the wait.
    #[inline]
    pub(crate) fn dispatched(&self, ready_since: u32, now: u64) {
        let units = ((now >> READY_UNIT_SHIFT) as u32).wrapping_sub(ready_since);
        let total = self
            .ready_wait
            .load(Ordering::Relaxed)
            .saturating_add(units);
        self.ready_wait.store(total, Ordering::Relaxed);
    }

    /// [`bump`](Self::bump) for a 32-bit count (wrapping).
    #[inline]
    pub(crate) fn bump32(counter: &AtomicU32, by: u32) {
        counter.store(
            counter.load(Ordering::Relaxed).wrapping_add(by),
            Ordering::Relaxed,
        );
    }
}

/// The shared half of a strand. Also its node in the strand tree.
#[derive(Debug)]
pub(crate) struct Header {
    pub(crate) id: u64,
    pub(crate) name: Option<Box<str>>,
    pub(crate) stack_size: usize,
    /// Placed on a core by the spawner: never moved by balancing.
    pub(crate) pinned: bool,
    /// Parked on socket readiness, or woken by it and not yet run: the strand
    /// stays on its core, where its socket is registered (see
    /// `Local::take_for_transfer`).
    pub(crate) io_wait: AtomicBool,
    /// Guard page range `[lo, hi)` of the strand's stack, for the overflow
    /// report; set when the strand first runs and gets its stack.
    pub(crate) guard: [AtomicUsize; 2],
    /// Identity of the runtime the strand belongs to.
    pub(crate) runtime_id: u64,
    /// The spawning strand; `None` for strands started from outside the runtime.
    pub(crate) parent: Option<Arc<Header>>,
    /// Set once by a cancellation of this subtree; never cleared.
    pub(crate) cancelled: AtomicBool,
    /// Set once by its runtime's shutdown, on the core that runs it, before
    /// it runs again (see `core::worker::drain`): the strand counts as
    /// cancelled and unwinds at its next unwind point ([`Header::cancel_point`]).
    pub(crate) doomed: AtomicBool,
    /// Set when a shutdown starts unwinding the strand (`unwind_doomed`):
    /// its destructors' blocking calls then really wait (see
    /// `is_cancelled`), and it is never unwound a second time, wherever it
    /// runs (a panic of its own is seen through its thread's panic count,
    /// since a program may catch it and go on).
    pub(crate) unwinding: AtomicBool,
    /// Set on a top-level strand once its group named a local event: when
    /// the group ends, the signals stored for those names are forgotten
    /// (see `Local::finish`).
    pub(crate) named_local_events: AtomicBool,
    /// Live strands in this subtree, this one included.
    pub(crate) live: AtomicUsize,
    /// Set (SeqCst) before a group waiter checks `live`, so the strand that brings
    /// `live` to zero knows to take the lock and wake it.
    pub(crate) has_group_waiters: AtomicBool,
    pub(crate) group_waiters: Mutex<Vec<crate::sync::waiter::Waiter>>,
    /// The wait word of the strand's current wait (see `sync::waiter`).
    pub(crate) wait: AtomicU64,
    /// Scheduler closures this strand registered, and on which cores (bit per
    /// core, see `event::local::core_bit`): they are dropped when it exits.
    pub(crate) closures: AtomicU32,
    pub(crate) closure_cores: AtomicU64,
    /// The park word (see the module docs).
    pub(crate) park: AtomicU32,
    /// [`StrandState`] as a byte, for diagnostics only.
    pub(crate) state: AtomicU8,
    /// The core whose queues own the task. Written by the owning core before it
    /// publishes the task (release on the bus or on the park word).
    pub(crate) home: AtomicUsize,
    /// Index in the home core's blocked table while blocked. Home core only.
    pub(crate) blocked_slot: AtomicU32,
    /// The strand's yielder, set when it first runs.
    pub(crate) yielder: AtomicPtr<StrandYielder>,
    pub(crate) counters: StrandCounters,
    /// When it last became ready (spawned, woken, or back from a yield), in
    /// `READY_UNIT`s of the coarse clock, wrapping; see
    /// `StrandCounters::dispatched`.
    ready_since: AtomicU32,
    /// What the strand asked of the scheduler (see `params`), packed into
    /// what would otherwise be padding (see `HEADER_BYTES`).
    weight: u32,
    class: LatencyClass,
    /// The slice it asked for, in `SLICE_UNIT`s; 0 for none.
    slice_units: u16,
    /// Where it asked to enter its core's ready strands when spawned or
    /// woken (`SchedParams::insert`; for `Insert::After` the strand it
    /// names is in the extras box, so this stays one byte).
    insert: Insert,
    /// Its place in its core's policy (`braid_core::fair`), for policies
    /// that keep one; it belongs to the strand's one `Task` (see
    /// `Schedulable for Task`). Here rather than in the task, which stays
    /// 64 bytes: tasks move through queues and rings on every switch.
    ///
    /// The scheduling context the strand is bound to, if any (see `budget`),
    /// lives in the same box: set at spawn, never changed. A strand with
    /// neither pays one null pointer here, not 8 bytes more of header — the
    /// context as a header field measured +9 % on spawn + join (header 200 →
    /// 208 bytes; medians of 5 interleaved runs, 288 → 314 ns).
    entity: EntityCell,
}

/// The most a strand header may take: 208 bytes, 224 with its reference
/// counts — one allocator size class. A test holds it there: every byte
/// more is paid by every strand (see `StrandCounters`).
#[cfg(test)]
const HEADER_BYTES: usize = 208;

/// The unit of a strand's slice request in its header: 100 µs (requests are
/// 100 µs ..= 1 s; the runtime's clock ticks every millisecond).
pub(crate) const SLICE_UNIT: u64 = 100_000;

/// A task's entity and context, kept in its header (see `Schedulable for
/// Task`).
struct EntityCell(std::cell::UnsafeCell<Option<Box<Extras>>>);

/// What a strand keeps beside its header when its policy or a scheduling
/// context needs it.
struct Extras {
    entity: Entity,
    /// The context the strand was bound to at spawn.
    context: Option<Arc<crate::budget::ContextCell>>,
    /// The tally the strand counts in (see `stats::Tally`), if any: set at
    /// spawn, never changed.
    tally: Option<Arc<crate::stats::TallyCell>>,
    /// The strand it asked to enter the ready strands behind
    /// (`Insert::After`), if any: set at spawn, never changed.
    after: Option<u64>,
    /// The share group it is in (see `crate::share`), if any: set at
    /// spawn, never changed.
    share: Option<Arc<crate::share::ShareCell>>,
    /// The context it runs on while serving a call (see `endpoint`); set
    /// and cleared only by the strand itself.
    donated: Option<Arc<crate::budget::ContextCell>>,
    /// The donated context `donated` last replaced, kept until the next
    /// change: the run it was dispatched with charges it when it stops.
    replaced: Option<Arc<crate::budget::ContextCell>>,
}

// SAFETY: only the header's one task touches the cell, and that task is held
// by one thread at a time (it moves between threads only through the bus or
// a hand-over, which synchronize); see `Schedulable for Task`.
unsafe impl Sync for EntityCell {}

impl std::fmt::Debug for EntityCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not read: only the task's holder may look inside.
        f.write_str("EntityCell")
    }
}

impl Header {
    /// What the strand asked of the scheduler (its children start with the
    /// same unless they ask otherwise).
    pub(crate) fn params(&self) -> SchedParams {
        SchedParams {
            weight: self.weight,
            class: self.class,
            slice: (self.slice_units != 0).then(|| self.slice_units as u64 * SLICE_UNIT),
            insert: self.insert_hint(),
        }
    }

    /// A new strand's header: ready, not started, in no wait.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub(crate) fn new(
        id: u64,
        name: Option<Box<str>>,
        stack_size: usize,
        pinned: bool,
        runtime_id: u64,
        parent: Option<Arc<Header>>,
        home: usize,
        params: SchedParams,
    ) -> Header {
        Header {
            id,
            name,
            stack_size,
            pinned,
            io_wait: AtomicBool::new(false),
            guard: [AtomicUsize::new(0), AtomicUsize::new(0)],
            runtime_id,
            parent,
            cancelled: AtomicBool::new(false),
            doomed: AtomicBool::new(false),
            unwinding: AtomicBool::new(false),
            named_local_events: AtomicBool::new(false),
            live: AtomicUsize::new(0),
            has_group_waiters: AtomicBool::new(false),
            group_waiters: Mutex::new(Vec::new()),
            wait: AtomicU64::new(0),
            closures: AtomicU32::new(0),
            closure_cores: AtomicU64::new(0),
            park: AtomicU32::new(RUNNING),
            state: AtomicU8::new(StrandState::Ready as u8),
            home: AtomicUsize::new(home),
            blocked_slot: AtomicU32::new(NO_SLOT),
            yielder: AtomicPtr::new(std::ptr::null_mut()),
            counters: StrandCounters::default(),
            ready_since: AtomicU32::new(0),
            weight: params.weight,
            class: params.class,
            slice_units: params
                .slice
                .map_or(0, |ns| (ns / SLICE_UNIT).clamp(1, u16::MAX as u64) as u16),
            insert: params.insert,
            entity: EntityCell(std::cell::UnsafeCell::new(None)),
        }
    }

    /// The scheduling context the strand runs on now: the one donated by
    /// the call it serves, else its own. Read by the strand's task holder
    /// while the strand is not running, or by the strand itself.
    #[inline]
    pub(crate) fn context(&self) -> Option<&Arc<crate::budget::ContextCell>> {
        // SAFETY: the box is written by the task's holder while the strand
        // does not run (`entity`), or by the strand itself while it runs
        // (`donated`, through `set_donated`), and these alternate on the
        // thread that holds the task; `context` never changes after
        // `Task::new`. So this read races with no write.
        unsafe {
            (*self.entity.0.get())
                .as_deref()
                .and_then(|x| x.donated.as_ref().or(x.context.as_ref()))
        }
    }

    /// The context the strand was bound to at spawn (what the strands it
    /// spawns inherit).
    #[inline]
    pub(crate) fn own_context(&self) -> Option<&Arc<crate::budget::ContextCell>> {
        // SAFETY: as for `context`.
        unsafe {
            (*self.entity.0.get())
                .as_deref()
                .and_then(|x| x.context.as_ref())
        }
    }

    /// Where the strand asked to enter its core's ready strands when it is
    /// spawned or woken.
    #[inline]
    pub(crate) fn insert_hint(&self) -> Insert {
        self.insert
    }

    /// The share group the strand is in (what the strands it spawns
    /// inherit).
    #[inline]
    pub(crate) fn own_share(&self) -> Option<&Arc<crate::share::ShareCell>> {
        // SAFETY: as for `context`; `share` never changes after `Task::new`.
        unsafe {
            (*self.entity.0.get())
                .as_deref()
                .and_then(|x| x.share.as_ref())
        }
    }

    /// The strand it asked to enter the ready strands behind
    /// (`Insert::After`).
    #[cold]
    #[inline(never)]
    pub(crate) fn insert_after(&self) -> Option<u64> {
        // SAFETY: as for `context`; `after` never changes after `Task::new`.
        unsafe { (*self.entity.0.get()).as_deref().and_then(|x| x.after) }
    }

    /// The tally the strand counts in (what the strands it spawns inherit).
    #[inline]
    pub(crate) fn own_tally(&self) -> Option<&Arc<crate::stats::TallyCell>> {
        // SAFETY: as for `context`; `tally` never changes after `Task::new`.
        unsafe {
            (*self.entity.0.get())
                .as_deref()
                .and_then(|x| x.tally.as_ref())
        }
    }

    /// Makes the calling strand — this header's — run on `donated` (or its
    /// own context again, for `None`); returns whether that changed it.
    ///
    /// # Safety
    /// Only the strand itself may call it, while it runs (see `context`),
    /// and after a change it must suspend before the next: the context
    /// replaced is kept alive only until then (the carrier charges the run
    /// to it by pointer, see `core::worker::run_task`).
    pub(crate) unsafe fn set_donated(
        &self,
        donated: Option<Arc<crate::budget::ContextCell>>,
    ) -> bool {
        // SAFETY: the caller is the running strand: its holder touches the
        // box only once it stops (see `context`).
        let cell = unsafe { &mut *self.entity.0.get() };
        if donated.is_none() && cell.is_none() {
            return false;
        }
        let params = self.params();
        let extras = cell.get_or_insert_with(|| Box::new(Extras::new(params, Bound::default())));
        let same = match (&extras.donated, &donated) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        if !same {
            extras.replaced = std::mem::replace(&mut extras.donated, donated);
        }
        !same
    }

    pub(crate) fn state(&self) -> StrandState {
        // Acquire pairs with the Release store of `Exited` in `Local::finish`.
        StrandState::from_u8(self.state.load(Ordering::Acquire))
    }

    /// The strand became ready at `now` (coarse clock, ns): a wait for its
    /// core starts.
    #[inline]
    pub(crate) fn readied(&self, now: u64) {
        self.ready_since
            .store((now >> READY_UNIT_SHIFT) as u32, Ordering::Relaxed);
    }

    /// Moves when it last became ready `units` (of 2^20 ns) later: its
    /// run's start moved past time its carrier was held (see
    /// `core::worker::stop_bound`).
    pub(crate) fn ready_later(&self, units: u32) {
        let since = self.ready_since.load(Ordering::Relaxed);
        self.ready_since
            .store(since.wrapping_add(units), Ordering::Relaxed);
    }

    /// When it last became ready, for `StrandCounters::dispatched`.
    #[inline]
    pub(crate) fn ready_since(&self) -> u32 {
        self.ready_since.load(Ordering::Relaxed)
    }

    #[inline]
    pub(crate) fn set_state(&self, state: StrandState) {
        self.state.store(state as u8, Ordering::Relaxed);
    }

    /// Whether this strand or any ancestor was cancelled, or its runtime is
    /// shutting it down.
    pub(crate) fn is_cancelled(&self) -> bool {
        // Relaxed: set on the thread that runs the strand next, before it
        // does (see `doomed`). Not while it unwinds: its destructors'
        // blocking calls wait (a park is a yield while the core drains, and
        // the shutdown's deadline bounds them), so that `join().unwrap()`
        // in a Drop does not panic during the unwind, which would abort.
        if self.doomed.load(Ordering::Relaxed) && !self.is_unwinding() {
            return true;
        }
        let mut node = Some(self);
        while let Some(h) = node {
            // Acquire pairs with the Release in `cancel`, so whoever sees the flag
            // also sees what the canceller wrote before it.
            if h.cancelled.load(Ordering::Acquire) {
                return true;
            }
            node = h.parent.as_deref();
        }
        false
    }

    /// Whether the strand (the caller) is unwinding: from a shutdown, or a
    /// panic on its thread.
    fn is_unwinding(&self) -> bool {
        self.unwinding.load(Ordering::Relaxed) || std::thread::panicking()
    }

    /// [`is_cancelled`](Self::is_cancelled) where the strand, which must be
    /// the caller, holds no wait registration and no runtime lock (the entry
    /// of a blocking call, or after its wait was withdrawn): a strand its
    /// runtime's shutdown doomed unwinds from here instead (see
    /// [`unwind_doomed`]).
    #[inline]
    pub(crate) fn cancel_point(&self) -> bool {
        if self.doomed.load(Ordering::Relaxed) {
            unwind_doomed(self);
        }
        self.is_cancelled()
    }

    /// The id of the strand at the top of this strand's tree (a strand started
    /// from outside the runtime): names its top-level group.
    pub(crate) fn root_id(&self) -> u64 {
        self.root().id
    }

    /// The strand at the top of this strand's tree.
    pub(crate) fn root(&self) -> &Header {
        let mut node = self;
        while let Some(parent) = node.parent.as_deref() {
            node = parent;
        }
        node
    }

    /// Whether `ancestor` is this strand or one of its ancestors.
    pub(crate) fn descends_from(&self, ancestor: &Header) -> bool {
        let mut node = Some(self);
        while let Some(h) = node {
            if std::ptr::eq(h, ancestor) {
                return true;
            }
            node = h.parent.as_deref();
        }
        false
    }

    /// Counts a new live strand in this subtree and every enclosing one.
    pub(crate) fn enter_subtree(self: &Arc<Header>) {
        let mut node = Some(&**self);
        while let Some(h) = node {
            h.live.fetch_add(1, Ordering::Relaxed);
            node = h.parent.as_deref();
        }
    }

    /// Uncounts an exited strand from this subtree and every enclosing one, and
    /// collects the group waiters of each of those subtrees, which re-check their
    /// own condition when woken.
    /// Returns whether this ended a top-level group that named local events.
    pub(crate) fn leave_subtree(&self, woken: &mut Vec<crate::sync::waiter::Waiter>) -> bool {
        let mut node = Some(self);
        let mut ended_named = false;
        while let Some(h) = node {
            // SeqCst pairs with the SeqCst store of `has_group_waiters` in
            // `Group::wait`: either the waiter sees our decrement, or we see its flag.
            let was = h.live.fetch_sub(1, Ordering::SeqCst);
            if h.parent.is_none() && was == 1 {
                // Relaxed: whoever set the flag was a live member, which
                // stored it before its own exit's decrement of this count;
                // the last decrement reads that chain of RMWs (SeqCst), so
                // the flag is seen.
                ended_named = h.named_local_events.load(Ordering::Relaxed);
            }
            if h.has_group_waiters.load(Ordering::SeqCst) {
                let mut waiters = h.group_waiters.lock().unwrap_or_else(|e| e.into_inner());
                h.has_group_waiters.store(false, Ordering::SeqCst);
                woken.append(&mut waiters);
            }
            node = h.parent.as_deref();
        }
        ended_named
    }
}

/// Makes a parked strand ready (or leaves a token if it is running). Callable from
/// any thread; see the module docs for the protocol.
pub(crate) fn unpark(header: &Arc<Header>) {
    if crate::park::notify(&header.park) {
        crate::core::schedule_wake(header.clone());
    }
}

/// A strand that has not run yet: its body, waiting for a stack.
///
/// Stacks are taken when a strand first runs, not when it is spawned, so a burst
/// of spawns holds no stacks while it waits, and a strand that starts after
/// another exits reuses that one's stack while it is still in the cache.
pub(crate) trait Launch: Send + Sync {
    /// Builds the strand's coroutine on `stack`.
    fn launch(self: Arc<Self>, stack: StrandStack) -> StrandCoroutine;
    /// The strand cannot start (no stack could be had): completes its join with
    /// `error` instead, without running the body.
    fn fail(self: Arc<Self>, error: StrandError);
}

/// The runnable half of a strand.
pub(crate) struct Task {
    /// `Some` from the first run until `finish` takes the stack back.
    pub(crate) coroutine: Option<StrandCoroutine>,
    /// `Some` until the first run.
    pub(crate) pending: Option<Arc<dyn Launch>>,
    pub(crate) header: Arc<Header>,
}

impl Task {
    /// A task for `header` that starts with `pending`; it gets an entity if
    /// its runtime's policy keeps one (`fair`), and is bound to what
    /// `Bound` names.
    #[inline(always)]
    pub(crate) fn new(
        header: Arc<Header>,
        pending: Arc<dyn Launch>,
        fair: bool,
        bound: Bound,
    ) -> Task {
        if fair || !bound.is_empty() {
            let extras = Box::new(Extras::new(header.params(), bound));
            // SAFETY: the header is new and this is its one task: nothing
            // else can reach the cell (see `Schedulable for Task`).
            unsafe { *header.entity.0.get() = Some(extras) };
        }
        Task {
            coroutine: None,
            pending: Some(pending),
            header,
        }
    }
}

impl Extras {
    fn new(params: SchedParams, bound: Bound) -> Extras {
        let Bound {
            context,
            tally,
            after,
            share,
        } = bound;
        Extras {
            entity: Entity::new(params),
            context,
            tally,
            after,
            share,
            donated: None,
            replaced: None,
        }
    }
}

/// What a new strand is bound to: its scheduling context, its tally, the
/// strand it asked to be inserted after (`Insert::After`) and its share
/// group.
#[derive(Default)]
pub(crate) struct Bound {
    pub(crate) context: Option<Arc<crate::budget::ContextCell>>,
    pub(crate) tally: Option<Arc<crate::stats::TallyCell>>,
    pub(crate) after: Option<u64>,
    pub(crate) share: Option<Arc<crate::share::ShareCell>>,
}

impl Bound {
    /// Bound to nothing.
    #[inline]
    fn is_empty(&self) -> bool {
        self.context.is_none()
            && self.tally.is_none()
            && self.after.is_none()
            && self.share.is_none()
    }
}

/// What a policy without per-strand state is shown (none of braid's reads
/// it: round robin keeps no entity).
static NO_ENTITY: Entity = Entity::UNPLACED;

// The entity lives in the header but belongs to the task: there is exactly
// one `Task` per header (made with it in `spawn::build`, never cloned), and
// nothing else reads or writes `Header::entity`. So a borrow of the task is
// a borrow of its entity, and the task's holder — one core at a time — is
// the only one touching it.
impl Schedulable for Task {
    #[inline]
    fn entity(&self) -> &Entity {
        // SAFETY: see above: the entity is reached only through its one
        // task, and `&self` borrows that task.
        unsafe {
            (*self.header.entity.0.get())
                .as_deref()
                .map_or(&NO_ENTITY, |x| &x.entity)
        }
    }
    #[inline]
    fn entity_mut(&mut self) -> &mut Entity {
        let header = &*self.header;
        // SAFETY: as above, and `&mut self` borrows the one task exclusively.
        let cell = unsafe { &mut *header.entity.0.get() };
        &mut cell
            .get_or_insert_with(|| Box::new(Extras::new(header.params(), Bound::default())))
            .entity
    }
    #[inline]
    fn strand_id(&self) -> Option<u64> {
        Some(self.header.id)
    }
    fn insert_after(&self) -> Option<u64> {
        self.header.insert_after()
    }
    fn params(&self) -> SchedParams {
        self.header.params()
    }
    #[inline]
    fn weight_now(&self) -> Option<u32> {
        let share = self.header.own_share()?;
        Some(share.weight_of(self.header.weight))
    }
    #[inline]
    fn entered_set(&self) {
        if let Some(share) = self.header.own_share() {
            share.enter(self.header.weight);
        }
    }
    #[inline]
    fn left_set(&self) {
        if let Some(share) = self.header.own_share() {
            share.leave(self.header.weight);
        }
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        if let Some(pending) = self.pending.take() {
            // Never started: leaked like an unfinished strand (below), because
            // dropping its closure could run user code at teardown.
            std::mem::forget(pending);
        }
        if let Some(coroutine) = self.coroutine.take() {
            if coroutine.done() {
                drop(coroutine);
            } else {
                // Unwinding a strand from outside its scheduler (at teardown) would
                // run its destructors where they cannot block or reach a core, so
                // an unfinished strand is leaked instead, stack and all.
                std::mem::forget(coroutine);
            }
        }
    }
}

// SAFETY: a task is run by one carrier thread at a time and moves between threads
// only through the bus or a ready queue handover, both of which synchronize. The
// strand's closure was required to be `Send`. What the strand keeps on its own
// stack across a blocking call travels with it; the public docs tell users not to
// hold thread-bound values (thread-local references, `!Send` guards) across
// blocking calls, as with every M:N runtime that migrates stackful tasks.
unsafe impl Send for Task {}

impl std::fmt::Debug for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Task").field("id", &self.header.id).finish()
    }
}

/// The payload a doomed strand unwinds with: its root (`spawn::run_body`)
/// catches it and reports the strand shut down. Thrown with
/// `resume_unwind`, so the panic hook does not run.
pub(crate) struct ShutDownUnwind;

/// Unwinds the calling strand `me`, which its runtime's shutdown doomed —
/// unless it is unwinding already (a destructor's blocking call: a second
/// unwind would abort the process); the call then goes on as a wait.
#[cold]
#[inline(never)]
pub(crate) fn unwind_doomed(me: &Header) {
    if !me.is_unwinding() {
        me.unwinding.store(true, Ordering::Relaxed);
        std::panic::resume_unwind(Box::new(ShutDownUnwind));
    }
}

/// Runtimes of this process between the start of their shutdown and the end
/// of its wait (`runtime::begin_shutdown` .. `finish_shutdown`): while it is
/// 0, [`unwind_if_doomed`] costs one load of a line nobody writes, not a
/// thread-local read (it sits on the path of every channel and lock
/// operation that may block). A plain std atomic: a static, outside the
/// loom models.
pub(crate) static SHUTTING_DOWN: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(0);

/// An unwind point of the calling strand, if there is one (see
/// [`Header::cancel_point`]).
#[inline]
pub(crate) fn unwind_if_doomed() {
    // Relaxed: a strand is doomed by a carrier that got the shutdown's
    // message, sent after the count went up (the bus orders the two).
    if SHUTTING_DOWN.load(std::sync::atomic::Ordering::Relaxed) == 0 {
        return;
    }
    let h = crate::context::current_ptr();
    // SAFETY: a non-null current header belongs to the running strand.
    if !h.is_null() && unsafe { (*h).doomed.load(Ordering::Relaxed) } {
        // SAFETY: as above.
        unwind_doomed(unsafe { &*h });
    }
}

/// Blocks the calling strand until it is unparked (possibly spuriously), or, on a
/// thread outside the runtime, parks the thread. Callers re-check their condition.
pub(crate) fn park_current() {
    let h = crate::context::current_ptr();
    if h.is_null() {
        crate::event::forbid_blocking_in_closure("park or join");
        std::thread::park();
        return;
    }
    // SAFETY: `h` is the running strand's header, kept alive by its task.
    let header = unsafe { &*h };
    if crate::park::begin_park(&header.park) {
        StrandCounters::bump32(&header.counters.blocks, 1);
        crate::context::suspend(crate::context::Suspend::Park);
    }
    crate::park::end_park(&header.park);
}

#[cfg(test)]
mod layout {
    #[test]
    fn the_header_stays_in_its_size_class() {
        let bytes = std::mem::size_of::<super::Header>();
        assert!(bytes <= super::HEADER_BYTES, "Header is {bytes} bytes");
    }
}
