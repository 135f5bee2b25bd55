//! A core's end of the bus: the producer side of its row of rings, the
//! consumer side of its column, its doorbell, and a local overflow queue per
//! destination so that sending never fails for lack of room.
//!
//! The rules endpoints follow are on [`Endpoint`].

use std::collections::VecDeque;
use std::fmt;
use std::mem;

use crate::bus::Shared;
use crate::doorbell::{Doorbell, Notify, INJECTED, SENDER_BITS, SENDER_MASK};
use crate::error::SendError;
use crate::ring::Ring;
use crate::sync::Arc;

/// Where a delivered message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    /// Sent by the endpoint of this core.
    Core(usize),
    /// Injected by a thread that is not a core, through
    /// [`Bus::inject`](crate::Bus::inject).
    Injected,
}

/// One core's connection to the bus.
///
/// `Send`, so it can be moved to the thread of its core, but every operation
/// that moves messages takes `&mut self`: an endpoint is single-threaded by
/// construction.
///
/// # Ownership
///
/// [`Bus::new`](crate::Bus::new) makes exactly one endpoint per core, and every
/// operation that pushes or pops takes `&mut self`. So ring `(from, to)` is
/// pushed only through endpoint `from`, popped only through endpoint `to`, and
/// each by one thread at a time; moving an endpoint to another thread moves it
/// with a happens-before edge (the move itself). That is the contract of
/// [`Ring::push`] and [`Ring::pop`].
///
/// # Ordering and delivery
///
/// 1. Messages from one core to another arrive in the order they were sent:
///    while the overflow queue for a destination is non-empty, new messages go
///    behind it, and it is flushed into the ring from the front.
/// 2. Every message pushed into a ring is followed by a ring of the receiver's
///    doorbell, so a receiver that takes the bit finds the message.
/// 3. A message in an overflow queue has not been announced yet; the sender
///    flushes it on its next [`send`](Endpoint::send) to that core or its next
///    [`check`](Endpoint::check). So a core must not park while
///    [`has_overflow`](Endpoint::has_overflow) is true, and
///    [`try_sleep`](Endpoint::try_sleep) refuses to.
/// 4. A check pops at most `capacity` messages per ring. At the moment the
///    receiver took a sender's bit, the ring held at most `capacity` messages,
///    all of them at its front; so the check delivers every message that bit
///    announced, and stays bounded even while the sender keeps pushing. Later
///    messages have rung the bit again.
pub struct Endpoint<M> {
    core: usize,
    shared: Arc<Shared<M>>,
    /// Messages to core `to` that did not fit in ring `(core, to)`, oldest
    /// first, at index `to`. The entry for `core` itself stays empty.
    overflow: Box<[VecDeque<M>]>,
    /// Messages in all overflow queues together.
    overflowed: usize,
    /// Cores whose doorbell answered [`Notify::WakeReceiver`] during the last
    /// [`check`](Self::check); reused so that checking never allocates once warm.
    to_wake: Vec<usize>,
    /// Injected messages taken from the shared queue but not yet delivered
    /// (only non-empty if a `deliver` callback panicked).
    injected: VecDeque<M>,
}

/// What a [`check`](Endpoint::check) did, and whom the caller must wake.
#[must_use = "cores in `to_wake` stay asleep unless the caller wakes them"]
#[derive(Debug, PartialEq, Eq)]
pub struct Checked<'a> {
    delivered: usize,
    to_wake: &'a [usize],
}

impl<'a> Checked<'a> {
    /// How many messages were handed to the `deliver` callback.
    pub fn delivered(&self) -> usize {
        self.delivered
    }

    /// Cores that were asleep when this check flushed overflow to them: the
    /// caller must wake each one, as for [`Notify::WakeReceiver`]. In increasing
    /// order, each at most once.
    pub fn to_wake(&self) -> &'a [usize] {
        self.to_wake
    }
}

impl<M> Endpoint<M> {
    /// The endpoint of core `core`. Only [`Bus::new`](crate::Bus::new) calls
    /// this, once per core (see "Ownership" on [`Endpoint`]).
    pub(crate) fn new(core: usize, shared: Arc<Shared<M>>) -> Self {
        let cores = shared.cores();
        Self {
            core,
            shared,
            overflow: (0..cores).map(|_| VecDeque::new()).collect(),
            overflowed: 0,
            to_wake: Vec::new(),
            injected: VecDeque::new(),
        }
    }

    /// This endpoint's core.
    pub fn core(&self) -> usize {
        self.core
    }

    /// The number of cores on the bus.
    pub fn cores(&self) -> usize {
        self.shared.cores()
    }

    /// Sends `message` to core `to`, and says whether the caller must wake it.
    ///
    /// Never blocks and never loses the message: if the ring to `to` is full,
    /// or older messages to `to` still wait in the overflow queue, the message
    /// joins that queue and goes out on a later `send` to `to` or
    /// [`check`](Self::check). The receiver's doorbell is rung only when
    /// something entered the ring, so a send that only queued returns
    /// [`Notify::None`]: the ring is full of messages whose rings the receiver
    /// will see, and the queued one waits for this endpoint's next flush.
    ///
    /// # Errors
    ///
    /// If `to` is this endpoint's own core or not a core of the bus; the
    /// message is handed back in the error and nothing is queued.
    pub fn send(&mut self, to: usize, message: M) -> Result<Notify, SendError<M>> {
        let cores = self.shared.cores();
        if to >= cores {
            return Err(SendError::no_such_core(message, to, cores));
        }
        if to == self.core {
            return Err(SendError::to_self(message, to));
        }
        let ring = self.shared.ring(self.core, to);
        let queue = &mut self.overflow[to];
        // Older messages go first (ordering rule 1).
        // SAFETY: this endpoint is the only producer of ring (core, to), see
        // "Ownership" on `Endpoint`; `&mut self` keeps it on one thread.
        let mut pushed = unsafe { flush_into(ring, queue) };
        self.overflowed -= pushed;
        if queue.is_empty() {
            // SAFETY: as above, we are the only producer of this ring.
            match unsafe { ring.push(message) } {
                Ok(()) => pushed += 1,
                Err(message) => {
                    queue.push_back(message);
                    self.overflowed += 1;
                }
            }
        } else {
            queue.push_back(message);
            self.overflowed += 1;
        }
        if pushed == 0 {
            return Ok(Notify::None);
        }
        Ok(self
            .shared
            .doorbell(to)
            .ring(Doorbell::sender_bit(self.core)))
    }

    /// Flushes overflow, then delivers all mail announced on this core's
    /// doorbell to `deliver`, oldest first per origin.
    ///
    /// 1. Pushes as much of each overflow queue as fits into its ring and
    ///    rings those receivers; the ones that were asleep are listed in
    ///    [`Checked::to_wake`] and the caller must wake them.
    /// 2. If the doorbell has no mail bit, returns: one load.
    /// 3. Otherwise takes the bits and pops the rings of exactly the senders
    ///    whose bits were set (bit `b` covers senders `b`, `b + 30`, …), then
    ///    the injector queue if [`INJECTED`] was set.
    ///
    /// If `deliver` panics, the mail bits taken are rung again, so the
    /// undelivered messages are found by the next check.
    pub fn check(&mut self, mut deliver: impl FnMut(Origin, M)) -> Checked<'_> {
        self.to_wake.clear();
        if self.overflowed != 0 {
            self.flush_overflow();
        }
        let shared = &*self.shared;
        let doorbell = shared.doorbell(self.core);
        if doorbell.is_empty() {
            return Checked {
                delivered: 0,
                to_wake: &self.to_wake,
            };
        }
        let mail = doorbell.take();
        let rering = ReringOnUnwind { doorbell, mail };
        let mut delivered = 0;
        let mut sender_bits = mail & SENDER_MASK;
        while sender_bits != 0 {
            let bit = sender_bits.trailing_zeros() as usize;
            sender_bits &= sender_bits - 1;
            for from in (bit..shared.cores()).step_by(SENDER_BITS as usize) {
                if from == self.core {
                    continue;
                }
                let ring = shared.ring(from, self.core);
                // At most `capacity` pops: ordering rule 4.
                for _ in 0..ring.capacity() {
                    // SAFETY: this endpoint is the only consumer of ring
                    // (from, core), see "Ownership"; `&mut self` keeps it on
                    // one thread.
                    let Some(message) = (unsafe { ring.pop() }) else {
                        break;
                    };
                    delivered += 1;
                    deliver(Origin::Core(from), message);
                }
            }
        }
        if mail & INJECTED != 0 {
            // Behind any leftovers of a panicked check, which are older.
            self.injected.append(&mut shared.lock_injector(self.core));
            while let Some(message) = self.injected.pop_front() {
                delivered += 1;
                deliver(Origin::Injected, message);
            }
        }
        rering.disarm();
        Checked {
            delivered,
            to_wake: &self.to_wake,
        }
    }

    /// Whether messages wait in an overflow queue. They reach their receivers
    /// only through later calls on this endpoint, so its core must not park.
    #[inline]
    pub fn has_overflow(&self) -> bool {
        self.overflowed != 0
    }

    /// Marks this core as going to sleep, unless it has mail or overflow.
    ///
    /// Returns `true` if the core may park (on [`Doorbell::word`], expecting
    /// [`SLEEPING`](crate::SLEEPING)); after running again it must call
    /// [`wake_up`](Self::wake_up). Returns `false` if mail arrived or
    /// [`has_overflow`](Self::has_overflow) is true: keep checking instead.
    pub fn try_sleep(&self) -> bool {
        !self.has_overflow() && self.doorbell().try_sleep()
    }

    /// Clears the sleeping mark after parking; see [`Doorbell::wake_up`].
    pub fn wake_up(&self) {
        self.doorbell().wake_up();
    }

    /// This core's own doorbell.
    #[inline]
    pub fn doorbell(&self) -> &Doorbell {
        self.shared.doorbell(self.core)
    }

    /// Step 1 of [`check`](Self::check).
    fn flush_overflow(&mut self) {
        let me = self.core;
        for (to, queue) in self.overflow.iter_mut().enumerate() {
            if queue.is_empty() {
                continue;
            }
            let ring = self.shared.ring(me, to);
            // SAFETY: this endpoint is the only producer of ring (me, to), see
            // "Ownership"; `&mut self` keeps it on one thread.
            let pushed = unsafe { flush_into(ring, queue) };
            self.overflowed -= pushed;
            if pushed != 0 {
                let notify = self.shared.doorbell(to).ring(Doorbell::sender_bit(me));
                if notify == Notify::WakeReceiver {
                    self.to_wake.push(to);
                }
            }
        }
    }
}

/// Moves messages from the front of `queue` into `ring` until it is full or
/// the queue empty; returns how many moved.
///
/// # Safety
///
/// The caller must be the only producer of `ring`, as [`Ring::push`] requires.
unsafe fn flush_into<M>(ring: &Ring<M>, queue: &mut VecDeque<M>) -> usize {
    let mut pushed = 0;
    while let Some(message) = queue.pop_front() {
        // SAFETY: the caller is the only producer of `ring`.
        if let Err(message) = unsafe { ring.push(message) } {
            queue.push_front(message);
            break;
        }
        pushed += 1;
    }
    pushed
}

/// Rings `mail` back on a doorbell if dropped before
/// [`disarm`](Self::disarm), so that a panicking `deliver` callback does not
/// strand the messages those bits announced.
struct ReringOnUnwind<'a> {
    doorbell: &'a Doorbell,
    mail: u32,
}

impl ReringOnUnwind<'_> {
    fn disarm(self) {
        mem::forget(self);
    }
}

impl Drop for ReringOnUnwind<'_> {
    fn drop(&mut self) {
        if self.mail != 0 {
            // The receiver rings itself while running, so it is not asleep and
            // there is no one to wake.
            let _ = self.doorbell.ring(self.mail);
        }
    }
}

impl<M> fmt::Debug for Endpoint<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("core", &self.core)
            .field("cores", &self.cores())
            .field("overflowed", &self.overflowed)
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::Bus;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn collect<M>(endpoint: &mut Endpoint<M>) -> Vec<(Origin, M)> {
        let mut got = Vec::new();
        let checked = endpoint.check(|from, message| got.push((from, message)));
        assert_eq!(checked.delivered(), got.len());
        got
    }

    #[test]
    fn wrong_destinations_give_the_message_back() {
        let (_bus, mut endpoints) = Bus::new(2, 2).unwrap();
        let error = endpoints[0].send(0, "to me").unwrap_err();
        assert!(error.is_to_self());
        assert_eq!(error.into_message(), "to me");
        let error = endpoints[0].send(2, "nowhere").unwrap_err();
        assert!(error.is_no_such_core());
        assert_eq!(
            error.to_string(),
            "cannot send to core 2: the bus has 2 cores (destinations must be below 2)"
        );
        assert!(endpoints[0].doorbell().is_empty() && endpoints[1].doorbell().is_empty());
        assert!(!endpoints[0].has_overflow());
    }

    #[test]
    fn full_ring_overflows_locally_and_keeps_fifo_order() {
        let (_bus, mut endpoints) = Bus::new(2, 2).unwrap();
        let (left, right) = endpoints.split_at_mut(1);
        let (sender, receiver) = (&mut left[0], &mut right[0]);
        for n in 0..5 {
            let _ = sender.send(1, n).unwrap();
        }
        assert!(sender.has_overflow());
        assert!(!sender.try_sleep(), "a core with overflow must not park");

        // The ring held 0 and 1; 2..5 wait in the overflow queue.
        let origin = Origin::Core(0);
        assert_eq!(collect(receiver), [(origin, 0), (origin, 1)]);
        // A send while overflow is pending flushes it first, then queues
        // behind it: 2, 3 go out now, 4 and 5 wait.
        assert_eq!(sender.send(1, 5).unwrap(), Notify::None);
        assert_eq!(collect(receiver), [(origin, 2), (origin, 3)]);
        // A check flushes too.
        let checked = sender.check(|_, _: i32| unreachable!("no mail for core 0"));
        assert_eq!((checked.delivered(), checked.to_wake()), (0, &[][..]));
        assert!(!sender.has_overflow());
        assert_eq!(collect(receiver), [(origin, 4), (origin, 5)]);
        assert_eq!(collect(receiver), []);
    }

    #[test]
    fn check_reports_sleeping_receivers_reached_by_a_flush() {
        let (_bus, mut endpoints) = Bus::new(3, 2).unwrap();
        for n in 0..3 {
            let _ = endpoints[0].send(2, n).unwrap();
        }
        // Core 2 drains the ring, and goes to sleep with mail bits cleared.
        assert_eq!(collect(&mut endpoints[2]).len(), 2);
        assert!(endpoints[2].try_sleep());
        let checked = endpoints[0].check(|_, _| {});
        assert_eq!(checked.to_wake(), [2]);
        endpoints[2].wake_up();
        assert_eq!(collect(&mut endpoints[2]), [(Origin::Core(0), 2)]);
    }

    #[test]
    fn check_with_no_mail_delivers_nothing() {
        let (_bus, mut endpoints) = Bus::<u8>::new(3, 2).unwrap();
        assert_eq!(collect(&mut endpoints[1]), []);
        assert!(endpoints[1].try_sleep());
        endpoints[1].wake_up();
    }

    #[test]
    fn delivers_from_several_senders_and_the_injector() {
        let (bus, mut endpoints) = Bus::new(4, 4).unwrap();
        let _ = bus.inject(0, 100).unwrap();
        let _ = endpoints[3].send(0, 30).unwrap();
        let _ = endpoints[1].send(0, 10).unwrap();
        let _ = endpoints[3].send(0, 31).unwrap();
        let _ = bus.inject(0, 101).unwrap();
        let mut got = collect(&mut endpoints[0]);
        got.sort_by_key(|&(origin, _)| match origin {
            Origin::Core(core) => core,
            Origin::Injected => usize::MAX,
        });
        assert_eq!(
            got,
            [
                (Origin::Core(1), 10),
                (Origin::Core(3), 30),
                (Origin::Core(3), 31),
                (Origin::Injected, 100),
                (Origin::Injected, 101),
            ]
        );
    }

    #[test]
    fn senders_sharing_a_doorbell_bit_are_all_drained() {
        // Senders 1, 31 and 61 all ring bit 1 of core 0's doorbell.
        let (_bus, mut endpoints) = Bus::new(62, 2).unwrap();
        for sender in [61, 1, 31] {
            let _ = endpoints[sender].send(0, sender).unwrap();
        }
        assert_eq!(endpoints[0].doorbell().take(), 1 << 1);
        let _ = endpoints[0].doorbell().ring(1 << 1);
        let got: Vec<_> = collect(&mut endpoints[0])
            .into_iter()
            .map(|(_, m)| m)
            .collect();
        assert_eq!(got, [1, 31, 61]);
    }

    #[test]
    fn check_pops_at_most_capacity_per_ring_then_finds_the_rest() {
        let (_bus, mut endpoints) = Bus::new(2, 2).unwrap();
        let _ = endpoints[0].send(1, 0).unwrap();
        let _ = endpoints[0].send(1, 1).unwrap();
        let mut got = Vec::new();
        // Deliver pushes more behind the messages being drained: the check
        // stops after `capacity` pops, and the bell rung by the new sends
        // leads the next check to them.
        let (left, right) = endpoints.split_at_mut(1);
        let (sender, receiver) = (&mut left[0], &mut right[0]);
        let checked = receiver.check(|_, m| {
            got.push(m);
            let _ = sender.send(1, m + 2).unwrap();
        });
        assert_eq!(checked.delivered(), 2);
        assert!(!receiver.doorbell().is_empty());
        assert_eq!(collect(receiver).len(), 2);
        assert_eq!(got, [0, 1]);
    }

    #[test]
    fn panicking_deliver_leaves_the_rest_for_the_next_check() {
        let (bus, mut endpoints) = Bus::new(2, 4).unwrap();
        for n in 0..3 {
            let _ = endpoints[0].send(1, n).unwrap();
        }
        let _ = bus.inject(1, 10).unwrap();
        let _ = bus.inject(1, 11).unwrap();
        let receiver = &mut endpoints[1];
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = receiver.check(|_, m| assert_ne!(m, 1, "deliver panics on 1"));
        }));
        assert!(result.is_err());
        let _ = bus.inject(1, 12).unwrap();
        let got: Vec<_> = collect(receiver).into_iter().map(|(_, m)| m).collect();
        assert_eq!(got, [2, 10, 11, 12]);

        let _ = bus.inject(1, 20).unwrap();
        let _ = bus.inject(1, 21).unwrap();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = receiver.check(|_, m| assert_ne!(m, 20, "deliver panics on 20"));
        }));
        assert!(result.is_err());
        let _ = bus.inject(1, 22).unwrap();
        let got: Vec<_> = collect(receiver).into_iter().map(|(_, m)| m).collect();
        assert_eq!(got, [21, 22]);
    }

    /// Counts how many values of it were dropped.
    struct DropCounter(&'static AtomicUsize);

    impl Drop for DropCounter {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn undelivered_messages_are_dropped_exactly_once() {
        static DROPS: AtomicUsize = AtomicUsize::new(0);
        let (bus, mut endpoints) = Bus::new(3, 2).unwrap();
        for _ in 0..5 {
            // Two fit in the ring, three overflow.
            let _ = endpoints[0].send(1, DropCounter(&DROPS)).unwrap();
        }
        let _ = endpoints[2].send(1, DropCounter(&DROPS)).unwrap();
        let _ = bus.inject(1, DropCounter(&DROPS)).unwrap();
        let _ = bus.inject(0, DropCounter(&DROPS)).unwrap();
        // Deliver (and drop) exactly one: the injected message for core 0.
        assert_eq!(
            endpoints[0].check(|_, message| drop(message)).delivered(),
            1
        );
        assert_eq!(DROPS.load(Ordering::Relaxed), 1);
        drop(endpoints);
        // The three overflowed messages went with their endpoint; rings and
        // injectors live until the last handle on the bus goes.
        assert_eq!(DROPS.load(Ordering::Relaxed), 1 + 3);
        drop(bus);
        // Two in ring (0, 1), one in ring (2, 1), one injected for core 1.
        assert_eq!(DROPS.load(Ordering::Relaxed), 4 + 4);
    }
}
