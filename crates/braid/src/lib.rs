//! braid: a decentralized, per-core M:N scheduler runtime.
//!
//! Programs run as **strands**: stackful green threads that call ordinary
//! blocking-style functions ([`sleep`], [`JoinHandle::join`], [`Group::wait`]) and
//! block only themselves, never the OS thread. Every core runs its own scheduler
//! over its own data on one pinned carrier thread; cores talk only through a
//! message bus of single-producer rings (`braid-bus`); scheduling decisions are
//! pure code in `braid-core`.
//!
//! ```
//! let rt = braid::Runtime::builder().cores(2).build()?;
//! let total = rt.block_on(|| {
//!     let parts: Vec<_> = (0..8u64).map(|i| braid::spawn(move || i * i)).collect();
//!     parts.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
//! });
//! assert_eq!(total, 140);
//! # Ok::<(), braid::ConfigError>(())
//! ```
//!
//! # Strands move between threads
//!
//! A strand may resume on another core (another OS thread) after any call that
//! can block or yield. Do not hold thread-bound values across such calls: a
//! reference into a `thread_local!`, or a guard that must be released on the
//! thread that took it. This is the price of every runtime that migrates stackful
//! tasks; `!Send` values that stay on the strand's own stack are otherwise fine.

mod api;
mod blocking;
mod budget;
mod config;
mod context;
mod core;
mod cycles;
mod endpoint;
mod error;
pub mod event;
mod facade;
pub mod fs;
mod future;
mod group;
mod hook;
mod io;
mod join;
mod lease;
mod monitor;
pub mod net;
mod overflow;
mod park;
pub mod registry;
mod runtime;
pub mod sched;
mod scope;
mod share;
mod spawn;
mod stack;
mod stats;
mod strand;
pub mod sync;
mod sys;
#[doc(hidden)]
pub mod testing;

pub use api::{current, is_cancelled, is_shutdown_unwind, park, sleep, yield_now, Strand};
pub use blocking::{blocking, KEEP_ALIVE};
pub use config::{
    ConfigError, RuntimeBuilder, DEFAULT_MAX_STRANDS, DEFAULT_STACK_SIZE, MAX_BLOCKING_THREADS,
    MAX_CORES, MAX_SHUTDOWN_TIMEOUT, MAX_STACK_SIZE, MAX_STRANDS, MIN_STACK_SIZE,
};
pub use error::{Cancelled, SpawnError, StrandError};
pub use future::{block_on, spawn_future};
pub use group::Group;
pub use runtime::Runtime;
pub use scope::{scope, Scope, ScopedJoinHandle};
pub use spawn::{spawn, Builder, JoinHandle};
pub use stats::{CoreStats, HogIsolation, Stats, StrandStats, Tally, TallyStats};
pub use strand::StrandState;
pub use sys::GuardKind;
