//! Latency classes under a dispersive load: a request server on 2 cores
//! where 99.5 % of requests take 4 µs and 0.5 % take 10 ms, offered at 50 %,
//! 80 % and 90 % of capacity; the figures are the p50 / p99 / p999 latency
//! (hand-over to completion) of the short requests.
//!
//! A generator thread draws exponential inter-arrival times (open loop: a
//! late server does not slow the arrivals) and hands each request to the
//! server stamped with when it was due and when it was handed over; it runs
//! at real-time priority where the machine allows (root), so the server's
//! threads cannot delay arrivals. The figures count from the hand-over: the
//! generator is itself late now and then (a sleeping thread's wake-up on a
//! virtual CPU; p99 up to milliseconds here at 50 % load, when the CPUs
//! idle), which no server can help; a line per load gives that lateness and
//! the p99 counted from the due time. Each request runs as its own task. Long
//! requests compute in 100 µs steps with a yield between them (no runtime
//! here preempts code that never yields within 100 µs: this measures how
//! each scheduler orders the work it is given at those points).
//!
//! - braid, latency class: EEVDF; short requests spawned `Latency`, long
//!   ones `Batch`;
//! - braid, round robin: the default policy, no classes;
//! - tokio (2 workers), `yield_now` between steps;
//! - Go (`peers/go`, `GOMAXPROCS` 2), `runtime.Gosched` between steps; its
//!   generator is a goroutine locked to its own thread (Go code runs only
//!   on one of the 2 `P`s), so its lateness includes waiting for a `P`;
//! - a std thread pool (8 workers on the 2 CPUs; the kernel preempts).

use crate::figures::{sample_each, Row};
use crate::peers::Peer;
use crate::report::{Figure, Suite};
use braid::sched::{LatencyClass, PolicyKind};
use std::error::Error;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const RUNS: usize = 5;
const SHORT: Duration = Duration::from_micros(4);
const LONG: Duration = Duration::from_millis(10);
const STEP: Duration = Duration::from_micros(100);
/// One request in 200 is long.
const LONG_EVERY: u64 = 200;
const CORES: usize = 2;

/// What the generator hands the server: when it was due, when it was
/// handed over, and its kind.
#[derive(Clone, Copy)]
struct Request {
    due: Instant,
    sent: Instant,
    long: bool,
}

/// Short-request latencies of one run, in µs: from the hand-over and from
/// the due time.
type Latencies = Arc<Mutex<Vec<(f64, f64)>>>;

/// One run's figures, each sorted, in µs.
struct Run {
    /// Short requests, hand-over to completion.
    handed: Vec<f64>,
    /// Short requests, due time to completion.
    due: Vec<f64>,
    /// How late the generator handed each request over (the Go peer
    /// reports it for the short requests only).
    late: Vec<f64>,
}

pub(crate) fn run_all(suite: &mut Suite) -> Result<(), Box<dyn Error>> {
    if !suite.wants("dispersive_latency") {
        return Ok(());
    }
    let window = if suite.quick() {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(3)
    };
    let mean =
        (SHORT.as_secs_f64() * (LONG_EVERY - 1) as f64 + LONG.as_secs_f64()) / LONG_EVERY as f64;
    let capacity = CORES as f64 / mean;
    suite.say(&format!(
        "\nlatency classes under a dispersive load: 99.5 % of requests 4 µs, 0.5 % 10 ms, on {CORES} cores (capacity {capacity:.0} req/s), {window:?} per run"
    ));
    for load in [0.5, 0.8, 0.9] {
        let rate = capacity * load;
        let steal = crate::figures::Steal::start();
        let mut rows: Vec<(&'static str, Vec<Run>)> = Vec::new();
        for (name, kind) in [
            ("braid", Some(PolicyKind::Eevdf)),
            ("braid-round-robin", Some(PolicyKind::RoundRobin)),
            ("tokio", None),
            ("std-thread-pool", None),
        ] {
            let runs = sample_each(RUNS, || match (name, kind) {
                (_, Some(policy)) => braid_run(policy, rate, window),
                ("tokio", None) => tokio_run(rate, window),
                _ => threads_run(rate, window),
            })?;
            rows.push((name, runs));
        }
        let window_ms = window.as_millis().to_string();
        let rate_arg = format!("{rate:.0}");
        if let Some(runs) = Peer::Go.runs(&["dispersive", &rate_arg, &window_ms], CORES) {
            rows.push((Peer::Go.name(), runs.into_iter().map(peer_run).collect()));
        }
        for (metric, q) in [("p50", 0.5), ("p99", 0.99), ("p999", 0.999)] {
            let figure_rows: Vec<Row> = rows
                .iter()
                .map(|(name, runs)| {
                    Row::sorting(name, runs.iter().map(|r| quantile(&r.handed, q)).collect())
                })
                .collect();
            let title = format!(
                "{metric} latency of the 4 µs requests (hand-over to completion) at {:.0} % load ({rate:.0} req/s)",
                load * 100.0
            );
            suite.figure(
                &Figure {
                    workload: "dispersive_latency",
                    title: &title,
                    metric,
                    unit: "us",
                    cores: CORES,
                    target: (metric == "p99" && load == 0.8).then_some(100.0),
                    higher_is_better: false,
                },
                &figure_rows,
            );
        }
        let median_of = |runs: &[Run], pick: fn(&Run) -> &Vec<f64>, q: f64| {
            let mut v: Vec<f64> = runs.iter().map(|r| quantile(pick(r), q)).collect();
            v.sort_by(f64::total_cmp);
            crate::figures::median(&v)
        };
        if let Some(stolen) = steal.fraction() {
            suite.say(&format!(
                "  steal (CPU time the hypervisor took) during the {:.0} % runs: {:.1} %",
                load * 100.0,
                stolen * 100.0
            ));
        }
        for (name, runs) in &rows {
            suite.say(&format!(
                "  {name:<17} at {:.0} %: generator late p50 {:.0} / p99 {:.0} us; short p99 from the due time {:.0} us (medians of runs)",
                load * 100.0,
                median_of(runs, |r| &r.late, 0.5),
                median_of(runs, |r| &r.late, 0.99),
                median_of(runs, |r| &r.due, 0.99),
            ));
        }
    }
    Ok(())
}

/// A peer's run from what it printed: per short request, hand-over to
/// completion, due time to completion and the generator's lateness, in µs.
fn peer_run(numbers: Vec<f64>) -> Run {
    let column = |k: usize| {
        let mut v: Vec<f64> = numbers.iter().skip(k).step_by(3).copied().collect();
        v.sort_by(f64::total_cmp);
        v
    };
    Run {
        handed: column(0),
        due: column(1),
        late: column(2),
    }
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Runs the generator on this thread for `window`, handing each request to
/// `submit`; returns, when it has handed the last one, how late it handed
/// each over (µs, sorted).
///
/// The generator shares the 2 CPUs with the server, so it sleeps between
/// arrivals (with 1 µs timer slack) instead of spinning, and hands over all
/// requests due when it wakes, each stamped with its own due time.
fn generate(rate: f64, window: Duration, mut submit: impl FnMut(Request)) -> Vec<f64> {
    // SAFETY: PR_SET_TIMERSLACK takes a plain integer, for this thread only;
    // sched_setscheduler(0, ..) changes only the calling thread and reads
    // the live `param`.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1_000 as libc::c_ulong, 0, 0, 0);
        // Real-time priority where allowed, so the server's threads do not
        // delay the arrivals (it runs for microseconds at a time).
        let param = libc::sched_param { sched_priority: 1 };
        let _ = libc::sched_setscheduler(0, libc::SCHED_FIFO, &param);
    }
    let mut rng = braid_core::Rng::new(0xD15);
    let start = Instant::now();
    let end = start + window;
    let _normal = Normal;
    let mut next = start;
    let mut n = 0u64;
    let mut late = Vec::new();
    while next < end {
        let now = Instant::now();
        while next <= now && next < end {
            n += 1;
            let sent = Instant::now();
            late.push(sent.duration_since(next).as_secs_f64() * 1e6);
            submit(Request {
                due: next,
                sent,
                long: n % LONG_EVERY == 0,
            });
            // Exponential inter-arrival time.
            let u = (rng.below(1 << 30) as f64 + 1.0) / (1u64 << 30) as f64;
            next += Duration::from_secs_f64(-u.ln() / rate);
        }
        if next < end {
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
        }
    }
    late.sort_by(f64::total_cmp);
    late
}

/// Puts the calling thread back to the normal policy when dropped.
struct Normal;

impl Drop for Normal {
    fn drop(&mut self) {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: as in `generate`.
        unsafe { libc::sched_setscheduler(0, libc::SCHED_OTHER, &param) };
    }
}

fn compute(d: Duration) {
    let t = Instant::now();
    while t.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// A long request's steps: `LONG` in `STEP`s.
fn long_steps() -> impl Iterator<Item = Duration> {
    (0..LONG.as_nanos() / STEP.as_nanos()).map(|_| STEP)
}

/// A request's work, yielding with `yield_now` between the long ones' steps.
fn serve(request: Request, latencies: &Latencies, mut yield_now: impl FnMut()) {
    if request.long {
        for step in long_steps() {
            compute(step);
            yield_now();
        }
    } else {
        compute(SHORT);
        let us = |since: Instant| since.elapsed().as_secs_f64() * 1e6;
        let pair = (us(request.sent), us(request.due));
        latencies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(pair);
    }
}

/// The shared record of latencies, with room for all a run can give, so
/// no push reallocates (and copies hundreds of KiB) under its lock.
fn room_for(rate: f64, window: Duration) -> Latencies {
    let expected = rate * window.as_secs_f64();
    Arc::new(Mutex::new(Vec::with_capacity(
        (expected * 1.5) as usize + 1024,
    )))
}

fn finish(latencies: Latencies, late: Vec<f64>) -> Run {
    let pairs = std::mem::take(&mut *latencies.lock().unwrap_or_else(|e| e.into_inner()));
    let sorted = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v
    };
    Run {
        handed: sorted(pairs.iter().map(|p| p.0).collect()),
        due: sorted(pairs.iter().map(|p| p.1).collect()),
        late,
    }
}

fn braid_run(policy: PolicyKind, rate: f64, window: Duration) -> Result<Run, Box<dyn Error>> {
    let rt = braid::Runtime::builder()
        .cores(CORES)
        .policy(policy)
        .build()?;
    let latencies = room_for(rate, window);
    let (tx, rx) = braid::sync::channel::unbounded::<Request>();
    let lat = latencies.clone();
    let classes = policy == PolicyKind::Eevdf;
    let server = rt.spawn(move || {
        // The dispatcher is a service strand: with classes it is a
        // latency-class one too, or it gets only its weight's share of a
        // core full of long requests and the arrivals queue behind it.
        let dispatcher = if classes {
            LatencyClass::Latency
        } else {
            LatencyClass::Normal
        };
        braid::Builder::new()
            .latency_class(dispatcher)
            .spawn(move || dispatch(rx, lat, classes))
            .expect("spawn the dispatcher")
            .join()
            .expect("the dispatcher");
    })?;
    let late = generate(rate, window, |r| {
        let _ = tx.send(r);
    });
    drop(tx);
    server.join().map_err(|e| e.to_string())?;
    // The dispatcher dropped the requests' handles: a request that panicked
    // shows only here.
    let panics = rt.stats().panics;
    if panics > 0 {
        return Err(format!("{panics} request strands panicked").into());
    }
    Ok(finish(latencies, late))
}

/// braid's server: a strand per request, of the request's class. Each
/// handle is dropped at once (the strand runs on, detached) and the
/// dispatcher waits for its group at the end: keeping the handles and
/// pruning finished ones every 4 096 requests (as this did before) took
/// 0.7–1.7 ms per pruning inside the dispatcher, and EEVDF then made it
/// wait out that much run time as debt — p99 at 80 % load ~1 ms instead of
/// ~0.25 ms (tokio's server keeps every handle and never prunes).
fn dispatch(rx: braid::sync::channel::Receiver<Request>, lat: Latencies, classes: bool) {
    for request in rx.iter() {
        let lat = lat.clone();
        let class = match (classes, request.long) {
            (false, _) => LatencyClass::Normal,
            (true, true) => LatencyClass::Batch,
            (true, false) => LatencyClass::Latency,
        };
        drop(
            braid::Builder::new()
                .latency_class(class)
                .spawn(move || serve(request, &lat, braid::yield_now))
                .expect("spawn a request"),
        );
    }
    braid::current()
        .expect("the dispatcher is a strand")
        .group()
        .wait()
        .expect("the dispatcher is not cancelled");
}

fn tokio_run(rate: f64, window: Duration) -> Result<Run, Box<dyn Error>> {
    let rt = crate::rt::tokio(CORES)?;
    let latencies = room_for(rate, window);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Request>();
    let lat = latencies.clone();
    let server = rt.spawn(async move {
        let mut running = Vec::new();
        while let Some(request) = rx.recv().await {
            let lat = lat.clone();
            running.push(tokio::spawn(async move {
                if request.long {
                    for step in long_steps() {
                        compute(step);
                        tokio::task::yield_now().await;
                    }
                } else {
                    serve(request, &lat, || {});
                }
            }));
        }
        for h in running {
            let _ = h.await;
        }
    });
    let late = generate(rate, window, |r| {
        let _ = tx.send(r);
    });
    drop(tx);
    rt.block_on(server)?;
    Ok(finish(latencies, late))
}

fn threads_run(rate: f64, window: Duration) -> Result<Run, Box<dyn Error>> {
    let latencies = room_for(rate, window);
    let (tx, rx) = std::sync::mpsc::channel::<Request>();
    let rx = Arc::new(Mutex::new(rx));
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (rx, lat) = (rx.clone(), latencies.clone());
            std::thread::spawn(move || loop {
                let next = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                match next {
                    Ok(request) => serve(request, &lat, || {}),
                    Err(_) => return,
                }
            })
        })
        .collect();
    let late = generate(rate, window, |r| {
        let _ = tx.send(r);
    });
    drop(tx);
    for w in workers {
        w.join().map_err(|_| "a pool thread panicked")?;
    }
    Ok(finish(latencies, late))
}
