//! Waking a parked strand from any thread.

use super::mail::Msg;
use crate::context;
use crate::runtime;
use crate::strand::Header;
use std::sync::Arc;

/// Makes ready a strand whose park word the caller flipped from `PARKED`: on its
/// home core directly when the caller runs there, by a bus message from another
/// core, or through the home core's injector from a thread outside the runtime.
pub(crate) fn schedule_wake(header: Arc<Header>) {
    let mut pending = Some(header);
    context::with_local(|local| {
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
    let home = header.home.load(std::sync::atomic::Ordering::Relaxed);
    rt.inject(home, Msg::Sched(braid_core::Mail::Wake(header)));
}
