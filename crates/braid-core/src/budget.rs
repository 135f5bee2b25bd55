//! CPU budgets: a sporadic server's refills.
//!
//! A [`Budget`] grants `budget` ns of CPU per `period` ns. It is kept as a
//! short list of *refills* — amounts of CPU, each usable from its own time
//! on — whose amounts always add up to the budget. Running consumes the
//! eligible refills in order, and each piece consumed comes back one period
//! after the moment its consumption began. So however the strands bound to
//! the budget run (in bursts, in many short runs, after long sleeps), the CPU
//! they get in any window of one period is at most the budget (plus what the
//! driver lets them overrun, below); over many periods it is the budget per
//! period when they always want to run.
//!
//! The driver charges what a run used once it knows ([`Budget::charge`]):
//! it cannot stop a strand the very nanosecond the budget runs out, so a run
//! may use more than was eligible. The excess is *debt*: it is taken from
//! the next refills as they become due, so the strand waits longer and the
//! long-run rate still holds.
//!
//! A run that starts late — its refill was due at `r`, but the driver could
//! only run it at `s > r` (its core was busy, or its timer fired late) — is
//! booked as starting at `max(r, s − c)`, `c` being [`Budget::catch_up`]:
//! lateness up to `c` costs nothing, more costs only what is past `c`.
//! Booking the real start would push every later refill back by the
//! lateness, and a strand that is always late by a little (a release timer's
//! resolution, a strand of another context released at the same moment
//! running first) would lose that much of every period. The price is that
//! a window of one period may hold up to `c` more than the budget: a piece
//! is never booked before its use began less `c`.
//!
//! Times are the driver's clock in ns; nothing here reads one.

use crate::policy::Nanos;
use std::collections::VecDeque;

/// Pieces whose uses followed each other within this gap are kept as one
/// refill: 50 µs. A strand that runs in many short bursts (a yield every few
/// microseconds) would otherwise split its budget into as many pieces, each
/// coming back on its own — and be released, run a few microseconds and be
/// throttled again for each (measured: a yield loop bound to 2 ms / 10 ms
/// took 15 µs per yield at the median). The merged refill keeps the earlier
/// time; the gaps it spans (at most this much in all, see [`Budget::charge`])
/// are what a window of one period may get beyond the budget for it.
pub const MERGE_GAP: Nanos = 50_000;

/// The most refills a budget keeps. A run that would make more merges the
/// two latest (the later time wins, which only delays CPU: the window bound
/// holds).
pub const MAX_REFILLS: usize = 16;

/// When all of a budget is set aside for runs on other cores that should
/// have used it up by now (a run overruns until its driver stops it), a
/// dispatch is throttled for this long, 10 µs, and tries again: not until
/// `now`, which would release the strand at once and ask again, over and
/// over, on a core whose clock stands still.
pub const RETRY: Nanos = 10_000;

/// How long past its end (its start plus what it was given) a run's
/// set-aside still counts: 2 ms. A run still uncharged by then is off its
/// CPU — blocked in a system call, or its thread descheduled — and its
/// budget timer, on CPU time, has not fired; its set-aside is free again,
/// and what it uses after all is overrun, paid as debt. Without a limit
/// such a run kept the whole budget from its context's other strands for
/// as long as it stayed off the CPU. (The runtime holds a run that does not
/// yield within its grace, 200 µs of CPU, of what it was given; the coarse
/// clock adds up to 1 ms.)
pub const STALE_AFTER: Nanos = 2_000_000;

/// The smallest budget: 10 µs. (A run is charged piece by piece, one per
/// budget's worth: a 1 ns budget would make a 10 ms overrun 10 million
/// pieces.)
pub const MIN_BUDGET: Nanos = 10_000;

/// The shortest period a budget may have: 100 µs.
pub const MIN_PERIOD: Nanos = 100_000;

/// The longest period a budget may have: one hour.
pub const MAX_PERIOD: Nanos = 3_600_000_000_000;

/// What was wrong with a budget's figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BudgetError {
    /// The budget was below [`MIN_BUDGET`].
    TooSmall(Nanos),
    /// The budget was longer than its period (it may be at most equal).
    OverPeriod {
        /// The budget asked for, in ns.
        budget: Nanos,
        /// Its period, in ns.
        period: Nanos,
    },
    /// The period was outside [`MIN_PERIOD`] ..= [`MAX_PERIOD`].
    Period(Nanos),
}

impl std::fmt::Display for BudgetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            BudgetError::TooSmall(budget) => write!(
                f,
                "a CPU budget of {budget} ns is below the smallest allowed, {MIN_BUDGET} ns (10 µs)"
            ),
            BudgetError::OverPeriod { budget, period } => write!(
                f,
                "a CPU budget of {budget} ns does not fit in its period of {period} ns \
                 (the budget may be at most the period)"
            ),
            BudgetError::Period(period) => write!(
                f,
                "a budget period of {period} ns is outside the allowed {MIN_PERIOD} ..= \
                 {MAX_PERIOD} ns (100 µs to one hour)"
            ),
        }
    }
}

impl std::error::Error for BudgetError {}

/// CPU usable from `at` on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Refill {
    /// When it becomes usable.
    pub at: Nanos,
    /// How much, in ns.
    pub amount: Nanos,
}

/// `budget` ns of CPU per `period` ns, as a sporadic server (see the module
/// docs).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Budget {
    budget: Nanos,
    period: Nanos,
    catch_up: Nanos,
    /// Earliest first; amounts add up to `budget`, none is 0.
    refills: VecDeque<Refill>,
}

impl Budget {
    /// A full budget of `budget` ns per `period` ns, usable from `now`, that
    /// books a run starting up to `catch_up` ns late as on time.
    pub fn new(
        budget: Nanos,
        period: Nanos,
        catch_up: Nanos,
        now: Nanos,
    ) -> Result<Budget, BudgetError> {
        Budget::check(budget, period)?;
        let mut refills = VecDeque::with_capacity(4);
        refills.push_back(Refill {
            at: now,
            amount: budget,
        });
        Ok(Budget {
            budget,
            period,
            catch_up: catch_up.min(period - budget),
            refills,
        })
    }

    /// Whether `budget` per `period` is a budget this module accepts.
    pub fn check(budget: Nanos, period: Nanos) -> Result<(), BudgetError> {
        if !(MIN_PERIOD..=MAX_PERIOD).contains(&period) {
            return Err(BudgetError::Period(period));
        }
        if budget < MIN_BUDGET {
            return Err(BudgetError::TooSmall(budget));
        }
        if budget > period {
            return Err(BudgetError::OverPeriod { budget, period });
        }
        Ok(())
    }

    /// The CPU granted per period, in ns.
    pub fn budget(&self) -> Nanos {
        self.budget
    }

    /// The period, in ns.
    pub fn period(&self) -> Nanos {
        self.period
    }

    /// How late a run may start and still be booked as on time.
    pub fn catch_up(&self) -> Nanos {
        self.catch_up
    }

    /// The refills, earliest first.
    pub fn refills(&self) -> impl Iterator<Item = &Refill> {
        self.refills.iter()
    }

    /// CPU that may be used at `now`.
    pub fn available(&self, now: Nanos) -> Nanos {
        self.refills
            .iter()
            .take_while(|r| r.at <= now)
            .map(|r| r.amount)
            .sum()
    }

    /// When CPU is next available: `now` if it is now.
    pub fn next_available(&self, now: Nanos) -> Nanos {
        // Amounts add up to the budget, which is not 0: there is a head.
        self.refills.front().map_or(now, |head| head.at.max(now))
    }

    /// Books a run that began at `start` and used `used` ns (see the module
    /// docs for a run that used more than it had, or began late).
    pub fn charge(&mut self, start: Nanos, used: Nanos) {
        let mut left = used;
        let mut at = start;
        while left > 0 {
            let Some(head) = self.refills.front_mut() else {
                break;
            };
            // A piece is booked from when it was due (the run was early,
            // in debt, or on time within `catch_up`), or from `catch_up`
            // before its use began if that is later (it was late by more).
            let booked = head.at.max(at.saturating_sub(self.catch_up));
            let take = left.min(head.amount);
            head.amount -= take;
            if head.amount == 0 {
                self.refills.pop_front();
            }
            left -= take;
            at = booked.max(at) + take;
            self.push(Refill {
                at: booked + self.period,
                amount: take,
            });
        }
    }

    /// Gives the whole budget back at `now` (a new period of the same
    /// budget, or a changed budget taking effect).
    pub fn reset(&mut self, now: Nanos) {
        self.refills.clear();
        self.refills.push_back(Refill {
            at: now,
            amount: self.budget,
        });
    }

    fn push(&mut self, refill: Refill) {
        match self.refills.back_mut() {
            // Merge a piece used right after the last one (booked times only
            // grow, so the list stays in time order). `last.at + amount` is
            // where the last piece's use would have ended with no gaps, so
            // the gaps one merged refill spans add up to at most MERGE_GAP.
            Some(last) if refill.at <= last.at + last.amount + MERGE_GAP => {
                last.amount += refill.amount;
            }
            _ => self.refills.push_back(refill),
        }
        if self.refills.len() > MAX_REFILLS {
            let last = self.refills.pop_back().expect("more than MAX_REFILLS");
            let before = self.refills.back_mut().expect("more than one refill");
            before.at = last.at;
            before.amount += last.amount;
        }
    }
}

/// What happens when a context's budget runs out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Overrun {
    /// Its strands wait until the next refill (the default).
    #[default]
    Throttle,
    /// Nothing but the count and the notice: the context only measures.
    Notify,
}

/// What the driver does with a strand bound to an [`Account`] that it is
/// about to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dispatch {
    /// Run it, and stop it once it has used `available` ns (0: no limit,
    /// the context only measures); charge it as `run`.
    Run {
        /// The CPU it may use before it is stopped.
        available: Nanos,
        /// The run, to name when it is charged.
        run: RunId,
    },
    /// Hold it back until then (see [`crate::CoreSched::throttle`]).
    Throttle(Nanos),
}

/// What an [`Account`]'s last step asks the driver to announce.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[must_use]
pub struct Notices {
    /// The budget ran out.
    pub depleted: bool,
    /// A throttled strand ran again later than the deadline after its
    /// release.
    pub missed: bool,
}

/// A run of a strand bound to an [`Account`], between its dispatch and its
/// charge: what it was given is set aside from the budget meanwhile.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RunId(u64);

impl RunId {
    /// A run that was given nothing set aside (a measuring context's).
    pub const NONE: RunId = RunId(0);

    /// As a number, to keep in an atomic.
    pub fn to_bits(self) -> u64 {
        self.0
    }

    /// Back from [`to_bits`](Self::to_bits).
    pub fn from_bits(bits: u64) -> RunId {
        RunId(bits)
    }
}

/// CPU set aside for a run: `amount` from the budget's eligible refills,
/// used up by `ends` at the latest if the run is not held off its CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Given {
    run: RunId,
    amount: Nanos,
    ends: Nanos,
}

/// An [`Account`]'s counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AccountStats {
    /// CPU charged, in ns.
    pub used: Nanos,
    /// Runs charged (dispatches, and holds of a strand that did not stop).
    pub runs: u64,
    /// Dispatches refused because the budget was spent.
    pub throttles: u64,
    /// Times the budget ran out.
    pub depletions: u64,
    /// Throttled strands that ran later than the deadline after release.
    pub misses: u64,
    /// Runs the driver had to stop from outside (see [`Account::hold`]).
    pub holds: u64,
}

/// The decisions of one scheduling context: a [`Budget`] with what
/// happens when it runs out, a relative deadline for throttled strands,
/// and counts. Both drivers keep one per context (the runtime behind a
/// lock its cores share, the simulator as plain data) and ask it at every
/// dispatch and stop of a bound strand.
///
/// **Runs on several cores at once.** The budget is charged when a run
/// stops, so two strands dispatched on two cores at once would each see
/// the whole eligible budget and together use twice it in one period
/// (measured in braid-sim's `budget` workload: 6 ms in a window of a
/// 3 ms / 10 ms context over 2 cores; debt then made the long-run rate
/// right, not the window). So a dispatch *sets aside* what it gives the
/// run ([`RunId`]) until the run is charged: the next dispatch anywhere
/// gets only what is eligible and not set aside, and with nothing left is
/// throttled until a refill makes some free, or, if all of the budget is
/// set aside, until the earliest run given some must have stopped.
///
/// A run is given all that is free, not a slice's worth: the runtime holds
/// a strand that does not yield when what it was given runs out, and a
/// never-yielding strand given a slice at a time would be held at every
/// slice with budget left. (Measured in braid-sim's `budget` workload at
/// 1–64 cores, giving a slice's worth instead changed neither the shares
/// nor the most in one window; it let two runs of a context go on at
/// once.) So the strands of a context whose budget is spent on one core
/// wait for that run even when they could use the rest on another.
#[derive(Clone, Debug)]
pub struct Account {
    budget: Budget,
    /// The catch-up asked for (the budget's own is capped by its period).
    catch_up: Nanos,
    overrun: Overrun,
    /// A throttled strand should run within this of its release
    /// (`Nanos::MAX`: no deadline).
    deadline: Nanos,
    /// When the last throttle ends (for the deadline check).
    released: Option<Nanos>,
    /// What runs going on now were given (one per core at most, and the
    /// carriers held for this context).
    given: Vec<Given>,
    next_run: u64,
    stats: AccountStats,
}

impl Account {
    /// The account of a context of `budget` ns per `period` ns, full from
    /// `now`, with no deadline (see [`Budget::new`] for `catch_up`).
    pub fn new(
        budget: Nanos,
        period: Nanos,
        catch_up: Nanos,
        now: Nanos,
        overrun: Overrun,
    ) -> Result<Account, BudgetError> {
        Ok(Account {
            budget: Budget::new(budget, period, catch_up, now)?,
            catch_up,
            overrun,
            deadline: Nanos::MAX,
            released: None,
            given: Vec::new(),
            next_run: 1,
            stats: AccountStats::default(),
        })
    }

    /// With a relative deadline for throttled strands (checked by the
    /// caller against the period).
    pub fn with_deadline(mut self, deadline: Nanos) -> Account {
        self.deadline = deadline;
        self
    }

    /// The budget.
    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    /// The counts so far.
    pub fn stats(&self) -> AccountStats {
        self.stats
    }

    /// A strand bound here is about to run at `now`.
    pub fn dispatch(&mut self, now: Nanos) -> (Dispatch, Notices) {
        let mut notices = Notices::default();
        let free = self.free(now);
        if free == 0 && self.overrun == Overrun::Throttle {
            let until = self.next_free(now);
            self.stats.throttles += 1;
            self.released = Some(until);
            return (Dispatch::Throttle(until), notices);
        }
        if let Some(released) = self.released.take() {
            if now.saturating_sub(released) > self.deadline {
                self.stats.misses += 1;
                notices.missed = true;
            }
        }
        let (available, run) = match self.overrun {
            Overrun::Throttle => (free, self.set_aside(free, now)),
            Overrun::Notify => (0, RunId::NONE),
        };
        (Dispatch::Run { available, run }, notices)
    }

    /// Books `run`, of `used` ns that began at `start`; `now` is when it
    /// is booked.
    pub fn charge(&mut self, run: RunId, start: Nanos, used: Nanos, now: Nanos) -> Notices {
        self.given.retain(|g| g.run != run);
        let before = self.budget.available(start);
        self.budget.charge(start, used);
        self.stats.used += used;
        self.stats.runs += 1;
        let depleted = before > 0 && self.budget.available(now) == 0;
        if depleted {
            self.stats.depletions += 1;
        }
        if self.overrun == Overrun::Notify
            && self.budget.next_available(now) > now.saturating_add(self.budget.period())
        {
            // Nothing holds a measuring context back, so its debt would
            // only grow: forgive what is more than a period behind.
            self.budget.reset(now);
        }
        Notices {
            depleted,
            missed: false,
        }
    }

    /// `run` did not stop by itself and was stopped from outside at `now`:
    /// books `used` ns from `start`, and says when it may go on and how
    /// much it may use then (set aside for it as for a dispatch then;
    /// `run` names it still).
    pub fn hold(
        &mut self,
        run: RunId,
        start: Nanos,
        used: Nanos,
        now: Nanos,
    ) -> (Nanos, Nanos, Notices) {
        let notices = self.charge(run, start, used, now);
        self.stats.holds += 1;
        let until = self.next_free(now);
        let amount = self.free(until);
        if amount > 0 {
            self.given.push(Given {
                run,
                amount,
                ends: until.saturating_add(amount),
            });
        }
        (until, amount, notices)
    }

    /// The set-asides that still count at `now` (see [`STALE_AFTER`]).
    fn set_aside_at(&self, now: Nanos) -> impl Iterator<Item = &Given> {
        self.given
            .iter()
            .filter(move |g| now <= g.ends.saturating_add(STALE_AFTER))
    }

    /// What is eligible at `now` and not set aside for a run.
    fn free(&self, now: Nanos) -> Nanos {
        let given: Nanos = self.set_aside_at(now).map(|g| g.amount).sum();
        self.budget.available(now).saturating_sub(given)
    }

    /// When some of the budget is next free: when the refills due by then
    /// add up to more than is set aside, or (all of it set aside) when the
    /// earliest run given some has used it — retried every [`RETRY`] after
    /// that, until the run is charged or its set-aside no longer counts.
    fn next_free(&self, now: Nanos) -> Nanos {
        let given: Nanos = self.set_aside_at(now).map(|g| g.amount).sum();
        let mut due = 0;
        for r in self.budget.refills() {
            due += r.amount;
            if due > given {
                return r.at.max(now);
            }
        }
        let ends = self.set_aside_at(now).map(|g| g.ends).min().unwrap_or(now);
        ends.max(now.saturating_add(RETRY))
    }

    fn set_aside(&mut self, amount: Nanos, now: Nanos) -> RunId {
        let run = RunId(self.next_run);
        self.next_run += 1;
        self.given.push(Given {
            run,
            amount,
            ends: now.saturating_add(amount),
        });
        run
    }

    /// Changes the budget to `budget` per `period`. The new one starts
    /// full when the old one's last promised refill is due (`now`, if none
    /// is pending), so no window gets both.
    pub fn set_budget(
        &mut self,
        budget: Nanos,
        period: Nanos,
        now: Nanos,
    ) -> Result<(), BudgetError> {
        let from = self.budget.refills().last().map_or(now, |r| r.at.max(now));
        self.budget = Budget::new(budget, period, self.catch_up, from)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    const MS: Nanos = 1_000_000;

    fn total(b: &Budget) -> Nanos {
        b.refills().map(|r| r.amount).sum()
    }

    #[test]
    fn bad_figures_are_named() {
        assert_eq!(Budget::new(0, 10 * MS, 0, 0), Err(BudgetError::TooSmall(0)));
        assert_eq!(
            Budget::new(MIN_BUDGET - 1, 10 * MS, 0, 0),
            Err(BudgetError::TooSmall(MIN_BUDGET - 1))
        );
        assert_eq!(
            Budget::new(11 * MS, 10 * MS, 0, 0),
            Err(BudgetError::OverPeriod {
                budget: 11 * MS,
                period: 10 * MS
            })
        );
        assert_eq!(Budget::new(1, 10, 0, 0), Err(BudgetError::Period(10)));
        let text = BudgetError::Period(10).to_string();
        assert!(text.contains("100000 ..="), "{text}");
    }

    #[test]
    fn a_spent_budget_comes_back_one_period_after_its_use_began() {
        let mut b = Budget::new(2 * MS, 10 * MS, 0, 0).unwrap();
        assert_eq!(b.available(0), 2 * MS);
        b.charge(3 * MS, 2 * MS);
        assert_eq!(b.available(5 * MS), 0);
        assert_eq!(b.next_available(5 * MS), 13 * MS);
        assert_eq!(b.available(13 * MS), 2 * MS);
        assert_eq!(total(&b), 2 * MS);
    }

    #[test]
    fn pieces_come_back_separately() {
        let mut b = Budget::new(2 * MS, 10 * MS, 0, 0).unwrap();
        b.charge(0, MS / 2);
        b.charge(4 * MS, MS / 2);
        assert_eq!(b.available(5 * MS), MS);
        assert_eq!(b.available(10 * MS), MS + MS / 2);
        assert_eq!(b.available(14 * MS), 2 * MS);
    }

    #[test]
    fn short_runs_in_a_row_come_back_as_one_refill() {
        let mut b = Budget::new(2 * MS, 10 * MS, 0, 0).unwrap();
        let mut t = 0;
        // 200 runs of 10 µs, 100 ns apart: 20 µs of gaps in all.
        while b.available(t) > 0 {
            let used = 10_000.min(b.available(t));
            b.charge(t, used);
            t += used + 100;
        }
        assert_eq!(
            b.refills().count(),
            1,
            "{:?}",
            b.refills().collect::<Vec<_>>()
        );
        assert_eq!(b.available(10 * MS), 2 * MS);
    }

    #[test]
    fn an_overrun_is_paid_from_later_refills() {
        let mut b = Budget::new(2 * MS, 10 * MS, 0, 0).unwrap();
        // Ran 3 ms on a 2 ms budget: 1 ms of debt on the refill due at 10 ms.
        b.charge(0, 3 * MS);
        assert_eq!(b.available(10 * MS), MS);
        assert_eq!(b.next_available(10 * MS), 10 * MS);
        assert_eq!(total(&b), 2 * MS);
        // The debt's piece was booked at 10 ms and comes back at 20 ms.
        assert_eq!(b.available(20 * MS), 2 * MS);
    }

    #[test]
    fn a_slightly_late_start_is_booked_on_time() {
        let mut b = Budget::new(2 * MS, 10 * MS, MS, 0).unwrap();
        b.charge(0, 2 * MS);
        // Due at 10 ms, run at 10.4 ms: the refill still comes at 20 ms.
        b.charge(10 * MS + 400_000, 2 * MS);
        assert_eq!(b.next_available(13 * MS), 20 * MS);
        // Run at 25 ms, 5 ms late (more than catch_up): booked at 24 ms,
        // one catch-up before the run began.
        b.charge(25 * MS, 2 * MS);
        assert_eq!(b.next_available(28 * MS), 34 * MS);
    }

    #[test]
    fn what_a_run_is_given_is_set_aside_from_runs_on_other_cores() {
        let mut a = Account::new(2 * MS, 10 * MS, 0, 0, Overrun::Throttle).unwrap();
        let Dispatch::Run { available, run } = a.dispatch(0).0 else {
            panic!("a full budget throttled");
        };
        assert_eq!(available, 2 * MS);
        // A second core at the same time: nothing free until the first
        // run has used what it was given.
        assert_eq!(a.dispatch(MS / 2).0, Dispatch::Throttle(2 * MS));
        // It stops early: the rest is free again at once.
        let _ = a.charge(run, 0, MS, MS);
        assert!(matches!(
            a.dispatch(MS).0,
            Dispatch::Run { available, .. } if available == MS
        ));
        // All set aside for a run past its end: retried, not at `now`.
        let mut b = Account::new(2 * MS, 10 * MS, 0, 0, Overrun::Throttle).unwrap();
        let _ = b.dispatch(0);
        assert_eq!(b.dispatch(3 * MS).0, Dispatch::Throttle(3 * MS + RETRY));
        // Off its CPU for good (say, blocked in the kernel): once its
        // set-aside no longer counts, the budget is free to the others.
        let mut c = b.clone();
        assert!(matches!(
            c.dispatch(2 * MS + STALE_AFTER + 1).0,
            Dispatch::Run { available, .. } if available == 2 * MS
        ));
        // A hold books the run and sets aside what it may use after.
        let (until, rearm, _) = b.hold(RunId(1), 0, 2 * MS, 3 * MS);
        assert_eq!((until, rearm), (10 * MS, 2 * MS));
        assert_eq!(b.dispatch(10 * MS).0, Dispatch::Throttle(12 * MS));
        assert_eq!(b.stats().holds, 1);
        // A measuring context gives no limit and sets nothing aside.
        let mut m = Account::new(2 * MS, 10 * MS, 0, 0, Overrun::Notify).unwrap();
        let _ = m.charge(RunId::NONE, 0, 5 * MS, 5 * MS);
        assert_eq!(
            m.dispatch(5 * MS).0,
            Dispatch::Run {
                available: 0,
                run: RunId::NONE
            }
        );
    }

    #[test]
    fn catch_up_never_exceeds_the_idle_part_of_a_period() {
        let b = Budget::new(9 * MS, 10 * MS, 5 * MS, 0).unwrap();
        assert_eq!(b.catch_up(), MS);
    }

    /// Drives a budget the way a runtime does: a strand that wants to run
    /// (unless `sleeps`, when it sometimes blocks a while), released up to `late` after its CPU is due when it was
    /// throttled (otherwise it runs on at once), stopped up to
    /// `overrun` after the budget ran out, in runs cut at random lengths;
    /// returns the times it ran.
    fn driven(
        seed: u64,
        sleeps: bool,
        late: Nanos,
        overrun: Nanos,
        until: Nanos,
    ) -> Vec<(Nanos, Nanos)> {
        let mut rng = Rng::new(seed);
        let (budget, period) = (2 * MS, 10 * MS);
        let mut b = Budget::new(budget, period, late, 0).unwrap();
        let mut now = 0;
        let mut runs = Vec::new();
        while now < until {
            let due = b.next_available(now);
            let start = if due > now {
                due + rng.below(late + 1)
            } else {
                now
            };
            let eligible = b.available(start);
            assert!(eligible > 0, "nothing eligible at {start}");
            // Stops by itself early (and may then sleep a while), or runs
            // out and overruns a little.
            let early = rng.below(3) == 0;
            let used = if early {
                1 + rng.below(eligible)
            } else {
                eligible + rng.below(overrun + 1)
            };
            b.charge(start, used);
            assert_eq!(total(&b), budget, "refills must add up to the budget");
            runs.push((start, start + used));
            now = start + used;
            if early && sleeps && rng.below(2) == 0 {
                now += rng.below(5 * MS);
            }
        }
        runs
    }

    fn used_in(runs: &[(Nanos, Nanos)], from: Nanos, to: Nanos) -> Nanos {
        runs.iter()
            .map(|&(s, e)| e.min(to).saturating_sub(s.max(from)))
            .sum()
    }

    #[test]
    fn no_window_of_one_period_gets_more_than_the_budget() {
        for seed in 0..40 {
            let runs = driven(seed, true, 0, 0, 500 * MS);
            for from in (0..490 * MS).step_by(50_000) {
                let used = used_in(&runs, from, from + 10 * MS);
                assert!(
                    used <= 2 * MS + MERGE_GAP,
                    "seed {seed}: {used} ns in [{from}, +10 ms)"
                );
            }
        }
    }

    #[test]
    fn lateness_and_overruns_bound_a_window_and_keep_the_rate() {
        let (late, overrun) = (300_000, 200_000);
        for seed in 0..40 {
            let runs = driven(seed, false, late, overrun, 1_000 * MS);
            for from in (0..990 * MS).step_by(100_000) {
                let used = used_in(&runs, from, from + 10 * MS);
                assert!(
                    used <= 2 * MS + late + 2 * overrun + MERGE_GAP,
                    "seed {seed}: {used} ns in [{from}, +10 ms)"
                );
            }
            // Over 100 periods, 20 % within 0.2 % of the period.
            let used = used_in(&runs, 0, 1_000 * MS);
            let share = used as f64 / (1_000 * MS) as f64;
            assert!((share - 0.2).abs() <= 0.002, "seed {seed}: share {share}");
        }
    }
}
