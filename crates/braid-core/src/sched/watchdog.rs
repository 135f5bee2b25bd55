//! The watchdog's verdict on a core whose strand has not returned to the
//! runtime for a while.
//!
//! Time slices are the policy's ([`crate::Policy::slice`]): the driver gives a
//! strand its slice when it dispatches it, and the strand yields at its first
//! runtime call past it. A strand that makes no runtime call cannot be asked;
//! the runtime's monitor thread measures how long a core has run one strand
//! (its switch counter has not moved) and whether anything waits behind it,
//! and this module decides whether that strand is a hog whose core's queue
//! must go to a fresh carrier thread while the old one keeps the hog.

use crate::policy::Nanos;

/// What to do about a core that has run one strand for a while.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Let it run.
    Keep,
    /// Hand the core's queue to a new carrier: the strand does not come back.
    HandOff,
}

/// The verdict on a core whose current strand has run `running_for` without
/// returning to the runtime, while `waiting` says whether anything (ready
/// strands, mail, sockets that may have become ready) waits behind it; `hog`
/// is how long a strand may do that.
#[must_use]
pub fn verdict(hog: Nanos, running_for: Nanos, waiting: bool) -> Verdict {
    if waiting && running_for >= hog {
        Verdict::HandOff
    } else {
        Verdict::Keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_off_only_past_the_threshold_with_work_waiting() {
        assert_eq!(verdict(4_000, 3_999, true), Verdict::Keep);
        assert_eq!(verdict(4_000, 4_000, true), Verdict::HandOff);
        assert_eq!(
            verdict(4_000, 1_000_000, false),
            Verdict::Keep,
            "nothing waits: keep the hog"
        );
    }
}
