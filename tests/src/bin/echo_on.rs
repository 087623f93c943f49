//! `echo_on [RUNNER ARGS...]`: the echo service (a `StreamServer` that writes back what it
//! reads) under the runner, on the backend named by `$GINKGO_TEST_BACKEND` (`tokio` when unset,
//! `async-std`, `smol`, `threads`). The runner code is the same generic code on each; this
//! lets the process cases (upgrade, signals) run one binary on all four backends. The variable
//! is inherited by the processes the runner starts (the daemon, the new process of an upgrade).
//!
//! The tree: `app`, whose start takes `echo.start_delay` (a service slow to be ready), with
//! the server `app/echo` as its child. Settings: `echo.bind` (host:port or unix:PATH; default
//! 127.0.0.1:7007), `echo.start_delay` (default 0s), `echo.stop_delay` (how long the root's
//! stop takes; default 0s), `echo.http` (unset; an address: an `HttpServer` `app/http` there
//! too, answering `GET /` with `hello`, and the admin endpoints `/status` and `/metrics`),
//! `echo.udp` (unset; an address: a `DatagramServer` `app/udp` there too, replying with each
//! datagram and the pid).

use std::process::ExitCode;

use ginkgo_api::Runtime;
use ginkgo_api::service::{Context, Error, Service, async_trait};
use ginkgo_config::Duration;
use ginkgo_macros::Settings;
use ginkgo_net::StreamServer;
use ginkgo_runner::Runner;

/// Settings of the echo service.
#[derive(Settings)]
#[settings(crate = ginkgo_config, group = "echo")]
struct EchoSettings {
    /// The address to listen on: host:port, or unix:PATH for a Unix-domain socket.
    #[setting(default = "127.0.0.1:7007")]
    bind: String,
    /// How long the root service's start takes (after the server has started).
    #[setting(default = Duration::from_secs(0))]
    start_delay: Duration,
    /// How long the root service's stop takes (a graceful stop with work to finish).
    #[setting(default = Duration::from_secs(0))]
    stop_delay: Duration,
    /// Serve HTTP here too (`GET /` answers `hello`).
    http: Option<String>,
    /// Echo UDP datagrams here too (each reply is the datagram, a space and this pid).
    udp: Option<String>,
}

/// The root: the server as its child, and a start that takes `delay`.
struct App<R: Runtime> {
    bind: String,
    http: Option<String>,
    udp: Option<String>,
    delay: std::time::Duration,
    stop_delay: std::time::Duration,
    _runtime: std::marker::PhantomData<fn() -> R>,
}

#[async_trait]
impl<R: Runtime> Service for App<R> {
    fn name(&self) -> &str {
        "app"
    }

    fn init(&mut self, ctx: &Context) {
        ctx.add_child(StreamServer::<R, _>::new(
            "echo",
            self.bind.as_str(),
            ginkgo_tests::support::echo::<R>,
        ));
        if let Some(addr) = &self.http {
            let app = ginkgo_http::axum::Router::new()
                .route("/", ginkgo_http::axum::routing::get(|| async { "hello" }));
            let server = ginkgo_http::HttpServer::<R, _>::with_context(addr.as_str(), move |ctx| {
                app.clone()
                    .merge(ginkgo_http::admin::router(ctx.handle().root()))
            });
            ctx.add_child(server.named("http"));
        }
        if let Some(addr) = &self.udp {
            ctx.add_child(ginkgo_net::DatagramServer::<R, _>::new(
                "udp",
                addr.as_str(),
                |datagram: ginkgo_net::Datagram<R>| async move {
                    let mut reply = datagram.payload.to_vec();
                    reply.extend_from_slice(format!(" {}", std::process::id()).as_bytes());
                    datagram.reply(&reply).await.map(drop)
                },
            ));
        }
    }

    async fn start(&mut self, _ctx: &Context) -> Result<(), Error> {
        ginkgo_api::time::sleep::<R>(self.delay).await;
        Ok(())
    }

    async fn stop(&mut self, _ctx: &Context) -> Result<(), Error> {
        ginkgo_api::time::sleep::<R>(self.stop_delay).await;
        Ok(())
    }
}

fn run<R: Runtime>() -> ExitCode {
    Runner::<R>::new("echo").run(|config| {
        let settings = config.get::<EchoSettings>()?.get();
        Ok(App::<R> {
            bind: settings.bind.clone(),
            http: settings.http.clone(),
            udp: settings.udp.clone(),
            delay: settings.start_delay.0,
            stop_delay: settings.stop_delay.0,
            _runtime: std::marker::PhantomData,
        })
    })
}

fn main() -> ExitCode {
    match std::env::var("GINKGO_TEST_BACKEND").as_deref() {
        Ok("tokio") | Err(_) => run::<ginkgo_backend_tokio::Tokio>(),
        Ok("async-std") => run::<ginkgo_backend_async_std::AsyncStd>(),
        Ok("smol") => run::<ginkgo_backend_smol::Smol>(),
        Ok("threads") => run::<ginkgo_backend_threads::Threads>(),
        Ok(other) => {
            eprintln!(
                "echo_on: unknown GINKGO_TEST_BACKEND {other:?} (tokio, async-std, smol, threads)"
            );
            ExitCode::from(2)
        }
    }
}
