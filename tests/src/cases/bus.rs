//! The bus contract on the in-process implementation (`Bus::isolated`): the bodies are in
//! `support::bus`, shared with the NATS tests; the slow-consumer case is the in-process bus's
//! own (with NATS the client and the server buffer too, so the count is theirs as well).

use std::time::Duration;

use ginkgo_api::bus::{Bus, PENDING_LIMIT};
use ginkgo_api::{Runtime, spawn};

use crate::support::bus as body;

/// Every subscription whose subject matches gets every message, in order; `*` matches one
/// token, `>` one or more; others get nothing.
pub async fn bus_publish_reaches_every_matching_subscriber<R: Runtime>() {
    body::publish_reaches_every_matching_subscriber::<R>(Bus::<R>::isolated()).await;
}

/// A queue group gets each message once, its members in turn; a plain subscription beside it
/// gets them all.
pub async fn bus_queue_group_delivers_each_message_once<R: Runtime>() {
    body::queue_group_delivers_each_message_once::<R>(Bus::<R>::isolated()).await;
}

/// A request is answered on its reply subject; nobody subscribed is `NoResponders` at once;
/// a subscriber that never answers is a `Timeout` naming the subject.
pub async fn bus_request_reply_and_its_errors<R: Runtime>() {
    body::request_reply_and_its_errors::<R>(Bus::<R>::isolated()).await;
}

/// Headers and the reply subject travel with a message; typed payloads round-trip as JSON,
/// and one that is not the type expected is an error naming the subject.
pub async fn bus_headers_and_json_travel<R: Runtime>() {
    body::headers_and_json_travel::<R>(Bus::<R>::isolated()).await;
}

/// Bad subjects are errors that say what is wrong, on every call that takes one.
pub async fn bus_invalid_subjects_are_errors<R: Runtime>() {
    body::invalid_subjects_are_errors::<R>(Bus::<R>::isolated()).await;
}

/// Dropping a subscription unsubscribes: a request to its subject then has no responders.
pub async fn bus_dropped_subscription_unsubscribes<R: Runtime>() {
    body::dropped_subscription_unsubscribes::<R>(Bus::<R>::isolated()).await;
}

/// A `Responder` answers typed requests; a malformed payload is answered `400`, a handler's
/// error and a handler's panic `500`, each counted, and the service stays ready throughout.
pub async fn bus_responder_contains_bad_input<R: Runtime>() {
    body::responder_contains_bad_input::<R>(Bus::<R>::isolated()).await;
}

/// A `Responder` counts each request before it answers: the counters are up to date the
/// moment an answer arrives, whatever the outcome (a transport over the bus holds the
/// responder's `publish` open past the delivery meanwhile, as a network does).
pub async fn bus_responder_counts_before_replying<R: Runtime>() {
    body::responder_counts_before_replying::<R>(Bus::<R>::isolated()).await;
}

/// Responders in one queue group share the requests, in turn.
pub async fn bus_queue_responders_share_requests<R: Runtime>() {
    body::queue_responders_share_requests::<R>(Bus::<R>::isolated()).await;
}

/// A subscription that does not read buffers `PENDING_LIMIT` messages and drops (and counts)
/// the rest; the publisher is never held up and a subscriber that reads gets every message.
pub async fn bus_slow_consumer_is_counted_not_waited_for<R: Runtime>() {
    let bus = Bus::<R>::isolated();
    let slow = bus.subscribe("ticks").await.unwrap();
    let mut reader = bus.subscribe("ticks").await.unwrap();
    let total = PENDING_LIMIT + 10;
    let publisher = bus.clone();
    let reading = spawn::<R, _>(async move {
        let mut count = 0;
        while count < total {
            body::next::<R>(&mut reader).await;
            count += 1;
        }
        count
    });
    ginkgo_api::time::timeout::<R, _>(Duration::from_secs(10), async move {
        for n in 0..total {
            publisher.publish("ticks", "t").await.unwrap();
            // Publishing to the in-process bus never waits: yield now and then, so that on a
            // backend whose tasks share the threads the reader gets its turn.
            if n % 1_000 == 0 {
                futures_lite::future::yield_now().await;
            }
        }
    })
    .await
    .expect("publishing does not wait for the slow subscriber");
    assert_eq!(reading.await.unwrap(), total);
    assert_eq!(slow.dropped(), 10);
}
