//! The async-std backend of ginkgo-rs.
//!
//! **async-std is discontinued upstream** (its 1.13 release notes say "use smol instead"). This
//! backend keeps working on async-std's own APIs (its global executor, `spawn_blocking` and
//! `async_std::net`) for programs that already depend on it, and it will receive no new
//! features of its own. New programs should choose the `smol` backend, which runs on the same
//! reactor.
//!
//! async-std has no signal API and no nameable, resettable timer type; both come from the
//! async-io reactor that async-std itself runs on (its `task::sleep` is an async-io timer).
//!
//! # Examples
//!
//! ```
//! use ginkgo_backend_async_std::AsyncStd;
//! let v = ginkgo_api::block_on::<AsyncStd, _>(async {
//!     ginkgo_api::spawn::<AsyncStd, _>(async { 7 }).await.unwrap()
//! });
//! assert_eq!(v, 7);
//! ```

use std::future::Future;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::os::unix::net::SocketAddr as UnixSocketAddr;
use std::path::Path;
use std::time::Instant;

use ginkgo_api::Runtime;
use ginkgo_api::runtime::{RawTcpListener, RawTcpStream, RawUnixListener, RawUnixStream};
use ginkgo_api::{forward_async_read, forward_async_write};
use ginkgo_backend_kit::native::{NativeAbort, NativeHandle, NativeRuntime};
use ginkgo_backend_kit::{Signals, Sleep};

/// The async-std runtime marker.
#[derive(Debug, Clone, Copy, Default)]
pub struct AsyncStd;

impl NativeRuntime for AsyncStd {
    type Task<T: Send + 'static> = async_std::task::JoinHandle<T>;

    fn cancel<T: Send + 'static>(
        task: async_std::task::JoinHandle<T>,
    ) -> impl Future<Output = Option<T>> + Send + 'static {
        task.cancel()
    }

    fn detach<T: Send + 'static>(task: async_std::task::JoinHandle<T>) {
        drop(task); // async-std's handle detaches when dropped
    }

    fn spawn_detached(future: impl Future<Output = ()> + Send + 'static) {
        drop(async_std::task::spawn(future));
    }
}

/// An async-std task handle: async-std's own, with ginkgo's semantics (detach on drop, abort,
/// panics reported) at no extra cost per task.
pub type JoinHandle<T> = NativeHandle<AsyncStd, T>;

impl Runtime for AsyncStd {
    const NAME: &'static str = "async-std";

    type JoinHandle<T: Send + 'static> = JoinHandle<T>;
    type AbortHandle = NativeAbort;
    type Sleep = Sleep;
    type TcpListener = TcpListener;
    type TcpStream = TcpStream;
    type UdpSocket = UdpSocket;
    type UnixListener = UnixListener;
    type UnixStream = UnixStream;
    type Signals = Signals;

    fn block_on<F: Future>(future: F) -> F::Output {
        async_std::task::block_on(future)
    }

    #[inline]
    fn spawn<F>(future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        NativeHandle::spawned(async_std::task::spawn(future))
    }

    fn spawn_blocking<F, T>(f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (call, flag) = ginkgo_backend_kit::task::blocking(f);
        NativeHandle::blocking(async_std::task::spawn_blocking(call), flag)
    }

    fn sleep_until(deadline: Instant) -> Sleep {
        Sleep::until(deadline)
    }
}

/// A TCP listener (`async_std::net::TcpListener`).
#[derive(Debug)]
pub struct TcpListener(async_std::net::TcpListener);

impl RawTcpListener for TcpListener {
    type Stream = TcpStream;

    async fn bind(addr: SocketAddr) -> io::Result<Self> {
        async_std::net::TcpListener::bind(addr).await.map(Self)
    }

    fn from_std(listener: std::net::TcpListener) -> io::Result<Self> {
        listener.set_nonblocking(true)?;
        Ok(Self(listener.into()))
    }

    async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (stream, peer) = self.0.accept().await?;
        Ok((TcpStream(stream), peer))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }

    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&self.0)
    }
}

/// A TCP connection (`async_std::net::TcpStream`).
#[derive(Debug)]
pub struct TcpStream(async_std::net::TcpStream);

forward_async_read!(TcpStream, 0);
// async-std's own close only flushes (it is async-io's, generic over the I/O type): the
// peer would never see the end of the stream.
forward_async_write!(TcpStream, 0, close: shutdown);

/// The read half of a [`TcpStream`]: a second handle to the same socket.
#[derive(Debug)]
pub struct TcpReadHalf(async_std::net::TcpStream);

forward_async_read!(TcpReadHalf, 0);

/// The write half of a [`TcpStream`]; shuts down the write direction when dropped.
#[derive(Debug)]
pub struct TcpWriteHalf(async_std::net::TcpStream);

forward_async_write!(TcpWriteHalf, 0, close: shutdown);

impl Drop for TcpWriteHalf {
    fn drop(&mut self) {
        // Same as tokio's owned write half; the socket may already be gone, which is fine.
        let _ = self.0.shutdown(Shutdown::Write);
    }
}

impl RawTcpStream for TcpStream {
    type ReadHalf = TcpReadHalf;
    type WriteHalf = TcpWriteHalf;

    async fn connect(addr: SocketAddr) -> io::Result<Self> {
        async_std::net::TcpStream::connect(addr).await.map(Self)
    }

    ginkgo_backend_kit::tcp_stream_accessors!(0);

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.0.shutdown(how)
    }

    fn into_split(self) -> (TcpReadHalf, TcpWriteHalf) {
        (TcpReadHalf(self.0.clone()), TcpWriteHalf(self.0))
    }
}

/// A UDP socket (`async_std::net::UdpSocket`).
#[derive(Debug)]
pub struct UdpSocket(async_std::net::UdpSocket);

ginkgo_backend_kit::forward_udp_socket!(
    UdpSocket,
    async_std::net::UdpSocket,
    |socket: std::net::UdpSocket| Ok(async_std::net::UdpSocket::from(socket))
);

/// A Unix-domain listener (`async_std::os::unix::net::UnixListener`).
#[derive(Debug)]
pub struct UnixListener(async_std::os::unix::net::UnixListener);

impl RawUnixListener for UnixListener {
    type Stream = UnixStream;

    fn bind(path: &Path) -> io::Result<Self> {
        // async-std's `bind` is async only to look like the rest; binding never blocks.
        Self::from_std(std::os::unix::net::UnixListener::bind(path)?)
    }

    fn from_std(listener: std::os::unix::net::UnixListener) -> io::Result<Self> {
        listener.set_nonblocking(true)?;
        Ok(Self(listener.into()))
    }

    async fn accept(&self) -> io::Result<(UnixStream, UnixSocketAddr)> {
        let (stream, addr) = self.0.accept().await?;
        Ok((UnixStream(stream), addr))
    }

    fn local_addr(&self) -> io::Result<UnixSocketAddr> {
        self.0.local_addr()
    }

    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&self.0)
    }
}

/// A Unix-domain connection (`async_std::os::unix::net::UnixStream`).
#[derive(Debug)]
pub struct UnixStream(async_std::os::unix::net::UnixStream);

forward_async_read!(UnixStream, 0);
forward_async_write!(UnixStream, 0, close: shutdown);

impl RawUnixStream for UnixStream {
    async fn connect(path: &Path) -> io::Result<Self> {
        async_std::os::unix::net::UnixStream::connect(path)
            .await
            .map(Self)
    }

    fn pair() -> io::Result<(Self, Self)> {
        let (a, b) = async_std::os::unix::net::UnixStream::pair()?;
        Ok((Self(a), Self(b)))
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.0.shutdown(how)
    }

    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&self.0)
    }
}
