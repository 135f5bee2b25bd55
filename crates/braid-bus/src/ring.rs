//! A bounded lock-free single-producer single-consumer ring.
//!
//! # Layout
//!
//! Two free-running indices count every push (`tail`) and every pop (`head`)
//! since construction; a message lives in slot `index & mask`. They wrap around
//! `usize` and are only ever compared by wrapping subtraction, so the ring holds
//! `tail - head` messages, between 0 and `capacity`.
//!
//! Each side's index sits on its own cache line together with that side's
//! *cached copy* of the other index. The producer re-reads `head` only when its
//! cached copy says the ring is full, and the consumer re-reads `tail` only when
//! its copy says the ring is empty, so in the steady state each side touches the
//! other's line once per `capacity` messages instead of on every operation.
//!
//! # Protocol
//!
//! 1. Only the producer writes `tail` and `producer.cached_head`; only the
//!    consumer writes `head` and `consumer.cached_tail`.
//! 2. The producer writes slot `tail` only while `tail - head < capacity`, that
//!    is after the consumer has finished moving out the message that was there,
//!    then publishes it with a `Release` store of `tail + 1`.
//! 3. The consumer reads slot `head` only while `head != tail`, after an
//!    `Acquire` load of `tail` that saw the producer's store, then hands the slot
//!    back with a `Release` store of `head + 1`.
//!
//! Slots in `head..tail` hold initialized messages; all others are logically
//! uninitialized. That is what makes [`Drop`] able to drain the ring.

use std::fmt;
use std::mem::MaybeUninit;

use crossbeam_utils::CachePadded;

use crate::error::{BusError, MAX_RING_CAPACITY};
use crate::sync::{AtomicUsize, Ordering, UnsafeCell};

/// A bounded lock-free ring carrying messages from one producer thread to one
/// consumer thread.
///
/// The capacity is a power of two fixed at construction. [`push`](Self::push)
/// and [`pop`](Self::pop) are `unsafe` because the ring trusts its caller to
/// have at most one producer and one consumer; [`Endpoint`](crate::Endpoint)
/// upholds that by construction.
pub struct Ring<M> {
    /// The producer's line: written on every push.
    producer: CachePadded<ProducerSide>,
    /// The consumer's line: written on every pop.
    consumer: CachePadded<ConsumerSide>,
    /// `capacity - 1`; turns an index into a slot number.
    mask: usize,
    /// The messages; see the module docs for which ones are initialized.
    slots: Box<[UnsafeCell<MaybeUninit<M>>]>,
}

struct ProducerSide {
    /// Number of pushes so far. Written only by the producer.
    tail: AtomicUsize,
    /// The last value of `head` the producer loaded. Never ahead of `head`.
    cached_head: UnsafeCell<usize>,
}

struct ConsumerSide {
    /// Number of pops so far. Written only by the consumer.
    head: AtomicUsize,
    /// The last value of `tail` the consumer loaded. Never ahead of `tail`.
    cached_tail: UnsafeCell<usize>,
}

// SAFETY: the ring moves values of `M` between threads, hence `M: Send`. The
// `UnsafeCell`s are each accessed by one side only (protocol rule 1) or, for the
// slots, handed between the two sides with Release/Acquire on `head` and `tail`
// (rules 2 and 3), which `push`'s and `pop`'s callers promise to respect.
unsafe impl<M: Send> Sync for Ring<M> {}

// SAFETY: owning a ring owns the messages in it, so sending the ring sends
// them, which `M: Send` allows; the indices are plain integers.
unsafe impl<M: Send> Send for Ring<M> {}

impl<M> Ring<M> {
    /// Creates an empty ring holding up to `capacity` messages.
    ///
    /// # Errors
    ///
    /// Unless `capacity` is a power of two between 2 and
    /// [`MAX_RING_CAPACITY`].
    pub fn new(capacity: usize) -> Result<Self, BusError> {
        check_capacity(capacity)?;
        Ok(Self {
            producer: CachePadded::new(ProducerSide {
                tail: AtomicUsize::new(0),
                cached_head: UnsafeCell::new(0),
            }),
            consumer: CachePadded::new(ConsumerSide {
                head: AtomicUsize::new(0),
                cached_tail: UnsafeCell::new(0),
            }),
            mask: capacity - 1,
            slots: (0..capacity)
                .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
                .collect(),
        })
    }

    /// The most messages the ring holds at once.
    pub fn capacity(&self) -> usize {
        self.mask + 1
    }

    /// Appends `message`, or hands it back if the ring is full.
    ///
    /// # Safety
    ///
    /// At any time at most one thread may be the producer, the only caller of
    /// `push`. The role may move to another thread only if the last push on the
    /// old thread happens-before the first push on the new one (for example
    /// through a channel, a mutex, a thread spawn or join).
    pub unsafe fn push(&self, message: M) -> Result<(), M> {
        // Relaxed: `tail` is only written by this thread (we are the producer),
        // so we always read our own latest store.
        let tail = self.producer.tail.load(Ordering::Relaxed);
        // SAFETY: `cached_head` is only accessed by the producer, and the caller
        // guarantees that is us alone.
        let mut head = self.producer.cached_head.with(|cached| unsafe { *cached });
        if tail.wrapping_sub(head) == self.capacity() {
            // Acquire: pairs with the consumer's Release store of `head` in
            // `pop`, so its move out of the slot we may now reuse happens-before
            // our write to it.
            head = self.consumer.head.load(Ordering::Acquire);
            // SAFETY: as above, only the producer touches `cached_head`.
            self.producer
                .cached_head
                .with_mut(|cached| unsafe { *cached = head });
            if tail.wrapping_sub(head) == self.capacity() {
                return Err(message);
            }
        }
        debug_assert!(tail.wrapping_sub(head) < self.capacity());
        // SAFETY: `tail - head < capacity`, so slot `tail` lies outside
        // `head..tail`: it holds no message, and the consumer has finished
        // reading it (the Acquire load of `head` above, or an earlier one the
        // cached copy came from). The consumer will not read it before our
        // Release store of `tail` below. We are the only producer.
        self.slots[tail & self.mask].with_mut(|slot| unsafe {
            (*slot).write(message);
        });
        // Release: publishes the slot write to the consumer's Acquire load of
        // `tail`.
        self.producer
            .tail
            .store(tail.wrapping_add(1), Ordering::Release);
        Ok(())
    }

    /// Removes the oldest message, or returns `None` if the ring is empty.
    ///
    /// # Safety
    ///
    /// At any time at most one thread may be the consumer, the only caller of
    /// `pop`. The role may move to another thread only if the last pop on the
    /// old thread happens-before the first pop on the new one.
    pub unsafe fn pop(&self) -> Option<M> {
        // Relaxed: `head` is only written by this thread (we are the consumer).
        let head = self.consumer.head.load(Ordering::Relaxed);
        // SAFETY: `cached_tail` is only accessed by the consumer, and the caller
        // guarantees that is us alone.
        let mut tail = self.consumer.cached_tail.with(|cached| unsafe { *cached });
        if head == tail {
            // Acquire: pairs with the producer's Release store of `tail` in
            // `push`, so the write of every slot up to `tail` happens-before our
            // read of it.
            tail = self.producer.tail.load(Ordering::Acquire);
            // SAFETY: as above, only the consumer touches `cached_tail`.
            self.consumer
                .cached_tail
                .with_mut(|cached| unsafe { *cached = tail });
            if head == tail {
                return None;
            }
        }
        debug_assert!(tail.wrapping_sub(head) <= self.capacity());
        // SAFETY: `head != tail`, so slot `head` lies in `head..tail` and holds
        // a message whose write happens-before this read (the Acquire load of
        // `tail` above, or an earlier one the cached copy came from). The
        // producer will not overwrite it before our Release store of `head`
        // below, and we advance `head` past it, so it is moved out only once.
        let message =
            self.slots[head & self.mask].with(|slot| unsafe { (*slot).assume_init_read() });
        // Release: our move out of the slot happens-before the producer's
        // Acquire load of `head` that lets it reuse the slot.
        self.consumer
            .head
            .store(head.wrapping_add(1), Ordering::Release);
        Some(message)
    }
}

/// Accepts the capacities [`Ring::new`] accepts.
pub(crate) fn check_capacity(capacity: usize) -> Result<(), BusError> {
    // A power of two makes `index & mask` the slot number. At least 2 lets the
    // producer fill one slot while the consumer empties another, instead of
    // the two taking turns on every message.
    if (2..=MAX_RING_CAPACITY).contains(&capacity) && capacity.is_power_of_two() {
        Ok(())
    } else {
        Err(BusError::ring_capacity(capacity))
    }
}

impl<M> Drop for Ring<M> {
    fn drop(&mut self) {
        // SAFETY: `&mut self` makes this the only thread with access to the
        // ring, and whatever gave us that access (an `Arc` drop, a join)
        // happens-after every earlier push and pop, so we may act as consumer.
        while let Some(message) = unsafe { self.pop() } {
            drop(message);
        }
    }
}

impl<M> fmt::Debug for Ring<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring")
            .field("capacity", &self.capacity())
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize as StdAtomicUsize;
    use std::sync::Arc;

    #[test]
    fn rejects_capacities_that_are_not_powers_of_two_from_2() {
        for capacity in [0, 1, 3, 6, MAX_RING_CAPACITY * 2] {
            let error = Ring::<u8>::new(capacity).unwrap_err();
            assert_eq!(error, BusError::ring_capacity(capacity));
        }
        assert_eq!(Ring::<u8>::new(2).unwrap().capacity(), 2);
        assert_eq!(
            Ring::<u8>::new(MAX_RING_CAPACITY).unwrap().capacity(),
            MAX_RING_CAPACITY
        );
    }

    #[test]
    fn fills_refuses_and_drains_in_order_across_wraparound() {
        let ring = Ring::new(4).unwrap();
        let mut next_in = 0_u32;
        let mut next_out = 0_u32;
        // Many rounds so the indices wrap the slot array again and again, with
        // fill levels that shift the start position each round.
        for round in 0..50 {
            let fill = round % 4 + 1;
            for _ in 0..fill {
                // SAFETY: this test thread is the only producer.
                assert_eq!(unsafe { ring.push(next_in) }, Ok(()));
                next_in += 1;
            }
            if fill == 4 {
                // SAFETY: as above.
                assert_eq!(unsafe { ring.push(999) }, Err(999));
            }
            // SAFETY: this test thread is the only consumer.
            while let Some(message) = unsafe { ring.pop() } {
                assert_eq!(message, next_out);
                next_out += 1;
            }
        }
        assert_eq!(next_in, next_out);
    }

    /// Counts how many times values of it were dropped.
    struct DropCounter(Arc<StdAtomicUsize>);

    impl Drop for DropCounter {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn drop_drops_each_undelivered_message_exactly_once() {
        let drops = Arc::new(StdAtomicUsize::new(0));
        let ring = Ring::new(4).unwrap();
        // Move the indices off zero so the remaining messages wrap the array.
        for _ in 0..3 {
            // SAFETY: this test thread is the only producer and consumer.
            unsafe {
                assert!(ring.push(DropCounter(drops.clone())).is_ok());
                drop(ring.pop());
            }
        }
        assert_eq!(drops.load(Ordering::Relaxed), 3);
        for _ in 0..4 {
            // SAFETY: as above.
            assert!(unsafe { ring.push(DropCounter(drops.clone())) }.is_ok());
        }
        // SAFETY: as above; a refused message is handed back, then dropped here.
        let refused = unsafe { ring.push(DropCounter(drops.clone())) };
        drop(refused);
        assert_eq!(drops.load(Ordering::Relaxed), 4);
        drop(ring);
        assert_eq!(drops.load(Ordering::Relaxed), 8);
        assert_eq!(Arc::strong_count(&drops), 1);
    }

    #[test]
    fn carries_messages_between_two_threads_in_order() {
        const COUNT: u32 = 100_000;
        let ring = Arc::new(Ring::new(8).unwrap());
        let producer = {
            let ring = Arc::clone(&ring);
            std::thread::spawn(move || {
                for mut message in 0..COUNT {
                    // SAFETY: this spawned thread is the only producer.
                    while let Err(back) = unsafe { ring.push(message) } {
                        message = back;
                        std::thread::yield_now();
                    }
                }
            })
        };
        let mut expected = 0;
        while expected < COUNT {
            // SAFETY: the test thread is the only consumer.
            match unsafe { ring.pop() } {
                Some(message) => {
                    assert_eq!(message, expected);
                    expected += 1;
                }
                None => std::thread::yield_now(),
            }
        }
        producer.join().unwrap();
        // SAFETY: as above.
        assert_eq!(unsafe { ring.pop() }, None);
    }

    #[test]
    fn is_send_and_sync_for_send_messages() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Ring<String>>();
    }
}
