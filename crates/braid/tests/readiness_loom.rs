//! Model check of the readiness protocol of strand I/O (`src/io/readiness.rs`,
//! compiled here against loom's atomics) with the wait list beside it: every
//! interleaving of an operation that keeps trying a socket and a poller that
//! delivers readiness events, within loom's preemption bound.
//!
//! The socket is a counter of bytes the kernel made available; the operation
//! "reads" by taking one (`WouldBlock` when there is none). The poller adds a
//! byte, then sets the readable bit (an edge-triggered event), then wakes a
//! queued waiter under the wait list's lock. Checked: the reader gets every
//! byte, never sleeps through an event (a lost wake leaves it parked forever,
//! which loom reports as a deadlock), and a clear never erases a newer event.

mod facade {
    pub(crate) use loom::sync::atomic::{AtomicU64, Ordering};
}

#[path = "../src/io/readiness.rs"]
#[allow(dead_code)]
mod readiness;

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;
use readiness::{Readiness, ERROR, READABLE, READ_CLOSED};

const READ_MASK: u64 = READABLE | READ_CLOSED | ERROR;

struct Socket {
    /// Bytes the kernel holds for the reader.
    bytes: AtomicUsize,
    ready: Readiness,
    /// The wait list: whether the reader is queued, and whether a claim
    /// woke it.
    list: Mutex<List>,
    wake: Condvar,
}

#[derive(Default)]
struct List {
    queued: bool,
    woken: bool,
}

/// The read loop of `Registration::io` with the wait of `Registration::wait`:
/// returns once it has read `want` bytes.
fn reader(s: &Socket, want: usize) {
    let mut got = 0;
    while got < want {
        let snapshot = s.ready.snapshot();
        if snapshot & READ_MASK != 0 {
            // The "system call".
            let took = s
                .bytes
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| b.checked_sub(1))
                .is_ok();
            if took {
                got += 1;
            } else {
                s.ready.clear(snapshot, READ_MASK);
            }
            continue;
        }
        // Wait: queue under the lock unless the bits came back meanwhile,
        // then sleep until claimed.
        let mut list = s.list.lock().unwrap();
        if s.ready.snapshot() & READ_MASK != 0 {
            continue;
        }
        list.queued = true;
        while !list.woken {
            list = s.wake.wait(list).unwrap();
        }
        list.woken = false;
    }
}

fn check(events: usize) {
    loom::model(move || {
        let s = Arc::new(Socket {
            bytes: AtomicUsize::new(0),
            ready: Readiness::new(),
            list: Mutex::new(List::default()),
            wake: Condvar::new(),
        });
        let reader_thread = {
            let s = s.clone();
            thread::spawn(move || reader(&s, events))
        };
        for _ in 0..events {
            s.bytes.fetch_add(1, Ordering::AcqRel);
            s.ready.set(READABLE);
            let mut list = s.list.lock().unwrap();
            if std::mem::take(&mut list.queued) {
                list.woken = true;
                s.wake.notify_one();
            }
        }
        reader_thread.join().unwrap();
        assert_eq!(s.bytes.load(Ordering::Acquire), 0, "every byte was read");
    });
}

#[test]
fn one_event_is_never_lost() {
    check(1);
}

#[test]
fn two_events_racing_a_clear_are_never_lost() {
    check(2);
}
