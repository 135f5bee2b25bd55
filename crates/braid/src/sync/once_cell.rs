//! `OnceCell`: a value set once, which strands that need it earlier wait for.

use super::monitor::{cancelled, cancelled_only, Monitor};
use super::waiter::WaitList;
use crate::error::Cancelled;
use std::fmt;
use std::sync::OnceLock;

struct Init {
    running: bool,
    waiting: WaitList,
}

/// A value set once, with strands that need it before it is set blocking until
/// it is (not spinning, not blocking their threads).
pub struct OnceCell<T> {
    value: OnceLock<T>,
    init: Monitor<Init>,
}

impl<T> Default for OnceCell<T> {
    fn default() -> OnceCell<T> {
        OnceCell::new()
    }
}

impl<T> OnceCell<T> {
    /// An empty cell.
    pub fn new() -> OnceCell<T> {
        OnceCell {
            value: OnceLock::new(),
            init: Monitor::new(Init {
                running: false,
                waiting: WaitList::default(),
            }),
        }
    }

    /// The value, if set.
    pub fn get(&self) -> Option<&T> {
        self.value.get()
    }

    /// Sets the value if it is not set yet (and no initializer is running);
    /// otherwise hands `value` back.
    pub fn set(&self, value: T) -> Result<(), T> {
        let mut value = Some(value);
        self.init.with(|s, wakes| {
            if s.running {
                return;
            }
            match self.value.set(value.take().expect("set once")) {
                Ok(()) => s.waiting.claim_all(wakes),
                Err(v) => value = Some(v),
            }
        });
        value.map_or(Ok(()), Err)
    }

    /// The value, running `init` to make it if nobody has. Concurrent callers
    /// block (as strands) until the one running `init` is done; if it panics,
    /// the next caller runs its own `init`.
    pub fn get_or_init(&self, init: impl FnOnce() -> T) -> Result<&T, Cancelled> {
        if let Some(v) = self.value.get() {
            return Ok(v);
        }
        let mine = self
            .init
            .wait_until(
                None,
                |s, _, waker| {
                    if self.value.get().is_some() {
                        return Some(Ok(false));
                    }
                    if !s.running {
                        s.running = true;
                        return Some(Ok(true));
                    }
                    if cancelled() {
                        return Some(Err(Cancelled));
                    }
                    s.waiting.push(waker());
                    None
                },
                |s, _, waker| s.waiting.remove(waker),
            )
            .map_err(cancelled_only)??;
        if !mine {
            return Ok(self.value.get().expect("set before the waiters were woken"));
        }
        // `init` runs without the lock; the guard lets the next caller try if it
        // panics.
        struct Running<'a, T>(&'a OnceCell<T>);
        impl<T> Drop for Running<'_, T> {
            fn drop(&mut self) {
                self.0.init.with(|s, wakes| {
                    s.running = false;
                    if self.0.value.get().is_some() {
                        s.waiting.claim_all(wakes);
                    } else {
                        s.waiting.claim_one(wakes);
                    }
                });
            }
        }
        let guard = Running(self);
        let _ = self.value.set(init());
        drop(guard);
        Ok(self.value.get().expect("just set"))
    }
}

impl<T: fmt::Debug> fmt::Debug for OnceCell<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("OnceCell").field(&self.value.get()).finish()
    }
}
