//! Timers, sockets and signals on the portable async-io reactor, shared by the ginkgo-rs
//! backends that have no reactor of their own to prefer.
//!
//! - [`Sleep`]: an [`async_io::Timer`] (the timer behind smol and async-std alike).
//! - [`Signals`]: [`async_signal`], which works on any executor.
//! - [`net`]: sockets, used by the smol backend: async-io listeners, async-net datagram
//!   sockets, and [`stream::Stream`] for connected streams. On Linux a `Stream` is registered
//!   once, edge-triggered, with an epoll instance of ours, so a request/response exchange
//!   costs no `epoll_ctl` to re-arm the socket and no read that fails with `EWOULDBLOCK`.
//! - [`block_on`]: for an executor's worker threads, which then wait in that epoll instance
//!   themselves (the smol backend's do). While no thread does, the epoll instance is one
//!   async-io source.
//!
//! async-io's reactor runs in the thread that blocks in [`async_io::block_on`], or in
//! async-io's own driver thread when no thread is blocking, so every wait here can be timed
//! out and cancelled on any executor, including plain OS threads.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_core::Stream;
use ginkgo_api::runtime::{RawSignals, RawSleep};
use ginkgo_api::signal::Signal;

pub mod net;
mod reactor;
pub mod stream;
#[cfg(test)]
mod test_support;

/// Runs `future` to completion on this thread, as [`async_io::block_on`] does, but waits in
/// the stream reactor instead of async-io's: for a thread that runs an executor's tasks, such
/// as the smol backend's workers.
///
/// While the future waits, one of the threads in `block_on` blocks in the epoll instance of
/// [`stream::Stream`]s (on Linux) and wakes their tasks itself, with no system call besides
/// the wait; the others sleep until they are woken. async-io's reactor (timers, listeners,
/// datagram sockets, signals) is then driven by the threads in [`async_io::block_on`], or by
/// async-io's own thread. Where streams use async-io's reactor (not Linux), this is
/// [`async_io::block_on`].
///
/// While any thread is in `block_on`, stream events wait for one of them to be idle (or
/// between two polls of its future), so it suits threads that run many short tasks, as an
/// executor's workers do. When the last one returns, async-io takes the stream events again.
///
/// # Examples
///
/// ```
/// let answer = ginkgo_backend_async_io::block_on(async { 6 * 7 });
/// assert_eq!(answer, 42);
/// ```
pub fn block_on<T>(future: impl Future<Output = T>) -> T {
    reactor::block_on(future)
}

/// A timer on the async-io reactor.
#[derive(Debug)]
pub struct Sleep(async_io::Timer);

impl Sleep {
    /// A timer that fires at `deadline`.
    pub fn until(deadline: Instant) -> Self {
        Self(async_io::Timer::at(deadline))
    }
}

impl Future for Sleep {
    type Output = ();

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx).map(drop)
    }
}

impl RawSleep for Sleep {
    fn reset(mut self: Pin<&mut Self>, deadline: Instant) {
        self.0.set_at(deadline);
    }
}

/// Unix signals through async-signal (a self-pipe registered with the reactor).
pub struct Signals(async_signal::Signals);

fn to_async_signal(signal: Signal) -> async_signal::Signal {
    match signal {
        Signal::Term => async_signal::Signal::Term,
        Signal::Int => async_signal::Signal::Int,
        Signal::Hup => async_signal::Signal::Hup,
        Signal::Usr1 => async_signal::Signal::Usr1,
        Signal::Usr2 => async_signal::Signal::Usr2,
        Signal::Quit => async_signal::Signal::Quit,
        // `Signal` is non-exhaustive for users, not for this crate: a new variant must be mapped.
        #[allow(unreachable_patterns)] // Why: guards against a future variant.
        other => unreachable!("unmapped signal {other}"),
    }
}

fn from_async_signal(signal: async_signal::Signal) -> Option<Signal> {
    Some(match signal {
        async_signal::Signal::Term => Signal::Term,
        async_signal::Signal::Int => Signal::Int,
        async_signal::Signal::Hup => Signal::Hup,
        async_signal::Signal::Usr1 => Signal::Usr1,
        async_signal::Signal::Usr2 => Signal::Usr2,
        async_signal::Signal::Quit => Signal::Quit,
        _ => return None,
    })
}

impl RawSignals for Signals {
    fn new(signals: &[Signal]) -> io::Result<Self> {
        async_signal::Signals::new(signals.iter().copied().map(to_async_signal)).map(Self)
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Signal>> {
        loop {
            return match Pin::new(&mut self.0).poll_next(cx) {
                Poll::Ready(Some(Ok(signal))) => match from_async_signal(signal) {
                    Some(signal) => Poll::Ready(Some(signal)),
                    None => continue,
                },
                // The self-pipe failed: nothing more can be delivered.
                Poll::Ready(Some(Err(_))) | Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            };
        }
    }
}
