//! Named events: wait, signal, broadcast, timeouts, cancellation, namespaces,
//! bad input, and a stress test whose counts must balance exactly.

mod common;

use braid::event::{self, EventError, MAX_NAME_LEN, MAX_PAYLOAD};
use braid::Runtime;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::runtime;

/// Waits (bounded) until the runtime reports no live events.
fn events_drain(rt: &Runtime) -> usize {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let live = rt.stats().live_events();
        if live == 0 || Instant::now() > deadline {
            return live;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn wait_then_signal_on_one_core() {
    let rt = runtime(1);
    let order = rt.block_on(|| {
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let l = log.clone();
        let waiter = braid::spawn(move || {
            l.lock().unwrap().push("waiting");
            event::wait("go").unwrap();
            l.lock().unwrap().push("woken");
        });
        braid::yield_now(); // the waiter runs and blocks
        log.lock().unwrap().push("signal");
        event::signal("go").unwrap();
        waiter.join().unwrap();
        Arc::try_unwrap(log).unwrap().into_inner().unwrap()
    });
    assert_eq!(order, ["waiting", "signal", "woken"]);
    assert_eq!(events_drain(&rt), 0);
}

#[test]
fn a_signal_with_no_waiter_is_stored_once() {
    let rt = runtime(2);
    rt.block_on(|| {
        event::signal("permit").unwrap();
        // One stored permit: the first wait takes it without blocking...
        event::wait("permit").unwrap();
        // ...and there is no second one.
        assert_eq!(
            event::wait_timeout("permit", Duration::from_millis(30)),
            Err(EventError::TimedOut)
        );
    });
    assert_eq!(events_drain(&rt), 0);
}

#[test]
fn signals_cross_cores_whatever_the_home() {
    let rt = runtime(2);
    // Twenty names: their homes fall on both cores.
    for i in 0..20 {
        let name = format!("cross-{i}");
        rt.block_on(move || {
            for (wait_core, signal_core) in [(0, 1), (1, 0)] {
                let n = name.clone();
                let waiter = braid::Builder::new()
                    .core(wait_core)
                    .spawn(move || event::wait(&n))
                    .unwrap();
                let n = name.clone();
                braid::Builder::new()
                    .core(signal_core)
                    .spawn(move || event::signal(&n).unwrap())
                    .unwrap()
                    .join()
                    .unwrap();
                waiter.join().unwrap().unwrap();
            }
        });
    }
    assert_eq!(events_drain(&rt), 0);
}

#[test]
fn wait_timeout_times_out_and_leaves_nothing_behind() {
    let rt = runtime(2);
    let waited = rt.block_on(|| {
        let start = Instant::now();
        let r = event::wait_timeout("nobody-signals", Duration::from_millis(50));
        (r, start.elapsed())
    });
    assert_eq!(waited.0, Err(EventError::TimedOut));
    assert!(waited.1 >= Duration::from_millis(50), "{:?}", waited.1);
    assert_eq!(events_drain(&rt), 0);
}

#[test]
fn cancelling_the_group_ends_the_wait() {
    let rt = runtime(2);
    let result = rt.block_on(|| {
        let h = braid::spawn(|| event::wait("never"));
        // Let it block (a fixed sleep here blocked this core's carrier, and
        // on a loaded machine the strand had not started when it was
        // cancelled, so its join said so instead of its wait).
        while h.strand().state() != braid::StrandState::Blocked {
            braid::yield_now();
        }
        h.group().cancel();
        h.join().unwrap()
    });
    assert_eq!(result, Err(EventError::Cancelled));
    assert_eq!(events_drain(&rt), 0);
}

#[test]
fn broadcast_wakes_every_waiter_on_every_core() {
    let rt = runtime(2);
    let woken = rt.block_on(|| {
        let woken = Arc::new(AtomicU64::new(0));
        let waiters: Vec<_> = (0..20)
            .map(|i| {
                let w = woken.clone();
                braid::Builder::new()
                    .core(i % 2)
                    .spawn(move || {
                        event::wait("all").unwrap();
                        w.fetch_add(1, Ordering::SeqCst);
                    })
                    .unwrap()
            })
            .collect();
        // All twenty must be queued before the broadcast: poll their states.
        while !waiters
            .iter()
            .all(|h| h.strand().state() == braid::StrandState::Blocked)
        {
            braid::sleep(Duration::from_millis(1)).unwrap();
        }
        event::broadcast("all").unwrap();
        for h in waiters {
            h.join().unwrap();
        }
        // A broadcast stores nothing.
        assert_eq!(
            event::wait_timeout("all", Duration::from_millis(20)),
            Err(EventError::TimedOut)
        );
        woken.load(Ordering::SeqCst)
    });
    assert_eq!(woken, 20);
    assert_eq!(events_drain(&rt), 0);
}

#[test]
fn local_names_are_private_to_their_top_level_group() {
    let rt = runtime(2);
    // Two unrelated top-level strands use the same local name.
    let a = rt
        .spawn(|| event::wait_timeout("shared-name", Duration::from_millis(100)))
        .unwrap();
    let b = rt
        .spawn(|| {
            braid::sleep(Duration::from_millis(10)).unwrap();
            event::signal("shared-name").unwrap();
            // The permit is ours (our group's): we can take it back.
            event::wait("shared-name").unwrap();
        })
        .unwrap();
    assert_eq!(a.join().unwrap(), Err(EventError::TimedOut));
    b.join().unwrap();
    // The same name in the global namespace is a third, distinct event.
    let g = event::global("shared-name").unwrap();
    assert!(g.is_global());
    assert_ne!(g, rt.block_on(|| event::local("shared-name").unwrap()));
    assert_eq!(events_drain(&rt), 0);
}

#[test]
fn global_events_are_shared_and_signalled_from_outside() {
    let rt = runtime(2);
    let ev = event::global("io_complete_disk0").unwrap();
    let e = ev.clone();
    let waiter = rt.spawn(move || e.wait()).unwrap();
    let e = ev.clone();
    let other_tree = rt
        .spawn(move || e.wait_timeout(Duration::from_secs(10)))
        .unwrap();
    // From this thread, which is not a strand.
    assert_eq!(ev.signal(), Err(EventError::NotInStrand));
    std::thread::sleep(Duration::from_millis(20));
    rt.signal(&ev).unwrap();
    rt.signal_with(&ev, b"done").unwrap();
    waiter.join().unwrap().unwrap();
    other_tree.join().unwrap().unwrap();
    // Local names cannot be reached from outside.
    let local = rt.block_on(|| event::local("x").unwrap());
    assert_eq!(rt.signal(&local), Err(EventError::NotInStrand));
    assert_eq!(events_drain(&rt), 0);
}

#[test]
fn bad_input_gets_typed_errors() {
    let rt = runtime(1);
    rt.block_on(|| {
        assert_eq!(event::signal(""), Err(EventError::EmptyName));
        let long = "x".repeat(MAX_NAME_LEN + 1);
        let err = event::wait(&long).unwrap_err();
        assert_eq!(
            err,
            EventError::NameTooLong {
                len: MAX_NAME_LEN + 1
            }
        );
        assert!(err.to_string().contains("256"), "{err}");
        assert!(event::local(&"y".repeat(MAX_NAME_LEN)).is_ok());
        let ev = event::local("payload").unwrap();
        let err = ev.signal_with(&[0; MAX_PAYLOAD + 1]).unwrap_err();
        assert_eq!(
            err,
            EventError::PayloadTooLarge {
                len: MAX_PAYLOAD + 1
            }
        );
        assert!(err.to_string().contains("64"), "{err}");
        ev.signal_with(&[7; MAX_PAYLOAD]).unwrap();
        ev.wait().unwrap();
    });
    assert_eq!(event::wait("outside"), Err(EventError::NotInStrand));
    assert_eq!(event::global(""), Err(EventError::EmptyName));
    // The runtime still works after all that.
    assert_eq!(rt.block_on(|| 5), 5);
    assert_eq!(events_drain(&rt), 0);
}

/// One million signals between strands on both cores, through events homed on
/// both cores: every signal is taken by exactly one wait, and nothing is left
/// stored or queued at the end.
#[test]
fn a_million_cross_core_signals_balance_exactly() {
    const SIGNALS: u64 = 1_000_000;
    const PAIRS: u64 = 8;
    let rt = runtime(2);
    let taken = Arc::new(AtomicU64::new(0));
    let t = taken.clone();
    rt.block_on(move || {
        let per_pair = SIGNALS / PAIRS;
        let mut handles = Vec::new();
        for pair in 0..PAIRS {
            let name = format!("stress-{pair}");
            let (wait_core, signal_core) = if pair % 2 == 0 { (0, 1) } else { (1, 0) };
            let (n, t) = (name.clone(), t.clone());
            handles.push(
                braid::Builder::new()
                    .core(wait_core)
                    .spawn(move || {
                        for _ in 0..per_pair {
                            // Bounded, so a lost signal fails the test instead
                            // of hanging it.
                            event::wait_timeout(&n, Duration::from_secs(60))
                                .expect("a signal was lost");
                            t.fetch_add(1, Ordering::Relaxed);
                        }
                    })
                    .unwrap(),
            );
            handles.push(
                braid::Builder::new()
                    .core(signal_core)
                    .spawn(move || {
                        for i in 0..per_pair {
                            event::signal(&name).unwrap();
                            if i % 64 == 0 {
                                braid::yield_now();
                            }
                        }
                    })
                    .unwrap(),
            );
        }
        for h in handles {
            h.join().unwrap();
        }
    });
    assert_eq!(taken.load(Ordering::SeqCst), SIGNALS);
    assert_eq!(events_drain(&rt), 0, "events left stored or queued");
}

/// Waiters with very short timeouts race with signals: a signal that meets a
/// waiter giving up must go to another waiter or be stored, never vanish, and a
/// waiter that gave up must never also take a signal. The waiters keep trying
/// until they have taken every signal sent.
#[test]
fn timeouts_racing_with_signals_lose_nothing() {
    const SIGNALS: u64 = 200_000;
    let rt = runtime(2);
    let taken = Arc::new(AtomicU64::new(0));
    let timeouts = Arc::new(AtomicU64::new(0));
    let (t, o) = (taken.clone(), timeouts.clone());
    rt.block_on(move || {
        let mut handles = Vec::new();
        for w in 0..4u64 {
            let (t, o) = (t.clone(), o.clone());
            handles.push(
                braid::Builder::new()
                    .core((w % 2) as usize)
                    .spawn(move || {
                        let deadline = Instant::now() + Duration::from_secs(60);
                        while t.load(Ordering::Relaxed) < SIGNALS {
                            assert!(Instant::now() < deadline, "signals were lost");
                            match event::wait_timeout("racy", Duration::from_micros(20)) {
                                Ok(()) => {
                                    t.fetch_add(1, Ordering::Relaxed);
                                }
                                Err(EventError::TimedOut) => {
                                    o.fetch_add(1, Ordering::Relaxed);
                                }
                                Err(e) => panic!("{e}"),
                            }
                        }
                    })
                    .unwrap(),
            );
        }
        for s in 0..2u64 {
            handles.push(
                braid::Builder::new()
                    .core(s as usize)
                    .spawn(move || {
                        for i in 0..SIGNALS / 2 {
                            event::signal("racy").unwrap();
                            if i % 16 == 0 {
                                braid::yield_now();
                            }
                        }
                    })
                    .unwrap(),
            );
        }
        for h in handles {
            h.join().unwrap();
        }
    });
    assert_eq!(
        taken.load(Ordering::SeqCst),
        SIGNALS,
        "each signal taken exactly once"
    );
    assert!(
        timeouts.load(Ordering::SeqCst) > 0,
        "no timeout raced at all"
    );
    assert_eq!(events_drain(&rt), 0);
    eprintln!(
        "{SIGNALS} signals taken, {} timeouts",
        timeouts.load(Ordering::SeqCst)
    );
}

mod closures {
    use super::{events_drain, runtime};
    use braid::event::{self, EventError, MAX_CLOSURES_PER_STRAND};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    #[test]
    fn a_closure_gets_signals_and_payloads_ahead_of_waiting_strands() {
        // One core: "ahead of waiting strands" is per core (a signal wakes a
        // waiter on the signalling core first), and the host's exit removes
        // its closures before the joiner runs.
        let rt = runtime(1);
        let cap = rt.closure_cap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        rt.block_on(move || {
            let ev = event::local("reading").unwrap();
            let waiter_ev = ev.clone();
            let waiter = braid::spawn(move || waiter_ev.wait_timeout(Duration::from_millis(100)));
            braid::yield_now();
            let host_ev = ev.clone();
            let (stop_tx, stop_rx) = braid::sync::channel::bounded::<()>(1);
            let host = braid::spawn(move || {
                event::on_signal(&cap, &host_ev, move |p| s.lock().unwrap().push(p.to_vec()))
                    .unwrap();
                stop_rx.recv().ok(); // the closures live as long as this strand
            });
            braid::sleep(Duration::from_millis(5)).unwrap();
            ev.signal_with(b"21.5C").unwrap();
            ev.signal_with(b"22.0C").unwrap();
            // The closure took both signals; the waiting strand got none.
            assert_eq!(waiter.join().unwrap(), Err(EventError::TimedOut));
            stop_tx.send(()).unwrap();
            host.join().unwrap();
            // With the host gone, the closure is gone: a signal is stored again.
            ev.signal().unwrap();
            ev.wait_timeout(Duration::from_secs(5)).unwrap();
        });
        assert_eq!(
            *seen.lock().unwrap(),
            vec![b"21.5C".to_vec(), b"22.0C".to_vec()]
        );
        assert_eq!(events_drain(&rt), 0);
    }

    #[test]
    fn signals_from_other_cores_reach_a_closure() {
        let rt = runtime(2);
        let cap = rt.closure_cap();
        let count = Arc::new(AtomicUsize::new(0));
        let c = count.clone();
        rt.block_on(move || {
            let ev = event::global("disk0-done").unwrap();
            let (stop_tx, stop_rx) = braid::sync::channel::bounded::<()>(1);
            let (ready_tx, ready_rx) = braid::sync::channel::bounded::<()>(1);
            let e = ev.clone();
            let host = braid::Builder::new()
                .core(1)
                .spawn(move || {
                    event::on_signal(&cap, &e, move |_| {
                        c.fetch_add(1, Ordering::SeqCst);
                    })
                    .unwrap();
                    ready_tx.send(()).unwrap();
                    stop_rx.recv().ok();
                })
                .unwrap();
            ready_rx.recv().unwrap();
            let signaller = braid::Builder::new()
                .core(0)
                .spawn(move || (0..1000).for_each(|_| ev.signal().unwrap()))
                .unwrap();
            signaller.join().unwrap();
            while count.load(Ordering::SeqCst) < 1000 {
                braid::sleep(Duration::from_millis(1)).unwrap();
            }
            stop_tx.send(()).unwrap();
            host.join().unwrap();
        });
        assert_eq!(events_drain(&rt), 0);
    }

    #[test]
    fn a_closure_that_blocks_is_stopped_and_the_core_carries_on() {
        let rt = runtime(1);
        let cap = rt.closure_cap();
        let waited = Arc::new(Mutex::new(None));
        let w = waited.clone();
        rt.block_on(move || {
            let ev = event::local("bad").unwrap();
            let (_tx, rx) = braid::sync::channel::unbounded::<u8>();
            event::on_signal(&cap, &ev, move |_| {
                // An event wait is refused with a typed error...
                *w.lock().unwrap() = Some(event::wait("other"));
                // ...and a blocking receive panics (caught; the closure is dropped).
                let _ = rx.recv();
            })
            .unwrap();
            ev.signal().unwrap();
            braid::yield_now();
            // The core still runs strands.
            assert_eq!(braid::spawn(|| 5).join().unwrap(), 5);
        });
        assert_eq!(*waited.lock().unwrap(), Some(Err(EventError::InClosure)));
        assert_eq!(rt.stats().closure_failures, 1);
    }

    #[test]
    fn closures_need_the_runtimes_capability_and_respect_the_limit() {
        let rt = runtime(1);
        let other = runtime(1);
        let foreign_cap = other.closure_cap();
        let cap = rt.closure_cap();
        rt.block_on(move || {
            let ev = event::local("x").unwrap();
            assert_eq!(
                event::on_signal(&foreign_cap, &ev, |_| {}),
                Err(EventError::WrongRuntime)
            );
            for _ in 0..MAX_CLOSURES_PER_STRAND {
                event::on_signal(&cap, &ev, |_| {}).unwrap();
            }
            let err = event::on_signal(&cap, &ev, |_| {}).unwrap_err();
            assert_eq!(err, EventError::TooManyClosures);
            assert!(err.to_string().contains("16"), "{err}");
        });
        // Outside a strand there is no host.
        let ev = event::global("y").unwrap();
        assert_eq!(
            event::on_signal(&rt.closure_cap(), &ev, |_| {}),
            Err(EventError::NotInStrand)
        );
        // The strand that registered them ended: nothing is left.
        assert_eq!(events_drain(&rt), 0);
    }
}

/// A closure that panics is dropped; a signal its event set had already taken
/// for it is signalled again rather than lost.
#[test]
fn signals_taken_for_a_failed_closure_are_not_lost() {
    let rt = runtime(1);
    let cap = rt.closure_cap();
    let got = rt.block_on(move || {
        let ev = event::local("flaky").unwrap();
        let e = ev.clone();
        let waiter = braid::spawn(move || e.wait_timeout(Duration::from_secs(5)));
        braid::yield_now(); // queued behind the closure below
        event::on_signal(&cap, &ev, |_| panic!("closure fails")).unwrap();
        // Two signals in one scheduler pass: both are taken for the closure;
        // it fails on the first, and the second is signalled again.
        ev.signal().unwrap();
        ev.signal().unwrap();
        braid::yield_now();
        waiter.join().unwrap()
    });
    assert_eq!(got, Ok(()));
    assert_eq!(rt.stats().closure_failures, 1);
    assert_eq!(events_drain(&rt), 0);
}

/// A signal stored for a local name is forgotten when its top-level group
/// ends (nobody can name it any more), on whatever core it was homed; while
/// the group lives it stays.
#[test]
fn stored_local_signals_go_with_their_group() {
    let rt = runtime(2);
    for i in 0..1000 {
        rt.block_on(move || event::signal(&format!("left-{i}")).unwrap());
    }
    assert_eq!(
        events_drain(&rt),
        0,
        "stored signals of ended groups remain"
    );
    // A group that goes on keeps its permit, even across its strands' exits.
    rt.block_on(|| {
        braid::spawn(|| event::signal("kept").unwrap())
            .join()
            .unwrap();
        event::wait("kept").unwrap();
    });
    // Global names are nobody's: their permits stay.
    rt.block_on(|| event::global("shared").unwrap().signal().unwrap());
    let deadline = Instant::now() + Duration::from_secs(5);
    while rt.stats().live_events() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(rt.stats().live_events(), 1);
    rt.block_on(|| event::global("shared").unwrap().wait().unwrap());
    assert_eq!(events_drain(&rt), 0);
}
