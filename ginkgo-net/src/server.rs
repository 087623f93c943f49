//! [`StreamServer`]: a stream (TCP or Unix-domain) server as a service.

use std::future::Future;
use std::marker::PhantomData;
use std::time::Duration;

use ginkgo_api::Runtime;
use ginkgo_api::service::{Context, Error, Options, Service, Shutdown, TaskResult, async_trait};

use crate::accept::{AcceptControl, AcceptLoop, DEFAULT_MAX_CONNECTIONS};
use crate::contain::run_handler;
use crate::listen::{BoundAddr, Listen, ListenOptions};
use crate::listener::{Peer, Stream};

/// One accepted connection, handed to the server's handler.
#[derive(Debug)]
pub struct Connection<R: Runtime> {
    /// The connection.
    pub stream: Stream<R>,
    /// Who connected: a TCP address, or a Unix peer's credentials.
    pub peer: Peer,
    /// Triggered when the server stops: finish the current exchange and return, before the
    /// stop timeout aborts the connection.
    pub shutdown: Shutdown,
}

/// What a [`StreamServer`] runs for each connection: usually a closure
/// `|conn: Connection<R>| async move { ... }` returning `()` or `Result<(), E>`.
///
/// An error or a panic ends that connection only: it is counted and logged, and the server
/// keeps serving.
pub trait Handler<R: Runtime>: Clone + Send + Sync + 'static {
    /// What the handler's future returns.
    type Output: TaskResult;
    /// The handler's future.
    type Future: Future<Output = Self::Output> + Send + 'static;
    /// Handles one connection.
    fn call(&self, connection: Connection<R>) -> Self::Future;
}

impl<R, F, Fut> Handler<R> for F
where
    R: Runtime,
    F: Fn(Connection<R>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: TaskResult,
{
    type Output = Fut::Output;
    type Future = Fut;

    fn call(&self, connection: Connection<R>) -> Fut {
        self(connection)
    }
}

/// A stream server as a service: one owned task per connection running the handler.
///
/// - Listens on a [`Listen`]: a TCP address or a Unix socket file (`unix:/run/app.sock`)
///   bound at each start, or an inherited listener, set up with [`ListenOptions`].
/// - Accepts with the one [`AcceptLoop`]: at most `max_connections` connections at once,
///   pause and resume ([`StreamServer::accept_control`]), backoff on accept errors such as
///   `EMFILE`, and the counters `connections_accepted`, `connections_active`,
///   `connections_closed`, `accept_errors` and `accept_paused`.
/// - Stopping stops accepting at once and closes the listener; open connections see their
///   [`Connection::shutdown`] and have the service's stop timeout
///   ([`StreamServer::stop_timeout`], 5 s by default) to finish before their tasks are aborted
///   and they are closed.
/// - A handler's error or panic ends its connection only; it is logged and counted in
///   `connection_errors`.
/// - A handler that returns without closing its TLS stream (or panics) has it closed for it:
///   the server sends the close_notify, so the peer sees a clean end of the data rather than
///   a cut connection, within the stop timeout ([`StreamServer::stop_timeout`]) for a peer
///   that takes nothing more. In the clear, dropping the stream closes the socket.
/// - With TLS ([`StreamServer::tls`], feature `tls`): each connection's handshake runs in its
///   own task within [`StreamServer::handshake_timeout`]; one that fails or stalls ends that
///   connection only and is counted in `tls_handshake_errors`. The certificate files are
///   checked at start (a bad one fails the start, naming the file) and re-read on reload:
///   good files serve new handshakes, open connections are untouched; bad files fail the
///   reload with the reason and the old certificate stays in force.
pub struct StreamServer<R: Runtime, H> {
    name: String,
    listen: Listen,
    options: ListenOptions,
    handler: H,
    max_connections: usize,
    service_options: Options,
    address: BoundAddr,
    control: AcceptControl,
    #[cfg(feature = "tls")]
    tls: crate::tls::TlsSetup,
    _runtime: PhantomData<fn() -> R>,
}

impl<R: Runtime, H: Handler<R>> StreamServer<R, H> {
    /// A server named `name` listening on `listen` and running `handler` per connection.
    pub fn new(name: &str, listen: impl Into<Listen>, handler: H) -> Self {
        Self {
            name: name.to_owned(),
            listen: listen.into(),
            options: ListenOptions::default(),
            handler,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            service_options: Options::default(),
            address: BoundAddr::default(),
            control: AcceptControl::default(),
            #[cfg(feature = "tls")]
            tls: crate::tls::TlsSetup::default(),
            _runtime: PhantomData,
        }
    }

    /// Serves TLS with `settings` (certificate chain, key, optional client CA for mutual TLS,
    /// minimum version, ALPN protocols); the handler's [`Connection::stream`] is then the TLS
    /// stream, with the peer's certificate identity under mutual TLS.
    #[cfg(feature = "tls")]
    #[must_use]
    pub fn tls(mut self, settings: ginkgo_tls::ServerTls) -> Self {
        self.tls.set(Some(settings));
        self
    }

    /// Serves TLS with an acceptor built beforehand: its files were checked when it was built
    /// (a program builds it while building its tree, so `check` and a failed start report a
    /// bad file alike); reload re-reads them.
    #[cfg(feature = "tls")]
    #[must_use]
    pub fn tls_acceptor(mut self, acceptor: ginkgo_tls::TlsAcceptor) -> Self {
        self.tls.set_acceptor(acceptor);
        self
    }

    /// How long a TLS handshake may take before the connection is closed (default 10 s).
    #[cfg(feature = "tls")]
    #[must_use]
    pub fn handshake_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.tls.set_handshake_timeout(timeout);
        self
    }

    /// At most `limit` connections at once (default 10,000; at least 1).
    #[must_use]
    pub fn max_connections(mut self, limit: usize) -> Self {
        self.max_connections = limit.max(1);
        self
    }

    /// How the listener is set up (backlog, `SO_REUSEPORT`, ...) and what is set on each
    /// accepted connection (`TCP_NODELAY`, keepalive). Default: [`ListenOptions::default`].
    #[must_use]
    pub fn listen_options(mut self, options: ListenOptions) -> Self {
        self.options = options;
        self
    }

    /// The service's lifecycle options ([`Options`]); [`Options::stop_timeout`] bounds the
    /// graceful stop. Default: [`Options::default`].
    #[must_use]
    pub fn with_options(mut self, options: Options) -> Self {
        self.service_options = options;
        self
    }

    /// Sets only [`Options::stop_timeout`]: how long open connections get to finish once the
    /// server stops (default 5 s). Handlers still running then are aborted, which closes their
    /// connections.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn demo<R: ginkgo_api::Runtime>() {
    /// use std::time::Duration;
    /// use ginkgo_net::{Connection, StreamServer};
    ///
    /// let server = StreamServer::<R, _>::new("quick", "127.0.0.1:0", |_: Connection<R>| async {})
    ///     .stop_timeout(Duration::from_secs(1));
    /// # }
    /// ```
    #[must_use]
    pub fn stop_timeout(mut self, timeout: Duration) -> Self {
        self.service_options = self.service_options.stop_timeout(timeout);
        self
    }

    /// A handle to the bound address, known once the server has started.
    pub fn address(&self) -> BoundAddr {
        self.address.clone()
    }

    /// A handle that pauses and resumes accepting, across restarts of the server.
    pub fn accept_control(&self) -> AcceptControl {
        self.control.clone()
    }
}

#[async_trait]
impl<R: Runtime, H: Handler<R>> Service for StreamServer<R, H> {
    fn name(&self) -> &str {
        &self.name
    }

    fn options(&self) -> Options {
        self.service_options.clone()
    }

    async fn start(&mut self, ctx: &Context) -> Result<(), Error> {
        #[cfg(feature = "tls")]
        let handshake = self.tls.start(ctx)?;
        let listener = self.listen.open_for::<R>(&self.options, ctx.path()).await?;
        let accept = AcceptLoop::new(listener, &self.address, ctx)
            .max_connections(self.max_connections)
            .control(self.control.clone());
        tracing::info!(service = ctx.path(), address = %accept.local_addr(), "listening");
        let errors = ctx.counter("connection_errors");
        let handler = self.handler.clone();
        let owner = ctx.clone();
        let shutdown = ctx.shutdown();
        // A handler that returned without closing its TLS stream is done with it; what is
        // left is the close_notify, after any records still buffered. A peer that reads
        // nothing more (or has gone) must not hold the task and its place under the connection
        // cap for ever: the close gets the time a connection gets to finish at stop.
        #[cfg(feature = "tls")]
        let close_limit = self.service_options.stop_timeout;
        ctx.spawn(
            "accept",
            accept.run(ctx.clone(), move |accepted| {
                let (stream, peer, guard) = (accepted.stream, accepted.peer, accepted.guard);
                let shutdown = shutdown.clone();
                let handler = handler.clone();
                let errors = errors.clone();
                #[cfg(feature = "tls")]
                let handshake = handshake.clone();
                owner.spawn(format!("connection {peer}"), async move {
                    #[cfg(feature = "tls")]
                    let Some(mut stream) = handshake.run::<R>(stream, &peer, &shutdown).await
                    else {
                        return;
                    };
                    #[cfg(feature = "tls")]
                    let finish = stream.finish_tls_on_drop();
                    let connection = Connection {
                        stream,
                        peer,
                        shutdown,
                    };
                    let problem = run_handler(|| handler.call(connection)).await;
                    if let Some(problem) = problem {
                        errors.inc();
                        tracing::debug!(%peer, %problem, "connection ended with an error");
                    }
                    #[cfg(feature = "tls")]
                    if let Some(finish) = finish
                        && let Err(err) = finish.close(close_limit).await
                    {
                        tracing::debug!(%peer, %err, "cannot close the TLS session cleanly");
                    }
                    drop(guard);
                });
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
