//! The watchdog: whether a core whose strand has not returned to the runtime
//! for a while is running a hog whose core's queue must go to a fresh carrier
//! thread, and how far the carriers left running hogs are demoted.
//!
//! Time slices are the policy's ([`crate::Policy::slice`]): the driver gives a
//! strand its slice when it dispatches it, and the strand yields at its first
//! runtime call past it. A strand that makes no runtime call cannot be asked;
//! the runtime's monitor thread reports, every tick, each core's switch
//! counter and whether anything waits behind its strand ([`Watch::observe`]),
//! and this module decides.
//!
//! **Bursts.** The threshold applies to one hog. A core whose queue holds many
//! (a loop spawning a thousand CPU-bound strands) would pass them at one
//! threshold each, and whatever waits behind them — a sleeper, a server —
//! waits for all of them. Each hand-off that follows another closely (the new
//! carrier's first strands are hogs too) halves the threshold, down to a
//! floor (the monitor then looks more often than every tick); once a whole
//! threshold passed without a hand-off the core is calm again and gets the
//! full threshold back.
//!
//! **Demotion.** Every carrier left running a hog keeps its thread, on its
//! core's CPU. The kernel shares that CPU by weight, so the hogs of a core
//! together must not outweigh its carrier however many they are:
//! [`demotion`] lowers each one's priority with their number, so that their
//! weights add up to about one thread at nice 10 (a tenth of the carrier's),
//! and beyond what nice 19 allows uses the kernel's idle class, whose threads
//! any other thread's wake preempts at once.

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

/// The most halvings of the threshold in a burst (it stops at one tick well
/// before this with any threshold braid accepts).
const MAX_STREAK: u32 = 16;

/// The watchdog's view of one core, updated every tick of the monitor.
#[derive(Clone, Debug)]
pub struct Watch {
    hog: Nanos,
    floor: Nanos,
    switches: u64,
    /// Since when the core has run its current strand (or last switched).
    since: Nanos,
    /// Hand-offs in the current burst.
    streak: u32,
    last_hand_off: Nanos,
}

impl Watch {
    /// A core watched with hog threshold `hog`, which a burst of hogs halves
    /// down to `floor`.
    #[must_use]
    pub fn new(hog: Nanos, floor: Nanos) -> Watch {
        Watch {
            hog,
            floor: floor.max(1),
            switches: 0,
            since: 0,
            streak: 0,
            last_hand_off: 0,
        }
    }

    /// How long the core's current strand may run without returning while
    /// something waits behind it.
    #[must_use]
    pub fn threshold(&self) -> Nanos {
        (self.hog >> self.streak.min(MAX_STREAK)).max(self.floor)
    }

    /// Hand-offs in the current burst.
    #[must_use]
    pub fn streak(&self) -> u32 {
        self.streak
    }

    /// Whether the core is in a burst of hogs: the monitor should look at it
    /// every `floor` (see [`Watch::new`]) rather than every tick.
    #[must_use]
    pub fn in_burst(&self) -> bool {
        self.streak > 0
    }

    /// What the monitor saw at `now`: the core's switch counter, whether its
    /// carrier is in strand code, and whether anything waits behind it.
    pub fn observe(
        &mut self,
        now: Nanos,
        switches: u64,
        in_strand: bool,
        waiting: bool,
    ) -> Verdict {
        if now.saturating_sub(self.last_hand_off) >= self.hog {
            self.streak = 0;
        }
        if switches != self.switches || !in_strand {
            self.switches = switches;
            self.since = now;
            return Verdict::Keep;
        }
        verdict(self.threshold(), now.saturating_sub(self.since), waiting)
    }

    /// The monitor handed the core to a new carrier at `now`.
    pub fn handed_off(&mut self, now: Nanos) {
        if now.saturating_sub(self.last_hand_off) < self.hog {
            self.streak = self.streak.saturating_add(1);
        } else {
            self.streak = 1;
        }
        self.last_hand_off = now;
        self.since = now;
    }
}

/// The longest wait between two tries to start a core's new carrier.
pub const MAX_RESTART_DELAY: Nanos = 1_000_000_000;

/// How long to wait before trying again to start a core's new carrier after
/// `failures` failed tries: 1 ms, doubling, at most [`MAX_RESTART_DELAY`].
#[must_use]
pub fn restart_delay(failures: u32) -> Nanos {
    let doublings = failures.saturating_sub(1).min(30);
    (1_000_000u64 << doublings).min(MAX_RESTART_DELAY)
}

/// How low a carrier left running a hog goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Demotion {
    /// This many nice levels below the carrier's own (10 to 19; at most 19).
    Nice(i32),
    /// The kernel's idle class.
    Idle,
}

/// The kernel's weights of nice levels 10 to 19 (Linux `sched_prio_to_weight`;
/// nice 0 weighs 1 024).
const NICE_WEIGHTS: [u32; 10] = [110, 87, 70, 56, 45, 36, 29, 23, 18, 15];

/// What the demoted carriers of one core may weigh together: about one
/// thread at nice 10.
pub const DEMOTED_WEIGHT: u32 = 120;

/// The demotion of every carrier left running a hog on a core that has
/// `demoted` of them (counting the one being demoted): the highest nice level
/// at which they weigh no more than [`DEMOTED_WEIGHT`] together, else the
/// idle class.
#[must_use]
pub fn demotion(demoted: u32) -> Demotion {
    let count = demoted.max(1);
    NICE_WEIGHTS
        .iter()
        .zip(10..)
        .find(|(weight, _)| count.saturating_mul(**weight) <= DEMOTED_WEIGHT)
        .map_or(Demotion::Idle, |(_, nice)| Demotion::Nice(nice))
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

    const MS: Nanos = 1_000_000;

    /// Ticks the watch of a core stuck in one strand from `from` until it
    /// says hand off; returns when.
    fn stuck_until_hand_off(watch: &mut Watch, from: Nanos, switches: u64) -> Nanos {
        let mut now = from;
        loop {
            now += MS;
            if watch.observe(now, switches, true, true) == Verdict::HandOff {
                return now;
            }
            assert!(now - from < 100 * MS, "no hand-off");
        }
    }

    #[test]
    fn a_burst_of_hogs_halves_the_threshold_down_to_a_tick() {
        let mut watch = Watch::new(4 * MS, MS);
        watch.observe(0, 1, true, true);
        let mut start = 0;
        let mut waits = Vec::new();
        for _ in 0..5 {
            let at = stuck_until_hand_off(&mut watch, start, 1);
            waits.push((at - start) / MS);
            watch.handed_off(at);
            start = at;
        }
        assert_eq!(waits, [4, 2, 1, 1, 1]);
        assert_eq!(watch.streak(), 5);
    }

    #[test]
    fn a_calm_core_gets_the_whole_threshold_back() {
        let mut watch = Watch::new(4 * MS, MS);
        watch.observe(0, 1, true, true);
        let at = stuck_until_hand_off(&mut watch, 0, 1);
        watch.handed_off(at);
        let at = stuck_until_hand_off(&mut watch, at, 1);
        watch.handed_off(at);
        assert_eq!(watch.threshold(), MS);
        // The new carrier switches for a while: still in the burst until a
        // whole threshold passed without a hand-off.
        watch.observe(at + MS, 2, true, true);
        assert_eq!(watch.streak(), 2);
        watch.observe(at + 4 * MS, 3, true, true);
        assert_eq!(watch.streak(), 0);
        assert_eq!(watch.threshold(), 4 * MS);
        let next = stuck_until_hand_off(&mut watch, at + 4 * MS, 3);
        assert_eq!(next - (at + 4 * MS), 4 * MS);
    }

    #[test]
    fn a_burst_ends_a_threshold_after_its_last_hand_off_even_without_switches() {
        let mut watch = Watch::new(4 * MS, MS);
        watch.observe(0, 1, true, true);
        let at = stuck_until_hand_off(&mut watch, 0, 1);
        watch.handed_off(at);
        assert!(watch.in_burst());
        // The new carrier runs one long strand with nothing waiting.
        watch.observe(at + 3 * MS, 1, true, false);
        assert!(watch.in_burst());
        watch.observe(at + 4 * MS, 1, true, false);
        assert!(!watch.in_burst());
    }

    #[test]
    fn nothing_waiting_or_scheduler_code_is_never_a_hog() {
        let mut watch = Watch::new(4 * MS, MS);
        for t in 1..100 {
            assert_eq!(watch.observe(t * MS, 7, true, false), Verdict::Keep);
        }
        for t in 100..200 {
            assert_eq!(watch.observe(t * MS, 7, false, true), Verdict::Keep);
        }
    }

    #[test]
    fn restarts_back_off_to_a_second() {
        assert_eq!(restart_delay(0), MS);
        assert_eq!(restart_delay(1), MS);
        assert_eq!(restart_delay(2), 2 * MS);
        assert_eq!(restart_delay(10), 512 * MS);
        assert_eq!(restart_delay(11), MAX_RESTART_DELAY);
        assert_eq!(restart_delay(u32::MAX), MAX_RESTART_DELAY);
    }

    #[test]
    fn demoted_carriers_weigh_about_one_nice_10_thread_together() {
        assert_eq!(demotion(0), Demotion::Nice(10));
        assert_eq!(demotion(1), Demotion::Nice(10));
        assert_eq!(demotion(2), Demotion::Nice(13));
        assert_eq!(demotion(8), Demotion::Nice(19));
        assert_eq!(demotion(9), Demotion::Idle);
        assert_eq!(demotion(u32::MAX), Demotion::Idle);
        for count in 1..=8u32 {
            let Demotion::Nice(nice) = demotion(count) else {
                panic!("{count} carriers fit nice levels");
            };
            let weight = NICE_WEIGHTS[(nice - 10) as usize];
            assert!(count * weight <= DEMOTED_WEIGHT, "{count} at nice {nice}");
            if nice > 10 {
                let stronger = NICE_WEIGHTS[(nice - 11) as usize];
                assert!(
                    count * stronger > DEMOTED_WEIGHT,
                    "{count}: nice {nice} is lower than needed"
                );
            }
        }
        // More hogs never raise a core's hogs.
        for count in 1..100 {
            assert!(demotion(count + 1) >= demotion(count));
        }
    }
}
