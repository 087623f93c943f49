//! An open listener of either kind ([`Listener`]), what it accepts ([`Stream`]), and who
//! connected ([`Peer`]).

use std::fmt;
use std::io::{self, IoSlice, IoSliceMut};
use std::net::{Shutdown, SocketAddr};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_io::{AsyncRead, AsyncWrite};
use ginkgo_api::Runtime;
use ginkgo_api::net::{PeerCredentials, TcpListener, TcpStream, UnixListener, UnixStream};

use crate::listen::{ListenOptions, LocalAddr};

/// An open listening socket, TCP or Unix-domain, from [`Listen::open`](crate::Listen::open):
/// what the [`AcceptLoop`](crate::AcceptLoop) accepts from. A Unix socket file the listener
/// created is removed when it is dropped (if it is still the same file).
pub struct Listener<R: Runtime> {
    kind: Kind<R>,
    addr: LocalAddr,
    nodelay: bool,
    keepalive: Option<Duration>,
    _file: Option<SocketFile>,
}

enum Kind<R: Runtime> {
    Tcp(TcpListener<R>),
    Unix(UnixListener<R>),
}

impl<R: Runtime> Listener<R> {
    pub(crate) fn tcp(listener: TcpListener<R>, options: &ListenOptions) -> io::Result<Self> {
        Ok(Self {
            addr: LocalAddr::Tcp(listener.local_addr()?),
            kind: Kind::Tcp(listener),
            nodelay: options.nodelay,
            keepalive: options.keepalive,
            _file: None,
        })
    }

    pub(crate) fn unix(listener: UnixListener<R>, file: Option<SocketFile>) -> io::Result<Self> {
        let addr = listener.local_addr()?;
        Ok(Self {
            addr: LocalAddr::Unix(addr.as_pathname().map(Path::to_path_buf)),
            kind: Kind::Unix(listener),
            nodelay: false,
            keepalive: None,
            _file: file,
        })
    }

    /// Where it listens.
    pub fn local_addr(&self) -> &LocalAddr {
        &self.addr
    }

    /// Waits for the next connection, set up as the listener's [`ListenOptions`] say.
    ///
    /// # Cancellation
    ///
    /// Dropping the future stops waiting; no connection is lost, the next call gets it.
    ///
    /// # Errors
    ///
    /// Passes on errors from `accept(2)`, such as running out of file descriptors.
    #[inline]
    pub async fn accept(&self) -> io::Result<(Stream<R>, Peer)> {
        match &self.kind {
            Kind::Tcp(listener) => {
                let (stream, peer) = listener.accept().await?;
                self.set_up(&stream);
                Ok((Stream::from(stream), Peer::Tcp(peer)))
            }
            Kind::Unix(listener) => {
                let (stream, _) = listener.accept().await?;
                let credentials = stream.peer_credentials().ok();
                Ok((Stream::from(stream), Peer::Unix(credentials)))
            }
        }
    }

    /// Sets the per-connection options. A failure concerns that connection only (it may
    /// already be gone), so it is logged rather than failing the accept.
    fn set_up(&self, stream: &TcpStream<R>) {
        if self.nodelay
            && let Err(err) = stream.set_nodelay(true)
        {
            tracing::debug!(%err, "cannot set TCP_NODELAY on an accepted connection");
        }
        if let Some(idle) = self.keepalive {
            let keepalive = socket2::TcpKeepalive::new()
                .with_time(idle)
                .with_interval(idle);
            if let Err(err) = socket2::SockRef::from(stream).set_tcp_keepalive(&keepalive) {
                tracing::debug!(%err, "cannot set TCP keepalive on an accepted connection");
            }
        }
    }
}

impl<R: Runtime> fmt::Debug for Listener<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listener")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// A socket file a listener created, removed when the listener goes, unless another has
/// replaced it in the meantime (same path, another file).
pub(crate) struct SocketFile {
    path: PathBuf,
    id: (u64, u64),
}

impl SocketFile {
    pub(crate) fn created(path: &Path) -> io::Result<Self> {
        Ok(Self {
            path: path.to_path_buf(),
            id: file_id(path)?,
        })
    }
}

fn file_id(path: &Path) -> io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(path)?;
    Ok((meta.dev(), meta.ino()))
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        if file_id(&self.path).is_ok_and(|id| id == self.id)
            && let Err(err) = std::fs::remove_file(&self.path)
        {
            tracing::warn!(path = %self.path.display(), %err, "cannot remove the socket file");
        }
    }
}

/// Who is at the other end of an accepted connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Peer {
    /// A TCP peer's address.
    Tcp(SocketAddr),
    /// A Unix-domain peer: its process's credentials, as the kernel recorded them
    /// (`None` when they could not be read).
    Unix(Option<PeerCredentials>),
}

impl Peer {
    /// The TCP peer's address, if it is one.
    pub fn tcp(&self) -> Option<SocketAddr> {
        match self {
            Peer::Tcp(addr) => Some(*addr),
            Peer::Unix(_) => None,
        }
    }

    /// The Unix-domain peer's credentials (pid, uid, gid), if it is one.
    pub fn credentials(&self) -> Option<PeerCredentials> {
        match self {
            Peer::Unix(credentials) => *credentials,
            Peer::Tcp(_) => None,
        }
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Tcp(addr) => addr.fmt(f),
            Peer::Unix(Some(credentials)) => write!(f, "unix peer {credentials}"),
            Peer::Unix(None) => f.write_str("unix peer"),
        }
    }
}

/// An accepted connection, TCP or Unix-domain: futures-io `AsyncRead` and `AsyncWrite`.
pub struct Stream<R: Runtime> {
    inner: Inner<R>,
}

enum Inner<R: Runtime> {
    Tcp(TcpStream<R>),
    Unix(UnixStream<R>),
}

impl<R: Runtime> Stream<R> {
    /// The TCP connection, if it is one (for `TCP_NODELAY`, addresses, `into_split`).
    pub fn as_tcp(&self) -> Option<&TcpStream<R>> {
        match &self.inner {
            Inner::Tcp(stream) => Some(stream),
            Inner::Unix(_) => None,
        }
    }

    /// The Unix-domain connection, if it is one.
    pub fn as_unix(&self) -> Option<&UnixStream<R>> {
        match &self.inner {
            Inner::Unix(stream) => Some(stream),
            Inner::Tcp(_) => None,
        }
    }

    /// The TCP connection, or the stream back if it is not one.
    ///
    /// # Errors
    ///
    /// Gives the stream back when it is a Unix-domain connection.
    pub fn into_tcp(self) -> Result<TcpStream<R>, Self> {
        match self.inner {
            Inner::Tcp(stream) => Ok(stream),
            inner => Err(Self { inner }),
        }
    }

    /// Shuts down the read, write or both directions.
    ///
    /// # Errors
    ///
    /// Passes on errors from `shutdown(2)`.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match &self.inner {
            Inner::Tcp(stream) => stream.shutdown(how),
            Inner::Unix(stream) => stream.shutdown(how),
        }
    }
}

impl<R: Runtime> From<TcpStream<R>> for Stream<R> {
    fn from(stream: TcpStream<R>) -> Self {
        Self {
            inner: Inner::Tcp(stream),
        }
    }
}

impl<R: Runtime> From<UnixStream<R>> for Stream<R> {
    fn from(stream: UnixStream<R>) -> Self {
        Self {
            inner: Inner::Unix(stream),
        }
    }
}

impl<R: Runtime> fmt::Debug for Stream<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            Inner::Tcp(stream) => stream.fmt(f),
            Inner::Unix(stream) => stream.fmt(f),
        }
    }
}

/// Calls `$method` on whichever stream `$self` holds.
macro_rules! each {
    ($self:ident, $stream:ident => $call:expr) => {
        match &mut $self.get_mut().inner {
            Inner::Tcp($stream) => $call,
            Inner::Unix($stream) => $call,
        }
    };
}

impl<R: Runtime> AsyncRead for Stream<R> {
    #[inline]
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        each!(self, s => Pin::new(s).poll_read(cx, buf))
    }

    #[inline]
    fn poll_read_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
    ) -> Poll<io::Result<usize>> {
        each!(self, s => Pin::new(s).poll_read_vectored(cx, bufs))
    }
}

impl<R: Runtime> AsyncWrite for Stream<R> {
    #[inline]
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        each!(self, s => Pin::new(s).poll_write(cx, buf))
    }

    #[inline]
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        each!(self, s => Pin::new(s).poll_write_vectored(cx, bufs))
    }

    #[inline]
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self, s => Pin::new(s).poll_flush(cx))
    }

    #[inline]
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self, s => Pin::new(s).poll_close(cx))
    }
}
