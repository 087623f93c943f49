//! HTTP services on the backend chosen at build time; see [`ginkgo_http`].
//!
//! - [`HttpServer`]: serves any tower `Service`, such as an [`axum::Router`], over HTTP/1.1 and
//!   HTTP/2 on one port, with counters, limits (timeouts, head and body sizes) and a graceful
//!   stop; its services read request bodies as [`Body`].
//! - [`Admin`] and [`admin::router`]: `/healthz`, `/readyz`, `/status` and `/metrics` of the
//!   service tree, on a port of their own or beside an application's routes.
//! - [`Executor`], [`Timer`] and [`Io`]: hyper's runtime traits, for using hyper directly
//!   (its HTTP clients, say).
//! - `axum` (feature `axum`), [`hyper`] and [`http`]: the versions the server runs,
//!   re-exported.
//!
//! # Examples
//!
//! ```no_run
//! use ginkgo::http::axum::{Router, routing::get};
//! use ginkgo::http::{HttpServer, admin};
//!
//! let app = Router::new().route("/", get(|| async { "hello" }));
//! let server = HttpServer::with_context("127.0.0.1:8080", move |ctx| {
//!     app.clone().merge(admin::router(ctx.handle().root()))
//! });
//! ginkgo::run(ginkgo::serve_forever(server)).unwrap();
//! ```

pub use ginkgo_http::admin;
#[cfg(feature = "axum")]
pub use ginkgo_http::axum;
pub use ginkgo_http::{
    AcceptControl, Body, BoundAddr, BoxError, DEFAULT_H2_MAX_CONCURRENT_STREAMS,
    DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_BODY_SIZE,
    DEFAULT_MAX_HEADER_SIZE, DEFAULT_MAX_HEADERS, HttpService, Listen, ListenOptions, LocalAddr,
    MIN_MAX_HEADER_SIZE, http, hyper,
};

/// A service serving HTTP with a tower service `S`; see [`ginkgo_http::HttpServer`].
pub type HttpServer<S> = ginkgo_http::HttpServer<crate::Backend, S>;

/// The admin endpoints on a port of their own; see [`ginkgo_http::Admin`].
pub type Admin = ginkgo_http::Admin<crate::Backend>;

/// hyper's executor on the backend: spawns the futures hyper hands it as tasks.
pub type Executor = ginkgo_http::rt::Executor<crate::Backend>;

/// hyper's timer on the backend.
pub type Timer = ginkgo_http::rt::Timer<crate::Backend>;

/// Lets hyper use a [`TcpStream`](crate::net::TcpStream) (or any futures-io stream).
pub use ginkgo_http::rt::Io;
