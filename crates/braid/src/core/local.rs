//! A core's own state. Only the carrier that owns the core touches it, so
//! nothing here is atomic or locked (the counters it publishes are
//! single-writer stores).
//!
//! Every scheduling decision is made by the core's [`Sched`], braid-core's pure
//! per-core scheduler (the simulator runs the same one): what runs next, what
//! is given to other cores and what stays, how mail is answered, the idle
//! plan, timers, ids. `Local` applies its decisions: it sends the scheduler's
//! outbox over the real bus (waking receivers that sleep), keeps the strand
//! headers' atomics (state, home core, blocked slot) in step, and publishes the
//! counters `Stats` reads.

use super::mail::Msg;
use super::shared::{bump, CoreShared};
use crate::event::key::{EventKey, Payload};
use crate::event::local::{ClosureEntry, ClosureSet, EventWaiter};
use crate::facade::Ordering;
use crate::park;
use crate::runtime::RuntimeShared;
use crate::stack::StackPool;
use crate::strand::{Header, StrandState, Task, NO_SLOT};
use crate::sync::waiter::Waiter;
use crate::sync::waiter::Waker;
use braid_bus::{Endpoint, Notify, Origin};
use braid_core::event::{Events, Outbox};
use braid_core::sched::{Outcome, SchedConfig, Slot, TimerId};
use braid_core::{
    AnyBalancer, AnyPolicy, CoreId, CoreSched, Insert, Mail, Nanos, Received, TaskHandle, Ticket,
};
use std::sync::Arc;
use std::time::Instant;

/// The scheduler of one core: braid-core's state machine over this runtime's
/// tasks, woken by strand header, with the policy and balancer the program
/// chose (see `sched`): braid's own by value, so their calls inline behind
/// one branch on the variant, or the program's behind a box.
pub(crate) type Sched = CoreSched<Task, Arc<Header>, AnyPolicy<Task>, AnyBalancer>;

/// The scheduling mail of the bus.
pub(crate) type SchedMail = Mail<Task, Arc<Header>>;

/// An `Insert::After` naming the strand running on this thread's core
/// becomes `Insert::Head`: the dependency is not among the ready strands,
/// and the dependent should run as soon as it stops.
#[cold]
#[inline(never)]
fn after_current(header: &Header) -> Insert {
    let current = crate::context::current_ptr();
    // SAFETY: a non-null current header belongs to the running strand.
    if !current.is_null() && header.insert_after() == Some(unsafe { (*current).id }) {
        Insert::Head
    } else {
        Insert::After
    }
}

impl TaskHandle for Task {
    #[inline]
    fn pinned(&self) -> bool {
        self.header.pinned
    }

    #[inline]
    fn io_woken(&self) -> bool {
        self.header.io_wait.load(Ordering::Relaxed)
    }

    #[inline]
    fn wake_hint(&self) -> Insert {
        match self.header.insert_hint() {
            Insert::After => after_current(&self.header),
            hint => hint,
        }
    }

    fn allowed_on(&self, core: CoreId) -> bool {
        // Its own context's mask: a server serving a caller runs on the
        // caller's budget, but stays where its own context keeps it.
        self.header.own_context().is_none_or(|c| c.allows(core))
    }

    #[inline]
    fn filed(&mut self, slot: Slot) {
        self.header.blocked_slot.store(slot, Ordering::Relaxed);
    }

    fn leaving(&mut self, to: CoreId) {
        // Released to `to` by the bus push.
        self.header.home.store(to, Ordering::Relaxed);
        crate::strand::StrandCounters::bump32(&self.header.counters.migrations, 1);
    }

    fn arriving(&mut self, here: CoreId, _now: Nanos) {
        self.header.home.store(here, Ordering::Relaxed);
        self.header.set_state(StrandState::Ready);
    }

    fn in_group(&self, group: u64) -> bool {
        let mut node = Some(&*self.header);
        while let Some(h) = node {
            if h.id == group {
                return true;
            }
            node = h.parent.as_deref();
        }
        false
    }
}

/// The local state of one core.
pub(crate) struct Local {
    pub(crate) core: usize,
    pub(crate) rt: *const RuntimeShared,
    /// `&rt.cores[core]`, kept to spare the lookup on every switch.
    shared: *const CoreShared,
    pub(crate) runtime_id: u64,
    /// Every scheduling decision of this core.
    pub(crate) sched: Sched,
    pub(crate) endpoint: Endpoint<Msg>,
    pub(crate) stacks: StackPool,
    inbox: Vec<(Origin, Msg)>,
    /// The scheduler's outbox, taken out to send.
    outbox: Vec<(CoreId, SchedMail)>,
    fired: Vec<Arc<Header>>,
    /// This core's wait graph and the events homed here (see `event::local`).
    pub(crate) events: Events<EventKey, EventWaiter, Payload>,
    pub(crate) next_ticket: Ticket,
    /// Scratch space for the event protocol: messages out, waiters to wake.
    pub(crate) event_out: Outbox<EventKey, Payload>,
    pub(crate) event_wakes: Vec<Waker>,
    /// Scheduler closures registered on this core, by event.
    pub(crate) closures: std::collections::HashMap<EventKey, ClosureSet>,
    /// Signals taken by closures, to run at the next scheduler pass.
    pub(crate) closure_jobs: Vec<(EventKey, Payload)>,
    /// Closures taken off this core, to drop at the next scheduler pass.
    pub(crate) closure_graveyard: Vec<ClosureEntry>,
    /// This core's poller (see `io`).
    pub(crate) poller: crate::io::Poller,
    pub(crate) shutdown: bool,
    /// This core counted itself out of `RuntimeShared::open_cores` (kept
    /// here, not on the carrier, so a new carrier does not count it twice).
    pub(crate) drain_closed: bool,
    /// The coarse clock as the scheduling loop last read it (once a pass).
    pub(crate) tick: Nanos,
    /// Permits for new strands drawn from the runtime's pool (see
    /// `braid_core::sched::quota`).
    permits: braid_core::sched::quota::Reserve,
}

impl Local {
    pub(crate) fn new(
        core: usize,
        rt: *const RuntimeShared,
        runtime_id: u64,
        endpoint: Endpoint<Msg>,
        (policy, balancer): (AnyPolicy<Task>, AnyBalancer),
        seed: u64,
        poller: crate::io::Poller,
    ) -> Local {
        let cores = endpoint.cores();
        // SAFETY: `rt` points to the runtime being built, whose core list is
        // complete and never resized; see `rt()` for its lifetime.
        let shared = unsafe { &(*rt).cores[core] as *const CoreShared };
        Local {
            core,
            rt,
            shared,
            runtime_id,
            sched: CoreSched::new(core, cores, policy, balancer, seed, SchedConfig::default()),
            endpoint,
            stacks: StackPool::default(),
            inbox: Vec::new(),
            outbox: Vec::new(),
            fired: Vec::new(),
            events: Events::new(core, cores),
            next_ticket: 0,
            event_out: Vec::new(),
            event_wakes: Vec::new(),
            closures: std::collections::HashMap::new(),
            closure_jobs: Vec::new(),
            closure_graveyard: Vec::new(),
            poller,
            shutdown: false,
            drain_closed: false,
            tick: 0,
            // SAFETY: as for `shared` above.
            permits: braid_core::sched::quota::Reserve::new(braid_core::sched::quota::chunk_for(
                unsafe { (*rt).config.max_strands },
                cores,
            )),
        }
    }

    /// A counted reference to the runtime this core belongs to.
    pub(crate) fn rt_arc(&self) -> Arc<RuntimeShared> {
        // SAFETY: `rt` came from `Arc::as_ptr` of the runtime's Arc, which
        // every carrier keeps alive while it runs (see `rt`); adding a count
        // and taking it as a new Arc is then sound.
        unsafe {
            Arc::increment_strong_count(self.rt);
            Arc::from_raw(self.rt)
        }
    }

    /// The runtime this core belongs to.
    #[inline]
    pub(crate) fn rt(&self) -> &RuntimeShared {
        // SAFETY: every carrier thread holds an `Arc<RuntimeShared>` for as long as
        // it runs, and local state is only used by carriers, so the runtime
        // outlives every use of this pointer.
        unsafe { &*self.rt }
    }

    #[inline]
    pub(crate) fn shared(&self) -> &CoreShared {
        // SAFETY: `shared` points into the runtime's core list, which is never
        // resized and lives as long as the runtime; every carrier holds an
        // `Arc<RuntimeShared>` while it uses this core, so the runtime outlives
        // the reference.
        unsafe { &*self.shared }
    }

    /// Polls this core's sockets, waiting at most `timeout` (see
    /// `io::Poller::poll`); counts and returns the events handled.
    pub(crate) fn poll_io(&mut self, timeout: Option<std::time::Duration>) -> usize {
        // SAFETY: as for `shared`; the reference does not borrow `self`, so
        // the poller can be borrowed mutably beside it.
        let shared = unsafe { &*self.shared };
        let handled = self.poller.poll(&shared.io, timeout);
        self.sched.polled();
        bump(&shared.counters.io_events, handled as u64);
        handled
    }

    /// A stack of `usable` bytes from this core's pool.
    pub(crate) fn take_stack(
        &mut self,
        usable: usize,
    ) -> std::io::Result<crate::stack::StrandStack> {
        // SAFETY: `rt` stays valid while a carrier uses this core (each carrier
        // holds an `Arc<RuntimeShared>`); going through the raw pointer gives a
        // reference that does not borrow `self`, so `self` stays mutable.
        let rt = unsafe { &*self.rt };
        self.stacks.take(usable, &rt.slabs)
    }

    /// A runtime-unique strand id (see `braid_core::sched::ids`).
    #[inline]
    pub(crate) fn next_strand_id(&mut self) -> u64 {
        self.sched.mint_id()
    }

    /// The coarse clock: nanoseconds since the runtime started, advanced by
    /// the monitor every millisecond, as the scheduling loop last read it —
    /// what scheduling decisions are given (a field read on the hot path, not
    /// an atomic load through the runtime pointer).
    #[inline]
    pub(crate) fn now(&self) -> Nanos {
        self.tick
    }

    /// `at` on the runtime's clock (nanoseconds since it started).
    pub(crate) fn ns_at(&self, at: Instant) -> Nanos {
        at.saturating_duration_since(self.rt().started).as_nanos() as Nanos
    }

    /// Makes `task` ready here.
    #[inline(always)]
    pub(crate) fn enqueue(&mut self, task: Task, hint: Insert) {
        task.header.set_state(StrandState::Ready);
        let now = self.now();
        // Not `now`: while a strand runs (spawning or waking here) the
        // core's tick is the time it was dispatched.
        task.header
            .readied(self.rt().clock_ns.load(Ordering::Relaxed));
        self.sched.enqueue(task, hint, now);
        self.publish_ready_len();
        self.send_outbox();
    }

    #[inline]
    pub(crate) fn publish_ready_len(&self) {
        self.shared()
            .ready_len
            .store(self.sched.ready_len(), Ordering::Relaxed);
    }

    /// Sends what the scheduler decided to send (offers, grants, requests,
    /// spawns) and publishes how many strands it gave away. The callers have
    /// published the ready count already (the scheduler took the strands it
    /// gives before returning).
    #[inline]
    pub(crate) fn send_outbox(&mut self) {
        if self.sched.has_outbox() {
            self.send_outbox_slow();
        }
    }

    #[cold]
    fn send_outbox_slow(&mut self) {
        // Evictions from a leased core go out here: publish their count.
        let evicted = self.sched.counters().evicted;
        let published = &self.shared().counters.evicted;
        if published.load(Ordering::Relaxed) != evicted {
            published.store(evicted, Ordering::Relaxed);
        }
        let mut out = std::mem::take(&mut self.outbox);
        out.extend(self.sched.take_outbox());
        for (to, mail) in out.drain(..) {
            self.send(to, Msg::Sched(mail));
        }
        self.outbox = out;
        // The scheduler counted what it gave; this core is the only writer.
        let given = self.sched.counters().given;
        self.shared().counters.given.store(given, Ordering::Relaxed);
    }

    /// Starts a new strand on `core` (this one, or by a spawn message).
    pub(crate) fn start(&mut self, task: Task, core: CoreId) {
        // Shutting down, a new strand stays here: the core it was meant for
        // may have ended its drain (it fails at launch, shut down).
        if core == self.core || self.shutdown {
            if task.header.insert_hint() == Insert::Tail {
                self.enqueue(task, Insert::Tail);
            } else {
                self.start_hinted(task);
            }
        } else {
            let now = self.now();
            self.sched.spawn(task, core, now);
            self.send_outbox();
        }
    }

    /// [`start`](Self::start) here for a strand that asked to enter the
    /// ready strands elsewhere than at the tail.
    #[cold]
    #[inline(never)]
    fn start_hinted(&mut self, task: Task) {
        let hint = task.wake_hint();
        self.enqueue(task, hint);
    }

    /// Sends `msg` to core `to`, waking it if it sleeps.
    pub(crate) fn send(&mut self, to: usize, msg: Msg) {
        bump(&self.shared().counters.sent, 1);
        match self.endpoint.send(to, msg) {
            Ok(Notify::WakeReceiver) => self.rt().cores[to].io.wake(),
            Ok(Notify::None) => {}
            Err(err) => {
                // Only a programming error can address ourselves or a core that
                // does not exist; keep the message rather than lose it.
                debug_assert!(false, "bus send failed: {err}");
                let msg = err.into_message();
                self.apply(Origin::Core(self.core), msg);
            }
        }
    }

    /// Files a parked strand until it is woken. If a wake already arrived (only
    /// possible for a strand handed over by a carrier that lost this core), it is
    /// made ready instead.
    pub(crate) fn file_blocked(&mut self, task: Task) {
        task.header.set_state(StrandState::Blocked);
        if park::woken_before_filing(&task.header.park) {
            self.enqueue(task, Insert::Tail);
            return;
        }
        let _slot = self.sched.block(task);
    }

    /// Makes the strand of `header`, parked on this core, ready. A wake for a
    /// strand not filed here is dropped: it was requeued by the early-wake
    /// check of `file_blocked` (or a handover found the park word `NOTIFIED`),
    /// which is the wake's effect.
    pub(crate) fn wake_filed(&mut self, header: &Header) {
        let slot = header.blocked_slot.load(Ordering::Relaxed);
        if slot == NO_SLOT {
            return;
        }
        // A wake can be stale (see `CoreSched::wake_if`): only a slot of this
        // core holding this very strand is ours to wake; anything else is
        // left alone (clearing the slot would lose the strand's real wake on
        // the core it parked on since).
        let now = self.now();
        if self
            .sched
            .wake_if(slot, now, |t| std::ptr::eq(&*t.header, header))
        {
            header.blocked_slot.store(NO_SLOT, Ordering::Relaxed);
            header.set_state(StrandState::Ready);
            header.readied(self.rt().clock_ns.load(Ordering::Relaxed));
            self.publish_ready_len();
            self.send_outbox();
        }
    }

    /// Bookkeeping for a strand whose body returned.
    pub(crate) fn finish(&mut self, task: Task) {
        let mut task = task;
        self.sched.exited(&mut task);
        self.release_permit();
        if let Some(coroutine) = task.coroutine.take() {
            self.stacks.give_back(coroutine.into_stack());
        }
        let header = task.header.clone();
        drop(task);
        if let Some(context) = header.own_context() {
            context.strand_exited();
        }
        if let Some(tally) = header.own_tally() {
            tally.left(&header);
        }
        park::exit(&header.park);
        bump(&self.shared().counters.exited, 1);
        self.closures_host_exited(&header);
        let mut waiters = Vec::new();
        if header.leave_subtree(&mut waiters) {
            // The top-level group ended and named local events: their
            // stored signals, wherever homed, can never be taken now.
            let root = header.root_id();
            self.forget_namespace(root);
            let me = self.core;
            for core in (0..self.endpoint.cores()).filter(|&c| c != me) {
                self.send(core, Msg::NamespaceGone(root));
            }
        }
        // Release, last: whoever sees `Exited` (Acquire) also sees the strand
        // counted out of the core's figures and its subtree.
        header
            .state
            .store(StrandState::Exited as u8, Ordering::Release);
        for waiter in waiters {
            self.wake_waiter(waiter);
        }
    }

    /// `strand::unpark` for code that already holds this core's local state.
    pub(crate) fn unpark_here(&mut self, header: &Arc<Header>) {
        if park::notify(&header.park) {
            self.route_wake(header.clone());
        }
    }

    /// Delivers the wake of a strand whose park word this thread flipped from
    /// `PARKED`: filed here, or a message to its home core.
    pub(crate) fn route_wake(&mut self, header: Arc<Header>) {
        if header.runtime_id != self.runtime_id {
            super::wake::foreign_wake(header);
            return;
        }
        let home = header.home.load(Ordering::Relaxed);
        if home == self.core {
            self.wake_filed(&header);
        } else {
            self.send(home, Msg::Sched(Mail::Wake(header)));
        }
    }

    pub(crate) fn wake_waiter(&mut self, waiter: Waiter) {
        match waiter {
            Waiter::Strand(header) => self.unpark_here(&header),
            thread @ Waiter::Thread(_) => thread.wake(),
        }
    }

    /// Applies the mail that arrived since the last check. O(1) without mail.
    #[inline]
    pub(crate) fn poll_mail(&mut self) {
        if self.endpoint.doorbell().is_empty() && !self.endpoint.has_overflow() {
            return;
        }
        self.poll_mail_slow();
    }

    #[cold]
    fn poll_mail_slow(&mut self) {
        let mut inbox = std::mem::take(&mut self.inbox);
        // SAFETY: `rt` stays valid while a carrier uses this core (each carrier
        // holds an `Arc<RuntimeShared>`); going through the raw pointer gives a
        // reference that does not borrow `self`, so `self` stays mutable.
        let rt = unsafe { &*self.rt };
        let checked = self.endpoint.check(|origin, msg| inbox.push((origin, msg)));
        for &core in checked.to_wake() {
            rt.cores[core].io.wake();
        }
        bump(&self.shared().counters.received, inbox.len() as u64);
        for (origin, msg) in inbox.drain(..) {
            self.apply(origin, msg);
        }
        self.inbox = inbox;
    }

    fn apply(&mut self, origin: Origin, msg: Msg) {
        let from = match origin {
            Origin::Core(core) => Some(core),
            Origin::Injected => None,
        };
        match msg {
            Msg::Sched(mail) => self.apply_sched(from, mail),
            Msg::Cancel(root) => self.wake_blocked_in(&root),
            Msg::Event(msg) => self.event_message(from.unwrap_or(usize::MAX), *msg),
            Msg::EventCancel(key, ticket) => self.event_cancel(&key, ticket),
            Msg::ClosuresGone(host) => self.remove_closures_of(host),
            Msg::NamespaceGone(root) => self.forget_namespace(root),
            Msg::Lease(lease) => self.set_lease(lease),
            Msg::ReportClass => {
                let code = crate::lease::report_code(
                    self.sched.ready_len(),
                    self.sched.policy().highest_ready_class(),
                );
                self.shared().top_class.store(code, Ordering::Relaxed);
            }
            Msg::Shutdown => self.shutdown = true,
        }
    }

    /// This core was leased (to the group of the strand with that id, once
    /// one is started), or its lease ended (see `lease`): the scheduler
    /// evicts the strands of no group of it from then on.
    fn set_lease(&mut self, lease: Option<(Option<u64>, Vec<usize>)>) {
        let now = self.now();
        self.sched
            .set_exclusive(lease.map(|(group, shared)| (shared, group)), now);
    }

    /// Hands scheduling mail to the scheduler and applies what it leaves to
    /// do: a wake to resolve, an orphan to treat as just suspended.
    fn apply_sched(&mut self, from: Option<CoreId>, mail: SchedMail) {
        let now = self.now();
        let received = self.sched.receive(from, mail, now);
        // The scheduler counted what it received; this core is the only writer.
        let stolen = self.sched.counters().stolen;
        self.shared()
            .counters
            .steals
            .store(stolen, Ordering::Relaxed);
        match received {
            Received::Done => {}
            Received::Wake(header) => self.wake_filed(&header),
            Received::Orphan(task, outcome) => {
                task.header.home.store(self.core, Ordering::Relaxed);
                self.suspended(task, outcome);
            }
        }
        self.publish_ready_len();
        self.send_outbox();
    }

    /// What follows a strand's suspension on this core; publishes the ready
    /// count (which the pick of the strand lowered).
    #[inline(always)]
    pub(crate) fn suspended(&mut self, task: Task, outcome: Outcome) {
        match outcome {
            Outcome::Yielded => self.enqueue(task, Insert::Tail),
            // Shutting down, nothing wakes a parked strand: it stays ready
            // until it ends (see `worker::drain`).
            Outcome::Parked if self.shutdown => self.requeue_draining(task),
            Outcome::Parked => {
                self.file_blocked(task);
                self.publish_ready_len();
            }
            Outcome::Exited => {
                self.finish(task);
                self.publish_ready_len();
            }
        }
    }

    /// A strand parked while the core drains: ready again (out of line, so
    /// the hot `suspended` keeps one inlined `enqueue`).
    #[cold]
    #[inline(never)]
    fn requeue_draining(&mut self, task: Task) {
        self.enqueue(task, Insert::Tail);
    }

    /// Unparks every strand blocked here that belongs to the subtree of `root`.
    pub(crate) fn wake_blocked_in(&mut self, root: &Header) {
        let victims: Vec<Arc<Header>> = self
            .sched
            .blocked()
            .iter()
            .map(|(_, t)| t)
            .filter(|t| t.header.descends_from(root))
            .map(|t| t.header.clone())
            .collect();
        for header in victims {
            self.unpark_here(&header);
        }
    }

    /// Publishes how many timers are armed here (for `Stats`).
    pub(crate) fn publish_timers(&self) {
        self.shared()
            .timers
            .store(self.sched.timers().len(), Ordering::Relaxed);
    }

    /// Arms a timer that unparks the strand of `header` at `deadline`.
    pub(crate) fn arm_timer(&mut self, deadline: Instant, header: Arc<Header>) -> TimerId {
        let at = self.ns_at(deadline);
        let id = self.sched.arm(at, header);
        self.publish_timers();
        id
    }

    /// Disarms a timer armed here that has not fired; returns whether it was
    /// still armed.
    pub(crate) fn disarm_timer(&mut self, id: TimerId) -> bool {
        let was = self.sched.disarm(id).is_some();
        if was {
            self.publish_timers();
        }
        was
    }

    /// Unparks the strands whose timers expired. Reads the clock only when timers
    /// are pending.
    #[inline]
    pub(crate) fn fire_timers(&mut self) {
        if self.sched.timers().is_empty() {
            return;
        }
        let mut fired = std::mem::take(&mut self.fired);
        let now = self.ns_at(Instant::now());
        self.sched.expire(now, &mut fired);
        if !fired.is_empty() {
            self.publish_timers();
        }
        for header in fired.drain(..) {
            self.unpark_here(&header);
        }
        self.fired = fired;
    }

    /// At shutdown, before the drain: makes every strand filed here ready
    /// (see `worker::drain`); the strands are doomed as they run.
    pub(crate) fn wake_all_for_drain(&mut self) {
        let now = self.now();
        let blocked: Vec<Arc<Header>> = self
            .sched
            .blocked()
            .iter()
            .map(|(_, t)| t.header.clone())
            .collect();
        self.sched.wake_all(now);
        for header in blocked {
            header.blocked_slot.store(NO_SLOT, Ordering::Relaxed);
            header.set_state(StrandState::Ready);
        }
        self.publish_ready_len();
        self.send_outbox();
    }

    /// Takes a permit for a new strand (`RuntimeBuilder::max_strands`):
    /// false when the runtime has as many strands as it may.
    #[inline]
    pub(crate) fn admit(&mut self) -> bool {
        if self.permits.take() {
            return true;
        }
        let granted = self.rt().draw_permits(self.permits.want());
        self.permits.fill(granted);
        self.permits.take()
    }

    /// Gives back the permit of a strand that ended here (or was refused
    /// after its permit was taken).
    #[inline]
    pub(crate) fn release_permit(&mut self) {
        let surplus = self.permits.put_back();
        if surplus > 0 {
            self.rt().return_permits(surplus);
        }
    }

    /// The core is about to idle: its reserve of permits goes back to the
    /// pool, for cores that are spawning.
    pub(crate) fn return_reserve(&mut self) {
        let held = self.permits.drain();
        if held > 0 {
            self.rt().return_permits(held);
        }
    }

    /// Drops what is left at shutdown, after the drain: strands that did not
    /// end by its deadline cannot be unwound from here, so they are leaked
    /// (their stacks stay mapped). Returns their names (`#id` for unnamed
    /// ones).
    pub(crate) fn abandon_all(&mut self) -> Vec<String> {
        let now = self.now();
        // Dropping a task leaks an unfinished coroutine (see `Task`'s Drop).
        let left = self.sched.abandon(now);
        left.iter()
            .map(|t| crate::spawn::strand_label(&t.header))
            .collect()
    }
}
