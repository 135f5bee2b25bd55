//! Model check of share groups' runnable sums (`src/share.rs`, compiled here
//! against loom's atomics, over braid-core's `Share` rules): members of a
//! group nested in another enter and leave their cores' sets on two
//! threads while a third reads weights, in every interleaving within loom's
//! preemption bound.
//!
//! Checked: the parent never counts the nested group more than once per
//! member that could have brought it in, and never less than zero (the sum
//! does not wrap); a member's weight never exceeds the top group's weight
//! and never falls below 1; once every member left, both sums are back
//! where they started.
//!
//! Not promised, and found here: a member may for a moment weigh more than
//! its own group's share of the parent — up to the parent's whole weight —
//! when it reads the parent's sum before another member's entry (or after a
//! late exit) reached it (relaxed atomics; with three members, in any
//! order). It is re-weighed at its next entry to the ready strands.

mod facade {
    pub(crate) use loom::sync::atomic::{AtomicU64, Ordering};
}

#[path = "../src/share.rs"]
#[allow(dead_code)]
mod share;

use braid_core::share::Share;
use loom::sync::Arc;
use loom::thread;
use std::sync::Arc as StdArc;

const OWN: u32 = 1024;
const INNER: u32 = 2048;
const OUTER: u32 = 3072;

#[test]
fn concurrent_entries_and_exits_keep_the_nested_sums_whole() {
    loom::model(|| {
        let outer = StdArc::new(Share::<share::Runnable>::new(OUTER, None).unwrap());
        let inner = Arc::new(Share::new(INNER, Some(outer.clone())).unwrap());
        // A member of the outer group itself stays runnable throughout.
        outer.enter(OWN);
        let members: Vec<_> = (0..2)
            .map(|_| {
                let inner = inner.clone();
                thread::spawn(move || {
                    inner.enter(OWN);
                    let w = inner.weight_of(OWN);
                    assert!(
                        (1..=OUTER).contains(&w),
                        "a member weighed {w} (inner {}, outer {})",
                        inner.runnable(),
                        inner.parent().unwrap().runnable()
                    );
                    inner.leave(OWN);
                })
            })
            .collect();
        // Read while they come and go: the outer sum counts its own member
        // and the inner group at most twice (each member's entry may find
        // the inner sum at 0 while the other's exit has not reached the
        // outer one yet), never a wrapped negative.
        let sum = outer.runnable();
        assert!(
            [OWN as u64, (OWN + INNER) as u64, (OWN + 2 * INNER) as u64].contains(&sum),
            "outer sum {sum}"
        );
        let w = outer.weight_of(OWN);
        assert!((1..=OUTER).contains(&w), "the outer member weighed {w}");
        for m in members {
            m.join().unwrap();
        }
        assert_eq!(inner.runnable(), 0);
        assert_eq!(outer.runnable(), OWN as u64);
        assert_eq!(outer.weight_of(OWN), OUTER);
    });
}
