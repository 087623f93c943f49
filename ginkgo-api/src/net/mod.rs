//! Networking: [`TcpListener`], [`TcpStream`], [`UdpSocket`] and, on Unix, [`UnixListener`]
//! and [`UnixStream`].
//!
//! Streams implement futures-io's [`AsyncRead`](futures_io::AsyncRead) and
//! [`AsyncWrite`](futures_io::AsyncWrite); use the extension traits in [`crate::io`] for
//! `read_exact`, `write_all` and friends. Errors name the address that failed, so a log line
//! says what to fix.

mod addr;
mod tcp;
mod udp;
#[cfg(unix)]
mod unix;

pub use addr::ToSocketAddrs;
pub use tcp::{OwnedReadHalf, OwnedWriteHalf, TcpListener, TcpStream};
pub use udp::UdpSocket;
#[cfg(unix)]
pub use unix::{UnixListener, UnixStream};

pub use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr};

/// Delegates futures-io `AsyncRead` to the `$field` of a wrapper.
macro_rules! delegate_async_read {
    ($ty:ident < $r:ident >, $field:ident) => {
        impl<$r: $crate::runtime::Runtime> futures_io::AsyncRead for $ty<$r> {
            #[inline]
            fn poll_read(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &mut [u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                std::pin::Pin::new(&mut self.$field).poll_read(cx, buf)
            }

            #[inline]
            fn poll_read_vectored(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &mut [std::io::IoSliceMut<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                std::pin::Pin::new(&mut self.$field).poll_read_vectored(cx, bufs)
            }
        }
    };
}

/// Delegates futures-io `AsyncWrite` to the `$field` of a wrapper.
macro_rules! delegate_async_write {
    ($ty:ident < $r:ident >, $field:ident) => {
        impl<$r: $crate::runtime::Runtime> futures_io::AsyncWrite for $ty<$r> {
            #[inline]
            fn poll_write(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                std::pin::Pin::new(&mut self.$field).poll_write(cx, buf)
            }

            #[inline]
            fn poll_write_vectored(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                std::pin::Pin::new(&mut self.$field).poll_write_vectored(cx, bufs)
            }

            #[inline]
            fn poll_flush(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::pin::Pin::new(&mut self.$field).poll_flush(cx)
            }

            #[inline]
            fn poll_close(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::pin::Pin::new(&mut self.$field).poll_close(cx)
            }
        }
    };
}

pub(crate) use {delegate_async_read, delegate_async_write};

/// Adds `what` and `target` to an I/O error, keeping its kind, so the message says what failed.
pub(crate) fn context(
    err: std::io::Error,
    what: &str,
    target: impl std::fmt::Display,
) -> std::io::Error {
    std::io::Error::new(err.kind(), format!("{what} {target}: {err}"))
}
