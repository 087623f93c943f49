//! Zero-downtime upgrade: the running process starts the program file anew and hands it its
//! listening sockets, the control socket and the pid file (with its lock); once the new
//! process reports that its tree is ready, the old one stops accepting, drains and exits.
//!
//! **How the sockets travel:** over `SCM_RIGHTS` on a Unix socket pair that is the new
//! process's standard input, in one message with their names, and the new process writes its
//! start-up report ("ready PID" or "error: ...") back on the same pair, as a daemon reports to
//! `start`. Chosen over inheritance by descriptor number (`LISTEN_FDS`-style) because we start
//! the new process ourselves: the pair needs no rendezvous, the names arrive with the sockets
//! in one message (nothing to keep in step between environment variables and descriptor
//! numbers), and neither side needs `unsafe` code to move descriptors to fixed numbers or to
//! adopt a raw descriptor number. Chosen over the control socket because the new process
//! would have to find and authenticate the old one, and the control socket itself is one of
//! the things handed over.
//!
//! The pid file's lock is an `flock(2)` lock, which belongs to the open file: the new process
//! holds it through the descriptor it received, so the lock never lapses between the two.
//!
//! **Whose child the new process is:** not the old one's. The process the old one starts
//! starts the program once more, says "started PID" on the pair and exits, so the process
//! that takes over is adopted by init, or by systemd, before it tells systemd `MAINPID=`. A
//! main process that is not its own child is one systemd "will most likely not notice when
//! it exits" (its words): on `systemctl stop` it sends SIGTERM and, with nothing it can wait
//! for, SIGKILL at once (seen with systemd 252 on Debian 12), so the new process was killed
//! in the middle of its graceful stop. The old process commits only once it has reaped the
//! one in between, so by then the adoption has happened.

use std::ffi::OsString;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, recvmsg, sendmsg,
};

/// The hidden option that tells a new process it is the successor of an upgrade, with the pid
/// of the process that started it (its parent, checked). An option rather than an environment
/// variable: the processes the new one starts do not inherit it.
pub(super) const UPGRADE_FROM: &str = "upgrade-from";

/// The first line of the handover message.
const HEADER: &str = "ginkgo-upgrade 1";

/// What the old process answers to "ready": the new one may take over.
const COMMIT: &[u8] = b"commit\n";

/// How the process in between reports the pid of the one it started (which takes over).
const STARTED: &str = "started ";

/// The most descriptors one message carries (Linux's `SCM_MAX_FD` is 253).
const MAX_SOCKETS: usize = 253;

/// What the old process hands over, and the new one receives.
#[derive(Debug, Default)]
pub(super) struct Handover {
    /// The listening sockets the tree's servers registered, by service path.
    pub(super) listeners: Vec<(String, OwnedFd)>,
    /// The control socket's listener.
    pub(super) control: Option<OwnedFd>,
    /// The pid file, locked.
    pub(super) pidfile: Option<OwnedFd>,
    /// The text of the config file in force in the sender (a master's, for its workers: a
    /// worker must start on what the master accepted, not on a file a rejected reload left).
    pub(super) config: Option<std::sync::Arc<str>>,
}

impl Handover {
    /// Sends the handover over `pair` in one message.
    fn send(&self, pair: &UnixStream) -> io::Result<()> {
        let mut text = format!("{HEADER}\n");
        if let Some(config) = &self.config {
            text.push_str(&format!("config {}\n", config.len()));
        }
        let mut fds: Vec<BorrowedFd<'_>> = Vec::new();
        for (path, fd) in &self.listeners {
            if path.contains('\n') {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("a service path with a line break: {path:?}"),
                ));
            }
            text.push_str(&format!("listener {path}\n"));
            fds.push(fd.as_fd());
        }
        if let Some(fd) = &self.control {
            text.push_str("control\n");
            fds.push(fd.as_fd());
        }
        if let Some(fd) = &self.pidfile {
            text.push_str("pidfile\n");
            fds.push(fd.as_fd());
        }
        if let Some(config) = &self.config {
            text.push_str(config);
        }
        if fds.len() > MAX_SOCKETS {
            return Err(io::Error::other(format!(
                "{} sockets to hand over; at most {MAX_SOCKETS} can be",
                fds.len()
            )));
        }
        let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(fds.len()))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
            return Err(io::Error::other("the descriptors do not fit the message"));
        }
        let sent = sendmsg(
            pair,
            &[IoSlice::new(text.as_bytes())],
            &mut control,
            SendFlags::NOSIGNAL,
        )?;
        if sent != text.len() {
            return Err(io::Error::other("the handover message was cut short"));
        }
        Ok(())
    }

    /// Receives the handover on `pair` (the new process's standard input).
    fn receive(pair: BorrowedFd<'_>) -> io::Result<Self> {
        let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_SOCKETS))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let mut buf = vec![0u8; 64 * 1024];
        let received = recvmsg(
            pair,
            &mut [IoSliceMut::new(&mut buf)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        )?;
        let mut fds: Vec<OwnedFd> = Vec::new();
        for message in control.drain() {
            if let RecvAncillaryMessage::ScmRights(rights) = message {
                fds.extend(rights);
            }
        }
        if received.flags.contains(rustix::net::ReturnFlags::CTRUNC) {
            return Err(invalid("the sockets handed over did not all arrive"));
        }
        buf.truncate(received.bytes);
        // A long config text may come in more than one read of the stream.
        let wanted = Message::split(&buf, fds.len())?.length;
        while buf.len() < wanted {
            let mut more = vec![0u8; wanted - buf.len()];
            let read = rustix::io::read(pair, &mut more)?;
            if read == 0 {
                return Err(invalid("the handover message was cut short"));
            }
            buf.extend_from_slice(&more[..read]);
        }
        Self::parse(&buf, fds)
    }

    /// Pairs the names of the message with the descriptors `fds`, in order.
    fn parse(message: &[u8], fds: Vec<OwnedFd>) -> io::Result<Self> {
        let Message {
            names,
            config,
            length,
        } = Message::split(message, fds.len())?;
        if message.len() != length {
            return Err(invalid("the handover message has bytes after its end"));
        }
        let mut handover = Self {
            config: config
                .map(|range| {
                    std::str::from_utf8(&message[range])
                        .map(std::sync::Arc::from)
                        .map_err(|_| invalid("the config text handed over is not UTF-8"))
                })
                .transpose()?,
            ..Self::default()
        };
        for (name, fd) in names.into_iter().zip(fds) {
            match name {
                "control" => handover.control = Some(fd),
                "pidfile" => handover.pidfile = Some(fd),
                other => match other.strip_prefix("listener ") {
                    Some(path) => handover.listeners.push((path.to_owned(), fd)),
                    None => return Err(invalid(&format!("unknown socket {other:?}"))),
                },
            }
        }
        Ok(handover)
    }
}

/// The parts of a handover message: a header line, `config LENGTH` if a config text comes,
/// one line per descriptor, then the config text.
struct Message<'a> {
    names: Vec<&'a str>,
    /// Where the config text is in the message.
    config: Option<std::ops::Range<usize>>,
    /// The length of the whole message.
    length: usize,
}

impl<'a> Message<'a> {
    /// Splits the start of `message`, which names `count` descriptors; the config text may
    /// not have arrived yet (`length` says how long the whole is).
    fn split(message: &'a [u8], count: usize) -> io::Result<Self> {
        let mut at = 0;
        if next_line(message, &mut at)? != HEADER {
            return Err(invalid("not a handover message of this version"));
        }
        let mut config_length = None;
        if message[at..].starts_with(b"config ") {
            let length = &next_line(message, &mut at)?["config ".len()..];
            config_length = Some(
                length
                    .parse::<usize>()
                    .map_err(|_| invalid(&format!("a bad config length {length:?}")))?,
            );
        }
        let names = (0..count)
            .map(|_| next_line(message, &mut at))
            .collect::<io::Result<Vec<_>>>()?;
        let config = config_length.map(|length| at..at + length);
        let length = config.as_ref().map_or(at, |range| range.end);
        Ok(Self {
            names,
            config,
            length,
        })
    }
}

/// The line of `message` at `at` (without its line break), moving `at` past it.
fn next_line<'a>(message: &'a [u8], at: &mut usize) -> io::Result<&'a str> {
    let rest = &message[*at..];
    let end = rest
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| invalid("the handover message is cut short"))?;
    *at += end + 1;
    std::str::from_utf8(&rest[..end]).map_err(|_| invalid("the handover message is not UTF-8"))
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_owned())
}

/// In a process started by an upgrade from the process `from`: the handover, read from
/// standard input.
///
/// # Errors
///
/// Fails when `from` is not the process that made the socket pair on standard input, or the
/// message is broken.
pub(super) fn receive(from: u32) -> io::Result<Handover> {
    check_handed_by(from)?;
    receive_stdin()
}

/// Whether this process was started by `from` itself (its parent), and so is the one in
/// between that [`detach`] runs, not the one that takes over.
pub(super) fn started_by(from: u32) -> bool {
    rustix::process::getppid()
        .is_some_and(|pid| i64::from(pid.as_raw_nonzero().get()) == i64::from(from))
}

/// Checks that standard input is the socket pair made by process `from`: the credentials a
/// pair carries are those of the process that made it, whoever holds its ends since.
fn check_handed_by(from: u32) -> io::Result<()> {
    let stdin = std::io::stdin();
    let peer = rustix::net::sockopt::socket_peercred(stdin.as_fd()).map_err(|err| {
        io::Error::new(
            io::Error::from(err).kind(),
            format!("--{UPGRADE_FROM} {from}: standard input is not the socket pair of an upgrade: {err}"),
        )
    })?;
    let maker = peer.pid.as_raw_nonzero().get();
    if i64::from(maker) != i64::from(from) {
        return Err(io::Error::other(format!(
            "--{UPGRADE_FROM} {from} names a process other than the one that started the upgrade ({maker})"
        )));
    }
    Ok(())
}

/// In the process the old one started (see the module docs): starts this program again
/// with the same arguments and standard streams, says "started PID" on the pair, and
/// returns, for this process to exit; or says why it could not.
///
/// # Errors
///
/// Fails when standard input is not `from`'s pair, or the program cannot be started (the
/// error is reported on the pair too).
pub(super) fn detach(from: u32) -> io::Result<()> {
    check_handed_by(from)?;
    let pair = pair_on_stdin()?;
    let started = std::env::current_exe()
        .and_then(|exe| Command::new(&exe).args(std::env::args_os().skip(1)).spawn());
    match started {
        // Not waited for: once this process exits, init or systemd adopts it.
        Ok(child) => (&pair).write_all(format!("{STARTED}{}\n", child.id()).as_bytes()),
        Err(err) => {
            let err = io::Error::new(err.kind(), format!("cannot start the new process: {err}"));
            let _ = (&pair).write_all(format!("error: {err}\n").as_bytes());
            Err(err)
        }
    }
}

/// The handover, read from standard input (a worker's, from its master).
///
/// # Errors
///
/// Fails when the message is broken.
pub(super) fn receive_stdin() -> io::Result<Handover> {
    let stdin = std::io::stdin();
    Handover::receive(stdin.as_fd())
}

/// The new process of an upgrade, started and handed the sockets, whose report is awaited.
pub(super) struct Successor {
    child: Child,
    pair: UnixStream,
    /// Set when `child` said it started the process that takes over in its place: a pidfd of
    /// that process (none if it could not be opened, as when it is gone already).
    taking_over: Option<Option<OwnedFd>>,
}

impl Successor {
    /// Starts `exe` with `args` (the same command and settings this process was started
    /// with, and the option saying what the new process is) and hands it `handover`. The
    /// environment variables in `env_remove` are not passed on.
    pub(super) fn start(
        exe: &Path,
        args: &[OsString],
        env_remove: &[&str],
        handover: &Handover,
    ) -> io::Result<Self> {
        let (ours, theirs) = UnixStream::pair()?;
        let mut command = Command::new(exe);
        command
            .args(args)
            .stdin(Stdio::from(OwnedFd::from(theirs)))
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit());
        for name in env_remove {
            command.env_remove(name);
        }
        let mut child = command.spawn().map_err(|err| {
            io::Error::new(err.kind(), format!("cannot start {}: {err}", exe.display()))
        })?;
        drop(command);
        if let Err(err) = handover.send(&ours) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::new(
                err.kind(),
                format!("cannot hand the sockets over: {err}"),
            ));
        }
        Ok(Self {
            child,
            pair: ours,
            taking_over: None,
        })
    }

    /// Waits up to `limit` for the report, and commits: the pid of the process that took
    /// over, or why it failed (then each process it started is stopped, and reaped if ours).
    pub(super) fn wait_ready(mut self, limit: Duration) -> Result<u32, String> {
        // Committed: the process in between is reaped; the one that took over is init's (or
        // systemd's), not ours to wait for.
        self.await_ready(limit).inspect_err(|_| self.stop_all())
    }

    /// Like [`Successor::wait_ready`], keeping the child (to supervise and reap) and the pair
    /// (to talk to it) once it is ready: for a worker, which stays its master's child.
    pub(super) fn wait_ready_kept(
        mut self,
        limit: Duration,
    ) -> Result<(Child, UnixStream), String> {
        match self.await_ready(limit) {
            Ok(_) => Ok((self.child, self.pair)),
            Err(why) => {
                self.stop_all();
                Err(why)
            }
        }
    }

    /// Reads the report lines until "ready PID" (then commits and gives the pid) or a
    /// failure, all within `limit`.
    fn await_ready(&mut self, limit: Duration) -> Result<u32, String> {
        let deadline = Instant::now() + limit;
        loop {
            let line = self.read_line(deadline).map_err(|err| {
                if matches!(
                    err.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) {
                    format!("the new process was not ready within {limit:?}")
                } else {
                    format!("no report from the new process: {err}")
                }
            })?;
            let line = line.trim();
            if let Some(pid) = line.strip_prefix(STARTED) {
                let pid: u32 = pid.parse().map_err(|_| format!("bad report {line:?}"))?;
                let pidfd = i32::try_from(pid)
                    .ok()
                    .and_then(rustix::process::Pid::from_raw)
                    .and_then(|pid| {
                        rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()
                    });
                self.taking_over = Some(pidfd);
                continue;
            }
            if let Some(pid) = line.strip_prefix("ready ") {
                let pid: u32 = pid.parse().map_err(|_| format!("bad report {line:?}"))?;
                if self.taking_over.is_some() && !exited_by(&mut self.child, deadline) {
                    return Err(format!(
                        "the process in between (pid {}) did not exit",
                        self.child.id()
                    ));
                }
                // Commit: from here on the new process serves and owns the shared files.
                (&self.pair)
                    .write_all(COMMIT)
                    .map_err(|err| format!("cannot commit the handover: {err}"))?;
                let _ = self.pair.set_read_timeout(None);
                return Ok(pid);
            }
            return Err(match line.strip_prefix("error: ") {
                Some(error) => error.to_owned(),
                None => "the new process exited during start-up (see its log)".to_owned(),
            });
        }
    }

    /// One line of the report (without waiting past `deadline`); what arrived before the end
    /// if the pair closed.
    fn read_line(&self, deadline: Instant) -> io::Result<String> {
        let mut line = String::new();
        // One byte at a time, so that nothing after the line is read ahead and lost.
        let mut byte = [0u8; 1];
        while !line.ends_with('\n') {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::ErrorKind::TimedOut.into());
            }
            self.pair.set_read_timeout(Some(left))?;
            match (&self.pair).read(&mut byte)? {
                0 => break,
                _ => line.push(char::from(byte[0])),
            }
        }
        Ok(line)
    }

    /// Stops what was started for a failed or late upgrade: the process started, and the one
    /// it started in its place, if it said so.
    fn stop_all(&mut self) {
        stop(&mut self.child);
        if let Some(Some(pidfd)) = self.taking_over.take() {
            stop_adopted(&pidfd);
        }
    }
}

/// Whether `child` exits (and is reaped) by `deadline`.
fn exited_by(child: &mut Child, deadline: Instant) -> bool {
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Stops a process that is not ours to reap, through its pidfd (so a reused pid is never
/// signalled): SIGTERM, then SIGKILL after 5 s.
fn stop_adopted(pidfd: &OwnedFd) {
    use rustix::event::{PollFd, PollFlags, Timespec};
    use rustix::process::{Signal, pidfd_send_signal};
    if pidfd_send_signal(pidfd, Signal::TERM).is_err() {
        return;
    }
    // A pidfd becomes readable when its process exits.
    let mut fds = [PollFd::new(pidfd, PollFlags::IN)];
    let limit = Timespec {
        tv_sec: 5,
        tv_nsec: 0,
    };
    if !matches!(rustix::event::poll(&mut fds, Some(&limit)), Ok(1..)) {
        let _ = pidfd_send_signal(pidfd, Signal::KILL);
    }
}

/// In the new process, once its tree is ready: reports "ready PID" on standard input and waits
/// up to `limit` for the old process to commit. `Ok(false)`: it gave up (it timed out, or is
/// gone) and this process must stop without taking anything over.
///
/// # Errors
///
/// Fails if standard input cannot be written or read.
pub(super) fn announce_ready(limit: Duration) -> io::Result<bool> {
    announce_ready_on(&pair_on_stdin()?, limit)
}

/// Standard input as the socket pair it is in a new process or a worker.
///
/// # Errors
///
/// Fails if it cannot be duplicated.
pub(super) fn pair_on_stdin() -> io::Result<UnixStream> {
    let stdin = std::io::stdin();
    Ok(UnixStream::from(stdin.as_fd().try_clone_to_owned()?))
}

/// [`announce_ready`] on `pair`.
///
/// # Errors
///
/// Fails if `pair` cannot be written or read.
pub(super) fn announce_ready_on(pair: &UnixStream, limit: Duration) -> io::Result<bool> {
    match (&*pair).write_all(format!("ready {}\n", std::process::id()).as_bytes()) {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => return Ok(false),
        Err(err) => return Err(err),
    }
    pair.set_read_timeout(Some(limit))?;
    let mut answer = [0u8; COMMIT.len()];
    let answered = (&*pair).read_exact(&mut answer);
    pair.set_read_timeout(None)?;
    match answered {
        Ok(()) => Ok(answer == COMMIT),
        Err(err)
            if matches!(
                err.kind(),
                io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::WouldBlock
                    | io::ErrorKind::TimedOut
            ) =>
        {
            Ok(false)
        }
        Err(err) => Err(err),
    }
}

/// Stops a new process that failed or is late: SIGTERM, then SIGKILL after 5 s; reaps it.
pub(super) fn stop(child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    if let Ok(pid) = i32::try_from(child.id())
        && let Some(pid) = rustix::process::Pid::from_raw(pid)
    {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
    for _ in 0..250 {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handover_arrives_whole_with_its_names() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let web = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let web_addr = web.local_addr().unwrap();
        let control = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let handover = Handover {
            listeners: vec![("Root/web".to_owned(), OwnedFd::from(web))],
            control: Some(OwnedFd::from(control)),
            pidfile: None,
            config: None,
        };
        handover.send(&ours).unwrap();
        let received = Handover::receive(theirs.as_fd()).unwrap();
        assert_eq!(received.listeners.len(), 1);
        assert_eq!(received.listeners[0].0, "Root/web");
        let adopted = std::net::TcpListener::from(received.listeners.into_iter().next().unwrap().1);
        assert_eq!(adopted.local_addr().unwrap(), web_addr);
        assert!(received.control.is_some());
        assert!(received.pidfile.is_none());
    }

    #[test]
    fn broken_messages_are_refused() {
        let fd = || OwnedFd::from(std::net::TcpListener::bind("127.0.0.1:0").unwrap());
        let parse = |text: &str, fds| Handover::parse(text.as_bytes(), fds);
        assert!(parse("something else\n", vec![]).is_err());
        assert!(parse(&format!("{HEADER}\ncontrol\n"), vec![]).is_err());
        assert!(parse(&format!("{HEADER}\nsecret\n"), vec![fd()]).is_err());
        // A config text longer or shorter than it says.
        assert!(parse(&format!("{HEADER}\nconfig 3\nab"), vec![]).is_err());
        assert!(parse(&format!("{HEADER}\nconfig 1\nab"), vec![]).is_err());
        assert!(parse(&format!("{HEADER}\nconfig x\n"), vec![]).is_err());
        let ok = parse(
            &format!("{HEADER}\nlistener Root/a b\npidfile\n"),
            vec![fd(), fd()],
        )
        .unwrap();
        assert_eq!(ok.listeners[0].0, "Root/a b");
        assert!(ok.pidfile.is_some());
        assert!(ok.config.is_none());
    }

    /// A worker's handover carries its master's config text, whole, even when it is longer
    /// than one read of the stream, and with line breaks of its own.
    #[test]
    fn a_config_text_arrives_whole_after_the_names() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let web = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let text: String = (0..20_000)
            .map(|n| format!("# line {n} — pas de problème\n"))
            .collect();
        assert!(text.len() > 256 * 1024);
        let handover = Handover {
            listeners: vec![("Root/web".to_owned(), OwnedFd::from(web))],
            config: Some(text.as_str().into()),
            ..Handover::default()
        };
        // The message is larger than the pair's buffer: the sender blocks until it is read.
        let sender = std::thread::spawn(move || handover.send(&ours));
        let received = Handover::receive(theirs.as_fd()).unwrap();
        sender.join().unwrap().unwrap();
        assert_eq!(received.listeners.len(), 1);
        assert_eq!(received.listeners[0].0, "Root/web");
        assert_eq!(received.config.as_deref(), Some(text.as_str()));
    }
}
