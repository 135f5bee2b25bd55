//! What each operation costs in simulated time, and how far apart cores are.

use braid_core::{CoreId, Nanos};
use serde::{Deserialize, Serialize};

/// The cost model: simulated nanoseconds per operation. The defaults are this
/// project's measurements on its 2-core VM (`braid bench`, 2026-11/12);
/// `braid sim calibrate` fits them to a bench run.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Costs {
    /// Picking a ready strand and switching to it and back (the yield figure).
    pub switch: Nanos,
    /// Creating a strand on the spawning core (spawn + join minus a switch).
    pub spawn: Nanos,
    /// Bookkeeping when a strand's body returns.
    pub exit: Nanos,
    /// Pushing one message into a ring (sender's time).
    pub send: Nanos,
    /// Applying one received message (receiver's time).
    pub receive: Nanos,
    /// Moving one strand in a grant or offer, on each side.
    pub per_task_moved: Nanos,
    /// One message's flight time between cores at distance 1.
    pub hop: Nanos,
    /// Writing the doorbell of a parked core (a system call, sender's time).
    pub doorbell: Nanos,
    /// From a parked core's doorbell to its carrier running again.
    pub unpark: Nanos,
    /// Making a strand parked on this core ready.
    pub local_wake: Nanos,
}

impl Default for Costs {
    fn default() -> Costs {
        Costs {
            switch: 20,
            spawn: 200,
            exit: 40,
            send: 30,
            receive: 40,
            per_task_moved: 20,
            hop: 150,
            doorbell: 1_500,
            unpark: 20_000,
            local_wake: 30,
        }
    }
}

/// How far apart cores are: a message's flight time is [`Costs::hop`] times
/// the distance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Topology {
    /// Every pair of cores at distance 1 (one socket, a full mesh).
    Flat,
    /// Cores in domains of this many (a socket, a chiplet): distance 1 within
    /// a domain, 3 across.
    Domains(usize),
}

impl Topology {
    /// Distance between cores `a` and `b` (0 for a core to itself).
    pub fn distance(&self, a: CoreId, b: CoreId) -> u64 {
        if a == b {
            return 0;
        }
        match *self {
            Topology::Flat => 1,
            Topology::Domains(size) if a / size.max(1) == b / size.max(1) => 1,
            Topology::Domains(_) => 3,
        }
    }

    /// Parses `flat` or `domains:N`.
    pub fn parse(text: &str) -> Result<Topology, crate::SimError> {
        let bad = || crate::SimError::BadArgument {
            what: "topology",
            value: text.to_owned(),
            allowed: "flat, or domains:N with N of 1 or more (e.g. domains:8)".to_owned(),
        };
        match text.split_once(':') {
            None if text == "flat" => Ok(Topology::Flat),
            Some(("domains", n)) => match n.parse::<usize>() {
                Ok(n) if n > 0 => Ok(Topology::Domains(n)),
                _ => Err(bad()),
            },
            _ => Err(bad()),
        }
    }

    /// The name `parse` reads back.
    pub fn name(&self) -> String {
        match self {
            Topology::Flat => "flat".to_owned(),
            Topology::Domains(n) => format!("domains:{n}"),
        }
    }
}
