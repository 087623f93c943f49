//! The message bus: publish, subscribe (with wildcards), queue groups, request/reply with a
//! timeout, headers, and typed payloads (JSON through serde), with one contract for every
//! implementation.
//!
//! [`Bus`] is what services use; a [`Transport`] is what carries the messages. The
//! implementation here is [`local`]: in-process, no server, the same semantics within one
//! process. The `ginkgo-nats` crate is the clustered one, on NATS; the user's code is the same.
//!
//! # The contract
//!
//! - **Subjects** are tokens separated by `.`. A subscription's subject may use `*` (one token)
//!   and `>` (one or more, last): `orders.*.paid`, `orders.>`. Published subjects have no
//!   wildcards. A bad subject is an [`BusError::InvalidSubject`] saying what is wrong.
//! - **Delivery** is at most once, in publish order per publisher and subscriber: every
//!   matching subscription gets the message, except that of each **queue group** (subscriptions
//!   with the same queue name) one member gets it.
//! - **Slow consumers:** a subscription buffers up to [`PENDING_LIMIT`] messages; beyond that
//!   new messages for it are dropped, counted ([`Subscription::dropped`]) and logged, and the
//!   publisher and the other subscribers are not held up.
//! - **Request/reply:** [`Bus::request`] publishes with a reply subject and waits for the
//!   first answer within the timeout: [`BusError::NoResponders`] at once if nobody subscribes
//!   to the subject, [`BusError::Timeout`] naming it if nobody answers in time. A responder
//!   that fails answers an error ([`Responder`] does), which the requester sees as
//!   [`BusError::Remote`].
//! - Dropping a [`Subscription`] unsubscribes.
//!
//! # Examples
//!
//! ```
//! # fn demo<R: ginkgo_api::Runtime>() {
//! use std::time::Duration;
//! use ginkgo_api::bus::Bus;
//!
//! ginkgo_api::block_on::<R, _>(async {
//!     let bus = Bus::<R>::isolated();
//!     let mut orders = bus.subscribe("orders.*").await.unwrap();
//!     bus.publish("orders.eu", "one book").await.unwrap();
//!     let message = orders.next().await.unwrap();
//!     assert_eq!((message.subject.as_str(), &message.payload[..]), ("orders.eu", &b"one book"[..]));
//!
//!     // Request/reply: the responder answers on the request's reply subject.
//!     let mut prices = bus.subscribe("price").await.unwrap();
//!     let responder = bus.clone();
//!     let answering = ginkgo_api::spawn::<R, _>(async move {
//!         let request = prices.next().await.unwrap();
//!         responder.respond(&request, "12 EUR").await.unwrap();
//!     });
//!     let reply = bus.request("price", "one book", Duration::from_secs(5)).await.unwrap();
//!     assert_eq!(&reply.payload[..], b"12 EUR");
//!     answering.await.unwrap();
//! });
//! # }
//! ```

pub mod local;
mod responder;
pub mod subject;

use std::fmt;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

pub use bytes::Bytes;
pub use responder::Responder;

use crate::Runtime;

/// How many messages a subscription buffers before new ones for it are dropped (as NATS's
/// default pending limit for a subscription).
pub const PENDING_LIMIT: usize = 65_536;

/// The header a [`Responder`] sets on an answer that is an error: its value is a status code
/// (`400` for a malformed request, `500` for a handler that failed).
pub const STATUS_HEADER: &str = "Ginkgo-Status";

/// A message on the bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The subject it was published to.
    pub subject: String,
    /// Where to answer, for a request.
    pub reply: Option<String>,
    /// Its headers.
    pub headers: Headers,
    /// Its payload.
    pub payload: Bytes,
}

impl Message {
    /// A message to `subject` with `payload`, no headers and no reply subject.
    pub fn new(subject: impl Into<String>, payload: impl Into<Bytes>) -> Self {
        Self {
            subject: subject.into(),
            reply: None,
            headers: Headers::default(),
            payload: payload.into(),
        }
    }

    /// With the header `name: value` added.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.insert(name, value);
        self
    }

    /// The payload read as JSON into `T`.
    ///
    /// # Errors
    ///
    /// [`BusError::Payload`] naming the subject and what is wrong with the payload.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, BusError> {
        serde_json::from_slice(&self.payload).map_err(|err| BusError::Payload {
            subject: self.subject.clone(),
            reason: err.to_string(),
        })
    }
}

/// Message headers: names with values; a name may repeat, and its values keep their order
/// (the order of different names is not kept by every transport: NATS keeps them in a map).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    /// Adds `name: value`.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.push((name.into(), value.into()));
    }

    /// The first value of `name` (names compare without regard to case).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every header.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What can go wrong on the bus.
#[derive(Debug)]
#[non_exhaustive]
pub enum BusError {
    /// A subject that cannot be used.
    InvalidSubject {
        /// The subject.
        subject: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A request to a subject nobody subscribes to.
    NoResponders {
        /// The subject.
        subject: String,
    },
    /// A request nobody answered in time.
    Timeout {
        /// The subject.
        subject: String,
        /// The timeout.
        after: Duration,
    },
    /// The responder answered with an error ([`STATUS_HEADER`]).
    Remote {
        /// The subject of the request.
        subject: String,
        /// The status code.
        status: u16,
        /// The error it sent.
        message: String,
    },
    /// A payload that is not the JSON expected.
    Payload {
        /// The subject it came on.
        subject: String,
        /// What serde said.
        reason: String,
    },
    /// A payload that could not be encoded as JSON.
    Encode(serde_json::Error),
    /// The bus is closed (its connection stopped).
    Closed,
    /// The transport failed (the connection to the server, say).
    Transport(Box<dyn std::error::Error + Send + Sync>),
}

impl fmt::Display for BusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BusError::InvalidSubject { subject, reason } => {
                write!(f, "invalid subject {subject:?}: {reason}")
            }
            BusError::NoResponders { subject } => {
                write!(f, "no responders: nobody subscribes to {subject:?}")
            }
            BusError::Timeout { subject, after } => {
                write!(f, "request to {subject:?}: no answer within {after:?}")
            }
            BusError::Remote {
                subject,
                status,
                message,
            } => write!(f, "request to {subject:?} failed ({status}): {message}"),
            BusError::Payload { subject, reason } => {
                write!(f, "malformed payload on {subject:?}: {reason}")
            }
            BusError::Encode(err) => write!(f, "cannot encode the payload as JSON: {err}"),
            BusError::Closed => f.write_str("the bus is closed"),
            BusError::Transport(err) => write!(f, "bus transport: {err}"),
        }
    }
}

impl std::error::Error for BusError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BusError::Encode(err) => Some(err),
            BusError::Transport(err) => Some(&**err),
            _ => None,
        }
    }
}

/// What carries the messages: the in-process [`local`] hub, or a connection to a server.
/// Implementations keep the [contract](self); [`Bus`] adds the timeouts and typed payloads.
#[async_trait::async_trait]
pub trait Transport: Send + Sync + 'static {
    /// Its name, for logs and `status`: `local`, `nats`, ...
    fn name(&self) -> &str;

    /// Publishes `message` (its subject checked by the caller).
    async fn publish(&self, message: Message) -> Result<(), BusError>;

    /// Publishes `payload` to `subject` (checked by the caller), without headers or a reply
    /// subject, if that needs no wait; `None`, having published nothing, if it would have to
    /// wait. [`Bus::publish`] tries this first and awaits [`publish`](Self::publish) only on
    /// `None`: a transport whose publish is almost always ready at once (a client that queues
    /// it in a buffer with room) spares each publish the boxed future an async trait method
    /// costs. The default always says it would wait.
    fn try_publish_payload(&self, subject: &str, payload: &Bytes) -> Option<Result<(), BusError>> {
        let _ = (subject, payload);
        None
    }

    /// Subscribes to `subject` (checked by the caller), in the queue group `queue` if given.
    async fn subscribe(&self, subject: &str, queue: Option<&str>)
    -> Result<Subscription, BusError>;

    /// Publishes `message` as a request and waits for the first answer, however long it takes
    /// (the caller applies the timeout by dropping the future); [`BusError::NoResponders`] if
    /// nobody subscribes to its subject.
    async fn request(&self, message: Message) -> Result<Message, BusError>;
}

/// The messages of one subscription, in order; dropping it unsubscribes. Also a
/// [`Stream`](futures_core::Stream).
pub struct Subscription {
    subject: String,
    /// Boxed: a receiver is not `Unpin`, and a subscription moves.
    messages: Pin<Box<async_channel::Receiver<Message>>>,
    dropped: Arc<AtomicU64>,
    /// Unsubscribes when dropped.
    _guard: Box<dyn Send + Sync>,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("subject", &self.subject)
            .field("pending", &self.messages.len())
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

impl Subscription {
    /// For a [`Transport`]: a subscription to `subject` reading `messages`, whose transport
    /// counts in `dropped` what it could not deliver, and that unsubscribes by dropping
    /// `guard`.
    pub fn new(
        subject: impl Into<String>,
        messages: async_channel::Receiver<Message>,
        dropped: Arc<AtomicU64>,
        guard: impl Send + Sync + 'static,
    ) -> Self {
        Self {
            subject: subject.into(),
            messages: Box::pin(messages),
            dropped,
            _guard: Box::new(guard),
        }
    }

    /// The next message; `None` once the bus is closed.
    pub async fn next(&mut self) -> Option<Message> {
        self.messages.recv().await.ok()
    }

    /// The subject subscribed to.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// Messages dropped because this subscription had [`PENDING_LIMIT`] waiting (a slow
    /// consumer).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl futures_core::Stream for Subscription {
    type Item = Message;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        self.messages.as_mut().poll_next(cx)
    }
}

/// 22 random letters and digits: an inbox's or an instance's unique part (as NATS's nuids).
pub(crate) fn random_token() -> String {
    std::iter::repeat_with(fastrand::alphanumeric)
        .take(22)
        .collect()
}

/// The bus as services use it, on runtime `R` (for the timeouts); cheap to clone.
pub struct Bus<R> {
    transport: Arc<dyn Transport>,
    _runtime: PhantomData<fn() -> R>,
}

impl<R> Clone for Bus<R> {
    fn clone(&self) -> Self {
        Self {
            transport: self.transport.clone(),
            _runtime: PhantomData,
        }
    }
}

impl<R> fmt::Debug for Bus<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bus")
            .field("transport", &self.transport.name())
            .finish()
    }
}

impl<R: Runtime> Bus<R> {
    /// The process's in-process bus: every `Bus::local()` of the process is the same one.
    pub fn local() -> Self {
        Self::with_transport(local::shared())
    }

    /// A new in-process bus of its own (for tests, or to keep parts of a process apart).
    pub fn isolated() -> Self {
        Self::with_transport(Arc::new(local::LocalBus::new()))
    }

    /// A bus over `transport`.
    pub fn with_transport(transport: Arc<dyn Transport>) -> Self {
        Self {
            transport,
            _runtime: PhantomData,
        }
    }

    /// The transport's name: `local`, `nats`, ...
    pub fn transport_name(&self) -> &str {
        self.transport.name()
    }

    /// Publishes `payload` to `subject`.
    ///
    /// # Errors
    ///
    /// A bad subject, or the transport's error.
    pub async fn publish(&self, subject: &str, payload: impl Into<Bytes>) -> Result<(), BusError> {
        subject::check_subject(subject)?;
        let payload = payload.into();
        if let Some(published) = self.transport.try_publish_payload(subject, &payload) {
            return published;
        }
        self.transport.publish(Message::new(subject, payload)).await
    }

    /// Publishes `value` as JSON to `subject`.
    ///
    /// # Errors
    ///
    /// A bad subject, a value serde cannot encode, or the transport's error.
    pub async fn publish_json<T: serde::Serialize + ?Sized>(
        &self,
        subject: &str,
        value: &T,
    ) -> Result<(), BusError> {
        let payload = serde_json::to_vec(value).map_err(BusError::Encode)?;
        self.publish(subject, payload).await
    }

    /// Publishes `message` (with its headers and reply subject).
    ///
    /// # Errors
    ///
    /// A bad subject, or the transport's error.
    pub async fn publish_message(&self, message: Message) -> Result<(), BusError> {
        subject::check_subject(&message.subject)?;
        if let Some(reply) = &message.reply {
            subject::check_subject(reply)?;
        }
        self.transport.publish(message).await
    }

    /// Subscribes to `subject` (wildcards allowed).
    ///
    /// # Errors
    ///
    /// A bad subject, or the transport's error.
    pub async fn subscribe(&self, subject: &str) -> Result<Subscription, BusError> {
        subject::check_pattern(subject)?;
        self.transport.subscribe(subject, None).await
    }

    /// Subscribes to `subject` in the queue group `queue`: each message goes to one member of
    /// the group.
    ///
    /// # Errors
    ///
    /// A bad subject or queue name, or the transport's error.
    pub async fn queue_subscribe(
        &self,
        subject: &str,
        queue: &str,
    ) -> Result<Subscription, BusError> {
        subject::check_pattern(subject)?;
        if queue.is_empty() || queue.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(BusError::InvalidSubject {
                subject: queue.to_owned(),
                reason: "a queue group name must be non-empty, without white space",
            });
        }
        self.transport.subscribe(subject, Some(queue)).await
    }

    /// Sends `payload` to `subject` as a request and waits up to `timeout` for the answer.
    ///
    /// # Errors
    ///
    /// [`BusError::NoResponders`], [`BusError::Timeout`], [`BusError::Remote`] when the
    /// responder answered an error, a bad subject, or the transport's error.
    pub async fn request(
        &self,
        subject: &str,
        payload: impl Into<Bytes>,
        timeout: Duration,
    ) -> Result<Message, BusError> {
        self.request_message(Message::new(subject, payload), timeout)
            .await
    }

    /// Like [`Bus::request`], with a message of one's own (headers).
    ///
    /// # Errors
    ///
    /// As [`Bus::request`].
    pub async fn request_message(
        &self,
        message: Message,
        timeout: Duration,
    ) -> Result<Message, BusError> {
        subject::check_subject(&message.subject)?;
        let subject = message.subject.clone();
        let answer = crate::time::timeout::<R, _>(timeout, self.transport.request(message))
            .await
            .map_err(|_| BusError::Timeout {
                subject: subject.clone(),
                after: timeout,
            })??;
        match answer.headers.get(STATUS_HEADER) {
            None => Ok(answer),
            Some(status) => Err(BusError::Remote {
                subject,
                status: status.parse().unwrap_or(500),
                message: String::from_utf8_lossy(&answer.payload).into_owned(),
            }),
        }
    }

    /// Sends `request` as JSON to `subject` and reads the answer as JSON.
    ///
    /// # Errors
    ///
    /// As [`Bus::request`], and [`BusError::Payload`] for an answer that is not a `U`.
    pub async fn request_json<T, U>(
        &self,
        subject: &str,
        request: &T,
        timeout: Duration,
    ) -> Result<U, BusError>
    where
        T: serde::Serialize + ?Sized,
        U: serde::de::DeserializeOwned,
    {
        let payload = serde_json::to_vec(request).map_err(BusError::Encode)?;
        self.request(subject, payload, timeout).await?.json()
    }

    /// A fresh subject to receive answers on: `_INBOX.` and 22 random characters.
    pub fn new_inbox(&self) -> String {
        format!("_INBOX.{}", random_token())
    }

    /// Publishes `message` as a request and gathers every answer that arrives within
    /// `window`, or until `max` answers came (scatter-gather: one request, many responders;
    /// what `nats micro ls` does to find services). No answer is an empty list, not an error.
    ///
    /// # Errors
    ///
    /// A bad subject, or the transport's error.
    pub async fn gather(
        &self,
        mut message: Message,
        window: Duration,
        max: Option<usize>,
    ) -> Result<Vec<Message>, BusError> {
        subject::check_subject(&message.subject)?;
        let inbox = self.new_inbox();
        let mut answers = self.transport.subscribe(&inbox, None).await?;
        message.reply = Some(inbox);
        self.transport.publish(message).await?;
        let deadline = crate::time::deadline_after(window);
        let mut gathered = Vec::new();
        while max.is_none_or(|max| gathered.len() < max) {
            match crate::time::timeout_at::<R, _>(deadline, answers.next()).await {
                Ok(Some(answer)) => gathered.push(answer),
                Ok(None) => return Err(BusError::Closed),
                Err(_) => break,
            }
        }
        Ok(gathered)
    }

    /// Answers `request` with `payload` on its reply subject; a message without one (not a
    /// request) is answered by nothing.
    ///
    /// # Errors
    ///
    /// The transport's error.
    pub async fn respond(
        &self,
        request: &Message,
        payload: impl Into<Bytes>,
    ) -> Result<(), BusError> {
        match &request.reply {
            Some(reply) => self.publish(reply, payload).await,
            None => Ok(()),
        }
    }
}
