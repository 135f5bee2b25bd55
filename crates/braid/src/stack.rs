//! Strand stacks: carved from large slabs, guarded, pooled per core.
//!
//! # Layout and the trade-off it makes
//!
//! A slab is one anonymous mapping holding [`SLAB_STACKS`] stacks, each preceded by
//! one guard page:
//!
//! ```text
//! low addresses                                                      high addresses
//! | guard | stack 0 (grows down) | guard | stack 1 | ... | guard | stack 63 |
//! ```
//!
//! Memory is committed only when touched (`MAP_NORESERVE`), so a parked strand costs
//! the pages its stack actually used, typically one.
//!
//! The guard is what makes overflow detectable: a strand that runs off the low end
//! of its stack faults on its guard, and the fault handler ([`crate::overflow`])
//! reports the strand's name and stack size and aborts. The obvious layout — one
//! mapping or one `mprotect` per guard — costs two kernel mappings per stack, and the
//! stock `vm.max_map_count` of 65 530 then caps a process at about 32 000 strands.
//! braid instead installs guards with `MADV_GUARD_INSTALL` (Linux 6.13+), which marks
//! the guard in the page tables without splitting the mapping: a million guarded
//! stacks cost about 16 000 mappings. On older kernels braid falls back to
//! `mprotect` guards and reports an error (never an unguarded stack) once the
//! mapping budget is spent; the fallback is named in [`crate::Stats`].
//!
//! A strand takes its stack from its core's pool when it first runs, not when it
//! is spawned (see `strand::Launch`): strands waiting to start hold no stack, and
//! the last stack given back (still in the cache) is the next one handed out.
//!
//! Stacks are never unmapped while the runtime lives: an exited strand's stack goes
//! to its core's free list and the next spawn of the same size reuses it, so the
//! spawn/exit path makes no system call once the pool is warm.

use crate::sys;
use corosensei::stack::{Stack, StackPointer};
use std::io;
use std::sync::Mutex;

/// Stacks per slab: large enough that a million stacks fit in a few thousand
/// mappings, small enough that a runtime with few strands reserves little.
pub(crate) const SLAB_STACKS: usize = 64;

/// A strand's stack: `usable` bytes below `top`, with one guard page below that.
#[derive(Debug)]
pub(crate) struct StrandStack {
    top: usize,
    usable: usize,
}

impl StrandStack {
    /// Usable bytes (excluding the guard page).
    #[cfg(test)]
    pub(crate) fn usable(&self) -> usize {
        self.usable
    }

    /// The guard page's address range `[start, end)`.
    pub(crate) fn guard(&self) -> (usize, usize) {
        let end = self.top - self.usable;
        (end - sys::page_size(), end)
    }
}

// SAFETY: `top` is page aligned (hence 16-byte aligned) and `usable` bytes below it
// are readable and writable memory that this stack alone owns while it exists;
// below them lies a guard page that faults on access. `limit` includes the guard.
unsafe impl Stack for StrandStack {
    fn base(&self) -> StackPointer {
        StackPointer::new(self.top).expect("stack top is never null")
    }

    fn limit(&self) -> StackPointer {
        StackPointer::new(self.guard().0).expect("stack limit is never null")
    }
}

/// Every slab a runtime mapped, so they can be unmapped when it is dropped.
#[derive(Debug, Default)]
pub(crate) struct SlabRegistry {
    slabs: Mutex<Vec<(usize, usize)>>,
}

impl SlabRegistry {
    /// Maps a new slab of [`SLAB_STACKS`] stacks of `usable` bytes each.
    fn map_slab(&self, usable: usize) -> io::Result<Vec<StrandStack>> {
        let page = sys::page_size();
        let stride = usable + page;
        let len = stride * SLAB_STACKS;
        let base = sys::map_stack_memory(len)?;
        let kind = sys::guard_kind();
        let mut stacks = Vec::with_capacity(SLAB_STACKS);
        for i in 0..SLAB_STACKS {
            let guard = base + i * stride;
            if let Err(err) = sys::install_guard(guard, page, kind) {
                // SAFETY: the slab was mapped above and no stack was handed out.
                unsafe { sys::unmap(base, len) };
                return Err(io::Error::new(
                    err.kind(),
                    format!(
                        "cannot install a stack guard page ({kind:?}): {err}; \
                         raise vm.max_map_count or use a Linux 6.13+ kernel"
                    ),
                ));
            }
            stacks.push(StrandStack {
                top: guard + stride,
                usable,
            });
        }
        self.slabs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((base, len));
        Ok(stacks)
    }

    /// Number of slabs (kernel mappings) in use.
    pub(crate) fn slab_count(&self) -> usize {
        self.slabs.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Unmaps every slab.
    ///
    /// # Safety
    /// No stack carved from these slabs may still be in use or referenced.
    pub(crate) unsafe fn release_all(&self) {
        let mut slabs = self.slabs.lock().unwrap_or_else(|e| e.into_inner());
        for (base, len) in slabs.drain(..) {
            // SAFETY: the caller guarantees no stack of this slab is in use.
            unsafe { sys::unmap(base, len) };
        }
    }
}

/// One core's free stacks, by usable size. Touched only by the owning core.
///
/// A short list searched linearly: programs use one or two stack sizes, and the
/// most recently used size is kept first.
#[derive(Debug, Default)]
pub(crate) struct StackPool {
    free: Vec<(usize, Vec<StrandStack>)>,
}

impl StackPool {
    /// The free list for `usable`-byte stacks, moved to the front.
    #[inline]
    fn list(&mut self, usable: usize) -> &mut Vec<StrandStack> {
        match self.free.iter().position(|(size, _)| *size == usable) {
            Some(0) => {}
            Some(i) => self.free[..=i].rotate_right(1),
            None => self.free.insert(0, (usable, Vec::new())),
        }
        &mut self.free[0].1
    }

    /// A stack of `usable` bytes: reused if one is free, else from a new slab.
    pub(crate) fn take(&mut self, usable: usize, slabs: &SlabRegistry) -> io::Result<StrandStack> {
        let list = self.list(usable);
        if let Some(stack) = list.pop() {
            return Ok(stack);
        }
        let mut fresh = slabs.map_slab(usable)?;
        let stack = fresh.pop().expect("a slab holds at least one stack");
        list.append(&mut fresh);
        Ok(stack)
    }

    /// Returns a stack whose strand has finished, for reuse.
    pub(crate) fn give_back(&mut self, stack: StrandStack) {
        self.list(stack.usable).push(stack);
    }

    /// Free stacks held.
    #[cfg(test)]
    pub(crate) fn free_count(&self) -> usize {
        self.free.iter().map(|(_, list)| list.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stacks_are_reused_and_distinct() {
        let slabs = SlabRegistry::default();
        let mut pool = StackPool::default();
        let a = pool.take(64 * 1024, &slabs).unwrap();
        let b = pool.take(64 * 1024, &slabs).unwrap();
        assert_ne!(a.top, b.top);
        assert_eq!(slabs.slab_count(), 1);
        assert_eq!(pool.free_count(), SLAB_STACKS - 2);
        let a_top = a.top;
        pool.give_back(a);
        let c = pool.take(64 * 1024, &slabs).unwrap();
        assert_eq!(c.top, a_top);
        // A different size comes from its own slab.
        let d = pool.take(128 * 1024, &slabs).unwrap();
        assert_eq!(d.usable(), 128 * 1024);
        assert_eq!(slabs.slab_count(), 2);
        // SAFETY: the stacks above are plain descriptors no longer used.
        unsafe { slabs.release_all() };
    }

    #[test]
    fn stack_memory_is_writable_and_guard_is_below() {
        let slabs = SlabRegistry::default();
        let mut pool = StackPool::default();
        let s = pool.take(16 * 1024, &slabs).unwrap();
        let (g0, g1) = s.guard();
        assert_eq!(g1 - g0, sys::page_size());
        assert_eq!(s.limit().get(), g0);
        assert_eq!(s.base().get() - g1, 16 * 1024);
        // SAFETY: the usable range lies inside the slab and belongs to `s`.
        unsafe {
            let lowest = g1 as *mut u8;
            lowest.write_volatile(7);
            assert_eq!(lowest.read_volatile(), 7);
        }
        // SAFETY: the stack descriptor is no longer used.
        unsafe { slabs.release_all() };
    }
}
