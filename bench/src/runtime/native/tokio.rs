//! tokio: `tokio::spawn` and `tokio::net` on a multi-thread runtime with ginkgo's worker count.

use std::hint::black_box;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::runtime::{ECHO_CONNS, ECHO_LEN, ECHO_ROUND_TRIPS};

/// A fresh runtime built like the one `ginkgo_api::block_on::<Tokio, _>` builds.
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(ginkgo_backend_kit::worker_count())
        .enable_all()
        .build()
        .expect("could not start the tokio runtime")
}

pub(crate) fn spawn_join(tasks: usize) -> Duration {
    runtime().block_on(async move {
        let start = Instant::now();
        let handles: Vec<_> = (0..tasks).map(|i| tokio::spawn(async move { i })).collect();
        let mut sum = 0;
        for handle in handles {
            sum += handle.await.expect("task failed");
        }
        black_box(sum);
        start.elapsed()
    })
}

pub(crate) fn echo() -> Duration {
    runtime()
        .block_on(async {
            let start = Instant::now();
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            let server = tokio::spawn(async move {
                let mut handlers = Vec::with_capacity(ECHO_CONNS);
                for _ in 0..ECHO_CONNS {
                    let (stream, _) = listener.accept().await?;
                    handlers.push(tokio::spawn(serve(stream)));
                }
                for handler in handlers {
                    handler.await??;
                }
                io::Result::Ok(())
            });
            let clients: Vec<_> = (0..ECHO_CONNS)
                .map(|_| tokio::spawn(client(addr)))
                .collect();
            for client in clients {
                client.await??;
            }
            server.await??;
            io::Result::Ok(start.elapsed())
        })
        .expect("echo benchmark failed")
}

async fn serve(mut stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = [0; ECHO_LEN];
    loop {
        match stream.read_exact(&mut buf).await {
            Ok(_) => stream.write_all(&buf).await?,
            Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(err) => return Err(err),
        }
    }
}

async fn client(addr: SocketAddr) -> io::Result<()> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let message = [7; ECHO_LEN];
    let mut buf = [0; ECHO_LEN];
    for _ in 0..ECHO_ROUND_TRIPS {
        stream.write_all(&message).await?;
        stream.read_exact(&mut buf).await?;
    }
    assert_eq!(buf, message, "echo mismatch");
    Ok(())
}
