//! [`HttpServer`]: a service that serves any tower `Service` over HTTP/1.1 and HTTP/2.

mod conn;
mod exec;

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use ginkgo_api::Runtime;
use ginkgo_api::service::{Context, Error, Options, Service, async_trait};
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::server::conn::auto;

use ginkgo_net::{
    AcceptControl, AcceptLoop, BoundAddr, DEFAULT_MAX_CONNECTIONS, Listen, ListenOptions,
};

use crate::rt::Timer;
use exec::OwnedExecutor;

/// A boxed error, as hyper and tower pass them around.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What [`HttpServer`] serves: any tower `Service` of `http::Request<hyper::body::Incoming>`
/// that answers with an `http::Response` of some [`http_body::Body`], is `Clone + Send +
/// 'static`, and has a `Send` future. An axum `Router` is one.
///
/// Implemented for every such service; never implement it by hand.
pub trait HttpService:
    tower_service::Service<
        Request<Incoming>,
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
    S: tower_service::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body<Data: Send, Error: Into<BoxError>> + Send + 'static,
{
    type ResBody = B;
    type ServiceError = S::Error;
    type ServiceFuture = S::Future;
}

/// The default of [`HttpServer::header_read_timeout`].
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// A service that serves HTTP on runtime `R` with any tower service `S` (an axum `Router`
/// runs unchanged).
///
/// - **Listening**: binds an address at start ([`HttpServer::new`] with `"127.0.0.1:8080"`,
///   or a Unix socket file with `"unix:/run/app.sock"`; a bind error fails the start with a
///   message naming the address) or adopts a bound listener (socket activation), set up with
///   [`HttpServer::listen_options`]. [`HttpServer::address`] tells the bound address, which is
///   how to find port 0.
/// - **Protocols**: HTTP/1.1 with keep-alive and HTTP/2 with prior knowledge (h2c) on the same
///   port, told apart by the first bytes (hyper-util's `auto` builder). Upgrades (such as
///   WebSocket) are supported.
/// - **Timeouts**: a header read timeout ([`HttpServer::header_read_timeout`], 30 s by
///   default) applies to every HTTP/1 request head, counted from when the connection opened
///   or the previous response was sent, so a slow or silent peer cannot hold a connection. It
///   also closes HTTP/1 keep-alive connections idle for that long. Request bodies, responses
///   and upgraded connections are not limited by it. HTTP/2 gets a [`Timer`] for its own
///   keep-alive settings.
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
///
/// # Examples
///
/// ```
/// # fn demo<R: ginkgo_api::Runtime>() {
/// use ginkgo_http::HttpServer;
/// use ginkgo_http::axum::{Router, routing::get};
///
/// let app = Router::new().route("/", get(|| async { "hello" }));
/// let server = HttpServer::<R, _>::new("127.0.0.1:8080", app).named("web");
/// let tree = ginkgo_api::service::tree::<R>(server);
/// // ginkgo_api::block_on::<R, _>(ginkgo_api::service::serve(&tree)) serves until stopped.
/// # drop(tree);
/// # }
/// ```
pub struct HttpServer<R, S> {
    name: Cow<'static, str>,
    listen: Listen,
    make: Make<S>,
    header_read_timeout: Duration,
    keep_alive: bool,
    options: Options,
    max_connections: usize,
    listen_options: ListenOptions,
    address: BoundAddr,
    control: AcceptControl,
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
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            keep_alive: true,
            options: Options::default(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            listen_options: ListenOptions::default(),
            address: BoundAddr::default(),
            control: AcceptControl::default(),
            _runtime: PhantomData,
        }
    }

    /// Names the service in paths, logs and metrics (default `HttpServer`).
    #[must_use]
    pub fn named(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.name = name.into();
        self
    }

    /// How long a peer may take to send a request head, and to begin sending anything after
    /// connecting; also how long an HTTP/1 keep-alive connection may stay idle. Default: 30 s.
    #[must_use]
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
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

    fn connection_builder(&self, ctx: &Context) -> auto::Builder<OwnedExecutor> {
        let mut builder = auto::Builder::new(OwnedExecutor(ctx.clone()));
        // The header read timeout is kept by each connection's socket (`conn::HeadDeadline`),
        // which costs a request less than hyper's own.
        builder
            .http1()
            .keep_alive(self.keep_alive)
            .header_read_timeout(None);
        builder.http2().timer(Timer::<R>::new());
        builder
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
        let listener = self.listen.open::<R>(&self.listen_options).await?;
        let accept = AcceptLoop::new(listener, &self.address, ctx)
            .max_connections(self.max_connections)
            .control(self.control.clone());
        let shared = Arc::new(conn::Shared {
            builder: self.connection_builder(ctx),
            header_read_timeout: self.header_read_timeout,
            requests: ctx.counter("requests"),
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
}

impl<R: Runtime, S> fmt::Debug for HttpServer<R, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpServer")
            .field("name", &self.name)
            .field("listen", &self.listen)
            .field("local_addr", &self.address.local_addr())
            .field("header_read_timeout", &self.header_read_timeout)
            .field("runtime", &R::NAME)
            .finish_non_exhaustive()
    }
}
