//! The executor-neutral API of ginkgo-rs.
//!
//! Everything here is generic over a [`Runtime`], the backend contract. Applications use the
//! `ginkgo` facade, which fixes the runtime at build time with a Cargo feature, so they never
//! name a runtime; the conformance suite and other generic code use this crate directly.
//!
//! - [`task`]: [`spawn`], [`spawn_blocking`], [`JoinHandle`], [`JoinError`], and the entry
//!   point [`block_on`].
//! - [`time`]: `sleep`, `sleep_until`, `timeout`, `interval`, [`time::Instant`].
//! - [`net`]: TCP, UDP and Unix-domain sockets with futures-io I/O.
//! - [`signal`]: SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2 and SIGQUIT as an async stream.
//! - [`future`]: combinators such as [`future::or`] and [`future::zip`] (from futures-lite).
//! - [`sync`]: channels, events and locks, re-exported from async-channel, event-listener and
//!   async-lock.
//! - [`service`]: services with lifecycle, owned tasks and supervision.
//! - [`process`]: which prefork worker this process is, if any.
//! - [`bus`]: messaging (publish/subscribe, queue groups, request/reply) with an in-process
//!   implementation; the `ginkgo-nats` crate carries the same contract over NATS.
//! - [`discovery`]: instances register a named service and find each other over the bus, in
//!   the NATS services protocol.
//! - [`kv`]: a key-value store (revisions, compare-and-set, expiry, watches) with an
//!   in-process implementation; `ginkgo-nats` keeps it in JetStream KV.
//! - [`leader`]: leadership of a role with a lease on the key-value store, and `Singleton`.
//! - [`runtime`]: the traits a backend implements (the `ginkgo-backend-kit` crate has the
//!   helpers backends share).
//!
//! This crate depends on no executor: it compiles without tokio, async-std or smol.
//!
//! # Examples
//!
//! A function written once that runs on any backend:
//!
//! ```
//! use std::time::Duration;
//! use ginkgo_api::Runtime;
//!
//! async fn double_later<R: Runtime>(x: u32) -> u32 {
//!     ginkgo_api::time::sleep::<R>(Duration::from_millis(1)).await;
//!     ginkgo_api::spawn::<R, _>(async move { x * 2 }).await.unwrap()
//! }
//! # fn demo<R: Runtime>() { assert_eq!(ginkgo_api::block_on::<R, _>(double_later::<R>(21)), 42); }
//! ```

pub mod bus;
pub mod discovery;
pub mod future;
pub mod io;
pub mod kv;
pub mod leader;
pub mod net;
pub mod process;
pub mod runtime;
pub mod service;
#[cfg(unix)]
pub mod signal;
pub mod sync;
pub mod task;
pub mod time;

/// Stream combinators from futures-lite ([`stream::StreamExt`], [`stream::iter`], ...).
pub use futures_lite::stream;
pub use runtime::Runtime;
pub use task::{AbortHandle, JoinError, JoinHandle, block_on, spawn, spawn_blocking};
