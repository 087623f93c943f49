//! The admin endpoints: liveness, readiness, status and metrics of a service tree.
//!
//! | endpoint | answer |
//! |---|---|
//! | `GET /healthz` | `200 ok` while the process serves requests at all |
//! | `GET /readyz` | `200 ready` when every service in the tree is ready, else `503` naming those that are not |
//! | `GET /status` | the tree's [`Snapshot`] as JSON, with `process`: the `pid` and, among prefork workers, the `worker` number that answered |
//! | `GET /metrics` | the tree in the Prometheus text format; see [`metrics::render`] |
//!
//! Serve them on their own port with the [`Admin`] service (one line in a parent's `init`),
//! serve [`Endpoints`] (a plain tower service) from an `HttpServer` of your own, or, with the
//! `axum` feature, merge `router` into an application's axum `Router` to serve them beside it.

pub mod metrics;

use std::convert::Infallible;
use std::fmt;
use std::future::{Ready, ready};
use std::task::{Context as TaskContext, Poll};

use bytes::Bytes;
use ginkgo_api::Runtime;
use ginkgo_api::service::{Context, Error, Options, Service, ServiceHandle, Snapshot, async_trait};
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;

use crate::{BoundAddr, HttpServer, Listen};

/// The admin endpoints for the tree below `tree` as a tower service, without axum: what
/// [`Admin`] serves. Paths other than the four endpoints get `404`, methods other than `GET`
/// and `HEAD` get `405`.
///
/// # Examples
///
/// ```
/// # fn demo<R: ginkgo_api::Runtime>() {
/// use ginkgo_http::{HttpServer, admin::Endpoints};
///
/// let server = HttpServer::<R, _>::with_context("127.0.0.1:9000", |ctx| {
///     Endpoints::new(ctx.handle().root())
/// });
/// # drop(server);
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Endpoints {
    tree: ServiceHandle,
}

impl Endpoints {
    /// The endpoints of the tree below `tree` (pass the root, `ctx.handle().root()`, for the
    /// whole tree).
    pub fn new(tree: ServiceHandle) -> Self {
        Self { tree }
    }

    /// The answer to `GET path`, or `None` for a path that is not an endpoint.
    fn answer(&self, path: &str) -> Option<Response<Full<Bytes>>> {
        Some(match path {
            "/healthz" => text(StatusCode::OK, "ok".to_owned()),
            "/readyz" => readyz(&self.tree),
            "/status" => json(&self.tree.snapshot()),
            "/metrics" => with_type(
                StatusCode::OK,
                metrics::CONTENT_TYPE,
                metrics::render(&self.tree.snapshot()),
            ),
            _ => return None,
        })
    }
}

impl<B> tower_service::Service<Request<B>> for Endpoints {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let response = match self.answer(request.uri().path()) {
            None => text(StatusCode::NOT_FOUND, "not found".to_owned()),
            Some(_) if !matches!(*request.method(), Method::GET | Method::HEAD) => {
                let mut response = text(StatusCode::METHOD_NOT_ALLOWED, String::new());
                response
                    .headers_mut()
                    .insert(header::ALLOW, header::HeaderValue::from_static("GET,HEAD"));
                response
            }
            Some(response) => response,
        };
        ready(Ok(response))
    }
}

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
#[cfg(feature = "axum")]
pub fn router(tree: ServiceHandle) -> axum::Router {
    let endpoints = Endpoints::new(tree);
    ["/healthz", "/readyz", "/status", "/metrics"]
        .into_iter()
        .fold(axum::Router::new(), |router, path| {
            router.route_service(path, endpoints.clone())
        })
}

fn with_type(
    status: StatusCode,
    content_type: &'static str,
    body: String,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    response
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    with_type(status, "text/plain; charset=utf-8", body)
}

fn readyz(tree: &ServiceHandle) -> Response<Full<Bytes>> {
    let snapshot = tree.snapshot();
    if snapshot.all_ready() {
        return text(StatusCode::OK, "ready".to_owned());
    }
    let mut waiting = Vec::new();
    snapshot.walk(&mut |service| {
        if service.state != ginkgo_api::service::State::Ready {
            waiting.push(format!("{} ({})", service.path, service.state));
        } else if !service.ready {
            // Started, but it said it is not ready (a client while disconnected).
            waiting.push(format!("{} (not ready)", service.path));
        }
    });
    let body = format!("not ready: {}", waiting.join(", "));
    text(StatusCode::SERVICE_UNAVAILABLE, body)
}

/// The snapshot as JSON, with the answering process beside the root's own fields.
fn json(snapshot: &Snapshot) -> Response<Full<Bytes>> {
    let body = serde_json::to_value(snapshot).and_then(|mut value| {
        if let Some(fields) = value.as_object_mut() {
            fields.insert(
                "process".to_owned(),
                serde_json::json!({
                    "pid": std::process::id(),
                    "worker": ginkgo_api::process::worker(),
                }),
            );
        }
        serde_json::to_string_pretty(&value)
    });
    match body {
        Ok(mut body) => {
            body.push('\n');
            with_type(StatusCode::OK, "application/json", body)
        }
        Err(err) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot serialize the snapshot of {}: {err}", snapshot.path),
        ),
    }
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
    server: HttpServer<R, Endpoints>,
}

impl<R: Runtime> Admin<R> {
    /// The admin endpoints on `listen` (an address such as `"127.0.0.1:9000"`, or a bound
    /// [`std::net::TcpListener`]).
    pub fn new(listen: impl Into<Listen>) -> Self {
        let server =
            HttpServer::with_context(listen, |ctx: &Context| Endpoints::new(ctx.handle().root()))
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
        change: impl FnOnce(HttpServer<R, Endpoints>) -> HttpServer<R, Endpoints>,
    ) -> Self {
        self.server = change(self.server);
        self
    }

    /// A handle that tells the bound address once the service has started.
    pub fn address(&self) -> BoundAddr {
        self.server.address()
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
