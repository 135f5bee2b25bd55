//! The policy and balancer a program picks are the ones its cores run.

use braid::sched::{
    Balancer, BalancerChoice, BalancerKind, CoreId, Grant, Insert, Nanos, Policy, PolicyChoice,
    PolicyKind, Rng, StrandRef,
};
use braid::Runtime;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Last in, first out.
struct Lifo(VecDeque<StrandRef>);

impl Policy<StrandRef> for Lifo {
    fn enqueue(&mut self, strand: StrandRef, _: Insert, _: Nanos) {
        self.0.push_front(strand);
    }
    fn pick_next(&mut self, _: Nanos) -> Option<StrandRef> {
        self.0.pop_front()
    }
    fn slice(&self, _: &StrandRef) -> Nanos {
        2_000_000
    }
    fn len(&self) -> usize {
        self.0.len()
    }
    fn take_for_transfer(&mut self, count: usize) -> Vec<StrandRef> {
        let keep = self.0.len().saturating_sub(count);
        self.0.drain(keep..).collect()
    }
}

/// The order in which three strands spawned back to back first run, on one
/// core whose spawner then waits for them.
fn start_order(policy: PolicyChoice) -> Vec<u32> {
    let rt = Runtime::builder().cores(1).policy(policy).build().unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let o = order.clone();
    rt.block_on(move || {
        let children: Vec<_> = (0..3u32)
            .map(|i| {
                let o = o.clone();
                braid::spawn(move || o.lock().unwrap().push(i))
            })
            .collect();
        for child in children {
            child.join().unwrap();
        }
    });
    let order = order.lock().unwrap().clone();
    order
}

#[test]
fn a_custom_policy_orders_the_cores_ready_strands() {
    assert_eq!(start_order(PolicyKind::RoundRobin.into()), [0, 1, 2]);
    assert_eq!(
        start_order(PolicyChoice::custom(|_| Box::new(Lifo(VecDeque::new())))),
        [2, 1, 0]
    );
}

/// Never asks, never gives; counts how often it was asked to.
struct Hermit(Arc<AtomicUsize>);

impl Balancer for Hermit {
    fn on_idle(&mut self, _: &mut Rng) -> Option<CoreId> {
        self.0.fetch_add(1, Ordering::Relaxed);
        None
    }
    fn on_reply(&mut self, _: CoreId, _: usize) {}
    fn on_request(&mut self, _: CoreId, _: usize) -> Grant {
        Grant::Nothing
    }
    fn on_surplus(&mut self, _: usize) -> Option<(CoreId, usize)> {
        None
    }
    fn on_busy(&mut self) {}
}

/// Runs 64 strands spawned by a strand on core 0 of two (so they start
/// there, free to move); returns how many strands core 1 took.
fn ran_elsewhere(balancer: BalancerChoice) -> u64 {
    let rt = Runtime::builder()
        .cores(2)
        .balancer(balancer)
        .build()
        .unwrap();
    rt.block_on(|| {
        braid::Builder::new()
            .core(0)
            .spawn(|| {
                let strands: Vec<_> = (0..64)
                    .map(|_| {
                        // 0.5 ms of work without a runtime call: 32 ms on
                        // one core, time enough for the other to ask.
                        braid::spawn(|| {
                            let start = std::time::Instant::now();
                            while start.elapsed() < std::time::Duration::from_micros(500) {
                                std::hint::spin_loop();
                            }
                        })
                    })
                    .collect();
                strands.into_iter().for_each(|s| s.join().unwrap());
            })
            .unwrap()
            .join()
            .unwrap();
    });
    rt.stats().cores[1].steals
}

#[test]
fn a_custom_balancer_decides_what_moves() {
    let asked = Arc::new(AtomicUsize::new(0));
    let a = asked.clone();
    let moved = ran_elsewhere(BalancerChoice::custom(move |_, _| {
        Box::new(Hermit(a.clone()))
    }));
    assert_eq!(moved, 0, "the hermit balancer gives nothing away");
    assert!(asked.load(Ordering::Relaxed) > 0, "idle cores asked it");
    assert!(
        ran_elsewhere(BalancerKind::StealHalf.into()) > 0,
        "steal-half spreads the strands"
    );
}

/// Spawns `n` strands on one core under `policy` (each returns its index,
/// after a yield) and joins them all; returns their results.
fn run_all(policy: PolicyChoice, n: u64) -> Vec<u64> {
    let rt = Runtime::builder().cores(1).policy(policy).build().unwrap();
    rt.block_on(move || {
        let strands: Vec<_> = (0..n)
            .map(|i| {
                braid::spawn(move || {
                    braid::yield_now();
                    i
                })
            })
            .collect();
        strands.into_iter().map(|s| s.join().unwrap()).collect()
    })
}

/// First in, first out, that panics on its `fuse`-th pick.
struct Fused {
    ready: VecDeque<StrandRef>,
    picks: usize,
    fuse: usize,
}

impl Policy<StrandRef> for Fused {
    fn enqueue(&mut self, strand: StrandRef, _: Insert, _: Nanos) {
        self.ready.push_back(strand);
    }
    fn pick_next(&mut self, _: Nanos) -> Option<StrandRef> {
        self.picks += 1;
        assert!(self.picks != self.fuse, "a policy bug");
        self.ready.pop_front()
    }
    fn slice(&self, _: &StrandRef) -> Nanos {
        2_000_000
    }
    fn len(&self) -> usize {
        self.ready.len()
    }
    fn take_for_transfer(&mut self, _: usize) -> Vec<StrandRef> {
        Vec::new()
    }
}

#[test]
fn a_policy_that_panics_is_replaced_and_no_strand_is_lost() {
    let fused = PolicyChoice::custom(|_| {
        Box::new(Fused {
            ready: VecDeque::new(),
            picks: 0,
            fuse: 10,
        })
    });
    assert_eq!(run_all(fused, 40), (0..40).collect::<Vec<_>>());
}

/// Forgets every third strand it is given, hands back made-up and stale
/// handles, and tries to spawn, yield and cancel from inside the scheduler.
struct Careless {
    ready: VecDeque<StrandRef>,
    given: usize,
    stale: Option<StrandRef>,
    spawn_refused: Arc<AtomicUsize>,
}

impl Policy<StrandRef> for Careless {
    fn enqueue(&mut self, strand: StrandRef, _: Insert, _: Nanos) {
        self.given += 1;
        braid::yield_now();
        if braid::Builder::new().spawn(|| ()).is_err() {
            self.spawn_refused.fetch_add(1, Ordering::Relaxed);
        }
        if self.given % 3 != 0 {
            self.ready.push_back(strand);
        }
    }
    fn pick_next(&mut self, _: Nanos) -> Option<StrandRef> {
        if self.given % 2 == 0 {
            if let Some(stale) = self.stale {
                return Some(stale);
            }
        }
        let next = self.ready.pop_front();
        self.stale = next;
        next
    }
    fn slice(&self, _: &StrandRef) -> Nanos {
        2_000_000
    }
    fn len(&self) -> usize {
        self.ready.len()
    }
    fn take_for_transfer(&mut self, _: usize) -> Vec<StrandRef> {
        self.stale.into_iter().collect()
    }
}

#[test]
fn a_careless_policy_cannot_lose_a_strand_or_reach_into_the_scheduler() {
    let refused = Arc::new(AtomicUsize::new(0));
    let r = refused.clone();
    let careless = PolicyChoice::custom(move |_| {
        Box::new(Careless {
            ready: VecDeque::new(),
            given: 0,
            stale: None,
            spawn_refused: r.clone(),
        })
    });
    assert_eq!(run_all(careless, 30), (0..30).collect::<Vec<_>>());
    assert!(
        refused.load(Ordering::Relaxed) >= 30,
        "spawning from inside the scheduler is refused, not run"
    );
}
