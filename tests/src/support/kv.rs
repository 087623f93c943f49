//! The key-value contract (`ginkgo_api::kv`), written once over any store: the conformance
//! cases run it on the in-process store (`cases::kv`), the NATS tests on JetStream KV.

use std::time::{Duration, Instant};

use ginkgo_api::Runtime;
use ginkgo_api::kv::{BucketOptions, Entry, Kv, KvError, Operation, Watch};

/// Long enough never to fire on a healthy machine.
const PATIENCE: Duration = Duration::from_secs(10);

/// The next entry of a watch, failing after `PATIENCE`.
pub async fn next_entry<R: Runtime>(watch: &mut Watch) -> Entry {
    ginkgo_api::time::timeout::<R, _>(PATIENCE, watch.next())
        .await
        .expect("a change in time")
        .expect("the store is open")
}

/// Create writes only an absent key, update only at the key's revision, delete (and
/// delete-if) remove it; every write has a larger revision than the one before.
pub async fn create_update_delete_with_revisions<R: Runtime>(kv: Kv) {
    let bucket = kv
        .bucket("revisions", BucketOptions::default())
        .await
        .unwrap();
    assert_eq!(bucket.get("app.port").await.unwrap(), None);
    let first = bucket.create("app.port", "8080").await.unwrap();
    match bucket.create("app.port", "9090").await {
        Err(KvError::Exists { bucket: b, key }) => {
            assert_eq!((b.as_str(), key.as_str()), ("revisions", "app.port"));
        }
        other => panic!("a second create: {other:?}"),
    }
    let err = bucket
        .update("app.port", "1", first + 100)
        .await
        .unwrap_err();
    assert!(matches!(err, KvError::WrongRevision { .. }), "{err}");
    assert!(err.to_string().contains("revisions/app.port"), "{err}");
    let second = bucket.update("app.port", "9090", first).await.unwrap();
    assert!(second > first);
    let entry = bucket.get("app.port").await.unwrap().expect("a value");
    assert_eq!(
        (&entry.value[..], entry.revision, entry.operation),
        (&b"9090"[..], second, Operation::Put)
    );
    // The first revision is gone: an update with it loses.
    assert!(bucket.update("app.port", "2", first).await.is_err());
    let third = bucket.put("app.name", "demo").await.unwrap();
    assert!(third > second);
    assert!(matches!(
        bucket.delete_if("app.port", first).await,
        Err(KvError::WrongRevision { .. })
    ));
    bucket.delete_if("app.port", second).await.unwrap();
    assert_eq!(bucket.get("app.port").await.unwrap(), None);
    // A deleted key can be created again.
    let again = bucket.create("app.port", "7070").await.unwrap();
    assert!(again > third);
    bucket.delete("app.name").await.unwrap();
    let keys: Vec<String> = bucket
        .entries()
        .await
        .unwrap()
        .into_iter()
        .map(|entry| entry.key)
        .collect();
    assert_eq!(keys, ["app.port"]);
}

/// A watch first gives the current entry of each matching key (in revision order), then every
/// change to a matching key, deletes included; other keys are not seen.
pub async fn watch_gives_current_entries_then_changes<R: Runtime>(kv: Kv) {
    let bucket = kv
        .bucket("watched", BucketOptions::default())
        .await
        .unwrap();
    bucket.put("server.port", "80").await.unwrap();
    bucket.put("server.host", "a").await.unwrap();
    bucket.put("client.port", "1").await.unwrap();
    let mut watch = bucket.watch("server.*").await.unwrap();
    let first = next_entry::<R>(&mut watch).await;
    let second = next_entry::<R>(&mut watch).await;
    assert_eq!(
        (first.key.as_str(), second.key.as_str()),
        ("server.port", "server.host")
    );
    bucket.put("client.port", "2").await.unwrap();
    bucket.put("server.port", "81").await.unwrap();
    bucket.delete("server.host").await.unwrap();
    let changed = next_entry::<R>(&mut watch).await;
    assert_eq!(
        (changed.key.as_str(), &changed.value[..]),
        ("server.port", &b"81"[..])
    );
    let deleted = next_entry::<R>(&mut watch).await;
    assert_eq!(
        (deleted.key.as_str(), deleted.operation),
        ("server.host", Operation::Delete)
    );
    assert!(deleted.revision > changed.revision);
    let quiet = ginkgo_api::time::timeout::<R, _>(Duration::from_millis(100), watch.next()).await;
    assert!(quiet.is_err(), "a watch of server.* saw {quiet:?}");
}

/// A bucket with a max age forgets a key not written for that long (and not before), and the
/// key can then be created again.
pub async fn keys_expire_after_max_age<R: Runtime>(kv: Kv) {
    let max_age = Duration::from_secs(1);
    let bucket = kv
        .bucket("expiring", BucketOptions::default().max_age(max_age))
        .await
        .unwrap();
    let written = Instant::now();
    bucket.create("lease", "mine").await.unwrap();
    loop {
        let present = bucket.get("lease").await.unwrap().is_some();
        if !present {
            break;
        }
        assert!(
            written.elapsed() < max_age * 5,
            "the key outlived its max age"
        );
        ginkgo_api::time::sleep::<R>(Duration::from_millis(50)).await;
    }
    assert!(
        written.elapsed() >= max_age,
        "expired after {:?}, before its max age",
        written.elapsed()
    );
    bucket.create("lease", "yours").await.unwrap();
}

/// Bad keys and bucket names are errors saying what is wrong; a bucket opened again with
/// another max age is a mismatch naming it.
pub async fn bad_keys_and_mismatched_buckets_are_errors<R: Runtime>(kv: Kv) {
    let bucket = kv
        .bucket("checked", BucketOptions::default())
        .await
        .unwrap();
    for key in ["", "a..b", ".a", "a b", "a.*", "a.>"] {
        match bucket.put(key, "x").await {
            Err(KvError::InvalidKey { key: k, .. }) => assert_eq!(k, key),
            other => panic!("put {key:?}: {other:?}"),
        }
    }
    assert!(matches!(
        bucket.watch("a.>.b").await,
        Err(KvError::InvalidKey { .. })
    ));
    assert!(matches!(
        kv.bucket("no.dots", BucketOptions::default()).await,
        Err(KvError::InvalidKey { .. })
    ));
    let err = kv
        .bucket(
            "checked",
            BucketOptions::default().max_age(Duration::from_secs(5)),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, KvError::Mismatch { .. }), "{err}");
    assert!(err.to_string().contains("checked"), "{err}");
    // The bucket is unharmed.
    bucket.put("still", "here").await.unwrap();
}

/// Of many candidates racing to create one key, exactly one wins.
pub async fn racing_creates_have_one_winner<R: Runtime>(kv: Kv) {
    let bucket = kv.bucket("race", BucketOptions::default()).await.unwrap();
    let racers: Vec<_> = (0..8)
        .map(|n| {
            let bucket = bucket.clone();
            ginkgo_api::spawn::<R, _>(async move { bucket.create("winner", n.to_string()).await })
        })
        .collect();
    let mut wins = 0;
    for racer in racers {
        match racer.await.unwrap() {
            Ok(_) => wins += 1,
            Err(KvError::Exists { .. }) => {}
            Err(err) => panic!("a racer failed: {err}"),
        }
    }
    assert_eq!(wins, 1);
}
