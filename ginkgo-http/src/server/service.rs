//! The hyper service each connection runs: the served tower service with the request counter,
//! the exchange tracking the socket's timeouts need, and the body size limit.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker, ready};

use ginkgo_api::service::Counter;
use http::{HeaderValue, Request, Response, StatusCode, Version, header};
use http_body::Body as _;
use hyper::body::Incoming;
use pin_project_lite::pin_project;

use super::HttpService;
use super::conn::{ExchangeEnd, Exchanges};
use crate::{Body, BoxError};

/// A hyper service that calls the tower service `S`: it counts the requests it is given,
/// tracks each exchange until its response's body has been sent, answers a request whose
/// `Content-Length` is over the body limit itself, and hands `S` every other request with its
/// body limited.
///
/// It calls `S` as hyper-util's `TowerToHyperService` does, on a clone per request, but asks
/// the clone whether it is ready at once rather than in the response future: most services
/// are always ready (axum's `Router` is), and then the future is the service's own, with no
/// state to keep the request in until it is first polled.
pub(super) struct Tracked<S> {
    inner: S,
    requests: Counter,
    exchanges: Arc<Exchanges>,
    max_body_size: usize,
}

impl<S> Tracked<S> {
    pub(super) fn new(
        inner: S,
        requests: Counter,
        exchanges: Arc<Exchanges>,
        max_body_size: usize,
    ) -> Self {
        Self {
            inner,
            requests,
            exchanges,
            max_body_size,
        }
    }
}

impl<S: HttpService> hyper::service::Service<Request<Incoming>> for Tracked<S> {
    type Response = Response<TrackedBody<S::ResBody>>;
    type Error = BoxError;
    type Future = TrackedFuture<S>;

    #[inline]
    fn call(&self, request: Request<Incoming>) -> Self::Future {
        self.requests.inc();
        let end = Some(self.exchanges.begin());
        // The lower bound is the `Content-Length` when there is one, else 0.
        if request.body().size_hint().lower() > self.max_body_size as u64 {
            return TrackedFuture {
                call: Call::TooLarge {
                    version: request.version(),
                },
                end,
            };
        }
        let limit = self.max_body_size;
        let request = request.map(|incoming| Body::new(incoming, limit));
        let mut service = self.inner.clone();
        // Not ready yet, or failed: the response future asks again with the task's waker (the
        // same clone, as tower requires, so what it reserved while saying `Pending` is kept).
        let call = match service.poll_ready(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(Ok(())) => Call::Service {
                future: service.call(request),
            },
            _ => Call::NotReady {
                service,
                request: Some(request),
            },
        };
        TrackedFuture { call, end }
    }
}

pin_project! {
    /// The response future of a [`Tracked`] service.
    pub(super) struct TrackedFuture<S: HttpService> {
        #[pin]
        call: Call<S>,
        end: Option<ExchangeEnd>,
    }
}

pin_project! {
    /// Where a [`TrackedFuture`]'s response comes from.
    #[project = CallProj]
    enum Call<S: HttpService> {
        /// The service's response future.
        Service { #[pin] future: S::ServiceFuture },
        /// The service was not ready when the request came: it is asked again when polled.
        NotReady { service: S, request: Option<Request<Body>> },
        /// None: the request's body is over the limit.
        TooLarge { version: Version },
    }
}

impl<S: HttpService> Future for TrackedFuture<S> {
    type Output = Result<Response<TrackedBody<S::ResBody>>, BoxError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let mut response = loop {
            match this.call.as_mut().project() {
                CallProj::Service { future } => match ready!(future.poll(cx)) {
                    // One move of the response: its exchange's end is put in below.
                    Ok(response) => {
                        break response
                            .map(|body| TrackedBody::new(ResponseBody::Service { body }));
                    }
                    Err(err) => return Poll::Ready(Err(err.into())),
                },
                CallProj::NotReady { service, request } => {
                    if let Err(err) = ready!(service.poll_ready(cx)) {
                        return Poll::Ready(Err(err.into()));
                    }
                    let request = request
                        .take()
                        .expect("the request was taken by a call that panicked");
                    let future = service.call(request);
                    this.call.set(Call::Service { future });
                }
                CallProj::TooLarge { version } => break payload_too_large(*version),
            }
        };
        let end = this.end.take();
        if let Some(end) = &end {
            match response.status() {
                StatusCode::SWITCHING_PROTOCOLS => end.upgraded(),
                StatusCode::PAYLOAD_TOO_LARGE => end.refused_body(),
                _ => {}
            }
            if end.closing() {
                close_after(&mut response);
            }
        }
        response.body_mut()._end = end;
        Poll::Ready(Ok(response))
    }
}

/// The server's answer to a request whose `Content-Length` is over the body limit. An HTTP/1
/// connection is closed after it: the body is not read, so the next request could not be.
#[cold]
fn payload_too_large<B>(version: Version) -> Response<TrackedBody<B>> {
    let mut response = Response::new(TrackedBody::new(ResponseBody::Empty));
    *response.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
    if version < Version::HTTP_2 {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Marks a response as the connection's last (draining for an upgrade): hyper closes the
/// HTTP/1 connection once it is sent.
#[cold]
fn close_after<B>(response: &mut Response<B>) {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
}

pin_project! {
    /// A response body that ends its exchange when hyper is done with it.
    pub(super) struct TrackedBody<B> {
        #[pin]
        inner: ResponseBody<B>,
        _end: Option<ExchangeEnd>,
    }
}

pin_project! {
    /// The service's response body, or none for the server's own answer.
    #[project = ResponseBodyProj]
    enum ResponseBody<B> {
        Service { #[pin] body: B },
        Empty,
    }
}

impl<B> TrackedBody<B> {
    /// A body whose exchange's end is put in once the response is known to be sent on.
    fn new(inner: ResponseBody<B>) -> Self {
        Self { inner, _end: None }
    }
}

impl<B: http_body::Body> http_body::Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    #[inline]
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        match self.project().inner.project() {
            ResponseBodyProj::Service { body } => body.poll_frame(cx),
            ResponseBodyProj::Empty => Poll::Ready(None),
        }
    }

    #[inline]
    fn is_end_stream(&self) -> bool {
        match &self.inner {
            ResponseBody::Service { body } => body.is_end_stream(),
            ResponseBody::Empty => true,
        }
    }

    #[inline]
    fn size_hint(&self) -> http_body::SizeHint {
        match &self.inner {
            ResponseBody::Service { body } => body.size_hint(),
            ResponseBody::Empty => http_body::SizeHint::with_exact(0),
        }
    }
}
