//! Messages between cores, and how the receiving core applies them.

use crate::event::{EventKey, EventMessage};
use crate::strand::{Header, Task};
use braid_core::Ticket;
use std::sync::Arc;

/// How a strand left a carrier that lost its core while running it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Yielded,
    Parked,
    Exited,
}

/// A bus message. Every cross-core action is one of these.
#[derive(Debug)]
pub(crate) enum Msg {
    /// A strand parked on the receiving core was unparked elsewhere.
    Wake(Arc<Header>),
    /// Run this new strand here.
    Spawn(Box<Task>),
    /// The sender is idle and asks for work.
    WorkRequest,
    /// The answer to a work request (possibly empty).
    WorkReply(Vec<Task>),
    /// Work pushed to a core the sender knows is idle.
    Offer(Vec<Task>),
    /// A subtree was cancelled: wake its strands blocked here.
    Cancel(Arc<Header>),
    /// A strand that was running on a carrier that lost this core.
    Orphan(Box<Task>, Outcome),
    /// A message of the event protocol (see `braid_core::event`).
    Event(Box<EventMessage>),
    /// A wait queued here gave up (timed out or cancelled) on another core:
    /// take it out of the wait graph.
    EventCancel(EventKey, Ticket),
    /// The strand with this id exited: drop the scheduler closures it
    /// registered here.
    ClosuresGone(u64),
    /// Stop the scheduling loop.
    Shutdown,
}
