//! Readiness of connected stream sockets: edge-triggered epoll of our own on Linux, async-io's
//! one-shot registrations elsewhere. Both keep a socket's readiness until an operation
//! disproves it, so a stream makes its system call first and waits only after `EWOULDBLOCK`
//! (or a short read, which emptied the receive buffer).

#[cfg(any(target_os = "linux", target_os = "android"))]
mod edge;
// Built in tests everywhere, so that the fallback is tested on Linux too.
#[cfg(any(test, not(any(target_os = "linux", target_os = "android"))))]
mod oneshot;

#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) use async_io::block_on;
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) use edge::{Registered, block_on};
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) use oneshot::Registered;

/// The direction of an operation on a socket.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Direction {
    Read,
    Write,
}

/// Readiness observed by `poll_ready`, to hand back to `clear` if the operation it allowed
/// would have blocked.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ready(
    // The fallback has no event count to compare.
    #[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))] usize,
);
