use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use ginkgo_api::Runtime;
use pin_project_lite::pin_project;

/// hyper's [`Timer`](hyper::rt::Timer) on the runtime `R`.
///
/// Give it to every hyper builder you set up yourself: hyper silently ignores the HTTP/1
/// header read timeout, and HTTP/2 keep-alive pings, when no timer is set. Resetting a timer
/// reuses it (no new allocation) when it is one of ours. ([`HttpServer`](crate::HttpServer)
/// gives it to HTTP/2 only: it keeps the HTTP/1 header read timeout itself, at less cost per
/// request.)
///
/// # Examples
///
/// ```
/// # fn demo<R: ginkgo_api::Runtime>() {
/// use std::time::Duration;
/// use ginkgo_http::rt::Timer;
///
/// let mut http1 = hyper::server::conn::http1::Builder::new();
/// http1.timer(Timer::<R>::new()).header_read_timeout(Duration::from_secs(10));
/// # }
/// ```
pub struct Timer<R>(PhantomData<fn() -> R>);

impl<R: Runtime> Timer<R> {
    /// The timer of runtime `R`.
    pub const fn new() -> Self {
        Self(PhantomData)
    }
}

impl<R: Runtime> hyper::rt::Timer for Timer<R> {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(Sleep {
            inner: ginkgo_api::time::sleep::<R>(duration),
        })
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(Sleep {
            inner: ginkgo_api::time::sleep_until::<R>(deadline),
        })
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn hyper::rt::Sleep>>, new_deadline: Instant) {
        match sleep.as_mut().downcast_mut_pin::<Sleep<R>>() {
            Some(ours) => ours.reset(new_deadline),
            None => *sleep = self.sleep_until(new_deadline),
        }
    }
}

impl<R: Runtime> Default for Timer<R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<R> Clone for Timer<R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<R> Copy for Timer<R> {}

impl<R: Runtime> fmt::Debug for Timer<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Timer").field(&R::NAME).finish()
    }
}

pin_project! {
    /// The timer future [`Timer`] gives hyper: a [`ginkgo_api::time::Sleep`] that implements
    /// [`hyper::rt::Sleep`].
    #[must_use = "futures do nothing unless awaited"]
    pub struct Sleep<R: Runtime> {
        #[pin]
        inner: ginkgo_api::time::Sleep<R>,
    }
}

impl<R: Runtime> Sleep<R> {
    /// The instant at which it completes.
    pub fn deadline(&self) -> Instant {
        self.inner.deadline()
    }

    /// Moves the deadline, reusing the timer.
    pub fn reset(self: Pin<&mut Self>, deadline: Instant) {
        self.project().inner.reset(deadline);
    }
}

impl<R: Runtime> Future for Sleep<R> {
    type Output = ();

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.project().inner.poll(cx)
    }
}

impl<R: Runtime> hyper::rt::Sleep for Sleep<R> {}

impl<R: Runtime> fmt::Debug for Sleep<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep")
            .field("deadline", &self.deadline())
            .finish()
    }
}
