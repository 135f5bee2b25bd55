//! Where things start: a new strand's core, a runtime's cores' CPUs.

use crate::balance::CoreId;
use std::collections::HashMap;
use std::fmt;

/// A spawn asked for a core the runtime does not have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoSuchCore {
    /// The core asked for.
    pub asked: CoreId,
    /// The runtime's cores (`0..cores`).
    pub cores: usize,
}

impl fmt::Display for NoSuchCore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "core {} does not exist: allowed are 0..{} (the runtime's cores)",
            self.asked, self.cores
        )
    }
}

impl std::error::Error for NoSuchCore {}

/// Where a new strand starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    /// The core it starts on.
    pub core: CoreId,
    /// Whether it must stay there.
    pub pinned: bool,
}

/// A strand spawned on core `here` of `cores` starts on the core it asked for
/// (and stays there), else on the spawning core: the balancer spreads work
/// later, and a child usually shares data with its parent.
pub fn place_spawn(
    here: CoreId,
    cores: usize,
    asked: Option<CoreId>,
) -> Result<Placement, NoSuchCore> {
    match asked {
        Some(core) if core >= cores => Err(NoSuchCore { asked: core, cores }),
        Some(core) => Ok(Placement { core, pinned: true }),
        None => Ok(Placement {
            core: here,
            pinned: false,
        }),
    }
}

/// The core a new strand that may run only where `allowed` says starts on,
/// spawned on core `here` of `cores`: `here` if allowed, else the next
/// allowed core after it; `None` if no core is.
pub fn first_allowed(
    here: CoreId,
    cores: usize,
    allowed: impl Fn(CoreId) -> bool,
) -> Option<CoreId> {
    (0..cores).map(|i| (here + i) % cores).find(|&c| allowed(c))
}

/// Chooses CPUs for `cores` new cores among `cpus`, given how many cores of
/// other runtimes already sit on each CPU (`load`, updated). A runtime's own
/// cores go to distinct CPUs while it has fewer cores than CPUs, however loaded
/// other runtimes left them (two of its cores on one CPU would halve what it
/// can run in parallel); among those, the least loaded first.
///
/// `cpus` must not be empty.
pub fn pick_cpus(cpus: &[usize], cores: usize, load: &mut HashMap<usize, usize>) -> Vec<usize> {
    let mut picked: Vec<usize> = Vec::with_capacity(cores);
    for _ in 0..cores {
        let fresh: Vec<usize> = cpus
            .iter()
            .copied()
            .filter(|c| !picked.contains(c))
            .collect();
        let candidates = if fresh.is_empty() { cpus } else { &fresh[..] };
        let cpu = *candidates
            .iter()
            .min_by_key(|c| load.get(c).copied().unwrap_or(0))
            .expect("cpus is not empty");
        *load.entry(cpu).or_insert(0) += 1;
        picked.push(cpu);
    }
    picked
}

/// The core of the `nth` strand started from outside a runtime of `cores`
/// cores (a thread that is not a carrier, or an injected request): the cores
/// in turn. The runtime draws `nth` from an atomic ticket shared by all
/// threads; a single-threaded driver keeps a [`RoundRobinPlacer`].
#[inline]
pub fn foreign_core(nth: u64, cores: usize) -> CoreId {
    (nth % cores.max(1) as u64) as CoreId
}

/// Spreads strands started from outside over the cores in turn.
#[derive(Debug, Default, Clone)]
pub struct RoundRobinPlacer {
    next: u64,
}

impl RoundRobinPlacer {
    /// The core for the next foreign spawn in a runtime of `cores` cores.
    pub fn next(&mut self, cores: usize) -> CoreId {
        let core = foreign_core(self.next, cores);
        self.next = self.next.wrapping_add(1);
        core
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_masked_strand_starts_here_if_allowed_else_on_the_next_allowed_core() {
        assert_eq!(first_allowed(1, 4, |_| true), Some(1));
        assert_eq!(first_allowed(1, 4, |c| c == 0 || c == 3), Some(3));
        assert_eq!(first_allowed(3, 4, |c| c == 0), Some(0));
        assert_eq!(first_allowed(2, 4, |_| false), None);
    }

    #[test]
    fn spawns_start_here_or_where_asked() {
        assert_eq!(
            place_spawn(1, 4, None),
            Ok(Placement {
                core: 1,
                pinned: false
            })
        );
        assert_eq!(
            place_spawn(1, 4, Some(3)),
            Ok(Placement {
                core: 3,
                pinned: true
            })
        );
        let err = place_spawn(0, 4, Some(4)).unwrap_err();
        assert_eq!(err, NoSuchCore { asked: 4, cores: 4 });
        assert!(err.to_string().contains("0..4"), "{err}");
    }

    #[test]
    fn runtimes_spread_over_the_cpus() {
        let mut load = HashMap::new();
        let cpus = [0, 1, 2, 3];
        // One runtime: its cores in CPU order.
        assert_eq!(pick_cpus(&cpus, 2, &mut load), vec![0, 1]);
        // The next ones start on the CPUs still free.
        assert_eq!(pick_cpus(&cpus, 1, &mut load), vec![2]);
        assert_eq!(pick_cpus(&cpus, 2, &mut load), vec![3, 0]);
        // More cores than CPUs: spread evenly.
        let mut load = HashMap::new();
        assert_eq!(pick_cpus(&[5, 6], 4, &mut load), vec![5, 6, 5, 6]);
        // However uneven the load others left, one runtime's cores get
        // distinct CPUs while there are enough.
        let mut load = HashMap::from([(0, 2)]);
        assert_eq!(pick_cpus(&[0, 1], 2, &mut load), vec![1, 0]);
        let mut load = HashMap::from([(0, 5), (1, 1)]);
        assert_eq!(pick_cpus(&[0, 1, 2], 3, &mut load), vec![2, 1, 0]);
    }

    #[test]
    fn foreign_spawns_go_round() {
        let mut placer = RoundRobinPlacer::default();
        let cores: Vec<_> = (0..5).map(|_| placer.next(3)).collect();
        assert_eq!(cores, vec![0, 1, 2, 0, 1]);
    }
}
