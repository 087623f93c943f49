//! Prefork workers with real processes, signals and sockets: the `echo_on` daemon with
//! `workers = 2` (a master and two workers sharing its listeners) on the backend
//! `$GINKGO_TEST_BACKEND` names. Status and the admin endpoints name the workers; a worker
//! killed under load is replaced while the other serves; a broken configuration reaches no
//! worker; upgrades replace master and workers without refusing a connection; a worker that
//! keeps dying stops the master; privileges are dropped in the workers only. Every case runs on
//! all four backends.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ginkgo_tests::daemon::{Daemon, Notify, config, round_trip, text, traffic};
use ginkgo_tests::process::{alive, free_port};

/// The `echo_on` daemon on `backend` with two workers, the echo server on `port`, and `extra`.
fn with_workers(backend: &'static str, port: u16, extra: &str) -> Daemon {
    let file = format!("workers = 2\n{}", config(port, extra));
    Daemon::new(Path::new(env!("CARGO_BIN_EXE_echo_on")), backend, &file)
}

/// The workers `status` lists: (number, pid), and the whole text.
fn workers(daemon: &Daemon) -> (Vec<(u32, u32)>, String) {
    let status = daemon.cmd(&["status"]);
    assert_eq!(status.status.code(), Some(0), "status: {}", text(&status));
    let out = String::from_utf8_lossy(&status.stdout).into_owned();
    let listed = out
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some("worker")).then_some(())?;
            let number = words.next()?.parse().ok()?;
            (words.next() == Some("pid")).then_some(())?;
            Some((number, words.next()?.parse().ok()?))
        })
        .collect();
    (listed, out)
}

/// Waits until `status` lists two workers, ready, none of them in `not`; their pids.
fn ready_workers(daemon: &Daemon, not: &[u32]) -> Vec<u32> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (listed, out) = workers(daemon);
        let ready = out
            .lines()
            .filter(|line| line.starts_with("worker ") && line.contains(" ready "))
            .count();
        let pids: Vec<u32> = listed.iter().map(|(_, pid)| *pid).collect();
        if listed.len() == 2 && ready == 2 && pids.iter().all(|pid| !not.contains(pid)) {
            return pids;
        }
        assert!(Instant::now() < deadline, "workers not ready: {out}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The parent pid of `pid`.
fn parent(pid: u32) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("PPid:"))
        .and_then(|ppid| ppid.trim().parse().ok())
        .expect("a PPid line")
}

/// One `GET path` on a new connection; the body.
fn get(port: u16, path: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: workers.test\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    assert!(response.starts_with("HTTP/1.1 200 "), "{response}");
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default()
}

/// Two workers, children of the master, both accepting on the one listening socket: `status`
/// lists them with their trees, `/metrics` and `/status` name the worker that answered (both
/// answer, over enough connections), and `stop` ends all three processes and removes the pid
/// file and the control socket.
fn two_workers_share_the_listeners(backend: &'static str) {
    let (port, http_port) = (free_port(), free_port());
    let daemon = with_workers(
        backend,
        port,
        &format!("http = \"127.0.0.1:{http_port}\"\n"),
    );
    let master = daemon.start();
    let pids = ready_workers(&daemon, &[]);
    for pid in &pids {
        assert_eq!(
            parent(*pid),
            master,
            "worker {pid} is not the master's child"
        );
    }
    let (_, status) = workers(&daemon);
    assert!(
        status.starts_with(&format!("pid {master}\nmaster of 2 workers\n")),
        "{status}"
    );
    // Each worker's tree, indented under it.
    assert_eq!(status.matches("\n    echo ").count(), 2, "{status}");

    let mut answered = BTreeSet::new();
    for _ in 0..400 {
        let metrics = get(http_port, "/metrics");
        let line = metrics
            .lines()
            .find(|line| line.starts_with("ginkgo_process_info{"))
            .unwrap_or_else(|| panic!("no ginkgo_process_info in {metrics}"));
        let pid: u32 = line
            .split("pid=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .and_then(|pid| pid.parse().ok())
            .expect("a pid label");
        assert!(
            pids.contains(&pid),
            "answered by {pid}, not a worker: {line}"
        );
        let number = line
            .split("worker=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next());
        assert!(matches!(number, Some("1" | "2")), "{line}");
        answered.insert(pid);
        if answered.len() == 2 {
            break;
        }
    }
    assert_eq!(
        answered.len(),
        2,
        "only {answered:?} answered 400 connections"
    );
    let json = get(http_port, "/status");
    assert!(
        json.contains("\"worker\": 1") || json.contains("\"worker\": 2"),
        "{json}"
    );

    let mut echo = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    echo.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    round_trip(&mut echo, b"through a worker\n").expect("echo");
    drop(echo);

    let started = Instant::now();
    let stopped = daemon.cmd(&["stop"]);
    assert_eq!(stopped.status.code(), Some(0), "{}", text(&stopped));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    for pid in pids.iter().chain([&master]) {
        assert!(!alive(*pid), "{pid} still runs after stop");
    }
    assert!(!daemon.pidfile().exists() && !daemon.socket().exists());
}

/// A worker killed with SIGKILL while clients connect and echo: the master starts a new one
/// (`status` then says restarts 1), the other worker serves on, and no connection is refused;
/// only what was in flight on the killed worker may fail.
fn killed_worker_is_replaced(backend: &'static str) {
    let port = free_port();
    let daemon = with_workers(backend, port, "");
    daemon.start();
    let pids = ready_workers(&daemon, &[]);
    let stop = Arc::new(AtomicBool::new(false));
    let clients = tolerant_traffic(port, stop.clone());
    std::thread::sleep(Duration::from_millis(300));
    kill(pids[0]);
    let replaced = ready_workers(&daemon, &[pids[0]]);
    assert!(
        replaced.contains(&pids[1]),
        "the other worker was replaced too"
    );
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    let (echoed, failed, refused) = clients.join().expect("the clients");
    assert_eq!(refused, 0, "refused connections");
    assert!(
        failed <= 2,
        "{failed} failed; only those in flight on the killed worker may"
    );
    assert!(echoed > 20, "too little traffic to tell: {echoed}");
    let (_, status) = workers(&daemon);
    assert!(status.contains(" restarts 1\n"), "{status}");
    let log = daemon.log();
    assert!(
        log.contains(&format!(
            "worker 1 (pid {}) was killed by SIGKILL; starting it again",
            pids[0]
        )) || log.contains(&format!(
            "worker 2 (pid {}) was killed by SIGKILL; starting it again",
            pids[0]
        )),
        "{log}"
    );
}

/// Clients echoing until `stop`, each message on a fresh connection: (echoed, failed after
/// connecting, refused).
fn tolerant_traffic(port: u16, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<(u64, u64, u64)> {
    std::thread::spawn(move || {
        let (mut echoed, mut failed, mut refused) = (0, 0, 0);
        let mut n = 0u64;
        while !stop.load(Ordering::SeqCst) {
            n += 1;
            match TcpStream::connect(("127.0.0.1", port)) {
                Ok(mut stream) => {
                    stream
                        .set_read_timeout(Some(Duration::from_secs(10)))
                        .expect("timeout");
                    match round_trip(&mut stream, format!("message {n}\n").as_bytes()) {
                        Ok(()) => echoed += 1,
                        Err(_) => failed += 1,
                    }
                }
                Err(err) => {
                    eprintln!("connect: {err}");
                    refused += 1;
                }
            }
        }
        (echoed, failed, refused)
    })
}

/// `reload` with a broken file: rejected by the master, naming the error; no worker reloads
/// (their log says nothing of a reload), and a worker that dies meanwhile is replaced on the
/// configuration in force. Fixed, `reload` reports each worker's answer.
fn bad_reload_reaches_no_worker(backend: &'static str) {
    let port = free_port();
    let good = format!("workers = 2\n{}", config(port, ""));
    let daemon = Daemon::new(Path::new(env!("CARGO_BIN_EXE_echo_on")), backend, &good);
    daemon.start();
    let pids = ready_workers(&daemon, &[]);
    daemon.write_config(&format!("{good}bnid = \"typo\"\n"));
    let rejected = daemon.cmd(&["reload"]);
    assert_ne!(rejected.status.code(), Some(0), "{}", text(&rejected));
    assert!(
        text(&rejected).contains("no worker was asked to reload")
            && text(&rejected).contains("echo.bnid"),
        "{}",
        text(&rejected)
    );
    assert!(
        !daemon.log().contains("services reloaded"),
        "a worker reloaded: {}",
        daemon.log()
    );
    // The broken file is still there: a worker that dies now is replaced on the
    // configuration the master has in force, not on the file.
    kill(pids[0]);
    let pids = ready_workers(&daemon, &[pids[0]]);
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("still serving");
    round_trip(&mut stream, b"served by the workers in force\n").expect("echo");
    daemon.write_config(&good.replace("[echo]", "loglevel = \"debug\"\n[echo]"));
    let reloaded = daemon.cmd(&["reload"]);
    assert_eq!(reloaded.status.code(), Some(0), "{}", text(&reloaded));
    let out = text(&reloaded);
    assert!(out.contains("changed: loglevel"), "{out}");
    for pid in &pids {
        assert!(
            out.contains(&format!("(pid {pid}): reloaded; changed: loglevel")),
            "{out}"
        );
    }
    assert_eq!(
        ready_workers(&daemon, &[]),
        pids,
        "reload replaced a worker"
    );
}

/// Two upgrades while clients connect and echo: master and workers are replaced each time,
/// nothing is refused, every message comes back, and the old processes are gone.
fn upgrades_replace_master_and_workers(backend: &'static str) {
    let port = free_port();
    let daemon = with_workers(backend, port, "");
    let mut master = daemon.start();
    let mut pids = ready_workers(&daemon, &[]);
    let stop = Arc::new(AtomicBool::new(false));
    let clients = traffic(port, stop.clone());
    for _ in 0..2 {
        std::thread::sleep(Duration::from_millis(200));
        let upgraded = daemon.cmd(&["upgrade"]);
        assert_eq!(upgraded.status.code(), Some(0), "{}", text(&upgraded));
        let new_master = daemon.pid();
        assert_ne!(new_master, master);
        let new_pids = ready_workers(&daemon, &pids);
        for pid in new_pids.iter() {
            assert_eq!(parent(*pid), new_master);
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        while pids.iter().chain([&master]).any(|pid| alive(*pid)) {
            assert!(Instant::now() < deadline, "old processes still run");
            std::thread::sleep(Duration::from_millis(20));
        }
        (master, pids) = (new_master, new_pids);
    }
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::SeqCst);
    let seen = clients.join().expect("the clients");
    assert!(seen.failed.is_empty(), "{seen:?}\n{}", daemon.log());
    assert_eq!(seen.refused, 0, "{seen:?}");
    assert!(seen.echoed > 20, "too little traffic to tell: {seen:?}");
}

/// A worker that dies more often than `worker_max_restarts` allows stops the master, which
/// names the worker and the limit; every process is gone and so are the pid file and socket.
fn too_many_worker_exits_stop_the_master(backend: &'static str) {
    let port = free_port();
    let daemon = with_workers(backend, port, "");
    std::fs::write(
        &daemon.config,
        format!("worker_max_restarts = 1\nworkers = 2\n{}", config(port, "")),
    )
    .expect("config");
    let master = daemon.start();
    let mut pids = ready_workers(&daemon, &[]);
    let other = pids[1];
    let mut killed = Vec::new();
    for _ in 0..2 {
        let (listed, _) = workers(&daemon);
        let (number, pid) = listed
            .iter()
            .copied()
            .find(|(_, pid)| *pid != other)
            .expect("the worker to kill");
        assert_eq!(number, 1);
        kill(pid);
        killed.push(pid);
        if killed.len() == 1 {
            pids = ready_workers(&daemon, &killed);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while alive(master) || alive(other) {
        assert!(
            Instant::now() < deadline,
            "the master or the other worker still runs"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = daemon.log();
    assert!(
        log.contains("that is 2 exits within worker_restart_window")
            && log.contains("more than worker_max_restarts 1"),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "worker 1 (pid {}) was killed by SIGKILL",
            killed[1]
        )),
        "{log}"
    );
    assert!(!daemon.pidfile().exists() && !daemon.socket().exists());
    drop(pids);
}

/// As root with `user = "nobody"`: the workers run as nobody, the master stays root (it starts
/// replacements). Not root: the drop cannot happen, and start fails saying why.
fn workers_drop_privileges(backend: &'static str) {
    let port = free_port();
    let daemon = with_workers(backend, port, "");
    std::fs::write(
        &daemon.config,
        format!("user = \"nobody\"\nworkers = 2\n{}", config(port, "")),
    )
    .expect("config");
    let started = daemon.cmd(&["start"]);
    if !is_root() {
        assert_ne!(started.status.code(), Some(0));
        assert!(text(&started).contains("needs root"), "{}", text(&started));
        return;
    }
    assert_eq!(started.status.code(), Some(0), "{}", text(&started));
    let master = daemon.pid();
    let uid = |pid: u32| -> Vec<String> {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .expect("status")
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .expect("Uid")
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(uid(master), ["0"; 4], "the master");
    for pid in ready_workers(&daemon, &[]) {
        assert_eq!(uid(pid), ["65534"; 4], "worker {pid}");
    }
    let mut echo = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    echo.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    round_trip(&mut echo, b"as nobody\n").expect("echo");
}

/// SIGUSR2 sent to a worker (as `systemctl kill -s USR2` sends it to every process of the
/// unit) is ignored there, with a word in the log: the worker serves on, not replaced.
fn sigusr2_to_a_worker_is_ignored(backend: &'static str) {
    let port = free_port();
    let daemon = with_workers(backend, port, "");
    daemon.start();
    let pids = ready_workers(&daemon, &[]);
    let worker =
        rustix::process::Pid::from_raw(i32::try_from(pids[0]).expect("a pid")).expect("not 0");
    rustix::process::kill_process(worker, rustix::process::Signal::USR2).expect("SIGUSR2");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !daemon.log().contains("SIGUSR2 ignored") {
        assert!(
            Instant::now() < deadline,
            "no word of SIGUSR2: {}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(ready_workers(&daemon, &[]), pids, "a worker was replaced");
    let (_, status) = workers(&daemon);
    assert!(!status.contains(" restarts 1\n"), "{status}");
    let mut echo = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    echo.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    round_trip(&mut echo, b"after SIGUSR2\n").expect("echo");
}

/// SIGKILL to `pid`.
fn kill(pid: u32) {
    let pid = rustix::process::Pid::from_raw(i32::try_from(pid).expect("a pid")).expect("not 0");
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).expect("SIGKILL");
}

/// Under systemd (`NOTIFY_SOCKET`, in the foreground): only the master notifies. `READY=1`
/// names the master and comes once both workers are ready; a reload is `RELOADING=1` then
/// `READY=1`; stop is `STOPPING=1`. Nothing from a worker arrives in between.
fn only_the_master_talks_to_systemd(backend: &'static str) {
    let port = free_port();
    let daemon = with_workers(backend, port, "");
    let notify = Notify::new(&daemon);
    let receive = || notify.receive();
    let running = notify.run(&daemon);
    let master = running.child.id();
    let ready = receive();
    assert!(
        ready.starts_with("READY=1") && ready.contains(&format!("MAINPID={master}")),
        "{ready}"
    );
    // Both workers were ready before the master said so.
    let (listed, status) = workers(&daemon);
    assert_eq!(listed.len(), 2, "{status}");
    // Two worker lines and two trees of two services (app, app/echo).
    assert_eq!(status.matches(" ready ").count(), 2 + 2 * 2, "{status}");
    let reloaded = daemon.cmd(&["reload"]);
    assert_eq!(reloaded.status.code(), Some(0), "{}", text(&reloaded));
    assert!(receive().starts_with("RELOADING=1"));
    assert!(receive().starts_with("READY=1"));
    let stopped = daemon.cmd(&["stop"]);
    assert_eq!(stopped.status.code(), Some(0), "{}", text(&stopped));
    let stopping = receive();
    assert!(stopping.starts_with("STOPPING=1"), "{stopping}");
    assert_eq!(running.wait().code(), Some(0));
    // Nothing more: no worker had the socket.
    assert!(
        notify.quiet(Duration::from_millis(200)),
        "another notification"
    );
}

/// The master killed with SIGKILL: its workers notice (their pair to it closes) and stop; a
/// new `start` recovers the stale pid file and serves again.
fn workers_stop_when_the_master_dies(backend: &'static str) {
    let port = free_port();
    let daemon = with_workers(backend, port, "");
    let master = daemon.start();
    let pids = ready_workers(&daemon, &[]);
    kill(master);
    let deadline = Instant::now() + Duration::from_secs(15);
    while pids.iter().any(|pid| alive(*pid)) {
        assert!(Instant::now() < deadline, "workers outlive their master");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        daemon.log().contains("the master is gone; stopping"),
        "{}",
        daemon.log()
    );
    let again = daemon.start();
    assert_ne!(again, master);
    ready_workers(&daemon, &pids);
    let mut echo = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    echo.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    round_trip(&mut echo, b"after the master died\n").expect("echo");
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// systemd's file descriptor store with a prefork master: the master stores the listener it
/// bound; after it is killed (and its workers, seeing it gone, have stopped) the listener lives
/// on in the store, and the master started again hands the socket it got back by name to new
/// workers, which answer the client that connected in between.
fn fd_store_keeps_the_masters_listener_across_a_crash(backend: &'static str) {
    let port = free_port();
    let daemon = with_workers(backend, port, "");
    std::fs::write(
        &daemon.config,
        format!("fd_store = true\nworkers = 2\n{}", config(port, "")),
    )
    .expect("config");
    ginkgo_tests::daemon::fd_store_survives_a_crash(
        &daemon,
        port,
        Path::new(env!("CARGO_BIN_EXE_activate")),
        || ready_workers(&daemon, &[]),
        |pids| {
            let deadline = Instant::now() + Duration::from_secs(20);
            while pids.iter().any(|pid| alive(*pid)) {
                assert!(
                    Instant::now() < deadline,
                    "the workers outlived their master"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        },
    );
}

ginkgo_tests::on_every_backend!(
    fd_store_keeps_the_masters_listener_across_a_crash,
    two_workers_share_the_listeners,
    killed_worker_is_replaced,
    sigusr2_to_a_worker_is_ignored,
    bad_reload_reaches_no_worker,
    upgrades_replace_master_and_workers,
    too_many_worker_exits_stop_the_master,
    workers_drop_privileges,
    only_the_master_talks_to_systemd,
    workers_stop_when_the_master_dies,
);
