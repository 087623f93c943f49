use std::fmt;
use std::future::Future;
use std::marker::PhantomData;

use ginkgo_api::Runtime;

/// hyper's [`Executor`](hyper::rt::Executor) on the runtime `R`: every future hyper hands it
/// (an HTTP/2 stream, a client connection) becomes a detached task of `R`.
///
/// # Examples
///
/// ```
/// # fn demo<R: ginkgo_api::Runtime>() {
/// use ginkgo_http::rt::{Executor, Timer};
/// use hyper::server::conn::http2;
///
/// let mut builder = http2::Builder::new(Executor::<R>::new());
/// builder.timer(Timer::<R>::new());
/// # }
/// ```
pub struct Executor<R>(PhantomData<fn() -> R>);

impl<R: Runtime> Executor<R> {
    /// The executor of runtime `R`.
    pub const fn new() -> Self {
        Self(PhantomData)
    }
}

impl<R, F> hyper::rt::Executor<F> for Executor<R>
where
    R: Runtime,
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    #[inline]
    fn execute(&self, future: F) {
        // Detached: hyper tracks its streams itself (an HTTP/2 connection waits for them on a
        // graceful shutdown), so the handle is not needed.
        drop(ginkgo_api::spawn::<R, F>(future));
    }
}

impl<R: Runtime> Default for Executor<R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<R> Clone for Executor<R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<R> Copy for Executor<R> {}

impl<R: Runtime> fmt::Debug for Executor<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Executor").field(&R::NAME).finish()
    }
}
