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

/// Locks a std mutex, taking it even if a panic poisoned it: for locks whose every change is
/// made whole under the lock, so the data is consistent whatever panicked elsewhere.
pub(crate) fn lock_unpoisoned<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
pub use event_listener as event;
pub use event_listener::{Event, Listener};
