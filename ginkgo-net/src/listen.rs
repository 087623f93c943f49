//! Where a server listens ([`Listen`]), and where it is listening now ([`BoundAddr`]).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use event_listener::Event;
use ginkgo_api::Runtime;
use ginkgo_api::net::TcpListener;

/// Where a server listens: an address bound at each start, or a listener that is already
/// bound (socket activation, a port bound before dropping privileges). Every server kind
/// ([`StreamServer`](crate::StreamServer), ginkgo-http's `HttpServer`) takes one.
///
/// Anything naming an address converts into it, as does a [`std::net::TcpListener`].
///
/// # Examples
///
/// ```
/// use ginkgo_net::Listen;
///
/// let by_name = Listen::from("localhost:8080");
/// assert_eq!(by_name.to_string(), "localhost:8080");
///
/// let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let inherited = Listen::from(std_listener);
/// assert!(inherited.to_string().starts_with("inherited listener 127.0.0.1:"));
/// # std::io::Result::Ok(())
/// ```
#[derive(Debug)]
pub enum Listen {
    /// An address to bind at each start, such as `"127.0.0.1:8080"`, `"[::]:80"` or
    /// `"localhost:8080"` (host names are resolved at start). Port 0 picks a free port.
    Addr(String),
    /// A listener that is already bound; each start serves a duplicate of it, so the server
    /// can be stopped and started again. While the server is stopped the socket stays open and
    /// connections wait in its backlog, as they do under systemd socket activation.
    Inherited(std::net::TcpListener),
}

impl Listen {
    /// Opens the listener on runtime `R`.
    ///
    /// # Errors
    ///
    /// Fails when the address cannot be resolved or bound, or the inherited listener cannot be
    /// duplicated or registered with the runtime. The error keeps the kind and OS error code
    /// of the cause; its message names the address and, for the usual causes, what to do.
    pub async fn open<R: Runtime>(&self) -> io::Result<TcpListener<R>> {
        let opened = match self {
            Listen::Addr(addr) => TcpListener::<R>::bind(addr.as_str()).await,
            Listen::Inherited(listener) => {
                listener.try_clone().and_then(TcpListener::<R>::from_std)
            }
        };
        opened.map_err(|err| {
            let hint = match err.kind() {
                io::ErrorKind::AddrInUse => {
                    " (is another process, or another server of this program, using the port?)"
                }
                io::ErrorKind::PermissionDenied => {
                    " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
                }
                io::ErrorKind::AddrNotAvailable => " (the address is not one of this host's)",
                _ => "",
            };
            ginkgo_api::io::with_context(err, |err| format!("cannot listen on {self}: {err}{hint}"))
        })
    }
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Listen::Addr(addr) => f.write_str(addr),
            Listen::Inherited(listener) => match listener.local_addr() {
                Ok(addr) => write!(f, "inherited listener {addr}"),
                Err(_) => f.write_str("inherited listener"),
            },
        }
    }
}

impl From<String> for Listen {
    fn from(addr: String) -> Self {
        Listen::Addr(addr)
    }
}

impl From<&str> for Listen {
    fn from(addr: &str) -> Self {
        Listen::Addr(addr.to_owned())
    }
}

impl From<&String> for Listen {
    fn from(addr: &String) -> Self {
        Listen::Addr(addr.clone())
    }
}

impl From<SocketAddr> for Listen {
    fn from(addr: SocketAddr) -> Self {
        Listen::Addr(addr.to_string())
    }
}

impl From<std::net::TcpListener> for Listen {
    fn from(listener: std::net::TcpListener) -> Self {
        Listen::Inherited(listener)
    }
}

/// A cloneable view of where a server listens, taken before the server is moved into a tree:
/// the address is known only once the server has started (it may have bound port 0).
///
/// # Examples
///
/// ```
/// # fn demo<R: ginkgo_api::Runtime>() {
/// use ginkgo_net::{Connection, StreamServer};
///
/// ginkgo_api::block_on::<R, _>(async {
///     let server = StreamServer::<R, _>::new("idle", "127.0.0.1:0", |_: Connection<R>| async {});
///     let bound = server.address();
///     let tree = ginkgo_api::service::tree::<R>(server);
///     tree.start().await.unwrap();
///     let addr = bound.local_addr().expect("listening once started");
///     assert_ne!(addr.port(), 0);
///     tree.stop().await;
///     assert_eq!(bound.local_addr(), None);
/// });
/// # }
/// ```
#[derive(Clone, Default)]
pub struct BoundAddr(Arc<Bound>);

#[derive(Default)]
struct Bound {
    addr: Mutex<Option<SocketAddr>>,
    changed: Event,
}

impl BoundAddr {
    /// A handle to give to a server (such as ginkgo-http's `HttpServer::with_address`) so
    /// it can be read before the server is built.
    pub fn new() -> Self {
        Self::default()
    }

    /// The address the server listens on; `None` before it starts and once it has stopped
    /// accepting.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        *self.0.addr.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until the server listens and returns its address.
    pub async fn listening(&self) -> SocketAddr {
        loop {
            if let Some(addr) = self.local_addr() {
                return addr;
            }
            let listener = self.0.changed.listen();
            if let Some(addr) = self.local_addr() {
                return addr;
            }
            listener.await;
        }
    }

    /// Waits until the server does not listen: at once before it starts, otherwise until its
    /// listening socket is closed (new connections are refused from then on).
    pub async fn closed(&self) {
        loop {
            if self.local_addr().is_none() {
                return;
            }
            let listener = self.0.changed.listen();
            if self.local_addr().is_none() {
                return;
            }
            listener.await;
        }
    }

    pub(crate) fn set(&self, addr: Option<SocketAddr>) {
        *self.0.addr.lock().unwrap_or_else(PoisonError::into_inner) = addr;
        self.0.changed.notify(usize::MAX);
    }
}

impl fmt::Debug for BoundAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundAddr")
            .field("local_addr", &self.local_addr())
            .finish()
    }
}
