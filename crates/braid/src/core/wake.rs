//! Waking a parked strand from any thread.

use super::mail::Msg;
use crate::context;
use crate::runtime;
use crate::strand::Header;
use std::sync::Arc;

/// Makes ready a strand whose park word the caller flipped from `PARKED`: on its
/// home core directly when the caller runs there, by a bus message from another
/// core, or through the home core's injector from a thread outside the runtime.
/// Scheduler code on a carrier (socket readiness, scheduler closures) only
/// buffers the wake for the loop to route.
pub(crate) fn schedule_wake(header: Arc<Header>) {
    let c = context::carrier();
    // SAFETY: a non-null carrier pointer refers to this thread's live
    // `Carrier`, which no other thread uses.
    if !c.is_null() && unsafe { (*c).current.is_null() && !(*c).retired } {
        // Scheduler code of an owning carrier: the loop routes it at its next
        // pass (see `Carrier::wakes`).
        // SAFETY: `c` is non-null, so it is this thread's live carrier, which
        // only this thread touches; no reference into it is held here.
        unsafe { (*c).wakes.push(header) };
        return;
    }
    let mut pending = Some(header);
    context::with_local_of(c, |local| {
        if let Some(header) = pending.take() {
            local.route_wake(header);
        }
    });
    if let Some(header) = pending {
        foreign_wake(header);
    }
}

/// The wake path for threads that are not carriers of the strand's runtime.
#[cold]
pub(crate) fn foreign_wake(header: Arc<Header>) {
    let Some(rt) = runtime::lookup(header.runtime_id) else {
        // The runtime is gone, and with it every strand it could wake.
        return;
    };
    let home = header.home.load(crate::facade::Ordering::Relaxed);
    rt.inject(home, Msg::Sched(braid_core::Mail::Wake(header)));
}
