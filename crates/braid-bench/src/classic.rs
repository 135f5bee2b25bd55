//! Classic task benchmarks on every core: skynet (a tree of a million tasks
//! summing through channels) and ring (a token passed around a ring of tasks).

use crate::figures::{sample, Row};
use crate::peers::{self, Peer};
use crate::report::{Figure, Suite};
use crate::rt;
use std::error::Error;
use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

const RUNS: usize = 5;
/// Children per skynet node.
const DIV: u64 = 10;

pub(crate) fn run_all(suite: &mut Suite) -> Result<(), Box<dyn Error>> {
    suite.say(&format!(
        "\nclassic workloads on {} cores (medians of {RUNS} runs after a warm-up)",
        rt::cpus()
    ));
    skynet(suite)?;
    ring(suite)?;
    Ok(())
}

/// Skynet: node `num` of `size` leaves spawns `DIV` children, each the root of
/// `size / DIV` leaves, and sums what they send back on a channel; a leaf
/// returns its number. The root's answer is the sum 0 + 1 + … + (size - 1).
fn skynet(suite: &mut Suite) -> Result<(), Box<dyn Error>> {
    if !suite.wants("skynet") {
        return Ok(());
    }
    let leaves: u64 = if suite.quick() { 100_000 } else { 1_000_000 };
    let expect = leaves * (leaves - 1) / 2;
    let cores = rt::cpus();
    let brt = rt::braid(cores)?;
    let braid = sample(RUNS, || {
        brt.block_on(move || {
            let start = Instant::now();
            assert_eq!(skynet_braid(0, leaves), expect);
            start.elapsed().as_secs_f64() * 1e3
        })
    });
    let trt = rt::tokio(cores)?;
    let tokio = sample(RUNS, || {
        trt.block_on(async move {
            let start = Instant::now();
            assert_eq!(skynet_tokio(0, leaves).await, expect);
            start.elapsed().as_secs_f64() * 1e3
        })
    });
    let pool = rayon::ThreadPoolBuilder::new().num_threads(cores).build()?;
    let rayon = sample(RUNS, || {
        pool.install(|| {
            let start = Instant::now();
            assert_eq!(skynet_rayon(0, leaves), expect);
            start.elapsed().as_secs_f64() * 1e3
        })
    });
    let title = format!(
        "skynet, {leaves} leaves ({} tasks), children sum through channels (rayon: fork-join)",
        tasks(leaves)
    );
    suite.figure(
        &Figure {
            workload: "skynet",
            title: &title,
            metric: "time for the whole tree",
            unit: "ms",
            cores,
            target: None,
            higher_is_better: false,
        },
        &[
            Row::new("braid", braid),
            Row::new("tokio", tokio),
            Row::new("rayon", rayon),
        ]
        .into_iter()
        .chain(peers::rows(
            &[Peer::Go, Peer::Erlang, Peer::May],
            &["skynet", &leaves.to_string()],
            cores,
        ))
        .collect::<Vec<_>>(),
    );
    Ok(())
}

/// Nodes in a skynet tree with `leaves` leaves.
fn tasks(leaves: u64) -> u64 {
    let mut total = 0;
    let mut level = leaves;
    while level >= 1 {
        total += level;
        if level == 1 {
            break;
        }
        level /= DIV;
    }
    total
}

fn skynet_braid(num: u64, size: u64) -> u64 {
    if size == 1 {
        return num;
    }
    let (tx, rx) = braid::sync::channel::bounded(DIV as usize);
    let child = size / DIV;
    for i in 0..DIV {
        let tx = tx.clone();
        braid::Builder::new()
            .stack_size(16 * 1024)
            .spawn(move || {
                let _ = tx.send(skynet_braid(num + i * child, child));
            })
            .expect("spawn");
    }
    drop(tx);
    rx.iter().sum()
}

fn skynet_tokio(num: u64, size: u64) -> Pin<Box<dyn Future<Output = u64> + Send>> {
    Box::pin(async move {
        if size == 1 {
            return num;
        }
        let (tx, mut rx) = tokio::sync::mpsc::channel(DIV as usize);
        let child = size / DIV;
        for i in 0..DIV {
            let tx = tx.clone();
            tokio::spawn(async move {
                let _ = tx.send(skynet_tokio(num + i * child, child).await).await;
            });
        }
        drop(tx);
        let mut sum = 0;
        while let Some(v) = rx.recv().await {
            sum += v;
        }
        sum
    })
}

fn skynet_rayon(num: u64, size: u64) -> u64 {
    use rayon::prelude::*;
    if size == 1 {
        return num;
    }
    let child = size / DIV;
    (0..DIV)
        .into_par_iter()
        .map(|i| skynet_rayon(num + i * child, child))
        .sum()
}

/// Ring: `n` tasks in a ring of channels pass a token `hops` times in all.
fn ring(suite: &mut Suite) -> Result<(), Box<dyn Error>> {
    if !suite.wants("ring") {
        return Ok(());
    }
    let n: usize = if suite.quick() { 1_000 } else { 10_000 };
    let hops: u64 = if suite.quick() { 200_000 } else { 2_000_000 };
    let cores = rt::cpus();
    let brt = rt::braid(cores)?;
    let braid = sample(RUNS, || {
        brt.block_on(move || {
            let (txs, rxs): (Vec<_>, Vec<_>) = (0..n)
                .map(|_| braid::sync::channel::bounded::<u64>(1))
                .unzip();
            let mut members = Vec::with_capacity(n);
            for (i, rx) in rxs.into_iter().enumerate() {
                let next = txs[(i + 1) % n].clone();
                members.push(
                    braid::Builder::new()
                        .stack_size(16 * 1024)
                        .spawn(move || ring_member(rx.iter(), |t| next.send(t).is_ok()))
                        .expect("spawn"),
                );
            }
            let start = Instant::now();
            txs[0].send(hops).unwrap();
            drop(txs);
            for m in members {
                m.join().unwrap();
            }
            start.elapsed().as_nanos() as f64 / hops as f64
        })
    });
    let trt = rt::tokio(cores)?;
    let tokio = sample(RUNS, || {
        trt.block_on(async move {
            let (txs, rxs): (Vec<_>, Vec<_>) =
                (0..n).map(|_| tokio::sync::mpsc::channel::<u64>(1)).unzip();
            let mut members = Vec::with_capacity(n);
            for (i, mut rx) in rxs.into_iter().enumerate() {
                let next = txs[(i + 1) % n].clone();
                members.push(tokio::spawn(async move {
                    while let Some(t) = rx.recv().await {
                        if t == 0 {
                            let _ = next.send(0).await;
                            return;
                        }
                        if next.send(t - 1).await.is_err() {
                            return;
                        }
                    }
                }));
            }
            let start = Instant::now();
            txs[0].send(hops).await.unwrap();
            drop(txs);
            for m in members {
                m.await.unwrap();
            }
            start.elapsed().as_nanos() as f64 / hops as f64
        })
    });
    let threads = n.min(1_000);
    let thread_hops = hops / 10;
    let std_threads = sample(RUNS, || {
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..threads)
            .map(|_| std::sync::mpsc::sync_channel::<u64>(1))
            .unzip();
        let mut members = Vec::with_capacity(threads);
        for (i, rx) in rxs.into_iter().enumerate() {
            let next = txs[(i + 1) % threads].clone();
            members.push(std::thread::spawn(move || {
                ring_member(rx.iter(), |t| next.send(t).is_ok())
            }));
        }
        let start = Instant::now();
        txs[0].send(thread_hops).unwrap();
        drop(txs);
        for m in members {
            m.join().unwrap();
        }
        start.elapsed().as_nanos() as f64 / thread_hops as f64
    });
    let title = format!(
        "ring of {n} tasks passing a token {hops} hops (std: {threads} threads, {thread_hops} hops)"
    );
    suite.figure(
        &Figure {
            workload: "ring",
            title: &title,
            metric: "time per hop",
            unit: "ns",
            cores,
            target: None,
            higher_is_better: false,
        },
        &[
            Row::new("braid", braid),
            Row::new("tokio", tokio),
            Row::new("std-thread", std_threads),
        ]
        .into_iter()
        .chain(peers::rows(
            &[Peer::Go, Peer::Erlang, Peer::May],
            &["ring", &n.to_string(), &hops.to_string()],
            cores,
        ))
        .collect::<Vec<_>>(),
    );
    Ok(())
}

/// One member of a ring: passes each token on, one hop less; a token of 0
/// ends the ring (passed on once so the next member ends too).
fn ring_member(tokens: impl Iterator<Item = u64>, mut pass: impl FnMut(u64) -> bool) {
    for t in tokens {
        if t == 0 {
            pass(0);
            return;
        }
        if !pass(t - 1) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skynet_tree_size() {
        assert_eq!(tasks(1_000_000), 1_111_111);
        assert_eq!(tasks(100), 111);
        assert_eq!(tasks(1), 1);
    }

    #[test]
    fn skynet_sums_on_every_runtime() {
        let expect = 1000 * 999 / 2;
        let brt = rt::braid(2).unwrap();
        assert_eq!(brt.block_on(|| skynet_braid(0, 1000)), expect);
        let trt = rt::tokio(2).unwrap();
        assert_eq!(trt.block_on(skynet_tokio(0, 1000)), expect);
        assert_eq!(skynet_rayon(0, 1000), expect);
    }
}
