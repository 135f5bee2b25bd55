//! Every workload runs to completion with its invariants checked, at several
//! core counts, and repeats bit for bit.

use braid_sim::workloads::Spec;
use braid_sim::{run, SimConfig};

/// Small sizes, so the whole matrix runs in seconds.
const SMALL: [&str; 17] = [
    "map:20000",
    "pool:300",
    "barrier:20",
    "groups:40",
    "process:40",
    "service:2000",
    "skynet:3",
    "uts:60",
    "pingpong:2000",
    "ring:200",
    "server:3000",
    "dispersive:80",
    "share:20",
    "group-share:20",
    "lease:30",
    "lease-contended:40",
    "budget:100",
];

#[test]
fn every_workload_finishes_at_every_core_count() {
    for name in SMALL {
        let spec = Spec::parse(name).unwrap();
        for cores in [1, 2, 3, 8, 64] {
            let mut config = SimConfig::new(cores);
            config.seed = 11;
            let mut w = spec.build(cores).unwrap();
            let report =
                run(&config, w.as_mut()).unwrap_or_else(|e| panic!("{name} on {cores} cores: {e}"));
            assert!(
                report.makespan_ns > 0 && report.work_fraction > 0.0,
                "{name}"
            );
            assert!(
                report.work_fraction <= 1.0 + 1e-9,
                "{name}: {}",
                report.work_fraction
            );
            println!(
                "{name:>14} {cores:>3} cores: makespan {:>10} ns, efficiency {:.3}, {} migrations, {} events",
                report.makespan_ns, report.work_fraction, report.migrations, report.events
            );
        }
    }
}

#[test]
fn the_same_seed_gives_the_same_trace_and_another_seed_another() {
    let spec = Spec::parse("uts:80").unwrap();
    let trace = |cores: usize, seed: u64| {
        let mut config = SimConfig::new(cores);
        config.seed = seed;
        let mut w = spec.build(cores).unwrap();
        let r = run(&config, w.as_mut()).unwrap();
        (r.trace_hash, r.makespan_ns, r.migrations)
    };
    for cores in [2, 16, 256] {
        assert_eq!(trace(cores, 5), trace(cores, 5), "{cores} cores");
    }
    // Victims are chosen at random: another seed, another run.
    assert_ne!(trace(16, 5).0, trace(16, 6).0);
}

#[test]
fn random_seeds_and_sizes_keep_every_invariant() {
    // A property test over seeds: each run checks its invariants itself and
    // fails with the broken one; here the seeds, core counts and topologies
    // vary. The generator is braid-core's, so a failure names its seed.
    let mut rng = braid_core::Rng::new(2026);
    for case in 0..120 {
        let seed = rng.next_u64();
        let name = SMALL[(rng.below(SMALL.len() as u64)) as usize];
        let cores = 1 + rng.below(24) as usize;
        let mut config = SimConfig::new(cores);
        config.seed = seed;
        if rng.below(2) == 0 {
            config.topology = braid_sim::Topology::Domains(1 + rng.below(8) as usize);
        }
        config.costs.hop = 10 + rng.below(2_000);
        let policies = braid_sim::PolicyKind::ALL;
        config.policy = policies[rng.below(policies.len() as u64) as usize].1;
        let balancers = braid_sim::BalancerKind::ALL;
        config.balancer = balancers[rng.below(balancers.len() as u64) as usize].1;
        config.costs.unpark = rng.below(40_000);
        // Half on the runtime's 1 ms clock: slices then end up to a tick
        // late, which the lag bound allows for.
        if rng.below(2) == 0 {
            config.clock_tick = braid_sim::RUNTIME_CLOCK_TICK;
        }
        let spec = Spec::parse(name).unwrap();
        let mut w = spec.build(cores).unwrap();
        if let Err(e) = run(&config, w.as_mut()) {
            panic!("case {case}: {name} on {cores} cores, seed {seed}, {config:?}: {e}");
        }
    }
}

/// The short requests' p99 in `dispersive:LOAD` on 2 cores, in ns.
fn dispersive_p99(load: u32, policy: braid_sim::PolicyKind, clock_tick: braid_core::Nanos) -> u64 {
    let mut config = SimConfig::new(2);
    config.policy = policy;
    config.clock_tick = clock_tick;
    let mut w = Spec::parse(&format!("dispersive:{load}"))
        .unwrap()
        .build(2)
        .unwrap();
    let report = run(&config, w.as_mut()).unwrap();
    report.response.expect("short requests answered").p99_ns
}

#[test]
fn latency_classes_hold_short_requests_to_one_step_on_either_clock() {
    use braid_sim::PolicyKind::{Eevdf, RoundRobin};
    let step = braid_sim::workloads::DISPERSIVE_STEP;
    for load in [80, 90] {
        // With classes, a short request waits for at most the step running
        // on the dispatcher's core, then runs: p99 one step and a little.
        let eevdf = dispersive_p99(load, Eevdf, 0);
        assert!(eevdf <= step + step / 5, "{load} %: EEVDF p99 {eevdf} ns");
        // Round robin queues it behind every step ready there.
        let rr = dispersive_p99(load, RoundRobin, 0);
        assert!(rr > 10 * step, "{load} %: round robin p99 {rr} ns");
        // On the runtime's 1 ms clock too: the fair policies charge each
        // run as measured (by the cycle counter in the runtime), not by
        // the clock's ticks — charged a whole tick now and then for a
        // microsecond's run, a latency strand waited out the debt (p99
        // over twice this before the simulator charged as the runtime).
        let coarse = dispersive_p99(load, Eevdf, braid_sim::RUNTIME_CLOCK_TICK);
        assert!(
            coarse <= step + step / 5,
            "{load} %: EEVDF p99 {coarse} ns on a 1 ms clock"
        );
    }
}

/// Two strands that compute 10 ms at a time without a runtime call, then
/// yield, three times each: under EEVDF each owes beyond its 2 ms slice
/// when it comes back, which the simulator's lag check must catch.
struct Hogs {
    rounds: [u32; 2],
}

impl braid_sim::Workload for Hogs {
    fn name(&self) -> String {
        "hogs".into()
    }
    fn roots(&mut self, _cores: usize) -> u32 {
        2
    }
    fn act(&mut self, idx: braid_sim::StrandIdx, _ctx: &mut braid_sim::Ctx) -> braid_sim::Then {
        let r = &mut self.rounds[idx as usize];
        *r += 1;
        match *r {
            7 => braid_sim::Then::Exit,
            n if n % 2 == 1 => braid_sim::Then::Run(10_000_000),
            _ => braid_sim::Then::Yield,
        }
    }
    fn verify(&self) -> Result<(), String> {
        Ok(())
    }
}

#[test]
fn the_simulator_checks_eevdf_lag_on_every_run() {
    let mut config = SimConfig::new(1);
    config.policy = braid_sim::PolicyKind::Eevdf;
    let err = run(&config, &mut Hogs { rounds: [0; 2] })
        .unwrap_err()
        .to_string();
    assert!(err.contains("lag") && err.contains("EEVDF"), "{err}");
    // Round robin keeps no lag to check.
    config.policy = braid_sim::PolicyKind::RoundRobin;
    run(&config, &mut Hogs { rounds: [0; 2] }).unwrap();
}

#[test]
fn bad_settings_are_refused_with_what_is_allowed() {
    let mut w = Spec::parse("map:10").unwrap().build(1).unwrap();
    let err = run(&SimConfig::new(0), w.as_mut()).unwrap_err().to_string();
    assert!(err.contains("1..=1024"), "{err}");
    let err = run(&SimConfig::new(1025), w.as_mut())
        .unwrap_err()
        .to_string();
    assert!(err.contains("1..=1024"), "{err}");
    let err = braid_sim::BalancerKind::parse("random")
        .unwrap_err()
        .to_string();
    assert!(err.contains("steal-half"), "{err}");
    let err = braid_sim::Topology::parse("ring").unwrap_err().to_string();
    assert!(err.contains("domains:N"), "{err}");
    let mut config = SimConfig::new(4);
    config.max_events = 50;
    let mut w = Spec::parse("skynet:3").unwrap().build(4).unwrap();
    let err = run(&config, w.as_mut()).unwrap_err();
    assert!(
        matches!(err, braid_sim::SimError::TooManyEvents { limit: 50, .. }),
        "{err}"
    );
}

#[test]
fn scaling_is_what_the_workloads_promise() {
    // Independent pinned work scales almost perfectly; a fork-join tree
    // gains from more cores; every run of a sweep has a speedup.
    let config = SimConfig::new(1);
    let reports =
        braid_sim::sweep(&config, &Spec::parse("process:64").unwrap(), &[1, 2, 8]).unwrap();
    let eff: Vec<f64> = reports.iter().map(|r| r.efficiency).collect();
    assert!(eff.iter().all(|&e| e > 0.9), "{eff:?}");
    let reports = braid_sim::sweep(&config, &Spec::parse("uts:200").unwrap(), &[1, 8]).unwrap();
    assert!(
        reports[1].speedup.unwrap() > 3.0,
        "{:?}",
        reports[1].speedup
    );
    assert!(reports[1].migrations > 0);
    // The server's work grows with the cores: no speedup is claimed.
    let reports = braid_sim::sweep(&config, &Spec::parse("server:500").unwrap(), &[1, 2]).unwrap();
    assert!(reports
        .iter()
        .all(|r| r.speedup.is_none() && r.response.is_some()));
}

/// The largest distance of a group's share from its ideal one.
fn worst_error(shares: &[f64], ideal: &[f64]) -> f64 {
    shares
        .iter()
        .zip(ideal)
        .map(|(s, i)| (s - i).abs())
        .fold(0.0, f64::max)
}

#[test]
fn weighted_groups_get_their_shares_across_cores() {
    // Three groups of CPU-bound strands, weights 1 : 2 : 4, as many strands
    // per group as cores. EEVDF on each core plus weight balancing between
    // busy cores: each group's share of the CPU within 2 % (absolute) of
    // 1/7, 2/7, 4/7 over a simulated second — four at 16 cores, where 48
    // strands spread in whole strands leave 1–2 % over one second
    // (seeds 1–3), and the error shrinks with the run's length (the
    // issue's target is over 10 s).
    let spec = Spec::parse("share:1000").unwrap();
    let ideal = [1.0 / 7.0, 2.0 / 7.0, 4.0 / 7.0];
    for cores in [1, 2, 4, 16] {
        let spec = if cores == 16 {
            Spec::parse("share:4000").unwrap()
        } else {
            spec.clone()
        };
        let mut config = SimConfig::new(cores);
        config.policy = braid_sim::PolicyKind::Eevdf;
        config.balancer = braid_sim::BalancerKind::Weighted;
        let mut w = spec.build(cores).unwrap();
        let report = run(&config, w.as_mut()).unwrap();
        let shares = report.group_shares.unwrap();
        assert!(
            worst_error(&shares, &ideal) <= 0.02,
            "{cores} cores: shares {shares:?}"
        );
    }
    // Round robin ignores weights: equal thirds on one core.
    let mut w = spec.build(1).unwrap();
    let shares = run(&SimConfig::new(1), w.as_mut())
        .unwrap()
        .group_shares
        .unwrap();
    assert!(
        shares.iter().all(|s| (s - 1.0 / 3.0).abs() < 0.01),
        "{shares:?}"
    );
}

#[test]
fn share_groups_get_their_weights_share_whatever_their_strand_counts() {
    // Three share groups of weights 1 : 2 : 4 with 3, 1 and 2 strands per
    // core, every strand of the default weight. Under a fair policy with
    // weight balancing each group's share is within 2 % (absolute) of 1/7,
    // 2/7, 4/7 over a simulated second (four at 16 cores, as above; on
    // the 1 ms clock one second there left 2.2 %); counting strands would
    // give 1/2, 1/6, 1/3.
    let ideal = [1.0 / 7.0, 2.0 / 7.0, 4.0 / 7.0];
    let spec = Spec::parse("group-share:1000").unwrap();
    for policy in [braid_sim::PolicyKind::Eevdf, braid_sim::PolicyKind::Cfs] {
        for cores in [1, 2, 4, 16] {
            let spec = if cores == 16 {
                Spec::parse("group-share:4000").unwrap()
            } else {
                spec.clone()
            };
            for clock_tick in [0, braid_sim::RUNTIME_CLOCK_TICK] {
                let mut config = SimConfig::new(cores);
                config.policy = policy;
                config.balancer = braid_sim::BalancerKind::Weighted;
                config.clock_tick = clock_tick;
                let mut w = spec.build(cores).unwrap();
                let report = run(&config, w.as_mut()).unwrap();
                let shares = report.group_shares.unwrap();
                assert!(
                    worst_error(&shares, &ideal) <= 0.02,
                    "{policy:?}, {cores} cores, tick {clock_tick}: shares {shares:?}"
                );
            }
        }
    }
    // Round robin ignores weights: shares by strand count.
    let mut w = spec.build(1).unwrap();
    let shares = run(&SimConfig::new(1), w.as_mut())
        .unwrap()
        .group_shares
        .unwrap();
    let by_count = [0.5, 1.0 / 6.0, 1.0 / 3.0];
    assert!(
        (0..3).all(|g| (shares[g] - by_count[g]).abs() < 0.01),
        "{shares:?}"
    );
}

#[test]
fn a_leased_core_runs_only_its_group_until_fairness_ends_the_lease() {
    // The engine fails a run in which a leased core runs a strand not of
    // its group; the workload fails one in which the group had less than
    // 99 % of the leased core. Batch work waiting elsewhere does not end a
    // normal group's lease; normal work backlogged on every shared core
    // does, 20 ms after the backlog began (looked at every millisecond).
    for policy in braid_sim::PolicyKind::ALL.iter().map(|p| p.1) {
        for cores in [2, 3, 4] {
            let mut config = SimConfig::new(cores);
            config.policy = policy;
            let mut w = Spec::parse("lease:100").unwrap().build(cores).unwrap();
            let lease = run(&config, w.as_mut()).unwrap().lease.unwrap();
            assert_eq!(lease.started_ns, braid_sim::workloads::LEASE_AT);
            assert_eq!(lease.terminated_ns, None, "{policy:?}, {cores} cores");
            assert!(lease.evicted > 0, "the others started on the leased core");
            let mut w = Spec::parse("lease-contended:100")
                .unwrap()
                .build(cores)
                .unwrap();
            let lease = run(&config, w.as_mut()).unwrap().lease.unwrap();
            let after = lease.terminated_ns.expect("terminated") - lease.started_ns;
            assert!(
                (braid_core::lease::TERMINATION_AFTER
                    ..=braid_core::lease::TERMINATION_AFTER + 5_000_000)
                    .contains(&after),
                "{policy:?}, {cores} cores: terminated {after} ns after it began"
            );
        }
    }
}

#[test]
fn budgets_hold_in_every_window_and_over_a_hundred_periods() {
    // A context of 2 ms / 10 ms with one strand and one of 3 ms / 10 ms
    // with a strand per core, among as many unbound CPU-bound strands,
    // for 100 periods: the workload checks no context got more than its
    // budget's share plus 1 %; the engine checks that no window of one
    // period held more than the sporadic server allows. Beyond that: what
    // one run is given is set aside from the others (runs overlap only on
    // refills that come due meanwhile), so a window holds at most the
    // budget plus its catch-up and merge gap (the workload's strands make
    // runtime calls: no overrun; without the set-aside, 6 ms in a window
    // of the 3 ms context at 2 cores; every policy uses the catch-up, even
    // on the exact clock: when both contexts' strands are released at once
    // on one core the second starts up to 2 ms late and is booked on time,
    // so no tighter bound holds); and as a released strand runs
    // first under every policy, each context gets its share within 1 %.
    // (Before, under EEVDF a released strand waited for earlier deadlines
    // and took its refill late: 0.188-0.194 of a 0.2 budget at 4-16
    // cores.)
    let spec = Spec::parse("budget:1000").unwrap();
    for (policy, balancer, tick) in [
        (
            braid_sim::PolicyKind::RoundRobin,
            braid_sim::BalancerKind::StealHalf,
            0,
        ),
        (
            braid_sim::PolicyKind::Eevdf,
            braid_sim::BalancerKind::Weighted,
            0,
        ),
        (
            braid_sim::PolicyKind::Eevdf,
            braid_sim::BalancerKind::Weighted,
            braid_sim::RUNTIME_CLOCK_TICK,
        ),
        (
            braid_sim::PolicyKind::Cfs,
            braid_sim::BalancerKind::StealHalf,
            braid_sim::RUNTIME_CLOCK_TICK,
        ),
    ] {
        for cores in [1, 2, 4, 16] {
            let mut config = SimConfig::new(cores);
            config.policy = policy;
            config.balancer = balancer;
            config.clock_tick = tick;
            let mut w = spec.build(cores).unwrap();
            let what = format!("{policy:?}, {balancer:?}, tick {tick}, {cores} cores");
            let report = run(&config, w.as_mut()).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(report.contexts.len(), 2, "{what}");
            for c in &report.contexts {
                let most = c.budget_ns + braid_sim::CATCH_UP + braid_core::budget::MERGE_GAP;
                assert!(c.max_window_ns <= most, "{what}: {c:?}");
                assert!(c.throttles > 0, "{what}: never throttled: {c:?}");
            }
            for (c, &(budget, period)) in braid_sim::workloads::BUDGET_CONTEXTS.iter().enumerate() {
                let share = report.contexts[c].used_ns as f64 / 1e9;
                let want = budget as f64 / period as f64;
                // (The used CPU includes the last chunk of each strand,
                // at most 16 × 50 µs here.)
                assert!(
                    (share - want).abs() <= 0.01 * want + 0.001,
                    "{what}: context {c} used {share}, budget {want}"
                );
            }
            println!("{what}: {}", report.summary.unwrap());
        }
    }
}
