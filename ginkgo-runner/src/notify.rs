//! systemd integration: `sd_notify` messages, socket activation and the file descriptor store.

use std::collections::BTreeSet;
use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixDatagram;
use std::sync::{LazyLock, Mutex, MutexGuard};
use std::time::Duration;

use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketAddrUnix};

/// A connection to systemd's notification socket (`$NOTIFY_SOCKET`); a no-op without one.
#[derive(Debug)]
pub struct Notifier {
    socket: Option<(UnixDatagram, SocketAddrUnix)>,
    /// Whether the listening sockets go into systemd's file descriptor store at each "ready".
    fd_store: bool,
    /// The names this process's sockets are (or, passed back by systemd, may be) stored under.
    stored: Mutex<BTreeSet<String>>,
}

impl Notifier {
    /// Connects to `$NOTIFY_SOCKET` if it is set (a path, or `@name` for the abstract
    /// namespace).
    ///
    /// # Errors
    ///
    /// Fails when the variable names a socket that cannot be used.
    pub fn from_env() -> io::Result<Self> {
        let mut notifier = Self {
            socket: None,
            fd_store: false,
            stored: Mutex::default(),
        };
        let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
            return Ok(notifier);
        };
        let target = target.to_string_lossy().into_owned();
        let addr = match target.strip_prefix('@') {
            Some(name) => abstract_addr(name)?,
            None => SocketAddrUnix::new(target.as_str())?,
        };
        notifier.socket = Some((UnixDatagram::unbound()?, addr));
        Ok(notifier)
    }

    /// Keeps the listening sockets in systemd's file descriptor store when `keep` is true:
    /// [`store_listeners`](Self::store_listeners), which the runner calls before each "ready",
    /// stores each (`FDSTORE=1`) under its service path (`FDNAME=`), replacing what was stored
    /// under that name before, and removes the names no server serves any more. When the process crashes
    /// and systemd starts it again, systemd passes them back as `$LISTEN_FDS` with their
    /// names, and each server adopts its own: the listening socket never closed, so no
    /// connection attempt was refused in between. The unit needs `FileDescriptorStoreMax=` of
    /// at least the number of listeners.
    pub fn with_fd_store(mut self, keep: bool) -> Self {
        self.fd_store = keep;
        if keep {
            // What systemd passed back by name may be in its store: a name no server takes
            // any more is removed at the first "ready".
            let mut stored = self.stored();
            stored.extend(
                activation()
                    .names
                    .iter()
                    .filter(|name| is_store_name(name))
                    .cloned(),
            );
        }
        self
    }

    /// Whether [`store_listeners`](Self::store_listeners) stores: the file descriptor store
    /// is asked for and systemd listens.
    pub fn keeps_fd_store(&self) -> bool {
        self.fd_store && self.socket.is_some()
    }

    /// Whether systemd listens.
    pub fn is_enabled(&self) -> bool {
        self.socket.is_some()
    }

    /// Sends one message (newline-separated `KEY=VALUE` lines).
    pub fn send(&self, message: &str) {
        if let Some((socket, addr)) = &self.socket
            && let Err(err) = send_with(socket, addr, message, None)
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

    /// Brings the file descriptor store in line with `listeners` (by service path), if they
    /// are [kept there](Self::with_fd_store): each name is removed (`FDSTOREREMOVE=1`) and
    /// stored again with the socket now serving under it, so that a listener that moved to
    /// another address replaces the old one instead of joining it; names no longer among
    /// `listeners` are removed. Problems are logged: the sockets serve on regardless.
    pub fn store_listeners(&self, listeners: &[(String, OwnedFd)]) {
        let Some((socket, addr)) = &self.socket.as_ref().filter(|_| self.fd_store) else {
            return;
        };
        let mut stored = self.stored();
        for (name, _) in listeners {
            stored.insert(name.clone());
        }
        for name in stored.iter() {
            let removed = format!("FDSTOREREMOVE=1\nFDNAME={name}");
            if is_store_name(name)
                && let Err(err) = send_with(socket, addr, &removed, None)
            {
                tracing::warn!(%err, name, "cannot remove a socket from systemd's file descriptor store");
            }
        }
        stored.clear();
        for (name, listener) in listeners {
            if !is_store_name(name) {
                tracing::warn!(
                    service = name,
                    "not kept in systemd's file descriptor store: a name there is at most 255 \
                     printable ASCII characters without ':'"
                );
                continue;
            }
            let message = format!("FDSTORE=1\nFDNAME={name}");
            match send_with(socket, addr, &message, Some(listener.as_fd())) {
                Ok(()) => {
                    stored.insert(name.clone());
                }
                Err(err) => tracing::warn!(
                    %err,
                    service = name,
                    "cannot keep the listener in systemd's file descriptor store"
                ),
            }
        }
    }

    fn stored(&self) -> MutexGuard<'_, BTreeSet<String>> {
        // A set of names: consistent after any panic.
        self.stored
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
/// Sends `message` to systemd at `addr`, with `fd` attached (`SCM_RIGHTS`) if given.
fn send_with(
    socket: &UnixDatagram,
    addr: &SocketAddrUnix,
    message: &str,
    fd: Option<std::os::fd::BorrowedFd<'_>>,
) -> io::Result<()> {
    let fds: Vec<_> = fd.into_iter().collect();
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(io::Error::other("the descriptor does not fit the message"));
    }
    let sent = rustix::net::sendmsg_addr(
        socket,
        addr,
        &[IoSlice::new(message.as_bytes())],
        &mut control,
        SendFlags::NOSIGNAL,
    )?;
    if sent != message.len() {
        return Err(io::Error::other("the message was cut short"));
    }
    Ok(())
}

/// Whether systemd accepts `name` as an `FDNAME=`: at most 255 printable ASCII characters,
/// without ':' (the separator of `$LISTEN_FDNAMES`). Not "unknown" nor "stored" either:
/// systemd's names for sockets passed without a name.
fn is_store_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name.bytes().all(|b| b.is_ascii_graphic() && b != b':')
        && name != "unknown"
        && name != "stored"
}

#[cfg(target_os = "linux")]
fn abstract_addr(name: &str) -> io::Result<SocketAddrUnix> {
    Ok(SocketAddrUnix::new_abstract_name(name.as_bytes())?)
}

#[cfg(not(target_os = "linux"))]
fn abstract_addr(name: &str) -> io::Result<SocketAddrUnix> {
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

/// The sockets systemd passed (socket activation, or the file descriptor store given back),
/// read from the environment once per process and shared: every [`ListenFds`] handle and the
/// runner take from this one table, each socket once.
struct Activation {
    /// By position, as systemd numbers them from descriptor 3; `None` once taken.
    sockets: Vec<Option<OwnedFd>>,
    /// `$LISTEN_FDNAMES`, by position ("unknown" where unnamed).
    names: Vec<String>,
}

fn activation() -> MutexGuard<'static, Activation> {
    static ACTIVATION: LazyLock<Mutex<Activation>> = LazyLock::new(|| {
        let names_text = std::env::var("LISTEN_FDNAMES").unwrap_or_default();
        let mut fds = listenfd::ListenFd::from_env();
        let sockets: Vec<Option<OwnedFd>> = (0..fds.len())
            .map(|index| {
                // Each check leaves the descriptor in place when it fails.
                let taken = fds
                    .take_tcp_listener(index)
                    .map(|socket| socket.map(OwnedFd::from))
                    .or_else(|_| fds.take_unix_listener(index).map(|s| s.map(OwnedFd::from)))
                    .or_else(|_| fds.take_udp_socket(index).map(|s| s.map(OwnedFd::from)))
                    .or_else(|_| fds.take_unix_datagram(index).map(|s| s.map(OwnedFd::from)));
                match taken {
                    Ok(socket) => socket,
                    Err(err) => {
                        tracing::warn!(index, %err, "ignoring a descriptor systemd passed");
                        None
                    }
                }
            })
            .collect();
        // A socket without a name is "unknown", as systemd calls it.
        let mut names: Vec<String> = names_text
            .split(':')
            .filter(|_| !names_text.is_empty())
            .map(str::to_owned)
            .collect();
        names.resize(sockets.len(), "unknown".to_owned());
        Mutex::new(Activation { sockets, names })
    });
    // Every change is one `take` or one put back: consistent after any panic.
    ACTIVATION
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Takes every socket systemd passed under a name (`FileDescriptorName=` of a socket unit,
/// or `FDNAME=` of the file descriptor store) not taken yet, with its name: the servers whose
/// service path is that name adopt it.
pub(crate) fn take_named() -> Vec<(String, OwnedFd)> {
    let mut activation = activation();
    let Activation { sockets, names } = &mut *activation;
    sockets
        .iter_mut()
        .zip(names.iter())
        .filter(|(socket, name)| socket.is_some() && is_store_name(name))
        .filter_map(|(socket, name)| Some((name.clone(), socket.take()?)))
        .collect()
}

/// Puts back sockets [`take_named`] took and no server adopted, for [`ListenFds`].
pub(crate) fn give_back(untaken: Vec<(String, OwnedFd)>) {
    let mut activation = activation();
    let Activation { sockets, names } = &mut *activation;
    for (name, socket) in untaken {
        if let Some(slot) = sockets
            .iter_mut()
            .zip(names.iter())
            .find(|(slot, slot_name)| slot.is_none() && **slot_name == name)
            .map(|(slot, _)| slot)
        {
            *slot = Some(socket);
        }
    }
}

/// Listening sockets passed by socket activation (`$LISTEN_FDS` for this `$LISTEN_PID`),
/// each taken once per process.
///
/// A socket passed under a name (`FileDescriptorName=` in the socket unit) that is a
/// service's path is adopted by that service's server without any code: the runner hands it
/// over as an upgrade would. This handle is for the others, by position.
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
#[non_exhaustive]
pub struct ListenFds {}

impl ListenFds {
    /// The sockets systemd passed to this process (read from the environment at the first
    /// use, clearing `$LISTEN_FDS` and `$LISTEN_PID` so child processes do not see them).
    pub fn take() -> Self {
        drop(activation());
        Self {}
    }

    /// How many sockets were passed (taken or not).
    pub fn len(&self) -> usize {
        activation().sockets.len()
    }

    /// Whether none were passed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The name systemd gave socket `index` (`FileDescriptorName=`; "unknown" if none).
    pub fn name(&self, index: usize) -> Option<String> {
        activation().names.get(index).cloned()
    }

    /// Takes socket `index` as a TCP listener; `Ok(None)` if absent or already taken.
    ///
    /// # Errors
    ///
    /// Fails if the socket at `index` is not a TCP listener; it stays in place.
    pub fn tcp(&mut self, index: usize) -> io::Result<Option<std::net::TcpListener>> {
        take_if(index, "TCP listener", |fd| {
            matches!(
                rustix::net::sockopt::socket_domain(fd)?,
                rustix::net::AddressFamily::INET | rustix::net::AddressFamily::INET6
            )
            .then_some(())
            .ok_or(rustix::io::Errno::INVAL)
        })
        .map(|socket| socket.map(std::net::TcpListener::from))
    }

    /// Takes socket `index` as a Unix-domain listener; `Ok(None)` if absent or taken.
    ///
    /// # Errors
    ///
    /// Fails if the socket at `index` is not a Unix stream listener; it stays in place.
    pub fn unix(&mut self, index: usize) -> io::Result<Option<std::os::unix::net::UnixListener>> {
        take_if(index, "Unix stream listener", |fd| {
            (rustix::net::sockopt::socket_domain(fd)? == rustix::net::AddressFamily::UNIX)
                .then_some(())
                .ok_or(rustix::io::Errno::INVAL)
        })
        .map(|socket| socket.map(std::os::unix::net::UnixListener::from))
    }
}

/// Takes socket `index` if it is a listening stream socket that `check` accepts.
fn take_if(
    index: usize,
    kind: &str,
    check: impl FnOnce(std::os::fd::BorrowedFd<'_>) -> rustix::io::Result<()>,
) -> io::Result<Option<OwnedFd>> {
    let mut activation = activation();
    let Some(Some(socket)) = activation.sockets.get(index) else {
        return Ok(None);
    };
    let fd = socket.as_fd();
    let fits = rustix::net::sockopt::socket_type(fd)
        .and_then(|kind| {
            (kind == rustix::net::SocketType::STREAM)
                .then_some(())
                .ok_or(rustix::io::Errno::INVAL)
        })
        .and_then(|()| check(fd))
        .and_then(|()| {
            rustix::net::sockopt::socket_acceptconn(fd)?
                .then_some(())
                .ok_or(rustix::io::Errno::INVAL)
        });
    if fits.is_err() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("socket {index} passed by systemd is not a {kind}"),
        ));
    }
    Ok(activation.sockets[index].take())
}
impl std::fmt::Debug for ListenFds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenFds")
            .field("len", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::is_store_name;

    #[test]
    fn store_names_are_what_systemd_accepts() {
        assert!(is_store_name("app/echo"));
        assert!(is_store_name(&"a".repeat(255)));
        assert!(!is_store_name(&"a".repeat(256)));
        // ':' separates the names in $LISTEN_FDNAMES.
        assert!(!is_store_name("app:echo"));
        assert!(!is_store_name("app echo"));
        assert!(!is_store_name("caf\u{e9}"));
        assert!(!is_store_name(""));
        // systemd's own names for sockets passed without one.
        assert!(!is_store_name("unknown"));
        assert!(!is_store_name("stored"));
    }
}
