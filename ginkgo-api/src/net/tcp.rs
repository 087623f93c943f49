use std::fmt;
use std::io;
use std::net::{Shutdown, SocketAddr};

use super::addr::{ToSocketAddrs, each_addr};
use super::context;
use crate::runtime::{RawTcpListener, RawTcpStream, Runtime};

/// A TCP server socket.
///
/// # Examples
///
/// ```
/// # fn demo<R: ginkgo_api::Runtime>() {
/// use ginkgo_api::io::{AsyncReadExt, AsyncWriteExt};
/// use ginkgo_api::net::{TcpListener, TcpStream};
///
/// ginkgo_api::block_on::<R, _>(async {
///     let listener = TcpListener::<R>::bind("127.0.0.1:0").await?;
///     let addr = listener.local_addr()?;
///     let client = ginkgo_api::spawn::<R, _>(async move {
///         let mut stream = TcpStream::<R>::connect(addr).await?;
///         stream.write_all(b"hello").await?;
///         std::io::Result::Ok(())
///     });
///     let (mut conn, _peer) = listener.accept().await?;
///     let mut buf = [0; 5];
///     conn.read_exact(&mut buf).await?;
///     assert_eq!(&buf, b"hello");
///     client.await??;
///     std::io::Result::Ok(())
/// }).unwrap();
/// # }
/// ```
pub struct TcpListener<R: Runtime> {
    raw: R::TcpListener,
}

impl<R: Runtime> TcpListener<R> {
    /// Binds to the first of `addrs` that works (port 0 picks a free port).
    ///
    /// # Errors
    ///
    /// Fails when no address can be bound (in use, permission denied, not local) or a host name
    /// does not resolve; the message names the address.
    pub async fn bind(addrs: impl ToSocketAddrs) -> io::Result<Self> {
        let raw = each_addr::<R, _, _>(&addrs, "bind", R::TcpListener::bind).await?;
        Ok(Self { raw })
    }

    /// Adopts a listener that is already bound, for example one inherited through socket
    /// activation. It is switched to non-blocking mode.
    ///
    /// # Errors
    ///
    /// Fails if the socket cannot be registered with the runtime.
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<Self> {
        Ok(Self {
            raw: R::TcpListener::from_std(listener)?,
        })
    }

    /// Waits for the next connection.
    ///
    /// # Cancellation
    ///
    /// Dropping the future (for example through [`crate::time::timeout`]) stops waiting; no
    /// connection is lost, the next call gets it.
    ///
    /// # Errors
    ///
    /// Passes on errors from `accept(2)`, such as running out of file descriptors.
    #[inline]
    pub async fn accept(&self) -> io::Result<(TcpStream<R>, SocketAddr)> {
        let (raw, peer) = self.raw.accept().await?;
        Ok((TcpStream { raw }, peer))
    }

    /// The address the listener is bound to.
    ///
    /// # Errors
    ///
    /// Passes on errors from `getsockname(2)`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.raw.local_addr()
    }
}

impl<R: Runtime> fmt::Debug for TcpListener<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpListener")
            .field("local_addr", &self.local_addr().ok())
            .finish()
    }
}

/// A TCP connection.
///
/// Implements futures-io [`AsyncRead`](futures_io::AsyncRead) and
/// [`AsyncWrite`](futures_io::AsyncWrite); closing it (`poll_close`) shuts down the write
/// direction. See [`TcpListener`] for an example.
pub struct TcpStream<R: Runtime> {
    raw: R::TcpStream,
}

impl<R: Runtime> TcpStream<R> {
    /// Connects to the first of `addrs` that accepts.
    ///
    /// # Errors
    ///
    /// Fails when no address accepts (refused, unreachable) or a host name does not resolve; the
    /// message names the address. Wrap in [`crate::time::timeout`] to bound the wait.
    #[inline]
    pub async fn connect(addrs: impl ToSocketAddrs) -> io::Result<Self> {
        let raw = each_addr::<R, _, _>(&addrs, "connect to", R::TcpStream::connect).await?;
        Ok(Self { raw })
    }

    /// The local address of the connection.
    ///
    /// # Errors
    ///
    /// Passes on errors from `getsockname(2)`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.raw.local_addr()
    }

    /// The peer's address.
    ///
    /// # Errors
    ///
    /// Passes on errors from `getpeername(2)`, such as a connection that is gone.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.raw.peer_addr()
    }

    /// Sets `TCP_NODELAY` (disables Nagle's algorithm).
    ///
    /// # Errors
    ///
    /// Passes on errors from `setsockopt(2)`.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.raw.set_nodelay(nodelay)
    }

    /// Reads `TCP_NODELAY`.
    ///
    /// # Errors
    ///
    /// Passes on errors from `getsockopt(2)`.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.raw.nodelay()
    }

    /// Shuts down the read, write or both directions.
    ///
    /// # Errors
    ///
    /// Passes on errors from `shutdown(2)`, such as a socket that is not connected.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.raw
            .shutdown(how)
            .map_err(|err| context(err, "shutdown", format_args!("{how:?}")))
    }

    /// Splits the connection into halves that can move to different tasks. Dropping the write
    /// half shuts down the write direction, so the peer reads end-of-file.
    pub fn into_split(self) -> (OwnedReadHalf<R>, OwnedWriteHalf<R>) {
        let (read, write) = self.raw.into_split();
        (OwnedReadHalf { raw: read }, OwnedWriteHalf { raw: write })
    }
}

#[cfg(unix)]
impl<R: Runtime> std::os::fd::AsFd for TcpStream<R> {
    /// The socket, for options this type does not name (with `socket2::SockRef`, say).
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.raw.as_fd()
    }
}

crate::forward_async_read!(impl<R: Runtime> TcpStream<R>, raw);
crate::forward_async_write!(impl<R: Runtime> TcpStream<R>, raw);

impl<R: Runtime> fmt::Debug for TcpStream<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpStream")
            .field("local_addr", &self.local_addr().ok())
            .field("peer_addr", &self.peer_addr().ok())
            .finish()
    }
}

/// The read half of a [`TcpStream`], from [`TcpStream::into_split`].
pub struct OwnedReadHalf<R: Runtime> {
    raw: <R::TcpStream as RawTcpStream>::ReadHalf,
}

crate::forward_async_read!(impl<R: Runtime> OwnedReadHalf<R>, raw);

impl<R: Runtime> fmt::Debug for OwnedReadHalf<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OwnedReadHalf")
    }
}

/// The write half of a [`TcpStream`], from [`TcpStream::into_split`]. Dropping it shuts down
/// the write direction.
pub struct OwnedWriteHalf<R: Runtime> {
    raw: <R::TcpStream as RawTcpStream>::WriteHalf,
}

crate::forward_async_write!(impl<R: Runtime> OwnedWriteHalf<R>, raw);

impl<R: Runtime> fmt::Debug for OwnedWriteHalf<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OwnedWriteHalf")
    }
}

#[cfg(unix)]
impl<R: Runtime> std::os::fd::AsFd for TcpListener<R> {
    /// The listening socket, for options this type does not name, or to hand it to another
    /// process.
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.raw.as_fd()
    }
}
