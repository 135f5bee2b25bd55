//! A fixed amount of scheduler work on one core, for instruction counts
//! (`valgrind --tool=callgrind`) before and after a change to the hot path:
//! two strands yielding to each other, then spawn + join one at a time, then
//! a batch spawned before any is joined (as `braid bench`'s `spawn_join`).
//!
//! `cargo run --release -p braid-examples --example switches [YIELDS] [SPAWNS] [BATCH] [POLICY]`
//! (POLICY: a `braid::sched::PolicyKind` name; default round robin).

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let count = |i: usize, default: u64| {
        args.get(i)
            .map_or(default, |a| a.parse::<u64>().expect("a count"))
    };
    let (yields, spawns, batch) = (count(0, 200_000), count(1, 100_000), count(2, 0));
    let policy = args
        .get(3)
        .map_or(Ok(braid::sched::PolicyKind::RoundRobin), |name| {
            braid::sched::PolicyKind::parse(name)
        });
    let rt = braid::Runtime::builder()
        .cores(1)
        .policy(policy.expect("a policy name"))
        .build()
        .expect("a runtime");
    rt.spawn(move || {
        let a = braid::spawn(move || (0..yields).for_each(|_| braid::yield_now()));
        let b = braid::spawn(move || (0..yields).for_each(|_| braid::yield_now()));
        a.join().unwrap();
        b.join().unwrap();
        for i in 0..spawns {
            assert_eq!(braid::spawn(move || i).join().unwrap(), i);
        }
        let handles: Vec<_> = (0..batch).map(|i| braid::spawn(move || i)).collect();
        let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(sum, batch * batch.saturating_sub(1) / 2);
    })
    .expect("spawn")
    .join()
    .expect("join");
}
