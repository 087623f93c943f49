//! One connection: the task that serves it, and what wraps its socket and its service.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_io::AsyncRead;
use ginkgo_api::Runtime;
use ginkgo_api::net::TcpStream;
use ginkgo_api::service::{Counter, Shutdown};
use ginkgo_api::time::Sleep;
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;

use super::HttpService;
use super::exec::OwnedExecutor;
use super::timer::ConnTimer;
use crate::rt::Io;

/// What every connection of one server shares.
pub(crate) struct Shared {
    pub(crate) builder: auto::Builder<OwnedExecutor>,
    pub(crate) header_read_timeout: Duration,
    pub(crate) requests: Counter,
    pub(crate) accepted: Counter,
    pub(crate) active: Counter,
}

/// Serves one connection until the peer closes it, it fails, or the server stops; on stop it
/// shuts down gracefully: requests in flight finish, an idle connection closes at once.
pub(crate) async fn serve<R, S>(
    stream: TcpStream<R>,
    peer: SocketAddr,
    service: S,
    shared: Arc<Shared>,
    shutdown: Shutdown,
) where
    R: Runtime,
    S: HttpService,
{
    let _active = Active::enter(&shared.active);
    let io = Io::new(Sniffed::<R>::new(stream, shared.header_read_timeout));
    let service = Counted {
        inner: TowerToHyperService::new(service),
        requests: shared.requests.clone(),
    };
    // Each connection gets its own HTTP/1 timer, so its requests share one real timer.
    let mut builder = shared.builder.clone();
    builder
        .http1()
        .timer(ConnTimer::<R>::new())
        .header_read_timeout(shared.header_read_timeout);
    let mut conn = pin!(builder.serve_connection_with_upgrades(io, service));
    let finished = futures_lite::future::or(async { Some(conn.as_mut().await) }, async {
        shutdown.wait().await;
        None
    })
    .await;
    let result = match finished {
        Some(result) => result,
        None => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(err) = result {
        // Peers that vanish or time out are routine for a server: not worth a warning.
        tracing::debug!(%peer, error = %err, "HTTP connection ended with an error");
    }
}

/// Counts the open connections: up on entry, down on drop, so an aborted task counts too.
struct Active(Counter);

impl Active {
    fn enter(counter: &Counter) -> Self {
        counter.inc();
        Self(counter.clone())
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// A hyper service that counts the requests it is given.
struct Counted<S> {
    inner: S,
    requests: Counter,
}

impl<S, Req> hyper::service::Service<Req> for Counted<S>
where
    S: hyper::service::Service<Req>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    #[inline]
    fn call(&self, request: Req) -> Self::Future {
        self.requests.inc();
        self.inner.call(request)
    }
}

/// The preface an HTTP/2 client with prior knowledge opens with.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// A connection's socket with a deadline for its first bytes.
///
/// hyper-util's `auto` builder reads the first bytes itself to choose between HTTP/1 and
/// HTTP/2, and no timeout covers that wait: a peer that connects and sends nothing would hold
/// a task and a descriptor until the server stops. Until the protocol is known (the bytes read
/// so far stop matching the HTTP/2 preface, or the whole preface arrived), a read that is still
/// waiting at the header read timeout fails with `TimedOut`. From then on hyper's own HTTP/1
/// header read timeout takes over.
struct Sniffed<R: Runtime> {
    stream: TcpStream<R>,
    guard: Option<FirstBytes<R>>,
}

struct FirstBytes<R: Runtime> {
    // Boxed once per connection: `Sleep` need not be `Unpin`, and hyper needs an `Unpin` socket.
    deadline: Pin<Box<Sleep<R>>>,
    limit: Duration,
    matched: usize,
}

impl<R: Runtime> Sniffed<R> {
    fn new(stream: TcpStream<R>, limit: Duration) -> Self {
        Self {
            stream,
            guard: Some(FirstBytes {
                deadline: Box::pin(ginkgo_api::time::sleep::<R>(limit)),
                limit,
                matched: 0,
            }),
        }
    }
}

impl<R: Runtime> FirstBytes<R> {
    /// Takes note of bytes read; `true` once the protocol is known.
    fn protocol_known(&mut self, read: &[u8]) -> bool {
        let rest = &H2_PREFACE[self.matched..];
        let n = read.len().min(rest.len());
        if read.is_empty() || read[..n] != rest[..n] {
            return true;
        }
        self.matched += n;
        self.matched == H2_PREFACE.len()
    }
}

impl<R: Runtime> AsyncRead for Sniffed<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.stream).poll_read(cx, buf);
        let Some(guard) = &mut this.guard else {
            return polled;
        };
        match polled {
            Poll::Ready(Ok(n)) => {
                if guard.protocol_known(&buf[..n]) {
                    this.guard = None;
                }
                Poll::Ready(Ok(n))
            }
            Poll::Pending if guard.deadline.as_mut().poll(cx).is_ready() => {
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "no HTTP request began within the header read timeout of {:?}",
                        guard.limit
                    ),
                )))
            }
            other => other,
        }
    }
}

ginkgo_api::forward_async_write!(impl<R: Runtime> Sniffed<R>, stream);
