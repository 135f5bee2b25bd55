//! Hog scaling: 10, 100 and 1 000 strands that never yield, on every core,
//! beside a sleeper that sleeps 5 ms in a loop and records how late it wakes.
//! Also counted: hogs that made no progress in the second half of a run, the
//! threads the process had beyond its idle count and the hogs themselves at
//! the peak, and the threads still there after the hogs ended.
//!
//! The sleeper starts before the hogs, so its figures include the burst of
//! hogs arriving, not just the steady state.

use crate::figures::Row;
use crate::peers::Peer;
use crate::report::{Figure, Suite};
use crate::rt;
use std::error::Error;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const RUNS: usize = 5;
const PERIOD: Duration = Duration::from_millis(5);
/// How long the process may take to give back the hogs' threads after they end.
const SETTLE: Duration = Duration::from_secs(3);

/// What one run measured.
#[derive(Clone, Debug, Default)]
struct Run {
    /// Sorted lateness of every wake, microseconds.
    delays: Vec<f64>,
    /// Hogs whose counter did not move in the second half of the run.
    stalled: usize,
    /// Peak thread count minus the idle count minus one per hog.
    extra_threads: f64,
    /// Threads above the idle count `SETTLE` after the hogs ended.
    left_threads: f64,
}

pub(crate) fn run_all(suite: &mut Suite) -> Result<(), Box<dyn Error>> {
    if !suite.wants("hog_scaling") {
        return Ok(());
    }
    let cores = rt::cpus();
    let window = if suite.quick() {
        Duration::from_secs(2)
    } else {
        Duration::from_secs(5)
    };
    suite.say(&format!(
        "\nhog scaling: a 5 ms sleeper beside 10, 100 and 1 000 never-yielding hogs on {cores} cores, {} ms per run",
        window.as_millis()
    ));
    for hogs in [10, 100, 1000] {
        let mut all: Vec<(&'static str, Vec<Run>)> = Vec::new();
        all.push((
            "braid",
            runs(|| {
                let brt = rt::braid(cores).expect("braid runtime");
                braid_run(&brt, hogs, window)
            }),
        ));
        all.push(("std-thread", runs(|| threads_run(hogs, window))));
        let window_ms = window.as_millis().to_string();
        let period_ms = PERIOD.as_millis().to_string();
        let hog_count = hogs.to_string();
        if let Some(mut delays) =
            Peer::Go.runs(&["latency", &window_ms, &hog_count, &period_ms], cores)
        {
            delays.iter_mut().for_each(|d| d.sort_by(f64::total_cmp));
            let peer_runs = delays
                .into_iter()
                .map(|delays| Run {
                    delays,
                    ..Run::default()
                })
                .collect();
            all.push(("go", peer_runs));
        }
        let target = if hogs >= 1000 { 10_000.0 } else { 2_000.0 };
        for (metric, pick) in [("p99 wake delay", 0.99), ("max wake delay", 1.0)] {
            let rows: Vec<Row> = all
                .iter()
                .map(|(runtime, runs)| {
                    Row::sorting(runtime, runs.iter().map(|r| at(&r.delays, pick)).collect())
                })
                .collect();
            let title = format!("{metric} of a 5 ms sleeper beside {hogs} hogs (beyond the 5 ms)");
            suite.figure(
                &Figure {
                    workload: &format!("hog_scaling_{hogs}"),
                    title: &title,
                    metric,
                    unit: "us",
                    cores,
                    target: (pick == 0.99).then_some(target),
                    higher_is_better: false,
                },
                &rows,
            );
        }
        // Thread and progress counts: braid and the OS-thread baseline only
        // (the Go peer reports delays).
        let counted = &all[..2];
        for (metric, title, pick) in [
            (
                "stalled hogs",
                format!("hogs that made no progress in the second half of a run, of {hogs}"),
                (|r: &Run| r.stalled as f64) as fn(&Run) -> f64,
            ),
            (
                "extra threads",
                format!(
                    "threads at the peak beyond the idle process and one per hog ({hogs} hogs)"
                ),
                |r: &Run| r.extra_threads,
            ),
            (
                "threads left",
                format!(
                    "threads beyond the idle process {} s after {hogs} hogs ended",
                    SETTLE.as_secs()
                ),
                |r: &Run| r.left_threads,
            ),
        ] {
            let rows: Vec<Row> = counted
                .iter()
                .map(|(runtime, runs)| Row::sorting(runtime, runs.iter().map(pick).collect()))
                .collect();
            suite.figure(
                &Figure {
                    workload: &format!("hog_scaling_{hogs}"),
                    title: &title,
                    metric,
                    unit: "count",
                    cores,
                    target: None,
                    higher_is_better: false,
                },
                &rows,
            );
        }
    }
    suite.note(
        "hog scaling: a sleeper that never woke within a run counts the whole run as its delay",
    );
    Ok(())
}

/// One warm-up run, then `RUNS` runs.
fn runs(mut run: impl FnMut() -> Run) -> Vec<Run> {
    run();
    (0..RUNS).map(|_| run()).collect()
}

/// The `q` quantile of sorted `delays`.
fn at(delays: &[f64], q: f64) -> f64 {
    if delays.is_empty() {
        return f64::NAN;
    }
    let i = ((delays.len() - 1) as f64 * q).round() as usize;
    delays[i.min(delays.len() - 1)]
}

/// The process's thread count, from `/proc/self/status`.
fn threads() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|n| n.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Samples the thread count every few milliseconds until `stop`; returns the peak.
fn peak_threads(stop: Arc<AtomicBool>) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let mut peak = 0;
        while !stop.load(Ordering::Relaxed) {
            peak = peak.max(threads());
            std::thread::sleep(Duration::from_millis(5));
        }
        peak
    })
}

/// Waits up to `SETTLE` for the thread count to fall to `idle`; returns what
/// is left above it.
fn settle(idle: usize) -> f64 {
    let end = Instant::now() + SETTLE;
    loop {
        let now = threads();
        if now <= idle || Instant::now() >= end {
            return now.saturating_sub(idle) as f64;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Per-hog progress counters, published every 256 iterations so
/// the hogs do not share cache lines on every step.
struct Progress {
    counts: Vec<AtomicU64>,
}

impl Progress {
    fn new(hogs: usize) -> Arc<Progress> {
        Arc::new(Progress {
            counts: (0..hogs).map(|_| AtomicU64::new(0)).collect(),
        })
    }

    /// The hog loop: spins until `stop`, calling nothing of any runtime.
    fn spin(&self, hog: usize, stop: &AtomicBool) {
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            n += 1;
            if n % 256 == 0 {
                self.counts[hog].store(n, Ordering::Relaxed);
            }
            std::hint::spin_loop();
        }
    }

    fn snapshot(&self) -> Vec<u64> {
        self.counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect()
    }

    /// Hogs whose counter has not moved since `then`.
    fn stalled_since(&self, then: &[u64]) -> usize {
        self.snapshot()
            .iter()
            .zip(then)
            .filter(|(now, then)| now <= then)
            .count()
    }
}

fn braid_run(rt: &braid::Runtime, hogs: usize, window: Duration) -> Run {
    // Let the runtime's threads start before counting the idle process.
    rt.block_on(|| ());
    let idle = threads();
    let stop = Arc::new(AtomicBool::new(false));
    let progress = Progress::new(hogs);
    let sampling = Arc::new(AtomicBool::new(false));
    let sampler = peak_threads(sampling.clone());
    let (st, pr) = (stop.clone(), progress.clone());
    let (handles, sleeper) = rt.block_on(move || {
        let sleeper = braid::spawn(move || {
            let end = Instant::now() + window;
            let mut delays = Vec::new();
            while Instant::now() < end {
                let t = Instant::now();
                braid::sleep(PERIOD).unwrap();
                delays.push((t.elapsed().saturating_sub(PERIOD)).as_secs_f64() * 1e6);
            }
            delays
        });
        let handles: Vec<_> = (0..hogs)
            .map(|hog| {
                let (stop, progress) = (st.clone(), pr.clone());
                braid::spawn(move || progress.spin(hog, &stop))
            })
            .collect();
        (handles, sleeper)
    });
    // The sampler is this run's own thread.
    let own = Own {
        idle,
        hogs,
        threads: 1,
    };
    conclude(window, &progress, &stop, (sampling, sampler), own, || {
        let delays = sleeper.join().unwrap_or_default();
        for h in handles {
            h.join().expect("hog");
        }
        delays
    })
}

fn threads_run(hogs: usize, window: Duration) -> Run {
    let idle = threads();
    let stop = Arc::new(AtomicBool::new(false));
    let progress = Progress::new(hogs);
    let sampling = Arc::new(AtomicBool::new(false));
    let sampler = peak_threads(sampling.clone());
    let sleeper = std::thread::spawn(move || {
        let end = Instant::now() + window;
        let mut delays = Vec::new();
        while Instant::now() < end {
            let t = Instant::now();
            std::thread::sleep(PERIOD);
            delays.push((t.elapsed().saturating_sub(PERIOD)).as_secs_f64() * 1e6);
        }
        delays
    });
    let handles: Vec<_> = (0..hogs)
        .map(|hog| {
            let (stop, progress) = (stop.clone(), progress.clone());
            std::thread::spawn(move || progress.spin(hog, &stop))
        })
        .collect();
    // The sleeper and the sampler are this run's own threads.
    let own = Own {
        idle,
        hogs,
        threads: 2,
    };
    conclude(window, &progress, &stop, (sampling, sampler), own, || {
        let delays = sleeper.join().unwrap_or_default();
        for h in handles {
            h.join().expect("hog");
        }
        delays
    })
}

/// Thread counts a run's figures are taken against: the idle process, the
/// hogs, and the run's own threads.
struct Own {
    idle: usize,
    hogs: usize,
    threads: usize,
}

/// The second half of a run whose sleeper and hogs started: watches the
/// hogs' progress over `window`, stops them, gathers the sleeper's delays
/// (`join`, which joins the hogs too) and counts the threads.
fn conclude(
    window: Duration,
    progress: &Progress,
    stop: &AtomicBool,
    (sampling, sampler): (Arc<AtomicBool>, std::thread::JoinHandle<usize>),
    own: Own,
    join: impl FnOnce() -> Vec<f64>,
) -> Run {
    std::thread::sleep(window / 2);
    let half = progress.snapshot();
    std::thread::sleep(window / 2);
    let stalled = progress.stalled_since(&half);
    stop.store(true, Ordering::Relaxed);
    let mut delays = join();
    sampling.store(true, Ordering::Relaxed);
    let peak = sampler.join().unwrap_or(0);
    delays.sort_by(f64::total_cmp);
    if delays.is_empty() {
        delays.push(window.as_secs_f64() * 1e6);
    }
    Run {
        delays,
        stalled,
        extra_threads: peak as f64 - (own.idle + own.hogs + own.threads) as f64,
        left_threads: settle(own.idle),
    }
}
