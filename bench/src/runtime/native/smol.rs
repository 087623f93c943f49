//! smol: the same work written on smol's own API, `async_executor::Executor::spawn` and
//! `async_net` sockets on the async-io reactor.

use std::future::Future;
use std::hint::black_box;
use std::io;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use async_executor::Executor;
use async_net::{TcpListener, TcpStream};

use crate::messages;
use crate::runtime::{ECHO_CONNS, ECHO_LEN, ECHO_ROUND_TRIPS};

/// The executor the ginkgo smol backend runs on, used directly for spawning: both sides of
/// that comparison share one executor and its worker threads, so only the API differs.
pub(crate) use ginkgo_backend_smol::executor;

/// The executor of the native cases with sockets (tcp echo here, the echo baseline and the
/// HTTP reference server): set up as smol sets one up, with as many threads as the backend
/// has workers, each in `async_io::block_on`, so that they drive async-io's reactor, which
/// `async_net` sockets wait in. (The backend's workers wait in ginkgo's stream reactor
/// instead, and would leave async-io's reactor to one other thread.)
pub(crate) fn io_executor() -> &'static Executor<'static> {
    static EXECUTOR: OnceLock<&'static Executor<'static>> = OnceLock::new();
    EXECUTOR.get_or_init(|| {
        let executor: &'static Executor<'static> = Box::leak(Box::new(Executor::new()));
        for index in 0..ginkgo_backend_kit::worker_count() {
            std::thread::Builder::new()
                .name(format!("smol-{index}"))
                .spawn(|| async_io::block_on(executor.run(std::future::pending::<()>())))
                .expect("cannot start a thread of the native smol executor");
        }
        executor
    })
}

/// Runs `future` on the calling thread, with the executors' threads started.
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    executor();
    io_executor();
    async_io::block_on(future)
}

pub(crate) fn spawn_join(tasks: usize) -> Duration {
    block_on(async move {
        let start = Instant::now();
        let handles: Vec<_> = (0..tasks)
            .map(|i| executor().spawn(async move { i }))
            .collect();
        let mut sum = 0;
        for handle in handles {
            sum += handle.await;
        }
        black_box(sum);
        start.elapsed()
    })
}

pub(crate) fn echo() -> Duration {
    block_on(async {
        let start = Instant::now();
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = io_executor().spawn(async move {
            let mut handlers = Vec::with_capacity(ECHO_CONNS);
            for _ in 0..ECHO_CONNS {
                let (stream, _) = listener.accept().await?;
                handlers.push(io_executor().spawn(serve(stream)));
            }
            for handler in handlers {
                handler.await?;
            }
            io::Result::Ok(())
        });
        let clients: Vec<_> = (0..ECHO_CONNS)
            .map(|_| io_executor().spawn(client(addr)))
            .collect();
        for client in clients {
            client.await?;
        }
        server.await?;
        io::Result::Ok(start.elapsed())
    })
    .expect("echo benchmark failed")
}

async fn serve(stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    messages::echo::<ECHO_LEN>(stream).await
}

async fn client(addr: SocketAddr) -> io::Result<()> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    messages::exchange::<ECHO_LEN>(stream, ECHO_ROUND_TRIPS).await
}
