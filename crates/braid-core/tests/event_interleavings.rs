//! Exhaustive exploration of the negotiated wakeup protocol (`braid_core::event`)
//! on 2 and 3 cores: every order in which the cores' operations run and their
//! messages are delivered (each ring in FIFO order, as the bus guarantees).
//!
//! Checked in every reachable state: no waiter is woken twice and no signal is
//! spent twice. Checked in every final state (all operations done, no message
//! in flight):
//! - every signal is accounted for exactly once: taken by a waiter, taken as a
//!   stored permit by a later wait, or still stored;
//! - no lost wakeup: a waiter still waiting implies no stored signal for its
//!   event anywhere;
//! - every waiter queued when a broadcast was made was woken (or gave up);
//! - nothing leaks: the only live events are those with stored signals.

use braid_core::event::{EventMsg, Events, Outbox, Queued, Ticket, WaitOutcome};
use std::collections::{HashMap, HashSet, VecDeque};

type Event = u8;
/// A signal's id, or `BROADCAST` for wakes made by a broadcast.
type Payload = u32;
const BROADCAST: Payload = u32::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Op {
    Wait(Event, Ticket),
    Signal(Event),
    Broadcast(Event),
    /// The waiter gives up (a timeout or a cancel): it is resolved as
    /// abandoned unless it was woken first.
    GiveUp(Ticket),
    /// The runtime removes an abandoned waiter from its core's table (it may
    /// happen well after the give-up, e.g. after the strand migrated).
    Cleanup(Event, Ticket),
    /// A standing waiter (a scheduler closure) is registered.
    Stand(Event, Ticket),
    /// A standing waiter is removed (its host strand exited).
    Unstand(Event, Ticket),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum TicketState {
    NotYet,
    Waiting,
    /// Woken by a signal (its id) or a broadcast.
    Woken(Payload),
    /// Took a stored signal without blocking.
    Permit,
    Abandoned,
    /// A standing waiter: takes signals and stays.
    Standing,
}

#[derive(Clone)]
struct World {
    cores: usize,
    home: fn(&Event) -> usize,
    events: Vec<Events<Event, Ticket, Payload>>,
    rings: HashMap<(usize, usize), VecDeque<EventMsg<Event, Payload>>>,
    scripts: Vec<Vec<Op>>,
    pos: Vec<usize>,
    tickets: HashMap<Ticket, TicketState>,
    next_signal: Payload,
    permits_taken: usize,
    /// Signals taken by standing waiters.
    stood: Vec<Payload>,
    /// For each broadcast made: the tickets that were waiting on its event.
    broadcast_targets: Vec<Vec<Ticket>>,
    clock: u64,
}

impl World {
    fn new(cores: usize, home: fn(&Event) -> usize, scripts: Vec<Vec<Op>>) -> World {
        let mut tickets = HashMap::new();
        for op in scripts.iter().flatten() {
            if let Op::Wait(_, t) | Op::Stand(_, t) = op {
                tickets.insert(*t, TicketState::NotYet);
            }
        }
        World {
            cores,
            home,
            events: (0..cores).map(|c| Events::new(c, cores)).collect(),
            rings: HashMap::new(),
            pos: vec![0; scripts.len()],
            scripts,
            tickets,
            next_signal: 0,
            permits_taken: 0,
            stood: Vec::new(),
            broadcast_targets: Vec::new(),
            clock: 0,
        }
    }

    fn fingerprint(&self) -> String {
        let mut rings: Vec<_> = self
            .rings
            .iter()
            .filter(|(_, q)| !q.is_empty())
            .map(|(k, q)| format!("{k:?}{q:?}"))
            .collect();
        rings.sort();
        let mut tickets: Vec<_> = self.tickets.iter().collect();
        tickets.sort();
        format!(
            "{:?}|{rings:?}|{:?}|{tickets:?}|{}|{}|{:?}|{:?}",
            self.events,
            self.pos,
            self.next_signal,
            self.permits_taken,
            self.broadcast_targets,
            self.stood
        )
    }

    /// The steps possible from here: run a core's next operation, or deliver
    /// the head of a ring.
    fn steps(&self) -> Vec<Step> {
        let mut steps: Vec<Step> = (0..self.cores)
            .filter(|&c| self.pos[c] < self.scripts[c].len())
            .map(Step::Run)
            .collect();
        let mut rings: Vec<_> = self
            .rings
            .iter()
            .filter(|(_, q)| !q.is_empty())
            .map(|(&k, _)| Step::Deliver(k.0, k.1))
            .collect();
        rings.sort_by_key(|s| format!("{s:?}"));
        steps.extend(rings);
        steps
    }

    fn apply(&mut self, step: Step) {
        self.clock += 1;
        let now = self.clock;
        let home_of = self.home;
        let mut out: Outbox<Event, Payload> = Vec::new();
        let sender = match step {
            Step::Run(core) => {
                let op = self.scripts[core][self.pos[core]];
                self.pos[core] += 1;
                match op {
                    Op::Wait(e, t) => {
                        // Waiting from the moment it is queued: a placement made
                        // inside `wait` may claim it at once.
                        self.tickets.insert(t, TicketState::Waiting);
                        if self.queue(core, e, t, now, false, &mut out) == WaitOutcome::Permit {
                            self.tickets.insert(t, TicketState::Permit);
                            self.permits_taken += 1;
                        }
                    }
                    Op::Signal(e) => {
                        let id = self.next_signal;
                        self.next_signal += 1;
                        let (tickets, stood) = (&mut self.tickets, &mut self.stood);
                        let mut claim =
                            |w: &Ticket, p: &Payload| claim_ticket(tickets, stood, w, p);
                        self.events[core].signal(&e, home_of(&e), id, &mut claim, &mut out);
                    }
                    Op::Broadcast(e) => {
                        let targets: Vec<Ticket> = self
                            .tickets
                            .iter()
                            .filter(|(_, s)| **s == TicketState::Waiting)
                            .map(|(t, _)| *t)
                            .filter(|t| {
                                self.scripts
                                    .iter()
                                    .flatten()
                                    .any(|op| *op == Op::Wait(e, *t))
                            })
                            .collect();
                        self.broadcast_targets.push(targets);
                        let (tickets, stood) = (&mut self.tickets, &mut self.stood);
                        let mut claim =
                            |w: &Ticket, p: &Payload| claim_ticket(tickets, stood, w, p);
                        self.events[core].broadcast(
                            &e,
                            home_of(&e),
                            &BROADCAST,
                            &mut claim,
                            &mut out,
                        );
                    }
                    Op::GiveUp(t) => {
                        let state = self.tickets.get_mut(&t).expect("known ticket");
                        if *state == TicketState::Waiting {
                            *state = TicketState::Abandoned;
                        }
                    }
                    Op::Stand(e, t) => {
                        self.tickets.insert(t, TicketState::Standing);
                        let outcome = self.queue(core, e, t, now, true, &mut out);
                        assert_eq!(outcome, WaitOutcome::Queued);
                    }
                    Op::Unstand(e, t) => {
                        assert!(self.events[core].cancel(&e, home_of(&e), t, &mut out));
                        self.tickets.insert(t, TicketState::Abandoned);
                    }
                    Op::Cleanup(e, t) => {
                        if self.tickets[&t] == TicketState::Abandoned {
                            self.events[core].cancel(&e, home_of(&e), t, &mut out);
                        }
                    }
                }
                core
            }
            Step::Deliver(from, to) => {
                let msg = self
                    .rings
                    .get_mut(&(from, to))
                    .and_then(VecDeque::pop_front)
                    .expect("a message to deliver");
                let (tickets, stood) = (&mut self.tickets, &mut self.stood);
                let mut claim = |w: &Ticket, p: &Payload| claim_ticket(tickets, stood, w, p);
                self.events[to].on_message(from, msg, home_of, &BROADCAST, &mut claim, &mut out);
                to
            }
        };
        self.send(sender, out);
    }

    /// Queues ticket `t` on `e` at `core` (a standing waiter if `standing`).
    fn queue(
        &mut self,
        core: usize,
        e: Event,
        t: Ticket,
        now: u64,
        standing: bool,
        out: &mut Outbox<Event, Payload>,
    ) -> WaitOutcome {
        let (tickets, stood) = (&mut self.tickets, &mut self.stood);
        let mut claim = |w: &Ticket, p: &Payload| claim_ticket(tickets, stood, w, p);
        let queued = Queued {
            ticket: t,
            since: now,
            waiter: t,
            standing,
        };
        self.events[core].wait(&e, (self.home)(&e), queued, &mut claim, out)
    }

    fn send(&mut self, from: usize, out: Outbox<Event, Payload>) {
        for (to, msg) in out {
            assert_ne!(to, from, "a core sent a message to itself: {msg:?}");
            assert!(to < self.cores);
            self.rings.entry((from, to)).or_default().push_back(msg);
        }
    }

    /// Checks a final state.
    fn check_final(&self) {
        let stored: usize = (0..=255u8)
            .map(|e| self.events.iter().map(|ev| ev.stored(&e)).sum::<usize>())
            .sum();
        let mut taken = HashSet::new();
        for state in self.tickets.values() {
            if let TicketState::Woken(id) = state {
                if *id != BROADCAST {
                    assert!(taken.insert(*id), "signal {id} taken twice");
                }
            }
        }
        for id in &self.stood {
            assert!(taken.insert(*id), "signal {id} taken twice");
        }
        assert_eq!(
            taken.len() + self.permits_taken + stored,
            self.next_signal as usize,
            "signals not accounted for exactly once: {} woke, {} permits taken, {stored} stored, of {}\n{}",
            taken.len(),
            self.permits_taken,
            self.next_signal,
            self.fingerprint()
        );
        for (t, state) in &self.tickets {
            if *state == TicketState::Waiting {
                let e = self
                    .scripts
                    .iter()
                    .flatten()
                    .find_map(|op| match op {
                        Op::Wait(e, w) if w == t => Some(*e),
                        _ => None,
                    })
                    .expect("ticket has a wait");
                let stored_here: usize = self.events.iter().map(|ev| ev.stored(&e)).sum();
                assert_eq!(
                    stored_here,
                    0,
                    "lost wakeup: ticket {t} waits on {e} while a signal is stored\n{}",
                    self.fingerprint()
                );
                let queued: usize = self.events.iter().map(|ev| ev.waiting(&e)).sum();
                assert!(queued > 0, "ticket {t} waiting but queued nowhere");
            }
        }
        for targets in &self.broadcast_targets {
            for t in targets {
                assert!(
                    matches!(
                        self.tickets[t],
                        TicketState::Woken(_) | TicketState::Abandoned
                    ),
                    "broadcast missed ticket {t}: {:?}\n{}",
                    self.tickets[t],
                    self.fingerprint()
                );
            }
        }
        let waiting = self.tickets.values().any(|s| *s == TicketState::Waiting);
        let abandoned_uncleaned = self.tickets.iter().any(|(t, s)| {
            *s == TicketState::Abandoned
                && !self
                    .scripts
                    .iter()
                    .flatten()
                    .any(|op| matches!(op, Op::Cleanup(_, w) if w == t))
        });
        if !waiting && !abandoned_uncleaned {
            let live: usize = self.events.iter().map(Events::live).sum();
            let events_with_stored = (0..=255u8)
                .filter(|e| self.events.iter().any(|ev| ev.stored(e) > 0))
                .count();
            assert_eq!(
                live,
                events_with_stored,
                "events leaked\n{}",
                self.fingerprint()
            );
        }
    }
}

fn claim_ticket(
    tickets: &mut HashMap<Ticket, TicketState>,
    stood: &mut Vec<Payload>,
    t: &Ticket,
    p: &Payload,
) -> bool {
    let state = tickets.get_mut(t).expect("known ticket");
    match *state {
        TicketState::Standing => {
            if *p != BROADCAST {
                stood.push(*p);
            }
            true
        }
        TicketState::Waiting => {
            *state = TicketState::Woken(*p);
            true
        }
        TicketState::Abandoned => false,
        other => panic!("ticket {t} woken again while {other:?}"),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Run(usize),
    Deliver(usize, usize),
}

/// Explores every interleaving from `world` (pruning states already seen) and
/// checks each final state. Returns the number of distinct states.
fn explore(world: World) -> usize {
    let mut seen = HashSet::new();
    let mut stack = vec![world];
    let mut finals = 0;
    while let Some(w) = stack.pop() {
        if !seen.insert(w.fingerprint()) {
            continue;
        }
        let steps = w.steps();
        if steps.is_empty() {
            w.check_final();
            finals += 1;
            continue;
        }
        for step in steps {
            let mut next = w.clone();
            next.apply(step);
            stack.push(next);
        }
    }
    assert!(finals > 0);
    eprintln!("{} states, {finals} final", seen.len());
    seen.len()
}

fn home0(_: &Event) -> usize {
    0
}
fn home1(_: &Event) -> usize {
    1
}
fn home2(_: &Event) -> usize {
    2
}

use Op::*;

#[test]
fn signal_before_or_after_a_remote_wait() {
    for home in [home0 as fn(&Event) -> usize, home1] {
        let n = explore(World::new(2, home, vec![vec![Signal(7)], vec![Wait(7, 1)]]));
        assert!(n > 5);
        explore(World::new(2, home, vec![vec![Wait(7, 1)], vec![Signal(7)]]));
        explore(World::new(
            2,
            home,
            vec![vec![], vec![Signal(7), Wait(7, 1)]],
        ));
    }
}

#[test]
fn two_cores_two_waiters_two_signals() {
    for home in [home0 as fn(&Event) -> usize, home1] {
        explore(World::new(
            2,
            home,
            vec![vec![Wait(1, 1), Signal(1)], vec![Signal(1), Wait(1, 2)]],
        ));
        explore(World::new(
            2,
            home,
            vec![vec![Signal(1), Signal(1)], vec![Wait(1, 1), Wait(1, 2)]],
        ));
    }
}

#[test]
fn three_cores_compete_for_signals() {
    for home in [home0 as fn(&Event) -> usize, home1, home2] {
        let n = explore(World::new(
            3,
            home,
            vec![
                vec![Signal(3), Signal(3)],
                vec![Wait(3, 1)],
                vec![Wait(3, 2)],
            ],
        ));
        assert!(n > 50, "{n} states");
        explore(World::new(
            3,
            home,
            vec![
                vec![Signal(3)],
                vec![Wait(3, 1)],
                vec![Wait(3, 2), Signal(3)],
            ],
        ));
    }
}

#[test]
fn waiters_give_up_while_grants_are_in_flight() {
    for home in [home0 as fn(&Event) -> usize, home1, home2] {
        explore(World::new(
            3,
            home,
            vec![
                vec![Signal(4)],
                vec![Wait(4, 1), GiveUp(1), Cleanup(4, 1)],
                vec![Wait(4, 2)],
            ],
        ));
        // Given up but not yet removed from its core's table.
        explore(World::new(
            3,
            home,
            vec![
                vec![Signal(4), Signal(4)],
                vec![Wait(4, 1), GiveUp(1)],
                vec![Wait(4, 2)],
            ],
        ));
    }
}

#[test]
fn broadcast_reaches_every_waiter_queued_before_it() {
    for home in [home0 as fn(&Event) -> usize, home1, home2] {
        explore(World::new(
            3,
            home,
            vec![vec![Broadcast(5)], vec![Wait(5, 1)], vec![Wait(5, 2)]],
        ));
        explore(World::new(
            3,
            home,
            vec![
                vec![Wait(5, 3), Broadcast(5), Signal(5)],
                vec![Wait(5, 1)],
                vec![Wait(5, 2), GiveUp(2), Cleanup(5, 2)],
            ],
        ));
    }
}

#[test]
fn two_events_do_not_interfere() {
    fn split(e: &Event) -> usize {
        usize::from(*e) % 2
    }
    explore(World::new(
        2,
        split,
        vec![vec![Wait(0, 1), Signal(1)], vec![Wait(1, 2), Signal(0)]],
    ));
}

#[test]
fn everything_at_once_on_three_cores() {
    for home in [home0 as fn(&Event) -> usize, home1, home2] {
        let n = explore(World::new(
            3,
            home,
            vec![
                vec![Wait(1, 1), Signal(1)],
                vec![Signal(1), Wait(1, 2), GiveUp(2), Cleanup(1, 2)],
                vec![Wait(1, 3), Signal(1), Broadcast(1)],
            ],
        ));
        assert!(n > 1000, "{n} states");
    }
}

#[test]
fn standing_waiters_take_signals_ahead_of_strands() {
    for home in [home0 as fn(&Event) -> usize, home1, home2] {
        explore(World::new(
            3,
            home,
            vec![
                vec![Signal(6), Signal(6)],
                vec![Stand(6, 1), Wait(6, 2), Unstand(6, 1)],
                vec![Signal(6)],
            ],
        ));
    }
}
