//! One connection: the task that serves it, and what wraps its socket and its service.

use std::future::Future;
use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use futures_io::AsyncRead;
use ginkgo_api::Runtime;
use ginkgo_api::net::TcpStream;
use ginkgo_api::service::{Counter, Shutdown};
use ginkgo_api::time::Sleep;
use ginkgo_net::Accepted;
use http::{Request, Response, StatusCode};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use pin_project_lite::pin_project;

use super::HttpService;
use super::exec::OwnedExecutor;
use crate::rt::Io;

/// What every connection of one server shares.
pub(crate) struct Shared {
    pub(crate) builder: auto::Builder<OwnedExecutor>,
    pub(crate) header_read_timeout: Duration,
    pub(crate) requests: Counter,
}

/// Serves one connection until the peer closes it, it fails, or the server stops; on stop it
/// shuts down gracefully: requests in flight finish, an idle connection closes at once.
pub(crate) async fn serve<R, S>(
    accepted: Accepted<R>,
    service: S,
    shared: Arc<Shared>,
    shutdown: Shutdown,
) where
    R: Runtime,
    S: HttpService,
{
    let Accepted {
        stream,
        peer,
        guard: _open,
    } = accepted;
    let exchanges = Arc::new(Exchanges::new());
    let io = Io::new(HeadDeadline::<R>::new(
        stream,
        exchanges.clone(),
        shared.header_read_timeout,
    ));
    let service = Tracked {
        inner: TowerToHyperService::new(service),
        requests: shared.requests.clone(),
        exchanges,
    };
    let mut conn = pin!(shared.builder.serve_connection_with_upgrades(io, service));
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

/// The request/response exchanges of one connection, as far as the header read timeout
/// cares: whether one is under way, and since when the connection has been idle.
struct Exchanges {
    opened: Instant,
    /// Requests received whose response has not been sent in full (or given up).
    open: AtomicUsize,
    /// When the last exchange ended, in nanoseconds since `opened`.
    idle_since: AtomicU64,
    /// The connection was handed over to an upgrade (`101 Switching Protocols`): it no longer
    /// carries HTTP.
    upgraded: AtomicBool,
}

impl Exchanges {
    fn new() -> Self {
        Self {
            opened: Instant::now(),
            open: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            upgraded: AtomicBool::new(false),
        }
    }

    fn begin(self: &Arc<Self>) -> ExchangeEnd {
        self.open.fetch_add(1, Ordering::AcqRel);
        ExchangeEnd(self.clone())
    }

    /// The instant by which the next request head must have arrived; `None` while an
    /// exchange is under way.
    fn head_deadline(&self, limit: Duration) -> Option<Instant> {
        if self.open.load(Ordering::Acquire) > 0 {
            return None;
        }
        let idle_since = Duration::from_nanos(self.idle_since.load(Ordering::Acquire));
        self.opened.checked_add(idle_since)?.checked_add(limit)
    }
}

/// Ends an exchange when dropped: with the response's body, or with its future if there is
/// no response.
struct ExchangeEnd(Arc<Exchanges>);

impl Drop for ExchangeEnd {
    fn drop(&mut self) {
        let exchanges = &self.0;
        // The clock is read before the count drops, so that no reader sees the connection
        // idle with an earlier exchange's time.
        let now = u64::try_from(exchanges.opened.elapsed().as_nanos()).unwrap_or(u64::MAX);
        if exchanges.open.load(Ordering::Acquire) == 1 {
            exchanges.idle_since.store(now, Ordering::Release);
        }
        exchanges.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A hyper service that counts the requests it is given and tracks each exchange until its
/// response's body has been sent.
struct Tracked<S> {
    inner: S,
    requests: Counter,
    exchanges: Arc<Exchanges>,
}

impl<S, ReqBody, ResBody> hyper::service::Service<Request<ReqBody>> for Tracked<S>
where
    S: hyper::service::Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<TrackedBody<ResBody>>;
    type Error = S::Error;
    type Future = TrackedFuture<S::Future>;

    #[inline]
    fn call(&self, request: Request<ReqBody>) -> Self::Future {
        self.requests.inc();
        TrackedFuture {
            end: Some(self.exchanges.begin()),
            inner: self.inner.call(request),
        }
    }
}

pin_project! {
    /// The response future of a [`Tracked`] service.
    struct TrackedFuture<F> {
        #[pin]
        inner: F,
        end: Option<ExchangeEnd>,
    }
}

impl<F, B, E> Future for TrackedFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<TrackedBody<B>>, E>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = ready!(this.inner.poll(cx))?;
        let end = this.end.take();
        if response.status() == StatusCode::SWITCHING_PROTOCOLS
            && let Some(end) = &end
        {
            end.0.upgraded.store(true, Ordering::Release);
        }
        Poll::Ready(Ok(response.map(|inner| TrackedBody { inner, _end: end })))
    }
}

pin_project! {
    /// A response body that ends its exchange when hyper is done with it.
    struct TrackedBody<B> {
        #[pin]
        inner: B,
        _end: Option<ExchangeEnd>,
    }
}

impl<B: http_body::Body> http_body::Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    #[inline]
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        self.project().inner.poll_frame(cx)
    }

    #[inline]
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    #[inline]
    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// What a connection speaks, as far as its first bytes tell.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Protocol {
    /// The bytes so far are the first `matched` of the HTTP/2 preface.
    Sniffing {
        matched: usize,
    },
    Http1,
    Http2,
}

/// The preface an HTTP/2 client with prior knowledge opens with.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// A connection's socket with the header read timeout.
///
/// A request head must arrive within the timeout of the connection opening, and of each
/// response being sent: a read that is still waiting at that deadline, while no exchange is
/// under way, fails with `TimedOut`, and hyper closes the connection. Reads for a request's
/// body, or while a response is sent, are not limited (hyper's own header read timeout does
/// the same). HTTP/2 connections (told by their preface) and upgraded ones are not limited.
///
/// hyper's own timeout would cost every request a clock reading, a boxed sleep and an extra
/// pass of its dispatch loop; here a request costs a clock reading, and a wait polls one
/// timer per connection that stays armed while its deadline is not passed.
struct HeadDeadline<R: Runtime> {
    stream: TcpStream<R>,
    exchanges: Arc<Exchanges>,
    limit: Duration,
    protocol: Protocol,
    /// The connection's one timer, armed at or before the next head's deadline.
    // Boxed: `Sleep` need not be `Unpin`, and hyper needs an `Unpin` socket.
    timer: Option<Pin<Box<Sleep<R>>>>,
}

impl<R: Runtime> HeadDeadline<R> {
    fn new(stream: TcpStream<R>, exchanges: Arc<Exchanges>, limit: Duration) -> Self {
        Self {
            stream,
            exchanges,
            limit,
            protocol: Protocol::Sniffing { matched: 0 },
            timer: None,
        }
    }

    /// Takes note of bytes read while the protocol is not yet known.
    fn sniff(&mut self, matched: usize, read: &[u8]) {
        let rest = &H2_PREFACE[matched..];
        let n = read.len().min(rest.len());
        self.protocol = if read.is_empty() || read[..n] != rest[..n] {
            Protocol::Http1
        } else if matched + n == H2_PREFACE.len() {
            Protocol::Http2
        } else {
            Protocol::Sniffing {
                matched: matched + n,
            }
        };
    }

    /// Whether a read that must wait has missed the head's deadline; otherwise the task is
    /// woken at the deadline.
    ///
    /// During an exchange nothing times out, but the timer stays armed, at or before any later
    /// head's deadline: it then wakes the task once the connection is idle, even if hyper does
    /// not read again after the response. It is polled at every wait, but set again only when
    /// it fires, so a request costs no timer registration.
    fn missed_deadline(&mut self, cx: &mut Context<'_>) -> bool {
        if self.protocol == Protocol::Http2 || self.exchanges.upgraded.load(Ordering::Acquire) {
            return false;
        }
        let deadline = self.exchanges.head_deadline(self.limit);
        let timer = match &mut self.timer {
            Some(timer) => timer,
            None => {
                // A head awaited from now on is due at this time or later.
                let Some(at) = deadline.or_else(|| Instant::now().checked_add(self.limit)) else {
                    return false;
                };
                self.timer
                    .insert(Box::pin(ginkgo_api::time::sleep_until::<R>(at)))
            }
        };
        loop {
            if timer.as_mut().poll(cx).is_pending() {
                return false;
            }
            let fired_at = timer.deadline();
            let next = match deadline {
                Some(deadline) if fired_at >= deadline => return true,
                // It fired for an earlier wait's deadline: move it to this one's.
                Some(deadline) => deadline,
                // It fired during an exchange: a head awaited from now on is due later.
                None => match Instant::now().checked_add(self.limit) {
                    Some(at) => at,
                    None => return false,
                },
            };
            timer.as_mut().reset(next);
        }
    }
}

impl<R: Runtime> AsyncRead for HeadDeadline<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(n)) => {
                if let Protocol::Sniffing { matched } = this.protocol {
                    this.sniff(matched, &buf[..n]);
                }
                Poll::Ready(Ok(n))
            }
            Poll::Pending if this.missed_deadline(cx) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "no HTTP request head arrived within the header read timeout of {:?}",
                    this.limit
                ),
            ))),
            other => other,
        }
    }
}

ginkgo_api::forward_async_write!(impl<R: Runtime> HeadDeadline<R>, stream);
