//! The blocking pool, the file helpers on it, and async interop: futures from
//! the `futures` crate and tokio's sync module driven by strands.

mod common;

use common::runtime;
use futures::{SinkExt, StreamExt};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[test]
fn blocking_calls_park_only_their_strand() {
    // One core: if a blocking call held the core, the counter could not move.
    let rt = runtime(1);
    rt.block_on(|| {
        let ticks = Arc::new(AtomicUsize::new(0));
        let t = ticks.clone();
        let counter = braid::spawn(move || {
            let end = Instant::now() + Duration::from_millis(150);
            while Instant::now() < end {
                t.fetch_add(1, Ordering::Relaxed);
                braid::sleep(Duration::from_millis(1)).unwrap();
            }
        });
        let slept = braid::blocking(|| {
            std::thread::sleep(Duration::from_millis(100));
            7
        })
        .unwrap();
        assert_eq!(slept, 7);
        assert!(
            ticks.load(Ordering::Relaxed) >= 20,
            "the core kept running strands while the call blocked: {} ticks",
            ticks.load(Ordering::Relaxed)
        );
        counter.join().unwrap();
    });
}

#[test]
fn more_calls_than_threads_queue_and_all_finish() {
    let rt = braid::Runtime::builder()
        .cores(2)
        .blocking_threads(3)
        .build()
        .unwrap();
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (r, m) = (running.clone(), most.clone());
    let total = rt.block_on(move || {
        let calls: Vec<_> = (0..24u64)
            .map(|i| {
                let (r, m) = (r.clone(), m.clone());
                braid::spawn(move || {
                    braid::blocking(move || {
                        let now = r.fetch_add(1, Ordering::SeqCst) + 1;
                        m.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(5));
                        r.fetch_sub(1, Ordering::SeqCst);
                        i
                    })
                    .unwrap()
                })
            })
            .collect();
        calls.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
    });
    assert_eq!(total, (0..24).sum::<u64>());
    assert_eq!(
        most.load(Ordering::SeqCst),
        3,
        "the pool ran exactly 3 at once"
    );
    assert!(rt.stats().blocking_threads <= 3);
}

#[test]
fn a_panic_in_a_blocking_call_reaches_the_caller() {
    let rt = runtime(1);
    rt.block_on(|| {
        let h = braid::spawn(|| braid::blocking(|| -> u8 { panic!("disk on fire") }));
        let err = h.join().unwrap_err();
        assert!(err.to_string().contains("disk on fire"), "{err}");
        // The pool still works.
        assert_eq!(braid::blocking(|| 5).unwrap(), 5);
    });
}

#[test]
fn a_cancelled_caller_stops_waiting() {
    let rt = runtime(1);
    rt.block_on(|| {
        let done = Arc::new(AtomicUsize::new(0));
        let d = done.clone();
        let h = braid::spawn(move || {
            braid::blocking(move || {
                std::thread::sleep(Duration::from_millis(50));
                d.fetch_add(1, Ordering::SeqCst);
            })
        });
        braid::sleep(Duration::from_millis(10)).unwrap();
        h.group().cancel();
        assert_eq!(h.join().unwrap(), Err(braid::Cancelled));
        // The call itself still ran to the end on the pool.
        let end = Instant::now() + Duration::from_secs(5);
        while done.load(Ordering::SeqCst) == 0 {
            assert!(Instant::now() < end);
            braid::sleep(Duration::from_millis(5)).unwrap();
        }
    });
}

#[test]
fn outside_a_strand_blocking_runs_inline() {
    let here = std::thread::current().id();
    assert_eq!(
        braid::blocking(move || std::thread::current().id() == here),
        Ok(true)
    );
}

#[test]
fn file_helpers_round_trip() {
    let rt = runtime(2);
    let dir = std::env::temp_dir().join(format!("braid-fs-{}", std::process::id()));
    let d = dir.clone();
    rt.block_on(move || {
        braid::fs::create_dir_all(d.join("sub")).unwrap();
        let file = d.join("sub/a.txt");
        braid::fs::write(&file, "hello").unwrap();
        braid::fs::append(&file, " world").unwrap();
        assert_eq!(braid::fs::read_to_string(&file).unwrap(), "hello world");
        assert_eq!(braid::fs::metadata(&file).unwrap().len(), 11);
        assert_eq!(braid::fs::copy(&file, d.join("b.txt")).unwrap(), 11);
        braid::fs::rename(d.join("b.txt"), d.join("c.txt")).unwrap();
        assert_eq!(braid::fs::read(d.join("c.txt")).unwrap(), b"hello world");
        assert_eq!(
            braid::fs::read_dir(&d).unwrap(),
            vec![d.join("c.txt"), d.join("sub")]
        );
        braid::fs::remove_file(d.join("c.txt")).unwrap();
        let err = braid::fs::read(d.join("c.txt")).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
        braid::fs::write(d.join("bad"), [0xffu8, 0xfe]).unwrap();
        let err = braid::fs::read_to_string(d.join("bad")).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        braid::fs::remove_dir_all(&d).unwrap();
        assert!(braid::fs::metadata(&d).is_err());
    });
    assert!(!dir.exists());
}

#[test]
fn lookup_host_resolves_on_the_pool() {
    let rt = runtime(1);
    rt.block_on(|| {
        let addrs = braid::net::lookup_host("localhost:80").unwrap();
        assert!(addrs.iter().any(|a| a.ip().is_loopback()), "{addrs:?}");
        let err = braid::net::lookup_host("no port here").unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
    });
}

#[test]
fn futures_crate_channels_and_combinators() {
    let rt = runtime(2);
    rt.block_on(|| {
        // A oneshot completed by a plain thread: the waker crosses threads.
        let (tx, rx) = futures::channel::oneshot::channel::<u32>();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(10));
            tx.send(41).unwrap();
        });
        assert_eq!(braid::block_on(rx).unwrap(), Ok(41));
        t.join().unwrap();
        // An mpsc stream fed by strands on both cores, summed by a future.
        let (tx, rx) = futures::channel::mpsc::channel::<u64>(4);
        let senders: Vec<_> = (0..4u64)
            .map(|k| {
                let mut tx = tx.clone();
                braid::Builder::new()
                    .core(k as usize % 2)
                    .spawn(move || {
                        braid::block_on(async move {
                            for i in 0..1000 {
                                tx.send(k * 1000 + i).await.unwrap();
                            }
                        })
                        .unwrap()
                    })
                    .unwrap()
            })
            .collect();
        drop(tx);
        let sum = braid::block_on(rx.fold(0u64, |a, v| async move { a + v })).unwrap();
        assert_eq!(sum, (0..4000u64).sum::<u64>());
        for s in senders {
            s.join().unwrap();
        }
        // join_all over spawned futures.
        let handles: Vec<_> = (0..10u64)
            .map(|i| braid::spawn_future(async move { i * 2 }))
            .collect();
        let total: u64 = handles
            .into_iter()
            .map(|h| h.join().unwrap().unwrap())
            .sum();
        assert_eq!(total, 90);
        let joined = braid::block_on(futures::future::join_all(
            (0..5u32).map(|i| async move { i + 1 }),
        ))
        .unwrap();
        assert_eq!(joined, vec![1, 2, 3, 4, 5]);
    });
}

#[test]
fn tokio_sync_primitives_work_without_a_tokio_runtime() {
    let rt = runtime(2);
    rt.block_on(|| {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<u32>(8);
        let producer = braid::spawn_future(async move {
            for i in 0..500 {
                tx.send(i).await.unwrap();
            }
        });
        let mut got = 0u64;
        while let Some(v) = braid::block_on(rx.recv()).unwrap() {
            got += u64::from(v);
        }
        assert_eq!(got, (0..500u64).sum::<u64>());
        producer.join().unwrap().unwrap();
        let lock = Arc::new(tokio::sync::Mutex::new(0u32));
        let workers: Vec<_> = (0..8)
            .map(|_| {
                let lock = lock.clone();
                braid::spawn_future(async move {
                    for _ in 0..100 {
                        *lock.lock().await += 1;
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap().unwrap();
        }
        assert_eq!(*braid::block_on(lock.lock()).unwrap(), 800);
    });
}

#[test]
fn a_pending_future_is_dropped_when_its_strand_is_cancelled() {
    let rt = runtime(1);
    rt.block_on(|| {
        let h = braid::spawn_future(futures::future::pending::<()>());
        braid::sleep(Duration::from_millis(10)).unwrap();
        h.group().cancel();
        assert_eq!(h.join().unwrap(), Err(braid::Cancelled));
    });
}

#[test]
fn block_on_outside_a_strand_parks_the_thread() {
    let (tx, rx) = futures::channel::oneshot::channel::<&str>();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(10));
        tx.send("woken").unwrap();
    });
    assert_eq!(braid::block_on(rx).unwrap(), Ok("woken"));
    t.join().unwrap();
}

#[test]
fn two_calls_arriving_together_get_two_threads() {
    // One thread is left idle by a first call; two calls that need each
    // other then arrive at once: on one thread they would deadlock (each
    // waits for the other), so the pool must start a second thread.
    let rt = runtime(2);
    rt.block_on(|| {
        braid::blocking(|| ()).unwrap();
        let (to_b, from_a) = std::sync::mpsc::channel::<()>();
        let (to_a, from_b) = std::sync::mpsc::channel::<()>();
        let a = braid::spawn(move || {
            braid::blocking(move || {
                to_b.send(()).unwrap();
                from_b.recv_timeout(Duration::from_secs(5)).is_ok()
            })
            .unwrap()
        });
        let b = braid::spawn(move || {
            braid::blocking(move || {
                let got = from_a.recv_timeout(Duration::from_secs(5)).is_ok();
                to_a.send(()).unwrap();
                got
            })
            .unwrap()
        });
        assert!(a.join().unwrap() && b.join().unwrap());
    });
}
