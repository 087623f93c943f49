//! Helpers shared by the cases: the test driver with its watchdog, drop probes, polling, and
//! the recording service [`probe::Probe`].

pub mod bus;
pub mod certs;
pub mod discovery;
pub mod kv;
pub mod kv_settings;
pub mod leader;
pub mod probe;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use ginkgo_api::Runtime;

/// How long one case may run before the whole test process is aborted. A hung case would
/// otherwise hang CI; aborting names the case and fails loudly.
pub const CASE_LIMIT: Duration = Duration::from_secs(120);

/// Runs one case on runtime `R` under a watchdog.
pub fn run<R: Runtime, F: Future<Output = ()>>(name: &str, case: F) {
    raise_fd_limit();
    let (done, finished) = mpsc::channel::<()>();
    let label = format!("{}::{name}", R::NAME);
    let watchdog = std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = finished.recv_timeout(CASE_LIMIT) {
            // Written to the stream itself, not with `eprintln!`: the test harness captures
            // what the macros print, and the abort would lose it.
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                format!(
                    "conformance case {label} did not finish within {CASE_LIMIT:?}; aborting\n"
                )
                .as_bytes(),
            );
            std::process::abort();
        }
    });
    ginkgo_api::block_on::<R, _>(case);
    drop(done);
    let _ = watchdog.join();
}

/// Lifts the soft open-file limit to the hard limit: the 1,000-connection case needs about
/// 2,000 descriptors and some machines start with a soft limit of 1,024.
fn raise_fd_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        // Best effort: if it fails, the case that needs it reports its own error.
        let _ = setrlimit(Resource::Nofile, limit);
    }
}

/// A flag that is set when the probe is dropped: proves that a future was really dropped.
#[derive(Debug)]
pub struct DropProbe(Arc<AtomicBool>);

impl DropProbe {
    /// A probe and the flag it sets when dropped.
    pub fn new() -> (Self, Arc<AtomicBool>) {
        let flag = Arc::new(AtomicBool::new(false));
        (Self(flag.clone()), flag)
    }
}

impl Drop for DropProbe {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Polls `condition` every millisecond until it holds; panics after `limit`.
pub async fn eventually<R: Runtime>(what: &str, limit: Duration, condition: impl Fn() -> bool) {
    let start = std::time::Instant::now();
    while !condition() {
        assert!(
            start.elapsed() < limit,
            "{what}: still false after {limit:?}"
        );
        ginkgo_api::time::sleep::<R>(Duration::from_millis(1)).await;
    }
}

/// A path for a Unix socket in a fresh temporary directory, and the directory: keep it alive
/// while the socket is used; dropping it removes the socket file too, a failed case included.
pub fn socket_path(tag: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("ginkgo-sock-")
        .tempdir()
        .expect("create directory");
    let path = dir.path().join(format!("{tag}.sock"));
    (dir, path)
}

/// The counter `name` in the snapshot of `tree`'s root; panics, listing the counters there
/// are, when it has none of that name.
pub fn counter(tree: &ginkgo_api::service::ServiceHandle, name: &str) -> u64 {
    let snapshot = tree.snapshot();
    snapshot
        .counters
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| *v)
        .unwrap_or_else(|| panic!("no counter {name} in {:?}", snapshot.counters))
}

/// An echo handler: everything read is written back until the peer closes or the server
/// stops (then it closes between reads). The `echo_on` test program serves it too.
pub async fn echo<R: Runtime>(mut conn: ginkgo_net::Connection<R>) -> std::io::Result<()> {
    use ginkgo_api::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 8192];
    loop {
        let Some(read) = conn.shutdown.run(conn.stream.read(&mut buf)).await else {
            return Ok(());
        };
        let n = read?;
        if n == 0 {
            return Ok(());
        }
        conn.stream.write_all(&buf[..n]).await?;
    }
}
