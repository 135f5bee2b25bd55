//! A fine clock for measuring runs, for the policies that charge by them
//! (virtual-time policies: `Policy::fine_clock`).
//!
//! The runtime's schedulers read a coarse clock (the monitor's 1 ms ticks):
//! one relaxed load per dispatch. A run's charge on it is the number of
//! ticks it crossed, unbiased but with a tick's variance: now and then a
//! strand that ran for a microsecond is charged a millisecond. Round robin
//! does not care; EEVDF does, because the debt decides when the strand is
//! eligible again — braid-sim's `dispersive` workload on a 1 ms clock gives
//! a short-request p99 three times the exact clock's. So for those
//! policies a carrier reads this clock around each run and charges what it
//! measured.
//!
//! The clock is the CPU's cycle counter where the kernel itself trusts it
//! (x86-64 with the `tsc` clocksource: invariant and synchronised across
//! CPUs), converted to ns by a factor measured once per process against
//! the monotonic clock over [`CALIBRATION`]; elsewhere the monotonic clock
//! (`Instant`, a vDSO call). Only differences of two readings on one
//! carrier are used, so the factor's small error scales a charge, the same
//! for every strand, and never moves a deadline.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long the counter is compared with the monotonic clock to find its
/// rate (once per process, by the first runtime whose policy wants it).
pub(crate) const CALIBRATION: Duration = Duration::from_millis(2);

/// A clock whose readings are subtracted and converted with
/// [`ns`](Self::ns).
#[derive(Clone, Copy, Debug)]
pub(crate) struct FineClock {
    source: Source,
    /// ns per reading unit, as a 32.32 fixed-point number.
    ns_per_unit: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    /// The CPU's cycle counter.
    Counter,
    /// The monotonic clock, in ns since `epoch`.
    Monotonic { epoch: Instant },
}

const ONE: u64 = 1 << 32;

/// A carrier's `run_started` before it has a reading to go on from (at
/// start, and after it idled).
pub(crate) const UNREAD: u64 = u64::MAX;

impl FineClock {
    /// The process's fine clock: the cycle counter if the kernel uses it
    /// as its clocksource, calibrated the first time; else the monotonic
    /// clock.
    pub(crate) fn get() -> &'static FineClock {
        static CLOCK: OnceLock<FineClock> = OnceLock::new();
        CLOCK.get_or_init(|| {
            if counter_trusted() {
                FineClock::calibrated(CALIBRATION)
            } else {
                FineClock::monotonic()
            }
        })
    }

    /// The monotonic clock, in ns.
    pub(crate) fn monotonic() -> FineClock {
        FineClock {
            source: Source::Monotonic {
                epoch: Instant::now(),
            },
            ns_per_unit: ONE,
        }
    }

    /// The cycle counter, its rate measured over `window` (the monotonic
    /// clock where there is no counter to read).
    pub(crate) fn calibrated(window: Duration) -> FineClock {
        if !cfg!(target_arch = "x86_64") {
            return FineClock::monotonic();
        }
        let (c0, t0) = (counter(), Instant::now());
        let mut t1 = t0;
        while t1.duration_since(t0) < window {
            std::hint::spin_loop();
            t1 = Instant::now();
        }
        let cycles = counter().wrapping_sub(c0).max(1);
        let ns = t1.duration_since(t0).as_nanos() as u64;
        FineClock {
            source: Source::Counter,
            ns_per_unit: ((u128::from(ns) << 32) / u128::from(cycles)).max(1) as u64,
        }
    }

    /// A reading: only its difference from another reading of this clock
    /// means anything.
    #[inline]
    pub(crate) fn read(&self) -> u64 {
        match self.source {
            Source::Counter => counter(),
            Source::Monotonic { epoch } => epoch.elapsed().as_nanos() as u64,
        }
    }

    /// `units` between two readings, in ns.
    #[inline]
    pub(crate) fn ns(&self, units: u64) -> u64 {
        ((u128::from(units) * u128::from(self.ns_per_unit)) >> 32) as u64
    }

    /// `ns` as units of this clock (the inverse of [`ns`](Self::ns)).
    pub(crate) fn units(&self, ns: u64) -> u64 {
        ((u128::from(ns) << 32) / u128::from(self.ns_per_unit)).min(u128::from(u64::MAX)) as u64
    }

    /// Whether this clock reads the cycle counter.
    #[cfg(test)]
    fn is_counter(&self) -> bool {
        self.source == Source::Counter
    }
}

/// The cycle counter (0 where there is none: then `calibrated` is not used).
#[inline]
fn counter() -> u64 {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: RDTSC exists on every x86-64 CPU and has no memory effects.
    unsafe {
        core::arch::x86_64::_rdtsc()
    }
    #[cfg(not(target_arch = "x86_64"))]
    0
}

/// Whether the kernel keeps time with the cycle counter (so it is
/// invariant and in step across CPUs on this machine).
fn counter_trusted() -> bool {
    cfg!(target_arch = "x86_64")
        && std::fs::read_to_string(
            "/sys/devices/system/clocksource/clocksource0/current_clocksource",
        )
        .is_ok_and(|s| s.trim() == "tsc")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Measures a 20 ms spin with `clock`: within 2 % of the monotonic
    /// clock's measure.
    fn agrees_with_the_monotonic_clock(clock: FineClock) {
        let (r0, t0) = (clock.read(), Instant::now());
        while t0.elapsed() < Duration::from_millis(20) {
            std::hint::spin_loop();
        }
        let (r1, t1) = (clock.read(), Instant::now());
        let fine = clock.ns(r1.wrapping_sub(r0)) as f64;
        let mono = t1.duration_since(t0).as_nanos() as f64;
        assert!(
            (fine / mono - 1.0).abs() < 0.02,
            "{clock:?}: {fine} ns measured, {mono} ns by the monotonic clock"
        );
    }

    #[test]
    fn both_sources_measure_time_in_ns() {
        agrees_with_the_monotonic_clock(FineClock::monotonic());
        agrees_with_the_monotonic_clock(FineClock::calibrated(CALIBRATION));
        let clock = *FineClock::get();
        agrees_with_the_monotonic_clock(clock);
        assert_eq!(clock.is_counter(), counter_trusted());
    }

    #[test]
    fn conversion_is_exact_for_a_unit_clock_and_scales_otherwise() {
        let unit = FineClock::monotonic();
        assert_eq!(unit.ns(12_345), 12_345);
        let half = FineClock {
            source: Source::Counter,
            ns_per_unit: ONE / 2,
        };
        assert_eq!(half.ns(1_000), 500);
        // No overflow for a run of an hour at 5 GHz.
        assert_eq!(half.ns(18_000_000_000_000), 9_000_000_000_000);
    }
}
