//! `RuntimeBuilder::max_strands`: spawns past the limit get a typed error,
//! the limit holds however strands come and go, and under an address-space
//! limit the default keeps a spawning program from an allocation failure.

mod common;
use braid::Runtime;
use std::sync::Arc;
use std::time::Duration;

/// Spawns strands that wait on `gate` until one is refused (or `most`
/// succeeded); returns their handles and the refusal.
fn spawn_until_refused(
    gate: &Arc<braid::sync::WaitGroup>,
    most: usize,
) -> (Vec<braid::JoinHandle<()>>, Option<braid::SpawnError>) {
    let mut handles = Vec::new();
    while handles.len() < most {
        let gate = gate.clone();
        match braid::Builder::new().spawn(move || gate.wait().unwrap()) {
            Ok(h) => handles.push(h),
            Err(err) => return (handles, Some(err)),
        }
    }
    (handles, None)
}

#[test]
fn spawns_past_the_limit_are_refused_with_a_typed_error() {
    const LIMIT: u64 = 1000;
    let rt = Runtime::builder()
        .cores(2)
        .max_strands(LIMIT)
        .build()
        .unwrap();
    let (first, second, outside) = rt.block_on(|| {
        let gate = Arc::new(braid::sync::WaitGroup::new());
        gate.add(1);
        let (handles, refused) = spawn_until_refused(&gate, 10 * LIMIT as usize);
        // This strand holds one permit, every core started with none: the
        // first wave gets exactly the rest.
        let first = (
            handles.len(),
            refused.map(|e| (e.too_many_strands_limit(), e.to_string())),
        );
        gate.done();
        for h in handles {
            h.join().unwrap();
        }
        // The permits came back wherever the strands ended; at most the
        // other core's reserve (two chunks) is not yet in the pool.
        let gate = Arc::new(braid::sync::WaitGroup::new());
        gate.add(1);
        let (handles, refused) = spawn_until_refused(&gate, 10 * LIMIT as usize);
        let second = (handles.len(), refused.is_some());
        let outside = (handles, gate);
        (first, second, outside)
    });
    let (first_count, first_refusal) = first;
    assert_eq!(
        first_count as u64,
        LIMIT - 1,
        "strands spawned before the refusal"
    );
    let (limit, message) = first_refusal.expect("a spawn past the limit was refused");
    assert_eq!(limit, Some(LIMIT));
    assert!(message.contains("max_strands = 1000"), "{message}");
    let (second_count, second_refused) = second;
    assert!(second_refused);
    assert!(
        second_count as u64 >= LIMIT - 1 - 2 * braid_core::sched::quota::chunk_for(LIMIT, 2)
            && (second_count as u64) < LIMIT,
        "second wave: {second_count}"
    );
    // From outside the runtime, while the second wave waits: refused too,
    // once the pool is empty.
    let (handles, gate) = outside;
    let mut extra = Vec::new();
    let refused = loop {
        match rt.spawn(|| ()) {
            Ok(h) => extra.push(h),
            Err(err) => break err,
        }
        assert!(extra.len() <= 2 * braid_core::sched::quota::chunk_for(LIMIT, 2) as usize);
    };
    assert_eq!(refused.too_many_strands_limit(), Some(LIMIT));
    gate.done();
    for h in handles {
        h.join().unwrap();
    }
    for h in extra {
        h.join().unwrap();
    }
    // Everything ended: the whole limit is available again, bar the
    // reserves.
    let again = rt.block_on(move || {
        let gate = Arc::new(braid::sync::WaitGroup::new());
        let (handles, _) = spawn_until_refused(&gate, (LIMIT - 1) as usize);
        let n = handles.len();
        for h in handles {
            h.join().unwrap();
        }
        n
    });
    assert!(again as u64 >= LIMIT - 1 - 2 * braid_core::sched::quota::chunk_for(LIMIT, 2));
}

/// Under 128 permits per core no core keeps a reserve: the limit is exact
/// both ways, whichever core a strand starts and ends on, and from outside
/// the runtime as from inside.
#[test]
fn a_small_limit_is_exact() {
    let rt = Runtime::builder().cores(2).max_strands(1).build().unwrap();
    for round in 0..3 {
        let inner = rt.block_on(|| braid::Builder::new().spawn(|| ()).map(|h| h.join()));
        let err = inner.expect_err("the block_on strand holds the only permit");
        assert_eq!(err.too_many_strands_limit(), Some(1), "round {round}");
    }
    drop(rt);
    const LIMIT: u64 = 200;
    let rt = Runtime::builder()
        .cores(2)
        .max_strands(LIMIT)
        .build()
        .unwrap();
    for round in 0..3 {
        let spawned = rt.block_on(|| {
            let gate = Arc::new(braid::sync::WaitGroup::new());
            gate.add(1);
            let (handles, refused) = spawn_until_refused(&gate, 10 * LIMIT as usize);
            assert!(refused.is_some());
            gate.done();
            let n = handles.len() as u64;
            for h in handles {
                h.join().unwrap();
            }
            n
        });
        assert_eq!(spawned, LIMIT - 1, "round {round}");
    }
}

#[test]
fn the_limit_is_checked() {
    for bad in [0, braid::MAX_STRANDS + 1] {
        let err = Runtime::builder().max_strands(bad).build().unwrap_err();
        assert_eq!(err.setting(), "max_strands", "{err}");
    }
}

/// Under `ulimit -v` (4 GB here), the default limit refuses spawns before
/// the address space runs out: the program gets errors, not an abort. Runs in
/// a child process, whose address space this test limits.
#[test]
fn under_an_address_space_limit_spawns_fail_instead_of_the_process() {
    let text = common::run_alone_in_a_child("spawning_under_ulimit_v");
    assert!(text.contains("refused after"), "{text}");
}

#[test]
#[ignore = "run by under_an_address_space_limit_spawns_fail_instead_of_the_process"]
fn spawning_under_ulimit_v() {
    let limit = libc::rlimit {
        rlim_cur: 4_000_000 * 1024,
        rlim_max: 4_000_000 * 1024,
    };
    // SAFETY: setrlimit reads the limit it is given a pointer to.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) }, 0);
    let rt = Runtime::builder().cores(2).build().unwrap();
    let (spawned, ran, refused) = rt.block_on(|| {
        let gate = Arc::new(braid::sync::WaitGroup::new());
        gate.add(1);
        let (handles, refused) = spawn_until_refused(&gate, 100_000);
        // Let every one of them run (and so map its stack) before the end.
        braid::sleep(Duration::from_millis(200)).unwrap();
        gate.done();
        let n = handles.len();
        let ran = handles.into_iter().filter_map(|h| h.join().ok()).count();
        (n, ran, refused)
    });
    let refused = refused.expect("100 000 strands fit in 4 GB?");
    assert!(refused.too_many_strands_limit().is_some(), "{refused}");
    assert_eq!(ran, spawned, "every strand admitted ran to its end");
    println!("refused after {spawned} strands: {refused}");
}
