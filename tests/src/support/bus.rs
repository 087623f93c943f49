//! The bus contract (`ginkgo_api::bus`), written once over any bus: the conformance cases run
//! it on the in-process bus (`cases::bus`), the NATS tests on a real `nats-server`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ginkgo_api::bus::{Bus, BusError, Message, Responder, Subscription, Transport};
use ginkgo_api::service::{ServiceHandle, State, async_trait};
use ginkgo_api::sync::channel;
use ginkgo_api::{Runtime, spawn};

/// Long enough never to fire on a healthy machine.
const PATIENCE: Duration = Duration::from_secs(10);

/// Waits for the next message, failing after `PATIENCE`.
pub async fn next<R: Runtime>(subscription: &mut ginkgo_api::bus::Subscription) -> Message {
    ginkgo_api::time::timeout::<R, _>(PATIENCE, subscription.next())
        .await
        .expect("a message in time")
        .expect("the bus is open")
}

/// Whether nothing more arrives within a short while.
async fn quiet<R: Runtime>(subscription: &mut ginkgo_api::bus::Subscription) -> bool {
    ginkgo_api::time::timeout::<R, _>(Duration::from_millis(50), subscription.next())
        .await
        .is_err()
}

/// Every subscription whose subject matches gets every message, in order; `*` matches one
/// token, `>` one or more; others get nothing.
pub async fn publish_reaches_every_matching_subscriber<R: Runtime>(bus: Bus<R>) {
    let mut exact = bus.subscribe("orders.eu.paid").await.unwrap();
    let mut star = bus.subscribe("orders.*.paid").await.unwrap();
    let mut tail = bus.subscribe("orders.>").await.unwrap();
    let mut other = bus.subscribe("orders.*").await.unwrap();
    let publisher = bus.clone();
    spawn::<R, _>(async move {
        for n in 0..100u32 {
            publisher
                .publish("orders.eu.paid", n.to_string())
                .await
                .unwrap();
        }
    })
    .await
    .unwrap();
    for subscription in [&mut exact, &mut star, &mut tail] {
        for n in 0..100u32 {
            let message = next::<R>(subscription).await;
            assert_eq!(message.subject, "orders.eu.paid");
            assert_eq!(message.payload, n.to_string().as_bytes());
        }
    }
    assert!(
        quiet::<R>(&mut other).await,
        "orders.* matched orders.eu.paid"
    );
}

/// A queue group gets each message once, its members in turn; a plain subscription beside it
/// gets them all.
pub async fn queue_group_delivers_each_message_once<R: Runtime>(bus: Bus<R>) {
    let mut members = Vec::new();
    for _ in 0..3 {
        members.push(bus.queue_subscribe("jobs.>", "workers").await.unwrap());
    }
    let mut watcher = bus.subscribe("jobs.>").await.unwrap();
    for n in 0..300u32 {
        bus.publish("jobs.build", n.to_string()).await.unwrap();
    }
    let mut seen = Vec::new();
    for member in &mut members {
        let mut mine = 0;
        while !quiet::<R>(member).await {
            mine += 1;
        }
        assert!(mine > 0, "a member of the group got nothing of 300");
        seen.push(mine);
    }
    assert_eq!(seen.iter().sum::<u32>(), 300);
    for n in 0..300u32 {
        assert_eq!(
            next::<R>(&mut watcher).await.payload,
            n.to_string().as_bytes()
        );
    }
}

/// A request is answered on its reply subject; nobody subscribed is `NoResponders` at once;
/// a subscriber that never answers is a `Timeout` naming the subject.
pub async fn request_reply_and_its_errors<R: Runtime>(bus: Bus<R>) {
    let mut prices = bus.subscribe("price.*").await.unwrap();
    let responder = bus.clone();
    let answering = spawn::<R, _>(async move {
        let request = next::<R>(&mut prices).await;
        assert!(request.reply.is_some(), "a request has a reply subject");
        responder
            .respond(
                &request,
                format!("{} costs 12", String::from_utf8_lossy(&request.payload)),
            )
            .await
            .unwrap();
        // The second request is never answered.
        let _unanswered = next::<R>(&mut prices).await;
        ginkgo_api::time::sleep::<R>(Duration::from_secs(2)).await;
    });
    let reply = bus.request("price.book", "a book", PATIENCE).await.unwrap();
    assert_eq!(reply.payload, &b"a book costs 12"[..]);

    let began = Instant::now();
    let err = bus
        .request("price.lamp", "a lamp", Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, BusError::Timeout { subject, .. } if subject == "price.lamp"),
        "{err}"
    );
    assert!(began.elapsed() >= Duration::from_millis(200));
    assert!(err.to_string().contains("price.lamp"), "{err}");

    let err = bus.request("nobody.here", "?", PATIENCE).await.unwrap_err();
    assert!(matches!(err, BusError::NoResponders { .. }), "{err}");
    assert!(err.to_string().contains("nobody.here"), "{err}");
    answering.abort();
}

/// Headers and the reply subject travel with a message; typed payloads round-trip as JSON,
/// and one that is not the type expected is an error naming the subject.
pub async fn headers_and_json_travel<R: Runtime>(bus: Bus<R>) {
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Order {
        id: u32,
        item: String,
    }
    let mut inbox = bus.subscribe("orders.>").await.unwrap();
    let mut message = Message::new("orders.new", "{}").header("Trace-Id", "abc");
    message.headers.insert("Trace-Id", "second");
    message.reply = Some("answers.here".to_owned());
    bus.publish_message(message).await.unwrap();
    let got = next::<R>(&mut inbox).await;
    assert_eq!(got.headers.get("trace-id"), Some("abc"));
    assert_eq!(got.headers.iter().count(), 2);
    assert_eq!(got.reply.as_deref(), Some("answers.here"));

    let order = Order {
        id: 7,
        item: "book".to_owned(),
    };
    bus.publish_json("orders.json", &order).await.unwrap();
    assert_eq!(next::<R>(&mut inbox).await.json::<Order>().unwrap(), order);
    bus.publish("orders.broken", "{not json").await.unwrap();
    let err = next::<R>(&mut inbox).await.json::<Order>().unwrap_err();
    assert!(
        matches!(&err, BusError::Payload { subject, .. } if subject == "orders.broken"),
        "{err}"
    );
}

/// Bad subjects are errors that say what is wrong, on every call that takes one.
pub async fn invalid_subjects_are_errors<R: Runtime>(bus: Bus<R>) {
    let err = bus.publish("orders.*", "x").await.unwrap_err();
    assert!(err.to_string().contains("not publishing"), "{err}");
    let err = bus.subscribe("orders..paid").await.unwrap_err();
    assert!(err.to_string().contains("empty token"), "{err}");
    let err = bus
        .queue_subscribe("orders.>", "two words")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("queue group"), "{err}");
    let err = bus.request("", "x", PATIENCE).await.unwrap_err();
    assert!(matches!(err, BusError::InvalidSubject { .. }), "{err}");
}

/// Dropping a subscription unsubscribes: a request to its subject then has no responders
/// (once the unsubscription reached the server, for a bus that has one).
pub async fn dropped_subscription_unsubscribes<R: Runtime>(bus: Bus<R>) {
    let subscription = bus.subscribe("svc.ping").await.unwrap();
    assert_eq!(subscription.subject(), "svc.ping");
    drop(subscription);
    let deadline = Instant::now() + PATIENCE;
    loop {
        match bus
            .request("svc.ping", "", Duration::from_millis(200))
            .await
        {
            Err(BusError::NoResponders { .. }) => break,
            Err(BusError::Timeout { .. }) if Instant::now() < deadline => {}
            other => panic!("{other:?}"),
        }
    }
}

/// The handler of the responder cases: halves even numbers, fails on odd ones, panics on 13.
async fn halve(x: i64) -> Result<i64, String> {
    match x {
        13 => panic!("unlucky number"),
        x if x % 2 != 0 => Err(format!("{x} is odd")),
        x => Ok(x / 2),
    }
}

/// A responder's counters as `(requests, malformed, errors, panicked)`, 0 for one not yet
/// counted.
fn responder_counts(tree: &ServiceHandle) -> (u64, u64, u64, u64) {
    let snapshot = tree.snapshot();
    let count = |name: &str| {
        snapshot
            .counters
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0, |(_, v)| *v)
    };
    (
        count("requests"),
        count("malformed"),
        count("errors"),
        count("panicked"),
    )
}

/// A `Responder` answers typed requests; a malformed payload is answered `400`, a handler's
/// error and a handler's panic `500`, each counted by the time its answer arrives, and the
/// service stays ready throughout.
pub async fn responder_contains_bad_input<R: Runtime>(bus: Bus<R>) {
    let responder = Responder::new("halver", bus.clone(), "math.half", halve);
    let tree = ginkgo_api::service::tree::<R>(responder);
    tree.start().await.expect("starts");
    let half: i64 = bus.request_json("math.half", &10, PATIENCE).await.unwrap();
    assert_eq!(half, 5);
    assert_eq!(responder_counts(&tree), (1, 0, 0, 0));
    let err = bus.request("math.half", "ten", PATIENCE).await.unwrap_err();
    assert!(
        matches!(&err, BusError::Remote { status: 400, message, .. } if message.contains("malformed payload")),
        "{err}"
    );
    assert_eq!(responder_counts(&tree), (2, 1, 0, 0));
    let err = bus
        .request_json::<_, i64>("math.half", &3, PATIENCE)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, BusError::Remote { status: 500, message, .. } if message == "3 is odd"),
        "{err}"
    );
    assert_eq!(responder_counts(&tree), (3, 1, 1, 0));
    let err = bus
        .request_json::<_, i64>("math.half", &13, PATIENCE)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, BusError::Remote { status: 500, message, .. } if message.contains("unlucky number")),
        "{err}"
    );
    assert_eq!(responder_counts(&tree), (4, 1, 1, 1));
    let half: i64 = bus.request_json("math.half", &-4, PATIENCE).await.unwrap();
    assert_eq!(half, -2);
    assert_eq!(tree.state(), State::Ready);
    assert_eq!(responder_counts(&tree), (5, 1, 1, 1));
    assert!(tree.stop().await.is_clean());
}

/// A transport over `bus` whose `publish` delivers, then waits until the case lets it return:
/// a reply on a network reaches its requester before the responder's `publish` has returned,
/// and here that moment lasts as long as the case needs to look at the counters.
struct HeldAfterPublish<R> {
    bus: Bus<R>,
    release: channel::Receiver<()>,
}

#[async_trait]
impl<R: Runtime> Transport for HeldAfterPublish<R> {
    fn name(&self) -> &str {
        self.bus.transport_name()
    }

    async fn publish(&self, message: Message) -> Result<(), BusError> {
        self.bus.publish_message(message).await?;
        // Closed once the case is done: then nothing is held.
        let _ = self.release.recv().await;
        Ok(())
    }

    async fn subscribe(
        &self,
        subject: &str,
        queue: Option<&str>,
    ) -> Result<Subscription, BusError> {
        match queue {
            Some(queue) => self.bus.queue_subscribe(subject, queue).await,
            None => self.bus.subscribe(subject).await,
        }
    }

    async fn request(&self, message: Message) -> Result<Message, BusError> {
        // The caller's own timeout ends it sooner.
        self.bus.request_message(message, PATIENCE).await
    }
}

/// A `Responder` counts each request before it sends the answer: a requester that reads the
/// counters the moment its answer arrives, while the responder's `publish` of it has not yet
/// returned, finds that request counted, answered, malformed, failed and panicked alike.
pub async fn responder_counts_before_replying<R: Runtime>(bus: Bus<R>) {
    let (release, held) = channel::unbounded();
    let bus = Bus::<R>::with_transport(Arc::new(HeldAfterPublish { bus, release: held }));
    let tree =
        ginkgo_api::service::tree::<R>(Responder::new("halver", bus.clone(), "math.half", halve));
    tree.start().await.expect("starts");
    let answered: i64 = bus.request_json("math.half", &10, PATIENCE).await.unwrap();
    assert_eq!(answered, 5);
    assert_eq!(responder_counts(&tree), (1, 0, 0, 0), "answered");
    release.send(()).await.expect("release");
    bus.request("math.half", "ten", PATIENCE).await.unwrap_err();
    assert_eq!(responder_counts(&tree), (2, 1, 0, 0), "malformed");
    release.send(()).await.expect("release");
    bus.request_json::<_, i64>("math.half", &3, PATIENCE)
        .await
        .unwrap_err();
    assert_eq!(responder_counts(&tree), (3, 1, 1, 0), "the handler's error");
    release.send(()).await.expect("release");
    bus.request_json::<_, i64>("math.half", &13, PATIENCE)
        .await
        .unwrap_err();
    assert_eq!(responder_counts(&tree), (4, 1, 1, 1), "the handler's panic");
    drop(release);
    assert!(tree.stop().await.is_clean());
}

/// Responders in one queue group share the requests, in turn.
pub async fn queue_responders_share_requests<R: Runtime>(bus: Bus<R>) {
    let worker = |name: &'static str| {
        Responder::new(name, bus.clone(), "work", move |_: u32| async move {
            Ok::<_, String>(name.to_owned())
        })
        .queue("pool")
    };
    let first = ginkgo_api::service::tree::<R>(worker("first"));
    let second = ginkgo_api::service::tree::<R>(worker("second"));
    first.start().await.expect("starts");
    second.start().await.expect("starts");
    let mut answered_by = Vec::new();
    for n in 0..20u32 {
        let by: String = bus.request_json("work", &n, PATIENCE).await.unwrap();
        answered_by.push(by);
    }
    let firsts = answered_by.iter().filter(|by| *by == "first").count();
    // Each request to one of them; which one is the bus's choice (in turn in-process,
    // at random on NATS).
    assert!(
        firsts > 0 && firsts < answered_by.len(),
        "one responder answered all: {answered_by:?}"
    );
    assert!(first.stop().await.is_clean());
    assert!(second.stop().await.is_clean());
}
