//! The policy and balancer a program picks are the ones its cores run.

use braid::sched::{
    Balancer, BalancerChoice, BalancerKind, CoreId, Grant, Insert, Nanos, Policy, PolicyChoice,
    PolicyKind, ReadyStrand, Rng,
};
use braid::Runtime;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Last in, first out.
struct Lifo(VecDeque<ReadyStrand>);

impl Policy<ReadyStrand> for Lifo {
    fn enqueue(&mut self, strand: ReadyStrand, _: Insert, _: Nanos) {
        self.0.push_front(strand);
    }
    fn pick_next(&mut self, _: Nanos) -> Option<ReadyStrand> {
        self.0.pop_front()
    }
    fn slice(&self, _: &ReadyStrand) -> Nanos {
        2_000_000
    }
    fn len(&self) -> usize {
        self.0.len()
    }
    fn take_for_transfer(&mut self, count: usize) -> Vec<ReadyStrand> {
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
