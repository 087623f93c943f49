//! Listeners: Unix-domain servers (stale files, modes, peer credentials), listener options
//! (backlog, SO_REUSEPORT, IPV6_V6ONLY, TCP_NODELAY, keepalive), pause and resume.

use std::io;
use std::path::Path;
use std::time::Duration;

use ginkgo_api::Runtime;
use ginkgo_api::io::{AsyncReadExt, AsyncWriteExt};
use ginkgo_api::net::{TcpStream, UnixStream};
use ginkgo_api::service::tree;
use ginkgo_api::time::timeout;
use ginkgo_net::{Connection, Listen, ListenOptions, LocalAddr, StreamServer};

use crate::support::{counter, eventually};

const LIMIT: Duration = Duration::from_secs(30);

/// Writes one line about the peer and closes: what the handler was told about who connected.
async fn describe_peer<R: Runtime>(mut conn: Connection<R>) -> io::Result<()> {
    let line = match conn.peer.credentials() {
        Some(c) => format!("{} {} {}\n", c.pid.unwrap_or(0), c.uid, c.gid),
        None => format!("tcp {}\n", conn.peer),
    };
    conn.stream.write_all(line.as_bytes()).await?;
    conn.stream.close().await
}

async fn read_all<R: Runtime, S: ginkgo_api::io::AsyncRead + Unpin>(mut stream: S) -> String {
    let mut text = String::new();
    timeout::<R, _>(LIMIT, stream.read_to_string(&mut text))
        .await
        .expect("the server answers in time")
        .expect("read the answer");
    text
}

/// A server on `unix:PATH`: the handler sees the peer's pid, uid and gid; the address says
/// where; the socket file is gone once the server stops.
pub async fn unix_server_knows_peer_credentials<R: Runtime>() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("app.sock");
    let server = StreamServer::<R, _>::new(
        "unix",
        format!("unix:{}", path.display()),
        describe_peer::<R>,
    );
    let address = server.address();
    let tree = tree::<R>(server);
    tree.start().await.expect("start");
    assert_eq!(address.get(), Some(LocalAddr::Unix(Some(path.clone()))));
    assert_eq!(address.local_addr(), None, "no TCP address");
    let client = UnixStream::<R>::connect(&path).await.expect("connect");
    let answer = read_all::<R, _>(client).await;
    let me = format!(
        "{} {} {}\n",
        std::process::id(),
        rustix::process::geteuid().as_raw(),
        rustix::process::getegid().as_raw()
    );
    assert_eq!(answer, me, "the handler saw this process's credentials");
    assert!(tree.stop().await.is_clean());
    assert!(!path.exists(), "the socket file is removed on stop");
}

/// A stale socket file (nothing listens on it) is replaced; a live one is not, nor is a file
/// that is not a socket, and the errors say so and name the path.
pub async fn unix_stale_socket_replaced_live_one_kept<R: Runtime>() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("app.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).expect("a stale socket"));
    assert!(path.exists(), "a dropped listener leaves its file");
    let listen = format!("unix:{}", path.display());
    let first = tree::<R>(StreamServer::<R, _>::new(
        "first",
        listen.as_str(),
        describe_peer::<R>,
    ));
    first
        .start()
        .await
        .expect("a stale socket file is replaced");

    let second = tree::<R>(StreamServer::<R, _>::new(
        "second",
        listen.as_str(),
        describe_peer::<R>,
    ));
    let failure = second.start().await.expect_err("the socket is live");
    let message = failure.to_string();
    assert!(
        message.contains(&path.display().to_string()) && message.contains("another process"),
        "the error names the path and the reason: {message}"
    );
    // The first server still serves on it.
    let answer = read_all::<R, _>(UnixStream::<R>::connect(&path).await.expect("connect")).await;
    assert!(answer.ends_with('\n'), "served: {answer:?}");
    assert!(first.stop().await.is_clean());

    let file = dir.path().join("data");
    std::fs::write(&file, b"precious").expect("write a file");
    let third = tree::<R>(StreamServer::<R, _>::new(
        "third",
        format!("unix:{}", file.display()),
        describe_peer::<R>,
    ));
    let failure = third.start().await.expect_err("not a socket");
    assert!(
        failure.to_string().contains("is not a socket"),
        "the error says why: {failure}"
    );
    assert_eq!(std::fs::read(&file).expect("still there"), b"precious");
}

/// `unix_mode` sets the socket file's permission bits.
pub async fn unix_socket_mode_is_set<R: Runtime>() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    for mode in [0o600, 0o660] {
        let path = dir.path().join(format!("mode-{mode:o}.sock"));
        let server = StreamServer::<R, _>::new(
            "unix",
            format!("unix:{}", path.display()),
            describe_peer::<R>,
        )
        .listen_options(ListenOptions {
            unix_mode: Some(mode),
            ..ListenOptions::default()
        });
        let tree = tree::<R>(server);
        tree.start().await.expect("start");
        let bits = std::fs::metadata(&path)
            .expect("socket file")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(bits, mode, "mode of {}", path.display());
        assert!(tree.stop().await.is_clean());
    }
}

/// How many of `attempts` connections, made one after the other to a server that does not
/// accept, the kernel completes: the listen backlog plus one.
async fn queued_connections<R: Runtime>(addr: std::net::SocketAddr, attempts: usize) -> usize {
    let mut open = Vec::new();
    for _ in 0..attempts {
        // A full accept queue drops the SYN, so the connect waits for a retransmit (1 s).
        match timeout::<R, _>(Duration::from_millis(300), TcpStream::<R>::connect(addr)).await {
            Ok(Ok(stream)) => open.push(stream),
            Ok(Err(err)) => panic!("connect failed: {err}"),
            Err(_) => break,
        }
    }
    open.len()
}

/// The backlog is 1024 by default (not std's 128) and settable: with accepting paused, the
/// kernel queues that many connections.
pub async fn listen_backlog_default_and_set<R: Runtime>() {
    let somaxconn: usize = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(4096);
    assert!(
        somaxconn >= 1024,
        "net.core.somaxconn is {somaxconn}: the kernel caps every backlog there; raise it with \
         `sysctl -w net.core.somaxconn=4096`"
    );
    for (options, attempts, expected) in [
        (ListenOptions::default(), 300, 300..=300),
        (
            ListenOptions {
                backlog: 16,
                ..ListenOptions::default()
            },
            300,
            16..=18,
        ),
    ] {
        let server = StreamServer::<R, _>::new("queue", "127.0.0.1:0", describe_peer::<R>)
            .listen_options(options.clone());
        server.accept_control().pause();
        let address = server.address();
        let tree = tree::<R>(server);
        tree.start().await.expect("start");
        let queued = queued_connections::<R>(address.local_addr().expect("bound"), attempts).await;
        assert!(
            expected.contains(&queued),
            "backlog {}: the kernel queued {queued} connections, expected {expected:?}",
            options.backlog
        );
        assert_eq!(
            counter(&tree, "connections_accepted"),
            0,
            "paused throughout"
        );
        assert!(tree.stop().await.is_clean());
    }
}

/// Paused, a server accepts nothing (the snapshot says so) while connections wait in the
/// backlog; resumed, it serves them.
pub async fn pause_and_resume_accepting<R: Runtime>() {
    let server = StreamServer::<R, _>::new("pausable", "127.0.0.1:0", describe_peer::<R>);
    let control = server.accept_control();
    let address = server.address();
    let tree = tree::<R>(server);
    tree.start().await.expect("start");
    let addr = address.local_addr().expect("bound");
    let answer = read_all::<R, _>(TcpStream::<R>::connect(addr).await.expect("connect")).await;
    assert!(answer.starts_with("tcp 127.0.0.1:"), "served: {answer:?}");

    control.pause();
    eventually::<R>("the snapshot shows the pause", LIMIT, || {
        counter(&tree, "accept_paused") == 1
    })
    .await;
    let mut waiting = TcpStream::<R>::connect(addr)
        .await
        .expect("the kernel queues it");
    let mut byte = [0u8; 1];
    let early = timeout::<R, _>(Duration::from_millis(300), waiting.read(&mut byte)).await;
    assert!(early.is_err(), "not served while paused: {early:?}");
    assert_eq!(counter(&tree, "connections_accepted"), 1);

    control.resume();
    let answer = read_all::<R, _>(waiting).await;
    assert!(
        answer.starts_with("tcp 127.0.0.1:"),
        "served once resumed: {answer:?}"
    );
    assert_eq!(counter(&tree, "accept_paused"), 0);
    assert_eq!(counter(&tree, "connections_accepted"), 2);
    assert!(tree.stop().await.is_clean());
}

/// With `SO_REUSEPORT` two servers share a port; without it the second fails, naming the
/// address.
pub async fn reuse_port_shares_a_port<R: Runtime>() {
    let reuse = ListenOptions {
        reuse_port: true,
        ..ListenOptions::default()
    };
    let first = StreamServer::<R, _>::new("first", "127.0.0.1:0", describe_peer::<R>)
        .listen_options(reuse.clone());
    let address = first.address();
    let first = tree::<R>(first);
    first.start().await.expect("start");
    let addr = address.local_addr().expect("bound").to_string();
    let second = tree::<R>(
        StreamServer::<R, _>::new("second", addr.as_str(), describe_peer::<R>)
            .listen_options(reuse),
    );
    second.start().await.expect("a second socket on the port");
    let third = tree::<R>(StreamServer::<R, _>::new(
        "third",
        addr.as_str(),
        describe_peer::<R>,
    ));
    let failure = third.start().await.expect_err("the port is taken");
    assert!(
        failure.to_string().contains(&addr),
        "the error names the address: {failure}"
    );
    for tree in [first, second] {
        assert!(tree.stop().await.is_clean());
    }
}

/// `IPV6_V6ONLY`: `[::]` with `only_v6: Some(true)` refuses IPv4 clients; with `Some(false)`
/// serves them.
pub async fn only_v6_decides_dual_stack<R: Runtime>() {
    for (only_v6, serves_v4) in [(true, false), (false, true)] {
        let server = StreamServer::<R, _>::new("v6", "[::]:0", describe_peer::<R>).listen_options(
            ListenOptions {
                only_v6: Some(only_v6),
                ..ListenOptions::default()
            },
        );
        let address = server.address();
        let tree = tree::<R>(server);
        tree.start().await.expect("start on [::]");
        let port = address.local_addr().expect("bound").port();
        let v6 = TcpStream::<R>::connect(("::1", port)).await;
        assert!(v6.is_ok(), "IPv6 is served: {v6:?}");
        let v4 = TcpStream::<R>::connect(("127.0.0.1", port)).await;
        assert_eq!(
            v4.is_ok(),
            serves_v4,
            "only_v6 = {only_v6}: IPv4 connect gave {v4:?}"
        );
        assert!(tree.stop().await.is_clean());
    }
}

/// Accepted TCP connections get `TCP_NODELAY` (by default) and keepalive (when set).
pub async fn accepted_connections_get_socket_options<R: Runtime>() {
    for (nodelay, keepalive) in [(true, Some(Duration::from_secs(42))), (false, None)] {
        let server = StreamServer::<R, _>::new(
            "options",
            "127.0.0.1:0",
            |mut conn: Connection<R>| async move {
                let tcp = conn.stream.as_tcp().expect("a TCP connection");
                let socket = socket2::SockRef::from(tcp);
                let line = format!(
                    "{} {} {}\n",
                    tcp.nodelay()?,
                    socket.keepalive()?,
                    socket.tcp_keepalive_time()?.as_secs()
                );
                conn.stream.write_all(line.as_bytes()).await?;
                conn.stream.close().await
            },
        )
        .listen_options(ListenOptions {
            nodelay,
            keepalive,
            ..ListenOptions::default()
        });
        let address = server.address();
        let tree = tree::<R>(server);
        tree.start().await.expect("start");
        let client = TcpStream::<R>::connect(address.local_addr().expect("bound"))
            .await
            .expect("connect");
        let answer = read_all::<R, _>(client).await;
        let mut fields = answer.split_whitespace();
        assert_eq!(
            fields.next(),
            Some(nodelay.to_string().as_str()),
            "{answer}"
        );
        assert_eq!(
            fields.next(),
            Some(keepalive.is_some().to_string().as_str()),
            "{answer}"
        );
        if let Some(idle) = keepalive {
            assert_eq!(
                fields.next(),
                Some(idle.as_secs().to_string().as_str()),
                "{answer}"
            );
        }
        assert!(tree.stop().await.is_clean());
    }
}

/// An inherited Unix listener is served, and its file is left alone on stop (it is not ours).
pub async fn unix_inherited_listener_is_served<R: Runtime>() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("inherited.sock");
    let std_listener = std::os::unix::net::UnixListener::bind(&path).expect("bind");
    let server =
        StreamServer::<R, _>::new("inherited", Listen::from(std_listener), describe_peer::<R>);
    let tree = tree::<R>(server);
    tree.start().await.expect("start");
    let answer = read_all::<R, _>(UnixStream::<R>::connect(&path).await.expect("connect")).await;
    assert!(
        answer.starts_with(&std::process::id().to_string()),
        "{answer}"
    );
    assert!(tree.stop().await.is_clean());
    assert!(
        Path::new(&path).exists(),
        "an inherited socket's file is its owner's"
    );
}
