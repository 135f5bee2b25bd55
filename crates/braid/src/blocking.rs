//! The blocking pool: plain threads for calls that would block a core (file
//! I/O, DNS, C libraries), so that only the calling strand waits.
//!
//! Each runtime has its own pool of up to `blocking_threads` threads (see
//! [`RuntimeBuilder::blocking_threads`](crate::RuntimeBuilder::blocking_threads)),
//! started on demand (one per call until the limit); a thread idle for
//! [`KEEP_ALIVE`] ends. Once the limit is reached, calls queue in arrival
//! order. A failure to start any thread at all panics the calling strand.

use crate::sync::channel;
use crate::{context, Cancelled};
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// How long an idle pool thread waits for work before it ends.
pub const KEEP_ALIVE: Duration = Duration::from_secs(10);

/// A queued call, tagged so that a failed submission can take back exactly
/// its own job.
struct Job {
    id: u64,
    run: Box<dyn FnOnce() + Send>,
}

/// One runtime's blocking pool.
pub(crate) struct BlockingPool {
    max: usize,
    state: Mutex<PoolState>,
    work: Condvar,
}

#[derive(Default)]
struct PoolState {
    queue: VecDeque<Job>,
    threads: usize,
    idle: usize,
    next_id: u64,
    shutdown: bool,
}

impl BlockingPool {
    pub(crate) fn new(max: usize) -> BlockingPool {
        BlockingPool {
            max,
            state: Mutex::default(),
            work: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `run`, starting a thread unless enough are idle for every
    /// queued job (two calls arriving while one thread idles get two threads,
    /// not one after the other) or the pool is full.
    fn submit(self: &Arc<Self>, run: Box<dyn FnOnce() + Send>) -> std::io::Result<()> {
        let mut state = self.lock();
        state.next_id += 1;
        let id = state.next_id;
        state.queue.push_back(Job { id, run });
        if state.idle >= state.queue.len() {
            drop(state);
            self.work.notify_one();
            return Ok(());
        }
        if state.threads >= self.max {
            return Ok(()); // the next thread to finish takes it
        }
        state.threads += 1;
        drop(state);
        let pool = self.clone();
        let started = std::thread::Builder::new()
            .name("braid-blocking".into())
            .spawn(move || pool.worker());
        if let Err(e) = started {
            let mut state = self.lock();
            state.threads -= 1;
            if state.threads == 0 {
                // Nobody will run the job: take it back and report.
                state.queue.retain(|j| j.id != id);
                return Err(e);
            }
        }
        Ok(())
    }

    fn worker(&self) {
        let mut state = self.lock();
        loop {
            if let Some(job) = state.queue.pop_front() {
                drop(state);
                // Jobs catch their own panics (see `blocking`).
                (job.run)();
                state = self.lock();
                continue;
            }
            if state.shutdown {
                break;
            }
            state.idle += 1;
            let (next, waited) = self
                .work
                .wait_timeout(state, KEEP_ALIVE)
                .unwrap_or_else(|e| e.into_inner());
            state = next;
            state.idle -= 1;
            if waited.timed_out() && state.queue.is_empty() {
                break;
            }
        }
        state.threads -= 1;
    }

    /// Threads running or idle now (for statistics and tests).
    pub(crate) fn threads(&self) -> usize {
        self.lock().threads
    }

    /// Lets idle threads end at once; running jobs finish first.
    pub(crate) fn shut_down(&self) {
        self.lock().shutdown = true;
        self.work.notify_all();
    }
}

/// Runs `f` on the calling strand's runtime's blocking pool and parks only the
/// strand until it returns; returns its value. A panic in `f` is resumed in
/// the caller. Outside a strand, `f` simply runs on the calling thread.
///
/// If the strand's group is cancelled while it waits, this returns
/// `Err(Cancelled)` at once; `f` still runs to completion on the pool and its
/// value is dropped (a blocking system call cannot be taken back).
///
/// ```
/// let rt = braid::Runtime::builder().cores(1).build()?;
/// let len = rt.block_on(|| {
///     braid::blocking(|| std::fs::read("Cargo.toml").map(|b| b.len())).unwrap()
/// })?;
/// assert!(len > 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn blocking<F, T>(f: F) -> Result<T, Cancelled>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    crate::event::forbid_blocking_in_closure("blocking");
    let pool = context::current_header()
        .and_then(|_| context::with_core(|local| local.rt_arc()))
        .map(|rt| rt.blocking.clone());
    let Some(pool) = pool else {
        return Ok(f());
    };
    let (tx, rx) = channel::bounded(1);
    let job = Box::new(move || {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        // If the caller stopped waiting, the value (or panic payload) is
        // dropped here; a panicking Drop must not kill the pool thread.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _ = tx.send(result);
        }));
    });
    if let Err(e) = pool.submit(job) {
        panic!("braid::blocking: no pool thread could be started: {e}");
    }
    match rx.recv() {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(channel::RecvError::Cancelled) => Err(Cancelled),
        Err(e) => panic!("braid::blocking: the pool dropped the call unanswered ({e:?})"),
    }
}
