//! Groups: a strand and all its descendants, as one unit.
//!
//! Every strand has a parent (the strand that spawned it; top-level strands have
//! none), so strands form a tree and any strand names the subtree below it. A
//! [`Group`] handle on that subtree can cancel it, count it and wait for it.
//!
//! Cancellation is cooperative: the group's root is flagged, every blocking call
//! of a strand in the subtree then returns `Err(Cancelled)`, and strands already
//! blocked are woken to notice (each core scans its own blocked table when the
//! cancel message reaches it). A strand that never blocks again can check
//! [`is_cancelled`](crate::is_cancelled).

use crate::context;
use crate::core::Msg;
use crate::error::Cancelled;
use crate::facade::Ordering;
use crate::strand::{self, Header};
use crate::sync::waiter::Waiter;
use std::sync::Arc;

/// A handle on a strand's subtree.
#[derive(Clone)]
pub struct Group {
    root: Arc<Header>,
}

impl std::fmt::Debug for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group")
            .field("root", &crate::spawn::strand_label(&self.root))
            .field("live", &self.live())
            .finish()
    }
}

impl Group {
    pub(crate) fn of(root: Arc<Header>) -> Group {
        Group { root }
    }

    /// The id of the strand at the root of the group.
    pub fn root_id(&self) -> u64 {
        self.root.id
    }

    /// Cancels every strand of the group, including ones spawned later inside it.
    /// Like any runtime call from a strand, it may yield first (when the
    /// strand's carrier lost its core to a hog hand-off, the strand moves to
    /// the core's new carrier); do not hold thread-bound values across it.
    pub fn cancel(&self) {
        cancel_subtree(&self.root);
    }

    /// Whether the group (or a group enclosing it) was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.root.is_cancelled()
    }

    /// Strands of the group that have not exited yet.
    pub fn live(&self) -> usize {
        self.root.live.load(Ordering::Acquire)
    }

    /// Blocks until every strand of the group has exited. Called from inside the
    /// group, it waits for every strand but the caller (and the caller's
    /// ancestors within the group). Returns `Err(Cancelled)` if the *caller* is
    /// cancelled meanwhile.
    pub fn wait(&self) -> Result<(), Cancelled> {
        let root = &*self.root;
        // Strands on the path from the caller up to the root are in the group
        // but cannot exit while the caller waits.
        let mut remaining = 0;
        if let Some(me) = context::current_header() {
            let mut node = Some(&*me);
            while let Some(h) = node {
                if h.descends_from(root) {
                    remaining += 1;
                }
                node = h.parent.as_deref();
            }
        }
        let done = || root.live.load(Ordering::SeqCst) <= remaining;
        loop {
            if done() {
                return Ok(());
            }
            // A waiter left queued by an unwind is woken for nothing.
            if crate::api::cancel_point() {
                return Err(Cancelled);
            }
            {
                let mut waiters = root.group_waiters.lock().unwrap_or_else(|e| e.into_inner());
                // SeqCst pairs with `leave_subtree`: either it sees this flag or we
                // see its decrement below.
                root.has_group_waiters.store(true, Ordering::SeqCst);
                if done() {
                    return Ok(());
                }
                waiters.push(Waiter::current());
            }
            strand::park_current();
        }
    }
}

/// Flags `root`'s subtree cancelled and wakes its blocked strands on every core.
pub(crate) fn cancel_subtree(root: &Header) {
    // Release pairs with the Acquire in `Header::is_cancelled`.
    if root.cancelled.swap(true, Ordering::Release) {
        return;
    }
    // Find an Arc for the messages: the root is alive (we hold a reference), and
    // the cheapest owned handle is one of its strand's own.
    let root_arc = header_arc(root);
    let mut pending = Some(root_arc);
    context::with_core(|local| {
        let Some(root) = pending.take_if(|root| local.runtime_id == root.runtime_id) else {
            return;
        };
        local.wake_blocked_in(&root);
        for core in 0..local.endpoint.cores() {
            if core != local.core {
                local.send(core, Msg::Cancel(root.clone()));
            }
        }
    });
    if let Some(root) = pending {
        if let Some(rt) = crate::runtime::lookup(root.runtime_id) {
            for core in 0..rt.cores.len() {
                rt.inject(core, Msg::Cancel(root.clone()));
            }
        }
    }
}

/// An owned handle to a header known to be alive.
fn header_arc(header: &Header) -> Arc<Header> {
    let ptr: *const Header = header;
    // SAFETY: every `Header` lives in an `Arc` (see `spawn::build`), and the
    // caller's reference keeps it alive while we add a strong count.
    unsafe {
        Arc::increment_strong_count(ptr);
        Arc::from_raw(ptr)
    }
}
