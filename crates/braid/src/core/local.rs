//! A core's own scheduling state. Only the carrier that owns the core touches it,
//! so nothing here is atomic or locked (the counters it publishes are single-writer
//! stores).

use super::events::{ClosureEntry, ClosureSet, EventWaiter};
use super::mail::{Msg, Outcome};
use super::shared::{bump, CoreShared};
use crate::event::{EventKey, Payload};
use crate::park;
use crate::runtime::RuntimeShared;
use crate::stack::StackPool;
use crate::strand::{Header, StrandState, Task, Waiter, NO_SLOT};
use crate::sync::waiter::Waker;
use crate::timer::TimerHeap;
use braid_bus::{Endpoint, Notify, Origin};
use braid_core::event::{Events, Outbox};
use braid_core::{Balancer, Grant, Insert, Policy, Rng, RoundRobin, StealHalf, Ticket};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// The local state of one core.
pub(crate) struct Local {
    pub(crate) core: usize,
    pub(crate) rt: *const RuntimeShared,
    /// `&rt.cores[core]`, kept to spare the lookup on every switch.
    shared: *const CoreShared,
    pub(crate) runtime_id: u64,
    pub(crate) policy: RoundRobin<Task>,
    pub(crate) balancer: StealHalf,
    pub(crate) rng: Rng,
    pub(crate) endpoint: Endpoint<Msg>,
    /// Parked strands, indexed by `Header::blocked_slot`.
    blocked: Vec<Option<Task>>,
    free_slots: Vec<u32>,
    pub(crate) timers: TimerHeap,
    pub(crate) stacks: StackPool,
    next_id: u64,
    inbox: Vec<(Origin, Msg)>,
    fired: Vec<Arc<Header>>,
    /// This core's wait graph and the events homed here (see `core::events`).
    pub(super) events: Events<EventKey, EventWaiter, Payload>,
    pub(super) next_ticket: Ticket,
    /// Scratch space for the event protocol: messages out, waiters to wake.
    pub(super) event_out: Outbox<EventKey, Payload>,
    pub(super) event_wakes: Vec<Waker>,
    /// Scheduler closures registered on this core, by event.
    pub(super) closures: std::collections::HashMap<EventKey, ClosureSet>,
    /// Signals taken by closures, to run at the next scheduler pass.
    pub(super) closure_jobs: Vec<(EventKey, Payload)>,
    /// Closures taken off this core, to drop at the next scheduler pass.
    pub(super) closure_graveyard: Vec<ClosureEntry>,
    /// This core's poller (see `io`).
    pub(crate) poller: crate::io::Poller,
    pub(crate) shutdown: bool,
    /// The coarse clock when this core last ran out of work.
    pub(crate) idle_at_ns: u64,
    /// How long the next idle spell spins before parking (see `worker`).
    pub(crate) spin: std::time::Duration,
}

/// How long a core must have been busy without a break before it gives away
/// strands woken by socket readiness (see `Local::take_for_transfer`).
pub(crate) const IO_STAY: std::time::Duration = std::time::Duration::from_millis(20);

impl Local {
    pub(crate) fn new(
        core: usize,
        rt: *const RuntimeShared,
        runtime_id: u64,
        endpoint: Endpoint<Msg>,
        slice_ns: u64,
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
            policy: RoundRobin::new(slice_ns),
            balancer: StealHalf::new(core, cores),
            rng: Rng::new(seed ^ (core as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            endpoint,
            blocked: Vec::new(),
            free_slots: Vec::new(),
            timers: TimerHeap::default(),
            stacks: StackPool::default(),
            next_id: 0,
            inbox: Vec::new(),
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
            idle_at_ns: 0,
            spin: std::time::Duration::from_micros(20),
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
        // SAFETY: as in `rt`: the core list lives as long as the runtime.
        unsafe { &*self.shared }
    }

    /// A stack of `usable` bytes from this core's pool.
    pub(crate) fn take_stack(
        &mut self,
        usable: usize,
    ) -> std::io::Result<crate::stack::StrandStack> {
        // SAFETY: as in `rt`; dereferencing the raw pointer does not borrow `self`.
        let rt = unsafe { &*self.rt };
        self.stacks.take(usable, &rt.slabs)
    }

    /// A runtime-unique strand id: a per-core counter with the core in the low bits.
    pub(crate) fn next_strand_id(&mut self) -> u64 {
        self.next_id += 1;
        (self.next_id << 12) | self.core as u64
    }

    /// Makes `task` ready here.
    #[inline]
    pub(crate) fn enqueue(&mut self, task: Task, hint: Insert) {
        task.header.set_state(StrandState::Ready);
        self.policy.enqueue(task, hint, 0);
        self.publish_ready_len();
        self.offer_surplus();
    }

    #[inline]
    pub(crate) fn publish_ready_len(&self) {
        self.shared()
            .ready_len
            .store(self.policy.len(), Ordering::Relaxed);
    }

    /// Gives part of the ready queue to a core known to be idle, if any.
    #[inline]
    fn offer_surplus(&mut self) {
        if let Some((peer, count)) = self.balancer.on_surplus(self.policy.len()) {
            let tasks = self.take_for_transfer(peer, count);
            if !tasks.is_empty() {
                self.send(peer, Msg::Offer(tasks));
            }
        }
    }

    /// Takes up to `count` ready strands to give to core `to`. Pinned strands
    /// stay. So do strands woken by socket readiness, unless this core has
    /// been busy without a break for [`IO_STAY`]: such a strand typically runs
    /// for a moment (a read, a write) and parks on its socket again, and
    /// moving it costs more than that moment — a wake of the other core and
    /// moving the socket's registration — while the cores trade such strands
    /// back and forth. Measured with the echo benchmark's load (1 000
    /// connections, 2 cores, `braid-bench` net tests): 60–85 k round trips/s
    /// while strands moved freely (2 000–9 000 moves/s), 63–86 k with a 2 ms
    /// limit, 83–123 k with 20 ms (almost no moves). New connections still
    /// spread: a freshly spawned strand is not an I/O wake.
    fn take_for_transfer(&mut self, to: usize, count: usize) -> Vec<Task> {
        let mut tasks = self.policy.take_for_transfer(count);
        let busy_ns = self
            .rt()
            .clock_ns
            .load(Ordering::Relaxed)
            .saturating_sub(self.idle_at_ns);
        let io_moves = busy_ns >= IO_STAY.as_nanos() as u64;
        let stays =
            |t: &Task| t.header.pinned || (!io_moves && t.header.io_wait.load(Ordering::Relaxed));
        if tasks.iter().any(stays) {
            let (pinned, movable): (Vec<_>, Vec<_>) = tasks.into_iter().partition(stays);
            for task in pinned {
                self.policy.enqueue(task, Insert::Tail, 0);
            }
            tasks = movable;
        }
        for task in &tasks {
            // Released to `to` by the bus push.
            task.header.home.store(to, Ordering::Relaxed);
            crate::strand::StrandCounters::bump(&task.header.counters.migrations, 1);
        }
        bump(&self.shared().counters.given, tasks.len() as u64);
        self.publish_ready_len();
        tasks
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
        let slot = match self.free_slots.pop() {
            Some(slot) => slot,
            None => {
                self.blocked.push(None);
                (self.blocked.len() - 1) as u32
            }
        };
        task.header.blocked_slot.store(slot, Ordering::Relaxed);
        self.blocked[slot as usize] = Some(task);
    }

    /// Makes the strand of `header`, parked on this core, ready. A wake for a strand
    /// not filed here (handed over mid-park, see `file_blocked`) is dropped: the
    /// handover finds the park word `NOTIFIED` and enqueues it then.
    pub(crate) fn wake_filed(&mut self, header: &Header) {
        let slot = header.blocked_slot.load(Ordering::Relaxed);
        if slot == NO_SLOT {
            return;
        }
        let Some(task) = self.blocked.get_mut(slot as usize).and_then(Option::take) else {
            return;
        };
        debug_assert!(std::ptr::eq(&*task.header, header));
        header.blocked_slot.store(NO_SLOT, Ordering::Relaxed);
        self.free_slots.push(slot);
        self.enqueue(task, Insert::Tail);
        self.balancer.on_busy();
    }

    /// Bookkeeping for a strand whose body returned.
    pub(crate) fn finish(&mut self, task: Task) {
        let mut task = task;
        if let Some(coroutine) = task.coroutine.take() {
            self.stacks.give_back(coroutine.into_stack());
        }
        let header = task.header.clone();
        drop(task);
        park::exit(&header.park);
        bump(&self.shared().counters.exited, 1);
        self.closures_host_exited(&header);
        let mut waiters = Vec::new();
        header.leave_subtree(&mut waiters);
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
            self.send(home, Msg::Wake(header));
        }
    }

    pub(crate) fn wake_waiter(&mut self, waiter: Waiter) {
        match waiter {
            Waiter::Strand(header) => self.unpark_here(&header),
            Waiter::Thread(thread) => thread.unpark(),
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
        // SAFETY: as in `rt`; dereferencing the raw pointer does not borrow `self`.
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
            Origin::Core(core) => core,
            Origin::Injected => usize::MAX,
        };
        match msg {
            Msg::Wake(header) => self.wake_filed(&header),
            Msg::Spawn(task) => {
                task.header.home.store(self.core, Ordering::Relaxed);
                self.enqueue(*task, Insert::Tail);
                self.balancer.on_busy();
            }
            Msg::WorkRequest => {
                let tasks = match self.balancer.on_request(from, self.policy.len()) {
                    Grant::Give(count) => self.take_for_transfer(from, count),
                    Grant::Nothing => Vec::new(),
                };
                self.send(from, Msg::WorkReply(tasks));
            }
            Msg::WorkReply(tasks) => {
                self.balancer.on_reply(from, tasks.len());
                self.receive_transfer(tasks);
            }
            Msg::Offer(tasks) => {
                self.balancer.on_busy();
                self.receive_transfer(tasks);
            }
            Msg::Cancel(root) => self.wake_blocked_in(&root),
            Msg::Orphan(task, outcome) => {
                task.header.home.store(self.core, Ordering::Relaxed);
                match outcome {
                    Outcome::Yielded => self.enqueue(*task, Insert::Tail),
                    Outcome::Parked => self.file_blocked(*task),
                    Outcome::Exited => self.finish(*task),
                }
            }
            Msg::Event(msg) => self.event_message(from, *msg),
            Msg::EventCancel(key, ticket) => self.event_cancel(&key, ticket),
            Msg::ClosuresGone(host) => self.remove_closures_of(host),
            Msg::Shutdown => self.shutdown = true,
        }
    }

    fn receive_transfer(&mut self, tasks: Vec<Task>) {
        bump(&self.shared().counters.steals, tasks.len() as u64);
        for task in tasks {
            task.header.home.store(self.core, Ordering::Relaxed);
            task.header.set_state(StrandState::Ready);
            self.policy.enqueue(task, Insert::Tail, 0);
        }
        self.publish_ready_len();
    }

    /// Unparks every strand blocked here that belongs to the subtree of `root`.
    pub(crate) fn wake_blocked_in(&mut self, root: &Header) {
        let victims: Vec<Arc<Header>> = self
            .blocked
            .iter()
            .flatten()
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
            .store(self.timers.len(), Ordering::Relaxed);
    }

    /// Unparks the strands whose timers expired. Reads the clock only when timers
    /// are pending.
    #[inline]
    pub(crate) fn fire_timers(&mut self) {
        if self.timers.is_empty() {
            return;
        }
        let mut fired = std::mem::take(&mut self.fired);
        self.timers.expire(Instant::now(), &mut fired);
        if !fired.is_empty() {
            self.publish_timers();
        }
        for header in fired.drain(..) {
            self.unpark_here(&header);
        }
        self.fired = fired;
    }

    /// Drops what is left at shutdown. Strands that never finished cannot be
    /// unwound safely from here, so they are leaked (their stacks stay mapped);
    /// returns how many.
    pub(crate) fn abandon_all(&mut self) -> usize {
        let mut leaked = 0;
        // Dropping a task leaks an unfinished coroutine (see `Task`'s Drop).
        while let Some(task) = self.policy.pick_next(0) {
            drop(task);
            leaked += 1;
        }
        for task in self.blocked.drain(..).flatten() {
            drop(task);
            leaked += 1;
        }
        self.free_slots.clear();
        self.timers.clear();
        leaked
    }
}
