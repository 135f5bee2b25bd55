//! Latency under load: a task that sleeps 1 ms in a loop records how late it
//! wakes (wake-to-run delay beyond the 1 ms) while every core runs a CPU-bound
//! task that never yields.

use crate::figures::Row;
use crate::peers::Peer;
use crate::report::{Distribution, Figure, Suite};
use crate::rt;
use std::error::Error;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const RUNS: usize = 5;
const PERIOD: Duration = Duration::from_millis(1);

pub(crate) fn run_all(suite: &mut Suite) -> Result<(), Box<dyn Error>> {
    if !suite.wants("latency_under_load") {
        return Ok(());
    }
    let cores = rt::cpus();
    let window = if suite.quick() {
        Duration::from_millis(300)
    } else {
        Duration::from_secs(3)
    };
    suite.say(&format!(
        "\nlatency under load: a 1 ms sleeper beside {cores} never-yielding hogs, {} ms per run",
        window.as_millis()
    ));
    let brt = rt::braid(cores)?;
    let mut all = vec![("braid", runs(|| braid_run(&brt, cores, window)))];
    let trt = rt::tokio(cores)?;
    all.push(("tokio", runs(|| trt.block_on(tokio_run(cores, window)))));
    all.push(("std-thread", runs(|| threads_run(cores, window))));
    // The peers print every delay of each run.
    let window_ms = window.as_millis().to_string();
    for peer in [Peer::Go, Peer::Erlang, Peer::May] {
        if let Some(mut delays) = peer.runs(&["latency", &window_ms], cores) {
            delays.iter_mut().for_each(|d| d.sort_by(f64::total_cmp));
            all.push((peer.name(), delays));
        }
    }
    for (metric, pick) in [
        ("p50 wake delay", 0.50),
        ("p99 wake delay", 0.99),
        ("max wake delay", 1.0),
    ] {
        let rows: Vec<Row> = all
            .iter()
            .map(|(runtime, delays)| Row::new(runtime, at(delays, pick)))
            .collect();
        let title = format!("{metric}, 1 ms sleeper with every core hogged (beyond the 1 ms)");
        suite.figure(
            &Figure {
                workload: "latency_under_load",
                title: &title,
                metric,
                unit: "us",
                cores,
                target: (pick == 0.99).then_some(1000.0),
                higher_is_better: false,
            },
            &rows,
        );
    }
    for (runtime, delays) in all {
        suite.distribution(Distribution {
            workload: "latency_under_load".into(),
            runtime: runtime.into(),
            cores,
            unit: "us".into(),
            values: delays.into_iter().flatten().collect(),
        });
    }
    suite.note(
        "latency under load: a sleeper that never woke within a run counts the whole run as its delay",
    );
    Ok(())
}

/// One warm-up run, then `RUNS` runs; each run's delays, in microseconds.
fn runs(mut run: impl FnMut() -> Vec<f64>) -> Vec<Vec<f64>> {
    run();
    (0..RUNS)
        .map(|_| {
            let mut d = run();
            d.sort_by(f64::total_cmp);
            d
        })
        .collect()
}

/// The `q` quantile of each run, sorted (one sample per run).
fn at(runs: &[Vec<f64>], q: f64) -> Vec<f64> {
    let mut v: Vec<f64> = runs
        .iter()
        .map(|d| {
            if d.is_empty() {
                return f64::NAN;
            }
            let i = ((d.len() - 1) as f64 * q).round() as usize;
            d[i.min(d.len() - 1)]
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v
}

/// Delays of a sleeper that ran for `window`; if it never got to run, the
/// whole window.
fn finish(mut delays: Vec<f64>, window: Duration) -> Vec<f64> {
    if delays.is_empty() {
        delays.push(window.as_secs_f64() * 1e6);
    }
    delays
}

fn braid_run(rt: &braid::Runtime, cores: usize, window: Duration) -> Vec<f64> {
    let stop = Arc::new(AtomicBool::new(false));
    let st = stop.clone();
    // Start a hog on every core and the sleeper; this thread keeps time.
    let (hogs, sleeper) = rt.block_on(move || {
        let hogs: Vec<_> = (0..cores)
            .map(|core| {
                let stop = st.clone();
                braid::Builder::new()
                    .core(core)
                    .spawn(move || {
                        // No runtime call: the scheduler cannot preempt this.
                        while !stop.load(Ordering::Relaxed) {
                            std::hint::spin_loop();
                        }
                    })
                    .expect("spawn")
            })
            .collect::<Vec<_>>();
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
        (hogs, sleeper)
    });
    std::thread::sleep(window);
    stop.store(true, Ordering::Relaxed);
    let delays = sleeper.join().unwrap();
    for h in hogs {
        h.join().unwrap();
    }
    finish(delays, window)
}

async fn tokio_run(cores: usize, window: Duration) -> Vec<f64> {
    let stop = Arc::new(AtomicBool::new(false));
    let hogs: Vec<_> = (0..cores)
        .map(|_| {
            let stop = stop.clone();
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            })
        })
        .collect();
    let s = stop.clone();
    let sleeper = tokio::spawn(async move {
        let end = Instant::now() + window;
        let mut delays = Vec::new();
        while Instant::now() < end && !s.load(Ordering::Relaxed) {
            let t = Instant::now();
            tokio::time::sleep(PERIOD).await;
            delays.push((t.elapsed().saturating_sub(PERIOD)).as_secs_f64() * 1e6);
        }
        delays
    });
    // The hogs own every worker: stop them from a plain thread after the
    // window, or the sleeper may never run.
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(window);
        stop.store(true, Ordering::Relaxed);
    });
    let delays = sleeper.await.unwrap();
    for h in hogs {
        h.await.unwrap();
    }
    stopper.join().unwrap();
    finish(delays, window)
}

fn threads_run(cores: usize, window: Duration) -> Vec<f64> {
    let stop = Arc::new(AtomicBool::new(false));
    let hogs: Vec<_> = (0..cores)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            })
        })
        .collect();
    let end = Instant::now() + window;
    let mut delays = Vec::new();
    while Instant::now() < end {
        let t = Instant::now();
        std::thread::sleep(PERIOD);
        delays.push((t.elapsed().saturating_sub(PERIOD)).as_secs_f64() * 1e6);
    }
    stop.store(true, Ordering::Relaxed);
    for h in hogs {
        h.join().unwrap();
    }
    finish(delays, window)
}
