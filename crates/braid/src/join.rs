//! The join protocol: how a strand's result travels to its one joiner, and
//! how the joiner is woken exactly when it waits.
//!
//! `state` is `EMPTY`, then `WAITING` once a joiner stored itself in `waiter`,
//! and finally `DONE` once the result is in `result`:
//! 1. The joiner writes `waiter` only before its `EMPTY -> WAITING` CAS
//!    ([`JoinCell::register`]); a CAS that fails found `DONE`, and the joiner
//!    takes its waiter back.
//! 2. The strand writes `result`, then swaps in `DONE` ([`JoinCell::complete`]);
//!    if the swap saw `WAITING` it takes the waiter out and wakes it.
//! 3. The joiner reads `result` only after it observed `DONE`
//!    ([`JoinCell::take`]).
//!
//! The swap is `AcqRel`: its Release publishes the result, its Acquire sees
//! the waiter the joiner's `AcqRel` CAS published. `tests/join_loom.rs`
//! model-checks this file (compiled there against loom's atomics and cells).

use crate::facade::{AtomicU32, Ordering, UnsafeCell};

const EMPTY: u32 = 0;
const WAITING: u32 = 1;
const DONE: u32 = 2;

/// A result of type `R` on its way to a joiner woken through a `W`.
pub(crate) struct JoinCell<R, W> {
    state: AtomicU32,
    result: UnsafeCell<Option<R>>,
    waiter: UnsafeCell<Option<W>>,
}

impl<R, W> JoinCell<R, W> {
    pub(crate) fn new() -> JoinCell<R, W> {
        JoinCell {
            state: AtomicU32::new(EMPTY),
            result: UnsafeCell::new(None),
            waiter: UnsafeCell::new(None),
        }
    }

    /// The strand's side: stores `result`; returns the joiner's waiter if one
    /// is waiting (the caller wakes it).
    ///
    /// # Safety
    /// Called at most once per cell, by the strand alone.
    pub(crate) unsafe fn complete(&self, result: R) -> Option<W> {
        // SAFETY: only the strand writes `result`, once, before publishing
        // DONE; the joiner reads it only after observing DONE.
        self.result.with_mut(|r| unsafe { *r = Some(result) });
        // AcqRel: Release publishes the result; Acquire sees the joiner's waiter.
        if self.state.swap(DONE, Ordering::AcqRel) == WAITING {
            // SAFETY: WAITING means the joiner stored its waiter before its
            // CAS (which our Acquire saw) and will not touch the cell again.
            self.waiter.with_mut(|w| unsafe { (*w).take() })
        } else {
            None
        }
    }

    /// Whether the result is in (Acquire: a `true` makes it readable).
    #[inline]
    pub(crate) fn is_done(&self) -> bool {
        self.state.load(Ordering::Acquire) == DONE
    }

    /// The joiner's side: leaves `waiter` to be woken by
    /// [`JoinCell::complete`]. Returns false if the result was already in (the
    /// waiter is dropped, nobody will wake it).
    ///
    /// # Safety
    /// Called at most once per cell, by its one joiner.
    pub(crate) unsafe fn register(&self, waiter: W) -> bool {
        // SAFETY: before our CAS the strand never reads `waiter`, and there is
        // one joiner: nobody else touches the cell.
        self.waiter.with_mut(|w| unsafe { *w = Some(waiter) });
        // AcqRel: Release publishes the waiter to the completing strand.
        match self
            .state
            .compare_exchange(EMPTY, WAITING, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(_) => {
                // DONE: the strand finished first and never looks at the
                // waiter; take it back.
                // SAFETY: as above, the cell is ours alone.
                drop(self.waiter.with_mut(|w| unsafe { (*w).take() }));
                false
            }
        }
    }

    /// The joiner, after [`JoinCell::is_done`] returned true: takes the result.
    ///
    /// # Safety
    /// Only the cell's one joiner calls it, after seeing `is_done`.
    pub(crate) unsafe fn take(&self) -> Option<R> {
        debug_assert!(self.is_done());
        // SAFETY: DONE was observed with Acquire, so the strand's write of the
        // result happened before, and it never touches the cell again; there
        // is one joiner.
        self.result.with_mut(|r| unsafe { (*r).take() })
    }

    /// What is left in the cell when it goes away unjoined (exclusive access).
    pub(crate) fn take_unjoined(&mut self) -> Option<R> {
        // SAFETY: `&mut self`: no other reference to the cell exists.
        self.result.with_mut(|r| unsafe { (*r).take() })
    }
}
