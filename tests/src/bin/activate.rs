//! `activate PROGRAM [ARGS...]`: runs PROGRAM in this same process with `LISTEN_PID` set to this
//! process's pid, the one step of socket activation that a parent using `std::process::Command`
//! cannot take (it learns the child's pid only once the child runs). The caller passes the
//! sockets from descriptor 3 on and sets `LISTEN_FDS`; `exec` keeps both the pid and the
//! descriptors, so PROGRAM sees what systemd would give it.

use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let Some(program) = args.next() else {
        eprintln!("usage: activate PROGRAM [ARGS...]");
        return ExitCode::from(2);
    };
    // `exec` returns only on failure.
    let err = Command::new(&program)
        .args(args)
        .env("LISTEN_PID", std::process::id().to_string())
        .exec();
    eprintln!("activate: cannot run {}: {err}", program.to_string_lossy());
    ExitCode::from(127)
}
