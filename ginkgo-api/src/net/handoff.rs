//! Listening sockets handed from one process of a program to the next, for a zero-downtime
//! upgrade: the process-wide table the servers and the runner share.
//!
//! - A server that listens registers its socket under its service path while it serves
//!   ([`register`]; the registration ends when the returned guard drops).
//! - On an upgrade, the runner of the old process sends a duplicate of every registered socket
//!   ([`registered`]) to the new process, which puts them in the table of sockets to adopt
//!   ([`inherit`]) before its tree starts.
//! - A server starting in the new process asks for its socket by its path ([`take`]) and binds
//!   only when none was handed over (or the one handed over no longer matches its address).
//!
//! A new process does not serve the sockets it adopted until the handover is committed
//! ([`hold_serving`] / [`release_serving`]): until then the old process alone accepts, and if
//! the new one gives up, nobody it accepted is cut off.
//!
//! While a socket is shared by two processes its Unix socket file must outlive either, so
//! servers leave socket files in place while [`keep_socket_files`] says so: in the new process
//! until it is ready (if it fails, the files are the old process's), and in the old one once it
//! has handed over.
//!
//! # Examples
//!
//! ```
//! use ginkgo_api::net::handoff;
//!
//! let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
//! let registration = handoff::register("Root/web", &listener)?;
//! let handed = handoff::registered()?;
//! assert!(handed.iter().any(|(name, _)| name == "Root/web"));
//! drop(registration);
//! assert!(!handoff::registered()?.iter().any(|(name, _)| name == "Root/web"));
//! # std::io::Result::Ok(())
//! ```

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex, MutexGuard};

/// The table: sockets handed to this process and not yet taken, and those its servers serve.
#[derive(Default)]
struct Table {
    inherited: HashMap<String, OwnedFd>,
    /// By registration number: two registrations of one name (a server restarting before its
    /// old socket closed) do not end each other.
    serving: HashMap<u64, (String, OwnedFd)>,
}

fn table() -> MutexGuard<'static, Table> {
    static TABLE: LazyLock<Mutex<Table>> = LazyLock::new(Mutex::default);
    // Every change is one insert or remove, so a lock poisoned by a panic elsewhere still
    // guards a consistent table.
    TABLE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

static KEEP_SOCKET_FILES: AtomicBool = AtomicBool::new(false);
static SERVING_HELD: AtomicBool = AtomicBool::new(false);
/// Notified when [`SERVING_HELD`] changes.
static SERVING_CHANGED: event_listener::Event = event_listener::Event::new();
static NEXT_REGISTRATION: AtomicU64 = AtomicU64::new(0);

/// Adds `sockets` (by service path) to the sockets this process's servers adopt at start.
pub fn inherit(sockets: impl IntoIterator<Item = (String, OwnedFd)>) {
    table().inherited.extend(sockets);
}

/// Takes the socket handed over for the service at `path`, if any; it is then the caller's.
pub fn take(path: &str) -> Option<OwnedFd> {
    table().inherited.remove(path)
}

/// Takes every socket handed over and not taken yet, with its path: those no server of this
/// process asked for.
pub fn take_untaken() -> Vec<(String, OwnedFd)> {
    table().inherited.drain().collect()
}

/// Registers `socket` as the listening socket of the service at `path` until the returned
/// guard drops, so that an upgrade hands it on. The table keeps a duplicate of it.
///
/// # Errors
///
/// Fails if the socket cannot be duplicated (out of file descriptors).
pub fn register(path: &str, socket: &impl AsFd) -> io::Result<Registration> {
    let duplicate = socket.as_fd().try_clone_to_owned()?;
    let id = NEXT_REGISTRATION.fetch_add(1, Ordering::Relaxed);
    table().serving.insert(id, (path.to_owned(), duplicate));
    Ok(Registration { id })
}

/// Duplicates of every registered socket, with the path of its service.
///
/// # Errors
///
/// Fails if a socket cannot be duplicated (out of file descriptors).
pub fn registered() -> io::Result<Vec<(String, OwnedFd)>> {
    table()
        .serving
        .values()
        .map(|(path, socket)| Ok((path.clone(), socket.try_clone()?)))
        .collect()
}

/// Whether servers must leave their Unix socket files in place when they close their sockets:
/// another process of the program serves (or may serve) the same sockets.
pub fn keep_socket_files() -> bool {
    KEEP_SOCKET_FILES.load(Ordering::Acquire)
}

/// Sets [`keep_socket_files`].
pub fn set_keep_socket_files(keep: bool) {
    KEEP_SOCKET_FILES.store(keep, Ordering::Release);
}

/// Holds back the servers of this process: accept loops stop accepting (those waiting in
/// `accept` stop waiting; connections already accepted go on) until [`release_serving`]. The
/// new process of an upgrade is held until the old one commits the handover; the old one is
/// held from then on, so that it accepts nothing more while it drains.
pub fn hold_serving() {
    SERVING_HELD.store(true, Ordering::Release);
    SERVING_CHANGED.notify(usize::MAX);
}

/// Lets the servers held back by [`hold_serving`] serve.
pub fn release_serving() {
    SERVING_HELD.store(false, Ordering::Release);
    SERVING_CHANGED.notify(usize::MAX);
}

/// Whether servers are held back ([`hold_serving`]).
pub fn serving_held() -> bool {
    SERVING_HELD.load(Ordering::Acquire)
}

/// Completes once servers are not held back.
pub async fn serving_released() {
    serving_is(false).await;
}

/// Completes once servers are held back.
pub async fn serving_stopped() {
    serving_is(true).await;
}

async fn serving_is(held: bool) {
    while serving_held() != held {
        let changed = SERVING_CHANGED.listen();
        if serving_held() == held {
            return;
        }
        changed.await;
    }
}

/// A socket's registration in the table; dropping it ends the registration.
#[derive(Debug)]
#[must_use = "the registration ends when this is dropped"]
pub struct Registration {
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        table().serving.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inherited_sockets_are_taken_once() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let fd = OwnedFd::from(listener.try_clone().unwrap());
        inherit([("Root/test-take".to_owned(), fd)]);
        let taken = take("Root/test-take").expect("handed over");
        let adopted = std::net::TcpListener::from(taken);
        assert_eq!(
            adopted.local_addr().unwrap(),
            listener.local_addr().unwrap()
        );
        assert!(take("Root/test-take").is_none());
        let other = OwnedFd::from(listener);
        inherit([("Root/test-untaken".to_owned(), other)]);
        let rest = take_untaken();
        assert!(rest.iter().any(|(path, _)| path == "Root/test-untaken"));
        assert!(take("Root/test-untaken").is_none());
    }

    #[test]
    fn registrations_of_one_path_end_separately() {
        let a = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let b = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let first = register("Root/test-twice", &a).unwrap();
        let second = register("Root/test-twice", &b).unwrap();
        drop(first);
        let left: Vec<_> = registered()
            .unwrap()
            .into_iter()
            .filter(|(path, _)| path == "Root/test-twice")
            .map(|(_, fd)| std::net::TcpListener::from(fd).local_addr().unwrap())
            .collect();
        assert_eq!(left, vec![b.local_addr().unwrap()]);
        drop(second);
    }
}
