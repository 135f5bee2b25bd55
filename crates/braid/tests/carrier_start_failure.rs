//! A core whose replacement carrier cannot be started is not lost (its own
//! test binary: the failure hook is the process's).

use braid::Runtime;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// Spins, calling nothing of the runtime, until `stop`; counts its steps.
fn hog(stop: &AtomicBool, steps: &AtomicU64) {
    while !stop.load(Ordering::Relaxed) {
        steps.fetch_add(1, Ordering::Relaxed);
        std::hint::spin_loop();
    }
}

#[test]
fn a_core_survives_replacements_that_cannot_start() {
    let rt = Runtime::builder().cores(1).build().unwrap();

    // 1. The first three starts fail: the monitor retries, and the queued
    // strand runs while the hog still spins.
    braid::testing::fail_carrier_starts(3);
    let stop = Arc::new(AtomicBool::new(false));
    let steps = Arc::new(AtomicU64::new(0));
    let (tx, rx) = mpsc::channel::<u64>();
    let (s, st) = (stop.clone(), steps.clone());
    let (hogging, neighbour) = rt.block_on(move || {
        let hogging = braid::spawn(move || hog(&s, &st));
        let steps = steps.clone();
        let neighbour = braid::spawn(move || tx.send(steps.load(Ordering::Relaxed)).unwrap());
        (hogging, neighbour)
    });
    let seen = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the queued strand never ran: the core died");
    assert!(seen > 0, "the hog had not run yet");
    assert!(!stop.load(Ordering::Relaxed));
    stop.store(true, Ordering::Relaxed);
    hogging.join().unwrap();
    neighbour.join().unwrap();
    let core = rt.stats().cores[0].clone();
    assert!(core.handoffs >= 1, "{core:?}");
    assert_eq!(core.reclaims, 0, "{core:?}");

    // 2. No start succeeds: the core is taken back by its old carrier when
    // the hog next calls the runtime, and runs its queue from there.
    braid::testing::fail_carrier_starts(u32::MAX);
    let (tx, rx) = mpsc::channel::<Instant>();
    let yielded = Arc::new(std::sync::Mutex::new(None::<Instant>));
    let y = yielded.clone();
    let (hogging, neighbour) = rt.block_on(move || {
        let hogging = braid::spawn(move || {
            let start = Instant::now();
            while start.elapsed() < Duration::from_millis(200) {
                std::hint::spin_loop();
            }
            *y.lock().unwrap() = Some(Instant::now());
            braid::yield_now();
            // Still a working core: sleep and spawn here.
            braid::sleep(Duration::from_millis(1)).unwrap();
            braid::spawn(|| 7).join().unwrap()
        });
        let neighbour = braid::spawn(move || tx.send(Instant::now()).unwrap());
        (hogging, neighbour)
    });
    let ran = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the queued strand never ran after the hog returned");
    assert_eq!(hogging.join().unwrap(), 7);
    neighbour.join().unwrap();
    let returned = yielded.lock().unwrap().expect("the hog returned");
    assert!(
        ran >= returned,
        "ran {ran:?} before the hog returned {returned:?}"
    );
    let core = rt.stats().cores[0].clone();
    assert!(core.reclaims >= 1, "{core:?}");

    // 3. Starts work again: the next hog is handed off as usual.
    braid::testing::fail_carrier_starts(0);
    let handoffs = rt.stats().cores[0].handoffs;
    let stop = Arc::new(AtomicBool::new(false));
    let steps = Arc::new(AtomicU64::new(0));
    let (tx, rx) = mpsc::channel::<()>();
    let (s, st) = (stop.clone(), steps.clone());
    let (hogging, neighbour) = rt.block_on(move || {
        let hogging = braid::spawn(move || hog(&s, &st));
        let neighbour = braid::spawn(move || tx.send(()).unwrap());
        (hogging, neighbour)
    });
    rx.recv_timeout(Duration::from_secs(20))
        .expect("the queued strand never ran behind the last hog");
    stop.store(true, Ordering::Relaxed);
    hogging.join().unwrap();
    neighbour.join().unwrap();
    assert!(rt.stats().cores[0].handoffs > handoffs);
}
