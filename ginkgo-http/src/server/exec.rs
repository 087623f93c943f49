//! The executor the server gives hyper: HTTP/2 streams become tasks the service owns.

use std::future::Future;

use ginkgo_api::service::Context;

/// Spawns what hyper hands it (HTTP/2 request streams) with [`Context::spawn`], so a request
/// handler on HTTP/2 is owned by the service exactly like one on HTTP/1.1 (which runs inside
/// its connection's task): told to stop with it, and aborted after its stop timeout, never
/// left running behind it.
#[derive(Clone)]
pub(crate) struct OwnedExecutor(pub(crate) Context);

impl<F> hyper::rt::Executor<F> for OwnedExecutor
where
    F: Future<Output = ()> + Send + 'static,
{
    fn execute(&self, future: F) {
        self.0.spawn("http2 stream", future);
    }
}
