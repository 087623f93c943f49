//! The discovery contract (`ginkgo_api::discovery`), written once over any bus: the
//! conformance cases run it on the in-process bus (`cases::discovery`), the NATS tests on a
//! real `nats-server` (where `nats micro ls` would see the same).

use std::time::Duration;

use ginkgo_api::bus::{Bus, Message};
use ginkgo_api::discovery::{Discovery, Event, Left, Registration};
use ginkgo_api::service::ServiceHandle;
use ginkgo_api::{Runtime, spawn};
use serde_json::Value;

/// Long enough never to fire on a healthy machine.
const PATIENCE: Duration = Duration::from_secs(10);

async fn started<R: Runtime>(registration: Registration<R>) -> ServiceHandle {
    let tree = ginkgo_api::service::tree::<R>(registration);
    tree.start().await.expect("a registration starts");
    tree
}

/// Registered instances are listed with their version, endpoints and metadata while they run,
/// and no longer once stopped; they answer the protocol's PING, INFO and STATS, for all, by
/// name and by id.
pub async fn registered_instances_are_listed_while_they_run<R: Runtime>(bus: Bus<R>) {
    let first = started(
        Registration::new(bus.clone(), "orders", "1.2.0")
            .id("orders-1")
            .description("takes orders")
            .endpoint("http", "http://127.0.0.1:8080")
            .metadata("zone", "eu-1"),
    )
    .await;
    let second =
        started(Registration::new(bus.clone(), "orders", "1.3.0-rc.1").id("orders-2")).await;
    let billing = started(Registration::new(bus.clone(), "billing", "0.1.0").id("billing-1")).await;
    let discovery = Discovery::new(bus.clone());
    let orders = discovery.list("orders").await.unwrap();
    let ids: Vec<&str> = orders.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["orders-1", "orders-2"]);
    let one = &orders[0];
    assert_eq!(
        (
            one.name.as_str(),
            one.version.as_str(),
            one.description.as_str()
        ),
        ("orders", "1.2.0", "takes orders")
    );
    assert_eq!(one.endpoints["http"], "http://127.0.0.1:8080");
    assert_eq!(one.metadata["zone"], "eu-1");
    assert_eq!(discovery.list_all().await.unwrap().len(), 3);

    // The protocol itself, as NATS tooling asks it.
    let window = Duration::from_millis(300);
    let pings = bus
        .gather(Message::new("$SRV.PING", ""), window, None)
        .await
        .unwrap();
    assert_eq!(pings.len(), 3);
    for ping in &pings {
        let value: Value = serde_json::from_slice(&ping.payload).unwrap();
        assert_eq!(value["type"], "io.nats.micro.v1.ping_response");
    }
    let by_id = bus
        .gather(Message::new("$SRV.INFO.orders.orders-2", ""), window, None)
        .await
        .unwrap();
    assert_eq!(by_id.len(), 1);
    let info: Value = serde_json::from_slice(&by_id[0].payload).unwrap();
    assert_eq!(
        (&info["type"], &info["id"], &info["version"]),
        (
            &Value::from("io.nats.micro.v1.info_response"),
            &Value::from("orders-2"),
            &Value::from("1.3.0-rc.1")
        )
    );
    let stats = bus
        .gather(Message::new("$SRV.STATS.billing", ""), window, Some(1))
        .await
        .unwrap();
    let stats: Value = serde_json::from_slice(&stats[0].payload).unwrap();
    assert_eq!(stats["type"], "io.nats.micro.v1.stats_response");
    assert!(stats["started"].as_str().unwrap().ends_with('Z'), "{stats}");

    assert!(first.stop().await.is_clean());
    let orders = discovery.list("orders").await.unwrap();
    let ids: Vec<&str> = orders.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["orders-2"]);
    assert!(second.stop().await.is_clean());
    assert!(billing.stop().await.is_clean());
    assert!(discovery.list_all().await.unwrap().is_empty());
}

/// A watch gives the instances there, then each that joins (at once, by its announcement) and
/// each that deregisters.
pub async fn watch_sees_joins_and_deregistrations<R: Runtime>(bus: Bus<R>) {
    let early = started(Registration::new(bus.clone(), "workers", "1.0.0").id("early")).await;
    let discovery = Discovery::new(bus.clone()).refresh(Duration::from_secs(30));
    let mut watch = discovery.watch("workers").await.unwrap();
    let next = |event: Result<Result<Event, _>, _>| event.expect("an event in time").unwrap();
    match next(ginkgo_api::time::timeout::<R, _>(PATIENCE, watch.next()).await) {
        Event::Joined(instance) => assert_eq!(instance.id, "early"),
        other => panic!("{other:?}"),
    }
    // With a refresh of 30 s, only the announcement can tell this in time.
    let late = started(Registration::new(bus.clone(), "workers", "1.0.0").id("late")).await;
    let seen = ginkgo_api::time::timeout::<R, _>(Duration::from_secs(5), watch.next()).await;
    match next(seen) {
        Event::Joined(instance) => assert_eq!(instance.id, "late"),
        other => panic!("{other:?}"),
    }
    assert!(early.stop().await.is_clean());
    let seen = ginkgo_api::time::timeout::<R, _>(Duration::from_secs(5), watch.next()).await;
    match next(seen) {
        Event::Left(instance, Left::Deregistered) => assert_eq!(instance.id, "early"),
        other => panic!("{other:?}"),
    }
    let ids: Vec<String> = watch.instances().into_iter().map(|i| i.id).collect();
    assert_eq!(ids, ["late"]);
    assert!(late.stop().await.is_clean());
}

/// An instance that stops answering without deregistering (a crashed process) is reported as
/// expired after `expire_after`; a malformed answer on the way is ignored.
pub async fn silent_instances_expire<R: Runtime>(bus: Bus<R>) {
    // A hand-made instance: it answers INFO for "jobs", and then goes silent.
    let mut asked = bus.subscribe("$SRV.INFO.jobs").await.unwrap();
    let answering = {
        let bus = bus.clone();
        spawn::<R, _>(async move {
            while let Some(request) = asked.next().await {
                let info = serde_json::json!({
                    "type": "io.nats.micro.v1.info_response",
                    "name": "jobs", "id": "ghost", "version": "1.0.0",
                    "description": "", "metadata": {}, "endpoints": []
                });
                bus.respond(&request, "this is not JSON").await.unwrap();
                bus.respond(&request, serde_json::to_vec(&info).unwrap())
                    .await
                    .unwrap();
            }
        })
    };
    let discovery = Discovery::new(bus.clone())
        .window(Duration::from_millis(100))
        .refresh(Duration::from_millis(200))
        .expire_after(Duration::from_millis(700));
    let mut watch = discovery.watch("jobs").await.unwrap();
    let event = ginkgo_api::time::timeout::<R, _>(PATIENCE, watch.next()).await;
    match event.expect("in time").unwrap() {
        Event::Joined(instance) => assert_eq!(instance.id, "ghost"),
        other => panic!("{other:?}"),
    }
    answering.abort();
    let event = ginkgo_api::time::timeout::<R, _>(PATIENCE, watch.next()).await;
    match event.expect("in time").unwrap() {
        Event::Left(instance, Left::Expired) => assert_eq!(instance.id, "ghost"),
        other => panic!("{other:?}"),
    }
}

/// A name or version the protocol does not allow fails the start, saying which; listing a bad
/// name is an error.
pub async fn bad_names_and_versions_are_errors<R: Runtime>(bus: Bus<R>) {
    let tree = ginkgo_api::service::tree::<R>(Registration::new(bus.clone(), "orders", "v1"));
    let err = tree.start().await.expect_err("not a semantic version");
    assert!(err.to_string().contains("semantic version"), "{err}");
    let tree = ginkgo_api::service::tree::<R>(Registration::new(bus.clone(), "or.ders", "1.0.0"));
    let err = tree.start().await.expect_err("a dot in the name");
    assert!(err.to_string().contains("service name"), "{err}");
    assert!(Discovery::new(bus).list("a b").await.is_err());
}
