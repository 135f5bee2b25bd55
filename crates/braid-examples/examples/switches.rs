//! A fixed amount of scheduler work on one core, for instruction counts
//! (`valgrind --tool=callgrind`) before and after a change to the hot path:
//! two strands yielding to each other, then spawn + join one at a time, then
//! a batch spawned before any is joined (as `braid bench`'s `spawn_join`).
//!
//! `cargo run --release -p braid-examples --example switches [YIELDS] [SPAWNS] [BATCH]`

fn main() {
    let mut args = std::env::args()
        .skip(1)
        .map(|a| a.parse::<u64>().expect("a count"));
    let yields = args.next().unwrap_or(200_000);
    let spawns = args.next().unwrap_or(100_000);
    let batch = args.next().unwrap_or(0);
    let rt = braid::Runtime::builder()
        .cores(1)
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
