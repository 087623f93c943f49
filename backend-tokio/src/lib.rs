//! The tokio backend of ginkgo-rs.
//!
//! Tasks are tokio tasks on a multi-threaded runtime with one worker per core (set
//! `GINKGO_WORKERS` to change that); handles are tokio's own, which already detach on drop,
//! abort on request and report panics. Sockets are tokio's, adapted to futures-io by
//! `tokio_util::compat`; signals are `tokio::signal::unix`.
//!
//! Everything must run inside the runtime that [`ginkgo_api::block_on`] starts (or inside any
//! tokio runtime, when embedding ginkgo code in an existing tokio program).
//!
//! # Examples
//!
//! ```
//! use ginkgo_backend_tokio::Tokio;
//! let v = ginkgo_api::block_on::<Tokio, _>(async {
//!     ginkgo_api::spawn::<Tokio, _>(async { 7 }).await.unwrap()
//! });
//! assert_eq!(v, 7);
//! ```

use std::future::Future;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::os::unix::net::SocketAddr as UnixSocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use ginkgo_api::Runtime;
use ginkgo_api::forward_async_read;
use ginkgo_api::runtime::{
    RawAbortHandle, RawJoinHandle, RawSignals, RawSleep, RawTcpListener, RawTcpStream,
    RawUnixListener, RawUnixStream,
};
use ginkgo_api::signal::Signal;
use ginkgo_api::task::JoinError;
use pin_project_lite::pin_project;
use tokio_util::compat::{Compat, TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};

/// The tokio runtime marker.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tokio;

/// A tokio task handle.
pub struct JoinHandle<T>(tokio::task::JoinHandle<T>);

/// A tokio abort handle.
#[derive(Clone)]
pub struct AbortHandle(tokio::task::AbortHandle);

fn convert_error(err: tokio::task::JoinError) -> JoinError {
    match err.try_into_panic() {
        Ok(payload) => JoinError::panicked(payload),
        Err(_) => JoinError::cancelled(),
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map_err(convert_error)
    }
}

impl<T: Send + 'static> RawJoinHandle<T> for JoinHandle<T> {
    type AbortHandle = AbortHandle;

    fn abort(&self) {
        self.0.abort();
    }

    fn is_finished(&self) -> bool {
        self.0.is_finished()
    }

    fn abort_handle(&self) -> AbortHandle {
        AbortHandle(self.0.abort_handle())
    }
}

impl RawAbortHandle for AbortHandle {
    fn abort(&self) {
        self.0.abort();
    }

    fn is_finished(&self) -> bool {
        self.0.is_finished()
    }
}

pin_project! {
    /// A tokio timer.
    pub struct Sleep {
        #[pin]
        inner: tokio::time::Sleep,
    }
}

impl Future for Sleep {
    type Output = ();

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.project().inner.poll(cx)
    }
}

impl RawSleep for Sleep {
    fn reset(self: Pin<&mut Self>, deadline: Instant) {
        self.project()
            .inner
            .reset(tokio::time::Instant::from_std(deadline));
    }
}

impl Runtime for Tokio {
    const NAME: &'static str = "tokio";

    type JoinHandle<T: Send + 'static> = JoinHandle<T>;
    type AbortHandle = AbortHandle;
    type Sleep = Sleep;
    type TcpListener = TcpListener;
    type TcpStream = TcpStream;
    type UdpSocket = UdpSocket;
    type UnixListener = UnixListener;
    type UnixStream = UnixStream;
    type Signals = Signals;

    fn block_on<F: Future>(future: F) -> F::Output {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(ginkgo_backend_kit::worker_count())
            .thread_name("ginkgo-tokio")
            .enable_all()
            .build()
            .unwrap_or_else(|err| panic!("could not start the tokio runtime: {err}"));
        let output = runtime.block_on(future);
        // Tasks still running when the main future is done are abandoned, as on the other
        // backends: dropping the runtime instead would wait for blocking tasks forever.
        runtime.shutdown_background();
        output
    }

    #[inline]
    fn spawn<F>(future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        JoinHandle(tokio::spawn(future))
    }

    fn spawn_blocking<F, T>(f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        JoinHandle(tokio::task::spawn_blocking(f))
    }

    fn sleep_until(deadline: Instant) -> Sleep {
        Sleep {
            inner: tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)),
        }
    }
}

/// Implements futures-io `AsyncWrite` for a newtype over `Compat<T>` by calling tokio's
/// `AsyncWrite` of `T` directly: `Compat` writes only the first slice of a vectored write,
/// which would make hyper send a response's head and body in two system calls.
macro_rules! tokio_async_write {
    ($ty:ty) => {
        impl ginkgo_api::io::AsyncWrite for $ty {
            #[inline]
            fn poll_write(
                mut self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                tokio::io::AsyncWrite::poll_write(Pin::new(self.0.get_mut()), cx, buf)
            }

            #[inline]
            fn poll_write_vectored(
                mut self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[io::IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                tokio::io::AsyncWrite::poll_write_vectored(Pin::new(self.0.get_mut()), cx, bufs)
            }

            #[inline]
            fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                tokio::io::AsyncWrite::poll_flush(Pin::new(self.0.get_mut()), cx)
            }

            #[inline]
            fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                tokio::io::AsyncWrite::poll_shutdown(Pin::new(self.0.get_mut()), cx)
            }
        }
    };
}

/// Fails with a clear error instead of tokio's panic when called outside a runtime.
fn require_runtime(what: &str) -> io::Result<()> {
    tokio::runtime::Handle::try_current()
        .map(drop)
        .map_err(|_| io::Error::other(format!("{what} must be called inside the ginkgo runtime")))
}

/// A TCP listener (`tokio::net::TcpListener`).
#[derive(Debug)]
pub struct TcpListener(tokio::net::TcpListener);

impl RawTcpListener for TcpListener {
    type Stream = TcpStream;

    async fn bind(addr: SocketAddr) -> io::Result<Self> {
        tokio::net::TcpListener::bind(addr).await.map(Self)
    }

    fn from_std(listener: std::net::TcpListener) -> io::Result<Self> {
        require_runtime("TcpListener::from_std")?;
        listener.set_nonblocking(true)?;
        tokio::net::TcpListener::from_std(listener).map(Self)
    }

    async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (stream, peer) = self.0.accept().await?;
        Ok((TcpStream(stream.compat()), peer))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }

    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&self.0)
    }
}

/// A TCP connection: `tokio::net::TcpStream` seen through futures-io.
#[derive(Debug)]
pub struct TcpStream(Compat<tokio::net::TcpStream>);

forward_async_read!(TcpStream, 0);
tokio_async_write!(TcpStream);

/// The read half of a [`TcpStream`].
#[derive(Debug)]
pub struct TcpReadHalf(Compat<tokio::net::tcp::OwnedReadHalf>);

forward_async_read!(TcpReadHalf, 0);

/// The write half of a [`TcpStream`]; tokio shuts down the write direction when it is dropped.
#[derive(Debug)]
pub struct TcpWriteHalf(Compat<tokio::net::tcp::OwnedWriteHalf>);

tokio_async_write!(TcpWriteHalf);

impl RawTcpStream for TcpStream {
    type ReadHalf = TcpReadHalf;
    type WriteHalf = TcpWriteHalf;

    async fn connect(addr: SocketAddr) -> io::Result<Self> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        Ok(Self(stream.compat()))
    }

    ginkgo_backend_kit::tcp_stream_accessors!(0.get_ref());

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        socket2::SockRef::from(self.0.get_ref()).shutdown(how)
    }

    fn into_split(self) -> (TcpReadHalf, TcpWriteHalf) {
        let (read, write) = self.0.into_inner().into_split();
        (
            TcpReadHalf(read.compat()),
            TcpWriteHalf(write.compat_write()),
        )
    }
}

/// A UDP socket (`tokio::net::UdpSocket`).
#[derive(Debug)]
pub struct UdpSocket(tokio::net::UdpSocket);

ginkgo_backend_kit::forward_udp_socket!(
    UdpSocket,
    tokio::net::UdpSocket,
    |socket: std::net::UdpSocket| {
        require_runtime("UdpSocket::from_std")?;
        tokio::net::UdpSocket::from_std(socket)
    }
);

/// A Unix-domain listener (`tokio::net::UnixListener`).
#[derive(Debug)]
pub struct UnixListener(tokio::net::UnixListener);

impl RawUnixListener for UnixListener {
    type Stream = UnixStream;

    fn bind(path: &Path) -> io::Result<Self> {
        require_runtime("UnixListener::bind")?;
        tokio::net::UnixListener::bind(path).map(Self)
    }

    fn from_std(listener: std::os::unix::net::UnixListener) -> io::Result<Self> {
        require_runtime("UnixListener::from_std")?;
        listener.set_nonblocking(true)?;
        tokio::net::UnixListener::from_std(listener).map(Self)
    }

    async fn accept(&self) -> io::Result<(UnixStream, UnixSocketAddr)> {
        let (stream, addr) = self.0.accept().await?;
        Ok((UnixStream(stream.compat()), addr.into()))
    }

    fn local_addr(&self) -> io::Result<UnixSocketAddr> {
        self.0.local_addr().map(Into::into)
    }

    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&self.0)
    }
}

/// A Unix-domain connection: `tokio::net::UnixStream` seen through futures-io.
#[derive(Debug)]
pub struct UnixStream(Compat<tokio::net::UnixStream>);

forward_async_read!(UnixStream, 0);
tokio_async_write!(UnixStream);

impl RawUnixStream for UnixStream {
    async fn connect(path: &Path) -> io::Result<Self> {
        let stream = tokio::net::UnixStream::connect(path).await?;
        Ok(Self(stream.compat()))
    }

    fn pair() -> io::Result<(Self, Self)> {
        require_runtime("UnixStream::pair")?;
        let (a, b) = tokio::net::UnixStream::pair()?;
        Ok((Self(a.compat()), Self(b.compat())))
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        socket2::SockRef::from(self.0.get_ref()).shutdown(how)
    }

    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(self.0.get_ref())
    }
}

/// Signals through `tokio::signal::unix`, one listener per registered signal.
pub struct Signals {
    listeners: Vec<(Signal, tokio::signal::unix::Signal)>,
    // Where the next poll starts, so one busy signal cannot starve the others.
    next: usize,
}

fn kind(signal: Signal) -> tokio::signal::unix::SignalKind {
    use tokio::signal::unix::SignalKind;
    match signal {
        Signal::Term => SignalKind::terminate(),
        Signal::Int => SignalKind::interrupt(),
        Signal::Hup => SignalKind::hangup(),
        Signal::Usr1 => SignalKind::user_defined1(),
        Signal::Usr2 => SignalKind::user_defined2(),
        Signal::Quit => SignalKind::quit(),
        // Any signal the enum gains maps through its number.
        other => SignalKind::from_raw(other.number()),
    }
}

impl RawSignals for Signals {
    fn new(signals: &[Signal]) -> io::Result<Self> {
        require_runtime("Signals::new")?;
        let mut listeners = Vec::with_capacity(signals.len());
        for &signal in signals {
            if listeners.iter().any(|(s, _)| *s == signal) {
                continue;
            }
            listeners.push((signal, tokio::signal::unix::signal(kind(signal))?));
        }
        Ok(Self { listeners, next: 0 })
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Signal>> {
        let count = self.listeners.len();
        let mut ended = 0;
        for offset in 0..count {
            let index = (self.next + offset) % count;
            let (signal, listener) = &mut self.listeners[index];
            match listener.poll_recv(cx) {
                Poll::Ready(Some(())) => {
                    self.next = (index + 1) % count;
                    return Poll::Ready(Some(*signal));
                }
                Poll::Ready(None) => ended += 1,
                Poll::Pending => {}
            }
        }
        if ended == count {
            Poll::Ready(None)
        } else {
            Poll::Pending
        }
    }
}
