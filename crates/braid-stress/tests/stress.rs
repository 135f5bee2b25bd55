//! Cross-core wake stress: every hand-off must arrive exactly once.

use braid::Runtime;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Aborts the test process if it is not dropped within `limit`: a lost wake
/// leaves a strand parked forever, which must fail the run, not hang it.
struct Watchdog(Option<std::sync::mpsc::Sender<()>>);

impl Watchdog {
    fn arm(what: &'static str, limit: Duration) -> Watchdog {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
                eprintln!("{what}: not finished after {limit:?}, a wake was lost");
                std::process::abort();
            }
        });
        Watchdog(Some(tx))
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        let _ = self.0.take().map(|tx| tx.send(()));
    }
}

/// Pairs of strands pass a baton back and forth with park/unpark. A lost wake
/// hangs a pair (caught by the deadline); a duplicated or misdelivered one breaks
/// the strict alternation checked at every step. Counts balance exactly.
#[test]
fn a_hundred_thousand_cross_core_wakes_arrive_exactly_once() {
    const PAIRS: usize = 16;
    const TARGET_CROSS: u64 = 100_000;
    let _watchdog = Watchdog::arm("ping-pong stress", Duration::from_secs(120));
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
        loop {
            // One load per check: the partner may move the baton between two.
            let seen = baton.load(Ordering::Acquire);
            if seen == value {
                break;
            }
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

/// Tokens relayed between random strands: a strand that receives a token passes
/// it to a random strand (the token's bit is set in the target's inbox, then the
/// target is unparked) and parks when its inbox is empty. Each token retires
/// after a fixed number of hops, and the run ends when every token has retired,
/// so a single lost wake strands a token in a parked strand's inbox and the run
/// never ends (the watchdog fails it). With few tokens among many strands most
/// targets are parked, so most passes are real wakes, about half of them across
/// cores. Per-strand deliveries, total hops and the cores' bus messages must all
/// balance exactly.
#[test]
fn random_cross_core_wakes_all_arrive() {
    const STRANDS: usize = 64;
    const TOKENS: usize = 8;
    const HOPS: u64 = 30_000; // 240 000 passes in all
    let _watchdog = Watchdog::arm("random relay stress", Duration::from_secs(120));
    let rt = Runtime::builder().cores(2).build().unwrap();
    let counters =
        |n: usize| -> Arc<Vec<AtomicU64>> { Arc::new((0..n).map(|_| AtomicU64::new(0)).collect()) };
    // inbox: a bit per token; sent_to: passes addressed to each strand.
    let (inbox, sent_to, hops) = (counters(STRANDS), counters(STRANDS), counters(TOKENS));
    let retired = Arc::new(AtomicU64::new(0));
    let cross = Arc::new(AtomicU64::new(0));
    let shared = (inbox, sent_to.clone(), hops.clone(), retired, cross.clone());
    let received = rt.block_on(move || {
        let (tx, rx) = std::sync::mpsc::channel::<Vec<braid::Strand>>();
        let rx = Arc::new(std::sync::Mutex::new(rx));
        let handles: Vec<_> = (0..STRANDS)
            .map(|me| {
                let (inbox, sent_to, hops, retired, cross) = shared.clone();
                let rx = rx.clone();
                braid::Builder::new()
                    .core(me % 2)
                    .spawn(move || {
                        let peers = rx.lock().unwrap().recv().unwrap();
                        let mut seed = 0x9E37_79B9_7F4A_7C15u64 ^ (me as u64 + 1);
                        let mut got = 0u64;
                        // Strand t starts out holding token t.
                        let mut arrived: u64 = if me < TOKENS { 1 << me } else { 0 };
                        loop {
                            arrived |= inbox[me].swap(0, Ordering::AcqRel);
                            while arrived != 0 {
                                let token = arrived.trailing_zeros() as usize;
                                arrived &= arrived - 1;
                                if hops[token].load(Ordering::Relaxed) > 0 {
                                    got += 1; // a delivery, not the initial holding
                                }
                                if hops[token].load(Ordering::Relaxed) == HOPS {
                                    if retired.fetch_add(1, Ordering::AcqRel) + 1 == TOKENS as u64 {
                                        peers.iter().for_each(braid::Strand::unpark);
                                    }
                                    continue;
                                }
                                seed ^= seed << 13;
                                seed ^= seed >> 7;
                                seed ^= seed << 17;
                                let target = (seed % STRANDS as u64) as usize;
                                hops[token].fetch_add(1, Ordering::Relaxed);
                                sent_to[target].fetch_add(1, Ordering::Relaxed);
                                if peers[target].core() != braid::current().unwrap().core() {
                                    cross.fetch_add(1, Ordering::Relaxed);
                                }
                                inbox[target].fetch_or(1 << token, Ordering::AcqRel);
                                peers[target].unpark();
                            }
                            if retired.load(Ordering::Acquire) == TOKENS as u64 {
                                return got;
                            }
                            braid::park();
                        }
                    })
                    .unwrap()
            })
            .collect();
        let roster: Vec<_> = handles.iter().map(|h| h.strand()).collect();
        for _ in 0..STRANDS {
            tx.send(roster.clone()).unwrap();
        }
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<u64>>()
    });
    for (i, got) in received.iter().enumerate() {
        assert_eq!(
            *got,
            sent_to[i].load(Ordering::SeqCst),
            "strand {i} deliveries"
        );
    }
    for (t, h) in hops.iter().enumerate() {
        assert_eq!(h.load(Ordering::SeqCst), HOPS, "token {t} hops");
    }
    let passes = TOKENS as u64 * HOPS;
    assert_eq!(received.iter().sum::<u64>(), passes);
    let cross = cross.load(Ordering::SeqCst);
    assert!(
        cross >= 100_000,
        "only {cross} of {passes} passes crossed cores"
    );
    // Messages still in flight when block_on returned arrive shortly.
    let (mut bus_sent, mut bus_received) = (0, 1);
    for _ in 0..500 {
        let stats = rt.stats();
        bus_sent = stats.cores.iter().map(|c| c.bus_sent).sum::<u64>() + stats.injected;
        bus_received = stats.cores.iter().map(|c| c.bus_received).sum::<u64>();
        if bus_sent == bus_received {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(bus_sent, bus_received, "bus messages lost or duplicated");
    assert!(
        bus_sent >= cross / 2,
        "{bus_sent} bus messages for {cross} cross-core passes"
    );
    eprintln!("{passes} passes, {cross} across cores, {bus_sent} bus messages");
}
