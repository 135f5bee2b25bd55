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
