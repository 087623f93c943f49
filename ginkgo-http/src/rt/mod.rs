//! hyper's runtime traits implemented for every ginkgo backend: [`Executor`], [`Timer`] and
//! the I/O adapter [`Io`].
//!
//! hyper 1.x is runtime-neutral: a connection needs something to spawn HTTP/2 streams on
//! (`hyper::rt::Executor`), timers for keep-alive and header timeouts (`hyper::rt::Timer`),
//! and a socket that implements `hyper::rt::Read` and `hyper::rt::Write`. These adapters give
//! hyper a ginkgo runtime `R`; they are zero-sized (`Executor`, `Timer`) or a thin wrapper
//! (`Io`), statically dispatched, and they work for hyper's clients as well as its servers.
//!
//! # Examples
//!
//! One HTTP/1.1 connection served with hyper directly, on any backend (the
//! [`HttpServer`](crate::HttpServer) service does this, and more, for you):
//!
//! ```no_run
//! use std::convert::Infallible;
//! use std::time::Duration;
//! use ginkgo_api::Runtime;
//! use ginkgo_api::net::TcpListener;
//! use ginkgo_http::rt::{Io, Timer};
//!
//! async fn serve_one<R: Runtime>(listener: &TcpListener<R>) -> Result<(), ginkgo_http::BoxError> {
//!     let (stream, _peer) = listener.accept().await?;
//!     let hello = hyper::service::service_fn(|_request| async {
//!         Ok::<_, Infallible>(http::Response::new(String::from("hello")))
//!     });
//!     hyper::server::conn::http1::Builder::new()
//!         .timer(Timer::<R>::new())
//!         .header_read_timeout(Duration::from_secs(10))
//!         .serve_connection(Io::new(stream), hello)
//!         .await?;
//!     Ok(())
//! }
//! ```

mod executor;
mod io;
mod timer;

pub use executor::Executor;
pub use io::Io;
pub use timer::{Sleep, Timer};
