//! The timer one HTTP/1 connection gives hyper: one real timer per connection, re-armed lazily.
//!
//! hyper arms a header read timeout for every request head on a keep-alive connection and
//! drops it as soon as the head has arrived. With a plain timer that is a registration in the
//! runtime's timer wheel and a removal for every request. Here every request's sleep shares
//! the connection's one timer: it stays armed at an earlier request's deadline, and only when
//! that fires (at most once per timeout period) is it moved to the current deadline.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use ginkgo_api::Runtime;
use ginkgo_api::time::Sleep;

use crate::rt::Timer;

/// The connection's one real timer, armed or not yet created.
type Shared<R> = Arc<Mutex<Option<Pin<Box<Sleep<R>>>>>>;

/// hyper's timer for the sleeps of one connection task; see the module docs.
pub(crate) struct ConnTimer<R: Runtime> {
    armed: Shared<R>,
}

impl<R: Runtime> ConnTimer<R> {
    pub(crate) fn new() -> Self {
        Self {
            armed: Arc::new(Mutex::new(None)),
        }
    }
}

impl<R: Runtime> hyper::rt::Timer for ConnTimer<R> {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        match Instant::now().checked_add(duration) {
            Some(deadline) => self.sleep_until(deadline),
            // Beyond what `Instant` can hold: the runtime's own sleep handles "forever".
            None => Timer::<R>::new().sleep(duration),
        }
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(LazySleep {
            deadline,
            armed: self.armed.clone(),
        })
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn hyper::rt::Sleep>>, new_deadline: Instant) {
        match sleep.as_mut().downcast_mut_pin::<LazySleep<R>>() {
            Some(ours) => ours.get_mut().deadline = new_deadline,
            None => *sleep = self.sleep_until(new_deadline),
        }
    }
}

/// One of hyper's sleeps on a connection: a deadline, and the connection's shared timer.
struct LazySleep<R: Runtime> {
    deadline: Instant,
    armed: Shared<R>,
}

impl<R: Runtime> Future for LazySleep<R> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let deadline = self.deadline;
        // Only the connection's task polls these sleeps, so the lock is never contended.
        let mut armed = self.armed.lock().unwrap_or_else(PoisonError::into_inner);
        let sleep =
            armed.get_or_insert_with(|| Box::pin(ginkgo_api::time::sleep_until::<R>(deadline)));
        if sleep.deadline() > deadline {
            sleep.as_mut().reset(deadline);
        }
        // No clock reading here: the real timer fires at or before this deadline.
        loop {
            match sleep.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(()) if sleep.deadline() >= deadline => return Poll::Ready(()),
                // It fired for an earlier request's deadline: move it to this one's.
                Poll::Ready(()) => sleep.as_mut().reset(deadline),
            }
        }
    }
}

impl<R: Runtime> hyper::rt::Sleep for LazySleep<R> {}
