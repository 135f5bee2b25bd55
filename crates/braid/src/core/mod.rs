//! One core: its shared face, its local scheduler state, its loop.
//!
//! - [`shared`]: what other threads may see of a core (counters, the ownership
//!   handshake with the monitor).
//! - [`local`]: the core's own data — its scheduler (braid-core's `CoreSched`:
//!   ready strands, blocked table, timers), stack pool, bus endpoint, poller —
//!   touched by its carrier only, which applies the scheduler's decisions.
//! - [`mail`]: the messages cores exchange.
//! - [`worker`]: the carrier thread's scheduling loop.
//! - [`wake`]: making a blocked strand ready from any thread.
//!
//! A core's side of named events (its wait graph, the event homes it keeps,
//! the scheduler closures registered on it) is in `crate::event::local`, with
//! the rest of events.

pub(crate) mod handshake;
pub(crate) mod local;
pub(crate) mod mail;
pub(crate) mod shared;
pub(crate) mod wake;
pub(crate) mod worker;

pub(crate) use handshake::Claim;
pub(crate) use local::Local;
pub(crate) use mail::Msg;
pub(crate) use shared::CoreShared;
pub(crate) use wake::schedule_wake;
