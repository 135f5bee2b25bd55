//! Strand ids: minted by a core without talking to any other.
//!
//! An id is a per-core counter with the minting core in the low
//! [`CORE_BITS`] bits, so two cores never mint the same id and the core that
//! minted an id can be read back from it. Ids minted outside every core (a
//! thread that is not a carrier spawns a strand) use the reserved core field
//! [`FOREIGN`].

use crate::balance::CoreId;

/// Low bits of an id that name the core that minted it.
pub const CORE_BITS: u32 = 12;
/// The core field of ids minted outside the runtime's cores.
pub const FOREIGN: u64 = (1 << CORE_BITS) - 1;
/// The most cores a runtime (or a simulation) may have: every core needs a
/// core field of its own, and [`FOREIGN`] is taken.
pub const MAX_CORES: usize = FOREIGN as usize;

/// Composes the id of the `n`-th strand minted by `core` (`None`: outside
/// every core).
#[inline]
pub fn compose(n: u64, core: Option<CoreId>) -> u64 {
    let field = match core {
        Some(core) => {
            debug_assert!(core < MAX_CORES);
            core as u64
        }
        None => FOREIGN,
    };
    (n << CORE_BITS) | field
}

/// The core that minted `id`, or `None` for an id minted outside every core.
#[inline]
pub fn minted_by(id: u64) -> Option<CoreId> {
    match id & FOREIGN {
        FOREIGN => None,
        core => Some(core as CoreId),
    }
}

/// One core's id counter.
#[derive(Debug, Clone, Hash)]
pub struct IdMint {
    core: CoreId,
    minted: u64,
}

impl IdMint {
    /// The counter of core `core` (below [`MAX_CORES`]).
    pub fn new(core: CoreId) -> IdMint {
        IdMint { core, minted: 0 }
    }

    /// A fresh id, never returned before by any core's mint.
    #[inline]
    pub fn fresh(&mut self) -> u64 {
        self.minted += 1;
        compose(self.minted, Some(self.core))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_name_their_core_and_never_collide() {
        let mut seen = std::collections::HashSet::new();
        for core in [0, 1, 7, MAX_CORES - 1] {
            let mut mint = IdMint::new(core);
            for _ in 0..100 {
                let id = mint.fresh();
                assert_eq!(minted_by(id), Some(core));
                assert!(seen.insert(id), "id {id} minted twice");
            }
        }
        let foreign = compose(5, None);
        assert_eq!(minted_by(foreign), None);
        assert!(seen.insert(foreign));
    }
}
