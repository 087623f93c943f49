//! The server: protocols, keep-alive, graceful stop, timeouts, listening.

use std::time::{Duration, Instant};

use ginkgo_api::Runtime;
use ginkgo_api::io::{AsyncReadExt, AsyncWriteExt};
use ginkgo_api::net::TcpStream;
use ginkgo_api::service::{ServiceHandle, Snapshot, tree};
use ginkgo_http::axum::Router;
use ginkgo_http::axum::body::Bytes;
use ginkgo_http::axum::routing::{get, post};
use ginkgo_http::http::{Request, StatusCode, Version};
use ginkgo_http::{HttpServer, HttpService};
use http_body_util::Full;

use crate::client::{self, within};

pub(crate) fn hello() -> Router {
    Router::new().route("/", get(|| async { "hello" }))
}

pub(crate) fn counter(snapshot: &Snapshot, name: &str) -> u64 {
    snapshot
        .counters
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, value)| *value)
        .unwrap_or_else(|| panic!("no counter {name} in {:?}", snapshot.counters))
}

/// Starts `server` as the root of a tree and returns the tree and the bound address.
pub(crate) async fn start<R: Runtime, S: HttpService>(
    server: HttpServer<R, S>,
) -> (ServiceHandle, std::net::SocketAddr) {
    let listening = server.address();
    let tree = tree::<R>(server);
    within::<R, _>("start", tree.start())
        .await
        .expect("the server starts");
    let addr = listening.local_addr().expect("listening once started");
    (tree, addr)
}

/// Two requests on one HTTP/1.1 connection: keep-alive works and each request is counted.
pub(crate) async fn h1_keep_alive<R: Runtime>() {
    let (tree, addr) = start(HttpServer::<R, _>::new("127.0.0.1:0", hello())).await;
    let mut conn = client::h1::<R>(addr).await;
    for _ in 0..2 {
        let reply = conn.get("/").await;
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (StatusCode::OK, "hello")
        );
        assert_eq!(reply.version, Version::HTTP_11);
    }
    let missing = conn.get("/missing").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let snapshot = tree.snapshot();
    assert_eq!(counter(&snapshot, "connections_accepted"), 1);
    assert_eq!(counter(&snapshot, "connections_active"), 1);
    assert_eq!(counter(&snapshot, "requests"), 3);
    assert!(within::<R, _>("stop", tree.stop()).await.is_clean());
    assert_eq!(counter(&tree.snapshot(), "connections_active"), 0);
}

/// HTTP/2 with prior knowledge on the same port as HTTP/1.1, several requests on one
/// connection, concurrently.
pub(crate) async fn h2_prior_knowledge<R: Runtime>() {
    let (tree, addr) = start(HttpServer::<R, _>::new("127.0.0.1:0", hello())).await;
    let mut sender = client::h2::<R>(addr).await;
    let mut other = sender.clone();
    let (first, second) = ginkgo_api::future::zip(
        client::h2_get::<R>(&mut sender, addr, "/"),
        client::h2_get::<R>(&mut other, addr, "/"),
    )
    .await;
    for reply in [first, second] {
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (StatusCode::OK, "hello")
        );
        assert_eq!(reply.version, Version::HTTP_2);
    }
    let h1 = client::get_once::<R>(addr, "/").await;
    assert_eq!(h1.version, Version::HTTP_11);
    let snapshot = tree.snapshot();
    assert_eq!(counter(&snapshot, "connections_accepted"), 2);
    assert_eq!(counter(&snapshot, "requests"), 3);
    assert!(within::<R, _>("stop", tree.stop()).await.is_clean());
}

/// The first bytes choose the protocol however they arrive: an HTTP/1.1 request whose first
/// byte matches HTTP/2's preface, sent in pieces, is served whole (the bytes read to tell the
/// protocol are read again); the preface in pieces gets HTTP/2's SETTINGS; a peer that sends
/// part of the preface and closes, or nothing, costs the server nothing; and a connection that
/// has sent nothing is closed at once by a stop.
pub(crate) async fn first_bytes_in_pieces_choose_the_protocol<R: Runtime>() {
    let echo = hello().route("/echo", post(|body: Bytes| async move { body }));
    let (tree, addr) = start(HttpServer::<R, _>::new("127.0.0.1:0", echo)).await;
    let pause = || ginkgo_api::time::sleep::<R>(Duration::from_millis(20));

    let mut h1 = TcpStream::<R>::connect(addr).await.expect("connect");
    for piece in [
        &b"P"[..],
        b"OST /echo HTTP/1.1\r\nHost: ginkgo.test\r\n",
        b"Content-Length: 5\r\nConnection: close\r\n\r\nhello",
    ] {
        h1.write_all(piece).await.expect("write a piece");
        pause().await;
    }
    let reply = String::from_utf8_lossy(&read_until_closed(&mut h1).await).into_owned();
    assert!(
        reply.starts_with("HTTP/1.1 200 ") && reply.ends_with("\r\n\r\nhello"),
        "the request in pieces got: {reply:?}"
    );

    let mut h2 = TcpStream::<R>::connect(addr).await.expect("connect");
    for piece in [&b"PRI * HTTP/2.0\r\n"[..], b"\r\nSM", b"\r\n\r\n"] {
        h2.write_all(piece)
            .await
            .expect("write a piece of the preface");
        pause().await;
    }
    // An empty SETTINGS frame: length 0, type 4, no flags, stream 0.
    h2.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0])
        .await
        .expect("write SETTINGS");
    let mut frame = [0; 9];
    within::<R, _>("the server's SETTINGS", h2.read_exact(&mut frame))
        .await
        .expect("read a frame header");
    assert_eq!(frame[3], 4, "the first frame is not SETTINGS: {frame:?}");
    // A raw HTTP/2 peer that never acknowledges SETTINGS would hold a graceful stop up.
    drop(h2);

    let mut partial = TcpStream::<R>::connect(addr).await.expect("connect");
    partial.write_all(b"PRI * HT").await.expect("write");
    partial.close().await.expect("close");
    let answer = read_until_closed(&mut partial).await;
    assert!(
        !String::from_utf8_lossy(&answer).contains(" 200 "),
        "a partial preface was answered: {answer:?}"
    );
    drop(TcpStream::<R>::connect(addr).await.expect("connect"));

    let mut silent = TcpStream::<R>::connect(addr).await.expect("connect");
    ginkgo_api::time::sleep::<R>(Duration::from_millis(50)).await;
    let began = Instant::now();
    let report = within::<R, _>("stop", tree.stop()).await;
    assert!(report.is_clean(), "stop report: {report}");
    assert!(read_until_closed(&mut silent).await.is_empty());
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "a connection that sent nothing held the stop up for {:?}",
        began.elapsed()
    );
    assert_eq!(counter(&tree.snapshot(), "requests"), 1);
}

/// A 1 MiB body goes up and comes back intact over HTTP/1.1 and HTTP/2, through many reads
/// and writes of the I/O adapter.
pub(crate) async fn large_bodies_round_trip<R: Runtime>() {
    let echo = Router::new().route("/echo", post(|body: Bytes| async move { body }));
    let (tree, addr) = start(HttpServer::<R, _>::new("127.0.0.1:0", echo)).await;
    let payload: String = (0..1 << 20)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let request = |uri: String| {
        Request::post(uri)
            .header("host", "ginkgo.test")
            .body(Full::new(Bytes::from(payload.clone())))
            .expect("request")
    };
    let h1 = client::h1::<R>(addr)
        .await
        .send(request("/echo".to_owned()))
        .await;
    assert_eq!(h1.status, StatusCode::OK);
    assert!(h1.body == payload, "HTTP/1.1 echo differs");
    let mut h2 = client::h2::<R>(addr).await;
    let h2 = client::h2_send::<R>(&mut h2, request(format!("http://{addr}/echo"))).await;
    assert_eq!(h2.status, StatusCode::OK);
    assert!(h2.body == payload, "HTTP/2 echo differs");
    assert!(within::<R, _>("stop", tree.stop()).await.is_clean());
}

/// Stopping lets an HTTP/1.1 request in flight finish with 200, closes idle keep-alive
/// connections, refuses new connections, and does all that well within the stop timeout.
pub(crate) async fn graceful_stop_finishes_in_flight<R: Runtime>() {
    graceful_stop::<R>(Version::HTTP_11).await;
}

/// The same over HTTP/2, whose requests run in tasks of their own: the connection gets a
/// GOAWAY and its stream in flight still completes.
pub(crate) async fn graceful_stop_finishes_in_flight_h2<R: Runtime>() {
    graceful_stop::<R>(Version::HTTP_2).await;
}

async fn graceful_stop<R: Runtime>(version: Version) {
    const STOP_TIMEOUT: Duration = Duration::from_secs(20);
    let (started, handler_started) = ginkgo_api::sync::channel::bounded::<()>(1);
    let slow = get(move || {
        let started = started.clone();
        async move {
            let _ = started.send(()).await;
            ginkgo_api::time::sleep::<R>(Duration::from_millis(300)).await;
            "slow done"
        }
    });
    let app = hello().route("/slow", slow);
    let server = HttpServer::<R, _>::new("127.0.0.1:0", app).stop_timeout(STOP_TIMEOUT);
    let listening = server.address();
    let (tree, addr) = start(server).await;

    let mut idle = client::h1::<R>(addr).await;
    assert_eq!(idle.get("/").await.status, StatusCode::OK);
    let in_flight = ginkgo_api::spawn::<R, _>(async move {
        if version == Version::HTTP_2 {
            let mut sender = client::h2::<R>(addr).await;
            client::h2_get::<R>(&mut sender, addr, "/slow").await
        } else {
            client::h1::<R>(addr).await.get("/slow").await
        }
    });
    within::<R, _>("the slow handler starts", handler_started.recv())
        .await
        .expect("the handler signals");

    let began = Instant::now();
    let stopping = ginkgo_api::spawn::<R, _>({
        let tree = tree.clone();
        async move { tree.stop().await }
    });
    within::<R, _>("the listener closes", listening.closed()).await;
    let refused = TcpStream::<R>::connect(addr).await;
    assert!(refused.is_err(), "a connection after stop must be refused");

    let reply = within::<R, _>("the slow request", in_flight)
        .await
        .expect("the client task");
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "slow done")
    );
    assert_eq!(reply.version, version);
    let idle_closed = within::<R, _>("the idle connection closes", idle.driver)
        .await
        .expect("the driver task");
    assert!(idle_closed.is_ok(), "idle connection: {idle_closed:?}");
    let report = within::<R, _>("the stop", stopping)
        .await
        .expect("stop task");
    assert!(report.is_clean(), "stop report: {report}");
    let took = began.elapsed();
    assert!(
        took < STOP_TIMEOUT / 2,
        "the stop took {took:?}: connections were aborted, not closed gracefully"
    );
    assert_eq!(counter(&tree.snapshot(), "connections_active"), 0);
}

/// Reads until the server closes the connection; returns what it sent.
pub(crate) async fn read_until_closed<R: Runtime>(stream: &mut TcpStream<R>) -> Vec<u8> {
    let mut received = Vec::new();
    // A reset is a close too.
    let _ = within::<R, _>("the server closes", stream.read_to_end(&mut received)).await;
    received
}

/// Starts a server for `app` with `timeout` as both its header read and idle timeouts, and
/// connects to it.
async fn connect_with_timeout<R: Runtime>(
    app: Router,
    timeout: Duration,
) -> (ServiceHandle, TcpStream<R>) {
    let server = HttpServer::<R, _>::new("127.0.0.1:0", app)
        .header_read_timeout(timeout)
        .idle_timeout(timeout);
    let (tree, addr) = start(server).await;
    let stream = TcpStream::<R>::connect(addr).await.expect("connect");
    (tree, stream)
}

/// A request head that never ends is cut off by the header read timeout.
pub(crate) async fn header_read_timeout_closes_partial_head<R: Runtime>() {
    const TIMEOUT: Duration = Duration::from_millis(200);
    let (tree, mut stream) = connect_with_timeout::<R>(hello(), TIMEOUT).await;
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: ginkgo.test\r\n")
        .await
        .expect("write a partial head");
    let sent = Instant::now();
    let received = read_until_closed(&mut stream).await;
    let waited = sent.elapsed();
    assert!(
        waited >= TIMEOUT / 2,
        "closed after {waited:?}, before the timeout"
    );
    let text = String::from_utf8_lossy(&received);
    assert!(!text.contains(" 200 "), "answered a partial head: {text}");
    assert!(within::<R, _>("stop", tree.stop()).await.is_clean());
}

/// On a keep-alive connection the header read timeout counts from the first byte of each
/// later request head, not from an earlier request's deadline nor from the end of the idle
/// time before it (the connection's shared timer is moved along): a connection idle for twice
/// the header read timeout (under the idle timeout) is still open, and a head begun then is
/// cut off the header read timeout after its first byte.
pub(crate) async fn header_read_timeout_counts_from_first_byte<R: Runtime>() {
    const TIMEOUT: Duration = Duration::from_millis(300);
    let server = HttpServer::<R, _>::new("127.0.0.1:0", hello())
        .header_read_timeout(TIMEOUT)
        .idle_timeout(TIMEOUT * 10);
    let (tree, addr) = start(server).await;
    let mut stream = TcpStream::<R>::connect(addr).await.expect("connect");
    for pause in [TIMEOUT / 2, TIMEOUT * 2] {
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: ginkgo.test\r\n\r\n")
            .await
            .expect("write a request");
        read_until(&mut stream, b"hello").await;
        ginkgo_api::time::sleep::<R>(pause).await;
    }
    let began = Instant::now();
    stream
        .write_all(b"GET / HTTP/1.1\r\n")
        .await
        .expect("write a partial head");
    read_until_closed(&mut stream).await;
    let waited = began.elapsed();
    assert!(
        waited >= TIMEOUT,
        "closed {waited:?} after a head began, before the header read timeout of {TIMEOUT:?}"
    );
    assert!(
        waited < TIMEOUT + Duration::from_secs(1),
        "closed {waited:?} after a head began: not at the header read timeout of {TIMEOUT:?}"
    );
    assert!(within::<R, _>("stop", tree.stop()).await.is_clean());
}

/// A peer that connects and sends nothing is closed after the header read timeout too (the
/// HTTP/1-or-2 detection has no timeout of its own).
pub(crate) async fn silent_connection_times_out<R: Runtime>() {
    const TIMEOUT: Duration = Duration::from_millis(200);
    let server = HttpServer::<R, _>::new("127.0.0.1:0", hello()).header_read_timeout(TIMEOUT);
    let (tree, addr) = start(server).await;
    let connected = Instant::now();
    let mut stream = TcpStream::<R>::connect(addr).await.expect("connect");
    let received = read_until_closed(&mut stream).await;
    let waited = connected.elapsed();
    assert!(received.is_empty(), "sent {received:?} to a silent peer");
    assert!(
        waited >= TIMEOUT,
        "closed after {waited:?}, before the timeout"
    );
    // A prompt peer is still served after the same delay.
    let reply = client::get_once::<R>(addr, "/").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(within::<R, _>("stop", tree.stop()).await.is_clean());
}

/// A bind error fails the start with a message naming the address.
pub(crate) async fn bind_error_names_address<R: Runtime>() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let addr = taken.local_addr().expect("its address").to_string();
    let tree = tree::<R>(HttpServer::<R, _>::new(addr.as_str(), hello()));
    let failure = within::<R, _>("start", tree.start())
        .await
        .expect_err("the port is taken");
    let message = failure.to_string();
    assert!(
        message.contains(&format!("cannot listen on {addr}")),
        "message: {message}"
    );
    assert!(message.contains("in use"), "message: {message}");
}

/// An inherited (socket-activated) listener is served, and again after a restart.
pub(crate) async fn serves_inherited_listener<R: Runtime>() {
    let inherited = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let addr = inherited.local_addr().expect("its address");
    let server = HttpServer::<R, _>::new(inherited, hello());
    let listening = server.address();
    let tree = tree::<R>(server);
    for round in 0..2 {
        within::<R, _>("start", tree.start())
            .await
            .unwrap_or_else(|failure| panic!("start {round}: {failure}"));
        assert_eq!(listening.local_addr(), Some(addr));
        let reply = client::get_once::<R>(addr, "/").await;
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (StatusCode::OK, "hello")
        );
        assert!(within::<R, _>("stop", tree.stop()).await.is_clean());
    }
}

/// Reads from `stream` until what arrived ends with `end`; fails if the server closes first.
pub(crate) async fn read_until<R: Runtime>(stream: &mut TcpStream<R>, end: &[u8]) -> String {
    let mut received = Vec::new();
    let mut chunk = [0; 1024];
    while !received.ends_with(end) {
        let n = within::<R, _>("the reply", stream.read(&mut chunk))
            .await
            .expect("read the reply");
        assert!(
            n > 0,
            "closed early, after {:?}",
            String::from_utf8_lossy(&received)
        );
        received.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&received).into_owned()
}

/// The header read timeout limits request heads only: a request body that trickles in, and a
/// response that streams out, for longer than the timeout are served in full.
pub(crate) async fn header_read_timeout_spares_bodies<R: Runtime>() {
    const TIMEOUT: Duration = Duration::from_millis(200);
    const STEP: Duration = Duration::from_millis(100);
    let app = Router::new()
        .route(
            "/upload",
            post(|body: Bytes| async move { format!("got {}", body.len()) }),
        )
        .route(
            "/download",
            get(|| async {
                let chunks = futures_lite::stream::unfold(0, |sent| async move {
                    if sent == 5 {
                        return None;
                    }
                    ginkgo_api::time::sleep::<R>(STEP).await;
                    Some((Ok::<_, std::io::Error>(Bytes::from_static(b"x")), sent + 1))
                });
                ginkgo_http::axum::body::Body::from_stream(chunks)
            }),
        );
    let (tree, mut stream) = connect_with_timeout::<R>(app, TIMEOUT).await;
    // Five bytes of body, one every `STEP`: 500 ms, over twice the timeout.
    stream
        .write_all(b"POST /upload HTTP/1.1\r\nHost: ginkgo.test\r\nContent-Length: 5\r\n\r\n")
        .await
        .expect("write the head");
    for _ in 0..5 {
        ginkgo_api::time::sleep::<R>(STEP).await;
        stream.write_all(b"y").await.expect("write a body byte");
    }
    let reply = read_until(&mut stream, b"got 5").await;
    assert!(reply.starts_with("HTTP/1.1 200 "), "reply: {reply}");
    // Five chunks, one every `STEP`, on the same connection.
    stream
        .write_all(b"GET /download HTTP/1.1\r\nHost: ginkgo.test\r\n\r\n")
        .await
        .expect("write a request");
    let reply = read_until(&mut stream, b"0\r\n\r\n").await;
    assert!(reply.starts_with("HTTP/1.1 200 "), "reply: {reply}");
    assert_eq!(reply.matches("\r\nx\r\n").count(), 5, "reply: {reply}");
    assert!(within::<R, _>("stop", tree.stop()).await.is_clean());
}

/// A connection handed over to an upgrade (`101 Switching Protocols`) no longer carries HTTP:
/// neither the header read timeout nor the idle timeout cuts it while it is quiet.
pub(crate) async fn upgraded_connection_outlives_header_read_timeout<R: Runtime>() {
    use ginkgo_http::axum::extract::Request as AxumRequest;
    use ginkgo_http::axum::response::Response as AxumResponse;

    const TIMEOUT: Duration = Duration::from_millis(200);
    let app = Router::new().route(
        "/echo",
        get(|mut request: AxumRequest| async move {
            let upgrade = ginkgo_http::hyper::upgrade::on(&mut request);
            // Detached: it ends when the client closes the connection.
            drop(ginkgo_api::spawn::<R, _>(async move {
                if let Ok(upgraded) = upgrade.await {
                    echo_upgraded(upgraded).await;
                }
            }));
            AxumResponse::builder()
                .status(StatusCode::SWITCHING_PROTOCOLS)
                .header("connection", "upgrade")
                .header("upgrade", "echo")
                .body(ginkgo_http::axum::body::Body::empty())
                .expect("a valid response")
        }),
    );
    let (tree, mut stream) = connect_with_timeout::<R>(app, TIMEOUT).await;
    stream
        .write_all(
            b"GET /echo HTTP/1.1\r\nHost: ginkgo.test\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n",
        )
        .await
        .expect("write the upgrade request");
    let reply = read_until(&mut stream, b"\r\n\r\n").await;
    assert!(reply.starts_with("HTTP/1.1 101 "), "reply: {reply}");
    ginkgo_api::time::sleep::<R>(TIMEOUT * 3).await;
    stream
        .write_all(b"ping")
        .await
        .expect("write on the upgrade");
    let echoed = read_until(&mut stream, b"ping").await;
    assert_eq!(echoed, "ping");
    drop(stream);
    assert!(within::<R, _>("stop", tree.stop()).await.is_clean());
}

/// Echoes what arrives on an upgraded connection until the peer closes it.
async fn echo_upgraded(mut upgraded: ginkgo_http::hyper::upgrade::Upgraded) {
    use ginkgo_http::hyper::rt::{Read, ReadBuf, Write};
    use std::pin::Pin;

    let mut storage = [0u8; 64];
    loop {
        let mut buf = ReadBuf::new(&mut storage);
        let read =
            std::future::poll_fn(|cx| Pin::new(&mut upgraded).poll_read(cx, buf.unfilled())).await;
        let n = buf.filled().len();
        if read.is_err() || n == 0 {
            return;
        }
        let mut sent = 0;
        while sent < n {
            match std::future::poll_fn(|cx| {
                Pin::new(&mut upgraded).poll_write(cx, &storage[sent..n])
            })
            .await
            {
                Ok(written) if written > 0 => sent += written,
                _ => return,
            }
        }
    }
}

/// `max_connections` caps HTTP connections through the shared accept loop: beyond the cap a
/// connection waits in the backlog, and is served once another closes.
pub(crate) async fn max_connections_caps_connections<R: Runtime>() {
    let (tree, addr) =
        start(HttpServer::<R, _>::new("127.0.0.1:0", hello()).max_connections(2)).await;
    let request = b"GET / HTTP/1.1\r\nhost: test\r\n\r\n";
    let mut open = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::<R>::connect(addr).await.expect("connect");
        stream.write_all(request).await.expect("send");
        let mut reply = [0u8; 12];
        within::<R, _>("a reply", stream.read_exact(&mut reply))
            .await
            .expect("read");
        assert_eq!(&reply, b"HTTP/1.1 200");
        open.push(stream);
    }
    // The kernel completes the third handshake, but the server does not accept it yet.
    let mut third = TcpStream::<R>::connect(addr).await.expect("connect");
    third.write_all(request).await.expect("send");
    ginkgo_api::time::sleep::<R>(Duration::from_millis(200)).await;
    assert_eq!(counter(&tree.snapshot(), "connections_accepted"), 2);
    drop(open.remove(0));
    let mut reply = [0u8; 12];
    within::<R, _>("the third reply", third.read_exact(&mut reply))
        .await
        .expect("served once one closed");
    assert_eq!(&reply, b"HTTP/1.1 200");
    let snapshot = tree.snapshot();
    assert_eq!(counter(&snapshot, "connections_accepted"), 3);
    assert_eq!(counter(&snapshot, "connections_closed"), 1);
    drop((open, third));
    assert!(within::<R, _>("stop", tree.stop()).await.is_clean());
}

/// A tower service each clone of which says it is not ready twice (waking its task each time)
/// before it is: [`service_readiness_is_awaited`] serves it.
#[derive(Clone, Default)]
struct ReadyThirdTime {
    polls: u32,
}

impl tower_service::Service<Request<ginkgo_http::Body>> for ReadyThirdTime {
    type Response = ginkgo_http::http::Response<String>;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.polls += 1;
        if self.polls < 3 {
            cx.waker().wake_by_ref();
            return std::task::Poll::Pending;
        }
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _request: Request<ginkgo_http::Body>) -> Self::Future {
        let body = if self.polls < 3 {
            "called before it was ready".to_owned()
        } else {
            format!("ready after {} polls", self.polls)
        };
        std::future::ready(Ok(ginkgo_http::http::Response::new(body)))
    }
}

/// The server keeps tower's contract with a service that is not ready when a request comes:
/// it asks the same clone again, with a waker that wakes the connection (or HTTP/2 stream), and
/// calls it only once it is ready, over HTTP/1.1 and HTTP/2.
pub(crate) async fn service_readiness_is_awaited<R: Runtime>() {
    let (tree, addr) = start(HttpServer::<R, _>::new(
        "127.0.0.1:0",
        ReadyThirdTime::default(),
    ))
    .await;
    let h1 = client::get_once::<R>(addr, "/").await;
    assert_eq!(
        (h1.status, h1.body.as_str()),
        (StatusCode::OK, "ready after 3 polls")
    );
    let mut sender = client::h2::<R>(addr).await;
    let h2 = client::h2_get::<R>(&mut sender, addr, "/").await;
    assert_eq!(
        (h2.status, h2.body.as_str()),
        (StatusCode::OK, "ready after 3 polls")
    );
    assert!(within::<R, _>("stop", tree.stop()).await.is_clean());
}
