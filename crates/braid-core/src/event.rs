//! Named events: the per-core wait graph and the negotiated wakeup protocol.
//!
//! An event is a name strands wait on and signal; it has no handle and no
//! create/destroy. It exists while somebody waits on it or a signal is stored for
//! it, and is reclaimed right after.
//!
//! # Where an event lives
//!
//! Every core keeps its own **wait graph**: for each event with waiters on this
//! core, a FIFO of them. Waiting and signalling on one core touch only that
//! table: O(1), no messages.
//!
//! Every event also has a **home core**, chosen by hashing its name
//! ([`home_core`]). The home keeps what cannot be local: the signals not yet
//! given to a waiter (stored permits) and a **directory** of the other cores
//! that have waiters. Spreading homes by hash means no core is the manager of all
//! events, and a stored signal has exactly one place to be, which is what makes
//! "consumed by exactly one waiter or stored exactly once" checkable.
//!
//! # Negotiated wakeup
//!
//! `signal` wakes a waiter on the signalling core if it has one (the cheap, cache
//! friendly case). Otherwise the signal travels to the home (`Signal`), and the
//! home places it:
//! - no core has waiters: it is stored as a permit;
//! - one core has waiters: the home `Grant`s it there directly;
//! - several do: the home sends `Query` to each, each `Respond`s with the enqueue
//!   time of its oldest waiter and its queue length, and the home `Grant`s the
//!   earliest — FIFO across cores, approximated by those timestamps.
//!
//! The granted core wakes its oldest waiter and answers `Granted` with whether a
//! waiter took it (it may have none left: waiters time out and are cancelled) and
//! how many it still has. A refused grant goes back to the home's pending signals
//! and is placed again. The home runs one placement per event at a time; further
//! signals queue behind it.
//!
//! A core tells the home when it starts having waiters (`Interest`) and when it no
//! longer has any (`Withdraw`, or in its `Respond`/`Granted` answers). Messages
//! between two cores arrive in order, so the directory reflects each core's
//! announcements exactly; a core that has waiters but whose `Interest` is still in
//! flight simply receives the permit when the `Interest` arrives.
//!
//! `broadcast` wakes every waiter on the broadcasting core and sends `WakeAll` to
//! every other core. It goes to every core rather than to the directory because a
//! waiter's registration with its own core is immediate while its `Interest` may
//! still be on the way: a strand that started waiting before the broadcast is
//! already in its core's table when the `WakeAll` arrives there.
//!
//! # Waiters that give up
//!
//! A waiter that times out or is cancelled may race with a grant. The runtime
//! resolves each waiter exactly once (a compare-and-swap on the waiter) and this
//! module asks it through the `claim` callback whenever it would wake one: a
//! waiter that already gave up is skipped and the next one is tried, so a signal
//! is never spent on a waiter that is gone. The runtime also removes a waiter that
//! gave up ([`Events::cancel`]) so its table shrinks.

use crate::balance::CoreId;
use crate::policy::Nanos;
use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use std::hash::Hash;

/// Identifies one wait, for cancelling it.
pub type Ticket = u64;

/// The home core of an event whose name hashes to `hash`.
#[inline]
pub fn home_core(hash: u64, cores: usize) -> CoreId {
    // Multiply-shift: uses the high bits, so weak low bits of a hash do not
    // cluster homes.
    ((u128::from(hash) * cores as u128) >> 64) as CoreId
}

/// What cores send each other about an event `K` whose signals carry `P`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventMsg<K, P> {
    /// To the home: a signal the sender could not give to a local waiter.
    Signal {
        /// The event.
        event: K,
        /// The signal's payload.
        payload: P,
    },
    /// To the home: the sender now has waiters.
    Interest {
        /// The event.
        event: K,
    },
    /// To the home: the sender no longer has waiters.
    Withdraw {
        /// The event.
        event: K,
    },
    /// From the home: when did your oldest waiter start waiting?
    Query {
        /// The event.
        event: K,
    },
    /// To the home: the answer to `Query`.
    Respond {
        /// The event.
        event: K,
        /// Enqueue time of the oldest waiter and the number of waiters, or
        /// `None` with no waiters.
        oldest: Option<(Nanos, usize)>,
    },
    /// From the home: wake one waiter with this signal.
    Grant {
        /// The event.
        event: K,
        /// The signal's payload.
        payload: P,
    },
    /// To the home: the answer to `Grant`.
    Granted {
        /// The event.
        event: K,
        /// Whether a waiter took the signal (if not, it comes back).
        taken: bool,
        /// Waiters the sender still has.
        remaining: usize,
    },
    /// To every other core: wake all your waiters.
    WakeAll {
        /// The event.
        event: K,
    },
}

/// Where a signal went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signalled {
    /// A waiter on this core took it.
    Woke,
    /// It went to the home core to be placed (or, at the home, it is being
    /// placed or was stored).
    Forwarded,
}

/// What a new wait got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitOutcome {
    /// A stored signal was taken: the caller goes on without blocking.
    Permit,
    /// The caller is queued and must block until claimed.
    Queued,
}

/// A wait to queue: who waits, since when, and how to cancel it.
#[derive(Clone, Debug)]
pub struct Queued<W> {
    /// Identifies the wait for [`Events::cancel`].
    pub ticket: Ticket,
    /// When it started waiting (for FIFO across cores).
    pub since: Nanos,
    /// What the runtime needs to wake it.
    pub waiter: W,
    /// A standing waiter (a scheduler closure): queued ahead of the others,
    /// it takes every signal that reaches its core and stays queued until
    /// cancelled.
    pub standing: bool,
}

#[derive(Clone)]
struct Slot<W> {
    waiters: VecDeque<Queued<W>>,
    /// Whether the home was told (`Interest`) that this core has waiters and
    /// not told otherwise since.
    registered: bool,
}

/// A placement in progress at the home.
#[derive(Clone, Debug)]
enum Round<P> {
    /// Waiting for `Respond` from these cores; `best` so far.
    Querying {
        awaiting: Vec<CoreId>,
        best: Option<(Nanos, CoreId)>,
        payload: P,
    },
    /// A `Grant` of `payload` is out to `to`.
    Granted { to: CoreId, payload: P },
}

#[derive(Clone)]
struct Home<P> {
    /// Other cores with waiters, as they announced.
    directory: Vec<CoreId>,
    /// Signals not yet given to a waiter: stored permits when nobody waits.
    pending: VecDeque<P>,
    round: Option<Round<P>>,
}

impl<P> Home<P> {
    fn new() -> Home<P> {
        Home {
            directory: Vec::new(),
            pending: VecDeque::new(),
            round: None,
        }
    }

    fn is_idle(&self) -> bool {
        self.directory.is_empty() && self.pending.is_empty() && self.round.is_none()
    }

    fn forget(&mut self, core: CoreId) {
        self.directory.retain(|&c| c != core);
    }
}

impl<K: std::fmt::Debug, W: std::fmt::Debug, P: std::fmt::Debug> std::fmt::Debug
    for Events<K, W, P>
{
    /// A canonical rendering (entries sorted), so equal states print equally.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut slots: Vec<String> = self
            .index
            .iter()
            .map(|(k, &i)| {
                let s = &self.slots[i as usize];
                let w: Vec<_> = s
                    .waiters
                    .iter()
                    .map(|w| (w.ticket, w.since, &w.waiter))
                    .collect();
                format!("{k:?}:{w:?}:{}", s.registered)
            })
            .collect();
        slots.sort();
        let mut homes: Vec<String> = self
            .homes
            .iter()
            .map(|(k, h)| {
                let mut dir = h.directory.clone();
                dir.sort_unstable();
                format!("{k:?}:{dir:?}:{:?}:{:?}", h.pending, h.round)
            })
            .collect();
        homes.sort();
        write!(f, "core {} slots {slots:?} homes {homes:?}", self.me)
    }
}

/// Messages to send: `(destination core, message)`.
pub type Outbox<K, P> = Vec<(CoreId, EventMsg<K, P>)>;

/// One core's events: its wait graph, and the homes of the events homed here.
///
/// `K` names an event, `W` is what the runtime needs to wake a waiter, `P` is a
/// signal's payload. Nothing here blocks, reads a clock or touches another
/// core: time comes in as arguments, wakes go out through `claim`, messages
/// through the outbox.
#[derive(Clone)]
pub struct Events<K, W, P> {
    me: CoreId,
    cores: usize,
    slots: Vec<Slot<W>>,
    /// Event name -> slot. Slots whose waiters all left stay indexed (idle) so
    /// a wait/signal loop on one event does not insert and remove it each time;
    /// idle slots are swept once they outnumber the busy ones (and 64).
    index: FxHashMap<K, u32>,
    idle: usize,
    homes: FxHashMap<K, Home<P>>,
}

impl<K: Clone + Eq + Hash, W, P: Clone> Events<K, W, P> {
    /// The events of core `me` out of `cores`.
    pub fn new(me: CoreId, cores: usize) -> Events<K, W, P> {
        Events {
            me,
            cores,
            slots: Vec::new(),
            index: FxHashMap::default(),
            idle: 0,
            homes: FxHashMap::default(),
        }
    }

    /// Event records this core holds: one per event with waiters here, plus one
    /// per event homed here with stored signals, waiters elsewhere or a
    /// placement in progress. O(1).
    pub fn live(&self) -> usize {
        self.index.len() - self.idle + self.homes.len()
    }

    /// Waiters queued on this core for `event`.
    pub fn waiting(&self, event: &K) -> usize {
        self.index
            .get(event)
            .map_or(0, |&i| self.slots[i as usize].waiters.len())
    }

    /// Forgets the stored signals of the events homed here for which `gone`
    /// holds and that nothing else keeps (no waiters announced from other
    /// cores, no placement under way): the events of a namespace that ended,
    /// which nobody can name any more. Returns how many events it forgot.
    pub fn forget_stored(&mut self, mut gone: impl FnMut(&K) -> bool) -> usize {
        let before = self.homes.len();
        self.homes
            .retain(|k, h| !(gone(k) && h.directory.is_empty() && h.round.is_none()));
        before - self.homes.len()
    }

    /// Signals stored at this core (as the home of `event`).
    pub fn stored(&self, event: &K) -> usize {
        self.homes.get(event).map_or(0, |h| h.pending.len())
    }

    /// Slots allocated for the wait graph (busy or idle), for tests of reuse.
    pub fn slot_capacity(&self) -> usize {
        self.slots.len()
    }

    /// A strand starts waiting on `event` (homed at `home`). Takes a stored
    /// signal if one is here; otherwise queues it. A standing waiter is always
    /// queued (ahead of the others); signals stored before it came are then
    /// delivered to it.
    pub fn wait(
        &mut self,
        event: &K,
        home: CoreId,
        queued: Queued<W>,
        claim: &mut impl FnMut(&W, &P) -> bool,
        out: &mut Outbox<K, P>,
    ) -> WaitOutcome {
        if home == self.me && !queued.standing {
            if let Some(h) = self.homes.get_mut(event) {
                if let Some(payload) = h.pending.pop_front() {
                    if h.is_idle() {
                        self.homes.remove(event);
                    }
                    drop(payload);
                    return WaitOutcome::Permit;
                }
            }
        }
        let slot = self.slot_for(event);
        let was_empty = self.slots[slot].waiters.is_empty();
        if queued.standing {
            self.slots[slot].waiters.push_front(queued);
        } else {
            self.slots[slot].waiters.push_back(queued);
        }
        if was_empty {
            if home == self.me {
                self.place(event, claim, out);
            } else if !self.slots[slot].registered {
                self.slots[slot].registered = true;
                out.push((
                    home,
                    EventMsg::Interest {
                        event: event.clone(),
                    },
                ));
            }
        }
        WaitOutcome::Queued
    }

    /// Removes the waiter with `ticket` (it timed out or was cancelled). Returns
    /// whether it was still queued.
    pub fn cancel(
        &mut self,
        event: &K,
        home: CoreId,
        ticket: Ticket,
        out: &mut Outbox<K, P>,
    ) -> bool {
        let Some(&slot) = self.index.get(event) else {
            return false;
        };
        let waiters = &mut self.slots[slot as usize].waiters;
        let Some(pos) = waiters.iter().position(|w| w.ticket == ticket) else {
            return false;
        };
        waiters.remove(pos);
        self.after_removal(event, home, out);
        true
    }

    /// Signals `event` from this core. Wakes a local waiter if there is one,
    /// else hands the signal to the home.
    pub fn signal(
        &mut self,
        event: &K,
        home: CoreId,
        payload: P,
        claim: &mut impl FnMut(&W, &P) -> bool,
        out: &mut Outbox<K, P>,
    ) -> Signalled {
        if self.wake_one(event, home, &payload, claim, out) {
            return Signalled::Woke;
        }
        if home == self.me {
            self.homes
                .entry(event.clone())
                .or_insert_with(Home::new)
                .pending
                .push_back(payload);
            self.place(event, claim, out);
        } else {
            out.push((
                home,
                EventMsg::Signal {
                    event: event.clone(),
                    payload,
                },
            ));
        }
        Signalled::Forwarded
    }

    /// Wakes every waiter of `event` on this core and tells every other core to
    /// do the same. Returns how many were woken here.
    pub fn broadcast(
        &mut self,
        event: &K,
        home: CoreId,
        payload: &P,
        claim: &mut impl FnMut(&W, &P) -> bool,
        out: &mut Outbox<K, P>,
    ) -> usize {
        for core in (0..self.cores).filter(|&c| c != self.me) {
            out.push((
                core,
                EventMsg::WakeAll {
                    event: event.clone(),
                },
            ));
        }
        self.wake_all(event, home, payload, claim, out)
    }

    /// Applies a message from core `from`. `payload_for_wake_all` is handed to
    /// `claim` for waiters woken by a broadcast (which carries none).
    pub fn on_message(
        &mut self,
        from: CoreId,
        msg: EventMsg<K, P>,
        home_of: impl Fn(&K) -> CoreId,
        payload_for_wake_all: &P,
        claim: &mut impl FnMut(&W, &P) -> bool,
        out: &mut Outbox<K, P>,
    ) {
        match msg {
            EventMsg::Signal { event, payload } => {
                self.homes
                    .entry(event.clone())
                    .or_insert_with(Home::new)
                    .pending
                    .push_back(payload);
                self.place(&event, claim, out);
            }
            EventMsg::Interest { event } => {
                let home = self.homes.entry(event.clone()).or_insert_with(Home::new);
                if !home.directory.contains(&from) {
                    home.directory.push(from);
                }
                self.place(&event, claim, out);
            }
            EventMsg::Withdraw { event } => {
                if let Some(home) = self.homes.get_mut(&event) {
                    home.forget(from);
                }
                self.place(&event, claim, out);
            }
            EventMsg::Query { event } => {
                // A slot exists only while it has waiters (see `after_removal`).
                let oldest = self.index.get(&event).and_then(|&i| {
                    let slot = &self.slots[i as usize];
                    let first = slot.waiters.front()?;
                    Some((first.since, slot.waiters.len()))
                });
                out.push((from, EventMsg::Respond { event, oldest }));
            }
            EventMsg::Respond { event, oldest } => self.on_respond(from, event, oldest, claim, out),
            EventMsg::Grant { event, payload } => {
                let home = home_of(&event);
                let registered = self
                    .index
                    .get(&event)
                    .is_some_and(|&i| self.slots[i as usize].registered);
                // The answer below tells the home whether waiters remain, so
                // emptying the slot must not send a `Withdraw` as well.
                if let Some(&i) = self.index.get(&event) {
                    self.slots[i as usize].registered = false;
                }
                let taken = self.wake_one(&event, home, &payload, claim, out);
                let remaining = self.waiting(&event);
                if remaining > 0 {
                    if let Some(&i) = self.index.get(&event) {
                        self.slots[i as usize].registered = registered;
                    }
                }
                out.push((
                    from,
                    EventMsg::Granted {
                        event,
                        taken,
                        remaining,
                    },
                ));
            }
            EventMsg::Granted {
                event,
                taken,
                remaining,
            } => self.on_granted(from, event, taken, remaining, claim, out),
            EventMsg::WakeAll { event } => {
                let home = home_of(&event);
                self.wake_all(&event, home, payload_for_wake_all, claim, out);
            }
        }
    }

    fn on_respond(
        &mut self,
        from: CoreId,
        event: K,
        oldest: Option<(Nanos, usize)>,
        claim: &mut impl FnMut(&W, &P) -> bool,
        out: &mut Outbox<K, P>,
    ) {
        let Some(home) = self.homes.get_mut(&event) else {
            return;
        };
        if oldest.is_none() {
            home.forget(from);
        }
        let Some(Round::Querying { awaiting, best, .. }) = &mut home.round else {
            return;
        };
        let Some(pos) = awaiting.iter().position(|&c| c == from) else {
            return;
        };
        awaiting.swap_remove(pos);
        if let Some((since, _)) = oldest {
            if best.is_none_or(|(t, c)| (since, from) < (t, c)) {
                *best = Some((since, from));
            }
        }
        if !awaiting.is_empty() {
            return;
        }
        let Some(Round::Querying { best, payload, .. }) = home.round.take() else {
            unreachable!("matched above");
        };
        match best {
            Some((_, core)) if core == self.me => {
                if !self.wake_one(&event, self.me, &payload, claim, out) {
                    self.pending_front(&event, payload);
                }
            }
            Some((_, core)) => {
                out.push((
                    core,
                    EventMsg::Grant {
                        event: event.clone(),
                        payload: payload.clone(),
                    },
                ));
                if let Some(home) = self.homes.get_mut(&event) {
                    home.round = Some(Round::Granted { to: core, payload });
                }
            }
            None => self.pending_front(&event, payload),
        }
        self.place(&event, claim, out);
    }

    fn on_granted(
        &mut self,
        from: CoreId,
        event: K,
        taken: bool,
        remaining: usize,
        claim: &mut impl FnMut(&W, &P) -> bool,
        out: &mut Outbox<K, P>,
    ) {
        let Some(home) = self.homes.get_mut(&event) else {
            return;
        };
        if remaining == 0 {
            home.forget(from);
        }
        match home.round.take() {
            Some(Round::Granted { to, payload }) if to == from => {
                if !taken {
                    home.pending.push_front(payload);
                }
            }
            other => home.round = other,
        }
        self.place(&event, claim, out);
    }

    /// Places pending signals of `event` (this core is its home) until one is
    /// in flight, none is left, or nobody waits; then drops an idle home.
    fn place(&mut self, event: &K, claim: &mut impl FnMut(&W, &P) -> bool, out: &mut Outbox<K, P>) {
        loop {
            let Some(home) = self.homes.get_mut(event) else {
                return;
            };
            if home.round.is_some() || home.pending.is_empty() {
                break;
            }
            let local = self
                .index
                .get(event)
                .and_then(|&i| self.slots[i as usize].waiters.front())
                .map(|w| w.since);
            let remote = home.directory.clone();
            match (local, remote.as_slice()) {
                (None, []) => break,
                (Some(_), []) => {
                    let payload = home.pending.pop_front().expect("checked non-empty");
                    if !self.wake_one(event, self.me, &payload, claim, out) {
                        self.pending_front(event, payload);
                    }
                }
                (None, [core]) => {
                    let core = *core;
                    let payload = home.pending.pop_front().expect("checked non-empty");
                    out.push((
                        core,
                        EventMsg::Grant {
                            event: event.clone(),
                            payload: payload.clone(),
                        },
                    ));
                    home.round = Some(Round::Granted { to: core, payload });
                    break;
                }
                (local, cores) => {
                    let payload = home.pending.pop_front().expect("checked non-empty");
                    for &core in cores {
                        out.push((
                            core,
                            EventMsg::Query {
                                event: event.clone(),
                            },
                        ));
                    }
                    home.round = Some(Round::Querying {
                        awaiting: cores.to_vec(),
                        best: local.map(|since| (since, self.me)),
                        payload,
                    });
                    break;
                }
            }
        }
        if self.homes.get(event).is_some_and(Home::is_idle) {
            self.homes.remove(event);
        }
    }

    fn pending_front(&mut self, event: &K, payload: P) {
        self.homes
            .entry(event.clone())
            .or_insert_with(Home::new)
            .pending
            .push_front(payload);
    }

    /// Wakes the oldest waiter of `event` that `claim` accepts. Returns whether
    /// one was woken.
    fn wake_one(
        &mut self,
        event: &K,
        home: CoreId,
        payload: &P,
        claim: &mut impl FnMut(&W, &P) -> bool,
        out: &mut Outbox<K, P>,
    ) -> bool {
        self.wake(event, home, payload, 1, claim, out) == 1
    }

    fn wake_all(
        &mut self,
        event: &K,
        home: CoreId,
        payload: &P,
        claim: &mut impl FnMut(&W, &P) -> bool,
        out: &mut Outbox<K, P>,
    ) -> usize {
        self.wake(event, home, payload, usize::MAX, claim, out)
    }

    /// Wakes up to `most` waiters of `event`, oldest first, skipping those
    /// `claim` refuses. Standing waiters that take the signal stay queued, at
    /// the front. Returns how many took it.
    fn wake(
        &mut self,
        event: &K,
        home: CoreId,
        payload: &P,
        most: usize,
        claim: &mut impl FnMut(&W, &P) -> bool,
        out: &mut Outbox<K, P>,
    ) -> usize {
        let Some(&slot) = self.index.get(event) else {
            return 0;
        };
        let waiters = &mut self.slots[slot as usize].waiters;
        if waiters.is_empty() {
            return 0;
        }
        let mut woke = 0;
        let mut standing = Vec::new();
        while woke < most {
            let Some(w) = waiters.pop_front() else {
                break;
            };
            if claim(&w.waiter, payload) {
                woke += 1;
                if w.standing {
                    standing.push(w);
                }
            }
        }
        for w in standing.into_iter().rev() {
            waiters.push_front(w);
        }
        self.after_removal(event, home, out);
        woke
    }

    /// After waiters left `event`'s slot (which had some): if none is left, the
    /// slot turns idle, and the home hears of it if it was told of waiters.
    fn after_removal(&mut self, event: &K, home: CoreId, out: &mut Outbox<K, P>) {
        let Some(&slot) = self.index.get(event) else {
            return;
        };
        let s = &mut self.slots[slot as usize];
        if !s.waiters.is_empty() {
            return;
        }
        if s.registered {
            s.registered = false;
            out.push((
                home,
                EventMsg::Withdraw {
                    event: event.clone(),
                },
            ));
        }
        self.idle += 1;
        if self.idle > 64.max(self.index.len() - self.idle) {
            self.sweep();
        }
        if home == self.me && self.homes.get(event).is_some_and(Home::is_idle) {
            self.homes.remove(event);
        }
    }

    fn slot_for(&mut self, event: &K) -> usize {
        if let Some(&i) = self.index.get(event) {
            if self.slots[i as usize].waiters.is_empty() {
                self.idle -= 1;
            }
            return i as usize;
        }
        self.slots.push(Slot {
            waiters: VecDeque::new(),
            registered: false,
        });
        let i = self.slots.len() - 1;
        self.index.insert(event.clone(), i as u32);
        i
    }

    /// Drops every idle slot and compacts the table: the busy slots move to the
    /// front and the rest of the memory is given back. Runs when idle slots
    /// outnumber busy ones (and 64), so its cost is amortized over the waits
    /// that made them.
    fn sweep(&mut self) {
        let old = std::mem::take(&mut self.slots);
        let mut old: Vec<Option<Slot<W>>> = old.into_iter().map(Some).collect();
        let mut slots = Vec::with_capacity(self.index.len() - self.idle);
        self.index.retain(|_, i| {
            let slot = old[*i as usize].take().expect("each slot is indexed once");
            if slot.waiters.is_empty() {
                return false;
            }
            *i = slots.len() as u32;
            slots.push(slot);
            true
        });
        self.slots = slots;
        self.idle = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Ev = Events<&'static str, u64, u32>;

    fn q(ticket: u64, since: Nanos) -> Queued<u64> {
        Queued {
            ticket,
            since,
            waiter: ticket,
            standing: false,
        }
    }

    fn claim_into(woken: &mut Vec<u64>) -> impl FnMut(&u64, &u32) -> bool + '_ {
        |w, _| {
            woken.push(*w);
            true
        }
    }

    #[test]
    fn same_core_wait_and_signal_send_nothing() {
        let mut ev = Ev::new(0, 4);
        let mut out = Vec::new();
        let mut woken = Vec::new();
        let home = 3; // homed elsewhere: still no message while a local waiter exists
        ev.wait(&"e", home, q(1, 10), &mut claim_into(&mut woken), &mut out);
        out.clear(); // the one-time Interest
        ev.wait(&"e", home, q(2, 11), &mut claim_into(&mut woken), &mut out);
        assert!(out.is_empty(), "a second local waiter announces nothing");
        for _ in 0..2 {
            let r = ev.signal(&"e", home, 0, &mut claim_into(&mut woken), &mut out);
            assert_eq!(r, Signalled::Woke);
        }
        assert_eq!(woken, vec![1, 2], "FIFO on one core");
        assert_eq!(ev.live(), 0);
        // The core tells the home it has no waiters left, once.
        assert_eq!(out, vec![(3, EventMsg::Withdraw { event: "e" })]);
    }

    #[test]
    fn forgetting_a_namespace_drops_its_stored_signals_only() {
        let mut ev = Ev::new(0, 2);
        let mut out = Vec::new();
        let mut woken = Vec::new();
        for name in ["gone-a", "gone-b", "kept"] {
            ev.signal(&name, 0, 1, &mut claim_into(&mut woken), &mut out);
        }
        assert_eq!(ev.live(), 3);
        assert_eq!(ev.forget_stored(|k| k.starts_with("gone")), 2);
        assert_eq!(ev.live(), 1);
        assert_eq!(ev.stored(&"gone-a"), 0);
        assert_eq!(ev.stored(&"kept"), 1);
    }

    #[test]
    fn permits_are_stored_at_the_home_and_taken_by_a_local_wait() {
        let mut ev = Ev::new(1, 2);
        let mut out = Vec::new();
        let mut woken = Vec::new();
        assert_eq!(
            ev.signal(&"p", 1, 5, &mut claim_into(&mut woken), &mut out),
            Signalled::Forwarded
        );
        assert_eq!(ev.stored(&"p"), 1);
        assert_eq!(ev.live(), 1);
        let got = ev.wait(&"p", 1, q(9, 0), &mut claim_into(&mut woken), &mut out);
        assert_eq!(got, WaitOutcome::Permit);
        assert_eq!(ev.live(), 0);
        assert!(out.is_empty() && woken.is_empty());
    }

    #[test]
    fn the_home_grants_the_earliest_waiter_across_cores() {
        // Core 0 is the home; core 1's waiter queued at t=10, core 2's at t=5.
        let mut cores: Vec<Ev> = (0..3).map(|c| Ev::new(c, 3)).collect();
        let mut woken = Vec::new();
        let mut out = Vec::new();
        cores[1].wait(&"f", 0, q(1, 10), &mut claim_into(&mut woken), &mut out);
        cores[2].wait(&"f", 0, q(2, 5), &mut claim_into(&mut woken), &mut out);
        let mut outbox = Vec::new();
        // The home hears of both before the signal.
        for from in [1, 2] {
            let msg = EventMsg::Interest { event: "f" };
            cores[0].on_message(
                from,
                msg,
                |_| 0,
                &0,
                &mut claim_into(&mut woken),
                &mut outbox,
            );
        }
        assert!(outbox.is_empty());
        cores[0].signal(&"f", 0, 42, &mut claim_into(&mut woken), &mut outbox);
        assert_eq!(outbox.len(), 2, "a query to each core with waiters");
        let mut net: VecDeque<(CoreId, CoreId, EventMsg<&str, u32>)> =
            outbox.drain(..).map(|(to, m)| (0, to, m)).collect();
        while let Some((from, to, msg)) = net.pop_front() {
            cores[to].on_message(
                from,
                msg,
                |_| 0,
                &0,
                &mut claim_into(&mut woken),
                &mut outbox,
            );
            net.extend(outbox.drain(..).map(|(dest, m)| (to, dest, m)));
        }
        assert_eq!(woken, vec![2], "the waiter that queued first (t=5) wins");
        assert_eq!(cores[1].waiting(&"f"), 1);
    }

    #[test]
    fn slots_are_reused_and_the_table_shrinks() {
        let mut ev = Ev::new(0, 1);
        let mut out = Vec::new();
        let mut woken = Vec::new();
        let names: Vec<&'static str> = (0..1000)
            .map(|i| &*Box::leak(format!("ev{i}").into_boxed_str()))
            .collect();
        for (i, n) in names.iter().enumerate() {
            ev.wait(n, 0, q(i as u64, 0), &mut claim_into(&mut woken), &mut out);
        }
        assert_eq!(ev.slot_capacity(), 1000);
        for n in &names {
            ev.signal(n, 0, 0, &mut claim_into(&mut woken), &mut out);
        }
        assert_eq!(woken.len(), 1000);
        assert_eq!(ev.live(), 0);
        // At most 64 idle slots stay cached; the rest was given back.
        assert!(
            ev.slot_capacity() <= 65,
            "{} slots kept",
            ev.slot_capacity()
        );
        // Reuse: alternating wait/signal on fresh names never grows the table.
        for n in &names {
            ev.wait(n, 0, q(0, 0), &mut claim_into(&mut woken), &mut out);
            ev.signal(n, 0, 0, &mut claim_into(&mut woken), &mut out);
        }
        assert!(
            ev.slot_capacity() <= 65,
            "{} slots kept",
            ev.slot_capacity()
        );
        assert!(out.is_empty());
    }

    #[test]
    fn homes_spread_over_every_core() {
        let mut count = [0usize; 8];
        let mut h = 0x1234_5678_9abc_def0u64;
        for _ in 0..8000 {
            h = h
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            count[home_core(h, 8)] += 1;
        }
        assert!(count.iter().all(|&c| c > 800), "{count:?}");
        assert_eq!(home_core(u64::MAX, 1), 0);
    }
}
