//! TLS on StreamServer and StreamClient: round trips, a clean end when the handler returns,
//! mutual TLS identity, handshakes that fail or stall, bad files at start, and validated
//! certificate reload.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ginkgo_api::Runtime;
use ginkgo_api::io::{AsyncReadExt, AsyncWriteExt};
use ginkgo_api::net::TcpStream;
use ginkgo_api::service::{ServiceHandle, tree};
use ginkgo_api::time::timeout;
use ginkgo_net::{ClientConnection, Connection, Handler, Stream, StreamClient, StreamServer};
use ginkgo_tls::{CertificateDer, ClientTls, TlsConnector};

use crate::support::certs::Pki;
use crate::support::{counter, eventually};

const LIMIT: Duration = Duration::from_secs(30);

/// Echoes until the peer closes; first writes one line saying what the handler saw: TLS or
/// not, and the client's common name under mutual TLS.
async fn echo<R: Runtime>(mut conn: Connection<R>) -> io::Result<()> {
    let client = conn
        .stream
        .peer_identity()
        .and_then(|id| id.common_name().map(str::to_owned))
        .unwrap_or_else(|| "-".to_owned());
    let hello = format!("tls={} client={client}\n", conn.stream.is_tls());
    conn.stream.write_all(hello.as_bytes()).await?;
    let mut buf = vec![0u8; 8192];
    loop {
        let n = conn.stream.read(&mut buf).await?;
        if n == 0 {
            return conn.stream.close().await;
        }
        conn.stream.write_all(&buf[..n]).await?;
    }
}

async fn start<R: Runtime, H: Handler<R>>(
    server: StreamServer<R, H>,
) -> (ServiceHandle, SocketAddr) {
    let address = server.address();
    let tree = tree::<R>(server);
    tree.start().await.expect("start");
    (tree, address.local_addr().expect("bound"))
}

fn server<R: Runtime>(tls: ginkgo_tls::ServerTls) -> StreamServer<R, impl Handler<R>> {
    StreamServer::<R, _>::new("tls", "127.0.0.1:0", echo::<R>).tls(tls)
}

/// Connects with `connector` and reads the handler's first line.
async fn connect<R: Runtime>(addr: SocketAddr, connector: &TlsConnector) -> (Stream<R>, String) {
    let tcp = TcpStream::<R>::connect(addr).await.expect("connect");
    let mut stream = timeout::<R, _>(LIMIT, Stream::from(tcp).connect_tls(connector, "localhost"))
        .await
        .expect("handshake in time")
        .expect("handshake");
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\n") {
        let n = timeout::<R, _>(LIMIT, stream.read(&mut byte))
            .await
            .expect("the first line in time")
            .expect("read");
        assert_eq!(n, 1, "the server closed before its first line");
        line.push(byte[0]);
    }
    (stream, String::from_utf8(line).expect("text"))
}

/// The certificate a client is shown.
fn shown<R: Runtime>(stream: &Stream<R>) -> CertificateDer<'static> {
    stream
        .peer_identity()
        .expect("the server's certificate")
        .certificate()
        .clone()
}

async fn round_trip<R: Runtime>(stream: &mut Stream<R>, message: &[u8]) {
    stream.write_all(message).await.expect("write");
    let mut echoed = vec![0u8; message.len()];
    timeout::<R, _>(LIMIT, stream.read_exact(&mut echoed))
        .await
        .expect("echo in time")
        .expect("read");
    assert_eq!(echoed, message);
}

/// A TLS echo server: the handler sees a TLS stream, bytes round-trip exactly.
pub async fn tls_echo_round_trip<R: Runtime>() {
    let pki = Pki::new("echo");
    let cert = pki.server("server");
    let (tree, addr) = start(server::<R>(Pki::server_tls(&cert))).await;
    let connector = TlsConnector::new(pki.client_tls()).expect("client settings");
    let (mut stream, hello) = connect::<R>(addr, &connector).await;
    assert_eq!(hello, "tls=true client=-\n");
    assert_eq!(shown(&stream), cert.der);
    let message: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let (mut read, mut write) = futures_lite::io::split(&mut stream);
    let writer = async { write.write_all(&message).await };
    let mut echoed = vec![0u8; message.len()];
    let reader = async { read.read_exact(&mut echoed).await };
    let (w, r) = timeout::<R, _>(LIMIT, futures_lite::future::zip(writer, reader))
        .await
        .expect("echo in time");
    w.expect("write");
    r.expect("read");
    assert!(echoed == message, "other bytes came back");
    assert!(tree.stop().await.is_clean());
}

/// A handler that writes its reply and returns, closing nothing, still ends the TLS session
/// cleanly: the client reads the whole reply and then a clean end (the server's
/// close_notify), not an unexpected EOF.
pub async fn tls_handler_return_ends_the_session_cleanly<R: Runtime>() {
    let pki = Pki::new("ends");
    let cert = pki.server("server");
    let reply: Vec<u8> = (0..64 * 1024u32).map(|i| (i % 251) as u8).collect();
    let sent = reply.clone();
    let server = StreamServer::<R, _>::new("replies", "127.0.0.1:0", move |conn: Connection<R>| {
        let reply = sent.clone();
        async move {
            let mut stream = conn.stream;
            stream.write_all(&reply).await
        }
    })
    .tls(Pki::server_tls(&cert));
    let (tree, addr) = start(server).await;
    let connector = TlsConnector::new(pki.client_tls()).expect("client settings");
    let tcp = TcpStream::<R>::connect(addr).await.expect("connect");
    let mut stream = timeout::<R, _>(
        LIMIT,
        Stream::from(tcp).connect_tls(&connector, "localhost"),
    )
    .await
    .expect("handshake in time")
    .expect("handshake");
    let mut received = Vec::new();
    let end = timeout::<R, _>(LIMIT, stream.read_to_end(&mut received))
        .await
        .expect("the end in time");
    assert!(
        end.is_ok(),
        "a clean end after {} bytes, not an error: {end:?}",
        received.len()
    );
    assert!(received == reply, "the whole reply, then the end");
    assert!(tree.stop().await.is_clean());
}

/// A peer that reads nothing cannot hold a connection whose handler returned with records
/// still unsent: the server's close of the TLS session gives up at the stop timeout, and the
/// connection is closed.
pub async fn tls_close_to_a_peer_that_reads_nothing_is_bounded<R: Runtime>() {
    let pki = Pki::new("unread");
    let cert = pki.server("server");
    let server = StreamServer::<R, _>::new("floods", "127.0.0.1:0", |conn: Connection<R>| async {
        let mut stream = conn.stream;
        let chunk = vec![7u8; 16 * 1024];
        // Writes until one waits: the socket's buffers and the TLS session's are full, and
        // records are left for the close to send.
        while let Ok(written) =
            timeout::<R, _>(Duration::from_millis(50), stream.write(&chunk)).await
        {
            written?;
        }
        io::Result::Ok(())
    })
    .tls(Pki::server_tls(&cert))
    .stop_timeout(Duration::from_millis(200));
    let (tree, addr) = start(server).await;
    let connector = TlsConnector::new(pki.client_tls()).expect("client settings");
    let tcp = TcpStream::<R>::connect(addr).await.expect("connect");
    let unread = timeout::<R, _>(
        LIMIT,
        Stream::from(tcp).connect_tls(&connector, "localhost"),
    )
    .await
    .expect("handshake in time")
    .expect("handshake");
    eventually::<R>("the connection closed", LIMIT, || {
        counter(&tree, "connections_closed") == 1
    })
    .await;
    assert_eq!(counter(&tree, "connections_active"), 0);
    drop(unread);
    assert!(tree.stop().await.is_clean());
}

/// Mutual TLS: the handler sees the client's common name; a client without a certificate,
/// or with one of another CA, does not get in, and the server keeps serving.
pub async fn tls_mutual_identity_reaches_handler<R: Runtime>() {
    let servers = Pki::new("servers");
    let clients = Pki::new("clients");
    let strangers = Pki::new("strangers");
    let cert = servers.server("server");
    let tls = Pki::server_tls(&cert).client_ca(&clients.ca);
    let (tree, addr) = start(server::<R>(tls)).await;
    let alice = clients.client("alice", "alice");
    let connector = TlsConnector::new(servers.client_tls().identity(&alice.cert, &alice.key))
        .expect("client settings");
    let (mut stream, hello) = connect::<R>(addr, &connector).await;
    assert_eq!(hello, "tls=true client=alice\n");
    round_trip(&mut stream, b"hello alice").await;

    let mallory = strangers.client("mallory", "mallory");
    for client in [
        servers.client_tls(),
        servers.client_tls().identity(&mallory.cert, &mallory.key),
    ] {
        let connector = TlsConnector::new(client).expect("client settings");
        let tcp = TcpStream::<R>::connect(addr).await.expect("connect");
        // Under TLS 1.3 the refusal may show only at the first read.
        let refused = match Stream::from(tcp).connect_tls(&connector, "localhost").await {
            Err(_) => true,
            Ok(mut stream) => {
                let mut byte = [0u8; 1];
                !matches!(
                    timeout::<R, _>(LIMIT, stream.read(&mut byte)).await,
                    Ok(Ok(n)) if n > 0
                )
            }
        };
        assert!(refused, "a client without a trusted certificate got in");
    }
    eventually::<R>("both refusals counted", LIMIT, || {
        counter(&tree, "tls_handshake_errors") == 2
    })
    .await;
    round_trip(&mut stream, b"still served").await;
    assert!(tree.stop().await.is_clean());
}

/// A handshake that fails (a peer speaking plain text) or stalls (a peer sending nothing) ends
/// that connection only, within the handshake timeout, and is counted.
pub async fn tls_failed_and_stalled_handshakes_are_contained<R: Runtime>() {
    let pki = Pki::new("contained");
    let cert = pki.server("server");
    let server = server::<R>(Pki::server_tls(&cert)).handshake_timeout(Duration::from_millis(300));
    let (tree, addr) = start(server).await;

    let mut plain = TcpStream::<R>::connect(addr).await.expect("connect");
    plain
        .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .expect("write");
    let mut rest = Vec::new();
    let closed = timeout::<R, _>(LIMIT, plain.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "a plain-text peer is closed");

    let started = std::time::Instant::now();
    let mut silent = TcpStream::<R>::connect(addr).await.expect("connect");
    let mut byte = [0u8; 1];
    let ended = timeout::<R, _>(LIMIT, silent.read(&mut byte))
        .await
        .expect("a silent peer is closed in time");
    assert!(
        matches!(ended, Ok(0) | Err(_)),
        "closed, not served: {ended:?}"
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250),
        "closed at the handshake timeout, not before: {waited:?}"
    );
    eventually::<R>("both counted", LIMIT, || {
        counter(&tree, "tls_handshake_errors") == 2
    })
    .await;

    let connector = TlsConnector::new(pki.client_tls()).expect("client settings");
    let (mut stream, _) = connect::<R>(addr, &connector).await;
    round_trip(&mut stream, b"served after both").await;
    assert!(tree.stop().await.is_clean());
}

/// Bad certificate files fail the start with the file and the reason, and nothing listens.
pub async fn tls_bad_files_fail_start<R: Runtime>() {
    let pki = Pki::new("bad");
    let first = pki.server("first");
    let second = pki.server("second");
    let mismatched = ginkgo_tls::ServerTls::new(&first.cert, &second.key);
    let missing = ginkgo_tls::ServerTls::new(pki.path("absent.pem"), &first.key);
    let garbage_file = pki.path("garbage.pem");
    std::fs::write(&garbage_file, b"not a certificate").expect("write");
    let garbage = ginkgo_tls::ServerTls::new(&garbage_file, &first.key);
    for (tls, file, reason) in [
        (mismatched, &second.key, "does not belong"),
        (missing, &pki.path("absent.pem"), "absent.pem"),
        (garbage, &garbage_file, "no certificate"),
    ] {
        let server = server::<R>(tls);
        let address = server.address();
        let tree = tree::<R>(server);
        let failure = tree.start().await.expect_err("bad files fail the start");
        let message = failure.to_string();
        assert!(
            message.contains(&file.display().to_string()) && message.contains(reason),
            "the error names {} and says {reason:?}: {message}",
            file.display()
        );
        assert_eq!(address.local_addr(), None, "nothing listens");
    }
}

/// Reload: good new files serve new handshakes while an open connection goes on; bad files
/// are rejected, naming the file, and the certificate in force stays.
pub async fn tls_reload_validates_and_swaps<R: Runtime>() {
    let pki = Pki::new("reload");
    let old = pki.server("live");
    let (tree, addr) = start(server::<R>(Pki::server_tls(&old))).await;
    let connector = TlsConnector::new(pki.client_tls()).expect("client settings");
    let (mut before, _) = connect::<R>(addr, &connector).await;
    assert_eq!(shown(&before), old.der);

    // Renewed files in place (`server` writes live.pem and live.key again).
    let new = pki.server("live");
    assert_ne!(new.der, old.der);
    tree.reload().await.expect("good files reload");
    let (mut after, _) = connect::<R>(addr, &connector).await;
    assert_eq!(
        shown(&after),
        new.der,
        "new handshakes get the new certificate"
    );
    round_trip(&mut before, b"the old connection goes on").await;
    round_trip(&mut after, b"and the new one").await;

    // A key of another certificate, then garbage, then a missing file.
    let other = pki.server("other");
    std::fs::copy(&other.key, &new.key).expect("copy the wrong key");
    let failure = tree
        .reload()
        .await
        .expect_err("a mismatched key is refused");
    assert!(failure.to_string().contains("does not belong"), "{failure}");
    std::fs::write(&new.cert, b"garbage").expect("write");
    let failure = tree.reload().await.expect_err("garbage is refused");
    assert!(
        failure
            .to_string()
            .contains(&new.cert.display().to_string()),
        "the error names the file: {failure}"
    );
    std::fs::remove_file(&new.cert).expect("remove");
    tree.reload().await.expect_err("a missing file is refused");
    let (mut still, _) = connect::<R>(addr, &connector).await;
    assert_eq!(shown(&still), new.der, "the certificate in force stays");
    round_trip(&mut still, b"still serving").await;
    assert!(tree.stop().await.is_clean());
}

/// A TLS `StreamClient` connects (checking the server's certificate), is ready, and talks; a
/// client that does not trust the server's CA never becomes ready and counts failures.
pub async fn tls_stream_client_connects<R: Runtime>() {
    let pki = Pki::new("client");
    let cert = pki.server("server");
    let (server_tree, addr) = start(server::<R>(Pki::server_tls(&cert))).await;
    let echoed = Arc::new(AtomicUsize::new(0));
    let seen = echoed.clone();
    let client = StreamClient::<R, _>::new(
        "client",
        &format!("localhost:{}", addr.port()),
        move |mut conn: ClientConnection<R>| {
            let seen = seen.clone();
            async move {
                let mut line = [0u8; 18];
                conn.stream.read_exact(&mut line).await?;
                conn.stream.write_all(b"ping").await?;
                let mut reply = [0u8; 4];
                conn.stream.read_exact(&mut reply).await?;
                if &reply == b"ping" {
                    seen.fetch_add(1, Ordering::SeqCst);
                }
                let _ = conn.shutdown.run(conn.stream.read(&mut reply)).await;
                io::Result::Ok(())
            }
        },
    )
    .tls(pki.client_tls());
    let client_tree = tree::<R>(client);
    timeout::<R, _>(LIMIT, client_tree.start())
        .await
        .expect("connected in time")
        .expect("the client starts");
    eventually::<R>("a round trip", LIMIT, || echoed.load(Ordering::SeqCst) == 1).await;
    assert!(client_tree.stop().await.is_clean());

    let strangers = Pki::new("strangers");
    let distrustful = StreamClient::<R, _>::new(
        "distrustful",
        &addr.to_string(),
        |_: ClientConnection<R>| async {},
    )
    .tls(ClientTls::new().ca(&strangers.ca))
    .backoff(Duration::from_millis(10), Duration::from_millis(50));
    let distrustful = tree::<R>(distrustful);
    let started = distrustful.start();
    let outcome = timeout::<R, _>(Duration::from_millis(500), started).await;
    assert!(
        !matches!(outcome, Ok(Ok(()))),
        "a client that does not trust the server must not become ready"
    );
    assert!(counter(&distrustful, "connect_failures") > 0);
    let _ = distrustful.stop().await;
    assert!(server_tree.stop().await.is_clean());
}
