//! Scoped strands that may borrow from the caller's stack, like
//! `std::thread::scope`.

use crate::error::{SpawnError, StrandError};
use crate::facade::{AtomicBool, AtomicUsize, Ordering};
use crate::spawn::{Builder, JoinHandle};
use crate::strand;
use crate::sync::waiter::Waiter;
use std::marker::PhantomData;
use std::sync::Arc;

/// Bookkeeping shared by a scope and its strands.
///
/// `running` counts scoped strands whose packet still exists. A packet is dropped
/// only after its strand's closure and result are gone, so when `running` reaches
/// zero nothing can use the scope's borrows any more, and `scope` may return.
#[derive(Debug)]
pub(crate) struct ScopeState {
    running: AtomicUsize,
    panicked: AtomicBool,
    owner: Waiter,
}

impl ScopeState {
    pub(crate) fn strand_done(&self, unjoined_panic: bool) {
        if unjoined_panic {
            self.panicked.store(true, Ordering::Relaxed);
        }
        // Release: everything the strand did happens before the scope returns.
        if self.running.fetch_sub(1, Ordering::Release) == 1 {
            self.owner.clone().wake();
        }
    }
}

/// A scope to spawn strands that borrow from the enclosing function.
pub struct Scope<'scope, 'env: 'scope> {
    state: Arc<ScopeState>,
    scope: PhantomData<&'scope mut &'scope ()>,
    env: PhantomData<&'env mut &'env ()>,
}

/// A handle to join a scoped strand.
pub struct ScopedJoinHandle<'scope, T> {
    inner: JoinHandle<T>,
    scope: PhantomData<&'scope ()>,
}

impl<T> ScopedJoinHandle<'_, T> {
    /// Waits for the strand and returns its value, or why there is none.
    pub fn join(self) -> Result<T, StrandError> {
        self.inner.join()
    }

    /// Whether the strand has finished.
    pub fn is_finished(&self) -> bool {
        self.inner.is_finished()
    }
}

impl<'scope> Scope<'scope, '_> {
    /// Spawns a strand that may borrow anything that outlives the scope.
    ///
    /// # Panics
    /// Outside a strand, or possibly when the runtime is already shutting down;
    /// see [`Scope::spawn_with`] for errors as values. A strand for which no
    /// stack can be had does not make this panic: joining it gives an error for
    /// which [`StrandError::is_not_started`] is true.
    pub fn spawn<F, T>(&'scope self, f: F) -> ScopedJoinHandle<'scope, T>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        self.spawn_with(Builder::new(), f)
            .unwrap_or_else(|e| panic!("braid::Scope::spawn: {e}"))
    }

    /// Spawns a scoped strand configured by `builder`.
    pub fn spawn_with<F, T>(
        &'scope self,
        builder: Builder,
        f: F,
    ) -> Result<ScopedJoinHandle<'scope, T>, SpawnError>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        self.state.running.fetch_add(1, Ordering::Relaxed);
        // SAFETY: `scope` does not return until `running` is back to zero, which
        // happens only once this strand's packet — and so its closure and result
        // — has been dropped. The borrows therefore outlive every use.
        match unsafe { builder.spawn_unchecked(Some(self.state.clone()), f) } {
            Ok(inner) => Ok(ScopedJoinHandle {
                inner,
                scope: PhantomData,
            }),
            Err(err) => {
                self.state.running.fetch_sub(1, Ordering::Relaxed);
                Err(err)
            }
        }
    }
}

/// Runs `f` with a [`Scope`] whose strands may borrow local data, and waits for
/// all of them before returning. If a scoped strand panicked and was not joined,
/// `scope` panics after they all finished.
pub fn scope<'env, F, T>(f: F) -> T
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> T,
{
    let scope = Scope {
        state: Arc::new(ScopeState {
            running: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            owner: Waiter::current(),
        }),
        scope: PhantomData,
        env: PhantomData,
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&scope)));
    // Acquire pairs with the Release in `strand_done`. The wait must not give up
    // on cancellation: the borrows must outlive every scoped strand.
    while scope.state.running.load(Ordering::Acquire) != 0 {
        strand::park_current();
    }
    match result {
        Err(payload) => std::panic::resume_unwind(payload),
        Ok(_) if scope.state.panicked.load(Ordering::Relaxed) => {
            panic!("a scoped strand panicked")
        }
        Ok(value) => value,
    }
}
