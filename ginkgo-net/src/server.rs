//! [`StreamServer`]: a TCP server as a service.

use std::future::Future;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use async_lock::Semaphore;
use futures_lite::FutureExt;
use ginkgo_api::Runtime;
use ginkgo_api::net::{TcpListener, TcpStream};
use ginkgo_api::service::{Context, Counter, Error, Service, Shutdown, TaskResult, async_trait};

use crate::backoff::Backoff;
use crate::bind::{Bind, BoundAddr};

/// One accepted connection, handed to the server's handler.
#[derive(Debug)]
pub struct Connection<R: Runtime> {
    /// The connection.
    pub stream: TcpStream<R>,
    /// The peer's address.
    pub peer: SocketAddr,
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

/// A TCP server as a service: one owned task per connection running the handler.
///
/// - Listens on a [`Bind`]: an address bound at each start, or an inherited listener.
/// - At most `max_connections` connections at once: at the limit it stops accepting (the
///   kernel queues new ones) and resumes below it.
/// - Accept errors that mean "out of resources" (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`)
///   back off exponentially instead of spinning.
/// - Stopping stops accepting at once and closes the listener; open connections see their
///   [`Connection::shutdown`] and have the service's stop timeout to finish before they are
///   closed.
/// - Counters: `connections_accepted`, `connections_active`, `connections_closed`,
///   `connection_errors`.
pub struct StreamServer<R: Runtime, H> {
    name: String,
    bind: Bind,
    handler: H,
    max_connections: usize,
    address: BoundAddr,
    _runtime: PhantomData<fn() -> R>,
}

impl<R: Runtime, H: Handler<R>> StreamServer<R, H> {
    /// A server named `name` listening on `bind` and running `handler` per connection.
    pub fn new(name: &str, bind: impl Into<Bind>, handler: H) -> Self {
        Self {
            name: name.to_owned(),
            bind: bind.into(),
            handler,
            max_connections: 10_000,
            address: BoundAddr::default(),
            _runtime: PhantomData,
        }
    }

    /// At most `limit` connections at once (default 10,000; at least 1).
    #[must_use]
    pub fn max_connections(mut self, limit: usize) -> Self {
        self.max_connections = limit.max(1);
        self
    }

    /// A handle to the bound address, known once the server has started.
    pub fn address(&self) -> BoundAddr {
        self.address.clone()
    }

    async fn listen(&self) -> std::io::Result<TcpListener<R>> {
        match &self.bind {
            Bind::Address(address) => TcpListener::<R>::bind(address.as_str()).await,
            Bind::Listener(listener) => TcpListener::<R>::from_std(listener.try_clone()?),
        }
    }
}

/// The counters of one server, shared by its tasks.
#[derive(Clone)]
struct Counters {
    accepted: Counter,
    active: Counter,
    closed: Counter,
    errors: Counter,
}

/// Counts a connection as closed when dropped, also when its task is aborted.
struct Open(Counters);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.active.dec();
        self.0.closed.inc();
    }
}

/// Whether an accept error means the process ran out of something, so retrying at once
/// would spin.
fn is_exhaustion(err: &std::io::Error) -> bool {
    use rustix::io::Errno;
    [Errno::MFILE, Errno::NFILE, Errno::NOBUFS, Errno::NOMEM]
        .iter()
        .any(|errno| err.raw_os_error() == Some(errno.raw_os_error()))
}

#[async_trait]
impl<R: Runtime, H: Handler<R>> Service for StreamServer<R, H> {
    fn name(&self) -> &str {
        &self.name
    }

    async fn start(&mut self, ctx: &Context) -> Result<(), Error> {
        let listener = self.listen().await?;
        self.address.set(Some(listener.local_addr()?));
        tracing::info!(service = ctx.path(), address = ?self.address.get(), "listening");
        let counters = Counters {
            accepted: ctx.counter("connections_accepted"),
            active: ctx.counter("connections_active"),
            closed: ctx.counter("connections_closed"),
            errors: ctx.counter("connection_errors"),
        };
        let limit = Arc::new(Semaphore::new(self.max_connections));
        let handler = self.handler.clone();
        let owner = ctx.clone();
        let shutdown = ctx.shutdown();
        ctx.spawn("accept", async move {
            let mut backoff = Backoff::new(Duration::from_millis(10), Duration::from_secs(1), 0.1);
            loop {
                let Some(permit) = shutdown.run(limit.acquire_arc()).await else {
                    return;
                };
                let Some(accepted) = shutdown.run(listener.accept()).await else {
                    return; // the listener is dropped here: no new connections
                };
                match accepted {
                    Ok((stream, peer)) => {
                        backoff.reset();
                        counters.accepted.inc();
                        counters.active.inc();
                        let open = Open(counters.clone());
                        let connection = Connection {
                            stream,
                            peer,
                            shutdown: shutdown.clone(),
                        };
                        let handler = handler.clone();
                        owner.spawn(format!("connection {peer}"), async move {
                            let _permit = permit;
                            let outcome = AssertUnwindSafe(handler.call(connection))
                                .catch_unwind()
                                .await;
                            let problem = match outcome {
                                Ok(output) => output.into_result().err().map(|e| e.to_string()),
                                Err(panic) => Some(format!(
                                    "handler panicked: {}",
                                    ginkgo_api::task::payload_message(panic.as_ref())
                                        .unwrap_or("non-string payload")
                                )),
                            };
                            if let Some(problem) = problem {
                                open.0.errors.inc();
                                tracing::debug!(%peer, %problem, "connection ended with an error");
                            }
                            drop(open);
                        });
                    }
                    Err(err) => {
                        counters.errors.inc();
                        drop(permit);
                        if is_exhaustion(&err) {
                            let delay = backoff.next_delay();
                            tracing::warn!(%err, ?delay, "accept failed; backing off");
                            if shutdown.run(owner.sleep(delay)).await.is_none() {
                                return;
                            }
                        } else {
                            tracing::debug!(%err, "accept failed");
                        }
                    }
                }
            }
        });
        Ok(())
    }

    async fn stop(&mut self, _ctx: &Context) -> Result<(), Error> {
        self.address.set(None);
        Ok(())
    }
}
