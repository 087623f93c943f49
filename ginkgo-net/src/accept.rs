//! The one accept loop every server kind runs: a connection cap, pause and resume, backoff on
//! accept errors, counters, and a graceful close of the listener.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_lock::{Semaphore, SemaphoreGuardArc};
use event_listener::Event;
use ginkgo_api::Runtime;
use ginkgo_api::net::handoff;
use ginkgo_api::service::{Context, Counter};
use ginkgo_api::time::Backoff;

use crate::listen::{BoundAddr, LocalAddr};
use crate::listener::{Listener, Peer, Stream};

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
/// - **Pause and resume**: through its [`AcceptControl`]; while paused the listener stays open
///   and new connections wait in the backlog. The gauge `accept_paused` (1 while paused) is in
///   the service's snapshot.
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
/// use ginkgo_net::{AcceptLoop, BoundAddr, Listen, ListenOptions};
///
/// async fn start<R: Runtime>(ctx: &Context, listen: &Listen, bound: &BoundAddr) -> std::io::Result<()> {
///     let listener = listen.open::<R>(&ListenOptions::default()).await?;
///     let accept = AcceptLoop::new(listener, bound, ctx).max_connections(100);
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
    addr: LocalAddr,
    max_connections: usize,
    control: AcceptControl,
    counters: Counters,
}

/// One accepted connection, for the server to serve.
#[derive(Debug)]
pub struct Accepted<R: Runtime> {
    /// The connection.
    pub stream: Stream<R>,
    /// Who connected.
    pub peer: Peer,
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
    pub fn new(listener: Listener<R>, bound: &BoundAddr, ctx: &Context) -> Self {
        let addr = listener.local_addr().clone();
        bound.set(Some(addr.clone()));
        Self {
            addr,
            listening: Listening {
                listener: Some(listener),
                bound: bound.clone(),
            },
            max_connections: DEFAULT_MAX_CONNECTIONS,
            control: AcceptControl::default(),
            counters: Counters {
                accepted: ctx.counter("connections_accepted"),
                active: ctx.counter("connections_active"),
                closed: ctx.counter("connections_closed"),
                errors: ctx.counter("accept_errors"),
            },
        }
    }

    /// Where the listener listens.
    pub fn local_addr(&self) -> &LocalAddr {
        &self.addr
    }

    /// Pauses and resumes this loop through `control` (a server's handle, kept across its
    /// restarts) instead of a control of its own. A control that is paused when the loop
    /// starts keeps it paused.
    #[must_use]
    pub fn control(mut self, control: AcceptControl) -> Self {
        self.control = control;
        self
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
            control,
            counters,
            ..
        } = self;
        let shutdown = ctx.shutdown();
        let limit = Arc::new(Semaphore::new(max_connections));
        let mut retries = Backoff::new(ACCEPT_BACKOFF.0, ACCEPT_BACKOFF.1, 0.1).retries();
        let paused = ctx.counter("accept_paused");
        loop {
            if handoff::serving_held() {
                // An upgrade: the new process accepts once the old one has committed; the old
                // one accepts nothing more from then on, while it drains.
                tracing::debug!(service = %ctx.path(), "accepting held for an upgrade");
                if shutdown.run(handoff::serving_released()).await.is_none() {
                    break;
                }
            }
            if control.is_paused() {
                paused.inc();
                tracing::info!(service = %ctx.path(), "accepting paused");
                let resumed = shutdown.run(control.resumed()).await;
                paused.dec();
                if resumed.is_none() {
                    break;
                }
                tracing::info!(service = %ctx.path(), "accepting resumed");
            }
            let Some(permit) = shutdown.run(limit.acquire_arc()).await else {
                break;
            };
            // A pause takes effect while waiting too; the accept is cancelled, losing nothing.
            // The pause is polled first: a connection that arrives after `pause()` returned
            // waits, even when both are ready at the same wake-up.
            let accept = futures_lite::future::or(
                async {
                    futures_lite::future::or(control.paused(), handoff::serving_stopped()).await;
                    None
                },
                async { Some(listening.accept().await) },
            );
            let Some(accepted) = shutdown.run(accept).await else {
                break;
            };
            let Some(accepted) = accepted else {
                continue;
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

/// Pauses and resumes an [`AcceptLoop`] (and the server that runs it): while paused, the
/// listener stays open, new connections wait in the kernel's backlog (and are refused once it
/// is full), and open connections are served as before. Cloning gives another handle to the
/// same switch.
///
/// # Examples
///
/// ```
/// # fn demo<R: ginkgo_api::Runtime>() {
/// use ginkgo_net::{Connection, StreamServer};
///
/// let server = StreamServer::<R, _>::new("echo", "127.0.0.1:0", |_: Connection<R>| async {});
/// let control = server.accept_control();
/// control.pause(); // e.g. while a dependency is down
/// assert!(control.is_paused());
/// control.resume();
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct AcceptControl(Arc<Switch>);

#[derive(Debug, Default)]
struct Switch {
    paused: AtomicBool,
    changed: Event,
}

impl AcceptControl {
    /// A control that is not paused.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stops accepting new connections until [`AcceptControl::resume`].
    pub fn pause(&self) {
        self.set(true);
    }

    /// Accepts new connections again.
    pub fn resume(&self) {
        self.set(false);
    }

    /// Whether accepting is paused.
    pub fn is_paused(&self) -> bool {
        self.0.paused.load(Ordering::Acquire)
    }

    fn set(&self, paused: bool) {
        self.0.paused.store(paused, Ordering::Release);
        self.0.changed.notify(usize::MAX);
    }

    async fn wait_for(&self, paused: bool) {
        loop {
            if self.is_paused() == paused {
                return;
            }
            let listener = self.0.changed.listen();
            if self.is_paused() == paused {
                return;
            }
            listener.await;
        }
    }

    async fn paused(&self) {
        self.wait_for(true).await;
    }

    async fn resumed(&self) {
        self.wait_for(false).await;
    }
}

/// The listening socket, published in the [`BoundAddr`] while it is open.
struct Listening<R: Runtime> {
    listener: Option<Listener<R>>,
    bound: BoundAddr,
}

impl<R: Runtime> Listening<R> {
    async fn accept(&self) -> io::Result<(Stream<R>, Peer)> {
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
