//! A service answering requests on a subject with a typed handler.

use std::future::Future;
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_lite::FutureExt as _;

use super::{Bus, BusError, Message, STATUS_HEADER};
use crate::Runtime;
use crate::service::{Context, Error, Service, async_trait};

/// A service that answers the requests on a subject: each payload is read as JSON into `Req`,
/// handed to the handler, and its `Ok` answered as JSON.
///
/// Bad input loses nothing and stops nothing: a payload that is not a `Req` is counted
/// (`malformed`) and answered with an error ([`STATUS_HEADER`] `400`, naming what serde
/// said); a handler that returns `Err` is counted (`errors`) and answered `500` with its
/// message; a handler that panics is counted (`panicked`) and answered `500`, and the service
/// goes on. `requests` counts them all. Each request is counted before it is answered, so a
/// caller reading the counters once it has its answer finds it counted. Requests are handled
/// one at a time, in order; for more at once, run several responders in one queue group
/// ([`Responder::queue`]).
///
/// # Examples
///
/// ```
/// # fn demo<R: ginkgo_api::Runtime>() {
/// use std::time::Duration;
/// use ginkgo_api::bus::{Bus, Responder};
///
/// ginkgo_api::block_on::<R, _>(async {
///     let bus = Bus::<R>::isolated();
///     let doubler = Responder::new("doubler", bus.clone(), "math.double", |x: u64| async move {
///         x.checked_mul(2).ok_or_else(|| "too large".to_owned())
///     });
///     let tree = ginkgo_api::service::tree::<R>(doubler);
///     tree.start().await.unwrap();
///     let four: u64 = bus.request_json("math.double", &2u64, Duration::from_secs(5)).await.unwrap();
///     assert_eq!(four, 4);
///     tree.stop().await;
/// });
/// # }
/// ```
pub struct Responder<R, Req, Resp, F> {
    name: String,
    bus: Bus<R>,
    subject: String,
    queue: Option<String>,
    handler: Arc<F>,
    _types: PhantomData<fn(Req) -> Resp>,
}

impl<R, Req, Resp, F, Fut> Responder<R, Req, Resp, F>
where
    R: Runtime,
    Req: serde::de::DeserializeOwned + Send + 'static,
    Resp: serde::Serialize + Send + 'static,
    F: Fn(Req) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Resp, String>> + Send + 'static,
{
    /// A responder named `name` answering on `subject` through `bus` with `handler`.
    pub fn new(
        name: impl Into<String>,
        bus: Bus<R>,
        subject: impl Into<String>,
        handler: F,
    ) -> Self {
        Self {
            name: name.into(),
            bus,
            subject: subject.into(),
            queue: None,
            handler: Arc::new(handler),
            _types: PhantomData,
        }
    }

    /// Joins the queue group `queue`: each request goes to one responder of the group.
    #[must_use]
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }
}

/// The answer to one request: the payload, and the status for an error.
async fn answer<Req, Resp, F, Fut>(
    handler: &F,
    request: &Message,
) -> (Vec<u8>, Option<u16>, &'static str)
where
    Req: serde::de::DeserializeOwned,
    Resp: serde::Serialize,
    F: Fn(Req) -> Fut,
    Fut: Future<Output = Result<Resp, String>>,
{
    let input: Req = match request.json() {
        Ok(input) => input,
        Err(err) => return (err.to_string().into_bytes(), Some(400), "malformed"),
    };
    match AssertUnwindSafe(handler(input)).catch_unwind().await {
        Ok(Ok(output)) => match serde_json::to_vec(&output) {
            Ok(payload) => (payload, None, ""),
            Err(err) => (
                BusError::Encode(err).to_string().into_bytes(),
                Some(500),
                "errors",
            ),
        },
        Ok(Err(message)) => (message.into_bytes(), Some(500), "errors"),
        Err(panic) => {
            let why = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".to_owned());
            (
                format!("the handler panicked: {why}").into_bytes(),
                Some(500),
                "panicked",
            )
        }
    }
}

#[async_trait]
impl<R, Req, Resp, F, Fut> Service for Responder<R, Req, Resp, F>
where
    R: Runtime,
    Req: serde::de::DeserializeOwned + Send + 'static,
    Resp: serde::Serialize + Send + 'static,
    F: Fn(Req) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Resp, String>> + Send + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }

    async fn start(&mut self, ctx: &Context) -> Result<(), Error> {
        let mut requests = match &self.queue {
            Some(queue) => self.bus.queue_subscribe(&self.subject, queue).await?,
            None => self.bus.subscribe(&self.subject).await?,
        };
        let (bus, handler, shutdown) = (self.bus.clone(), self.handler.clone(), ctx.shutdown());
        let (total, counted) = (ctx.counter("requests"), ctx.clone());
        ctx.spawn("requests", async move {
            while let Some(Some(request)) = shutdown.run(requests.next()).await {
                total.inc();
                let (payload, status, count) = answer(&*handler, &request).await;
                // Counted before the answer goes out: a caller that reads the counters once it
                // has its answer must find it counted.
                if status.is_some() {
                    counted.counter(count).inc();
                }
                if let Some(reply) = request.reply.clone() {
                    let mut message = Message::new(reply, payload);
                    if let Some(status) = status {
                        message = message.header(STATUS_HEADER, status.to_string());
                    }
                    if let Err(err) = bus.publish_message(message).await {
                        tracing::warn!(subject = %request.subject, %err, "cannot answer a request");
                    }
                }
            }
        });
        Ok(())
    }
}
