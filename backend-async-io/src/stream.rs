//! [`Stream`]: a connected stream socket on the async-io reactor, read and written with one
//! system call per operation where possible.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::Shutdown;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use async_io::Async;
use futures_io::{AsyncRead, AsyncWrite};

/// A stream socket type of `std` that [`Stream`] can drive.
pub trait Socket: Send + Sync + 'static
where
    for<'a> &'a Self: Read + Write,
{
    /// Shuts down the given direction(s), as `std`'s `shutdown`.
    fn shutdown(&self, how: Shutdown) -> io::Result<()>;
}

impl Socket for std::net::TcpStream {
    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        std::net::TcpStream::shutdown(self, how)
    }
}

impl Socket for std::os::unix::net::UnixStream {
    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        std::os::unix::net::UnixStream::shutdown(self, how)
    }
}

/// A stream socket registered with the async-io reactor; clones of the `Arc` (split halves)
/// share the registration.
///
/// Unlike async-net's streams it waits with [`Async::poll_readable`] and
/// [`Async::poll_writable`] directly, with no readiness future to create and drop per wait,
/// and it remembers a short read: a read that returned less than asked for emptied the
/// socket's receive buffer, so the next read waits for readiness first instead of making a
/// system call that would only fail with `EWOULDBLOCK` (tokio does the same). For a
/// request/response protocol that saves one system call per request.
#[derive(Debug)]
pub struct Stream<T> {
    io: Arc<Async<T>>,
    /// The last read emptied the receive buffer.
    drained: bool,
}

impl<T> Stream<T> {
    /// Wraps a registered socket.
    pub fn new(io: Arc<Async<T>>) -> Self {
        Self { io, drained: false }
    }

    /// The `std` socket.
    pub fn get_ref(&self) -> &T {
        self.io.get_ref()
    }

    /// Another handle to the same socket and registration (for split halves).
    pub fn share(&self) -> Self {
        Self::new(self.io.clone())
    }
}

impl<T: Socket> Stream<T>
where
    for<'a> &'a T: Read + Write,
{
    /// Reads with `read`, waiting for readiness first after a short read or `EWOULDBLOCK`.
    fn poll_read_with(
        &mut self,
        cx: &mut Context<'_>,
        wanted: usize,
        mut read: impl FnMut(&T) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        loop {
            if self.drained {
                ready!(self.io.poll_readable(cx))?;
                self.drained = false;
            }
            match read(self.io.get_ref()) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => self.drained = true,
                Ok(n) => {
                    self.drained = n > 0 && n < wanted;
                    return Poll::Ready(Ok(n));
                }
                Err(err) => return Poll::Ready(Err(err)),
            }
        }
    }

    /// Writes with `write`, waiting for readiness after `EWOULDBLOCK`.
    fn poll_write_with(
        &mut self,
        cx: &mut Context<'_>,
        mut write: impl FnMut(&T) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        loop {
            match write(self.io.get_ref()) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    ready!(self.io.poll_writable(cx))?;
                }
                result => return Poll::Ready(result),
            }
        }
    }
}

impl<T: Socket> AsyncRead for Stream<T>
where
    for<'a> &'a T: Read + Write,
{
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let wanted = buf.len();
        self.get_mut()
            .poll_read_with(cx, wanted, |mut socket| socket.read(buf))
    }

    fn poll_read_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
    ) -> Poll<io::Result<usize>> {
        let wanted = bufs.iter().map(|buf| buf.len()).sum();
        self.get_mut()
            .poll_read_with(cx, wanted, |mut socket| socket.read_vectored(bufs))
    }
}

impl<T: Socket> AsyncWrite for Stream<T>
where
    for<'a> &'a T: Read + Write,
{
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .poll_write_with(cx, |mut socket| socket.write(buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .poll_write_with(cx, |mut socket| socket.write_vectored(bufs))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Sockets have no user-space buffer.
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.io.get_ref().shutdown(Shutdown::Write))
    }
}
