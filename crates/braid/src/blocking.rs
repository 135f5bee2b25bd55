//! The blocking pool: plain threads for calls that would block a core (file
//! I/O, DNS, C libraries), so that only the calling strand waits.
//!
//! Each runtime has its own pool of up to `blocking_threads` threads (see
//! [`RuntimeBuilder::blocking_threads`](crate::RuntimeBuilder::blocking_threads)),
//! started on demand; a thread idle for [`KEEP_ALIVE`] ends. When every thread
//! is busy, calls queue in arrival order.

use crate::sync::channel;
use crate::{context, Cancelled};
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// How long an idle pool thread waits for work before it ends.
pub const KEEP_ALIVE: Duration = Duration::from_secs(10);

type Job = Box<dyn FnOnce() + Send>;

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

    /// Queues `job`, starting a thread if none is idle and the pool has room.
    fn submit(self: &Arc<Self>, job: Job) -> std::io::Result<()> {
        let mut state = self.lock();
        state.queue.push_back(job);
        if state.idle > 0 {
            drop(state);
            self.work.notify_one();
            return Ok(());
        }
        if state.threads >= self.max {
            return Ok(()); // a busy thread takes it when done
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
                state.queue.pop_back();
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
                job();
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
    crate::core::events::forbid_blocking_in_closure("blocking");
    let pool = context::current_header()
        .and_then(|_| context::with_local(|local| local.rt_arc()))
        .map(|rt| rt.blocking.clone());
    let Some(pool) = pool else {
        return Ok(f());
    };
    let (tx, rx) = channel::bounded(1);
    let job: Job = Box::new(move || {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        let _ = tx.send(result);
    });
    if let Err(e) = pool.submit(job) {
        panic!("braid::blocking: cannot start a pool thread: {e}");
    }
    match rx.recv() {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(channel::RecvError::Cancelled) => Err(Cancelled),
        Err(e) => unreachable!("the blocking job always answers: {e:?}"),
    }
}
