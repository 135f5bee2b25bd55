//! The idle plan: what a core with nothing to run does — ask for work, spin on
//! its doorbell, then park until mail, I/O or its next timer.
//!
//! Waking a parked carrier costs tens of microseconds, a spin a fraction of
//! that, so an idle core spins first. The spin adapts between
//! [`IdleConfig::spin_max`] and [`IdleConfig::spin_min`]: back to the longest
//! when work arrived during the spin, or soon enough after parking that the
//! longest spin would have caught it; halved when the core stayed parked
//! longer than that. A core whose work comes back quickly (a ping-pong or a
//! token ring across cores) keeps the fast wake; one whose idle spells are
//! long (a server between requests) stops burning its CPU.

use crate::policy::Nanos;

/// The idle plan's knobs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IdleConfig {
    /// The longest spin before parking.
    pub spin_max: Nanos,
    /// The shortest spin before parking.
    pub spin_min: Nanos,
    /// How often a spinning core with sockets looks at its poller (a poll is
    /// a system call: a few per spin, not one per round).
    pub spin_poll: Nanos,
    /// How long a core whose own messages wait for room in a full ring pauses
    /// before retrying (it never parks then: nobody would wake it).
    pub overflow_retry: Nanos,
}

impl Default for IdleConfig {
    fn default() -> IdleConfig {
        IdleConfig {
            spin_max: 20_000,
            spin_min: 1_000,
            spin_poll: 5_000,
            overflow_retry: 50_000,
        }
    }
}

/// How to spin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spin {
    /// Spin this long on the doorbell.
    pub spin: Nanos,
    /// Poll sockets this often while spinning (`None`: no sockets).
    pub poll_every: Option<Nanos>,
}

/// What to do once the spin found nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Park {
    /// A timer is due: go back to the loop.
    Return,
    /// Messages of ours wait for room: pause this long, then go back.
    Pause(Nanos),
    /// Park until mail, I/O, or this deadline (`None`: no timer armed).
    Sleep(Option<Nanos>),
}

/// How an idle spell ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdleEnd {
    /// Mail or readiness arrived while spinning.
    Spun,
    /// The core parked for this long.
    Parked(Nanos),
    /// The core went back without parking (a due timer, a pause).
    Returned,
}

/// One core's idle state.
#[derive(Clone, Debug, Hash)]
pub struct Idler {
    config: IdleConfig,
    spin: Nanos,
}

impl Idler {
    /// An idler that starts with the longest spin.
    pub fn new(config: IdleConfig) -> Idler {
        Idler {
            spin: config.spin_max,
            config,
        }
    }

    /// How the next idle spell spins; `has_sources` says whether the core has
    /// sockets registered.
    #[inline]
    pub fn spin(&self, has_sources: bool) -> Spin {
        Spin {
            spin: self.spin,
            poll_every: has_sources.then_some(self.config.spin_poll),
        }
    }

    /// After a spin that found nothing: `overflow` says whether messages of
    /// this core wait for room in a ring, `next_timer` is its earliest timer.
    pub fn park(&self, now: Nanos, overflow: bool, next_timer: Option<Nanos>) -> Park {
        if overflow {
            return Park::Pause(self.config.overflow_retry);
        }
        match next_timer {
            Some(deadline) if deadline <= now => Park::Return,
            deadline => Park::Sleep(deadline),
        }
    }

    /// Adapts the next spin to how this spell ended.
    pub fn ended(&mut self, how: IdleEnd) {
        match how {
            IdleEnd::Spun => self.spin = self.config.spin_max,
            IdleEnd::Parked(parked) if parked < self.config.spin_max => {
                self.spin = self.config.spin_max;
            }
            IdleEnd::Parked(_) => self.spin = (self.spin / 2).max(self.config.spin_min),
            IdleEnd::Returned => {}
        }
    }

    /// The current spin length.
    pub fn current_spin(&self) -> Nanos {
        self.spin
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spin_halves_on_long_parks_and_resets_on_quick_work() {
        let mut idler = Idler::new(IdleConfig::default());
        assert_eq!(idler.spin(false).spin, 20_000);
        assert_eq!(idler.spin(false).poll_every, None);
        assert_eq!(idler.spin(true).poll_every, Some(5_000));
        for expected in [10_000, 5_000, 2_500, 1_250, 1_000, 1_000] {
            idler.ended(IdleEnd::Parked(1_000_000));
            assert_eq!(idler.current_spin(), expected);
        }
        idler.ended(IdleEnd::Returned);
        assert_eq!(idler.current_spin(), 1_000);
        idler.ended(IdleEnd::Parked(19_999));
        assert_eq!(
            idler.current_spin(),
            20_000,
            "a short park: spinning would have caught it"
        );
        idler.ended(IdleEnd::Parked(50_000));
        idler.ended(IdleEnd::Spun);
        assert_eq!(idler.current_spin(), 20_000);
    }

    #[test]
    fn overflow_pauses_and_due_timers_return() {
        let idler = Idler::new(IdleConfig::default());
        assert_eq!(idler.park(100, true, Some(50)), Park::Pause(50_000));
        assert_eq!(idler.park(100, false, Some(100)), Park::Return);
        assert_eq!(idler.park(100, false, Some(101)), Park::Sleep(Some(101)));
        assert_eq!(idler.park(100, false, None), Park::Sleep(None));
    }
}
