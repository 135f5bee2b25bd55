//! The strand sync toolkit, across cores: channels (bounded, unbounded, many
//! senders and receivers, disconnection, timeouts, cancellation, select),
//! Mutex, RwLock, Semaphore, Barrier, WaitGroup, OnceCell. Counts are exact.

mod common;

use braid::sync::channel::{self, RecvError, Select, SelectError, SendError, TryRecvError};
use braid::sync::{Barrier, Mutex, OnceCell, RwLock, Semaphore, WaitGroup};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::runtime;

#[test]
fn many_senders_and_receivers_deliver_every_message_once() {
    const PER_SENDER: u64 = 50_000;
    const SENDERS: u64 = 4;
    const RECEIVERS: usize = 4;
    let rt = runtime(2);
    for capacity in [Some(8), None] {
        let (sum, count) = rt.block_on(move || {
            let (tx, rx) = match capacity {
                Some(c) => channel::bounded(c),
                None => channel::unbounded(),
            };
            let receivers: Vec<_> = (0..RECEIVERS)
                .map(|i| {
                    let rx = rx.clone();
                    braid::Builder::new()
                        .core(i % 2)
                        .spawn(move || {
                            let (mut sum, mut count) = (0u64, 0u64);
                            for v in rx.iter() {
                                sum += v;
                                count += 1;
                            }
                            (sum, count)
                        })
                        .unwrap()
                })
                .collect();
            drop(rx);
            let senders: Vec<_> = (0..SENDERS)
                .map(|s| {
                    let tx = tx.clone();
                    braid::Builder::new()
                        .core((s % 2) as usize)
                        .spawn(move || {
                            for i in 0..PER_SENDER {
                                tx.send(s * PER_SENDER + i).unwrap();
                            }
                        })
                        .unwrap()
                })
                .collect();
            drop(tx);
            senders.into_iter().for_each(|h| h.join().unwrap());
            receivers
                .into_iter()
                .map(|h| h.join().unwrap())
                .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
        });
        let n = SENDERS * PER_SENDER;
        assert_eq!(count, n, "capacity {capacity:?}");
        assert_eq!(sum, n * (n - 1) / 2, "capacity {capacity:?}");
    }
}

#[test]
fn a_bounded_channel_blocks_the_sender_when_full() {
    let rt = runtime(2);
    rt.block_on(|| {
        let (tx, rx) = channel::bounded(2);
        tx.send(1).unwrap();
        tx.send(2).unwrap();
        assert!(matches!(
            tx.try_send(3),
            Err(channel::TrySendError::Full(3))
        ));
        assert_eq!(
            tx.send_timeout(3, Duration::from_millis(20)),
            Err(SendError::Timeout(3))
        );
        let sent = Arc::new(AtomicUsize::new(0));
        let s = sent.clone();
        let h = braid::spawn(move || {
            tx.send(3).unwrap(); // blocks until a slot frees
            s.store(1, Ordering::SeqCst);
        });
        braid::sleep(Duration::from_millis(20)).unwrap();
        assert_eq!(sent.load(Ordering::SeqCst), 0, "send did not block");
        assert_eq!(rx.recv(), Ok(1));
        h.join().unwrap();
        assert_eq!(sent.load(Ordering::SeqCst), 1);
        assert_eq!((rx.recv(), rx.recv()), (Ok(2), Ok(3)));
    });
}

#[test]
fn disconnection_is_seen_on_both_sides() {
    let rt = runtime(2);
    rt.block_on(|| {
        let (tx, rx) = channel::unbounded::<u8>();
        tx.send(1).unwrap();
        drop(tx);
        assert_eq!(rx.recv(), Ok(1), "queued messages survive the senders");
        assert_eq!(rx.recv(), Err(RecvError::Disconnected));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));

        let (tx, rx) = channel::bounded::<u8>(1);
        tx.send(1).unwrap();
        let blocked = braid::spawn(move || tx.send(2));
        braid::sleep(Duration::from_millis(10)).unwrap();
        drop(rx); // wakes the blocked sender
        assert_eq!(blocked.join().unwrap(), Err(SendError::Disconnected(2)));

        // A receiver blocked when the last sender goes away wakes up.
        let (tx, rx) = channel::unbounded::<u8>();
        let waiting = braid::spawn(move || rx.recv());
        braid::sleep(Duration::from_millis(10)).unwrap();
        drop(tx);
        assert_eq!(waiting.join().unwrap(), Err(RecvError::Disconnected));
    });
}

#[test]
fn receive_timeouts_and_cancellation() {
    let rt = runtime(2);
    rt.block_on(|| {
        let (tx, rx) = channel::unbounded::<u8>();
        let start = Instant::now();
        assert_eq!(
            rx.recv_timeout(Duration::from_millis(30)),
            Err(RecvError::Timeout)
        );
        assert!(start.elapsed() >= Duration::from_millis(30));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        let h = braid::spawn(move || rx.recv());
        braid::sleep(Duration::from_millis(10)).unwrap();
        h.group().cancel();
        assert_eq!(h.join().unwrap(), Err(RecvError::Cancelled));
        drop(tx);
    });
}

#[test]
fn select_over_channels_of_different_types() {
    let rt = runtime(2);
    rt.block_on(|| {
        let (tx_num, rx_num) = channel::unbounded::<u64>();
        let (tx_txt, rx_txt) = channel::unbounded::<String>();
        // Nothing ready: times out.
        {
            let mut sel = Select::new();
            sel.recv(&rx_num);
            sel.recv(&rx_txt);
            assert_eq!(
                sel.ready_timeout(Duration::from_millis(20)),
                Err(SelectError::Timeout)
            );
        }
        // A message sent from another core wakes the selector.
        let sender = braid::Builder::new()
            .core(1)
            .spawn(move || {
                braid::sleep(Duration::from_millis(10)).unwrap();
                tx_txt.send("hi".to_string()).unwrap();
                tx_num
            })
            .unwrap();
        let mut got = Vec::new();
        let mut sel = Select::new();
        let num = sel.recv(&rx_num);
        let txt = sel.recv(&rx_txt);
        let i = sel.ready().unwrap();
        assert_eq!(i, txt);
        got.push(rx_txt.try_recv().unwrap());
        let tx_num = sender.join().unwrap();
        tx_num.send(7).unwrap();
        assert_eq!(sel.ready().unwrap(), num);
        assert_eq!(rx_num.try_recv(), Ok(7));
        assert_eq!(got, ["hi"]);
        // Disconnection counts as ready.
        drop(tx_num);
        assert_eq!(sel.ready().unwrap(), num);
        assert_eq!(rx_num.try_recv(), Err(TryRecvError::Disconnected));
    });
}

/// Selects and plain receivers compete for the messages of one channel; every
/// message is received exactly once and nobody is left waiting.
#[test]
fn select_competing_with_receivers_loses_nothing() {
    const N: u64 = 100_000;
    let rt = runtime(2);
    let total = rt.block_on(|| {
        let (tx, rx) = channel::unbounded::<u64>();
        let (_idle_tx, idle_rx) = channel::unbounded::<u64>();
        let mut takers = Vec::new();
        for i in 0..4 {
            let rx = rx.clone();
            let idle_rx = idle_rx.clone();
            takers.push(
                braid::Builder::new()
                    .core(i % 2)
                    .spawn(move || {
                        let mut sum = 0;
                        loop {
                            if i % 2 == 0 {
                                let mut sel = Select::new();
                                let _ = sel.recv(&idle_rx);
                                let main = sel.recv(&rx);
                                if sel.ready().unwrap() != main {
                                    continue;
                                }
                                match rx.try_recv() {
                                    Ok(v) => sum += v,
                                    Err(TryRecvError::Empty) => continue,
                                    Err(TryRecvError::Disconnected) => return sum,
                                }
                            } else {
                                match rx.recv() {
                                    Ok(v) => sum += v,
                                    Err(_) => return sum,
                                }
                            }
                        }
                    })
                    .unwrap(),
            );
        }
        drop(rx);
        for v in 1..=N {
            tx.send(v).unwrap();
            if v % 100 == 0 {
                braid::yield_now();
            }
        }
        drop(tx);
        takers.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
    });
    assert_eq!(total, N * (N + 1) / 2);
}

#[test]
fn threads_outside_the_runtime_use_channels_too() {
    let rt = runtime(2);
    let (to_strand, from_thread) = channel::bounded::<u32>(4);
    let (to_thread, from_strand) = channel::unbounded::<u32>();
    let echo = rt
        .spawn(move || {
            for v in from_thread.iter() {
                to_thread.send(v * 2).unwrap();
            }
        })
        .unwrap();
    let t = std::thread::spawn(move || {
        for v in 0..1000 {
            to_strand.send(v).unwrap();
        }
    });
    let doubled: u32 = (0..1000).map(|_| from_strand.recv().unwrap()).sum();
    t.join().unwrap();
    echo.join().unwrap();
    assert_eq!(doubled, 2 * (0..1000).sum::<u32>());
    assert_eq!(from_strand.recv(), Err(RecvError::Disconnected));
}

#[test]
fn mutex_counts_exactly_under_contention() {
    let rt = runtime(2);
    let count = rt.block_on(|| {
        let m = Arc::new(Mutex::new(0u64));
        let hs: Vec<_> = (0..8)
            .map(|i| {
                let m = m.clone();
                braid::Builder::new()
                    .core(i % 2)
                    .spawn(move || {
                        for k in 0..20_000 {
                            let mut g = m.lock().unwrap();
                            *g += 1;
                            if k % 100 == 0 {
                                braid::yield_now(); // holding the lock across a switch
                            }
                        }
                    })
                    .unwrap()
            })
            .collect();
        hs.into_iter().for_each(|h| h.join().unwrap());
        let v = *m.lock().unwrap();
        v
    });
    assert_eq!(count, 160_000);
}

#[test]
fn mutex_timeout_try_lock_and_cancellation() {
    let rt = runtime(2);
    rt.block_on(|| {
        let m = Arc::new(Mutex::new(1));
        let g = m.lock().unwrap();
        assert!(m.try_lock().is_none());
        assert!(m.lock_timeout(Duration::from_millis(10)).unwrap().is_none());
        let m2 = m.clone();
        let h = braid::spawn(move || m2.lock().map(|g| *g));
        braid::sleep(Duration::from_millis(10)).unwrap();
        h.group().cancel();
        assert_eq!(h.join().unwrap(), Err(braid::Cancelled));
        drop(g);
        assert_eq!(*m.try_lock().unwrap(), 1);
    });
}

#[test]
fn rwlock_readers_share_writers_exclude() {
    let rt = runtime(2);
    rt.block_on(|| {
        let lock = Arc::new(RwLock::new(0u64));
        let inside = Arc::new(AtomicUsize::new(0));
        let max_readers = Arc::new(AtomicUsize::new(0));
        let hs: Vec<_> = (0..8)
            .map(|i| {
                let (lock, inside, max_readers) =
                    (lock.clone(), inside.clone(), max_readers.clone());
                braid::Builder::new()
                    .core(i % 2)
                    .spawn(move || {
                        for _ in 0..500 {
                            if i == 0 {
                                let mut w = lock.write().unwrap();
                                assert_eq!(inside.load(Ordering::SeqCst), 0, "writer with readers");
                                *w += 1;
                            } else {
                                let r = lock.read().unwrap();
                                let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
                                max_readers.fetch_max(n, Ordering::SeqCst);
                                braid::yield_now();
                                let _ = *r;
                                inside.fetch_sub(1, Ordering::SeqCst);
                            }
                        }
                    })
                    .unwrap()
            })
            .collect();
        hs.into_iter().for_each(|h| h.join().unwrap());
        assert_eq!(*lock.read().unwrap(), 500);
        assert!(
            max_readers.load(Ordering::SeqCst) > 1,
            "readers never overlapped"
        );
    });
}

#[test]
fn semaphore_bounds_concurrency() {
    let rt = runtime(2);
    rt.block_on(|| {
        let sem = Arc::new(Semaphore::new(3));
        let inside = Arc::new(AtomicUsize::new(0));
        let max = Arc::new(AtomicUsize::new(0));
        let hs: Vec<_> = (0..12)
            .map(|i| {
                let (sem, inside, max) = (sem.clone(), inside.clone(), max.clone());
                braid::Builder::new()
                    .core(i % 2)
                    .spawn(move || {
                        for _ in 0..200 {
                            let _p = sem.acquire().unwrap();
                            let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
                            max.fetch_max(n, Ordering::SeqCst);
                            braid::yield_now();
                            inside.fetch_sub(1, Ordering::SeqCst);
                        }
                    })
                    .unwrap()
            })
            .collect();
        hs.into_iter().for_each(|h| h.join().unwrap());
        assert_eq!(max.load(Ordering::SeqCst), 3);
        assert_eq!(sem.available(), 3);
        let held: Vec<_> = (0..3).map(|_| sem.try_acquire().unwrap()).collect();
        assert!(sem.try_acquire().is_none());
        assert!(sem
            .acquire_timeout(Duration::from_millis(5))
            .unwrap()
            .is_none());
        drop(held);
    });
}

#[test]
fn barrier_releases_rounds_with_one_leader_each() {
    const PARTIES: usize = 6;
    const ROUNDS: usize = 50;
    let rt = runtime(2);
    let leaders = rt.block_on(|| {
        let barrier = Arc::new(Barrier::new(PARTIES));
        let phase = Arc::new(AtomicUsize::new(0));
        let hs: Vec<_> = (0..PARTIES)
            .map(|i| {
                let (barrier, phase) = (barrier.clone(), phase.clone());
                braid::Builder::new()
                    .core(i % 2)
                    .spawn(move || {
                        let mut led = 0;
                        for round in 0..ROUNDS {
                            // Nobody runs ahead into the next round.
                            assert!(phase.load(Ordering::SeqCst) >= round * PARTIES);
                            phase.fetch_add(1, Ordering::SeqCst);
                            if barrier.wait().unwrap().is_leader() {
                                led += 1;
                            }
                            assert!(phase.load(Ordering::SeqCst) >= (round + 1) * PARTIES);
                        }
                        led
                    })
                    .unwrap()
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum::<usize>()
    });
    assert_eq!(leaders, ROUNDS);
}

#[test]
fn wait_group_waits_for_every_piece() {
    let rt = runtime(2);
    rt.block_on(|| {
        let wg = WaitGroup::new();
        let done = Arc::new(AtomicUsize::new(0));
        wg.add(20);
        for i in 0..20 {
            let (wg, done) = (wg.clone(), done.clone());
            braid::Builder::new()
                .core(i % 2)
                .spawn(move || {
                    braid::sleep(Duration::from_millis(1 + i as u64 % 5)).unwrap();
                    done.fetch_add(1, Ordering::SeqCst);
                    wg.done();
                })
                .unwrap();
        }
        wg.wait().unwrap();
        assert_eq!(done.load(Ordering::SeqCst), 20);
        assert_eq!(wg.count(), 0);
    });
}

#[test]
fn once_cell_runs_its_initializer_once() {
    let rt = runtime(2);
    rt.block_on(|| {
        let cell = Arc::new(OnceCell::new());
        let runs = Arc::new(AtomicUsize::new(0));
        let hs: Vec<_> = (0..10)
            .map(|i| {
                let (cell, runs) = (cell.clone(), runs.clone());
                braid::Builder::new()
                    .core(i % 2)
                    .spawn(move || {
                        *cell
                            .get_or_init(|| {
                                runs.fetch_add(1, Ordering::SeqCst);
                                braid::sleep(Duration::from_millis(10)).unwrap();
                                42
                            })
                            .unwrap()
                    })
                    .unwrap()
            })
            .collect();
        for h in hs {
            assert_eq!(h.join().unwrap(), 42);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(cell.set(7), Err(7));
        assert_eq!(cell.get(), Some(&42));
    });
}

/// Lockers that give up after a few microseconds race with unlocks handing the
/// lock on: no wake may be lost (every locker eventually gets through), and
/// the count stays exact. Threads outside the runtime take part too.
#[test]
fn mutex_timeouts_racing_with_unlocks() {
    let rt = runtime(2);
    let m = Arc::new(Mutex::new(0u64));
    let gave_up = Arc::new(AtomicUsize::new(0));
    let worker = |m: Arc<Mutex<u64>>, gave_up: Arc<AtomicUsize>| {
        move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut done = 0;
            while done < 5_000 {
                assert!(Instant::now() < deadline, "a locker starved: lost wake");
                match m.lock_timeout(Duration::from_micros(5)).unwrap() {
                    Some(mut g) => {
                        *g += 1;
                        done += 1;
                        braid::yield_now(); // hold it across a switch
                    }
                    None => {
                        gave_up.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    };
    let strands: Vec<_> = (0..6)
        .map(|_| rt.spawn(worker(m.clone(), gave_up.clone())).unwrap())
        .collect();
    let thread = std::thread::spawn(worker(m.clone(), gave_up.clone()));
    strands.into_iter().for_each(|h| h.join().unwrap());
    thread.join().unwrap();
    assert_eq!(*m.try_lock().unwrap(), 7 * 5_000);
    eprintln!("{} timed-out attempts", gave_up.load(Ordering::Relaxed));
}

mod registry {
    use super::runtime;
    use braid::registry::{self, RegistryError, MAX_NAME_LEN};

    #[test]
    fn published_values_are_shared_and_vanish_with_their_last_holder() {
        let rt = runtime(2);
        rt.block_on(|| {
            let counter = registry::publish("hits", std::sync::atomic::AtomicU64::new(0)).unwrap();
            let hs: Vec<_> = (0..4)
                .map(|i| {
                    braid::Builder::new()
                        .core(i % 2)
                        .spawn(|| {
                            let c =
                                registry::lookup::<std::sync::atomic::AtomicU64>("hits").unwrap();
                            c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        })
                        .unwrap()
                })
                .collect();
            hs.into_iter().for_each(|h| h.join().unwrap());
            assert_eq!(counter.load(std::sync::atomic::Ordering::SeqCst), 4);
            // A second publisher of the same name is refused while it is held.
            assert_eq!(
                registry::publish("hits", 1u8).unwrap_err(),
                RegistryError::AlreadyPublished {
                    name: "hits".into()
                }
            );
            let another = registry::lookup::<std::sync::atomic::AtomicU64>("hits").unwrap();
            drop(counter);
            // Still held by `another`.
            assert!(registry::lookup::<std::sync::atomic::AtomicU64>("hits").is_ok());
            drop(another);
            assert_eq!(
                registry::lookup::<std::sync::atomic::AtomicU64>("hits").unwrap_err(),
                RegistryError::NotFound {
                    name: "hits".into()
                }
            );
            // The name is free again.
            let again = registry::publish("hits", 5u8).unwrap();
            assert_eq!(*again, 5);
        });
        assert_eq!(rt.published(), 0);
    }

    #[test]
    fn wrong_type_and_bad_names_are_typed_errors() {
        let rt = runtime(1);
        let held = rt.publish("config", String::from("x=1")).unwrap();
        let err = rt.lookup::<u32>("config").unwrap_err();
        assert!(matches!(err, RegistryError::WrongType { .. }), "{err:?}");
        assert!(
            err.to_string().contains("String") && err.to_string().contains("u32"),
            "{err}"
        );
        assert_eq!(*rt.lookup::<String>("config").unwrap(), "x=1");
        assert_eq!(rt.publish("", 1).unwrap_err(), RegistryError::EmptyName);
        let long = "n".repeat(MAX_NAME_LEN + 1);
        assert_eq!(
            rt.lookup::<u8>(&long).unwrap_err(),
            RegistryError::NameTooLong {
                len: MAX_NAME_LEN + 1
            }
        );
        assert_eq!(
            registry::lookup::<u8>("config").unwrap_err(),
            RegistryError::NotInStrand
        );
        assert_eq!(rt.published(), 1);
        drop(held);
        assert_eq!(rt.published(), 0);
    }
}

/// A reader queued behind a writer that then gives up must get in while other
/// readers still hold the lock.
#[test]
fn rwlock_readers_get_in_when_the_waiting_writer_gives_up() {
    let rt = runtime(2);
    rt.block_on(|| {
        let lock = Arc::new(RwLock::new(0));
        let held = lock.read().unwrap();
        let l = lock.clone();
        let writer = braid::spawn(move || l.write().map(|_| ()));
        braid::sleep(Duration::from_millis(10)).unwrap(); // the writer queues
        let l = lock.clone();
        let reader = braid::spawn(move || *l.read().unwrap());
        braid::sleep(Duration::from_millis(10)).unwrap(); // the reader queues behind it
        writer.group().cancel();
        assert_eq!(writer.join().unwrap(), Err(braid::Cancelled));
        // `held` is still held: the reader must get in beside it.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !reader.is_finished() {
            assert!(
                Instant::now() < deadline,
                "reader stuck behind a writer that left"
            );
            braid::sleep(Duration::from_millis(1)).unwrap();
        }
        assert_eq!(reader.join().unwrap(), 0);
        drop(held);
    });
}

#[test]
fn an_empty_select_fails_at_once() {
    let rt = runtime(1);
    rt.block_on(|| {
        assert_eq!(Select::new().ready(), Err(SelectError::Empty));
    });
}

/// A guard is shared like `&mut T`: `MutexGuard<Cell<_>>` must not be `Sync`
/// (it would let two threads touch the `Cell` at once). Checked at compile
/// time: the call below is ambiguous, and fails to compile, if it is `Sync`.
#[test]
fn a_mutex_guard_of_a_non_sync_value_is_not_sync() {
    trait AmbiguousIfSync<A> {
        fn check() {}
    }
    impl<T: ?Sized> AmbiguousIfSync<()> for T {}
    impl<T: ?Sized + Sync> AmbiguousIfSync<u8> for T {}
    <braid::sync::MutexGuard<'static, std::cell::Cell<u8>> as AmbiguousIfSync<_>>::check();
    // The check has teeth: a Sync type would be ambiguous, so this one names
    // the impl explicitly.
    <braid::sync::MutexGuard<'static, u8> as AmbiguousIfSync<u8>>::check();
}

/// Timed waits that succeed at once cancel their timers: a loop of them does
/// not pile timers up until their (distant) deadlines.
#[test]
fn timed_waits_that_end_early_leave_no_timers() {
    let rt = runtime(1);
    rt.block_on(|| {
        let (tx, rx) = channel::bounded::<u32>(1);
        let echo = braid::spawn(move || {
            for i in 0..10_000 {
                tx.send(i).unwrap();
            }
        });
        for i in 0..10_000 {
            // Blocks (the sender refills after each receive), then succeeds
            // long before the hour is up.
            assert_eq!(rx.recv_timeout(Duration::from_secs(3600)), Ok(i));
        }
        echo.join().unwrap();
    });
    let timers: usize = rt.stats().cores.iter().map(|c| c.timers).sum();
    assert_eq!(timers, 0, "timers left armed by finished waits");
}
