//! Strand trees: panic containment, cancellation, group counting and waiting,
//! cross-core joins.

mod common;

use braid::Cancelled;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::runtime;

#[test]
fn a_panic_is_returned_to_the_joiner_and_the_runtime_keeps_serving() {
    let rt = runtime(2);
    let err = rt
        .block_on(|| {
            braid::Builder::new()
                .name("doomed")
                .spawn(|| -> u32 { panic!("boom {}", 7) })
                .unwrap()
                .join()
        })
        .unwrap_err();
    assert!(err.is_panic());
    assert_eq!(err.panic_message(), Some("boom 7"));
    assert_eq!(err.strand(), "'doomed'");
    // The runtime still runs other work.
    assert_eq!(rt.block_on(|| braid::spawn(|| 5).join().unwrap()), 5);
    assert_eq!(rt.stats().panics, 1);
}

#[test]
fn a_panic_cancels_the_panicking_strands_descendants() {
    let rt = runtime(2);
    let (child_outcome, sibling) = rt.block_on(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        let parent = braid::spawn(move || {
            // A long-sleeping child: it must be woken by the cancellation.
            let child = braid::spawn(|| braid::sleep(Duration::from_secs(60)));
            tx.send(child).unwrap();
            braid::sleep(Duration::from_millis(20)).unwrap();
            panic!("parent fails");
        });
        let sibling = braid::spawn(|| {
            braid::sleep(Duration::from_millis(50)).unwrap();
            "sibling unaffected"
        });
        let child = rx.recv().unwrap();
        assert!(parent.join().unwrap_err().is_panic());
        let start = Instant::now();
        let child_outcome = child.join().unwrap();
        assert!(start.elapsed() < Duration::from_secs(5));
        (child_outcome, sibling.join().unwrap())
    });
    assert_eq!(child_outcome, Err(Cancelled));
    assert_eq!(sibling, "sibling unaffected");
}

#[test]
fn cancelling_a_group_wakes_every_blocked_member_on_every_core() {
    let rt = runtime(2);
    let cancelled = rt.block_on(|| {
        let count = Arc::new(AtomicUsize::new(0));
        let c = count.clone();
        let root = braid::spawn(move || {
            let kids: Vec<_> = (0..64)
                .map(|_| {
                    let c = c.clone();
                    braid::spawn(move || {
                        if braid::sleep(Duration::from_secs(60)) == Err(Cancelled) {
                            assert!(braid::is_cancelled());
                            c.fetch_add(1, Ordering::SeqCst);
                        }
                    })
                })
                .collect();
            for k in kids {
                k.join().unwrap();
            }
        });
        let group = root.group();
        while group.live() < 65 {
            braid::yield_now();
        }
        braid::sleep(Duration::from_millis(20)).unwrap();
        group.cancel();
        assert!(group.is_cancelled());
        // The root's join of its children is itself cancelled, so it returns
        // early; wait for the whole group instead.
        group.wait().unwrap();
        assert_eq!(group.live(), 0);
        let _ = root.join();
        count.load(Ordering::SeqCst)
    });
    assert_eq!(cancelled, 64);
}

#[test]
fn cancelled_strands_that_never_started_do_not_run() {
    let rt = runtime(1);
    let (ran, outcomes) = rt.block_on(|| {
        let ran = Arc::new(AtomicUsize::new(0));
        let r = ran.clone();
        let root = braid::spawn(move || {
            // The root cancels its own group, then spawns: the children belong to
            // a cancelled group and never run their bodies.
            braid::current().unwrap().group().cancel();
            (0..10)
                .map(|_| {
                    let r = r.clone();
                    braid::spawn(move || {
                        r.fetch_add(1, Ordering::SeqCst);
                    })
                })
                .collect::<Vec<_>>()
        });
        let kids = root.join().unwrap();
        let outcomes: Vec<bool> = kids
            .into_iter()
            .map(|k| k.join().unwrap_err().is_cancelled())
            .collect();
        (ran.load(Ordering::SeqCst), outcomes)
    });
    assert_eq!(ran, 0);
    assert_eq!(outcomes, vec![true; 10]);
}

#[test]
fn group_counts_and_waits_for_a_whole_subtree() {
    let rt = runtime(2);
    rt.block_on(|| {
        let finished = Arc::new(AtomicUsize::new(0));
        let f = finished.clone();
        let root = braid::spawn(move || {
            for _ in 0..4 {
                let f = f.clone();
                // Detached grandchildren still belong to the group.
                drop(braid::spawn(move || {
                    for _ in 0..4 {
                        let f = f.clone();
                        drop(braid::spawn(move || {
                            braid::sleep(Duration::from_millis(30)).unwrap();
                            f.fetch_add(1, Ordering::SeqCst);
                        }));
                    }
                }));
            }
        });
        let group = root.group();
        root.join().unwrap();
        group.wait().unwrap();
        assert_eq!(finished.load(Ordering::SeqCst), 16);
        assert_eq!(group.live(), 0);
    });
}

#[test]
fn waiting_for_ones_own_group_waits_for_the_others() {
    let rt = runtime(2);
    let done = rt.block_on(|| {
        let done = Arc::new(AtomicUsize::new(0));
        let d = done.clone();
        let root = braid::spawn(move || {
            for _ in 0..8 {
                let d = d.clone();
                drop(braid::spawn(move || {
                    braid::sleep(Duration::from_millis(10)).unwrap();
                    d.fetch_add(1, Ordering::SeqCst);
                }));
            }
            braid::current().unwrap().group().wait().unwrap();
            d.load(Ordering::SeqCst)
        });
        root.join().unwrap()
    });
    assert_eq!(done, 8);
}

#[test]
fn cross_core_joins_deliver_every_result() {
    let rt = runtime(2);
    let total = rt.block_on(|| {
        // Joiners and joinees end up on both cores through balancing; each pair
        // hands its result across whatever cores they landed on.
        let pairs: Vec<_> = (0..500u64)
            .map(|i| {
                braid::spawn(move || {
                    let inner = braid::spawn(move || {
                        braid::yield_now();
                        i
                    });
                    braid::yield_now();
                    inner.join().unwrap()
                })
            })
            .collect();
        pairs.into_iter().map(|p| p.join().unwrap()).sum::<u64>()
    });
    assert_eq!(total, 500 * 499 / 2);
    let stats = rt.stats();
    assert!(
        stats.steals() > 0,
        "no strand moved between cores: {stats:?}"
    );
}

/// A tally sums its strands' accounting, exited ones included, across cores
/// and generations; strands spawned into another tally count there only.
#[test]
fn a_tally_counts_a_subtree_including_exited_strands() {
    let rt = runtime(2);
    let (outer, inner, own) = rt.block_on(|| {
        let outer = braid::Tally::new();
        let inner = braid::Tally::new();
        let inner2 = inner.clone();
        let root = braid::Builder::new()
            .tally(&outer)
            .spawn(move || {
                // 8 children each yielding 10 times, spread over the cores;
                // each spawns a grandchild that exits at once.
                let kids: Vec<_> = (0..8)
                    .map(|_| {
                        braid::spawn(|| {
                            (0..10).for_each(|_| braid::yield_now());
                            braid::spawn(|| ()).join().unwrap();
                        })
                    })
                    .collect();
                kids.into_iter().for_each(|k| k.join().unwrap());
                // One more subtree, counted in the other tally.
                braid::Builder::new()
                    .tally(&inner2)
                    .spawn(|| braid::spawn(braid::yield_now).join().unwrap())
                    .unwrap()
                    .join()
                    .unwrap();
                braid::current().unwrap().stats()
            })
            .unwrap();
        let group = root.group();
        let own = root.join().unwrap();
        // `join` returns as soon as the value is in, a moment before the
        // root's core counts it out; its group's wait covers that.
        group.wait().unwrap();
        (outer.stats(), inner.stats(), own)
    });
    // Root, 8 children, 8 grandchildren.
    assert_eq!(
        (outer.spawned, outer.exited, outer.live()),
        (17, 17, 0),
        "{outer:?}"
    );
    // Each child switched in at least 11 times (10 yields and a join).
    assert!(outer.total.switches >= 8 * 11 + own.switches, "{outer:?}");
    assert!(outer.total.runtime_ns >= own.runtime_ns, "{outer:?}");
    assert_eq!(outer.abandoned, 0, "{outer:?}");
    assert_eq!((inner.spawned, inner.exited), (2, 2), "{inner:?}");
    assert!(inner.total.switches >= 3, "{inner:?}");
}

/// A tally reads its live strands' counters as they run.
#[test]
fn a_tally_sees_live_strands() {
    let rt = runtime(1);
    rt.block_on(|| {
        let tally = braid::Tally::new();
        let gate = braid::event::local("tally-gate").unwrap();
        let g = gate.clone();
        let worker = braid::Builder::new()
            .tally(&tally)
            .spawn(move || {
                (0..5).for_each(|_| braid::yield_now());
                g.wait().unwrap();
            })
            .unwrap();
        while tally.stats().total.blocks == 0 {
            braid::yield_now();
        }
        let live = tally.stats();
        assert_eq!((live.spawned, live.exited), (1, 0), "{live:?}");
        assert!(live.total.switches >= 6, "{live:?}");
        gate.signal().unwrap();
        let group = worker.group();
        worker.join().unwrap();
        group.wait().unwrap();
        let done = tally.stats();
        assert_eq!(done.exited, 1, "{done:?}");
        assert!(done.total.switches > live.total.switches, "{done:?}");
    });
}

/// How many share groups nest, one in the next, below the calling strand
/// before one is refused.
fn nested_groups() -> usize {
    match braid::Builder::new()
        .group_weight(1024)
        .spawn(nested_groups)
    {
        Ok(child) => 1 + child.join().unwrap(),
        Err(_) => 0,
    }
}

#[test]
fn a_builder_spawns_from_outside_the_runtime_with_its_settings() {
    let rt = braid::Runtime::builder()
        .cores(2)
        .policy(braid::sched::PolicyKind::Eevdf)
        .build()
        .unwrap();
    let tally = braid::Tally::new();
    let handle = braid::Builder::new()
        .name("outside")
        .core(1)
        .weight(2048)
        .group_weight(4096)
        .tally(&tally)
        .spawn_in(&rt, || {
            let me = braid::current().unwrap();
            let kid = braid::spawn(|| braid::current().unwrap().sched_params().weight);
            // Its share group is the first level: seven more nest in it.
            let depth = 1 + nested_groups();
            (
                me.name().map(str::to_owned),
                me.core(),
                me.sched_params().weight,
                kid.join().unwrap(),
                depth,
            )
        })
        .unwrap();
    let group = handle.group();
    let (name, core, weight, kid_weight, depth) = handle.join().unwrap();
    assert_eq!(name.as_deref(), Some("outside"));
    assert_eq!(core, 1, "pinned where it was asked to run");
    assert_eq!((weight, kid_weight), (2048, 2048), "its child inherits");
    assert_eq!(depth, 8, "the strand started a share group");
    // Counted in the tally, its child and the seven nested strands too (a
    // thread waits for the group).
    while group.live() > 0 {
        std::thread::yield_now();
    }
    let stats = tally.stats();
    assert_eq!((stats.spawned, stats.exited), (9, 9), "{stats:?}");

    // What only a strand can do is refused by name.
    let lease_like = braid::Builder::new().performance_sensitive(true);
    let err = lease_like.spawn_in(&rt, || ()).unwrap_err();
    assert_eq!(
        err.bad_setting().map(|c| c.setting()),
        Some("performance_sensitive"),
        "{err}"
    );
    let err = braid::Builder::new()
        .insert_after(1)
        .spawn_in(&rt, || ())
        .unwrap_err();
    assert_eq!(err.bad_setting().map(|c| c.setting()), Some("insert_after"));
    let err = braid::Builder::new()
        .core(7)
        .spawn_in(&rt, || ())
        .unwrap_err();
    assert_eq!(err.bad_setting().map(|c| c.setting()), Some("core"));
    assert!(err.to_string().contains("0..2"), "{err}");
    let err = braid::Builder::new()
        .group_weight(0)
        .spawn_in(&rt, || ())
        .unwrap_err();
    assert_eq!(err.bad_setting().map(|c| c.setting()), Some("group_weight"));
}

#[test]
fn a_strand_spawned_from_outside_can_be_bound_to_a_context() {
    use braid::sched::SchedContext;
    let rt = braid::Runtime::builder().cores(2).build().unwrap();
    let authority = rt.take_authority().unwrap();
    let spec = SchedContext::new(Duration::from_millis(2), Duration::from_millis(10)).cores([1]);
    let ctx = authority.mint(&spec).unwrap();
    let handle = braid::Builder::new()
        .context(&ctx)
        .spawn_in(&rt, || braid::current().unwrap().core())
        .unwrap();
    // It ran on the one core its context allows, was charged to it, and
    // the context ended with its last strand (so it was counted in).
    assert_eq!(handle.join().unwrap(), 1);
    while !ctx.stats().unwrap().ended {
        std::thread::yield_now();
    }
    let stats = ctx.stats().unwrap();
    assert!(stats.runs >= 1 && stats.used > Duration::ZERO, "{stats:?}");
    // Pinned outside the context's cores: refused, naming them.
    let other = authority.mint(&spec).unwrap();
    let err = braid::Builder::new()
        .context(&other)
        .core(0)
        .spawn_in(&rt, || ())
        .unwrap_err();
    assert_eq!(
        err.bad_setting().map(|c| c.setting()),
        Some("core"),
        "{err}"
    );
    assert!(err.to_string().contains("[1]"), "{err}");
    // An ended context is refused as from inside.
    let err = braid::Builder::new()
        .context(&ctx)
        .spawn_in(&rt, || ())
        .unwrap_err();
    assert!(err.context_error().is_some(), "{err}");
}
