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
            // With every thread's state: a stall once hung two cases at once, and where the
            // workers were blocked is what would tell why.
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                format!(
                    "conformance case {label} did not finish within {CASE_LIMIT:?}; aborting\n\
                     the process's threads:\n{}",
                    threads_report()
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

/// One line per thread of this process: its id, name, scheduler state, the kernel function it
/// sleeps in and the system call it is blocked in (number first), from `/proc/self/task`.
pub fn threads_report() -> String {
    let read = |path: std::path::PathBuf| {
        std::fs::read_to_string(path)
            .map(|text| text.trim().to_owned())
            .unwrap_or_else(|err| format!("({err})"))
    };
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return "  (no /proc/self/task)\n".to_owned();
    };
    let mut lines: Vec<String> = tasks
        .flatten()
        .map(|task| {
            let dir = task.path();
            let stat = read(dir.join("stat"));
            // The state follows the name, which is in parentheses and may hold spaces.
            let state = stat
                .rsplit_once(") ")
                .and_then(|(_, rest)| rest.split(' ').next())
                .unwrap_or("?")
                .to_owned();
            let syscall = read(dir.join("syscall"));
            let syscall = syscall.split(' ').take(3).collect::<Vec<_>>().join(" ");
            format!(
                "  {} {:16} {state} wchan={} syscall={syscall}",
                task.file_name().to_string_lossy(),
                read(dir.join("comm")),
                read(dir.join("wchan")),
            )
        })
        .collect();
    lines.sort();
    lines.join("\n") + "\n"
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

#[cfg(test)]
mod tests {
    #[test]
    fn the_threads_report_names_a_blocked_thread() {
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let (started, up) = std::sync::mpsc::channel::<()>();
        let blocked = std::thread::Builder::new()
            .name("report-probe".into())
            .spawn(move || {
                started.send(()).unwrap();
                let _ = wait.recv();
            })
            .unwrap();
        up.recv().unwrap();
        // Until it sleeps in the kernel, the thread may still be running.
        let line = (0..200)
            .find_map(|_| {
                let report = super::threads_report();
                let line = report
                    .lines()
                    .find(|l| l.contains("report-probe"))?
                    .to_owned();
                if line.contains(" S wchan=") {
                    return Some(line);
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
                None
            })
            .expect("the blocked thread, sleeping, in the report");
        // futex(2) is number 202 on x86-64 (other architectures number it differently).
        if cfg!(target_arch = "x86_64") {
            assert!(line.contains("syscall=202 "), "blocked in futex: {line}");
        }
        release.send(()).unwrap();
        blocked.join().unwrap();
    }
}
