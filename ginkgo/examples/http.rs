//! An HTTP service: an axum application with the admin endpoints beside it, on any backend.
//!
//! ```text
//! cargo run --example http                                   # http://127.0.0.1:8080
//! cargo run --example http -- -s http.bind=127.0.0.1:9000    # another address
//! cargo run --example http --no-default-features --features smol,axum,runner
//! curl http://127.0.0.1:8080/                                # hello from ginkgo on tokio
//! curl http://127.0.0.1:8080/readyz                          # ready (503 while starting)
//! curl http://127.0.0.1:8080/status                          # the service tree as JSON
//! curl http://127.0.0.1:8080/metrics                         # Prometheus metrics
//! curl --http2-prior-knowledge http://127.0.0.1:8080/        # HTTP/2 on the same port
//! ```
//!
//! Under systemd socket activation it serves the socket it is given instead of binding
//! `http.bind`. Ctrl-C or SIGTERM stops it gracefully: it stops accepting, lets requests in
//! flight finish and closes idle connections.
//!
//! The server's limits are settings too, with the server's defaults (`cargo run --example http
//! -- config` shows them all):
//!
//! ```text
//! cargo run --example http -- -s http.max_body_size=16777216 -s http.idle_timeout=5s
//! curl -d @big.json http://127.0.0.1:8080/                    # 413 over http.max_body_size
//! ```
//!
//! The address and the limits are read at start, so changing them needs a restart, not a
//! reload.

use std::process::ExitCode;

use ginkgo::Settings;
use ginkgo::config::Duration;
use ginkgo::http::axum::{Router, routing::get};
use ginkgo::http::{
    DEFAULT_H2_MAX_CONCURRENT_STREAMS, DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_BODY_SIZE, DEFAULT_MAX_HEADER_SIZE, DEFAULT_MAX_HEADERS, HttpServer, Listen,
    MIN_MAX_HEADER_SIZE, admin,
};
use ginkgo::runner::{ListenFds, Runner};

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
            Ok(HttpServer::with_context(listen, move |ctx| {
                app.clone().merge(admin::router(ctx.handle().root()))
            })
            .named("http")
            .max_header_size(settings.max_header_size)
            .max_headers(settings.max_headers)
            .max_body_size(settings.max_body_size)
            .h2_max_concurrent_streams(settings.h2_max_concurrent_streams)
            .idle_timeout(settings.idle_timeout.0)
            .header_read_timeout(settings.header_read_timeout.0))
        })
}
