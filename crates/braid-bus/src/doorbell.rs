//! The doorbell: one 32-bit word per receiving core that says who has mail for
//! it and whether it is asleep.
//!
//! # Bits
//!
//! | bit      | name          | set by                     | cleared by                        |
//! |----------|---------------|----------------------------|-----------------------------------|
//! | `0..=29` | sender `s`    | [`ring`] after a push from core `s` with `s % 30` = bit | [`take`] |
//! | 30       | [`INJECTED`]  | [`ring`] after an [inject] | [`take`]                          |
//! | 31       | [`SLEEPING`]  | [`try_sleep`]              | [`wake_up`] (and [`take`])        |
//!
//! With more than 30 cores one sender bit stands for senders `s`, `s + 30`,
//! `s + 60`, …, and the receiver looks at each of their rings.
//!
//! # Protocol
//!
//! 1. A sender first makes its message visible (pushes it into its ring or the
//!    injector queue), then [`ring`]s its bit with a `fetch_or`.
//! 2. If the value `fetch_or` replaced had [`SLEEPING`] set, `ring` returns
//!    [`Notify::WakeReceiver`] and the sender must wake the receiver (the
//!    runtime does a futex wake on [`word`]).
//! 3. An awake receiver checks for mail with [`is_empty`] (one load), and if
//!    there is some, [`take`]s the bits with a `swap` and reads the rings and
//!    queues they name.
//! 4. A receiver with nothing to do calls [`try_sleep`], a compare-and-swap
//!    from 0 (no mail, awake) to [`SLEEPING`]. If it fails, mail has arrived:
//!    go back to 3. If it succeeds, the receiver parks (the runtime waits on
//!    [`word`] while it still equals [`SLEEPING`]).
//! 5. Once running again, the receiver calls [`wake_up`] to clear
//!    [`SLEEPING`], then goes to 3.
//!
//! # Why no wakeup is lost
//!
//! Every `ring` and the receiver's sleep transition are read-modify-write
//! operations on the same word, so they are totally ordered (the word's
//! modification order), and each sees the effect of all before it. Take a
//! message whose ring comes after the receiver's last [`take`]. Either that
//! ring comes before the sleep CAS, and then the CAS finds a mail bit and
//! fails, so the receiver does not park; or it comes after, and then it sees
//! [`SLEEPING`] and its sender is told to wake the receiver. There is no third
//! order, so a message is never stranded with its receiver asleep and nobody
//! told to wake it. The futex wait closes the remaining gap between a
//! successful CAS and actually parking: it parks only if the word still equals
//! [`SLEEPING`], i.e. no ring has landed since.
//!
//! Several senders may each see [`SLEEPING`] before the receiver clears it and
//! all issue a wake; the extra wakes are harmless.
//!
//! [`ring`]: Doorbell::ring
//! [`take`]: Doorbell::take
//! [`is_empty`]: Doorbell::is_empty
//! [`try_sleep`]: Doorbell::try_sleep
//! [`wake_up`]: Doorbell::wake_up
//! [`word`]: Doorbell::word
//! [inject]: crate::Bus::inject

use std::fmt;

use crate::sync::{AtomicU32, Ordering};

/// How many bits of the word stand for senders (bits `0..SENDER_BITS`).
pub const SENDER_BITS: u32 = 30;

/// All sender bits.
pub const SENDER_MASK: u32 = (1 << SENDER_BITS) - 1;

/// Bit 30: some thread that is not a core put mail in this core's injector
/// queue.
pub const INJECTED: u32 = 1 << 30;

/// Bit 31: the receiver is parked or about to park; whoever rings must wake it.
pub const SLEEPING: u32 = 1 << 31;

/// Bits that mean "there is mail".
pub const MAIL_MASK: u32 = SENDER_MASK | INJECTED;

/// What the caller of [`Doorbell::ring`] must do next.
#[must_use = "a sleeping receiver stays asleep unless the caller wakes it"]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notify {
    /// The receiver is awake and will see the mail; nothing to do.
    None,
    /// The receiver was asleep or about to park: the caller must wake it (a
    /// futex wake on [`Doorbell::word`] in the runtime).
    WakeReceiver,
}

/// One core's doorbell word. See the [module docs](self) for the protocol.
pub struct Doorbell {
    word: AtomicU32,
}

impl Doorbell {
    /// A doorbell with no mail and the receiver awake.
    pub fn new() -> Self {
        Self {
            word: AtomicU32::new(0),
        }
    }

    /// The bit that sender core `sender` rings: `1 << (sender % 30)`.
    pub fn sender_bit(sender: usize) -> u32 {
        // The remainder is below 30, so the cast cannot truncate.
        1 << (sender % SENDER_BITS as usize) as u32
    }

    /// Sets `bits` (sender bits and/or [`INJECTED`]) after the mail they stand
    /// for has been made visible, and says whether the receiver must be woken.
    pub fn ring(&self, bits: u32) -> Notify {
        debug_assert!(
            bits != 0 && bits & !MAIL_MASK == 0,
            "ring takes mail bits only, got {bits:#x}"
        );
        // Release: the message was pushed before this ring; a receiver whose
        // Acquire `take` sees these bits then sees the message too.
        let previous = self.word.fetch_or(bits, Ordering::Release);
        if previous & SLEEPING != 0 {
            Notify::WakeReceiver
        } else {
            Notify::None
        }
    }

    /// Whether no mail bit is set: the O(1) check a core makes between tasks.
    ///
    /// The answer may be stale by the time it is used; that is fine because a
    /// core only parks through [`try_sleep`](Self::try_sleep), which sees the
    /// latest value.
    #[inline]
    pub fn is_empty(&self) -> bool {
        // Relaxed: a hint only. Reading the mail itself goes through `take`,
        // and deciding to park through `try_sleep`; both are RMWs that see the
        // latest value.
        self.word.load(Ordering::Relaxed) & MAIL_MASK == 0
    }

    /// Takes all mail bits, leaving the word at 0: mail cleared, receiver awake.
    ///
    /// Only the receiver calls this, while awake. The result never has
    /// [`SLEEPING`] set.
    pub fn take(&self) -> u32 {
        // Acquire: pairs with the Release `fetch_or` in `ring` of every bit we
        // take (later `fetch_or`s continue the release sequence), so the
        // messages those bits announce are visible to the reads that follow.
        let previous = self.word.swap(0, Ordering::Acquire);
        previous & MAIL_MASK
    }

    /// Marks the receiver as going to sleep, unless mail has arrived.
    ///
    /// Returns `true` if the word went from 0 to [`SLEEPING`]: the receiver may
    /// park, and every later [`ring`](Self::ring) will return
    /// [`Notify::WakeReceiver`]. Returns `false` if some mail bit is set: the
    /// receiver must not park but [`take`](Self::take) its mail.
    ///
    /// A receiver that succeeds but then decides not to park must still call
    /// [`wake_up`](Self::wake_up).
    pub fn try_sleep(&self) -> bool {
        debug_assert!(
            self.word.load(Ordering::Relaxed) & SLEEPING == 0,
            "try_sleep called by a receiver that is already sleeping"
        );
        // Relaxed: only the position of this RMW in the word's modification
        // order matters (see "Why no wakeup is lost"); mail is read after a
        // later Acquire `take`, and the futex provides its own ordering.
        self.word
            .compare_exchange(0, SLEEPING, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }

    /// Clears [`SLEEPING`] once the receiver runs again; mail bits are kept.
    pub fn wake_up(&self) {
        // Relaxed: as in `try_sleep`, only the modification order of the word
        // matters; senders that still see SLEEPING issue a spare wake.
        self.word.fetch_and(!SLEEPING, Ordering::Relaxed);
    }

    /// The word itself, for the runtime's futex wait (expecting [`SLEEPING`])
    /// and futex wake.
    #[cfg(not(loom))]
    #[inline]
    pub fn word(&self) -> &AtomicU32 {
        &self.word
    }
}

impl Default for Doorbell {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Doorbell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let word = self.word.load(Ordering::Relaxed);
        f.debug_struct("Doorbell")
            .field("senders", &format_args!("{:#032b}", word & SENDER_MASK))
            .field("injected", &(word & INJECTED != 0))
            .field("sleeping", &(word & SLEEPING != 0))
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn sender_bits_wrap_every_thirty_senders() {
        assert_eq!(Doorbell::sender_bit(0), 1);
        assert_eq!(Doorbell::sender_bit(29), 1 << 29);
        assert_eq!(Doorbell::sender_bit(30), 1);
        assert_eq!(Doorbell::sender_bit(61), 1 << 1);
        assert_eq!(INJECTED | SLEEPING | SENDER_MASK, u32::MAX);
    }

    #[test]
    fn take_returns_rung_bits_once() {
        let doorbell = Doorbell::new();
        assert!(doorbell.is_empty());
        assert_eq!(doorbell.ring(Doorbell::sender_bit(3)), Notify::None);
        assert_eq!(doorbell.ring(INJECTED), Notify::None);
        assert!(!doorbell.is_empty());
        assert_eq!(doorbell.take(), 1 << 3 | INJECTED);
        assert!(doorbell.is_empty());
        assert_eq!(doorbell.take(), 0);
    }

    #[test]
    fn sleep_fails_with_mail_and_ring_after_sleep_asks_for_wake() {
        let doorbell = Doorbell::new();
        assert_eq!(doorbell.ring(Doorbell::sender_bit(1)), Notify::None);
        assert!(!doorbell.try_sleep());
        assert_eq!(doorbell.take(), 1 << 1);

        assert!(doorbell.try_sleep());
        assert!(doorbell.is_empty());
        assert_eq!(doorbell.word().load(Ordering::Relaxed), SLEEPING);
        assert_eq!(doorbell.ring(Doorbell::sender_bit(2)), Notify::WakeReceiver);
        // Every ring while asleep asks for a wake; spare wakes are harmless.
        assert_eq!(doorbell.ring(INJECTED), Notify::WakeReceiver);
        doorbell.wake_up();
        assert_eq!(doorbell.ring(Doorbell::sender_bit(2)), Notify::None);
        assert_eq!(doorbell.take(), 1 << 2 | INJECTED);
        assert_eq!(doorbell.word().load(Ordering::Relaxed), 0);
    }

    #[test]
    fn debug_shows_each_field() {
        let doorbell = Doorbell::new();
        let _ = doorbell.ring(INJECTED);
        assert_eq!(
            format!("{doorbell:?}"),
            "Doorbell { senders: 0b000000000000000000000000000000, injected: true, sleeping: false }"
        );
    }
}
