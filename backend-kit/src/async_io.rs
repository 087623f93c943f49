//! Timers and signals on async-io's reactor: [`Sleep`] (an [`async_io::Timer`], the timer
//! behind smol and async-std alike) and [`Signals`] ([`async_signal`], which works on any
//! executor).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_core::Stream;
use ginkgo_api::runtime::{RawSignals, RawSleep};
use ginkgo_api::signal::Signal;

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
