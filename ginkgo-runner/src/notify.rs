//! systemd integration: `sd_notify` messages and socket activation.

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// A connection to systemd's notification socket (`$NOTIFY_SOCKET`); a no-op without one.
#[derive(Debug)]
pub struct Notifier {
    socket: Option<(UnixDatagram, SocketAddr)>,
}

impl Notifier {
    /// Connects to `$NOTIFY_SOCKET` if it is set (a path, or `@name` for the abstract
    /// namespace).
    ///
    /// # Errors
    ///
    /// Fails when the variable names a socket that cannot be used.
    pub fn from_env() -> io::Result<Self> {
        let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
            return Ok(Self { socket: None });
        };
        let target = target.to_string_lossy().into_owned();
        let addr = match target.strip_prefix('@') {
            Some(name) => abstract_addr(name)?,
            None => SocketAddr::from_pathname(&target)?,
        };
        let socket = UnixDatagram::unbound()?;
        Ok(Self {
            socket: Some((socket, addr)),
        })
    }

    /// Whether systemd listens.
    pub fn is_enabled(&self) -> bool {
        self.socket.is_some()
    }

    /// Sends one message (newline-separated `KEY=VALUE` lines).
    pub fn send(&self, message: &str) {
        if let Some((socket, addr)) = &self.socket
            && let Err(err) = socket.send_to_addr(message.as_bytes(), addr)
        {
            tracing::warn!(%err, message, "sd_notify failed");
        }
    }

    /// `READY=1` with a status line.
    pub fn ready(&self, status: &str) {
        self.send(&format!(
            "READY=1\nSTATUS={status}\nMAINPID={}",
            std::process::id()
        ));
    }

    /// `RELOADING=1` with the `MONOTONIC_USEC` that systemd 253 and later require.
    pub fn reloading(&self) {
        self.send(&format!("RELOADING=1\nMONOTONIC_USEC={}", monotonic_usec()));
    }

    /// `STOPPING=1`.
    pub fn stopping(&self) {
        self.send("STOPPING=1\nSTATUS=stopping");
    }

    /// The watchdog interval asked for by `$WATCHDOG_USEC` (for this process, per
    /// `$WATCHDOG_PID`): keep-alives are sent at half of it.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.socket.as_ref()?;
        if let Ok(pid) = std::env::var("WATCHDOG_PID")
            && pid.trim() != std::process::id().to_string()
        {
            return None;
        }
        let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.trim().parse().ok()?;
        (usec > 0).then(|| Duration::from_micros(usec) / 2)
    }
}

#[cfg(target_os = "linux")]
fn abstract_addr(name: &str) -> io::Result<SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    SocketAddr::from_abstract_name(name.as_bytes())
}

#[cfg(not(target_os = "linux"))]
fn abstract_addr(name: &str) -> io::Result<SocketAddr> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        format!("abstract socket @{name} needs Linux"),
    ))
}

/// `CLOCK_MONOTONIC` in microseconds, as systemd reads it.
fn monotonic_usec() -> u64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let secs = u64::try_from(now.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(now.tv_nsec).unwrap_or(0);
    secs * 1_000_000 + nanos / 1_000
}

/// Listening sockets passed by socket activation (`$LISTEN_FDS` for this `$LISTEN_PID`),
/// taken once per process.
///
/// # Examples
///
/// ```no_run
/// # fn demo<R: ginkgo_api::Runtime>() -> std::io::Result<()> {
/// let mut inherited = ginkgo_runner::ListenFds::take();
/// if let Some(listener) = inherited.tcp(0).transpose() {
///     let std_listener = listener?;
///     let listener = ginkgo_api::net::TcpListener::<R>::from_std(std_listener)?;
/// }
/// # Ok(())
/// # }
/// ```
pub struct ListenFds(listenfd::ListenFd);

impl ListenFds {
    /// Takes the inherited sockets from the environment (clearing the variables, so child
    /// processes do not see them).
    pub fn take() -> Self {
        Self(listenfd::ListenFd::from_env())
    }

    /// How many sockets were passed.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether none were passed.
    pub fn is_empty(&self) -> bool {
        self.0.len() == 0
    }

    /// Takes socket `index` as a TCP listener; `Ok(None)` if absent or already taken.
    ///
    /// # Errors
    ///
    /// Fails if the socket at `index` is not a TCP listener.
    pub fn tcp(&mut self, index: usize) -> io::Result<Option<std::net::TcpListener>> {
        self.0.take_tcp_listener(index)
    }

    /// Takes socket `index` as a Unix-domain listener; `Ok(None)` if absent or taken.
    ///
    /// # Errors
    ///
    /// Fails if the socket at `index` is not a Unix stream listener.
    pub fn unix(&mut self, index: usize) -> io::Result<Option<std::os::unix::net::UnixListener>> {
        self.0.take_unix_listener(index)
    }
}

impl std::fmt::Debug for ListenFds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenFds")
            .field("len", &self.len())
            .finish()
    }
}
