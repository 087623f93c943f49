//! An `echo_on` daemon (the runner and an echo server, see `src/bin/echo_on.rs`) in a
//! directory of its own, and the clients that load it: for the process cases of upgrades and
//! prefork workers.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::process::{alive, rundir_with_config};
use ginkgo_api::signal::Signal;
use tempfile::TempDir;

/// An `echo_on` daemon in a directory of its own, on one backend.
pub struct Daemon {
    /// Its run directory (pid file, control socket, log), removed at the end.
    pub rundir: TempDir,
    /// Its configuration file.
    pub config: PathBuf,
    /// The backend it runs on.
    pub backend: &'static str,
    /// The program file it runs.
    pub program: PathBuf,
}

impl Daemon {
    /// The `program` (the `echo_on` test binary) on `backend` with `config` as its file.
    pub fn new(program: &Path, backend: &'static str, config: &str) -> Self {
        let (rundir, config) = rundir_with_config(config);
        Self {
            rundir,
            config,
            backend,
            program: program.to_owned(),
        }
    }

    /// Runs the program with `args`, its config file and run directory, on its backend.
    pub fn cmd(&self, args: &[&str]) -> Output {
        Command::new(&self.program)
            .arg("-c")
            .arg(&self.config)
            .arg("-s")
            .arg(format!("rundir={}", self.rundir.path().display()))
            .args(args)
            .env("GINKGO_TEST_BACKEND", self.backend)
            .env_remove("NOTIFY_SOCKET")
            .output()
            .expect("run echo_on")
    }

    /// `start`: succeeds; the daemon's pid.
    pub fn start(&self) -> u32 {
        let started = self.cmd(&["start"]);
        assert_eq!(started.status.code(), Some(0), "start: {}", text(&started));
        self.pid()
    }

    /// The pid file.
    pub fn pidfile(&self) -> PathBuf {
        self.rundir.path().join("echo.pid")
    }

    /// The control socket.
    pub fn socket(&self) -> PathBuf {
        self.rundir.path().join("echo.sock")
    }

    /// The pid in the pid file (read again for a moment while it is being rewritten).
    pub fn pid(&self) -> u32 {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let text = std::fs::read_to_string(self.pidfile()).expect("pid file");
            match text.trim().parse() {
                Ok(pid) => return pid,
                Err(err) if Instant::now() > deadline => panic!("pid file {text:?}: {err}"),
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }

    /// Replaces the config file.
    pub fn write_config(&self, config: &str) {
        std::fs::write(&self.config, config).expect("write the config");
    }

    /// `upgrade`: succeeds, the pid file then names a new live process, the old one is gone,
    /// and `status` answers from the new one.
    pub fn upgrade(&self) -> u32 {
        let old = self.pid();
        let upgraded = self.cmd(&["upgrade"]);
        assert_eq!(
            upgraded.status.code(),
            Some(0),
            "upgrade: {}",
            text(&upgraded)
        );
        let new = self.pid();
        assert_ne!(new, old, "the pid file still names the old process");
        assert!(
            text(&upgraded).contains(&format!("upgraded (pid {old} -> {new})")),
            "{}",
            text(&upgraded)
        );
        assert!(!alive(old), "the old process {old} still runs");
        assert!(alive(new), "the new process {new} does not run");
        let status = self.cmd(&["status"]);
        assert!(
            text(&status).starts_with(&format!("pid {new}\n")),
            "status: {}",
            text(&status)
        );
        assert!(self.socket().exists(), "the control socket file is gone");
        new
    }

    /// The log file so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.rundir.path().join("echo.log")).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // Before the directory goes: stop it, and kill what does not stop.
        let _ = self.cmd(&["stop"]);
        if let Ok(pid) = std::fs::read_to_string(self.pidfile())
            && let Ok(pid) = pid.trim().parse::<u32>()
            && alive(pid)
        {
            let _ = Signal::Term.send_to(pid);
        }
    }
}

/// Standard output and error of `output`.
pub fn text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr)
}

/// A config file with the echo server on `port`, and `extra` lines in `[echo]`.
pub fn config(port: u16, extra: &str) -> String {
    format!("[echo]\nbind = \"127.0.0.1:{port}\"\n{extra}")
}

/// One message echoed on `stream`, checked byte for byte.
pub fn round_trip(stream: &mut TcpStream, message: &[u8]) -> io::Result<()> {
    stream.write_all(message)?;
    let mut echoed = vec![0; message.len()];
    stream.read_exact(&mut echoed)?;
    if echoed != message {
        return Err(io::Error::other("the echo differs from what was sent"));
    }
    Ok(())
}

/// What the clients saw while they ran.
#[derive(Debug, Default)]
pub struct Seen {
    /// Messages echoed byte for byte.
    pub echoed: u64,
    /// Connection attempts refused (or otherwise failed): must stay 0.
    pub refused: u64,
    /// Messages whose connection closed before their echo came back (the old process closes
    /// connections between messages when it stops); each was sent again on a new connection.
    pub resent: u64,
    /// Connections opened.
    pub connections: u64,
    /// Fresh connections that failed their one message: must stay empty. Each says which
    /// message, the error and when (since the clients started), to find in the daemon's log.
    pub failed: Vec<String>,
}

/// Clients until `stop` is set: one connecting anew for every message, one keeping its
/// connection until the server closes it (then it connects again and resends). Every message
/// is distinct, so an echo from the wrong stream would show.
pub fn traffic(port: u16, stop: Arc<AtomicBool>) -> JoinHandle<Seen> {
    std::thread::spawn(move || {
        let began = std::time::Instant::now();
        let mut seen = Seen::default();
        let connect = |seen: &mut Seen| match TcpStream::connect(("127.0.0.1", port)) {
            Ok(stream) => {
                seen.connections += 1;
                stream
                    .set_read_timeout(Some(Duration::from_secs(10)))
                    .expect("timeout");
                Some(stream)
            }
            Err(err) => {
                eprintln!("connect to {port}: {err}");
                seen.refused += 1;
                None
            }
        };
        let mut kept: Option<TcpStream> = None;
        let mut n = 0u64;
        while !stop.load(Ordering::SeqCst) {
            n += 1;
            let message = format!("message {n} {}\n", "x".repeat((n % 97) as usize));
            // A fresh connection for this message.
            if let Some(mut fresh) = connect(&mut seen) {
                let sent = began.elapsed();
                let local = fresh.local_addr().map(|addr| addr.port()).unwrap_or(0);
                match round_trip(&mut fresh, message.as_bytes()) {
                    Ok(()) => seen.echoed += 1,
                    Err(err) => seen.failed.push(format!(
                        "message {n} on a fresh connection from port {local}, sent at {sent:?}: \
                         {err} after {:?}",
                        began.elapsed() - sent
                    )),
                }
            }
            // The kept connection: resend on a new one if the old server closed it.
            loop {
                if kept.is_none() {
                    kept = connect(&mut seen);
                }
                let Some(stream) = kept.as_mut() else { break };
                match round_trip(stream, message.as_bytes()) {
                    Ok(()) => {
                        seen.echoed += 1;
                        break;
                    }
                    Err(_) => {
                        seen.resent += 1;
                        kept = None;
                    }
                }
            }
        }
        seen
    })
}

/// One `GET /` on `stream` (HTTP/1.1 keep-alive); whether the server said it closes the
/// connection after it.
pub fn http_get(stream: &mut TcpStream) -> io::Result<bool> {
    stream.write_all(b"GET / HTTP/1.1\r\nHost: upgrade.test\r\n\r\n")?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed before a response",
            ));
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    if !head.starts_with("http/1.1 200 ") {
        return Err(io::Error::other(format!("not a 200: {head}")));
    }
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse().ok())
        .ok_or_else(|| io::Error::other(format!("no content-length: {head}")))?;
    let mut body = vec![0; length];
    stream.read_exact(&mut body)?;
    if body != b"hello" {
        return Err(io::Error::other("not the body sent"));
    }
    Ok(head.contains("\r\nconnection: close\r\n"))
}

/// A notify socket of our own in the daemon's run directory, as systemd's `NOTIFY_SOCKET`.
pub struct Notify {
    socket: std::os::unix::net::UnixDatagram,
    path: PathBuf,
}

impl Notify {
    /// Binds it in `daemon`'s run directory.
    pub fn new(daemon: &Daemon) -> Self {
        let path = daemon.rundir.path().join("notify.sock");
        let socket = std::os::unix::net::UnixDatagram::bind(&path).expect("notify socket");
        socket
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        Self { socket, path }
    }

    /// The next notification (waits up to 20 s).
    pub fn receive(&self) -> String {
        let mut buf = [0u8; 4096];
        let n = self.socket.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    /// The next notification and the descriptor that came with it (`SCM_RIGHTS`), if any;
    /// waits up to 20 s.
    pub fn receive_with_fd(&self) -> (String, Option<std::os::fd::OwnedFd>) {
        use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
        let mut buf = [0u8; 4096];
        let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(4))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let received = rustix::net::recvmsg(
            &self.socket,
            &mut [io::IoSliceMut::new(&mut buf)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        )
        .expect("a notification");
        let mut fds = Vec::new();
        for message in control.drain() {
            if let RecvAncillaryMessage::ScmRights(rights) = message {
                fds.extend(rights);
            }
        }
        assert!(fds.len() <= 1, "one descriptor per message at most");
        let text = String::from_utf8_lossy(&buf[..received.bytes]).into_owned();
        (text, fds.pop())
    }

    /// Its path, for `NOTIFY_SOCKET`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether nothing more arrives within `wait`.
    pub fn quiet(&self, wait: Duration) -> bool {
        self.socket.set_read_timeout(Some(wait)).expect("timeout");
        let mut buf = [0u8; 4096];
        let quiet = self.socket.recv(&mut buf).is_err();
        self.socket
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        quiet
    }

    /// Runs `daemon` in the foreground (`run`) with this socket as its `NOTIFY_SOCKET`.
    pub fn run(&self, daemon: &Daemon) -> crate::process::Running {
        let rundir = format!("rundir={}", daemon.rundir.path().display());
        let config = daemon.config.display().to_string();
        crate::process::Running::start(
            &daemon.program,
            &["-c", &config, "-s", &rundir, "run"],
            &[
                ("NOTIFY_SOCKET", &self.path.display().to_string()),
                ("GINKGO_TEST_BACKEND", daemon.backend),
            ],
        )
    }
}

/// A connection to 127.0.0.1:`port` while no process serves it (its listening socket kept
/// elsewhere: queued, not refused), with `SENT_WHILE_DOWN` sent on it; read the echo from it
/// once a process serves again.
pub fn send_while_down(port: u16) -> TcpStream {
    let mut waiting = TcpStream::connect(("127.0.0.1", port)).expect("queued, not refused");
    waiting
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    waiting.write_all(SENT_WHILE_DOWN).expect("send");
    waiting
}

/// What [`send_while_down`] sends.
pub const SENT_WHILE_DOWN: &[u8; 23] = b"sent while nothing ran\n";

/// systemd's file descriptor store, played by the test, for `daemon` (set up with
/// `fd_store = true` and its echo server on `port`): once ready, it stores its listener under
/// its service path; killed with SIGKILL, the listener lives on in the store, so a client that
/// connects while nothing runs is queued, not refused; started again with the stored socket
/// passed back by name (`LISTEN_FDS`, `LISTEN_FDNAMES`) through `activate` (the test helper
/// that sets `LISTEN_PID`), as systemd does, the new process adopts it (binding the port anew
/// would fail: the socket is open) and answers that client. `when_ready` runs once the first
/// process is ready, and its result goes to `when_killed` once that process is gone (a
/// prefork master's workers must be gone too before the client connects).
pub fn fd_store_survives_a_crash<T>(
    daemon: &Daemon,
    port: u16,
    activate: &Path,
    when_ready: impl FnOnce() -> T,
    when_killed: impl FnOnce(T),
) {
    use command_fds::{CommandFdExt, FdMapping};
    let notify = Notify::new(daemon);
    let stored_by = |pid: u32| {
        let (removed, none) = notify.receive_with_fd();
        assert_eq!(removed, "FDSTOREREMOVE=1\nFDNAME=app/echo");
        assert!(none.is_none(), "a removal carries no descriptor");
        let (stored, fd) = notify.receive_with_fd();
        assert_eq!(stored, "FDSTORE=1\nFDNAME=app/echo");
        let listener = std::net::TcpListener::from(fd.expect("the listener, with the message"));
        assert_eq!(listener.local_addr().expect("bound").port(), port);
        let ready = notify.receive();
        assert!(
            ready.starts_with("READY=1") && ready.contains(&format!("MAINPID={pid}")),
            "{ready}"
        );
        listener
    };
    let mut running = notify.run(daemon);
    let stored = stored_by(running.child.id());
    let ready = when_ready();
    running.child.kill().expect("SIGKILL");
    assert!(!running.wait().success(), "killed");
    when_killed(ready);

    let mut waiting = send_while_down(port);

    let mut command = Command::new(activate);
    command
        .arg(&daemon.program)
        .arg("-c")
        .arg(&daemon.config)
        .arg("-s")
        .arg(format!("rundir={}", daemon.rundir.path().display()))
        .arg("run")
        .env("GINKGO_TEST_BACKEND", daemon.backend)
        .env("NOTIFY_SOCKET", notify.path())
        .env("LISTEN_FDS", "1")
        .env("LISTEN_FDNAMES", "app/echo")
        .env_remove("LISTEN_FDS_FIRST_FD")
        .fd_mappings(vec![FdMapping {
            parent_fd: stored.into(),
            child_fd: 3,
        }])
        .expect("one mapping");
    let restarted = crate::process::Running::spawn(command);
    restarted.expect_line("listening on the socket handed over");
    drop(stored_by(restarted.child.id()));
    let mut echoed = [0u8; 23];
    waiting
        .read_exact(&mut echoed)
        .expect("the echo, from the restarted process");
    assert_eq!(&echoed, SENT_WHILE_DOWN);
    restarted.signal(Signal::Term);
    assert_eq!(restarted.wait().code(), Some(0));
}
