//! I/O traits: futures-io [`AsyncRead`] / [`AsyncWrite`] and futures-lite's extension traits
//! ([`AsyncReadExt::read_exact`], [`AsyncWriteExt::write_all`], [`copy`], …).

pub use futures_io::{AsyncBufRead, AsyncRead, AsyncWrite};
pub use futures_lite::io::{
    AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, BufWriter, copy,
};

use std::error::Error;
use std::fmt;
use std::io;

/// Adds context (the path or address that failed, say) to an I/O error without losing what it
/// was: the result has the same [`io::ErrorKind`], its message is `message(&err)`, its
/// [`source`](Error::source) is the original error, and [`raw_os_error`] still finds the OS
/// error code.
///
/// # Examples
///
/// ```
/// use std::io;
/// use ginkgo_api::io::{raw_os_error, with_context};
///
/// let refused = io::Error::from_raw_os_error(111); // ECONNREFUSED on Linux
/// let err = with_context(refused, |err| format!("connect to 127.0.0.1:9: {err}"));
/// assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
/// assert!(err.to_string().starts_with("connect to 127.0.0.1:9: "));
/// assert_eq!(raw_os_error(&err), Some(111));
/// assert!(std::error::Error::source(&err).is_some());
/// ```
pub fn with_context(err: io::Error, message: impl FnOnce(&io::Error) -> String) -> io::Error {
    let message = message(&err);
    io::Error::new(
        err.kind(),
        ContextError {
            message,
            source: err,
        },
    )
}

/// The OS error code of `err`, also when [`with_context`] wrapped it (at any depth).
pub fn raw_os_error(err: &io::Error) -> Option<i32> {
    err.raw_os_error().or_else(|| {
        err.get_ref()
            .and_then(|inner| inner.downcast_ref::<ContextError>())
            .and_then(|context| raw_os_error(&context.source))
    })
}

/// An I/O error with context; see [`with_context`].
#[derive(Debug)]
pub struct ContextError {
    message: String,
    source: io::Error,
}

impl ContextError {
    /// The error that had the context added.
    pub fn original(&self) -> &io::Error {
        &self.source
    }
}

impl fmt::Display for ContextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl Error for ContextError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.source)
    }
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
/// `forward_async_write!(MyStream, 0, close: shutdown)` forwards all but `poll_close`, which
/// flushes and then shuts down the write direction with the field's
/// `shutdown(Shutdown::Write)`: for a socket type whose own close only flushes.
#[macro_export]
macro_rules! forward_async_write {
    (impl<$($param:ident: $bound:path),*> $ty:ty, $field:tt) => {
        $crate::forward_async_write!(@impl [$($param: $bound),*] $ty, $field, forward);
    };
    (impl<$($param:ident: $bound:path),*> $ty:ty, $field:tt, close: shutdown) => {
        $crate::forward_async_write!(@impl [$($param: $bound),*] $ty, $field, shutdown);
    };
    (@close forward, $self:ident, $cx:ident, $field:tt) => {
        $crate::io::AsyncWrite::poll_close(::std::pin::Pin::new(&mut $self.$field), $cx)
    };
    (@close shutdown, $self:ident, $cx:ident, $field:tt) => {{
        ::std::task::ready!($crate::io::AsyncWrite::poll_flush(
            ::std::pin::Pin::new(&mut $self.$field),
            $cx
        ))?;
        ::std::task::Poll::Ready($self.$field.shutdown(::std::net::Shutdown::Write))
    }};
    (@impl [$($param:ident: $bound:path),*] $ty:ty, $field:tt, $close:ident) => {
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
                $crate::forward_async_write!(@close $close, self, cx, $field)
            }
        }
    };
    ($ty:ty, $field:tt, close: shutdown) => {
        $crate::forward_async_write!(impl<> $ty, $field, close: shutdown);
    };
    ($ty:ty, $field:tt) => {
        $crate::forward_async_write!(impl<> $ty, $field);
    };
}
