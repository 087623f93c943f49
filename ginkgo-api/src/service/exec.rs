//! The runtime, erased once per tree, so services never name it.
//!
//! Lifecycle operations are not hot paths: a boxed future per owned task or timer is cheap
//! next to the task itself, and it keeps `Service` object-safe and runtime-free.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::runtime::Runtime;
use crate::task::{JoinError, JoinHandle};

pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// What the service layer needs from a runtime.
pub(crate) trait Exec: Send + Sync + 'static {
    fn spawn(&self, future: BoxFuture<()>) -> TaskHandle;
    fn spawn_blocking(&self, f: Box<dyn FnOnce() + Send>) -> TaskHandle;
    fn sleep(&self, duration: Duration) -> BoxFuture<()>;
}

pub(crate) struct RuntimeExec<R>(PhantomData<fn() -> R>);

impl<R> RuntimeExec<R> {
    pub(crate) fn new() -> Self {
        Self(PhantomData)
    }
}

impl<R: Runtime> Exec for RuntimeExec<R> {
    fn spawn(&self, future: BoxFuture<()>) -> TaskHandle {
        TaskHandle(Box::new(crate::task::spawn::<R, _>(future)))
    }

    fn spawn_blocking(&self, f: Box<dyn FnOnce() + Send>) -> TaskHandle {
        TaskHandle(Box::new(crate::task::spawn_blocking::<R, _, _>(f)))
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<()> {
        Box::pin(crate::time::sleep::<R>(duration))
    }
}

trait ErasedJoin: Send {
    fn poll_join(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), JoinError>>;
    fn abort(&self);
    fn is_finished(&self) -> bool;
}

impl<R: Runtime> ErasedJoin for JoinHandle<(), R> {
    fn poll_join(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), JoinError>> {
        Pin::new(self).poll(cx)
    }

    fn abort(&self) {
        JoinHandle::abort(self);
    }

    fn is_finished(&self) -> bool {
        JoinHandle::is_finished(self)
    }
}

/// A task handle with the runtime erased.
pub(crate) struct TaskHandle(Box<dyn ErasedJoin>);

impl TaskHandle {
    pub(crate) fn abort(&self) {
        self.0.abort();
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.0.is_finished()
    }

    /// The error of a task the backend could not start (it is finished at once, never having
    /// run); `None` for a task that started.
    pub(crate) fn start_error(&mut self) -> Option<JoinError> {
        if !self.is_finished() {
            return None;
        }
        match self
            .0
            .poll_join(&mut Context::from_waker(std::task::Waker::noop()))
        {
            Poll::Ready(Err(err)) if err.is_not_started() => Some(err),
            _ => None,
        }
    }
}

impl Future for TaskHandle {
    type Output = Result<(), JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.poll_join(cx)
    }
}

/// Runs `future` for at most `limit`: `None` if the time ran out (the future is dropped).
pub(crate) async fn within<T>(
    exec: &dyn Exec,
    limit: Duration,
    future: impl Future<Output = T>,
) -> Option<T> {
    futures_lite::future::or(async { Some(future.await) }, async {
        exec.sleep(limit).await;
        None
    })
    .await
}
