//! One million strands parked at once, on a stock `vm.max_map_count`.

use braid::{GuardKind, Runtime};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

#[test]
fn one_million_parked_strands() {
    const N: usize = 1_000_000;
    let rt = Runtime::builder()
        .cores(2)
        .stack_size(16 * 1024)
        .build()
        .unwrap();
    let parked = Arc::new(AtomicUsize::new(0));
    let woke = Arc::new(AtomicUsize::new(0));
    let (p, w) = (parked.clone(), woke.clone());
    let strands = rt.block_on(move || {
        let handles: Vec<_> = (0..N)
            .map(|_| {
                let (p, w) = (p.clone(), w.clone());
                braid::spawn(move || {
                    p.fetch_add(1, Ordering::SeqCst);
                    // Parks until the test unparks it (re-parks on a spurious wake).
                    while w.load(Ordering::SeqCst) == 0 {
                        braid::park();
                    }
                })
            })
            .collect();
        while p.load(Ordering::SeqCst) < N {
            braid::sleep(std::time::Duration::from_millis(5)).unwrap();
        }
        handles
    });
    assert_eq!(parked.load(Ordering::SeqCst), N);
    let stats = rt.stats();
    assert_eq!(stats.live_strands, N as u64);
    if stats.guard == GuardKind::PageTableMarker {
        // 64 stacks per mapping: far below the stock limit of 65 530 mappings.
        assert!(
            stats.stack_slabs <= N / 64 + 64,
            "{} slabs",
            stats.stack_slabs
        );
    }
    woke.store(1, Ordering::SeqCst);
    for h in &strands {
        h.strand().unpark();
    }
    for h in strands {
        h.join().unwrap();
    }
    // A join returns as soon as the strand's value is in; its core counts it
    // out a moment later.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while rt.stats().live_strands != 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert_eq!(rt.stats().live_strands, 0);
}
