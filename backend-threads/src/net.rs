//! Sockets of the threads backend: non-blocking system calls first; on `WouldBlock`, a wait in
//! the thread's own poller, or on the async-io reactor on a thread that has none.
//!
//! Every socket wraps an [`async_io::Async`] of the `std` type: it sets the descriptor
//! non-blocking and provides the reactor fallback for sockets polled outside a threads-backend
//! task.

use std::fmt;
use std::future::poll_fn;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::SocketAddr as UnixSocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use async_io::Async;
use ginkgo_api::io::{AsyncRead, AsyncWrite};
use ginkgo_api::runtime::{
    RawTcpListener, RawTcpStream, RawUdpSocket, RawUnixListener, RawUnixStream,
};
use ginkgo_api::{forward_async_read, forward_async_write};
use ginkgo_backend_kit::Socket as StreamSocket;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::poller::{self, Interest, Shared, Source};

const READ: &[Interest] = &[Interest::Read];
const WRITE: &[Interest] = &[Interest::Write];
const BOTH: &[Interest] = &[Interest::Read, Interest::Write];

/// A socket shared by its handles (a stream and its halves).
struct Inner<T> {
    io: Async<T>,
    /// User handles still open; at zero, pollers drop the socket from their tables.
    handles: AtomicUsize,
    /// Pollers that may hold the socket in `poll(2)`, woken when the last handle closes so
    /// that the descriptor is closed at once.
    pollers: Mutex<Vec<Weak<Shared>>>,
}

impl<T: AsFd + Send + Sync> Source for Inner<T> {
    fn fd(&self) -> BorrowedFd<'_> {
        self.io.as_fd()
    }

    fn is_open(&self) -> bool {
        self.handles.load(Ordering::Acquire) > 0
    }

    fn note_poller(&self, poller: &Arc<Shared>) {
        let mut pollers = self.pollers.lock().unwrap_or_else(PoisonError::into_inner);
        if !pollers.iter().any(|p| p.as_ptr() == Arc::as_ptr(poller)) {
            pollers.retain(|p| p.strong_count() > 0);
            pollers.push(Arc::downgrade(poller));
        }
    }
}

/// One user handle to a socket, waiting in the directions it owns.
struct Handle<T: AsFd + Send + Sync + 'static> {
    inner: Arc<Inner<T>>,
    /// The directions this handle waits in, forgotten by this thread's poller on drop.
    interests: &'static [Interest],
}

impl<T: AsFd + Send + Sync + 'static> Handle<T> {
    /// Adopts `io`, switching it to non-blocking mode.
    fn new(io: T) -> io::Result<Self> {
        Ok(Self::wrap(Async::new(io)?))
    }

    fn wrap(io: Async<T>) -> Self {
        Self {
            inner: Arc::new(Inner {
                io,
                handles: AtomicUsize::new(1),
                pollers: Mutex::new(Vec::new()),
            }),
            interests: BOTH,
        }
    }

    fn get_ref(&self) -> &T {
        self.inner.io.get_ref()
    }

    /// A second handle to the same socket, for `interests`.
    fn share(&self, interests: &'static [Interest]) -> Self {
        self.inner.handles.fetch_add(1, Ordering::Relaxed);
        Self {
            inner: self.inner.clone(),
            interests,
        }
    }

    /// This handle, now owning only `interests`.
    fn narrow(mut self, interests: &'static [Interest]) -> Self {
        self.interests = interests;
        self
    }

    /// Runs the non-blocking `op` until it does not report `WouldBlock`, waiting for
    /// `interest` in between: in this thread's poller if it has one, else on the reactor.
    fn poll_io<R>(
        &self,
        cx: &mut Context<'_>,
        interest: Interest,
        mut op: impl FnMut(&T) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        loop {
            match op(self.get_ref()) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                result => return Poll::Ready(result),
            }
            let local = poller::with_current(|poller| {
                poller.register_io(&self.inner, interest, cx.waker());
            });
            if local.is_some() {
                return Poll::Pending;
            }
            ready!(match interest {
                Interest::Read => self.inner.io.poll_readable(cx),
                Interest::Write => self.inner.io.poll_writable(cx),
            })?;
        }
    }
}

impl<T: AsFd + Send + Sync + 'static> Drop for Handle<T> {
    fn drop(&mut self) {
        let key = poller::source_key(&self.inner);
        let interests = self.interests;
        poller::with_current(|poller| poller.deregister_io(key, interests));
        if self.inner.handles.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        // The last handle: a poller on another thread may be holding the descriptor open in
        // its `poll(2)`; wake it so that it lets go and the socket closes now.
        let pollers = std::mem::take(
            &mut *self
                .inner
                .pollers
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for shared in pollers.iter().filter_map(Weak::upgrade) {
            if poller::with_current(|poller| poller.is(&shared)) != Some(true) {
                shared.notify();
            }
        }
    }
}

impl<T: AsFd + Send + Sync + fmt::Debug + 'static> fmt::Debug for Handle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.get_ref().fmt(f)
    }
}

impl<T: StreamSocket + AsFd> AsyncRead for Handle<T>
where
    for<'a> &'a T: Read + Write,
{
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_io(cx, Interest::Read, |mut io| io.read(buf))
    }

    fn poll_read_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_io(cx, Interest::Read, |mut io| io.read_vectored(bufs))
    }
}

impl<T: StreamSocket + AsFd> AsyncWrite for Handle<T>
where
    for<'a> &'a T: Read + Write,
{
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_io(cx, Interest::Write, |mut io| io.write(buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_io(cx, Interest::Write, |mut io| io.write_vectored(bufs))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(StreamSocket::shutdown(self.get_ref(), Shutdown::Write))
    }
}

/// Waits until a non-blocking connect started on `handle` has finished; gives its error if it
/// failed.
async fn finish_connect<T: AsFd + Send + Sync + 'static>(
    handle: &Handle<T>,
    check: impl Fn(&T) -> io::Result<Option<io::Error>>,
) -> io::Result<()> {
    poll_fn(|cx| {
        handle.poll_io(cx, Interest::Write, |io| match check(io)? {
            Some(err) => Err(err),
            None => Ok(()),
        })
    })
    .await
}

/// Whether `err` from a non-blocking `connect(2)` means "in progress".
fn in_progress(err: &io::Error) -> bool {
    err.raw_os_error() == Some(rustix::io::Errno::INPROGRESS.raw_os_error())
}

/// A TCP listener of the threads backend.
#[derive(Debug)]
pub struct TcpListener(Handle<std::net::TcpListener>);

impl RawTcpListener for TcpListener {
    type Stream = TcpStream;

    async fn bind(addr: SocketAddr) -> io::Result<Self> {
        // bind(2) and listen(2) do not block.
        Handle::new(std::net::TcpListener::bind(addr)?).map(Self)
    }

    fn from_std(listener: std::net::TcpListener) -> io::Result<Self> {
        Handle::new(listener).map(Self)
    }

    async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (stream, peer) = poll_fn(|cx| {
            self.0
                .poll_io(cx, Interest::Read, |listener| listener.accept())
        })
        .await?;
        Ok((TcpStream(Handle::new(stream)?), peer))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().local_addr()
    }

    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(self.0.get_ref())
    }
}

ginkgo_backend_kit::tcp_stream_types!(
    Handle<std::net::TcpStream>,
    "A TCP connection of the threads backend."
);

impl RawTcpStream for TcpStream {
    type ReadHalf = TcpReadHalf;
    type WriteHalf = TcpWriteHalf;

    async fn connect(addr: SocketAddr) -> io::Result<Self> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_nonblocking(true)?;
        match socket.connect(&addr.into()) {
            Ok(()) => {}
            Err(err) if in_progress(&err) || err.kind() == io::ErrorKind::WouldBlock => {}
            Err(err) => return Err(err),
        }
        let stream = Handle::wrap(Async::new_nonblocking(std::net::TcpStream::from(socket))?);
        // Writable once connected or failed; a failure leaves its error in SO_ERROR, and a
        // socket still connecting has neither an error nor a peer.
        finish_connect(&stream, |stream| match stream.take_error()? {
            Some(err) => Ok(Some(err)),
            None => match stream.peer_addr() {
                Ok(_) => Ok(None),
                Err(err) if err.kind() == io::ErrorKind::NotConnected => {
                    Err(io::ErrorKind::WouldBlock.into())
                }
                Err(err) => Err(err),
            },
        })
        .await?;
        Ok(Self(stream))
    }

    ginkgo_backend_kit::tcp_stream_accessors!(0.get_ref());

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.0.get_ref().shutdown(how)
    }

    fn into_split(self) -> (TcpReadHalf, TcpWriteHalf) {
        let read = TcpReadHalf(self.0.share(READ));
        (read, TcpWriteHalf(self.0.narrow(WRITE)))
    }
}

/// A UDP socket of the threads backend.
#[derive(Debug)]
pub struct UdpSocket(Handle<std::net::UdpSocket>);

impl RawUdpSocket for UdpSocket {
    async fn bind(addr: SocketAddr) -> io::Result<Self> {
        Handle::new(std::net::UdpSocket::bind(addr)?).map(Self)
    }

    fn from_std(socket: std::net::UdpSocket) -> io::Result<Self> {
        Handle::new(socket).map(Self)
    }

    async fn connect(&self, addr: SocketAddr) -> io::Result<()> {
        // A UDP connect(2) only sets the default peer: it does not block.
        self.0.get_ref().connect(addr)
    }

    async fn send_to(&self, buf: &[u8], target: SocketAddr) -> io::Result<usize> {
        poll_fn(|cx| {
            self.0
                .poll_io(cx, Interest::Write, |socket| socket.send_to(buf, target))
        })
        .await
    }

    async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        poll_fn(|cx| {
            self.0
                .poll_io(cx, Interest::Read, |socket| socket.recv_from(buf))
        })
        .await
    }

    async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        poll_fn(|cx| {
            self.0
                .poll_io(cx, Interest::Write, |socket| socket.send(buf))
        })
        .await
    }

    async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| {
            self.0
                .poll_io(cx, Interest::Read, |socket| socket.recv(buf))
        })
        .await
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().local_addr()
    }

    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().peer_addr()
    }

    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(self.0.get_ref())
    }
}

/// A Unix-domain listener of the threads backend.
#[derive(Debug)]
pub struct UnixListener(Handle<std::os::unix::net::UnixListener>);

impl RawUnixListener for UnixListener {
    type Stream = UnixStream;

    fn bind(path: &Path) -> io::Result<Self> {
        Handle::new(std::os::unix::net::UnixListener::bind(path)?).map(Self)
    }

    fn from_std(listener: std::os::unix::net::UnixListener) -> io::Result<Self> {
        Handle::new(listener).map(Self)
    }

    async fn accept(&self) -> io::Result<(UnixStream, UnixSocketAddr)> {
        let (stream, addr) = poll_fn(|cx| {
            self.0
                .poll_io(cx, Interest::Read, |listener| listener.accept())
        })
        .await?;
        Ok((UnixStream(Handle::new(stream)?), addr))
    }

    fn local_addr(&self) -> io::Result<UnixSocketAddr> {
        self.0.get_ref().local_addr()
    }

    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(self.0.get_ref())
    }
}

/// A Unix-domain connection of the threads backend.
#[derive(Debug)]
pub struct UnixStream(Handle<std::os::unix::net::UnixStream>);

forward_async_read!(UnixStream, 0);
forward_async_write!(UnixStream, 0);

/// The longest pause between connection attempts while a Unix listener's backlog is full.
const MAX_BACKLOG_PAUSE: Duration = Duration::from_millis(50);

impl RawUnixStream for UnixStream {
    async fn connect(path: &Path) -> io::Result<Self> {
        let addr = SockAddr::unix(path)?;
        let mut pause = Duration::from_millis(1);
        loop {
            let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
            socket.set_nonblocking(true)?;
            match socket.connect(&addr) {
                Ok(()) => {}
                Err(err) if in_progress(&err) => {}
                // The listener's backlog is full (EAGAIN): a blocking connect would wait for
                // room, which cannot be waited for in poll(2). Try again shortly, cancellably.
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    crate::time::Sleep::until(std::time::Instant::now() + pause).await;
                    pause = (pause * 2).min(MAX_BACKLOG_PAUSE);
                    continue;
                }
                Err(err) => return Err(err),
            }
            let stream = Handle::wrap(Async::new_nonblocking(
                std::os::unix::net::UnixStream::from(std::os::fd::OwnedFd::from(socket)),
            )?);
            finish_connect(&stream, |stream| match stream.take_error()? {
                Some(err) => Ok(Some(err)),
                None => stream.peer_addr().map(|_| None),
            })
            .await?;
            return Ok(Self(stream));
        }
    }

    fn pair() -> io::Result<(Self, Self)> {
        let (a, b) = std::os::unix::net::UnixStream::pair()?;
        Ok((Self(Handle::new(a)?), Self(Handle::new(b)?)))
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.0.get_ref().shutdown(how)
    }

    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(self.0.get_ref())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use ginkgo_api::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// Echoes one message over loopback, from listener to connection to split halves.
    async fn echo_once() -> io::Result<()> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let mut client = TcpStream::connect(addr).await?;
        let (server, _) = listener.accept().await?;
        let (mut read, mut write) = server.into_split();
        client.write_all(b"hello").await?;
        let mut buf = [0; 5];
        read.read_exact(&mut buf).await?;
        write.write_all(&buf).await?;
        drop(write);
        let mut echoed = Vec::new();
        client.read_to_end(&mut echoed).await?;
        assert_eq!(echoed, b"hello");
        Ok(())
    }

    #[test]
    fn sockets_use_the_thread_poller() {
        crate::poller::block_on(echo_once()).unwrap();
    }

    #[test]
    fn sockets_fall_back_to_the_reactor_without_a_poller() {
        // A foreign executor: no threads-backend poller on this thread.
        async_io::block_on(echo_once()).unwrap();
    }

    #[test]
    fn connect_refused_fails_with_and_without_a_poller() {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .unwrap();
        for err in [
            crate::poller::block_on(TcpStream::connect(addr)).unwrap_err(),
            async_io::block_on(TcpStream::connect(addr)).unwrap_err(),
        ] {
            assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
        }
    }

    #[test]
    fn unix_connect_and_accept_without_a_poller() {
        // The directory, socket file and all, goes when `dir` drops, also on a failure.
        let dir = tempfile::Builder::new()
            .prefix("ginkgo-threads-")
            .tempdir()
            .unwrap();
        let path = dir.path().join("test.sock");
        let listener = UnixListener::bind(&path).unwrap();
        async_io::block_on(async {
            let mut client = UnixStream::connect(&path).await.unwrap();
            let (mut server, _) = listener.accept().await.unwrap();
            client.write_all(b"x").await.unwrap();
            let mut buf = [0; 1];
            server.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"x");
        });
    }

    #[test]
    fn udp_without_a_poller() {
        async_io::block_on(async {
            let a = UdpSocket::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
                .await
                .unwrap();
            let b = UdpSocket::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
                .await
                .unwrap();
            let start = Instant::now();
            a.send_to(b"ping", b.local_addr().unwrap()).await.unwrap();
            let mut buf = [0; 8];
            let (n, from) = b.recv_from(&mut buf).await.unwrap();
            assert_eq!((&buf[..n], from), (&b"ping"[..], a.local_addr().unwrap()));
            assert!(start.elapsed() < Duration::from_secs(10));
        });
    }
}
