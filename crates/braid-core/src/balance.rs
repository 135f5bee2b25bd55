//! Balancing between cores: what an idle core asks for and what a busy one gives.
//!
//! The protocol, as the runtime drives it over the bus:
//! 1. A core with nothing to run calls [`Balancer::on_idle`]; if it names a victim,
//!    the core sends that victim a work request and waits (parked if need be) for
//!    the reply. At most one request is outstanding per core.
//! 2. The victim calls [`Balancer::on_request`] with its ready count and replies
//!    with what the [`Grant`] says (possibly nothing). A victim that had nothing to
//!    give remembers the asker as idle.
//! 3. The asker calls [`Balancer::on_reply`]. After a full round of refusals it
//!    stops asking until something changes ([`Balancer::on_busy`]), so an idle
//!    runtime goes quiet instead of sending requests in circles.
//! 4. A core that gains ready work calls [`Balancer::on_surplus`]; if it knows an
//!    idle core it offers part of its work unasked, which is how a parked core
//!    gets work again without polling.

use crate::policy::{Load, Nanos};
use crate::rng::Rng;
use std::collections::VecDeque;

/// Index of a core, `0..cores`.
pub type CoreId = usize;

/// A victim's answer to a work request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Grant {
    /// Nothing to give: reply empty-handed.
    Nothing,
    /// Give this many ready strands.
    Give(usize),
}

/// The balancing decisions of one core. Implementations are pure state machines.
pub trait Balancer {
    /// The core has nothing to run: the core to ask for work, or `None` to wait for
    /// mail (a request is already outstanding, or every other core just refused).
    fn on_idle(&mut self, rng: &mut Rng) -> Option<CoreId>;

    /// The reply to our request arrived from `from`, carrying `received` strands.
    fn on_reply(&mut self, from: CoreId, received: usize);

    /// Core `from` asks for work while `ready` strands wait here.
    fn on_request(&mut self, from: CoreId, ready: usize) -> Grant;

    /// `ready` strands wait here: the idle core to offer some to, and how many.
    fn on_surplus(&mut self, ready: usize) -> Option<(CoreId, usize)>;

    /// Core `peer` asked for work and got none, though the balancer granted
    /// some (nothing of it could move): it is idle. By default nothing is
    /// remembered.
    fn on_refused(&mut self, peer: CoreId) {
        let _ = peer;
    }

    /// This core got work by other means (a spawn, a wake, an offer): a later idle
    /// spell starts a fresh round of requests.
    fn on_busy(&mut self);

    /// How often a busy core tells a peer its load (see [`Load`]), for
    /// balancers that even out weight between busy cores; `None` (the
    /// default): never.
    fn load_period(&self) -> Option<Nanos> {
        None
    }

    /// Time to tell a peer this core's load: which one.
    fn load_peer(&mut self, rng: &mut Rng) -> Option<CoreId> {
        let _ = rng;
        None
    }

    /// Core `from` says its load is `theirs`; this core's is `mine`. Returns
    /// the weight of a ready strand to offer it (and the most it may weigh),
    /// or `None` to keep everything.
    fn on_load(&mut self, from: CoreId, theirs: Load, mine: Load) -> Option<(u64, u64)> {
        let _ = (from, theirs, mine);
        None
    }
}

/// A balancer chosen at run time (for example by a command-line flag).
impl<B: Balancer + ?Sized> Balancer for Box<B> {
    fn on_idle(&mut self, rng: &mut Rng) -> Option<CoreId> {
        (**self).on_idle(rng)
    }
    fn on_reply(&mut self, from: CoreId, received: usize) {
        (**self).on_reply(from, received);
    }
    fn on_request(&mut self, from: CoreId, ready: usize) -> Grant {
        (**self).on_request(from, ready)
    }
    #[inline]
    fn on_surplus(&mut self, ready: usize) -> Option<(CoreId, usize)> {
        (**self).on_surplus(ready)
    }
    fn on_busy(&mut self) {
        (**self).on_busy();
    }
    fn on_refused(&mut self, peer: CoreId) {
        (**self).on_refused(peer);
    }
    fn load_period(&self) -> Option<Nanos> {
        (**self).load_period()
    }
    fn load_peer(&mut self, rng: &mut Rng) -> Option<CoreId> {
        (**self).load_peer(rng)
    }
    fn on_load(&mut self, from: CoreId, theirs: Load, mine: Load) -> Option<(u64, u64)> {
        (**self).on_load(from, theirs, mine)
    }
}

/// The balancer of a runtime or simulation, chosen when it is built: braid's
/// own by value, or any other behind a box.
pub enum AnyBalancer {
    /// [`StealHalf`].
    StealHalf(StealHalf),
    /// Any other balancer.
    Custom(Box<dyn Balancer + Send>),
}

impl std::fmt::Debug for AnyBalancer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AnyBalancer::StealHalf(_) => f.write_str("StealHalf"),
            AnyBalancer::Custom(_) => f.write_str("Custom"),
        }
    }
}

macro_rules! each_balancer {
    ($self:expr, $b:ident => $e:expr) => {
        match $self {
            AnyBalancer::StealHalf($b) => $e,
            AnyBalancer::Custom($b) => $e,
        }
    };
}

impl Balancer for AnyBalancer {
    fn on_idle(&mut self, rng: &mut Rng) -> Option<CoreId> {
        each_balancer!(self, b => b.on_idle(rng))
    }
    fn on_reply(&mut self, from: CoreId, received: usize) {
        each_balancer!(self, b => b.on_reply(from, received));
    }
    fn on_request(&mut self, from: CoreId, ready: usize) -> Grant {
        each_balancer!(self, b => b.on_request(from, ready))
    }
    #[inline(always)]
    fn on_surplus(&mut self, ready: usize) -> Option<(CoreId, usize)> {
        // Called at every enqueue: the default first and inline, the others
        // through one call (as `AnyPolicy` does).
        match self {
            AnyBalancer::StealHalf(b) => b.on_surplus(ready),
            _ => self.others_on_surplus(ready),
        }
    }
    #[inline(always)]
    fn on_busy(&mut self) {
        match self {
            AnyBalancer::StealHalf(b) => b.on_busy(),
            _ => self.others_on_busy(),
        }
    }
    fn on_refused(&mut self, peer: CoreId) {
        each_balancer!(self, b => b.on_refused(peer));
    }
    fn load_period(&self) -> Option<Nanos> {
        each_balancer!(self, b => b.load_period())
    }
    fn load_peer(&mut self, rng: &mut Rng) -> Option<CoreId> {
        each_balancer!(self, b => b.load_peer(rng))
    }
    fn on_load(&mut self, from: CoreId, theirs: Load, mine: Load) -> Option<(u64, u64)> {
        each_balancer!(self, b => b.on_load(from, theirs, mine))
    }
}

impl AnyBalancer {
    #[inline(never)]
    fn others_on_surplus(&mut self, ready: usize) -> Option<(CoreId, usize)> {
        each_balancer!(self, b => b.on_surplus(ready))
    }
    #[inline(never)]
    fn others_on_busy(&mut self) {
        each_balancer!(self, b => b.on_busy());
    }
}

/// Asks the other cores one at a time, starting from a random one; a victim gives
/// half of its ready strands (rounded up) and offers the same to cores it knows idle.
///
/// With a [`LoadExchange`] (the `weighted` balancer) it also evens out
/// weight between busy cores: every `period` each core tells a random peer
/// its [`Load`]; a core that hears from a peer whose virtual time is ahead
/// of its own by more than `margin` (the peer's strands progress faster: it
/// carries less weight) offers it the ready strand whose weight comes
/// nearest half the difference in weight. Moves carry the strand's lag (see
/// `fair`), so shares hold across cores even where no placement evens the
/// weight out exactly: strands keep trading places.
#[derive(Clone, Debug, Hash)]
pub struct StealHalf {
    me: CoreId,
    cores: usize,
    outstanding: Option<CoreId>,
    round_start: CoreId,
    asked_in_round: usize,
    idle_peers: VecDeque<CoreId>,
    known_idle: Vec<bool>,
    exchange: Option<LoadExchange>,
}

/// How often [`StealHalf`] cores tell a peer their load, and the gap in
/// virtual time past which they move work.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LoadExchange {
    /// Between two load notices of a core.
    pub period: Nanos,
    /// The virtual-time gap that moves work.
    pub margin: u64,
}

impl StealHalf {
    /// The balancer of core `me` in a runtime of `cores` cores.
    pub fn new(me: CoreId, cores: usize) -> StealHalf {
        StealHalf {
            me,
            cores,
            outstanding: None,
            round_start: 0,
            asked_in_round: 0,
            idle_peers: VecDeque::new(),
            known_idle: vec![false; cores],
            exchange: None,
        }
    }

    /// The same, also evening out weight between busy cores (see the type's
    /// docs).
    pub fn with_load_exchange(me: CoreId, cores: usize, exchange: LoadExchange) -> StealHalf {
        StealHalf {
            exchange: Some(LoadExchange {
                period: exchange.period.max(1),
                ..exchange
            }),
            ..StealHalf::new(me, cores)
        }
    }

    /// Whether a request is waiting for its reply.
    pub fn is_waiting(&self) -> bool {
        self.outstanding.is_some()
    }

    /// Half of the ready strands, rounded down: a core keeps at least one of
    /// its own. Rounding up would give away a lone ready strand — the one a
    /// core just woke, typically — and a chain of hand-offs (a ring, a
    /// pipeline) then migrates at every step, each migration a round trip over
    /// the bus (measured: a 1000-strand token ring took 2.6 µs per hop on 2
    /// cores this way, against 0.4 µs on one core).
    fn half_rounded_down(ready: usize) -> usize {
        ready / 2
    }
}

impl Balancer for StealHalf {
    fn on_idle(&mut self, rng: &mut Rng) -> Option<CoreId> {
        let others = self.cores.saturating_sub(1);
        if self.outstanding.is_some() || self.asked_in_round >= others {
            return None;
        }
        if self.asked_in_round == 0 {
            self.round_start = rng.below(others as u64) as usize;
        }
        // Enumerate the other cores as offsets 1..cores from `me`, rotated by the
        // random start so idle cores do not all ask the same victim first.
        let offset = 1 + (self.round_start + self.asked_in_round) % others;
        let victim = (self.me + offset) % self.cores;
        self.asked_in_round += 1;
        self.outstanding = Some(victim);
        Some(victim)
    }

    fn on_reply(&mut self, from: CoreId, received: usize) {
        if self.outstanding == Some(from) {
            self.outstanding = None;
        }
        if received > 0 {
            self.asked_in_round = 0;
        }
    }

    fn on_request(&mut self, from: CoreId, ready: usize) -> Grant {
        if ready == 0 {
            self.on_refused(from);
            return Grant::Nothing;
        }
        match Self::half_rounded_down(ready) {
            0 => Grant::Nothing,
            n => Grant::Give(n),
        }
    }

    #[inline]
    fn on_surplus(&mut self, ready: usize) -> Option<(CoreId, usize)> {
        if ready == 0 {
            return None;
        }
        let give = Self::half_rounded_down(ready);
        if give == 0 {
            return None;
        }
        let peer = self.idle_peers.pop_front()?;
        self.known_idle[peer] = false;
        Some((peer, give))
    }

    fn on_busy(&mut self) {
        self.asked_in_round = 0;
    }

    /// Remembers `peer` as idle (once), to offer it surplus work later.
    fn on_refused(&mut self, peer: CoreId) {
        if peer < self.cores && peer != self.me && !self.known_idle[peer] {
            self.known_idle[peer] = true;
            self.idle_peers.push_back(peer);
        }
    }

    fn load_period(&self) -> Option<Nanos> {
        self.exchange.map(|x| x.period)
    }

    fn load_peer(&mut self, rng: &mut Rng) -> Option<CoreId> {
        self.exchange?;
        let others = self.cores.checked_sub(1).filter(|&o| o > 0)?;
        let offset = 1 + rng.below(others as u64) as usize;
        Some((self.me + offset) % self.cores)
    }

    fn on_load(&mut self, _from: CoreId, theirs: Load, mine: Load) -> Option<(u64, u64)> {
        let margin = self.exchange?.margin;
        if theirs.vtime <= mine.vtime.saturating_add(margin) || mine.weight <= theirs.weight {
            return None;
        }
        // Moving weight w changes the gap d = mine − theirs to |d − 2w|:
        // narrower for any w < d, best at w = d / 2; the strand nearest d / 2
        // is one of those whenever there is one. When there is none (no
        // placement evens the weight), the nearest moves anyway: strands
        // then take turns on the lighter core, carrying their lag, and the
        // shares hold over time.
        let gap = mine.weight - theirs.weight;
        Some((gap / 2, u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_asks_every_other_core_exactly_once() {
        for cores in 2..9 {
            for me in 0..cores {
                for seed in 1..20 {
                    let mut rng = Rng::new(seed);
                    let mut b = StealHalf::new(me, cores);
                    let mut asked = vec![0; cores];
                    while let Some(victim) = b.on_idle(&mut rng) {
                        assert_ne!(victim, me);
                        assert!(b.is_waiting());
                        // No second request while one is outstanding.
                        assert_eq!(b.on_idle(&mut rng), None);
                        asked[victim] += 1;
                        b.on_reply(victim, 0);
                    }
                    for (core, &n) in asked.iter().enumerate() {
                        assert_eq!(n, usize::from(core != me), "cores={cores} me={me}");
                    }
                    // The round is over until something changes.
                    assert_eq!(b.on_idle(&mut rng), None);
                    b.on_busy();
                    assert!(b.on_idle(&mut rng).is_some());
                }
            }
        }
    }

    #[test]
    fn a_successful_reply_starts_a_new_round() {
        let mut rng = Rng::new(3);
        let mut b = StealHalf::new(0, 3);
        let v = b.on_idle(&mut rng).unwrap();
        b.on_reply(v, 4);
        assert!(!b.is_waiting());
        let mut count = 0;
        while let Some(v) = b.on_idle(&mut rng) {
            b.on_reply(v, 0);
            count += 1;
        }
        assert_eq!(count, 2);
    }

    #[test]
    fn single_core_never_asks() {
        let mut b = StealHalf::new(0, 1);
        assert_eq!(b.on_idle(&mut Rng::new(1)), None);
    }

    #[test]
    fn refused_askers_get_offers_once() {
        let mut b = StealHalf::new(0, 4);
        assert_eq!(b.on_request(2, 0), Grant::Nothing);
        assert_eq!(b.on_request(2, 0), Grant::Nothing);
        assert_eq!(b.on_request(3, 0), Grant::Nothing);
        assert_eq!(b.on_surplus(0), None);
        assert_eq!(b.on_surplus(5), Some((2, 2)));
        // A lone ready strand stays; the idle peer stays remembered.
        assert_eq!(b.on_surplus(1), None);
        assert_eq!(b.on_surplus(2), Some((3, 1)));
        assert_eq!(b.on_surplus(9), None);
    }

    #[test]
    fn grants_half_rounded_down_keeping_one() {
        let mut b = StealHalf::new(1, 2);
        assert_eq!(b.on_request(0, 1), Grant::Nothing);
        assert_eq!(b.on_request(0, 2), Grant::Give(1));
        assert_eq!(b.on_request(0, 4), Grant::Give(2));
        assert_eq!(b.on_request(0, 7), Grant::Give(3));
        // Out-of-range or self requests are never remembered as idle peers.
        assert_eq!(b.on_request(9, 0), Grant::Nothing);
        assert_eq!(b.on_request(1, 0), Grant::Nothing);
        assert_eq!(b.on_surplus(3), None);
    }
}

#[cfg(test)]
mod weighted_tests {
    use super::*;

    fn load(weight: u64, vtime: u64) -> Load {
        Load { weight, vtime }
    }

    #[test]
    fn a_heavier_core_behind_in_virtual_time_offers_half_the_gap() {
        let mut b = StealHalf::with_load_exchange(
            0,
            4,
            LoadExchange {
                period: 2_000_000,
                margin: 1_000,
            },
        );
        assert_eq!(b.load_period(), Some(2_000_000));
        // Peer ahead by more than the margin, and lighter: offer.
        assert_eq!(
            b.on_load(1, load(2048, 10_000), load(7168, 5_000)),
            Some((2560, u64::MAX))
        );
        // Ahead by no more than the margin: keep.
        assert_eq!(b.on_load(1, load(2048, 6_000), load(7168, 5_000)), None);
        // Ahead but not lighter: keep (its strands progress faster for
        // another reason, e.g. they just arrived).
        assert_eq!(b.on_load(1, load(8192, 10_000), load(7168, 5_000)), None);
        // Peers to tell are other cores, chosen at random.
        let mut rng = Rng::new(3);
        for _ in 0..100 {
            let peer = b.load_peer(&mut rng).unwrap();
            assert!(peer != 0 && peer < 4);
        }
        let lone = LoadExchange {
            period: 1,
            margin: 1,
        };
        assert_eq!(
            StealHalf::with_load_exchange(0, 1, lone).load_peer(&mut rng),
            None
        );
        assert_eq!(StealHalf::new(0, 4).load_period(), None, "plain steal-half");
    }
}
