//! The threads backend's timer: a deadline in the waiting thread's own poller, or an
//! [`async_io::Timer`] on a thread that has none.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use ginkgo_api::runtime::RawSleep;

use crate::poller;

/// A timer that completes at its deadline, never earlier.
///
/// Inside a threads-backend task (or `Threads::block_on`) it is a deadline in the thread's own
/// poller, which bounds the thread's `poll(2)`; elsewhere (polled by another executor) it falls
/// back to an [`async_io::Timer`].
#[derive(Debug)]
pub struct Sleep {
    deadline: Instant,
    /// The process-wide id of this timer in pollers, allocated on first registration.
    id: Option<u64>,
    /// The deadline it was last registered under in a poller, with its id.
    registered: Option<(Instant, u64)>,
    /// The fallback when polled on a thread without a poller.
    fallback: Option<async_io::Timer>,
}

impl Sleep {
    /// A timer that fires at `deadline` (at once if it has passed).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use ginkgo_backend_threads::{Sleep, Threads};
    ///
    /// let deadline = Instant::now() + Duration::from_millis(5);
    /// ginkgo_api::block_on::<Threads, _>(Sleep::until(deadline));
    /// assert!(Instant::now() >= deadline);
    /// ```
    pub fn until(deadline: Instant) -> Self {
        Self {
            deadline,
            id: None,
            registered: None,
            fallback: None,
        }
    }

    fn deregister(&mut self) {
        if let Some(key) = self.registered.take() {
            poller::with_current(|poller| poller.deregister_timer(key));
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        if Instant::now() >= this.deadline {
            this.deregister();
            return Poll::Ready(());
        }
        let id = *this.id.get_or_insert_with(poller::next_timer_id);
        let deadline = this.deadline;
        let previous = this.registered;
        let local = poller::with_current(|poller| {
            poller.register_timer(previous, deadline, id, cx.waker());
        });
        if local.is_some() {
            this.registered = Some((deadline, id));
            return Poll::Pending;
        }
        let timer = this
            .fallback
            .get_or_insert_with(|| async_io::Timer::at(deadline));
        Pin::new(timer).poll(cx).map(drop)
    }
}

impl RawSleep for Sleep {
    fn reset(mut self: Pin<&mut Self>, deadline: Instant) {
        let this = &mut *self;
        this.deadline = deadline;
        if let Some(previous) = this.registered {
            // Keep the registered waker, as a reset timer must wake its task at the new deadline
            // even before it is polled again. Only this thread's poller can be reached; a timer
            // registered elsewhere wakes there at the old deadline, spuriously at worst.
            if poller::with_current(|poller| poller.move_timer(previous, deadline)) == Some(true) {
                this.registered = Some((deadline, previous.1));
            }
        }
        if let Some(timer) = &mut this.fallback {
            timer.set_at(deadline);
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.deregister();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn sleeps_never_early_with_and_without_a_poller() {
        let wanted = Duration::from_millis(15);
        let start = Instant::now();
        crate::poller::block_on(Sleep::until(start + wanted));
        assert!(start.elapsed() >= wanted);
        let start = Instant::now();
        async_io::block_on(Sleep::until(start + wanted));
        assert!(start.elapsed() >= wanted);
    }

    #[test]
    fn reset_earlier_wakes_without_another_poll() {
        // Polled once (registered for an hour away), then reset to soon from a waker-less
        // context: the registered waker must fire at the new deadline.
        let start = Instant::now();
        let wanted = Duration::from_millis(10);
        crate::poller::block_on(async {
            let mut sleep = Box::pin(Sleep::until(start + Duration::from_secs(3600)));
            let mut reset = false;
            std::future::poll_fn(|cx| {
                if sleep.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(());
                }
                if !reset {
                    reset = true;
                    sleep.as_mut().reset(start + wanted);
                }
                Poll::Pending
            })
            .await;
        });
        let took = start.elapsed();
        assert!(took >= wanted && took < Duration::from_secs(60), "{took:?}");
    }
}
