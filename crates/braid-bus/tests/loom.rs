//! Exhaustive interleaving checks of the ring and the doorbell protocol.
//!
//! Run with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p braid-bus --test loom --release`.

#![cfg(loom)]

use braid_bus::{Bus, Notify, Origin, Ring};
use loom::sync::Arc;
use loom::thread;

/// SPSC ring of capacity 2 carrying 3 messages: the producer must wait for
/// the consumer at least once, and the indices wrap the slot array. Every
/// message arrives exactly once and in order.
#[test]
fn ring_carries_three_messages_through_two_slots() {
    loom::model(|| {
        let ring = Arc::new(Ring::new(2).unwrap());
        let producer = {
            let ring = Arc::clone(&ring);
            thread::spawn(move || {
                for mut message in 0..3_u32 {
                    // SAFETY: this spawned thread is the ring's only producer.
                    while let Err(back) = unsafe { ring.push(message) } {
                        message = back;
                        thread::yield_now();
                    }
                }
            })
        };
        let mut received = Vec::new();
        while received.len() < 3 {
            // SAFETY: the model's main thread is the ring's only consumer.
            match unsafe { ring.pop() } {
                Some(message) => received.push(message),
                None => thread::yield_now(),
            }
        }
        producer.join().unwrap();
        assert_eq!(received, [0, 1, 2]);
        // SAFETY: as above.
        assert_eq!(unsafe { ring.pop() }, None);
    });
}

/// The lost-wakeup race: the receiver checks, finds nothing and tries to
/// sleep while the sender pushes and rings. The receiver may go to sleep only
/// if the sender is told to wake it, and a woken receiver finds the message.
#[test]
fn doorbell_never_strands_a_message_with_the_receiver_asleep() {
    loom::model(|| {
        let (_bus, mut endpoints) = Bus::<u32>::new(2, 2).unwrap();
        let mut sender = endpoints.pop().unwrap();
        let mut receiver = endpoints.pop().unwrap();

        let sending = thread::spawn(move || sender.send(0, 7).unwrap());

        let mut received = Vec::new();
        let first = receiver.check(|from, message| received.push((from, message)));
        assert!(first.to_wake().is_empty());
        let slept = received.is_empty() && receiver.try_sleep();

        let told_to_wake = sending.join().unwrap() == Notify::WakeReceiver;
        // Asleep implies someone was told to wake it; and a sender is only
        // told that when the receiver really went to sleep.
        assert_eq!(slept, told_to_wake);
        if slept {
            receiver.wake_up();
        }
        let _ = receiver.check(|from, message| received.push((from, message)));
        assert_eq!(received, [(Origin::Core(1), 7)]);
    });
}

/// Two cores send one message each to a third, which parks whenever its
/// doorbell lets it; senders unpark it when told to. A lost wakeup would
/// deadlock the model, a lost or duplicated message fails the assertion.
#[test]
fn two_senders_reach_a_parking_receiver() {
    loom::model(|| {
        let (_bus, mut endpoints) = Bus::<u32>::new(3, 2).unwrap();
        let receiver_thread = thread::current();
        let senders: Vec<_> = endpoints
            .drain(1..)
            .map(|mut sender| {
                let receiver_thread = receiver_thread.clone();
                thread::spawn(move || {
                    let message = 10 * sender.core() as u32;
                    if sender.send(0, message).unwrap() == Notify::WakeReceiver {
                        receiver_thread.unpark();
                    }
                })
            })
            .collect();

        let mut receiver = endpoints.pop().unwrap();
        let mut received = Vec::new();
        while received.len() < 2 {
            let checked = receiver.check(|from, message| received.push((from, message)));
            assert!(checked.to_wake().is_empty());
            if received.len() < 2 && receiver.try_sleep() {
                thread::park();
                receiver.wake_up();
            }
        }
        for sender in senders {
            sender.join().unwrap();
        }
        received.sort_by_key(|&(_, message)| message);
        assert_eq!(received, [(Origin::Core(1), 10), (Origin::Core(2), 20)]);
    });
}

/// A sender whose ring is full keeps the rest in its overflow queue and
/// flushes it from `check`, waking the receiver through `Checked::to_wake` if
/// it parked meanwhile. All three messages arrive, in order.
#[test]
fn overflow_flush_wakes_a_parking_receiver() {
    loom::model(|| {
        let (_bus, mut endpoints) = Bus::<u32>::new(2, 2).unwrap();
        let receiver_thread = thread::current();
        let mut sender = endpoints.pop().unwrap();
        let sending = thread::spawn(move || {
            for message in 0..3 {
                if sender.send(0, message).unwrap() == Notify::WakeReceiver {
                    receiver_thread.unpark();
                }
            }
            while sender.has_overflow() {
                let checked = sender.check(|_, _| unreachable!("core 1 gets no mail"));
                assert!(checked.to_wake().iter().all(|&core| core == 0));
                if !checked.to_wake().is_empty() {
                    receiver_thread.unpark();
                }
                thread::yield_now();
            }
        });

        let mut receiver = endpoints.pop().unwrap();
        let mut received = Vec::new();
        while received.len() < 3 {
            let _ = receiver.check(|from, message| received.push((from, message)));
            if received.len() < 3 && receiver.try_sleep() {
                thread::park();
                receiver.wake_up();
            }
        }
        sending.join().unwrap();
        let from = Origin::Core(1);
        assert_eq!(received, [(from, 0), (from, 1), (from, 2)]);
    });
}
