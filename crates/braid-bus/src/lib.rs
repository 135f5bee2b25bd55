//! The message bus between braid's cores.
//!
//! Cores share no run queues and take no locks on the hot path: everything one
//! core tells another goes through this bus.
//!
//! # Design
//!
//! - **Rings** ([`Ring`]): one bounded lock-free SPSC ring for every ordered
//!   pair of cores `(from, to)`, `from != to`. Core `from` is its only
//!   producer, core `to` its only consumer.
//! - **Doorbells** ([`Doorbell`]): one 32-bit word per receiving core. A sender
//!   sets its bit (`from % 30`) after pushing; bit 30 ([`INJECTED`]) announces
//!   mail from threads that are not cores, bit 31 ([`SLEEPING`]) says the
//!   receiver is parked. A core with no mail finds out with a single load.
//! - **Endpoints** ([`Endpoint`]): one per core, made by [`Bus::new`]. It owns
//!   the producer side of its row of rings and the consumer side of its
//!   column, plus a local overflow queue per destination, so a send never
//!   fails for lack of room and messages between two cores stay in order.
//! - **Injectors**: a locked queue per core for threads that are not cores
//!   ([`Bus::inject`]); the cold path.
//!
//! # Protocol
//!
//! 1. **Send**: push into ring `(me, to)` (or queue behind earlier overflow),
//!    then `fetch_or` the sender's bit into `to`'s doorbell. If the bell had
//!    [`SLEEPING`] set, the sender gets [`Notify::WakeReceiver`] and must wake
//!    `to` (a futex wake on [`Doorbell::word`]).
//! 2. **Check**: flush overflow; if the doorbell has no mail bit, stop. Else
//!    swap the bits out and drain exactly the rings (and the injector) they
//!    name.
//! 3. **Sleep**: a core with nothing to do and no overflow CASes its doorbell
//!    from 0 to [`SLEEPING`]; failure means mail arrived. Since every ring and
//!    this CAS are read-modify-writes on one word, they are totally ordered, so
//!    any message is either seen by the CAS (no sleep) or its sender sees
//!    [`SLEEPING`] (and wakes the core): a wakeup cannot be lost. The
//!    [`doorbell`] module docs spell this out.
//! 4. **Wake**: after parking, clear [`SLEEPING`] and check again.
//!
//! # Example
//!
//! Two cores on two threads; core 1 sends, core 0 receives.
//!
//! ```
//! use braid_bus::{Bus, Notify, Origin};
//!
//! let (_bus, mut endpoints) = Bus::<String>::new(2, 8)?;
//! let mut core1 = endpoints.pop().unwrap();
//! let mut core0 = endpoints.pop().unwrap();
//!
//! let sender = std::thread::spawn(move || {
//!     let notify = core1.send(0, String::from("hello")).unwrap();
//!     // Core 0 never sleeps in this example; a runtime would futex-wake it
//!     // on `Notify::WakeReceiver`.
//!     assert_eq!(notify, Notify::None);
//! });
//!
//! let mut received = Vec::new();
//! while received.is_empty() {
//!     let checked = core0.check(|from, message| received.push((from, message)));
//!     assert!(checked.to_wake().is_empty());
//!     std::thread::yield_now();
//! }
//! sender.join().unwrap();
//! assert_eq!(received, [(Origin::Core(1), String::from("hello"))]);
//! # Ok::<(), braid_bus::BusError>(())
//! ```
//!
//! A bus carries messages between threads, so it needs them to be `Send`:
//!
//! ```compile_fail
//! fn assert_send<T: Send>(_: &T) {}
//! let (bus, _endpoints) = braid_bus::Bus::<std::rc::Rc<u8>>::new(2, 2).unwrap();
//! assert_send(&bus);
//! ```

mod bus;
pub mod doorbell;
mod endpoint;
mod error;
mod ring;
mod sync;

pub use bus::Bus;
pub use doorbell::{Doorbell, Notify, INJECTED, MAIL_MASK, SENDER_BITS, SENDER_MASK, SLEEPING};
pub use endpoint::{Checked, Endpoint, Origin};
pub use error::{BusError, SendError, MAX_CORES, MAX_RING_CAPACITY};
pub use ring::Ring;
