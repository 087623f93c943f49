//! The server's limits: the request head's size and header count, the body size, HTTP/2
//! streams per connection, and the idle keep-alive timeout beside the header read timeout.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ginkgo_api::Runtime;
use ginkgo_api::io::{AsyncReadExt, AsyncWriteExt};
use ginkgo_api::net::TcpStream;
use ginkgo_http::HttpServer;
use ginkgo_http::axum::Router;
use ginkgo_http::axum::body::Bytes;
use ginkgo_http::axum::extract::Request as AxumRequest;
use ginkgo_http::axum::routing::{get, post};
use ginkgo_http::http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};

use crate::client::{self, within};
use crate::serve::{counter, hello, read_until, read_until_closed, start};

/// Sends `request` on a fresh connection and returns all the server sends until it closes it.
async fn exchange_until_closed<R: Runtime>(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::<R>::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("write the request");
    String::from_utf8_lossy(&read_until_closed(&mut stream).await).into_owned()
}

/// A `GET /` head with `extra` more headers, `x-0` to `x-{extra - 1}`, each of `value_len`
/// bytes.
fn head(extra: usize, value_len: usize) -> Vec<u8> {
    let value = "v".repeat(value_len);
    let mut head = String::from("GET / HTTP/1.1\r\nHost: ginkgo.test\r\n");
    for i in 0..extra {
        head.push_str(&format!("x-{i}: {value}\r\n"));
    }
    head.push_str("Connection: close\r\n\r\n");
    head.into_bytes()
}

/// A request head larger than `max_header_size` gets `431 Request Header Fields Too Large` and
/// the connection is closed; a head under it is served.
pub(crate) async fn request_head_over_limit_gets_431<R: Runtime>() {
    const LIMIT: usize = 16 * 1024;
    let server = HttpServer::<R, _>::new("127.0.0.1:0", hello()).max_header_size(LIMIT);
    let (tree, addr) = start(server).await;
    let under = exchange_until_closed::<R>(addr, &head(1, LIMIT / 2)).await;
    assert!(under.starts_with("HTTP/1.1 200 "), "an 8 KiB head: {under}");
    // Three times the limit: hyper counts the bytes it has buffered, and one read may take it
    // past the limit by up to 16 KiB before it looks.
    let over = exchange_until_closed::<R>(addr, &head(3, LIMIT)).await;
    assert!(
        over.starts_with("HTTP/1.1 431 "),
        "a 48 KiB head with a limit of 16 KiB: {over:?}"
    );
    assert!(within::<R, _>("stop", tree.stop()).await.is_clean());
}

/// A request with more headers than `max_headers` gets `431` and the connection is closed; one
/// with as many as the limit is served.
pub(crate) async fn too_many_headers_gets_431<R: Runtime>() {
    const LIMIT: usize = 8;
    let server = HttpServer::<R, _>::new("127.0.0.1:0", hello()).max_headers(LIMIT);
    let (tree, addr) = start(server).await;
    // `Host` and `Connection` are two of them.
    let at_limit = exchange_until_closed::<R>(addr, &head(LIMIT - 2, 4)).await;
    assert!(
        at_limit.starts_with("HTTP/1.1 200 "),
        "8 headers: {at_limit}"
    );
    let over = exchange_until_closed::<R>(addr, &head(LIMIT, 4)).await;
    assert!(over.starts_with("HTTP/1.1 431 "), "10 headers: {over:?}");
    assert!(within::<R, _>("stop", tree.stop()).await.is_clean());
}

/// The body limit of the upload cases.
const BODY_LIMIT: usize = 1024;

/// A server with a body limit of [`BODY_LIMIT`] and three upload routes: `/upload` (axum's
/// `Bytes`) and `/string` (axum's `String`), which count the calls of their handlers in
/// `calls`, and `/raw`, which reads the body itself and answers `length limit exceeded` if its
/// error has an `http_body_util::LengthLimitError` in its chain.
fn uploads<R: Runtime>(calls: &Arc<AtomicUsize>) -> HttpServer<R, Router> {
    let (bytes_calls, string_calls) = (calls.clone(), calls.clone());
    let raw = post(|request: AxumRequest| async move {
        match request.into_body().collect().await {
            Ok(body) => format!("got {}", body.to_bytes().len()),
            Err(err) => {
                let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
                while let Some(err) = source {
                    if err.is::<http_body_util::LengthLimitError>() {
                        return "length limit exceeded".to_owned();
                    }
                    source = err.source();
                }
                format!("another error: {err}")
            }
        }
    });
    let app = Router::new()
        .route(
            "/upload",
            post(move |body: Bytes| {
                bytes_calls.fetch_add(1, Ordering::SeqCst);
                async move { format!("got {}", body.len()) }
            }),
        )
        .route(
            "/string",
            post(move |body: String| {
                string_calls.fetch_add(1, Ordering::SeqCst);
                async move { format!("got {}", body.len()) }
            }),
        )
        .route("/raw", raw);
    HttpServer::<R, _>::new("127.0.0.1:0", app).max_body_size(BODY_LIMIT)
}

/// A body declared larger than `max_body_size` by its `Content-Length` gets `413 Payload Too
/// Large` before the service is called, over HTTP/1.1 (which closes the connection rather
/// than read the body) and HTTP/2; the default limit is 2 MiB.
pub(crate) async fn content_length_over_limit_gets_413<R: Runtime>() {
    let calls = Arc::new(AtomicUsize::new(0));
    let (tree, addr) = start(uploads::<R>(&calls)).await;
    // Only the head: the server must answer without waiting for the body.
    let reply = exchange_until_closed::<R>(
        addr,
        b"POST /upload HTTP/1.1\r\nHost: ginkgo.test\r\nContent-Length: 1025\r\n\r\n",
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 413 "), "reply: {reply:?}");
    assert!(
        reply
            .to_ascii_lowercase()
            .contains("\r\nconnection: close\r\n"),
        "reply: {reply:?}"
    );
    let mut h2 = client::h2::<R>(addr).await;
    let request = Request::post(format!("http://{addr}/upload"))
        .body(Full::new(Bytes::from(vec![b'y'; BODY_LIMIT + 1])))
        .expect("request");
    let reply = client::h2_send::<R>(&mut h2, request).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(calls.load(Ordering::SeqCst), 0, "the handler was called");
    assert_eq!(counter(&tree.snapshot(), "requests"), 2);
    assert!(within::<R, _>("stop", tree.stop()).await.is_clean());

    let (tree, addr) = start(HttpServer::<R, _>::new("127.0.0.1:0", hello())).await;
    let reply = exchange_until_closed::<R>(
        addr,
        b"POST / HTTP/1.1\r\nHost: ginkgo.test\r\nContent-Length: 2097153\r\n\r\n",
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 413 "), "2 MiB + 1: {reply:?}");
    assert!(within::<R, _>("stop", tree.stop()).await.is_clean());
}

/// `Transfer-Encoding: chunked` with two chunks of `size` bytes each.
fn chunked_upload(path: &str, size: usize) -> Vec<u8> {
    let chunk = "y".repeat(size);
    format!(
        "POST {path} HTTP/1.1\r\nHost: ginkgo.test\r\nTransfer-Encoding: chunked\r\n\r\n\
         {size:x}\r\n{chunk}\r\n{size:x}\r\n{chunk}\r\n0\r\n\r\n"
    )
    .into_bytes()
}

/// A chunked body that grows past `max_body_size` fails for the service with
/// `http_body_util::LengthLimitError`, which axum's `Bytes` and `String` extractors answer with
/// `413` (their handlers never run); a service reading the body itself finds the error in the
/// chain of its source.
pub(crate) async fn chunked_body_over_limit_gets_413<R: Runtime>() {
    let calls = Arc::new(AtomicUsize::new(0));
    let (tree, addr) = start(uploads::<R>(&calls)).await;
    // 2 x 600 bytes: the second chunk takes the body past the limit of 1,024.
    for path in ["/upload", "/string"] {
        let mut stream = TcpStream::<R>::connect(addr).await.expect("connect");
        stream
            .write_all(&chunked_upload(path, 600))
            .await
            .expect("write the request");
        let reply = read_until(&mut stream, b"length limit exceeded").await;
        assert!(reply.starts_with("HTTP/1.1 413 "), "{path}: {reply}");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0, "a handler was called");
    let mut stream = TcpStream::<R>::connect(addr).await.expect("connect");
    stream
        .write_all(&chunked_upload("/raw", 600))
        .await
        .expect("write the request");
    let reply = read_until(&mut stream, b"length limit exceeded").await;
    assert!(reply.starts_with("HTTP/1.1 200 "), "/raw: {reply}");
    assert!(within::<R, _>("stop", tree.stop()).await.is_clean());
}

/// A body of exactly `max_body_size` bytes is served, with a `Content-Length` over HTTP/1.1
/// and HTTP/2 and chunked.
pub(crate) async fn body_at_limit_is_served<R: Runtime>() {
    let calls = Arc::new(AtomicUsize::new(0));
    let (tree, addr) = start(uploads::<R>(&calls)).await;
    let request = |uri: String| {
        Request::post(uri)
            .header("host", "ginkgo.test")
            .body(Full::new(Bytes::from(vec![b'y'; BODY_LIMIT])))
            .expect("request")
    };
    let h1 = client::h1::<R>(addr)
        .await
        .send(request("/upload".to_owned()))
        .await;
    assert_eq!((h1.status, h1.body.as_str()), (StatusCode::OK, "got 1024"));
    let mut h2 = client::h2::<R>(addr).await;
    let h2 = client::h2_send::<R>(&mut h2, request(format!("http://{addr}/upload"))).await;
    assert_eq!((h2.status, h2.body.as_str()), (StatusCode::OK, "got 1024"));
    let mut stream = TcpStream::<R>::connect(addr).await.expect("connect");
    stream
        .write_all(&chunked_upload("/upload", BODY_LIMIT / 2))
        .await
        .expect("write the request");
    let reply = read_until(&mut stream, b"got 1024").await;
    assert!(reply.starts_with("HTTP/1.1 200 "), "chunked: {reply}");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert!(within::<R, _>("stop", tree.stop()).await.is_clean());
}

/// The HTTP/2 settings the server sends first on a connection, as (identifier, value) pairs.
async fn h2_server_settings<R: Runtime>(addr: SocketAddr) -> Vec<(u16, u32)> {
    const SETTINGS: u8 = 0x4;
    const ACK: u8 = 0x1;
    let mut stream = TcpStream::<R>::connect(addr).await.expect("connect");
    // The preface, then an empty SETTINGS frame of our own.
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend_from_slice(&[0, 0, 0, SETTINGS, 0, 0, 0, 0, 0]);
    stream.write_all(&hello).await.expect("write the preface");
    within::<R, _>("the server's SETTINGS", async {
        loop {
            let mut header = [0u8; 9];
            stream
                .read_exact(&mut header)
                .await
                .expect("a frame header");
            let len = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
            let mut payload = vec![0u8; len];
            stream.read_exact(&mut payload).await.expect("a frame");
            if header[3] == SETTINGS && header[4] & ACK == 0 {
                return payload
                    .chunks_exact(6)
                    .map(|s| {
                        (
                            u16::from_be_bytes([s[0], s[1]]),
                            u32::from_be_bytes([s[2], s[3], s[4], s[5]]),
                        )
                    })
                    .collect();
            }
        }
    })
    .await
}

/// `SETTINGS_MAX_CONCURRENT_STREAMS`.
const MAX_CONCURRENT_STREAMS: u16 = 0x3;

/// The server announces `h2_max_concurrent_streams` (200 by default) in its SETTINGS, and runs
/// no more streams of a connection at once: eight slow requests sent together on one
/// connection with a limit of three all complete, three at a time.
pub(crate) async fn h2_max_concurrent_streams_holds<R: Runtime>() {
    const STREAMS: u32 = 3;
    let (tree, addr) = start(HttpServer::<R, _>::new("127.0.0.1:0", hello())).await;
    let settings = h2_server_settings::<R>(addr).await;
    assert!(
        settings.contains(&(MAX_CONCURRENT_STREAMS, 200)),
        "default settings: {settings:?}"
    );
    assert!(within::<R, _>("stop", tree.stop()).await.is_clean());

    let in_flight = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let slow = {
        let (in_flight, most) = (in_flight.clone(), most.clone());
        get(move || {
            let (in_flight, most) = (in_flight.clone(), most.clone());
            async move {
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                ginkgo_api::time::sleep::<R>(Duration::from_millis(200)).await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                "slow done"
            }
        })
    };
    let server = HttpServer::<R, _>::new("127.0.0.1:0", Router::new().route("/slow", slow))
        .h2_max_concurrent_streams(STREAMS);
    let (tree, addr) = start(server).await;
    let settings = h2_server_settings::<R>(addr).await;
    assert!(
        settings.contains(&(MAX_CONCURRENT_STREAMS, STREAMS)),
        "settings: {settings:?}"
    );
    let mut sender = client::h2::<R>(addr).await;
    // A client sends as many streams as it likes until it has the server's SETTINGS (the
    // server refuses those over the limit): one request first makes sure it has them.
    let first = client::h2_get::<R>(&mut sender, addr, "/slow").await;
    assert_eq!(first.status, StatusCode::OK);
    let requests: Vec<_> = (0..8)
        .map(|_| {
            let mut sender = sender.clone();
            ginkgo_api::spawn::<R, _>(async move {
                client::h2_get::<R>(&mut sender, addr, "/slow").await
            })
        })
        .collect();
    for request in requests {
        let reply = within::<R, _>("a slow request", request)
            .await
            .expect("the request task");
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (StatusCode::OK, "slow done")
        );
    }
    assert_eq!(
        most.load(Ordering::SeqCst),
        STREAMS as usize,
        "the most streams served at once"
    );
    assert!(within::<R, _>("stop", tree.stop()).await.is_clean());
}

/// An HTTP/1.1 keep-alive connection left idle after a response is closed once the idle
/// timeout has passed, not the (shorter) header read timeout, and not much later.
pub(crate) async fn idle_timeout_closes_keep_alive<R: Runtime>() {
    const IDLE: Duration = Duration::from_millis(400);
    const HEAD: Duration = Duration::from_millis(100);
    let server = HttpServer::<R, _>::new("127.0.0.1:0", hello())
        .idle_timeout(IDLE)
        .header_read_timeout(HEAD);
    let (tree, addr) = start(server).await;
    let mut stream = TcpStream::<R>::connect(addr).await.expect("connect");
    let sent = Instant::now();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: ginkgo.test\r\n\r\n")
        .await
        .expect("write a request");
    let reply = read_until(&mut stream, b"hello").await;
    assert!(reply.starts_with("HTTP/1.1 200 "), "reply: {reply}");
    let answered = Instant::now();
    let rest = read_until_closed(&mut stream).await;
    let closed = Instant::now();
    assert!(rest.is_empty(), "sent more: {rest:?}");
    // The server's idle time begins after the request was sent and before the reply was read.
    assert!(
        closed - sent >= IDLE,
        "closed {:?} after the request, before the idle timeout of {IDLE:?}",
        closed - sent
    );
    assert!(
        closed - answered < IDLE + Duration::from_secs(1),
        "closed {:?} after the reply, long after the idle timeout of {IDLE:?}",
        closed - answered
    );
    assert!(within::<R, _>("stop", tree.stop()).await.is_clean());
}

/// A connection that sends a request more often than the idle timeout stays open: ten
/// requests, one every half of the timeout, on one connection.
pub(crate) async fn idle_timeout_spares_busy_connection<R: Runtime>() {
    const IDLE: Duration = Duration::from_millis(300);
    let server = HttpServer::<R, _>::new("127.0.0.1:0", hello()).idle_timeout(IDLE);
    let (tree, addr) = start(server).await;
    let mut conn = client::h1::<R>(addr).await;
    for _ in 0..10 {
        let reply = conn.get("/").await;
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (StatusCode::OK, "hello")
        );
        ginkgo_api::time::sleep::<R>(IDLE / 2).await;
    }
    let snapshot = tree.snapshot();
    assert_eq!(counter(&snapshot, "connections_accepted"), 1);
    assert_eq!(counter(&snapshot, "requests"), 10);
    assert!(within::<R, _>("stop", tree.stop()).await.is_clean());
}

/// An HTTP/2 connection with no stream open for the idle timeout gets a `GOAWAY` and is
/// closed, not sooner and not much later: one that never sent a request is closed that long
/// after it opened, and one whose only request took longer than the timeout is not cut during
/// it, but that long after it.
pub(crate) async fn h2_idle_timeout_sends_goaway<R: Runtime>() {
    const IDLE: Duration = Duration::from_millis(400);
    const SLOW: Duration = Duration::from_millis(800);
    let slow = get(|| async {
        ginkgo_api::time::sleep::<R>(SLOW).await;
        "slow done"
    });
    let server = HttpServer::<R, _>::new("127.0.0.1:0", Router::new().route("/slow", slow))
        .idle_timeout(IDLE)
        .header_read_timeout(Duration::from_millis(100));
    let (tree, addr) = start(server).await;

    let opened = Instant::now();
    let (sender, driver) = client::h2_connection::<R>(addr).await;
    let ended = within::<R, _>("the idle connection closes", driver)
        .await
        .expect("the connection task");
    let closed = opened.elapsed();
    assert!(ended.is_ok(), "not a graceful close: {ended:?}");
    assert!(sender.is_closed(), "the client may still send");
    assert!(
        closed >= IDLE && closed < IDLE + Duration::from_secs(1),
        "closed {closed:?} after opening, with an idle timeout of {IDLE:?}"
    );

    let (mut sender, driver) = client::h2_connection::<R>(addr).await;
    let sent = Instant::now();
    let reply = client::h2_get::<R>(&mut sender, addr, "/slow").await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "slow done")
    );
    let answered = Instant::now();
    let ended = within::<R, _>("the connection closes after its request", driver)
        .await
        .expect("the connection task");
    let closed = Instant::now();
    assert!(ended.is_ok(), "not a graceful close: {ended:?}");
    assert!(
        closed - sent >= SLOW + IDLE,
        "closed {:?} after the request, before its response and the idle timeout",
        closed - sent
    );
    assert!(
        closed - answered < IDLE + Duration::from_secs(1),
        "closed {:?} after the reply, long after the idle timeout of {IDLE:?}",
        closed - answered
    );
    // The client sees the close before the server's connection task has counted it.
    ginkgo_tests::support::eventually::<R>(
        "both connections counted closed",
        client::LIMIT,
        || counter(&tree.snapshot(), "connections_closed") == 2,
    )
    .await;
    assert!(within::<R, _>("stop", tree.stop()).await.is_clean());
}

/// An HTTP/2 peer that ignores the `GOAWAY` of the idle timeout (it never answers the PING
/// that completes a graceful shutdown, nor closes) is cut off the header read timeout later.
pub(crate) async fn h2_idle_peer_ignoring_goaway_is_cut_off<R: Runtime>() {
    const IDLE: Duration = Duration::from_millis(300);
    const HEAD: Duration = Duration::from_millis(200);
    let server = HttpServer::<R, _>::new("127.0.0.1:0", hello())
        .idle_timeout(IDLE)
        .header_read_timeout(HEAD);
    let (tree, addr) = start(server).await;
    // Before connecting: the server counts from when it accepted.
    let opened = Instant::now();
    let mut stream = TcpStream::<R>::connect(addr).await.expect("connect");
    // The preface and an empty SETTINGS frame; then it reads, and answers nothing.
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend_from_slice(&[0, 0, 0, 0x4, 0, 0, 0, 0, 0]);
    stream.write_all(&hello).await.expect("write the preface");
    let frames = read_until_closed(&mut stream).await;
    let closed = opened.elapsed();
    let types = frame_types(&frames);
    const GOAWAY: u8 = 0x7;
    assert!(
        types.contains(&GOAWAY),
        "no GOAWAY among the frames {types:?}"
    );
    assert!(
        closed >= IDLE + HEAD && closed < IDLE + HEAD + Duration::from_secs(1),
        "closed {closed:?} after opening: idle timeout {IDLE:?}, then {HEAD:?}"
    );
    assert!(within::<R, _>("stop", tree.stop()).await.is_clean());
}

/// The types of the HTTP/2 frames in `bytes`, in order.
fn frame_types(mut bytes: &[u8]) -> Vec<u8> {
    let mut types = Vec::new();
    while bytes.len() >= 9 {
        let len = u32::from_be_bytes([0, bytes[0], bytes[1], bytes[2]]) as usize;
        types.push(bytes[3]);
        bytes = &bytes[(9 + len).min(bytes.len())..];
    }
    types
}

/// A client that writes a whole body over the limit before it reads, as most clients do,
/// still gets the `413`: the server reads and drops the rest of the body after its response
/// (a lingering close) rather than close a socket with unread bytes, which would reset the
/// connection under the client's writes and lose the response it had not read yet.
pub(crate) async fn refused_body_is_drained_so_the_413_arrives<R: Runtime>() {
    const SIZE: usize = 8 * 1024 * 1024;
    let calls = Arc::new(AtomicUsize::new(0));
    let (tree, addr) = start(uploads::<R>(&calls)).await;
    let mut stream = TcpStream::<R>::connect(addr).await.expect("connect");
    let head =
        format!("POST /upload HTTP/1.1\r\nHost: ginkgo.test\r\nContent-Length: {SIZE}\r\n\r\n");
    stream
        .write_all(head.as_bytes())
        .await
        .expect("write the head");
    let chunk = vec![b'y'; 64 * 1024];
    within::<R, _>("writing the refused body", async {
        for sent in (0..SIZE).step_by(chunk.len()) {
            stream.write_all(&chunk).await.unwrap_or_else(|err| {
                panic!("the server reset the connection after {sent} bytes of the body: {err}")
            });
        }
    })
    .await;
    let reply = String::from_utf8_lossy(&read_until_closed(&mut stream).await).into_owned();
    assert!(reply.starts_with("HTTP/1.1 413 "), "reply: {reply:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 0, "the handler was called");
    assert!(within::<R, _>("stop", tree.stop()).await.is_clean());
}

/// A request body sent in frames, with no length known ahead: each frame a data frame.
struct Frames(std::collections::VecDeque<Bytes>);

impl http_body::Body for Frames {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        std::task::Poll::Ready(
            self.0
                .pop_front()
                .map(|data| Ok(http_body::Frame::data(data))),
        )
    }
}

/// Over HTTP/2, a request body streamed in DATA frames with no `content-length` that grows
/// past `max_body_size` fails for the service at the limit: axum's extractor answers `413`
/// and its handler never runs; one at the limit is served; and the connection goes on.
pub(crate) async fn h2_streamed_body_over_limit_gets_413<R: Runtime>() {
    let calls = Arc::new(AtomicUsize::new(0));
    let (tree, addr) = start(uploads::<R>(&calls)).await;
    let stream = TcpStream::<R>::connect(addr).await.expect("connect");
    let (mut sender, conn) = within::<R, _>(
        "HTTP/2 handshake",
        hyper::client::conn::http2::Builder::new(ginkgo_http::rt::Executor::<R>::new())
            .timer(ginkgo_http::rt::Timer::<R>::new())
            .handshake::<_, Frames>(ginkgo_http::rt::Io::new(stream)),
    )
    .await
    .expect("HTTP/2 handshake");
    drop(ginkgo_api::spawn::<R, _>(conn));
    for (frames, status, body) in [
        (
            vec![600, 600],
            StatusCode::PAYLOAD_TOO_LARGE,
            "length limit exceeded",
        ),
        (vec![512, 512], StatusCode::OK, "got 1024"),
    ] {
        let chunks = frames
            .iter()
            .map(|&len| Bytes::from(vec![b'y'; len]))
            .collect();
        let request = Request::post(format!("http://{addr}/upload"))
            .body(Frames(chunks))
            .expect("request");
        let response = within::<R, _>("HTTP/2 response", async {
            let response = sender.send_request(request).await.expect("a response");
            let status = response.status();
            let declared = response.headers().contains_key("content-length");
            let text = response
                .into_body()
                .collect()
                .await
                .expect("the body")
                .to_bytes();
            (
                status,
                declared,
                String::from_utf8_lossy(&text).into_owned(),
            )
        })
        .await;
        assert_eq!(response.0, status, "frames {frames:?}: {response:?}");
        assert!(response.2.contains(body), "frames {frames:?}: {response:?}");
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the handler ran for the body over the limit"
    );
    assert!(within::<R, _>("stop", tree.stop()).await.is_clean());
}
