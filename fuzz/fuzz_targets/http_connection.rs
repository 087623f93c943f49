//! One HTTP connection fed any bytes: the server's protocol sniffing (HTTP/1.1 or the HTTP/2
//! preface), its socket wrapper with the head deadline, the I/O adapter to hyper, hyper
//! itself and the limits, behind a real `HttpServer` on a Unix socket. Any input gets an
//! answer or a closed connection, and never a panic (libFuzzer's panic hook aborts on one,
//! even in a server task).
//!
//! Input: the bytes the client sends, after which it closes its writing side.

#![no_main]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use ginkgo_backend_smol::Smol;
use ginkgo_http::HttpServer;
use ginkgo_http::axum::Router;
use ginkgo_http::axum::routing::{get, post};
use libfuzzer_sys::fuzz_target;

/// The server, started once for the whole run, on a socket in a temporary directory.
fn server() -> &'static PathBuf {
    static SOCKET: OnceLock<PathBuf> = OnceLock::new();
    SOCKET.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let socket = dir.path().join("http.sock");
        let listen = format!("unix:{}", socket.display());
        let (ready, started) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _dir = dir;
            let app = Router::new()
                .route("/", get(|| async { "hello" }))
                .route("/echo", post(|body: String| async move { body }));
            let server = HttpServer::<Smol, _>::new(listen, app)
                .header_read_timeout(Duration::from_millis(200))
                .idle_timeout(Duration::from_millis(200))
                .max_header_size(8192)
                .max_body_size(4096);
            ginkgo_api::block_on::<Smol, _>(async move {
                let tree = ginkgo_api::service::tree::<Smol>(server);
                tree.start().await.expect("the server starts");
                ready.send(()).expect("report");
                let _ = ginkgo_api::service::serve(&tree).await;
            });
        });
        started.recv().expect("the server started");
        socket
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(mut stream) = UnixStream::connect(server()) else {
        panic!("the server stopped listening");
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    stream
        .set_write_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    // The server may answer and close before it has read everything: that is fine.
    let _ = stream.write_all(data);
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
});
