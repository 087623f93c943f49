//! The smol backend of ginkgo-rs.
//!
//! Tasks run on one [`async_executor::Executor`] shared by the process and driven by one worker
//! thread per available core (set `GINKGO_WORKERS` to change that), started when the first task
//! is spawned. Timers, listeners, datagram sockets and signals come from the async-io reactor
//! (through [`ginkgo_backend_kit`]). On Linux, connected streams ([`stream::Stream`]) are
//! registered once, edge-triggered, in an epoll instance of this crate's, and the workers wait
//! in that one ([`block_on`]) while async-io's reactor is driven by the thread in
//! [`ginkgo_api::block_on`] (or async-io's own thread): so a request/response exchange costs
//! no `epoll_ctl` to re-arm the socket and no read that fails with `EWOULDBLOCK`. Blocking
//! closures run on the `blocking` crate's thread pool, exactly as `smol::unblock` does.
//!
//! Applications select it with the `smol` feature of the `ginkgo` facade instead of naming
//! [`Smol`] themselves.
//!
//! # Examples
//!
//! ```
//! use ginkgo_backend_smol::Smol;
//! let v = ginkgo_api::block_on::<Smol, _>(async {
//!     ginkgo_api::spawn::<Smol, _>(async { 7 }).await.unwrap()
//! });
//! assert_eq!(v, 7);
//! ```

use std::future::Future;
use std::sync::OnceLock;
use std::time::Instant;

use async_executor::Executor;
use ginkgo_api::Runtime;
use ginkgo_backend_kit::native::{NativeAbort, NativeHandle, NativeRuntime};
use ginkgo_backend_kit::{Signals, Sleep};

pub mod net;
mod reactor;
pub mod stream;
#[cfg(test)]
mod test_support;

/// Runs `future` to completion on this thread, as [`async_io::block_on`] does, but waits in
/// the stream reactor instead of async-io's: for a thread that runs an executor's tasks, such
/// as the smol backend's workers.
///
/// While the future waits, one of the threads in `block_on` blocks in the epoll instance of
/// [`stream::Stream`]s (on Linux) and wakes their tasks itself, with no system call besides
/// the wait; the others sleep until they are woken. async-io's reactor (timers, listeners,
/// datagram sockets, signals) is then driven by the threads in [`async_io::block_on`], or by
/// async-io's own thread. Where streams use async-io's reactor (not Linux), this is
/// [`async_io::block_on`].
///
/// While any thread is in `block_on`, stream events wait for one of them to be idle (or
/// between two polls of its future), so it suits threads that run many short tasks, as an
/// executor's workers do. When the last one returns, async-io takes the stream events again.
///
/// # Examples
///
/// ```
/// let answer = ginkgo_backend_smol::block_on(async { 6 * 7 });
/// assert_eq!(answer, 42);
/// ```
pub fn block_on<T>(future: impl Future<Output = T>) -> T {
    reactor::block_on(future)
}

/// The smol runtime marker.
#[derive(Debug, Clone, Copy, Default)]
pub struct Smol;

/// The process-wide executor that ginkgo's smol tasks run on, with its worker threads (one per
/// core, or `GINKGO_WORKERS`) started on first use.
///
/// Libraries written for smol that want an [`Executor`] can be given this one, so their tasks
/// share ginkgo's worker threads instead of starting their own.
///
/// # Examples
///
/// ```
/// let doubled = ginkgo_backend_smol::executor().spawn(async { 21 * 2 });
/// assert_eq!(async_io::block_on(doubled), 42);
/// ```
#[inline]
pub fn executor() -> &'static Executor<'static> {
    static EXECUTOR: OnceLock<Executor<'static>> = OnceLock::new();
    static WORKERS: OnceLock<()> = OnceLock::new();
    let executor = EXECUTOR.get_or_init(Executor::new);
    WORKERS.get_or_init(|| start_workers(executor));
    executor
}

#[cold]
fn start_workers(executor: &'static Executor<'static>) {
    for index in 0..ginkgo_backend_kit::worker_count() {
        let spawned = std::thread::Builder::new()
            .name(format!("ginkgo-smol-{index}"))
            .spawn(move || {
                block_on(executor.run(std::future::pending::<()>()));
            });
        // Running with fewer workers beats failing: at least one thread (the first) is
        // needed, and if even that fails the OS is out of threads for everything else too.
        if let Err(err) = spawned {
            assert!(index > 0, "could not start a smol worker thread: {err}");
        }
    }
}

impl NativeRuntime for Smol {
    type Task<T: Send + 'static> = async_task::Task<T>;

    fn cancel<T: Send + 'static>(
        task: async_task::Task<T>,
    ) -> impl Future<Output = Option<T>> + Send + 'static {
        task.cancel()
    }

    fn detach<T: Send + 'static>(task: async_task::Task<T>) {
        task.detach();
    }

    fn spawn_detached(future: impl Future<Output = ()> + Send + 'static) {
        executor().spawn(future).detach();
    }

    fn is_finished<T: Send + 'static>(task: &async_task::Task<T>) -> Option<bool> {
        Some(task.is_finished())
    }
}

/// A smol task handle: async-task's own, with ginkgo's semantics (detach on drop, abort,
/// panics reported) at no extra cost per task.
pub type JoinHandle<T> = NativeHandle<Smol, T>;

impl Runtime for Smol {
    const NAME: &'static str = "smol";

    type JoinHandle<T: Send + 'static> = JoinHandle<T>;
    type AbortHandle = NativeAbort;
    type Sleep = Sleep;
    type TcpListener = net::TcpListener;
    type TcpStream = net::TcpStream;
    type UdpSocket = net::UdpSocket;
    type UnixListener = net::UnixListener;
    type UnixStream = net::UnixStream;
    type Signals = Signals;

    fn block_on<F: Future>(future: F) -> F::Output {
        // Start the workers now so that tasks spawned by `future` run at once.
        executor();
        async_io::block_on(future)
    }

    #[inline]
    fn spawn<F>(future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        NativeHandle::spawned(executor().spawn(future))
    }

    fn spawn_blocking<F, T>(f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (call, flag) = ginkgo_backend_kit::task::blocking(f);
        NativeHandle::blocking(blocking::unblock(call), flag)
    }

    fn sleep_until(deadline: Instant) -> Sleep {
        Sleep::until(deadline)
    }
}
