//! A TCP echo server on the ginkgo runtime API. It runs unchanged on every backend:
//!
//! ```text
//! cargo run --example echo                                  # tokio, 127.0.0.1:7007
//! cargo run --example echo -- 127.0.0.1:9000                # another address
//! cargo run --example echo --no-default-features --features smol
//! ```
//!
//! Try it with `nc 127.0.0.1 7007`. Ctrl-C (SIGINT) or SIGTERM stops it gracefully: it stops
//! accepting, gives open connections a second to finish, then aborts them.

use std::time::Duration;

use ginkgo::future;
use ginkgo::io::{AsyncReadExt, AsyncWriteExt};
use ginkgo::net::{SocketAddr, TcpListener, TcpStream};
use ginkgo::signal::{Signal, Signals};

/// What the accept loop woke up for.
enum Event {
    Accepted(std::io::Result<(TcpStream, SocketAddr)>),
    Stop(Option<Signal>),
}

/// Echoes everything the peer sends until it closes the connection.
async fn echo(mut stream: TcpStream, peer: SocketAddr) -> std::io::Result<u64> {
    let mut buf = vec![0u8; 16 * 1024];
    let mut total = 0;
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            println!("{peer} closed after {total} bytes");
            return Ok(total);
        }
        stream.write_all(&buf[..n]).await?;
        total += n as u64;
    }
}

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7007".to_owned());
    ginkgo::run(async move {
        let mut signals = Signals::new(&[Signal::Int, Signal::Term])?;
        let listener = TcpListener::bind(addr.as_str()).await?;
        println!(
            "echo server listening on {} (backend: {}); Ctrl-C stops it",
            listener.local_addr()?,
            ginkgo::BACKEND
        );

        let mut connections = Vec::new();
        let stop_signal = loop {
            // Wait for whichever comes first: a connection or a stop signal.
            let next = future::or(async { Event::Accepted(listener.accept().await) }, async {
                Event::Stop(signals.recv().await)
            })
            .await;
            match next {
                Event::Accepted(Ok((stream, peer))) => {
                    println!("{peer} connected");
                    connections.retain(|c: &ginkgo::JoinHandle<_>| !c.is_finished());
                    connections.push(ginkgo::spawn(echo(stream, peer)));
                }
                // Out of file descriptors, for example: keep serving the open connections.
                Event::Accepted(Err(err)) => eprintln!("accept failed: {err}"),
                Event::Stop(signal) => break signal,
            }
        };

        let why = stop_signal.map_or("signal stream ended".to_owned(), |s| s.to_string());
        println!(
            "{why}: no longer accepting; waiting up to 1 s for {} connection(s)",
            connections.len()
        );
        drop(listener);
        let drain = async {
            for connection in &mut connections {
                let _ = connection.await;
            }
        };
        if ginkgo::time::timeout(Duration::from_secs(1), drain)
            .await
            .is_err()
        {
            for connection in &connections {
                connection.abort();
            }
            println!("aborted the connections still open");
        }
        println!("stopped");
        Ok(())
    })
}
