//! Atomics of the protocols that are model-checked.
//!
//! Modules that import their atomics from here (`park`, `sync::wait_word`,
//! `io::readiness`) are
//! compiled a second time by their loom tests, which supply loom's types under
//! the same names.

pub(crate) use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
