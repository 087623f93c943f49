//! The `echo` suite: a ginkgo [`StreamServer`] in a service tree, echoing, against a
//! hand-written echo server on the same runtime's native API.
//!
//! Both servers are driven by one load generator, written once ([`load`]): `CONNS` tokio tasks
//! on a tokio runtime of its own (as many worker threads as the servers get, started once per
//! process), apart from the server's runtime on both sides. It opens the `CONNS` connections
//! (with `TCP_NODELAY`, as the servers set it), then each client does `ROUND_TRIPS` round trips
//! of a `LEN`-byte message. The clock runs from the first message to the last echo; starting
//! and stopping the server and opening the connections are not timed.

mod native;

use std::io;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ginkgo_api::Runtime;
use ginkgo_backend_async_std::AsyncStd;
use ginkgo_backend_smol::Smol;
use ginkgo_backend_threads::Threads;
use ginkgo_backend_tokio::Tokio;
use ginkgo_net::{Connection, StreamServer};

use crate::messages;
use crate::suite::{Backend, Case, Suite};

/// Concurrent loopback connections.
const CONNS: usize = 256;
/// Round trips per connection.
const ROUND_TRIPS: usize = 500;
/// Bytes per message.
const LEN: usize = 64;

/// The suite, for [`crate::suite::run`].
pub(crate) const SUITE: Suite = Suite {
    command: "echo",
    title: "a StreamServer in a service tree vs. a native echo server on the same runtime",
    intro: "ginkgo: a StreamServer in a service tree; baseline: an echo server on the same \
            runtime's native API. Both driven by the same load generator: tokio client tasks on \
            a tokio runtime of their own; connections opened before the clock starts.",
    cases,
};

/// The one case of `backend`: the ginkgo server and the native one.
fn cases(backend: Backend) -> Vec<Case> {
    let name = format!("stream echo {CONNS} conns x {ROUND_TRIPS} x {LEN} B");
    let case = |ginkgo, baseline| vec![Case::new("stream echo", name, ginkgo, baseline)];
    match backend {
        Backend::Tokio => case(ginkgo::<Tokio>, native::tokio),
        Backend::AsyncStd => case(ginkgo::<AsyncStd>, native::async_std),
        Backend::Smol => case(ginkgo::<Smol>, native::smol),
        Backend::Threads => case(ginkgo::<Threads>, native::threads),
    }
}

/// One run against a [`StreamServer`] started in a fresh service tree on `R`.
fn ginkgo<R: Runtime>() -> Duration {
    let server = StreamServer::<R, _>::new("echo", "127.0.0.1:0", handler::<R>);
    let address = server.address();
    ginkgo_api::block_on::<R, _>(async move {
        let tree = ginkgo_api::service::tree::<R>(server);
        tree.start().await.expect("the echo server starts");
        let took = load(address.local_addr().expect("listening once started")).await;
        let report = tree.stop().await;
        assert!(
            report.is_clean(),
            "the echo server did not stop cleanly: {report}"
        );
        took
    })
}

/// The [`StreamServer`]'s handler: the same echo loop as the async-std and smol baselines
/// (which set `TCP_NODELAY` themselves; the server's listener sets it by default).
async fn handler<R: Runtime>(connection: Connection<R>) -> io::Result<()> {
    messages::echo::<LEN>(connection.stream).await
}

/// The load generator's tokio runtime, started on first use and kept for the process.
pub(crate) fn client_runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(ginkgo_backend_kit::worker_count())
            .thread_name("bench-client")
            .enable_io()
            .build()
            .expect("could not start the load generator's runtime")
    })
}

/// Runs the load against the echo server at `addr` and returns the time the round trips took.
/// The work runs on the load generator's runtime; any executor (or none) may await the result.
///
/// The connections are opened one after the other before the clock starts: opened all at once,
/// they overflow the listen backlog (128 on both sides), and the kernel's dropped SYNs cost
/// random connections a one-second retransmit, far more noise than the servers' differences.
async fn load(addr: SocketAddr) -> Duration {
    let run = client_runtime().spawn(async move {
        let mut streams = Vec::with_capacity(CONNS);
        for _ in 0..CONNS {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            streams.push(stream);
        }
        let start = Instant::now();
        let clients: Vec<_> = streams
            .into_iter()
            .map(|s| tokio::spawn(client(s)))
            .collect();
        for client in clients {
            client.await.expect("a client panicked")?;
        }
        io::Result::Ok(start.elapsed())
    });
    run.await
        .expect("the load generator panicked")
        .expect("a client failed")
}

/// One connection: sends a message and waits for its echo, `ROUND_TRIPS` times.
async fn client(mut stream: tokio::net::TcpStream) -> io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let message = [7; LEN];
    let mut buf = [0; LEN];
    for _ in 0..ROUND_TRIPS {
        stream.write_all(&message).await?;
        stream.read_exact(&mut buf).await?;
    }
    assert_eq!(buf, message, "echo mismatch");
    Ok(())
}
