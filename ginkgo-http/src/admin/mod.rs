//! The admin endpoints: liveness, readiness, status and metrics of a service tree.
//!
//! | endpoint | answer |
//! |---|---|
//! | `GET /healthz` | `200 ok` while the process serves requests at all |
//! | `GET /readyz` | `200 ready` when every service in the tree is ready, else `503` naming those that are not |
//! | `GET /status` | the tree's [`Snapshot`] as JSON |
//! | `GET /metrics` | the tree in the Prometheus text format; see [`metrics::render`] |
//!
//! Serve them on their own port with the [`Admin`] service (one line in a parent's `init`),
//! or merge [`router`] into an application's axum `Router` to serve them beside it.

pub mod metrics;

use std::fmt;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ginkgo_api::Runtime;
use ginkgo_api::service::{Context, Error, Options, Service, ServiceHandle, Snapshot, async_trait};

use crate::{HttpHandle, HttpServer, Listen};

/// The admin endpoints for the tree below `tree` (pass the root, `ctx.handle().root()`, for
/// the whole tree), as an axum `Router` to merge into an application's.
///
/// # Examples
///
/// ```
/// # fn demo<R: ginkgo_api::Runtime>() {
/// use ginkgo_http::{HttpServer, admin};
/// use ginkgo_http::axum::{Router, routing::get};
///
/// let app = Router::new().route("/", get(|| async { "hello" }));
/// let server = HttpServer::<R, _>::with_context("127.0.0.1:8080", move |ctx| {
///     app.clone().merge(admin::router(ctx.handle().root()))
/// });
/// # drop(server);
/// # }
/// ```
pub fn router(tree: ServiceHandle) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/status", get(status))
        .route("/metrics", get(prometheus))
        .with_state(tree)
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(tree): State<ServiceHandle>) -> (StatusCode, String) {
    let snapshot = tree.snapshot();
    if snapshot.all_ready() {
        return (StatusCode::OK, "ready".to_owned());
    }
    let mut waiting = Vec::new();
    snapshot.walk(&mut |service| {
        if service.state != ginkgo_api::service::State::Ready {
            waiting.push(format!("{} ({})", service.path, service.state));
        }
    });
    let body = format!("not ready: {}", waiting.join(", "));
    (StatusCode::SERVICE_UNAVAILABLE, body)
}

async fn status(State(tree): State<ServiceHandle>) -> Response {
    json(&tree.snapshot())
}

fn json(snapshot: &Snapshot) -> Response {
    match serde_json::to_string_pretty(snapshot) {
        Ok(mut body) => {
            body.push('\n');
            ([(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        Err(err) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot serialize the snapshot of {}: {err}", snapshot.path),
        )
            .into_response(),
    }
}

async fn prometheus(State(tree): State<ServiceHandle>) -> Response {
    let body = metrics::render(&tree.snapshot());
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], body).into_response()
}

/// A service serving the [admin endpoints](self) of its whole tree on a port of their own.
///
/// Add it to any service with one line; it is named `Admin` and is an [`HttpServer`] inside,
/// with the same counters, timeouts and graceful stop.
///
/// # Examples
///
/// ```
/// use std::marker::PhantomData;
/// use ginkgo_api::Runtime;
/// use ginkgo_api::service::{Context, Service, async_trait};
/// use ginkgo_http::Admin;
///
/// struct App<R>(PhantomData<fn() -> R>);
///
/// #[async_trait]
/// impl<R: Runtime> Service for App<R> {
///     fn init(&mut self, ctx: &Context) {
///         ctx.add_child(Admin::<R>::new("127.0.0.1:9000"));
///     }
/// }
/// ```
pub struct Admin<R> {
    server: HttpServer<R, Router>,
}

impl<R: Runtime> Admin<R> {
    /// The admin endpoints on `listen` (an address such as `"127.0.0.1:9000"`, or a bound
    /// [`std::net::TcpListener`]).
    pub fn new(listen: impl Into<Listen>) -> Self {
        let server = HttpServer::with_context(listen, |ctx: &Context| router(ctx.handle().root()))
            .named("Admin");
        Self { server }
    }

    /// Changes the inner server's settings (name, timeouts, options).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn demo<R: ginkgo_api::Runtime>() {
    /// use std::time::Duration;
    /// let admin = ginkgo_http::Admin::<R>::new("127.0.0.1:9000")
    ///     .configure(|server| server.header_read_timeout(Duration::from_secs(5)));
    /// # drop(admin);
    /// # }
    /// ```
    #[must_use]
    pub fn configure(
        mut self,
        change: impl FnOnce(HttpServer<R, Router>) -> HttpServer<R, Router>,
    ) -> Self {
        self.server = change(self.server);
        self
    }

    /// A handle that tells the bound address once the service has started.
    pub fn handle(&self) -> HttpHandle {
        self.server.handle()
    }
}

#[async_trait]
impl<R: Runtime> Service for Admin<R> {
    fn name(&self) -> &str {
        Service::name(&self.server)
    }

    fn options(&self) -> Options {
        Service::options(&self.server)
    }

    async fn start(&mut self, ctx: &Context) -> Result<(), Error> {
        self.server.start(ctx).await
    }

    async fn stop(&mut self, ctx: &Context) -> Result<(), Error> {
        self.server.stop(ctx).await
    }

    async fn reload(&mut self, ctx: &Context) -> Result<(), Error> {
        self.server.reload(ctx).await
    }
}

impl<R: Runtime> fmt::Debug for Admin<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Admin").field(&self.server).finish()
    }
}
