//! How many strands a runtime may have alive at once
//! (`RuntimeBuilder::max_strands`). The runtime holds a shared pool of
//! permits; each core keeps a [`Reserve`] it draws from the pool a chunk at a
//! time and returns surplus to, so that a spawn and an exit touch the shared
//! count about once per [`CHUNK`] strands rather than every time. A spawn
//! takes a permit, an exit gives one back wherever the strand ends.
//!
//! The limit is exact as an upper bound: live strands never exceed it. A
//! spawn may be refused a little early, while other cores hold permits in
//! their reserves (at most `2 * CHUNK` each).

/// Permits a core draws from the pool when its reserve is empty.
pub const CHUNK: u64 = 64;

/// A core's permits for new strands.
#[derive(Clone, Debug, Default)]
pub struct Reserve {
    permits: u64,
}

impl Reserve {
    /// Takes a permit for a spawn: false if the reserve is empty and must
    /// first be filled from the pool (ask for [`CHUNK`]).
    #[inline]
    pub fn take(&mut self) -> bool {
        if self.permits == 0 {
            return false;
        }
        self.permits -= 1;
        true
    }

    /// `granted` permits came from the pool.
    pub fn fill(&mut self, granted: u64) {
        self.permits = self.permits.saturating_add(granted);
    }

    /// A strand ended on this core: its permit comes back here. Returns how
    /// many the core should give back to the pool (0 unless its reserve grew
    /// past two chunks; it then keeps one).
    #[inline]
    #[must_use]
    pub fn put_back(&mut self) -> u64 {
        self.permits = self.permits.saturating_add(1);
        if self.permits > 2 * CHUNK {
            let surplus = self.permits - CHUNK;
            self.permits = CHUNK;
            surplus
        } else {
            0
        }
    }

    /// Permits held.
    #[must_use]
    pub fn held(&self) -> u64 {
        self.permits
    }
}

/// What a pool with `left` permits grants to a request for `want`: as many
/// as it has, up to `want`.
#[must_use]
pub fn grant(left: u64, want: u64) -> u64 {
    left.min(want)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pool and cores as the runtime uses them, counting exactly.
    struct Model {
        pool: u64,
        reserves: Vec<Reserve>,
        live: u64,
    }

    impl Model {
        fn spawn(&mut self, core: usize) -> bool {
            let reserve = &mut self.reserves[core];
            if !reserve.take() {
                let granted = grant(self.pool, CHUNK);
                self.pool -= granted;
                reserve.fill(granted);
                if !reserve.take() {
                    return false;
                }
            }
            self.live += 1;
            true
        }

        fn exit(&mut self, core: usize) {
            self.live -= 1;
            self.pool += self.reserves[core].put_back();
        }

        fn total(&self) -> u64 {
            self.pool + self.live + self.reserves.iter().map(Reserve::held).sum::<u64>()
        }
    }

    #[test]
    fn live_strands_never_exceed_the_limit_and_no_permit_is_lost() {
        let limit = 1000;
        let mut m = Model {
            pool: limit,
            reserves: vec![Reserve::default(); 4],
            live: 0,
        };
        let mut rng = 0x9E37_79B9_7F4A_7C15u64;
        let mut refused = 0;
        for step in 0..200_000u64 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let core = (rng % 4) as usize;
            // Spawn more often than exit until the limit is reached.
            if m.live == 0 || rng % 5 < 3 {
                if !m.spawn(core) {
                    refused += 1;
                    // Refused only while the pool is empty, and then at
                    // most the other cores' reserves short of the limit.
                    assert_eq!(m.pool, 0, "step {step}");
                    assert!(
                        m.live + 4 * 2 * CHUNK >= limit,
                        "refused at {} live",
                        m.live
                    );
                }
            } else {
                m.exit(((rng >> 8) % 4) as usize);
            }
            assert!(m.live <= limit);
            assert_eq!(m.total(), limit, "step {step}: a permit was lost or made");
        }
        assert!(refused > 0, "the limit was never reached");
    }

    #[test]
    fn a_lone_core_can_spawn_up_to_the_limit() {
        let mut m = Model {
            pool: 130,
            reserves: vec![Reserve::default(); 2],
            live: 0,
        };
        for _ in 0..130 {
            assert!(m.spawn(0));
        }
        assert!(!m.spawn(0));
        assert!(!m.spawn(1));
        m.exit(1);
        assert!(m.spawn(1), "the permit came back on core 1");
    }
}
