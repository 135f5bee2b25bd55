//! Strand-aware synchronization: channels, locks, semaphores, barriers, wait
//! groups and once cells. Each blocks the calling strand, never its carrier
//! thread, and works across cores; threads outside the runtime may use them too
//! (they block as threads).
//!
//! # Why not on named events
//!
//! [`crate::event`] is the scheduler's own wait/signal mechanism: a name, looked
//! up in a per-core wait graph, and across cores negotiated with the event's home
//! core. These primitives take a faster path: each object keeps its own short
//! list of waiters behind its own small lock (never a global one) and wakes
//! exactly the waiter it picked, through that strand's park word, on whatever
//! core it sleeps — no name to hash, no negotiation, one bus message at most.
//! Every wait is resolved exactly once by the protocol of [`waiter`]: a wake and
//! a timeout or cancellation racing for the same waiter cannot both win, so
//! nothing offered to a waiter that gave up is lost.
//!
//! # Modules
//!
//! - [`channel`]: channels and selection (public as `braid::sync::channel`).
//! - `lock`: [`Mutex`] and [`RwLock`]; `mutex_word`: the `Mutex`'s state word.
//! - `semaphore`: [`Semaphore`] and its [`SemaphorePermit`].
//! - `barrier`: [`Barrier`] and [`BarrierWaitResult`].
//! - `wait_group`: [`WaitGroup`].
//! - `once_cell`: [`OnceCell`].
//! - [`monitor`]: state behind one small lock with blocking until an attempt
//!   succeeds, the skeleton the primitives above share.
//! - [`waiter`] and `wait_word`: one wait, resolved exactly once.

mod barrier;
pub mod channel;
mod lock;
pub(crate) mod monitor;
mod mutex_word;
mod once_cell;
mod semaphore;
mod wait_group;
mod wait_word;
pub(crate) mod waiter;

pub use barrier::{Barrier, BarrierWaitResult};
pub use lock::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
pub use once_cell::OnceCell;
pub use semaphore::{Semaphore, SemaphorePermit};
pub use wait_group::WaitGroup;
