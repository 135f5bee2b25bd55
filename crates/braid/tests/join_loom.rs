//! Model check of the join protocol (`src/join.rs`, compiled here against
//! loom's atomics and cells): every interleaving of a strand completing and
//! its joiner waiting, within loom's preemption bound.
//!
//! Checked: the joiner gets the result exactly once; a joiner that registered
//! is woken exactly once and one that found the result already in is never
//! woken (its waiter is dropped); the strand's write of the result and the
//! joiner's write of its waiter race with nothing (loom's cells report any
//! access not ordered by the protocol); every waiter is dropped once.

mod facade {
    pub(crate) use loom::cell::UnsafeCell;
    pub(crate) use loom::sync::atomic::{AtomicU32, Ordering};
}

#[path = "../src/join.rs"]
#[allow(dead_code)]
mod join;

use join::JoinCell;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

/// A waiter that counts its wakes and its drops.
struct Waiter {
    woken: Arc<AtomicUsize>,
    dropped: Arc<AtomicUsize>,
}

impl Waiter {
    fn wake(self) {
        self.woken.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }
}

fn model(joiner_checks_first: bool) {
    loom::model(move || {
        let cell: Arc<JoinCell<u64, Waiter>> = Arc::new(JoinCell::new());
        let woken = Arc::new(AtomicUsize::new(0));
        let dropped = Arc::new(AtomicUsize::new(0));
        let strand = {
            let cell = cell.clone();
            thread::spawn(move || {
                // SAFETY: this thread is the strand: it completes once.
                if let Some(waiter) = unsafe { cell.complete(42) } {
                    waiter.wake();
                }
            })
        };
        // The joiner, as `Packet::wait` runs it (parking is a yield here).
        let waiter = Waiter {
            woken: woken.clone(),
            dropped: dropped.clone(),
        };
        let registered = if joiner_checks_first && cell.is_done() {
            drop(waiter);
            false
        } else {
            // SAFETY: this thread is the one joiner, registering once.
            unsafe { cell.register(waiter) }
        };
        if registered {
            while !cell.is_done() {
                thread::yield_now();
            }
        } else {
            assert!(cell.is_done(), "register refused but the result is not in");
        }
        // SAFETY: this thread is the one joiner, and it saw the result in.
        let first = unsafe { cell.take() };
        assert_eq!(first, Some(42), "the joiner gets the result");
        // SAFETY: the one joiner again, result still in: the cell is empty now.
        let second = unsafe { cell.take() };
        assert_eq!(second, None, "and only once");
        strand.join().unwrap();
        let wakes = woken.load(Ordering::Relaxed);
        assert_eq!(wakes, usize::from(registered), "registered: {registered}");
        assert_eq!(
            dropped.load(Ordering::Relaxed),
            1,
            "every waiter dropped once"
        );
    });
}

#[test]
fn a_joiner_that_registers_is_woken_once() {
    model(false);
}

#[test]
fn a_joiner_that_checks_first_never_loses_the_result() {
    model(true);
}
