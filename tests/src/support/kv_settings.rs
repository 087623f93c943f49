//! Network configuration (`ginkgo_runner::KvSettings`), written once over any store: the
//! conformance cases run it on the in-process store (`cases::kv`), the NATS tests on JetStream
//! KV.

use std::time::Duration;

use ginkgo_api::Runtime;
use ginkgo_api::kv::{BucketOptions, Kv};
use ginkgo_api::service::ServiceHandle;
use ginkgo_config::{Config, Live};
use ginkgo_runner::KvSettings;

/// The settings the cases keep in a store.
#[derive(ginkgo_macros::Settings, Debug)]
#[settings(group = "kvtest", crate = ginkgo_config)]
pub struct KvTestSettings {
    /// A port above 1023.
    #[setting(default = 8080, validate = unprivileged)]
    pub port: u16,
    /// A name.
    #[setting(default = "file")]
    pub name: String,
}

fn unprivileged(port: &u16) -> Result<(), String> {
    if *port < 1024 {
        return Err("must be at least 1024".to_owned());
    }
    Ok(())
}

fn counter(tree: &ServiceHandle, name: &str) -> u64 {
    tree.snapshot()
        .counters
        .iter()
        .find(|(n, _)| n == name)
        .map_or(0, |(_, v)| *v)
}

/// Waits until `check` holds, failing after 10 s.
async fn eventually<R: Runtime>(what: &str, check: impl Fn() -> bool) {
    crate::support::eventually::<R>(what, Duration::from_secs(10), check).await;
}

/// The bucket's values are a layer above the file, read at start with their source
/// (`kv:bucket/key`); a change is in force at once; a bad value (wrong type, rejected by the
/// validator, unknown key) is rejected whole and the configuration in force stays.
pub async fn store_layer_is_read_watched_and_checked<R: Runtime>(kv: Kv) {
    let file = crate::process::file("[kvtest]\nport = 9000\nname = \"from the file\"\n");
    let config = Config::builder("kvtest")
        .no_env()
        .file(&file)
        .load()
        .unwrap();
    let settings: Live<KvTestSettings> = config.get().unwrap();
    let bucket = kv
        .bucket("settings", BucketOptions::default())
        .await
        .unwrap();
    bucket.put("kvtest.port", "9100").await.unwrap();
    let tree =
        ginkgo_api::service::tree::<R>(KvSettings::<R>::new(&config, kv.clone(), "settings"));
    tree.start().await.expect("the layer is valid");
    assert_eq!(settings.get().port, 9100);
    assert_eq!(settings.get().name, "from the file");
    let (_, source) = config.value("kvtest.port").unwrap();
    assert_eq!(source.to_string(), "kv:settings/kvtest.port");

    bucket
        .put("kvtest.name", "\"from the store\"")
        .await
        .unwrap();
    // The layer counts a change once it is in force, so a reader may see the value first.
    eventually::<R>("a change is in force and counted", || {
        settings.get().name == "from the store" && counter(&tree, "applied") >= 1
    })
    .await;
    assert_eq!(counter(&tree, "applied"), 1);

    let bad_values = [
        ("kvtest.port", "80", Some("9100")),
        ("kvtest.port", "\"high\"", Some("9100")),
        ("kvtest.prot", "9200", None),
    ];
    for (key, bad, restore) in bad_values {
        let rejected = counter(&tree, "rejected");
        bucket.put(key, bad).await.unwrap();
        eventually::<R>("the bad value is rejected", || {
            counter(&tree, "rejected") > rejected
        })
        .await;
        assert_eq!(
            settings.get().port,
            9100,
            "{key} = {bad} reached the settings"
        );
        let applied = counter(&tree, "applied");
        match restore {
            Some(good) => drop(bucket.put(key, good).await.unwrap()),
            None => bucket.delete(key).await.unwrap(),
        }
        eventually::<R>("the repaired layer is in force", || {
            counter(&tree, "applied") > applied
        })
        .await;
    }
    // Deleting a key falls back to the layer below.
    bucket.delete("kvtest.port").await.unwrap();
    eventually::<R>("the file's value is back", || settings.get().port == 9000).await;
    assert!(tree.stop().await.is_clean());
}

/// A bad value in the store at start fails the start, naming the key and what is wrong.
pub async fn bad_store_value_fails_the_start<R: Runtime>(kv: Kv) {
    let config = Config::builder("kvtest").no_env().load().unwrap();
    let bucket = kv.bucket("broken", BucketOptions::default()).await.unwrap();
    bucket.put("kvtest.port", "22").await.unwrap();
    let tree = ginkgo_api::service::tree::<R>(KvSettings::<R>::new(&config, kv, "broken"));
    let err = tree.start().await.expect_err("port 22 is privileged");
    let text = err.to_string();
    assert!(text.contains("kv:broken/kvtest.port"), "{text}");
    assert!(text.contains("at least 1024"), "{text}");
    assert_eq!(config.get::<KvTestSettings>().unwrap().get().port, 8080);
}
