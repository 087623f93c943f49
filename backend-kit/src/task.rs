//! Tasks for runtimes without a cancellable handle of their own (plain threads): [`task`]
//! wraps a future so that it catches panics and can be aborted through an [`AbortFlag`];
//! [`blocking`] does the same for a blocking closure.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use atomic_waker::AtomicWaker;
use pin_project_lite::pin_project;

use ginkgo_api::runtime::RawAbortHandle;
use ginkgo_api::task::JoinError;

#[derive(Default)]
struct FlagState {
    aborted: AtomicBool,
    finished: AtomicBool,
    waker: AtomicWaker,
}

/// Shared between a wrapped task and its handles: the abort request and the finished mark.
#[derive(Clone, Default)]
pub struct AbortFlag {
    state: Arc<FlagState>,
}

impl AbortFlag {
    fn is_aborted(&self) -> bool {
        self.state.aborted.load(Ordering::Acquire)
    }
}

impl RawAbortHandle for AbortFlag {
    fn abort(&self) {
        self.state.aborted.store(true, Ordering::Release);
        // Wake the task so it is polled, sees the flag and finishes.
        self.state.waker.wake();
    }

    fn is_finished(&self) -> bool {
        self.state.finished.load(Ordering::Acquire)
    }
}

/// Marks the task finished when dropped, which happens after the wrapped future is dropped
/// (fields drop in declaration order).
struct FinishGuard(AbortFlag);

impl Drop for FinishGuard {
    fn drop(&mut self) {
        self.0.state.finished.store(true, Ordering::Release);
    }
}

pin_project! {
    /// A task's future wrapped to catch panics and honour aborts. Created by [`task`].
    pub struct TaskFuture<F> {
        #[pin]
        future: F,
        guard: FinishGuard,
    }
}

/// Wraps `future` for spawning; returns the wrapper and the flag its handles use.
pub fn task<F: Future>(future: F) -> (TaskFuture<F>, AbortFlag) {
    let flag = AbortFlag::default();
    let guard = FinishGuard(flag.clone());
    (TaskFuture { future, guard }, flag)
}

impl<F: Future> Future for TaskFuture<F> {
    type Output = Result<F::Output, JoinError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let flag = &this.guard.0;
        if flag.is_aborted() {
            return Poll::Ready(Err(JoinError::cancelled()));
        }
        let future = this.future;
        match catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
            Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
            Ok(Poll::Pending) => {
                flag.state.waker.register(cx.waker());
                // An abort between the first check and the registration must not be lost.
                if flag.is_aborted() {
                    Poll::Ready(Err(JoinError::cancelled()))
                } else {
                    Poll::Pending
                }
            }
            Err(payload) => Poll::Ready(Err(JoinError::panicked(payload))),
        }
    }
}

/// Wraps a blocking closure: it is skipped if aborted before it starts, and its panic is caught.
pub fn blocking<F, T>(
    f: F,
) -> (
    impl FnOnce() -> Result<T, JoinError> + Send + 'static,
    AbortFlag,
)
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let flag = AbortFlag::default();
    let guard = FinishGuard(flag.clone());
    let call = move || {
        let guard = guard;
        if guard.0.is_aborted() {
            return Err(JoinError::cancelled());
        }
        catch_unwind(AssertUnwindSafe(f)).map_err(JoinError::panicked)
    };
    (call, flag)
}
