//! The monitor thread: the coarse clock, time slices, and rescuing the queue of a
//! core whose strand never returns to the runtime.
//!
//! Every tick (1 ms while any core is awake) the monitor advances the coarse
//! clock, against which strands check the end of their time slice (the
//! policy's, given when the strand was dispatched) at their runtime calls.
//! It also looks at each core's switch counter. A core whose counter has not
//! moved while it runs strand code is running one strand for that long, and
//! braid-core's watchdog (`braid_core::sched::watchdog::verdict`) says what
//! follows; the monitor applies it:
//! - past the hog threshold, with strands waiting behind it (ready, mail, or
//!   sockets registered with its poller), the monitor takes the
//!   core's local state from the stuck carrier (see `core::handshake` for the
//!   handshake) and starts a replacement carrier on the same CPU. The kernel then
//!   time-shares that CPU between the hog and the replacement, so the queued
//!   strands run within about the threshold plus a tick. The old carrier hands its
//!   strand back when it next returns to the runtime, then ends.
//!
//! It also ends leases that expired, whose group exited, or that keep work
//! waiting on every shared core (see `lease`).
//!
//! When every core is parked the monitor sleeps too, on a futex that the first
//! core to wake bumps: an idle runtime uses no CPU (with a lease in force it
//! still ticks, to end the lease on time).

use crate::facade::Ordering;
use crate::runtime::RuntimeShared;
use crate::sys;
use braid_core::sched::watchdog::{verdict, Verdict};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

const TICK: Duration = Duration::from_millis(1);
/// [`TICK`] in nanoseconds: the resolution of the coarse clock.
pub(crate) const TICK_NS: u64 = TICK.as_nanos() as u64;

/// How many nice levels a carrier left running a hogging strand drops. The
/// kernel then gives that thread about a tenth of the CPU while the core's new
/// carrier wants it (weights 110 against 1 024), and all of it otherwise; the
/// new carrier's wakes preempt it at once. Measured with the latency-under-load
/// workload (a 1 ms sleeper beside a hog on each of 2 cores, 3 s runs of ~2 850
/// wakes): wakes delayed by more than 300 µs fell from 106–142 per run to
/// 18–22 (nice +3: 13–55; +5: 13–38; SCHED_IDLE: 1–18, but that starves a long
/// computation on a busy machine).
const HOG_NICE: i32 = 10;

struct Watch {
    switches: u64,
    since_ns: u64,
}

pub(crate) fn start(rt: Arc<RuntimeShared>) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name("braid-monitor".into())
        .spawn(move || run(&rt))
        .expect("cannot start the braid monitor thread")
}

fn run(rt: &Arc<RuntimeShared>) {
    let hog = rt.config.hog_threshold.as_nanos() as u64;
    let mut watches: Vec<Watch> = rt
        .cores
        .iter()
        .map(|_| Watch {
            switches: 0,
            since_ns: 0,
        })
        .collect();
    loop {
        if rt.shutdown.load(Ordering::SeqCst) {
            crate::budget::let_go_all(rt);
            return;
        }
        let seq = rt.monitor_seq.load(Ordering::SeqCst);
        // Carriers held for their strand's CPU budget bump `seq` first.
        let now = rt.now_ns();
        crate::budget::release_held(rt, now, |core, tid| take_from_held(rt, core, tid));
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
        std::thread::sleep(TICK);
        let now = rt.advance_clock();
        for (core, watch) in rt.cores.iter().zip(watches.iter_mut()) {
            let switches = core.counters.switches.load(Ordering::Relaxed);
            if switches != watch.switches || !core.in_strand() {
                watch.switches = switches;
                watch.since_ns = now;
                continue;
            }
            let running_for = now.saturating_sub(watch.since_ns);
            // Sockets registered there may have readiness nobody polls.
            let waiting = core.ready_len.load(Ordering::Relaxed) > 0
                || !rt.bus.doorbell(core.id).is_empty()
                || core.io.has_sources();
            if verdict(hog, running_for, waiting) == Verdict::HandOff {
                let stuck = || core.counters.switches.load(Ordering::Relaxed) == switches;
                if let Some(epoch) = core.try_revoke(stuck) {
                    replace_carrier(rt, core.id, epoch, true);
                    watch.since_ns = now;
                }
            }
        }
    }
}

/// Gives core `core` to a new carrier if the carrier `tid`, held for its
/// strand's CPU budget (see `budget`), still owns it: the core's other
/// strands run while the held one waits for its refill.
fn take_from_held(rt: &Arc<RuntimeShared>, core: usize, tid: i32) {
    let shared = &rt.cores[core];
    if shared.carrier_tid.load(Ordering::Relaxed) != tid || !shared.in_strand() {
        return;
    }
    let switches = shared.counters.switches.load(Ordering::Relaxed);
    let stuck = || shared.counters.switches.load(Ordering::Relaxed) == switches;
    if let Some(epoch) = shared.try_revoke(stuck) {
        // Not demoted: its budget, not its priority, limits what it gets.
        replace_carrier(rt, core, epoch, false);
    }
}

fn replace_carrier(rt: &Arc<RuntimeShared>, core: usize, epoch: u32, demote: bool) {
    // The old carrier keeps running the hogging strand, on the same CPU as
    // the new one: lower its priority so the core's other strands get the CPU
    // as soon as they wake (see `sys::demote_thread`).
    let old = rt.cores[core].carrier_tid.load(Ordering::Relaxed);
    if old != 0 && demote {
        sys::demote_thread(old, HOG_NICE);
    }
    match rt.start_carrier(core, epoch) {
        Ok(handle) => {
            let mut carriers = rt.carriers.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(old) = carriers
                .active
                .get_mut(core)
                .and_then(|slot| slot.replace(handle))
            {
                carriers.retired.push(old);
            }
        }
        Err(err) => {
            rt.warn_once(&format!(
                "braid: cannot start a replacement carrier for core {core}: {err}"
            ));
        }
    }
}
