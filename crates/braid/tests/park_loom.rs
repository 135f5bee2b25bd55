//! Model check of the park word protocol (`src/park.rs`, compiled here against
//! loom's atomics): every interleaving of a parking strand, its core's carrier
//! and racing wakers on other cores, within loom's preemption bound.
//!
//! The home core is one thread, as in the runtime: it runs the strand until it
//! suspends, files it in the blocked table unless a wake came first, and applies
//! `Wake` messages from its mailbox while the strand is not running. Checked:
//! no wake is lost (the strand always gets to see its condition met; a lost wake
//! leaves the core waiting forever, which loom reports), a strand is scheduled at
//! most once per park, and every message is accounted for.

mod facade {
    pub(crate) use loom::sync::atomic::{AtomicU32, Ordering};
}

#[path = "../src/park.rs"]
#[allow(dead_code)]
mod park;

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

struct Strand {
    word: facade::AtomicU32,
    /// What the strand waits for: one increment per waker.
    done: AtomicUsize,
    /// `Wake` messages sent to the home core.
    mailbox: AtomicUsize,
}

/// The home core: runs the strand until it has seen `wakers` increments of its
/// condition. Returns (successful parks, messages that woke a filed strand).
fn home_core(s: &Strand, wakers: usize) -> (usize, usize) {
    let (mut parks, mut applied, mut read) = (0, 0, 0);
    loop {
        // Strand code: check the condition, else park.
        if s.done.load(Ordering::Acquire) == wakers {
            park::exit(&s.word);
            break;
        }
        if !park::begin_park(&s.word) {
            park::end_park(&s.word);
            continue;
        }
        parks += 1;
        // Carrier: the strand suspended; file it unless a wake came first.
        let mut filed = !park::woken_before_filing(&s.word);
        // Scheduling loop: apply mail until the strand is ready again.
        while filed {
            let sent = s.mailbox.load(Ordering::Acquire);
            if sent > read {
                read += 1;
                applied += 1;
                filed = false;
            } else {
                thread::yield_now();
            }
        }
        // Mail that finds the strand not filed is dropped (see `wake_filed`).
        read = s.mailbox.load(Ordering::Acquire);
        park::end_park(&s.word);
    }
    (parks, applied)
}

fn waker(s: &Strand) {
    s.done.fetch_add(1, Ordering::Release);
    if park::notify(&s.word) {
        s.mailbox.fetch_add(1, Ordering::Release);
    }
}

fn check(wakers: usize) {
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(3);
    model.check(move || {
        let s = Arc::new(Strand {
            word: facade::AtomicU32::new(park::RUNNING),
            done: AtomicUsize::new(0),
            mailbox: AtomicUsize::new(0),
        });
        let threads: Vec<_> = (0..wakers)
            .map(|_| {
                let s = s.clone();
                thread::spawn(move || waker(&s))
            })
            .collect();
        let (parks, applied) = home_core(&s, wakers);
        for t in threads {
            t.join().unwrap();
        }
        let sent = s.mailbox.load(Ordering::Acquire);
        // Only a waker that saw PARKED sends, so at most one message per park.
        assert!(sent <= parks, "{sent} wake messages for {parks} parks");
        assert!(applied <= sent);
        // Wakes after exit are ignored: the word stays terminal for wakers.
        assert!(!park::notify(&s.word));
    });
}

#[test]
fn one_waker() {
    check(1);
}

#[test]
fn two_racing_wakers() {
    check(2);
}
