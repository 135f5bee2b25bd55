//! Choosing each core's scheduling policy and balancer.
//!
//! Every core runs braid-core's per-core scheduler (`braid_core::CoreSched`,
//! the same code the simulator runs); what it orders its ready strands by and
//! how it trades work with other cores are the [`Policy`] and the
//! [`Balancer`] the program picks with
//! [`RuntimeBuilder::policy`](crate::RuntimeBuilder::policy) and
//! [`RuntimeBuilder::balancer`](crate::RuntimeBuilder::balancer): one of
//! braid's by name ([`PolicyKind`], [`BalancerKind`]), or the program's own.
//!
//! ```
//! use braid::sched::{Insert, Nanos, Policy, PolicyChoice, ReadyStrand};
//! use std::collections::VecDeque;
//!
//! /// Last in, first out, 1 ms slices.
//! struct Lifo(VecDeque<ReadyStrand>);
//!
//! impl Policy<ReadyStrand> for Lifo {
//!     fn enqueue(&mut self, strand: ReadyStrand, _: Insert, _: Nanos) {
//!         self.0.push_front(strand);
//!     }
//!     fn pick_next(&mut self, _: Nanos) -> Option<ReadyStrand> {
//!         self.0.pop_front()
//!     }
//!     fn slice(&self, _: &ReadyStrand) -> Nanos {
//!         1_000_000
//!     }
//!     fn len(&self) -> usize {
//!         self.0.len()
//!     }
//!     fn take_for_transfer(&mut self, count: usize) -> Vec<ReadyStrand> {
//!         let keep = self.0.len().saturating_sub(count);
//!         self.0.drain(keep..).collect()
//!     }
//! }
//!
//! let rt = braid::Runtime::builder()
//!     .cores(1)
//!     .policy(PolicyChoice::custom(|_core| Box::new(Lifo(VecDeque::new()))))
//!     .build()
//!     .unwrap();
//! assert_eq!(rt.block_on(|| braid::spawn(|| 6 * 7).join().unwrap()), 42);
//! ```

use std::fmt;
use std::sync::Arc;

pub use crate::strand::Task as ReadyStrand;
pub use braid_core::{
    Balancer, BalancerKind, CoreId, Grant, Insert, Nanos, Policy, PolicyKind, Rng, UnknownName,
};

type PolicyFactory = dyn Fn(CoreId) -> Box<dyn Policy<ReadyStrand> + Send> + Send + Sync;
type BalancerFactory = dyn Fn(CoreId, usize) -> Box<dyn Balancer + Send> + Send + Sync;

/// The local scheduling policy of every core: one of braid's, or the
/// program's own (a boxed [`Policy`] per core, which costs an indirect call
/// per scheduling step).
#[derive(Clone)]
pub enum PolicyChoice {
    /// One of braid's policies (default: round robin, with the runtime's
    /// [`time_slice`](crate::RuntimeBuilder::time_slice)).
    Builtin(PolicyKind),
    /// Built for each core by the function, given the core's index.
    Custom(Arc<PolicyFactory>),
}

impl PolicyChoice {
    /// The program's own policy: `make(core)` builds core `core`'s.
    pub fn custom(
        make: impl Fn(CoreId) -> Box<dyn Policy<ReadyStrand> + Send> + Send + Sync + 'static,
    ) -> PolicyChoice {
        PolicyChoice::Custom(Arc::new(make))
    }
}

impl Default for PolicyChoice {
    fn default() -> PolicyChoice {
        PolicyChoice::Builtin(PolicyKind::default())
    }
}

impl From<PolicyKind> for PolicyChoice {
    fn from(kind: PolicyKind) -> PolicyChoice {
        PolicyChoice::Builtin(kind)
    }
}

impl fmt::Debug for PolicyChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyChoice::Builtin(kind) => f.write_str(kind.name()),
            PolicyChoice::Custom(_) => f.write_str("custom"),
        }
    }
}

/// The balancer of every core: one of braid's, or the program's own.
#[derive(Clone)]
pub enum BalancerChoice {
    /// One of braid's balancers (default: steal-half).
    Builtin(BalancerKind),
    /// Built for each core by the function, given the core's index and the
    /// number of cores.
    Custom(Arc<BalancerFactory>),
}

impl BalancerChoice {
    /// The program's own balancer: `make(core, cores)` builds core `core`'s.
    pub fn custom(
        make: impl Fn(CoreId, usize) -> Box<dyn Balancer + Send> + Send + Sync + 'static,
    ) -> BalancerChoice {
        BalancerChoice::Custom(Arc::new(make))
    }
}

impl Default for BalancerChoice {
    fn default() -> BalancerChoice {
        BalancerChoice::Builtin(BalancerKind::default())
    }
}

impl From<BalancerKind> for BalancerChoice {
    fn from(kind: BalancerKind) -> BalancerChoice {
        BalancerChoice::Builtin(kind)
    }
}

impl fmt::Debug for BalancerChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BalancerChoice::Builtin(kind) => f.write_str(kind.name()),
            BalancerChoice::Custom(_) => f.write_str("custom"),
        }
    }
}

/// Core `core`'s policy and balancer, of `cores`.
pub(crate) fn build(
    policy: &PolicyChoice,
    balancer: &BalancerChoice,
    slice: Nanos,
    core: CoreId,
    cores: usize,
) -> (braid_core::AnyPolicy<ReadyStrand>, braid_core::AnyBalancer) {
    let policy = match policy {
        PolicyChoice::Builtin(kind) => kind.build(slice),
        PolicyChoice::Custom(make) => braid_core::AnyPolicy::Custom(make(core)),
    };
    let balancer = match balancer {
        BalancerChoice::Builtin(kind) => kind.build(core, cores),
        BalancerChoice::Custom(make) => braid_core::AnyBalancer::Custom(make(core, cores)),
    };
    (policy, balancer)
}
