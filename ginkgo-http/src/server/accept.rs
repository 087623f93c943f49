//! The accept loop: one owned task per server, one owned task per connection.

use std::sync::Arc;
use std::time::Duration;

use ginkgo_api::Runtime;
use ginkgo_api::net::{SocketAddr, TcpListener, TcpStream};
use ginkgo_api::service::Context;

use super::conn::{self, Shared};
use super::{HttpHandle, HttpService};

/// The pause after a failed accept (out of file descriptors, say), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The listening socket, published in the [`HttpHandle`] while it is open.
pub(crate) struct Listening<R: Runtime> {
    listener: Option<TcpListener<R>>,
    handle: HttpHandle,
}

impl<R: Runtime> Listening<R> {
    pub(crate) fn new(listener: TcpListener<R>, addr: SocketAddr, handle: HttpHandle) -> Self {
        handle.set(Some(addr));
        Self {
            listener: Some(listener),
            handle,
        }
    }

    async fn accept(&self) -> std::io::Result<(TcpStream<R>, SocketAddr)> {
        match &self.listener {
            Some(listener) => listener.accept().await,
            None => std::future::pending().await,
        }
    }
}

impl<R: Runtime> Drop for Listening<R> {
    fn drop(&mut self) {
        // Close the socket before saying so: whoever waits on the handle may connect at once
        // and must be refused.
        drop(self.listener.take());
        self.handle.set(None);
    }
}

/// Accepts connections until the service stops, then closes the listener; each connection is
/// served by a task the service owns, so it is told to stop and reaped with the service.
pub(crate) async fn accept_loop<R, S>(
    listening: Listening<R>,
    ctx: Context,
    service: S,
    shared: Arc<Shared>,
) where
    R: Runtime,
    S: HttpService,
{
    let shutdown = ctx.shutdown();
    while let Some(accepted) = shutdown.run(listening.accept()).await {
        match accepted {
            Ok((stream, peer)) => {
                shared.accepted.inc();
                // Responses go out as soon as they are written, not after a delayed ACK.
                let _ = stream.set_nodelay(true);
                ctx.spawn(
                    format!("connection from {peer}"),
                    conn::serve(
                        stream,
                        peer,
                        service.clone(),
                        shared.clone(),
                        shutdown.clone(),
                    ),
                );
            }
            Err(err) => {
                tracing::warn!(service = %ctx.path(), error = %err, "accept failed; retrying in {ACCEPT_BACKOFF:?}");
                if shutdown.run(ctx.sleep(ACCEPT_BACKOFF)).await.is_none() {
                    break;
                }
            }
        }
    }
    drop(listening);
    tracing::debug!(service = %ctx.path(), "stopped accepting connections");
}
