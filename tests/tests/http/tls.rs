//! HTTPS: HTTP/2 and HTTP/1.1 by ALPN, handshake errors counted in the snapshot and
//! `/metrics`, bad files at start, and a validated certificate reload.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use ginkgo_api::Runtime;
use ginkgo_api::io::{AsyncReadExt, AsyncWriteExt};
use ginkgo_api::net::TcpStream;
use ginkgo_api::service::{ServiceHandle, tree};
use ginkgo_http::axum::Router;
use ginkgo_http::axum::routing::get;
use ginkgo_http::http::{Request, StatusCode, Version};
use ginkgo_http::rt::{Executor, Io, Timer};
use ginkgo_http::{HttpServer, admin};
use ginkgo_net::Stream;
use ginkgo_tests::support::certs::{Issued, Pki};
use ginkgo_tls::{CertificateDer, TlsConnector};
use http_body_util::{BodyExt, Full};

use crate::client::within;

async fn start<R: Runtime>(cert: &Issued) -> (ServiceHandle, SocketAddr) {
    let app = Router::new().route("/", get(|| async { "hello over tls" }));
    let server = HttpServer::<R, _>::with_context("127.0.0.1:0", move |ctx| {
        app.clone().merge(admin::router(ctx.handle().root()))
    })
    .header_read_timeout(Duration::from_millis(500))
    .tls(Pki::server_tls(cert));
    let address = server.address();
    let tree = tree::<R>(server);
    within::<R, _>("start", tree.start()).await.expect("start");
    (tree, address.local_addr().expect("listening"))
}

/// A TLS connection offering `alpn`.
async fn connect<R: Runtime>(addr: SocketAddr, pki: &Pki, alpn: &str) -> Stream<R> {
    let connector = TlsConnector::new(pki.client_tls().alpn([alpn])).expect("client settings");
    let tcp = within::<R, _>("connect", TcpStream::<R>::connect(addr))
        .await
        .expect("connect");
    within::<R, _>(
        "handshake",
        Stream::from(tcp).connect_tls(&connector, "localhost"),
    )
    .await
    .expect("handshake")
}

/// `GET path` over `stream` with the protocol ALPN chose: (version, status, body).
async fn get_over<R: Runtime>(stream: Stream<R>, path: &str) -> (Version, StatusCode, String) {
    let request = Request::get(format!("https://localhost{path}"))
        .header("host", "localhost")
        .body(Full::<Bytes>::default())
        .expect("request");
    let response = if stream.alpn_protocol() == Some(b"h2") {
        let (mut sender, conn) = hyper::client::conn::http2::Builder::new(Executor::<R>::new())
            .timer(Timer::<R>::new())
            .handshake(Io::new(stream))
            .await
            .expect("h2 handshake");
        drop(ginkgo_api::spawn::<R, _>(conn));
        sender.send_request(request).await
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(Io::new(stream))
            .await
            .expect("h1 handshake");
        drop(ginkgo_api::spawn::<R, _>(conn));
        sender.send_request(request).await
    };
    let response = response.expect("response");
    let (version, status) = (response.version(), response.status());
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (version, status, String::from_utf8_lossy(&body).into_owned())
}

/// ALPN picks HTTP/2 for a client offering `h2`, HTTP/1.1 for one offering `http/1.1`.
pub(crate) async fn https_negotiates_h2_and_http1<R: Runtime>() {
    let pki = Pki::new("alpn");
    let cert = pki.server("server");
    let (tree, addr) = start::<R>(&cert).await;
    for (alpn, version) in [("h2", Version::HTTP_2), ("http/1.1", Version::HTTP_11)] {
        let stream = connect::<R>(addr, &pki, alpn).await;
        assert_eq!(stream.alpn_protocol(), Some(alpn.as_bytes()));
        let reply = within::<R, _>("GET /", get_over(stream, "/")).await;
        assert_eq!(
            reply,
            (version, StatusCode::OK, "hello over tls".to_owned())
        );
    }
    assert!(tree.stop().await.is_clean());
}

/// Plain HTTP on the HTTPS port, and a silent peer, end at the handshake (the silent one at
/// the header read timeout), are counted in the snapshot and in `/metrics`, and the server
/// goes on.
pub(crate) async fn https_handshake_errors_in_metrics<R: Runtime>() {
    let pki = Pki::new("metrics");
    let cert = pki.server("server");
    let (tree, addr) = start::<R>(&cert).await;
    let mut plain = TcpStream::<R>::connect(addr).await.expect("connect");
    plain
        .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .expect("write");
    let mut rest = Vec::new();
    let _ = within::<R, _>("plain text refused", plain.read_to_end(&mut rest)).await;
    let mut silent = TcpStream::<R>::connect(addr).await.expect("connect");
    let mut byte = [0u8; 1];
    let ended = within::<R, _>("a silent peer closed", silent.read(&mut byte)).await;
    assert!(matches!(ended, Ok(0) | Err(_)), "{ended:?}");
    let (_, status, metrics) = within::<R, _>(
        "GET /metrics",
        get_over(connect::<R>(addr, &pki, "http/1.1").await, "/metrics"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let line = metrics
        .lines()
        .find(|line| line.contains("tls_handshake_errors") && !line.starts_with('#'))
        .unwrap_or_else(|| panic!("no tls_handshake_errors in /metrics:\n{metrics}"));
    assert!(line.ends_with(" 2"), "two failed handshakes: {line}");
    assert!(tree.stop().await.is_clean());
}

fn shown<R: Runtime>(stream: &Stream<R>) -> CertificateDer<'static> {
    stream
        .peer_identity()
        .expect("a certificate")
        .certificate()
        .clone()
}

/// A reload with renewed files serves them to new connections; one with a broken file fails,
/// naming it, and the certificate in force stays. Bad files at start fail the start.
pub(crate) async fn https_reload_and_bad_files<R: Runtime>() {
    let pki = Pki::new("https-reload");
    let old = pki.server("live");
    let (tree, addr) = start::<R>(&old).await;
    assert_eq!(shown(&connect::<R>(addr, &pki, "h2").await), old.der);
    let new = pki.server("live");
    within::<R, _>("reload", tree.reload())
        .await
        .expect("good files reload");
    let stream = connect::<R>(addr, &pki, "h2").await;
    assert_eq!(shown(&stream), new.der);
    let (_, status, _) = within::<R, _>("GET /", get_over(stream, "/")).await;
    assert_eq!(status, StatusCode::OK);
    std::fs::write(&new.key, b"garbage").expect("break the key");
    let failure = within::<R, _>("reload", tree.reload())
        .await
        .expect_err("a broken key is refused");
    assert!(
        failure.to_string().contains(&new.key.display().to_string()),
        "names the file: {failure}"
    );
    assert_eq!(shown(&connect::<R>(addr, &pki, "h2").await), new.der);
    assert!(tree.stop().await.is_clean());

    let broken = ginkgo_api::service::tree::<R>(
        HttpServer::<R, _>::new("127.0.0.1:0", Router::new()).tls(Pki::server_tls(&new)),
    );
    let failure = within::<R, _>("start", broken.start())
        .await
        .expect_err("a broken key fails the start");
    assert!(
        failure.to_string().contains(&new.key.display().to_string()),
        "names the file: {failure}"
    );
}
