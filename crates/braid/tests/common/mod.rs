//! Helpers shared by the integration tests.

use braid::Runtime;

/// A runtime on `cores` cores (the configuration is valid by construction).
pub(crate) fn runtime(cores: usize) -> Runtime {
    Runtime::builder()
        .cores(cores)
        .build()
        .expect("valid configuration")
}
