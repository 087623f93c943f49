//! `start`: the daemon is made by re-executing the program twice (the safe equivalent of a
//! double fork, with no `fork` in a threaded process): the first child calls `setsid` and
//! starts the second, which is not a session leader and so can never acquire a controlling
//! terminal. The second child runs in `rundir`, with its output appended to the log file, and
//! reports "ready" or the start-up error back to `start` through a pipe on its standard input.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};

use super::logging::open_logfile;
use super::pidfile;
use super::settings::Paths;
use crate::EXIT_FAILURE;

/// The hidden command of the first child.
pub(super) const DETACH: &str = "__detach";
/// The hidden command of the daemon itself.
pub(super) const DAEMON: &str = "__daemon";
/// Where relative paths are resolved in the children (they run elsewhere).
pub(super) const ORIGIN: &str = "GINKGO_ORIGIN_DIR";

/// `start`: refuses if running, starts the daemon, waits for its start-up report.
pub(super) fn start(program: &str, paths: &Paths, args: &[OsString]) -> ExitCode {
    match pidfile::running(&paths.pidfile) {
        Ok(Some(pid)) => {
            eprintln!("{program}: already running (pid {pid})");
            return ExitCode::from(EXIT_FAILURE);
        }
        Ok(None) => {}
        Err(err) => {
            eprintln!("{program}: {err}");
            return ExitCode::from(EXIT_FAILURE);
        }
    }
    match spawn(program, paths, args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("{program}: cannot start the daemon: {err}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

fn spawn(program: &str, paths: &Paths, args: &[OsString]) -> std::io::Result<ExitCode> {
    let exe = std::env::current_exe()?;
    let origin = std::env::current_dir()?;
    let (reader, writer) = std::io::pipe()?;
    let mut detach = Command::new(exe);
    detach
        .arg(DETACH)
        .args(args)
        .env(ORIGIN, &origin)
        .stdin(Stdio::from(writer))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    let mut child = detach.spawn()?;
    // The parent's copy of the write end goes with the command, so EOF means every child
    // that could report has exited.
    drop(detach);
    child.wait()?;

    let mut line = String::new();
    BufReader::new(reader).read_line(&mut line)?;
    let line = line.trim();
    if let Some(pid) = line.strip_prefix("ready ") {
        println!("{program} started (pid {pid})");
        Ok(ExitCode::SUCCESS)
    } else if let Some(error) = line.strip_prefix("error: ") {
        eprintln!("{program}: failed to start: {error}");
        Ok(ExitCode::from(EXIT_FAILURE))
    } else {
        eprintln!(
            "{program}: the daemon exited during start-up; see {}",
            paths.logfile.display()
        );
        Ok(ExitCode::from(EXIT_FAILURE))
    }
}

/// The first child: a new session, then the daemon with its output in the log file.
pub(super) fn detach(paths: &Paths, args: &[OsString]) -> ExitCode {
    let fail = |message: String| {
        let stdin = std::io::stdin();
        let _ = rustix::io::write(
            std::os::fd::AsFd::as_fd(&stdin),
            format!("error: {message}\n").as_bytes(),
        );
        ExitCode::from(EXIT_FAILURE)
    };
    if let Err(err) = rustix::process::setsid() {
        return fail(format!("setsid: {err}"));
    }
    let log = match open_logfile(&paths.logfile) {
        Ok(log) => log,
        Err(err) => {
            return fail(format!(
                "cannot open log file {}: {err}",
                paths.logfile.display()
            ));
        }
    };
    let spawned = (|| -> std::io::Result<()> {
        let exe = std::env::current_exe()?;
        Command::new(exe)
            .arg(DAEMON)
            .args(args)
            .current_dir(&paths.rundir)
            .stdin(Stdio::inherit())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .map(drop)
    })();
    match spawned {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(format!(
            "cannot start the daemon in {}: {err}",
            paths.rundir.display()
        )),
    }
}

/// Sets the daemon's file mode mask.
pub(super) fn set_umask(mask: u32) {
    let mode = nix::sys::stat::Mode::from_bits_truncate(mask as nix::libc::mode_t);
    nix::sys::stat::umask(mode);
}

/// Waits until no process holds the pid file, up to `limit`.
pub(super) fn wait_exit(pidfile: &Path, limit: std::time::Duration) -> bool {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if matches!(pidfile::running(pidfile), Ok(None)) {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Waits until process `pid` has exited (or is a zombie waiting to be reaped), up to `limit`.
pub(super) fn wait_pid_exit(pid: u32, limit: std::time::Duration) -> bool {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if !alive(pid) {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Whether `pid` names a live process: not gone, and not a zombie (its state in
/// `/proc/PID/stat`, after the parenthesised name, is not `Z`).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z"),
        Err(_) => false,
    }
}
