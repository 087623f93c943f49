//! [`DatagramServer`]: a UDP server as a service, one owned task per datagram (gevent's
//! `DatagramServer`).

use std::fmt;
use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_lock::{Semaphore, SemaphoreGuardArc};
use ginkgo_api::Runtime;
use ginkgo_api::net::{UdpSocket, handoff};
use ginkgo_api::service::{
    Context, Counter, Error, Options, Service, Shutdown, TaskResult, async_trait,
};
use ginkgo_api::time::Backoff;

use crate::contain::run_handler;
use crate::listen::{BoundAddr, LocalAddr};

/// The default of [`DatagramServer::max_in_flight`]: enough handlers at once to keep a
/// busy resolver or collector fed, few enough that a burst costs at most that many tasks and
/// payloads in memory (the kernel's receive buffer holds the rest).
pub const DEFAULT_MAX_IN_FLIGHT: usize = 1024;

/// The default of [`DatagramServer::max_datagram_size`]: 64 KiB (65,536 bytes), more than the
/// largest payload UDP carries without IPv6 jumbograms (65,507 bytes over IPv4, 65,527 over
/// IPv6), so by default no datagram is ever counted as truncated. The server has one receive
/// buffer of this size (plus one byte); each payload is copied out at its own length.
pub const DEFAULT_MAX_DATAGRAM_SIZE: usize = 65_536;

/// The backoff after receive errors that may repeat (`ENOMEM`, `ENOBUFS`, ...): the first retry
/// after 10 ms, doubling to 1 s, as the accept loop does, so a failing socket does not spin.
const RECEIVE_BACKOFF: (Duration, Duration) = (Duration::from_millis(10), Duration::from_secs(1));

/// Where a [`DatagramServer`] receives: an address bound at each start, or a UDP socket that
/// is already bound (socket activation, a port bound before dropping privileges).
///
/// Text converts into it (`"127.0.0.1:5353"`, `"[::]:53"`, `"localhost:5353"`; host names are
/// resolved at start, port 0 picks a free port), and so do [`SocketAddr`] and
/// [`std::net::UdpSocket`].
///
/// # Examples
///
/// ```
/// use ginkgo_net::DatagramBind;
///
/// let by_name = DatagramBind::from("localhost:5353");
/// assert_eq!(by_name.to_string(), "localhost:5353");
///
/// let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
/// let inherited = DatagramBind::from(socket);
/// assert!(inherited.to_string().starts_with("inherited UDP socket 127.0.0.1:"));
/// # std::io::Result::Ok(())
/// ```
#[derive(Debug)]
pub enum DatagramBind {
    /// An address to bind at each start, such as `"127.0.0.1:5353"` or `"[::]:53"`; a host
    /// name is resolved at start and the first of its addresses that can be bound is used.
    Addr(String),
    /// A UDP socket that is already bound; each start serves a duplicate of it
    /// ([`std::net::UdpSocket::try_clone`]), so the server can be stopped and started again.
    /// While the server is stopped the socket stays open and datagrams wait in its receive
    /// buffer (and are dropped once it is full).
    Inherited(std::net::UdpSocket),
}

/// How a [`DatagramServer`]'s socket is set up: the UDP counterpart of
/// [`ListenOptions`](crate::ListenOptions). `SO_REUSEPORT` and `IPV6_V6ONLY` are set before an
/// address is bound (an inherited socket keeps what it was bound with); the buffer sizes are
/// set on either.
///
/// # Examples
///
/// ```
/// use ginkgo_net::DatagramOptions;
///
/// let options = DatagramOptions {
///     reuse_port: true,
///     recv_buffer_size: Some(4 * 1024 * 1024),
///     ..DatagramOptions::default()
/// };
/// assert_eq!(options.only_v6, None);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatagramOptions {
    /// `SO_REUSEPORT`: several sockets (processes) may bind the same address and the kernel
    /// spreads datagrams over them by their source. Default off.
    pub reuse_port: bool,
    /// `IPV6_V6ONLY` for an IPv6 address: `Some(true)` receives IPv6 only, `Some(false)` IPv4
    /// too (on `[::]`), `None` leaves the system's default (Linux: both). Default `None`.
    pub only_v6: Option<bool>,
    /// `SO_RCVBUF` in bytes: how much the kernel holds while the handlers are busy (a burst
    /// beyond it is dropped by the kernel). Linux doubles the value for its bookkeeping and
    /// caps it at `net.core.rmem_max`. Default `None`: the system's (`net.core.rmem_default`).
    pub recv_buffer_size: Option<usize>,
    /// `SO_SNDBUF` in bytes, likewise (`net.core.wmem_max`). Default `None`.
    pub send_buffer_size: Option<usize>,
}

impl DatagramBind {
    /// Opens the socket on runtime `R`, set up as `options` say: binds the address, or
    /// duplicates the inherited socket.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn demo<R: ginkgo_api::Runtime>() {
    /// use ginkgo_net::{DatagramBind, DatagramOptions};
    ///
    /// ginkgo_api::block_on::<R, _>(async {
    ///     let options = DatagramOptions::default();
    ///     let socket = DatagramBind::from("127.0.0.1:0").open::<R>(&options).await.unwrap();
    ///     assert_ne!(socket.local_addr().unwrap().port(), 0);
    /// });
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// Fails when the address cannot be resolved or bound, or the inherited socket cannot be
    /// duplicated or registered with the runtime. The error keeps the kind and OS error code of
    /// the cause; its message names the address and, for the usual causes, what to do.
    pub async fn open<R: Runtime>(&self, options: &DatagramOptions) -> io::Result<UdpSocket<R>> {
        let opened = match self {
            DatagramBind::Addr(addr) => bind_udp::<R>(addr, options).await,
            DatagramBind::Inherited(socket) => socket.try_clone(),
        }
        .and_then(|socket| {
            set_buffer_sizes(&socket, options)?;
            UdpSocket::<R>::from_std(socket)
        });
        opened.map_err(|err| {
            let hint = match err.kind() {
                io::ErrorKind::AddrInUse => {
                    " (is another process, or another server of this program, using it?)"
                }
                io::ErrorKind::PermissionDenied => {
                    " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
                }
                io::ErrorKind::AddrNotAvailable => " (the address is not one of this host's)",
                _ => "",
            };
            ginkgo_api::io::with_context(err, |err| {
                format!("cannot receive datagrams on {self}: {err}{hint}")
            })
        })
    }
}

impl DatagramBind {
    /// Opens the socket of the service at `service` (its path): adopts the socket an upgrade
    /// handed over for that path if it is a UDP socket bound where `self` says, else opens it
    /// as [`DatagramBind::open`] does; and registers it for the next upgrade until the returned
    /// registration drops.
    ///
    /// # Errors
    ///
    /// As [`DatagramBind::open`], or when the socket cannot be registered (out of file
    /// descriptors).
    pub async fn open_for<R: Runtime>(
        &self,
        options: &DatagramOptions,
        service: &str,
    ) -> io::Result<(UdpSocket<R>, handoff::Registration)> {
        let adopted = match (self, handoff::take(service)) {
            (DatagramBind::Addr(addr), Some(socket)) => {
                adopt_udp::<R>(addr, socket).await.unwrap_or_else(|err| {
                    tracing::warn!(service, %err, "not adopting the socket handed over; binding anew");
                    None
                })
            }
            _ => None,
        };
        let socket = match adopted {
            Some(socket) => {
                set_buffer_sizes(&socket, options)?;
                tracing::info!(service, "receiving on the socket handed over");
                UdpSocket::<R>::from_std(socket)?
            }
            None => self.open::<R>(options).await?,
        };
        let registration = handoff::register(service, &socket).map_err(|err| {
            ginkgo_api::io::with_context(err, |e| {
                format!("cannot register the socket of {service} for upgrades: {e}")
            })
        })?;
        Ok((socket, registration))
    }
}

/// The UDP socket handed over, if it is bound where `addr` says (port 0: any port).
async fn adopt_udp<R: Runtime>(
    addr: &str,
    socket: std::os::fd::OwnedFd,
) -> io::Result<Option<std::net::UdpSocket>> {
    let probe = socket2::SockRef::from(&socket);
    if probe.r#type()? != socket2::Type::DGRAM {
        return Ok(None);
    }
    let Some(local) = probe.local_addr()?.as_socket() else {
        return Ok(None);
    };
    let matches = crate::listen::bound_where::<R>(addr, local).await?;
    Ok(matches.then(|| std::net::UdpSocket::from(socket)))
}

/// Binds the first address `addr` resolves to that can be bound. No `SO_REUSEADDR`: on UDP it
/// would let a second socket bind the same port and take its datagrams (`SO_REUSEPORT`, when
/// asked for, lets only sockets that all set it share a port).
async fn bind_udp<R: Runtime>(
    addr: &str,
    options: &DatagramOptions,
) -> io::Result<std::net::UdpSocket> {
    let mut last = None;
    for resolved in ginkgo_api::net::lookup::<R>(addr).await? {
        match udp_socket(resolved, options) {
            Ok(socket) => return Ok(socket),
            // Name the address tried when it is not the one the caller wrote.
            Err(err) if resolved.to_string() == addr => last = Some(err),
            Err(err) => {
                last = Some(ginkgo_api::io::with_context(err, |e| {
                    format!("{resolved}: {e}")
                }))
            }
        }
    }
    Err(last.expect("lookup never returns an empty list"))
}

fn udp_socket(addr: SocketAddr, options: &DatagramOptions) -> io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if options.reuse_port {
        socket.set_reuse_port(true)?;
    }
    if let (SocketAddr::V6(_), Some(only_v6)) = (addr, options.only_v6) {
        socket.set_only_v6(only_v6)?;
    }
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

fn set_buffer_sizes(socket: &std::net::UdpSocket, options: &DatagramOptions) -> io::Result<()> {
    let socket = socket2::SockRef::from(socket);
    if let Some(bytes) = options.recv_buffer_size {
        socket.set_recv_buffer_size(bytes)?;
    }
    if let Some(bytes) = options.send_buffer_size {
        socket.set_send_buffer_size(bytes)?;
    }
    Ok(())
}

impl fmt::Display for DatagramBind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatagramBind::Addr(addr) => f.write_str(addr),
            DatagramBind::Inherited(socket) => match socket.local_addr() {
                Ok(addr) => write!(f, "inherited UDP socket {addr}"),
                Err(_) => f.write_str("inherited UDP socket"),
            },
        }
    }
}

impl From<&str> for DatagramBind {
    fn from(addr: &str) -> Self {
        DatagramBind::Addr(addr.to_owned())
    }
}

impl From<String> for DatagramBind {
    fn from(addr: String) -> Self {
        DatagramBind::Addr(addr)
    }
}

impl From<&String> for DatagramBind {
    fn from(addr: &String) -> Self {
        DatagramBind::Addr(addr.clone())
    }
}

impl From<SocketAddr> for DatagramBind {
    fn from(addr: SocketAddr) -> Self {
        DatagramBind::Addr(addr.to_string())
    }
}

impl From<std::net::UdpSocket> for DatagramBind {
    fn from(socket: std::net::UdpSocket) -> Self {
        DatagramBind::Inherited(socket)
    }
}

/// One received datagram, handed to the server's handler.
///
/// It shares the server's socket, to reply from the address the sender wrote to: the socket
/// closes when the server has stopped and the last `Datagram` is dropped.
pub struct Datagram<R: Runtime> {
    /// The datagram's bytes, exactly as sent (a datagram larger than
    /// [`DatagramServer::max_datagram_size`] never reaches the handler).
    pub payload: Vec<u8>,
    /// Who sent it.
    pub peer: SocketAddr,
    /// Triggered when the server stops: finish the reply and return, before the stop timeout
    /// aborts the handler.
    pub shutdown: Shutdown,
    serving: Arc<Serving<R>>,
}

impl<R: Runtime> Datagram<R> {
    /// Sends `reply` to the sender, from the server's socket, as one datagram; returns the
    /// number of bytes sent. Counted in `replies_sent` when it succeeds.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn demo<R: ginkgo_api::Runtime>() {
    /// use ginkgo_net::{Datagram, DatagramServer};
    ///
    /// let upper = DatagramServer::<R, _>::new("upper", "127.0.0.1:0", |datagram: Datagram<R>| async move {
    ///     datagram.reply(&datagram.payload.to_ascii_uppercase()).await.map(drop)
    /// });
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// Passes on `sendto(2)`'s error (`EMSGSIZE` for a reply too large for UDP, say); the
    /// message names the sender.
    pub async fn reply(&self, reply: &[u8]) -> io::Result<usize> {
        let sent = self.serving.socket.send_to(reply, self.peer).await?;
        self.serving.replies.inc();
        Ok(sent)
    }

    /// The server's address, the one the datagram was sent to (for a socket bound to a
    /// wildcard address such as `[::]:53`, that wildcard address).
    pub fn local_addr(&self) -> SocketAddr {
        self.serving.addr
    }
}

impl<R: Runtime> fmt::Debug for Datagram<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Datagram")
            .field("len", &self.payload.len())
            .field("peer", &self.peer)
            .field("local_addr", &self.serving.addr)
            .finish_non_exhaustive()
    }
}

/// What a [`DatagramServer`] runs for each datagram: usually a closure
/// `|datagram: Datagram<R>| async move { ... }` returning `()` or `Result<(), E>`.
///
/// An error or a panic concerns that datagram only: it is counted in `handler_errors`, logged
/// at debug level, and the server keeps serving.
pub trait DatagramHandler<R: Runtime>: Clone + Send + Sync + 'static {
    /// What the handler's future returns.
    type Output: TaskResult;
    /// The handler's future.
    type Future: Future<Output = Self::Output> + Send + 'static;
    /// Handles one datagram.
    fn call(&self, datagram: Datagram<R>) -> Self::Future;
}

impl<R, F, Fut> DatagramHandler<R> for F
where
    R: Runtime,
    F: Fn(Datagram<R>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: TaskResult,
{
    type Output = Fut::Output;
    type Future = Fut;

    fn call(&self, datagram: Datagram<R>) -> Fut {
        self(datagram)
    }
}

/// A UDP server as a service: one owned task per datagram running the handler.
///
/// - **Bind**: a [`DatagramBind`], an address bound at each start or an inherited socket
///   duplicated at each start. A bind error fails the start; the message names the address.
/// - **Bounded concurrency**: at most [`DatagramServer::max_in_flight`] handlers run at once
///   (default [`DEFAULT_MAX_IN_FLIGHT`]). When all are busy the server stops reading the
///   socket: the kernel's receive buffer (`SO_RCVBUF`, `net.core.rmem_default` on Linux)
///   absorbs the burst, and drops what does not fit, as UDP does.
/// - **Size**: a datagram larger than [`DatagramServer::max_datagram_size`] (default
///   [`DEFAULT_MAX_DATAGRAM_SIZE`]) is never handed on cut short: it is counted in
///   `datagrams_truncated`, logged at debug level and dropped.
/// - **Errors**: a handler's error or panic is counted in `handler_errors` and logged at debug
///   level. A receive error (such as `ECONNREFUSED` after an ICMP port unreachable, which
///   Linux reports on a connected socket) is counted in `receive_errors` and the server reads
///   on, at once for errors about one datagram's peer, after a capped exponential backoff
///   (the accept loop's [`Backoff`]) for errors that would repeat.
/// - **Counters** in the service's snapshot: `datagrams_received` (every datagram read,
///   truncated ones included), `datagrams_truncated`, `datagrams_in_flight` (a gauge),
///   `handler_errors`, `receive_errors`, `replies_sent`.
/// - **Graceful stop**: stopping stops reading at once; handlers in flight see their
///   [`Datagram::shutdown`] and have the service's stop timeout
///   ([`DatagramServer::stop_timeout`], 5 s by default) to finish (their replies still go
///   out); those still running then are aborted. Then the socket closes and
///   [`DatagramServer::address`] says so.
///
/// # Examples
///
/// An echo server:
///
/// ```
/// use ginkgo_net::{Datagram, DatagramServer};
///
/// # fn demo<R: ginkgo_api::Runtime>() {
/// let echo = DatagramServer::<R, _>::new("echo", "127.0.0.1:0", |datagram: Datagram<R>| async move {
///     datagram.reply(&datagram.payload).await?;
///     std::io::Result::Ok(())
/// });
/// let address = echo.address();
/// ginkgo_api::block_on::<R, _>(async {
///     let tree = ginkgo_api::service::tree::<R>(echo);
///     tree.start().await.unwrap();
///     let server = address.local_addr().unwrap();
///     let client = ginkgo_api::net::UdpSocket::<R>::bind("127.0.0.1:0").await.unwrap();
///     client.send_to(b"ping", server).await.unwrap();
///     let mut reply = [0u8; 16];
///     let (n, from) = client.recv_from(&mut reply).await.unwrap();
///     assert_eq!((&reply[..n], from), (&b"ping"[..], server));
///     tree.stop().await;
/// });
/// # }
/// ```
pub struct DatagramServer<R: Runtime, H> {
    name: String,
    bind: DatagramBind,
    handler: H,
    max_in_flight: usize,
    max_datagram_size: usize,
    options: DatagramOptions,
    service_options: Options,
    address: BoundAddr,
    _runtime: PhantomData<fn() -> R>,
}

impl<R: Runtime, H: DatagramHandler<R>> DatagramServer<R, H> {
    /// A server named `name` receiving on `bind` and running `handler` per datagram.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn demo<R: ginkgo_api::Runtime>() {
    /// use ginkgo_net::{Datagram, DatagramServer};
    ///
    /// let sink = DatagramServer::<R, _>::new("sink", "[::]:0", |_: Datagram<R>| async {})
    ///     .max_in_flight(64)
    ///     .max_datagram_size(1500);
    /// # }
    /// ```
    pub fn new(name: &str, bind: impl Into<DatagramBind>, handler: H) -> Self {
        Self {
            name: name.to_owned(),
            bind: bind.into(),
            handler,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            max_datagram_size: DEFAULT_MAX_DATAGRAM_SIZE,
            options: DatagramOptions::default(),
            service_options: Options::default(),
            address: BoundAddr::default(),
            _runtime: PhantomData,
        }
    }

    /// At most `limit` handlers at once (default [`DEFAULT_MAX_IN_FLIGHT`]; at least 1). At
    /// the limit the server stops reading until one finishes; datagrams wait in the kernel's
    /// receive buffer meanwhile.
    #[must_use]
    pub fn max_in_flight(mut self, limit: usize) -> Self {
        self.max_in_flight = limit.max(1);
        self
    }

    /// The largest payload handed to the handler, in bytes (default
    /// [`DEFAULT_MAX_DATAGRAM_SIZE`]; at least 1). A larger datagram is counted in
    /// `datagrams_truncated` and dropped, never handed on cut short.
    #[must_use]
    pub fn max_datagram_size(mut self, bytes: usize) -> Self {
        self.max_datagram_size = bytes.max(1);
        self
    }

    /// Sets up its socket as `options` say (applied at each start).
    #[must_use]
    pub fn socket_options(mut self, options: DatagramOptions) -> Self {
        self.options = options;
        self
    }

    /// The service's lifecycle options ([`Options`]); [`Options::stop_timeout`] bounds the
    /// graceful stop. Default: [`Options::default`].
    #[must_use]
    pub fn with_options(mut self, options: Options) -> Self {
        self.service_options = options;
        self
    }

    /// Sets only [`Options::stop_timeout`]: how long handlers in flight get to finish once the
    /// server stops (default 5 s). Those still running then are aborted.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn demo<R: ginkgo_api::Runtime>() {
    /// use std::time::Duration;
    /// use ginkgo_net::{Datagram, DatagramServer};
    ///
    /// let server = DatagramServer::<R, _>::new("quick", "127.0.0.1:0", |_: Datagram<R>| async {})
    ///     .stop_timeout(Duration::from_secs(1));
    /// # }
    /// ```
    #[must_use]
    pub fn stop_timeout(mut self, timeout: Duration) -> Self {
        self.service_options = self.service_options.stop_timeout(timeout);
        self
    }

    /// A handle to the bound address, known once the server has started and cleared once its
    /// socket has closed. [`BoundAddr::local_addr`] gives the UDP address;
    /// [`BoundAddr::get`] gives it as [`LocalAddr::Tcp`], the variant for IP addresses.
    pub fn address(&self) -> BoundAddr {
        self.address.clone()
    }
}

#[async_trait]
impl<R: Runtime, H: DatagramHandler<R>> Service for DatagramServer<R, H> {
    fn name(&self) -> &str {
        &self.name
    }

    fn options(&self) -> Options {
        self.service_options.clone()
    }

    async fn start(&mut self, ctx: &Context) -> Result<(), Error> {
        let (socket, registration) = self.bind.open_for::<R>(&self.options, ctx.path()).await?;
        let addr = socket.local_addr().map_err(|err| {
            ginkgo_api::io::with_context(err, |e| format!("the address of {}: {e}", self.bind))
        })?;
        let serving = Arc::new(Serving {
            socket,
            addr,
            replies: ctx.counter("replies_sent"),
            _registration: registration,
            _published: Published::new(&self.address, addr),
        });
        tracing::info!(service = ctx.path(), address = %addr, "receiving datagrams");
        let receive = Receive {
            serving,
            handler: self.handler.clone(),
            max_in_flight: self.max_in_flight,
            max_datagram_size: self.max_datagram_size,
            counters: Counters {
                received: ctx.counter("datagrams_received"),
                truncated: ctx.counter("datagrams_truncated"),
                in_flight: ctx.counter("datagrams_in_flight"),
                handler_errors: ctx.counter("handler_errors"),
                receive_errors: ctx.counter("receive_errors"),
            },
        };
        ctx.spawn("receive", receive.run(ctx.clone()));
        Ok(())
    }
}

/// The server's socket while it serves, shared by the receive loop and every [`Datagram`].
struct Serving<R: Runtime> {
    // Dropped first: the socket is closed before `_published` says so.
    socket: UdpSocket<R>,
    addr: SocketAddr,
    replies: Counter,
    /// Its entry in the table of sockets an upgrade hands on.
    _registration: handoff::Registration,
    _published: Published,
}

/// Publishes the address in a [`BoundAddr`] until dropped.
struct Published(BoundAddr);

impl Published {
    fn new(bound: &BoundAddr, addr: SocketAddr) -> Self {
        bound.set(Some(LocalAddr::Tcp(addr)));
        Self(bound.clone())
    }
}

impl Drop for Published {
    fn drop(&mut self) {
        self.0.set(None);
    }
}

#[derive(Clone)]
struct Counters {
    received: Counter,
    truncated: Counter,
    in_flight: Counter,
    handler_errors: Counter,
    receive_errors: Counter,
}

/// Holds a handler's place under `max_in_flight`, and counts it in flight, until dropped.
struct InFlight {
    _permit: SemaphoreGuardArc,
    gauge: Counter,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

/// The receive loop of one start of the server.
struct Receive<R: Runtime, H> {
    serving: Arc<Serving<R>>,
    handler: H,
    max_in_flight: usize,
    max_datagram_size: usize,
    counters: Counters,
}

impl<R: Runtime, H: DatagramHandler<R>> Receive<R, H> {
    /// Reads datagrams until the service of `ctx` stops, one owned task per datagram.
    async fn run(self, ctx: Context) {
        let Self {
            serving,
            handler,
            max_in_flight,
            max_datagram_size,
            counters,
        } = self;
        let shutdown = ctx.shutdown();
        let limit = Arc::new(Semaphore::new(max_in_flight));
        // One byte more than the limit: a datagram that fills it did not fit.
        let mut buf = vec![0u8; max_datagram_size.saturating_add(1)];
        let mut retries = Backoff::new(RECEIVE_BACKOFF.0, RECEIVE_BACKOFF.1, 0.1).retries();
        // The new process of an upgrade: the old one receives until the handover commits.
        if handoff::serving_held() && shutdown.run(handoff::serving_released()).await.is_none() {
            return;
        }
        loop {
            // Acquired before reading: at the limit the datagrams stay in the kernel's buffer.
            let Some(permit) = shutdown.run(limit.acquire_arc()).await else {
                break;
            };
            let Some(received) = shutdown.run(serving.socket.recv_from(&mut buf)).await else {
                break;
            };
            let (len, peer) = match received {
                Ok(received) => received,
                Err(err) => {
                    counters.receive_errors.inc();
                    drop(permit);
                    if is_about_one_peer(&err) {
                        tracing::debug!(service = %ctx.path(), %err, "receive failed for one peer");
                        continue;
                    }
                    let delay = retries.next_delay();
                    tracing::warn!(service = %ctx.path(), %err, ?delay, "receive failed; backing off");
                    if shutdown.run(ctx.sleep(delay)).await.is_none() {
                        break;
                    }
                    continue;
                }
            };
            retries.reset();
            counters.received.inc();
            if len > max_datagram_size {
                counters.truncated.inc();
                tracing::debug!(
                    service = %ctx.path(),
                    %peer,
                    max_datagram_size,
                    "dropped a datagram larger than max_datagram_size"
                );
                continue;
            }
            counters.in_flight.inc();
            let in_flight = InFlight {
                _permit: permit,
                gauge: counters.in_flight.clone(),
            };
            let datagram = Datagram {
                // Copied out at its length: a small datagram does not pin a 64 KiB buffer.
                payload: buf[..len].to_vec(),
                peer,
                shutdown: shutdown.clone(),
                serving: serving.clone(),
            };
            let handler = handler.clone();
            let errors = counters.handler_errors.clone();
            ctx.spawn(format!("datagram {peer}"), async move {
                // `call` runs inside the caught future: a handler that panics before
                // returning its future is contained too.
                let problem = run_handler(|| handler.call(datagram)).await;
                if let Some(problem) = problem {
                    errors.inc();
                    tracing::debug!(%peer, %problem, "datagram handler failed");
                }
                drop(in_flight);
            });
        }
        // The socket closes once the handlers in flight have dropped their datagrams too.
        drop(serving);
        tracing::debug!(service = %ctx.path(), "stopped receiving datagrams");
    }
}

/// Whether a receive error concerns one peer or one datagram (an ICMP error about a peer
/// that went away, or an interrupted call), so reading again at once is right; anything else
/// may repeat and is backed off.
fn is_about_one_peer(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}
