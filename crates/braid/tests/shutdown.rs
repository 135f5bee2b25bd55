//! Dropping a runtime with strands still running or blocked: every strand is
//! unwound so that what it owns is released, joiners and channel peers
//! outside the runtime are let go, a strand that never returns costs a
//! detached thread and a bounded wait, and a drop from inside the runtime
//! neither deadlocks nor panics.

mod common;
use braid::sync::{channel, Mutex, Semaphore};
use braid::{event, Runtime};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Counts its drops: held by a strand, it is dropped only if the strand's
/// stack is unwound (or the strand returns).
struct Owned(Arc<AtomicUsize>);

impl Drop for Owned {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn runtime(cores: usize) -> Runtime {
    Runtime::builder()
        .cores(cores)
        .pin(false)
        .shutdown_timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// How many strands [`block_every_way`] starts per copy.
const WAYS: usize = 13;

/// What strands blocked every way share with the world outside their
/// runtime, to check after the drop: a channel whose only sender a strand
/// holds, and a port a strand listens on.
struct Outside {
    held_rx: channel::Receiver<u8>,
    port: u16,
}

/// Starts, from outside `rt`, `copies` strands blocked in each way braid
/// has, each holding an `Owned` on `dropped`; returns once they all run
/// (they then block for good: nothing will wake them).
fn block_every_way(rt: &Runtime, dropped: &Arc<AtomicUsize>, copies: usize) -> Vec<Outside> {
    let started = Arc::new(AtomicUsize::new(0));
    let outside = (0..copies)
        .map(|_| block_one_copy(rt, dropped, &started))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while started.load(Ordering::SeqCst) < WAYS * copies {
        assert!(Instant::now() < deadline, "the strands did not all start");
        std::thread::sleep(Duration::from_millis(1));
    }
    // Let each reach its blocking call.
    std::thread::sleep(Duration::from_millis(50));
    outside
}

fn block_one_copy(rt: &Runtime, dropped: &Arc<AtomicUsize>, started: &Arc<AtomicUsize>) -> Outside {
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    let (held_tx, held_rx) = channel::bounded::<u8>(1);
    let lock = Arc::new(Mutex::new(()));
    let locked = Arc::new(AtomicBool::new(false));
    let none = Arc::new(Semaphore::new(0));
    let mut bodies: Vec<Box<dyn FnOnce() + Send>> = Vec::new();
    bodies.push(Box::new(|| drop(event::wait("never-signalled"))));
    bodies.push(Box::new(|| loop {
        braid::park();
    }));
    bodies.push(Box::new(|| {
        let (_tx, rx) = channel::bounded::<u8>(1);
        let _ = rx.recv();
    }));
    bodies.push(Box::new(|| {
        let _ = braid::sleep(Duration::from_secs(3600));
    }));
    bodies.push(Box::new(move || {
        let listener = braid::net::TcpListener::bind("127.0.0.1:0").unwrap();
        port_tx.send(listener.local_addr().unwrap().port()).unwrap();
        let _ = listener.accept();
    }));
    {
        let (lock, locked) = (lock.clone(), locked.clone());
        bodies.push(Box::new(move || {
            let _guard = lock.lock().unwrap();
            locked.store(true, Ordering::SeqCst);
            loop {
                braid::park();
            }
        }));
    }
    bodies.push(Box::new(move || {
        while !locked.load(Ordering::SeqCst) {
            braid::yield_now();
        }
        let _ = lock.lock();
    }));
    bodies.push(Box::new(|| {
        // A connected socket, read with nothing to read.
        let listener = braid::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let _client = braid::net::TcpStream::connect(addr).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        let mut byte = [0u8; 1];
        let _ = std::io::Read::read(&mut server, &mut byte);
    }));
    bodies.push(Box::new(move || {
        // Holds the only sender of a channel a plain thread receives on.
        let _tx = held_tx;
        loop {
            braid::park();
        }
    }));
    bodies.push(Box::new(move || drop(none.acquire())));
    bodies.push(Box::new(|| {
        // Joins a child blocked for good.
        let child = braid::spawn(|| drop(event::wait("never-either")));
        let _ = child.join();
    }));
    bodies.push(Box::new(|| {
        // Waits for a group that never ends.
        let child = braid::spawn(|| loop {
            braid::park();
        });
        let _ = child.group().wait();
    }));
    let cap = rt.closure_cap();
    bodies.push(Box::new(move || {
        // Hosts a scheduler closure.
        let name = event::local("hosted").unwrap();
        event::on_signal(&cap, &name, |_| {}).unwrap();
        loop {
            braid::park();
        }
    }));
    assert_eq!(bodies.len(), WAYS);
    for body in bodies {
        let (dropped, started) = (dropped.clone(), started.clone());
        rt.spawn(move || {
            let _owned = Owned(dropped);
            started.fetch_add(1, Ordering::SeqCst);
            body();
        })
        .unwrap();
    }
    let port = port_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    Outside { held_rx, port }
}

/// Checks that what the strands of `outside` shared went with them.
fn released(outside: &[Outside]) {
    for Outside { held_rx, port } in outside {
        // The channel's sender went with its strand.
        assert_eq!(
            held_rx.recv_timeout(Duration::from_secs(1)),
            Err(channel::RecvError::Disconnected)
        );
        // The listener went with its strand.
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", *port)).is_err(),
            "port {port} still accepts after the drop"
        );
    }
}

#[test]
fn dropping_a_runtime_unwinds_every_blocked_strand() {
    let dropped = Arc::new(AtomicUsize::new(0));
    let rt = runtime(2);
    let outside = block_every_way(&rt, &dropped, 2);
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        0,
        "nothing ended before the drop"
    );
    let start = Instant::now();
    drop(rt);
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "the drop took {:?}",
        start.elapsed()
    );
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        2 * WAYS,
        "every strand was unwound"
    );
    released(&outside);
}

/// What this process holds: resident bytes, threads, descriptors, mappings.
#[derive(Debug, Clone, Copy)]
struct Held {
    resident: u64,
    threads: usize,
    fds: usize,
    maps: usize,
}

fn held() -> Held {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    let count = |dir: &str| std::fs::read_dir(dir).unwrap().count();
    Held {
        resident: pages * 4096,
        threads: count("/proc/self/task"),
        fds: count("/proc/self/fd"),
        maps: std::fs::read_to_string("/proc/self/maps")
            .unwrap()
            .lines()
            .count(),
    }
}

/// The rounds measure the whole process, so they run in a process of their
/// own: this test runs [`rounds_in_a_process_of_their_own`] alone.
#[test]
fn thirty_drops_of_a_thousand_blocked_strands_give_everything_back() {
    common::run_alone_in_a_child("rounds_in_a_process_of_their_own");
}

/// 30 rounds of build, about a thousand strands blocked every way, drop;
/// after each, what the process holds is back within a small bound of what
/// it held after the first.
#[test]
#[ignore = "run by thirty_drops_of_a_thousand_blocked_strands_give_everything_back"]
fn rounds_in_a_process_of_their_own() {
    const ROUNDS: usize = 30;
    const COPIES: usize = 1000 / WAYS + 1;
    let mut first = None;
    for round in 0..ROUNDS {
        let dropped = Arc::new(AtomicUsize::new(0));
        let rt = runtime(2);
        let outside = block_every_way(&rt, &dropped, COPIES);
        drop(rt);
        assert_eq!(
            dropped.load(Ordering::SeqCst),
            WAYS * COPIES,
            "round {round}"
        );
        released(&outside);
        drop(outside);
        let now = held();
        println!("round {round}: {now:?}");
        let first = *first.get_or_insert(now);
        assert!(
            now.threads <= first.threads,
            "round {round}: {now:?} after {first:?}"
        );
        assert!(
            now.fds <= first.fds,
            "round {round}: {now:?} after {first:?}"
        );
        assert!(
            now.maps <= first.maps + 32,
            "round {round}: {now:?} after {first:?}"
        );
        assert!(
            now.resident <= first.resident + 4 * 1024 * 1024,
            "round {round}: {now:?} after {first:?}"
        );
    }
}

#[test]
fn a_thread_joining_an_unwound_strand_gets_a_shut_down_error() {
    let rt = runtime(2);
    let blocked = rt.spawn(|| drop(event::wait("never"))).unwrap();
    let unstarted: Vec<_> = (0..200)
        .map(|_| {
            rt.spawn(|| braid::sleep(Duration::from_secs(3600)))
                .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_millis(20));
    let joiner = std::thread::spawn(move || blocked.join());
    std::thread::sleep(Duration::from_millis(20));
    drop(rt);
    let err = joiner.join().unwrap().unwrap_err();
    assert!(err.is_shut_down(), "{err}");
    assert!(err.to_string().contains("shut down"), "{err}");
    for handle in unstarted {
        // Started and unwound in its sleep, or never started: both shut down.
        let err = handle.join().unwrap_err();
        assert!(err.is_shut_down(), "{err}");
    }
}

#[test]
fn a_strand_blocked_on_a_channel_is_unwound_without_seeing_an_error() {
    let rt = runtime(1);
    let dropped = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicUsize::new(0));
    let (d, n) = (dropped.clone(), errors.clone());
    rt.spawn(move || {
        let _owned = Owned(d);
        let (_tx, rx) = channel::bounded::<u8>(1);
        loop {
            // Unwound inside, once its wait is withdrawn.
            let _ = rx.recv();
            n.fetch_add(1, Ordering::SeqCst);
        }
    })
    .unwrap();
    std::thread::sleep(Duration::from_millis(20));
    drop(rt);
    assert_eq!(dropped.load(Ordering::SeqCst), 1);
    assert_eq!(errors.load(Ordering::SeqCst), 0);
}

#[test]
fn a_running_strand_is_unwound_at_its_next_yield() {
    let rt = runtime(1);
    let dropped = Arc::new(AtomicUsize::new(0));
    let yields = Arc::new(AtomicUsize::new(0));
    let (d, n) = (dropped.clone(), yields.clone());
    rt.spawn(move || {
        let _owned = Owned(d);
        loop {
            n.fetch_add(1, Ordering::SeqCst);
            braid::yield_now();
        }
    })
    .unwrap();
    while yields.load(Ordering::SeqCst) < 10 {
        std::thread::sleep(Duration::from_millis(1));
    }
    drop(rt);
    assert_eq!(dropped.load(Ordering::SeqCst), 1);
}

#[test]
fn a_scope_waits_for_its_unwound_strands_before_its_borrows_go() {
    let rt = runtime(2);
    /// Logs its drop, as `first` or `last`.
    struct Logged(&'static str, Arc<std::sync::Mutex<Vec<&'static str>>>);
    impl Drop for Logged {
        fn drop(&mut self) {
            self.1.lock().unwrap().push(self.0);
        }
    }
    let log = Arc::new(std::sync::Mutex::new(Vec::new()));
    let started = Arc::new(AtomicUsize::new(0));
    let (l, st) = (log.clone(), started.clone());
    rt.spawn(move || {
        let borrowed = Logged("borrowed", l.clone());
        braid::scope(|s| {
            for _ in 0..3 {
                let (st, l, borrowed) = (st.clone(), l.clone(), &borrowed);
                s.spawn(move || {
                    let _mine = Logged("scoped", l);
                    st.fetch_add(1, Ordering::SeqCst);
                    let _ = event::wait("never");
                    borrowed.0.len()
                });
            }
        });
    })
    .unwrap();
    while started.load(Ordering::SeqCst) < 3 {
        std::thread::sleep(Duration::from_millis(1));
    }
    drop(rt);
    // The borrowed value went last, after every scoped strand's.
    assert_eq!(
        *log.lock().unwrap(),
        ["scoped", "scoped", "scoped", "borrowed"]
    );
}

#[test]
fn a_strand_that_never_returns_costs_a_detached_thread_and_the_timeout() {
    let rt = Runtime::builder()
        .cores(1)
        .pin(false)
        .shutdown_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let spinning = Arc::new(AtomicBool::new(false));
    let (s, r) = (stop.clone(), spinning.clone());
    let hog = rt
        .spawn(move || {
            r.store(true, Ordering::SeqCst);
            while !s.load(Ordering::Relaxed) {
                std::hint::spin_loop();
            }
            1
        })
        .unwrap();
    while !spinning.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(1));
    }
    let start = Instant::now();
    drop(rt);
    let took = start.elapsed();
    assert!(
        (Duration::from_millis(200)..Duration::from_secs(2)).contains(&took),
        "the drop took {took:?}"
    );
    // The strand still runs on its detached thread; once it returns, its
    // joiner has its value.
    stop.store(true, Ordering::Relaxed);
    assert_eq!(hog.join().unwrap(), 1);
}

#[test]
fn dropping_the_last_handle_from_inside_a_strand_shuts_down_in_the_background() {
    let rt = Arc::new(runtime(2));
    let dropped = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = std::sync::mpsc::channel();
    let (inner, d) = (rt.clone(), dropped.clone());
    rt.spawn(move || {
        let _owned = Owned(d);
        braid::sleep(Duration::from_millis(30)).unwrap();
        // The last handle: the main thread dropped its own meanwhile.
        drop(inner);
        tx.send(()).unwrap();
        // Unwound here: the runtime is shutting down.
        loop {
            braid::yield_now();
        }
    })
    .unwrap();
    drop(rt);
    rx.recv_timeout(Duration::from_secs(5))
        .expect("the strand went on after dropping its runtime");
    let deadline = Instant::now() + Duration::from_secs(5);
    while dropped.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the strand was not unwound");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn destructors_may_block_while_a_strand_unwinds() {
    // A destructor that locks, joins and sleeps during the unwind: its
    // blocking calls return their cancellation errors (no second unwind,
    // which would abort the process).
    // What Drop impls commonly do, with `unwrap`: a blocking call that
    // failed here would panic during the unwind and abort the process.
    struct Blocks(Arc<Mutex<u32>>, Arc<AtomicUsize>);
    impl Drop for Blocks {
        fn drop(&mut self) {
            braid::sleep(Duration::from_millis(1)).unwrap();
            *self.0.lock().unwrap() += 1;
            // A strand started now is shut down before it runs; joining it
            // waits for that.
            let child = braid::spawn(|| 1);
            if child.join().is_err_and(|e| e.is_shut_down()) {
                self.1.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
    let rt = runtime(2);
    let done = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    let lock = Arc::new(Mutex::new(0));
    for _ in 0..20 {
        let (l, d, st) = (lock.clone(), done.clone(), started.clone());
        rt.spawn(move || {
            let _blocks = Blocks(l, d);
            st.fetch_add(1, Ordering::SeqCst);
            loop {
                braid::park();
            }
        })
        .unwrap();
    }
    while started.load(Ordering::SeqCst) < 20 {
        std::thread::sleep(Duration::from_millis(1));
    }
    drop(rt);
    assert_eq!(done.load(Ordering::SeqCst), 20);
    assert_eq!(*lock.try_lock().unwrap(), 20);
}
