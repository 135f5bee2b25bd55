//! What a run measures: latency histograms, per-core utilisation over time,
//! and the trace hash that proves a run repeats bit for bit.

use braid_core::Nanos;
use serde::Serialize;

/// A histogram of durations with log-spaced buckets (16 per power of two,
/// so a percentile is within 6.25 % of the exact value).
#[derive(Clone, Debug, Default)]
pub struct Histogram {
    buckets: Vec<u64>,
    count: u64,
    max: Nanos,
}

const SUB: u32 = 16;

impl Histogram {
    fn bucket(v: Nanos) -> usize {
        if v < u64::from(SUB) {
            return v as usize;
        }
        let log = 63 - v.leading_zeros();
        let shift = log - SUB.trailing_zeros();
        let sub = (v >> shift) as u32 - SUB;
        ((log - SUB.trailing_zeros() + 1) * SUB + sub) as usize
    }

    fn lower_bound(bucket: usize) -> Nanos {
        let b = bucket as u32;
        if b < SUB {
            return u64::from(b);
        }
        let group = b / SUB - 1;
        let sub = b % SUB;
        u64::from(SUB + sub) << group
    }

    /// Adds one value.
    pub fn record(&mut self, v: Nanos) {
        let b = Self::bucket(v);
        if b >= self.buckets.len() {
            self.buckets.resize(b + 1, 0);
        }
        self.buckets[b] += 1;
        self.count += 1;
        self.max = self.max.max(v);
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The value below which a fraction `q` of the values lie (bucket lower
    /// bound; 0 when empty).
    pub fn quantile(&self, q: f64) -> Nanos {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (b, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Self::lower_bound(b).min(self.max);
            }
        }
        self.max
    }

    /// The summary written to reports.
    pub fn summary(&self) -> Latency {
        Latency {
            count: self.count,
            p50_ns: self.quantile(0.5),
            p99_ns: self.quantile(0.99),
            p999_ns: self.quantile(0.999),
            max_ns: self.max,
        }
    }
}

/// Percentiles of a latency histogram.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Latency {
    /// Values recorded.
    pub count: u64,
    /// Median.
    pub p50_ns: Nanos,
    /// 99th percentile.
    pub p99_ns: Nanos,
    /// 99.9th percentile.
    pub p999_ns: Nanos,
    /// Largest value.
    pub max_ns: Nanos,
}

/// Busy time per core in equal time buckets; the bucket width doubles (pairs
/// merge) whenever the run outgrows [`Utilisation::BUCKETS`] buckets, so
/// memory stays fixed however long the run. Reports merge the buckets that
/// cover the makespan into at most [`Utilisation::REPORTED`].
#[derive(Clone, Debug)]
pub struct Utilisation {
    width: Nanos,
    busy: Vec<Vec<Nanos>>,
    total: Vec<Nanos>,
}

impl Utilisation {
    /// Buckets kept per core.
    pub const BUCKETS: usize = 1024;
    /// Buckets in a report.
    pub const REPORTED: usize = 64;

    /// Empty figures for `cores` cores.
    pub fn new(cores: usize) -> Utilisation {
        Utilisation {
            width: 1_000,
            busy: vec![vec![0; Self::BUCKETS]; cores],
            total: vec![0; cores],
        }
    }

    /// Core `core` was busy over `[start, end)`.
    pub fn add(&mut self, core: usize, start: Nanos, end: Nanos) {
        if end <= start {
            return;
        }
        while end > self.width * Self::BUCKETS as u64 {
            self.widen();
        }
        self.total[core] += end - start;
        let mut t = start;
        while t < end {
            let b = (t / self.width) as usize;
            let bucket_end = (b as u64 + 1) * self.width;
            let upto = bucket_end.min(end);
            self.busy[core][b] += upto - t;
            t = upto;
        }
    }

    fn widen(&mut self) {
        for row in &mut self.busy {
            for i in 0..Self::BUCKETS / 2 {
                row[i] = row[2 * i] + row[2 * i + 1];
            }
            row[Self::BUCKETS / 2..].fill(0);
        }
        self.width *= 2;
    }

    /// Busy time of each core over the whole run.
    pub fn totals(&self) -> &[Nanos] {
        &self.total
    }

    /// The summary for a run that lasted `makespan` (busy time after it —
    /// idle cores still asking each other for work — is left out of the
    /// buckets but not of the per-core totals).
    pub fn summary(&self, makespan: Nanos) -> UtilisationReport {
        let used = (makespan.div_ceil(self.width) as usize).clamp(1, Self::BUCKETS);
        let group = used.div_ceil(Self::REPORTED);
        let width = self.width * group as u64;
        let cores = self.busy.len().max(1) as f64;
        let mean = (0..used.div_ceil(group))
            .map(|g| {
                let range = g * group..((g + 1) * group).min(used);
                let sum: Nanos = self
                    .busy
                    .iter()
                    .map(|row| row[range.clone()].iter().sum::<Nanos>())
                    .sum();
                sum as f64 / (cores * width as f64)
            })
            .collect();
        let span = makespan.max(1) as f64;
        let per_core: Vec<f64> = self.total.iter().map(|&t| t as f64 / span).collect();
        UtilisationReport {
            bucket_ns: width,
            mean_over_time: mean,
            per_core,
        }
    }
}

/// Utilisation figures in a report.
#[derive(Clone, Debug, Serialize)]
pub struct UtilisationReport {
    /// Width of one time bucket.
    pub bucket_ns: Nanos,
    /// Mean utilisation of all cores in each bucket, from time 0.
    pub mean_over_time: Vec<f64>,
    /// Each core's busy fraction of the makespan.
    pub per_core: Vec<f64>,
}

/// FNV-1a over the run's events: equal hashes, equal traces.
#[derive(Clone, Copy, Debug)]
pub struct TraceHash(u64);

impl Default for TraceHash {
    fn default() -> TraceHash {
        TraceHash(0xcbf2_9ce4_8422_2325)
    }
}

impl TraceHash {
    /// Folds one event in.
    #[inline]
    pub fn add(&mut self, words: [u64; 4]) {
        for w in words {
            for byte in w.to_le_bytes() {
                self.0 ^= u64::from(byte);
                self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
            }
        }
    }

    /// The hash so far.
    pub fn value(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_close_to_exact() {
        let mut h = Histogram::default();
        for v in 1..=10_000u64 {
            h.record(v * 100);
        }
        for (q, exact) in [(0.5, 500_000.0), (0.99, 990_000.0), (0.999, 999_000.0)] {
            let got = h.quantile(q) as f64;
            assert!((got - exact).abs() / exact < 0.07, "q{q}: {got} vs {exact}");
        }
        assert_eq!(h.summary().max_ns, 1_000_000);
        assert_eq!(Histogram::default().quantile(0.5), 0);
        let mut small = Histogram::default();
        small.record(3);
        assert_eq!(small.quantile(0.99), 3);
    }

    #[test]
    fn utilisation_keeps_totals_when_buckets_widen() {
        let mut u = Utilisation::new(2);
        u.add(0, 0, 500);
        u.add(1, 10_000_000, 10_000_100);
        u.add(0, 5_000, 5_500);
        assert_eq!(u.totals(), &[1_000, 100]);
        let s = u.summary(20_000_000);
        assert_eq!(s.per_core, vec![1_000.0 / 2e7, 100.0 / 2e7]);
        assert!(s.mean_over_time.len() <= Utilisation::REPORTED);
        let mean_total: f64 = s.mean_over_time.iter().sum::<f64>() * s.bucket_ns as f64 * 2.0;
        assert!((mean_total - 1_100.0).abs() < 1e-6, "{mean_total}");
        // A makespan shorter than the recorded activity reports only its part.
        let s = u.summary(6_000);
        let mean_total: f64 = s.mean_over_time.iter().sum::<f64>() * s.bucket_ns as f64 * 2.0;
        assert!(mean_total <= 1_000.0 + 1e-6, "{mean_total}");
    }
}
