//! Repeated measurement and the summary line of a figure.

/// Runs `measure` once to warm up, then `runs` times; returns the sorted samples.
pub(crate) fn sample(runs: usize, mut measure: impl FnMut() -> f64) -> Vec<f64> {
    measure();
    let mut samples: Vec<f64> = (0..runs).map(|_| measure()).collect();
    samples.sort_by(f64::total_cmp);
    samples
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
}

/// Prints a figure: each runtime's median and range, and braid's ratio to each
/// peer (peer / braid for costs, so > 1 means braid is better).
pub(crate) fn print_figure(title: &str, unit: &str, target: Option<&str>, rows: &[Row]) {
    println!(
        "\n{title}  [{unit}, lower is better{}]",
        target.map(|t| format!("; target {t}")).unwrap_or_default()
    );
    let braid = rows
        .iter()
        .find(|r| r.runtime == "braid")
        .map(|r| median(&r.samples));
    for row in rows {
        let m = median(&row.samples);
        let (lo, hi) = (
            row.samples.first().copied().unwrap_or(f64::NAN),
            row.samples.last().copied().unwrap_or(f64::NAN),
        );
        let ratio = match braid {
            Some(b) if row.runtime != "braid" && b > 0.0 => format!(
                "  braid is {:.2}x {}",
                m / b,
                if m >= b {
                    "faster/smaller"
                } else {
                    "slower/larger"
                }
            ),
            _ => String::new(),
        };
        println!(
            "  {:<12} median {:>12.1}  (min {:>10.1}, max {:>10.1}, {} runs){ratio}",
            row.runtime,
            m,
            lo,
            hi,
            row.samples.len()
        );
    }
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
