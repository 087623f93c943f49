//! Time: [`sleep`], [`sleep_until`], [`timeout`], [`interval`], the monotonic [`Instant`], and
//! the [`Backoff`] policy for retries.

mod backoff;

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

pub use backoff::{Backoff, Retries};
pub use std::time::Instant;

use pin_project_lite::pin_project;

use crate::runtime::{RawSleep, Runtime};

/// Waits until `duration` has passed. It never completes early.
///
/// # Examples
///
/// ```
/// # fn demo<R: ginkgo_api::Runtime>() {
/// use std::time::{Duration, Instant};
/// ginkgo_api::block_on::<R, _>(async {
///     let start = Instant::now();
///     ginkgo_api::time::sleep::<R>(Duration::from_millis(10)).await;
///     assert!(start.elapsed() >= Duration::from_millis(10));
/// });
/// # }
/// ```
pub fn sleep<R: Runtime>(duration: Duration) -> Sleep<R> {
    sleep_until(deadline_after(duration))
}

/// Waits until `deadline`; completes at once if it has passed.
pub fn sleep_until<R: Runtime>(deadline: Instant) -> Sleep<R> {
    Sleep {
        raw: R::sleep_until(deadline),
        deadline,
    }
}

/// A deadline `duration` from now, saturating far in the future instead of overflowing.
pub(crate) fn deadline_after(duration: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(duration)
        .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365 * 30))
}

pin_project! {
    /// The future returned by [`sleep`] and [`sleep_until`].
    #[must_use = "futures do nothing unless awaited"]
    pub struct Sleep<R: Runtime> {
        #[pin]
        raw: R::Sleep,
        deadline: Instant,
    }
}

impl<R: Runtime> Sleep<R> {
    /// The instant at which this timer completes.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Whether the deadline has passed.
    pub fn is_elapsed(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// Moves the deadline, reusing the timer.
    pub fn reset(self: Pin<&mut Self>, deadline: Instant) {
        let this = self.project();
        *this.deadline = deadline;
        this.raw.reset(deadline);
    }
}

impl<R: Runtime> Future for Sleep<R> {
    type Output = ();

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.project().raw.poll(cx)
    }
}

impl<R: Runtime> fmt::Debug for Sleep<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep")
            .field("deadline", &self.deadline)
            .finish()
    }
}

/// Runs `future` but gives up after `duration` with [`Elapsed`].
///
/// The future is polled before the timer, so a future that is ready at once always wins, even
/// with a zero duration. Giving up drops the future, which cancels it.
///
/// # Examples
///
/// ```
/// # fn demo<R: ginkgo_api::Runtime>() {
/// use std::time::Duration;
/// ginkgo_api::block_on::<R, _>(async {
///     let never = std::future::pending::<()>();
///     let result = ginkgo_api::time::timeout::<R, _>(Duration::from_millis(5), never).await;
///     assert!(result.is_err());
/// });
/// # }
/// ```
pub fn timeout<R: Runtime, F: Future>(duration: Duration, future: F) -> Timeout<R, F> {
    timeout_at(deadline_after(duration), future)
}

/// Like [`timeout`], with an absolute deadline.
pub fn timeout_at<R: Runtime, F: Future>(deadline: Instant, future: F) -> Timeout<R, F> {
    Timeout {
        future,
        sleep: sleep_until(deadline),
    }
}

pin_project! {
    /// The future returned by [`timeout`] and [`timeout_at`].
    #[must_use = "futures do nothing unless awaited"]
    pub struct Timeout<R: Runtime, F> {
        #[pin]
        future: F,
        #[pin]
        sleep: Sleep<R>,
    }
}

impl<R: Runtime, F: Future> Future for Timeout<R, F> {
    type Output = Result<F::Output, Elapsed>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(output) = this.future.poll(cx) {
            return Poll::Ready(Ok(output));
        }
        ready!(this.sleep.poll(cx));
        Poll::Ready(Err(Elapsed { _private: () }))
    }
}

impl<R: Runtime, F> fmt::Debug for Timeout<R, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout")
            .field("deadline", &self.sleep.deadline)
            .finish()
    }
}

/// The error of a [`timeout`] whose deadline passed first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed {
    _private: (),
}

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl std::error::Error for Elapsed {}

impl From<Elapsed> for std::io::Error {
    fn from(err: Elapsed) -> Self {
        std::io::Error::new(std::io::ErrorKind::TimedOut, err)
    }
}

/// A ticker that fires every `period`; the first tick completes at once.
///
/// When ticks are missed (the task was busy for longer than a period), the missed ticks are
/// skipped rather than fired in a burst: the next tick is the next multiple of `period` after
/// the start that lies in the future. A daemon's heartbeat wants exactly that.
///
/// # Panics
///
/// Panics if `period` is zero.
///
/// # Examples
///
/// ```
/// # fn demo<R: ginkgo_api::Runtime>() {
/// use std::time::Duration;
/// ginkgo_api::block_on::<R, _>(async {
///     let mut ticks = ginkgo_api::time::interval::<R>(Duration::from_millis(5));
///     ticks.tick().await; // at once
///     ticks.tick().await; // 5 ms later
/// });
/// # }
/// ```
pub fn interval<R: Runtime>(period: Duration) -> Interval<R> {
    interval_at(Instant::now(), period)
}

/// Like [`interval`], with the first tick at `start`.
///
/// # Panics
///
/// Panics if `period` is zero.
pub fn interval_at<R: Runtime>(start: Instant, period: Duration) -> Interval<R> {
    assert!(!period.is_zero(), "interval period must be non-zero");
    Interval {
        sleep: Box::pin(sleep_until(start)),
        period,
        _runtime: PhantomData,
    }
}

/// The ticker returned by [`interval`].
pub struct Interval<R: Runtime> {
    // Boxed once at creation so `tick` can take `&mut self` on a type that is `Unpin`.
    sleep: Pin<Box<Sleep<R>>>,
    period: Duration,
    _runtime: PhantomData<R>,
}

impl<R: Runtime> Interval<R> {
    /// Waits for the next tick and returns its scheduled instant.
    pub async fn tick(&mut self) -> Instant {
        std::future::poll_fn(|cx| self.poll_tick(cx)).await
    }

    /// Polls for the next tick; for use inside hand-written futures.
    pub fn poll_tick(&mut self, cx: &mut Context<'_>) -> Poll<Instant> {
        ready!(self.sleep.as_mut().poll(cx));
        let scheduled = self.sleep.deadline();
        let now = Instant::now();
        let mut next = scheduled + self.period;
        if next <= now {
            let behind = now.duration_since(scheduled).as_nanos();
            let periods = behind / self.period.as_nanos() + 1;
            next = scheduled + self.period * u32::try_from(periods).unwrap_or(u32::MAX);
        }
        self.sleep.as_mut().reset(next);
        Poll::Ready(scheduled)
    }

    /// The period between ticks.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// Restarts the schedule: the next tick is one period from now.
    pub fn reset(&mut self) {
        let next = Instant::now() + self.period;
        self.sleep.as_mut().reset(next);
    }
}

impl<R: Runtime> fmt::Debug for Interval<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Interval")
            .field("period", &self.period)
            .field("next", &self.sleep.deadline())
            .finish()
    }
}
