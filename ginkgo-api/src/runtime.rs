//! The backend contract: what a runtime must provide for ginkgo-rs to run on it.
//!
//! Users never implement or name these traits; they use the wrappers in [`crate::task`],
//! [`crate::time`], [`crate::net`] and [`crate::signal`], which are generic over a [`Runtime`]
//! and which the `ginkgo` facade fixes to the backend chosen at build time. Every method is
//! statically dispatched: the wrappers add no allocation and no dynamic call.
//!
//! Each `Raw*` trait states its contract; the conformance suite in `ginkgo-tests` checks every
//! backend against it.

use std::future::Future;
use std::io;
use std::net::{Shutdown, SocketAddr};
#[cfg(unix)]
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_io::{AsyncRead, AsyncWrite};

use crate::signal::Signal;
use crate::task::JoinError;

/// A runtime that ginkgo-rs can run on: spawning, blocking, timers, sockets and signals.
///
/// Implemented by a zero-sized marker type in each backend crate
/// (`ginkgo_backend_tokio::Tokio`, `ginkgo_backend_smol::Smol`, …).
pub trait Runtime: Sized + Send + Sync + 'static {
    /// A short name for logs and benchmark tables, such as `"tokio"`.
    const NAME: &'static str;

    /// The handle returned by [`Runtime::spawn`] and [`Runtime::spawn_blocking`].
    type JoinHandle<T: Send + 'static>: RawJoinHandle<T, AbortHandle = Self::AbortHandle>;
    /// A cloneable handle that aborts a task.
    type AbortHandle: RawAbortHandle;
    /// A timer future.
    type Sleep: RawSleep;
    /// A TCP listener.
    type TcpListener: RawTcpListener<Stream = Self::TcpStream>;
    /// A TCP connection.
    type TcpStream: RawTcpStream;
    /// A UDP socket.
    type UdpSocket: RawUdpSocket;
    /// A Unix-domain stream listener.
    #[cfg(unix)]
    type UnixListener: RawUnixListener<Stream = Self::UnixStream>;
    /// A Unix-domain stream connection.
    #[cfg(unix)]
    type UnixStream: RawUnixStream;
    /// A stream of Unix signals.
    #[cfg(unix)]
    type Signals: RawSignals;

    /// Starts the runtime and runs `future` to completion on the calling thread.
    fn block_on<F: Future>(future: F) -> F::Output;

    /// Spawns `future` as a task. The handle must follow the semantics documented in
    /// [`crate::task`]: detach on drop, abort cancels, panics are caught and reported.
    fn spawn<F>(future: F) -> Self::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static;

    /// Runs `f` where blocking is allowed. Aborting before it starts prevents it from running;
    /// once running it completes and the handle gives its value.
    fn spawn_blocking<F, T>(f: F) -> Self::JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static;

    /// A timer that completes at `deadline` (at once if it has passed), never earlier.
    fn sleep_until(deadline: Instant) -> Self::Sleep;
}

/// The contract of a task handle.
///
/// Polling completes once the task's future has been dropped: with `Ok` when it returned, with
/// [`JoinError::cancelled`] when it was aborted, with [`JoinError::panicked`] when it panicked.
/// Dropping the handle must detach, never cancel.
pub trait RawJoinHandle<T>: Future<Output = Result<T, JoinError>> + Send + Unpin + 'static {
    /// The handle type of [`RawJoinHandle::abort_handle`].
    type AbortHandle: RawAbortHandle;
    /// Requests cancellation; idempotent; a no-op after completion.
    fn abort(&self);
    /// Whether the task has finished.
    fn is_finished(&self) -> bool;
    /// A cloneable handle that aborts this task.
    fn abort_handle(&self) -> Self::AbortHandle;
}

/// The contract of an abort handle: [`RawJoinHandle::abort`] without owning the task.
pub trait RawAbortHandle: Clone + Send + Sync + 'static {
    /// Requests cancellation; idempotent; a no-op after completion.
    fn abort(&self);
    /// Whether the task has finished.
    fn is_finished(&self) -> bool;
}

/// The contract of a timer: a future that completes at its deadline, never earlier, and that can
/// be moved to a new deadline without being rebuilt.
pub trait RawSleep: Future<Output = ()> + Send + Sync + 'static {
    /// Moves the deadline; the timer completes again at the new deadline.
    fn reset(self: Pin<&mut Self>, deadline: Instant);
}

/// The contract of a TCP listener.
pub trait RawTcpListener: Sized + Send + Sync + 'static {
    /// The connection type it accepts.
    type Stream: RawTcpStream;
    /// Binds to `addr` (with `SO_REUSEADDR` on Unix, as `std` does).
    fn bind(addr: SocketAddr) -> impl Future<Output = io::Result<Self>> + Send;
    /// Adopts a listener that is already bound (socket activation, fd passing).
    fn from_std(listener: std::net::TcpListener) -> io::Result<Self>;
    /// Waits for the next connection. Dropping the future cancels the wait and loses nothing.
    fn accept(&self) -> impl Future<Output = io::Result<(Self::Stream, SocketAddr)>> + Send;
    /// The bound address.
    fn local_addr(&self) -> io::Result<SocketAddr>;
    /// The listening socket's file descriptor, to hand it to the next process of an upgrade.
    #[cfg(unix)]
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_>;
}

/// The contract of a TCP connection: futures-io I/O plus socket options and owned halves.
pub trait RawTcpStream: AsyncRead + AsyncWrite + Sized + Send + Sync + Unpin + 'static {
    /// The owned read half from [`RawTcpStream::into_split`].
    type ReadHalf: AsyncRead + Send + Sync + Unpin + 'static;
    /// The owned write half from [`RawTcpStream::into_split`]. Dropping it shuts down the
    /// write direction, so the peer reads end-of-file.
    type WriteHalf: AsyncWrite + Send + Sync + Unpin + 'static;
    /// Connects to `addr`.
    fn connect(addr: SocketAddr) -> impl Future<Output = io::Result<Self>> + Send;
    /// The local address.
    fn local_addr(&self) -> io::Result<SocketAddr>;
    /// The peer's address.
    fn peer_addr(&self) -> io::Result<SocketAddr>;
    /// Sets `TCP_NODELAY`.
    fn set_nodelay(&self, nodelay: bool) -> io::Result<()>;
    /// Reads `TCP_NODELAY`.
    fn nodelay(&self) -> io::Result<bool>;
    /// Shuts down the read, write or both directions.
    fn shutdown(&self, how: Shutdown) -> io::Result<()>;
    /// Splits into halves that can be moved to different tasks.
    fn into_split(self) -> (Self::ReadHalf, Self::WriteHalf);
    /// The socket's file descriptor, for socket options the contract does not name
    /// (keepalive, buffer sizes).
    #[cfg(unix)]
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_>;
}

/// The contract of a UDP socket.
pub trait RawUdpSocket: Sized + Send + Sync + 'static {
    /// Binds to `addr`.
    fn bind(addr: SocketAddr) -> impl Future<Output = io::Result<Self>> + Send;
    /// Adopts a socket that is already bound (socket activation, options set with socket2).
    fn from_std(socket: std::net::UdpSocket) -> io::Result<Self>;
    /// Sets the default peer for [`RawUdpSocket::send`] and filters [`RawUdpSocket::recv`].
    fn connect(&self, addr: SocketAddr) -> impl Future<Output = io::Result<()>> + Send;
    /// Sends a datagram to `target`.
    fn send_to(
        &self,
        buf: &[u8],
        target: SocketAddr,
    ) -> impl Future<Output = io::Result<usize>> + Send;
    /// Receives a datagram and its sender.
    fn recv_from(
        &self,
        buf: &mut [u8],
    ) -> impl Future<Output = io::Result<(usize, SocketAddr)>> + Send;
    /// Sends to the connected peer.
    fn send(&self, buf: &[u8]) -> impl Future<Output = io::Result<usize>> + Send;
    /// Receives from the connected peer.
    fn recv(&self, buf: &mut [u8]) -> impl Future<Output = io::Result<usize>> + Send;
    /// The bound address.
    fn local_addr(&self) -> io::Result<SocketAddr>;
    /// The connected peer's address.
    fn peer_addr(&self) -> io::Result<SocketAddr>;
    /// The socket's file descriptor, for socket options the contract does not name.
    #[cfg(unix)]
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_>;
}

/// The contract of a Unix-domain stream listener.
#[cfg(unix)]
pub trait RawUnixListener: Sized + Send + Sync + 'static {
    /// The connection type it accepts.
    type Stream: RawUnixStream;
    /// Binds to the socket file at `path`, which must not exist.
    fn bind(path: &Path) -> io::Result<Self>;
    /// Adopts a listener that is already bound.
    fn from_std(listener: std::os::unix::net::UnixListener) -> io::Result<Self>;
    /// Waits for the next connection.
    fn accept(
        &self,
    ) -> impl Future<Output = io::Result<(Self::Stream, std::os::unix::net::SocketAddr)>> + Send;
    /// The bound address.
    fn local_addr(&self) -> io::Result<std::os::unix::net::SocketAddr>;
    /// The listening socket's file descriptor, to hand it to the next process of an upgrade.
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_>;
}

/// The contract of a Unix-domain stream connection.
#[cfg(unix)]
pub trait RawUnixStream: AsyncRead + AsyncWrite + Sized + Send + Sync + Unpin + 'static {
    /// Connects to the socket file at `path`.
    fn connect(path: &Path) -> impl Future<Output = io::Result<Self>> + Send;
    /// A connected pair, handy for tests and for talking to a child process.
    fn pair() -> io::Result<(Self, Self)>;
    /// Shuts down the read, write or both directions.
    fn shutdown(&self, how: Shutdown) -> io::Result<()>;
    /// The socket's file descriptor, for the peer's credentials and socket options.
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_>;
}

/// The contract of a signal stream: registered once, then every delivery of a registered signal
/// is reported (deliveries that arrive faster than they are read may be coalesced, as the OS
/// does).
#[cfg(unix)]
pub trait RawSignals: Sized + Send + Unpin + 'static {
    /// Starts listening for `signals`. Their default action (such as termination) is replaced
    /// for the whole process from now on.
    fn new(signals: &[Signal]) -> io::Result<Self>;
    /// Polls for the next signal; `None` once the stream has ended.
    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Signal>>;
}
