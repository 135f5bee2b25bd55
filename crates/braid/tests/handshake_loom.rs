//! Model check of the carrier hand-off handshake (`src/core/handshake.rs`,
//! compiled here against loom's atomics and lock): every interleaving of a
//! core's carrier switching between scheduler and strand code while the
//! monitor tries to give the core to a new carrier, within loom's
//! preemption bound. The fence variant is explored (see the file's docs for
//! why the `membarrier` variant reduces to it).
//!
//! Checked: the core's local state (a loom cell) is never touched by the old
//! and the new carrier without an order between them (loom reports any such
//! access); a carrier that lost its core finds out at its next runtime call
//! and never touches the state again; the monitor takes the core only from a
//! carrier in strand code. With a replacement that fails to start once
//! (`vacancy`): either the old carrier takes the core back or the retried
//! replacement gets it, never both.

mod facade {
    pub(crate) use loom::sync::atomic::{fence, AtomicU32, Ordering};
    pub(crate) use loom::sync::Mutex;

    /// Only the `membarrier` variant uses it, which is not modelled.
    pub(crate) fn compiler_fence(_: Ordering) {
        unreachable!("the light variant is not modelled");
    }
}

#[path = "../src/core/handshake.rs"]
#[allow(dead_code)]
mod handshake;

use handshake::Ownership;
use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::thread;

/// What the carrier saw.
#[derive(Debug, PartialEq)]
enum Carrier {
    /// It kept the core through every pass; `true` if it took it back from
    /// a vacancy on the way.
    Kept(bool),
    /// A runtime call found the core gone (after this many passes).
    Lost(usize),
}

/// Adds `by` to the core's state, as any access by its owner would.
fn touch(local: &UnsafeCell<u32>, by: u32) -> u32 {
    // SAFETY: exclusive access is what the handshake promises and what loom
    // checks: an access not ordered with another one fails the model.
    local.with_mut(|l| unsafe {
        *l += by;
        *l
    })
}

fn model(passes: usize) {
    loom::model(move || {
        let own = Arc::new(Ownership::new(false));
        // The core's `Local`, counted by who touched it.
        let local = Arc::new(UnsafeCell::new(0u32));
        let carrier = {
            let (own, local) = (own.clone(), local.clone());
            thread::spawn(move || {
                let mut epoch = 0;
                for pass in 0..passes {
                    // Scheduler code: this carrier owns the core.
                    touch(&local, 1);
                    own.leave_scheduler();
                    // A strand runs, then makes a runtime call.
                    if !own.enter_scheduler(&mut epoch, || ()) {
                        return Carrier::Lost(pass);
                    }
                }
                touch(&local, 1);
                Carrier::Kept(epoch != 0)
            })
        };
        // The monitor, sure the core made no progress.
        let taken = own.try_revoke(|| true, || unreachable!("fence variant"));
        // Before it starts the new carrier, the monitor claims the vacancy,
        // which the old carrier may have taken back already.
        let new_carrier = taken.filter(|&epoch| own.take_vacant(epoch)).map(|epoch| {
            assert_eq!(epoch, 1);
            // Starting a thread orders what the monitor saw before it, as
            // `monitor::replace_carrier` does.
            let (own, local) = (own.clone(), local.clone());
            thread::spawn(move || {
                touch(&local, 100);
                own.leave_scheduler();
                let mut mine = epoch;
                assert!(
                    own.enter_scheduler(&mut mine, || ()),
                    "the new carrier owns the core"
                );
                touch(&local, 100);
            })
        });
        let saw = carrier.join().unwrap();
        let replaced = new_carrier.map(|t| t.join().unwrap()).is_some();
        let touched = touch(&local, 0);
        match (taken, saw, replaced) {
            (Some(_), Carrier::Lost(pass), true) => {
                assert_eq!(
                    touched,
                    pass as u32 + 1 + 200,
                    "old carrier touched it after losing it"
                );
            }
            // Taken back before the monitor claimed the vacancy.
            (Some(_), Carrier::Kept(true), false) | (None, Carrier::Kept(false), false) => {
                assert_eq!(touched, passes as u32 + 1);
            }
            other => panic!("taken, carrier, replaced: {other:?}"),
        }
    });
}

#[test]
fn one_pass() {
    model(1);
}

#[test]
fn two_passes() {
    model(2);
}

/// The replacement fails to start once; the monitor tries again while the
/// old carrier may come back from its strand.
#[test]
fn vacancy() {
    loom::model(|| {
        let own = Arc::new(Ownership::new(false));
        let local = Arc::new(UnsafeCell::new(0u32));
        // The carrier is in strand code; the monitor finds it stuck.
        own.leave_scheduler();
        let carrier = {
            let (own, local) = (own.clone(), local.clone());
            thread::spawn(move || {
                let mut epoch = 0;
                if own.enter_scheduler(&mut epoch, || ()) {
                    // Took it back (or never lost it): the owner again, in
                    // scheduler code.
                    touch(&local, 1);
                    Some(epoch)
                } else {
                    None
                }
            })
        };
        let taken = own.try_revoke(|| true, || unreachable!("fence variant"));
        let retried = taken.and_then(|epoch| {
            if !own.take_vacant(epoch) {
                return None;
            }
            // The start failed: give the vacancy back, then try again.
            own.leave_vacant(epoch);
            own.take_vacant(epoch).then(|| {
                let (own, local) = (own.clone(), local.clone());
                thread::spawn(move || {
                    touch(&local, 100);
                    own.leave_scheduler();
                    let mut mine = epoch;
                    assert!(own.enter_scheduler(&mut mine, || ()));
                    assert_eq!(mine, epoch);
                })
            })
        });
        let back = carrier.join().unwrap();
        let replaced = retried.map(|t| t.join().unwrap()).is_some();
        let touched = touch(&local, 0);
        match (taken, back, replaced) {
            (None, Some(0), false) => assert_eq!(touched, 1),
            (Some(epoch), Some(e), false) => {
                assert_eq!(e, epoch, "took the core back under the new epoch");
                assert_eq!(touched, 1);
            }
            (Some(_), None, true) => assert_eq!(touched, 100),
            other => panic!("taken, carrier, replaced: {other:?} (touched {touched})"),
        }
    });
}
