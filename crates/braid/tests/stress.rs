//! Cross-core wake stress: every hand-off must arrive exactly once.

use braid::Runtime;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Pairs of strands pass a baton back and forth with park/unpark. A lost wake
/// hangs a pair (caught by the deadline); a duplicated or misdelivered one breaks
/// the strict alternation checked at every step. Counts balance exactly.
#[test]
fn a_hundred_thousand_cross_core_wakes_arrive_exactly_once() {
    const PAIRS: usize = 16;
    const TARGET_CROSS: u64 = 100_000;
    let rt = Runtime::builder().cores(2).build().unwrap();
    let cross = Arc::new(AtomicU64::new(0));
    let total = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(120);
    let c = cross.clone();
    let t = total.clone();
    let handoffs_per_pair = rt.block_on(move || {
        // Pingers alternate between the cores and their pongers sit on the other
        // one; both are pinned, so every hand-off is a cross-core wake.
        let pairs: Vec<_> = (0..PAIRS)
            .map(|i| {
                let (c, t) = (c.clone(), t.clone());
                braid::Builder::new()
                    .core(i % 2)
                    .spawn(move || run_pair(c, t, TARGET_CROSS / PAIRS as u64, deadline))
                    .unwrap()
            })
            .collect();
        pairs
            .into_iter()
            .map(|p| p.join().unwrap())
            .collect::<Vec<u64>>()
    });
    let cross = cross.load(Ordering::SeqCst);
    let total = total.load(Ordering::SeqCst);
    assert_eq!(
        handoffs_per_pair.iter().sum::<u64>(),
        total,
        "every hand-off counted once"
    );
    assert!(
        cross >= TARGET_CROSS,
        "only {cross} of {total} wakes crossed cores"
    );
    eprintln!("{total} hand-offs, {cross} across cores");
}

/// Runs one ping-pong pair until it has made `want_cross` cross-core hand-offs.
/// Returns the number of hand-offs it made.
fn run_pair(
    cross: Arc<AtomicU64>,
    total: Arc<AtomicU64>,
    want_cross: u64,
    deadline: Instant,
) -> u64 {
    // `baton` is even when it is the pinger's turn, odd for the ponger's.
    let baton = Arc::new(AtomicU64::new(0));
    let my_cross = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let me = braid::current().unwrap();
    let (b, d) = (baton.clone(), done.clone());
    let (tx, rx) = std::sync::mpsc::channel();
    let other_core = 1 - me.core();
    let ponger = braid::Builder::new()
        .core(other_core)
        .spawn(move || {
            let pinger = rx.recv().unwrap();
            let mut expect = 1;
            loop {
                while b.load(Ordering::Acquire) != expect {
                    if d.load(Ordering::Acquire) == 1 {
                        return;
                    }
                    braid::park();
                }
                b.store(expect + 1, Ordering::Release);
                braid::Strand::unpark(&pinger);
                expect += 2;
            }
        })
        .unwrap();
    tx.send(me).unwrap();
    let partner = ponger.strand();
    let mut value = 0;
    let mut handoffs = 0;
    while my_cross.load(Ordering::Relaxed) < want_cross {
        assert!(
            Instant::now() < deadline,
            "a wake was lost: pair stuck at baton {value}"
        );
        let here = braid::current().unwrap().core();
        baton.store(value + 1, Ordering::Release);
        if partner.core() != here {
            my_cross.fetch_add(1, Ordering::Relaxed);
            cross.fetch_add(1, Ordering::Relaxed);
        }
        partner.unpark();
        handoffs += 1;
        value += 2;
        while baton.load(Ordering::Acquire) != value {
            let seen = baton.load(Ordering::Acquire);
            assert!(seen == value - 1, "baton went from {} to {seen}", value - 1);
            braid::park();
        }
    }
    done.store(1, Ordering::Release);
    partner.unpark();
    ponger.join().unwrap();
    total.fetch_add(handoffs, Ordering::Relaxed);
    handoffs
}
