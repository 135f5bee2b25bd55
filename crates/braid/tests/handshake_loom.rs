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
//! carrier in strand code.

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
    /// It kept the core through every pass.
    Kept,
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
                for pass in 0..passes {
                    // Scheduler code: this carrier owns the core.
                    touch(&local, 1);
                    own.leave_scheduler();
                    // A strand runs, then makes a runtime call.
                    if !own.enter_scheduler(0) {
                        return Carrier::Lost(pass);
                    }
                }
                touch(&local, 1);
                Carrier::Kept
            })
        };
        // The monitor, sure the core made no progress.
        let taken = own.try_revoke(|| true, || unreachable!("fence variant"));
        let new_carrier = taken.map(|epoch| {
            assert_eq!(epoch, 1);
            // Starting a thread orders what the monitor saw before it, as
            // `monitor::replace_carrier` does.
            let (own, local) = (own.clone(), local.clone());
            thread::spawn(move || {
                touch(&local, 100);
                own.leave_scheduler();
                assert!(own.enter_scheduler(epoch), "the new carrier owns the core");
                touch(&local, 100);
            })
        });
        let saw = carrier.join().unwrap();
        if let Some(new_carrier) = new_carrier {
            new_carrier.join().unwrap();
        }
        let touched = touch(&local, 0);
        match (taken, saw) {
            (Some(_), Carrier::Lost(pass)) => {
                assert_eq!(
                    touched,
                    pass as u32 + 1 + 200,
                    "old carrier touched it after losing it"
                );
            }
            (None, Carrier::Kept) => assert_eq!(touched, passes as u32 + 1),
            (taken, saw) => panic!("monitor took {taken:?} but the carrier saw {saw:?}"),
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
