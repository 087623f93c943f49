use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use event_listener::Event;

/// A cloneable view of where an [`HttpServer`](super::HttpServer) listens, taken before the
/// server is moved into a tree: the address is known only once the server has started (it may
/// have bound port 0).
///
/// # Examples
///
/// ```
/// # fn demo<R: ginkgo_api::Runtime>() {
/// use ginkgo_http::HttpServer;
/// use ginkgo_http::axum::Router;
///
/// ginkgo_api::block_on::<R, _>(async {
///     let server = HttpServer::<R, _>::new("127.0.0.1:0", Router::new());
///     let listening = server.handle();
///     let tree = ginkgo_api::service::tree::<R>(server);
///     tree.start().await.unwrap();
///     let addr = listening.local_addr().expect("listening once started");
///     assert_ne!(addr.port(), 0);
///     tree.stop().await;
///     assert_eq!(listening.local_addr(), None);
/// });
/// # }
/// ```
#[derive(Clone, Default)]
pub struct HttpHandle(Arc<Shared>);

#[derive(Default)]
struct Shared {
    addr: Mutex<Option<SocketAddr>>,
    changed: Event,
}

impl HttpHandle {
    /// A handle to give to [`HttpServer::with_handle`](super::HttpServer::with_handle).
    pub fn new() -> Self {
        Self::default()
    }

    /// The address the server listens on; `None` before it starts and once it has stopped
    /// accepting.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        *self.0.addr.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until the server listens and returns its address.
    pub async fn listening(&self) -> SocketAddr {
        loop {
            if let Some(addr) = self.local_addr() {
                return addr;
            }
            let listener = self.0.changed.listen();
            if let Some(addr) = self.local_addr() {
                return addr;
            }
            listener.await;
        }
    }

    /// Waits until the server does not listen: at once before it starts, otherwise until its
    /// listening socket is closed (new connections are refused from then on).
    pub async fn closed(&self) {
        loop {
            if self.local_addr().is_none() {
                return;
            }
            let listener = self.0.changed.listen();
            if self.local_addr().is_none() {
                return;
            }
            listener.await;
        }
    }

    pub(crate) fn set(&self, addr: Option<SocketAddr>) {
        *self.0.addr.lock().unwrap_or_else(PoisonError::into_inner) = addr;
        self.0.changed.notify(usize::MAX);
    }
}

impl fmt::Debug for HttpHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpHandle")
            .field("local_addr", &self.local_addr())
            .finish()
    }
}
