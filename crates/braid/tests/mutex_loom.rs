//! Model check of the `Mutex` state word (`src/sync/mutex_word.rs`, compiled
//! here against loom's atomics), with a wait list and blocking built like the
//! real ones: the list under its own lock, a waiter queued under that lock
//! after `lock_or_mark`, an unlocker that saw `HAS_WAITERS` waking one waiter
//! and re-marking if more remain, a woken waiter retrying from the start.
//!
//! Checked, for every interleaving within loom's preemption bound: mutual
//! exclusion (the guarded counter is a loom cell, which reports overlapping
//! or unordered accesses), no lost wakeup (a waiter parked forever is a
//! deadlock loom reports), and every increment lands.

mod facade {
    pub(crate) use loom::sync::atomic::{AtomicU8, Ordering};
}

#[path = "../src/sync/mutex_word.rs"]
#[allow(dead_code)]
mod mutex_word;

use loom::cell::UnsafeCell;
use loom::sync::atomic::AtomicBool;
use loom::sync::{Arc, Mutex as ListLock};
use loom::thread::{self, Thread};
use std::collections::VecDeque;

struct Waiter {
    thread: Thread,
    claimed: Arc<AtomicBool>,
}

struct Lock {
    state: facade::AtomicU8,
    list: ListLock<VecDeque<Waiter>>,
    counter: UnsafeCell<usize>,
}

impl Lock {
    fn lock(&self) {
        if mutex_word::try_lock_fast(&self.state) {
            return;
        }
        loop {
            let claimed = Arc::new(AtomicBool::new(false));
            {
                let mut list = self.list.lock().unwrap();
                if mutex_word::lock_or_mark(&self.state) {
                    return;
                }
                list.push_back(Waiter {
                    thread: thread::current(),
                    claimed: claimed.clone(),
                });
            }
            while !claimed.load(facade::Ordering::Acquire) {
                thread::park();
            }
        }
    }

    fn unlock(&self) {
        if !mutex_word::unlock(&self.state) {
            return;
        }
        let mut list = self.list.lock().unwrap();
        if let Some(w) = list.pop_front() {
            w.claimed.store(true, facade::Ordering::Release);
            w.thread.unpark();
        }
        if !list.is_empty() {
            mutex_word::mark_waiters(&self.state);
        }
    }

    fn increment(&self) {
        self.lock();
        // SAFETY: the lock is held: no other thread touches the counter until
        // `unlock` (loom reports it if the protocol lets one).
        self.counter.with_mut(|c| unsafe { *c += 1 });
        self.unlock();
    }
}

fn model(threads: usize, rounds: usize) {
    let mut builder = loom::model::Builder::new();
    // Exhaustive would take minutes here; three preemptions find the known
    // bugs of this kind of protocol (a mark set outside the list's lock, a
    // wake without re-marking: checked by breaking each).
    builder.preemption_bound = Some(3);
    builder.check(move || {
        let lock = Arc::new(Lock {
            state: facade::AtomicU8::new(0),
            list: ListLock::new(VecDeque::new()),
            counter: UnsafeCell::new(0),
        });
        let others: Vec<_> = (1..threads)
            .map(|_| {
                let lock = lock.clone();
                thread::spawn(move || (0..rounds).for_each(|_| lock.increment()))
            })
            .collect();
        (0..rounds).for_each(|_| lock.increment());
        for t in others {
            t.join().unwrap();
        }
        // SAFETY: every other thread was joined: nothing else touches it.
        let total = lock.counter.with(|c| unsafe { *c });
        assert_eq!(total, threads * rounds);
        assert!(mutex_word::try_lock(&lock.state), "the lock ends free");
    });
}

#[test]
fn two_strands_contending_twice() {
    model(2, 2);
}

#[test]
fn three_strands_contending() {
    model(3, 1);
}
