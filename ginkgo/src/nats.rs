//! The bus on NATS; see [`ginkgo_nats`] for what the connection service guarantees.
//!
//! # Examples
//!
//! ```no_run
//! use ginkgo::nats::{Nats, NatsOptions};
//!
//! let nats = Nats::new(NatsOptions::new(["nats://127.0.0.1:4222"]).name("orders"));
//! let bus: ginkgo::bus::Bus = nats.bus();
//! // Add `nats` to the tree before the services that use `bus`.
//! # drop((nats, bus));
//! ```

pub use ginkgo_nats::{NatsOptions, NatsSettings};

/// The NATS connection service on the runtime chosen at build time.
pub type Nats = ginkgo_nats::Nats<super::Backend>;
