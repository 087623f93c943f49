use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_io::{AsyncRead, AsyncWrite};
use hyper::rt::ReadBufCursor;
use pin_project_lite::pin_project;

/// The stack buffer of most reads: a request head or a small body fits, and zeroing it costs
/// less than the system call behind it. See [`Io`] for why reads go through a buffer.
const SMALL_READ: usize = 1024;
/// The stack buffer of reads after one filled [`SMALL_READ`], while data keeps coming fast.
const LARGE_READ: usize = 16 * 1024;

pin_project! {
    /// Lets hyper use a futures-io stream (such as [`ginkgo_api::net::TcpStream`]): implements
    /// [`hyper::rt::Read`] and [`hyper::rt::Write`] for any [`AsyncRead`] + [`AsyncWrite`].
    ///
    /// Writes, flushes and shutdowns are passed straight through (shutdown is
    /// [`AsyncWrite::poll_close`]); vectored writes too, and [`hyper::rt::Write::is_write_vectored`]
    /// says `true` because every ginkgo socket writes vectors natively.
    ///
    /// Reads are copied: hyper hands over a buffer that may be uninitialized, which only
    /// `unsafe` code may fill in place, and ginkgo forbids `unsafe`. Each read fills a zeroed
    /// stack buffer and copies it with the safe [`ReadBufCursor::put_slice`]. The buffer is
    /// 1 KiB, so zeroing it stays cheap next to the system call; after a read that fills it
    /// (a large body arriving), reads use 16 KiB until one fits in 1 KiB again. Nothing is
    /// allocated.
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
        large_reads: bool,
    }
}

impl<T> Io<T> {
    /// Wraps a futures-io stream.
    pub const fn new(inner: T) -> Self {
        Self {
            inner,
            large_reads: false,
        }
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
        let this = self.project();
        if *this.large_reads {
            let n = ready!(read_through::<LARGE_READ, T>(this.inner, cx, buf))?;
            *this.large_reads = n > SMALL_READ;
        } else {
            let n = ready!(read_through::<SMALL_READ, T>(this.inner, cx, buf))?;
            *this.large_reads = n == SMALL_READ;
        }
        Poll::Ready(Ok(()))
    }
}

/// One read of at most `N` bytes into hyper's buffer through a zeroed stack buffer; gives the
/// number of bytes read.
#[inline]
fn read_through<const N: usize, T: AsyncRead>(
    inner: Pin<&mut T>,
    cx: &mut Context<'_>,
    mut buf: ReadBufCursor<'_>,
) -> Poll<io::Result<usize>> {
    let want = buf.remaining().min(N);
    if want == 0 {
        return Poll::Ready(Ok(0));
    }
    let mut chunk = [0u8; N];
    let n = ready!(inner.poll_read(cx, &mut chunk[..want]))?;
    // A reader that claims more than it was given is broken; do not let it panic hyper.
    let Some(read) = chunk.get(..n) else {
        return Poll::Ready(Err(io::Error::other(format!(
            "read reported {n} bytes into a buffer of {want}"
        ))));
    };
    buf.put_slice(read);
    Poll::Ready(Ok(n))
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
