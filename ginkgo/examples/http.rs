//! An HTTP service: an axum application with the admin endpoints beside it, on any backend.
//!
//! ```text
//! cargo run --example http                                   # http://127.0.0.1:8080
//! cargo run --example http -- -s http.bind=127.0.0.1:9000    # another address
//! cargo run --example http --no-default-features --features smol,axum,runner,tls
//! curl http://127.0.0.1:8080/                                # hello from ginkgo on tokio
//! curl http://127.0.0.1:8080/readyz                          # ready (503 while starting)
//! curl http://127.0.0.1:8080/status                          # the service tree as JSON
//! curl http://127.0.0.1:8080/metrics                         # Prometheus metrics
//! curl --http2-prior-knowledge http://127.0.0.1:8080/        # HTTP/2 on the same port
//! ```
//!
//! HTTPS on the same `http.bind` when given a certificate and its key; HTTP/2 or HTTP/1.1 is
//! chosen by ALPN. SIGHUP (or `http reload`) re-reads the files: good ones serve new
//! connections while open ones go on; bad ones are rejected, naming the file and the reason
//! (`reload` exits non-zero), and the certificate in force stays. `http check` reports
//! unreadable or mismatched files (exit 78).
//!
//! ```text
//! cargo run --example http -- -s http.tls.cert=cert.pem -s http.tls.key=key.pem
//! curl --cacert ca.pem https://localhost:8080/                # HTTP/2 by ALPN
//! ```
//!
//! Under systemd socket activation it serves the socket it is given instead of binding
//! `http.bind`. Ctrl-C or SIGTERM stops it gracefully: it stops accepting, lets requests in
//! flight finish and closes idle connections.
//!
//! The server's limits and listener options (`http.max_connections`, `http.backlog`,
//! `http.reuse_port`, `http.keepalive`, `http.nodelay`, `http.only_v6`) are settings too, with the server's defaults
//! (`cargo run --example http -- config` shows them all):
//!
//! ```text
//! cargo run --example http -- -s http.max_body_size=16777216 -s http.idle_timeout=5s
//! curl -d @big.json http://127.0.0.1:8080/                    # 413 over http.max_body_size
//! ```
//!
//! The address, the limits and the listener options are read at start, so changing them needs
//! `http upgrade` (or `restart`: a new process takes over without refusing a connection), not a
//! reload.

use std::path::PathBuf;
use std::process::ExitCode;

use ginkgo::Settings;
use ginkgo::config::Duration;
use ginkgo::http::axum::{Router, routing::get};
use ginkgo::http::{
    DEFAULT_H2_MAX_CONCURRENT_STREAMS, DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_BODY_SIZE, DEFAULT_MAX_HEADER_SIZE, DEFAULT_MAX_HEADERS, HttpServer, Listen,
    ListenOptions, MIN_MAX_HEADER_SIZE, admin,
};
use ginkgo::runner::{ListenFds, Runner};
use ginkgo::server::{DEFAULT_BACKLOG, DEFAULT_MAX_CONNECTIONS};
use ginkgo::tls::{ServerTls, TlsAcceptor, TlsVersion};

/// Settings of the HTTP example.
#[derive(Settings)]
#[settings(group = "http")]
struct HttpSettings {
    /// The address to listen on (host:port); ignored under socket activation.
    #[setting(default = "127.0.0.1:8080")]
    bind: String,
    /// The largest request head (request line and headers) in bytes, at least 8192; a larger
    /// one gets 431.
    #[setting(default = DEFAULT_MAX_HEADER_SIZE, validate = at_least_hyper_minimum)]
    max_header_size: usize,
    /// The most headers an HTTP/1 request may have; more get 431.
    #[setting(default = DEFAULT_MAX_HEADERS, validate = positive)]
    max_headers: usize,
    /// The largest request body in bytes; over it a request gets 413.
    #[setting(default = DEFAULT_MAX_BODY_SIZE)]
    max_body_size: usize,
    /// The most requests an HTTP/2 client may have in flight on one connection.
    #[setting(default = DEFAULT_H2_MAX_CONCURRENT_STREAMS, validate = positive)]
    h2_max_concurrent_streams: u32,
    /// How long an HTTP/1 keep-alive connection may wait for its next request.
    #[setting(default = Duration(DEFAULT_IDLE_TIMEOUT), validate = nonzero)]
    idle_timeout: Duration,
    /// How long a request head may take: the first of a connection from when it opened,
    /// each later one from its first byte.
    #[setting(default = Duration(DEFAULT_HEADER_READ_TIMEOUT), validate = nonzero)]
    header_read_timeout: Duration,
    /// The most connections served at once; more wait in the listen backlog.
    #[setting(default = DEFAULT_MAX_CONNECTIONS, validate = positive)]
    max_connections: usize,
    /// The listen backlog: connections the kernel queues before they are accepted.
    #[setting(default = DEFAULT_BACKLOG, validate = positive)]
    backlog: u32,
    /// Let other processes bind the same address too (SO_REUSEPORT).
    #[setting(default = false)]
    reuse_port: bool,
    /// Probe idle connections after this long (TCP keepalive); unset: off.
    keepalive: Option<Duration>,
    /// Send small writes at once (TCP_NODELAY).
    #[setting(default = true)]
    nodelay: bool,
    /// For an IPv6 address: true serves IPv6 only, false IPv4 too (on [::]); unset: the
    /// system's default (Linux: both).
    only_v6: Option<bool>,
}

/// HTTPS for the HTTP example: on when a certificate and key are given.
#[derive(Settings)]
#[settings(group = "http.tls")]
struct HttpTls {
    /// The certificate chain (PEM, leaf first); with `key`, the server speaks HTTPS.
    cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    key: Option<PathBuf>,
    /// CA certificates (PEM) that clients must present a certificate of (mutual TLS).
    client_ca: Option<PathBuf>,
    /// The lowest TLS version accepted: "1.2" or "1.3".
    #[setting(default = TlsVersion::Tls12)]
    min_version: TlsVersion,
}

impl HttpTls {
    /// The acceptor, built now so that bad files fail `check` and the start alike.
    fn acceptor(&self) -> Result<Option<TlsAcceptor>, ginkgo::service::Error> {
        let (cert, key) = match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => (cert, key),
            (None, None) => return Ok(None),
            _ => {
                return Err(
                    "http.tls.cert and http.tls.key go together: set both, or neither".into(),
                );
            }
        };
        let mut settings = ServerTls::new(cert, key)
            .min_version(self.min_version)
            .alpn(["h2", "http/1.1"]);
        if let Some(ca) = &self.client_ca {
            settings = settings.client_ca(ca);
        }
        Ok(Some(TlsAcceptor::new(settings)?))
    }
}

fn at_least_hyper_minimum(bytes: &usize) -> Result<(), String> {
    if *bytes >= MIN_MAX_HEADER_SIZE {
        Ok(())
    } else {
        Err(format!(
            "{bytes} is under {MIN_MAX_HEADER_SIZE}, the least hyper reads a request head into"
        ))
    }
}

fn positive<T: PartialOrd + Default + std::fmt::Display>(value: &T) -> Result<(), String> {
    if *value > T::default() {
        Ok(())
    } else {
        Err(format!(
            "{value} would refuse every request: give at least 1"
        ))
    }
}

fn nonzero(duration: &Duration) -> Result<(), String> {
    if duration.0.is_zero() {
        Err(
            "a zero timeout would close every connection at once: give one such as \"30s\""
                .to_owned(),
        )
    } else {
        Ok(())
    }
}

async fn hello() -> String {
    format!("hello from ginkgo on {}\n", ginkgo::BACKEND)
}

fn main() -> ExitCode {
    Runner::new("http")
        .version(env!("CARGO_PKG_VERSION"))
        .about("An axum application and the admin endpoints, served by ginkgo")
        .run(|config| {
            let settings = config.get::<HttpSettings>()?.get();
            let listen = match ListenFds::take().tcp(0)? {
                Some(inherited) => Listen::from(inherited),
                None => Listen::from(&settings.bind),
            };
            let app = Router::new().route("/", get(hello));
            let server = HttpServer::with_context(listen, move |ctx| {
                app.clone().merge(admin::router(ctx.handle().root()))
            })
            .named("http")
            .max_header_size(settings.max_header_size)
            .max_headers(settings.max_headers)
            .max_body_size(settings.max_body_size)
            .h2_max_concurrent_streams(settings.h2_max_concurrent_streams)
            .idle_timeout(settings.idle_timeout.0)
            .header_read_timeout(settings.header_read_timeout.0)
            .max_connections(settings.max_connections)
            .listen_options(ListenOptions {
                backlog: settings.backlog,
                reuse_port: settings.reuse_port,
                keepalive: settings.keepalive.map(|d| d.0),
                nodelay: settings.nodelay,
                only_v6: settings.only_v6,
                ..ListenOptions::default()
            });
            Ok(match config.get::<HttpTls>()?.get().acceptor()? {
                Some(acceptor) => server.tls_acceptor(acceptor),
                None => server,
            })
        })
}
