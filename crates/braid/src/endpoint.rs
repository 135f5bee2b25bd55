//! Call endpoints: synchronous calls whose servers run on their callers'
//! CPU budgets.
//!
//! An [`Endpoint`] carries requests to the strands that serve it and their
//! replies back. A caller blocks in [`Endpoint::call`] until its reply comes.
//! A server takes calls with [`Endpoint::recv`] and answers each with
//! [`Reply::send`]. The server needs no scheduling context of its own (a
//! *passive server*): from the moment it takes a call until it replies (or
//! drops the [`Reply`]), it runs on the context the caller runs on — the
//! caller's own, or one donated to the caller by a call it serves, so a chain
//! A calls B calls C charges all three to A's budget. A server whose donated
//! budget is spent is throttled like any bound strand, until the caller's
//! refill. Each change of context is a switch point: the server yields
//! once, so every run is charged to one context.
//!
//! A server that takes several calls before replying runs on the context of
//! the latest; one whose reply went to another strand to send keeps the
//! donation until it takes its next call.
//!
//! A reply that never comes: dropping a [`Reply`] unsent (a server that
//! panics drops it while unwinding) fails the call with
//! [`CallError::NoReply`]; [`Endpoint::call_timeout`] bounds the wait.

use crate::budget::ContextCell;
use crate::context;
use crate::sync::channel::{self, Receiver, RecvError, Sender};
use std::sync::Arc;
use std::time::Duration;

/// Why a call produced no reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallError {
    /// The server dropped the call's [`Reply`] without sending one.
    NoReply,
    /// [`Endpoint::call_timeout`] ran out of time.
    TimedOut,
    /// The calling strand's group was cancelled.
    Cancelled,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CallError::NoReply => "the server dropped the call without replying",
            CallError::TimedOut => "timed out waiting for the reply",
            CallError::Cancelled => "the calling strand's group was cancelled",
        })
    }
}

impl std::error::Error for CallError {}

struct Call<Q, R> {
    request: Q,
    reply: Sender<R>,
    /// The context the caller ran on: what the server runs on meanwhile.
    context: Option<Arc<ContextCell>>,
}

/// A call endpoint (see the module docs). Clone it for more callers and
/// servers: each call goes to one server.
pub struct Endpoint<Q, R> {
    calls: Sender<Call<Q, R>>,
    serve: Receiver<Call<Q, R>>,
}

impl<Q, R> Clone for Endpoint<Q, R> {
    fn clone(&self) -> Self {
        Endpoint {
            calls: self.calls.clone(),
            serve: self.serve.clone(),
        }
    }
}

impl<Q, R> Default for Endpoint<Q, R> {
    fn default() -> Self {
        Endpoint::new()
    }
}

impl<Q, R> std::fmt::Debug for Endpoint<Q, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("queued", &self.serve.len())
            .finish()
    }
}

impl<Q, R> Endpoint<Q, R> {
    /// An endpoint with no calls queued.
    pub fn new() -> Endpoint<Q, R> {
        let (calls, serve) = channel::unbounded();
        Endpoint { calls, serve }
    }

    /// Sends `request` to a server and waits for its reply. The server runs
    /// on the calling strand's context meanwhile. From a thread outside the
    /// runtime the server runs on its own context.
    pub fn call(&self, request: Q) -> Result<R, CallError> {
        self.call_inner(request, None)
    }

    /// [`call`](Self::call), waiting at most `timeout` for the reply.
    pub fn call_timeout(&self, request: Q, timeout: Duration) -> Result<R, CallError> {
        self.call_inner(request, Some(timeout))
    }

    fn call_inner(&self, request: Q, timeout: Option<Duration>) -> Result<R, CallError> {
        let context = context::current_header().and_then(|me| me.context().cloned());
        let (reply, answer) = channel::bounded(1);
        let call = Call {
            request,
            reply,
            context,
        };
        // The endpoint holds a receiver itself: the send cannot find none.
        if self.calls.send(call).is_err() {
            return Err(CallError::Cancelled);
        }
        let got = match timeout {
            None => answer.recv(),
            Some(t) => answer.recv_timeout(t),
        };
        got.map_err(|e| match e {
            RecvError::Disconnected => CallError::NoReply,
            RecvError::Timeout => CallError::TimedOut,
            RecvError::Cancelled => CallError::Cancelled,
        })
    }

    /// Takes the next call, waiting for one; from then until the reply the
    /// calling strand runs on the caller's context. Fails only when the
    /// strand's group is cancelled.
    /// Calls whose caller gave up waiting (timed out, cancelled) are
    /// skipped.
    pub fn recv(&self) -> Result<(Q, Reply<R>), RecvError> {
        loop {
            let call = self.serve.recv()?;
            if !call.reply.is_disconnected() {
                return Ok((call.request, Reply::take(call.reply, call.context)));
            }
        }
    }

    /// [`recv`](Self::recv), waiting at most `timeout` in all.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<(Q, Reply<R>), RecvError> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let call = self.serve.recv_timeout(left)?;
            if !call.reply.is_disconnected() {
                return Ok((call.request, Reply::take(call.reply, call.context)));
            }
        }
    }
}

/// The answer a server owes one call. Dropping it unsent fails the call with
/// [`CallError::NoReply`].
#[must_use = "a call waits until its reply is sent or dropped"]
pub struct Reply<R> {
    reply: Option<Sender<R>>,
    /// The serving strand (0: a thread outside the runtime).
    server: u64,
}

impl<R> std::fmt::Debug for Reply<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reply")
            .field("server", &self.server)
            .finish()
    }
}

impl<R> Reply<R> {
    /// The calling strand takes a call made on `context`: it runs on it.
    fn take(reply: Sender<R>, context: Option<Arc<ContextCell>>) -> Reply<R> {
        let server = switch_to(context);
        Reply {
            reply: Some(reply),
            server,
        }
    }

    /// Sends the reply; the server goes back to its own context.
    pub fn send(mut self, value: R) {
        if let Some(reply) = self.reply.take() {
            // The caller may have given up (timed out, cancelled).
            let _ = reply.send(value);
        }
    }
}

impl<R> Drop for Reply<R> {
    fn drop(&mut self) {
        // Unsent: dropping the sender tells the caller there is no reply.
        drop(self.reply.take());
        let me = context::current_header();
        if self.server != 0 && me.as_ref().map(|h| h.id) == Some(self.server) {
            switch_to(None);
        }
    }
}

/// Makes the calling strand run on `context` (`None`: its own again);
/// returns its id (0 outside a strand, where nothing changes). A change is
/// a switch point, so each run is charged to one context.
fn switch_to(context: Option<Arc<ContextCell>>) -> u64 {
    let Some(me) = context::current_header() else {
        return 0;
    };
    // SAFETY: `me` is the calling strand's own header, and it is running;
    // a change is followed by a yield before anything can change it again.
    if unsafe { me.set_donated(context) } {
        crate::api::yield_strand();
    }
    me.id
}
