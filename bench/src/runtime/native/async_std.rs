//! async-std: `async_std::task::spawn` and `async_std::net` on its global executor.

use std::hint::black_box;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use async_std::net::{TcpListener, TcpStream};
use async_std::task;

use crate::messages;
use crate::runtime::{ECHO_CONNS, ECHO_LEN, ECHO_ROUND_TRIPS};

pub(crate) fn spawn_join(tasks: usize) -> Duration {
    task::block_on(async move {
        let start = Instant::now();
        let handles: Vec<_> = (0..tasks).map(|i| task::spawn(async move { i })).collect();
        let mut sum = 0;
        for handle in handles {
            sum += handle.await;
        }
        black_box(sum);
        start.elapsed()
    })
}

pub(crate) fn echo() -> Duration {
    task::block_on(async {
        let start = Instant::now();
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = task::spawn(async move {
            let mut handlers = Vec::with_capacity(ECHO_CONNS);
            for _ in 0..ECHO_CONNS {
                let (stream, _) = listener.accept().await?;
                handlers.push(task::spawn(serve(stream)));
            }
            for handler in handlers {
                handler.await?;
            }
            io::Result::Ok(())
        });
        let clients: Vec<_> = (0..ECHO_CONNS).map(|_| task::spawn(client(addr))).collect();
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
