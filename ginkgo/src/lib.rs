//! ginkgo-rs: build network daemons out of services, on the runtime of your choice.
//!
//! This is the facade applications depend on. To learn it, read
//! [the guide](https://github.com/ginkgo-rs/ginkgo-rs/blob/main/guide/src/introduction.md), in
//! which every code block is compiled and run by the tests.
//!
//! The runtime is chosen at build time with one Cargo feature, and code written against this
//! crate never names it:
//!
//! | feature | runtime | notes |
//! |---|---|---|
//! | `tokio` (default) | tokio, multi-threaded | |
//! | `smol` | async-executor + async-io | recommended outside tokio |
//! | `async-std` | async-std | discontinued upstream; kept working, prefer `smol` |
//! | `threads` | one OS thread per task, each waiting in its own `poll(2)` | no executor at all |
//!
//! With several features enabled (as `--all-features` does), the first in the order
//! **tokio, smol, async-std, threads** wins, so to pick smol write
//! `ginkgo = { version = "0.1", default-features = false, features = ["smol"] }`.
//! [`BACKEND`] names the one in use.
//!
//! - [`run`] starts the runtime and runs the program's main future.
//! - [`spawn`], [`spawn_blocking`], [`JoinHandle`], [`JoinError`]: tasks with one contract on
//!   every backend (drop detaches, `abort()` cancels, panics are reported, never propagated).
//! - [`service`]: services with a lifecycle, owned tasks and supervision; [`serve_forever`].
//! - [`config`] and [`Settings`]: declared, layered, live settings.
//! - [`bus`]: messaging (publish/subscribe, queue groups, request/reply, typed responders),
//!   in-process, or on NATS with the `nats` feature (`ginkgo::nats`).
//! - [`discovery`]: instances register a named service and find each other, over the bus,
//!   in the NATS services protocol (so `nats micro ls` sees them).
//! - [`kv`] and [`leader`]: a key-value store with revisions, expiry and watches, and
//!   leadership of a role with a lease (`Singleton` runs a child on the leader only),
//!   in-process or on NATS JetStream KV.
//! - [`time`], [`net`], [`signal`], [`sync`], [`io`], [`future`].
//!
//! The optional parts, each a crate of its own behind a feature (all in `default`), so a
//! program compiles only what it uses:
//!
//! | feature | module | crate | what it adds |
//! |---|---|---|---|
//! | `net` | `server` | `ginkgo-net` | `StreamServer` (TCP or Unix sockets), `StreamClient`, `DatagramServer` (UDP), the listener and accept loop they share |
//! | `http` | `http` | `ginkgo-http` | `HttpServer` (hyper, HTTP/1.1 and HTTP/2), the admin endpoints; implies `net` |
//! | `axum` | `http` | `ginkgo-http` | serving an `axum::Router`, `admin::router`; implies `http` |
//! | `runner` | `runner` | `ginkgo-runner` | `Runner`: the daemon's command line (clap, tracing-subscriber) |
//! | `tls` | `tls` | `ginkgo-tls` | TLS (rustls on ring) for `StreamServer`, `StreamClient` and, with `http`, HTTPS; certificates checked at start and reloaded; implies `net` |
//! | `nats` (not in `default`) | `nats` | `ginkgo-nats` | the bus and the key-value store on NATS (async-nats, on a private tokio runtime off tokio) |
//!
//! `ginkgo = { version = "0.1", default-features = false, features = ["smol"] }` gives the
//! runtime, services and settings only: no hyper, axum, clap, tracing-subscriber or rustls.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//!
//! fn main() {
//!     let sum = ginkgo::run(async {
//!         let a = ginkgo::spawn(async { 20 });
//!         let b = ginkgo::spawn(async {
//!             ginkgo::time::sleep(Duration::from_millis(1)).await;
//!             22
//!         });
//!         a.await.unwrap() + b.await.unwrap()
//!     });
//!     assert_eq!(sum, 42);
//! }
//! ```

#[cfg(not(any(
    feature = "tokio",
    feature = "smol",
    feature = "async-std",
    feature = "threads"
)))]
compile_error!(
    "ginkgo needs a runtime: enable one of the features `tokio` (default), `smol`, `async-std` or `threads`"
);

use std::future::Future;

#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "nats")]
pub mod nats;
#[cfg(feature = "runner")]
pub mod runner;
#[cfg(feature = "net")]
pub mod server;
#[cfg(feature = "tls")]
pub mod tls;

/// The runtime chosen at build time. Generic code (such as the service layer) is written over
/// [`ginkgo_api::Runtime`]; this alias is how the facade fixes it.
#[cfg(feature = "tokio")]
pub type Backend = ginkgo_backend_tokio::Tokio;
/// The runtime chosen at build time.
#[cfg(all(feature = "smol", not(feature = "tokio")))]
pub type Backend = ginkgo_backend_smol::Smol;
/// The runtime chosen at build time.
#[cfg(all(feature = "async-std", not(any(feature = "tokio", feature = "smol"))))]
pub type Backend = ginkgo_backend_async_std::AsyncStd;
/// The runtime chosen at build time.
#[cfg(all(
    feature = "threads",
    not(any(feature = "tokio", feature = "smol", feature = "async-std"))
))]
pub type Backend = ginkgo_backend_threads::Threads;

pub use ginkgo_api::Runtime;
pub use ginkgo_api::task::JoinError;
pub use ginkgo_api::{future, io, stream, sync};
/// Settings: declared beside the code, typed, layered, live; see [`ginkgo_config`].
pub use ginkgo_config as config;

/// Logging and diagnostics: the runner installs a subscriber; services log with its macros.
pub use tracing;

/// Declares a group of settings; see [`config`].
pub use ginkgo_macros::Settings;

/// The name of the runtime chosen at build time: `"tokio"`, `"smol"`, `"async-std"` or
/// `"threads"`.
pub const BACKEND: &str = <Backend as Runtime>::NAME;

/// A handle to a spawned task; see [`ginkgo_api::task`] for the contract.
pub type JoinHandle<T> = ginkgo_api::JoinHandle<T, Backend>;

/// A cloneable handle that aborts a task.
pub type AbortHandle = ginkgo_api::AbortHandle<Backend>;

/// Starts the runtime, runs `future` to completion and returns its output: what `main` calls.
///
/// # Examples
///
/// ```
/// let answer = ginkgo::run(async { 42 });
/// assert_eq!(answer, 42);
/// ```
pub fn run<F: Future>(future: F) -> F::Output {
    ginkgo_api::block_on::<Backend, F>(future)
}

/// Spawns a task. Dropping the handle detaches it; [`JoinHandle::abort`] cancels it.
///
/// # Examples
///
/// ```
/// ginkgo::run(async {
///     let task = ginkgo::spawn(async { "done" });
///     assert_eq!(task.await.unwrap(), "done");
/// });
/// ```
#[inline]
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    ginkgo_api::spawn::<Backend, F>(future)
}

/// Runs a blocking closure where blocking is allowed.
///
/// # Examples
///
/// ```
/// ginkgo::run(async {
///     let text = ginkgo::spawn_blocking(|| std::fs::read_to_string("Cargo.toml"));
///     assert!(text.await.unwrap().is_ok());
/// });
/// ```
#[inline]
pub fn spawn_blocking<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    ginkgo_api::spawn_blocking::<Backend, F, T>(f)
}

pub mod time {
    //! Time: [`sleep`], [`sleep_until`], [`timeout`], [`interval`] and [`Instant`].
    //!
    //! # Examples
    //!
    //! ```
    //! use std::time::Duration;
    //! ginkgo::run(async {
    //!     let slow = ginkgo::time::sleep(Duration::from_secs(60));
    //!     assert!(ginkgo::time::timeout(Duration::from_millis(5), slow).await.is_err());
    //! });
    //! ```

    use std::future::Future;
    use std::time::Duration;

    use super::Backend;
    pub use ginkgo_api::time::{Elapsed, Instant};

    /// The future of [`sleep`] and [`sleep_until`].
    pub type Sleep = ginkgo_api::time::Sleep<Backend>;
    /// The future of [`timeout`] and [`timeout_at`].
    pub type Timeout<F> = ginkgo_api::time::Timeout<Backend, F>;
    /// The ticker of [`interval`].
    pub type Interval = ginkgo_api::time::Interval<Backend>;

    /// Waits until `duration` has passed; never completes early.
    pub fn sleep(duration: Duration) -> Sleep {
        ginkgo_api::time::sleep::<Backend>(duration)
    }

    /// Waits until `deadline`.
    pub fn sleep_until(deadline: Instant) -> Sleep {
        ginkgo_api::time::sleep_until::<Backend>(deadline)
    }

    /// Runs `future`, giving up with [`Elapsed`] after `duration`.
    pub fn timeout<F: Future>(duration: Duration, future: F) -> Timeout<F> {
        ginkgo_api::time::timeout::<Backend, F>(duration, future)
    }

    /// Runs `future`, giving up with [`Elapsed`] at `deadline`.
    pub fn timeout_at<F: Future>(deadline: Instant, future: F) -> Timeout<F> {
        ginkgo_api::time::timeout_at::<Backend, F>(deadline, future)
    }

    /// Ticks every `period`, the first tick at once; missed ticks are skipped.
    ///
    /// # Panics
    ///
    /// Panics if `period` is zero.
    pub fn interval(period: Duration) -> Interval {
        ginkgo_api::time::interval::<Backend>(period)
    }

    /// Ticks every `period`, the first tick at `start`.
    ///
    /// # Panics
    ///
    /// Panics if `period` is zero.
    pub fn interval_at(start: Instant, period: Duration) -> Interval {
        ginkgo_api::time::interval_at::<Backend>(start, period)
    }
}

pub mod net {
    //! TCP, UDP and Unix-domain sockets with futures-io I/O.
    //!
    //! # Examples
    //!
    //! ```
    //! use ginkgo::io::{AsyncReadExt, AsyncWriteExt};
    //! use ginkgo::net::{TcpListener, TcpStream};
    //!
    //! ginkgo::run(async {
    //!     let listener = TcpListener::bind("127.0.0.1:0").await?;
    //!     let mut client = TcpStream::connect(listener.local_addr()?).await?;
    //!     let (mut server, _) = listener.accept().await?;
    //!     client.write_all(b"ping").await?;
    //!     let mut buf = [0; 4];
    //!     server.read_exact(&mut buf).await?;
    //!     assert_eq!(&buf, b"ping");
    //!     std::io::Result::Ok(())
    //! }).unwrap();
    //! ```

    use super::Backend;
    pub use ginkgo_api::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, ToSocketAddrs};

    /// A TCP server socket.
    pub type TcpListener = ginkgo_api::net::TcpListener<Backend>;
    /// A TCP connection.
    pub type TcpStream = ginkgo_api::net::TcpStream<Backend>;
    /// The read half of a [`TcpStream`].
    pub type OwnedReadHalf = ginkgo_api::net::OwnedReadHalf<Backend>;
    /// The write half of a [`TcpStream`].
    pub type OwnedWriteHalf = ginkgo_api::net::OwnedWriteHalf<Backend>;
    /// A UDP socket.
    pub type UdpSocket = ginkgo_api::net::UdpSocket<Backend>;
    /// A Unix-domain stream listener.
    #[cfg(unix)]
    pub type UnixListener = ginkgo_api::net::UnixListener<Backend>;
    /// A Unix-domain stream connection.
    #[cfg(unix)]
    pub type UnixStream = ginkgo_api::net::UnixStream<Backend>;
}

#[cfg(unix)]
pub mod signal {
    //! Unix signals as an async stream.
    //!
    //! # Examples
    //!
    //! ```
    //! use ginkgo::signal::{Signal, Signals};
    //! ginkgo::run(async {
    //!     let mut signals = Signals::new(&[Signal::Usr2])?;
    //!     Signal::Usr2.raise()?;
    //!     assert_eq!(signals.recv().await, Some(Signal::Usr2));
    //!     std::io::Result::Ok(())
    //! }).unwrap();
    //! ```

    pub use ginkgo_api::signal::Signal;

    /// A stream of registered signals.
    pub type Signals = ginkgo_api::signal::Signals<super::Backend>;
}

pub mod service {
    //! Services: components with a lifecycle, owned tasks and supervision.
    //!
    //! See [`ginkgo_api::service`] for the model; this module fixes the runtime to
    //! [`Backend`](super::Backend).
    //!
    //! # Examples
    //!
    //! ```
    //! use ginkgo::service::{Context, Error, Service, State};
    //!
    //! struct HelloWorld;
    //!
    //! #[ginkgo::async_trait]
    //! impl Service for HelloWorld {
    //!     async fn start(&mut self, ctx: &Context) -> Result<(), Error> {
    //!         println!("hello from {}", ctx.path());
    //!         Ok(())
    //!     }
    //! }
    //!
    //! ginkgo::run(async {
    //!     let hello = ginkgo::service::tree(HelloWorld);
    //!     hello.start().await.unwrap();
    //!     assert_eq!(hello.state(), State::Ready);
    //!     assert!(hello.stop().await.is_clean());
    //! });
    //! ```

    pub use ginkgo_api::service::{
        Cause, Context, Counter, Error, Failure, Options, Restart, Service, ServiceHandle,
        Shutdown, ShutdownWait, Snapshot, State, StopReport, Strategy, StuckTask, TaskResult,
        Transition, serve,
    };

    /// Makes `root` the root of a new service tree and returns its handle.
    pub fn tree(root: impl Service) -> ServiceHandle {
        ginkgo_api::service::tree::<super::Backend>(root)
    }
}

pub use ginkgo_api::service::async_trait;

pub mod bus {
    //! Messaging: publish/subscribe with wildcards, queue groups, request/reply with a
    //! timeout, headers, JSON payloads; see [`ginkgo_api::bus`] for the contract. The
    //! implementation here is in-process ([`Bus::local`]); this module fixes the runtime to
    //! [`Backend`](super::Backend).
    //!
    //! # Examples
    //!
    //! ```
    //! use std::time::Duration;
    //! use ginkgo::bus::{Bus, Responder};
    //!
    //! ginkgo::run(async {
    //!     let bus = Bus::isolated();
    //!     let greeter = Responder::new("greeter", bus.clone(), "greet", |name: String| async move {
    //!         Ok::<_, String>(format!("hello, {name}"))
    //!     });
    //!     let tree = ginkgo::service::tree(greeter);
    //!     tree.start().await.unwrap();
    //!     let answer: String = bus
    //!         .request_json("greet", "ginkgo", Duration::from_secs(5))
    //!         .await
    //!         .unwrap();
    //!     assert_eq!(answer, "hello, ginkgo");
    //!     tree.stop().await;
    //! });
    //! ```

    pub use ginkgo_api::bus::{
        BusError, Bytes, Headers, Message, PENDING_LIMIT, STATUS_HEADER, Subscription, Transport,
        local, subject,
    };

    /// The bus on the runtime chosen at build time.
    pub type Bus = ginkgo_api::bus::Bus<super::Backend>;

    /// A service answering typed requests on a subject; see [`ginkgo_api::bus::Responder`].
    pub type Responder<Req, Resp, F> = ginkgo_api::bus::Responder<super::Backend, Req, Resp, F>;
}

pub mod discovery {
    //! Service discovery over the bus, in the NATS services protocol; see
    //! [`ginkgo_api::discovery`]. This module fixes the runtime to [`Backend`](super::Backend).
    //!
    //! # Examples
    //!
    //! ```
    //! use ginkgo::bus::Bus;
    //! use ginkgo::discovery::{Discovery, Registration};
    //!
    //! ginkgo::run(async {
    //!     let bus = Bus::isolated();
    //!     let tree = ginkgo::service::tree(
    //!         Registration::new(bus.clone(), "orders", "1.0.0").endpoint("http", "http://127.0.0.1:8080"),
    //!     );
    //!     tree.start().await.unwrap();
    //!     let found = Discovery::new(bus).list("orders").await.unwrap();
    //!     assert_eq!(found[0].endpoints["http"], "http://127.0.0.1:8080");
    //!     tree.stop().await;
    //! });
    //! ```

    pub use ginkgo_api::discovery::{Event, Instance, Left};

    /// Finds instances; see [`ginkgo_api::discovery::Discovery`].
    pub type Discovery = ginkgo_api::discovery::Discovery<super::Backend>;

    /// Registers an instance while it runs; see [`ginkgo_api::discovery::Registration`].
    pub type Registration = ginkgo_api::discovery::Registration<super::Backend>;

    /// Instances joining and leaving; see [`ginkgo_api::discovery::Watcher`].
    pub type Watcher = ginkgo_api::discovery::Watcher<super::Backend>;
}

pub mod kv {
    //! The key-value store: buckets of keys with revisions, compare-and-set, expiry and
    //! watches; see [`ginkgo_api::kv`] for the contract. In-process here ([`Kv::local`]); on
    //! NATS JetStream KV with the `nats` feature (`ginkgo::nats::Nats::kv`).
    pub use ginkgo_api::kv::{
        Bucket, BucketOptions, Bytes, Entry, Kv, KvError, Operation, Store, StoreBucket, Watch,
        local,
    };
}

pub mod leader {
    //! Leadership of a named role with a lease, and [`Singleton`]; see [`ginkgo_api::leader`]
    //! for how it works and exactly what is guaranteed. This module fixes the runtime to
    //! [`Backend`](super::Backend).
    //!
    //! # Examples
    //!
    //! ```
    //! use std::time::Duration;
    //! use ginkgo::kv::Kv;
    //! use ginkgo::leader::Leadership;
    //!
    //! ginkgo::run(async {
    //!     let kv = Kv::isolated();
    //!     let candidate = Leadership::new(&kv, "scheduler", Duration::from_secs(2)).await.unwrap();
    //!     let term = candidate.campaign().await.unwrap();
    //!     assert_eq!(candidate.leader().await.unwrap().as_deref(), Some(candidate.candidate()));
    //!     term.resign().await.unwrap();
    //! });
    //! ```

    pub use ginkgo_api::leader::{LeaderError, MIN_LEASE};

    /// A candidate for a role, on the runtime chosen at build time.
    pub type Leadership = ginkgo_api::leader::Leadership<super::Backend>;

    /// A term as leader; see [`ginkgo_api::leader::Term`].
    pub type Term = ginkgo_api::leader::Term<super::Backend>;

    /// Who leads, as it changes; see [`ginkgo_api::leader::LeaderWatch`].
    pub type LeaderWatch = ginkgo_api::leader::LeaderWatch<super::Backend>;

    /// A service running its child only on the leader; see [`ginkgo_api::leader::Singleton`].
    pub type Singleton<S> = ginkgo_api::leader::Singleton<super::Backend, S>;
}

/// Starts `root` and runs it until it stops or fails: a daemon's `main` in a few lines.
///
/// # Errors
///
/// Returns the root's failure, if it failed to start or failed while running.
///
/// # Examples
///
/// ```
/// use ginkgo::service::{Context, Error, Service};
///
/// struct OneShot;
///
/// #[ginkgo::async_trait]
/// impl Service for OneShot {
///     async fn start(&mut self, ctx: &Context) -> Result<(), Error> {
///         ctx.exit(); // done at once: serve_forever returns
///         Ok(())
///     }
/// }
///
/// ginkgo::run(ginkgo::serve_forever(OneShot)).unwrap();
/// ```
pub async fn serve_forever(root: impl service::Service) -> Result<(), service::Failure> {
    ginkgo_api::service::serve_forever::<Backend>(root).await
}
