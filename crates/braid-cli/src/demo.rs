//! `braid demo`: each part of the runtime, shown working.

use braid::{Runtime, StrandState};
use std::error::Error;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) fn run(cores: Option<usize>, strands: usize) -> Result<(), Box<dyn Error>> {
    // Panics are part of the tour: report them in one line instead of a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let strand = braid::current().map(|s| s.name().unwrap_or("unnamed").to_owned());
        println!(
            "   [panic hook] strand {:?}: {info}",
            strand.unwrap_or_default()
        );
    }));
    let mut builder = Runtime::builder();
    if let Some(cores) = cores {
        builder = builder.cores(cores);
    }
    let rt = builder.build()?;
    println!(
        "braid demo: {} cores, one pinned carrier thread each\n",
        rt.cores()
    );
    million(&rt, strands);
    contained_panic(&rt);
    hog(&rt);
    weighted_shares(rt.cores())?;
    budgeted_hog()?;
    leased_core(rt.cores())?;
    events_and_channels(&rt);
    stats(&rt);
    Ok(())
}

fn million(rt: &Runtime, strands: usize) {
    println!("== {strands} strands: spawn, park all at once, wake, join");
    let start = Instant::now();
    let (sum, spawn_time) = rt.block_on(move || {
        let release = Arc::new(AtomicBool::new(false));
        let handles: Vec<_> = (0..strands as u64)
            .map(|i| {
                let release = release.clone();
                braid::Builder::new()
                    .stack_size(16 * 1024)
                    .spawn(move || {
                        while !release.load(Ordering::Acquire) {
                            braid::park();
                        }
                        i
                    })
                    .expect("spawn")
            })
            .collect();
        let spawn_time = start.elapsed();
        // Let every strand run once and park.
        while handles
            .iter()
            .any(|h| h.strand().state() == StrandState::Ready)
        {
            braid::sleep(Duration::from_millis(10)).unwrap();
        }
        let parked = handles
            .iter()
            .filter(|h| h.strand().state() == StrandState::Blocked)
            .count();
        println!(
            "   {parked} strands parked at once after {:.2?}",
            start.elapsed()
        );
        release.store(true, Ordering::Release);
        for h in &handles {
            h.strand().unpark();
        }
        let sum: u64 = handles
            .into_iter()
            .map(|h| h.join().expect("no panic"))
            .sum();
        (sum, spawn_time)
    });
    let expected = (strands as u64) * (strands as u64).saturating_sub(1) / 2;
    println!(
        "   spawned in {spawn_time:.2?} ({:.0} ns per strand), all joined in {:.2?}; sum {} ({})\n",
        spawn_time.as_nanos() as f64 / strands.max(1) as f64,
        start.elapsed(),
        sum,
        if sum == expected { "correct" } else { "WRONG" }
    );
}

fn contained_panic(rt: &Runtime) {
    println!("== a panic ends its own subtree, nothing else");
    rt.block_on(|| {
        let failing = braid::Builder::new()
            .name("failing-parent")
            .spawn(|| {
                for i in 0..3 {
                    drop(braid::Builder::new().name(format!("child-{i}")).spawn(|| {
                        // Sleeps far longer than the demo: only cancellation ends it.
                        let outcome = braid::sleep(Duration::from_secs(3600));
                        println!(
                            "   {} woke: {outcome:?}",
                            braid::current().unwrap().name().unwrap()
                        );
                    }));
                }
                braid::sleep(Duration::from_millis(20)).unwrap();
                panic!("something went wrong in the parent");
            })
            .expect("spawn");
        let group = failing.group();
        let healthy = braid::spawn(|| {
            braid::sleep(Duration::from_millis(50)).unwrap();
            "the unrelated strand finished normally"
        });
        match failing.join() {
            Err(err) => println!("   joiner got: {err}"),
            Ok(()) => println!("   unexpected: the parent did not fail"),
        }
        group.wait().unwrap();
        println!("   the failed subtree has {} live strands", group.live());
        println!("   {}\n", healthy.join().unwrap());
    });
}

fn hog(rt: &Runtime) {
    println!("== strands that never yield do not starve their neighbours");
    let cores = rt.cores();
    let stop = Arc::new(AtomicBool::new(false));
    let before: u64 = rt.stats().cores.iter().map(|c| c.handoffs).sum();
    let s = stop.clone();
    let delays = rt.block_on(move || {
        let hogs: Vec<_> = (0..cores)
            .map(|core| {
                let s = s.clone();
                braid::Builder::new()
                    .core(core)
                    .name(format!("hog-{core}"))
                    .spawn(move || {
                        while !s.load(Ordering::Relaxed) {
                            std::hint::spin_loop();
                        }
                    })
                    .expect("spawn")
            })
            .collect();
        // Give the hogs time to occupy every core (this strand's own core too:
        // it comes back only because the monitor moves the queue).
        let slept = Instant::now();
        braid::sleep(Duration::from_millis(1)).unwrap();
        println!(
            "   a 1 ms sleep behind a hog on this core ended after {:.2?}",
            slept.elapsed()
        );
        let queued = Instant::now();
        let neighbours: Vec<_> = (0..cores * 2)
            .map(|core| {
                braid::Builder::new()
                    .core(core % cores)
                    .spawn(move || queued.elapsed())
                    .expect("spawn")
            })
            .collect();
        let delays: Vec<Duration> = neighbours.into_iter().map(|h| h.join().unwrap()).collect();
        s.store(true, Ordering::Relaxed);
        for h in hogs {
            h.join().unwrap();
        }
        delays
    });
    drop(stop);
    let after: u64 = rt.stats().cores.iter().map(|c| c.handoffs).sum();
    let worst = delays.iter().max().copied().unwrap_or_default();
    println!(
        "   {} hogs spun on {cores} cores; {} neighbours queued behind them all ran, the last after {worst:.2?}",
        cores,
        delays.len()
    );
    println!(
        "   core queues handed to replacement carrier threads: {}\n",
        after - before
    );
}

/// Three share groups of CPU-bound strands, weights 1 : 2 : 4, holding 3, 1
/// and 2 strands per core: round robin ignores weights (the groups get what
/// their strands' places in the queues give them); under EEVDF with weight balancing between
/// the cores each group gets its weighted share, however many strands it
/// has. Each group's CPU is counted by a tally.
fn weighted_shares(cores: usize) -> Result<(), Box<dyn Error>> {
    use braid::sched::{BalancerKind, PolicyKind};
    println!(
        "== three share groups of weights 1 : 2 : 4 ({}, {} and {} strands) sharing {cores} cores",
        3 * cores,
        cores,
        2 * cores
    );
    for (policy, balancer, run) in [
        (PolicyKind::RoundRobin, BalancerKind::StealHalf, 300),
        (PolicyKind::Eevdf, BalancerKind::Weighted, 800),
    ] {
        let rt = Runtime::builder()
            .cores(cores)
            .policy(policy)
            .balancer(balancer)
            .build()?;
        let stop = Arc::new(AtomicBool::new(false));
        let tallies: Arc<[braid::Tally; 3]> = Arc::new(Default::default());
        let (s, t) = (stop.clone(), tallies.clone());
        let root = rt.spawn(move || {
            let groups: Vec<_> = [3 * cores, cores, 2 * cores]
                .into_iter()
                .enumerate()
                .map(|(g, members)| {
                    let s = s.clone();
                    braid::Builder::new()
                        .group_weight(1024 << g)
                        .tally(&t[g])
                        .spawn(move || {
                            let strands: Vec<_> = (0..members)
                                .map(|_| {
                                    let s = s.clone();
                                    braid::spawn(move || {
                                        while !s.load(Ordering::Relaxed) {
                                            let start = Instant::now();
                                            while start.elapsed() < Duration::from_micros(500) {
                                                std::hint::spin_loop();
                                            }
                                            braid::yield_now();
                                        }
                                    })
                                })
                                .collect();
                            strands.into_iter().for_each(|h| h.join().unwrap());
                        })
                        .expect("spawn")
                })
                .collect();
            for group in groups {
                let members = group.group();
                group.join().unwrap();
                members.wait().unwrap();
            }
        })?;
        std::thread::sleep(Duration::from_millis(run));
        stop.store(true, Ordering::Relaxed);
        root.join().map_err(|e| e.to_string())?;
        let cpu = [0, 1, 2].map(|g| tallies[g].stats().total.runtime_ns);
        let total = cpu.iter().sum::<u64>().max(1) as f64;
        let share = cpu.map(|c| 100.0 * c as f64 / total);
        println!(
            "   {policy} + {balancer}: the groups got {:.1} % : {:.1} % : {:.1} % of the CPU (weighted shares: 14.3 : 28.6 : 57.1; round robin ignores weights)",
            share[0], share[1], share[2]
        );
    }
    println!();
    Ok(())
}

/// A strand that never yields, bound to a CPU budget of 2 ms per 10 ms, beside
/// a neighbour on the same core: the budget holds it to 20 % of the CPU while
/// the neighbour keeps running.
fn budgeted_hog() -> Result<(), Box<dyn Error>> {
    use braid::sched::SchedContext;
    println!("== a strand that never yields, held to a budget of 2 ms per 10 ms");
    let rt = Runtime::builder().cores(1).build()?;
    let authority = rt
        .take_authority()
        .ok_or("the authority was already taken")?;
    let ctx = authority.mint(&SchedContext::new(
        Duration::from_millis(2),
        Duration::from_millis(10),
    ))?;
    let bound = ctx.clone();
    let run = Duration::from_millis(500);
    let (wall, rounds) = rt.block_on(move || {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let started = Instant::now();
        let hog = braid::Builder::new()
            .name("budgeted-hog")
            .context(&bound)
            .spawn(move || {
                // No runtime call at all until told to stop.
                while !s.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            })
            .expect("spawn");
        let s = stop.clone();
        let neighbour = braid::spawn(move || {
            let mut rounds = 0u32;
            while !s.load(Ordering::Relaxed) {
                braid::sleep(Duration::from_millis(1)).unwrap();
                rounds += 1;
            }
            rounds
        });
        braid::sleep(run).unwrap();
        stop.store(true, Ordering::Relaxed);
        hog.join().unwrap();
        (started.elapsed(), neighbour.join().unwrap())
    });
    let stats = ctx.stats()?;
    // A budget per period begun: the first one is full from the start.
    let begun = wall.as_nanos().div_ceil(stats.period.as_nanos()) as u32;
    println!(
        "   in {wall:.0?} it was given {:.1?} of CPU ({:.1} %; {begun} periods begun allow {:.0?}), \
         its carrier held {} times until a refill",
        stats.used,
        100.0 * stats.used.as_secs_f64() / wall.as_secs_f64(),
        stats.budget * begun,
        stats.holds
    );
    println!("   meanwhile a 1 ms sleeper on the same core woke {rounds} times\n");
    Ok(())
}

/// A group leases the last core: the other strands stay off it while the
/// group runs, and the lease ends with the group.
fn leased_core(cores: usize) -> Result<(), Box<dyn Error>> {
    use braid::sched::LeaseStatus;
    if cores < 2 {
        println!("== an exclusive-core lease needs 2 cores; skipped\n");
        return Ok(());
    }
    let last = cores - 1;
    println!("== a group leases core {last}");
    let rt = Runtime::builder().cores(cores).lease_pool([last]).build()?;
    let lease = rt
        .take_authority()
        .ok_or("the authority was already taken")?
        .lease(None)?;
    let l = lease.clone();
    let (group_cores, other_cores) = rt.block_on(move || {
        let seen = |n: usize| {
            let mut cores = std::collections::BTreeSet::new();
            for _ in 0..n {
                cores.insert(braid::current().map_or(usize::MAX, |s| s.core()));
                let t = Instant::now();
                while t.elapsed() < Duration::from_micros(100) {}
                braid::yield_now();
            }
            cores
        };
        let group = braid::Builder::new()
            .lease(&l)
            .spawn(move || {
                let helpers: Vec<_> = (0..2).map(|_| braid::spawn(move || seen(500))).collect();
                let mut all = seen(500);
                for h in helpers {
                    all.extend(h.join().unwrap());
                }
                all
            })
            .expect("spawn");
        // One busy strand and a sleeper outside the group: no queue builds
        // on the shared cores, so the lease holds (three busy ones would
        // keep two waiting there, and end it for fairness).
        let busy = braid::spawn(move || seen(500));
        let sleepers: Vec<_> = (0..1)
            .map(|_| {
                braid::spawn(move || {
                    let mut cores = std::collections::BTreeSet::new();
                    for _ in 0..50 {
                        braid::sleep(Duration::from_millis(1)).unwrap();
                        cores.insert(braid::current().map_or(usize::MAX, |s| s.core()));
                    }
                    cores
                })
            })
            .collect();
        let mut other_cores = busy.join().unwrap();
        for h in sleepers {
            other_cores.extend(h.join().unwrap());
        }
        (group.join().unwrap(), other_cores)
    });
    println!(
        "   the group's 3 strands ran on cores {group_cores:?}; a busy strand and a sleeper outside it on {other_cores:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(2);
    while matches!(lease.status(), LeaseStatus::Active { .. }) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    println!("   then the lease: {:?}\n", lease.status());
    Ok(())
}

/// Named events across cores, and a three-stage channel pipeline spread over
/// the cores.
fn events_and_channels(rt: &Runtime) {
    use braid::sync::channel;
    println!("== named events, a scheduler closure, and a channel pipeline across cores");
    let last = rt.cores() - 1;
    let (order, waited) = rt.block_on(move || {
        // A strand on the last core waits on an event no one has signalled yet;
        // the signal comes from core 0 and crosses the bus.
        let start = Instant::now();
        let waiter = braid::Builder::new()
            .name("event-waiter")
            .core(last)
            .spawn(move || {
                braid::event::wait("config-loaded").unwrap();
                braid::current().map(|s| s.core()).unwrap_or(0)
            })
            .unwrap();
        braid::Builder::new()
            .core(0)
            .spawn(|| {
                braid::sleep(Duration::from_millis(5)).unwrap();
                braid::event::signal("config-loaded").unwrap();
            })
            .unwrap()
            .join()
            .unwrap();
        let woke_on = waiter.join().unwrap();
        // A signal with nobody waiting is stored, and taken by the next wait.
        braid::event::signal("ticket").unwrap();
        braid::event::wait("ticket").unwrap();
        (woke_on, start.elapsed())
    });
    println!(
        "   a waiter on core {order} woke {:.1} ms after waiting (signal sent from core 0 after 5 ms)",
        waited.as_secs_f64() * 1e3
    );
    // A scheduler closure: runs inside the scheduler on each signal, with its
    // payload, without waking a strand. Registering one needs the capability
    // that only this program (the runtime's owner) can mint.
    let cap = rt.closure_cap();
    let readings = Arc::new(std::sync::Mutex::new(Vec::new()));
    let r = readings.clone();
    rt.block_on(move || {
        let sensor = braid::event::local("sensor").unwrap();
        let s = sensor.clone();
        let host = braid::spawn(move || {
            braid::event::on_signal(&cap, &s, move |payload| {
                r.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(payload).into_owned());
            })
            .unwrap();
            braid::sleep(Duration::from_millis(20)).unwrap(); // the closure lives while its host does
        });
        braid::sleep(Duration::from_millis(2)).unwrap();
        for reading in ["21.5C", "21.7C", "22.0C"] {
            sensor.signal_with(reading.as_bytes()).unwrap();
        }
        host.join().unwrap();
    });
    println!(
        "   a scheduler closure saw the signals' payloads {:?}",
        readings.lock().unwrap()
    );
    let (sum, count, cores_used) = rt.block_on(move || {
        let (raw_tx, raw_rx) = channel::bounded::<u64>(64);
        let (sq_tx, sq_rx) = channel::bounded::<(u64, usize)>(64);
        let producer = braid::Builder::new()
            .core(0)
            .spawn(move || (1..=10_000u64).for_each(|i| raw_tx.send(i).unwrap()))
            .unwrap();
        let squarers: Vec<_> = (0..4)
            .map(|i| {
                let (rx, tx) = (raw_rx.clone(), sq_tx.clone());
                braid::Builder::new()
                    .core(i % (last + 1))
                    .spawn(move || {
                        let core = braid::current().map(|s| s.core()).unwrap_or(0);
                        for v in rx.iter() {
                            tx.send((v * v, core)).unwrap();
                        }
                    })
                    .unwrap()
            })
            .collect();
        drop((raw_rx, sq_tx));
        let mut cores = std::collections::BTreeSet::new();
        let (mut sum, mut count) = (0u64, 0u64);
        for (v, core) in sq_rx.iter() {
            sum += v;
            count += 1;
            cores.insert(core);
        }
        producer.join().unwrap();
        squarers.into_iter().for_each(|h| h.join().unwrap());
        (sum, count, cores)
    });
    let expected: u64 = (1..=10_000u64).map(|i| i * i).sum();
    println!(
        "   producer -> 4 squarers on cores {cores_used:?} -> collector: {count} values, sum of squares {sum} ({})",
        if sum == expected { "correct" } else { "WRONG" }
    );
    println!(
        "   live events now: {} (events exist only while waited on or stored)\n",
        rt.stats().live_events()
    );
}

fn stats(rt: &Runtime) {
    let stats = rt.stats();
    println!("== per-core statistics");
    println!(
        "   {:>4} {:>4} {:>10} {:>9} {:>9} {:>7} {:>7} {:>9} {:>9} {:>8}",
        "core",
        "cpu",
        "switches",
        "spawned",
        "exited",
        "stolen",
        "given",
        "bus sent",
        "bus recv",
        "parks"
    );
    for c in &stats.cores {
        println!(
            "   {:>4} {:>4} {:>10} {:>9} {:>9} {:>7} {:>7} {:>9} {:>9} {:>8}",
            c.core,
            c.cpu.map_or("-".to_string(), |cpu| cpu.to_string()),
            c.switches,
            c.spawned,
            c.exited,
            c.steals,
            c.given,
            c.bus_sent,
            c.bus_received,
            c.parks
        );
    }
    println!(
        "   live strands {}, panics {}, stack slabs {} (guards: {:?})",
        stats.live_strands, stats.panics, stats.stack_slabs, stats.guard
    );
}
