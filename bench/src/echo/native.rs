//! The baselines: an echo server written directly against each runtime's own API, in the
//! configuration the runtime suite uses. Each accepts the load generator's `CONNS` connections,
//! serves each in a task (a thread on `threads`) of its own, and joins them after the load.

use std::io::{self, Read, Write};
use std::thread;
use std::time::Duration;

use super::{CONNS, LEN, load};
use crate::messages;
use crate::runtime::native::{smol as native_smol, tokio as native_tokio};

/// tokio: `tokio::net` and `tokio::spawn` on a fresh multi-thread runtime.
pub(super) fn tokio() -> Duration {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    native_tokio::runtime()
        .block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            let server = tokio::spawn(async move {
                let mut handlers = Vec::with_capacity(CONNS);
                for _ in 0..CONNS {
                    let (mut stream, _) = listener.accept().await?;
                    handlers.push(tokio::spawn(async move {
                        stream.set_nodelay(true)?;
                        let mut buf = [0; LEN];
                        loop {
                            match stream.read_exact(&mut buf).await {
                                Ok(_) => stream.write_all(&buf).await?,
                                Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => {
                                    return io::Result::Ok(());
                                }
                                Err(err) => return Err(err),
                            }
                        }
                    }));
                }
                for handler in handlers {
                    handler.await??;
                }
                io::Result::Ok(())
            });
            let took = load(addr).await;
            server.await??;
            io::Result::Ok(took)
        })
        .expect("the native tokio echo server failed")
}

/// async-std: `async_std::net` and `async_std::task::spawn` on its global executor.
pub(super) fn async_std() -> Duration {
    use async_std::task;
    task::block_on(async {
        let listener = async_std::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = task::spawn(async move {
            let mut handlers = Vec::with_capacity(CONNS);
            for _ in 0..CONNS {
                let (stream, _) = listener.accept().await?;
                handlers.push(task::spawn(async move {
                    stream.set_nodelay(true)?;
                    messages::echo::<LEN>(stream).await
                }));
            }
            for handler in handlers {
                handler.await?;
            }
            io::Result::Ok(())
        });
        let took = load(addr).await;
        server.await?;
        io::Result::Ok(took)
    })
    .expect("the native async-std echo server failed")
}

/// smol: `async_net` on the runtime suite's native `async_executor` setup.
pub(super) fn smol() -> Duration {
    let executor = native_smol::io_executor();
    native_smol::block_on(async {
        let listener = async_net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = executor.spawn(async move {
            let mut handlers = Vec::with_capacity(CONNS);
            for _ in 0..CONNS {
                let (stream, _) = listener.accept().await?;
                handlers.push(executor.spawn(async move {
                    stream.set_nodelay(true)?;
                    messages::echo::<LEN>(stream).await
                }));
            }
            for handler in handlers {
                handler.await?;
            }
            io::Result::Ok(())
        });
        let took = load(addr).await;
        server.await?;
        io::Result::Ok(took)
    })
    .expect("the native smol echo server failed")
}

/// threads: blocking `std::net`, one `std::thread` per connection.
pub(super) fn threads() -> Duration {
    let run = || -> io::Result<Duration> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let server = thread::spawn(move || {
            let mut handlers = Vec::with_capacity(CONNS);
            for _ in 0..CONNS {
                let (mut stream, _) = listener.accept()?;
                handlers.push(thread::spawn(move || {
                    stream.set_nodelay(true)?;
                    let mut buf = [0; LEN];
                    loop {
                        match stream.read_exact(&mut buf) {
                            Ok(()) => stream.write_all(&buf)?,
                            Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => {
                                return io::Result::Ok(());
                            }
                            Err(err) => return Err(err),
                        }
                    }
                }));
            }
            for handler in handlers {
                handler.join().expect("a server thread panicked")?;
            }
            io::Result::Ok(())
        });
        let took = futures_lite::future::block_on(load(addr));
        server.join().expect("the accept thread panicked")?;
        Ok(took)
    };
    run().expect("the native threads echo server failed")
}
