//! The four micro-benchmarks of the foundation: yield switch, spawn + join,
//! cross-core wake latency, and memory per parked task.

use crate::figures::{median, sample, Row};
use crate::peers::{self, Peer};
use crate::report::{Figure, Suite};
use crate::rt;

use std::error::Error;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

const RUNS: usize = 5;
/// may's spawn + join goes in batches of this many live coroutines: may maps
/// each coroutine's stack separately, so more than about 30 000 live ones
/// exceed Linux's default `vm.max_map_count`, and past its stack pool (1 000
/// by default) every spawn maps a fresh stack (10 000 at a time: ~14 µs per
/// task here, against ~1 µs in batches of 1 000).
const MAY_BATCH: usize = 1_000;

pub(crate) fn run_all(suite: &mut Suite) -> Result<(), Box<dyn Error>> {
    suite.say(&format!(
        "braid micro-benchmarks (medians of {RUNS} runs after a warm-up; ratios from this run)"
    ));
    yield_switch(suite)?;
    spawn_join(suite)?;
    cross_core_wake(suite)?;
    parked_memory(suite)?;
    Ok(())
}

fn yield_switch(suite: &mut Suite) -> Result<(), Box<dyn Error>> {
    if !suite.wants("yield_switch") {
        return Ok(());
    }
    let n: u64 = if suite.quick() { 200_000 } else { 2_000_000 };
    let rt = rt::braid(1)?;
    let braid = sample(RUNS, || {
        rt.block_on(move || {
            let start = Instant::now();
            let a = braid::spawn(move || (0..n).for_each(|_| braid::yield_now()));
            let b = braid::spawn(move || (0..n).for_each(|_| braid::yield_now()));
            a.join().unwrap();
            b.join().unwrap();
            start.elapsed().as_nanos() as f64 / (2 * n) as f64
        })
    });
    let trt = rt::tokio(1)?;
    let tokio = sample(RUNS, || {
        trt.block_on(async move {
            let start = Instant::now();
            let a = tokio::spawn(async move {
                for _ in 0..n {
                    tokio::task::yield_now().await;
                }
            });
            let b = tokio::spawn(async move {
                for _ in 0..n {
                    tokio::task::yield_now().await;
                }
            });
            a.await.unwrap();
            b.await.unwrap();
            start.elapsed().as_nanos() as f64 / (2 * n) as f64
        })
    });
    let threads_n = n / 10;
    let std_threads = sample(RUNS, || {
        let start = Instant::now();
        let spawn =
            || std::thread::spawn(move || (0..threads_n).for_each(|_| std::thread::yield_now()));
        let (a, b) = (spawn(), spawn());
        a.join().unwrap();
        b.join().unwrap();
        start.elapsed().as_nanos() as f64 / (2 * threads_n) as f64
    });
    suite.figure(
        &Figure {
            workload: "yield_switch",
            title: "yield switch, 2 tasks on 1 core (std: 2 threads calling sched_yield)",
            metric: "time per switch",
            unit: "ns",
            cores: 1,
            target: Some(10.0),
            higher_is_better: false,
        },
        &[
            Row::new("braid", braid),
            Row::new("tokio", tokio),
            Row::new("std-thread", std_threads),
        ]
        .into_iter()
        .chain(peers::rows(
            &[Peer::Go, Peer::May],
            &["yield", &n.to_string()],
            1,
        ))
        .collect::<Vec<_>>(),
    );
    Ok(())
}

fn spawn_join(suite: &mut Suite) -> Result<(), Box<dyn Error>> {
    if !suite.wants("spawn_join") {
        return Ok(());
    }
    let n: usize = if suite.quick() { 100_000 } else { 1_000_000 };
    let rt = rt::braid(1)?;
    let braid = sample(RUNS, || {
        rt.block_on(move || {
            let start = Instant::now();
            let handles: Vec<_> = (0..n).map(|i| braid::spawn(move || i)).collect();
            let sum: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
            std::hint::black_box(sum);
            start.elapsed().as_nanos() as f64 / n as f64
        })
    });
    let trt = rt::tokio(1)?;
    let tokio = sample(RUNS, || {
        trt.block_on(async move {
            let start = Instant::now();
            let handles: Vec<_> = (0..n).map(|i| tokio::spawn(async move { i })).collect();
            let mut sum = 0;
            for h in handles {
                sum += h.await.unwrap();
            }
            std::hint::black_box(sum);
            start.elapsed().as_nanos() as f64 / n as f64
        })
    });
    let threads = n / 100;
    let std_threads = sample(RUNS, || {
        let start = Instant::now();
        let handles: Vec<_> = (0..threads)
            .map(|i| std::thread::spawn(move || i))
            .collect();
        let sum: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        std::hint::black_box(sum);
        start.elapsed().as_nanos() as f64 / threads as f64
    });
    suite.figure(
        &Figure {
            workload: "spawn_join",
            title: &format!(
                "spawn + join, {n} tasks on 1 core (std: {threads} threads; may: {MAY_BATCH} live at a time)"
            ),
            metric: "time per task",
            unit: "ns",
            cores: 1,
            target: Some(50.0),
            higher_is_better: false,
        },
        &[
            Row::new("braid", braid),
            Row::new("tokio", tokio),
            Row::new("std-thread", std_threads),
        ]
        .into_iter()
        .chain(peers::rows(
            &[Peer::May],
            &["spawn", &n.to_string(), &MAY_BATCH.to_string()],
            1,
        ))
        .collect::<Vec<_>>(),
    );
    Ok(())
}

/// Round trips between two tasks on different cores; each sample is the median
/// one-way wake latency of a run, and the p99 is reported separately.
fn cross_core_wake(suite: &mut Suite) -> Result<(), Box<dyn Error>> {
    if !suite.wants("cross_core_wake") {
        return Ok(());
    }
    let rounds: usize = if suite.quick() { 2_000 } else { 20_000 };
    let rt = rt::braid(2)?;
    let mut braid_p99 = Vec::new();
    let braid = sample(RUNS, || {
        let lat = rt.block_on(move || braid_ping_pong(rounds));
        braid_p99.push(percentile(&lat, 0.99));
        median(&lat)
    });
    let trt = rt::tokio(2)?;
    let mut tokio_p99 = Vec::new();
    let tokio = sample(RUNS, || {
        let lat = trt.block_on(tokio_ping_pong(rounds));
        tokio_p99.push(percentile(&lat, 0.99));
        median(&lat)
    });
    let mut std_p99 = Vec::new();
    let std_threads = sample(RUNS, || {
        let lat = std_ping_pong(rounds);
        std_p99.push(percentile(&lat, 0.99));
        median(&lat)
    });
    suite.figure(
        &Figure {
            workload: "cross_core_wake",
            title: "cross-core wake latency, median of each run (one way = round trip / 2)",
            metric: "median one-way wake latency",
            unit: "ns",
            cores: 2,
            target: None,
            higher_is_better: false,
        },
        &[
            Row::new("braid", braid),
            Row::new("tokio", tokio),
            Row::new("std-thread", std_threads),
        ],
    );
    for v in [&mut braid_p99, &mut tokio_p99, &mut std_p99] {
        // The first entry came from the warm-up run.
        v.remove(0);
        v.sort_by(f64::total_cmp);
    }
    suite.figure(
        &Figure {
            workload: "cross_core_wake",
            title: "cross-core wake latency, p99 of each run",
            metric: "p99 one-way wake latency",
            unit: "ns",
            cores: 2,
            target: None,
            higher_is_better: false,
        },
        &[
            Row::new("braid", braid_p99),
            Row::new("tokio", tokio_p99),
            Row::new("std-thread", std_p99),
        ],
    );
    Ok(())
}

fn percentile(values: &[f64], q: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q) as usize]
}

fn braid_ping_pong(rounds: usize) -> Vec<f64> {
    let turn = Arc::new(AtomicU64::new(0));
    let t = turn.clone();
    let me = braid::current().expect("in a strand");
    let pinger = braid::Builder::new()
        .core(0)
        .spawn(move || {
            let t2 = t.clone();
            let (tx, rx) = std::sync::mpsc::channel::<braid::Strand>();
            let ponger = braid::Builder::new()
                .core(1)
                .spawn(move || {
                    let pinger = rx.recv().unwrap();
                    for i in 0..rounds as u64 {
                        while t2.load(Ordering::Acquire) != 2 * i + 1 {
                            braid::park();
                        }
                        t2.store(2 * i + 2, Ordering::Release);
                        pinger.unpark();
                    }
                })
                .unwrap();
            tx.send(braid::current().unwrap()).unwrap();
            let partner = ponger.strand();
            let mut lat = Vec::with_capacity(rounds);
            for i in 0..rounds as u64 {
                let start = Instant::now();
                t.store(2 * i + 1, Ordering::Release);
                partner.unpark();
                while t.load(Ordering::Acquire) != 2 * i + 2 {
                    braid::park();
                }
                lat.push(start.elapsed().as_nanos() as f64 / 2.0);
            }
            ponger.join().unwrap();
            lat
        })
        .unwrap();
    drop(me);
    pinger.join().unwrap()
}

async fn tokio_ping_pong(rounds: usize) -> Vec<f64> {
    let ping = Arc::new(tokio::sync::Notify::new());
    let pong = Arc::new(tokio::sync::Notify::new());
    let (p1, p2) = (ping.clone(), pong.clone());
    let ponger = tokio::spawn(async move {
        for _ in 0..rounds {
            p1.notified().await;
            p2.notify_one();
        }
    });
    let mut lat = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        ping.notify_one();
        pong.notified().await;
        lat.push(start.elapsed().as_nanos() as f64 / 2.0);
    }
    ponger.await.unwrap();
    lat
}

fn std_ping_pong(rounds: usize) -> Vec<f64> {
    let turn = Arc::new(AtomicU64::new(0));
    let t = turn.clone();
    let main = std::thread::current();
    let ponger = std::thread::spawn(move || {
        for i in 0..rounds as u64 {
            while t.load(Ordering::Acquire) != 2 * i + 1 {
                std::thread::park();
            }
            t.store(2 * i + 2, Ordering::Release);
            main.unpark();
        }
    });
    let mut lat = Vec::with_capacity(rounds);
    for i in 0..rounds as u64 {
        let start = Instant::now();
        turn.store(2 * i + 1, Ordering::Release);
        ponger.thread().unpark();
        while turn.load(Ordering::Acquire) != 2 * i + 2 {
            std::thread::park();
        }
        lat.push(start.elapsed().as_nanos() as f64 / 2.0);
    }
    ponger.join().unwrap();
    lat
}

/// Resident set size of this process, in bytes.
fn rss_bytes() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN);
    pages * 4096.0
}

/// Resident memory per parked task. Each run is a fresh `braid peer-parked`
/// child process: in this process the allocator keeps memory freed by the
/// earlier workloads resident, and tasks allocated into it would look free.
fn parked_memory(suite: &mut Suite) -> Result<(), Box<dyn Error>> {
    if !suite.wants("parked_memory") {
        return Ok(());
    }
    let n: usize = if suite.quick() { 100_000 } else { 1_000_000 };
    let threads = 1_000;
    let (n_arg, threads_arg) = (n.to_string(), threads.to_string());
    let braid = peers::braid_child(&["peer-parked", "braid", &n_arg])?;
    let tokio = peers::braid_child(&["peer-parked", "tokio", &n_arg])?;
    let std_threads = peers::braid_child(&["peer-parked", "std", &threads_arg])?;
    suite.figure(
        &Figure {
            workload: "parked_memory",
            title: &format!("resident memory per parked task, {n} parked (std: {threads} threads)"),
            metric: "resident memory per parked task",
            unit: "bytes",
            cores: 1,
            target: Some(2048.0),
            higher_is_better: false,
        },
        &[
            Row::new("braid", braid),
            Row::new("tokio", tokio),
            Row::new("std-thread", std_threads),
        ],
    );
    Ok(())
}

/// `braid peer-parked braid|tokio|std COUNT`: parks COUNT tasks (threads for
/// `std`) in this fresh process and returns the resident memory they added,
/// in bytes per task.
pub fn parked_main(args: &[String]) -> Result<String, String> {
    let usage = "usage: braid peer-parked braid|tokio|std COUNT";
    let [runtime, count] = args else {
        return Err(usage.into());
    };
    let count: usize = count
        .parse()
        .ok()
        .filter(|&c| c > 0)
        .ok_or_else(|| format!("COUNT must be a positive integer, got {count:?}; {usage}"))?;
    let bytes = match runtime.as_str() {
        "braid" => parked_braid(count),
        "tokio" => parked_tokio(count),
        "std" => parked_std(count),
        other => return Err(format!("unknown runtime {other:?}; {usage}")),
    };
    Ok(format!("{bytes}"))
}

fn parked_braid(n: usize) -> f64 {
    let rt = rt::braid(2).expect("runtime");
    let before = rss_bytes();
    let release = Arc::new(AtomicBool::new(false));
    let r = release.clone();
    let (handles, after) = rt.block_on(move || {
        let handles: Vec<_> = (0..n)
            .map(|_| {
                let r = r.clone();
                braid::Builder::new()
                    .stack_size(16 * 1024)
                    .spawn(move || {
                        while !r.load(Ordering::Acquire) {
                            braid::park();
                        }
                    })
                    .unwrap()
            })
            .collect();
        while handles
            .iter()
            .any(|h| h.strand().state() != braid::StrandState::Blocked)
        {
            braid::sleep(std::time::Duration::from_millis(5)).unwrap();
        }
        (handles, rss_bytes())
    });
    release.store(true, Ordering::Release);
    for h in &handles {
        h.strand().unpark();
    }
    for h in handles {
        h.join().unwrap();
    }
    (after - before) / n as f64
}

fn parked_tokio(n: usize) -> f64 {
    let trt = rt::tokio(1).expect("tokio");
    trt.block_on(async move {
        let before = rss_bytes();
        // A semaphore with no permits parks every task until the release;
        // the start count says when all of them have been polled once (on
        // a current-thread runtime a task counted here is already waiting).
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let started = Arc::new(AtomicU64::new(0));
        let handles: Vec<_> = (0..n)
            .map(|_| {
                let g = gate.clone();
                let s = started.clone();
                tokio::spawn(async move {
                    s.fetch_add(1, Ordering::Relaxed);
                    g.acquire().await.unwrap().forget();
                })
            })
            .collect();
        while started.load(Ordering::Relaxed) < n as u64 {
            tokio::task::yield_now().await;
        }
        let after = rss_bytes();
        gate.add_permits(n);
        for h in handles {
            h.await.unwrap();
        }
        (after - before) / n as f64
    })
}

fn parked_std(threads: usize) -> f64 {
    let before = rss_bytes();
    let stop = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let s = stop.clone();
            std::thread::spawn(move || {
                while !s.load(Ordering::Acquire) {
                    std::thread::park();
                }
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(50));
    let after = rss_bytes();
    stop.store(true, Ordering::Release);
    for h in handles {
        h.thread().unpark();
        h.join().unwrap();
    }
    (after - before) / threads as f64
}
