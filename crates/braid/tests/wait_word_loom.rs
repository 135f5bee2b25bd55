//! Model check of the wait word (`src/sync/wait_word.rs`, compiled here against
//! loom's atomics): a waiter that may give up, racing wakers, and a stale waker
//! left over from an earlier wait. Every interleaving within the preemption
//! bound must resolve each wait exactly once, never let a stale waker win, and
//! let the waiter see what the winning waker wrote before claiming.

mod facade {
    pub(crate) use loom::sync::atomic::{AtomicU64, Ordering};
}

#[path = "../src/sync/wait_word.rs"]
#[allow(dead_code)]
mod wait_word;

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

struct Shared {
    word: facade::AtomicU64,
    /// Written by a waker before it claims: the "message" the wake carries.
    message: AtomicUsize,
    winners: AtomicUsize,
}

#[test]
fn one_resolution_per_wait_and_no_stale_wins() {
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(3);
    model.check(|| {
        let s = Arc::new(Shared {
            word: facade::AtomicU64::new(0),
            message: AtomicUsize::new(0),
            winners: AtomicUsize::new(0),
        });
        // An earlier wait, abandoned, whose waker is still queued somewhere.
        let old = wait_word::begin(&s.word);
        assert!(wait_word::resolve(&s.word, old, wait_word::ABANDONED));
        let current = wait_word::begin(&s.word);
        let wakers: Vec<_> = [(current, 1), (current, 2), (old, 3)]
            .into_iter()
            .map(|(generation, id)| {
                let s = s.clone();
                thread::spawn(move || {
                    s.message.store(id, Ordering::Relaxed);
                    if wait_word::resolve(&s.word, generation, wait_word::SIGNALLED) {
                        assert_ne!(generation, old, "a stale waker won");
                        s.winners.fetch_add(1, Ordering::Relaxed);
                        return Some(id);
                    }
                    None
                })
            })
            .collect();
        // The waiter gives up (a timeout) unless a waker got there first.
        let gave_up = wait_word::resolve(&s.word, current, wait_word::ABANDONED);
        let won: Vec<usize> = wakers
            .into_iter()
            .filter_map(|t| t.join().unwrap())
            .collect();
        let signalled = wait_word::is_signalled(&s.word, current);
        if gave_up {
            assert!(won.is_empty() && !signalled, "a waker won a given-up wait");
        } else {
            assert_eq!(won.len(), 1, "exactly one waker wins");
            assert!(signalled);
        }
        assert_eq!(s.winners.load(Ordering::Relaxed), won.len());
    });
}

#[test]
fn the_waiter_sees_what_the_winner_wrote() {
    loom::model(|| {
        let s = Arc::new(Shared {
            word: facade::AtomicU64::new(0),
            message: AtomicUsize::new(0),
            winners: AtomicUsize::new(0),
        });
        let generation = wait_word::begin(&s.word);
        let w = s.clone();
        let waker = thread::spawn(move || {
            w.message.store(42, Ordering::Relaxed);
            wait_word::resolve(&w.word, generation, wait_word::SIGNALLED)
        });
        // The waiter polls (as it does after each unpark) until signalled.
        loop {
            if wait_word::is_signalled(&s.word, generation) {
                // Acquire on the word pairs with the claim's release.
                assert_eq!(s.message.load(Ordering::Relaxed), 42);
                break;
            }
            thread::yield_now();
        }
        assert!(waker.join().unwrap());
    });
}
