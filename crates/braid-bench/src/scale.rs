//! The thread-scale profile: each workload at 1, 2, … N workers on braid and on
//! native threads, with speedup (time at 1 worker / time at N) and efficiency
//! (speedup / N) computed within the run.

use crate::figures::{median, sample, Row};
use crate::report::{Figure, Suite};
use crate::rt;
use std::error::Error;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

const RUNS: usize = 5;
/// Elements of the map/reduce array: 16 MiB of u64.
const ARRAY: usize = 16 * 1024 * 1024 / 8;

/// A braid workload: run it on `workers` workers of the runtime given (built
/// once per worker count, outside the timing) and return the seconds it took.
type BraidWorkload<'a> = &'a dyn Fn(&braid::Runtime, usize) -> f64;
/// The same workload on native threads.
type ThreadWorkload<'a> = &'a dyn Fn(usize) -> f64;

pub(crate) fn run_all(suite: &mut Suite) -> Result<(), Box<dyn Error>> {
    let workers = worker_counts(suite);
    suite.say(&format!(
        "\nthread-scale profile at {workers:?} workers (braid: one runtime of that many cores; std: that many threads)"
    ));
    let rounds = if suite.quick() { 8 } else { 32 };
    let data: Arc<Vec<u64>> = Arc::new((0..ARRAY as u64).collect());
    let d = data.clone();
    profile(
        suite,
        "scale_map_reduce",
        &format!("static map/reduce over 16 MiB, {rounds} rounds of work per element"),
        &workers,
        &|rt, w| braid_map_reduce(rt, w, &d, rounds),
        &|w| threads_map_reduce(w, &data, rounds),
    )?;
    let tasks = if suite.quick() { 2_000 } else { 20_000 };
    profile(
        suite,
        "scale_dynamic_pool",
        &format!(
            "uneven task pool: {tasks} tasks, costs heavy-tailed (Pareto), pulled by the workers"
        ),
        &workers,
        &|rt, w| braid_pool(rt, w, tasks),
        &|w| threads_pool(w, tasks),
    )?;
    let phases = if suite.quick() { 200 } else { 2_000 };
    profile(
        suite,
        "scale_barrier_phases",
        &format!("{phases} phases of equal work separated by a barrier"),
        &workers,
        &|rt, w| braid_phases(rt, w, phases),
        &|w| threads_phases(w, phases),
    )?;
    let units = if suite.quick() { 80 } else { 800 };
    profile(
        suite,
        "scale_independent_runtimes",
        &format!("{units} units of independent work split over the workers, one runtime instance each (std: one thread each)"),
        &workers,
        &|_, w| braid_separate_runtimes(w, units),
        &|w| threads_independent(w, units),
    )?;
    profile(
        suite,
        "scale_same_process",
        &format!("{units} units of independent work split over the workers of one runtime"),
        &workers,
        &|rt, w| braid_same_runtime(rt, w, units),
        &|w| threads_independent(w, units),
    )?;
    let calls = if suite.quick() { 20_000 } else { 200_000 };
    profile(
        suite,
        "scale_service_calls",
        &format!(
            "{calls} calls from clients to one server over a channel, each waiting for its reply"
        ),
        &workers,
        &|rt, w| braid_service(rt, w, calls),
        &|w| threads_service(w, calls),
    )?;
    Ok(())
}

/// `--cores`, else 1, 2, 4 … up to the CPUs available (and that number).
fn worker_counts(suite: &Suite) -> Vec<usize> {
    if !suite.options.cores.is_empty() {
        return suite.options.cores.clone();
    }
    let cpus = rt::cpus();
    let mut w: Vec<usize> = std::iter::successors(Some(1usize), |n| Some(n * 2))
        .take_while(|&n| n <= cpus)
        .collect();
    if w.last() != Some(&cpus) {
        w.push(cpus);
    }
    w
}

/// Runs one workload at every worker count, prints and records its time per
/// count and its speedup and efficiency against one worker.
fn profile(
    suite: &mut Suite,
    workload: &str,
    what: &str,
    workers: &[usize],
    braid: BraidWorkload<'_>,
    threads: ThreadWorkload<'_>,
) -> Result<(), Box<dyn Error>> {
    if !suite.wants(workload) {
        return Ok(());
    }
    let mut times: Vec<(usize, Vec<f64>, Vec<f64>)> = Vec::new();
    for &w in workers {
        let rt = rt::braid(w)?;
        let b = sample(RUNS, || braid(&rt, w) * 1e3);
        let t = sample(RUNS, || threads(w) * 1e3);
        suite.figure(
            &Figure {
                workload,
                title: &format!("{workload} at {w} workers: {what}"),
                metric: "time",
                unit: "ms",
                cores: w,
                target: None,
                higher_is_better: false,
            },
            &[
                Row::new("braid", b.clone()),
                Row::new("std-thread", t.clone()),
            ],
        );
        times.push((w, b, t));
    }
    let Some((_, b1, t1)) = times.iter().find(|(w, _, _)| *w == 1).cloned() else {
        suite.note(&format!("{workload}: no 1-worker run, so no speedup"));
        return Ok(());
    };
    for (w, b, t) in times.iter().filter(|(w, _, _)| *w > 1) {
        // Speedup of each run against the median 1-worker time of the same
        // runtime: the spread of the samples shows through.
        let speedup = |base: &[f64], runs: &[f64]| -> Vec<f64> {
            let m = median(base);
            let mut s: Vec<f64> = runs.iter().map(|x| m / x).collect();
            s.sort_by(f64::total_cmp);
            s
        };
        let (bs, ts) = (speedup(&b1, b), speedup(&t1, t));
        let eff = |s: &[f64]| s.iter().map(|x| x / *w as f64).collect::<Vec<_>>();
        suite.figure(
            &Figure {
                workload,
                title: &format!("{workload}: speedup 1 -> {w} workers"),
                metric: "speedup",
                unit: "x",
                cores: *w,
                target: (*w == 2).then_some(1.95),
                higher_is_better: true,
            },
            &[
                Row::new("braid", bs.clone()),
                Row::new("std-thread", ts.clone()),
            ],
        );
        suite.figure(
            &Figure {
                workload,
                title: &format!("{workload}: efficiency at {w} workers (speedup / workers)"),
                metric: "efficiency",
                unit: "fraction",
                cores: *w,
                target: None,
                higher_is_better: true,
            },
            &[
                Row::new("braid", eff(&bs)),
                Row::new("std-thread", eff(&ts)),
            ],
        );
    }
    Ok(())
}

/// Some arithmetic per element that the optimiser cannot skip.
#[inline]
fn work(x: u64, rounds: u32) -> u64 {
    let mut h = x;
    for _ in 0..rounds {
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 29;
    }
    h
}

/// `units` units of fixed work (a fraction of a millisecond each here).
fn unit_work(units: u64) -> u64 {
    (0..units * 40_000).fold(0, |a, i| a ^ work(i, 8))
}

fn braid_map_reduce(rt: &braid::Runtime, w: usize, data: &Arc<Vec<u64>>, rounds: u32) -> f64 {
    let data = data.clone();
    rt.block_on(move || {
        let start = Instant::now();
        let chunk = data.len().div_ceil(w);
        let parts: Vec<_> = (0..w)
            .map(|i| {
                let data = data.clone();
                braid::Builder::new()
                    .core(i)
                    .spawn(move || {
                        let end = ((i + 1) * chunk).min(data.len());
                        data[i * chunk..end]
                            .iter()
                            .fold(0u64, |a, &x| a.wrapping_add(work(x, rounds)))
                    })
                    .expect("spawn")
            })
            .collect();
        let total = parts
            .into_iter()
            .fold(0u64, |a, h| a.wrapping_add(h.join().unwrap()));
        std::hint::black_box(total);
        start.elapsed().as_secs_f64()
    })
}

fn threads_map_reduce(w: usize, data: &Arc<Vec<u64>>, rounds: u32) -> f64 {
    let start = Instant::now();
    let chunk = data.len().div_ceil(w);
    let total = std::thread::scope(|s| {
        let parts: Vec<_> = (0..w)
            .map(|i| {
                let data = &data[i * chunk..((i + 1) * chunk).min(data.len())];
                s.spawn(move || {
                    data.iter()
                        .fold(0u64, |a, &x| a.wrapping_add(work(x, rounds)))
                })
            })
            .collect();
        parts
            .into_iter()
            .fold(0u64, |a, h| a.wrapping_add(h.join().unwrap()))
    });
    std::hint::black_box(total);
    start.elapsed().as_secs_f64()
}

/// Cost of task `i` in work units of 1000 elements: Pareto (shape 1.5), so a
/// few tasks cost far more than most; the same for every run and runtime.
fn task_cost(i: usize) -> u64 {
    let mut x = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 31;
    let u = ((x >> 11) as f64 / (1u64 << 53) as f64).max(1e-9);
    (u.powf(-1.0 / 1.5)).min(200.0) as u64 + 1
}

fn run_task(i: usize) -> u64 {
    (0..task_cost(i) * 1000).fold(0, |a, k| a ^ work(k, 4))
}

fn braid_pool(rt: &braid::Runtime, w: usize, tasks: usize) -> f64 {
    rt.block_on(move || {
        let next = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        let hs: Vec<_> = (0..w)
            .map(|i| {
                let next = next.clone();
                braid::Builder::new()
                    .core(i)
                    .spawn(move || {
                        let mut acc = 0;
                        loop {
                            let t = next.fetch_add(1, Ordering::Relaxed);
                            if t >= tasks {
                                return acc;
                            }
                            acc ^= run_task(t);
                        }
                    })
                    .expect("spawn")
            })
            .collect();
        let acc = hs.into_iter().fold(0, |a, h| a ^ h.join().unwrap());
        std::hint::black_box(acc);
        start.elapsed().as_secs_f64()
    })
}

fn threads_pool(w: usize, tasks: usize) -> f64 {
    let next = AtomicUsize::new(0);
    let start = Instant::now();
    let acc = std::thread::scope(|s| {
        let hs: Vec<_> = (0..w)
            .map(|_| {
                s.spawn(|| {
                    let mut acc = 0;
                    loop {
                        let t = next.fetch_add(1, Ordering::Relaxed);
                        if t >= tasks {
                            return acc;
                        }
                        acc ^= run_task(t);
                    }
                })
            })
            .collect();
        hs.into_iter().fold(0, |a, h| a ^ h.join().unwrap())
    });
    std::hint::black_box(acc);
    start.elapsed().as_secs_f64()
}

/// Work of one phase, split evenly: `per_phase / w` elements each.
fn phase_work(w: usize, me: usize, phase: usize) -> u64 {
    let per_phase = 200_000 / w;
    let base = (phase * 200_000 + me * per_phase) as u64;
    (base..base + per_phase as u64).fold(0, |a, x| a ^ work(x, 4))
}

fn braid_phases(rt: &braid::Runtime, w: usize, phases: usize) -> f64 {
    rt.block_on(move || {
        let barrier = Arc::new(braid::sync::Barrier::new(w));
        let start = Instant::now();
        let hs: Vec<_> = (0..w)
            .map(|i| {
                let barrier = barrier.clone();
                braid::Builder::new()
                    .core(i)
                    .spawn(move || {
                        let mut acc = 0;
                        for p in 0..phases {
                            acc ^= phase_work(w, i, p);
                            barrier.wait().unwrap();
                        }
                        acc
                    })
                    .expect("spawn")
            })
            .collect();
        let acc = hs.into_iter().fold(0, |a, h| a ^ h.join().unwrap());
        std::hint::black_box(acc);
        start.elapsed().as_secs_f64()
    })
}

fn threads_phases(w: usize, phases: usize) -> f64 {
    let barrier = std::sync::Barrier::new(w);
    let start = Instant::now();
    let acc = std::thread::scope(|s| {
        let hs: Vec<_> = (0..w)
            .map(|i| {
                let barrier = &barrier;
                s.spawn(move || {
                    let mut acc = 0;
                    for p in 0..phases {
                        acc ^= phase_work(w, i, p);
                        barrier.wait();
                    }
                    acc
                })
            })
            .collect();
        hs.into_iter().fold(0, |a, h| a ^ h.join().unwrap())
    });
    std::hint::black_box(acc);
    start.elapsed().as_secs_f64()
}

fn braid_separate_runtimes(w: usize, units: u64) -> f64 {
    let runtimes: Vec<_> = (0..w).map(|_| rt::braid(1).expect("runtime")).collect();
    let start = Instant::now();
    let hs: Vec<_> = runtimes
        .iter()
        .map(|rt| {
            rt.spawn(move || unit_work(units / w as u64))
                .expect("spawn")
        })
        .collect();
    let acc = hs.into_iter().fold(0, |a, h| a ^ h.join().unwrap());
    std::hint::black_box(acc);
    start.elapsed().as_secs_f64()
}

fn braid_same_runtime(rt: &braid::Runtime, w: usize, units: u64) -> f64 {
    rt.block_on(move || {
        let start = Instant::now();
        let hs: Vec<_> = (0..w)
            .map(|i| {
                braid::Builder::new()
                    .core(i)
                    .spawn(move || unit_work(units / w as u64))
                    .expect("spawn")
            })
            .collect();
        let acc = hs.into_iter().fold(0, |a, h| a ^ h.join().unwrap());
        std::hint::black_box(acc);
        start.elapsed().as_secs_f64()
    })
}

fn threads_independent(w: usize, units: u64) -> f64 {
    let start = Instant::now();
    let hs: Vec<_> = (0..w)
        .map(|_| std::thread::spawn(move || unit_work(units / w as u64)))
        .collect();
    let acc = hs.into_iter().fold(0, |a, h| a ^ h.join().unwrap());
    std::hint::black_box(acc);
    start.elapsed().as_secs_f64()
}

/// A call: some work on the client, a request to the server, some work there,
/// and the reply.
fn client_work(i: u64) -> u64 {
    (i * 64..i * 64 + 64).fold(0, |a, x| a ^ work(x, 8))
}

fn braid_service(rt: &braid::Runtime, w: usize, calls: usize) -> f64 {
    use braid::sync::channel;
    rt.block_on(move || {
        let (requests, inbox) = channel::bounded::<(u64, channel::Sender<u64>)>(64);
        let server = braid::Builder::new()
            .core(0)
            .spawn(move || {
                for (v, reply) in inbox.iter() {
                    let _ = reply.send(work(v, 16));
                }
            })
            .expect("spawn");
        let clients = (2 * w).max(2);
        let start = Instant::now();
        let hs: Vec<_> = (0..clients)
            .map(|c| {
                let requests = requests.clone();
                braid::Builder::new()
                    .core(c % w)
                    .spawn(move || {
                        let (tx, rx) = channel::bounded(1);
                        let mut acc = 0;
                        for i in (c..calls).step_by(clients) {
                            acc ^= client_work(i as u64);
                            requests.send((i as u64, tx.clone())).unwrap();
                            acc ^= rx.recv().unwrap();
                        }
                        acc
                    })
                    .expect("spawn")
            })
            .collect();
        drop(requests);
        let acc = hs.into_iter().fold(0, |a, h| a ^ h.join().unwrap());
        let elapsed = start.elapsed().as_secs_f64();
        server.join().unwrap();
        std::hint::black_box(acc);
        elapsed
    })
}

fn threads_service(w: usize, calls: usize) -> f64 {
    use std::sync::mpsc;
    let (requests, inbox) = mpsc::sync_channel::<(u64, mpsc::SyncSender<u64>)>(64);
    let server = std::thread::spawn(move || {
        for (v, reply) in inbox.iter() {
            let _ = reply.send(work(v, 16));
        }
    });
    let clients = (2 * w).max(2);
    let start = Instant::now();
    let hs: Vec<_> = (0..clients)
        .map(|c| {
            let requests = requests.clone();
            std::thread::spawn(move || {
                let (tx, rx) = mpsc::sync_channel(1);
                let mut acc = 0;
                for i in (c..calls).step_by(clients) {
                    acc ^= client_work(i as u64);
                    requests.send((i as u64, tx.clone())).unwrap();
                    acc ^= rx.recv().unwrap();
                }
                acc
            })
        })
        .collect();
    drop(requests);
    let acc = hs.into_iter().fold(0, |a, h| a ^ h.join().unwrap());
    let elapsed = start.elapsed().as_secs_f64();
    server.join().unwrap();
    std::hint::black_box(acc);
    elapsed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_costs_are_heavy_tailed_and_bounded() {
        let costs: Vec<u64> = (0..10_000).map(task_cost).collect();
        let max = *costs.iter().max().unwrap();
        let mean = costs.iter().sum::<u64>() as f64 / costs.len() as f64;
        assert!(costs.iter().all(|&c| (1..=201).contains(&c)));
        assert!(
            max as f64 > 10.0 * mean,
            "max {max}, mean {mean}: not heavy-tailed"
        );
    }

    #[test]
    fn map_reduce_agrees_across_runtimes_and_worker_counts() {
        let data: Arc<Vec<u64>> = Arc::new((0..10_000).collect());
        let expect = data.iter().fold(0u64, |a, &x| a.wrapping_add(work(x, 2)));
        for w in [1, 2, 3] {
            let rt = rt::braid(w).unwrap();
            let d = data.clone();
            let got = rt.block_on(move || {
                let chunk = d.len().div_ceil(w);
                (0..w)
                    .map(|i| {
                        let d = d.clone();
                        braid::spawn(move || {
                            let end = ((i + 1) * chunk).min(d.len());
                            d[i * chunk..end]
                                .iter()
                                .fold(0u64, |a, &x| a.wrapping_add(work(x, 2)))
                        })
                    })
                    .collect::<Vec<_>>()
                    .into_iter()
                    .fold(0u64, |a, h| a.wrapping_add(h.join().unwrap()))
            });
            assert_eq!(got, expect);
        }
    }
}
