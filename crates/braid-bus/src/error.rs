//! Errors: a bad bus configuration, and a message that could not be sent.
//!
//! Both are opaque: the kinds are private so they can grow without breaking
//! callers, and the messages name the setting, the value and what is allowed.

use std::fmt;

/// The largest number of cores a bus may connect.
///
/// A bus holds one ring per ordered pair of cores, so its memory grows with the
/// square of the core count; this bound keeps a typo from allocating gigabytes.
pub const MAX_CORES: usize = 1024;

/// The largest capacity of one ring, in messages.
///
/// Beyond this a ring costs more memory than it could save: messages that do not
/// fit wait in the sender's overflow queue instead.
pub const MAX_RING_CAPACITY: usize = 1 << 20;

/// The bus or ring could not be built because a setting is out of range.
///
/// Returned by [`Bus::new`](crate::Bus::new) and [`Ring::new`](crate::Ring::new).
/// Its [`Display`](fmt::Display) names the setting, the value given and the
/// allowed range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusError {
    kind: BusErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum BusErrorKind {
    /// `cores` was 0 or above [`MAX_CORES`].
    Cores(usize),
    /// `ring_capacity` was not a power of two in `2..=MAX_RING_CAPACITY`.
    RingCapacity(usize),
}

impl BusError {
    pub(crate) fn cores(value: usize) -> Self {
        Self {
            kind: BusErrorKind::Cores(value),
        }
    }

    pub(crate) fn ring_capacity(value: usize) -> Self {
        Self {
            kind: BusErrorKind::RingCapacity(value),
        }
    }
}

impl fmt::Display for BusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            BusErrorKind::Cores(value) => write!(
                f,
                "cores must be between 1 and {MAX_CORES}, got {value}"
            ),
            BusErrorKind::RingCapacity(value) => write!(
                f,
                "ring_capacity must be a power of two between 2 and {MAX_RING_CAPACITY}, got {value}"
            ),
        }
    }
}

impl std::error::Error for BusError {}

/// A message that could not be sent, handed back with the reason.
///
/// Returned by [`Endpoint::send`](crate::Endpoint::send) and
/// [`Bus::inject`](crate::Bus::inject); nothing was queued and no doorbell was
/// rung. [`into_message`](Self::into_message) gives the message back.
pub struct SendError<M> {
    message: M,
    kind: SendErrorKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SendErrorKind {
    /// An endpoint tried to send to its own core.
    ToSelf { core: usize },
    /// The destination is not a core of this bus.
    NoSuchCore { to: usize, cores: usize },
}

impl<M> SendError<M> {
    pub(crate) fn to_self(message: M, core: usize) -> Self {
        Self {
            message,
            kind: SendErrorKind::ToSelf { core },
        }
    }

    pub(crate) fn no_such_core(message: M, to: usize, cores: usize) -> Self {
        Self {
            message,
            kind: SendErrorKind::NoSuchCore { to, cores },
        }
    }

    /// Whether the destination was the sending endpoint's own core.
    ///
    /// A core hands work to itself through its own run queue, never the bus.
    pub fn is_to_self(&self) -> bool {
        matches!(self.kind, SendErrorKind::ToSelf { .. })
    }

    /// Whether the destination index was not below the bus's core count.
    pub fn is_no_such_core(&self) -> bool {
        matches!(self.kind, SendErrorKind::NoSuchCore { .. })
    }

    /// The message that was not sent.
    pub fn message(&self) -> &M {
        &self.message
    }

    /// Gives the message back.
    pub fn into_message(self) -> M {
        self.message
    }
}

// Written by hand so that `M` need not be `Debug`, which the runtime's message
// type (holding task handles) may not be.
impl<M> fmt::Debug for SendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendError")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl<M> fmt::Display for SendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            SendErrorKind::ToSelf { core } => write!(
                f,
                "cannot send to core {core}: it is the sending core (destinations must differ from the sender)"
            ),
            SendErrorKind::NoSuchCore { to, cores } => write!(
                f,
                "cannot send to core {to}: the bus has {cores} cores (destinations must be below {cores})"
            ),
        }
    }
}

impl<M> std::error::Error for SendError<M> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bus_error_messages_name_setting_value_and_range() {
        assert_eq!(
            BusError::cores(0).to_string(),
            "cores must be between 1 and 1024, got 0"
        );
        assert_eq!(
            BusError::ring_capacity(3).to_string(),
            "ring_capacity must be a power of two between 2 and 1048576, got 3"
        );
    }

    #[test]
    fn send_error_gives_message_back_and_says_why() {
        let error = SendError::to_self(String::from("hello"), 2);
        assert!(error.is_to_self());
        assert!(!error.is_no_such_core());
        assert_eq!(
            error.to_string(),
            "cannot send to core 2: it is the sending core (destinations must differ from the sender)"
        );
        assert_eq!(error.into_message(), "hello");

        let error = SendError::no_such_core(7_u8, 9, 4);
        assert!(error.is_no_such_core());
        assert_eq!(*error.message(), 7);
        assert_eq!(
            error.to_string(),
            "cannot send to core 9: the bus has 4 cores (destinations must be below 4)"
        );
        assert_eq!(
            format!("{error:?}"),
            "SendError { kind: NoSuchCore { to: 9, cores: 4 }, .. }"
        );
    }

    #[test]
    fn errors_are_std_errors() {
        fn assert_error<E: std::error::Error + Send + Sync + 'static>() {}
        assert_error::<BusError>();
        assert_error::<SendError<String>>();
    }
}
