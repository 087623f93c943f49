//! The runner, tested on real child processes: the `hello` example as a daemon (start, status,
//! reload, stop, restart, log), pid file safety (second start, stale file, symlink), privilege
//! drop, signals (SIGTERM within stop_timeout, a second SIGINT, SIGUSR1 log reopening), and
//! the systemd notification protocol and socket activation (done by the test itself, and by
//! systemd-socket-activate).

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use command_fds::{CommandFdExt, FdMapping};
use ginkgo_api::signal::Signal;
use ginkgo_tests::process::{Running, alive, dir, hello, proc_stat_fields, rundir_with_config};
use tempfile::TempDir;

/// A `hello` daemon in a directory of its own, driven through its command line.
struct Daemon {
    rundir: TempDir,
    config: PathBuf,
    extra: Vec<String>,
}

impl Daemon {
    fn new(config: &str) -> Self {
        let (rundir, config) = rundir_with_config(config);
        Self {
            rundir,
            config,
            extra: Vec::new(),
        }
    }

    fn with(mut self, assignment: &str) -> Self {
        self.extra.push(assignment.to_owned());
        self
    }

    fn cmd(&self, args: &[&str]) -> Output {
        let mut command = Command::new(hello());
        command
            .arg("-c")
            .arg(&self.config)
            .arg("-s")
            .arg(format!("rundir={}", self.rundir.path().display()))
            .env_remove("NOTIFY_SOCKET");
        for assignment in &self.extra {
            command.arg("-s").arg(assignment);
        }
        command.args(args).output().expect("run hello")
    }

    fn pidfile(&self) -> PathBuf {
        self.rundir.path().join("hello.pid")
    }

    fn socket(&self) -> PathBuf {
        self.rundir.path().join("hello.sock")
    }

    fn logfile(&self) -> PathBuf {
        self.rundir.path().join("hello.log")
    }

    fn pid(&self) -> u32 {
        std::fs::read_to_string(self.pidfile())
            .expect("pid file")
            .trim()
            .parse()
            .expect("a pid")
    }

    /// Waits until the log file contains `needle` (after `skip` bytes).
    fn wait_log(&self, needle: &str, skip: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let log = std::fs::read_to_string(self.logfile()).unwrap_or_default();
            if log.get(skip..).is_some_and(|tail| tail.contains(needle)) {
                return;
            }
            assert!(Instant::now() < deadline, "log has no {needle:?}:\n{log}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log_len(&self) -> usize {
        std::fs::read_to_string(self.logfile()).map_or(0, |log| log.len())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // This runs before the fields drop: the daemon is gone before its directory (pid file,
        // socket, log) is removed. A daemon that does not stop is killed rather than left.
        let _ = self.cmd(&["stop"]);
        if self.cmd(&["status"]).status.code() == Some(0)
            && let Ok(text) = std::fs::read_to_string(self.pidfile())
            && let Ok(pid) = text.trim().parse::<u32>()
        {
            kill(pid);
        }
    }
}

fn out(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn err(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn proc_field(pid: u32, field: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .map(|v| v.trim().to_owned())
        .unwrap_or_default()
}

/// Sends SIGKILL to `pid` and waits (up to 10 s) until it is gone.
fn kill(pid: u32) {
    use rustix::process::{Pid, Signal, kill_process};
    if let Some(target) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
        let _ = kill_process(target, Signal::KILL);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
}

const FAST: &str = "[hello]\nmessage = \"first\"\nrate_per_minute = 1200\n";

#[test]
fn daemon_start_status_reload_stop() {
    let daemon = Daemon::new(FAST);
    let started = daemon.cmd(&["start"]);
    assert_eq!(started.status.code(), Some(0), "{}", err(&started));
    let pid = daemon.pid();
    assert_eq!(out(&started), format!("hello started (pid {pid})\n"));

    // Files: pid file 0644 and locked, control socket 0600.
    let mode = |p: PathBuf| std::fs::metadata(p).expect("exists").permissions().mode() & 0o777;
    assert_eq!(mode(daemon.pidfile()), 0o644);
    assert_eq!(mode(daemon.socket()), 0o600);
    assert!(
        std::fs::metadata(daemon.socket())
            .expect("socket")
            .file_type()
            .is_socket()
    );

    // A real daemon: its own session (not its leader), no terminal, in rundir, umask 0027.
    let fields = proc_stat_fields(pid);
    let (session, tty) = (fields[3].as_str(), fields[4].as_str());
    assert_ne!(session, pid.to_string(), "not a session leader");
    assert_ne!(session, std::process::id().to_string());
    assert_eq!(tty, "0", "no controlling terminal");
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/cwd")).expect("cwd"),
        daemon.rundir.path()
    );
    assert_eq!(proc_field(pid, "Umask"), "0027");

    let again = daemon.cmd(&["start"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        err(&again).contains(&format!("already running (pid {pid})")),
        "{}",
        err(&again)
    );

    let status = daemon.cmd(&["status"]);
    assert_eq!(status.status.code(), Some(0));
    let tree = out(&status);
    assert!(tree.contains(&format!("pid {pid}")), "{tree}");
    assert!(
        tree.lines()
            .any(|l| l.starts_with("Hello") && l.contains("ready")),
        "{tree}"
    );

    daemon.wait_log("first", 0);
    std::fs::write(&daemon.config, FAST.replace("first", "second")).expect("edit");
    let reloaded = daemon.cmd(&["reload"]);
    assert_eq!(reloaded.status.code(), Some(0), "{}", err(&reloaded));
    assert_eq!(out(&reloaded), "hello: reloaded; changed: hello.message\n");
    daemon.wait_log("second", 0);

    std::fs::write(&daemon.config, FAST.replace("1200", "\"fast\"")).expect("break");
    let rejected = daemon.cmd(&["reload"]);
    assert_ne!(rejected.status.code(), Some(0));
    assert!(
        err(&rejected).contains("the old one stays in force"),
        "{}",
        err(&rejected)
    );
    assert!(err(&rejected).contains("expected u32, found string \"fast\""));
    assert!(alive(pid));
    let mark = daemon.log_len();
    daemon.wait_log("second", mark);

    let log = daemon.cmd(&["log"]);
    assert!(out(&log).contains("INFO hello: second"), "{}", out(&log));

    let stopped = daemon.cmd(&["stop"]);
    assert_eq!(stopped.status.code(), Some(0), "{}", err(&stopped));
    assert_eq!(out(&stopped), format!("hello stopped (pid {pid})\n"));
    assert!(!alive(pid));
    assert!(!daemon.pidfile().exists(), "pid file removed");
    assert!(!daemon.socket().exists(), "control socket removed");
    let status = daemon.cmd(&["status"]);
    assert_eq!(status.status.code(), Some(3));
    assert_eq!(
        daemon.cmd(&["stop"]).status.code(),
        Some(0),
        "stop when not running is fine"
    );
}

/// `restart` of a running daemon is an upgrade (a new process takes over the sockets, the old
/// one exits); of a stopped one, a start.
#[test]
fn restart_upgrades_a_running_daemon_and_starts_a_stopped_one() {
    let daemon = Daemon::new(FAST);
    assert_eq!(daemon.cmd(&["start"]).status.code(), Some(0));
    let old = daemon.pid();
    let restarted = daemon.cmd(&["restart"]);
    assert_eq!(restarted.status.code(), Some(0), "{}", err(&restarted));
    let new = daemon.pid();
    assert_ne!(old, new);
    assert!(!alive(old));
    assert!(
        out(&restarted).contains(&format!("hello upgraded (pid {old} -> {new})")),
        "{}",
        out(&restarted)
    );
    assert_eq!(daemon.cmd(&["stop"]).status.code(), Some(0));
    let started = daemon.cmd(&["restart"]);
    assert_eq!(started.status.code(), Some(0), "{}", err(&started));
    assert!(
        out(&started).contains(&format!("hello started (pid {})", daemon.pid())),
        "{}",
        out(&started)
    );
}

#[test]
fn stale_pid_file_is_recovered() {
    let daemon = Daemon::new(FAST);
    std::fs::write(daemon.pidfile(), "999999\n").expect("stale pid file");
    assert_eq!(
        daemon.cmd(&["status"]).status.code(),
        Some(3),
        "a stale file is not running"
    );
    let started = daemon.cmd(&["start"]);
    assert_eq!(started.status.code(), Some(0), "{}", err(&started));
    daemon.wait_log("recovered a stale pid file", 0);
    assert_ne!(daemon.pid(), 999_999);
}

#[test]
fn symlinked_pid_file_is_refused() {
    let daemon = Daemon::new(FAST);
    let target = daemon.rundir.path().join("precious");
    std::fs::write(&target, "keep me").expect("target");
    std::os::unix::fs::symlink(&target, daemon.pidfile()).expect("symlink");
    let started = daemon.cmd(&["start"]);
    assert_ne!(started.status.code(), Some(0));
    assert!(
        err(&started).contains("is a symbolic link; refusing to follow it"),
        "{}",
        err(&started)
    );
    assert_eq!(std::fs::read_to_string(&target).expect("target"), "keep me");
}

#[test]
fn privileges_are_dropped_after_start() {
    let missing = Daemon::new(FAST).with("user=no-such-user-here");
    let started = missing.cmd(&["start"]);
    assert_ne!(started.status.code(), Some(0));
    assert!(
        err(&started).contains("user \"no-such-user-here\" does not exist"),
        "{}",
        err(&started)
    );

    let daemon = Daemon::new(FAST).with("user=nobody");
    let started = daemon.cmd(&["start"]);
    if !nix_is_root() {
        // Not root: the drop cannot happen, and start says why instead of running as is.
        assert_ne!(started.status.code(), Some(0));
        assert!(err(&started).contains("needs root"), "{}", err(&started));
        return;
    }
    assert_eq!(started.status.code(), Some(0), "{}", err(&started));
    let pid = daemon.pid();
    let nobody = "65534";
    let uids: Vec<String> = proc_field(pid, "Uid")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        uids, [nobody; 4],
        "real, effective, saved and filesystem uid"
    );
    let gids: Vec<String> = proc_field(pid, "Gid")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert!(gids.iter().all(|g| g != "0"), "no root gid left: {gids:?}");
    assert!(
        !proc_field(pid, "Groups")
            .split_whitespace()
            .any(|g| g == "0"),
        "no root group"
    );
    daemon.wait_log("dropped privileges", 0);
    let stopped = daemon.cmd(&["stop"]);
    assert_eq!(
        stopped.status.code(),
        Some(0),
        "root stops it through the socket: {}",
        err(&stopped)
    );
    assert!(!alive(pid));
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

#[test]
fn sigusr1_reopens_the_log_file() {
    let daemon = Daemon::new(FAST);
    assert_eq!(daemon.cmd(&["start"]).status.code(), Some(0));
    daemon.wait_log("first", 0);
    let rotated = daemon.rundir.path().join("hello.log.1");
    std::fs::rename(daemon.logfile(), &rotated).expect("rotate");
    Signal::Usr1.send_to(daemon.pid()).expect("SIGUSR1");
    daemon.wait_log("log file reopened", 0);
    daemon.wait_log("first", 0);
    assert!(
        std::fs::read_to_string(&rotated)
            .expect("old log")
            .contains("first")
    );
}

fn stubborn() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_stubborn"))
}

#[test]
fn sigterm_stops_within_stop_timeout() {
    let scratch = dir();
    let rundir = format!("rundir={}", scratch.path().display());
    let running = Running::start(&stubborn(), &["-s", &rundir, "-s", "stop_timeout=1s"], &[]);
    running.expect_line("ready");
    let began = Instant::now();
    running.signal(Signal::Term);
    running.expect_line("stop hook started");
    running.expect_line("did not stop within stop_timeout");
    let status = running.wait();
    let took = began.elapsed();
    assert_eq!(status.code(), Some(1), "a stop cut short is a failure");
    assert!(
        took >= Duration::from_secs(1),
        "waited for stop_timeout: {took:?}"
    );
    assert!(
        took < Duration::from_secs(8),
        "bounded by stop_timeout: {took:?}"
    );

    // A stop that fits in the budget exits cleanly.
    let running = Running::start(
        &stubborn(),
        &[
            "-s",
            &rundir,
            "-s",
            "stop_timeout=5s",
            "-s",
            "stubborn.stop_delay=100ms",
        ],
        &[],
    );
    running.expect_line("ready");
    running.signal(Signal::Term);
    running.expect_line("stop hook finished");
    assert_eq!(running.wait().code(), Some(0));
}

#[test]
fn second_sigint_exits_at_once() {
    let scratch = dir();
    let rundir = format!("rundir={}", scratch.path().display());
    let running = Running::start(&stubborn(), &["-s", &rundir, "-s", "stop_timeout=60s"], &[]);
    running.expect_line("ready");
    running.signal(Signal::Int);
    running.expect_line("stop hook started");
    let began = Instant::now();
    running.signal(Signal::Int);
    running.expect_line("second SIGINT");
    assert_eq!(running.wait().code(), Some(130));
    assert!(began.elapsed() < Duration::from_secs(10));
}

#[test]
fn notify_socket_gets_ready_reloading_stopping_in_order() {
    let rundir = dir();
    let socket_path = rundir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("bind notify socket");
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let notify = socket_path.display().to_string();
    let running = Running::start(
        &hello(),
        &["-s", &format!("rundir={}", rundir.path().display())],
        &[("NOTIFY_SOCKET", &notify), ("WATCHDOG_USEC", "200000")],
    );
    let pid = running.child.id();
    let mut messages: Vec<String> = Vec::new();
    let mut watchdogs = 0;
    let mut receive_until = |want: &str, messages: &mut Vec<String>| {
        let mut buf = [0u8; 4096];
        loop {
            let n = socket.recv(&mut buf).expect("a notification");
            let message = String::from_utf8_lossy(&buf[..n]).into_owned();
            if message == "WATCHDOG=1" {
                watchdogs += 1;
                continue;
            }
            let done = message.starts_with(want);
            messages.push(message);
            if done {
                return;
            }
        }
    };
    receive_until("READY=1", &mut messages);
    running.signal(Signal::Hup);
    receive_until("READY=1", &mut messages);
    running.signal(Signal::Term);
    receive_until("STOPPING=1", &mut messages);
    assert_eq!(running.wait().code(), Some(0));

    let kinds: Vec<&str> = messages
        .iter()
        .map(|m| m.lines().next().unwrap_or(""))
        .collect();
    assert_eq!(
        kinds,
        ["READY=1", "RELOADING=1", "READY=1", "STOPPING=1"],
        "{messages:?}"
    );
    assert!(
        messages[0].contains(&format!("MAINPID={pid}")),
        "{}",
        messages[0]
    );
    assert!(messages[0].contains("STATUS="), "{}", messages[0]);
    let usec: u64 = messages[1]
        .lines()
        .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
        .expect("RELOADING=1 carries MONOTONIC_USEC")
        .parse()
        .expect("a number");
    assert!(usec > 0);
    assert!(watchdogs >= 1, "WATCHDOG=1 keep-alives");
}

#[test]
fn logtail_follows_the_log_file() {
    let daemon = Daemon::new(FAST);
    assert_eq!(daemon.cmd(&["start"]).status.code(), Some(0));
    daemon.wait_log("first", 0);
    let mut command = Command::new(hello());
    command
        .arg("-c")
        .arg(&daemon.config)
        .arg("-s")
        .arg(format!("rundir={}", daemon.rundir.path().display()))
        .arg("logtail")
        .stdout(std::process::Stdio::piped());
    let mut tail = command.spawn().expect("logtail");
    let stdout = tail.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    // New lines keep arriving while it follows: more than the 20 it starts with.
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.len() < 40 && Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_secs(1)) {
            seen.push(line);
        }
    }
    // Reaped before any assertion can fail, so a failure leaves no follower running.
    let _ = tail.kill();
    let _ = tail.wait();
    assert!(seen.len() >= 40, "logtail showed {} lines", seen.len());
    for line in &seen {
        assert!(line.contains(" INFO "), "a log line: {line}");
    }
}

#[test]
fn json_log_lines() {
    let daemon = Daemon::new(FAST).with("logformat=json");
    assert_eq!(daemon.cmd(&["start"]).status.code(), Some(0));
    daemon.wait_log("\"message\":\"first\"", 0);
    let log = std::fs::read_to_string(daemon.logfile()).expect("log");
    let line = log
        .lines()
        .find(|l| l.contains("\"first\""))
        .expect("a greeting line");
    assert!(line.starts_with('{') && line.ends_with('}'), "{line}");
    assert!(line.contains("\"level\":\"INFO\""), "{line}");
}

/// A panic in a service's task, with JSON logs: written as one JSON log line (message, where,
/// which thread) instead of the default hook's text, so the log stays JSON throughout; the
/// service fails and the program exits 1, naming the panic.
#[test]
fn panics_are_log_lines() {
    let rundir = ginkgo_tests::process::dir();
    let out = Command::new(stubborn())
        .args(["-s", &format!("rundir={}", rundir.path().display())])
        .args([
            "-s",
            "logformat=json",
            "-s",
            "stubborn.panic=true",
            "-s",
            "stop_timeout=1s",
        ])
        .args(["-s", "stubborn.stop_delay=0s", "run"])
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("run stubborn");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let log = String::from_utf8_lossy(&out.stderr);
    for line in log.lines() {
        assert!(
            line.starts_with('{') && line.ends_with('}'),
            "not JSON: {line}\n{log}"
        );
    }
    let panic = log
        .lines()
        .find(|line| line.contains("\"message\":\"panicked\""))
        .unwrap_or_else(|| panic!("no panic line: {log}"));
    assert!(panic.contains("a test panic, as planned"), "{panic}");
    assert!(panic.contains("stubborn.rs:"), "{panic}");
    assert!(log.contains("task \\\"doomed\\\" panicked"), "{log}");
}

/// Asks `GET /` on `port` until a 200 answer comes (up to 20 s); returns the whole response.
fn http_get_ok(port: u16) -> String {
    use std::io::{Read, Write};
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut response = String::new();
            let _ = stream.read_to_string(&mut response);
            if response.starts_with("HTTP/1.1 200") {
                return response;
            }
        }
        assert!(Instant::now() < deadline, "no answer on port {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Binds a listening socket on 127.0.0.1 and hands it to `command` as systemd does: as
/// descriptor 3, with `LISTEN_FDS=1`. Returns its port. `LISTEN_PID` is the caller's business.
fn pass_listener(command: &mut Command) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    command
        .env("LISTEN_FDS", "1")
        // Left over from whatever started the tests, they would change what the child reads.
        .env_remove("LISTEN_FDNAMES")
        .env_remove("LISTEN_FDS_FIRST_FD")
        .fd_mappings(vec![FdMapping {
            parent_fd: listener.into(),
            child_fd: 3,
        }])
        .expect("one mapping");
    port
}

/// The `http` example's arguments: its own rundir, and its configured address on `bind_port`.
fn http_args(rundir: &TempDir, bind_port: u16) -> [String; 4] {
    [
        "-s".to_owned(),
        format!("rundir={}", rundir.path().display()),
        "-s".to_owned(),
        format!("http.bind=127.0.0.1:{bind_port}"),
    ]
}

#[test]
fn socket_activation_serves_the_inherited_listener() {
    // The test does what systemd does, with no systemd tool: the socket is the test's, passed
    // as descriptor 3. LISTEN_PID must be the server's own pid, which a parent knows only after
    // the spawn; the `activate` helper sets it to its own pid and then execs the server, which
    // keeps that pid.
    let rundir = dir();
    let configured = ginkgo_tests::process::free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_activate"));
    command
        .arg(ginkgo_tests::process::example("http"))
        // Another port: only the inherited socket can answer on the test's port.
        .args(http_args(&rundir, configured));
    let port = pass_listener(&mut command);
    let running = Running::spawn(command);
    let pid = running.child.id();

    let listening = running.expect_line("HTTP server listening");
    assert!(
        listening.contains(&format!("addr=127.0.0.1:{port}")),
        "serves the inherited socket: {listening}"
    );
    // The exec kept the pid: the server runs as the process its LISTEN_PID named.
    running.expect_line(&format!("ready pid={pid} "));
    let response = http_get_ok(port);
    assert!(
        response.contains("hello from ginkgo on tokio"),
        "{response}"
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", configured)).is_err(),
        "the configured address is not bound under socket activation"
    );
    running.signal(Signal::Term);
    assert!(running.wait().success(), "a clean stop");
}

#[test]
fn socket_activation_for_another_pid_is_ignored() {
    // LISTEN_PID names this test process, not the server: the sockets are someone else's, so
    // the server binds its configured address. Without this the helper above could set any
    // LISTEN_PID and the test would still pass.
    let rundir = dir();
    let configured = ginkgo_tests::process::free_port();
    let mut command = Command::new(ginkgo_tests::process::example("http"));
    command
        .args(http_args(&rundir, configured))
        .env("LISTEN_PID", std::process::id().to_string());
    let inherited = pass_listener(&mut command);
    let running = Running::spawn(command);

    let listening = running.expect_line("HTTP server listening");
    assert!(
        listening.contains(&format!("addr=127.0.0.1:{configured}")),
        "binds its own address, not port {inherited}: {listening}"
    );
    let response = http_get_ok(configured);
    assert!(
        response.contains("hello from ginkgo on tokio"),
        "{response}"
    );
    running.signal(Signal::Term);
    assert!(running.wait().success(), "a clean stop");
}

/// Needs systemd's tools: built with the `systemd` feature, which `.ci/run` turns on.
#[cfg(feature = "systemd")]
#[test]
fn socket_activation_by_systemd_socket_activate() {
    // systemd's own tool passes the listening socket as LISTEN_FDS, as systemd does: a check
    // of the test above against the real thing. Not a skip when the tool is missing: it fails,
    // saying what to install.
    let tool = ginkgo_tests::process::on_path("systemd-socket-activate").unwrap_or_else(|| {
        panic!(
            "systemd-socket-activate is not on PATH: install systemd (.ci/run does); \
             socket_activation_serves_the_inherited_listener checks the same without it"
        )
    });
    let port = ginkgo_tests::process::free_port();
    let rundir = dir();
    let http = ginkgo_tests::process::example("http");
    let mut command = Command::new(tool);
    command
        .arg("-l")
        .arg(format!("127.0.0.1:{port}"))
        .arg(http)
        // Another port: only the inherited socket can answer on the test's port.
        .args(http_args(&rundir, ginkgo_tests::process::free_port()));
    let running = Running::spawn(command);
    running.expect_line("Listening on");
    let response = http_get_ok(port);
    assert!(
        response.contains("hello from ginkgo on tokio"),
        "{response}"
    );
    running.signal(Signal::Term);
    assert!(running.wait().success(), "a clean stop");
}

#[test]
fn commands_fall_back_to_signals_without_the_control_socket() {
    let daemon = Daemon::new(FAST);
    assert_eq!(daemon.cmd(&["start"]).status.code(), Some(0));
    let pid = daemon.pid();
    daemon.wait_log("first", 0);
    std::fs::remove_file(daemon.socket()).expect("remove the control socket");

    std::fs::write(&daemon.config, FAST.replace("first", "signalled")).expect("edit");
    let reloaded = daemon.cmd(&["reload"]);
    assert_eq!(reloaded.status.code(), Some(0), "{}", err(&reloaded));
    assert!(
        out(&reloaded).contains(&format!("sent SIGHUP to pid {pid}")),
        "{}",
        out(&reloaded)
    );
    daemon.wait_log("signalled", 0);

    let status = daemon.cmd(&["status"]);
    assert_eq!(status.status.code(), Some(0));
    assert!(out(&status).contains(&format!("running (pid {pid}); no control socket")));

    let stopped = daemon.cmd(&["stop"]);
    assert_eq!(
        stopped.status.code(),
        Some(0),
        "SIGTERM instead: {}",
        err(&stopped)
    );
    assert!(!alive(pid));
}
