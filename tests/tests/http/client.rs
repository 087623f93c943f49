//! A small HTTP client for the cases: hyper's connection-level clients on the ginkgo adapters,
//! every wait bounded.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use ginkgo_api::net::TcpStream;
use ginkgo_api::{JoinHandle, Runtime};
use ginkgo_http::http::{Request, Response, StatusCode, Version};
use ginkgo_http::rt::{Executor, Io, Timer};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;

/// How long any single step of a case may take before it fails with a message.
pub(crate) const LIMIT: Duration = Duration::from_secs(10);

/// Awaits `future`, failing the case if it takes longer than [`LIMIT`].
pub(crate) async fn within<R: Runtime, T>(what: &str, future: impl Future<Output = T>) -> T {
    match ginkgo_api::time::timeout::<R, _>(LIMIT, future).await {
        Ok(value) => value,
        Err(_) => panic!("{what}: no result within {LIMIT:?}"),
    }
}

/// A response read whole.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) version: Version,
    pub(crate) content_type: String,
    pub(crate) body: String,
}

/// An HTTP/1.1 connection and the task driving it.
pub(crate) struct H1<R: Runtime> {
    pub(crate) sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    pub(crate) driver: JoinHandle<hyper::Result<()>, R>,
}

/// Opens an HTTP/1.1 connection to `addr`.
pub(crate) async fn h1<R: Runtime>(addr: SocketAddr) -> H1<R> {
    let stream = within::<R, _>("connect", TcpStream::<R>::connect(addr))
        .await
        .unwrap_or_else(|err| panic!("connect to {addr}: {err}"));
    let (sender, conn) = within::<R, _>(
        "HTTP/1.1 handshake",
        hyper::client::conn::http1::handshake(Io::new(stream)),
    )
    .await
    .expect("HTTP/1.1 handshake");
    H1 {
        sender,
        driver: ginkgo_api::spawn::<R, _>(conn),
    }
}

impl<R: Runtime> H1<R> {
    /// Sends `GET path` and reads the whole response.
    pub(crate) async fn get(&mut self, path: &str) -> Reply {
        let request = Request::get(path)
            .header("host", "ginkgo.test")
            .body(Full::default())
            .expect("request");
        self.send(request).await
    }

    /// Sends `request` and reads the whole response.
    pub(crate) async fn send(&mut self, request: Request<Full<Bytes>>) -> Reply {
        let path = request.uri().to_string();
        let path = path.as_str();
        within::<R, _>("HTTP/1.1 response", async {
            self.sender
                .ready()
                .await
                .unwrap_or_else(|err| panic!("GET {path}: connection not ready: {err}"));
            let response = self.sender.send_request(request).await;
            read(path, response).await
        })
        .await
    }
}

/// Opens an HTTP/2 connection with prior knowledge (h2c) to `addr`.
pub(crate) async fn h2<R: Runtime>(
    addr: SocketAddr,
) -> hyper::client::conn::http2::SendRequest<Full<Bytes>> {
    h2_connection::<R>(addr).await.0
}

/// Opens an HTTP/2 connection with prior knowledge (h2c) to `addr`, with the task driving it:
/// it ends when the connection closes.
pub(crate) async fn h2_connection<R: Runtime>(
    addr: SocketAddr,
) -> (
    hyper::client::conn::http2::SendRequest<Full<Bytes>>,
    JoinHandle<hyper::Result<()>, R>,
) {
    let stream = within::<R, _>("connect", TcpStream::<R>::connect(addr))
        .await
        .unwrap_or_else(|err| panic!("connect to {addr}: {err}"));
    let (sender, conn) = within::<R, _>(
        "HTTP/2 handshake",
        hyper::client::conn::http2::Builder::new(Executor::<R>::new())
            .timer(Timer::<R>::new())
            .handshake(Io::new(stream)),
    )
    .await
    .expect("HTTP/2 handshake");
    (sender, ginkgo_api::spawn::<R, _>(conn))
}

/// Sends `GET http://addr/path` over HTTP/2 and reads the whole response.
pub(crate) async fn h2_get<R: Runtime>(
    sender: &mut hyper::client::conn::http2::SendRequest<Full<Bytes>>,
    addr: SocketAddr,
    path: &str,
) -> Reply {
    let request = Request::get(format!("http://{addr}{path}"))
        .body(Full::default())
        .expect("request");
    h2_send::<R>(sender, request).await
}

/// Sends `request` over HTTP/2 and reads the whole response.
pub(crate) async fn h2_send<R: Runtime>(
    sender: &mut hyper::client::conn::http2::SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> Reply {
    let path = request.uri().to_string();
    within::<R, _>("HTTP/2 response", async {
        let response = sender.send_request(request).await;
        read(&path, response).await
    })
    .await
}

/// One `GET` on a fresh HTTP/1.1 connection.
pub(crate) async fn get_once<R: Runtime>(addr: SocketAddr, path: &str) -> Reply {
    h1::<R>(addr).await.get(path).await
}

async fn read(path: &str, response: hyper::Result<Response<Incoming>>) -> Reply {
    let response = response.unwrap_or_else(|err| panic!("GET {path}: {err}"));
    let status = response.status();
    let version = response.version();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response
        .into_body()
        .collect()
        .await
        .unwrap_or_else(|err| panic!("GET {path}: reading the body: {err}"))
        .to_bytes();
    Reply {
        status,
        version,
        content_type,
        body: String::from_utf8(body.to_vec()).expect("a UTF-8 body"),
    }
}
