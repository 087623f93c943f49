//! Where a server listens ([`Listen`], with [`ListenOptions`]), and where it is listening now
//! ([`BoundAddr`], [`LocalAddr`]).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use event_listener::Event;
use ginkgo_api::Runtime;
use ginkgo_api::net::{TcpListener, UnixListener, handoff};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::listener::{Listener, SocketFile};

/// The prefix that makes an address a Unix-domain socket path: `unix:/run/app.sock`.
pub const UNIX_PREFIX: &str = "unix:";

/// Where a server listens: an address bound at each start (TCP, or a Unix-domain socket file),
/// or a listener that is already bound (socket activation, a port bound before dropping
/// privileges). Every server kind ([`StreamServer`](crate::StreamServer), ginkgo-http's
/// `HttpServer`) takes one.
///
/// Text converts into it: `"127.0.0.1:8080"`, `"[::]:80"`, `"localhost:8080"`, or
/// `"unix:/run/app.sock"`; so do [`std::net::TcpListener`] and
/// [`std::os::unix::net::UnixListener`].
///
/// # Examples
///
/// ```
/// use ginkgo_net::Listen;
///
/// let by_name = Listen::from("localhost:8080");
/// assert_eq!(by_name.to_string(), "localhost:8080");
///
/// let unix = Listen::from("unix:/run/app.sock");
/// assert!(matches!(&unix, Listen::Unix(path) if path.to_str() == Some("/run/app.sock")));
///
/// let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let inherited = Listen::from(std_listener);
/// assert!(inherited.to_string().starts_with("inherited listener 127.0.0.1:"));
/// # std::io::Result::Ok(())
/// ```
#[derive(Debug)]
pub enum Listen {
    /// A TCP address to bind at each start, such as `"127.0.0.1:8080"`, `"[::]:80"` or
    /// `"localhost:8080"` (host names are resolved at start). Port 0 picks a free port.
    Addr(String),
    /// A Unix-domain socket file to create at each start. A stale file (a socket no process
    /// listens on) is replaced; a live one, or a file that is not a socket, fails the start.
    /// The file is removed when the server stops listening.
    Unix(PathBuf),
    /// A TCP listener that is already bound; each start serves a duplicate of it, so the
    /// server can be stopped and started again. While the server is stopped the socket stays
    /// open and connections wait in its backlog, as they do under systemd socket activation.
    Inherited(std::net::TcpListener),
    /// A Unix-domain listener that is already bound, served as [`Listen::Inherited`] is.
    InheritedUnix(std::os::unix::net::UnixListener),
}

/// How a listener is set up, and what is set on each connection it accepts. Every field has
/// the default a server is expected to have ([`ListenOptions::default`]).
///
/// `backlog`, `reuse_port` and `only_v6` apply when the server binds an address itself; an
/// inherited listener keeps what its creator set. `nodelay` and `keepalive` apply to every
/// accepted TCP connection, `unix_mode` to a socket file the server creates.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ginkgo_net::ListenOptions;
///
/// let options = ListenOptions {
///     backlog: 4096,
///     reuse_port: true,
///     keepalive: Some(Duration::from_secs(60)),
///     ..ListenOptions::default()
/// };
/// assert!(options.nodelay);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenOptions {
    /// The kernel's queue of connections not yet accepted (`listen(2)`'s backlog; the kernel
    /// caps it at `net.core.somaxconn`). Default 1024, not `std`'s 128, which a burst of
    /// connections overflows.
    pub backlog: u32,
    /// `SO_REUSEPORT`: several sockets (processes) may bind the same address and the kernel
    /// spreads connections over them. Default off.
    pub reuse_port: bool,
    /// `IPV6_V6ONLY` for an IPv6 address: `Some(true)` serves IPv6 only, `Some(false)` IPv4 too
    /// (on `[::]`), `None` leaves the system's default (Linux: both). Default `None`.
    pub only_v6: Option<bool>,
    /// `TCP_NODELAY` on accepted connections: small writes go out at once. Default on.
    pub nodelay: bool,
    /// TCP keepalive on accepted connections: probes after this long idle, so a vanished peer
    /// is noticed. Default `None` (off).
    pub keepalive: Option<Duration>,
    /// The permission bits of a Unix socket file the server creates, such as `0o660` to let a
    /// group connect. Default `None`: as the process's umask leaves them.
    pub unix_mode: Option<u32>,
}

/// The default of [`ListenOptions::backlog`].
pub const DEFAULT_BACKLOG: u32 = 1024;

impl Default for ListenOptions {
    fn default() -> Self {
        Self {
            backlog: DEFAULT_BACKLOG,
            reuse_port: false,
            only_v6: None,
            nodelay: true,
            keepalive: None,
            unix_mode: None,
        }
    }
}

impl Listen {
    /// Opens the listener on runtime `R`, set up as `options` say.
    ///
    /// # Errors
    ///
    /// Fails when the address cannot be resolved or bound, a Unix socket file is in use or is
    /// not a socket, or an inherited listener cannot be duplicated or registered with the
    /// runtime. The error keeps the kind and OS error code of the cause; its message names the
    /// address and, for the usual causes, what to do.
    pub async fn open<R: Runtime>(&self, options: &ListenOptions) -> io::Result<Listener<R>> {
        let opened = match self {
            Listen::Addr(addr) => bind_tcp::<R>(addr, options).await,
            Listen::Unix(path) => bind_unix::<R>(path, options),
            Listen::Inherited(listener) => listener
                .try_clone()
                .and_then(TcpListener::<R>::from_std)
                .and_then(|listener| Listener::tcp(listener, options)),
            Listen::InheritedUnix(listener) => listener
                .try_clone()
                .and_then(UnixListener::<R>::from_std)
                .and_then(|listener| Listener::unix(listener, None)),
        };
        opened.map_err(|err| {
            let hint = match err.kind() {
                // A live socket file's error already says another process listens there.
                io::ErrorKind::AddrInUse if matches!(self, Listen::Unix(_)) => "",
                io::ErrorKind::AddrInUse => {
                    " (is another process, or another server of this program, using the port?)"
                }
                io::ErrorKind::PermissionDenied => match self {
                    Listen::Unix(_) => " (is the directory writable by this user?)",
                    _ => " (ports below 1024 need root or CAP_NET_BIND_SERVICE)",
                },
                io::ErrorKind::AddrNotAvailable => " (the address is not one of this host's)",
                _ => "",
            };
            ginkgo_api::io::with_context(err, |err| format!("cannot listen on {self}: {err}{hint}"))
        })
    }
}

impl Listen {
    /// Opens the listener of the service at `service` (its path, such as `"Root/web"`): adopts
    /// the listening socket an upgrade handed over for that path if there is one and it still
    /// listens where `self` says, else opens it as [`Listen::open`] does; then registers it
    /// for the next upgrade while it is open.
    ///
    /// # Errors
    ///
    /// As [`Listen::open`], or when the socket cannot be registered (out of file
    /// descriptors).
    pub async fn open_for<R: Runtime>(
        &self,
        options: &ListenOptions,
        service: &str,
    ) -> io::Result<Listener<R>> {
        let adopted = match handoff::take(service) {
            Some(socket) => self.adopt::<R>(socket, options).await.unwrap_or_else(|err| {
                tracing::warn!(service, %err, "not adopting the listener handed over; opening anew");
                None
            }),
            None => None,
        };
        let listener = match adopted {
            Some(listener) => {
                tracing::info!(service, address = %listener.local_addr(), "listening on the socket handed over");
                listener
            }
            None => self.open::<R>(options).await?,
        };
        listener.registered(service)
    }

    /// The listener on `socket`, handed over by an upgrade, if it is a listening socket of the
    /// kind and address `self` asks for (`None` when the configuration now says otherwise: the
    /// socket is then closed). Listeners given as sockets ([`Listen::Inherited`]) keep them.
    async fn adopt<R: Runtime>(
        &self,
        socket: OwnedFd,
        options: &ListenOptions,
    ) -> io::Result<Option<Listener<R>>> {
        let probe = socket2::SockRef::from(&socket);
        if probe.r#type()? != Type::STREAM || !probe.is_listener()? {
            return Ok(None);
        }
        let local = probe.local_addr()?;
        match self {
            Listen::Addr(addr) => {
                let Some(local) = local.as_socket() else {
                    return Ok(None);
                };
                if !bound_where::<R>(addr, local).await? {
                    tracing::info!(%addr, handed_over = %local, "the address changed; binding anew");
                    return Ok(None);
                }
                let listener = TcpListener::<R>::from_std(std::net::TcpListener::from(socket))?;
                Listener::tcp(listener, options).map(Some)
            }
            Listen::Unix(path) => {
                if local.as_pathname() != Some(path.as_path()) {
                    tracing::info!(path = %path.display(), "the socket path changed; binding anew");
                    return Ok(None);
                }
                let listener =
                    UnixListener::<R>::from_std(std::os::unix::net::UnixListener::from(socket))?;
                Listener::unix(listener, Some(SocketFile::created(path)?)).map(Some)
            }
            Listen::Inherited(_) | Listen::InheritedUnix(_) => Ok(None),
        }
    }
}

/// Whether a socket bound to `local` is bound where `addr` says: one of the addresses it
/// resolves to, or on its IP address with any port for port 0. How a server decides whether
/// the socket an upgrade handed over is still the one its configuration asks for.
pub(crate) async fn bound_where<R: Runtime>(addr: &str, local: SocketAddr) -> io::Result<bool> {
    let wanted = ginkgo_api::net::lookup::<R>(addr).await?;
    Ok(wanted
        .iter()
        .any(|want| *want == local || (want.port() == 0 && want.ip() == local.ip())))
}

/// Binds the first address `addr` resolves to that can be bound, with the options set before
/// `bind(2)` and `listen(2)` as they must be.
async fn bind_tcp<R: Runtime>(addr: &str, options: &ListenOptions) -> io::Result<Listener<R>> {
    let mut last = None;
    for addr in ginkgo_api::net::lookup::<R>(addr).await? {
        match tcp_socket(addr, options) {
            Ok(listener) => {
                return TcpListener::<R>::from_std(listener)
                    .and_then(|listener| Listener::tcp(listener, options));
            }
            Err(err) => {
                last = Some(ginkgo_api::io::with_context(err, |e| {
                    format!("{addr}: {e}")
                }))
            }
        }
    }
    Err(last.expect("lookup never returns an empty list"))
}

fn tcp_socket(addr: SocketAddr, options: &ListenOptions) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // As std does: a restarted server can bind while old connections linger in TIME_WAIT.
    socket.set_reuse_address(true)?;
    if options.reuse_port {
        socket.set_reuse_port(true)?;
    }
    if let (SocketAddr::V6(_), Some(only_v6)) = (addr, options.only_v6) {
        socket.set_only_v6(only_v6)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(backlog(options))?;
    Ok(socket.into())
}

fn backlog(options: &ListenOptions) -> i32 {
    i32::try_from(options.backlog.max(1)).unwrap_or(i32::MAX)
}

/// Creates the socket file at `path`, replacing a stale one (nothing listens on it) but never a
/// live socket or a file that is not a socket.
fn bind_unix<R: Runtime>(path: &Path, options: &ListenOptions) -> io::Result<Listener<R>> {
    remove_stale_socket(path)?;
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    socket.bind(&SockAddr::unix(path)?)?;
    // From here on the file is ours: remove it if anything below fails.
    let file = SocketFile::created(path)?;
    if let Some(mode) = options.unix_mode {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|err| {
            ginkgo_api::io::with_context(err, |e| {
                format!("set mode {mode:o} on the socket file: {e}")
            })
        })?;
    }
    socket.listen(backlog(options))?;
    let listener = UnixListener::<R>::from_std(std::os::fd::OwnedFd::from(socket).into())?;
    Listener::unix(listener, Some(file))
}

fn remove_stale_socket(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err),
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "the path exists and is not a socket; not replacing it",
        ));
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "another process listens on this socket",
        )),
        // Nobody listens: a server that died without removing its socket file.
        Err(err) if err.kind() == io::ErrorKind::ConnectionRefused => {
            tracing::info!(path = %path.display(), "replacing a stale socket file");
            match std::fs::remove_file(path) {
                Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
                _ => Ok(()),
            }
        }
        Err(err) => Err(err),
    }
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Listen::Addr(addr) => f.write_str(addr),
            Listen::Unix(path) => write!(f, "{UNIX_PREFIX}{}", path.display()),
            Listen::Inherited(listener) => match listener.local_addr() {
                Ok(addr) => write!(f, "inherited listener {addr}"),
                Err(_) => f.write_str("inherited listener"),
            },
            Listen::InheritedUnix(listener) => {
                match listener
                    .local_addr()
                    .ok()
                    .as_ref()
                    .and_then(|a| a.as_pathname())
                {
                    Some(path) => write!(f, "inherited listener {UNIX_PREFIX}{}", path.display()),
                    None => f.write_str("inherited Unix listener"),
                }
            }
        }
    }
}

impl From<&str> for Listen {
    fn from(addr: &str) -> Self {
        match addr.strip_prefix(UNIX_PREFIX) {
            Some(path) => Listen::Unix(PathBuf::from(path)),
            None => Listen::Addr(addr.to_owned()),
        }
    }
}

impl From<String> for Listen {
    fn from(addr: String) -> Self {
        Listen::from(addr.as_str())
    }
}

impl From<&String> for Listen {
    fn from(addr: &String) -> Self {
        Listen::from(addr.as_str())
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

impl From<std::os::unix::net::UnixListener> for Listen {
    fn from(listener: std::os::unix::net::UnixListener) -> Self {
        Listen::InheritedUnix(listener)
    }
}

/// Where a listener listens: a TCP address or a Unix-domain socket file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LocalAddr {
    /// A TCP address.
    Tcp(SocketAddr),
    /// The path of a Unix-domain socket file (`None` for an unnamed socket).
    Unix(Option<PathBuf>),
}

impl LocalAddr {
    /// The TCP address, if it is one.
    pub fn tcp(&self) -> Option<SocketAddr> {
        match self {
            LocalAddr::Tcp(addr) => Some(*addr),
            LocalAddr::Unix(_) => None,
        }
    }

    /// The socket file's path, if it is a named Unix-domain socket.
    pub fn unix_path(&self) -> Option<&Path> {
        match self {
            LocalAddr::Unix(path) => path.as_deref(),
            LocalAddr::Tcp(_) => None,
        }
    }
}

impl fmt::Display for LocalAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LocalAddr::Tcp(addr) => addr.fmt(f),
            LocalAddr::Unix(Some(path)) => write!(f, "{UNIX_PREFIX}{}", path.display()),
            LocalAddr::Unix(None) => write!(f, "{UNIX_PREFIX}(unnamed)"),
        }
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
    addr: Mutex<Option<LocalAddr>>,
    changed: Event,
}

impl BoundAddr {
    /// A handle to give to a server (such as ginkgo-http's `HttpServer::with_address`) so
    /// it can be read before the server is built.
    pub fn new() -> Self {
        Self::default()
    }

    /// Where the server listens; `None` before it starts and once it has stopped accepting.
    pub fn get(&self) -> Option<LocalAddr> {
        self.0
            .addr
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The TCP address the server listens on; `None` before it starts, once it has stopped
    /// accepting, and for a Unix-domain socket.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.get().and_then(|addr| addr.tcp())
    }

    /// Waits until the server listens and returns where.
    pub async fn listening(&self) -> LocalAddr {
        loop {
            if let Some(addr) = self.get() {
                return addr;
            }
            let listener = self.0.changed.listen();
            if let Some(addr) = self.get() {
                return addr;
            }
            listener.await;
        }
    }

    /// Waits until the server does not listen: at once before it starts, otherwise until its
    /// listening socket is closed (new connections are refused from then on).
    pub async fn closed(&self) {
        loop {
            if self.get().is_none() {
                return;
            }
            let listener = self.0.changed.listen();
            if self.get().is_none() {
                return;
            }
            listener.await;
        }
    }

    pub(crate) fn set(&self, addr: Option<LocalAddr>) {
        *self.0.addr.lock().unwrap_or_else(PoisonError::into_inner) = addr;
        self.0.changed.notify(usize::MAX);
    }
}

impl fmt::Debug for BoundAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundAddr")
            .field("addr", &self.get())
            .finish()
    }
}
