//! braid's own policies and balancers by name, for the programs that pick one
//! when they start: a runtime builder, the simulator's command line.

use crate::balance::{AnyBalancer, CoreId, LoadExchange, StealHalf};
use crate::fair::{Fair, Priority, Rule};
use crate::policy::{AnyPolicy, Nanos, RoundRobin};
use std::fmt;

/// A name that is not one of the allowed ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownName {
    /// What was being named (`policy`, `balancer`).
    pub what: &'static str,
    /// The name given.
    pub value: String,
    /// The names allowed, comma-separated.
    pub allowed: String,
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown {} {:?} (allowed: {})",
            self.what, self.value, self.allowed
        )
    }
}

impl std::error::Error for UnknownName {}

fn parse<K: Copy>(what: &'static str, all: &[(&str, K)], name: &str) -> Result<K, UnknownName> {
    all.iter()
        .find(|(n, _)| *n == name)
        .map(|&(_, k)| k)
        .ok_or_else(|| UnknownName {
            what,
            value: name.to_owned(),
            allowed: all.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "),
        })
}

fn name_of<K: Copy + PartialEq>(all: &[(&'static str, K)], kind: K) -> &'static str {
    all.iter().find(|(_, k)| *k == kind).map_or("?", |(n, _)| n)
}

/// braid's local scheduling policies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum PolicyKind {
    /// [`RoundRobin`]: first in, first out, one time slice for every strand.
    #[default]
    RoundRobin,
    /// [`Fair`] by earliest eligible virtual deadline (EEVDF): weights,
    /// latency classes and per-strand slices.
    Eevdf,
    /// [`Fair`] by least virtual runtime (CFS-like): weights.
    Cfs,
    /// [`Priority`]: strict priority by latency class, with aging.
    Priority,
}

impl PolicyKind {
    /// Every policy, by name.
    pub const ALL: &'static [(&'static str, PolicyKind)] = &[
        ("round-robin", PolicyKind::RoundRobin),
        ("eevdf", PolicyKind::Eevdf),
        ("cfs", PolicyKind::Cfs),
        ("priority", PolicyKind::Priority),
    ];

    /// How long a strand of a lower class waits before it is served as one
    /// class higher, in base slices (see [`Priority`]).
    pub const AGING_SLICES: u64 = 10;

    /// The policy called `name`.
    pub fn parse(name: &str) -> Result<PolicyKind, UnknownName> {
        parse("policy", Self::ALL, name)
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        name_of(Self::ALL, self)
    }

    /// A core's instance, with `slice` as the base time slice.
    pub fn build<T>(self, slice: Nanos) -> AnyPolicy<T> {
        match self {
            PolicyKind::RoundRobin => AnyPolicy::RoundRobin(RoundRobin::new(slice)),
            PolicyKind::Eevdf => AnyPolicy::Fair(Fair::new(Rule::EarliestEligibleDeadline, slice)),
            PolicyKind::Cfs => AnyPolicy::Fair(Fair::new(Rule::LeastVirtualRuntime, slice)),
            PolicyKind::Priority => AnyPolicy::Priority(Priority::new(
                slice,
                slice.saturating_mul(Self::AGING_SLICES),
            )),
        }
    }
}

/// braid's balancers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum BalancerKind {
    /// [`StealHalf`]: idle cores ask one victim at a time, victims give half
    /// of their ready strands and offer work to cores they know idle.
    #[default]
    StealHalf,
    /// [`StealHalf`] with a [`LoadExchange`]: weight balancing between busy
    /// cores too (for the fair policies: shares hold across cores).
    Weighted,
}

impl BalancerKind {
    /// Every balancer, by name.
    pub const ALL: &'static [(&'static str, BalancerKind)] = &[
        ("steal-half", BalancerKind::StealHalf),
        ("weighted", BalancerKind::Weighted),
    ];

    /// The `weighted` balancer's load exchange: a notice every 2 ms, work
    /// moved past a virtual-time gap of 1 ms of a unit-weight strand's
    /// progress.
    pub const LOAD_EXCHANGE: LoadExchange = LoadExchange {
        period: 2_000_000,
        margin: 1_000_000,
    };

    /// The balancer called `name`.
    pub fn parse(name: &str) -> Result<BalancerKind, UnknownName> {
        parse("balancer", Self::ALL, name)
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        name_of(Self::ALL, self)
    }

    /// Core `me`'s instance in a runtime of `cores` cores.
    pub fn build(self, me: CoreId, cores: usize) -> AnyBalancer {
        match self {
            BalancerKind::StealHalf => AnyBalancer::StealHalf(StealHalf::new(me, cores)),
            BalancerKind::Weighted => AnyBalancer::StealHalf(StealHalf::with_load_exchange(
                me,
                cores,
                Self::LOAD_EXCHANGE,
            )),
        }
    }
}

impl std::str::FromStr for PolicyKind {
    type Err = UnknownName;
    fn from_str(name: &str) -> Result<PolicyKind, UnknownName> {
        PolicyKind::parse(name)
    }
}

impl std::str::FromStr for BalancerKind {
    type Err = UnknownName;
    fn from_str(name: &str) -> Result<BalancerKind, UnknownName> {
        BalancerKind::parse(name)
    }
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for BalancerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_list_the_allowed_ones() {
        for &(name, kind) in PolicyKind::ALL {
            assert_eq!(PolicyKind::parse(name), Ok(kind));
            assert_eq!(kind.name(), name);
        }
        for &(name, kind) in BalancerKind::ALL {
            assert_eq!(BalancerKind::parse(name), Ok(kind));
            assert_eq!(kind.name(), name);
        }
        let err = BalancerKind::parse("random").unwrap_err();
        assert_eq!(err.what, "balancer");
        assert_eq!(
            err.to_string(),
            "unknown balancer \"random\" (allowed: steal-half, weighted)"
        );
        assert!("".parse::<PolicyKind>().is_err());
        assert_eq!("steal-half".parse(), Ok(BalancerKind::StealHalf));
        assert_eq!(PolicyKind::RoundRobin.to_string(), "round-robin");
    }
}
