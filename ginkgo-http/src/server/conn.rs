//! One connection: the task that serves it, and what wraps its socket and its service.

use std::future::Future;
use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use futures_io::AsyncRead;
use ginkgo_api::Runtime;
use ginkgo_api::net::handoff;
use ginkgo_api::service::{Counter, Shutdown};
use ginkgo_api::time::Sleep;
use ginkgo_net::{Accepted, Stream};
use hyper::server::conn::{http1, http2};
use pin_project_lite::pin_project;

use super::HttpService;
use super::exec::OwnedExecutor;
use super::service::Tracked;
use crate::BoxError;
use crate::rt::Io;

/// What every connection of one server shares.
pub(crate) struct Shared {
    pub(crate) http1: http1::Builder,
    pub(crate) http2: http2::Builder<OwnedExecutor>,
    pub(crate) header_read_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) max_body_size: usize,
    pub(crate) requests: Counter,
    #[cfg(feature = "tls")]
    pub(crate) tls: ginkgo_net::tls::TlsHandshake,
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
    #[cfg(feature = "tls")]
    let Some(stream) = shared.tls.run::<R>(stream, &peer, &shutdown).await else {
        return;
    };
    let exchanges = Arc::new(Exchanges::new());
    let idle = exchanges.clone();
    let exchanges_closing = exchanges.clone();
    let io = Io::new(HeadDeadline::<R>::new(
        stream,
        exchanges.clone(),
        shared.header_read_timeout,
        shared.idle_timeout,
    ));
    let service = Tracked::new(
        service,
        shared.requests.clone(),
        exchanges,
        shared.max_body_size,
    );
    let mut conn = pin!(Connection::new(io, service, shared.clone()));
    // An HTTP/2 connection idle for the idle timeout is shut down as the server's stop does:
    // its socket notes it at a read (in this task, just before the flag is looked at).
    let finished = futures_lite::future::or(async { Some(conn.as_mut().await) }, async {
        futures_lite::future::or(shutdown.wait(), idle.h2_idle()).await;
        None
    })
    .await;
    let result = match finished {
        Some(result) => result,
        // Stopping for an upgrade (a new process serves the same sockets), an HTTP/1
        // connection is drained rather than closed while idle, which races a request the client
        // may be sending on it: from now on each response says `Connection: close`, and the
        // connection is closed after its next response, or when it has been idle for
        // `DRAIN_GRACE`. A plain stop closes idle connections at once, and HTTP/2 needs no
        // drain (a GOAWAY tells the client which requests to send again).
        None if handoff::serving_held()
            && !exchanges_closing.http2.load(Ordering::Acquire)
            && !exchanges_closing.upgraded.load(Ordering::Acquire) =>
        {
            exchanges_closing.closing.store(true, Ordering::Release);
            let drained = futures_lite::future::or(async { Some(conn.as_mut().await) }, async {
                exchanges_closing.wait_idle_for::<R>(DRAIN_GRACE).await;
                None
            })
            .await;
            match drained {
                Some(result) => result,
                None => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            }
        }
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

pin_project! {
    /// hyper serving one connection: HTTP/1.1 (with upgrades) or HTTP/2, as its first bytes
    /// tell. hyper-util's `auto` builder does the same, but keeps the first bytes in a layer
    /// under the socket that every later read and write passes through; here the socket's own
    /// adapter reads them ([`HeadDeadline::poll_sniff`]) and hands them to hyper again.
    struct Connection<R: Runtime, S: HttpService> {
        #[pin]
        state: ConnectionState<R, S>,
        shared: Arc<Shared>,
    }
}

pin_project! {
    #[project = ConnectionStateProj]
    enum ConnectionState<R: Runtime, S: HttpService> {
        /// Reading the first bytes.
        Sniffing {
            // Taken when hyper is given them; dropped (closing the connection) by a shutdown.
            parts: Option<(Io<HeadDeadline<R>>, Tracked<S>)>,
        },
        Http1 {
            #[pin]
            conn: http1::UpgradeableConnection<Io<HeadDeadline<R>>, Tracked<S>>,
        },
        Http2 {
            #[pin]
            conn: http2::Connection<Io<HeadDeadline<R>>, Tracked<S>, OwnedExecutor>,
        },
    }
}

impl<R: Runtime, S: HttpService> Connection<R, S> {
    fn new(io: Io<HeadDeadline<R>>, service: Tracked<S>, shared: Arc<Shared>) -> Self {
        Self {
            state: ConnectionState::Sniffing {
                parts: Some((io, service)),
            },
            shared,
        }
    }

    /// Starts a graceful shutdown: in-flight requests finish, then the connection closes (at
    /// once if it is idle or has not sent its first bytes yet).
    fn graceful_shutdown(self: Pin<&mut Self>) {
        match self.project().state.project() {
            ConnectionStateProj::Sniffing { parts } => *parts = None,
            ConnectionStateProj::Http1 { conn } => conn.graceful_shutdown(),
            ConnectionStateProj::Http2 { conn } => conn.graceful_shutdown(),
        }
    }
}

impl<R: Runtime, S: HttpService> Future for Connection<R, S> {
    type Output = Result<(), BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            let next = match this.state.as_mut().project() {
                ConnectionStateProj::Http1 { conn } => return conn.poll(cx).map_err(Into::into),
                ConnectionStateProj::Http2 { conn } => return conn.poll(cx).map_err(Into::into),
                ConnectionStateProj::Sniffing { parts } => {
                    let Some((io, _)) = parts else {
                        return Poll::Ready(Ok(()));
                    };
                    let read = std::task::ready!(io.get_mut().poll_sniff(cx));
                    let Some((io, service)) = parts.take() else {
                        return Poll::Ready(Ok(()));
                    };
                    match read? {
                        Protocol::Http2 => ConnectionState::Http2 {
                            conn: this.shared.http2.serve_connection(io, service),
                        },
                        _ => ConnectionState::Http1 {
                            conn: this
                                .shared
                                .http1
                                .serve_connection(io, service)
                                .with_upgrades(),
                        },
                    }
                }
            };
            this.state.set(next);
        }
    }
}

/// The request/response exchanges of one connection, as far as the socket's timeouts care:
/// whether one is under way, and how many have ended (the socket side notes when it first
/// sees the connection idle after each, so ending an exchange reads no clock).
pub(super) struct Exchanges {
    /// Requests received whose response has not been sent in full (or given up).
    open: AtomicUsize,
    /// How many exchanges have ended.
    ended: AtomicU64,
    /// The connection was handed over to an upgrade (`101 Switching Protocols`): it no longer
    /// carries HTTP.
    upgraded: AtomicBool,
    /// An HTTP/2 connection was idle for the idle timeout: it is to be shut down gracefully.
    h2_idle: AtomicBool,
    /// A request's body was refused (`413`): the peer may still be sending it when the
    /// connection closes.
    refused_body: AtomicBool,
    /// The connection speaks HTTP/2 (its preface arrived).
    http2: AtomicBool,
    /// Draining for an upgrade: each response from now on closes the (HTTP/1) connection.
    pub(super) closing: AtomicBool,
}

impl Exchanges {
    fn new() -> Self {
        Self {
            open: AtomicUsize::new(0),
            ended: AtomicU64::new(0),
            upgraded: AtomicBool::new(false),
            h2_idle: AtomicBool::new(false),
            refused_body: AtomicBool::new(false),
            http2: AtomicBool::new(false),
            closing: AtomicBool::new(false),
        }
    }

    /// Completes once no exchange has been under way for `grace` (checked every tenth of it:
    /// the drain of an upgrade, not a hot path).
    async fn wait_idle_for<R: Runtime>(&self, grace: Duration) {
        let step = grace / 10;
        let mut idle = Duration::ZERO;
        while idle < grace {
            ginkgo_api::time::sleep::<R>(step).await;
            if self.open.load(Ordering::Acquire) > 0 {
                idle = Duration::ZERO;
            } else {
                idle += step;
            }
        }
    }

    /// Completes once the socket has found the HTTP/2 connection idle for the idle timeout.
    /// The socket notes it while hyper polls it, in the connection's task, and wakes the task,
    /// so this needs no waker of its own.
    fn h2_idle(&self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(|_| {
            if self.h2_idle.load(Ordering::Acquire) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }

    pub(super) fn begin(self: &Arc<Self>) -> ExchangeEnd {
        self.open.fetch_add(1, Ordering::AcqRel);
        ExchangeEnd(self.clone())
    }
}

/// Ends an exchange when dropped: with the response's body, or with its future if there is
/// no response.
pub(super) struct ExchangeEnd(Arc<Exchanges>);

impl ExchangeEnd {
    /// Notes that the exchange handed the connection over to an upgrade.
    pub(super) fn upgraded(&self) {
        self.0.upgraded.store(true, Ordering::Release);
    }

    /// Whether the connection is draining for an upgrade: the response is its last.
    #[inline]
    pub(super) fn closing(&self) -> bool {
        self.0.closing.load(Ordering::Relaxed)
    }

    /// Notes that the exchange refused the request's body, which may still be arriving.
    #[cold]
    pub(super) fn refused_body(&self) {
        self.0.refused_body.store(true, Ordering::Release);
    }
}

impl Drop for ExchangeEnd {
    fn drop(&mut self) {
        let exchanges = &self.0;
        // Counted before the count of open ones drops, so that a reader that sees the
        // connection idle also sees that an exchange ended.
        exchanges.ended.fetch_add(1, Ordering::AcqRel);
        exchanges.open.fetch_sub(1, Ordering::AcqRel);
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

/// A connection's socket with the header read and idle timeouts.
///
/// A read that is still waiting at a deadline, while no exchange is under way, fails with
/// `TimedOut`, and hyper closes the connection. The deadlines:
///
/// - the first request head is due within the header read timeout of the connection opening
///   (a silent peer is closed then too);
/// - after an exchange, the next head's first byte is due within the idle timeout of the
///   response being sent, and the whole head within the header read timeout of that byte.
///
/// Reads for a request's body, or while a response is sent, are not limited (hyper's own
/// header read timeout does the same). Upgraded connections are not limited.
///
/// HTTP/2 connections (told by their preface) have no head deadlines: hyper reads them all the
/// time. Once no stream has been open for the idle timeout (counted from the connection
/// opening, or from the last stream's end), the connection is shut down gracefully (a GOAWAY,
/// then streams that raced it finish); a peer that has not closed it by the header read
/// timeout after that has its read fail with `TimedOut`.
///
/// hyper's own timeout would cost every request a clock reading, a boxed sleep and an extra
/// pass of its dispatch loop; here a wait costs a clock reading, and one timer per connection
/// stays armed and registered while its deadline is not passed (it is polled again only when
/// it may have fired, its deadline came nearer, or the task's waker changed). A read that
/// brings bytes reads no clock: when a head began is noted at the first wait after its first
/// bytes, which hyper makes at once if the head is not complete.
struct HeadDeadline<R: Runtime> {
    stream: Stream<R>,
    exchanges: Arc<Exchanges>,
    head_limit: Duration,
    idle_limit: Duration,
    /// The shorter of the two limits: no deadline set after now comes sooner than this.
    soonest: Duration,
    protocol: Protocol,
    /// The connection's one timer, armed at or before the next deadline.
    // Boxed: `Sleep` need not be `Unpin`, and hyper needs an `Unpin` socket.
    timer: Option<Pin<Box<Sleep<R>>>>,
    /// The waker the timer was last polled with: it stays registered until the timer fires.
    timer_waker: Option<Waker>,
    /// Since when the connection has been idle: when it opened, or when this side first saw it
    /// idle after the exchange numbered `idle_after`.
    idle_since: Instant,
    idle_after: u64,
    /// One more than the number of exchanges that had ended when a read last brought bytes
    /// (0: none has): `idle_after + 1` once the head after that exchange has begun. (Bytes of
    /// it read with the exchange before, when a client pipelines, count once more arrive.)
    bytes_after: u64,
    /// When this side first waited for the rest of the head after exchange `idle_after`.
    head_since: Option<Instant>,
    /// When an HTTP/2 connection was found idle for the idle timeout and told to shut down.
    going_away_since: Option<Instant>,
    /// Set once the connection lingers after refusing a body (its timer then keeps the end).
    lingering: bool,
    /// The first bytes, read to tell the protocol ([`Self::poll_sniff`]); reads hand out
    /// `first[first_read..first_len]` before they read the socket again.
    first: [u8; H2_PREFACE.len()],
    first_read: u8,
    first_len: u8,
}

impl<R: Runtime> HeadDeadline<R> {
    fn new(
        stream: Stream<R>,
        exchanges: Arc<Exchanges>,
        head_limit: Duration,
        idle_limit: Duration,
    ) -> Self {
        Self {
            stream,
            exchanges,
            head_limit,
            idle_limit,
            soonest: head_limit.min(idle_limit),
            protocol: Protocol::Sniffing { matched: 0 },
            timer: None,
            timer_waker: None,
            idle_since: Instant::now(),
            idle_after: 0,
            bytes_after: 0,
            head_since: None,
            going_away_since: None,
            lingering: false,
            first: [0; H2_PREFACE.len()],
            first_read: 0,
            first_len: 0,
        }
    }

    /// Reads until the first bytes tell HTTP/2's preface from anything else (HTTP/1.1, or an
    /// end of the stream), under the first head's deadline, as hyper-util's `auto` builder
    /// does; what it read is read again by hyper. Out of line: once per connection.
    #[inline(never)]
    fn poll_sniff(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Protocol>> {
        while let Protocol::Sniffing { matched } = self.protocol {
            let mut chunk = [0; H2_PREFACE.len()];
            let chunk = &mut chunk[..H2_PREFACE.len() - matched];
            let n = std::task::ready!(Pin::new(&mut *self).poll_read(cx, chunk))?;
            // The read noted how far the preface matched (`sniff`); keep the bytes.
            let Some(read) = chunk.get(..n) else {
                return Poll::Ready(Err(io::Error::other("a read reported more than it read")));
            };
            self.first[matched..matched + n].copy_from_slice(read);
            if !matches!(self.protocol, Protocol::Sniffing { .. }) {
                // At most the preface's 24 bytes.
                self.first_len = (matched + n) as u8;
            }
        }
        Poll::Ready(Ok(self.protocol))
    }

    /// Takes note of bytes read while the protocol is not yet known.
    fn sniff(&mut self, matched: usize, read: &[u8]) {
        let rest = &H2_PREFACE[matched..];
        let n = read.len().min(rest.len());
        self.protocol = if read.is_empty() || read[..n] != rest[..n] {
            Protocol::Http1
        } else if matched + n == H2_PREFACE.len() {
            self.exchanges.http2.store(true, Ordering::Release);
            Protocol::Http2
        } else {
            Protocol::Sniffing {
                matched: matched + n,
            }
        };
    }

    /// Whether a read that must wait has missed its deadline; otherwise the task is woken at
    /// the deadline.
    ///
    /// During an exchange nothing times out, but the timer stays armed, at or before any later
    /// deadline: it then wakes the task once the connection is idle, even if hyper does not
    /// read again after the response. It is set again when it fires, or when the deadline
    /// comes nearer than it (a head begins), and polled only then or when the task's waker
    /// changed: a `Sleep` never completes before its deadline, and the waker it was last polled
    /// with stays registered until it fires, so a wait before the deadline by the same task
    /// costs a clock reading, not a registration.
    fn missed_deadline(&mut self, cx: &mut Context<'_>) -> bool {
        if self.exchanges.upgraded.load(Ordering::Acquire) {
            return false;
        }
        let now = Instant::now();
        let mut deadline = self.deadline(now);
        if let (Some(timer), Some(waker)) = (&self.timer, &self.timer_waker)
            && waker.will_wake(cx.waker())
            && now < timer.deadline()
            && deadline.is_none_or(|deadline| timer.deadline() <= deadline)
        {
            return false;
        }
        match &mut self.timer_waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        let timer = match &mut self.timer {
            Some(timer) => {
                if let Some(deadline) = deadline
                    && deadline < timer.deadline()
                {
                    timer.as_mut().reset(deadline);
                }
                timer
            }
            None => {
                // Any deadline set from now on is this or later.
                let Some(at) = deadline.or_else(|| now.checked_add(self.soonest)) else {
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
                Some(missed) if fired_at >= missed && self.protocol == Protocol::Http2 => {
                    if self.going_away_since.is_some() {
                        return true;
                    }
                    // Idle: the connection's task shuts it down gracefully, and it has the
                    // header read timeout to close.
                    self.going_away_since = Some(now);
                    self.exchanges.h2_idle.store(true, Ordering::Release);
                    cx.waker().wake_by_ref();
                    let Some(grace) = now.checked_add(self.head_limit) else {
                        return false;
                    };
                    deadline = Some(grace);
                    grace
                }
                Some(deadline) if fired_at >= deadline => return true,
                // It fired for an earlier wait's deadline: move it to this one's.
                Some(deadline) => deadline,
                // It fired during an exchange: a deadline set from now on is later.
                None => match now.checked_add(self.soonest) {
                    Some(at) => at,
                    None => return false,
                },
            };
            timer.as_mut().reset(next);
        }
    }

    /// The instant by which the connection must have read what it waits for, `None` while an
    /// exchange is under way (or a limit is too large to count). The first wait after an
    /// exchange ended notes `now` as the start of the idle time: hyper reads again as soon as
    /// a response is sent, so that is when it ended, give or take the time to poll (and later,
    /// never earlier, if hyper did not read before the timer fired). Likewise the first wait
    /// after bytes of the next head arrived notes `now` as the start of that head.
    fn deadline(&mut self, now: Instant) -> Option<Instant> {
        if self.exchanges.open.load(Ordering::Acquire) > 0 {
            return None;
        }
        let ended = self.exchanges.ended.load(Ordering::Acquire);
        if ended != self.idle_after {
            self.idle_after = ended;
            self.idle_since = now;
            self.head_since = None;
        }
        if self.protocol == Protocol::Http2 {
            return match self.going_away_since {
                Some(since) => since.checked_add(self.head_limit),
                None => self.idle_since.checked_add(self.idle_limit),
            };
        }
        if ended == 0 {
            // The first head, counted from the connection opening, silent or slow.
            self.idle_since.checked_add(self.head_limit)
        } else if self.bytes_after == ended + 1 {
            // The next head has begun.
            let since = *self.head_since.get_or_insert(now);
            since.checked_add(self.head_limit)
        } else {
            self.idle_since.checked_add(self.idle_limit)
        }
    }

    /// The error a read fails with at a deadline.
    #[cold]
    fn timed_out(&self) -> io::Error {
        let message = if self.protocol == Protocol::Http2 {
            format!(
                "the idle HTTP/2 connection was not closed within {:?} of its GOAWAY",
                self.head_limit
            )
        } else if self.idle_after > 0 && self.bytes_after != self.idle_after + 1 {
            format!(
                "no HTTP request on the keep-alive connection within the idle timeout of {:?}",
                self.idle_limit
            )
        } else {
            format!(
                "no whole HTTP request head within the header read timeout of {:?}",
                self.head_limit
            )
        };
        io::Error::new(io::ErrorKind::TimedOut, message)
    }
}

impl<R: Runtime> AsyncRead for HeadDeadline<R> {
    #[inline(always)]
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.first_read < this.first_len {
            return Poll::Ready(Ok(this.read_first(buf)));
        }
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    this.bytes_after = this.exchanges.ended.load(Ordering::Acquire) + 1;
                }
                if let Protocol::Sniffing { matched } = this.protocol {
                    this.sniff(matched, &buf[..n]);
                }
                Poll::Ready(Ok(n))
            }
            Poll::Pending => this.wait(cx),
            other => other,
        }
    }
}

impl<R: Runtime> HeadDeadline<R> {
    /// Hands out what [`Self::poll_sniff`] read, once per connection.
    #[cold]
    fn read_first(&mut self, buf: &mut [u8]) -> usize {
        let first = &self.first[usize::from(self.first_read)..usize::from(self.first_len)];
        let n = first.len().min(buf.len());
        buf[..n].copy_from_slice(&first[..n]);
        self.first_read += n as u8;
        n
    }

    /// A read that must wait: it fails if it missed its deadline. Out of line, so that a read
    /// that brings bytes does not pay for the registers the deadline's arithmetic needs.
    #[inline(never)]
    fn wait(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.missed_deadline(cx) {
            Poll::Ready(Err(self.timed_out()))
        } else {
            Poll::Pending
        }
    }
}

/// How long an HTTP/1 connection of a server stopping for an upgrade may stay idle before it
/// is closed; requests it gets meanwhile are answered with `Connection: close`.
pub(super) const DRAIN_GRACE: Duration = Duration::from_secs(1);

/// How long a connection that refused a request's body (`413`) goes on reading, after its
/// response, what the peer still sends, so that the peer reads the response.
pub(super) const LINGER_TIMEOUT: Duration = Duration::from_secs(5);

impl<R: Runtime> HeadDeadline<R> {
    /// After the response that refused a body has been sent and the sending side shut down:
    /// reads and drops what the peer still sends, until it closes or [`LINGER_TIMEOUT`] has
    /// passed. Closing a socket with unread bytes makes the kernel reset the connection, and a
    /// peer still sending its body would then lose the response it had not read yet (nginx's
    /// "lingering close").
    #[cold]
    fn poll_linger(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(ginkgo_api::time::sleep::<R>(LINGER_TIMEOUT)));
        if !self.lingering {
            self.lingering = true;
            timer.as_mut().reset(Instant::now() + LINGER_TIMEOUT);
        }
        let mut sink = [0; 4096];
        loop {
            match Pin::new(&mut self.stream).poll_read(cx, &mut sink) {
                Poll::Ready(Ok(0) | Err(_)) => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(_)) => {}
                Poll::Pending => {
                    return match timer.as_mut().poll(cx) {
                        Poll::Ready(()) => Poll::Ready(Ok(())),
                        Poll::Pending => Poll::Pending,
                    };
                }
            }
        }
    }
}

impl<R: Runtime> futures_io::AsyncWrite for HeadDeadline<R> {
    #[inline]
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    #[inline]
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    #[inline]
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let refused_body =
            this.exchanges.refused_body.load(Ordering::Acquire) && this.protocol != Protocol::Http2;
        if !this.lingering {
            // hyper closes a connection it is done with and then drops it. On plain TCP the
            // `close(2)` of the drop sends the FIN as `shutdown(2)` would, so the shutdown is
            // left out: at a stop with many idle connections it is one system call (and on
            // loopback the peer's share of the teardown) less per connection. TLS sends its
            // close_notify here; an upgraded connection's owner may want the half-close; a
            // refused body needs the FIN sent before the rest of it is read.
            if !this.stream.is_tls()
                && !refused_body
                && !this.exchanges.upgraded.load(Ordering::Acquire)
            {
                return Pin::new(&mut this.stream).poll_flush(cx);
            }
            std::task::ready!(Pin::new(&mut this.stream).poll_close(cx))?;
            if !refused_body {
                return Poll::Ready(Ok(()));
            }
        }
        this.poll_linger(cx)
    }
}
