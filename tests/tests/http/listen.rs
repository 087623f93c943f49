//! HTTP on the other listeners: a Unix-domain socket, and pausing accepting.

use std::time::Duration;

use ginkgo_api::Runtime;
use ginkgo_api::io::{AsyncReadExt, AsyncWriteExt};
use ginkgo_api::net::{TcpStream, UnixStream};
use ginkgo_api::service::tree;
use ginkgo_api::time::timeout;
use ginkgo_http::axum::Router;
use ginkgo_http::axum::routing::get;
use ginkgo_http::{HttpServer, LocalAddr};

use crate::client::within;

/// One HTTP/1.1 request with `Connection: close` over `stream`; the whole response as text.
async fn get_closing<R: Runtime, S>(mut stream: S) -> String
where
    S: ginkgo_api::io::AsyncRead + ginkgo_api::io::AsyncWrite + Unpin,
{
    stream
        .write_all(b"GET / HTTP/1.1\r\nhost: local\r\nconnection: close\r\n\r\n")
        .await
        .expect("send the request");
    let mut response = String::new();
    within::<R, _>("the response", stream.read_to_string(&mut response))
        .await
        .expect("read the response");
    response
}

/// `HttpServer` on `unix:PATH` serves HTTP there, and removes the socket file on stop.
pub(crate) async fn serves_on_unix_socket<R: Runtime>() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("http.sock");
    let app = Router::new().route("/", get(|| async { "over unix" }));
    let server = HttpServer::<R, _>::new(format!("unix:{}", path.display()), app);
    let address = server.address();
    let tree = tree::<R>(server);
    within::<R, _>("start", tree.start()).await.expect("start");
    assert_eq!(address.get(), Some(LocalAddr::Unix(Some(path.clone()))));
    let response =
        get_closing::<R, _>(UnixStream::<R>::connect(&path).await.expect("connect")).await;
    assert!(
        response.starts_with("HTTP/1.1 200 OK") && response.ends_with("over unix"),
        "{response}"
    );
    assert!(tree.stop().await.is_clean());
    assert!(!path.exists(), "the socket file is removed on stop");
}

/// A paused `HttpServer` leaves new connections waiting; resumed, it answers them.
pub(crate) async fn pause_and_resume_accepting<R: Runtime>() {
    let app = Router::new().route("/", get(|| async { "hello" }));
    let server = HttpServer::<R, _>::new("127.0.0.1:0", app);
    let (address, control) = (server.address(), server.accept_control());
    let tree = tree::<R>(server);
    within::<R, _>("start", tree.start()).await.expect("start");
    let addr = address.local_addr().expect("listening");
    control.pause();
    let mut waiting = TcpStream::<R>::connect(addr)
        .await
        .expect("queued by the kernel");
    waiting
        .write_all(b"GET / HTTP/1.1\r\nhost: local\r\nconnection: close\r\n\r\n")
        .await
        .expect("send");
    let mut byte = [0u8; 1];
    let early = timeout::<R, _>(Duration::from_millis(300), waiting.read(&mut byte)).await;
    assert!(early.is_err(), "no answer while paused: {early:?}");
    let paused = tree
        .snapshot()
        .counters
        .iter()
        .find(|(name, _)| name == "accept_paused")
        .map(|(_, value)| *value);
    assert_eq!(paused, Some(1), "the snapshot shows the pause");
    control.resume();
    let mut response = String::new();
    within::<R, _>(
        "the answer once resumed",
        waiting.read_to_string(&mut response),
    )
    .await
    .expect("read");
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(tree.stop().await.is_clean());
}
