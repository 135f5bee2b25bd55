//! Four cores on four threads flood each other with numbered messages.
//!
//! Proves that every message arrives exactly once, at the destination its
//! sender chose, and that messages from one sender to one receiver arrive in
//! send order, with small rings so the overflow path is exercised heavily.

#![cfg(not(loom))]

use std::thread;

use braid_bus::{Bus, Origin};

const CORES: usize = 4;
const MESSAGES_PER_SENDER: u32 = 200_000;
/// Small, so rings fill up and messages go through the overflow queues.
const RING_CAPACITY: usize = 64;
/// How many messages a core sends between two checks.
const BURST: u32 = 256;

/// A numbered message: `(sender, sequence number)` of that sender.
type Message = (usize, u32);

/// xorshift64: a tiny seeded generator, so a failing run can be replayed.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        // xorshift must not start at 0.
        Self(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The destinations core `sender` picks, in order: random cores other than
/// itself, replayable from the seed.
fn destinations(sender: usize) -> Vec<usize> {
    let mut rng = XorShift::new(0x9E37_79B9_7F4A_7C15 ^ sender as u64);
    (0..MESSAGES_PER_SENDER)
        .map(|_| {
            let offset = 1 + (rng.next() % (CORES as u64 - 1)) as usize;
            (sender + offset) % CORES
        })
        .collect()
}

#[test]
fn every_message_arrives_once_and_in_order_per_sender() {
    let plans: Vec<Vec<usize>> = (0..CORES).map(destinations).collect();
    // expected[receiver][sender]: the sequence numbers receiver must get from
    // sender, in order.
    let expected: Vec<Vec<Vec<u32>>> = (0..CORES)
        .map(|receiver| {
            plans
                .iter()
                .map(|plan| {
                    (0..MESSAGES_PER_SENDER)
                        .filter(|&seq| plan[seq as usize] == receiver)
                        .collect()
                })
                .collect()
        })
        .collect();

    let (_bus, endpoints) = Bus::<Message>::new(CORES, RING_CAPACITY).unwrap();
    let workers: Vec<_> = endpoints
        .into_iter()
        .zip(plans)
        .map(|(mut endpoint, plan)| {
            let expected_count: usize = expected[endpoint.core()].iter().map(Vec::len).sum();
            thread::spawn(move || {
                let me = endpoint.core();
                let mut received: Vec<Vec<u32>> = vec![Vec::new(); CORES];
                let mut received_count = 0;
                let mut next_seq = 0;
                let mut overflowed = false;
                while next_seq < MESSAGES_PER_SENDER
                    || endpoint.has_overflow()
                    || received_count < expected_count
                {
                    let burst_end = (next_seq + BURST).min(MESSAGES_PER_SENDER);
                    while next_seq < burst_end {
                        // No core sleeps here, so there is no one to wake.
                        let _notify = endpoint
                            .send(plan[next_seq as usize], (me, next_seq))
                            .unwrap();
                        next_seq += 1;
                    }
                    overflowed |= endpoint.has_overflow();
                    let checked = endpoint.check(|origin, (sender, seq)| {
                        assert_eq!(origin, Origin::Core(sender));
                        received[sender].push(seq);
                    });
                    assert!(checked.to_wake().is_empty());
                    received_count += checked.delivered();
                    if checked.delivered() == 0 {
                        thread::yield_now();
                    }
                }
                (me, received, overflowed)
            })
        })
        .collect();

    let mut any_overflowed = false;
    for worker in workers {
        let (receiver, received, overflowed) = worker.join().unwrap();
        any_overflowed |= overflowed;
        for sender in 0..CORES {
            // Equal sequences prove exactly once, right destination and order.
            assert!(
                received[sender] == expected[receiver][sender],
                "core {receiver} got {} messages from core {sender}, expected {}, or out of order",
                received[sender].len(),
                expected[receiver][sender].len(),
            );
        }
    }
    assert!(any_overflowed, "the overflow path was never taken");
}
