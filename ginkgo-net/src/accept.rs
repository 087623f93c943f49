//! The one accept loop every server kind runs: a connection cap, backoff on accept errors,
//! counters, and a graceful close of the listener.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_lock::{Semaphore, SemaphoreGuardArc};
use ginkgo_api::Runtime;
use ginkgo_api::net::{TcpListener, TcpStream};
use ginkgo_api::service::{Context, Counter};
use ginkgo_api::time::Backoff;

use crate::listen::BoundAddr;

/// The default of [`AcceptLoop::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// The backoff after accept errors other than a failed single connection: the first retry
/// after 10 ms, doubling to 1 s, so an exhausted process (`EMFILE`) does not spin.
const ACCEPT_BACKOFF: (Duration, Duration) = (Duration::from_millis(10), Duration::from_secs(1));

/// Accepts connections on a listener until its service stops, and hands each to the server.
///
/// - **Connection cap**: at most [`AcceptLoop::max_connections`] connections are open at
///   once; at the cap it stops accepting (the kernel queues new ones in the backlog) and
///   resumes when one closes. Each connection holds an [`Accepted::guard`] until it is done.
/// - **Accept errors**: an error of one connection (aborted or reset before it was accepted)
///   is retried at once; any other (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`, ...) backs off
///   exponentially with jitter, the same [`Backoff`] supervision uses.
/// - **Counters** in the service's snapshot: `connections_accepted`, `connections_active`,
///   `connections_closed`, `accept_errors`.
/// - **Graceful close**: when the service stops, the listener is closed at once (new
///   connections are refused), then the [`BoundAddr`] says so.
///
/// # Examples
///
/// A server kind of one's own, in a service's `start`:
///
/// ```
/// use ginkgo_api::Runtime;
/// use ginkgo_api::service::Context;
/// use ginkgo_net::{AcceptLoop, BoundAddr, Listen};
///
/// async fn start<R: Runtime>(ctx: &Context, listen: &Listen, bound: &BoundAddr) -> std::io::Result<()> {
///     let accept = AcceptLoop::new(listen.open::<R>().await?, bound, ctx)?.max_connections(100);
///     let owner = ctx.clone();
///     ctx.spawn("accept", accept.run(ctx.clone(), move |accepted| {
///         owner.spawn(format!("connection {}", accepted.peer), async move {
///             let _open = accepted.guard; // counted as open until dropped
///             drop(accepted.stream);
///         });
///     }));
///     Ok(())
/// }
/// ```
pub struct AcceptLoop<R: Runtime> {
    /// Published from `new` on, so a loop dropped without running unpublishes it too.
    listening: Listening<R>,
    addr: SocketAddr,
    max_connections: usize,
    counters: Counters,
}

/// One accepted connection, for the server to serve.
#[derive(Debug)]
pub struct Accepted<R: Runtime> {
    /// The connection.
    pub stream: TcpStream<R>,
    /// The peer's address.
    pub peer: SocketAddr,
    /// Counts the connection as open, and holds its place under the connection cap, until
    /// dropped: keep it for as long as the connection is served.
    pub guard: ConnectionGuard,
}

/// See [`Accepted::guard`].
#[derive(Debug)]
pub struct ConnectionGuard {
    _permit: SemaphoreGuardArc,
    counters: Counters,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.counters.active.dec();
        self.counters.closed.inc();
    }
}

#[derive(Debug, Clone)]
struct Counters {
    accepted: Counter,
    active: Counter,
    closed: Counter,
    errors: Counter,
}

impl<R: Runtime> AcceptLoop<R> {
    /// The loop for `listener`, run by the service of `ctx`; publishes the listener's address
    /// in `bound` at once, until the loop ends (or is dropped without running).
    ///
    /// # Errors
    ///
    /// Fails when the listener's address cannot be read.
    pub fn new(listener: TcpListener<R>, bound: &BoundAddr, ctx: &Context) -> io::Result<Self> {
        let addr = listener.local_addr()?;
        bound.set(Some(addr));
        Ok(Self {
            listening: Listening {
                listener: Some(listener),
                bound: bound.clone(),
            },
            addr,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            counters: Counters {
                accepted: ctx.counter("connections_accepted"),
                active: ctx.counter("connections_active"),
                closed: ctx.counter("connections_closed"),
                errors: ctx.counter("accept_errors"),
            },
        })
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// At most `limit` connections at once (default [`DEFAULT_MAX_CONNECTIONS`]; at least 1).
    #[must_use]
    pub fn max_connections(mut self, limit: usize) -> Self {
        self.max_connections = limit.max(1);
        self
    }

    /// Accepts until the service of `ctx` stops, calling `serve` with each connection (it
    /// usually spawns a task the service owns); then closes the listener.
    pub async fn run(self, ctx: Context, mut serve: impl FnMut(Accepted<R>) + Send) {
        let Self {
            listening,
            max_connections,
            counters,
            ..
        } = self;
        let shutdown = ctx.shutdown();
        let limit = Arc::new(Semaphore::new(max_connections));
        let mut retries = Backoff::new(ACCEPT_BACKOFF.0, ACCEPT_BACKOFF.1, 0.1).retries();
        loop {
            let Some(permit) = shutdown.run(limit.acquire_arc()).await else {
                break;
            };
            let Some(accepted) = shutdown.run(listening.accept()).await else {
                break;
            };
            match accepted {
                Ok((stream, peer)) => {
                    retries.reset();
                    counters.accepted.inc();
                    counters.active.inc();
                    let guard = ConnectionGuard {
                        _permit: permit,
                        counters: counters.clone(),
                    };
                    serve(Accepted {
                        stream,
                        peer,
                        guard,
                    });
                }
                Err(err) => {
                    counters.errors.inc();
                    drop(permit);
                    if is_one_connection(&err) {
                        tracing::debug!(service = %ctx.path(), %err, "accept failed for one connection");
                        continue;
                    }
                    let delay = retries.next_delay();
                    tracing::warn!(service = %ctx.path(), %err, ?delay, "accept failed; backing off");
                    if shutdown.run(ctx.sleep(delay)).await.is_none() {
                        break;
                    }
                }
            }
        }
        drop(listening);
        tracing::debug!(service = %ctx.path(), "stopped accepting connections");
    }
}

/// The listening socket, published in the [`BoundAddr`] while it is open.
struct Listening<R: Runtime> {
    listener: Option<TcpListener<R>>,
    bound: BoundAddr,
}

impl<R: Runtime> Listening<R> {
    async fn accept(&self) -> io::Result<(TcpStream<R>, SocketAddr)> {
        match &self.listener {
            Some(listener) => listener.accept().await,
            // Only `drop` takes the listener.
            None => std::future::pending().await,
        }
    }
}

impl<R: Runtime> Drop for Listening<R> {
    fn drop(&mut self) {
        // Close the socket before saying so: whoever waits on the address may connect at once
        // and must be refused.
        drop(self.listener.take());
        self.bound.set(None);
    }
}

/// Whether an accept error concerns one connection only (it went away before it was
/// accepted), so accepting again at once is right; anything else may repeat and is backed off.
fn is_one_connection(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}
