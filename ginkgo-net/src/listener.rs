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
#[cfg(feature = "tls")]
use crate::session::{ServerSession, TlsFinish};

/// An open listening socket, TCP or Unix-domain, from [`Listen::open`](crate::Listen::open):
/// what the [`AcceptLoop`](crate::AcceptLoop) accepts from. A Unix socket file the listener
/// created is removed when it is dropped (if it is still the same file).
pub struct Listener<R: Runtime> {
    kind: Kind<R>,
    addr: LocalAddr,
    nodelay: bool,
    keepalive: Option<Duration>,
    _file: Option<SocketFile>,
    /// Its entry in the table of sockets an upgrade hands on, while it is open.
    _registration: Option<ginkgo_api::net::handoff::Registration>,
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
            _registration: None,
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
            _registration: None,
        })
    }

    /// Registers it as the listener of the service at `service`, for the next upgrade.
    pub(crate) fn registered(mut self, service: &str) -> io::Result<Self> {
        let registration = match &self.kind {
            Kind::Tcp(listener) => ginkgo_api::net::handoff::register(service, listener),
            Kind::Unix(listener) => ginkgo_api::net::handoff::register(service, listener),
        }
        .map_err(|err| {
            ginkgo_api::io::with_context(err, |e| {
                format!("cannot register the listener of {service} for upgrades: {e}")
            })
        })?;
        self._registration = Some(registration);
        Ok(self)
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
/// replaced it in the meantime (same path, another file) or another process of the program
/// serves the socket too (an upgrade is under way).
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
        // During an upgrade the other process serves the same socket, through this file.
        if ginkgo_api::net::handoff::keep_socket_files() {
            return;
        }
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

/// A connection, TCP or Unix-domain, in the clear or (feature `tls`) over TLS: futures-io
/// `AsyncRead` and `AsyncWrite`. Servers hand one to each handler, as does
/// [`StreamClient`](crate::StreamClient).
///
/// Under TLS, closing it (`AsyncWriteExt::close`) sends TLS' close_notify, by which the peer
/// tells the end of the data from a cut connection; dropping it does not. A
/// [`StreamServer`](crate::StreamServer) closes the stream of a handler that returned without
/// closing it.
pub struct Stream<R: Runtime> {
    inner: Inner<R>,
}

enum Inner<R: Runtime> {
    Tcp(TcpStream<R>),
    Unix(UnixStream<R>),
    // Boxed: a TLS session is large, and the plain variants should not pay for its size.
    #[cfg(feature = "tls")]
    Tls(Box<ServerSession<R>>),
    #[cfg(feature = "tls")]
    TlsClient(Box<ginkgo_tls::ClientTlsStream<Plain<R>>>),
}

/// The socket under a TLS session.
#[cfg(feature = "tls")]
pub(crate) enum Plain<R: Runtime> {
    Tcp(TcpStream<R>),
    Unix(UnixStream<R>),
}

#[cfg(feature = "tls")]
impl<R: Runtime> Plain<R> {
    fn as_tcp(&self) -> Option<&TcpStream<R>> {
        match self {
            Plain::Tcp(stream) => Some(stream),
            Plain::Unix(_) => None,
        }
    }

    fn as_unix(&self) -> Option<&UnixStream<R>> {
        match self {
            Plain::Unix(stream) => Some(stream),
            Plain::Tcp(_) => None,
        }
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Plain::Tcp(stream) => stream.shutdown(how),
            Plain::Unix(stream) => stream.shutdown(how),
        }
    }
}

impl<R: Runtime> Stream<R> {
    /// The TCP connection, if it is one, under TLS too (for `TCP_NODELAY`, addresses).
    pub fn as_tcp(&self) -> Option<&TcpStream<R>> {
        match &self.inner {
            Inner::Tcp(stream) => Some(stream),
            Inner::Unix(_) => None,
            #[cfg(feature = "tls")]
            Inner::Tls(tls) => tls.get_ref()?.as_tcp(),
            #[cfg(feature = "tls")]
            Inner::TlsClient(tls) => tls.get_ref().as_tcp(),
        }
    }

    /// The Unix-domain connection, if it is one, under TLS too.
    pub fn as_unix(&self) -> Option<&UnixStream<R>> {
        match &self.inner {
            Inner::Unix(stream) => Some(stream),
            Inner::Tcp(_) => None,
            #[cfg(feature = "tls")]
            Inner::Tls(tls) => tls.get_ref()?.as_unix(),
            #[cfg(feature = "tls")]
            Inner::TlsClient(tls) => tls.get_ref().as_unix(),
        }
    }

    /// The TCP connection in the clear, or the stream back if it is not one.
    ///
    /// # Errors
    ///
    /// Gives the stream back when it is a Unix-domain connection or runs TLS.
    pub fn into_tcp(self) -> Result<TcpStream<R>, Self> {
        match self.inner {
            Inner::Tcp(stream) => Ok(stream),
            inner => Err(Self { inner }),
        }
    }

    /// Whether the connection runs TLS.
    pub fn is_tls(&self) -> bool {
        match &self.inner {
            Inner::Tcp(_) | Inner::Unix(_) => false,
            #[cfg(feature = "tls")]
            Inner::Tls(_) | Inner::TlsClient(_) => true,
        }
    }

    /// Shuts down the read, write or both directions of the socket (under TLS, without a
    /// `close_notify`: close the stream for that).
    ///
    /// # Errors
    ///
    /// Passes on errors from `shutdown(2)`.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match &self.inner {
            Inner::Tcp(stream) => stream.shutdown(how),
            Inner::Unix(stream) => stream.shutdown(how),
            #[cfg(feature = "tls")]
            Inner::Tls(tls) => tls.get_ref().map_or(Ok(()), |plain| plain.shutdown(how)),
            #[cfg(feature = "tls")]
            Inner::TlsClient(tls) => tls.get_ref().shutdown(how),
        }
    }
}

#[cfg(feature = "tls")]
impl<R: Runtime> Stream<R> {
    fn into_plain(self) -> io::Result<Plain<R>> {
        match self.inner {
            Inner::Tcp(stream) => Ok(Plain::Tcp(stream)),
            Inner::Unix(stream) => Ok(Plain::Unix(stream)),
            Inner::Tls(_) | Inner::TlsClient(_) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the connection already runs TLS",
            )),
        }
    }

    /// Runs a server-side TLS handshake on this connection with `acceptor`'s certificate in
    /// force now. It has no timeout of its own: the servers apply their handshake timeout.
    ///
    /// # Errors
    ///
    /// Fails when the handshake fails (the message starts `tls handshake failed:` and gives
    /// rustls' reason), or the connection already runs TLS.
    pub async fn accept_tls(self, acceptor: &ginkgo_tls::TlsAcceptor) -> io::Result<Self> {
        let handshake = acceptor.accept(self.into_plain()?);
        Ok(Self {
            inner: Inner::Tls(Box::new(ServerSession::new(handshake.await?))),
        })
    }

    /// Makes a server-side TLS session that is dropped before it was closed wait for the
    /// returned [`TlsFinish`], which sends its close_notify; `None` when the connection does
    /// not run server-side TLS.
    pub(crate) fn finish_tls_on_drop(&mut self) -> Option<TlsFinish<R>> {
        match &mut self.inner {
            Inner::Tls(session) => Some(session.finish_on_drop()),
            _ => None,
        }
    }

    /// Runs a client-side TLS handshake with `connector`, for `server_name` (a DNS name or an
    /// IP address, checked against the server's certificate).
    ///
    /// # Errors
    ///
    /// Fails when the name is not valid, the handshake fails (the server's certificate is not
    /// trusted or not for that name, say), or the connection already runs TLS.
    pub async fn connect_tls(
        self,
        connector: &ginkgo_tls::TlsConnector,
        server_name: &str,
    ) -> io::Result<Self> {
        let handshake = connector.connect(server_name, self.into_plain()?);
        Ok(Self {
            inner: Inner::TlsClient(Box::new(handshake.await?)),
        })
    }

    /// The peer's certificate identity: under mutual TLS the client's, on a client connection
    /// the server's; `None` in the clear or when the peer sent no certificate.
    pub fn peer_identity(&self) -> Option<&ginkgo_tls::PeerIdentity> {
        match &self.inner {
            Inner::Tls(tls) => tls.peer_identity(),
            Inner::TlsClient(tls) => tls.peer_identity(),
            Inner::Tcp(_) | Inner::Unix(_) => None,
        }
    }

    /// The protocol negotiated by ALPN (`b"h2"`, `b"http/1.1"`), if any.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        match &self.inner {
            Inner::Tls(tls) => tls.alpn_protocol(),
            Inner::TlsClient(tls) => tls.alpn_protocol(),
            Inner::Tcp(_) | Inner::Unix(_) => None,
        }
    }

    /// The TLS version negotiated, in the clear `None`.
    pub fn tls_version(&self) -> Option<ginkgo_tls::TlsVersion> {
        match &self.inner {
            Inner::Tls(tls) => tls.protocol_version(),
            Inner::TlsClient(tls) => Some(tls.protocol_version()),
            Inner::Tcp(_) | Inner::Unix(_) => None,
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
            #[cfg(feature = "tls")]
            Inner::Tls(tls) => tls.fmt(f),
            #[cfg(feature = "tls")]
            Inner::TlsClient(tls) => tls.fmt(f),
        }
    }
}

#[cfg(feature = "tls")]
impl<R: Runtime> fmt::Debug for Plain<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Plain::Tcp(stream) => stream.fmt(f),
            Plain::Unix(stream) => stream.fmt(f),
        }
    }
}

/// Calls `$call` on whichever stream `$self` (a pinned `Stream` or `Plain`) holds.
macro_rules! each {
    ($self:ident, $stream:ident => $call:expr) => {
        match &mut $self.get_mut().inner {
            Inner::Tcp($stream) => $call,
            Inner::Unix($stream) => $call,
            #[cfg(feature = "tls")]
            Inner::Tls($stream) => $call,
            #[cfg(feature = "tls")]
            Inner::TlsClient($stream) => $call,
        }
    };
    (plain $self:ident, $stream:ident => $call:expr) => {
        match $self.get_mut() {
            Plain::Tcp($stream) => $call,
            Plain::Unix($stream) => $call,
        }
    };
}

/// futures-io's traits for `$ty`, forwarding each call through `each!` (with `$mode`).
macro_rules! forward_io {
    ($ty:ident $(, $mode:ident)?) => {
        impl<R: Runtime> AsyncRead for $ty<R> {
            #[inline]
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut [u8],
            ) -> Poll<io::Result<usize>> {
                each!($($mode)? self, s => Pin::new(s).poll_read(cx, buf))
            }

            #[inline]
            fn poll_read_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &mut [IoSliceMut<'_>],
            ) -> Poll<io::Result<usize>> {
                each!($($mode)? self, s => Pin::new(s).poll_read_vectored(cx, bufs))
            }
        }

        impl<R: Runtime> AsyncWrite for $ty<R> {
            #[inline]
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                each!($($mode)? self, s => Pin::new(s).poll_write(cx, buf))
            }

            #[inline]
            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                each!($($mode)? self, s => Pin::new(s).poll_write_vectored(cx, bufs))
            }

            #[inline]
            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                each!($($mode)? self, s => Pin::new(s).poll_flush(cx))
            }

            #[inline]
            fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                each!($($mode)? self, s => Pin::new(s).poll_close(cx))
            }
        }
    };
}

forward_io!(Stream);
#[cfg(feature = "tls")]
forward_io!(Plain, plain);
