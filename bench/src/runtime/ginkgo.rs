//! The ginkgo side: written once, generic over the runtime.

use std::hint::black_box;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ginkgo_api::Runtime;
use ginkgo_api::net::{TcpListener, TcpStream};

use super::{ECHO_CONNS, ECHO_LEN, ECHO_ROUND_TRIPS};
use crate::messages;

/// Spawns `tasks` trivial tasks, then awaits them all; times that inside the runtime.
pub(super) fn spawn_join<R: Runtime>(tasks: usize) -> Duration {
    ginkgo_api::block_on::<R, _>(async move {
        let start = Instant::now();
        let handles: Vec<_> = (0..tasks)
            .map(|i| ginkgo_api::spawn::<R, _>(async move { i }))
            .collect();
        let mut sum = 0;
        for handle in handles {
            sum += handle.await.expect("task failed");
        }
        black_box(sum);
        start.elapsed()
    })
}

/// Echoes `ECHO_ROUND_TRIPS` messages over each of `ECHO_CONNS` loopback connections.
pub(super) fn echo<R: Runtime>() -> Duration {
    ginkgo_api::block_on::<R, _>(async {
        let start = Instant::now();
        let listener = TcpListener::<R>::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = ginkgo_api::spawn::<R, _>(async move {
            let mut handlers = Vec::with_capacity(ECHO_CONNS);
            for _ in 0..ECHO_CONNS {
                let (stream, _) = listener.accept().await?;
                handlers.push(ginkgo_api::spawn::<R, _>(serve::<R>(stream)));
            }
            for handler in handlers {
                handler.await??;
            }
            io::Result::Ok(())
        });
        let clients: Vec<_> = (0..ECHO_CONNS)
            .map(|_| ginkgo_api::spawn::<R, _>(client::<R>(addr)))
            .collect();
        for client in clients {
            client.await??;
        }
        server.await??;
        io::Result::Ok(start.elapsed())
    })
    .expect("echo benchmark failed")
}

/// Echoes fixed-size messages until the peer closes.
async fn serve<R: Runtime>(stream: TcpStream<R>) -> io::Result<()> {
    stream.set_nodelay(true)?;
    messages::echo::<ECHO_LEN>(stream).await
}

/// Sends a message and waits for its echo, `ECHO_ROUND_TRIPS` times.
async fn client<R: Runtime>(addr: SocketAddr) -> io::Result<()> {
    let stream = TcpStream::<R>::connect(addr).await?;
    stream.set_nodelay(true)?;
    messages::exchange::<ECHO_LEN>(stream, ECHO_ROUND_TRIPS).await
}
