//! The messages cores exchange. Scheduling mail (wakes, spawns, work
//! requests, grants, offers, orphans) is braid-core's [`braid_core::Mail`],
//! answered by the core's scheduler; the rest is the runtime's own.

use super::local::SchedMail;
use crate::event::key::{EventKey, EventMessage};
use crate::strand::Header;
use braid_core::Ticket;
use std::sync::Arc;

/// A bus message. Every cross-core action is one of these.
#[derive(Debug)]
pub(crate) enum Msg {
    /// Scheduling mail, for the receiving core's scheduler.
    Sched(SchedMail),
    /// A subtree was cancelled: wake its strands blocked here.
    Cancel(Arc<Header>),
    /// A message of the event protocol (see `braid_core::event`).
    Event(Box<EventMessage>),
    /// A wait queued here gave up (timed out or cancelled) on another core:
    /// take it out of the wait graph.
    EventCancel(EventKey, Ticket),
    /// The strand with this id exited: drop the scheduler closures it
    /// registered here.
    ClosuresGone(u64),
    /// The top-level group whose root strand had this id ended: forget the
    /// signals stored for its local event names.
    NamespaceGone(u64),
    /// This core is leased (`Some`: to the group of the strand with this
    /// id, once one is started on the lease; the cores not leased, where its
    /// other strands go), or no longer (`None`). See `lease`.
    Lease(Option<(Option<u64>, Vec<usize>)>),
    /// Publish the highest latency class among the ready strands in
    /// `CoreShared::top_class` (see `lease::check`).
    ReportClass,
    /// Stop the scheduling loop.
    Shutdown,
}
