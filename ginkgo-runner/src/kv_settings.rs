//! [`KvSettings`]: network configuration, a settings layer kept in a key-value store bucket.

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::time::Duration;

use ginkgo_api::Runtime;
use ginkgo_api::kv::{Bucket, BucketOptions, Kv, KvError};
use ginkgo_api::service::{Context, Error, Service, async_trait};
use ginkgo_config::Config;

/// How long a watch waits for more changes before applying them: a writer that sets several
/// keys one after the other gets one reload, not one per key.
const SETTLE: Duration = Duration::from_millis(50);

/// A settings layer read from a key-value store bucket and watched: **network
/// configuration**, one place for the settings of every instance of a cluster.
///
/// - Each key of the bucket is a setting's path (`numbers.rate_per_minute`), its value the
///   setting's value as TOML text, as with `--set` (`120`, `"text"`, `["a", "b"]`).
/// - The layer ranks above the config file and below the environment and `--set`; `config`
///   names its values' source as `kv:BUCKET/KEY`.
/// - At start the bucket is read and checked with the rest of the configuration; a bad value
///   (an unknown key, a value of the wrong type, one a validator rejects) fails the start,
///   naming the key. Put this service early in the tree (after the store's connection), so the
///   services after it start with its values.
/// - While it runs, a change to the bucket is checked the same way and swapped in whole, or
///   not at all: a bad value is rejected (logged, counted in `rejected`) and the configuration
///   in force stays as it was. A change in force is counted in `applied`, and under the runner
///   the services are reloaded as on SIGHUP.
///
/// # Examples
///
/// ```no_run
/// # fn demo<R: ginkgo_api::Runtime>(config: &ginkgo_config::Config) {
/// use ginkgo_api::kv::Kv;
/// use ginkgo_runner::KvSettings;
///
/// // With ginkgo-nats: `nats.kv()` instead, after the `Nats` service in the tree.
/// let settings = KvSettings::<R>::new(config, Kv::local(), "settings");
/// # drop(settings);
/// # }
/// ```
pub struct KvSettings<R> {
    config: Config,
    kv: Kv,
    bucket: String,
    _runtime: PhantomData<fn() -> R>,
}

impl<R> std::fmt::Debug for KvSettings<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvSettings")
            .field("store", &self.kv)
            .field("bucket", &self.bucket)
            .finish_non_exhaustive()
    }
}

impl<R: Runtime> KvSettings<R> {
    /// The layer of `config` kept in the bucket `bucket` of `kv` (created empty if it does not
    /// exist).
    pub fn new(config: &Config, kv: Kv, bucket: &str) -> Self {
        Self {
            config: config.clone(),
            kv,
            bucket: bucket.to_owned(),
            _runtime: PhantomData,
        }
    }
}

/// The bucket's settings: path → TOML text.
type Layer = BTreeMap<String, String>;

async fn read(bucket: &Bucket) -> Result<Layer, String> {
    let entries = bucket
        .entries()
        .await
        .map_err(|err| format!("cannot read the bucket {}: {err}", bucket.name()))?;
    entries
        .into_iter()
        .map(|entry| match String::from_utf8(entry.value.to_vec()) {
            Ok(text) => Ok((entry.key, text)),
            Err(_) => Err(format!(
                "kv:{}/{}: the value is not UTF-8 text",
                bucket.name(),
                entry.key
            )),
        })
        .collect()
}

/// Puts `layer` in force, or says why not (the old configuration then stays).
fn apply(config: &Config, store: &str, layer: &Layer) -> Result<Vec<String>, String> {
    config
        .set_layer(store, layer.iter().map(|(k, v)| (k.clone(), v.clone())))
        .map_err(|err| format!("the settings in {store} are rejected:\n{err}"))
}

#[async_trait]
impl<R: Runtime> Service for KvSettings<R> {
    fn name(&self) -> &str {
        "kv-settings"
    }

    async fn start(&mut self, ctx: &Context) -> Result<(), Error> {
        let store = format!("kv:{}", self.bucket);
        let bucket = self
            .kv
            .bucket(&self.bucket, BucketOptions::default())
            .await
            .map_err(|err| format!("cannot open {store}: {err}"))?;
        let mut applied = read(&bucket).await?;
        let changed = apply(&self.config, &store, &applied)?;
        tracing::info!(service = ctx.path(), %store, settings = applied.len(), ?changed, "settings read from the store");
        let (config, shutdown) = (self.config.clone(), ctx.shutdown());
        let (applied_count, rejected) = (ctx.counter("applied"), ctx.counter("rejected"));
        let path = ctx.path().to_owned();
        ctx.spawn("watch", async move {
            loop {
                let mut watch = match bucket.watch(">").await {
                    Ok(watch) => watch,
                    Err(KvError::Closed) => return,
                    Err(err) => {
                        tracing::warn!(service = %path, %store, error = %err, "cannot watch the store; trying again");
                        if shutdown.run(ginkgo_api::time::sleep::<R>(Duration::from_secs(1))).await.is_none() {
                            return;
                        }
                        continue;
                    }
                };
                // Each change (or burst of changes) re-reads the whole bucket: the layer is
                // checked whole, as a file is.
                while let Some(Some(_)) = shutdown.run(watch.next()).await {
                    while let Ok(Some(_)) =
                        ginkgo_api::time::timeout::<R, _>(SETTLE, watch.next()).await
                    {}
                    let layer = match read(&bucket).await {
                        Ok(layer) => layer,
                        Err(err) => {
                            tracing::warn!(service = %path, "{err}");
                            continue;
                        }
                    };
                    if layer == applied {
                        continue;
                    }
                    match apply(&config, &store, &layer) {
                        Ok(changed) => {
                            applied_count.inc();
                            tracing::info!(service = %path, %store, ?changed, "settings changed in the store are in force");
                        }
                        Err(err) => {
                            rejected.inc();
                            tracing::error!(service = %path, "{err}\nthe configuration in force stays as it was");
                        }
                    }
                    // A rejected layer is not retried until the bucket changes again.
                    applied = layer;
                }
                if shutdown.is_triggered() {
                    return;
                }
                tracing::warn!(service = %path, %store, "the watch of the store ended; watching again");
                if shutdown.run(ginkgo_api::time::sleep::<R>(Duration::from_secs(1))).await.is_none() {
                    return;
                }
            }
        });
        Ok(())
    }
}
