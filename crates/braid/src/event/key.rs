//! An event's identity and its signal's payload, as the runtime's cores keep
//! and exchange them (the wait graph, the bus messages of the negotiated
//! wakeup).

use super::{EventError, MAX_PAYLOAD};
use braid_core::event::EventMsg;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// Which namespace a name is in.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Namespace {
    Global,
    /// The top-level group, by its root strand's id.
    Local(u64),
}

/// An event's identity inside the runtime.
#[derive(Clone, Debug)]
pub(crate) struct EventKey {
    pub(super) namespace: Namespace,
    pub(super) name: Arc<str>,
    /// Hash of the two fields above, fixed for the runtime's life: picks the
    /// event's home core, and is all that tables hash.
    pub(super) hash: u64,
}

impl PartialEq for EventKey {
    fn eq(&self, other: &EventKey) -> bool {
        self.hash == other.hash
            && self.namespace == other.namespace
            && (Arc::ptr_eq(&self.name, &other.name) || self.name == other.name)
    }
}

impl Eq for EventKey {}

impl Hash for EventKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl EventKey {
    pub(crate) fn home(&self, cores: usize) -> usize {
        braid_core::home_core(self.hash, cores)
    }
}

/// A signal's payload: up to [`MAX_PAYLOAD`] bytes, inline.
#[derive(Clone, Copy)]
pub(crate) struct Payload {
    len: u8,
    bytes: [u8; MAX_PAYLOAD],
}

impl Payload {
    pub(crate) const EMPTY: Payload = Payload {
        len: 0,
        bytes: [0; MAX_PAYLOAD],
    };

    pub(super) fn new(data: &[u8]) -> Result<Payload, EventError> {
        if data.len() > MAX_PAYLOAD {
            return Err(EventError::PayloadTooLarge { len: data.len() });
        }
        let mut bytes = [0; MAX_PAYLOAD];
        bytes[..data.len()].copy_from_slice(data);
        Ok(Payload {
            len: data.len() as u8,
            bytes,
        })
    }

    /// The payload's bytes.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Payload({} bytes)", self.len)
    }
}

/// A message of the event protocol, as carried by the bus.
pub(crate) type EventMessage = EventMsg<EventKey, Payload>;
