//! The key-value store on JetStream KV: a [`ginkgo_api::kv::Store`] over a [`Nats`](crate::Nats)
//! connection. Every call runs on the connection's tokio runtime (the JetStream client's
//! timers need it), so it works from any backend.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::kv;
use futures_lite::StreamExt as _;
use ginkgo_api::kv::{BucketOptions, Bytes, Entry, KvError, Operation, Store, StoreBucket, Watch};

use crate::{Forwarding, Link};

/// How many changes a watch buffers before new ones are dropped (and logged).
const WATCH_LIMIT: usize = 65_536;

/// The longest one call to the store may take before it fails. The client is made without a
/// request timeout (the bus applies its own), and JetStream KV's reads are such requests
/// (direct gets, answered by any replica): one whose reply was lost with a killed server
/// waited forever. In a chaos test on a 3-node cluster, all three candidates of a `Singleton`
/// once stood still so for over a minute. Twice JetStream's own API timeout (5 s), as a
/// `create` makes up to three requests.
const CALL_LIMIT: Duration = Duration::from_secs(10);

pub(crate) struct NatsStore {
    pub(crate) link: Arc<Link>,
    pub(crate) replicas: usize,
}

/// A call to the store that did not return within [`CALL_LIMIT`].
fn timed_out(what: &str) -> KvError {
    KvError::Transport(format!("{what} did not return within {CALL_LIMIT:?}").into())
}

fn kv_error(err: impl std::error::Error + Send + Sync + 'static) -> KvError {
    KvError::Transport(Box::new(err))
}

/// Whether `get_key_value` failed because the bucket's stream does not exist.
fn is_absent(err: &async_nats::jetstream::context::KeyValueError) -> bool {
    use async_nats::jetstream::ErrorCode;
    use async_nats::jetstream::context::{GetStreamError, GetStreamErrorKind};
    std::error::Error::source(err)
        .and_then(|source| source.downcast_ref::<GetStreamError>())
        .is_some_and(|lookup| {
            matches!(lookup.kind(), GetStreamErrorKind::JetStream(answer)
                if answer.error_code() == ErrorCode::STREAM_NOT_FOUND)
        })
}

/// Runs `call` (`what`, for the error) with the client's JetStream context on the
/// connection's runtime; it fails after [`CALL_LIMIT`].
async fn on_runtime<T, F, Fut>(link: &Link, what: &'static str, call: F) -> Result<T, KvError>
where
    T: Send + 'static,
    F: FnOnce(async_nats::jetstream::Context) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, KvError>> + Send + 'static,
{
    let connected = link.get().map_err(|_| KvError::Closed)?;
    let client = connected.client.clone();
    connected
        .runtime
        // The context is made on the runtime: it needs tokio to be there.
        .spawn(async move {
            let jetstream = async_nats::jetstream::new(client);
            tokio::time::timeout(CALL_LIMIT, call(jetstream))
                .await
                .unwrap_or_else(|_| Err(timed_out(what)))
        })
        .await
        .map_err(|err| KvError::Transport(format!("the JetStream task failed: {err}").into()))?
}

#[async_trait::async_trait]
impl Store for NatsStore {
    fn name(&self) -> &str {
        "nats"
    }

    async fn bucket(
        &self,
        name: &str,
        options: &BucketOptions,
    ) -> Result<Arc<dyn StoreBucket>, KvError> {
        let bucket = name.to_owned();
        let max_age = options.max_age.unwrap_or(Duration::ZERO);
        let replicas = self.replicas;
        let store = on_runtime(
            &self.link,
            "opening a bucket",
            move |jetstream| async move {
                let store = match jetstream.get_key_value(bucket.clone()).await {
                    Ok(store) => store,
                    // Only a bucket the server says is absent is created: one it could not
                    // look up (JetStream electing, say) is an error to try again later.
                    Err(err) if !is_absent(&err) => {
                        return Err(KvError::Transport(
                            format!("cannot look up the JetStream KV bucket {bucket}: {err}")
                                .into(),
                        ));
                    }
                    Err(_) => jetstream
                        .create_key_value(kv::Config {
                            bucket: bucket.clone(),
                            history: 1,
                            max_age,
                            num_replicas: replicas,
                            ..Default::default()
                        })
                        .await
                        .map_err(|err| {
                            KvError::Transport(
                                format!("cannot create the JetStream KV bucket {bucket}: {err}")
                                    .into(),
                            )
                        })?,
                };
                let status = store.status().await.map_err(kv_error)?;
                if status.max_age() != max_age {
                    return Err(KvError::Mismatch {
                        bucket,
                        reason: format!(
                            "its max_age is {:?}, asked for {max_age:?} (zero: none)",
                            status.max_age()
                        ),
                    });
                }
                Ok(store)
            },
        )
        .await?;
        Ok(Arc::new(NatsBucket {
            link: self.link.clone(),
            store,
        }))
    }
}

struct NatsBucket {
    link: Arc<Link>,
    store: kv::Store,
}

fn from_nats(entry: kv::Entry) -> Entry {
    Entry {
        bucket: entry.bucket,
        key: entry.key,
        value: entry.value,
        revision: entry.revision,
        operation: match entry.operation {
            kv::Operation::Put => Operation::Put,
            kv::Operation::Delete | kv::Operation::Purge => Operation::Delete,
        },
    }
}

impl NatsBucket {
    fn wrong_revision(&self, key: &str, expected: u64) -> KvError {
        KvError::WrongRevision {
            bucket: self.store.name.clone(),
            key: key.to_owned(),
            expected,
        }
    }

    async fn call<T, F, Fut>(&self, what: &'static str, call: F) -> Result<T, KvError>
    where
        T: Send + 'static,
        F: FnOnce(kv::Store) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, KvError>> + Send + 'static,
    {
        let store = self.store.clone();
        on_runtime(&self.link, what, move |_| call(store)).await
    }
}

#[async_trait::async_trait]
impl StoreBucket for NatsBucket {
    async fn get(&self, key: &str) -> Result<Option<Entry>, KvError> {
        let key = key.to_owned();
        self.call("a KV get", move |store| async move {
            let entry = store.entry(key).await.map_err(kv_error)?;
            Ok(entry
                .map(from_nats)
                .filter(|entry| entry.operation == Operation::Put))
        })
        .await
    }

    async fn put(&self, key: &str, value: Bytes) -> Result<u64, KvError> {
        let key = key.to_owned();
        self.call("a KV put", move |store| async move {
            store.put(key, value).await.map_err(kv_error)
        })
        .await
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<u64, KvError> {
        let owned = key.to_owned();
        let bucket = self.store.name.clone();
        self.call("a KV create", move |store| async move {
            match store.create(&owned, value).await {
                Ok(revision) => Ok(revision),
                Err(err) if err.kind() == kv::CreateErrorKind::AlreadyExists => {
                    Err(KvError::Exists { bucket, key: owned })
                }
                Err(err) => Err(kv_error(err)),
            }
        })
        .await
    }

    async fn update(&self, key: &str, value: Bytes, revision: u64) -> Result<u64, KvError> {
        let owned = key.to_owned();
        let wrong = self.wrong_revision(key, revision);
        self.call("a KV update", move |store| async move {
            match store.update(&owned, value, revision).await {
                Ok(revision) => Ok(revision),
                Err(err) if err.kind() == kv::UpdateErrorKind::WrongLastRevision => Err(wrong),
                Err(err) => Err(kv_error(err)),
            }
        })
        .await
    }

    async fn delete(&self, key: &str, revision: Option<u64>) -> Result<(), KvError> {
        let owned = key.to_owned();
        let wrong = self.wrong_revision(key, revision.unwrap_or(0));
        self.call("a KV delete", move |store| async move {
            let deleted = match revision {
                Some(revision) => store.delete_expect_revision(&owned, Some(revision)).await,
                None => store.delete(&owned).await,
            };
            match deleted {
                Ok(()) => Ok(()),
                Err(err) if err.kind() == kv::UpdateErrorKind::WrongLastRevision => Err(wrong),
                Err(err) => Err(kv_error(err)),
            }
        })
        .await
    }

    async fn watch(&self, pattern: &str) -> Result<Watch, KvError> {
        let pattern = pattern.to_owned();
        let connected = self.link.get().map_err(|_| KvError::Closed)?;
        let (sender, entries) = async_channel::bounded(WATCH_LIMIT);
        let (started, ready) = async_channel::bounded(1);
        let store = self.store.clone();
        let forwarding = connected.runtime.spawn(async move {
            let watching = tokio::time::timeout(CALL_LIMIT, store.watch_with_history(&pattern));
            let watching = match watching.await {
                Ok(watching) => watching.map_err(kv_error),
                Err(_) => Err(timed_out("starting a KV watch")),
            };
            let mut watch = match watching {
                Ok(watch) => {
                    let _ = started.send(Ok(())).await;
                    watch
                }
                Err(err) => {
                    let _ = started.send(Err(err)).await;
                    return;
                }
            };
            while let Some(entry) = watch.next().await {
                let entry = match entry {
                    Ok(entry) => entry,
                    Err(err) => {
                        tracing::warn!(bucket = %store.name, watch = %pattern, error = %err, "a KV watch failed; it ends");
                        break;
                    }
                };
                match sender.try_send(from_nats(entry)) {
                    Ok(()) => {}
                    Err(async_channel::TrySendError::Full(_)) => tracing::warn!(
                        bucket = %store.name,
                        watch = %pattern,
                        "a watch has {WATCH_LIMIT} changes waiting; dropping new ones"
                    ),
                    Err(async_channel::TrySendError::Closed(_)) => break,
                }
            }
        });
        let guard = Forwarding(forwarding.abort_handle());
        match ready.recv().await {
            Ok(Ok(())) => Ok(Watch::new(entries, guard)),
            Ok(Err(err)) => Err(err),
            Err(_) => Err(KvError::Closed),
        }
    }

    async fn entries(&self) -> Result<Vec<Entry>, KvError> {
        self.call("listing the KV entries", move |store| async move {
            let mut keys = store.keys().await.map_err(kv_error)?;
            let mut names = Vec::new();
            while let Some(key) = keys.next().await {
                names.push(key.map_err(kv_error)?);
            }
            let mut entries = Vec::new();
            for key in names {
                if let Some(entry) = store.entry(key).await.map_err(kv_error)? {
                    let entry = from_nats(entry);
                    if entry.operation == Operation::Put {
                        entries.push(entry);
                    }
                }
            }
            Ok(entries)
        })
        .await
    }
}
