//! Spawn, join, yield, sleep, identity, scoped strands and bad configuration.

mod common;

use braid::{Builder, Runtime, StrandState};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::runtime;

#[test]
fn spawn_and_join_return_values() {
    let rt = runtime(2);
    let answer = rt.block_on(|| {
        let h = braid::spawn(|| 40 + 2);
        h.join().unwrap()
    });
    assert_eq!(answer, 42);
}

#[test]
fn many_children_sum_exactly() {
    let rt = runtime(2);
    let total = rt.block_on(|| {
        let handles: Vec<_> = (0..10_000u64).map(|i| braid::spawn(move || i)).collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
    });
    assert_eq!(total, 10_000 * 9_999 / 2);
    let stats = rt.stats();
    assert_eq!(stats.cores.iter().map(|c| c.spawned).sum::<u64>(), 10_000);
}

#[test]
fn yield_interleaves_strands_on_one_core() {
    let rt = runtime(1);
    let log = rt.block_on(|| {
        let log = Arc::new(Mutex::new(Vec::new()));
        let handles: Vec<_> = (0..3)
            .map(|id| {
                let log = log.clone();
                braid::spawn(move || {
                    for round in 0..3 {
                        log.lock().unwrap().push((round, id));
                        braid::yield_now();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        Arc::try_unwrap(log).unwrap().into_inner().unwrap()
    });
    // Round robin on one core: every strand finishes round r before any starts r+1.
    let rounds: Vec<u32> = log.iter().map(|&(r, _)| r).collect();
    assert_eq!(rounds, vec![0, 0, 0, 1, 1, 1, 2, 2, 2]);
}

#[test]
fn sleep_blocks_only_the_strand() {
    let rt = runtime(1);
    let (slept, ticks) = rt.block_on(|| {
        let ticks = Arc::new(AtomicUsize::new(0));
        let t = ticks.clone();
        // On one core, a ticker keeps running while another strand sleeps.
        let ticker = braid::spawn(move || {
            while t.load(Ordering::Relaxed) < 1_000_000 {
                t.fetch_add(1, Ordering::Relaxed);
                braid::yield_now();
                if braid::is_cancelled() {
                    break;
                }
            }
        });
        let start = Instant::now();
        braid::sleep(Duration::from_millis(30)).unwrap();
        let slept = start.elapsed();
        let seen = ticks.load(Ordering::Relaxed);
        ticker.group().cancel();
        ticker.join().unwrap();
        (slept, seen)
    });
    assert!(slept >= Duration::from_millis(30), "woke early: {slept:?}");
    assert!(
        ticks > 100,
        "the other strand did not run while we slept: {ticks}"
    );
}

#[test]
fn current_reports_identity_and_state() {
    let rt = runtime(2);
    rt.block_on(|| {
        let h = Builder::new()
            .name("worker-7")
            .stack_size(64 * 1024)
            .spawn(|| {
                let me = braid::current().expect("inside a strand");
                assert_eq!(me.state(), StrandState::Running);
                (
                    me.id(),
                    me.name().map(str::to_owned),
                    me.stack_size(),
                    me.core(),
                )
            })
            .unwrap();
        let strand = h.strand();
        let (id, name, stack, core) = h.join().unwrap();
        assert_eq!(id, strand.id());
        assert_eq!(name.as_deref(), Some("worker-7"));
        assert_eq!(stack, 64 * 1024);
        assert!(core < 2);
        assert_eq!(strand.state(), StrandState::Exited);
    });
    assert!(braid::current().is_none());
}

#[test]
fn blocked_state_is_observable() {
    let rt = runtime(1);
    rt.block_on(|| {
        let h = braid::spawn(|| braid::sleep(Duration::from_millis(50)).unwrap());
        let strand = h.strand();
        assert_eq!(strand.state(), StrandState::Ready);
        braid::sleep(Duration::from_millis(10)).unwrap();
        assert_eq!(strand.state(), StrandState::Blocked);
        h.join().unwrap();
        assert_eq!(strand.state(), StrandState::Exited);
        assert!(h_stats_blocks(&strand) >= 1);
    });
}

fn h_stats_blocks(strand: &braid::Strand) -> u64 {
    strand.stats().blocks
}

#[test]
fn scope_borrows_locals() {
    let rt = runtime(2);
    let sum = rt.block_on(|| {
        let data: Vec<u64> = (1..=100).collect();
        let mut partial = [0u64; 4];
        braid::scope(|s| {
            for (chunk, slot) in data.chunks(25).zip(partial.iter_mut()) {
                s.spawn(move || *slot = chunk.iter().sum());
            }
        });
        partial.iter().sum::<u64>()
    });
    assert_eq!(sum, 5050);
}

#[test]
fn scope_returns_joined_values_and_propagates_unjoined_panics() {
    let rt = runtime(2);
    rt.block_on(|| {
        let base = 10;
        let got = braid::scope(|s| {
            let h = s.spawn(|| base * 2);
            h.join().unwrap()
        });
        assert_eq!(got, 20);
        let outcome = std::panic::catch_unwind(|| {
            braid::scope(|s| {
                s.spawn(|| panic!("scoped failure"));
            })
        });
        assert!(outcome.is_err(), "an unjoined scoped panic must surface");
    });
}

#[test]
fn spawn_outside_runtime_is_an_error() {
    let err = Builder::new().spawn(|| ()).unwrap_err();
    assert!(err.is_not_in_runtime());
    assert!(err.to_string().contains("outside a braid runtime"));
}

#[test]
fn bad_stack_size_is_a_typed_error() {
    let rt = runtime(1);
    rt.block_on(|| {
        let err = Builder::new().stack_size(1000).spawn(|| ()).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("stack_size") && text.contains("1000") && text.contains("allowed"),
            "{text}"
        );
    });
}

#[test]
fn bad_configuration_is_rejected_with_names() {
    for (builder, setting) in [
        (Runtime::builder().cores(0), "cores"),
        (Runtime::builder().stack_size(4096), "stack_size"),
        (Runtime::builder().stack_size(100_000), "stack_size"),
        (Runtime::builder().ring_capacity(3), "ring_capacity"),
        (
            Runtime::builder().time_slice(Duration::from_secs(5)),
            "time_slice",
        ),
    ] {
        let err = builder.build().unwrap_err();
        assert_eq!(err.setting(), setting);
        assert!(err.to_string().contains("allowed"));
    }
}

#[test]
fn runtime_spawn_from_outside_and_join_from_outside() {
    let rt = runtime(2);
    let handles: Vec<_> = (0..50u32)
        .map(|i| rt.spawn(move || i * 3).unwrap())
        .collect();
    let total: u32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(total, 3 * 50 * 49 / 2);
}

#[test]
fn idle_runtime_parks_its_cores() {
    let rt = runtime(2);
    rt.block_on(|| ());
    std::thread::sleep(Duration::from_millis(50));
    let before = rt.stats();
    std::thread::sleep(Duration::from_millis(100));
    let after = rt.stats();
    assert!(after.cores.iter().all(|c| c.parked), "{after:?}");
    assert_eq!(before.switches(), after.switches());
    assert_eq!(
        before.cores.iter().map(|c| c.parks).sum::<u64>(),
        after.cores.iter().map(|c| c.parks).sum::<u64>(),
        "parked cores must stay parked when nothing happens"
    );
}

#[test]
fn stats_right_after_block_on_count_the_strand_out() {
    let rt = runtime(2);
    for i in 0..200u64 {
        assert_eq!(rt.block_on(move || i + 1), i + 1);
        let live = rt.stats().live_strands;
        assert_eq!(live, 0, "round {i}: {live} strands still counted live");
    }
}
