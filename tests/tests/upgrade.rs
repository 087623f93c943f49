//! Zero-downtime upgrade with real processes, sockets and signals: the `echo_on` daemon (the
//! runner and a `StreamServer` on the backend `$GINKGO_TEST_BACKEND` names), upgraded with `upgrade`,
//! SIGUSR2 and `restart` while clients connect and echo; a broken configuration, a new
//! process that is not ready in time, and a second upgrade during one, all rolled back or
//! refused with the old process serving on. Every case runs on all four backends.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ginkgo_api::signal::Signal;
use ginkgo_tests::daemon::{self, Notify, config, http_get, round_trip, text, traffic};
use ginkgo_tests::process::{alive, free_port};

/// The `echo_on` daemon on `backend` with `config`.
fn new_daemon(backend: &'static str, config: &str) -> daemon::Daemon {
    daemon::Daemon::new(Path::new(env!("CARGO_BIN_EXE_echo_on")), backend, config)
}

/// Three upgrades in a row while clients connect and echo: no connection is refused, every
/// message comes back byte for byte, and after each the pid file, `status` and the control
/// socket are the new process's; `stop` then removes the pid file and the socket.
fn upgrades_under_traffic_refuse_nothing(backend: &'static str) {
    let port = free_port();
    let daemon = new_daemon(backend, &config(port, ""));
    let first = daemon.start();
    let stop = Arc::new(AtomicBool::new(false));
    let clients = traffic(port, stop.clone());
    let mut pids = vec![first];
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(200));
        pids.push(daemon.upgrade());
    }
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::SeqCst);
    let seen = clients.join().expect("the clients");
    let log = daemon.log();
    assert!(seen.failed.is_empty(), "{seen:?}\n{log}");
    assert_eq!(seen.refused, 0, "{seen:?}\n{log}");
    assert!(seen.echoed > 20, "too little traffic to tell: {seen:?}");
    for pid in &pids[1..] {
        assert!(
            log.contains(&format!("ready; took over from the old process pid={pid}")),
            "{log}"
        );
    }
    let stopped = daemon.cmd(&["stop"]);
    assert_eq!(stopped.status.code(), Some(0), "{}", text(&stopped));
    assert!(!daemon.pidfile().exists() && !daemon.socket().exists());
}

/// A broken configuration: `upgrade` fails naming the error, the new process is gone, and the
/// old one serves on as before (same pid, pid file, `status`); once the file is fixed the next
/// upgrade works.
fn upgrade_with_a_broken_configuration_rolls_back(backend: &'static str) {
    let port = free_port();
    let good = config(port, "");
    let daemon = new_daemon(backend, &good);
    let old = daemon.start();
    daemon.write_config(&format!("{good}bnid = \"typo\"\n"));
    let failed = daemon.cmd(&["upgrade"]);
    assert_ne!(failed.status.code(), Some(0), "{}", text(&failed));
    assert!(
        text(&failed).contains("upgrade failed"),
        "{}",
        text(&failed)
    );
    assert!(text(&failed).contains("echo.bnid"), "{}", text(&failed));
    assert_eq!(daemon.pid(), old);
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("still serving");
    round_trip(&mut stream, b"after a failed upgrade\n").expect("echo");
    let status = daemon.cmd(&["status"]);
    assert!(
        text(&status).starts_with(&format!("pid {old}\n")),
        "{}",
        text(&status)
    );
    daemon.write_config(&good);
    daemon.upgrade();
    // The connection made before stays byte-exact until the old process closes it.
    let _ = round_trip(&mut stream, b"across\n");
}

/// A new process that is not ready within `upgrade_timeout` is stopped and the old one goes
/// on; a second upgrade asked for while one is under way is refused, and the first completes.
fn slow_upgrades_time_out_and_a_second_is_refused(backend: &'static str) {
    let port = free_port();
    // The running process's `upgrade_timeout` is the one that counts.
    let daemon = new_daemon(
        backend,
        &format!("upgrade_timeout = \"2s\"\n{}", config(port, "")),
    );
    let old = daemon.start();
    daemon.write_config(&config(port, "start_delay = \"4s\"\n"));
    let late = daemon.cmd(&["upgrade"]);
    assert_ne!(late.status.code(), Some(0), "{}", text(&late));
    assert!(
        text(&late).contains("not ready within 2s"),
        "{}",
        text(&late)
    );
    assert_eq!(daemon.pid(), old);
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("still serving");
    round_trip(&mut stream, b"after a late new process\n").expect("echo");
    drop(stream);

    // A longer upgrade_timeout, by reload, and a new process that takes 3 s to be ready.
    daemon.write_config(&format!(
        "upgrade_timeout = \"20s\"\n{}",
        config(port, "start_delay = \"3s\"\n")
    ));
    let reloaded = daemon.cmd(&["reload"]);
    assert_eq!(reloaded.status.code(), Some(0), "{}", text(&reloaded));
    let daemon = Arc::new(daemon);
    let first = {
        let daemon = daemon.clone();
        std::thread::spawn(move || daemon.cmd(&["upgrade"]))
    };
    // The first is under way once its new process is being started.
    let deadline = Instant::now() + Duration::from_secs(10);
    // (The upgrade that timed out logged it once already.)
    while daemon
        .log()
        .matches("upgrading: starting the new process")
        .count()
        < 2
    {
        assert!(Instant::now() < deadline, "the first upgrade did not begin");
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = daemon.cmd(&["upgrade"]);
    assert_ne!(second.status.code(), Some(0), "{}", text(&second));
    assert!(
        text(&second).contains("an upgrade is already in progress"),
        "{}",
        text(&second)
    );
    let first = first.join().expect("the first upgrade");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    assert_ne!(daemon.pid(), old);
}

/// SIGUSR2 upgrades too, and so does `restart` of a running daemon; `restart` of a stopped one
/// starts it.
fn sigusr2_and_restart_upgrade(backend: &'static str) {
    let port = free_port();
    let daemon = new_daemon(backend, &config(port, ""));
    let first = daemon.start();
    Signal::Usr2.send_to(first).expect("SIGUSR2");
    let deadline = Instant::now() + Duration::from_secs(20);
    while daemon.pid() == first || alive(first) {
        assert!(
            Instant::now() < deadline,
            "SIGUSR2 did not upgrade:\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = daemon.pid();
    let restarted = daemon.cmd(&["restart"]);
    assert_eq!(restarted.status.code(), Some(0), "{}", text(&restarted));
    assert!(
        text(&restarted).contains(&format!("upgraded (pid {second} -> ")),
        "{}",
        text(&restarted)
    );
    let stopped = daemon.cmd(&["stop"]);
    assert_eq!(stopped.status.code(), Some(0), "{}", text(&stopped));
    let started = daemon.cmd(&["restart"]);
    assert_eq!(started.status.code(), Some(0), "{}", text(&started));
    assert!(
        text(&started).contains("echo started (pid"),
        "{}",
        text(&started)
    );
}

/// A Unix socket listener is handed over with its file: the file stays through the upgrade
/// (neither process removes it), serves from the new process, and goes at the final stop.
fn unix_socket_file_survives_the_upgrade(backend: &'static str) {
    let daemon = new_daemon(backend, "");
    let path = daemon.rundir.path().join("echo-data.sock");
    daemon.write_config(&format!("[echo]\nbind = \"unix:{}\"\n", path.display()));
    daemon.start();
    let echo_unix = |path: &Path| {
        let mut stream = std::os::unix::net::UnixStream::connect(path).expect("connect");
        stream.write_all(b"over unix\n").expect("write");
        let mut echoed = [0; 10];
        stream.read_exact(&mut echoed).expect("read");
        assert_eq!(&echoed, b"over unix\n");
    };
    echo_unix(&path);
    daemon.upgrade();
    assert!(path.exists(), "the socket file went with the old process");
    echo_unix(&path);
    let stopped = daemon.cmd(&["stop"]);
    assert_eq!(stopped.status.code(), Some(0), "{}", text(&stopped));
    assert!(!path.exists(), "the socket file stayed after the stop");
}

/// Under systemd (a notify socket of our own): `READY=1` with the old `MAINPID=`, then
/// `READY=1` with the new one after the upgrade, and no `STOPPING=1` in between; the final stop
/// sends it.
fn systemd_hears_the_new_mainpid(backend: &'static str) {
    let port = free_port();
    let daemon = new_daemon(backend, &config(port, ""));
    let notify = Notify::new(&daemon);
    let receive = || notify.receive();
    let running = notify.run(&daemon);
    let old = running.child.id();
    let first = receive();
    assert!(
        first.starts_with("READY=1") && first.contains(&format!("MAINPID={old}")),
        "{first}"
    );
    let new = daemon.upgrade();
    let second = receive();
    assert!(
        second.starts_with("READY=1") && second.contains(&format!("MAINPID={new}")),
        "{second}"
    );
    // The old (foreground) process exits once it has drained.
    assert_eq!(running.wait().code(), Some(0));
    let stopped = daemon.cmd(&["stop"]);
    assert_eq!(stopped.status.code(), Some(0), "{}", text(&stopped));
    let third = receive();
    assert!(third.starts_with("STOPPING=1"), "{third}");
}

/// The new process runs the program file now at the path (a new build), not the one the old
/// process was started from.
fn upgrade_runs_the_program_file_now_on_disk(backend: &'static str) {
    let port = free_port();
    let mut daemon = new_daemon(backend, &config(port, ""));
    let program = daemon.rundir.path().join("echo_on");
    std::fs::copy(env!("CARGO_BIN_EXE_echo_on"), &program).expect("copy the program");
    daemon.program = program.clone();
    let old = daemon.start();
    // A new build replaces the file (a new inode at the same path), as `install` or cargo do.
    let staged = daemon.rundir.path().join("echo_on.new");
    std::fs::copy(env!("CARGO_BIN_EXE_echo_on"), &staged).expect("copy the new build");
    std::fs::rename(&staged, &program).expect("replace the program");
    let running = std::fs::read_link(format!("/proc/{old}/exe")).expect("the old exe");
    assert!(
        running.to_string_lossy().ends_with(" (deleted)"),
        "{}",
        running.display()
    );
    let new = daemon.upgrade();
    let exe = std::fs::read_link(format!("/proc/{new}/exe")).expect("the new exe");
    assert_eq!(exe, program, "the new process runs {}", exe.display());
}

/// Keep-alive HTTP clients (four connections, each sending its next request as soon as the last
/// is answered, reconnecting when told `Connection: close`) through three upgrades: every
/// request is answered, none fails, no connection is refused. The old process drains its
/// keep-alive connections (each one's next response says `Connection: close`) rather than
/// close them idle under a request on its way.
fn keep_alive_http_loses_nothing_across_upgrades(backend: &'static str) {
    let (port, http_port) = (free_port(), free_port());
    let daemon = new_daemon(
        backend,
        &config(port, &format!("http = \"127.0.0.1:{http_port}\"\n")),
    );
    daemon.start();
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let (mut answered, mut closed_by_server, mut failed) = (0u64, 0u64, Vec::new());
                let mut stream: Option<TcpStream> = None;
                while !stop.load(Ordering::SeqCst) {
                    let conn = match &mut stream {
                        Some(conn) => conn,
                        None => match TcpStream::connect(("127.0.0.1", http_port)) {
                            Ok(conn) => {
                                conn.set_read_timeout(Some(Duration::from_secs(10)))
                                    .expect("timeout");
                                stream.insert(conn)
                            }
                            Err(err) => {
                                failed.push(format!("connect: {err}"));
                                continue;
                            }
                        },
                    };
                    match http_get(conn) {
                        Ok(close) => {
                            answered += 1;
                            if close {
                                closed_by_server += 1;
                                stream = None;
                            }
                        }
                        Err(err) => {
                            failed.push(err.to_string());
                            stream = None;
                        }
                    }
                }
                (answered, closed_by_server, failed)
            })
        })
        .collect();
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(300));
        daemon.upgrade();
    }
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    let mut answered = 0;
    let mut closes = 0;
    for client in clients {
        let (ok, closed, failed) = client.join().expect("a client");
        assert!(
            failed.is_empty(),
            "{} failed requests, the first: {:?}",
            failed.len(),
            &failed[..failed.len().min(5)]
        );
        answered += ok;
        closes += closed;
    }
    assert!(answered > 100, "too little traffic to tell: {answered}");
    // Each upgrade moved the four connections over with a `Connection: close`.
    assert!(
        closes >= 4,
        "{closes} connections closed by `Connection: close`"
    );
}

/// A UDP socket is handed over too: datagrams to the same port are answered by the old process
/// before the upgrade and by the new one after it, and none is answered by both.
fn udp_socket_is_handed_over(backend: &'static str) {
    let port = free_port();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("a UDP port");
    let udp_port = udp.local_addr().expect("address").port();
    drop(udp);
    let daemon = new_daemon(
        backend,
        &config(port, &format!("udp = \"127.0.0.1:{udp_port}\"\n")),
    );
    let old = daemon.start();
    let client = std::net::UdpSocket::bind("127.0.0.1:0").expect("a client socket");
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let ask = |n: u32| {
        client
            .send_to(format!("ping {n}").as_bytes(), ("127.0.0.1", udp_port))
            .expect("send");
        let mut buf = [0u8; 128];
        let (len, _) = client.recv_from(&mut buf).expect("a reply");
        let reply = String::from_utf8_lossy(&buf[..len]).into_owned();
        let (echoed, pid) = reply.rsplit_once(' ').expect("payload and pid");
        assert_eq!(echoed, format!("ping {n}"));
        pid.parse::<u32>().expect("a pid")
    };
    assert_eq!(ask(1), old);
    let new = daemon.upgrade();
    for n in 2..6 {
        assert_eq!(ask(n), new, "answered by another process than the new one");
    }
}

/// SIGTERM while the tree is still starting (a pod deleted during a slow start): the start
/// is cancelled and the daemon stops at once instead of after its 30 s start; `start` says
/// why the daemon never became ready, and the pid file and control socket are gone.
fn sigterm_during_a_slow_start_stops_at_once(backend: &'static str) {
    let port = free_port();
    let daemon = std::sync::Arc::new(new_daemon(
        backend,
        &config(port, "start_delay = \"30s\"\n"),
    ));
    let starting = std::thread::spawn({
        let daemon = daemon.clone();
        move || daemon.cmd(&["start"])
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let pid = loop {
        // The pid file is written before the tree starts; the server listens early too.
        if let Ok(text) = std::fs::read_to_string(daemon.pidfile())
            && let Ok(pid) = text.trim().parse::<u32>()
            && TcpStream::connect(("127.0.0.1", port)).is_ok()
        {
            break pid;
        }
        assert!(
            Instant::now() < deadline,
            "the daemon did not begin to start"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let began = Instant::now();
    Signal::Term.send_to(pid).expect("SIGTERM");
    let started = starting.join().expect("the start command");
    assert_ne!(started.status.code(), Some(0), "{}", text(&started));
    assert!(
        text(&started).contains("stopped by SIGTERM while starting"),
        "{}",
        text(&started)
    );
    while alive(pid) {
        assert!(
            began.elapsed() < Duration::from_secs(15),
            "still running {:?} after SIGTERM, in its 30 s start",
            began.elapsed()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!daemon.pidfile().exists() && !daemon.socket().exists());
    assert!(
        daemon
            .log()
            .contains("stopping while starting: the start is cancelled"),
        "{}",
        daemon.log()
    );
}

/// systemd's file descriptor store, played by the test (`fd_store = true`): the listener
/// outlives a crash of the process, and the process started again adopts it by name.
fn fd_store_keeps_the_listener_across_a_crash(backend: &'static str) {
    let port = free_port();
    let daemon = new_daemon(backend, &format!("fd_store = true\n{}", config(port, "")));
    daemon::fd_store_survives_a_crash(
        &daemon,
        port,
        Path::new(env!("CARGO_BIN_EXE_activate")),
        || (),
        |()| (),
    );
}

ginkgo_tests::on_every_backend!(
    fd_store_keeps_the_listener_across_a_crash,
    upgrades_under_traffic_refuse_nothing,
    sigterm_during_a_slow_start_stops_at_once,
    upgrade_with_a_broken_configuration_rolls_back,
    slow_upgrades_time_out_and_a_second_is_refused,
    sigusr2_and_restart_upgrade,
    unix_socket_file_survives_the_upgrade,
    systemd_hears_the_new_mainpid,
    upgrade_runs_the_program_file_now_on_disk,
    keep_alive_http_loses_nothing_across_upgrades,
    udp_socket_is_handed_over,
);
