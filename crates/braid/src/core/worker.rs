//! The carrier thread: the scheduling loop of one core.
//!
//! Each pass applies mail (O(1) when there is none), fires due timers, and runs
//! the strand the core's scheduler picks until it yields, parks or exits. With
//! nothing to run the carrier follows the scheduler's idle plan
//! (`braid_core::sched::idle`): it sends the work request the balancer chose,
//! spins as long as the plan says, then parks in its poller (see `io`) with a
//! timeout of its earliest timer; the doorbell wakes it through the poller's
//! waker. A busy core with sockets polls without waiting as often as its
//! scheduler says (`CoreSched::busy_poll_due`).

use super::local::Local;
use super::mail::Msg;
use super::shared::bump;
use crate::context::{self, Carrier, Suspend};
use crate::facade::Ordering;
use crate::runtime::RuntimeShared;
use crate::strand::{StrandCounters, StrandState, Task, READY_UNIT_SHIFT};
use crate::{overflow, sys};
use braid_core::sched::{IdleEnd, Outcome, Park};
use braid_core::Mail;
use corosensei::CoroutineResult;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Body of a carrier thread for `core`, holding ownership claim `claim`.
pub(crate) fn carrier_main(rt: Arc<RuntimeShared>, core: usize, claim: super::Claim) {
    let shared = &rt.cores[core];
    shared
        .carrier_tid
        .store(sys::thread_id(), Ordering::Relaxed);
    if let Some(cpu) = shared.cpu {
        if let Err(err) = sys::pin_current_thread(cpu) {
            rt.warn_once(&format!(
                "braid: cannot pin core {core} to CPU {cpu} ({err}); running unpinned"
            ));
        }
    }
    overflow::prepare_thread();
    let mut carrier = Carrier {
        core: shared,
        local: shared.local_ptr(),
        current: std::ptr::null(),
        clock: &rt.clock_ns,
        slice_end: crate::facade::AtomicU64::new(u64::MAX),
        reason: Suspend::Yield,
        claim,
        retired: false,
        deciding: false,
        wakes: Vec::new(),
        hold: None,
        timer_armed: false,
        fine: None,
        run_started: crate::cycles::UNREAD,
    };
    context::with_carrier(&mut carrier, |c| {
        // SAFETY: `c` is this thread's live carrier, and this thread owns the core
        // (a new runtime, or a handoff that gave it epoch `epoch`), so its
        // `Local` is ours to read.
        unsafe {
            if (*(*c).local).sched.fine_clock() {
                (*c).fine = Some(crate::cycles::FineClock::get());
            }
            scheduler_loop(&rt, c)
        }
    });
    if let Some(hold) = carrier.hold.take() {
        hold.retire(&rt);
    }
}

/// # Safety
/// `c` must be the calling thread's installed carrier, owning its core.
unsafe fn scheduler_loop(rt: &RuntimeShared, c: *mut Carrier) {
    // SAFETY: the caller guarantees `c` is live and owns the core, so `local`
    // is ours; each `&mut *local` below ends before a strand runs.
    unsafe {
        let local = (*c).local;
        loop {
            // The coarse clock once a pass, before mail: every decision of
            // this pass is made at it.
            (*local).tick = rt.clock_ns.load(Ordering::Relaxed);
            (*local).poll_mail();
            if (*local).shutdown {
                quiet_if_armed(c);
                if !drain(rt, c) {
                    return;
                }
                let leaked = (*local).abandon_all();
                rt.strands_left(leaked);
                // Dropping what was left may have woken strands elsewhere
                // (of other runtimes: this one's are gone with it).
                for header in std::mem::take(&mut (*c).wakes) {
                    if header.runtime_id != (*local).runtime_id {
                        super::wake::foreign_wake(header);
                    }
                }
                return;
            }
            (*local).fire_timers();
            if !(*local).closure_jobs.is_empty() || !(*local).closure_graveyard.is_empty() {
                quiet_if_armed(c);
                let failed = crate::event::local::run_closure_jobs(local);
                rt.closure_failures.fetch_add(failed, Ordering::Relaxed);
                // Closures may run long: the next run is timed from its
                // own start, not charged for them.
                (*c).run_started = crate::cycles::UNREAD;
            }
            // Poll sockets without waiting when the scheduler says so.
            let tick = (*local).tick;
            if (*local).sched.busy_poll_due(tick) && (*local).shared().io.wants_poll() {
                (*local).poll_io(Some(Duration::ZERO));
            }
            if !(*c).wakes.is_empty() {
                route_buffered_wakes(c);
            }
            let next = (*local).sched.next(tick);
            match next {
                Some(task) => {
                    if !run_task(rt, c, task) {
                        return;
                    }
                }
                None => {
                    quiet_if_armed(c);
                    idle(rt, &mut *local);
                    // The next run is timed from its own start, not from
                    // the last run's end.
                    (*c).run_started = crate::cycles::UNREAD;
                }
            }
        }
    }
}

/// The runtime is shutting down (see `Runtime`'s drop): runs this core's
/// strands to their end, until none is left here or the shutdown's
/// deadline passes. Each strand is doomed before it runs again: it counts
/// as cancelled, so its blocking calls return their cancellation errors
/// (withdrawing their waits, passing on what they were offered), and it
/// unwinds at its next unwind point (`Header::cancel_point`), running its
/// destructors. Blocked and throttled strands are made ready to find that
/// out; while the core drains a park is a yield (`Local::suspended`) and
/// budgets are not enforced. Strands that arrive by mail meanwhile are run
/// too. Returns false if this carrier lost its core while a strand ran.
///
/// # Safety
/// As for `scheduler_loop`.
#[cold]
unsafe fn drain(rt: &RuntimeShared, c: *mut Carrier) -> bool {
    // SAFETY: as for `scheduler_loop`; no reference into `local` is held
    // across `run_task`.
    unsafe {
        let local = (*c).local;
        // Relaxed: stored before the shutdown's message, which the bus
        // delivered to this core (release/acquire) before it got here.
        let deadline = rt.shutdown_deadline.load(Ordering::Relaxed);
        (*local).wake_all_for_drain();
        if !(*local).drain_closed {
            // What this core sent before it closed must be in the rings, not
            // in its overflow queues (flushed only by its own later calls),
            // when the count reaches 0.
            while (*local).endpoint.has_overflow() && rt.now_ns() < deadline {
                (*local).poll_mail();
                std::thread::yield_now();
            }
            (*local).drain_closed = true;
            // SeqCst with the load below: whatever a core gave away before
            // it closed is in a ring before the count reaches 0.
            rt.open_cores.fetch_sub(1, Ordering::SeqCst);
        }
        // Every core closed, seen before the last poll of mail.
        let mut all_closed = false;
        loop {
            let tick = rt.advance_clock();
            (*local).tick = tick;
            (*local).poll_mail();
            if !(*c).wakes.is_empty() {
                route_buffered_wakes(c);
            }
            if tick >= deadline {
                return true;
            }
            match (*local).sched.next(tick) {
                Some(task) => {
                    task.header.doomed.store(true, Ordering::Relaxed);
                    if !run_task(rt, c, task) {
                        return false;
                    }
                }
                // Filed by mail that came in since (an orphan that had
                // parked).
                None if !(*local).sched.blocked().is_empty() || (*local).sched.throttled() > 0 => {
                    (*local).wake_all_for_drain()
                }
                // Nothing left, and nothing can come: mail was read after
                // every core closed.
                None if all_closed => return true,
                None if rt.open_cores.load(Ordering::SeqCst) == 0 => all_closed = true,
                // A core still open may give this one strands yet.
                None => {
                    (*local).poll_io(Some(Duration::from_millis(1)));
                }
            }
        }
    }
}

/// Routes the wakes scheduler code buffered on this carrier (see
/// `Carrier::wakes`).
///
/// # Safety
/// As for `scheduler_loop`, with no reference to the core's `Local` live.
#[cold]
unsafe fn route_buffered_wakes(c: *mut Carrier) {
    // SAFETY: `c` is this thread's live carrier and owns the core (the
    // caller's contract), and no reference into its `Local` is live, so this
    // one is the only one until the loop goes on.
    unsafe {
        let mut wakes = std::mem::take(&mut (*c).wakes);
        let local = &mut *(*c).local;
        for header in wakes.drain(..) {
            local.route_wake(header);
        }
        // Routing should buffer nothing new, but keep anything it did (and
        // the buffer's capacity).
        let late = std::mem::replace(&mut (*c).wakes, wakes);
        (*c).wakes.extend(late);
    }
}

/// Runs `task` until it suspends. Returns false if this carrier lost its core
/// meanwhile (the task was handed to the core's new carrier).
///
/// # Safety
/// As for `scheduler_loop`.
// Always: called from the loop and from the shutdown's drain, it would
// otherwise be outlined, which costs the loop ~50 instructions a switch
// (callgrind, `switches 200000 0 0`).
#[inline(always)]
unsafe fn run_task(rt: &RuntimeShared, c: *mut Carrier, mut task: Task) -> bool {
    // SAFETY: the caller guarantees `c` is this thread's carrier; while the strand
    // runs, no reference to local state is held here.
    unsafe {
        let shared = &*(*c).core;
        if task.coroutine.is_none() {
            // First run: take a stack now (no reference to `local` is live
            // across the call, which may wake a joiner).
            let local = (*c).local;
            if !crate::spawn::launch(&mut task, |size| (*local).take_stack(size)) {
                (*local).finish(task);
                return true;
            }
        }
        let header = Arc::as_ptr(&task.header);
        let mut started = rt.clock_ns.load(Ordering::Relaxed);
        (*c).slice_end.store(
            (*(*c).local)
                .sched
                .slice_end(&task, started, crate::monitor::TICK_NS),
            Ordering::Relaxed,
        );
        // The context this run is charged to, kept for the stop: the
        // strand may change its own while it runs (a server taking a call
        // runs on its caller's, see `endpoint`); the one it replaces stays
        // alive until its next run (`Header::set_donated`). A raw pointer,
        // not a counted clone: the clone and its drop cost 8 instructions
        // per switch of every strand, bound or not.
        let mut bound: *const crate::budget::ContextCell =
            (*header).context().map_or(std::ptr::null(), Arc::as_ptr);
        if let Some(context) = bound.as_ref() {
            if (*(*c).local).shutdown {
                // Draining (see `drain`): no budget holds a strand back
                // from its end.
                bound = std::ptr::null();
                quiet_if_armed(c);
            } else if let Some(until) = start_bound(rt, c, context) {
                (*(*c).local).sched.throttle(task, until);
                return true;
            }
        } else {
            quiet_if_armed(c);
        }
        (*header).set_state(StrandState::Running);
        (*c).current = header;
        (*c).claim.leave_scheduler();
        if let Some(clock) = (*c).fine {
            // Back to back, a run starts when the last one ended: one
            // reading per switch. The pass between them — the last
            // strand's suspension, mail, due timers, a poll, the pick — is
            // charged to the strand it ends in; after an idle spell or
            // scheduler closures the run is timed from its own start.
            if (*c).run_started == crate::cycles::UNREAD {
                (*c).run_started = clock.read();
            }
        }
        let result = task
            .coroutine
            .as_mut()
            .expect("a queued task has its coroutine")
            .resume(());
        if let Some(context) = bound.as_ref() {
            started = stop_bound(rt, c, context, started);
        }
        let owned = !(*c).retired && shared.enter_scheduler(&mut (*c).claim);
        (*c).current = std::ptr::null();
        let ended = rt.clock_ns.load(Ordering::Relaxed);
        let counters = &(*header).counters;
        // The wait before this run, counted with the others after it: the
        // counters take one trip to memory per switch, not two.
        counters.dispatched((*header).ready_since(), started);
        StrandCounters::bump(&counters.switches, 1);
        bump(&shared.counters.switches, 1);
        let outcome = match result {
            CoroutineResult::Yield(()) if (*c).reason == Suspend::Park => Outcome::Parked,
            CoroutineResult::Yield(()) => Outcome::Yielded,
            CoroutineResult::Return(()) => Outcome::Exited,
        };
        if !owned {
            // The monitor gave this core to a new carrier while the strand ran:
            // hand the strand over and let this thread end.
            (*c).retired = true;
            let ran = match (*c).fine {
                Some(clock) => measured(clock, (*c).run_started).1,
                None => ended.saturating_sub(started),
            };
            StrandCounters::bump(&counters.runtime_ns, ran);
            rt.inject(
                shared.id,
                Msg::Sched(Mail::Orphan(Box::new(task), outcome, ran)),
            );
            return false;
        }
        let local = &mut *(*c).local;
        // What the loop does next about this strand happens now, not at the
        // top of the pass (the strand may have run a whole slice).
        local.tick = ended;
        // What the run took: on the fine clock where the policy reads one
        // (the strand's counter then shows what the policy charged), else
        // on the coarse tick.
        match (*c).fine {
            Some(clock) => {
                let (now, ran) = measured(clock, (*c).run_started);
                (*c).run_started = now;
                StrandCounters::bump(&counters.runtime_ns, ran);
                local.sched.ran_measured(&mut task, ran);
            }
            None => {
                StrandCounters::bump(&counters.runtime_ns, ended.saturating_sub(started));
                local.sched.ran(&mut task, ended);
            }
        }
        local.suspended(task, outcome);
        true
    }
}

/// A reading of `clock` now, and the ns since `started` on it: 0 for a
/// reading that went back (the counters of two CPUs a carrier moved
/// between, a few cycles apart), not nearly 2^64 units.
#[inline]
fn measured(clock: &crate::cycles::FineClock, started: u64) -> (u64, u64) {
    let now = clock.read();
    let units = now.wrapping_sub(started);
    let ran = if units > i64::MAX as u64 {
        0
    } else {
        clock.ns(units)
    };
    (now, ran)
}

/// A strand bound to `context` is about to run: returns when to release it
/// if its budget is spent; otherwise arms this carrier's budget timer (see
/// `budget`).
///
/// # Safety
/// As for `scheduler_loop`.
#[cold]
#[inline(never)]
unsafe fn start_bound(
    rt: &RuntimeShared,
    c: *mut Carrier,
    context: &crate::budget::ContextCell,
) -> Option<u64> {
    let now = rt.now_ns();
    let (dispatch, notices) = context.dispatch(now);
    context.send(rt, notices);
    let (available, run) = match dispatch {
        braid_core::budget::Dispatch::Throttle(until) => return Some(until),
        braid_core::budget::Dispatch::Run { available, run } => (available, run),
    };
    // SAFETY: the caller's contract: `c` is this thread's live carrier.
    unsafe {
        let hold = (*c).hold.get_or_insert_with(|| {
            let (hold, failed) =
                crate::budget::Hold::new(rt, &(*c).slice_end, (*c).claim.flag(), (*(*c).core).id);
            if let Some(err) = failed {
                rt.warn_once(&format!(
                    "braid: cannot arm a CPU budget timer ({err}); strands bound to \
                     scheduling contexts are charged at their switches only"
                ));
            }
            hold
        });
        hold.start(context, run, now, available);
        (*c).timer_armed = hold.armed();
    }
    None
}

/// Disarms this carrier's budget timer if a bound run left it armed: before
/// a strand that is not bound runs, scheduler closures run, the core parks
/// or the loop ends (its expiry would interrupt their system calls).
///
/// # Safety
/// As for `scheduler_loop`.
#[inline(always)]
unsafe fn quiet_if_armed(c: *mut Carrier) {
    // SAFETY: the caller's contract.
    unsafe {
        if (*c).timer_armed {
            quiet_budget_timer(c);
        }
    }
}

/// [`quiet_if_armed`]'s disarming.
///
/// # Safety
/// As for `scheduler_loop`.
#[cold]
#[inline(never)]
unsafe fn quiet_budget_timer(c: *mut Carrier) {
    // SAFETY: the caller's contract: `c` is this thread's live carrier.
    unsafe {
        if let Some(hold) = (*c).hold.as_ref() {
            hold.disarm();
        }
        (*c).timer_armed = false;
    }
}

/// The strand bound to `context` that this carrier ran stopped, its run
/// dispatched at `started` on the coarse clock: charges its context. The
/// time its carrier was held for the budget meanwhile (see `budget::Hold`)
/// is not time it ran: the run's start moves past it on both clocks (the
/// coarse one returned; the strand's ready time with it, so its wait stays
/// as it was), so neither its runtime counter nor a fair policy counts it.
///
/// # Safety
/// As for `scheduler_loop`.
#[cold]
#[inline(never)]
unsafe fn stop_bound(
    rt: &RuntimeShared,
    c: *mut Carrier,
    context: &crate::budget::ContextCell,
    started: braid_core::Nanos,
) -> braid_core::Nanos {
    // SAFETY: the caller's contract: `c` is this thread's live carrier.
    let Some(hold) = (unsafe { (*c).hold.as_ref() }) else {
        return started;
    };
    let (run, start, used, held) = hold.stop();
    let notices = context.charge(run, start, used, rt.now_ns());
    context.send(rt, notices);
    if held == 0 {
        return started;
    }
    // SAFETY: as above; the current strand's header lives while it runs.
    unsafe {
        if let Some(clock) = (*c).fine {
            if (*c).run_started != crate::cycles::UNREAD {
                (*c).run_started = (*c).run_started.wrapping_add(clock.units(held));
            }
        }
        // The wait is counted in 2^20 ns units of the start: the ready
        // time moves by as many as the start does, so the wait is as it was.
        let units = ((started + held) >> READY_UNIT_SHIFT) - (started >> READY_UNIT_SHIFT);
        (*(*c).current).ready_later(units as u32);
    }
    started + held
}

/// Nothing to run: ask for work, spin, then park in the poller until mail, I/O
/// or the next timer, as the core's scheduler plans it.
///
/// Polling wakes strands only into the carrier's wake buffer (see
/// `Carrier::wakes`), and no strand runs here, so `local` is the only
/// reference to the core's state throughout.
fn idle(rt: &RuntimeShared, local: &mut Local) {
    local.return_reserve();
    let how = idle_wait(rt, local);
    // The core has work again from here: its busy spell starts now. After a
    // park the clock may be stale (the monitor sleeps while every core
    // does): bring it up to date, or the strands run next would be charged
    // the idle time and cut short at the next tick.
    // A return for a due timer or release needs the clock past it too, or
    // the loop would find nothing due and idle again until the next tick.
    let now = match how {
        IdleEnd::Parked(_) | IdleEnd::Returned => rt.advance_clock(),
        IdleEnd::Spun => rt.clock_ns.load(Ordering::Relaxed),
    };
    local.tick = now;
    local.sched.idle_ended(now, how);
}

fn idle_wait(rt: &RuntimeShared, local: &mut Local) -> IdleEnd {
    // With sockets registered, readiness is as likely to end the wait as
    // mail: the plan has the spin look at the poller too.
    let plan = local.sched.idle(local.shared().io.has_sources());
    local.send_outbox();
    let spin = Duration::from_nanos(plan.spin);
    let poll_every = plan.poll_every.map(Duration::from_nanos);
    let start = Instant::now();
    let mut polled = start;
    loop {
        for _ in 0..64 {
            if !local.endpoint.doorbell().is_empty() {
                return IdleEnd::Spun;
            }
            std::hint::spin_loop();
        }
        let now = Instant::now();
        if let Some(every) = poll_every {
            if now.duration_since(polled) >= every {
                polled = now;
                if local.poll_io(Some(Duration::ZERO)) > 0 {
                    return IdleEnd::Spun;
                }
            }
        }
        if now.duration_since(start) >= spin {
            break;
        }
    }
    let now_ns = local.ns_at(Instant::now());
    let timeout = match local.sched.park(now_ns, local.endpoint.has_overflow()) {
        Park::Return => return IdleEnd::Returned,
        Park::Pause(pause) => {
            // Our messages wait for room in a full ring: nobody would wake us.
            std::thread::sleep(Duration::from_nanos(pause));
            return IdleEnd::Returned;
        }
        Park::Sleep(deadline) => deadline.map(|at| Duration::from_nanos(at - now_ns)),
    };
    if !local.endpoint.try_sleep() {
        return IdleEnd::Returned;
    }
    let shared = local.shared();
    shared.parked.store(true, Ordering::Relaxed);
    bump(&shared.counters.parks, 1);
    rt.core_parked();
    // A ring after `try_sleep` writes the poller's eventfd, which stays
    // readable until the poll sees it: no wake is lost between the two.
    let parked_at = Instant::now();
    local.poll_io(timeout);
    let parked = parked_at.elapsed().as_nanos() as u64;
    local.endpoint.wake_up();
    rt.core_unparked();
    local.shared().parked.store(false, Ordering::Relaxed);
    IdleEnd::Parked(parked)
}
