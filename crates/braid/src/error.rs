//! Errors of strands and blocking calls.

use std::any::Any;
use std::fmt;

/// A blocking call returned early because the calling strand's group was
/// cancelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cancelled;

impl fmt::Display for Cancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the strand's group was cancelled")
    }
}

impl std::error::Error for Cancelled {}

enum Kind {
    Panicked(Box<dyn Any + Send + 'static>),
    Cancelled,
    NotStarted(String),
    ShutDown,
}

/// Why joining a strand produced no value: it panicked (the payload is kept), or
/// its group was cancelled before it could produce one, or the joiner itself was
/// cancelled while waiting, or the strand could not start because no stack could
/// be mapped for it (stacks are taken when a strand first runs), or its runtime
/// was shut down (dropped) before it finished.
pub struct StrandError {
    kind: Kind,
    strand: String,
}

impl StrandError {
    pub(crate) fn panicked(payload: Box<dyn Any + Send + 'static>, strand: String) -> StrandError {
        StrandError {
            kind: Kind::Panicked(payload),
            strand,
        }
    }

    pub(crate) fn cancelled(strand: String) -> StrandError {
        StrandError {
            kind: Kind::Cancelled,
            strand,
        }
    }

    pub(crate) fn shut_down(strand: String) -> StrandError {
        StrandError {
            kind: Kind::ShutDown,
            strand,
        }
    }

    /// Whether the strand was ended by its runtime's shutdown (dropping the
    /// [`Runtime`](crate::Runtime)): unwound at a blocking call, or never
    /// started.
    pub fn is_shut_down(&self) -> bool {
        matches!(self.kind, Kind::ShutDown)
    }

    pub(crate) fn not_started(reason: String, strand: String) -> StrandError {
        StrandError {
            kind: Kind::NotStarted(reason),
            strand,
        }
    }

    /// Whether the strand never ran because no stack could be had for it; the
    /// message says why (for example the kernel's mapping limit).
    pub fn is_not_started(&self) -> bool {
        matches!(self.kind, Kind::NotStarted(_))
    }

    /// Whether the strand panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self.kind, Kind::Panicked(_))
    }

    /// Whether the result is missing because of a cancellation.
    pub fn is_cancelled(&self) -> bool {
        matches!(self.kind, Kind::Cancelled)
    }

    /// The panic message, when the payload is a string.
    pub fn panic_message(&self) -> Option<&str> {
        match &self.kind {
            Kind::Panicked(p) => p
                .downcast_ref::<&'static str>()
                .copied()
                .or_else(|| p.downcast_ref::<String>().map(String::as_str)),
            Kind::Cancelled | Kind::NotStarted(_) | Kind::ShutDown => None,
        }
    }

    /// The panic payload, to resume the panic with `std::panic::resume_unwind`.
    /// Returns `Err(self)` for a cancellation.
    pub fn into_panic(self) -> Result<Box<dyn Any + Send + 'static>, StrandError> {
        match self.kind {
            Kind::Panicked(p) => Ok(p),
            Kind::Cancelled | Kind::NotStarted(_) | Kind::ShutDown => Err(self),
        }
    }

    /// Which strand: its name, or `#id` when it has none.
    pub fn strand(&self) -> &str {
        &self.strand
    }
}

impl fmt::Debug for StrandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for StrandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Panicked(_) => match self.panic_message() {
                Some(msg) => write!(f, "strand {} panicked: {msg}", self.strand),
                None => write!(f, "strand {} panicked", self.strand),
            },
            Kind::Cancelled => write!(f, "strand {}: cancelled", self.strand),
            Kind::ShutDown => write!(f, "strand {}: its runtime shut down", self.strand),
            Kind::NotStarted(reason) => {
                write!(f, "strand {} could not start: {reason}", self.strand)
            }
        }
    }
}

impl std::error::Error for StrandError {}

/// Why a strand could not be spawned.
#[derive(Debug)]
pub struct SpawnError {
    kind: SpawnErrorKind,
}

#[derive(Debug)]
enum SpawnErrorKind {
    NotInRuntime,
    Config(crate::ConfigError),
    ShuttingDown,
    Context(crate::budget::ContextError),
    Lease(crate::lease::LeaseError),
    TooManyStrands(u64),
}

impl SpawnError {
    pub(crate) fn not_in_runtime() -> SpawnError {
        SpawnError {
            kind: SpawnErrorKind::NotInRuntime,
        }
    }
    pub(crate) fn config(err: crate::ConfigError) -> SpawnError {
        SpawnError {
            kind: SpawnErrorKind::Config(err),
        }
    }
    pub(crate) fn shutting_down() -> SpawnError {
        SpawnError {
            kind: SpawnErrorKind::ShuttingDown,
        }
    }

    pub(crate) fn context(err: crate::budget::ContextError) -> SpawnError {
        SpawnError {
            kind: SpawnErrorKind::Context(err),
        }
    }

    pub(crate) fn too_many_strands(limit: u64) -> SpawnError {
        SpawnError {
            kind: SpawnErrorKind::TooManyStrands(limit),
        }
    }

    /// The runtime's [`max_strands`](crate::RuntimeBuilder::max_strands), if
    /// the spawn was refused because that many strands are alive.
    pub fn too_many_strands_limit(&self) -> Option<u64> {
        match self.kind {
            SpawnErrorKind::TooManyStrands(limit) => Some(limit),
            _ => None,
        }
    }

    pub(crate) fn lease(err: crate::lease::LeaseError) -> SpawnError {
        SpawnError {
            kind: SpawnErrorKind::Lease(err),
        }
    }

    /// Why the lease given to the builder could not be used, or why the
    /// strand may not be pinned to a leased core, if that is why.
    pub fn lease_error(&self) -> Option<&crate::lease::LeaseError> {
        match &self.kind {
            SpawnErrorKind::Lease(err) => Some(err),
            _ => None,
        }
    }

    /// Why the scheduling context given to the builder could not be bound
    /// (revoked, ended, another runtime's), if that is why.
    pub fn context_error(&self) -> Option<&crate::budget::ContextError> {
        match &self.kind {
            SpawnErrorKind::Context(err) => Some(err),
            _ => None,
        }
    }

    /// Whether the spawn was attempted outside any strand of a runtime.
    pub fn is_not_in_runtime(&self) -> bool {
        matches!(self.kind, SpawnErrorKind::NotInRuntime)
    }

    /// The setting that was out of range (a stack size, a core, a weight, a
    /// slice), if that is why.
    pub fn bad_setting(&self) -> Option<&crate::ConfigError> {
        match &self.kind {
            SpawnErrorKind::Config(err) => Some(err),
            _ => None,
        }
    }
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            SpawnErrorKind::NotInRuntime => f.write_str(
                "spawn called outside a braid runtime: call it from a strand, or use Runtime::spawn",
            ),
            SpawnErrorKind::Config(err) => write!(f, "cannot spawn: {err}"),
            SpawnErrorKind::ShuttingDown => f.write_str("the runtime is shutting down"),
            SpawnErrorKind::Context(err) => write!(f, "cannot spawn: {err}"),
            SpawnErrorKind::Lease(err) => write!(f, "cannot spawn: {err}"),
            SpawnErrorKind::TooManyStrands(limit) => write!(
                f,
                "cannot spawn: the runtime has as many live strands as it may \
                 (max_strands = {limit}); wait for some to end, or raise \
                 RuntimeBuilder::max_strands (at most {})",
                crate::config::MAX_STRANDS
            ),
        }
    }
}

impl std::error::Error for SpawnError {}
