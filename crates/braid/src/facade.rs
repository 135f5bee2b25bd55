//! Atomics and cells of the protocols that are model-checked.
//!
//! Modules that import their atomics (and cells) from here (`park`,
//! `sync::wait_word`, `sync::mutex_word`, `io::readiness`, `join`) are compiled a second time by
//! their loom tests, which supply loom's types under the same names.

pub(crate) use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};

/// `std::cell::UnsafeCell` with loom's access API (`with_mut`), so a protocol
/// file compiles against either.
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

impl<T> UnsafeCell<T> {
    pub(crate) const fn new(value: T) -> UnsafeCell<T> {
        UnsafeCell(std::cell::UnsafeCell::new(value))
    }

    /// Runs `f` with a pointer to the contents; the caller's protocol says
    /// when dereferencing it is sound.
    #[inline]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}
