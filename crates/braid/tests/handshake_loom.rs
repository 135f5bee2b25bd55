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
//! replacement gets it, never both; with one that fails to start while the
//! old carrier returns (`failed_start_while_the_carrier_returns`), the old
//! carrier keeps the core; with two carriers that lost the core
//! (`stale_carriers`), only the one it was last taken from takes it back,
//! and the other's return does not hide the owner's state from the monitor.

mod facade {
    pub(crate) use loom::sync::atomic::{fence, AtomicU32, Ordering};
    pub(crate) use loom::sync::{Arc, Condvar, Mutex};

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
            let mut claim = own.first_claim();
            thread::spawn(move || {
                for pass in 0..passes {
                    // Scheduler code: this carrier owns the core.
                    touch(&local, 1);
                    claim.leave_scheduler();
                    // A strand runs, then makes a runtime call.
                    if !own.enter_scheduler(&mut claim, || ()) {
                        return Carrier::Lost(pass);
                    }
                }
                touch(&local, 1);
                Carrier::Kept(claim.epoch() != 0)
            })
        };
        // The monitor, sure the core made no progress.
        let taken = own.try_revoke(|| true, || unreachable!("fence variant"));
        // Before it starts the new carrier, the monitor claims the vacancy,
        // which the old carrier may have taken back already.
        let new_carrier = taken.and_then(|epoch| {
            assert_eq!(epoch, 1);
            let mut mine = own.take_vacant(epoch)?;
            // Starting a thread orders what the monitor saw before it, as
            // `monitor::replace_carrier` does.
            let (own2, local) = (own.clone(), local.clone());
            let started = thread::spawn(move || {
                touch(&local, 100);
                mine.leave_scheduler();
                assert!(
                    own2.enter_scheduler(&mut mine, || ()),
                    "the new carrier owns the core"
                );
                touch(&local, 100);
            });
            own.started(epoch);
            Some(started)
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
        let mut claim = own.first_claim();
        claim.leave_scheduler();
        let carrier = {
            let (own, local) = (own.clone(), local.clone());
            thread::spawn(move || {
                if own.enter_scheduler(&mut claim, || ()) {
                    // Took it back (or never lost it): the owner again, in
                    // scheduler code.
                    touch(&local, 1);
                    Some(claim.epoch())
                } else {
                    None
                }
            })
        };
        let taken = own.try_revoke(|| true, || unreachable!("fence variant"));
        let retried = taken.and_then(|epoch| {
            // The start failed: give the vacancy back, then try again.
            drop(own.take_vacant(epoch)?);
            own.leave_vacant(epoch);
            let mut mine = own.take_vacant(epoch)?;
            let (own2, local) = (own.clone(), local.clone());
            let started = thread::spawn(move || {
                touch(&local, 100);
                mine.leave_scheduler();
                assert!(own2.enter_scheduler(&mut mine, || ()));
                assert_eq!(mine.epoch(), epoch);
            });
            own.started(epoch);
            Some(started)
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

/// The replacement fails to start, for good, while the old carrier comes
/// back from its strand: the old carrier waits for the start's outcome and
/// keeps the core, which is never left without a carrier.
#[test]
fn failed_start_while_the_carrier_returns() {
    loom::model(|| {
        let own = Arc::new(Ownership::new(false));
        let mut claim = own.first_claim();
        claim.leave_scheduler();
        let epoch = own
            .try_revoke(|| true, || unreachable!("fence variant"))
            .expect("the carrier is in strand code");
        let carrier = {
            let own = own.clone();
            thread::spawn(move || own.enter_scheduler(&mut claim, || ()))
        };
        if let Some(claim) = own.take_vacant(epoch) {
            drop(claim);
            own.leave_vacant(epoch);
        }
        assert!(
            carrier.join().unwrap(),
            "the old carrier took the core back"
        );
        assert!(
            own.take_vacant(epoch).is_none(),
            "and the core is not vacant"
        );
    });
}

/// Carrier A lost the core to B, which started; then B lost it, and its
/// replacement could not start. Both come back from their strands: only B
/// takes the core back, and A's return leaves what the monitor sees of B
/// alone (B in strand code again).
#[test]
fn stale_carriers() {
    loom::model(|| {
        let own = Arc::new(Ownership::new(false));
        let revoke = |own: &Ownership| {
            own.try_revoke(|| true, || unreachable!("fence variant"))
                .expect("the owner is in strand code")
        };
        let mut a = own.first_claim();
        a.leave_scheduler();
        let to_b = revoke(&own);
        let mut b = own.take_vacant(to_b).expect("vacant");
        own.started(to_b);
        b.leave_scheduler();
        let to_c = revoke(&own);
        drop(own.take_vacant(to_c).expect("vacant"));
        own.leave_vacant(to_c);
        let a = {
            let own = own.clone();
            thread::spawn(move || own.enter_scheduler(&mut a, || ()))
        };
        let b = {
            let own = own.clone();
            thread::spawn(move || {
                let took = own.enter_scheduler(&mut b, || ());
                let epoch = b.epoch();
                b.leave_scheduler();
                (took, epoch)
            })
        };
        assert!(!a.join().unwrap(), "A lost the core for good");
        assert_eq!(b.join().unwrap(), (true, to_c), "B took it back");
        assert_eq!(own.in_strand(), Some(true), "B runs a strand");
    });
}
