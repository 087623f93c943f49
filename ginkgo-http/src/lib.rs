//! HTTP for ginkgo-rs: hyper on any backend, an [`HttpServer`] service for any tower
//! `Service` (axum `Router`s included), and the [`Admin`] endpoints.
//!
//! - [`rt`]: hyper's runtime traits for every backend: [`rt::Executor`], [`rt::Timer`] and the
//!   futures-io adapter [`rt::Io`], for hyper's servers and clients alike.
//! - [`HttpServer`]: a service that serves HTTP/1.1 (keep-alive) and HTTP/2 (prior knowledge)
//!   on one port, a task per connection, with counters, limits and a graceful stop.
//!   [`Listen`] says where; [`BoundAddr`] tells the bound address (both ginkgo-net's, shared
//!   with every server kind, as is the accept loop).
//! - [`Body`]: the request body a served service reads, with the server's body size limit.
//! - [`admin`]: `/healthz`, `/readyz`, `/status` and `/metrics` for the service tree, as the
//!   [`Admin`] service or as a router to merge into an application's.
//! - `axum` (feature `axum`, on by default): re-exported without its tokio parts, so routers
//!   are built against the same version the server runs; `admin::router`.
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `axum` | yes | serving an `axum::Router` unchanged, `admin::router`, `ginkgo_http::axum` |
//! | `tls` | no | HTTPS: [`HttpServer::tls`] (HTTP/2 or HTTP/1.1 by ALPN; certificates checked at start and re-read on reload), through ginkgo-tls (rustls on ring) |
//!
//! Without `axum`, [`HttpServer`] serves any tower service (hyper's own, tower's, or
//! [`admin::Endpoints`]).
//!
//! Everything is generic over the runtime `R`; the `ginkgo` facade's `ginkgo::http` module
//! fixes it to the backend chosen at build time.
//!
//! # Hardening
//!
//! A server faces the internet with limits on by default, each with a builder method (the
//! [limits of `HttpServer`](HttpServer#limits) list them): a header read timeout (30 s) and
//! an idle timeout (60 s, HTTP/1 keep-alive and HTTP/2 with no stream open), so slow or
//! silent peers (slowloris) are closed and do not delay other clients; the request head's size
//! (64 KiB, `431`) and header count (100); the request body's size (2 MiB: `413` before the
//! service is called when `Content-Length` says so, an error for the service when a body of
//! unknown length grows past it; after a `413` an HTTP/1 connection reads and drops what the
//! client still sends for up to 5 s before closing, so that the client reads the answer);
//! HTTP/2 streams per connection (200); and connections at once (10,000).
//!
//! # Examples
//!
//! An axum application with the admin endpoints, on any backend:
//!
//! ```
//! use ginkgo_api::Runtime;
//! use ginkgo_http::{HttpServer, admin};
//! use ginkgo_http::axum::{Router, routing::get};
//!
//! fn app<R: Runtime>(bind: &str) -> HttpServer<R, Router> {
//!     let routes = Router::new().route("/", get(|| async { "hello" }));
//!     HttpServer::with_context(bind, move |ctx| {
//!         routes.clone().merge(admin::router(ctx.handle().root()))
//!     })
//! }
//! # fn demo<R: Runtime>() {
//! ginkgo_api::block_on::<R, _>(async {
//!     let server = app::<R>("127.0.0.1:0");
//!     let listening = server.address();
//!     let tree = ginkgo_api::service::tree::<R>(server);
//!     tree.start().await.unwrap();
//!     println!("serving on http://{}", listening.local_addr().unwrap());
//!     tree.stop().await;
//! });
//! # }
//! ```
//!
//! # No `unsafe`, on measurement
//!
//! The crate forbids `unsafe` code. The one place it could pay is the read path: hyper hands
//! [`rt::Io`] an uninitialised buffer, which a futures-io reader cannot fill without `unsafe`,
//! so each read lands in a per-thread buffer and is copied. Counted with callgrind
//! (`bench/tools/http-instructions.sh`, keep-alive `GET /`, 2026-12-02), the copy itself is
//! 11 instructions per request, and the whole read adapter about 140 against hyper-util's
//! `TokioIo` at about 64, out of some 13,000 per request. A sound zero-copy read over any
//! futures-io stream would have to zero hyper's buffer before every read (as smol-hyper does),
//! which costs more than the copy it saves; reading into uninitialised memory without zeroing
//! would need the backends to implement an `unsafe` trait. Neither is worth it.

pub mod admin;
mod body;
pub mod rt;
mod server;

pub use admin::Admin;
pub use body::Body;
pub use ginkgo_net::{AcceptControl, BoundAddr, Listen, ListenOptions, LocalAddr};
pub use server::{
    BoxError, DEFAULT_H2_MAX_CONCURRENT_STREAMS, DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_BODY_SIZE, DEFAULT_MAX_HEADER_SIZE, DEFAULT_MAX_HEADERS, HttpServer, HttpService,
    MIN_MAX_HEADER_SIZE,
};

#[cfg(feature = "axum")]
pub use axum;
pub use http;
pub use hyper;
