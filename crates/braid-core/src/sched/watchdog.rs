//! The watchdog's verdict on a core whose strand has not returned to the
//! runtime for a while.
//!
//! The runtime's monitor thread measures how long a core has run one strand
//! (its switch counter has not moved) and whether anything waits behind it;
//! this module decides what follows. The monitor applies it: a yield request
//! is a flag the strand's next runtime call reads, a hand-off gives the core's
//! queue to a fresh carrier thread while the old one keeps the hog.

use crate::policy::Nanos;

/// The watchdog's limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// A strand that ran this long is asked to yield at its next runtime call.
    pub slice: Nanos,
    /// A strand that ran this long with work waiting behind it is a hog: its
    /// core's queue is handed to another carrier.
    pub hog: Nanos,
}

/// What to do about a core that has run one strand for a while.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Verdict {
    /// Ask the strand to yield at its next runtime call.
    pub ask_yield: bool,
    /// Hand the core's queue to a new carrier: the strand does not come back.
    pub hand_off: bool,
}

/// The verdict on a core whose current strand has run `running_for` without
/// returning to the runtime, while `waiting` says whether anything (ready
/// strands, mail, sockets that may have become ready) waits behind it.
#[must_use]
pub fn verdict(limits: Limits, running_for: Nanos, waiting: bool) -> Verdict {
    Verdict {
        ask_yield: running_for >= limits.slice,
        hand_off: waiting && running_for >= limits.hog,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yield_past_the_slice_and_hand_off_only_with_work_waiting() {
        let limits = Limits {
            slice: 2_000,
            hog: 4_000,
        };
        assert_eq!(verdict(limits, 1_999, true), Verdict::default());
        let ask = Verdict {
            ask_yield: true,
            hand_off: false,
        };
        assert_eq!(verdict(limits, 2_000, true), ask);
        assert_eq!(
            verdict(limits, 10_000, false),
            ask,
            "nothing waits: keep the hog"
        );
        let both = Verdict {
            ask_yield: true,
            hand_off: true,
        };
        assert_eq!(verdict(limits, 4_000, true), both);
    }
}
