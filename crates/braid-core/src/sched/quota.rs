//! How many strands a runtime may have alive at once
//! (`RuntimeBuilder::max_strands`). The runtime holds a shared pool of
//! permits; each core keeps a [`Reserve`] it draws from the pool a chunk at a
//! time and returns surplus to, so that a spawn and an exit touch the shared
//! count about once per chunk of strands rather than every time. A spawn
//! takes a permit, an exit gives one back wherever the strand ends, and a
//! core about to idle returns its whole reserve.
//!
//! The limit is exact as an upper bound: live strands never exceed it. A
//! spawn may be refused a little early, while other busy cores hold permits
//! in their reserves: at most `2 * chunk` each, and [`chunk_for`] sizes the
//! chunk so that all reserves together hold at most a sixteenth of the
//! limit. Under 128 permits per core there are no reserves: every spawn and
//! exit goes to the pool, and the limit is exact both ways.

/// The largest chunk a core draws from the pool when its reserve is empty.
pub const CHUNK: u64 = 64;

/// The chunk for a runtime of `cores` cores allowed `limit` live strands: 0
/// (no reserves) when it would be under 4, else at most [`CHUNK`] and at most
/// `limit / (32 * cores)`, so reserves (two chunks each) hold at most
/// `limit / 16`.
#[must_use]
pub fn chunk_for(limit: u64, cores: usize) -> u64 {
    let per_core = limit / (32 * cores.max(1) as u64);
    if per_core < 4 {
        0
    } else {
        per_core.min(CHUNK)
    }
}

/// A core's permits for new strands.
#[derive(Clone, Debug)]
pub struct Reserve {
    permits: u64,
    chunk: u64,
}

impl Reserve {
    /// An empty reserve that draws `chunk` permits at a time (0: one per
    /// spawn, none kept).
    #[must_use]
    pub fn new(chunk: u64) -> Reserve {
        Reserve { permits: 0, chunk }
    }

    /// Takes a permit for a spawn: false if the reserve is empty and must
    /// first be filled from the pool (ask for [`Reserve::want`]).
    #[inline]
    pub fn take(&mut self) -> bool {
        if self.permits == 0 {
            return false;
        }
        self.permits -= 1;
        true
    }

    /// How many permits to ask the pool for when the reserve is empty.
    #[must_use]
    pub fn want(&self) -> u64 {
        self.chunk.max(1)
    }

    /// `granted` permits came from the pool.
    pub fn fill(&mut self, granted: u64) {
        self.permits = self.permits.saturating_add(granted);
    }

    /// A strand ended on this core: its permit comes back here. Returns how
    /// many the core should give back to the pool (0 unless its reserve grew
    /// past two chunks; it then keeps one chunk).
    #[inline]
    #[must_use]
    pub fn put_back(&mut self) -> u64 {
        self.permits = self.permits.saturating_add(1);
        if self.permits > 2 * self.chunk {
            let surplus = self.permits - self.chunk;
            self.permits = self.chunk;
            surplus
        } else {
            0
        }
    }

    /// The core is about to idle: every permit it holds goes back to the
    /// pool (returns how many), so that busy cores may use them.
    #[must_use]
    pub fn drain(&mut self) -> u64 {
        std::mem::take(&mut self.permits)
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
        fn new(limit: u64, cores: usize) -> Model {
            Model {
                pool: limit,
                reserves: vec![Reserve::new(chunk_for(limit, cores)); cores],
                live: 0,
            }
        }

        fn spawn(&mut self, core: usize) -> bool {
            let reserve = &mut self.reserves[core];
            if !reserve.take() {
                let granted = grant(self.pool, reserve.want());
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

        fn idle(&mut self, core: usize) {
            self.pool += self.reserves[core].drain();
        }

        fn total(&self) -> u64 {
            self.pool + self.live + self.reserves.iter().map(Reserve::held).sum::<u64>()
        }
    }

    #[test]
    fn chunks_keep_reserves_within_a_sixteenth_of_the_limit() {
        for cores in [1, 2, 16, 1024] {
            for limit in [1, 2, 127, 128, 1000, 4096, 1 << 22, 1 << 27] {
                let chunk = chunk_for(limit, cores);
                assert!(chunk <= CHUNK);
                assert!(
                    2 * chunk * cores as u64 <= limit / 16,
                    "{cores} cores, limit {limit}: chunk {chunk}"
                );
            }
        }
        assert_eq!(chunk_for(1 << 22, 2), CHUNK);
        assert_eq!(chunk_for(100, 2), 0, "under 128 per core: no reserves");
    }

    #[test]
    fn live_strands_never_exceed_the_limit_and_no_permit_is_lost() {
        for limit in [1, 50, 1000, 20_000] {
            let cores = 4;
            let mut m = Model::new(limit, cores);
            let chunk = chunk_for(limit, cores);
            let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ limit;
            let mut refused = 0;
            for step in 0..400_000u64 {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let core = (rng % 4) as usize;
                match rng % 16 {
                    // Spawn more often than exit until the limit is reached.
                    0..=8 => {
                        if !m.spawn(core) {
                            refused += 1;
                            // Refused only while the pool is empty, and then
                            // short of the limit by at most the other cores'
                            // reserves.
                            assert_eq!(m.pool, 0, "limit {limit}, step {step}");
                            assert!(
                                m.live + (cores as u64 - 1) * 2 * chunk >= limit,
                                "limit {limit}: refused at {} live",
                                m.live
                            );
                        }
                    }
                    9..=14 if m.live > 0 => m.exit(((rng >> 8) % 4) as usize),
                    _ => m.idle(core),
                }
                assert!(m.live <= limit);
                assert_eq!(m.total(), limit, "step {step}: a permit was lost or made");
            }
            assert!(refused > 0, "limit {limit} was never reached");
        }
    }

    #[test]
    fn a_small_limit_is_exact_whichever_core_spawns_and_ends() {
        // One permit: a strand spawned on core 0 that ends on core 1 leaves
        // its permit where core 0 (or a spawn from outside, which draws on
        // the pool) can take it again.
        let mut m = Model::new(1, 2);
        for round in 0..4 {
            assert!(m.spawn(round % 2));
            assert!(!m.spawn(0) && !m.spawn(1), "the limit is 1");
            m.exit((round + 1) % 2);
            assert_eq!(m.pool, 1, "round {round}: the permit is back in the pool");
        }
    }

    #[test]
    fn an_idle_core_gives_its_reserve_to_a_busy_one() {
        let limit = 128 * 2;
        let mut m = Model::new(limit, 2);
        let chunk = chunk_for(limit, 2);
        assert!(chunk > 0);
        // Core 1 spawned and ended some strands and kept a reserve.
        for _ in 0..chunk {
            assert!(m.spawn(1));
        }
        for _ in 0..chunk {
            m.exit(1);
        }
        assert!(m.reserves[1].held() > 0);
        m.idle(1);
        for n in 0..limit {
            assert!(m.spawn(0), "refused at {n} with core 1 idle");
        }
        assert!(!m.spawn(0));
    }
}
