//! Ginkgo's quickstart as one tree: a TCP server that greets each connection, a client that
//! connects to it, and a web server that shows how many greetings went out, beside the admin
//! endpoints. The tree starts in that order and stops in reverse.
//!
//! ```text
//! cargo run --example hello_server
//! nc 127.0.0.1 7777                         # "Hello, 127.0.0.1:PORT!"
//! curl http://127.0.0.1:8081/               # "Hello World: 3 greetings so far"
//! curl http://127.0.0.1:8081/readyz         # 200 once the client is connected, 503 otherwise
//! cargo run --example hello_server -- status   # in another terminal: the live tree
//! ```

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ginkgo::Settings;
use ginkgo::config::Live;
use ginkgo::http::axum::{Router, routing::get};
use ginkgo::http::{HttpServer, admin};
use ginkgo::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use ginkgo::runner::Runner;
use ginkgo::server::{ClientConnection, Connection, StreamClient, StreamServer};
use ginkgo::service::{Context, Restart, Service};

/// Settings of the hello server.
#[derive(Settings)]
#[settings(group = "hello_server")]
struct HelloServerSettings {
    /// Where the TCP server listens (and the client connects).
    #[setting(default = "127.0.0.1:7777")]
    tcp_bind: String,
    /// Where the web server listens.
    #[setting(default = "127.0.0.1:8081")]
    web_bind: String,
}

/// Greets the peer, then echoes its lines until it leaves or the server stops.
async fn greet(conn: Connection, greetings: Arc<AtomicU64>) -> std::io::Result<()> {
    let Connection {
        stream,
        peer,
        shutdown,
    } = conn;
    let mut lines = BufReader::new(stream);
    lines
        .get_mut()
        .write_all(format!("Hello, {peer}!\n").as_bytes())
        .await?;
    greetings.fetch_add(1, Ordering::Relaxed);
    let mut line = String::new();
    loop {
        line.clear();
        match shutdown.run(lines.read_line(&mut line)).await {
            None | Some(Ok(0)) => return Ok(()),
            Some(read) => read?,
        };
        lines.get_mut().write_all(line.as_bytes()).await?;
    }
}

/// Reads the greeting and stays connected.
async fn listen(conn: ClientConnection) -> std::io::Result<()> {
    let mut lines = BufReader::new(conn.stream);
    let mut greeting = String::new();
    lines.read_line(&mut greeting).await?;
    ginkgo::tracing::info!(greeting = greeting.trim(), "client was greeted");
    let mut rest = String::new();
    let _ = conn.shutdown.run(lines.read_line(&mut rest)).await;
    Ok(())
}

/// The tree: TCP server, its client, the web server.
struct HelloServer {
    settings: Live<HelloServerSettings>,
}

#[ginkgo::async_trait]
impl Service for HelloServer {
    fn init(&mut self, ctx: &Context) {
        let now = self.settings.get();
        let greetings = Arc::new(AtomicU64::new(0));

        let counted = greetings.clone();
        ctx.add_child(StreamServer::new(
            "tcp",
            now.tcp_bind.as_str(),
            move |conn| greet(conn, counted.clone()),
        ));

        let address = now.tcp_bind.clone();
        ctx.supervise(Restart::Permanent, move || {
            StreamClient::new("client", &address, listen)
        });

        let app = Router::new().route(
            "/",
            get(move || {
                let greetings = greetings.clone();
                async move {
                    format!(
                        "Hello World: {} greetings so far\n",
                        greetings.load(Ordering::Relaxed)
                    )
                }
            }),
        );
        ctx.add_child(
            HttpServer::with_context(now.web_bind.as_str(), move |ctx| {
                app.clone().merge(admin::router(ctx.handle().root()))
            })
            .named("web"),
        );
    }
}

fn main() -> ExitCode {
    Runner::new("hello_server")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Ginkgo's quickstart: a TCP server, its client and a web server in one tree")
        .run(|config| {
            Ok(HelloServer {
                settings: config.get()?,
            })
        })
}
