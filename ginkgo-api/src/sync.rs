//! Runtime-neutral synchronisation, re-exported from the smol ecosystem rather than rewritten.
//!
//! - [`channel`]: multi-producer multi-consumer queues ([`async-channel`](async_channel)).
//! - [`event`]: wake tasks waiting for a condition ([`event-listener`](event_listener)).
//! - [`Mutex`], [`RwLock`], [`Semaphore`], [`Barrier`]: async locks ([`async-lock`](async_lock)).
//!
//! They work on every backend and across backends, since none needs a reactor.

pub use async_channel as channel;
pub use async_lock as lock;
pub use async_lock::{Barrier, Mutex, RwLock, Semaphore};
pub use event_listener as event;
pub use event_listener::{Event, Listener};
