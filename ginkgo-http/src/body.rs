//! [`Body`]: the request body a served service reads, with the server's size limit.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use http_body_util::Limited;
use hyper::body::Incoming;

use crate::BoxError;

/// The body of a request served by [`HttpServer`](crate::HttpServer): hyper's
/// [`Incoming`] with the server's [`max_body_size`](crate::HttpServer::max_body_size).
///
/// A request whose `Content-Length` is over the limit never reaches the service (the server
/// answers `413 Payload Too Large` itself), so the limit is met only by bodies of unknown
/// length (chunked, or HTTP/2 without `content-length`): the frame that carries the body
/// past it fails with an error that is an [`http_body_util::LengthLimitError`]. axum's
/// extractors (`Bytes`, `String`, `Json`, ...) answer that with `413 Payload Too Large`, as
/// they do for their own limit; a service of its own tells it with `err.is::<LengthLimitError>()`
/// (or finds it in the [`source`](std::error::Error::source) chain of an error that wraps
/// it). Errors of the connection come as hyper's [`hyper::Error`], boxed.
///
/// A `Body` costs what `Incoming` costs, and one comparison per data frame: a body without
/// data (as that of a `GET`) is never read from the connection.
///
/// # Examples
///
/// A tower service that reads the whole body, and tells a body that is too large:
///
/// ```
/// use http_body_util::{BodyExt, LengthLimitError};
/// use ginkgo_http::Body;
/// use ginkgo_http::http::{Request, Response, StatusCode};
///
/// async fn upload(request: Request<Body>) -> Response<String> {
///     match request.into_body().collect().await {
///         Ok(body) => Response::new(format!("got {} bytes", body.to_bytes().len())),
///         Err(err) if err.is::<LengthLimitError>() => Response::builder()
///             .status(StatusCode::PAYLOAD_TOO_LARGE)
///             .body(String::new())
///             .unwrap(),
///         Err(err) => Response::builder()
///             .status(StatusCode::BAD_REQUEST)
///             .body(format!("cannot read the body: {err}"))
///             .unwrap(),
///     }
/// }
/// # drop(upload);
/// ```
pub struct Body {
    inner: Limited<Incoming>,
}

impl Body {
    /// `incoming`, of which at most `limit` bytes may be read.
    #[inline]
    pub(crate) fn new(incoming: Incoming, limit: usize) -> Self {
        Self {
            inner: Limited::new(incoming, limit),
        }
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = BoxError;

    #[inline]
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    #[inline]
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    #[inline]
    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Body").finish_non_exhaustive()
    }
}
