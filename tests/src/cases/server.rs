//! StreamServer and StreamClient: echo at scale, the connection limit, graceful stop,
//! reconnects, errors contained.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ginkgo_api::Runtime;
use ginkgo_api::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use ginkgo_api::net::TcpStream;
use ginkgo_api::service::{Cause, Hook, Options, State, tree};
use ginkgo_api::sync::Semaphore;
use ginkgo_api::time::{sleep, timeout};
use ginkgo_net::{ClientConnection, Connection, StreamClient, StreamServer};

use crate::support::{DropProbe, echo, eventually};

const LIMIT: Duration = Duration::from_secs(60);

fn counter(snapshot: &ginkgo_api::service::Snapshot, name: &str) -> u64 {
    snapshot
        .counters
        .iter()
        .find(|(n, _)| n == name)
        .map_or(0, |(_, v)| *v)
}

/// A thousand concurrent clients each get their own bytes back, exactly.
pub async fn stream_echo_1000_clients<R: Runtime>() {
    let server = StreamServer::<R, _>::new("echo", "127.0.0.1:0", echo::<R>);
    let address = server.address();
    let tree = tree::<R>(server);
    tree.start().await.expect("start");
    let addr = address.local_addr().expect("bound");
    let connecting = Arc::new(Semaphore::new(64));
    let clients: Vec<_> = (0..1000u32)
        .map(|i| {
            let connecting = connecting.clone();
            ginkgo_api::spawn::<R, _>(async move {
                let permit = connecting.acquire().await;
                let mut stream = TcpStream::<R>::connect(addr).await?;
                drop(permit);
                let message: Vec<u8> = (0..2048u32).map(|j| (i * 31 + j) as u8).collect();
                let (mut read, mut write) = stream_halves::<R>(&mut stream);
                let writer = async { write.write_all(&message).await };
                let mut echoed = vec![0u8; message.len()];
                let reader = async { read.read_exact(&mut echoed).await };
                let (w, r) = futures_lite::future::zip(writer, reader).await;
                w?;
                r?;
                assert!(echoed == message, "client {i} got other bytes back");
                std::io::Result::Ok(())
            })
        })
        .collect();
    timeout::<R, _>(LIMIT, async {
        for client in clients {
            client.await.expect("client task").expect("client io");
        }
    })
    .await
    .expect("all echoed in time");
    eventually::<R>("connections closed", LIMIT, || {
        counter(&tree.snapshot(), "connections_closed") == 1000
    })
    .await;
    let snapshot = tree.snapshot();
    assert_eq!(counter(&snapshot, "connections_accepted"), 1000);
    assert_eq!(counter(&snapshot, "connections_active"), 0);
    assert!(tree.stop().await.is_clean());
}

/// Borrowed read and write halves of one stream (both directions used concurrently).
fn stream_halves<R: Runtime>(
    stream: &mut TcpStream<R>,
) -> (
    impl ginkgo_api::io::AsyncRead + Unpin + '_,
    impl ginkgo_api::io::AsyncWrite + Unpin + '_,
) {
    futures_lite::io::split(stream)
}

/// At the limit the server stops accepting; below it, it accepts again.
pub async fn max_connections_holds<R: Runtime>() {
    let open = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (o, m) = (open.clone(), most.clone());
    let server =
        StreamServer::<R, _>::new("limited", "127.0.0.1:0", move |mut conn: Connection<R>| {
            let (open, most) = (o.clone(), m.clone());
            async move {
                let now = open.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                // Hold the connection until the client closes it.
                let mut buf = [0u8; 16];
                while conn.stream.read(&mut buf).await? > 0 {}
                open.fetch_sub(1, Ordering::SeqCst);
                std::io::Result::Ok(())
            }
        })
        .max_connections(3);
    let address = server.address();
    let tree = tree::<R>(server);
    tree.start().await.expect("start");
    let addr = address.local_addr().expect("bound");
    let mut clients = Vec::new();
    for _ in 0..5 {
        clients.push(
            TcpStream::<R>::connect(addr)
                .await
                .expect("the kernel queues it"),
        );
    }
    eventually::<R>("three served", LIMIT, || open.load(Ordering::SeqCst) == 3).await;
    sleep::<R>(Duration::from_millis(100)).await;
    assert_eq!(open.load(Ordering::SeqCst), 3, "never more than the limit");
    assert_eq!(counter(&tree.snapshot(), "connections_accepted"), 3);
    drop(clients.remove(0));
    eventually::<R>("a fourth accepted", LIMIT, || {
        counter(&tree.snapshot(), "connections_accepted") == 4
    })
    .await;
    drop(clients);
    eventually::<R>("all closed", LIMIT, || open.load(Ordering::SeqCst) == 0).await;
    assert_eq!(most.load(Ordering::SeqCst), 3);
    tree.stop().await;
}

/// Stopping lets an in-flight exchange finish, then refuses new connections.
pub async fn graceful_stop_finishes_in_flight<R: Runtime>() {
    let server =
        StreamServer::<R, _>::new("slow", "127.0.0.1:0", |conn: Connection<R>| async move {
            let Connection { stream, .. } = conn;
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            reader.read_line(&mut line).await?;
            // A slow request: the stop arrives while it is being served.
            ginkgo_api::time::sleep::<R>(Duration::from_millis(300)).await;
            let mut stream = reader.into_inner();
            stream.write_all(format!("done {line}").as_bytes()).await?;
            std::io::Result::Ok(())
        });
    let address = server.address();
    let tree = tree::<R>(server);
    tree.start().await.expect("start");
    let addr = address.local_addr().expect("bound");
    let mut client = TcpStream::<R>::connect(addr).await.expect("connect");
    client.write_all(b"work\n").await.expect("request");
    sleep::<R>(Duration::from_millis(50)).await; // the request is in flight
    let stopping = {
        let tree = tree.clone();
        ginkgo_api::spawn::<R, _>(async move { tree.stop().await })
    };
    let mut reply = String::new();
    timeout::<R, _>(LIMIT, client.read_to_string(&mut reply))
        .await
        .expect("reply in time")
        .expect("read reply");
    assert_eq!(reply, "done work\n", "the in-flight request finished");
    let report = stopping.await.expect("stop task");
    assert!(report.is_clean(), "{report}");
    let refused = TcpStream::<R>::connect(addr).await;
    assert!(refused.is_err(), "a stopped server accepts nothing");
    assert_eq!(address.local_addr(), None);
}

/// A handler that ignores its shutdown is aborted at the server's own stop timeout
/// ([`StreamServer::stop_timeout`]), not the 5 s default: the stop waits that long, comes back
/// clean, the handler's future is dropped and its connection closed.
pub async fn server_stop_timeout_aborts_a_stuck_handler<R: Runtime>() {
    let stop_timeout = Duration::from_millis(200);
    let (probe, dropped) = DropProbe::new();
    let probe = Arc::new(Mutex::new(Some(probe)));
    let server = StreamServer::<R, _>::new("stuck", "127.0.0.1:0", move |conn: Connection<R>| {
        let probe = probe.lock().expect("probe").take();
        async move {
            let _held = (probe, conn);
            std::future::pending::<()>().await;
        }
    })
    .stop_timeout(stop_timeout);
    let address = server.address();
    let tree = tree::<R>(server);
    tree.start().await.expect("start");
    let mut client = TcpStream::<R>::connect(address.local_addr().expect("bound"))
        .await
        .expect("connect");
    eventually::<R>("the handler runs", LIMIT, || {
        counter(&tree.snapshot(), "connections_active") == 1
    })
    .await;
    let began = Instant::now();
    let report = tree.stop().await;
    let took = began.elapsed();
    assert!(report.is_clean(), "{report}");
    assert!(took >= stop_timeout, "waited for the handler: {took:?}");
    let default = Options::default().stop_timeout;
    assert!(
        took < default,
        "stopped at the server's stop timeout, not the {default:?} default: {took:?}"
    );
    assert!(dropped.load(Ordering::SeqCst), "the handler was aborted");
    let mut rest = Vec::new();
    let closed = timeout::<R, _>(LIMIT, client.read_to_end(&mut rest))
        .await
        .expect("the connection is closed in time");
    assert!(
        matches!(closed, Ok(0) | Err(_)),
        "closed, nothing sent: {closed:?}"
    );
}

/// A client reconnects after its server restarts, and is ready only while connected.
pub async fn client_reconnects_after_server_restart<R: Runtime>() {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        probe.local_addr().expect("addr").port()
    };
    let address = format!("127.0.0.1:{port}");
    let server = tree::<R>(StreamServer::<R, _>::new(
        "server",
        address.as_str(),
        echo::<R>,
    ));
    server.start().await.expect("server start");
    let sessions = Arc::new(AtomicUsize::new(0));
    let s = sessions.clone();
    let socket: std::net::SocketAddr = address.parse().expect("a socket address");
    let client = tree::<R>(
        StreamClient::<R, _>::new("client", socket, move |mut conn: ClientConnection<R>| {
            let sessions = s.clone();
            async move {
                sessions.fetch_add(1, Ordering::SeqCst);
                conn.stream.write_all(b"hi").await?;
                let mut buf = [0u8; 2];
                conn.stream.read_exact(&mut buf).await?;
                // Stay connected until the server goes away or the client stops.
                let mut rest = [0u8; 1];
                let _ = conn.shutdown.run(conn.stream.read(&mut rest)).await;
                std::io::Result::Ok(())
            }
        })
        .backoff(Duration::from_millis(10), Duration::from_millis(100)),
    );
    client.start().await.expect("client start: connected");
    assert!(client.is_ready());
    eventually::<R>("first session", LIMIT, || {
        sessions.load(Ordering::SeqCst) == 1
    })
    .await;

    server.stop().await;
    eventually::<R>("client not ready", LIMIT, || !client.is_ready()).await;
    assert_eq!(
        client.state(),
        State::Ready,
        "still running, just not ready"
    );
    sleep::<R>(Duration::from_millis(150)).await; // a few failed attempts
    eventually::<R>("the note says why", LIMIT, || {
        client
            .snapshot()
            .note
            .is_some_and(|note| note.starts_with("connecting: ") && note.contains(&address))
    })
    .await;
    server.start().await.expect("server restart");
    eventually::<R>("client ready again", LIMIT, || client.is_ready()).await;
    assert_eq!(client.snapshot().note, None, "connected: no note left");
    eventually::<R>("second session", LIMIT, || {
        sessions.load(Ordering::SeqCst) == 2
    })
    .await;
    let snapshot = client.snapshot();
    assert_eq!(counter(&snapshot, "connections"), 2);
    assert!(counter(&snapshot, "connect_failures") >= 1);
    client.stop().await;
    server.stop().await;
}

/// A client whose address does not read `host:port` fails its start at once, naming it,
/// instead of retrying until the start timeout.
pub async fn client_with_a_bad_address_fails_its_start<R: Runtime>() {
    for bad in [
        "localhost",
        "127.0.0.1:",
        ":80",
        "db.internal:http",
        "127.0.0.1:70000",
    ] {
        let client = tree::<R>(StreamClient::<R, _>::new(
            "client",
            bad,
            |_: ClientConnection<R>| async { std::io::Result::Ok(()) },
        ));
        let began = Instant::now();
        let err = client
            .start()
            .await
            .expect_err("a bad address fails the start");
        assert!(
            began.elapsed() < Duration::from_secs(2),
            "{bad:?} took {:?}",
            began.elapsed()
        );
        let message = err.to_string();
        assert!(
            message.contains(&format!("{bad:?}")) && message.contains("not host:port"),
            "{bad:?}: {message}"
        );
        client.stop().await;
    }
}

/// A bind error fails the start and names the address; handler errors and panics end only
/// their connection and are counted.
pub async fn server_errors_are_contained<R: Runtime>() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let clash = tree::<R>(StreamServer::<R, _>::new("clash", addr, echo::<R>));
    let failure = clash.start().await.expect_err("address in use");
    assert!(
        matches!(
            failure.cause(),
            Cause::HookError {
                hook: Hook::Start,
                ..
            }
        ),
        "{failure}"
    );
    assert!(failure.to_string().contains(&addr.to_string()), "{failure}");
    // The hook's error is kept whole: the io::Error, with its kind and OS error code, is the
    // failure's source, under the context that names the address.
    let source = std::error::Error::source(&failure).expect("the hook's error");
    let io = source
        .downcast_ref::<std::io::Error>()
        .unwrap_or_else(|| panic!("not an io::Error: {source:?}"));
    assert_eq!(io.kind(), std::io::ErrorKind::AddrInUse, "{io}");
    assert_eq!(
        ginkgo_api::io::raw_os_error(io),
        Some(rustix::io::Errno::ADDRINUSE.raw_os_error()),
        "{io:?}"
    );

    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let server =
        StreamServer::<R, _>::new("fragile", "127.0.0.1:0", move |_conn: Connection<R>| {
            let n = c.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    panic!("first connection panics");
                }
                Err::<(), _>(std::io::Error::other("second connection errs"))
            }
        });
    let address = server.address();
    let tree = tree::<R>(server);
    tree.start().await.expect("start");
    let addr = address.local_addr().expect("bound");
    for _ in 0..2 {
        let mut stream = TcpStream::<R>::connect(addr).await.expect("connect");
        let mut buf = Vec::new();
        let _ = timeout::<R, _>(LIMIT, stream.read_to_end(&mut buf)).await;
    }
    eventually::<R>("two errors counted", LIMIT, || {
        counter(&tree.snapshot(), "connection_errors") == 2
    })
    .await;
    assert_eq!(tree.state(), State::Ready, "the server keeps serving");
    tree.stop().await;
    drop(taken);
}

/// A listener bound beforehand (socket activation) is served, and again after a restart.
pub async fn server_on_inherited_listener<R: Runtime>() {
    let inherited = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = inherited.local_addr().expect("addr");
    let tree = tree::<R>(StreamServer::<R, _>::new("activated", inherited, echo::<R>));
    for round in 0..2 {
        tree.start().await.expect("start");
        let mut stream = TcpStream::<R>::connect(addr).await.expect("connect");
        stream.write_all(&[round]).await.expect("write");
        let mut back = [0u8; 1];
        stream.read_exact(&mut back).await.expect("read");
        assert_eq!(back, [round]);
        drop(stream);
        tree.stop().await;
    }
}

/// The rate of the live-rate case, read afresh for every line.
#[derive(ginkgo_macros::Settings)]
#[settings(group = "conformance_rate", crate = ginkgo_config)]
pub struct RateSettings {
    /// Lines per second sent to each connection.
    #[setting(default = 20)]
    per_second: u32,
}

/// A server reading its rate from live settings speeds up as soon as a reload changes them
/// (the numbers tutorial, on every backend).
pub async fn live_rate_changes_after_reload<R: Runtime>() {
    // Removed when dropped, also when an assertion below fails.
    let path = tempfile::Builder::new()
        .prefix("ginkgo-rate-")
        .suffix(".toml")
        .tempfile()
        .expect("create config")
        .into_temp_path();
    std::fs::write(&path, "[conformance_rate]\nper_second = 20\n").expect("config");
    let config = ginkgo_config::Config::builder("conformance")
        .no_env()
        .file(&path)
        .load()
        .expect("load");
    let rate = config.get::<RateSettings>().expect("settings");
    let server =
        StreamServer::<R, _>::new("numbers", "127.0.0.1:0", move |mut conn: Connection<R>| {
            let rate = rate.clone();
            async move {
                loop {
                    conn.stream.write_all(b"7\n").await?;
                    let pause = Duration::from_secs(1) / rate.get().per_second;
                    if conn.shutdown.run(sleep::<R>(pause)).await.is_none() {
                        return std::io::Result::Ok(());
                    }
                }
            }
        });
    let address = server.address();
    let tree = tree::<R>(server);
    tree.start().await.expect("start");
    let stream = TcpStream::<R>::connect(address.local_addr().expect("bound"))
        .await
        .expect("connect");
    let mut lines = BufReader::new(stream);
    let mut count_for = async |window: Duration| {
        let mut count = 0usize;
        let mut line = String::new();
        let _ = timeout::<R, _>(window, async {
            loop {
                line.clear();
                if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                count += 1;
            }
        })
        .await;
        count
    };
    let slow = count_for(Duration::from_millis(500)).await;
    std::fs::write(&path, "[conformance_rate]\nper_second = 400\n").expect("edit");
    assert_eq!(
        config.reload().expect("reload"),
        ["conformance_rate.per_second"]
    );
    let _ = count_for(Duration::from_millis(60)).await; // the pause of the old rate
    let fast = count_for(Duration::from_millis(500)).await;
    assert!(
        (3..=15).contains(&slow),
        "about 10 lines at 20 a second, got {slow}"
    );
    assert!(
        fast >= slow * 4,
        "after the reload {fast} lines, before {slow}"
    );
    tree.stop().await;
}
