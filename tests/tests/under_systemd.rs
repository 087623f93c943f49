//! The shipped units under a real systemd, booted in a namespace of the test's
//! (`ginkgo_tests::systemd`): the machine's (Debian 12's 252) with `hello-systemd252.service`,
//! and Debian 12's backport (254, `$GINKGO_TEST_SYSTEMD_NEWER`) with `hello.service`
//! (`Type=notify-reload`). `hello` is started, watched, reloaded (a bad file kept out) and
//! stopped. The `echo_on` daemon runs under the same unit's `[Service]` lines: upgraded
//! (systemd follows the new main process, which keeps the watchdog fed and stops gracefully;
//! also as a prefork master with two workers) and crashed (the listener waits in systemd's
//! file descriptor store, and the restarted process serves a connection made while nothing
//! ran; with prefork workers too), and socket-activated by a socket unit (started by the first
//! connection, upgraded, and started again after a stop; on another address than the
//! configuration's, the warning that names it). The echo cases run on all four backends.
//!
//! Built with the `systemd` feature, which `.ci/run` turns on: it needs root and systemd.
#![cfg(feature = "systemd")]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ginkgo_tests::process::{dir, free_port, hello};
use ginkgo_tests::systemd::Systemd;

/// For systemd 253 and later, and for older systemd such as Debian 12's 252.
const NOTIFY_RELOAD: &str = "hello.service";
const NOTIFY_EXEC_RELOAD: &str = "hello-systemd252.service";

/// Where the units install the program and its configuration, as they say in their headers.
const INSTALLED: &str = "/usr/local/bin/hello";
const CONFIG: &str = "/etc/hello.toml";

/// The shipped unit meant for `systemd`'s version, with `program` and `config` in place of the
/// installed ones.
fn shipped_unit(systemd: &Systemd, program: &Path, config: &Path) -> String {
    let name = if systemd.version >= 253 {
        NOTIFY_RELOAD
    } else {
        NOTIFY_EXEC_RELOAD
    };
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../ginkgo/examples")
        .join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("{}: {err}", path.display()))
        .replace(INSTALLED, &program.display().to_string())
        .replace(CONFIG, &config.display().to_string())
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Waits (up to 20 s) until the file at `path` contains `needle`.
fn wait_for_text(path: &Path, needle: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !read(path).contains(needle) {
        assert!(
            std::time::Instant::now() < deadline,
            "no {needle:?} in:\n{}",
            read(path)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

const HELLO: &str = "[hello]\nmessage = \"first\"\nrate_per_minute = 1200\n";

/// `systemctl start` returns once the program said `READY=1`; with a 2 s watchdog it stays up
/// (the keep-alives arrive); `systemctl reload` applies a good file; a bad one leaves the
/// program serving on the old one and says so in the status line (`systemctl reload` fails
/// too where the unit's `ExecReload=` can tell it, on systemd 252; with `Type=notify-reload`
/// systemd has no way to be told); `systemctl stop` is a clean exit.
fn hello_unit(systemd: &Systemd) {
    let site = dir();
    let (config, log) = (site.path().join("hello.toml"), site.path().join("log"));
    std::fs::write(&config, HELLO).expect("config");
    let unit = shipped_unit(systemd, &hello(), &config);
    systemd.install(
        "hello.service",
        &unit,
        &format!(
            "StandardOutput=append:{}\nStandardError=inherit\nWatchdogSec=2",
            log.display()
        ),
    );
    systemd.must(&["start", "hello.service"]);
    assert_eq!(systemd.show("hello", "ActiveState"), "active");
    assert_eq!(systemd.show("hello", "StatusText"), "Hello ready");
    let main = systemd.show("hello", "MainPID");
    wait_for_text(&log, "first");

    // Past the watchdog's 2 s: still the same process, never restarted.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(systemd.show("hello", "MainPID"), main, "{}", read(&log));
    assert_eq!(systemd.show("hello", "NRestarts"), "0");
    assert_ne!(systemd.show("hello", "WatchdogTimestampMonotonic"), "0");

    std::fs::write(&config, HELLO.replace("first", "second")).expect("edit");
    systemd.must(&["reload", "hello.service"]);
    wait_for_text(&log, "second");

    assert_eq!(systemd.show("hello", "StatusText"), "Hello ready");

    std::fs::write(&config, HELLO.replace("1200", "\"fast\"")).expect("break");
    let refused = systemd.systemctl(&["reload", "hello.service"]);
    assert_eq!(
        refused.status.success(),
        systemd.version >= 253,
        "only ExecReload= can fail the reload"
    );
    wait_for_text(&log, "the old one stays in force");
    assert_eq!(systemd.show("hello", "ActiveState"), "active");
    assert_eq!(systemd.show("hello", "MainPID"), main);
    let status = systemd.show("hello", "StatusText");
    assert!(
        status.starts_with("Hello ready; the last reload failed: ")
            && status.contains("hello.rate_per_minute"),
        "{status}"
    );

    systemd.must(&["stop", "hello.service"]);
    assert_eq!(systemd.show("hello", "ActiveState"), "inactive");
    assert_eq!(systemd.show("hello", "Result"), "success");
    assert_eq!(systemd.show("hello", "ExecMainStatus"), "0");
}

/// The unit for older systemd, under the machine's (Debian 12's 252).
#[test]
fn hello_unit_under_the_machines_systemd() {
    hello_unit(&Systemd::boot());
}

/// The `Type=notify-reload` unit, under a systemd of 253 or later (Debian 12's backport, as
/// `tests/tools/systemd-newer.sh` unpacks it).
#[test]
fn hello_unit_under_systemd_253_or_later() {
    let systemd = Systemd::boot_newer();
    assert!(systemd.version >= 253, "systemd {}", systemd.version);
    hello_unit(&systemd);
}

/// Installs the `echo_on` daemon on `backend` under the shipped unit's `[Service]` lines
/// (its own program, configuration `config` and log), with `service` added. The paths of
/// its configuration file and its log.
fn install_echo(
    systemd: &Systemd,
    site: &Path,
    backend: &str,
    config: &str,
    service: &str,
) -> (PathBuf, PathBuf) {
    let (path, log) = (site.join("echo.toml"), site.join("log"));
    std::fs::write(&path, config).expect("config");
    let unit = shipped_unit(systemd, Path::new(env!("CARGO_BIN_EXE_echo_on")), &path);
    systemd.install(
        "echo.service",
        &unit,
        &format!(
            "StandardOutput=append:{}\nStandardError=inherit\nEnvironment=GINKGO_TEST_BACKEND={backend}\n{service}",
            log.display()
        ),
    );
    (path, log)
}

/// [`install_echo`], started. The log's path.
fn echo_unit(
    systemd: &Systemd,
    site: &Path,
    backend: &str,
    config: &str,
    service: &str,
) -> PathBuf {
    let (_, log) = install_echo(systemd, site, backend, config, service);
    systemd.must(&["start", "echo.service"]);
    log
}

/// One message echoed on a new connection to `port`, checked byte for byte; `log` is the
/// daemon's, for the failure message.
fn echo(port: u16, message: &[u8], log: &Path) {
    let round_trip = || -> std::io::Result<Vec<u8>> {
        let mut stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(20)))?;
        stream.write_all(message)?;
        let mut back = vec![0; message.len()];
        stream.read_exact(&mut back)?;
        Ok(back)
    };
    match round_trip() {
        Ok(back) => assert_eq!(back, message),
        Err(err) => panic!("echo on port {port}: {err}\n{}", read(log)),
    }
}

/// An upgrade under systemd: systemd follows the new process as the main one (no restart),
/// the new process keeps the 2 s watchdog fed, and `systemctl stop` gives it its whole
/// graceful stop (300 ms here) and sees it exit cleanly. A main process systemd did not start
/// itself and that is not its child is one it cannot wait for: it sent SIGKILL right after
/// SIGTERM (Result=signal) until the new process was left to be adopted.
fn upgrade_under_systemd(backend: &'static str) {
    upgraded_under(&Systemd::boot(), backend, "");
}

/// The same under a systemd of 253 or later, with the `Type=notify-reload` unit.
fn upgrade_under_systemd_253_or_later(backend: &'static str) {
    upgraded_under(&Systemd::boot_newer(), backend, "");
}

/// The same with two prefork workers: the master is the main process, and stays the only one
/// that talks to systemd.
fn prefork_upgrade_under_systemd(backend: &'static str) {
    upgraded_under(&Systemd::boot(), backend, "workers = 2\n");
}

/// The upgrade cases under `systemd`, with `runner` settings added to the configuration.
fn upgraded_under(systemd: &Systemd, backend: &'static str, runner: &str) {
    let site = dir();
    let port = free_port();
    let config = format!("{runner}[echo]\nbind = \"127.0.0.1:{port}\"\nstop_delay = \"300ms\"\n");
    let log = echo_unit(systemd, site.path(), backend, &config, "WatchdogSec=2");
    let old = systemd.show("echo", "MainPID");
    echo(port, b"before\n", &log);

    let upgraded = systemd
        .command(env!("CARGO_BIN_EXE_echo_on"))
        .env("GINKGO_TEST_BACKEND", backend)
        .arg("-c")
        .arg(site.path().join("echo.toml"))
        .args(["-s", "rundir=/run/hello", "upgrade"])
        .output()
        .expect("run upgrade");
    let printed = String::from_utf8_lossy(&upgraded.stdout).into_owned();
    assert!(upgraded.status.success(), "{printed}{}", read(&log));
    let new = printed
        .trim()
        .rsplit(' ')
        .next()
        .and_then(|word| word.strip_suffix(')'))
        .unwrap_or_else(|| panic!("no new pid in {printed:?}"))
        .to_owned();
    assert_ne!(new, old);
    systemd.wait_for("echo", "MainPID", |pid| pid == new);
    echo(port, b"after\n", &log);

    // Past the watchdog's 2 s: the new process keeps it fed.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(systemd.show("echo", "MainPID"), new, "{}", read(&log));
    assert_eq!(systemd.show("echo", "ActiveState"), "active");
    assert_eq!(systemd.show("echo", "NRestarts"), "0");

    systemd.must(&["stop", "echo.service"]);
    assert_eq!(
        systemd.show("echo", "Result"),
        "success",
        "{}\n{}",
        systemd.status("echo"),
        read(&log)
    );
    assert_eq!(systemd.show("echo", "ExecMainStatus"), "0");
    // The main process's last word: "stopped" (with workers: "stopped; every worker exited").
    let last = read(&log)
        .trim_end()
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned();
    assert!(
        last.contains("INFO ginkgo_runner") && last.contains(" stopped"),
        "{}",
        read(&log)
    );
}

/// The inode of the socket listening on 127.0.0.1:`port` (`/proc/net/tcp`).
fn listener_inode(port: u16) -> String {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    let local = format!("0100007F:{port:04X}");
    table
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .find(|fields| fields.get(1) == Some(&local.as_str()) && fields.get(3) == Some(&"0A"))
        .and_then(|fields| fields.get(9).map(|inode| (*inode).to_owned()))
        .unwrap_or_else(|| panic!("nothing listens on {local}"))
}

/// `fd_store = true` under systemd: the listener outlives a SIGKILL of the program; a
/// connection made while nothing runs (systemd waits 1 s to restart it) is queued, not
/// refused, and the restarted program, given the stored socket, echoes it.
fn fd_store_under_systemd(backend: &'static str) {
    fd_store_across_a_crash(backend, "");
}

/// The same with a prefork master and two workers, all killed at once.
fn prefork_fd_store_under_systemd(backend: &'static str) {
    fd_store_across_a_crash(backend, "workers = 2\n");
}

/// The file descriptor store cases, with `runner` settings added to the configuration.
fn fd_store_across_a_crash(backend: &'static str, runner: &str) {
    let systemd = Systemd::boot();
    let site = dir();
    let port = free_port();
    let config = format!("fd_store = true\n{runner}[echo]\nbind = \"127.0.0.1:{port}\"\n");
    let log = echo_unit(&systemd, site.path(), backend, &config, "RestartSec=1");
    assert_eq!(systemd.show("echo", "NFileDescriptorStore"), "1");
    let inode = listener_inode(port);
    let first = systemd.show("echo", "MainPID");
    assert!(systemd.sockets_of(&first).contains(&inode));

    systemd.must(&["kill", "--signal=KILL", "echo.service"]);
    systemd.wait_for("echo", "MainPID", |pid| pid == "0");
    let mut waiting = ginkgo_tests::daemon::send_while_down(port);

    let second = systemd.wait_for("echo", "MainPID", |pid| pid != "0");
    let mut echoed = [0u8; 23];
    waiting
        .read_exact(&mut echoed)
        .expect("the echo, from the restarted program");
    assert_eq!(&echoed, ginkgo_tests::daemon::SENT_WHILE_DOWN);
    assert_eq!(systemd.show("echo", "NRestarts"), "1");
    assert_eq!(listener_inode(port), inode, "the same socket");
    assert!(systemd.sockets_of(&second).contains(&inode));
    assert!(
        read(&log).contains("listening on the socket handed over"),
        "{}",
        read(&log)
    );
    systemd.must(&["stop", "echo.service"]);
    assert_eq!(systemd.show("echo", "Result"), "success");
}

/// Installs `echo.socket`: a socket unit on 127.0.0.1:`port` that passes its socket as
/// `app/echo`, the path of `echo_on`'s server, and starts `echo.service` on the first
/// connection.
fn install_echo_socket(systemd: &Systemd, port: u16) {
    systemd.install_as_is(
        "echo.socket",
        &format!(
            "[Unit]\nDefaultDependencies=no\n[Socket]\nListenStream=127.0.0.1:{port}\n\
             FileDescriptorName=app/echo\n"
        ),
    );
}

/// Socket activation by a real systemd: the socket unit listens where the configuration
/// says, the first connection starts the service, whose server `app/echo` adopts the socket
/// passed under its name (the very socket: its inode); an upgrade hands that same socket on;
/// after a stop the socket still listens, and the next connection starts the service again.
fn socket_activation_under_systemd(backend: &'static str) {
    let systemd = Systemd::boot();
    let site = dir();
    let port = free_port();
    install_echo_socket(&systemd, port);
    let config = format!("[echo]\nbind = \"127.0.0.1:{port}\"\n");
    let (path, log) = install_echo(&systemd, site.path(), backend, &config, "");
    systemd.must(&["start", "echo.socket"]);
    assert_eq!(systemd.show("echo.service", "ActiveState"), "inactive");
    let inode = listener_inode(port);

    // The first connection starts the service.
    echo(port, b"activated\n", &log);
    assert_eq!(systemd.show("echo.service", "ActiveState"), "active");
    let first = systemd.show("echo.service", "MainPID");
    assert!(
        systemd.sockets_of(&first).contains(&inode),
        "{}",
        read(&log)
    );
    assert!(
        read(&log).contains("listening on the socket handed over"),
        "{}",
        read(&log)
    );

    let upgraded = systemd
        .command(env!("CARGO_BIN_EXE_echo_on"))
        .env("GINKGO_TEST_BACKEND", backend)
        .arg("-c")
        .arg(&path)
        .args(["-s", "rundir=/run/hello", "upgrade"])
        .output()
        .expect("run upgrade");
    assert!(upgraded.status.success(), "{}", read(&log));
    let second = systemd.wait_for("echo.service", "MainPID", |pid| pid != first && pid != "0");
    echo(port, b"after the upgrade\n", &log);
    assert!(systemd.sockets_of(&second).contains(&inode));
    assert_eq!(listener_inode(port), inode, "systemd's socket, all along");

    systemd.must(&["stop", "echo.service"]);
    assert_eq!(systemd.show("echo.service", "Result"), "success");
    echo(port, b"activated again\n", &log);
    assert_eq!(systemd.show("echo.service", "ActiveState"), "active");
    systemd.must(&["stop", "echo.service", "echo.socket"]);
}

/// A socket unit on another address than the configuration's: the server binds its
/// configured address, and says in its log that the socket systemd passed it is not served
/// (connections to it would wait).
fn socket_unit_on_another_address_is_reported(backend: &'static str) {
    let systemd = Systemd::boot();
    let site = dir();
    let (port, configured) = (free_port(), free_port());
    install_echo_socket(&systemd, port);
    let config = format!("[echo]\nbind = \"127.0.0.1:{configured}\"\n");
    let (_, log) = install_echo(&systemd, site.path(), backend, &config, "");
    systemd.must(&["start", "echo.socket"]);
    // The first connection starts the service; nothing answers it.
    let _waiting = TcpStream::connect(("127.0.0.1", port)).expect("queued by systemd");
    wait_for_text(
        &log,
        "systemd passed this server a socket it does not serve",
    );
    assert!(
        read(&log).contains(&format!("passed=127.0.0.1:{port}")),
        "{}",
        read(&log)
    );
    echo(configured, b"on the configured address\n", &log);
    systemd.must(&["stop", "echo.service", "echo.socket"]);
}

ginkgo_tests::on_every_backend!(
    socket_unit_on_another_address_is_reported,
    socket_activation_under_systemd,
    upgrade_under_systemd,
    upgrade_under_systemd_253_or_later,
    prefork_upgrade_under_systemd,
    fd_store_under_systemd,
    prefork_fd_store_under_systemd
);
