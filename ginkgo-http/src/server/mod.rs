//! [`HttpServer`]: a service that serves any tower `Service` over HTTP/1.1 and HTTP/2.

mod conn;
mod exec;
mod limits;
mod service;

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use ginkgo_api::Runtime;
use ginkgo_api::service::{Context, Error, Options, Service, async_trait};
use http::{Request, Response};
use hyper::server::conn::{http1, http2};

use ginkgo_net::{
    AcceptControl, AcceptLoop, BoundAddr, DEFAULT_MAX_CONNECTIONS, Listen, ListenOptions,
};

use crate::Body;
use crate::rt::Timer;
use exec::OwnedExecutor;
use limits::Limits;
pub use limits::{
    DEFAULT_H2_MAX_CONCURRENT_STREAMS, DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_BODY_SIZE, DEFAULT_MAX_HEADER_SIZE, DEFAULT_MAX_HEADERS, MIN_MAX_HEADER_SIZE,
};

/// A boxed error, as hyper and tower pass them around.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What [`HttpServer`] serves: any tower `Service` of `http::Request<`[`Body`]`>` that answers
/// with an `http::Response` of some [`http_body::Body`], is `Clone + Send + 'static`, and has
/// a `Send` future. An axum `Router` is one (it takes any request body).
///
/// Implemented for every such service; never implement it by hand.
pub trait HttpService:
    tower_service::Service<
        Request<Body>,
        Response = Response<Self::ResBody>,
        Error = Self::ServiceError,
        Future = Self::ServiceFuture,
    > + Clone
    + Send
    + 'static
{
    /// The body of its responses.
    type ResBody: http_body::Body<Data: Send, Error: Into<BoxError>> + Send + 'static;
    /// Its error (axum's `Router` never fails: `Infallible`).
    type ServiceError: Into<BoxError>;
    /// Its response future.
    type ServiceFuture: Future<Output = Result<Response<Self::ResBody>, Self::ServiceError>>
        + Send
        + 'static;
}

impl<S, B> HttpService for S
where
    S: tower_service::Service<Request<Body>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body<Data: Send, Error: Into<BoxError>> + Send + 'static,
{
    type ResBody = B;
    type ServiceError = S::Error;
    type ServiceFuture = S::Future;
}

/// A service that serves HTTP on runtime `R` with any tower service `S` (an axum `Router`
/// runs unchanged).
///
/// - **Listening**: binds an address at start ([`HttpServer::new`] with `"127.0.0.1:8080"`,
///   or a Unix socket file with `"unix:/run/app.sock"`; a bind error fails the start with a
///   message naming the address) or adopts a bound listener (socket activation), set up with
///   [`HttpServer::listen_options`]. [`HttpServer::address`] tells the bound address, which is
///   how to find port 0.
/// - **Protocols**: HTTP/1.1 with keep-alive and HTTP/2 with prior knowledge (h2c) on the same
///   port, told apart by the first bytes (as hyper-util's `auto` builder does, but read by the
///   connection's own socket adapter, so no rewinding layer sits under every later read and
///   write). Upgrades (such as WebSocket) are supported.
/// - **Limits**: see [below](#limits); each has a builder method and a default.
/// - **Accepting**: ginkgo-net's [`AcceptLoop`], the one every server kind runs: at most
///   [`HttpServer::max_connections`] connections at once (10,000 by default; beyond it new
///   ones wait in the kernel's backlog), and accept errors such as `EMFILE` back off
///   exponentially instead of spinning.
/// - **Tasks and counters**: one owned task accepts, one owned task serves each connection (and
///   runs its HTTP/1 requests), and each HTTP/2 request runs in an owned task of its own. The
///   counters `requests`, `connections_accepted`, `connections_active`, `connections_closed`
///   and `accept_errors` appear in the service's snapshot and in `/metrics`.
/// - **Graceful stop**: when the service stops, it stops accepting (new connections are
///   refused), tells every connection to shut down gracefully (requests in flight finish, idle
///   keep-alive connections close, HTTP/2 peers get a GOAWAY), and waits for them within its
///   [`Options::stop_timeout`]; connections still open then are aborted.
/// - **Upgrades** (ginkgo-runner's `upgrade`): the new process adopts the listening socket of
///   this server's service path. The old process, stopping once the new one is ready, drains
///   its HTTP/1 keep-alive connections instead of closing them idle (which would race a
///   request a client is sending): each next response says `Connection: close`, and a
///   connection idle for 1 s is closed. HTTP/2 connections get their GOAWAY.
///
/// # Limits
///
/// What a peer may send, and for how long it may hold a connection; the defaults are those of
/// the constants named, and every limit is set by the builder method of its name.
///
/// | limit | default | over it |
/// |---|---|---|
/// | [`header_read_timeout`](Self::header_read_timeout) | 30 s ([`DEFAULT_HEADER_READ_TIMEOUT`]) | HTTP/1: the connection is closed |
/// | [`idle_timeout`](Self::idle_timeout) | 60 s ([`DEFAULT_IDLE_TIMEOUT`]) | HTTP/1: the keep-alive connection is closed; HTTP/2: `GOAWAY`, then it is closed |
/// | [`max_header_size`](Self::max_header_size) | 64 KiB ([`DEFAULT_MAX_HEADER_SIZE`]) | `431 Request Header Fields Too Large` |
/// | [`max_headers`](Self::max_headers) | 100 ([`DEFAULT_MAX_HEADERS`]) | HTTP/1: `431 Request Header Fields Too Large` |
/// | [`max_body_size`](Self::max_body_size) | 2 MiB ([`DEFAULT_MAX_BODY_SIZE`]) | `413 Payload Too Large`, or an error reading the [`Body`] |
/// | [`h2_max_concurrent_streams`](Self::h2_max_concurrent_streams) | 200 ([`DEFAULT_H2_MAX_CONCURRENT_STREAMS`]) | HTTP/2: the peer waits for a stream to end |
/// | [`max_connections`](Self::max_connections) | 10,000 | new connections wait in the kernel's backlog |
///
/// - The **header read timeout** bounds how long an HTTP/1 request head may take: the first
///   of a connection from the moment it opened (so a peer that connects and stays silent is
///   closed at it too), each later one from its first byte. A peer that sends a head a byte
///   at a time (slowloris) is closed at it however it trickles, and holds nothing but its
///   connection meanwhile (the HTTP suite holds 2,000 such peers against the server on every
///   backend, and checks that a `GET /` is still answered within 100 ms).
/// - The **idle timeout** bounds how long an HTTP/1 keep-alive connection may wait for its
///   next request once a response has been sent, and how long an HTTP/2 connection may have
///   no stream open (from its start, or from its last stream's end): it is then shut down as
///   the server's stop does (a `GOAWAY`; streams that raced it finish), and a peer that has
///   not closed it within the header read timeout after that is cut off. Neither timeout
///   applies while a request is served: request bodies and responses take the time they take.
/// - The **head size** counts the request line and headers. On HTTP/1 hyper answers `431` and
///   closes the connection once it has buffered that much of a head that has not ended (it
///   looks after each read, of up to 16 KiB, so a head may pass the limit by less than one
///   read). On HTTP/2 it is the `SETTINGS_MAX_HEADER_LIST_SIZE` the server announces, as HTTP/2
///   counts it (names and values plus 32 bytes a field); over it a stream gets `431`. The
///   **header count** is HTTP/1's only; HTTP/2 heads are bounded by their size.
/// - The **body size**: a request whose `Content-Length` is over it gets `413` without the
///   service being called (an HTTP/1.1 connection is then closed, rather than its body read);
///   a body of unknown length fails at the limit, as [`Body`] tells, which axum's extractors
///   answer with `413` too. After any `413` response an HTTP/1 connection closes lingering, as
///   nginx does: it shuts down its sending side, then reads and drops what the client still
///   sends until the client closes, for at most 5 s. Closing at once, with the client's bytes
///   unread, would make the kernel reset the connection, and a client still writing its body
///   would never read the `413`.
/// - **HTTP/2 streams**: the most requests an HTTP/2 peer may have in flight on one
///   connection, announced in the server's SETTINGS; hyper's default.
///
/// Not limited: the time a request body or a response takes, and an upgraded connection. An
/// HTTP/2 connection has the header read timeout until its preface has arrived, then the idle
/// timeout whenever no stream is open.
///
/// # Examples
///
/// ```
/// # fn demo<R: ginkgo_api::Runtime>() {
/// use std::time::Duration;
/// use ginkgo_http::HttpServer;
/// use ginkgo_http::axum::{Router, routing::get};
///
/// let app = Router::new().route("/", get(|| async { "hello" }));
/// let server = HttpServer::<R, _>::new("127.0.0.1:8080", app)
///     .named("web")
///     .max_body_size(16 * 1024 * 1024)
///     .idle_timeout(Duration::from_secs(5));
/// let tree = ginkgo_api::service::tree::<R>(server);
/// // ginkgo_api::block_on::<R, _>(ginkgo_api::service::serve(&tree)) serves until stopped.
/// # drop(tree);
/// # }
/// ```
pub struct HttpServer<R, S> {
    name: Cow<'static, str>,
    listen: Listen,
    make: Make<S>,
    limits: Limits,
    keep_alive: bool,
    options: Options,
    max_connections: usize,
    listen_options: ListenOptions,
    address: BoundAddr,
    control: AcceptControl,
    #[cfg(feature = "tls")]
    tls: ginkgo_net::tls::TlsSetup,
    _runtime: PhantomData<fn() -> R>,
}

/// Where the served service comes from at each start.
enum Make<S> {
    Service(S),
    Build(Arc<dyn Fn(&Context) -> S + Send + Sync>),
}

impl<R: Runtime, S> HttpServer<R, S> {
    /// A server on `listen` (an address such as `"127.0.0.1:8080"`, or a bound
    /// [`std::net::TcpListener`]) that serves `service`, cloned for each connection.
    pub fn new(listen: impl Into<Listen>, service: S) -> Self {
        Self::with(listen.into(), Make::Service(service))
    }

    /// A server that builds its service at each start from the service's [`Context`]: the way
    /// to serve handlers that need the tree, such as [`admin::router`](crate::admin::router)
    /// given `ctx.handle().root()`.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn demo<R: ginkgo_api::Runtime>() {
    /// use ginkgo_http::{HttpServer, admin};
    /// use ginkgo_http::axum::{Router, routing::get};
    ///
    /// let app = Router::new().route("/", get(|| async { "hello" }));
    /// let server = HttpServer::<R, _>::with_context("127.0.0.1:8080", move |ctx| {
    ///     app.clone().merge(admin::router(ctx.handle().root()))
    /// });
    /// # drop(server);
    /// # }
    /// ```
    pub fn with_context<F>(listen: impl Into<Listen>, build: F) -> Self
    where
        F: Fn(&Context) -> S + Send + Sync + 'static,
    {
        Self::with(listen.into(), Make::Build(Arc::new(build)))
    }

    fn with(listen: Listen, make: Make<S>) -> Self {
        Self {
            name: Cow::Borrowed("HttpServer"),
            listen,
            make,
            limits: Limits::default(),
            keep_alive: true,
            options: Options::default(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            listen_options: ListenOptions::default(),
            address: BoundAddr::default(),
            control: AcceptControl::default(),
            #[cfg(feature = "tls")]
            tls: ginkgo_net::tls::TlsSetup::default(),
            _runtime: PhantomData,
        }
    }

    /// Names the service in paths, logs and metrics (default `HttpServer`).
    #[must_use]
    pub fn named(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.name = name.into();
        self
    }

    /// How long an HTTP/1 request head may take: the first of a connection from the moment it
    /// opened, each later one from its first byte; a connection that misses it is closed.
    /// Default: 30 s ([`DEFAULT_HEADER_READ_TIMEOUT`]); `Duration::MAX` turns it off.
    #[must_use]
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.limits.header_read_timeout = timeout;
        self
    }

    /// How long an HTTP/1 keep-alive connection may wait for its next request after a
    /// response, and an HTTP/2 connection may have no stream open; it is closed then (HTTP/2
    /// with a `GOAWAY` first). Default: 60 s ([`DEFAULT_IDLE_TIMEOUT`]); `Duration::MAX` turns
    /// it off.
    #[must_use]
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.limits.idle_timeout = timeout;
        self
    }

    /// The largest request head (request line and headers) in bytes; a larger one gets `431
    /// Request Header Fields Too Large` (see [Limits](#limits) for how hyper counts).
    /// Default: 64 KiB ([`DEFAULT_MAX_HEADER_SIZE`]); at least 8 KiB
    /// ([`MIN_MAX_HEADER_SIZE`], hyper's least): a smaller `bytes` is taken as 8 KiB.
    #[must_use]
    pub fn max_header_size(mut self, bytes: usize) -> Self {
        self.limits.max_header_size = bytes.max(MIN_MAX_HEADER_SIZE);
        self
    }

    /// The most headers an HTTP/1 request may have; more get `431 Request Header Fields Too
    /// Large`. Default: 100 ([`DEFAULT_MAX_HEADERS`], hyper's). Any other count costs every
    /// request a little (hyper then sizes its parser's array at run time), and over 100 an
    /// allocation.
    #[must_use]
    pub fn max_headers(mut self, count: usize) -> Self {
        self.limits.max_headers = count;
        self
    }

    /// The largest request body in bytes: over it, a request's `Content-Length` gets `413
    /// Payload Too Large` without the service being called, and a body of unknown length
    /// fails when read past it (see [`Body`]). Default: 2 MiB ([`DEFAULT_MAX_BODY_SIZE`],
    /// axum's); `usize::MAX` turns it off.
    ///
    /// axum's extractors keep their own limit too (`DefaultBodyLimit`, also 2 MiB): to accept
    /// larger bodies through them, raise both.
    #[must_use]
    pub fn max_body_size(mut self, bytes: usize) -> Self {
        self.limits.max_body_size = bytes;
        self
    }

    /// The most streams (requests in flight) an HTTP/2 peer may have open at once on one
    /// connection, announced in the server's SETTINGS; further requests wait at the peer.
    /// Default: 200 ([`DEFAULT_H2_MAX_CONCURRENT_STREAMS`], hyper's); at least 1.
    #[must_use]
    pub fn h2_max_concurrent_streams(mut self, streams: u32) -> Self {
        self.limits.h2_max_concurrent_streams = streams.max(1);
        self
    }

    /// Whether HTTP/1 connections are kept open between requests. Default: `true`.
    #[must_use]
    pub fn keep_alive(mut self, keep_alive: bool) -> Self {
        self.keep_alive = keep_alive;
        self
    }

    /// The service's lifecycle options; [`Options::stop_timeout`] bounds the graceful stop.
    #[must_use]
    pub fn with_options(mut self, options: Options) -> Self {
        self.options = options;
        self
    }

    /// Sets only [`Options::stop_timeout`]: how long open connections get to finish on stop.
    #[must_use]
    pub fn stop_timeout(mut self, timeout: Duration) -> Self {
        self.options = self.options.stop_timeout(timeout);
        self
    }

    /// Where to listen.
    pub fn listen(&self) -> &Listen {
        &self.listen
    }

    /// At most `limit` connections at once (default 10,000; at least 1): at the cap the server
    /// stops accepting (the kernel queues new connections) until one closes.
    #[must_use]
    pub fn max_connections(mut self, limit: usize) -> Self {
        self.max_connections = limit.max(1);
        self
    }

    /// How the listener is set up (backlog, `SO_REUSEPORT`, `IPV6_V6ONLY`, a Unix socket
    /// file's mode) and what is set on each accepted connection (`TCP_NODELAY`, on by default
    /// so responses go out as soon as they are written; keepalive).
    #[must_use]
    pub fn listen_options(mut self, options: ListenOptions) -> Self {
        self.listen_options = options;
        self
    }

    /// A handle that tells the bound address once the server has started.
    pub fn address(&self) -> BoundAddr {
        self.address.clone()
    }

    /// Serves HTTPS with `settings`: HTTP/2 or HTTP/1.1 as the client chooses by ALPN (the
    /// settings' ALPN list, when empty, becomes `h2`, `http/1.1`). The certificate files are
    /// checked at start (a bad one fails the start, naming it) and re-read on reload: good
    /// files serve new handshakes while open connections go on; bad ones fail the reload with
    /// the reason, and the certificate in force stays. A handshake must finish within the
    /// header read timeout; one that fails or stalls is counted in `tls_handshake_errors`.
    #[cfg(feature = "tls")]
    #[must_use]
    pub fn tls(mut self, settings: ginkgo_tls::ServerTls) -> Self {
        let settings = if settings.alpn.is_empty() {
            settings.alpn(["h2", "http/1.1"])
        } else {
            settings
        };
        self.tls.set(Some(settings));
        self
    }

    /// Serves HTTPS with an acceptor built beforehand (so its files were checked when the
    /// program built its tree, as `check` does); give it the ALPN protocols `h2` and
    /// `http/1.1` to offer both. Otherwise as [`HttpServer::tls`].
    #[cfg(feature = "tls")]
    #[must_use]
    pub fn tls_acceptor(mut self, acceptor: ginkgo_tls::TlsAcceptor) -> Self {
        self.tls.set_acceptor(acceptor);
        self
    }

    /// A handle that pauses and resumes accepting new connections, across restarts of the
    /// server; the snapshot's `accept_paused` is 1 while paused.
    pub fn accept_control(&self) -> AcceptControl {
        self.control.clone()
    }

    /// Publishes the bound address in `address` instead of a handle of its own: for a server
    /// built by a supervisor's factory, whose every fresh instance should report to the same
    /// handle.
    ///
    /// # Examples
    ///
    /// ```
    /// use ginkgo_api::service::{Context, Restart};
    /// use ginkgo_http::{BoundAddr, HttpServer};
    /// use ginkgo_http::axum::Router;
    ///
    /// fn add_web<R: ginkgo_api::Runtime>(ctx: &Context) -> BoundAddr {
    ///     let listening = BoundAddr::new();
    ///     let address = listening.clone();
    ///     ctx.supervise(Restart::Permanent, move || {
    ///         HttpServer::<R, _>::new("127.0.0.1:8080", Router::new()).with_address(address.clone())
    ///     });
    ///     listening
    /// }
    /// ```
    #[must_use]
    pub fn with_address(mut self, address: BoundAddr) -> Self {
        self.address = address;
        self
    }

    /// hyper's builders for this server's connections, HTTP/1.1 and HTTP/2.
    fn connection_builders(
        &self,
        ctx: &Context,
    ) -> (http1::Builder, http2::Builder<OwnedExecutor>) {
        let mut http1 = http1::Builder::new();
        // The header read timeout is kept by each connection's socket (`conn::HeadDeadline`),
        // which costs a request less than hyper's own.
        http1.keep_alive(self.keep_alive).header_read_timeout(None);
        let mut http2 = http2::Builder::new(OwnedExecutor(ctx.clone()));
        http2.timer(Timer::<R>::new());
        self.limits.apply(&mut http1, &mut http2);
        (http1, http2)
    }
}

impl<S: Clone + 'static> Make<S> {
    fn make(&self, ctx: &Context) -> S {
        let service = match self {
            Make::Service(service) => service.clone(),
            Make::Build(build) => build(ctx),
        };
        #[cfg(feature = "axum")]
        let service = with_router_state(service);
        service
    }
}

/// An axum `Router` whose state was never given turns its handlers into routes anew for every
/// request (a clone and allocations each time); giving it the unit state does that once.
/// `axum::serve` does the same for each connection. Any other service is returned as it is.
#[cfg(feature = "axum")]
fn with_router_state<S: 'static>(mut service: S) -> S {
    if let Some(router) = (&mut service as &mut dyn std::any::Any).downcast_mut::<axum::Router>() {
        *router = router.clone().with_state(());
    }
    service
}

#[async_trait]
impl<R: Runtime, S: HttpService> Service for HttpServer<R, S> {
    fn name(&self) -> &str {
        &self.name
    }

    fn options(&self) -> Options {
        self.options.clone()
    }

    async fn start(&mut self, ctx: &Context) -> Result<(), Error> {
        #[cfg(feature = "tls")]
        let tls = {
            self.tls
                .set_handshake_timeout(self.limits.header_read_timeout);
            self.tls.start(ctx)?
        };
        let listener = self
            .listen
            .open_for::<R>(&self.listen_options, ctx.path())
            .await?;
        let accept = AcceptLoop::new(listener, &self.address, ctx)
            .max_connections(self.max_connections)
            .control(self.control.clone());
        let (http1, http2) = self.connection_builders(ctx);
        let shared = Arc::new(conn::Shared {
            http1,
            http2,
            header_read_timeout: self.limits.header_read_timeout,
            idle_timeout: self.limits.idle_timeout,
            max_body_size: self.limits.max_body_size,
            requests: ctx.counter("requests"),
            #[cfg(feature = "tls")]
            tls,
        });
        // Built per start and kept only by the tasks, never in `self`: a service holding the
        // tree (as the admin endpoints do) would otherwise keep the tree alive forever.
        let service = self.make.make(ctx);
        let addr = accept.local_addr().clone();
        tracing::info!(service = %ctx.path(), %addr, "HTTP server listening");
        let owner = ctx.clone();
        let shutdown = ctx.shutdown();
        ctx.spawn(
            "accept",
            accept.run(ctx.clone(), move |accepted| {
                owner.spawn(
                    format!("connection from {}", accepted.peer),
                    conn::serve(accepted, service.clone(), shared.clone(), shutdown.clone()),
                );
            }),
        );
        Ok(())
    }

    async fn reload(&mut self, ctx: &Context) -> Result<(), Error> {
        let _ = ctx;
        #[cfg(feature = "tls")]
        self.tls.reload()?;
        Ok(())
    }
}

impl<R: Runtime, S> fmt::Debug for HttpServer<R, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpServer")
            .field("name", &self.name)
            .field("listen", &self.listen)
            .field("local_addr", &self.address.local_addr())
            .field("limits", &self.limits)
            .field("runtime", &R::NAME)
            .finish_non_exhaustive()
    }
}
