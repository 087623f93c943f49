//! Where a server listens: an address to bind, or a listener that is already bound.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// Where a [`StreamServer`](crate::StreamServer) listens.
#[derive(Debug)]
pub enum Bind {
    /// An address to bind at each start, such as `"127.0.0.1:7007"` or `"[::1]:0"`.
    Address(String),
    /// A listener that is already bound, such as one passed by socket activation. Each start
    /// serves a duplicate of it, so the service can be restarted.
    Listener(std::net::TcpListener),
}

impl From<&str> for Bind {
    fn from(address: &str) -> Self {
        Bind::Address(address.to_owned())
    }
}

impl From<String> for Bind {
    fn from(address: String) -> Self {
        Bind::Address(address)
    }
}

impl From<SocketAddr> for Bind {
    fn from(address: SocketAddr) -> Self {
        Bind::Address(address.to_string())
    }
}

impl From<std::net::TcpListener> for Bind {
    fn from(listener: std::net::TcpListener) -> Self {
        Bind::Listener(listener)
    }
}

/// The address a server is bound to, known once it has started (useful with port 0).
#[derive(Debug, Clone, Default)]
pub struct BoundAddr(Arc<Mutex<Option<SocketAddr>>>);

impl BoundAddr {
    /// The bound address, or `None` before the server has started.
    pub fn get(&self) -> Option<SocketAddr> {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn set(&self, address: Option<SocketAddr>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = address;
    }
}
