//! The example programs as real processes: echo is byte-exact, and the numbers rate changes
//! live after a reload.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use ginkgo_api::signal::Signal;
use ginkgo_tests::process::{Running, dir, example, file, free_port, proc_stat_fields};

fn connect(port: u16) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(stream) => return stream,
            Err(err) if Instant::now() < deadline => {
                let _ = err;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(err) => panic!("cannot connect to port {port}: {err}"),
        }
    }
}

#[test]
fn echo_example_is_byte_exact() {
    let port = free_port();
    // Declared before the child, so the child is reaped before its directory goes.
    let rundir = dir();
    let running = Running::start(
        &example("echo"),
        &[
            "-s",
            &format!("echo.bind=127.0.0.1:{port}"),
            "-s",
            &format!("rundir={}", rundir.path().display()),
        ],
        &[],
    );
    running.expect_line("ready");
    let mut stream = connect(port);
    let message: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
    let mut writer = stream.try_clone().expect("clone");
    let sent = message.clone();
    let writing = std::thread::spawn(move || writer.write_all(&sent));
    let mut echoed = vec![0u8; message.len()];
    stream.read_exact(&mut echoed).expect("echo");
    writing.join().expect("writer").expect("write");
    assert!(echoed == message);
    running.signal(Signal::Term);
    assert!(running.wait().success());
}

/// Counts the lines a connection receives in `window`.
fn lines_in(reader: &mut BufReader<TcpStream>, window: Duration) -> usize {
    let end = Instant::now() + window;
    let mut count = 0;
    let mut line = String::new();
    while Instant::now() < end {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) => {
                let n: u8 = line.trim().parse().expect("a number per line");
                assert!(n <= 10, "numbers are 0 to 10, got {n}");
                count += 1;
            }
            Err(err)
                if err.kind() == std::io::ErrorKind::WouldBlock
                    || err.kind() == std::io::ErrorKind::TimedOut => {}
            Err(err) => panic!("read: {err}"),
        }
    }
    count
}

#[test]
fn numbers_rate_changes_after_reload() {
    let port = free_port();
    let config = file(&format!(
        "[numbers]\nbind = \"127.0.0.1:{port}\"\nrate_per_minute = 600\nclient = false\n"
    ));
    let rundir = dir();
    let running = Running::start(
        &example("numbers"),
        &[
            "-c",
            config.to_str().expect("utf-8"),
            "-s",
            &format!("rundir={}", rundir.path().display()),
        ],
        &[],
    );
    running.expect_line("ready");
    let stream = connect(port);
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let mut reader = BufReader::new(stream);
    let slow = lines_in(&mut reader, Duration::from_secs(1));
    assert!(
        (3..=20).contains(&slow),
        "about 10 a second at 600 a minute, got {slow}"
    );

    std::fs::write(
        &config,
        format!("[numbers]\nbind = \"127.0.0.1:{port}\"\nrate_per_minute = 6000\nclient = false\n"),
    )
    .expect("edit");
    running.signal(Signal::Hup);
    running.expect_line("configuration reloaded");
    let _ = lines_in(&mut reader, Duration::from_millis(200)); // the pause of the old rate
    let fast = lines_in(&mut reader, Duration::from_secs(1));
    assert!(
        fast >= slow * 3,
        "after the reload: {fast} lines a second, before: {slow}"
    );
    running.signal(Signal::Term);
    assert!(running.wait().success());
}

/// A plain HTTP/1.1 GET; returns the status code and body.
fn get(port: u16, path: &str) -> (u16, String) {
    let mut stream = connect(port);
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn hello_server_composes_tcp_client_and_web() {
    let (tcp, web) = (free_port(), free_port());
    let rundir = dir();
    let running = Running::start(
        &example("hello_server"),
        &[
            "-s",
            &format!("hello_server.tcp_bind=127.0.0.1:{tcp}"),
            "-s",
            &format!("hello_server.web_bind=127.0.0.1:{web}"),
            "-s",
            &format!("rundir={}", rundir.path().display()),
        ],
        &[],
    );
    // The tree is ready only once its client has connected to its server.
    running.expect_line("ready");
    let (status, _) = get(web, "/readyz");
    assert_eq!(status, 200, "the whole tree is ready, client connected");

    let mut stream = connect(tcp);
    let mut greeting = String::new();
    BufReader::new(stream.try_clone().expect("clone"))
        .read_line(&mut greeting)
        .expect("greeting");
    assert!(greeting.starts_with("Hello, 127.0.0.1:"), "{greeting}");
    stream.write_all(b"echo me\n").expect("write");

    let (status, body) = get(web, "/");
    assert_eq!(status, 200);
    assert_eq!(body.trim(), "Hello World: 2 greetings so far");
    let (status, metrics) = get(web, "/metrics");
    assert_eq!(status, 200);
    assert!(
        metrics.contains("name=\"connections_accepted\"} 2"),
        "{metrics}"
    );
    running.signal(Signal::Term);
    assert!(running.wait().success());
}

/// CPU time (user + system) of process `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let fields = proc_stat_fields(pid);
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

#[test]
fn accept_backs_off_when_out_of_file_descriptors() {
    let port = free_port();
    let echo = example("echo");
    // prlimit (util-linux) gives the server so few descriptors that accepting runs out.
    let rundir = dir();
    let running = Running::start(
        std::path::Path::new("prlimit"),
        &[
            "--nofile=48:48",
            echo.to_str().expect("utf-8"),
            "-s",
            &format!("echo.bind=127.0.0.1:{port}"),
            "-s",
            &format!("rundir={}", rundir.path().display()),
        ],
        &[],
    );
    running.expect_line("ready");
    let pid = running.child.id();
    let clients: Vec<TcpStream> = (0..60).map(|_| connect(port)).collect();
    running.expect_line("accept failed; backing off");
    // Out of descriptors with connections waiting: a spinning accept loop would burn a whole
    // core; backing off costs next to nothing.
    let before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(1));
    let used = cpu_ticks(pid) - before;
    assert!(
        used < 30,
        "{used} ticks of CPU in one second while out of descriptors"
    );
    drop(clients);
    // Descriptors freed: it serves again.
    let mut stream = connect(port);
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    stream.write_all(b"back\n").expect("write");
    let mut reply = [0u8; 5];
    stream.read_exact(&mut reply).expect("echo after recovery");
    assert_eq!(&reply, b"back\n");
    running.signal(Signal::Term);
}

/// The echo example on a Unix socket, with the socket file's mode from a setting; the file is
/// gone once it has stopped.
#[test]
fn echo_example_serves_unix_socket() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::net::UnixStream;
    let rundir = dir();
    let socket = rundir.path().join("app.sock");
    let running = Running::start(
        &example("echo"),
        &[
            "-s",
            &format!("echo.bind=unix:{}", socket.display()),
            "-s",
            "echo.unix_mode=0o660",
            "-s",
            &format!("rundir={}", rundir.path().display()),
        ],
        &[],
    );
    running.expect_line("ready");
    let mode = std::fs::metadata(&socket)
        .expect("the socket file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o660);
    let mut stream = UnixStream::connect(&socket).expect("connect");
    stream.write_all(b"over a unix socket").expect("write");
    let mut echoed = [0u8; 18];
    stream.read_exact(&mut echoed).expect("echo");
    assert_eq!(&echoed, b"over a unix socket");
    drop(stream);
    running.signal(Signal::Term);
    assert!(running.wait().success());
    assert!(!socket.exists(), "the socket file is removed on stop");
}

/// Connects to the TLS echo example on `port`, trusting `ca`; checks a round trip and returns
/// the certificate the server presented.
fn tls_echo(port: u16, ca: &std::path::Path) -> ginkgo_tls::CertificateDer<'static> {
    use ginkgo_api::io::{AsyncReadExt, AsyncWriteExt};
    type R = ginkgo_backend_smol::Smol;
    let connector = ginkgo_tls::TlsConnector::new(ginkgo_tls::ClientTls::new().ca(ca))
        .expect("client settings");
    drop(connect(port)); // waits until it listens
    ginkgo_api::block_on::<R, _>(async move {
        let tcp = ginkgo_api::net::TcpStream::<R>::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        let mut tls = ginkgo_net::Stream::from(tcp)
            .connect_tls(&connector, "localhost")
            .await
            .expect("handshake");
        tls.write_all(b"over tls").await.expect("write");
        let mut echoed = [0u8; 8];
        tls.read_exact(&mut echoed).await.expect("echo");
        assert_eq!(&echoed, b"over tls");
        tls.peer_identity()
            .expect("the server's certificate")
            .certificate()
            .clone()
    })
}

/// The echo example with `echo.tls.cert` and `echo.tls.key`: serves TLS; `reload` with
/// renewed files serves the new certificate; `reload` with a broken file is refused, naming
/// it (exit non-zero), and the old certificate stays; `check` refuses a mismatched key.
#[test]
fn echo_example_serves_tls_and_reloads_its_certificate() {
    use ginkgo_tests::support::certs::Pki;
    let pki = Pki::new("echo");
    let first = pki.server("live");
    let port = free_port();
    let rundir = dir();
    let args = [
        "-s".to_owned(),
        format!("echo.bind=127.0.0.1:{port}"),
        "-s".to_owned(),
        format!("echo.tls.cert={}", first.cert.display()),
        "-s".to_owned(),
        format!("echo.tls.key={}", first.key.display()),
        "-s".to_owned(),
        format!("rundir={}", rundir.path().display()),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let running = Running::start(&example("echo"), &args, &[]);
    running.expect_line("ready");
    assert_eq!(tls_echo(port, &pki.ca), first.der);

    let reload = |expect_ok: bool| {
        let output = std::process::Command::new(example("echo"))
            .args(&args)
            .arg("reload")
            .output()
            .expect("run echo reload");
        assert_eq!(
            output.status.success(),
            expect_ok,
            "echo reload: {output:?}"
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr)
    };
    let renewed = pki.server("live");
    reload(true);
    assert_eq!(tls_echo(port, &pki.ca), renewed.der, "the new certificate");

    std::fs::write(&renewed.cert, b"-----BEGIN CERTIFICATE-----\ngarbage\n").expect("break it");
    let said = reload(false);
    assert!(
        said.contains(&renewed.cert.display().to_string()),
        "the refusal names the file: {said}"
    );
    assert_eq!(
        tls_echo(port, &pki.ca),
        renewed.der,
        "the old certificate stays"
    );
    running.signal(Signal::Term);
    assert!(running.wait().success());

    let (good, other) = (pki.server("good"), pki.server("other"));
    let output = std::process::Command::new(example("echo"))
        .args([
            "-s",
            &format!("echo.tls.cert={}", good.cert.display()),
            "-s",
            &format!("echo.tls.key={}", other.key.display()),
            "-s",
            &format!("rundir={}", rundir.path().display()),
            "check",
        ])
        .output()
        .expect("run echo check");
    let said = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(78), "check exits 78: {said}");
    assert!(
        said.contains("does not belong") && said.contains(&other.key.display().to_string()),
        "check names the key and the reason: {said}"
    );
}

/// The `http` example's listener settings reach its server: with `http.max_connections = 1` a
/// second connection waits in the backlog, unanswered, until the first closes.
#[test]
fn http_example_applies_its_listener_settings() {
    let port = free_port();
    let rundir = dir();
    let running = Running::start(
        &example("http"),
        &[
            "-s",
            &format!("http.bind=127.0.0.1:{port}"),
            "-s",
            "http.max_connections=1",
            "-s",
            "http.backlog=16",
            "-s",
            "http.keepalive=30s",
            "-s",
            &format!("rundir={}", rundir.path().display()),
        ],
        &[],
    );
    running.expect_line("ready");
    let request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    let answered = |stream: &mut TcpStream| {
        let mut buf = [0u8; 1024];
        let mut seen = Vec::new();
        while !String::from_utf8_lossy(&seen).contains("hello from ginkgo") {
            let n = stream.read(&mut buf)?;
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
        }
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&seen).into_owned())
    };
    let mut first = connect(port);
    first.write_all(request).expect("first request");
    assert!(
        answered(&mut first)
            .expect("first")
            .starts_with("HTTP/1.1 200 ")
    );
    let mut second = connect(port);
    second.write_all(request).expect("second request");
    second
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let waited = answered(&mut second);
    assert!(
        waited.is_err(),
        "answered beside the first connection: {waited:?}"
    );
    drop(first);
    second
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    assert!(
        answered(&mut second)
            .expect("second")
            .starts_with("HTTP/1.1 200 ")
    );
    running.signal(Signal::Term);
    assert!(running.wait().success());
}

/// `echo.only_v6` reaches the listener: on `[::]` with it set, IPv6 clients are served and
/// IPv4 ones refused. (Loopback has IPv6 on the machines `.ci/run` targets; a host without it
/// fails here, saying so.)
#[test]
fn echo_example_only_v6_setting() {
    let port = free_port();
    let rundir = dir();
    let running = Running::start(
        &example("echo"),
        &[
            "-s",
            &format!("echo.bind=[::]:{port}"),
            "-s",
            "echo.only_v6=true",
            "-s",
            &format!("rundir={}", rundir.path().display()),
        ],
        &[],
    );
    running.expect_line("ready");
    let mut v6 = TcpStream::connect(("::1", port))
        .unwrap_or_else(|err| panic!("connect to [::1]:{port} (needs IPv6 on loopback): {err}"));
    v6.write_all(b"six").expect("write");
    let mut echoed = [0u8; 3];
    v6.read_exact(&mut echoed).expect("echo");
    assert_eq!(&echoed, b"six");
    let v4 = TcpStream::connect(("127.0.0.1", port));
    assert!(
        v4.is_err(),
        "an IPv4 client was accepted on an IPv6-only listener"
    );
    drop(v6);
    running.signal(Signal::Term);
    assert!(running.wait().success());
}

/// Runs `program` with `args` to the end and returns what it printed.
fn output(program: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .expect("run the command");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The cluster example in one process, on the in-process bus and store: it finds itself,
/// leads, hands numbers to its worker, and `status` says so; `config` asks the daemon.
#[test]
fn cluster_example_runs_alone_on_the_local_implementation() {
    let cluster = ginkgo_tests::process::example_with("cluster", "nats");
    let rundir = dir();
    let rundir_arg = format!("rundir={}", rundir.path().display());
    let running = Running::start(
        &cluster,
        &[
            "-s",
            &rundir_arg,
            "-s",
            "cluster.instance=solo",
            "-s",
            "cluster.rate_per_second=50",
        ],
        &[],
    );
    running.expect_line("ready");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        let status = output(&cluster, &["-s", &rundir_arg, "status"]);
        if status.contains("peers: solo; leader: solo") && status.contains("last result:") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "status never showed the cluster:\n{status}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        status.contains("leading cluster_dispatcher as solo"),
        "{status}"
    );
    let config = output(&cluster, &["-s", &rundir_arg, "config"]);
    assert!(
        config.starts_with("# the settings in force in the running cluster (pid"),
        "{config}"
    );
    assert!(config.contains("cluster.rate_per_second = 50"), "{config}");
    running.signal(Signal::Term);
    assert!(running.wait().success());
}
