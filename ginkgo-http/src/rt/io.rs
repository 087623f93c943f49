use std::cell::Cell;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_io::{AsyncRead, AsyncWrite};
use hyper::rt::ReadBufCursor;
use pin_project_lite::pin_project;

/// The most one read takes: a request head, or a good slice of a large body.
const READ_SIZE: usize = 16 * 1024;

thread_local! {
    /// Where this thread's reads land before they are copied to hyper: zeroed once, when the
    /// thread first reads, instead of once per read. Taken for the length of a read, so a
    /// read within a read (a stream that wraps another `Io`) gets a buffer of its own.
    static READ_BUFFER: Cell<Option<Box<[u8]>>> = const { Cell::new(None) };
}

pin_project! {
    /// Lets hyper use a futures-io stream (such as [`ginkgo_api::net::TcpStream`]): implements
    /// [`hyper::rt::Read`] and [`hyper::rt::Write`] for any [`AsyncRead`] + [`AsyncWrite`].
    ///
    /// Writes, flushes and shutdowns are passed straight through (shutdown is
    /// [`AsyncWrite::poll_close`]); vectored writes too, and [`hyper::rt::Write::is_write_vectored`]
    /// says `true` because every ginkgo socket writes vectors natively.
    ///
    /// Reads are copied: hyper hands over a buffer that may be uninitialized, which only
    /// `unsafe` code may fill in place, and this crate forbids `unsafe` (see the crate docs for
    /// the measurement behind that). Each read fills a buffer of the thread's, zeroed once when
    /// the thread first reads, and copies what arrived with the safe
    /// [`ReadBufCursor::put_slice`]: a read costs the copy of its bytes and nothing else, and a
    /// connection holds no buffer of its own while it waits.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo<R: ginkgo_api::Runtime>() -> std::io::Result<()> {
    /// let stream = ginkgo_api::net::TcpStream::<R>::connect("127.0.0.1:8080").await?;
    /// let io = ginkgo_http::rt::Io::new(stream);
    /// // `io` can now be given to hyper::client::conn::http1::handshake, or to a server builder.
    /// # drop(io); Ok(()) }
    /// ```
    #[derive(Debug)]
    pub struct Io<T> {
        #[pin]
        inner: T,
    }
}

impl<T> Io<T> {
    /// Wraps a futures-io stream.
    pub const fn new(inner: T) -> Self {
        Self { inner }
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// The wrapped stream, mutably.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    /// Unwraps the stream.
    pub fn into_inner(self) -> T {
        self.inner
    }
}

impl<T: AsyncRead> hyper::rt::Read for Io<T> {
    #[inline]
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        // During thread exit the buffer may be gone: a fresh one serves then.
        let mut chunk = READ_BUFFER
            .try_with(Cell::take)
            .ok()
            .flatten()
            .unwrap_or_else(|| vec![0; READ_SIZE].into_boxed_slice());
        let read = read_through(self.project().inner, cx, buf, &mut chunk);
        let _ = READ_BUFFER.try_with(|cell| cell.set(Some(chunk)));
        read
    }
}

/// One read into hyper's buffer through `chunk`.
#[inline]
fn read_through<T: AsyncRead>(
    inner: Pin<&mut T>,
    cx: &mut Context<'_>,
    mut buf: ReadBufCursor<'_>,
    chunk: &mut [u8],
) -> Poll<io::Result<()>> {
    let want = buf.remaining().min(chunk.len());
    if want == 0 {
        return Poll::Ready(Ok(()));
    }
    let chunk = &mut chunk[..want];
    let n = ready!(inner.poll_read(cx, chunk))?;
    // A reader that claims more than it was given is broken; do not let it panic hyper.
    let Some(read) = chunk.get(..n) else {
        return Poll::Ready(Err(io::Error::other(format!(
            "read reported {n} bytes into a buffer of {want}"
        ))));
    };
    buf.put_slice(read);
    Poll::Ready(Ok(()))
}

impl<T: AsyncWrite> hyper::rt::Write for Io<T> {
    #[inline]
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write(cx, buf)
    }

    #[inline]
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    #[inline]
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_close(cx)
    }

    #[inline]
    fn is_write_vectored(&self) -> bool {
        true
    }

    #[inline]
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write_vectored(cx, bufs)
    }
}
