//! The one place this crate gets its synchronization primitives from.
//!
//! Under `--cfg loom` everything comes from [loom], so the model checker sees
//! every atomic access, every lock and every access to shared memory through an
//! [`UnsafeCell`]. Otherwise the std types are used, and [`UnsafeCell`] is a
//! zero-cost wrapper with loom's closure-based API, so the code using it is the
//! same in both builds.
//!
//! [loom]: https://docs.rs/loom

#[cfg(loom)]
pub(crate) use loom::{
    cell::UnsafeCell,
    sync::atomic::{AtomicU32, AtomicUsize, Ordering},
    sync::{Arc, Mutex, MutexGuard},
};

#[cfg(not(loom))]
pub(crate) use std::sync::{
    atomic::{AtomicU32, AtomicUsize, Ordering},
    Arc, Mutex, MutexGuard,
};

#[cfg(not(loom))]
pub(crate) use self::cell::UnsafeCell;

#[cfg(not(loom))]
mod cell {
    /// [`core::cell::UnsafeCell`] with loom's access API.
    ///
    /// Access goes through [`with`](Self::with) and [`with_mut`](Self::with_mut)
    /// so that under loom the same call sites are checked for data races.
    #[derive(Debug, Default)]
    #[repr(transparent)]
    pub(crate) struct UnsafeCell<T>(core::cell::UnsafeCell<T>);

    impl<T> UnsafeCell<T> {
        /// Wraps `value`.
        pub(crate) const fn new(value: T) -> Self {
            Self(core::cell::UnsafeCell::new(value))
        }

        /// Calls `f` with a pointer for reading the contents.
        ///
        /// Dereferencing the pointer is the caller's `unsafe`: it must know that
        /// no write happens concurrently.
        #[inline(always)]
        pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
            f(self.0.get())
        }

        /// Calls `f` with a pointer for writing the contents.
        ///
        /// Dereferencing the pointer is the caller's `unsafe`: it must know that
        /// no other access happens concurrently.
        #[inline(always)]
        pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }
    }
}
