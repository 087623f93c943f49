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
//! flight finish and closes idle connections. The address is read at start, so changing
//! `http.bind` needs a restart, not a reload.

use std::process::ExitCode;

use ginkgo::Settings;
use ginkgo::http::axum::{Router, routing::get};
use ginkgo::http::{HttpServer, Listen, admin};
use ginkgo::runner::{ListenFds, Runner};

/// Settings of the HTTP example.
#[derive(Settings)]
#[settings(group = "http")]
struct HttpSettings {
    /// The address to listen on (host:port); ignored under socket activation.
    #[setting(default = "127.0.0.1:8080")]
    bind: String,
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
            .named("http"))
        })
}
