//! The ginkgo-rs bus on NATS.
//!
//! [`Nats`] is a service: the connection to a NATS server (or cluster). While it runs,
//! [`Nats::bus`] carries the [`ginkgo_api::bus`] contract over it, so the code that publishes,
//! subscribes and answers requests is the same as on the in-process bus.
//!
//! - **Any backend:** async-nats needs tokio. On the tokio backend the connection runs on the
//!   program's runtime; on the others, on a private tokio runtime (one thread) that the
//!   service starts and stops. The bus's calls only pass messages through channels, which
//!   work from any executor. The user's code never names tokio.
//! - **Readiness follows the connection:** the service is ready once connected, not ready
//!   while the client reconnects (so `/readyz` says so), ready again once reconnected.
//! - **Start:** a server that cannot be reached (or that rejects the credentials) fails the
//!   start with an error naming the URLs and the cause; nothing retries in a loop. Or, with
//!   [`NatsOptions::connect_in_background`], the start completes at once with the service not
//!   ready, and it becomes ready once connected.
//! - **Credentials and TLS:** a token, a user and password, or a `.creds` file; TLS with a CA
//!   to trust and a client certificate to present. A file that cannot be read fails the start,
//!   naming it.
//! - **Key-value store:** [`Nats::kv`] keeps [`ginkgo_api::kv`] buckets in JetStream KV
//!   (replicated on [`NatsOptions::kv_replicas`] servers), for leadership and network
//!   configuration.
//! - **Stop:** the connection is drained: subscriptions end, what was published is flushed,
//!   then it closes, within the service's stop timeout.
//! - **Slow consumers** are counted (`slow_consumers`) and logged; the connection survives.
//!
//! # Examples
//!
//! ```no_run
//! # fn demo<R: ginkgo_api::Runtime>() {
//! use ginkgo_nats::{Nats, NatsOptions};
//!
//! let nats = Nats::<R>::new(NatsOptions::new(["nats://127.0.0.1:4222"]).name("orders"));
//! let bus = nats.bus();
//! // Add `nats` to the tree before the services that use `bus`: children start in order.
//! # drop((nats, bus));
//! # }
//! ```

use std::future::Future as _;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwapOption;
use std::task::Poll;
use std::time::Duration;

use futures_lite::StreamExt as _;
use ginkgo_api::Runtime;
use ginkgo_api::bus::{
    Bus, BusError, Bytes, Headers, Message, PENDING_LIMIT, Subscription, Transport,
};
use ginkgo_api::kv::Kv;
use ginkgo_api::service::{Context, Error, Service, async_trait};

mod kv;

/// The connection's settings, group `nats`: `nats.url` (a list; several for a cluster),
/// `nats.name`, `nats.token`, `nats.user` with `nats.password`, `nats.credentials`,
/// `nats.tls_ca`, `nats.tls_cert` with `nats.tls_key`, `nats.connect_timeout`,
/// `nats.connect_in_background`, `nats.kv_replicas`.
/// [`NatsOptions::from_settings`] turns them into options.
///
/// ```toml
/// [nats]
/// url = ["nats://10.0.0.1:4222", "nats://10.0.0.2:4222"]
/// name = "orders"
/// ```
#[derive(ginkgo_macros::Settings, Debug)]
#[settings(crate = ginkgo_config, group = "nats")]
pub struct NatsSettings {
    /// The servers' URLs, such as "nats://127.0.0.1:4222" (several for a cluster).
    #[setting(default = vec!["nats://127.0.0.1:4222".to_owned()], validate = check_urls)]
    pub url: Vec<String>,
    /// The connection's name, as the server shows it.
    pub name: Option<String>,
    /// Authenticate with this token.
    pub token: Option<String>,
    /// Authenticate as this user (with `nats.password`).
    pub user: Option<String>,
    /// The password of `nats.user`.
    pub password: Option<String>,
    /// How long one connection attempt may take.
    #[setting(default = ginkgo_config::Duration::from_secs(5))]
    pub connect_timeout: ginkgo_config::Duration,
    /// How many servers keep each key-value bucket this connection creates (3 in a cluster
    /// of three, so a bucket survives the loss of a server).
    #[setting(default = 1, validate = check_replicas)]
    pub kv_replicas: usize,
    /// Authenticate with this credentials file (a `.creds` file: a user JWT and its NKey
    /// seed, as `nsc` writes them).
    pub credentials: Option<PathBuf>,
    /// Trust the servers' certificates signed by this CA (PEM); TLS is then required.
    pub tls_ca: Option<PathBuf>,
    /// Present this client certificate (PEM, with `nats.tls_key`); TLS is then required.
    pub tls_cert: Option<PathBuf>,
    /// The private key of `nats.tls_cert` (PEM).
    pub tls_key: Option<PathBuf>,
    /// Start at once and connect in the background (not ready until connected), instead of
    /// failing the start when no server can be reached.
    #[setting(default = false)]
    pub connect_in_background: bool,
}

fn check_replicas(replicas: &usize) -> Result<(), String> {
    if !(1..=5).contains(replicas) {
        return Err("must be 1 to 5 (JetStream's limit)".to_owned());
    }
    Ok(())
}

fn check_urls(urls: &Vec<String>) -> Result<(), String> {
    if urls.is_empty() {
        return Err("needs at least one URL, such as \"nats://127.0.0.1:4222\"".to_owned());
    }
    for url in urls {
        url.parse::<async_nats::ServerAddr>()
            .map_err(|err| format!("{url:?} is not a NATS URL: {err}"))?;
    }
    Ok(())
}

/// How to reach the server.
#[derive(Debug, Clone)]
pub struct NatsOptions {
    urls: Vec<String>,
    name: Option<String>,
    token: Option<String>,
    user_password: Option<(String, String)>,
    connect_timeout: Duration,
    kv_replicas: usize,
    credentials: Option<PathBuf>,
    tls_ca: Option<PathBuf>,
    tls_client: Option<(PathBuf, PathBuf)>,
    in_background: bool,
}

/// Reads `path` (named `what` in errors) to check it is there and readable before the client
/// does, so that the error names the file.
fn readable(what: &str, path: &Path) -> Result<(), String> {
    std::fs::read(path)
        .map(drop)
        .map_err(|err| format!("cannot read {what} {}: {err}", path.display()))
}

impl NatsOptions {
    /// The server's URLs (`nats://host:port`; several for a cluster).
    pub fn new<I, S>(urls: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            urls: urls.into_iter().map(Into::into).collect(),
            name: None,
            token: None,
            user_password: None,
            connect_timeout: Duration::from_secs(5),
            kv_replicas: 1,
            credentials: None,
            tls_ca: None,
            tls_client: None,
            in_background: false,
        }
    }

    /// Authenticates with a credentials file (a user JWT and its NKey seed, as `nsc` writes
    /// them), read when the service starts.
    #[must_use]
    pub fn credentials_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.credentials = Some(path.into());
        self
    }

    /// Trusts the servers' certificates signed by the CA in `ca` (PEM), and requires TLS.
    #[must_use]
    pub fn tls_ca(mut self, ca: impl Into<PathBuf>) -> Self {
        self.tls_ca = Some(ca.into());
        self
    }

    /// Presents the client certificate `cert` with its key `key` (both PEM), and requires
    /// TLS.
    #[must_use]
    pub fn tls_client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.tls_client = Some((cert.into(), key.into()));
        self
    }

    /// Whether the start waits for a connection (the default: `false`, and a server that
    /// cannot be reached fails the start) or, with `true`, completes at once with the service
    /// not ready, connecting in the background with backoff and becoming ready once
    /// connected.
    #[must_use]
    pub fn connect_in_background(mut self, yes: bool) -> Self {
        self.in_background = yes;
        self
    }

    /// The connection's name, as the server shows it.
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Authenticates with a token.
    #[must_use]
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Authenticates with a user and password.
    #[must_use]
    pub fn user_password(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.user_password = Some((user.into(), password.into()));
        self
    }

    /// How long one connection attempt may take (default 5 s).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How many servers of a cluster keep each key-value bucket this connection creates
    /// (default 1; 3 in a cluster of three, so a bucket survives the loss of a server).
    #[must_use]
    pub fn kv_replicas(mut self, replicas: usize) -> Self {
        self.kv_replicas = replicas.max(1);
        self
    }

    /// The options the settings say.
    ///
    /// # Errors
    ///
    /// A user without a password (or the other way round), or a client certificate without
    /// its key (or the other way round).
    pub fn from_settings(settings: &NatsSettings) -> Result<Self, String> {
        let mut options = Self::new(settings.url.iter().cloned())
            .connect_timeout(settings.connect_timeout.0)
            .kv_replicas(settings.kv_replicas)
            .connect_in_background(settings.connect_in_background);
        if let Some(path) = &settings.credentials {
            options = options.credentials_file(path.clone());
        }
        if let Some(ca) = &settings.tls_ca {
            options = options.tls_ca(ca.clone());
        }
        match (&settings.tls_cert, &settings.tls_key) {
            (Some(cert), Some(key)) => options = options.tls_client_cert(cert.clone(), key.clone()),
            (None, None) => {}
            (Some(_), None) => return Err("nats.tls_cert is set without nats.tls_key".to_owned()),
            (None, Some(_)) => return Err("nats.tls_key is set without nats.tls_cert".to_owned()),
        }
        if let Some(name) = &settings.name {
            options = options.name(name.clone());
        }
        if let Some(token) = &settings.token {
            options = options.token(token.clone());
        }
        match (&settings.user, &settings.password) {
            (Some(user), Some(password)) => {
                options = options.user_password(user.clone(), password.clone());
            }
            (None, None) => {}
            (Some(_), None) => return Err("nats.user is set without nats.password".to_owned()),
            (None, Some(_)) => return Err("nats.password is set without nats.user".to_owned()),
        }
        Ok(options)
    }

    fn urls_text(&self) -> String {
        self.urls.join(", ")
    }
}

/// The connection as the bus sees it: the client once connected, and the private runtime's
/// handle for the tasks that forward subscriptions.
#[derive(Default)]
struct Link {
    /// Swapped in at start and out at stop; read on every publish without a lock or a
    /// reference count (a publish only borrows it).
    client: ArcSwapOption<Connected>,
}

/// The client and the private runtime it runs on.
struct Connected {
    client: async_nats::Client,
    runtime: tokio::runtime::Handle,
}

impl Link {
    /// The connection, shared (for what outlives one call: tasks, watches).
    fn get(&self) -> Result<Arc<Connected>, BusError> {
        self.client.load_full().ok_or(BusError::Closed)
    }

    fn set(&self, client: Option<Arc<Connected>>) {
        self.client.store(client);
    }
}

/// The NATS connection service; see the [crate docs](crate).
pub struct Nats<R> {
    options: NatsOptions,
    link: Arc<Link>,
    /// The private runtime, on a backend other than tokio.
    runtime: Option<tokio::runtime::Runtime>,
    _runtime: PhantomData<fn() -> R>,
}

impl<R: Runtime> Nats<R> {
    /// A connection with `options`, made when the service starts.
    pub fn new(options: NatsOptions) -> Self {
        Self {
            options,
            link: Arc::new(Link::default()),
            runtime: None,
            _runtime: PhantomData,
        }
    }

    /// The bus over this connection: usable while the service runs ([`BusError::Closed`]
    /// before it started and after it stopped).
    pub fn bus(&self) -> Bus<R> {
        Bus::with_transport(Arc::new(NatsTransport {
            link: self.link.clone(),
        }))
    }

    /// The key-value store over this connection, in JetStream KV (the server must run with
    /// JetStream): usable while the service runs ([`KvError::Closed`](ginkgo_api::kv::KvError)
    /// otherwise). Buckets it creates keep one version per key, on
    /// [`NatsOptions::kv_replicas`] servers.
    pub fn kv(&self) -> Kv {
        Kv::with_store(Arc::new(kv::NatsStore {
            link: self.link.clone(),
            replicas: self.options.kv_replicas,
        }))
    }
}

fn transport_error(err: impl std::error::Error + Send + Sync + 'static) -> BusError {
    BusError::Transport(Box::new(err))
}

#[async_trait]
impl<R: Runtime> Service for Nats<R> {
    fn name(&self) -> &str {
        "nats"
    }

    async fn start(&mut self, ctx: &Context) -> Result<(), Error> {
        // On the tokio backend the client runs on the program's own runtime; on the others, on
        // a private one (one thread) that this service owns.
        let (handle, private) = match tokio::runtime::Handle::try_current() {
            Ok(handle) => (handle, None),
            Err(_) => {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .thread_name("ginkgo-nats")
                    .enable_all()
                    .build()
                    .map_err(|err| format!("cannot start the NATS client's runtime: {err}"))?;
                (runtime.handle().clone(), Some(runtime))
            }
        };
        let events = ctx.clone();
        let slow = ctx.counter("slow_consumers");
        let mut connect = async_nats::ConnectOptions::new()
            // The bus applies its own timeouts, on the caller's runtime.
            .request_timeout(None)
            .connection_timeout(self.options.connect_timeout)
            .subscription_capacity(PENDING_LIMIT)
            .event_callback(move |event| {
                let (events, slow) = (events.clone(), slow.clone());
                async move {
                    match event {
                        async_nats::Event::Connected => {
                            tracing::info!(service = events.path(), "connected to NATS");
                            events.set_ready();
                        }
                        async_nats::Event::Disconnected => {
                            tracing::warn!(
                                service = events.path(),
                                "disconnected from NATS; reconnecting"
                            );
                            events.not_ready();
                        }
                        async_nats::Event::SlowConsumer(sid) => {
                            slow.inc();
                            tracing::warn!(
                                service = events.path(),
                                subscription = sid,
                                "slow consumer: the server dropped messages for a subscription"
                            );
                        }
                        other => tracing::info!(service = events.path(), event = %other, "NATS"),
                    }
                }
            });
        if let Some(name) = &self.options.name {
            connect = connect.name(name);
        }
        if let Some(token) = &self.options.token {
            connect = connect.token(token.clone());
        }
        if let Some((user, password)) = &self.options.user_password {
            connect = connect.user_and_password(user.clone(), password.clone());
        }
        if let Some(path) = &self.options.credentials {
            readable("the NATS credentials file", path)?;
            let path = path.clone();
            let shown = path.display().to_string();
            connect = handle
                .spawn(async move { connect.credentials_file(path).await })
                .await
                .map_err(|err| format!("the NATS credentials task failed: {err}"))?
                .map_err(|err| format!("bad NATS credentials file {shown}: {err}"))?;
        }
        if let Some(ca) = &self.options.tls_ca {
            readable("the NATS CA file", ca)?;
            connect = connect.add_root_certificates(ca.clone()).require_tls(true);
        }
        if let Some((cert, key)) = &self.options.tls_client {
            readable("the NATS client certificate", cert)?;
            readable("the NATS client key", key)?;
            connect = connect
                .add_client_certificate(cert.clone(), key.clone())
                .require_tls(true);
        }
        if self.options.in_background {
            connect = connect.retry_on_initial_connect();
        }
        let urls = self.options.urls.clone();
        let addrs: Vec<async_nats::ServerAddr> = urls
            .iter()
            .map(|url| {
                url.parse()
                    .map_err(|err| format!("bad NATS URL {url:?}: {err}"))
            })
            .collect::<Result<_, _>>()?;
        let connected = handle
            .spawn(async move { connect.connect(addrs).await })
            .await
            .map_err(|err| format!("the NATS connect task failed: {err}"))?;
        let client = connected.map_err(|err| {
            format!(
                "cannot connect to NATS at {}: {err}",
                self.options.urls_text()
            )
        })?;
        if self.options.in_background {
            // Not ready until connected; checked after saying so, so that a connection made
            // in between is not missed (the event may have come already).
            ctx.start_not_ready();
            if client.connection_state() == async_nats::connection::State::Connected {
                ctx.set_ready();
            } else {
                tracing::warn!(
                    service = ctx.path(),
                    urls = %self.options.urls_text(),
                    "not connected to NATS yet; started not ready, connecting in the background"
                );
            }
        }
        self.link.set(Some(Arc::new(Connected {
            client,
            runtime: handle,
        })));
        self.runtime = private;
        Ok(())
    }

    async fn stop(&mut self, _ctx: &Context) -> Result<(), Error> {
        let Ok(connected) = self.link.get() else {
            return Ok(());
        };
        self.link.set(None);
        // Unsubscribe, let what was published go out, close.
        let client = connected.client.clone();
        let drained = connected
            .runtime
            .spawn(async move { client.drain().await })
            .await;
        if let Some(runtime) = self.runtime.take() {
            // Not `shutdown_timeout`: it blocks, and this may run on a tokio worker.
            runtime.shutdown_background();
        }
        match drained {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(format!("draining the NATS connection failed: {err}").into()),
            Err(err) => Err(format!("the NATS drain task failed: {err}").into()),
        }
    }
}

/// The bus's transport over a [`Nats`] connection.
struct NatsTransport {
    link: Arc<Link>,
}

fn to_nats_headers(headers: &Headers) -> Result<async_nats::HeaderMap, BusError> {
    let mut map = async_nats::HeaderMap::new();
    for (name, value) in headers.iter() {
        let name: async_nats::header::HeaderName = name.parse().map_err(|_| {
            BusError::Transport(format!("not a valid NATS header name: {name:?}").into())
        })?;
        map.append(name, value);
    }
    Ok(map)
}

fn from_nats(message: async_nats::Message) -> Message {
    let mut headers = Headers::default();
    if let Some(map) = &message.headers {
        for (name, values) in map.iter() {
            for value in values {
                headers.insert(name.to_string(), value.as_str());
            }
        }
    }
    Message {
        subject: message.subject.to_string(),
        reply: message.reply.map(|reply| reply.to_string()),
        headers,
        payload: message.payload,
    }
}

/// A publish with a reply subject or headers.
async fn publish_with(
    client: &async_nats::Client,
    subject: String,
    reply: Option<String>,
    headers: Headers,
    payload: Bytes,
) -> Result<(), BusError> {
    let published = match (reply, headers.is_empty()) {
        (None, _) => {
            client
                .publish_with_headers(subject, to_nats_headers(&headers)?, payload)
                .await
        }
        (Some(reply), true) => client.publish_with_reply(subject, reply, payload).await,
        (Some(reply), false) => {
            client
                .publish_with_reply_and_headers(subject, reply, to_nats_headers(&headers)?, payload)
                .await
        }
    };
    published.map_err(transport_error)
}

/// Aborts a subscription's forwarding task (which unsubscribes) when dropped.
struct Forwarding(tokio::task::AbortHandle);

impl Drop for Forwarding {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[async_trait]
impl Transport for NatsTransport {
    fn name(&self) -> &str {
        "nats"
    }

    async fn publish(&self, message: Message) -> Result<(), BusError> {
        // Borrowed, not cloned: the hot path takes no reference count.
        let guard = self.link.client.load();
        let Some(connected) = guard.as_deref() else {
            return Err(BusError::Closed);
        };
        let client = &connected.client;
        let Message {
            subject,
            reply,
            headers,
            payload,
        } = message;
        let published = match (reply, headers.is_empty()) {
            (None, true) => client.publish(subject, payload).await,
            // Boxed apart: the future of every publish is as small as the plain one's (under
            // the allocator's fast-path size), and only these rarer ones allocate twice.
            (reply, _) => {
                Box::pin(publish_with(client, subject, reply, headers, payload)).await?;
                Ok(())
            }
        };
        published.map_err(transport_error)
    }

    fn try_publish_payload(&self, subject: &str, payload: &Bytes) -> Option<Result<(), BusError>> {
        let guard = self.link.client.load();
        let Some(connected) = guard.as_deref() else {
            return Some(Err(BusError::Closed));
        };
        // async-nats queues a publish in a bounded channel to its connection task, and its
        // future is pending only while that channel is full. Polled once here, with a waker
        // that does nothing: ready, the publish is queued; pending, it is dropped, and a
        // `tokio::sync::mpsc::Sender::send` dropped while waiting has sent nothing (its
        // documented cancel safety), so the caller's `publish` sends it instead.
        let publish = pin!(
            connected
                .client
                .publish(subject.to_owned(), payload.clone())
        );
        match publish.poll(&mut std::task::Context::from_waker(std::task::Waker::noop())) {
            Poll::Ready(published) => Some(published.map_err(transport_error)),
            Poll::Pending => None,
        }
    }

    async fn subscribe(
        &self,
        subject: &str,
        queue: Option<&str>,
    ) -> Result<Subscription, BusError> {
        let connected = self.link.get()?;
        let client = &connected.client;
        let mut subscriber = match queue {
            Some(queue) => client
                .queue_subscribe(subject.to_owned(), queue.to_owned())
                .await
                .map_err(transport_error)?,
            None => client
                .subscribe(subject.to_owned())
                .await
                .map_err(transport_error)?,
        };
        let (sender, messages) = async_channel::bounded(PENDING_LIMIT);
        let dropped = Arc::new(AtomicU64::new(0));
        let counted = dropped.clone();
        let pattern = subject.to_owned();
        let forwarding = connected.runtime.spawn(async move {
            while let Some(message) = subscriber.next().await {
                match sender.try_send(from_nats(message)) {
                    Ok(()) => {}
                    Err(async_channel::TrySendError::Full(_)) => {
                        let n = counted.fetch_add(1, Ordering::Relaxed) + 1;
                        if n % 10_000 == 1 {
                            tracing::warn!(subscription = %pattern, dropped = n, "slow consumer: dropping messages");
                        }
                    }
                    Err(async_channel::TrySendError::Closed(_)) => break,
                }
            }
            // Dropping the subscriber unsubscribes.
        });
        Ok(Subscription::new(
            subject,
            messages,
            dropped,
            Forwarding(forwarding.abort_handle()),
        ))
    }

    async fn request(&self, message: Message) -> Result<Message, BusError> {
        let connected = self.link.get()?;
        let client = &connected.client;
        let subject = message.subject.clone();
        let mut request = async_nats::Request::new().payload(message.payload);
        if !message.headers.is_empty() {
            request = request.headers(to_nats_headers(&message.headers)?);
        }
        match client.send_request(message.subject, request).await {
            Ok(answer) => Ok(from_nats(answer)),
            Err(err) if err.kind() == async_nats::RequestErrorKind::NoResponders => {
                Err(BusError::NoResponders { subject })
            }
            Err(err) => Err(transport_error(err)),
        }
    }
}
