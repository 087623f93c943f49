//! `ginkgo-bench http-serve SERVER`: one HTTP server in its own process, for the `http` suite.
//!
//! It prints the address it listens on (an ephemeral port on 127.0.0.1) as the first line of
//! its standard output, then serves until its standard input closes, which the parent does
//! when it is done with it (or by dying). Given a certificate and key, it serves HTTPS.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use axum::serve::ListenerExt;
use ginkgo_api::Runtime;
use ginkgo_api::service::{Service, async_trait};
use ginkgo_backend_async_std::AsyncStd;
use ginkgo_backend_smol::Smol;
use ginkgo_backend_threads::Threads;
use ginkgo_backend_tokio::Tokio;
use ginkgo_http::{HttpServer, admin};

/// The servers this subcommand runs: ginkgo on each backend, the baselines and the reference.
pub(crate) const SERVERS: [&str; 8] = [
    "tokio",
    "async-std",
    "smol",
    "threads",
    AXUM,
    AXUM_GRACEFUL,
    HYPER_ON_SMOL,
    HYPER_RUSTLS,
];

/// The baseline: `axum::serve` on tokio.
pub(super) const AXUM: &str = "axum";

/// The `upgrade` suite's anchor for SIGTERM with idle connections: `axum::serve` on tokio with
/// `with_graceful_shutdown` on SIGTERM (stop accepting, close idle connections, wait for the
/// others, exit).
pub(crate) const AXUM_GRACEFUL: &str = "axum-graceful";

/// The reference server: hyper directly on smol, without ginkgo.
pub(super) const HYPER_ON_SMOL: &str = "hyper-smol";

/// The HTTPS baseline: hyper-util's server with tokio-rustls on tokio.
pub(super) const HYPER_RUSTLS: &str = "hyper-rustls";

/// A certificate chain and its key, PEM files.
type CertAndKey = (PathBuf, PathBuf);

/// Runs `server` (one of [`SERVERS`]; the command line allows no other), over TLS with `tls`
/// if given. The plain-HTTP servers `axum` and `hyper-smol` do not serve TLS, and
/// `hyper-rustls` serves only TLS.
pub(crate) fn main(server: &str, tls: Option<CertAndKey>) -> ExitCode {
    // Exit when the parent closes our standard input, or dies.
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        std::process::exit(0);
    });
    let served = match (server, tls) {
        ("tokio", tls) => ginkgo::<Tokio>(tls),
        ("async-std", tls) => ginkgo::<AsyncStd>(tls),
        ("smol", tls) => ginkgo::<Smol>(tls),
        ("threads", tls) => ginkgo::<Threads>(tls),
        (AXUM, None) => axum_on_tokio(false),
        (AXUM_GRACEFUL, None) => axum_on_tokio(true),
        (HYPER_ON_SMOL, None) => hyper_on_smol(),
        (HYPER_RUSTLS, Some(tls)) => hyper_rustls_on_tokio(&tls),
        (AXUM | AXUM_GRACEFUL | HYPER_ON_SMOL, Some(_)) => Err("serves plain HTTP only".to_owned()),
        (HYPER_RUSTLS, None) => Err("serves HTTPS only: give --cert and --key".to_owned()),
        _ => Err(format!(
            "unknown server `{server}` (valid: {})",
            SERVERS.join(", ")
        )),
    };
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("ginkgo-bench http-serve {server}: {err}");
            ExitCode::FAILURE
        }
    }
}

/// The `http` example's application: `GET /` answers with a line naming the backend (the admin
/// routes are merged in by each server).
fn app(backend: &'static str) -> Router {
    Router::new().route(
        "/",
        get(move || async move { format!("hello from ginkgo on {backend}\n") }),
    )
}

/// Tells the parent where we listen.
fn announce(addr: SocketAddr) -> Result<(), String> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{addr}")
        .and_then(|()| stdout.flush())
        .map_err(|err| format!("cannot report the address: {err}"))
}

/// The `http` example's server: ginkgo's [`HttpServer`] in a service tree on `R`, serving the
/// application with the admin routes of the tree beside it; with `tls`, over HTTPS (h2 and
/// http/1.1 by ALPN), as the example does given `http.tls.cert` and `http.tls.key`.
fn ginkgo<R: Runtime>(tls: Option<CertAndKey>) -> Result<(), String> {
    let app = app(R::NAME);
    let mut server = HttpServer::<R, _>::with_context("127.0.0.1:0", move |ctx| {
        app.clone().merge(admin::router(ctx.handle().root()))
    })
    .named("http");
    if let Some((cert, key)) = tls {
        server = server.tls(ginkgo_tls::ServerTls::new(cert, key));
    }
    let listening = server.address();
    ginkgo_api::block_on::<R, _>(async move {
        let tree = ginkgo_api::service::tree::<R>(server);
        tree.start().await.map_err(|err| err.to_string())?;
        announce(listening.local_addr().ok_or("not listening after start")?)?;
        ginkgo_api::service::serve(&tree)
            .await
            .map_err(|err| err.to_string())
    })
}

/// A service that does nothing: the baseline's admin routes need a tree to report on.
struct Idle;

#[async_trait]
impl Service for Idle {
    fn name(&self) -> &str {
        "http"
    }
}

/// The baseline: the same router (the admin routes report on a tree that is never started)
/// served by `axum::serve` on a tokio runtime with ginkgo's worker count. Accepted sockets get
/// `TCP_NODELAY` through axum's `tap_io`, as ginkgo's server sets it. With `graceful`, SIGTERM
/// shuts it down gracefully and the process exits.
fn axum_on_tokio(graceful: bool) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(ginkgo_backend_kit::worker_count())
        .enable_all()
        .build()
        .map_err(|err| format!("cannot start tokio: {err}"))?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|err| format!("cannot listen: {err}"))?;
        announce(listener.local_addr().map_err(|err| err.to_string())?)?;
        let tree = ginkgo_api::service::tree::<Tokio>(Idle);
        let app = app(Tokio::NAME).merge(admin::router(tree));
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let serving = axum::serve(listener, app);
        if !graceful {
            return serving
                .await
                .map_err(|err| format!("axum::serve failed: {err}"));
        }
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|err| format!("cannot listen for SIGTERM: {err}"))?;
        serving
            .with_graceful_shutdown(async move {
                term.recv().await;
            })
            .await
            .map_err(|err| format!("axum::serve failed: {err}"))
    })
}

/// Hands hyper's HTTP/2 stream futures to the smol executor.
#[derive(Clone, Copy)]
struct SmolExecutor(&'static async_executor::Executor<'static>);

impl<F> hyper::rt::Executor<F> for SmolExecutor
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        self.0.spawn(future).detach();
    }
}

/// What a smol user would write without ginkgo: an accept loop on async-net, one task per
/// connection on the executor, hyper-util's HTTP/1 + HTTP/2 builder (as `axum::serve` uses),
/// smol-hyper's I/O adapter, no header read timeout (as `axum::serve`), on the native smol
/// cases' executor (set up as smol sets one up).
fn hyper_on_smol() -> Result<(), String> {
    let executor = crate::runtime::native::smol::io_executor();
    async_io::block_on(async move {
        let listener = async_net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|err| format!("cannot listen: {err}"))?;
        announce(listener.local_addr().map_err(|err| err.to_string())?)?;
        let tree = ginkgo_api::service::tree::<Smol>(Idle);
        // Given its state once, as `axum::serve` and ginkgo's `HttpServer` do, so that its
        // handlers are not turned into routes for every request.
        let app = app(Smol::NAME)
            .merge(admin::router(tree))
            .with_state::<()>(());
        let builder = hyper_util::server::conn::auto::Builder::new(SmolExecutor(executor));
        loop {
            let (stream, _) = listener
                .accept()
                .await
                .map_err(|err| format!("accept failed: {err}"))?;
            let _ = stream.set_nodelay(true);
            let service = hyper_util::service::TowerToHyperService::new(app.clone());
            let builder = builder.clone();
            executor
                .spawn(async move {
                    let io = smol_hyper::rt::FuturesIo::new(stream);
                    let _ = builder.serve_connection_with_upgrades(io, service).await;
                })
                .detach();
        }
    })
}

/// The HTTPS baseline, what a tokio user would write: a tokio-rustls acceptor offering `h2`
/// and `http/1.1` by ALPN, with the same rustls and provider as ginkgo-tls; an accept loop on
/// tokio, one task per connection doing the handshake and then hyper-util's HTTP/1 + HTTP/2
/// builder (as `axum::serve` uses) with the same router; `TCP_NODELAY` as ginkgo sets it.
fn hyper_rustls_on_tokio((cert, key): &CertAndKey) -> Result<(), String> {
    use rustls_pki_types::pem::PemObject;
    let certs = rustls_pki_types::CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|err| format!("{}: {err}", cert.display()))?;
    let key = rustls_pki_types::PrivateKeyDer::from_pem_file(key)
        .map_err(|err| format!("{}: {err}", key.display()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|err| err.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|err| format!("the certificate: {err}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(ginkgo_backend_kit::worker_count())
        .enable_all()
        .build()
        .map_err(|err| format!("cannot start tokio: {err}"))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|err| format!("cannot listen: {err}"))?;
        announce(listener.local_addr().map_err(|err| err.to_string())?)?;
        let tree = ginkgo_api::service::tree::<Tokio>(Idle);
        let app = app(Tokio::NAME)
            .merge(admin::router(tree))
            .with_state::<()>(());
        let builder =
            hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
        loop {
            let (tcp, _) = listener
                .accept()
                .await
                .map_err(|err| format!("accept failed: {err}"))?;
            let _ = tcp.set_nodelay(true);
            let (acceptor, app, builder) = (acceptor.clone(), app.clone(), builder.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let io = hyper_util::rt::TokioIo::new(tls);
                let service = hyper_util::service::TowerToHyperService::new(app);
                let _ = builder.serve_connection_with_upgrades(io, service).await;
            });
        }
    })
}
