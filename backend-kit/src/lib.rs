//! What the ginkgo-rs backends share, so that each backend crate holds only its own runtime.
//! Users do not need this crate; it is not a backend.
//!
//! - [`native::NativeHandle`] gives a runtime's own cancellable handle (async-task's `Task`,
//!   async-std's `JoinHandle`) the ginkgo task contract at no per-task cost (smol, async-std).
//! - [`task::task`] and [`task::blocking`] give it to futures and closures run on plain
//!   threads, with an [`task::AbortFlag`] (threads, and the blocking pools of smol and
//!   async-std).
//! - [`Socket`]: the `std` stream socket types the smol and threads backends drive.
//! - [`worker_count`]: how many worker threads an executor runs (`GINKGO_WORKERS`).
//! - With the `async-io` feature, [`Sleep`] and [`Signals`]: timers and signals on async-io's
//!   reactor, for smol, async-std and threads (async-io's reactor runs in the thread that
//!   blocks in `async_io::block_on`, or in async-io's own thread, so every wait here can be
//!   timed out and cancelled on any executor).
//!
//! Where each backend waits: tokio in its own driver; smol's workers in the smol backend's
//! epoll of connected streams (Linux) and async-io's reactor for timers, listeners and
//! signals; async-std in async-io's reactor; each threads task in a `poll(2)` of its own
//! sockets, with signals on async-io's reactor.

#[cfg(feature = "async-io")]
mod async_io;
pub mod native;
mod socket;
pub mod task;

#[cfg(feature = "async-io")]
pub use async_io::{Signals, Sleep};
pub use socket::Socket;

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

/// Implements [`RawUdpSocket`](ginkgo_api::runtime::RawUdpSocket) for a newtype over a runtime's
/// own UDP socket whose methods have the usual names (`bind`, `connect`, `send_to`,
/// `recv_from`, `send`, `recv`, `local_addr`, `peer_addr`; `as_fd` through `AsFd`), as tokio's, async-std's and
/// async-net's do.
///
/// `forward_udp_socket!(UdpSocket, tokio::net::UdpSocket)` forwards to `self.0`, adopting a
/// `std` socket with `TryFrom`; a third argument, a closure from `std::net::UdpSocket` to
/// `io::Result<inner>`, adopts it otherwise.
#[macro_export]
macro_rules! forward_udp_socket {
    ($ty:ty, $inner:ty) => {
        $crate::forward_udp_socket!($ty, $inner, |socket: ::std::net::UdpSocket| {
            <$inner>::try_from(socket)
        });
    };
    ($ty:ty, $inner:ty, $adopt:expr) => {
        impl ::ginkgo_api::runtime::RawUdpSocket for $ty {
            async fn bind(addr: ::std::net::SocketAddr) -> ::std::io::Result<Self> {
                <$inner>::bind(addr).await.map(Self)
            }

            fn from_std(socket: ::std::net::UdpSocket) -> ::std::io::Result<Self> {
                socket.set_nonblocking(true)?;
                let adopt: fn(::std::net::UdpSocket) -> ::std::io::Result<$inner> = $adopt;
                adopt(socket).map(Self)
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

            fn as_fd(&self) -> ::std::os::fd::BorrowedFd<'_> {
                use ::std::os::fd::AsFd as _;
                self.0.as_fd()
            }
        }
    };
}

/// Implements the address and option accessors of
/// [`RawTcpStream`](ginkgo_api::runtime::RawTcpStream) (`local_addr`, `peer_addr`, `set_nodelay`,
/// `nodelay`, `as_fd`) inside the trait's `impl` block, on the socket that the given path from `self`
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

        fn as_fd(&self) -> ::std::os::fd::BorrowedFd<'_> {
            use ::std::os::fd::AsFd as _;
            self.$($socket)+.as_fd()
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

        ::ginkgo_api::forward_async_read!(TcpStream, 0);
        ::ginkgo_api::forward_async_write!(TcpStream, 0);

        /// The read half of a [`TcpStream`]: a second handle to the same socket.
        #[derive(Debug)]
        pub struct TcpReadHalf($handle);

        ::ginkgo_api::forward_async_read!(TcpReadHalf, 0);

        /// The write half of a [`TcpStream`]; shuts down the write direction when dropped.
        #[derive(Debug)]
        pub struct TcpWriteHalf($handle);

        ::ginkgo_api::forward_async_write!(TcpWriteHalf, 0);

        impl Drop for TcpWriteHalf {
            fn drop(&mut self) {
                // The peer sees end-of-file. The socket may already be gone, which is fine.
                let _ = self.0.get_ref().shutdown(::std::net::Shutdown::Write);
            }
        }
    };
}
