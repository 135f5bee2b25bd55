//! Channels: many senders, many receivers, bounded or unbounded, and selection
//! over several receivers with a timeout.
//!
//! ```
//! # let rt = braid::Runtime::builder().cores(2).build()?;
//! use braid::sync::channel;
//! let total = rt.block_on(|| {
//!     let (tx, rx) = channel::bounded(16);
//!     let producer = braid::spawn(move || (1..=100u64).for_each(|i| tx.send(i).unwrap()));
//!     let sum: u64 = rx.iter().sum(); // ends when the last sender is gone
//!     producer.join().unwrap();
//!     sum
//! });
//! assert_eq!(total, 5050);
//! # Ok::<(), braid::ConfigError>(())
//! ```

use super::monitor::{cancelled, GaveUp, Monitor};
use super::waiter::{WaitList, Waker};
use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct State<T> {
    queue: VecDeque<T>,
    /// `None`: unbounded.
    capacity: Option<usize>,
    senders: usize,
    receivers: usize,
    /// Receivers (and selects) waiting for a message.
    recv_waiters: WaitList,
    /// Senders waiting for room.
    send_waiters: WaitList,
}

impl<T> State<T> {
    fn full(&self) -> bool {
        self.capacity.is_some_and(|c| self.queue.len() >= c)
    }
}

struct Chan<T> {
    monitor: Monitor<State<T>>,
}

/// The sending half. Clone it for more senders; when the last one is dropped,
/// receivers get `Disconnected` once the queue is empty.
pub struct Sender<T> {
    chan: Arc<Chan<T>>,
}

/// The receiving half. Clone it for more receivers (each message goes to one of
/// them); when the last one is dropped, sends fail with `Disconnected`.
pub struct Receiver<T> {
    chan: Arc<Chan<T>>,
}

/// A channel without a bound: `send` never blocks.
pub fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
    make(None)
}

/// A channel holding at most `capacity` messages: `send` blocks while it is
/// full. A capacity of 0 is treated as 1 (there is no rendezvous mode).
pub fn bounded<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    make(Some(capacity.max(1)))
}

fn make<T>(capacity: Option<usize>) -> (Sender<T>, Receiver<T>) {
    let chan = Arc::new(Chan {
        monitor: Monitor::new(State {
            queue: VecDeque::new(),
            capacity,
            senders: 1,
            receivers: 1,
            recv_waiters: WaitList::default(),
            send_waiters: WaitList::default(),
        }),
    });
    (Sender { chan: chan.clone() }, Receiver { chan })
}

/// Why a send failed; the message is handed back.
#[derive(PartialEq, Eq)]
pub enum SendError<T> {
    /// Every receiver is gone.
    Disconnected(T),
    /// The sending strand's group was cancelled while it waited for room.
    Cancelled(T),
    /// `send_timeout` ran out of time.
    Timeout(T),
}

/// Why a `try_send` failed; the message is handed back.
#[derive(PartialEq, Eq)]
pub enum TrySendError<T> {
    /// The channel is full.
    Full(T),
    /// Every receiver is gone.
    Disconnected(T),
}

/// Why a receive produced no message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecvError {
    /// Every sender is gone and the queue is empty.
    Disconnected,
    /// The receiving strand's group was cancelled.
    Cancelled,
    /// `recv_timeout` ran out of time (plain `recv` never returns this).
    Timeout,
}

/// Why a `try_recv` produced no message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TryRecvError {
    /// Nothing queued right now.
    Empty,
    /// Every sender is gone and the queue is empty.
    Disconnected,
}

impl<T> SendError<T> {
    /// The message that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            SendError::Disconnected(v) | SendError::Cancelled(v) | SendError::Timeout(v) => v,
        }
    }
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendError::Disconnected(_) => "sending on a channel whose receivers are all gone",
            SendError::Cancelled(_) => "the sending strand's group was cancelled",
            SendError::Timeout(_) => "timed out waiting for room in the channel",
        })
    }
}

impl<T> std::error::Error for SendError<T> {}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrySendError::Full(_) => "the channel is full",
            TrySendError::Disconnected(_) => "sending on a channel whose receivers are all gone",
        })
    }
}

impl<T> std::error::Error for TrySendError<T> {}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecvError::Disconnected => "the channel is empty and its senders are all gone",
            RecvError::Cancelled => "the receiving strand's group was cancelled",
            RecvError::Timeout => "timed out waiting for a message",
        })
    }
}

impl std::error::Error for RecvError {}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TryRecvError::Empty => "the channel is empty",
            TryRecvError::Disconnected => "the channel is empty and its senders are all gone",
        })
    }
}

impl std::error::Error for TryRecvError {}

impl<T> Sender<T> {
    /// Queues `value`, blocking the strand while a bounded channel is full.
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        self.send_until(value, None)
    }

    /// As [`send`](Self::send), giving up after `timeout`.
    pub fn send_timeout(&self, value: T, timeout: Duration) -> Result<(), SendError<T>> {
        self.send_until(value, Some(Instant::now() + timeout))
    }

    /// Queues `value` if there is room now.
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        self.chan.monitor.with(|s, wakes| {
            if s.receivers == 0 {
                return Err(TrySendError::Disconnected(value));
            }
            if s.full() {
                return Err(TrySendError::Full(value));
            }
            s.queue.push_back(value);
            s.recv_waiters.claim_one(wakes);
            Ok(())
        })
    }

    fn send_until(&self, value: T, deadline: Option<Instant>) -> Result<(), SendError<T>> {
        let mut value = Some(value);
        let result = self.chan.monitor.wait_until(
            deadline,
            |s, wakes, waker| {
                if s.receivers == 0 {
                    return Some(Err(Refused::Disconnected));
                }
                if s.full() {
                    if cancelled() {
                        return Some(Err(Refused::Cancelled));
                    }
                    s.send_waiters.push(waker());
                    return None;
                }
                s.queue.push_back(value.take().expect("sent once"));
                s.recv_waiters.claim_one(wakes);
                Some(Ok(()))
            },
            |s, wakes, waker| {
                s.send_waiters.remove(waker);
                // Room offered to us goes to the next sender.
                if !s.full() {
                    s.send_waiters.claim_one(wakes);
                }
            },
        );
        let mut unsent = || value.take().expect("not sent");
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(Refused::Disconnected)) => Err(SendError::Disconnected(unsent())),
            Ok(Err(Refused::Cancelled)) | Err(GaveUp::Cancelled) => {
                Err(SendError::Cancelled(unsent()))
            }
            Err(GaveUp::TimedOut) => Err(SendError::Timeout(unsent())),
        }
    }

    /// Messages queued right now.
    pub fn len(&self) -> usize {
        self.chan.monitor.with(|s, _| s.queue.len())
    }

    /// Whether nothing is queued right now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether every receiver is gone (a send would fail).
    pub fn is_disconnected(&self) -> bool {
        self.chan.monitor.with(|s, _| s.receivers == 0)
    }
}

/// Why a blocking send stopped trying.
enum Refused {
    Disconnected,
    Cancelled,
}

impl<T> Receiver<T> {
    /// Takes the oldest message, blocking the strand while the channel is
    /// empty. Fails with `Disconnected` once it is empty and every sender is
    /// gone, and with `Cancelled` if the strand's group is cancelled.
    pub fn recv(&self) -> Result<T, RecvError> {
        self.recv_until(None)
    }

    /// As [`recv`](Self::recv), giving up with `Timeout` after `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvError> {
        self.recv_until(Some(Instant::now() + timeout))
    }

    /// Takes the oldest message if there is one.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.chan
            .monitor
            .with(|s, wakes| match s.queue.pop_front() {
                Some(v) => {
                    s.send_waiters.claim_one(wakes);
                    Ok(v)
                }
                None if s.senders == 0 => Err(TryRecvError::Disconnected),
                None => Err(TryRecvError::Empty),
            })
    }

    fn recv_until(&self, deadline: Option<Instant>) -> Result<T, RecvError> {
        let result = self.chan.monitor.wait_until(
            deadline,
            |s, wakes, waker| match s.queue.pop_front() {
                Some(v) => {
                    s.send_waiters.claim_one(wakes);
                    Some(Ok(v))
                }
                None if s.senders == 0 => Some(Err(RecvError::Disconnected)),
                None if cancelled() => Some(Err(RecvError::Cancelled)),
                None => {
                    s.recv_waiters.push(waker());
                    None
                }
            },
            |s, wakes, waker| {
                s.recv_waiters.remove(waker);
                // A message offered to us goes to the next receiver.
                if !s.queue.is_empty() {
                    s.recv_waiters.claim_one(wakes);
                }
            },
        );
        match result {
            Ok(r) => r,
            Err(GaveUp::TimedOut) => Err(RecvError::Timeout),
            Err(GaveUp::Cancelled) => Err(RecvError::Cancelled),
        }
    }

    /// Receives until the channel is disconnected (or the strand cancelled).
    pub fn iter(&self) -> impl Iterator<Item = T> + '_ {
        std::iter::from_fn(move || self.recv().ok())
    }

    /// Messages queued right now.
    pub fn len(&self) -> usize {
        self.chan.monitor.with(|s, _| s.queue.len())
    }

    /// Whether nothing is queued right now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Sender<T> {
        self.chan.monitor.with(|s, _| s.senders += 1);
        Sender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Receiver<T> {
        self.chan.monitor.with(|s, _| s.receivers += 1);
        Receiver {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.chan.monitor.with(|s, wakes| {
            s.senders -= 1;
            if s.senders == 0 {
                // Receivers (and selects) must see the disconnection.
                s.recv_waiters.claim_all(wakes);
            }
        });
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.chan.monitor.with(|s, wakes| {
            s.receivers -= 1;
            if s.receivers == 0 {
                s.send_waiters.claim_all(wakes);
            }
        });
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sender { .. }")
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Receiver { .. }")
    }
}

/// A receiver as seen by [`Select`], whatever its message type.
trait Selectable {
    /// Whether a `recv` would return at once (a message, or disconnected).
    /// When not, queues `waker` to be claimed when that changes.
    fn ready_or_register(&self, waker: &Waker) -> bool;
    /// Removes `waker`, and passes on a wake it may have taken.
    fn unregister(&self, waker: &Waker);
}

impl<T> Selectable for Receiver<T> {
    fn ready_or_register(&self, waker: &Waker) -> bool {
        self.chan.monitor.with(|s, _| {
            if !s.queue.is_empty() || s.senders == 0 {
                return true;
            }
            s.recv_waiters.push(waker.clone());
            false
        })
    }

    fn unregister(&self, waker: &Waker) {
        self.chan.monitor.with(|s, wakes| {
            s.recv_waiters.remove(waker);
            // A send may have claimed this select's waker for a message the
            // select will not take: let another receiver have it.
            if !s.queue.is_empty() {
                s.recv_waiters.claim_one(wakes);
            }
        });
    }
}

/// Why a selection returned no ready receiver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelectError {
    /// The timeout passed.
    Timeout,
    /// The selecting strand's group was cancelled.
    Cancelled,
    /// The selection has no receivers: nothing could ever be ready.
    Empty,
}

impl fmt::Display for SelectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SelectError::Timeout => "timed out waiting for any of the channels",
            SelectError::Cancelled => "the selecting strand's group was cancelled",
            SelectError::Empty => "select over no receivers (add one with Select::recv)",
        })
    }
}

impl std::error::Error for SelectError {}

/// Waits until one of several receivers (of any message types) is ready.
///
/// `ready` returns the index of a receiver whose `try_recv` should now succeed
/// (or report disconnection); another receiver of the same channel may take the
/// message first, so receive with `try_recv` and select again on `Empty`.
///
/// ```
/// # let rt = braid::Runtime::builder().cores(1).build()?;
/// use braid::sync::channel::{self, Select};
/// use std::time::Duration;
/// rt.block_on(|| {
///     let (_tx_a, rx_a) = channel::unbounded::<u32>();
///     let (tx_b, rx_b) = channel::unbounded::<&str>();
///     tx_b.send("hello").unwrap();
///     let mut sel = Select::new();
///     let a = sel.recv(&rx_a);
///     let b = sel.recv(&rx_b);
///     let ready = sel.ready_timeout(Duration::from_secs(1)).unwrap();
///     assert_eq!(ready, b);
///     assert_ne!(ready, a);
///     assert_eq!(rx_b.try_recv(), Ok("hello"));
/// });
/// # Ok::<(), braid::ConfigError>(())
/// ```
#[derive(Default)]
pub struct Select<'a> {
    sources: Vec<&'a dyn Selectable>,
}

impl fmt::Debug for Select<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Select({} receivers)", self.sources.len())
    }
}

impl<'a> Select<'a> {
    /// An empty selection.
    pub fn new() -> Select<'a> {
        Select::default()
    }

    /// Adds a receiver; returns its index.
    pub fn recv<T>(&mut self, receiver: &'a Receiver<T>) -> usize {
        self.sources.push(receiver);
        self.sources.len() - 1
    }

    /// Blocks until a receiver is ready; returns its index.
    pub fn ready(&mut self) -> Result<usize, SelectError> {
        self.ready_until(None)
    }

    /// As [`ready`](Self::ready), giving up after `timeout`.
    pub fn ready_timeout(&mut self, timeout: Duration) -> Result<usize, SelectError> {
        self.ready_until(Some(Instant::now() + timeout))
    }

    fn ready_until(&mut self, deadline: Option<Instant>) -> Result<usize, SelectError> {
        use super::waiter::{Outcome, Waiting};
        if self.sources.is_empty() {
            return Err(SelectError::Empty);
        }
        loop {
            if crate::api::cancel_point() {
                return Err(SelectError::Cancelled);
            }
            let waiting = Waiting::begin();
            let waker = waiting.waker();
            let mut registered = 0;
            let mut ready = None;
            for (i, source) in self.sources.iter().enumerate() {
                if source.ready_or_register(&waker) {
                    ready = Some(i);
                    break;
                }
                registered = i + 1;
            }
            let outcome = match ready {
                Some(_) => {
                    // Nobody may claim this wait any more: the claim, if one
                    // races in, is passed on by `unregister`.
                    waiting.abandon();
                    Outcome::Signalled
                }
                None => waiting.block(deadline),
            };
            for source in &self.sources[..registered] {
                source.unregister(&waker);
            }
            match (ready, outcome) {
                (Some(i), _) => return Ok(i),
                (None, Outcome::Signalled) => continue,
                (None, Outcome::TimedOut) => return Err(SelectError::Timeout),
                (None, Outcome::Cancelled) => {
                    // Withdrawn from every source: an unwind point.
                    crate::strand::unwind_if_doomed();
                    return Err(SelectError::Cancelled);
                }
            }
        }
    }
}
