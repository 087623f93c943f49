use std::fmt;
use std::io;
use std::net::SocketAddr;

use ginkgo_api::Runtime;
use ginkgo_api::net::TcpListener;

/// Where an [`HttpServer`](super::HttpServer) listens: an address bound at each start, or a
/// listener that is already bound (socket activation, a port bound before dropping
/// privileges).
///
/// Anything naming an address converts into it, as does a [`std::net::TcpListener`].
///
/// # Examples
///
/// ```
/// use ginkgo_http::Listen;
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
    /// duplicated or registered with the runtime; the message names the address and, for the
    /// usual causes, what to do.
    pub(crate) async fn open<R: Runtime>(&self) -> io::Result<TcpListener<R>> {
        let opened = match self {
            Listen::Addr(addr) => TcpListener::<R>::bind(addr.as_str()).await,
            Listen::Inherited(listener) => {
                listener.try_clone().and_then(TcpListener::<R>::from_std)
            }
        };
        opened.map_err(|err| {
            let hint = match err.kind() {
                io::ErrorKind::AddrInUse => {
                    " (is another process, or another server of this \
                     program, using the port?)"
                }
                io::ErrorKind::PermissionDenied => {
                    " (ports below 1024 need root or \
                     CAP_NET_BIND_SERVICE)"
                }
                io::ErrorKind::AddrNotAvailable => " (the address is not one of this host's)",
                _ => "",
            };
            io::Error::new(err.kind(), format!("cannot listen on {self}: {err}{hint}"))
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
