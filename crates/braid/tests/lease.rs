//! Exclusive-core leases in the real runtime: where strands ran, and why a
//! lease ended — not how fast.

use braid::sched::{LeaseEnd, LeaseError, LeaseStatus};
use braid::{Builder, Runtime};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Leases and the monitor's ticks are about the whole machine: one runtime
/// at a time.
static ALONE: Mutex<()> = Mutex::new(());

fn runtime() -> Runtime {
    Runtime::builder().cores(2).lease_pool([1]).build().unwrap()
}

/// Waits up to 5 s for `lease` to end; returns why.
fn ended(lease: &braid::sched::Lease) -> LeaseEnd {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let LeaseStatus::Ended(why) = lease.status() {
            return why;
        }
        assert!(
            Instant::now() < deadline,
            "the lease never ended: {lease:?}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_pool_must_leave_a_core_shared_and_name_real_cores() {
    let err = Runtime::builder()
        .cores(2)
        .lease_pool([0, 1])
        .build()
        .unwrap_err();
    assert_eq!(err.setting(), "lease_pool");
    assert!(err.to_string().contains("one stays shared"), "{err}");
    let err = Runtime::builder()
        .cores(2)
        .lease_pool([2])
        .build()
        .unwrap_err();
    assert_eq!(err.setting(), "lease_pool");
    let rt = Runtime::builder().cores(2).build().unwrap();
    let authority = rt.take_authority().unwrap();
    assert_eq!(authority.lease(None).unwrap_err(), LeaseError::NoPool);
}

#[test]
fn a_leased_core_runs_only_its_group() {
    let _alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
    let rt = runtime();
    let stop = Arc::new(AtomicBool::new(false));
    let strangers: Arc<Mutex<BTreeSet<usize>>> = Arc::default();
    let leased = Arc::new(AtomicBool::new(false));
    // Sleepers started from outside, before the lease: some on core 1.
    let sleepers: Vec<_> = (0..8)
        .map(|_| {
            let (stop, seen, leased) = (stop.clone(), strangers.clone(), leased.clone());
            rt.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    braid::sleep(Duration::from_millis(1)).unwrap();
                    if leased.load(Ordering::Acquire) {
                        seen.lock()
                            .unwrap()
                            .insert(braid::current().unwrap().core());
                    }
                }
            })
            .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_millis(20));
    let authority = rt.take_authority().unwrap();
    let lease = authority.lease(None).unwrap();
    assert_eq!(lease.core(), 1);
    assert_eq!(lease.status(), LeaseStatus::Reserved);
    assert_eq!(
        authority.lease(None).unwrap_err(),
        LeaseError::PoolExhausted { pool: vec![1] }
    );
    // Give the core time to learn it is leased before counting.
    std::thread::sleep(Duration::from_millis(20));
    leased.store(true, Ordering::Release);
    let group: Arc<Mutex<BTreeSet<usize>>> = Arc::default();
    let (s, g, l) = (stop.clone(), group.clone(), lease.clone());
    let root = rt
        .spawn(move || {
            Builder::new()
                .lease(&l)
                .spawn(move || {
                    let children: Vec<_> = (0..3)
                        .map(|_| {
                            let (s, g) = (s.clone(), g.clone());
                            braid::spawn(move || {
                                while !s.load(Ordering::Relaxed) {
                                    g.lock().unwrap().insert(braid::current().unwrap().core());
                                    let t = Instant::now();
                                    while t.elapsed() < Duration::from_micros(200) {}
                                    braid::yield_now();
                                }
                            })
                        })
                        .collect();
                    for c in children {
                        c.join().unwrap();
                    }
                })
                .unwrap()
                .join()
                .unwrap();
        })
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        matches!(lease.status(), LeaseStatus::Active { .. }),
        "{:?}",
        lease.status()
    );
    assert_eq!(rt.leases().len(), 1);
    // A strand outside the group may not pin itself there.
    let err = rt
        .block_on(|| Builder::new().core(1).spawn(|| ()).map(|_| ()))
        .unwrap_err();
    assert_eq!(err.lease_error(), Some(&LeaseError::CoreLeased { core: 1 }));
    // Stop counting first: once the group exits, the lease ends and the
    // sleepers may go anywhere.
    leased.store(false, Ordering::Release);
    stop.store(true, Ordering::Relaxed);
    root.join().unwrap();
    for s in sleepers {
        s.join().unwrap();
    }
    assert_eq!(
        *group.lock().unwrap(),
        BTreeSet::from([1]),
        "the group left its core"
    );
    assert_eq!(
        *strangers.lock().unwrap(),
        BTreeSet::from([0]),
        "strangers ran on the leased core"
    );
    assert!(
        rt.stats().cores[1].evicted > 0,
        "no sleeper was sent off the leased core"
    );
    assert_eq!(ended(&lease), LeaseEnd::GroupExited);
    assert_eq!(
        lease.renew(Duration::from_secs(1)),
        Err(LeaseError::Ended(LeaseEnd::GroupExited))
    );
    assert!(rt.leases().is_empty());
}

#[test]
fn leases_expire_unless_renewed_and_can_be_revoked() {
    let _alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
    let rt = runtime();
    let authority = rt.take_authority().unwrap();
    let lease = authority.lease(Some(Duration::from_millis(30))).unwrap();
    assert_eq!(ended(&lease), LeaseEnd::Expired);
    // A lease whose every handle is dropped before a group started on it
    // goes back to the pool.
    let unused = authority.lease(None).unwrap();
    let copy = unused.clone();
    drop(unused);
    assert_eq!(rt.leases().len(), 1, "one handle is left");
    drop(copy);
    assert!(rt.leases().is_empty(), "{:?}", rt.leases());
    let lease = authority.lease(Some(Duration::from_millis(30))).unwrap();
    lease.renew(Duration::from_secs(60)).unwrap();
    std::thread::sleep(Duration::from_millis(60));
    assert_eq!(
        lease.status(),
        LeaseStatus::Reserved,
        "renewed, it lives on"
    );
    lease.revoke().unwrap();
    assert_eq!(lease.status(), LeaseStatus::Ended(LeaseEnd::Revoked));
    assert_eq!(lease.revoke(), Err(LeaseError::Ended(LeaseEnd::Revoked)));
    let l = lease.clone();
    let err = rt.block_on(move || {
        Builder::new()
            .lease(&l)
            .spawn(|| ())
            .map(|_| ())
            .unwrap_err()
    });
    assert_eq!(
        err.lease_error(),
        Some(&LeaseError::Ended(LeaseEnd::Revoked))
    );
    assert!(err.to_string().contains("revoked"), "{err}");
}

#[test]
fn a_lease_that_keeps_work_waiting_everywhere_else_is_terminated() {
    use braid::sched::LatencyClass::{Batch, Latency, Normal};
    // Work of the group's class or higher queued on the shared core ends
    // the lease (in 20 ms); lower classes wait behind it by design.
    for (group, busy, ends) in [
        (Normal, Normal, true),
        (Normal, Latency, true),
        (Latency, Normal, false),
        (Normal, Batch, false),
    ] {
        let end = lease_beside_busy_strands(group, busy);
        let what = format!("a {group:?} group, {busy:?} strands waiting");
        if ends {
            assert_eq!(end, Some(LeaseEnd::Terminated), "{what}");
        } else {
            assert_eq!(end, None, "{what}: ended");
        }
    }
}

/// A lease whose group sleeps on the leased core while three CPU-bound
/// strands of `busy`'s class queue on the one shared core: why it ended
/// within 300 ms (`None`: it did not).
fn lease_beside_busy_strands(
    group_class: braid::sched::LatencyClass,
    busy: braid::sched::LatencyClass,
) -> Option<LeaseEnd> {
    let _alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
    let rt = runtime();
    let lease = rt.take_authority().unwrap().lease(None).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let l = lease.clone();
    let work = rt
        .spawn(move || {
            let busy: Vec<_> = (0..3)
                .map(|_| {
                    let s = s.clone();
                    Builder::new()
                        .latency_class(busy)
                        .spawn(move || {
                            while !s.load(Ordering::Relaxed) {
                                let t = Instant::now();
                                while t.elapsed() < Duration::from_micros(500) {}
                                braid::yield_now();
                            }
                        })
                        .unwrap()
                })
                .collect();
            let s2 = s.clone();
            let group = Builder::new()
                .lease(&l)
                .latency_class(group_class)
                .spawn(move || {
                    while !s2.load(Ordering::Relaxed) {
                        braid::sleep(Duration::from_millis(1)).unwrap();
                    }
                })
                .unwrap();
            (busy, group)
        })
        .unwrap();
    let deadline = Instant::now() + Duration::from_millis(300);
    let end = loop {
        if let LeaseStatus::Ended(why) = lease.status() {
            break Some(why);
        }
        if Instant::now() >= deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    stop.store(true, Ordering::Relaxed);
    let (busy, group) = work.join().unwrap();
    for b in busy {
        b.join().unwrap();
    }
    group.join().unwrap();
    end
}

#[test]
fn a_performance_sensitive_group_takes_a_free_core() {
    let _alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
    let rt = runtime();
    let (core, leases_then) = rt.block_on(|| {
        let h = Builder::new()
            .performance_sensitive(true)
            .spawn(|| {
                braid::sleep(Duration::from_millis(5)).unwrap();
                braid::current().unwrap().core()
            })
            .unwrap();
        // A second one while the pool is taken runs as any other.
        let other = Builder::new()
            .performance_sensitive(true)
            .spawn(|| 7)
            .unwrap();
        assert_eq!(other.join().unwrap(), 7);
        let core = h.join().unwrap();
        (core, ())
    });
    let () = leases_then;
    assert_eq!(core, 1, "the performance-sensitive strand ran off the pool");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !rt.leases().is_empty() {
        assert!(
            Instant::now() < deadline,
            "its lease outlived its group: {:?}",
            rt.leases()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_lease_outside_a_contexts_cpu_mask_is_refused() {
    // A strand whose scheduling context keeps it on core 0 cannot take a
    // lease on core 1: the spawn is refused, naming the lease, and the
    // lease stays free for a strand that may use it.
    let rt = runtime();
    let authority = rt.take_authority().unwrap();
    let lease = authority.lease(None).unwrap();
    assert_eq!(lease.core(), 1);
    let masked = authority
        .mint(
            &braid::sched::SchedContext::new(Duration::from_millis(10), Duration::from_millis(10))
                .cores([0]),
        )
        .unwrap();
    let (l, m) = (lease.clone(), masked.clone());
    let err = rt.block_on(move || {
        Builder::new()
            .context(&m)
            .lease(&l)
            .spawn(|| ())
            .unwrap_err()
    });
    assert_eq!(
        err.bad_setting().map(|e| e.setting()),
        Some("lease"),
        "{err}"
    );
    let l = lease.clone();
    let core = rt.block_on(move || {
        Builder::new()
            .lease(&l)
            .spawn(|| braid::current().unwrap().core())
            .unwrap()
            .join()
            .unwrap()
    });
    assert_eq!(core, 1, "the lease was still free");
}
