//! The per-core scheduler as a pure state machine.
//!
//! [`CoreSched`] is everything one core decides: its ready strands (ordered by a
//! [`Policy`]), its blocked table, what it gives to other cores and when (a
//! [`Balancer`] plus the stay-or-move rules), its timers, how it answers the scheduling
//! messages of the bus ([`Mail`]), how it idles ([`idle`]), where new strands
//! start ([`placement`]) and the ids they get ([`ids`]). It is generic over the
//! task handle `T` ([`TaskHandle`]) and the wake token `K` a [`Mail::Wake`]
//! carries, takes time as an argument and randomness from its own seeded
//! [`Rng`], and never sends anything itself: messages go to an outbox that its
//! driver drains and delivers.
//!
//! Two drivers run it: the runtime (`braid`), whose carrier threads apply the
//! outbox with the real bus, stacks and poller, and the simulator
//! (`braid-sim`), which runs the same code on up to 1024 virtual cores.
//!
//! A driver's loop, per core:
//! 1. deliver arrived mail with [`CoreSched::receive`]; apply what it returns;
//! 2. run [`CoreSched::next`]; when it returns a strand, run it and report the
//!    outcome ([`CoreSched::enqueue`], [`CoreSched::block`], or the driver's own
//!    bookkeeping for an exit);
//! 3. with nothing to run, [`CoreSched::idle`], spin as it says, then
//!    [`Idler::park`] and report how the spell ended ([`CoreSched::idle_ended`]);
//! 4. after each step, send what [`CoreSched::take_outbox`] holds.

pub mod blocked;
pub mod idle;
pub mod ids;
pub mod placement;
pub mod quota;
pub mod timers;
pub mod watchdog;

use crate::balance::{Balancer, CoreId, Grant};
use crate::policy::{Insert, Load, Nanos, Policy};
use crate::rng::Rng;
pub use blocked::{Blocked, Slot};
pub use idle::{IdleConfig, IdleEnd, Idler, Park, Spin};
pub use timers::{TimerId, Timers};

/// What the scheduler needs to know of a strand it holds.
pub trait TaskHandle {
    /// The strand must stay on its core (it was spawned onto a chosen core).
    fn pinned(&self) -> bool;

    /// The strand was last woken by socket readiness (see
    /// [`SchedConfig::io_stay`]).
    fn io_woken(&self) -> bool {
        false
    }

    /// Whether the strand may run on core `core` (a scheduling context's
    /// CPU mask may say not): no balancer or eviction sends it elsewhere.
    fn allowed_on(&self, core: CoreId) -> bool {
        let _ = core;
        true
    }

    /// The strand is being filed as blocked in `slot` (the slot a later
    /// [`CoreSched::wake`] names).
    fn filed(&mut self, slot: Slot) {
        let _ = slot;
    }

    /// Where the strand enters the ready strands when it is spawned or
    /// woken (a yield always goes to the tail).
    #[inline]
    fn wake_hint(&self) -> Insert {
        Insert::Tail
    }

    /// The strand is about to be sent to core `to`.
    fn leaving(&mut self, to: CoreId) {
        let _ = to;
    }

    /// The strand arrived on core `here` from another core at `now` and is
    /// about to be made ready.
    fn arriving(&mut self, here: CoreId, now: Nanos) {
        let _ = (here, now);
    }

    /// Whether the strand belongs to the group whose first strand has id
    /// `group` (that strand or a descendant): what a leased core keeps
    /// (see [`CoreSched::set_exclusive`]).
    fn in_group(&self, group: u64) -> bool {
        let _ = group;
        false
    }
}

/// A core leased to one group (see [`CoreSched::set_exclusive`]).
#[derive(Clone, Debug, Hash)]
struct Exclusive {
    /// The cores not leased, where the other strands go, and the next one.
    shared: Vec<CoreId>,
    next: usize,
    /// The group's first strand (`None`: reserved, no group yet).
    group: Option<u64>,
}

/// How a strand left a carrier that lost its core while running it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// It yielded: ready again.
    Yielded,
    /// It parked: file it as blocked.
    Parked,
    /// Its body returned.
    Exited,
}

/// The scheduling messages between cores. `T` is the task handle, `K` the
/// token that names a parked strand to its home core.
#[derive(Clone, Debug, Hash)]
pub enum Mail<T, K> {
    /// A strand parked on the receiving core was unparked elsewhere.
    Wake(K),
    /// Run this new strand here.
    Spawn(Box<T>),
    /// The sender is idle and asks for work.
    WorkRequest,
    /// The answer to a work request (possibly empty).
    WorkReply(Vec<T>),
    /// Work pushed to a core the sender knows is idle.
    Offer(Vec<T>),
    /// A strand that was running on a carrier that lost the receiving core,
    /// how it left, and how long it ran there.
    Orphan(Box<T>, Outcome, Nanos),
    /// The sender's load, for weight balancing between busy cores.
    Load(Load),
}

/// What the driver must still do about a message after [`CoreSched::receive`].
#[derive(Debug)]
#[must_use]
pub enum Received<T, K> {
    /// Nothing: the scheduler applied it.
    Done,
    /// Find the slot the strand named by `K` is filed in (if it is filed here)
    /// and call [`CoreSched::wake`].
    Wake(K),
    /// A strand arrived as an orphan: make this core its home and handle its
    /// outcome as if it had just suspended here (not through
    /// [`TaskHandle::arriving`]: it is not necessarily ready).
    Orphan(T, Outcome),
}

/// The knobs of a core's scheduler.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SchedConfig {
    /// How long a core must have been busy without a break before it gives
    /// away strands woken by socket readiness. Such a strand typically runs for
    /// a moment (a read, a write) and parks on its socket again, and moving it
    /// costs more than that moment — a wake of the other core and moving the
    /// socket's registration — while cores trade such strands back and forth.
    /// Measured with the echo benchmark (1 000 connections, 2 cores): 60–85 k
    /// round trips/s while strands moved freely (2 000–9 000 moves/s), 63–86 k
    /// with a 2 ms limit, 83–123 k with 20 ms (almost no moves).
    pub io_stay: Nanos,
    /// A busy core with sockets polls them (without waiting) every this many
    /// scheduling passes, so I/O is not starved by ready strands (see
    /// [`CoreSched::busy_poll_due`]).
    pub busy_poll_passes: u32,
    /// The idle plan.
    pub idle: IdleConfig,
}

impl Default for SchedConfig {
    fn default() -> SchedConfig {
        SchedConfig {
            io_stay: 20_000_000,
            busy_poll_passes: 61,
            idle: IdleConfig::default(),
        }
    }
}

/// What one core's scheduler did, for statistics and the simulator's checks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SchedCounters {
    /// Strands given to other cores (grants and offers).
    pub given: u64,
    /// Strands received from other cores' grants and offers.
    pub stolen: u64,
    /// Work requests sent.
    pub requests: u64,
    /// Work requests answered empty-handed.
    pub refusals: u64,
    /// Offers sent unasked.
    pub offers: u64,
    /// Strands held back because their CPU budget was spent
    /// ([`CoreSched::throttle`]).
    pub throttles: u64,
    /// Strands sent away from this core while it was leased out
    /// ([`CoreSched::evict`]).
    pub evicted: u64,
}

/// One core's scheduler. See the module documentation. Cloning one copies
/// its whole state and hashing one hashes it (the exhaustive explorer
/// branches and merges states that way).
#[derive(Clone, Hash)]
pub struct CoreSched<T, K, P, B> {
    me: CoreId,
    cores: usize,
    policy: P,
    balancer: B,
    rng: Rng,
    blocked: Blocked<T>,
    timers: Timers<K>,
    /// Strands whose CPU budget is spent, by when it comes back.
    throttled: Timers<T>,
    /// The earliest of `throttled`'s deadlines (`Nanos::MAX`: none).
    release_at: Nanos,
    /// While this core is leased to one group: the cores its other strands
    /// go to (see [`CoreSched::set_exclusive`]), and the next of them.
    exclusive: Option<Exclusive>,
    /// Set by [`wake_all`](CoreSched::wake_all) at shutdown: the core gives
    /// no strand away any more (its peers may have stopped).
    keeps_all: bool,
    /// The earlier of `release_at` and `load_at`: what [`CoreSched::next`]
    /// compares the clock with, once per dispatch.
    due_at: Nanos,
    mint: ids::IdMint,
    idler: Idler,
    config: SchedConfig,
    /// When the current busy spell began (the end of the last idle spell).
    busy_since: Nanos,
    /// When the strand `next` returned last was dispatched.
    dispatched_at: Nanos,
    /// When this core next tells a peer its load (`Nanos::MAX`: never).
    load_at: Nanos,
    /// Scheduling passes since the core last polled its sockets.
    passes_since_poll: u32,
    /// The time of the last pass [`CoreSched::busy_poll_due`] saw.
    poll_checked_at: Nanos,
    outbox: Vec<(CoreId, Mail<T, K>)>,
    counters: SchedCounters,
}

impl<T, K, P, B> CoreSched<T, K, P, B>
where
    T: TaskHandle,
    P: Policy<T>,
    B: Balancer,
{
    /// The scheduler of core `me` of `cores` (at most [`ids::MAX_CORES`]),
    /// with its policy, balancer, random seed and knobs.
    pub fn new(
        me: CoreId,
        cores: usize,
        policy: P,
        balancer: B,
        seed: u64,
        config: SchedConfig,
    ) -> Self {
        assert!(
            me < cores && cores <= ids::MAX_CORES,
            "core {me} of {cores}"
        );
        let balancer_tells_load = balancer.load_period().is_some();
        CoreSched {
            me,
            cores,
            policy,
            balancer,
            rng: Rng::new(seed ^ (me as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            blocked: Blocked::default(),
            timers: Timers::default(),
            throttled: Timers::default(),
            release_at: Nanos::MAX,
            exclusive: None,
            keeps_all: false,
            due_at: if balancer_tells_load { 0 } else { Nanos::MAX },
            mint: ids::IdMint::new(me),
            idler: Idler::new(config.idle),
            config,
            busy_since: 0,
            dispatched_at: 0,
            load_at: if balancer_tells_load { 0 } else { Nanos::MAX },
            passes_since_poll: 0,
            poll_checked_at: 0,
            outbox: Vec::new(),
            counters: SchedCounters::default(),
        }
    }

    /// This core.
    #[inline]
    pub fn core(&self) -> CoreId {
        self.me
    }

    /// How many cores there are.
    #[inline]
    pub fn cores(&self) -> usize {
        self.cores
    }

    /// Ready strands.
    #[inline]
    pub fn ready_len(&self) -> usize {
        self.policy.len()
    }

    /// The blocked table.
    pub fn blocked(&self) -> &Blocked<T> {
        &self.blocked
    }

    /// What this core has done so far.
    pub fn counters(&self) -> &SchedCounters {
        &self.counters
    }

    /// The policy (for figures it keeps).
    pub fn policy(&self) -> &P {
        &self.policy
    }

    /// A fresh strand id (see [`ids`]).
    #[inline]
    pub fn mint_id(&mut self) -> u64 {
        self.mint.fresh()
    }

    /// Where a strand spawned here starts (`asked`: the core it asked for).
    pub fn place(
        &self,
        asked: Option<CoreId>,
    ) -> Result<placement::Placement, placement::NoSuchCore> {
        placement::place_spawn(self.me, self.cores, asked)
    }

    /// Starts a new strand on `core`: here, or by a spawn message.
    pub fn spawn(&mut self, task: T, core: CoreId, now: Nanos) {
        if core == self.me {
            let hint = task.wake_hint();
            self.enqueue(task, hint, now);
        } else {
            self.outbox.push((core, Mail::Spawn(Box::new(task))));
        }
    }

    /// Makes `task` ready here, and offers part of the ready strands to a core
    /// known to be idle, if any.
    #[inline]
    pub fn enqueue(&mut self, task: T, hint: Insert, now: Nanos) {
        self.policy.enqueue(task, hint, now);
        self.offer_surplus(now);
    }

    /// The strand to run next.
    #[inline]
    pub fn next(&mut self, now: Nanos) -> Option<T> {
        self.dispatched_at = now;
        if now >= self.due_at {
            return self.next_due(now);
        }
        self.policy.pick_next(now)
    }

    /// [`next`](Self::next) when a load notice or a release is due, or on
    /// a leased core (which comes here every time: it keeps `due_at` at 0),
    /// where a strand not of the group (nor pinned) is evicted instead.
    #[cold]
    fn next_due(&mut self, now: Nanos) -> Option<T> {
        if now >= self.load_at {
            self.tell_load(now);
        }
        if now >= self.release_at {
            self.release(now);
        }
        let Some(lease) = &self.exclusive else {
            self.due_at = self.load_at.min(self.release_at);
            return self.policy.pick_next(now);
        };
        let group = lease.group;
        loop {
            let task = self.policy.pick_next(now)?;
            if task.pinned() || group.is_some_and(|g| task.in_group(g)) {
                return Some(task);
            }
            if let Err(task) = self.evict(task, now) {
                return Some(task);
            }
        }
    }

    /// Holds `task`, which the driver was about to run, out of the ready
    /// set until `until`: its CPU budget is spent (the driver keeps the
    /// budget: see [`crate::budget`]). It leaves the policy's set as a
    /// blocked strand does, stays on this core (no balancer sees it), and
    /// is made ready by the first [`next`](Self::next) at or after `until`.
    pub fn throttle(&mut self, mut task: T, until: Nanos) {
        self.policy.stopped(&mut task);
        self.throttled.insert(until, task);
        self.release_at = self.release_at.min(until);
        self.due_at = self.due_at.min(until);
        // (A leased core's `due_at` is 0 already.)
        self.counters.throttles += 1;
    }

    /// Leases this core to the group whose first strand has id `group`
    /// (`None`: reserved, no group yet), with `shared` the cores not leased,
    /// where its other strands go; or ends the lease (`None`). While leased
    /// the core takes part in no balancing: it asks nobody for work,
    /// answers every work request empty-handed, offers nothing, and neither
    /// sends nor acts on load notices; and [`next`](Self::next) evicts every
    /// ready strand that is neither of the group ([`TaskHandle::in_group`])
    /// nor pinned here.
    pub fn set_exclusive(&mut self, lease: Option<(Vec<CoreId>, Option<u64>)>, now: Nanos) {
        if self.keeps_all {
            // Shutting down (see `wake_all`): no lease sends strands away.
            return;
        }
        let lease = lease.filter(|(s, _)| !s.is_empty() && !s.contains(&self.me));
        let tells_load = self.balancer.load_period().is_some();
        self.load_at = match (&lease, tells_load) {
            (None, true) => now,
            _ => Nanos::MAX,
        };
        self.exclusive = lease.map(|(shared, group)| Exclusive {
            shared,
            next: 0,
            group,
        });
        self.due_at = if self.exclusive.is_some() {
            0
        } else {
            self.load_at.min(self.release_at)
        };
    }

    /// Whether this core is leased to one group.
    pub fn is_exclusive(&self) -> bool {
        self.exclusive.is_some()
    }

    /// Sends `task`, which does not belong to the group this core is leased
    /// to, to the next core not leased (in turn), as an offer. Returns that
    /// core; `None` (and the task back) if this core is not leased.
    pub fn evict(&mut self, mut task: T, now: Nanos) -> Result<CoreId, T> {
        let _ = now;
        let Some(lease) = self.exclusive.as_mut() else {
            return Err(task);
        };
        // The next shared core in turn that the strand may run on; none:
        // it stays (its mask allows only cores of this lease).
        let n = lease.shared.len();
        let Some(to) = (0..n)
            .map(|i| lease.shared[(lease.next + i) % n])
            .find(|&core| task.allowed_on(core))
        else {
            return Err(task);
        };
        lease.next = lease.next.wrapping_add(1);
        // Picked, so still in the policy's set: it leaves it here.
        self.policy.given_away(&mut task);
        task.leaving(to);
        self.counters.evicted += 1;
        self.outbox.push((to, Mail::Offer(vec![task])));
        Ok(to)
    }

    /// Strands held back by [`throttle`](Self::throttle) now.
    pub fn throttled(&self) -> usize {
        self.throttled.len()
    }

    fn release(&mut self, now: Nanos) {
        let mut due = Vec::new();
        self.throttled.expire(now, &mut due);
        self.release_at = self.throttled.next_deadline().unwrap_or(Nanos::MAX);
        // To run soon (see `slice_end`), the one due first first: each goes
        // before the ready (see `Policy::released`), so the latest goes in
        // first.
        for task in due.into_iter().rev() {
            self.policy.released(task, now);
        }
    }

    fn tell_load(&mut self, now: Nanos) {
        let Some(period) = self.balancer.load_period() else {
            self.load_at = Nanos::MAX;
            return;
        };
        self.load_at = now.saturating_add(period);
        if let Some(peer) = self.balancer.load_peer(&mut self.rng) {
            self.outbox.push((peer, Mail::Load(self.policy.load())));
        }
    }

    /// The strand the last [`next`](Self::next) returned is back at `now`
    /// (it yielded, parked or exited): its policy charges it the time it
    /// ran. Call it before [`enqueue`](Self::enqueue), [`block`](Self::block)
    /// or [`exited`](Self::exited). Not for orphans (they ran on a carrier
    /// that lost the core; their time is not this loop's to measure).
    #[inline]
    pub fn ran(&mut self, task: &mut T, now: Nanos) {
        let ran = now.saturating_sub(self.dispatched_at);
        self.policy.charge(task, ran);
    }

    /// The strand [`next`](Self::next) returned came back after running
    /// `ran` ns, measured by the driver: for a policy that asks for a
    /// [`fine_clock`](Self::fine_clock), instead of [`ran`](Self::ran).
    #[inline]
    pub fn ran_measured(&mut self, task: &mut T, ran: Nanos) {
        self.policy.charge(task, ran);
    }

    /// Whether the policy wants each run measured finer than the coarse
    /// clock (see [`Policy::fine_clock`]); a driver asks once per carrier.
    pub fn fine_clock(&self) -> bool {
        self.policy.fine_clock()
    }

    /// A strand that ran here exited: it leaves the policy's set.
    #[inline]
    pub fn exited(&mut self, task: &mut T) {
        self.policy.stopped(task);
    }

    /// When `task`, dispatched at `now`, should yield at its next runtime
    /// call, as a reading of the driver's clock, which ticks every
    /// `resolution` ns (0: exact): `now` plus the slice its policy gives it
    /// plus one tick. A reading may be up to a tick old, so without the tick
    /// a strand dispatched just before one would be cut at its next runtime
    /// call after running for almost nothing — with the runtime's 1 ms
    /// clock, a latency-class strand (a 500 µs slice) was, about 100 times
    /// in 3 s as the dispersive bench's dispatcher, each time queueing
    /// behind the batch work it exists to cut ahead of. A slice so ends
    /// between its length and a tick later — never earlier while the clock
    /// is at most a tick behind (a late clock update can still cut one
    /// short).
    ///
    /// A slice also ends when a strand throttled here is due for release —
    /// the first reading at or past it, which is when the next
    /// [`next`](Self::next) releases it (no tick added: the time is not a
    /// reading's, nothing can make it early): released strands go first
    /// (see [`Policy::released`]), so the refill is used when it comes, not
    /// a slice of every queued strand later. A refill taken late is booked
    /// late by what is past the budget's catch-up, and lost: a context that
    /// always wanted its budget got measured 15 % of 20 % in braid-sim's
    /// `budget` workload with neither; with the tick added to the release
    /// too, 19.6 % under EEVDF on 16 cores and the 1 ms clock.
    #[inline]
    pub fn slice_end(&self, task: &T, now: Nanos, resolution: Nanos) -> Nanos {
        // (A release already due — taken at the next `next` — gives a slice
        // that has ended: the strand yields at its first runtime call.
        // `max(now)` would avoid that run for 6 more instructions per
        // switch; the `min` alone costs round robin 6 per yield.)
        now.saturating_add(self.policy.slice(task))
            .saturating_add(resolution)
            .min(self.release_at)
    }

    /// Files a parked strand; returns the slot a wake names.
    #[inline]
    pub fn block(&mut self, mut task: T) -> Slot {
        self.policy.stopped(&mut task);
        let slot = self.blocked.next_slot();
        task.filed(slot);
        let filed = self.blocked.file(task);
        debug_assert_eq!(filed, slot);
        filed
    }

    /// Makes the strand filed in `slot` ready if `is_it` says it is the one a
    /// wake names; returns whether it did. A wake token can be stale: a wake
    /// sent while its strand was still being filed finds it requeued instead
    /// (the wake's effect), and by the time the message arrives the strand
    /// may have moved and parked on another core, in a slot whose number
    /// means something else here.
    #[inline]
    pub fn wake_if(&mut self, slot: Slot, now: Nanos, is_it: impl FnOnce(&T) -> bool) -> bool {
        match self.blocked.get(slot) {
            Some(task) if is_it(task) => self.wake(slot, now),
            _ => false,
        }
    }

    /// Arms a timer for `deadline` that hands back `what` when it fires.
    pub fn arm(&mut self, deadline: Nanos, what: K) -> TimerId {
        self.timers.insert(deadline, what)
    }

    /// Disarms a timer that has not fired; returns what it carried.
    pub fn disarm(&mut self, id: TimerId) -> Option<K> {
        self.timers.cancel(id)
    }

    /// Moves what the timers due at `now` carry into `fired`.
    #[inline]
    pub fn expire(&mut self, now: Nanos, fired: &mut Vec<K>) {
        if !self.timers.is_empty() {
            self.timers.expire(now, fired);
        }
    }

    /// Timers armed here.
    pub fn timers(&self) -> &Timers<K> {
        &self.timers
    }

    /// Makes the strand filed in `slot` ready; returns whether one was there.
    #[inline]
    pub fn wake(&mut self, slot: Slot, now: Nanos) -> bool {
        let Some(task) = self.blocked.take(slot) else {
            return false;
        };
        let hint = task.wake_hint();
        self.enqueue(task, hint, now);
        self.balancer.on_busy();
        true
    }

    /// Applies a message from core `from` (`None`: injected from outside the
    /// runtime's cores).
    pub fn receive(
        &mut self,
        from: Option<CoreId>,
        mail: Mail<T, K>,
        now: Nanos,
    ) -> Received<T, K> {
        match mail {
            Mail::Wake(key) => return Received::Wake(key),
            Mail::Spawn(task) => {
                let mut task = *task;
                task.arriving(self.me, now);
                let hint = task.wake_hint();
                self.enqueue(task, hint, now);
                self.balancer.on_busy();
            }
            Mail::WorkRequest => {
                let Some(from) = from.filter(|&c| c < self.cores && c != self.me) else {
                    debug_assert!(false, "a work request from {from:?}");
                    return Received::Done;
                };
                if self.exclusive.is_some() || self.keeps_all {
                    self.counters.refusals += 1;
                    self.outbox.push((from, Mail::WorkReply(Vec::new())));
                    return Received::Done;
                }
                let tasks = match self.balancer.on_request(from, self.policy.len()) {
                    Grant::Give(count) => self.take_for_transfer(from, count, now),
                    Grant::Nothing => Vec::new(),
                };
                if tasks.is_empty() {
                    // Nothing to spare, or nothing of it may move (pinned,
                    // I/O-woken): the asker is idle either way, so the
                    // balancer keeps it for later offers (otherwise it would
                    // wait for work until something else made it busy).
                    self.counters.refusals += 1;
                    self.balancer.on_refused(from);
                }
                self.outbox.push((from, Mail::WorkReply(tasks)));
            }
            Mail::WorkReply(tasks) => {
                if let Some(from) = from {
                    self.balancer.on_reply(from, tasks.len());
                }
                self.receive_transfer(tasks, now);
            }
            Mail::Offer(tasks) => {
                self.balancer.on_busy();
                self.receive_transfer(tasks, now);
            }
            Mail::Orphan(task, outcome, ran) => {
                let mut task = *task;
                // Its run, measured by the carrier that ran it, is charged
                // like any other (a hog that ran 10 ms must not come back
                // with the virtual time it left with).
                self.policy.charge(&mut task, ran);
                return Received::Orphan(task, outcome);
            }
            Mail::Load(theirs) => {
                let Some(from) = from.filter(|&c| c < self.cores && c != self.me) else {
                    return Received::Done;
                };
                if self.exclusive.is_some() || self.keeps_all {
                    return Received::Done;
                }
                let mine = self.policy.load();
                if let Some((weight, limit)) = self.balancer.on_load(from, theirs, mine) {
                    self.offer_weight(from, weight, limit, now);
                }
            }
        }
        Received::Done
    }

    fn receive_transfer(&mut self, tasks: Vec<T>, now: Nanos) {
        self.counters.stolen += tasks.len() as u64;
        for mut task in tasks {
            task.arriving(self.me, now);
            self.policy.enqueue(task, Insert::Tail, now);
        }
    }

    /// Offers core `to` the ready strand whose weight is nearest `weight`
    /// (at most `limit`), if one may move.
    fn offer_weight(&mut self, to: CoreId, weight: u64, limit: u64, now: Nanos) {
        let taken = self
            .policy
            .take_near_weight(weight, limit)
            .into_iter()
            .collect();
        let tasks = self.hand_over(to, taken, now);
        if !tasks.is_empty() {
            self.counters.offers += 1;
            self.outbox.push((to, Mail::Offer(tasks)));
        }
    }

    // Always: on every `enqueue`, so on every yield's path; the check for
    // a closed core tipped it out of line, which cost a yield ~20
    // instructions (callgrind, `switches 200000 0 0`).
    #[inline(always)]
    fn offer_surplus(&mut self, now: Nanos) {
        if let Some((peer, count)) = self.balancer.on_surplus(self.policy.len()) {
            if self.exclusive.is_some() || self.keeps_all {
                return;
            }
            // An offer that finds nothing movable forgets the peer (it is
            // remembered again when it next asks): re-registering it would
            // make every later enqueue scan half the queue again.
            let tasks = self.take_for_transfer(peer, count, now);
            if !tasks.is_empty() {
                self.counters.offers += 1;
                self.outbox.push((peer, Mail::Offer(tasks)));
            }
        }
    }

    /// Takes up to `count` ready strands to give to core `to` (see
    /// [`hand_over`](Self::hand_over)).
    #[inline(never)]
    fn take_for_transfer(&mut self, to: CoreId, count: usize, now: Nanos) -> Vec<T> {
        let taken = self.policy.take_for_transfer(count);
        self.hand_over(to, taken, now)
    }

    /// Of the strands `taken` out of the policy for core `to`, the ones that
    /// may move, marked as leaving. Pinned strands go back, and strands not
    /// allowed on `to`; so do strands woken by socket readiness unless this
    /// core has been busy without a break for [`SchedConfig::io_stay`].
    fn hand_over(&mut self, to: CoreId, mut taken: Vec<T>, now: Nanos) -> Vec<T> {
        let io_moves = now.saturating_sub(self.busy_since) >= self.config.io_stay;
        let stays = |t: &T| t.pinned() || !t.allowed_on(to) || (!io_moves && t.io_woken());
        if taken.iter().any(stays) {
            let (staying, movable): (Vec<T>, Vec<T>) = taken.into_iter().partition(stays);
            for task in staying {
                self.policy.untake(task, now);
            }
            taken = movable;
        }
        for task in &mut taken {
            task.leaving(to);
        }
        self.counters.given += taken.len() as u64;
        taken
    }

    /// Nothing to run: maybe ask a victim for work (into the outbox), and say
    /// how to spin. `has_sources`: the core has sockets registered.
    pub fn idle(&mut self, has_sources: bool) -> Spin {
        if self.exclusive.is_some() {
            return self.idler.spin(has_sources);
        }
        if let Some(victim) = self.balancer.on_idle(&mut self.rng) {
            self.counters.requests += 1;
            self.outbox.push((victim, Mail::WorkRequest));
        }
        self.idler.spin(has_sources)
    }

    /// After a spin that found nothing (see [`Idler::park`]).
    pub fn park(&self, now: Nanos, overflow: bool) -> Park {
        let timer = self.timers.next_deadline();
        let release = (self.release_at != Nanos::MAX).then_some(self.release_at);
        let wake = match (timer, release) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.idler.park(now, overflow, wake)
    }

    /// The idle spell ended at `now`, as `how` says: the busy spell starts.
    pub fn idle_ended(&mut self, now: Nanos, how: IdleEnd) {
        self.idler.ended(how);
        self.busy_since = now;
    }

    /// One more scheduling pass at `now`: whether a busy core should poll
    /// its sockets on it — every [`SchedConfig::busy_poll_passes`] passes,
    /// and at least once each time the clock moves (strands that use whole
    /// time slices make few passes).
    #[inline]
    pub fn busy_poll_due(&mut self, now: Nanos) -> bool {
        self.passes_since_poll = self.passes_since_poll.wrapping_add(1);
        if self.passes_since_poll >= self.config.busy_poll_passes || now != self.poll_checked_at {
            self.passes_since_poll = 0;
            self.poll_checked_at = now;
            return true;
        }
        false
    }

    /// The core polled its sockets (busy or idle): the pass count restarts.
    #[inline]
    pub fn polled(&mut self) {
        self.passes_since_poll = 0;
    }

    /// The current spin length (for statistics).
    pub fn spin(&self) -> Nanos {
        self.idler.current_spin()
    }

    /// Whether messages wait in the outbox.
    #[inline]
    pub fn has_outbox(&self) -> bool {
        !self.outbox.is_empty()
    }

    /// The messages to send, in order, each with its destination; the driver
    /// must deliver every one.
    #[inline]
    pub fn take_outbox(&mut self) -> std::vec::Drain<'_, (CoreId, Mail<T, K>)> {
        self.outbox.drain(..)
    }

    /// Makes every strand this core holds blocked or throttled ready, and
    /// disarms its timers: the runtime's shutdown runs them all to their end
    /// (it then treats a park as a yield). From then on the core gives no
    /// strand away — it answers work requests empty-handed, offers nothing
    /// and ends its lease — since its peers may stop once their own strands
    /// ended. Returns how many it woke.
    pub fn wake_all(&mut self, now: Nanos) -> usize {
        self.keeps_all = true;
        self.exclusive = None;
        self.timers.clear();
        let mut all = self.blocked.drain();
        let blocked = all.len();
        self.throttled.expire(Nanos::MAX, &mut all);
        self.release_at = Nanos::MAX;
        self.due_at = self.load_at;
        let woken = all.len();
        for (i, task) in all.into_iter().enumerate() {
            if i < blocked {
                // Not `enqueue`: the core offers nothing any more, and a
                // second caller would cost the hot one its inlining.
                let hint = task.wake_hint();
                self.policy.enqueue(task, hint, now);
            } else {
                self.policy.released(task, now);
            }
        }
        woken
    }

    /// Takes every strand this core holds, ready, blocked or throttled, and disarms its
    /// timers (at shutdown).
    pub fn abandon(&mut self, now: Nanos) -> Vec<T> {
        self.timers.clear();
        let mut all = Vec::new();
        while let Some(task) = self.policy.pick_next(now) {
            all.push(task);
        }
        all.extend(self.blocked.drain());
        self.throttled.expire(Nanos::MAX, &mut all);
        self.release_at = Nanos::MAX;
        self.due_at = self.load_at;
        all
    }
}

#[cfg(test)]
mod tests;
