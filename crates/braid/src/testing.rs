//! Fault injection for braid's own tests: not part of the API.

use std::sync::atomic::{AtomicU32, Ordering};

static FAIL_CARRIER_STARTS: AtomicU32 = AtomicU32::new(0);

/// Makes the next `n` starts of a replacement carrier thread (by any runtime
/// of the process) fail as if the system had no thread to give.
pub fn fail_carrier_starts(n: u32) {
    FAIL_CARRIER_STARTS.store(n, Ordering::SeqCst);
}

/// Whether this carrier start is to fail (counts one failure off).
pub(crate) fn carrier_start_fails() -> bool {
    FAIL_CARRIER_STARTS
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}
