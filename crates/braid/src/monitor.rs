//! The monitor thread: the coarse clock, time slices, and rescuing the queue of a
//! core whose strand never returns to the runtime.
//!
//! Every tick (1 ms while any core is awake, 250 µs while a core is in a burst
//! of hogs) the monitor advances the coarse clock, against which strands check
//! the end of their time slice (the policy's, given when the strand was
//! dispatched) at their runtime calls. It also reports each core's switch
//! counter to the core's `braid_core::sched::watchdog::Watch`: a core whose
//! counter has not moved while it runs strand code is running one strand for
//! that long, and the watch says what follows; the monitor applies it:
//! - past the hog threshold (halved by each hand-off of a burst), with strands
//!   waiting behind it (ready, mail, or sockets registered with its poller),
//!   the monitor takes the core's local state from the stuck carrier (see
//!   `core::handshake` for the handshake) and starts a replacement carrier on
//!   the same CPU. The old carrier keeps the hog, demoted so that it does not
//!   slow the new one (`replace_carrier`; docs/ARCHITECTURE.md, "Hogs"), hands
//!   its strand back when it next returns to the runtime, then ends.
//!
//! It also ends leases that expired, whose group exited, or that keep work
//! waiting on every shared core (see `lease`).
//!
//! When every core is parked the monitor sleeps too, on a futex that the first
//! core to wake bumps: an idle runtime uses no CPU (with a lease in force it
//! still ticks, to end the lease on time).

use crate::facade::Ordering;
use crate::runtime::{Demoted, HogGroupState, Retired, RuntimeShared};
use crate::sys;
use braid_core::sched::watchdog::{demotion, restart_delay, Verdict, Watch, DEMOTED_WEIGHT};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

const TICK: Duration = Duration::from_millis(1);
/// How often the monitor looks while a core is in a burst of hogs (see
/// `braid_core::sched::watchdog`), and the threshold's floor then: the burst
/// passes a hog about every `BURST_TICK` instead of every hog threshold.
const BURST_TICK: Duration = Duration::from_micros(250);
/// [`TICK`] in nanoseconds: the resolution of the coarse clock.
pub(crate) const TICK_NS: u64 = TICK.as_nanos() as u64;

pub(crate) fn start(rt: Arc<RuntimeShared>) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name("braid-monitor".into())
        .spawn(move || run(&rt))
        .expect("cannot start the braid monitor thread")
}

fn run(rt: &Arc<RuntimeShared>) {
    // Carriers running hogs at the program's priority share the CPUs with
    // this thread: without a higher class its wakes wait for the kernel's
    // tick (4 ms on many kernels), and so does every hand-off.
    sys::raise_current_thread();
    let hog = rt.config.hog_threshold.as_nanos() as u64;
    let mut watches: Vec<Watch> = rt
        .cores
        .iter()
        .map(|_| Watch::new(hog, BURST_TICK.as_nanos() as u64))
        .collect();
    // Cores taken from their carrier whose replacement could not start yet.
    let mut vacancies: Vec<Option<Vacancy>> = rt.cores.iter().map(|_| None).collect();
    let mut next_reap = 0;
    loop {
        if rt.shutdown.load(Ordering::SeqCst) {
            crate::budget::let_go_all(rt);
            // A vacant core needs a carrier to drain it: one last try,
            // whatever the back-off says.
            retry_vacancies(rt, u64::MAX, &mut vacancies);
            return;
        }
        let seq = rt.monitor_seq.load(Ordering::SeqCst);
        // Carriers held for their strand's CPU budget bump `seq` first.
        let now = rt.now_ns();
        crate::budget::release_held(rt, now, |core, tid| {
            take_from_held(rt, core, tid, &mut vacancies[core]);
        });
        retry_vacancies(rt, now, &mut vacancies);
        reap_retired(rt, now, &mut next_reap);
        crate::lease::check(rt);
        if rt.awake_cores() == 0 {
            // Leases end by time and by their group's exit, which an idle
            // runtime must see too: while any is in force, keep ticking.
            let leases = !rt
                .leases
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_empty();
            sys::futex_wait(&rt.monitor_seq, seq, leases.then_some(TICK));
            continue;
        }
        let burst = watches.iter().any(Watch::in_burst);
        std::thread::sleep(if burst { BURST_TICK } else { TICK });
        let now = rt.advance_clock();
        for (core, watch) in rt.cores.iter().zip(watches.iter_mut()) {
            let switches = core.counters.switches.load(Ordering::Relaxed);
            // A carrier holds the hand-off lock: look again next tick.
            let Some(in_strand) = core.in_strand() else {
                continue;
            };
            // Sockets registered there may have readiness nobody polls.
            let waiting = in_strand
                && (core.ready_len.load(Ordering::Relaxed) > 0
                    || !rt.bus.doorbell(core.id).is_empty()
                    || core.io.has_sources());
            if watch.observe(now, switches, in_strand, waiting) == Verdict::HandOff {
                let stuck = || core.counters.switches.load(Ordering::Relaxed) == switches;
                if let Some(epoch) = core.try_revoke(stuck) {
                    hand_off(rt, now, core.id, epoch, true, &mut vacancies[core.id]);
                    watch.handed_off(now);
                }
            }
        }
    }
}

/// How often ended retired carriers are joined between hand-offs.
const REAP_EVERY_NS: u64 = 10_000_000;

/// Joins retired carriers whose thread ended (their stacks stay mapped until
/// then), at most every [`REAP_EVERY_NS`], not only at the next hand-off.
fn reap_retired(rt: &RuntimeShared, now: u64, next_reap: &mut u64) {
    if now < *next_reap {
        return;
    }
    *next_reap = now.saturating_add(REAP_EVERY_NS);
    if let Ok(mut carriers) = rt.carriers.try_lock() {
        if !carriers.retired.is_empty() {
            carriers.reap();
        }
    }
}

/// Gives core `core` to a new carrier if the carrier `tid`, held for its
/// strand's CPU budget (see `budget`), still owns it: the core's other
/// strands run while the held one waits for its refill.
fn take_from_held(rt: &Arc<RuntimeShared>, core: usize, tid: i32, vacancy: &mut Option<Vacancy>) {
    let shared = &rt.cores[core];
    if shared.carrier_tid.load(Ordering::Relaxed) != tid || shared.in_strand() != Some(true) {
        return;
    }
    let switches = shared.counters.switches.load(Ordering::Relaxed);
    let stuck = || shared.counters.switches.load(Ordering::Relaxed) == switches;
    if let Some(epoch) = shared.try_revoke(stuck) {
        // Not demoted: its budget, not its priority, limits what it gets.
        hand_off(rt, rt.now_ns(), core, epoch, false, vacancy);
    }
}

/// A core taken from its carrier (ownership epoch `epoch`) whose new carrier
/// could not be started: the monitor tries again with back-off
/// (`braid_core::sched::watchdog::restart_delay`) until one starts or the old
/// carrier takes the core back at its strand's next runtime call.
#[derive(Debug)]
struct Vacancy {
    epoch: u32,
    demote: bool,
    failures: u32,
    next_try: u64,
}

/// Starts a carrier for `core`, just taken from its carrier under `epoch`;
/// if it cannot start, records the vacancy for [`retry_vacancies`] and says
/// so once.
fn hand_off(
    rt: &Arc<RuntimeShared>,
    now: u64,
    core: usize,
    epoch: u32,
    demote: bool,
    vacancy: &mut Option<Vacancy>,
) {
    if let Err(err) = replace_carrier(rt, core, epoch, demote) {
        rt.warn(&format!(
            "braid: cannot start a replacement carrier for core {core} ({err}); its strands wait \
             until one starts (retrying, at least every second) or its running strand returns"
        ));
        *vacancy = Some(Vacancy {
            epoch,
            demote,
            failures: 1,
            next_try: now.saturating_add(restart_delay(1)),
        });
    }
}

/// Tries again to start the carriers that could not start, when their
/// back-off allows.
fn retry_vacancies(rt: &Arc<RuntimeShared>, now: u64, vacancies: &mut [Option<Vacancy>]) {
    for (core, slot) in vacancies.iter_mut().enumerate() {
        let Some(vacancy) = slot.as_mut() else {
            continue;
        };
        if now < vacancy.next_try {
            continue;
        }
        match replace_carrier(rt, core, vacancy.epoch, vacancy.demote) {
            Ok(()) => *slot = None,
            Err(_) => {
                vacancy.failures = vacancy.failures.saturating_add(1);
                vacancy.next_try = now.saturating_add(restart_delay(vacancy.failures));
            }
        }
    }
}

/// Starts a new carrier for `core`, which the carrier now running a strand
/// there lost (ownership epoch `epoch`), unless that carrier took the core
/// back meanwhile (see `core::handshake`, vacancy). With `demote`, the old
/// carrier is running a hog: its priority drops with the number of the
/// core's carriers in that state (`braid_core::sched::watchdog::demotion`),
/// those already there dropping with it, and it goes into the runtime's hog
/// group where there is one (`HogMover`). An error leaves the core vacant,
/// its old carrier as it was.
fn replace_carrier(
    rt: &Arc<RuntimeShared>,
    core: usize,
    epoch: u32,
    demote: bool,
) -> std::io::Result<()> {
    let shared = &rt.cores[core];
    let Some(claim) = shared.take_vacant(epoch) else {
        return Ok(());
    };
    // Stable from here: the old carrier can no longer take the core back,
    // and the new one has not started.
    let old = shared.carrier_tid.load(Ordering::Relaxed);
    let started = if crate::testing::carrier_start_fails() {
        Err(std::io::Error::new(
            std::io::ErrorKind::WouldBlock,
            "failed on purpose by braid::testing",
        ))
    } else {
        rt.start_carrier(core, claim)
    };
    let handle = match started {
        Ok(handle) => {
            shared.started(epoch);
            handle
        }
        Err(err) => {
            shared.leave_vacant(epoch);
            return Err(err);
        }
    };
    let mut carriers = rt.carriers.lock().unwrap_or_else(|e| e.into_inner());
    carriers.reap();
    let mut demoted = (old != 0 && demote).then(|| {
        let to = demotion(u32::try_from(carriers.demoted_on(core) + 1).unwrap_or(u32::MAX));
        for retired in carriers.retired.iter_mut().filter(|r| r.core == core) {
            if let Some(d) = retired.demoted.as_mut() {
                if d.to < to {
                    sys::demote_thread(retired.tid, d.base, to);
                    d.to = to;
                }
            }
        }
        let base = sys::thread_nice(old);
        sys::demote_thread(old, base, to);
        Demoted {
            base,
            to,
            grouped: false,
        }
    });
    // After the start: a move into the group may hold up thread starts in
    // the whole process (see `HogMover`).
    if let Some(d) = demoted.as_mut() {
        d.grouped = group_hog(rt, old);
    }
    if let Some(thread) = carriers
        .active
        .get_mut(core)
        .and_then(|slot| slot.replace(handle))
    {
        carriers.retired.push(Retired {
            core,
            tid: old,
            demoted,
            thread,
        });
    }
    Ok(())
}

/// Has carrier `tid` moved into the runtime's hog group, making the group at
/// the first hog; false where there is none.
fn group_hog(rt: &RuntimeShared, tid: i32) -> bool {
    let mut state = rt.hog_group.lock().unwrap_or_else(|e| e.into_inner());
    if matches!(*state, HogGroupState::Untried) {
        *state = if rt.config.hog_cgroup {
            let shares = u64::from(DEMOTED_WEIGHT) * rt.cores.len() as u64;
            sys::HogGroup::create(rt.id, shares)
                .and_then(HogMover::start)
                .map_or(HogGroupState::Unavailable, HogGroupState::Made)
        } else {
            HogGroupState::Unavailable
        };
    }
    match &*state {
        HogGroupState::Made(mover) => mover.adopt(tid),
        _ => false,
    }
}

/// The runtime's hog group and the thread that moves carriers into it. The
/// kernel may make a move wait for an RCU grace period (the first move after
/// a quiet spell took up to 13 ms here; moves in a burst take microseconds),
/// and thread starts in the whole process wait with it: the monitor hands
/// the move over instead of waiting, and asks for it only once the
/// replacement carrier started. Until moved, the hog's carrier is already
/// demoted by priority.
#[derive(Debug)]
pub(crate) struct HogMover {
    dir: std::path::PathBuf,
    moves: Option<std::sync::mpsc::Sender<i32>>,
    thread: Option<JoinHandle<()>>,
}

impl HogMover {
    fn start(group: sys::HogGroup) -> std::io::Result<HogMover> {
        let dir = group.dir().to_path_buf();
        let (moves, pending) = std::sync::mpsc::channel::<i32>();
        let thread = std::thread::Builder::new()
            .name("braid-hogs".into())
            .spawn(move || {
                // A carrier that ended before its move is simply not found.
                for tid in pending {
                    let _ = group.adopt(tid);
                }
                // Dropping the group removes it.
            })?;
        Ok(HogMover {
            dir,
            moves: Some(moves),
            thread: Some(thread),
        })
    }

    /// Asks for carrier `tid` to be moved into the group.
    fn adopt(&self, tid: i32) -> bool {
        self.moves.as_ref().is_some_and(|m| m.send(tid).is_ok())
    }

    /// The group's directory.
    pub(crate) fn dir(&self) -> &std::path::Path {
        &self.dir
    }
}

impl Drop for HogMover {
    /// Ends the mover, which removes the group (the kernel keeps it while a
    /// thread is in it: a carrier detached at shutdown).
    fn drop(&mut self) {
        drop(self.moves.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
