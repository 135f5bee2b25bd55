//! Repeated measurement: samples, medians, a runtime's row of a figure.

/// Runs `measure` once to warm up, then `runs` times; returns the sorted samples.
pub(crate) fn sample(runs: usize, mut measure: impl FnMut() -> f64) -> Vec<f64> {
    measure();
    let mut samples: Vec<f64> = (0..runs).map(|_| measure()).collect();
    samples.sort_by(f64::total_cmp);
    samples
}

/// Runs `run` once to warm up, then `runs` times; returns what each of those
/// gave, in order, or the first error (for workloads whose runs give more
/// than one figure, or may be impossible on this machine).
pub(crate) fn sample_each<T, E>(
    runs: usize,
    mut run: impl FnMut() -> Result<T, E>,
) -> Result<Vec<T>, E> {
    run()?;
    (0..runs).map(|_| run()).collect()
}

/// Median of sorted samples.
pub(crate) fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// One runtime's result for a figure.
pub(crate) struct Row {
    pub(crate) runtime: &'static str,
    pub(crate) samples: Vec<f64>,
}

impl Row {
    pub(crate) fn new(runtime: &'static str, samples: Vec<f64>) -> Row {
        Row { runtime, samples }
    }

    /// A row of samples in any order (they are sorted here).
    pub(crate) fn sorting(runtime: &'static str, mut samples: Vec<f64>) -> Row {
        samples.sort_by(f64::total_cmp);
        Row { runtime, samples }
    }
}

/// The share of CPU time the hypervisor took from this machine (steal)
/// between [`Steal::start`] and [`Steal::fraction`], from `/proc/stat`: the
/// context for tail latencies on a virtual machine. `None` where the file
/// cannot be read.
pub(crate) struct Steal(Option<(u64, u64)>);

impl Steal {
    pub(crate) fn start() -> Steal {
        Steal(steal_and_total())
    }

    pub(crate) fn fraction(&self) -> Option<f64> {
        let (s0, t0) = self.0?;
        let (s1, t1) = steal_and_total()?;
        let total = t1.checked_sub(t0).filter(|&t| t > 0)?;
        Some(s1.saturating_sub(s0) as f64 / total as f64)
    }
}

/// Steal and total jiffies of all CPUs.
fn steal_and_total() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal guest guest_nice; the
    // guest times are already counted in user and nice.
    let total = fields.iter().take(8).sum();
    Some((*fields.get(7)?, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&[1.0, 2.0, 9.0]), 2.0);
        assert_eq!(median(&[1.0, 2.0, 4.0, 9.0]), 3.0);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn sample_sorts_and_counts() {
        let mut n = 0.0;
        let s = sample(5, || {
            n += 1.0;
            10.0 - n
        });
        // The warm-up run (9.0) is discarded.
        assert_eq!(s, vec![4.0, 5.0, 6.0, 7.0, 8.0]);
    }
}
