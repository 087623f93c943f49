//! Tasks: [`spawn`], [`spawn_blocking`], [`JoinHandle`] and [`JoinError`].
//!
//! # Semantics (identical on every backend)
//!
//! - Dropping a [`JoinHandle`] **detaches** the task: it keeps running to completion.
//! - [`JoinHandle::abort`] **cancels** the task: the future is dropped at its next await point
//!   and awaiting the handle gives a [`JoinError`] for which [`JoinError::is_cancelled`] is true.
//! - A panic inside the task never unwinds into the caller: awaiting the handle gives a
//!   [`JoinError`] for which [`JoinError::is_panic`] is true, carrying the panic message.
//! - Awaiting a handle completes only once the task has really finished (its future has been
//!   dropped), so a supervisor can tell a task that stopped from one still stuck in blocking code.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll};

use crate::runtime::{RawAbortHandle, RawJoinHandle, Runtime};

/// Spawns a future onto the runtime `R` and returns a handle to await its output.
///
/// Must be called from within [`crate::block_on`] (or a task it spawned).
///
/// # Examples
///
/// ```
/// # fn demo<R: ginkgo_api::Runtime>() {
/// ginkgo_api::block_on::<R, _>(async {
///     let handle = ginkgo_api::spawn::<R, _>(async { 6 * 7 });
///     assert_eq!(handle.await.unwrap(), 42);
/// });
/// # }
/// ```
#[inline]
pub fn spawn<R, F>(future: F) -> JoinHandle<F::Output, R>
where
    R: Runtime,
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    JoinHandle {
        raw: R::spawn(future),
    }
}

/// Runs a blocking closure on a thread where blocking is allowed and returns a handle to its
/// result.
///
/// # Cancellation
///
/// [`JoinHandle::abort`] prevents the closure from running if it has not started yet; a closure
/// that is already running cannot be interrupted, and its handle completes when it returns.
///
/// # Examples
///
/// ```
/// # fn demo<R: ginkgo_api::Runtime>() {
/// ginkgo_api::block_on::<R, _>(async {
///     let len = ginkgo_api::spawn_blocking::<R, _, _>(|| std::fs::metadata(".").is_ok());
///     assert!(len.await.unwrap());
/// });
/// # }
/// ```
#[inline]
pub fn spawn_blocking<R, F, T>(f: F) -> JoinHandle<T, R>
where
    R: Runtime,
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    JoinHandle {
        raw: R::spawn_blocking(f),
    }
}

/// Starts the runtime `R`, runs `future` to completion on it and returns its output.
///
/// This is what a program's `main` calls. Tasks spawned inside may outlive it only as long as
/// the runtime does.
///
/// # Examples
///
/// ```
/// # fn demo<R: ginkgo_api::Runtime>() {
/// let answer = ginkgo_api::block_on::<R, _>(async { 42 });
/// assert_eq!(answer, 42);
/// # }
/// ```
#[inline]
pub fn block_on<R: Runtime, F: Future>(future: F) -> F::Output {
    R::block_on(future)
}

/// An owned permission to await a spawned task.
///
/// Dropping it detaches the task; see the [module docs](self) for the full contract.
#[must_use = "dropping a JoinHandle detaches the task; bind it to `_task` to make that explicit"]
pub struct JoinHandle<T: Send + 'static, R: Runtime> {
    raw: R::JoinHandle<T>,
}

impl<T: Send + 'static, R: Runtime> JoinHandle<T, R> {
    /// Cancels the task. It stops at its next await point; awaiting the handle then gives a
    /// cancelled [`JoinError`]. Aborting a finished task does nothing.
    #[inline]
    pub fn abort(&self) {
        self.raw.abort();
    }

    /// Returns `true` once the task has finished, whether it returned, panicked or was aborted.
    #[inline]
    pub fn is_finished(&self) -> bool {
        self.raw.is_finished()
    }

    /// Returns a cloneable handle that can abort the task without owning the [`JoinHandle`].
    #[inline]
    pub fn abort_handle(&self) -> AbortHandle<R> {
        AbortHandle {
            raw: self.raw.abort_handle(),
        }
    }
}

impl<T: Send + 'static, R: Runtime> Future for JoinHandle<T, R> {
    type Output = Result<T, JoinError>;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.raw).poll(cx)
    }
}

impl<T: Send + 'static, R: Runtime> fmt::Debug for JoinHandle<T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// A cloneable handle that cancels a task, obtained from [`JoinHandle::abort_handle`].
pub struct AbortHandle<R: Runtime> {
    raw: R::AbortHandle,
}

impl<R: Runtime> AbortHandle<R> {
    /// Cancels the task, exactly like [`JoinHandle::abort`].
    #[inline]
    pub fn abort(&self) {
        self.raw.abort();
    }

    /// Returns `true` once the task has finished.
    #[inline]
    pub fn is_finished(&self) -> bool {
        self.raw.is_finished()
    }
}

impl<R: Runtime> Clone for AbortHandle<R> {
    fn clone(&self) -> Self {
        Self {
            raw: self.raw.clone(),
        }
    }
}

impl<R: Runtime> fmt::Debug for AbortHandle<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AbortHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// Why a task did not return a value: it was cancelled, it panicked, or it could not be started
/// at all (the threads backend's thread spawn was refused).
pub struct JoinError {
    kind: Kind,
}

enum Kind {
    Cancelled,
    NotStarted(std::io::Error),
    // The message is taken out at construction so that it can be borrowed; the payload sits in a
    // mutex only to make `JoinError` `Sync` (it is never locked while shared).
    Panicked {
        message: Option<String>,
        payload: Mutex<Box<dyn Any + Send + 'static>>,
    },
}

impl JoinError {
    /// The error for a task that was aborted. Backends call this.
    pub fn cancelled() -> Self {
        Self {
            kind: Kind::Cancelled,
        }
    }

    /// The error for a task that panicked with `payload`. Backends call this.
    pub fn panicked(payload: Box<dyn Any + Send + 'static>) -> Self {
        Self {
            kind: Kind::Panicked {
                message: payload_message(payload.as_ref()).map(str::to_owned),
                payload: Mutex::new(payload),
            },
        }
    }

    /// The error for a task that never ran because the backend could not start it (the
    /// operating system refused a thread, say). Backends call this.
    pub fn not_started(error: std::io::Error) -> Self {
        Self {
            kind: Kind::NotStarted(error),
        }
    }

    /// Returns `true` if the task never ran because it could not be started; its error is the
    /// [`source`](std::error::Error::source).
    pub fn is_not_started(&self) -> bool {
        matches!(self.kind, Kind::NotStarted(_))
    }

    /// Returns `true` if the task was aborted.
    pub fn is_cancelled(&self) -> bool {
        matches!(self.kind, Kind::Cancelled)
    }

    /// Returns `true` if the task panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self.kind, Kind::Panicked { .. })
    }

    /// The panic message, when the task panicked with a string (as `panic!` does).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn demo<R: ginkgo_api::Runtime>() {
    /// ginkgo_api::block_on::<R, _>(async {
    ///     let err = ginkgo_api::spawn::<R, _>(async { panic!("boom") }).await.unwrap_err();
    ///     assert_eq!(err.panic_message(), Some("boom"));
    /// });
    /// # }
    /// ```
    pub fn panic_message(&self) -> Option<&str> {
        match &self.kind {
            Kind::Panicked { message, .. } => message.as_deref(),
            Kind::Cancelled | Kind::NotStarted(_) => None,
        }
    }

    /// Returns the panic payload, to resume unwinding with [`std::panic::resume_unwind`].
    ///
    /// # Errors
    ///
    /// Gives the error back unchanged if the task was cancelled rather than panicked.
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send + 'static>, JoinError> {
        match self.kind {
            Kind::Panicked { payload, .. } => {
                Ok(payload.into_inner().unwrap_or_else(PoisonError::into_inner))
            }
            Kind::Cancelled | Kind::NotStarted(_) => Err(self),
        }
    }
}

/// The message of a panic payload, if it is a `&str` or a `String`.
pub fn payload_message(payload: &(dyn Any + Send)) -> Option<&str> {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        Some(s)
    } else {
        payload.downcast_ref::<String>().map(String::as_str)
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Cancelled => f.write_str("JoinError::Cancelled"),
            Kind::NotStarted(error) => f.debug_tuple("JoinError::NotStarted").field(error).finish(),
            Kind::Panicked { .. } => f
                .debug_tuple("JoinError::Panicked")
                .field(&self.panic_message().unwrap_or("<non-string payload>"))
                .finish(),
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Cancelled => f.write_str("task was cancelled"),
            Kind::NotStarted(error) => write!(f, "task could not be started: {error}"),
            Kind::Panicked { .. } => match self.panic_message() {
                Some(msg) => write!(f, "task panicked: {msg}"),
                None => f.write_str("task panicked with a non-string payload"),
            },
        }
    }
}

impl std::error::Error for JoinError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            Kind::NotStarted(error) => Some(error),
            _ => None,
        }
    }
}

impl From<JoinError> for std::io::Error {
    fn from(err: JoinError) -> Self {
        std::io::Error::other(err)
    }
}
