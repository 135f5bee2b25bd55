//! A core's side of named events: its wait graph and the event homes it keeps
//! (the pure protocol of `braid_core::event`), and the scheduler closures
//! registered on it.
//!
//! # Scheduler closures
//!
//! A closure registered on an event takes the event's signals on its core ahead
//! of waiting strands: in the wait graph, the core's closures for an event are
//! one standing waiter at the front of the queue, so the negotiated wakeup
//! treats them like any waiter (and grants signals from other cores to them).
//! A signal they take is queued as a job and run by the scheduler loop at its
//! next pass, before the next strand, with no reference to the core's state
//! held, so a closure may signal other events. It may not block: blocking calls
//! made from a closure fail (`EventError::InClosure`) or panic with a clear
//! message; the panic is caught, the closure is dropped, and the core goes on.

use super::key::{EventKey, EventMessage, Payload};
use crate::core::{Local, Msg};
use crate::facade::Ordering;
use crate::strand::Header;
use crate::sync::waiter::Waker;
use braid_core::event::{Events, Outbox, Queued, WaitOutcome};
use braid_core::Ticket;
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

/// A waiter in a core's wait graph.
#[derive(Clone, Debug)]
pub(crate) enum EventWaiter {
    /// A strand (or thread) blocked in a wait.
    Strand(Waker),
    /// This core's closures for the event: a standing waiter.
    Closures(EventKey),
}

/// A scheduler closure's code: called with each signal's payload.
pub(crate) type ClosureFn = Box<dyn FnMut(&[u8]) + Send>;

/// A closure and the strand that registered it (it goes when that strand ends).
pub(crate) struct ClosureEntry {
    host: Arc<Header>,
    run: ClosureFn,
}

/// The closures of one event on one core, and the ticket of their standing
/// entry in the wait graph.
pub(crate) struct ClosureSet {
    ticket: Ticket,
    entries: Vec<ClosureEntry>,
}

thread_local! {
    static IN_CLOSURE: Cell<bool> = const { Cell::new(false) };
}

/// Whether the calling thread is running a scheduler closure.
pub(crate) fn in_closure() -> bool {
    IN_CLOSURE.get()
}

/// Fails loudly if a scheduler closure tries to block (it would stall its core).
pub(crate) fn forbid_blocking_in_closure(what: &str) {
    if in_closure() {
        panic!(
            "braid: a scheduler closure tried to block ({what}); closures run inside the \
             scheduler and must not wait — signal an event and let a strand do the waiting"
        );
    }
}

/// Core bit of `core` in a strand's closure-core mask (bit 63 stands for
/// every core from 63 up).
pub(crate) fn core_bit(core: usize) -> u64 {
    1 << core.min(63)
}

impl Local {
    fn new_ticket(&mut self) -> Ticket {
        self.next_ticket += 1;
        braid_core::sched::ids::compose(self.next_ticket, Some(self.core))
    }

    /// Forgets the signals stored here for the local names of the ended
    /// top-level group of root strand `root`.
    pub(crate) fn forget_namespace(&mut self, root: u64) {
        let ns = super::key::Namespace::Local(root);
        self.events.forget_stored(|k| k.namespace == ns);
        self.shared()
            .live_events
            .store(self.events.live(), Ordering::Relaxed);
    }

    /// Queues `waker` on `key` unless a stored permit is taken at once. Returns
    /// the wait's ticket when queued.
    pub(crate) fn event_wait(&mut self, key: &EventKey, waker: Waker) -> Option<Ticket> {
        let ticket = self.new_ticket();
        let queued = Queued {
            ticket,
            // The coarse clock (1 ms steps): FIFO across cores is approximate
            // anyway, and a fine clock read costs more than the whole local wait.
            since: self.rt().clock_ns.load(Ordering::Relaxed),
            waiter: EventWaiter::Strand(waker),
            standing: false,
        };
        let home = key.home(self.endpoint.cores());
        let outcome = self
            .with_events(|events, mut claim, out| events.wait(key, home, queued, &mut claim, out));
        (outcome == WaitOutcome::Queued).then_some(ticket)
    }

    pub(crate) fn event_signal(&mut self, key: &EventKey, payload: Payload) {
        let home = key.home(self.endpoint.cores());
        self.with_events(|events, mut claim, out| {
            events.signal(key, home, payload, &mut claim, out);
        });
    }

    pub(crate) fn event_broadcast(&mut self, key: &EventKey) {
        let home = key.home(self.endpoint.cores());
        self.with_events(|events, mut claim, out| {
            events.broadcast(key, home, &Payload::EMPTY, &mut claim, out);
        });
    }

    pub(crate) fn event_cancel(&mut self, key: &EventKey, ticket: Ticket) {
        let home = key.home(self.endpoint.cores());
        self.with_events(|events, _, out| {
            events.cancel(key, home, ticket, out);
        });
    }

    pub(crate) fn event_message(&mut self, from: usize, msg: EventMessage) {
        let cores = self.endpoint.cores();
        // Injected messages (from threads outside the runtime) are only
        // `Signal` and `WakeAll`, which do not use the sender.
        let from = if from == usize::MAX { self.core } else { from };
        self.with_events(|events, mut claim, out| {
            events.on_message(
                from,
                msg,
                |k| k.home(cores),
                &Payload::EMPTY,
                &mut claim,
                out,
            );
        });
    }

    /// Registers a closure of `host` on `key` here.
    pub(crate) fn register_closure(&mut self, key: &EventKey, host: &Arc<Header>, run: ClosureFn) {
        let entry = ClosureEntry {
            host: host.clone(),
            run,
        };
        if let Some(set) = self.closures.get_mut(key) {
            set.entries.push(entry);
            return;
        }
        let ticket = self.new_ticket();
        self.closures.insert(
            key.clone(),
            ClosureSet {
                ticket,
                entries: vec![entry],
            },
        );
        let queued = Queued {
            ticket,
            since: self.rt().clock_ns.load(Ordering::Relaxed),
            waiter: EventWaiter::Closures(key.clone()),
            standing: true,
        };
        let home = key.home(self.endpoint.cores());
        self.with_events(|events, mut claim, out| events.wait(key, home, queued, &mut claim, out));
    }

    /// Takes the closures of `host` off this core (it exited). They are
    /// dropped later, by `run_closure_jobs`: dropping one runs user code
    /// (whatever it captured), which must not run while this core's state is
    /// borrowed.
    pub(crate) fn remove_closures_of(&mut self, host: u64) {
        let mut emptied = Vec::new();
        for (key, set) in &mut self.closures {
            let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut set.entries)
                .into_iter()
                .partition(|e| e.host.id == host);
            set.entries = kept;
            self.closure_graveyard.extend(gone);
            if set.entries.is_empty() {
                emptied.push((key.clone(), set.ticket));
            }
        }
        for (key, ticket) in emptied {
            self.closures.remove(&key);
            self.event_cancel(&key, ticket);
        }
    }

    /// A strand finished: its closures go, here and on the other cores it
    /// registered any on.
    pub(crate) fn closures_host_exited(&mut self, header: &Arc<Header>) {
        let mask = header.closure_cores.load(Ordering::Acquire);
        if mask == 0 {
            return;
        }
        for core in 0..self.endpoint.cores() {
            if mask & core_bit(core) == 0 {
                continue;
            }
            if core == self.core {
                self.remove_closures_of(header.id);
            } else {
                self.send(core, Msg::ClosuresGone(header.id));
            }
        }
    }

    /// Runs an operation on the event tables, then sends its messages, wakes
    /// the strands it claimed, queues closure jobs, and publishes the live
    /// event count.
    fn with_events<R>(
        &mut self,
        op: impl FnOnce(
            &mut Events<EventKey, EventWaiter, Payload>,
            &mut dyn FnMut(&EventWaiter, &Payload) -> bool,
            &mut Outbox<EventKey, Payload>,
        ) -> R,
    ) -> R {
        let mut out = std::mem::take(&mut self.event_out);
        let mut wakes = std::mem::take(&mut self.event_wakes);
        let jobs = &mut self.closure_jobs;
        let mut claim = |waiter: &EventWaiter, payload: &Payload| match waiter {
            EventWaiter::Strand(waker) => {
                let won = waker.claim();
                if won {
                    wakes.push(waker.clone());
                }
                won
            }
            EventWaiter::Closures(key) => {
                jobs.push((key.clone(), *payload));
                true
            }
        };
        let result = op(&mut self.events, &mut claim, &mut out);
        if !out.is_empty() {
            for (to, msg) in out.drain(..) {
                self.send(to, Msg::Event(Box::new(msg)));
            }
        }
        if !wakes.is_empty() {
            for waker in wakes.drain(..) {
                match waker.strand() {
                    Some(header) => self.unpark_here(header),
                    None => waker.wake(),
                }
            }
        }
        self.event_out = out;
        self.event_wakes = wakes;
        self.shared()
            .live_events
            .store(self.events.live(), Ordering::Relaxed);
        result
    }
}

/// Runs the closure jobs queued on the core of `local`. Returns how many
/// closures failed (panicked, or tried to block) and were dropped.
///
/// # Safety
/// `local` must be the calling carrier's own core state, with no reference to
/// it live: closures run user code that may reach the core through the usual
/// paths (`context::with_core`).
pub(crate) unsafe fn run_closure_jobs(local: *mut Local) -> u64 {
    // SAFETY: `local` is this carrier's own core state with no reference to it
    // live (the caller's contract); the borrow ends before the closures drop.
    drop(unsafe { std::mem::take(&mut (*local).closure_graveyard) });
    let mut failed = 0;
    // One batch per scheduler pass: signals the closures make now run at the
    // next pass, so a closure that signals its own event cannot hold the core.
    // SAFETY: `local` is this carrier's own core state with no reference to it
    // live (the caller's contract); this borrow ends with the `take`.
    let jobs = unsafe { std::mem::take(&mut (*local).closure_jobs) };
    for (key, payload) in jobs {
        // SAFETY: `local` is this carrier's own core state and no reference to it
        // is live (the caller's contract; `jobs` was moved out); the borrow
        // ends once `entries` is moved out, before any closure runs.
        let entries = match unsafe { (*local).closures.get_mut(&key) } {
            Some(set) => std::mem::take(&mut set.entries),
            None => {
                // The closures went (their host exited, or they failed) after
                // taking this signal: it is not lost, it is signalled again.
                // SAFETY: `local` is this carrier's own core state; `get_mut`
                // found nothing, so no reference into it is live, and this
                // borrow lasts for the call, which runs no closure.
                unsafe { (*local).event_signal(&key, payload) };
                continue;
            }
        };
        let mut kept = Vec::with_capacity(entries.len());
        for mut entry in entries {
            IN_CLOSURE.set(true);
            let ran = catch_unwind(AssertUnwindSafe(|| (entry.run)(payload.as_bytes())));
            IN_CLOSURE.set(false);
            match ran {
                Ok(()) => kept.push(entry),
                Err(_) => {
                    // Dropped here (no borrow of the core is live); it no
                    // longer counts against its host's limit.
                    entry.host.closures.fetch_sub(1, Ordering::Relaxed);
                    failed += 1;
                }
            }
        }
        // SAFETY: `local` is this carrier's own core state (the caller's
        // contract); the closures have returned and hold no reference into it,
        // and `l` is not used past this iteration, before the next closure runs.
        let l = unsafe { &mut *local };
        if let Some(set) = l.closures.get_mut(&key) {
            // Entries added while the closures ran come after the old ones.
            kept.append(&mut set.entries);
            set.entries = kept;
            if set.entries.is_empty() {
                let ticket = set.ticket;
                l.closures.remove(&key);
                l.event_cancel(&key, ticket);
            }
        }
    }
    failed
}
