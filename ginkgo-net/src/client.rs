//! [`StreamClient`]: a TCP client as a service.

use std::future::Future;
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures_lite::FutureExt;
use ginkgo_api::Runtime;
use ginkgo_api::net::TcpStream;
use ginkgo_api::service::{Context, Error, Service, Shutdown, TaskResult, async_trait};
use ginkgo_api::time::Backoff;

use crate::listener::Stream;

/// The client's connection, handed to its handler.
#[derive(Debug)]
pub struct ClientConnection<R: Runtime> {
    /// The connection: TCP, over TLS when the client has [`StreamClient::tls`].
    pub stream: Stream<R>,
    /// Triggered when the client stops.
    pub shutdown: Shutdown,
}

/// A TCP client as a service: keeps one connection to `address` and runs the handler on it.
///
/// - It starts once connected (so a tree starts only when its clients have reached their
///   servers), within the service's start timeout.
/// - When the connection drops (the handler returns, with or without an error), it counts as
///   not ready and reconnects with capped exponential backoff; ready again once connected.
/// - With TLS ([`StreamClient::tls`], feature `tls`), the handshake is part of connecting
///   (within the connect timeout); the server's certificate must be valid for the address's
///   host (or the settings' `server_name`). A failed handshake counts as a failed connect.
///   The client's own files are checked at start: a bad one fails the start, naming it.
/// - Counters: `connections` (established), `connect_failures`, `disconnects`.
pub struct StreamClient<R: Runtime, H> {
    name: String,
    address: String,
    handler: H,
    backoff: Backoff,
    connect_timeout: Duration,
    #[cfg(feature = "tls")]
    tls: Option<ginkgo_tls::ClientTls>,
    _runtime: PhantomData<fn() -> R>,
}

impl<R, H, Fut> StreamClient<R, H>
where
    R: Runtime,
    H: Fn(ClientConnection<R>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: TaskResult,
{
    /// A client named `name` for `address`, running `handler` on each connection.
    ///
    /// `address` is anything that reads `host:port`: a [`SocketAddr`](std::net::SocketAddr),
    /// or text such as `"127.0.0.1:7000"`, `"[::1]:7000"` or `"db.internal:5432"` (a name is
    /// resolved again at each connect, so a move of the server is followed). One that does not
    /// read `host:port` fails the start, naming it.
    pub fn new(name: &str, address: impl std::fmt::Display, handler: H) -> Self {
        Self {
            name: name.to_owned(),
            address: address.to_string(),
            handler,
            backoff: Backoff::new(Duration::from_millis(50), Duration::from_secs(5), 0.1),
            connect_timeout: Duration::from_secs(5),
            #[cfg(feature = "tls")]
            tls: None,
            _runtime: PhantomData,
        }
    }

    /// Connects over TLS with `settings` (trusted CA, client certificate for mutual TLS,
    /// minimum version, ALPN, server name).
    #[cfg(feature = "tls")]
    #[must_use]
    pub fn tls(mut self, settings: ginkgo_tls::ClientTls) -> Self {
        self.tls = Some(settings);
        self
    }

    /// The reconnect backoff: first delay and cap (default 50 ms and 5 s).
    #[must_use]
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.backoff = Backoff::new(initial, max, 0.1);
        self
    }

    /// How long one connection attempt may take (default 5 s).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }
}

#[async_trait]
impl<R, H, Fut> Service for StreamClient<R, H>
where
    R: Runtime,
    H: Fn(ClientConnection<R>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: TaskResult,
{
    fn name(&self) -> &str {
        &self.name
    }

    async fn start(&mut self, ctx: &Context) -> Result<(), Error> {
        check_address(&self.address)?;
        ctx.not_ready();
        let connections = ctx.counter("connections");
        let failures = ctx.counter("connect_failures");
        let disconnects = ctx.counter("disconnects");
        let (address, handler, timeout) = (
            self.address.clone(),
            self.handler.clone(),
            self.connect_timeout,
        );
        let mut backoff = self.backoff.retries();
        #[cfg(feature = "tls")]
        let tls = match &self.tls {
            Some(settings) => Some(ginkgo_tls::TlsConnector::new(settings.clone())?),
            None => None,
        };
        let me = ctx.clone();
        let shutdown = ctx.shutdown();
        ctx.spawn("connection", async move {
            loop {
                let connect = async {
                    let stream = Stream::from(TcpStream::<R>::connect(address.as_str()).await?);
                    #[cfg(feature = "tls")]
                    if let Some(connector) = &tls {
                        return stream.connect_tls(connector, host_of(&address)).await;
                    }
                    std::io::Result::Ok(stream)
                };
                let attempt = ginkgo_api::time::timeout::<R, _>(timeout, connect);
                let Some(attempt) = shutdown.run(attempt).await else {
                    return;
                };
                match attempt {
                    Ok(Ok(stream)) => {
                        backoff.reset();
                        connections.inc();
                        me.clear_note();
                        me.set_ready();
                        tracing::info!(service = me.path(), %address, "connected");
                        let connection = ClientConnection {
                            stream,
                            shutdown: shutdown.clone(),
                        };
                        let outcome = AssertUnwindSafe(handler(connection)).catch_unwind().await;
                        me.not_ready();
                        disconnects.inc();
                        match outcome {
                            Ok(output) => {
                                if let Err(err) = output.into_result() {
                                    tracing::warn!(service = me.path(), %err, "connection ended with an error");
                                }
                            }
                            Err(_) => tracing::warn!(service = me.path(), "connection handler panicked"),
                        }
                        if shutdown.is_triggered() {
                            return;
                        }
                        tracing::info!(service = me.path(), %address, "disconnected; reconnecting");
                    }
                    Ok(Err(err)) => {
                        failures.inc();
                        tracing::debug!(service = me.path(), %err, "connect failed");
                        // Shown by `status` while it lasts: why the client is not ready.
                        me.set_note(format!("connecting: {err}"));
                    }
                    Err(_) => {
                        failures.inc();
                        tracing::debug!(service = me.path(), %address, ?timeout, "connect timed out");
                        me.set_note(format!("connecting to {address}: timed out after {timeout:?}"));
                    }
                }
                let delay = backoff.next_delay();
                if shutdown.run(me.sleep(delay)).await.is_none() {
                    return;
                }
            }
        });
        Ok(())
    }
}

/// Fails unless `address` reads `host:port` with a port number.
fn check_address(address: &str) -> Result<(), Error> {
    let well_formed = address
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if well_formed {
        Ok(())
    } else {
        Err(format!(
            "the address {address:?} is not host:port (such as 127.0.0.1:7000, [::1]:7000 or \
             db.internal:5432)"
        )
        .into())
    }
}

/// The host part of `host:port` (`[::1]:80` gives `::1`), the name a server's certificate
/// is checked against.
#[cfg(feature = "tls")]
fn host_of(address: &str) -> &str {
    let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}
