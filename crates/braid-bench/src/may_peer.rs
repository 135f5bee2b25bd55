//! The `may` peer: the suite's workloads written for may's stackful
//! coroutines. may keeps one global scheduler per process whose worker count
//! is fixed at its first use, so each measurement runs in a child process (the
//! `braid` CLI's hidden `peer-may` subcommand), like the Go peer: it prints
//! its measurement on stdout and the harness runs it once to warm up and then
//! once per measured run.
//!
//! ```text
//! braid peer-may WORKERS yield N          -> ns per switch (2 coroutines)
//! braid peer-may WORKERS spawn N BATCH    -> ns per spawn + join, BATCH live at a time
//! braid peer-may WORKERS pingpong N       -> ns per hand-off (mpsc channels)
//! braid peer-may WORKERS skynet LEAVES    -> ms for the whole tree
//! braid peer-may WORKERS ring TASKS HOPS  -> ns per hop
//! braid peer-may WORKERS latency WINDOW_MS -> every wake delay of the 1 ms sleeper, µs
//! ```

use may::coroutine::{self, JoinHandle};
use may::sync::mpsc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Spawns a coroutine. may's `spawn` is `unsafe` because a coroutine must not
/// use thread-local storage across a switch or block its worker thread in a
/// way the scheduler does not know; the workloads here only use may's own
/// primitives, atomics and plain computation.
fn go<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    // SAFETY: `f` touches no thread-local storage and blocks only through
    // may's own channels, sleep and yield (see above).
    unsafe { coroutine::spawn(f) }
}

/// Runs the workload `args` names; returns what to print, or a usage error.
pub fn main(args: &[String]) -> Result<String, String> {
    let num = |i: usize| -> Result<u64, String> {
        let text = args
            .get(i)
            .ok_or_else(|| format!("missing argument {i}: {}", usage()))?;
        text.parse()
            .map_err(|e| format!("bad argument {text:?}: {e} ({})", usage()))
    };
    let workers = num(0)? as usize;
    if workers == 0 {
        return Err("workers must be 1 or more".into());
    }
    may::config().set_workers(workers);
    let workload = args.get(1).map(String::as_str).unwrap_or("");
    let out = match workload {
        "yield" => yield_switch(num(2)?),
        "spawn" => spawn_join(num(2)?, num(3)?.max(1)),
        "pingpong" => ping_pong(num(2)?),
        "skynet" => skynet_run(num(2)?)?,
        "ring" => ring(num(2)? as usize, num(3)?),
        "latency" => latency(Duration::from_millis(num(2)?)),
        other => return Err(format!("unknown workload {other:?}: {}", usage())),
    };
    Ok(out)
}

fn usage() -> &'static str {
    "usage: braid peer-may WORKERS yield|spawn|pingpong|skynet|ring|latency ARGS"
}

fn per(elapsed: Duration, n: u64) -> String {
    format!("{:.3}", elapsed.as_nanos() as f64 / n as f64)
}

fn yield_switch(n: u64) -> String {
    let start = Instant::now();
    let a = go(move || (0..n).for_each(|_| coroutine::yield_now()));
    let b = go(move || (0..n).for_each(|_| coroutine::yield_now()));
    a.join().unwrap();
    b.join().unwrap();
    per(start.elapsed(), 2 * n)
}

/// Spawns `n` coroutines and joins them, `batch` at a time: may maps every
/// coroutine stack separately (a mapping plus a guard page), so more than
/// about 30 000 live coroutines exceed Linux's default `vm.max_map_count`.
fn spawn_join(n: u64, batch: u64) -> String {
    go(move || {
        let start = Instant::now();
        let mut sum = 0;
        for first in (0..n).step_by(batch as usize) {
            let handles: Vec<_> = (first..n.min(first + batch))
                .map(|i| go(move || i))
                .collect();
            sum += handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>();
        }
        std::hint::black_box(sum);
        per(start.elapsed(), n)
    })
    .join()
    .unwrap()
}

fn ping_pong(n: u64) -> String {
    go(move || {
        let (ping_tx, ping_rx) = mpsc::channel::<u64>();
        let (pong_tx, pong_rx) = mpsc::channel::<u64>();
        let echo = go(move || {
            for v in ping_rx.iter() {
                if pong_tx.send(v + 1).is_err() {
                    return;
                }
            }
        });
        let start = Instant::now();
        let mut v = 0;
        for _ in 0..n {
            ping_tx.send(v).unwrap();
            v = pong_rx.recv().unwrap();
        }
        let out = per(start.elapsed(), 2 * n);
        drop(ping_tx);
        echo.join().unwrap();
        out
    })
    .join()
    .unwrap()
}

const DIV: u64 = 10;

fn skynet(num: u64, size: u64) -> u64 {
    if size == 1 {
        return num;
    }
    let (tx, rx) = mpsc::channel();
    let child = size / DIV;
    for i in 0..DIV {
        let tx = tx.clone();
        go(move || {
            let _ = tx.send(skynet(num + i * child, child));
        });
    }
    drop(tx);
    rx.iter().sum()
}

fn skynet_run(leaves: u64) -> Result<String, String> {
    let start = Instant::now();
    let sum = go(move || skynet(0, leaves)).join().unwrap();
    if sum != leaves * (leaves - 1) / 2 {
        return Err(format!("skynet: wrong sum {sum}"));
    }
    Ok(format!("{:.3}", start.elapsed().as_secs_f64() * 1e3))
}

fn ring(tasks: usize, hops: u64) -> String {
    go(move || {
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..tasks).map(|_| mpsc::channel::<u64>()).unzip();
        let members: Vec<_> = rxs
            .into_iter()
            .enumerate()
            .map(|(i, rx)| {
                let next = txs[(i + 1) % tasks].clone();
                go(move || {
                    for t in rx.iter() {
                        if t == 0 {
                            let _ = next.send(0);
                            return;
                        }
                        if next.send(t - 1).is_err() {
                            return;
                        }
                    }
                })
            })
            .collect();
        let start = Instant::now();
        txs[0].send(hops).unwrap();
        drop(txs);
        for m in members {
            m.join().unwrap();
        }
        per(start.elapsed(), hops)
    })
    .join()
    .unwrap()
}

/// A hog on every worker that never yields, and a coroutine sleeping 1 ms in
/// a loop; the main thread keeps time and stops the hogs after the window.
fn latency(window: Duration) -> String {
    let stop = Arc::new(AtomicBool::new(false));
    let hogs: Vec<_> = (0..may::config().get_workers())
        .map(|_| {
            let stop = stop.clone();
            go(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            })
        })
        .collect();
    let s = stop.clone();
    let sleeper = go(move || {
        let end = Instant::now() + window;
        let mut delays = Vec::new();
        while Instant::now() < end && !s.load(Ordering::Relaxed) {
            let t = Instant::now();
            coroutine::sleep(Duration::from_millis(1));
            let late = t.elapsed().saturating_sub(Duration::from_millis(1));
            delays.push(late.as_secs_f64() * 1e6);
        }
        delays
    });
    std::thread::sleep(window);
    stop.store(true, Ordering::Relaxed);
    let mut delays = sleeper.join().unwrap();
    for h in hogs {
        h.join().unwrap();
    }
    if delays.is_empty() {
        // It never ran within the window: the whole window was its delay.
        delays.push(window.as_secs_f64() * 1e6);
    }
    delays
        .iter()
        .map(|d| format!("{d:.3}"))
        .collect::<Vec<_>>()
        .join("\n")
}
