//! Pure scheduling logic for braid.
//!
//! Nothing in this crate reads a clock, spawns a thread, touches an atomic or does
//! I/O: time and randomness are arguments, decisions are return values. The runtime
//! (`braid`) applies the decisions to real strands and cores; tests and the
//! simulator drive exactly the same code with made-up clocks.
//!
//! - [`policy`]: the order in which one core runs its ready strands.
//! - [`fair`]: fair policies (EEVDF, CFS-like, strict priority with aging),
//!   weights, latency classes and the per-strand scheduling state.
//! - [`budget`]: CPU budgets per period, kept as a sporadic server's refills.
//! - [`event`]: named events: the per-core wait graph and the negotiated wakeup
//!   protocol between cores.
//! - [`balance`]: what an idle core asks for and what a busy core gives away.
//! - [`choice`]: braid's own policies and balancers by name.
//! - [`share`]: share groups, whose strands split one weight between them.
//! - [`rng`]: a small seedable generator so every decision can be replayed.
//! - [`sched`]: the whole per-core scheduler as one state machine over the
//!   above, with its blocked table, timers, message protocol, idle plan,
//!   placement, strand ids and the watchdog's verdicts.

pub mod balance;
pub mod budget;
pub mod choice;
pub mod event;
pub mod fair;
pub mod lease;
pub mod policy;
pub mod rng;
pub mod sched;
pub mod share;

pub use balance::{AnyBalancer, Balancer, CoreId, Grant, LoadExchange, StealHalf};
pub use budget::{Account, AccountStats, Budget, BudgetError, Dispatch, Notices, Overrun, RunId};
pub use choice::{BalancerKind, PolicyKind, UnknownName};
pub use event::{home_core, EventMsg, Events, Queued, Signalled, Ticket, WaitOutcome};
pub use fair::{Entity, Fair, LatencyClass, Priority, Rule, SchedParams, Schedulable};
pub use policy::{AnyPolicy, Insert, Load, Nanos, Policy, RoundRobin};
pub use rng::Rng;
pub use sched::{CoreSched, Mail, Received, SchedConfig, TaskHandle};
