//! Building blocks for backends whose native task handles do not already follow the ginkgo
//! contract (smol, async-std, threads). Users do not need this module.
//!
//! - [`native::NativeHandle`] gives a runtime's own cancellable handle (async-task's `Task`,
//!   async-std's `JoinHandle`) the ginkgo semantics at no per-task cost.
//! - [`task`] wraps a future so that it catches panics and can be aborted through an
//!   [`AbortFlag`]; [`blocking`] does the same for a blocking closure. For runtimes without a
//!   cancellable handle of their own (plain threads).

pub mod native;

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use atomic_waker::AtomicWaker;
use pin_project_lite::pin_project;

use crate::runtime::RawAbortHandle;
use crate::task::JoinError;

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

/// Implements futures-io `AsyncRead` for a wrapper by forwarding to one of its fields.
///
/// `forward_async_read!(MyStream, 0)` forwards to `self.0`;
/// `forward_async_read!(impl<R: Runtime> Wrapper<R>, inner)` does it for a generic wrapper.
#[macro_export]
macro_rules! forward_async_read {
    (impl<$($param:ident: $bound:path),*> $ty:ty, $field:tt) => {
        impl<$($param: $bound),*> $crate::io::AsyncRead for $ty {
            #[inline]
            fn poll_read(
                mut self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
                buf: &mut [u8],
            ) -> ::std::task::Poll<::std::io::Result<usize>> {
                $crate::io::AsyncRead::poll_read(::std::pin::Pin::new(&mut self.$field), cx, buf)
            }

            #[inline]
            fn poll_read_vectored(
                mut self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
                bufs: &mut [::std::io::IoSliceMut<'_>],
            ) -> ::std::task::Poll<::std::io::Result<usize>> {
                $crate::io::AsyncRead::poll_read_vectored(
                    ::std::pin::Pin::new(&mut self.$field),
                    cx,
                    bufs,
                )
            }
        }
    };
    ($ty:ty, $field:tt) => {
        $crate::forward_async_read!(impl<> $ty, $field);
    };
}

/// Implements futures-io `AsyncWrite` for a wrapper by forwarding to one of its fields.
///
/// `forward_async_write!(MyStream, 0)` forwards to `self.0`;
/// `forward_async_write!(impl<R: Runtime> Wrapper<R>, inner)` does it for a generic wrapper.
#[macro_export]
macro_rules! forward_async_write {
    (impl<$($param:ident: $bound:path),*> $ty:ty, $field:tt) => {
        impl<$($param: $bound),*> $crate::io::AsyncWrite for $ty {
            #[inline]
            fn poll_write(
                mut self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
                buf: &[u8],
            ) -> ::std::task::Poll<::std::io::Result<usize>> {
                $crate::io::AsyncWrite::poll_write(::std::pin::Pin::new(&mut self.$field), cx, buf)
            }

            #[inline]
            fn poll_write_vectored(
                mut self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
                bufs: &[::std::io::IoSlice<'_>],
            ) -> ::std::task::Poll<::std::io::Result<usize>> {
                $crate::io::AsyncWrite::poll_write_vectored(
                    ::std::pin::Pin::new(&mut self.$field),
                    cx,
                    bufs,
                )
            }

            #[inline]
            fn poll_flush(
                mut self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
            ) -> ::std::task::Poll<::std::io::Result<()>> {
                $crate::io::AsyncWrite::poll_flush(::std::pin::Pin::new(&mut self.$field), cx)
            }

            #[inline]
            fn poll_close(
                mut self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
            ) -> ::std::task::Poll<::std::io::Result<()>> {
                $crate::io::AsyncWrite::poll_close(::std::pin::Pin::new(&mut self.$field), cx)
            }
        }
    };
    ($ty:ty, $field:tt) => {
        $crate::forward_async_write!(impl<> $ty, $field);
    };
}

/// How many executor worker threads a backend runs: `GINKGO_WORKERS` if it is set, otherwise
/// one per available core. An unusable `GINKGO_WORKERS` is reported on standard error, not
/// silently ignored.
pub fn worker_count() -> usize {
    let default = || std::thread::available_parallelism().map_or(1, usize::from);
    match std::env::var("GINKGO_WORKERS") {
        Err(std::env::VarError::NotPresent) => default(),
        Ok(value) => match value.trim().parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => {
                let n = default();
                eprintln!(
                    "ginkgo: GINKGO_WORKERS={value:?} is not a positive whole number; using {n} (one per core)"
                );
                n
            }
        },
        Err(std::env::VarError::NotUnicode(value)) => {
            let n = default();
            eprintln!(
                "ginkgo: GINKGO_WORKERS={value:?} is not valid text; using {n} (one per core)"
            );
            n
        }
    }
}

/// Implements [`RawUdpSocket`](crate::runtime::RawUdpSocket) for a newtype over a runtime's
/// own UDP socket whose methods have the usual names (`bind`, `connect`, `send_to`,
/// `recv_from`, `send`, `recv`, `local_addr`, `peer_addr`), as tokio's, async-std's and
/// async-net's do.
///
/// `forward_udp_socket!(UdpSocket, tokio::net::UdpSocket)` forwards to `self.0`.
#[macro_export]
macro_rules! forward_udp_socket {
    ($ty:ty, $inner:ty) => {
        impl $crate::runtime::RawUdpSocket for $ty {
            async fn bind(addr: ::std::net::SocketAddr) -> ::std::io::Result<Self> {
                <$inner>::bind(addr).await.map(Self)
            }

            async fn connect(&self, addr: ::std::net::SocketAddr) -> ::std::io::Result<()> {
                self.0.connect(addr).await
            }

            async fn send_to(
                &self,
                buf: &[u8],
                target: ::std::net::SocketAddr,
            ) -> ::std::io::Result<usize> {
                self.0.send_to(buf, target).await
            }

            async fn recv_from(
                &self,
                buf: &mut [u8],
            ) -> ::std::io::Result<(usize, ::std::net::SocketAddr)> {
                self.0.recv_from(buf).await
            }

            async fn send(&self, buf: &[u8]) -> ::std::io::Result<usize> {
                self.0.send(buf).await
            }

            async fn recv(&self, buf: &mut [u8]) -> ::std::io::Result<usize> {
                self.0.recv(buf).await
            }

            fn local_addr(&self) -> ::std::io::Result<::std::net::SocketAddr> {
                self.0.local_addr()
            }

            fn peer_addr(&self) -> ::std::io::Result<::std::net::SocketAddr> {
                self.0.peer_addr()
            }
        }
    };
}

/// Implements the address and option accessors of
/// [`RawTcpStream`](crate::runtime::RawTcpStream) (`local_addr`, `peer_addr`, `set_nodelay`,
/// `nodelay`) inside the trait's `impl` block, on the socket that the given path from `self`
/// reaches, whose methods have the usual names (as `std`'s, tokio's and async-std's do).
///
/// `tcp_stream_accessors!(0)` uses `self.0`; `tcp_stream_accessors!(0.get_ref())` uses
/// `self.0.get_ref()`.
#[macro_export]
macro_rules! tcp_stream_accessors {
    ($($socket:tt)+) => {
        fn local_addr(&self) -> ::std::io::Result<::std::net::SocketAddr> {
            self.$($socket)+.local_addr()
        }

        fn peer_addr(&self) -> ::std::io::Result<::std::net::SocketAddr> {
            self.$($socket)+.peer_addr()
        }

        fn set_nodelay(&self, nodelay: bool) -> ::std::io::Result<()> {
            self.$($socket)+.set_nodelay(nodelay)
        }

        fn nodelay(&self) -> ::std::io::Result<bool> {
            self.$($socket)+.nodelay()
        }
    };
}

/// Declares a backend's `TcpStream`, `TcpReadHalf` and `TcpWriteHalf` as newtypes over one
/// socket handle type `$handle`, which implements futures-io `AsyncRead` and `AsyncWrite` and
/// whose `get_ref()` gives the `std::net::TcpStream`. The halves are two handles to the same
/// socket; dropping the write half shuts down the write direction, as tokio's owned write half
/// does. `$doc` is the stream's doc comment.
#[macro_export]
macro_rules! tcp_stream_types {
    ($handle:ty, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug)]
        pub struct TcpStream($handle);

        $crate::forward_async_read!(TcpStream, 0);
        $crate::forward_async_write!(TcpStream, 0);

        /// The read half of a [`TcpStream`]: a second handle to the same socket.
        #[derive(Debug)]
        pub struct TcpReadHalf($handle);

        $crate::forward_async_read!(TcpReadHalf, 0);

        /// The write half of a [`TcpStream`]; shuts down the write direction when dropped.
        #[derive(Debug)]
        pub struct TcpWriteHalf($handle);

        $crate::forward_async_write!(TcpWriteHalf, 0);

        impl Drop for TcpWriteHalf {
            fn drop(&mut self) {
                // The peer sees end-of-file. The socket may already be gone, which is fine.
                let _ = self.0.get_ref().shutdown(::std::net::Shutdown::Write);
            }
        }
    };
}
