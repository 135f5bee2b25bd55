//! `Mutex` and `RwLock` that block the strand, not the thread.
//!
//! `Mutex` takes its lock with atomics (the state word of `mutex_word`,
//! model-checked) and uses its wait list only when a strand must wait;
//! `RwLock` keeps all of its state under its small lock.
//!
//! Neither is poisoned by a panic: the guard is released as the panicking strand
//! unwinds, and the next holder sees whatever state the panic left.

use super::monitor::{cancelled, GaveUp, Monitor};
use super::mutex_word as word;
use super::waiter::{WaitList, Wakes};
use crate::error::Cancelled;
use crate::facade::AtomicU8;
use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

fn gave_up_to_cancelled(g: GaveUp) -> Option<Cancelled> {
    match g {
        GaveUp::Cancelled => Some(Cancelled),
        GaveUp::TimedOut => None,
    }
}

#[derive(Default)]
struct LockState {
    /// Readers holding the lock (always 0 for a `Mutex`).
    readers: usize,
    writer: bool,
    writers_waiting: WaitList,
    readers_waiting: WaitList,
}

impl LockState {
    /// After a release or a waiter giving up: lets the next waiters try. A
    /// waiting writer goes first (so a stream of readers cannot starve it),
    /// else every waiting reader.
    fn release(&mut self, wakes: &mut Wakes) {
        if self.writer {
            return;
        }
        if self.readers == 0 && self.writers_waiting.claim_one(wakes) {
            return;
        }
        // No writer holds or waits (one that gave up may have been all that
        // held these readers back): let the readers in.
        if self.writers_waiting.is_empty() {
            self.readers_waiting.claim_all(wakes);
        }
    }

    fn lock_write(monitor: &Monitor<LockState>, deadline: Option<Instant>) -> Result<(), GaveUp> {
        monitor.wait_until(
            deadline,
            |s, _, waker| {
                if !s.writer && s.readers == 0 {
                    s.writer = true;
                    return Some(Ok(()));
                }
                if cancelled() {
                    return Some(Err(GaveUp::Cancelled));
                }
                s.writers_waiting.push(waker());
                None
            },
            |s, wakes, waker| {
                s.writers_waiting.remove(waker);
                s.release(wakes);
            },
        )?
    }

    fn lock_read(monitor: &Monitor<LockState>, deadline: Option<Instant>) -> Result<(), GaveUp> {
        monitor.wait_until(
            deadline,
            |s, _, waker| {
                // Readers queue behind a waiting writer.
                if !s.writer && s.writers_waiting.is_empty() {
                    s.readers += 1;
                    return Some(Ok(()));
                }
                if cancelled() {
                    return Some(Err(GaveUp::Cancelled));
                }
                s.readers_waiting.push(waker());
                None
            },
            |s, wakes, waker| {
                s.readers_waiting.remove(waker);
                s.release(wakes);
            },
        )?
    }
}

/// Mutual exclusion for strands: `lock` blocks the strand while another holds
/// the lock. Uncontended, locking is one compare-and-swap and unlocking one
/// swap; waiters queue in arrival order, but a strand that arrives while the
/// lock is free takes it at once (no convoys behind a waiter still waking up).
pub struct Mutex<T: ?Sized> {
    state: AtomicU8,
    waiters: Monitor<WaitList>,
    value: UnsafeCell<T>,
}

// SAFETY: the lock hands out access to `value` to one holder at a time, which
// may be on any thread, hence T: Send.
unsafe impl<T: ?Sized + Send> Send for Mutex<T> {}
// SAFETY: through a shared `&Mutex`, strands on any threads get `&mut T` in turn:
// the `LOCKED` bit of `state` admits one guard at a time, taken with Acquire and
// released with Release, so accesses to `value` never overlap and each holder
// sees the previous one's writes. `T` is handed between threads, never shared,
// so `T: Send` suffices.
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}

/// Access to a [`Mutex`]'s value; unlocks when dropped.
pub struct MutexGuard<'a, T: ?Sized> {
    mutex: &'a Mutex<T>,
    /// Shares like `&mut T`: sending the guard needs `T: Send`, sharing it
    /// needs `T: Sync` (without this it would be `Sync` for any `T: Send`).
    _access: PhantomData<&'a mut T>,
}

impl<T> Mutex<T> {
    /// A mutex holding `value`.
    pub fn new(value: T) -> Mutex<T> {
        Mutex {
            state: AtomicU8::new(0),
            waiters: Monitor::new(WaitList::default()),
            value: UnsafeCell::new(value),
        }
    }

    /// The value, consuming the mutex.
    pub fn into_inner(self) -> T {
        self.value.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Locks, blocking the strand while another holds the lock. Fails only if
    /// the strand's group is cancelled.
    pub fn lock(&self) -> Result<MutexGuard<'_, T>, Cancelled> {
        if self.try_lock_fast() {
            return Ok(MutexGuard {
                mutex: self,
                _access: PhantomData,
            });
        }
        self.lock_slow(None)
            .map_err(|g| gave_up_to_cancelled(g).expect("no deadline"))?;
        Ok(MutexGuard {
            mutex: self,
            _access: PhantomData,
        })
    }

    /// As [`lock`](Self::lock), giving up (`Ok(None)`) after `timeout`.
    pub fn lock_timeout(&self, timeout: Duration) -> Result<Option<MutexGuard<'_, T>>, Cancelled> {
        if self.try_lock_fast() {
            return Ok(Some(MutexGuard {
                mutex: self,
                _access: PhantomData,
            }));
        }
        match self.lock_slow(Some(Instant::now() + timeout)) {
            Ok(()) => Ok(Some(MutexGuard {
                mutex: self,
                _access: PhantomData,
            })),
            Err(g) => gave_up_to_cancelled(g).map_or(Ok(None), Err),
        }
    }

    /// Locks if nobody holds the lock now.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        // `then`, not `then_some`: a guard built for a failed attempt would
        // unlock the holder's lock when dropped.
        word::try_lock(&self.state).then(|| MutexGuard {
            mutex: self,
            _access: PhantomData,
        })
    }

    #[inline]
    fn try_lock_fast(&self) -> bool {
        word::try_lock_fast(&self.state)
    }

    fn lock_slow(&self, deadline: Option<Instant>) -> Result<(), GaveUp> {
        self.waiters.wait_until(
            deadline,
            |list, _, waker| {
                // Under the wait list's lock: either take the free lock, or
                // mark that a waiter is queued and queue — an unlock after
                // the mark comes here and finds the waker (see `mutex_word`).
                if word::lock_or_mark(&self.state) {
                    return Some(Ok(()));
                }
                if cancelled() {
                    return Some(Err(GaveUp::Cancelled));
                }
                list.push(waker());
                None
            },
            |list, wakes, waker| {
                list.remove(waker);
                // A wake meant for us goes to the next waiter.
                if word::is_free(&self.state) {
                    list.claim_one(wakes);
                }
            },
        )?
    }

    fn unlock(&self) {
        if !word::unlock(&self.state) {
            return;
        }
        self.waiters.with(|list, wakes| {
            list.claim_one(wakes);
            if !list.is_empty() {
                word::mark_waiters(&self.state);
            }
        });
    }

    /// The value, through exclusive access to the mutex.
    pub fn get_mut(&mut self) -> &mut T {
        self.value.get_mut()
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard proves this holder has the lock.
        unsafe { &*self.mutex.value.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard proves this holder has the lock, exclusively.
        unsafe { &mut *self.mutex.value.get() }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        self.mutex.unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.try_lock() {
            Some(g) => f.debug_struct("Mutex").field("value", &&*g).finish(),
            None => f.write_str("Mutex { <locked> }"),
        }
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// Many readers or one writer, for strands. A waiting writer blocks new
/// readers, so writers are not starved.
pub struct RwLock<T: ?Sized> {
    state: Monitor<LockState>,
    value: UnsafeCell<T>,
}

// SAFETY: sending an `RwLock` moves the `T` in `value` to another thread, which
// `T: Send` allows; nothing else can reach a value that is being moved.
unsafe impl<T: ?Sized + Send> Send for RwLock<T> {}
// SAFETY: `state` admits one writer or many readers at a time. Readers on several
// threads then hold `&T` at once, which needs `T: Sync`; a writer on any thread
// gets `&mut T` and may replace the value, moving it across threads, which needs
// `T: Send`. Guards are granted and released under `state`'s lock, which orders
// each access after the ones it excludes.
unsafe impl<T: ?Sized + Send + Sync> Sync for RwLock<T> {}

/// Shared access to an [`RwLock`]'s value.
pub struct RwLockReadGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
}

/// Exclusive access to an [`RwLock`]'s value.
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
}

impl<T> RwLock<T> {
    /// A lock holding `value`.
    pub fn new(value: T) -> RwLock<T> {
        RwLock {
            state: Monitor::new(LockState::default()),
            value: UnsafeCell::new(value),
        }
    }

    /// The value, consuming the lock.
    pub fn into_inner(self) -> T {
        self.value.into_inner()
    }
}

impl<T: ?Sized> RwLock<T> {
    /// Shared access, blocking the strand while a writer holds or waits.
    pub fn read(&self) -> Result<RwLockReadGuard<'_, T>, Cancelled> {
        LockState::lock_read(&self.state, None)
            .map_err(|g| gave_up_to_cancelled(g).expect("no deadline"))?;
        Ok(RwLockReadGuard { lock: self })
    }

    /// Exclusive access, blocking the strand while anyone else holds the lock.
    pub fn write(&self) -> Result<RwLockWriteGuard<'_, T>, Cancelled> {
        LockState::lock_write(&self.state, None)
            .map_err(|g| gave_up_to_cancelled(g).expect("no deadline"))?;
        Ok(RwLockWriteGuard { lock: self })
    }

    /// The value, through exclusive access to the lock.
    pub fn get_mut(&mut self) -> &mut T {
        self.value.get_mut()
    }
}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: a read guard means no writer holds the lock.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the write guard is the only holder.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the write guard is the only holder.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T: ?Sized> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.state.with(|s, wakes| {
            s.readers -= 1;
            s.release(wakes);
        });
    }
}

impl<T: ?Sized> Drop for RwLockWriteGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.state.with(|s, wakes| {
            s.writer = false;
            s.release(wakes);
        });
    }
}

impl<T: ?Sized> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RwLock { .. }")
    }
}
