//! Async interop: running futures inside strands.
//!
//! [`block_on`] polls a future on the calling strand and parks the strand (not
//! its core) while the future is pending; the future's waker may be called
//! from any thread, any number of times. [`spawn_future`] runs a future as a
//! strand of its own. Futures written for other executors work as long as
//! they need no runtime of their own (channels, locks, timers on their own
//! threads, combinators: the `futures` crate's, tokio's `sync` module, …).

use crate::sync::monitor::{GaveUp, Monitor};
use crate::sync::waiter::WaitList;
use crate::{Cancelled, JoinHandle};
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

/// The waker of one `block_on` call: a flag and whoever waits for it.
struct Signal {
    state: Monitor<SignalState>,
}

#[derive(Default)]
struct SignalState {
    notified: bool,
    waiters: WaitList,
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.state.with(|s, wakes| {
            s.notified = true;
            s.waiters.claim_all(wakes);
        });
    }
}

impl Signal {
    /// Parks until woken since the last call (returns at once if it was).
    fn wait(&self) -> Result<(), Cancelled> {
        self.state
            .wait_until(
                None,
                |s, _, waker| {
                    if std::mem::take(&mut s.notified) {
                        return Some(());
                    }
                    s.waiters.push(waker());
                    None
                },
                |s, _, waker| s.waiters.remove(waker),
            )
            .map_err(|gave_up| match gave_up {
                GaveUp::Cancelled | GaveUp::TimedOut => Cancelled,
            })
    }
}

/// Runs `future` to completion on the calling strand, parking the strand
/// while it is pending. Outside a strand it parks the calling thread instead.
/// Returns `Err(Cancelled)` if the strand's group is cancelled while the
/// future is pending (the future is dropped).
///
/// ```
/// let rt = braid::Runtime::builder().cores(2).build()?;
/// let sum = rt.block_on(|| {
///     let spawned = braid::spawn_future(async { 40 });
///     let here = braid::block_on(async { 2 }).unwrap();
///     spawned.join().unwrap().unwrap() + here
/// });
/// assert_eq!(sum, 42);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn block_on<F: Future>(future: F) -> Result<F::Output, Cancelled> {
    crate::event::forbid_blocking_in_closure("block_on");
    let signal = Arc::new(Signal {
        state: Monitor::new(SignalState::default()),
    });
    let waker = Waker::from(signal.clone());
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(value) = future.as_mut().poll(&mut cx) {
            return Ok(value);
        }
        signal.wait()?;
    }
}

/// Runs `future` as a new strand of the calling strand's runtime (its group
/// is the caller's, as with [`spawn`](crate::spawn)); join the handle for its
/// output. `Ok(Err(Cancelled))` from the join means the strand's group was
/// cancelled while the future was pending.
///
/// # Panics
/// Where [`spawn`](crate::spawn) panics: outside a runtime, or while it shuts
/// down.
pub fn spawn_future<F>(future: F) -> JoinHandle<Result<F::Output, Cancelled>>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    crate::spawn(move || block_on(future))
}
