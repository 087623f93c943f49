//! [`NativeHandle`]: the ginkgo task contract on top of a runtime's own cancellable task
//! handle (async-task's `Task`, async-std's `JoinHandle`), with no allocation and no atomic
//! operation per task beyond what the runtime does itself.
//!
//! - A running task's handle is the native handle plus a tag and an uncontended lock (24
//!   bytes on smol). The rarer states are boxed: a blocking call, an abort in progress, and a
//!   task awaited while still running on a runtime that cannot tell completion without
//!   polling (async-std), whose handle must then keep the owner's waker.
//! - Polling polls the native handle; a panic it propagates becomes a panicked
//!   [`JoinError`].
//! - `abort()` starts the native cancellation in a small detached task and makes the handle
//!   wait for it, so the handle completes once the task's future has really been dropped.
//! - The shared state a cloneable abort handle needs is only allocated when
//!   [`RawJoinHandle::abort_handle`] is called.
//! - Dropping the handle detaches the task.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use futures_core::Stream;

use ginkgo_api::runtime::{RawAbortHandle, RawJoinHandle};
use ginkgo_api::task::JoinError;

/// A runtime whose own task handles can be cancelled and detached (async-task's `Task`,
/// async-std's `JoinHandle`), as [`NativeHandle`] needs it.
pub trait NativeRuntime: Send + Sync + Sized + 'static {
    /// The runtime's handle to a task returning `T`.
    type Task<T: Send + 'static>: Future<Output = T> + Send + Unpin + 'static;

    /// Cancels `task`: completes once its future has been dropped, with the output if the
    /// task had finished first.
    fn cancel<T: Send + 'static>(
        task: Self::Task<T>,
    ) -> impl Future<Output = Option<T>> + Send + 'static;

    /// Lets `task` run on with nobody observing it.
    fn detach<T: Send + 'static>(task: Self::Task<T>);

    /// Runs `future` as a detached task.
    fn spawn_detached(future: impl Future<Output = ()> + Send + 'static);

    /// Whether `task` has finished, if the runtime can tell without polling it. Returning
    /// `None` (the default) makes [`NativeHandle`] find out by polling with the owner's last
    /// waker, which it must then keep.
    fn is_finished<T: Send + 'static>(task: &Self::Task<T>) -> Option<bool> {
        let _ = task;
        None
    }
}

/// A task or a blocking call on a [`NativeRuntime`].
pub enum NativeTask<N: NativeRuntime, T: Send + 'static> {
    /// A spawned future: aborting cancels it.
    Spawned(N::Task<T>),
    /// A blocking closure wrapped by [`crate::task::blocking`]: aborting stops it from starting,
    /// but one already running completes and gives its value.
    Blocking(N::Task<Result<T, JoinError>>, crate::task::AbortFlag),
}

impl<N: NativeRuntime, T: Send + 'static> NativeTask<N, T> {
    fn native_is_finished(&self) -> Option<bool> {
        match self {
            NativeTask::Spawned(task) => N::is_finished(task),
            NativeTask::Blocking(task, _) => N::is_finished(task),
        }
    }

    #[inline]
    fn poll_result(&mut self, cx: &mut Context<'_>) -> Poll<Result<T, JoinError>> {
        match self {
            NativeTask::Spawned(task) => Pin::new(task).poll(cx).map(Ok),
            NativeTask::Blocking(task, _) => Pin::new(task).poll(cx),
        }
    }

    fn detach(self) {
        match self {
            NativeTask::Spawned(task) => N::detach(task),
            NativeTask::Blocking(task, _) => N::detach(task),
        }
    }
}

/// What a [`NativeHandle`] holds. The common case, a spawned task that its owner awaits, is
/// the native handle alone, so the handle stays small; everything else is boxed.
enum Slot<N: NativeRuntime, T: Send + 'static> {
    /// A spawned task.
    Running(N::Task<T>),
    /// A blocking call, or a task on a runtime that cannot tell whether it finished.
    Watched(Box<Watched<N, T>>),
    /// Aborted: waiting for the task's future to be dropped.
    Cancelling(Box<Cancelling<T>>),
    /// Finished; the result waits here if `is_finished` saw it before the owner polled.
    Finished(Option<Box<Result<T, JoinError>>>),
    /// The state moved to the slot shared with abort handles.
    Shared(Arc<Shared<N, T>>),
    /// Transient, while the state is being moved.
    Moved,
}

/// A task that needs more than its native handle.
struct Watched<N: NativeRuntime, T: Send + 'static> {
    task: NativeTask<N, T>,
    /// The owner's last waker, kept only for `is_finished` on runtimes that cannot tell
    /// otherwise: polling with it does not steal the owner's wake-up.
    waker: Option<Waker>,
}

struct Cancelling<T> {
    // Pinned in its own box: the receiver need not be `Unpin`.
    result: Pin<Box<async_channel::Receiver<Option<T>>>>,
    waker: Option<Waker>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // No user code runs under these locks.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<N: NativeRuntime, T: Send + 'static> Slot<N, T> {
    #[inline]
    fn poll(&mut self, waker: &Waker) -> Poll<Result<T, JoinError>> {
        let mut cx = Context::from_waker(waker);
        match self {
            Slot::Running(task) => {
                match catch_unwind(AssertUnwindSafe(|| Pin::new(&mut *task).poll(&mut cx))) {
                    Ok(Poll::Pending) => {
                        if N::is_finished(task).is_none() {
                            self.watch(waker);
                        }
                        Poll::Pending
                    }
                    Ok(Poll::Ready(value)) => {
                        *self = Slot::Finished(None);
                        Poll::Ready(Ok(value))
                    }
                    Err(payload) => {
                        *self = Slot::Finished(None);
                        Poll::Ready(Err(JoinError::panicked(payload)))
                    }
                }
            }
            Slot::Watched(watched) => {
                match catch_unwind(AssertUnwindSafe(|| watched.task.poll_result(&mut cx))) {
                    Ok(Poll::Pending) => {
                        if watched.task.native_is_finished().is_none() {
                            remember(&mut watched.waker, waker);
                        }
                        Poll::Pending
                    }
                    Ok(Poll::Ready(result)) => {
                        *self = Slot::Finished(None);
                        Poll::Ready(result)
                    }
                    Err(payload) => {
                        *self = Slot::Finished(None);
                        Poll::Ready(Err(JoinError::panicked(payload)))
                    }
                }
            }
            Slot::Cancelling(cancelling) => match cancelling.result.as_mut().poll_next(&mut cx) {
                Poll::Pending => {
                    remember(&mut cancelling.waker, waker);
                    Poll::Pending
                }
                Poll::Ready(outcome) => {
                    *self = Slot::Finished(None);
                    // `Some(Some(v))`: it finished before the cancellation took effect.
                    Poll::Ready(outcome.flatten().ok_or_else(JoinError::cancelled))
                }
            },
            Slot::Finished(result) => match result.take() {
                Some(result) => Poll::Ready(*result),
                None => Poll::Pending, // polled again after completion
            },
            Slot::Shared(shared) => lock(&shared.slot).poll(waker),
            Slot::Moved => Poll::Pending,
        }
    }

    /// Moves a running task to `Watched`, keeping `waker`.
    #[cold]
    fn watch(&mut self, waker: &Waker) {
        match std::mem::replace(self, Slot::Moved) {
            Slot::Running(task) => {
                *self = Slot::Watched(Box::new(Watched {
                    task: NativeTask::Spawned(task),
                    waker: Some(waker.clone()),
                }));
            }
            other => *self = other,
        }
    }

    /// Whether the task is done, without losing its result or the owner's wake-up: asks the
    /// runtime, or polls with the waker the owner last registered.
    fn is_finished(&mut self) -> bool {
        let waker = match self {
            Slot::Running(task) => match N::is_finished(task) {
                Some(finished) => return finished,
                // Never polled by its owner, so there is no wake-up to lose.
                None => None,
            },
            Slot::Watched(watched) => match watched.task.native_is_finished() {
                Some(finished) => return finished,
                None => watched.waker.clone(),
            },
            Slot::Cancelling(cancelling) => cancelling.waker.clone(),
            Slot::Finished(_) => return true,
            Slot::Shared(shared) => return lock(&shared.slot).is_finished(),
            Slot::Moved => return false,
        };
        let waker = waker.unwrap_or_else(|| Waker::noop().clone());
        match self.poll(&waker) {
            Poll::Ready(result) => {
                *self = Slot::Finished(Some(Box::new(result)));
                true
            }
            Poll::Pending => false,
        }
    }

    fn abort(&mut self) {
        match self {
            Slot::Shared(shared) => return lock(&shared.slot).abort(),
            Slot::Watched(watched) => {
                if let NativeTask::Blocking(_, flag) = &watched.task {
                    // A blocking call cannot be interrupted, only kept from starting.
                    flag.abort();
                    return;
                }
            }
            Slot::Running(_) => {}
            Slot::Cancelling(_) | Slot::Finished(_) | Slot::Moved => return,
        }
        let (task, waker) = match std::mem::replace(self, Slot::Moved) {
            Slot::Running(task) => (task, None),
            Slot::Watched(watched) => match *watched {
                Watched {
                    task: NativeTask::Spawned(task),
                    waker,
                } => (task, waker),
                blocking => {
                    *self = Slot::Watched(Box::new(blocking));
                    return;
                }
            },
            other => {
                *self = other;
                return;
            }
        };
        let (tx, rx) = async_channel::bounded(1);
        N::spawn_detached(async move {
            let outcome = N::cancel(task).await;
            let _ = tx.try_send(outcome);
        });
        // The owner waited on the task; wake it so it waits on the cancellation instead.
        // (Runtimes that tell completion themselves wake it when the task is cancelled.)
        if let Some(waker) = &waker {
            waker.wake_by_ref();
        }
        *self = Slot::Cancelling(Box::new(Cancelling {
            result: Box::pin(rx),
            waker,
        }));
    }

    fn detach(&mut self) {
        if matches!(self, Slot::Running(_) | Slot::Watched(_)) {
            match std::mem::replace(self, Slot::Moved) {
                Slot::Running(task) => N::detach(task),
                Slot::Watched(watched) => watched.task.detach(),
                _ => {}
            }
        }
    }
}

fn remember(saved: &mut Option<Waker>, waker: &Waker) {
    if !saved.as_ref().is_some_and(|s| s.will_wake(waker)) {
        *saved = Some(waker.clone());
    }
}

/// The slot shared with abort handles once one was asked for.
struct Shared<N: NativeRuntime, T: Send + 'static> {
    slot: Mutex<Slot<N, T>>,
}

impl<N: NativeRuntime, T: Send + 'static> Drop for Shared<N, T> {
    fn drop(&mut self) {
        lock(&self.slot).detach();
    }
}

trait ErasedAbort: Send + Sync {
    fn abort(&self);
    fn is_finished(&self) -> bool;
}

impl<N: NativeRuntime, T: Send + 'static> ErasedAbort for Shared<N, T> {
    fn abort(&self) {
        lock(&self.slot).abort();
    }

    fn is_finished(&self) -> bool {
        lock(&self.slot).is_finished()
    }
}

/// A task handle with ginkgo's semantics over a native one; see the module docs.
pub struct NativeHandle<N: NativeRuntime, T: Send + 'static> {
    slot: Mutex<Slot<N, T>>,
}

impl<N: NativeRuntime, T: Send + 'static> NativeHandle<N, T> {
    /// Wraps a spawned future's native handle.
    pub fn spawned(task: N::Task<T>) -> Self {
        Self::new(Slot::Running(task))
    }

    /// Wraps the native handle of a blocking call made with [`crate::task::blocking`].
    pub fn blocking(task: N::Task<Result<T, JoinError>>, flag: crate::task::AbortFlag) -> Self {
        Self::new(Slot::Watched(Box::new(Watched {
            task: NativeTask::Blocking(task, flag),
            waker: None,
        })))
    }

    fn new(slot: Slot<N, T>) -> Self {
        Self {
            slot: Mutex::new(slot),
        }
    }
}

impl<N: NativeRuntime, T: Send + 'static> Future for NativeHandle<N, T> {
    type Output = Result<T, JoinError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Exclusive access: no lock taken unless an abort handle shares the state.
        self.get_mut()
            .slot
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .poll(cx.waker())
    }
}

impl<N: NativeRuntime, T: Send + 'static> Drop for NativeHandle<N, T> {
    fn drop(&mut self) {
        // A shared state is detached by the last of its holders instead.
        self.slot
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .detach();
    }
}

/// A cloneable abort handle for a [`NativeHandle`].
#[derive(Clone)]
pub struct NativeAbort(Arc<dyn ErasedAbort>);

impl RawAbortHandle for NativeAbort {
    fn abort(&self) {
        self.0.abort();
    }

    fn is_finished(&self) -> bool {
        self.0.is_finished()
    }
}

impl<N: NativeRuntime, T: Send + 'static> RawJoinHandle<T> for NativeHandle<N, T> {
    type AbortHandle = NativeAbort;

    fn abort(&self) {
        lock(&self.slot).abort();
    }

    fn is_finished(&self) -> bool {
        lock(&self.slot).is_finished()
    }

    fn abort_handle(&self) -> NativeAbort {
        let mut slot = lock(&self.slot);
        if let Slot::Shared(shared) = &*slot {
            return NativeAbort(shared.clone());
        }
        let state = std::mem::replace(&mut *slot, Slot::Moved);
        let shared = Arc::new(Shared {
            slot: Mutex::new(state),
        });
        *slot = Slot::Shared(shared.clone());
        NativeAbort(shared)
    }
}
