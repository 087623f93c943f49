//! The plain-threads backend of ginkgo-rs: every task is an OS thread.
//!
//! # Model
//!
//! - [`spawn`](ginkgo_api::spawn) starts a named thread (`ginkgo-task`) that drives the task's
//!   future until it completes; nothing else shares the thread.
//! - Each task thread (and [`block_on`](ginkgo_api::block_on)) has its own poller: while its
//!   future waits, the thread sleeps in one `poll(2)` on the sockets the future waits for and
//!   a wake-up eventfd (a socket pair on systems without eventfd), with a timeout at its
//!   nearest timer deadline. The kernel wakes the thread directly when a socket is ready, as it
//!   would a blocking `std::net` call; a wake from another thread (a channel, a task handle, an
//!   abort) writes the eventfd, once per wake-up and only while the thread sleeps. The poller
//!   exists only while the thread runs the backend's `block_on`.
//! - Sockets try the non-blocking system call first and register with the thread's poller only
//!   when it would block; [`Sleep`] registers its deadline there. Every wait is a registration,
//!   not a blocking call, so every wait (a read, an accept, a sleep) can be timed out and
//!   cancelled, and an abort takes effect at the next await.
//! - Polled on a thread without a poller (another executor, a plain
//!   `futures_lite::future::block_on`), sockets and sleeps fall back to the async-io reactor,
//!   which every socket stays registered with. Signals always come from async-io and
//!   async-signal.
//! - [`spawn_blocking`](ginkgo_api::spawn_blocking) starts a thread (`ginkgo-blocking`) that
//!   calls the closure.
//! - The stack size of new threads is [`set_stack_size`] (default: Rust's, 2 MiB, or
//!   `RUST_MIN_STACK`).
//!
//! # Limits
//!
//! - One thread per task: thousands of tasks are fine, millions are not. Spawning costs a thread
//!   creation (tens of microseconds).
//! - [`abort`](ginkgo_api::JoinHandle::abort) takes effect at the task's next await point. A task
//!   stuck in blocking code (a busy loop, a blocking `std` call) cannot be stopped: its handle
//!   stays pending, which the service layer reports instead of hanging.
//! - If the OS refuses to start a thread, the task does not run and its handle gives a
//!   [`JoinError`] whose message says so.
//!
//! # Examples
//!
//! ```
//! use ginkgo_backend_threads::Threads;
//! let v = ginkgo_api::block_on::<Threads, _>(async {
//!     ginkgo_api::spawn::<Threads, _>(async { 7 }).await.unwrap()
//! });
//! assert_eq!(v, 7);
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use ginkgo_api::Runtime;
use ginkgo_api::runtime::{RawAbortHandle, RawJoinHandle};
use ginkgo_api::task::JoinError;
use ginkgo_backend_kit::Signals;
use ginkgo_backend_kit::task::{self as backend, AbortFlag};

mod net;
mod poller;
mod time;

pub use net::{
    TcpListener, TcpReadHalf, TcpStream, TcpWriteHalf, UdpSocket, UnixListener, UnixStream,
};
pub use time::Sleep;

/// The threads runtime marker.
#[derive(Debug, Clone, Copy, Default)]
pub struct Threads;

static STACK_SIZE: AtomicUsize = AtomicUsize::new(0);

/// Sets the stack size, in bytes, of threads started from now on; 0 restores Rust's default.
///
/// # Examples
///
/// ```
/// ginkgo_backend_threads::set_stack_size(256 * 1024);
/// # ginkgo_backend_threads::set_stack_size(0);
/// ```
pub fn set_stack_size(bytes: usize) {
    STACK_SIZE.store(bytes, Ordering::Relaxed);
}

/// The stack size set by [`set_stack_size`]; 0 means Rust's default.
pub fn stack_size() -> usize {
    STACK_SIZE.load(Ordering::Relaxed)
}

/// Where a task thread leaves its result for the handle.
struct Slot<T> {
    state: Mutex<SlotState<T>>,
}

struct SlotState<T> {
    result: Option<Result<T, JoinError>>,
    done: bool,
    waker: Option<Waker>,
}

impl<T> Slot<T> {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(SlotState {
                result: None,
                done: false,
                waker: None,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SlotState<T>> {
        // The lock is never held across user code, so poisoning cannot leave bad state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn fill(&self, result: Result<T, JoinError>) {
        let waker = {
            let mut state = self.lock();
            state.result = Some(result);
            state.done = true;
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// A handle to a task thread. Dropping it detaches the thread.
pub struct JoinHandle<T> {
    slot: Arc<Slot<T>>,
    flag: AbortFlag,
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.slot.lock();
        match state.result.take() {
            Some(result) => Poll::Ready(result),
            None if state.done => Poll::Pending, // already taken: polled after completion
            None => {
                state.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl<T: Send + 'static> RawJoinHandle<T> for JoinHandle<T> {
    type AbortHandle = AbortFlag;

    fn abort(&self) {
        self.flag.abort();
    }

    fn is_finished(&self) -> bool {
        self.slot.lock().done
    }

    fn abort_handle(&self) -> AbortFlag {
        self.flag.clone()
    }
}

/// Starts `body` on a new thread named `name` that fills a slot with its result.
fn start_thread<T: Send + 'static>(
    name: &str,
    flag: AbortFlag,
    body: impl FnOnce() -> Result<T, JoinError> + Send + 'static,
) -> JoinHandle<T> {
    let slot = Slot::new();
    let filler = slot.clone();
    let mut builder = std::thread::Builder::new().name(name.to_owned());
    if stack_size() > 0 {
        builder = builder.stack_size(stack_size());
    }
    if let Err(err) = builder.spawn(move || filler.fill(body())) {
        // The operating system refused the thread (EAGAIN at the process's thread limit, say):
        // the task never runs, and awaiting it says so.
        slot.fill(Err(JoinError::not_started(err)));
    }
    JoinHandle { slot, flag }
}

impl Runtime for Threads {
    const NAME: &'static str = "threads";

    type JoinHandle<T: Send + 'static> = JoinHandle<T>;
    type AbortHandle = AbortFlag;
    type Sleep = Sleep;
    type TcpListener = TcpListener;
    type TcpStream = TcpStream;
    type UdpSocket = UdpSocket;
    type UnixListener = UnixListener;
    type UnixStream = UnixStream;
    type Signals = Signals;

    fn block_on<F: Future>(future: F) -> F::Output {
        poller::block_on(future)
    }

    fn spawn<F>(future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (future, flag) = backend::task(future);
        start_thread("ginkgo-task", flag, move || poller::block_on(future))
    }

    fn spawn_blocking<F, T>(f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (call, flag) = backend::blocking(f);
        start_thread("ginkgo-blocking", flag, call)
    }

    fn sleep_until(deadline: Instant) -> Sleep {
        Sleep::until(deadline)
    }
}
