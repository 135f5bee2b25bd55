//! Every atomic in braid comes from here, and the cell and lock of the
//! protocols that are model-checked.
//!
//! The lock-free protocols live in files of their own (`park`,
//! `sync::wait_word`, `sync::mutex_word`, `io::readiness`, `join`,
//! `core::handshake`), which their loom tests (`tests/*_loom.rs`) compile a
//! second time with a `facade` of loom's types under the same names, so the
//! code loom explores is the code the runtime runs. The rest of the crate (carrier threads,
//! stack switching, system calls) is outside what loom can model; its
//! concurrency is proven by the exhaustive explorers of braid-core and by
//! the stress tests.

pub(crate) use std::sync::atomic::{
    compiler_fence, fence, AtomicBool, AtomicI32, AtomicPtr, AtomicU32, AtomicU64, AtomicU8,
    AtomicUsize, Ordering,
};
pub(crate) use std::sync::{Arc, Condvar, Mutex};

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
