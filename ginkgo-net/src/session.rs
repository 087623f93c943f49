//! A server's side of a TLS session ([`ServerSession`]), and the way back to the server
//! ([`TlsFinish`]) for a session its handler dropped without closing it, so that the server
//! sends the close_notify the handler did not.
//!
//! Dropping cannot wait for the peer to take the close_notify (and any records still buffered
//! before it); the connection's task can, once the handler has returned.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_io::{AsyncRead, AsyncWrite};
use futures_lite::io::AsyncWriteExt;
use ginkgo_api::Runtime;
use ginkgo_tls::{PeerIdentity, TlsStream, TlsVersion};

use crate::listener::Plain;

/// Where a session dropped unclosed waits for the server.
type Slot<R> = Mutex<Option<TlsStream<Plain<R>>>>;

/// A server's side of a TLS session: the stream, and whether it still needs closing.
pub(crate) struct ServerSession<R: Runtime> {
    /// `None` only once `drop` has handed it back.
    tls: Option<TlsStream<Plain<R>>>,
    /// Whether the handler closed it (`poll_close` finished, well or not): nothing is left
    /// for the server to send.
    closed: bool,
    /// Where to hand it back when dropped unclosed, while the server waits there.
    hand_back: Option<Weak<Slot<R>>>,
}

impl<R: Runtime> ServerSession<R> {
    pub(crate) fn new(tls: TlsStream<Plain<R>>) -> Self {
        Self {
            tls: Some(tls),
            closed: false,
            hand_back: None,
        }
    }

    /// From now on, dropping the session unclosed hands it to the [`TlsFinish`] returned.
    pub(crate) fn finish_on_drop(&mut self) -> TlsFinish<R> {
        let slot = Arc::new(Mutex::new(None));
        self.hand_back = Some(Arc::downgrade(&slot));
        TlsFinish(slot)
    }

    /// The socket under the session.
    pub(crate) fn get_ref(&self) -> Option<&Plain<R>> {
        self.tls.as_ref().map(TlsStream::get_ref)
    }

    pub(crate) fn peer_identity(&self) -> Option<&PeerIdentity> {
        self.tls.as_ref()?.peer_identity()
    }

    pub(crate) fn alpn_protocol(&self) -> Option<&[u8]> {
        self.tls.as_ref()?.alpn_protocol()
    }

    pub(crate) fn protocol_version(&self) -> Option<TlsVersion> {
        Some(self.tls.as_ref()?.protocol_version())
    }

    fn stream(&mut self) -> io::Result<Pin<&mut TlsStream<Plain<R>>>> {
        match &mut self.tls {
            Some(tls) => Ok(Pin::new(tls)),
            // Only `drop` takes it, and nothing polls a session being dropped.
            None => Err(io::Error::from(io::ErrorKind::NotConnected)),
        }
    }
}

impl<R: Runtime> Drop for ServerSession<R> {
    fn drop(&mut self) {
        let tls = self.tls.take();
        if self.closed {
            return;
        }
        // No slot: the server did not ask, or has stopped waiting (the handler passed the
        // stream on to a task that outlived it); the session is dropped as it is.
        if let Some(slot) = self.hand_back.take().and_then(|slot| slot.upgrade()) {
            *slot.lock().unwrap_or_else(PoisonError::into_inner) = tls;
        }
    }
}

impl<R: Runtime> std::fmt::Debug for ServerSession<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.tls {
            Some(tls) => tls.fmt(f),
            None => f.write_str("TlsStream(dropped)"),
        }
    }
}

/// Polls the stream, or fails when it is gone.
macro_rules! poll {
    ($self:ident, $tls:ident => $call:expr) => {
        match $self.get_mut().stream() {
            Ok($tls) => $call,
            Err(err) => Poll::Ready(Err(err)),
        }
    };
}

impl<R: Runtime> AsyncRead for ServerSession<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        poll!(self, tls => tls.poll_read(cx, buf))
    }
}

impl<R: Runtime> AsyncWrite for ServerSession<R> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        poll!(self, tls => tls.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        poll!(self, tls => tls.poll_write_vectored(cx, bufs))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        poll!(self, tls => tls.poll_flush(cx))
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let closing = match this.stream() {
            Ok(tls) => tls.poll_close(cx),
            Err(err) => Poll::Ready(Err(err)),
        };
        // Closed, or failed closing: trying again from `drop` would not do better.
        this.closed = closing.is_ready();
        closing
    }
}

/// The server's end of [`ServerSession::finish_on_drop`].
pub(crate) struct TlsFinish<R: Runtime>(Arc<Slot<R>>);

impl<R: Runtime> TlsFinish<R> {
    /// Closes the session if the handler dropped it unclosed: sends its close_notify (after
    /// any records still buffered) and shuts the socket's write side, within `limit`. Nothing
    /// to do when the handler closed it, or passed the stream on to a task still holding it.
    ///
    /// # Errors
    ///
    /// The error of the close (the peer has gone, say), or `TimedOut` after `limit`.
    pub(crate) async fn close(self, limit: Duration) -> io::Result<()> {
        let tls = self.0.lock().unwrap_or_else(PoisonError::into_inner).take();
        // Past this point a session dropped later finds no slot, and goes as it is.
        drop(self);
        let Some(mut tls) = tls else {
            return Ok(());
        };
        match ginkgo_api::time::timeout::<R, _>(limit, tls.close()).await {
            Ok(closed) => closed,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the peer took no close_notify within {limit:?}"),
            )),
        }
    }
}
