//! The streams of established connections: [`TlsStream`] on the server side,
//! [`ClientTlsStream`] on the client side, and the error of a failed handshake.

use std::error::Error;
use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_io::{AsyncRead, AsyncWrite};

use crate::identity::PeerIdentity;
use crate::version::TlsVersion;

/// A server's side of a TLS connection over `S`, once the handshake is done: read and write
/// it as the plain stream (futures-io [`AsyncRead`] + [`AsyncWrite`]).
///
/// Close it (`AsyncWriteExt::close`, futures-io's `poll_close`) to send TLS' close_notify, so
/// the peer can tell the end of the data from a cut connection.
pub struct TlsStream<S> {
    inner: futures_rustls::server::TlsStream<S>,
    peer: Option<PeerIdentity>,
}

impl<S> TlsStream<S> {
    pub(crate) fn new(inner: futures_rustls::server::TlsStream<S>) -> Self {
        let peer = inner
            .get_ref()
            .1
            .peer_certificates()
            .and_then(PeerIdentity::from_chain);
        Self { inner, peer }
    }

    /// The application protocol agreed by ALPN (such as `b"h2"`), or `None` when the server
    /// offers none or the client asked for none.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.inner.get_ref().1.alpn_protocol()
    }

    /// The TLS version negotiated.
    pub fn protocol_version(&self) -> TlsVersion {
        TlsVersion::negotiated(self.inner.get_ref().1.protocol_version())
    }

    /// The client's verified certificate under mutual TLS; `None` when the server does not
    /// ask for one ([`ServerTls::client_ca`](crate::ServerTls::client_ca) unset).
    pub fn peer_identity(&self) -> Option<&PeerIdentity> {
        self.peer.as_ref()
    }

    /// The server name the client asked for (SNI), if it sent one. Clients send none when
    /// connecting to an IP address.
    pub fn server_name(&self) -> Option<&str> {
        self.inner.get_ref().1.server_name()
    }

    /// The underlying stream, to read its addresses, say. Reading or writing it directly
    /// would corrupt the TLS session.
    pub fn get_ref(&self) -> &S {
        self.inner.get_ref().0
    }
}

/// A client's side of a TLS connection over `S`, once the handshake is done: read and write
/// it as the plain stream (futures-io [`AsyncRead`] + [`AsyncWrite`]).
///
/// Under TLS 1.3 the client's handshake ends before the server has checked the client's
/// certificate: a server that refuses it makes the first read fail, not
/// [`TlsConnector::connect`](crate::TlsConnector::connect).
pub struct ClientTlsStream<S> {
    inner: futures_rustls::client::TlsStream<S>,
    peer: Option<PeerIdentity>,
}

impl<S> ClientTlsStream<S> {
    pub(crate) fn new(inner: futures_rustls::client::TlsStream<S>) -> Self {
        let peer = inner
            .get_ref()
            .1
            .peer_certificates()
            .and_then(PeerIdentity::from_chain);
        Self { inner, peer }
    }

    /// The application protocol agreed by ALPN, or `None` when none was.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.inner.get_ref().1.alpn_protocol()
    }

    /// The TLS version negotiated.
    pub fn protocol_version(&self) -> TlsVersion {
        TlsVersion::negotiated(self.inner.get_ref().1.protocol_version())
    }

    /// The server's verified certificate chain. Always `Some` after a handshake; an `Option`
    /// to read the same as [`TlsStream::peer_identity`].
    pub fn peer_identity(&self) -> Option<&PeerIdentity> {
        self.peer.as_ref()
    }

    /// The underlying stream. Reading or writing it directly would corrupt the TLS session.
    pub fn get_ref(&self) -> &S {
        self.inner.get_ref().0
    }
}

/// Implements futures-io's traits for a stream type by forwarding to its `inner` field, a
/// futures-rustls stream (which is `Unpin` when `S` is).
macro_rules! forward_io {
    ($stream:ident) => {
        impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for $stream<S> {
            fn poll_read(
                mut self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut [u8],
            ) -> Poll<io::Result<usize>> {
                Pin::new(&mut self.inner).poll_read(cx, buf)
            }
        }

        impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for $stream<S> {
            fn poll_write(
                mut self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                Pin::new(&mut self.inner).poll_write(cx, buf)
            }

            fn poll_write_vectored(
                mut self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[io::IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
            }

            fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Pin::new(&mut self.inner).poll_flush(cx)
            }

            fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Pin::new(&mut self.inner).poll_close(cx)
            }
        }

        impl<S: fmt::Debug> fmt::Debug for $stream<S> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let (io, session) = self.inner.get_ref();
                f.debug_struct(stringify!($stream))
                    .field("io", io)
                    .field(
                        "protocol_version",
                        &TlsVersion::negotiated(session.protocol_version()),
                    )
                    .field(
                        "alpn_protocol",
                        &session.alpn_protocol().map(String::from_utf8_lossy),
                    )
                    .field("peer_identity", &self.peer)
                    .finish()
            }
        }
    };
}

forward_io!(TlsStream);
forward_io!(ClientTlsStream);

/// Says that an I/O error ended a TLS handshake, keeping its kind and the original error
/// (whose own source is rustls' error, when rustls refused the peer) as the source.
pub(crate) fn handshake_failed(err: io::Error) -> io::Error {
    io::Error::new(err.kind(), HandshakeError(err))
}

#[derive(Debug)]
struct HandshakeError(io::Error);

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tls handshake failed: {}", self.0)
    }
}

impl Error for HandshakeError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.0)
    }
}
