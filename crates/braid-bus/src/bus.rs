//! The bus: the state all cores share, how it is built, and the cold path for
//! threads that are not cores.
//!
//! For `n` cores the bus holds one [`Ring`] for every ordered pair
//! `(from, to)` with `from != to`, one [`Doorbell`] per core, and one injector
//! queue per core. Ring `(from, to)` is pushed only by endpoint `from` and
//! popped only by endpoint `to`; [`Bus::new`] creates exactly one
//! [`Endpoint`] per core, which is what makes every ring single-producer
//! single-consumer.

use std::collections::VecDeque;
use std::fmt;
use std::sync::PoisonError;

use crossbeam_utils::CachePadded;

use crate::doorbell::{Doorbell, Notify, INJECTED};
use crate::endpoint::Endpoint;
use crate::error::{BusError, SendError, MAX_CORES};
use crate::ring::Ring;
use crate::sync::{Arc, Mutex, MutexGuard};

/// A handle on a message bus between `cores` cores.
///
/// Cloning is cheap (an `Arc`). The bus itself only serves threads that are not
/// cores ([`inject`](Self::inject)) and wakers ([`doorbell`](Self::doorbell));
/// cores talk through the [`Endpoint`]s returned by [`new`](Self::new).
pub struct Bus<M> {
    shared: Arc<Shared<M>>,
}

/// What the bus handle and all endpoints share.
pub(crate) struct Shared<M> {
    cores: usize,
    /// Ring `(from, to)` is at [`ring_index`]`(cores, from, to)`.
    rings: Box<[Ring<M>]>,
    /// Doorbell of core `c` at index `c`, each on its own cache line because
    /// every sender to `c` writes it.
    doorbells: Box<[CachePadded<Doorbell>]>,
    /// Mail from threads that are not cores, for core `c` at index `c`.
    injectors: Box<[Mutex<VecDeque<M>>]>,
}

/// Where ring `(from, to)` sits: row `from` holds the `cores - 1` rings to every
/// other core, in order of `to`, skipping `to == from`.
fn ring_index(cores: usize, from: usize, to: usize) -> usize {
    debug_assert!(from < cores && to < cores && from != to);
    let column = if to < from { to } else { to - 1 };
    from * (cores - 1) + column
}

impl<M> Shared<M> {
    pub(crate) fn cores(&self) -> usize {
        self.cores
    }

    /// The ring from core `from` to core `to`; they must differ.
    pub(crate) fn ring(&self, from: usize, to: usize) -> &Ring<M> {
        &self.rings[ring_index(self.cores, from, to)]
    }

    pub(crate) fn doorbell(&self, core: usize) -> &Doorbell {
        &self.doorbells[core]
    }

    /// Locks core `core`'s injector queue.
    pub(crate) fn lock_injector(&self, core: usize) -> MutexGuard<'_, VecDeque<M>> {
        // A panic while the lock was held cannot have left a `VecDeque` half
        // updated in a way we care about: its operations are panic-safe.
        self.injectors[core]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl<M> Bus<M> {
    /// Builds a bus between `cores` cores whose rings hold `ring_capacity`
    /// messages each, and returns it with one endpoint per core (endpoint `i`
    /// at index `i`).
    ///
    /// # Errors
    ///
    /// Unless `cores` is between 1 and [`MAX_CORES`] and
    /// `ring_capacity` is a power of two between 2 and
    /// [`MAX_RING_CAPACITY`](crate::MAX_RING_CAPACITY).
    pub fn new(cores: usize, ring_capacity: usize) -> Result<(Self, Vec<Endpoint<M>>), BusError> {
        if !(1..=MAX_CORES).contains(&cores) {
            return Err(BusError::cores(cores));
        }
        // Checked here too because a one-core bus builds no ring.
        crate::ring::check_capacity(ring_capacity)?;
        let rings = (0..cores * (cores - 1))
            .map(|_| Ring::new(ring_capacity))
            .collect::<Result<_, _>>()?;
        let shared = Arc::new(Shared {
            cores,
            rings,
            doorbells: (0..cores)
                .map(|_| CachePadded::new(Doorbell::new()))
                .collect(),
            injectors: (0..cores).map(|_| Mutex::new(VecDeque::new())).collect(),
        });
        let endpoints = (0..cores)
            .map(|core| Endpoint::new(core, Arc::clone(&shared)))
            .collect();
        Ok((Self { shared }, endpoints))
    }

    /// The number of cores on this bus.
    pub fn cores(&self) -> usize {
        self.shared.cores
    }

    /// Sends `message` to core `to` from a thread that is not a core.
    ///
    /// The cold path: takes a lock on `to`'s injector queue, then rings its
    /// [`INJECTED`] bit. Messages injected by one thread to
    /// one core arrive in order. The returned [`Notify`] says whether the caller
    /// must wake core `to`.
    ///
    /// # Errors
    ///
    /// If `to` is not a core of this bus; the message is handed back in the
    /// error.
    pub fn inject(&self, to: usize, message: M) -> Result<Notify, SendError<M>> {
        if to >= self.shared.cores {
            return Err(SendError::no_such_core(message, to, self.shared.cores));
        }
        self.shared.lock_injector(to).push_back(message);
        Ok(self.shared.doorbell(to).ring(INJECTED))
    }

    /// Core `core`'s doorbell, for waking it (a futex wake on
    /// [`Doorbell::word`]).
    ///
    /// # Panics
    ///
    /// If `core` is not below [`cores`](Self::cores).
    #[inline]
    pub fn doorbell(&self, core: usize) -> &Doorbell {
        assert!(
            core < self.shared.cores,
            "core {core} is not on this bus of {} cores",
            self.shared.cores
        );
        self.shared.doorbell(core)
    }
}

impl<M> Clone for Bus<M> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<M> fmt::Debug for Bus<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bus")
            .field("cores", &self.shared.cores)
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn ring_index_covers_every_off_diagonal_pair_once() {
        for cores in 1..=5 {
            let mut seen = vec![false; cores * (cores - 1)];
            for from in 0..cores {
                for to in (0..cores).filter(|&to| to != from) {
                    let index = ring_index(cores, from, to);
                    assert!(!seen[index], "({from}, {to}) shares a ring");
                    seen[index] = true;
                }
            }
            assert!(seen.iter().all(|&hit| hit));
        }
    }

    #[test]
    fn bad_settings_are_refused_with_exact_messages() {
        let message = |cores, capacity| Bus::<u8>::new(cores, capacity).unwrap_err().to_string();
        assert_eq!(message(0, 8), "cores must be between 1 and 1024, got 0");
        assert_eq!(
            message(1025, 8),
            "cores must be between 1 and 1024, got 1025"
        );
        assert_eq!(
            message(1, 3),
            "ring_capacity must be a power of two between 2 and 1048576, got 3"
        );
        assert_eq!(
            message(4, 1),
            "ring_capacity must be a power of two between 2 and 1048576, got 1"
        );
        assert_eq!(
            message(4, 0),
            "ring_capacity must be a power of two between 2 and 1048576, got 0"
        );
    }

    #[test]
    fn builds_one_endpoint_per_core_in_order() {
        let (bus, endpoints) = Bus::<u8>::new(3, 2).unwrap();
        assert_eq!(bus.cores(), 3);
        let cores: Vec<_> = endpoints.iter().map(|e| (e.core(), e.cores())).collect();
        assert_eq!(cores, [(0, 3), (1, 3), (2, 3)]);
        assert_eq!(format!("{bus:?}"), "Bus { cores: 3, .. }");
    }

    #[test]
    fn inject_refuses_unknown_core_and_gives_message_back() {
        let (bus, _endpoints) = Bus::new(2, 2).unwrap();
        let error = bus.inject(2, String::from("lost?")).unwrap_err();
        assert!(error.is_no_such_core());
        assert_eq!(error.into_message(), "lost?");
        assert!(bus.doorbell(0).is_empty() && bus.doorbell(1).is_empty());
    }

    #[test]
    fn inject_asks_for_a_wake_when_the_core_sleeps() {
        let (bus, endpoints) = Bus::new(2, 2).unwrap();
        assert!(endpoints[1].try_sleep());
        assert_eq!(bus.inject(1, 5_u8).unwrap(), Notify::WakeReceiver);
        assert_eq!(bus.inject(0, 6_u8).unwrap(), Notify::None);
    }

    #[test]
    #[should_panic(expected = "core 2 is not on this bus of 2 cores")]
    fn doorbell_of_unknown_core_panics() {
        let (bus, _endpoints) = Bus::<u8>::new(2, 2).unwrap();
        let _ = bus.doorbell(2);
    }

    #[test]
    fn bus_and_endpoints_are_send_and_bus_is_sync() {
        fn assert_send<T: Send>() {}
        fn assert_sync<T: Sync>() {}
        assert_send::<Bus<String>>();
        assert_sync::<Bus<String>>();
        assert_send::<Endpoint<String>>();
        // Bus is Clone without M: Clone.
        struct NotClone;
        let (bus, _) = Bus::<NotClone>::new(1, 2).unwrap();
        let _clone = bus.clone();
    }
}
