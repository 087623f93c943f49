//! Helpers for the process-level tests: build and run the example programs as children.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError, mpsc};
use std::time::{Duration, Instant};

use ginkgo_api::signal::Signal;

/// Builds the `hello` example (a no-op when `cargo test` already did) and returns its path.
pub fn hello() -> PathBuf {
    example("hello")
}

/// Builds the facade's example `name` (a no-op when `cargo test` already did) and returns its
/// path.
pub fn example(name: &str) -> PathBuf {
    static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let exe = std::env::current_exe().expect("test path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    let mut built = BUILT.lock().unwrap_or_else(PoisonError::into_inner);
    if !built.iter().any(|b| b == name) {
        let mut cargo = Command::new(env!("CARGO"));
        cargo.args(["build", "--quiet", "-p", "ginkgo", "--example", name]);
        if profile_dir.ends_with("release") {
            cargo.arg("--release");
        }
        let status = cargo.status().expect("run cargo");
        assert!(status.success(), "building the {name} example failed");
        built.push(name.to_owned());
    }
    profile_dir.join("examples").join(name)
}

/// A free port on 127.0.0.1 (free when asked; bind it soon).
pub fn free_port() -> u16 {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    probe.local_addr().expect("addr").port()
}

/// A unique temporary file holding `text`.
pub fn file(text: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("ginkgo-proc-{}-{n}.toml", std::process::id()));
    std::fs::write(&path, text).expect("write file");
    path
}

/// A fresh temporary directory.
pub fn dir() -> PathBuf {
    let path = file("").with_extension("d");
    let _ = std::fs::remove_file(path.with_extension("toml"));
    std::fs::create_dir_all(&path).expect("create directory");
    path
}

/// The fields of `/proc/PID/stat` after the command name (which may hold spaces), so
/// `fields[0]` is the state, `fields[3]` the session, `fields[11]` utime (see `proc(5)`).
pub fn proc_stat_fields(pid: u32) -> Vec<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    stat.rsplit(')')
        .next()
        .expect("fields after the command name")
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// A running program whose standard error arrives on a channel, line by line.
pub struct Running {
    /// The child process.
    pub child: Child,
    lines: mpsc::Receiver<String>,
}

impl Running {
    /// Starts `program` with `args` and extra environment.
    pub fn start(program: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(program);
        command
            .args(args)
            .env_remove("HELLO_HELLO__MESSAGE")
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("spawn");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Self { child, lines }
    }

    /// Waits (up to 20 s) for a line containing `needle`; returns it.
    pub fn expect_line(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(line) => seen.push(line),
                Err(_) => break,
            }
        }
        panic!("no line with {needle:?}; saw:\n{}", seen.join("\n"));
    }

    /// Sends `signal` to the child.
    pub fn signal(&self, signal: Signal) {
        signal.send_to(self.child.id()).expect("send signal");
    }

    /// Waits (up to 20 s) for the child to exit.
    pub fn wait(mut self) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the program did not exit");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // A failed test must not leave its child running.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
