//! Atomics of the protocols that are model-checked.
//!
//! Modules that import their atomics from here (`park`) are compiled a second
//! time by their loom test, which supplies loom's types under the same names.

pub(crate) use std::sync::atomic::{AtomicU32, Ordering};
