//! One core: its shared face, its local scheduler state, its loop.
//!
//! - [`shared`]: what other threads may see of a core (counters, the ownership
//!   handshake with the monitor).
//! - [`local`]: the core's own data — ready queue, blocked table, timers, stack
//!   pool, bus endpoint — touched by its carrier only.
//! - [`mail`]: the messages cores exchange and how a core applies them.
//! - [`worker`]: the carrier thread's scheduling loop.
//! - [`wake`]: making a blocked strand ready from any thread.
//! - [`events`]: the core's side of named events (its wait graph, the event
//!   homes it keeps) and the scheduler closures registered on it.

pub(crate) mod events;
pub(crate) mod local;
pub(crate) mod mail;
pub(crate) mod shared;
pub(crate) mod wake;
pub(crate) mod worker;

pub(crate) use local::Local;
pub(crate) use mail::Msg;
pub(crate) use shared::{bump, CoreShared};
pub(crate) use wake::schedule_wake;
