//! A strand that never yields must not starve the strands queued behind it.

use braid::Runtime;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Spins without any runtime call until `stop` is set.
fn hog(stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        std::hint::spin_loop();
    }
}

#[test]
fn queued_strands_run_while_every_core_is_hogged() {
    let cores = 2;
    let rt = Runtime::builder().cores(cores).build().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = std::sync::mpsc::channel::<Duration>();
    let s = stop.clone();
    let driver = rt
        .spawn(move || {
            // One hog per core, then neighbours queued behind them.
            let hogs: Vec<_> = (0..cores)
                .map(|_| {
                    let s = s.clone();
                    braid::spawn(move || hog(s))
                })
                .collect();
            let queued_at = Instant::now();
            let neighbours: Vec<_> = (0..8)
                .map(|_| {
                    let tx = tx.clone();
                    braid::spawn(move || tx.send(queued_at.elapsed()).unwrap())
                })
                .collect();
            (hogs, neighbours)
        })
        .unwrap();
    let mut delays = Vec::new();
    for _ in 0..8 {
        delays.push(
            rx.recv_timeout(Duration::from_secs(10))
                .expect("a neighbour starved behind a hog"),
        );
    }
    stop.store(true, Ordering::Relaxed);
    let (hogs, neighbours) = driver.join().unwrap();
    for h in hogs.into_iter().chain(neighbours) {
        h.join().unwrap();
    }
    delays.sort();
    eprintln!("neighbour start delays behind hogs: {delays:?}");
    // The monitor moves a stuck core's queue after the hog threshold (4 ms) plus a
    // tick and a thread start; allow for a loaded CI machine but not for starvation.
    assert!(
        delays[7] < Duration::from_millis(500),
        "neighbours waited {delays:?}"
    );
    let handoffs: u64 = rt.stats().cores.iter().map(|c| c.handoffs).sum();
    assert!(
        handoffs >= 1,
        "no handoff happened, yet neighbours ran: {:?}",
        rt.stats()
    );
}

/// The nice value of the calling thread.
fn own_nice() -> i32 {
    // SAFETY: plain system calls on the calling thread.
    unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
}

/// Whether the calling thread is in a runtime's hog group (see
/// `RuntimeBuilder::hog_cgroup`).
fn in_hog_group() -> bool {
    std::fs::read_to_string("/proc/thread-self/cgroup").is_ok_and(|c| c.contains("braid-hogs-"))
}

/// How the calling thread stands: its nice value, and whether it is in a
/// hog group. A carrier left running a hog, the only one of its core, is 10
/// nice levels lower, and soon after in the group where the runtime has one.
fn own_standing() -> (i32, bool) {
    (own_nice(), in_hog_group())
}

#[test]
fn a_hogging_strand_keeps_running_on_a_demoted_thread() {
    let rt = Runtime::builder().cores(1).build().unwrap();
    let start = rt.block_on(own_standing);
    assert!(!start.1, "a carrier starts outside the hog group");
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let (tx, rx) = std::sync::mpsc::channel::<(i32, bool)>();
    let driver = rt
        .spawn(move || {
            let hog = braid::spawn(move || {
                // No runtime call: waits (spinning) for the monitor to hand the
                // core to a new carrier and demote this thread.
                let deadline = Instant::now() + Duration::from_secs(10);
                while own_nice() == start.0 && Instant::now() < deadline {
                    std::hint::spin_loop();
                }
                // The move into a group (if any) follows the demotion.
                let moved = Instant::now() + Duration::from_secs(2);
                while !in_hog_group() && Instant::now() < moved {
                    std::hint::spin_loop();
                }
                tx.send(own_standing()).unwrap();
                hog(s);
                // Back at a runtime call: the strand returns to a carrier
                // with the runtime's own priority.
                own_standing()
            });
            // Queued behind the hog, so the monitor takes its core away.
            let neighbour = braid::spawn(own_standing);
            (hog, neighbour)
        })
        .unwrap();
    let demoted = rx.recv_timeout(Duration::from_secs(15)).unwrap();
    match rt.stats().hog_isolation {
        braid::HogIsolation::Cgroup(dir) => {
            assert_eq!(
                demoted,
                ((start.0 + 10).min(19), true),
                "moved into {dir:?}"
            );
        }
        braid::HogIsolation::Priority => {
            assert_eq!(
                demoted,
                ((start.0 + 10).min(19), false),
                "hog thread nice value"
            );
        }
        braid::HogIsolation::NoneYet => panic!("demoted {demoted:?} without a hand-off"),
    }
    assert_eq!(rt.stats().demoted_carriers, 1);
    stop.store(true, Ordering::Relaxed);
    let (hog, neighbour) = driver.join().unwrap();
    assert_eq!(neighbour.join().unwrap(), start, "the new carrier");
    assert_eq!(
        hog.join().unwrap(),
        demoted,
        "the strand's closure ends on the old thread"
    );
    assert_eq!(rt.block_on(own_standing), start);
}

/// A strand that keeps making runtime calls that do not block (here,
/// broadcasting an event nobody waits on) yields once its policy's time slice
/// is used up, so a strand queued behind it on the same core runs long before
/// the hog threshold would hand the core's queue to another carrier.
#[test]
fn a_strand_past_its_slice_yields_at_its_next_runtime_call() {
    let rt = Runtime::builder()
        .cores(1)
        .time_slice(Duration::from_millis(1))
        .hog_threshold(Duration::from_secs(60))
        .build()
        .unwrap();
    let (calls, waited, own, neighbour) = rt
        .spawn(|| {
            let event = braid::event::local("slice-test").unwrap();
            let ran = Arc::new(AtomicBool::new(false));
            let r = ran.clone();
            let neighbour = braid::spawn(move || r.store(true, Ordering::Relaxed));
            let start = Instant::now();
            let mut calls = 0u64;
            // Without slices this loop would only end at its own deadline:
            // one core, and no hand-off for 60 s.
            while !ran.load(Ordering::Relaxed) && start.elapsed() < Duration::from_secs(10) {
                event.broadcast().unwrap();
                calls += 1;
            }
            let neighbour_strand = neighbour.strand();
            neighbour.join().unwrap();
            let own = braid::current().unwrap().stats();
            (calls, start.elapsed(), own, neighbour_strand.stats())
        })
        .unwrap()
        .join()
        .unwrap();
    assert!(calls > 0);
    assert!(own.preemptions >= 1, "counted as a preemption: {own:?}");
    assert!(neighbour.switches >= 1, "{neighbour:?}");
    assert!(
        waited < Duration::from_secs(1),
        "the neighbour ran only after {waited:?} ({calls} calls)"
    );
}

/// What a hog does first after its carrier lost the core, prepared before it
/// starts hogging.
type FirstCall = Box<dyn FnOnce() -> Result<(), String> + Send>;

/// Prepares a [`FirstCall`].
type Prepare = fn() -> FirstCall;

/// Whatever runtime call a hog makes first after its carrier lost the core
/// (spawn, sleep, a socket, a timed wait, the blocking pool, cancelling a
/// group), the strand moves to the core's new carrier and the call works
/// there.
#[test]
fn the_first_runtime_call_after_a_hand_off_runs_on_the_new_carrier() {
    let ops: [(&str, Prepare); 6] = [
        ("spawn", || {
            Box::new(|| {
                let v = braid::spawn(|| 7).join().map_err(|e| e.to_string())?;
                (v == 7).then_some(()).ok_or(format!("child returned {v}"))
            })
        }),
        ("sleep", || {
            Box::new(|| braid::sleep(Duration::from_millis(1)).map_err(|e| e.to_string()))
        }),
        ("socket", || {
            Box::new(|| {
                let l = braid::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
                l.local_addr().map(|_| ()).map_err(|e| e.to_string())
            })
        }),
        ("timed wait", || {
            let (tx, rx) = braid::sync::channel::bounded::<()>(1);
            Box::new(move || {
                let got = rx.recv_timeout(Duration::from_millis(1));
                drop(tx);
                got.is_err().then_some(()).ok_or(format!("{got:?}"))
            })
        }),
        ("blocking", || {
            Box::new(|| match braid::blocking(|| 5) {
                Ok(5) => Ok(()),
                other => Err(format!("{other:?}")),
            })
        }),
        ("group cancel", || {
            let child = braid::spawn(|| braid::sleep(Duration::from_secs(30)));
            Box::new(move || {
                child.group().cancel();
                match child.join() {
                    Ok(Err(braid::Cancelled)) => Ok(()),
                    Err(e) if e.is_cancelled() => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            })
        }),
    ];
    let rt = Runtime::builder().cores(1).build().unwrap();
    let start = rt.block_on(own_standing);
    for (name, prepare) in ops {
        let hog = rt
            .spawn(move || {
                let op = prepare();
                // Queued behind the hog, so the monitor takes its core away.
                let neighbour = braid::spawn(|| ());
                let deadline = Instant::now() + Duration::from_secs(10);
                while own_standing() == start && Instant::now() < deadline {
                    std::hint::spin_loop();
                }
                let demoted = own_standing() != start;
                let result = op();
                // Right after the call: on which thread did it end?
                let after = own_standing();
                neighbour.join().unwrap();
                (demoted, result, after)
            })
            .unwrap();
        let (demoted, result, after) = hog.join().unwrap();
        assert!(demoted, "{name}: the core was never handed off");
        assert_eq!(result, Ok(()), "{name}");
        assert_eq!(after, start, "{name}: still on the old thread");
    }
    assert!(rt.stats().cores[0].handoffs >= 6);
}

/// A strand that waits behind another for a whole slice has that wait in
/// its accounting; one that never waited has none worth a tick.
#[test]
fn time_spent_ready_behind_another_strand_is_counted() {
    let rt = Runtime::builder()
        .cores(1)
        .time_slice(Duration::from_millis(10))
        .hog_threshold(Duration::from_secs(60))
        .build()
        .unwrap();
    let (waited, own, theirs) = rt
        .spawn(|| {
            let event = braid::event::local("wait-accounting").unwrap();
            let neighbour = braid::spawn(|| ());
            let start = Instant::now();
            // 15 ms of work with runtime calls: the neighbour runs only
            // once this strand's 10 ms slice (ending a clock tick later) is
            // over.
            while start.elapsed() < Duration::from_millis(15) {
                event.broadcast().unwrap();
            }
            let strand = neighbour.strand();
            neighbour.join().unwrap();
            let own = braid::current().unwrap().stats();
            (start.elapsed(), own, strand.stats())
        })
        .unwrap()
        .join()
        .unwrap();
    // Counted in units of about a millisecond on a 1 ms clock: within two
    // units of the truth either way.
    assert!(
        (8_000_000..=waited.as_nanos() as u64 + 2_200_000).contains(&theirs.runnable_wait_ns),
        "the neighbour waited {} ns ready (the loop took {waited:?})",
        theirs.runnable_wait_ns
    );
    assert!(
        own.runnable_wait_ns < 8_000_000,
        "the strand that ran first waited {} ns",
        own.runnable_wait_ns
    );
}

/// A strand spawned or woken by one that has run for a while waits from
/// that moment, not from when its spawner was dispatched.
#[test]
fn a_wait_starts_when_the_strand_becomes_ready() {
    let rt = Runtime::builder()
        .cores(1)
        .time_slice(Duration::from_millis(100))
        .hog_threshold(Duration::from_secs(60))
        .build()
        .unwrap();
    let child = rt
        .spawn(|| {
            let start = Instant::now();
            while start.elapsed() < Duration::from_millis(30) {
                std::hint::spin_loop();
            }
            // Runs as soon as the spawner parks in `join`. Its counters are
            // read once it is counted out (the wait is added at the end of
            // its run).
            let child = braid::spawn(|| ());
            let (strand, group) = (child.strand(), child.group());
            child.join().unwrap();
            group.wait().unwrap();
            strand.stats()
        })
        .unwrap()
        .join()
        .unwrap();
    assert!(
        child.runnable_wait_ns < 10_000_000,
        "the child waited {} ns",
        child.runnable_wait_ns
    );
}

/// Under EEVDF two CPU-bound strands of weights 1 and 3 sharing a core get
/// CPU 1 : 3 and so the same virtual runtime.
#[test]
fn fair_shares_even_out_virtual_runtime() {
    let rt = Runtime::builder()
        .cores(1)
        .policy(braid::sched::PolicyKind::Eevdf)
        .build()
        .unwrap();
    let (light, heavy) = rt.block_on(|| {
        let stop = Arc::new(AtomicBool::new(false));
        let strand = |weight: u32| {
            let stop = stop.clone();
            braid::Builder::new()
                .weight(weight)
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let t = Instant::now();
                        while t.elapsed() < Duration::from_micros(100) {}
                        braid::yield_now();
                    }
                    braid::current().unwrap().stats()
                })
                .unwrap()
        };
        let (light, heavy) = (
            strand(braid::sched::UNIT_WEIGHT),
            strand(3 * braid::sched::UNIT_WEIGHT),
        );
        braid::sleep(Duration::from_millis(400)).unwrap();
        stop.store(true, Ordering::Relaxed);
        (light.join().unwrap(), heavy.join().unwrap())
    });
    let ratio = heavy.runtime_ns as f64 / light.runtime_ns.max(1) as f64;
    assert!(
        (2.4..3.6).contains(&ratio),
        "CPU {ratio:.2} : 1 ({light:?} / {heavy:?})"
    );
    let v = heavy.virtual_runtime_ns as f64 / light.virtual_runtime_ns.max(1) as f64;
    assert!((0.8..1.2).contains(&v), "virtual runtimes {v:.2} : 1");
}
