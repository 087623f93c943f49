//! The conformance cases, one module per area. Each case is `async fn name<R: Runtime>()` and
//! panics on failure.

pub mod bus;
pub mod datagram;
pub mod discovery;
pub mod kv;
pub mod leader;
pub mod listen;
pub mod net;
pub mod server;
pub mod service;
pub mod signal;
pub mod sync;
pub mod task;
pub mod time;
pub mod tls;
