//! Events and the sync toolkit: wait/signal round trips, channel ping-pong,
//! cross-core signal latency, contended mutex throughput — each against tokio
//! (and std threads or parking_lot where they apply) in the same run.

use crate::figures::{sample, Row};
use crate::peers::Peer;
use crate::report::{Figure, Suite};
use crate::rt;
use std::error::Error;
use std::sync::Arc;
use std::time::Instant;

const RUNS: usize = 5;

pub(crate) fn run_all(suite: &mut Suite) -> Result<(), Box<dyn Error>> {
    suite.say(&format!(
        "\nevents and sync (medians of {RUNS} runs after a warm-up; ratios from this run)"
    ));
    event_round_trip(suite, 1)?;
    event_round_trip(suite, 2)?;
    channel_ping_pong(suite)?;
    contended_mutex(suite)?;
    Ok(())
}

/// Two tasks signal each other in turn through two events; one sample is the
/// time per round trip (two signals, two waits, two switches). With `cores` 2
/// the tasks sit on different cores.
fn event_round_trip(suite: &mut Suite, cores: usize) -> Result<(), Box<dyn Error>> {
    let workload = if cores == 1 {
        "event_round_trip"
    } else {
        "event_cross_core"
    };
    if !suite.wants(workload) {
        return Ok(());
    }
    let n: u64 = match (suite.quick(), cores) {
        (true, 1) => 100_000,
        (true, _) => 20_000,
        (false, 1) => 1_000_000,
        (false, _) => 200_000,
    };
    let rt = rt::braid(cores)?;
    let braid = sample(RUNS, || {
        rt.block_on(move || {
            let ping = braid::event::local("ping").expect("valid name");
            let pong = braid::event::local("pong").expect("valid name");
            let (p, q) = (ping.clone(), pong.clone());
            let echo = braid::Builder::new()
                .core(cores - 1)
                .spawn(move || {
                    for _ in 0..n {
                        p.wait().unwrap();
                        q.signal().unwrap();
                    }
                })
                .unwrap();
            let start = Instant::now();
            let driver = braid::Builder::new()
                .core(0)
                .spawn(move || {
                    for _ in 0..n {
                        ping.signal().unwrap();
                        pong.wait().unwrap();
                    }
                })
                .unwrap();
            driver.join().unwrap();
            let elapsed = start.elapsed();
            echo.join().unwrap();
            elapsed.as_nanos() as f64 / n as f64
        })
    });
    let trt = rt::tokio(cores)?;
    let tokio = sample(RUNS, || {
        trt.block_on(async move {
            let ping = Arc::new(tokio::sync::Notify::new());
            let pong = Arc::new(tokio::sync::Notify::new());
            let (p, q) = (ping.clone(), pong.clone());
            let echo = tokio::spawn(async move {
                for _ in 0..n {
                    p.notified().await;
                    q.notify_one();
                }
            });
            let start = Instant::now();
            for _ in 0..n {
                ping.notify_one();
                pong.notified().await;
            }
            let elapsed = start.elapsed();
            echo.await.unwrap();
            elapsed.as_nanos() as f64 / n as f64
        })
    });
    let title = if cores == 1 {
        "event wait/signal round trip, same core (tokio: Notify, current-thread)"
    } else {
        "event signal round trip across cores (tokio: Notify, 2 workers)"
    };
    suite.figure(
        &Figure {
            workload,
            title,
            metric: "time per round trip",
            unit: "ns",
            cores,
            target: (cores == 1).then_some(20.0),
            higher_is_better: false,
        },
        &[Row::new("braid", braid), Row::new("tokio", tokio)],
    );
    Ok(())
}

/// A value bounces between two tasks on one core through two channels; one
/// sample is the time per hand-off (half a round trip).
fn channel_ping_pong(suite: &mut Suite) -> Result<(), Box<dyn Error>> {
    if !suite.wants("channel_ping_pong") {
        return Ok(());
    }
    let n: u64 = if suite.quick() { 100_000 } else { 1_000_000 };
    let rt = rt::braid(1)?;
    let braid = sample(RUNS, || {
        rt.block_on(move || {
            let (to_echo, from_driver) = braid::sync::channel::bounded::<u64>(1);
            let (to_driver, from_echo) = braid::sync::channel::bounded::<u64>(1);
            let echo = braid::spawn(move || {
                for v in from_driver.iter() {
                    to_driver.send(v + 1).unwrap();
                }
            });
            let start = Instant::now();
            let mut v = 0;
            for _ in 0..n {
                to_echo.send(v).unwrap();
                v = from_echo.recv().unwrap();
            }
            let elapsed = start.elapsed();
            drop(to_echo);
            echo.join().unwrap();
            assert_eq!(v, n);
            elapsed.as_nanos() as f64 / (2 * n) as f64
        })
    });
    let trt = rt::tokio(1)?;
    let tokio = sample(RUNS, || {
        trt.block_on(async move {
            let (to_echo, mut from_driver) = tokio::sync::mpsc::channel::<u64>(1);
            let (to_driver, mut from_echo) = tokio::sync::mpsc::channel::<u64>(1);
            let echo = tokio::spawn(async move {
                while let Some(v) = from_driver.recv().await {
                    to_driver.send(v + 1).await.unwrap();
                }
            });
            let start = Instant::now();
            let mut v = 0;
            for _ in 0..n {
                to_echo.send(v).await.unwrap();
                v = from_echo.recv().await.unwrap();
            }
            let elapsed = start.elapsed();
            drop(to_echo);
            echo.await.unwrap();
            elapsed.as_nanos() as f64 / (2 * n) as f64
        })
    });
    let threads_n = n / 10;
    let std_threads = sample(RUNS, || {
        let (to_echo, from_driver) = std::sync::mpsc::sync_channel::<u64>(1);
        let (to_driver, from_echo) = std::sync::mpsc::sync_channel::<u64>(1);
        let echo = std::thread::spawn(move || {
            for v in from_driver.iter() {
                to_driver.send(v + 1).unwrap();
            }
        });
        let start = Instant::now();
        let mut v = 0;
        for _ in 0..threads_n {
            to_echo.send(v).unwrap();
            v = from_echo.recv().unwrap();
        }
        let elapsed = start.elapsed();
        drop(to_echo);
        echo.join().unwrap();
        elapsed.as_nanos() as f64 / (2 * threads_n) as f64
    });
    suite.figure(
        &Figure {
            workload: "channel_ping_pong",
            title: "channel ping-pong, one core (tokio: mpsc current-thread; std: sync_channel, 2 threads; go: unbuffered channels, GOMAXPROCS=1)",
            metric: "time per hand-off",
            unit: "ns",
            cores: 1,
            target: Some(25.0),
            higher_is_better: false,
        },
        &[
            Row::new("braid", braid),
            Row::new("tokio", tokio),
            Row::new("std-thread", std_threads),
        ]
        .into_iter()
        .chain(crate::peers::rows(
            &[Peer::Go, Peer::May],
            &["pingpong", &n.to_string()],
            1,
        ))
        .collect::<Vec<_>>(),
    );
    Ok(())
}

/// Four workers on two cores increment one counter under a mutex; one sample
/// is the time per lock/unlock over all workers.
fn contended_mutex(suite: &mut Suite) -> Result<(), Box<dyn Error>> {
    if !suite.wants("contended_mutex") {
        return Ok(());
    }
    const WORKERS: u64 = 4;
    let per: u64 = if suite.quick() { 50_000 } else { 500_000 };
    let total = (WORKERS * per) as f64;
    let rt = rt::braid(2)?;
    let braid = sample(RUNS, || {
        rt.block_on(move || {
            let m = Arc::new(braid::sync::Mutex::new(0u64));
            let start = Instant::now();
            let hs: Vec<_> = (0..WORKERS)
                .map(|i| {
                    let m = m.clone();
                    braid::Builder::new()
                        .core((i % 2) as usize)
                        .spawn(move || {
                            for _ in 0..per {
                                *m.lock().unwrap() += 1;
                            }
                        })
                        .unwrap()
                })
                .collect();
            hs.into_iter().for_each(|h| h.join().unwrap());
            let elapsed = start.elapsed();
            assert_eq!(*m.lock().unwrap(), WORKERS * per);
            elapsed.as_nanos() as f64 / total
        })
    });
    let std_mutex = sample(RUNS, || {
        threads_increment(per, WORKERS, Arc::new(std::sync::Mutex::new(0u64)), |m| {
            *m.lock().unwrap() += 1
        }) / total
    });
    let parking = sample(RUNS, || {
        threads_increment(per, WORKERS, Arc::new(parking_lot::Mutex::new(0u64)), |m| {
            *m.lock() += 1
        }) / total
    });
    suite.figure(
        &Figure {
            workload: "contended_mutex",
            title: "contended mutex, 4 workers on 2 cores (std and parking_lot: 4 threads)",
            metric: "time per lock+unlock",
            unit: "ns",
            cores: 2,
            target: None,
            higher_is_better: false,
        },
        &[
            Row::new("braid", braid),
            Row::new("std-mutex", std_mutex),
            Row::new("parking_lot", parking),
        ],
    );
    Ok(())
}

/// Runs `workers` threads calling `op` `per` times each; returns elapsed ns.
fn threads_increment<M: Send + Sync + 'static>(
    per: u64,
    workers: u64,
    m: Arc<M>,
    op: fn(&M),
) -> f64 {
    let start = Instant::now();
    let hs: Vec<_> = (0..workers)
        .map(|_| {
            let m = m.clone();
            std::thread::spawn(move || (0..per).for_each(|_| op(&m)))
        })
        .collect();
    hs.into_iter().for_each(|h| h.join().unwrap());
    start.elapsed().as_nanos() as f64
}
