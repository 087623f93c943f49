//! Helpers for the process-level tests: build and run the example programs as children.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, PoisonError, mpsc};
use std::time::{Duration, Instant};

use ginkgo_api::signal::Signal;
use tempfile::{TempDir, TempPath};

/// Builds the `hello` example (a no-op when `cargo test` already did) and returns its path.
pub fn hello() -> PathBuf {
    example("hello")
}

/// Builds the facade's example `name` (a no-op when `cargo test` already did) and returns its
/// path.
pub fn example(name: &str) -> PathBuf {
    example_with(name, "")
}

/// Like [`example`], built with the facade's `features` (comma-separated) on top of its
/// defaults: the cluster example with `nats`, say.
pub fn example_with(name: &str, features: &str) -> PathBuf {
    static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let exe = std::env::current_exe().expect("test path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    let mut built = BUILT.lock().unwrap_or_else(PoisonError::into_inner);
    if !built.iter().any(|b| b == name) {
        // `--workspace`: features resolve as in `cargo test --workspace`, which has built the
        // example already. `-p ginkgo` alone resolves them differently (fewer features on tokio,
        // hyper, serde, ...) and rebuilt most of the dependency tree: 100 s of CI.
        let mut cargo = Command::new(env!("CARGO"));
        cargo.args(["build", "--quiet", "--workspace", "--example", name]);
        for feature in features.split(',').filter(|f| !f.is_empty()) {
            cargo.args(["--features", &format!("ginkgo/{feature}")]);
        }
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

/// A temporary file holding `text`, removed when the returned path is dropped (a failed test
/// included).
pub fn file(text: &str) -> TempPath {
    let mut file = tempfile::Builder::new()
        .prefix("ginkgo-proc-")
        .suffix(".toml")
        .tempfile()
        .expect("create file");
    file.write_all(text.as_bytes()).expect("write file");
    file.into_temp_path()
}

/// A fresh temporary directory, removed with everything in it when dropped. A child process
/// that writes into it must be reaped first: declare the directory before the child.
pub fn dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("ginkgo-proc-")
        .tempdir()
        .expect("create directory")
}

/// A run directory of its own holding `hello.toml` with `config`: the directory (removed when
/// dropped) and the file's path.
pub fn rundir_with_config(config: &str) -> (TempDir, PathBuf) {
    let rundir = dir();
    let path = rundir.path().join("hello.toml");
    std::fs::write(&path, config).expect("write the config file");
    (rundir, path)
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

/// Whether `pid` runs (a zombie does not). Never panics: drops call it.
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|status| {
        status
            .lines()
            .find_map(|line| line.strip_prefix("State:"))
            .is_some_and(|state| !state.trim().starts_with('Z'))
    })
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
        command.args(args);
        for (key, value) in env {
            command.env(key, value);
        }
        Self::spawn(command)
    }

    /// Starts a prepared `command`, with its standard input and output on `/dev/null` and its
    /// standard error read line by line. The command is dropped once spawned, and with it the
    /// parent's copies of any descriptors it was given.
    pub fn spawn(mut command: Command) -> Self {
        // What the test runner's own environment may hold must not steer the child, unless the
        // test set it on purpose.
        for key in ["HELLO_HELLO__MESSAGE", "NOTIFY_SOCKET"] {
            if !command.get_envs().any(|(name, _)| name == key) {
                command.env_remove(key);
            }
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
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
    pub fn wait(self) -> ExitStatus {
        self.wait_with_lines().0
    }

    /// Like [`Running::wait`], with the lines of standard error not yet looked at (for
    /// failure messages).
    pub fn wait_with_lines(mut self) -> (ExitStatus, Vec<String>) {
        let status = self.exit_status();
        (status, self.lines.try_iter().collect())
    }

    fn exit_status(&mut self) -> ExitStatus {
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

/// `name` as found on `PATH`, for the checks against real tools.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}
