//! The key-value store: buckets of keys with revisions, compare-and-set, expiry and watches,
//! with one contract for every implementation. Leadership ([`leader`](crate::leader)) is built
//! on it.
//!
//! [`Kv`] opens [`Bucket`]s; a [`Store`] is what keeps them. The implementation here is
//! [`local`]: in-process, no server. The `ginkgo-nats` crate keeps buckets in NATS JetStream
//! KV (replicated across a cluster); the user's code is the same.
//!
//! # The contract
//!
//! - **Keys** are tokens of `A-Z a-z 0-9 - _ = /` separated by `.`; a watch's key may use `*`
//!   (one token) and `>` (the rest). **Bucket** names are `A-Z a-z 0-9 - _`. A bad one is a
//!   [`KvError::InvalidKey`] saying what is wrong.
//! - Every write gives the key a new **revision**, larger than every revision before it in the
//!   bucket. [`Bucket::create`] writes only a key that is absent (or deleted, or expired);
//!   [`Bucket::update`] only a key whose revision is the one given. Both are atomic: of two
//!   writers racing, one wins and the other gets [`KvError::Exists`] or
//!   [`KvError::WrongRevision`].
//! - **Expiry:** a bucket opened with [`BucketOptions::max_age`] forgets a key that was not
//!   written for that long. Expiry is silent: a watch does not see it (as JetStream's).
//! - **Watches** ([`Bucket::watch`]) first give the current entry of each matching key
//!   (deleted ones included, as [`Operation::Delete`]), then every change, in revision order.
//!
//! # Examples
//!
//! ```
//! # fn demo<R: ginkgo_api::Runtime>() {
//! use ginkgo_api::kv::{BucketOptions, Kv, KvError};
//!
//! ginkgo_api::block_on::<R, _>(async {
//!     let kv = Kv::isolated();
//!     let bucket = kv.bucket("settings", BucketOptions::default()).await.unwrap();
//!     let first = bucket.create("server.port", "8080").await.unwrap();
//!     assert!(matches!(bucket.create("server.port", "9090").await, Err(KvError::Exists { .. })));
//!     let second = bucket.update("server.port", "9090", first).await.unwrap();
//!     let entry = bucket.get("server.port").await.unwrap().unwrap();
//!     assert_eq!((&entry.value[..], entry.revision), (&b"9090"[..], second));
//! });
//! # }
//! ```

pub mod local;

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

pub use bytes::Bytes;

/// One key's entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The bucket.
    pub bucket: String,
    /// The key.
    pub key: String,
    /// Its value (empty for a delete).
    pub value: Bytes,
    /// The revision of this write.
    pub revision: u64,
    /// Whether it was written or deleted.
    pub operation: Operation,
}

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// The key got a value.
    Put,
    /// The key was deleted.
    Delete,
}

/// How to open a bucket; a bucket that exists keeps its options and must agree with these.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BucketOptions {
    /// Forget a key not written for this long (`None`: keep it).
    pub max_age: Option<Duration>,
}

impl BucketOptions {
    /// With keys forgotten when not written for `max_age`.
    #[must_use]
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }
}

/// What can go wrong with the store.
#[derive(Debug)]
#[non_exhaustive]
pub enum KvError {
    /// A key or bucket name that cannot be used.
    InvalidKey {
        /// The key or name.
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// [`Bucket::create`] of a key that has a value.
    Exists {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
    },
    /// [`Bucket::update`] with a revision that is not the key's.
    WrongRevision {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
        /// The revision the caller expected.
        expected: u64,
    },
    /// A bucket that exists with other options than those asked for.
    Mismatch {
        /// The bucket.
        bucket: String,
        /// What differs.
        reason: String,
    },
    /// The store is closed (its connection stopped).
    Closed,
    /// The store failed (the connection to the server, say).
    Transport(Box<dyn std::error::Error + Send + Sync>),
}

impl fmt::Display for KvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KvError::InvalidKey { key, reason } => write!(f, "invalid key {key:?}: {reason}"),
            KvError::Exists { bucket, key } => write!(f, "{bucket}/{key} exists already"),
            KvError::WrongRevision {
                bucket,
                key,
                expected,
            } => write!(
                f,
                "{bucket}/{key} is no longer at revision {expected}: someone else wrote it"
            ),
            KvError::Mismatch { bucket, reason } => {
                write!(f, "bucket {bucket} exists with other options: {reason}")
            }
            KvError::Closed => f.write_str("the key-value store is closed"),
            KvError::Transport(err) => write!(f, "key-value store: {err}"),
        }
    }
}

impl std::error::Error for KvError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            KvError::Transport(err) => Some(&**err),
            _ => None,
        }
    }
}

/// Whether `name` is one or more of `A-Z a-z 0-9 - _`: a bucket, a role, a service name.
pub(crate) fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Checks a bucket name.
///
/// # Errors
///
/// [`KvError::InvalidKey`] naming what is wrong.
pub fn check_bucket(name: &str) -> Result<(), KvError> {
    if is_plain_name(name) {
        Ok(())
    } else {
        Err(KvError::InvalidKey {
            key: name.to_owned(),
            reason: "a bucket name is one or more of A-Z a-z 0-9 - _",
        })
    }
}

/// Checks a key to write (`wildcards` false) or to watch (true).
///
/// # Errors
///
/// [`KvError::InvalidKey`] naming what is wrong.
pub fn check_key(key: &str, wildcards: bool) -> Result<(), KvError> {
    let invalid = |reason: &'static str| {
        Err(KvError::InvalidKey {
            key: key.to_owned(),
            reason,
        })
    };
    if key.is_empty() {
        return invalid("it is empty");
    }
    let tokens: Vec<&str> = key.split('.').collect();
    for (i, token) in tokens.iter().enumerate() {
        if token.is_empty() {
            return invalid("it has an empty token (two dots, or a dot at an end)");
        }
        if *token == "*" || *token == ">" {
            if !wildcards {
                return invalid("wildcards (`*`, `>`) are for watching, not writing");
            }
            if *token == ">" && i + 1 != tokens.len() {
                return invalid("`>` must be the last token");
            }
            continue;
        }
        let allowed = |b: u8| b.is_ascii_alphanumeric() || b"-_=/".contains(&b);
        if !token.bytes().all(allowed) {
            return invalid("a key is made of A-Z a-z 0-9 - _ = / and dots between tokens");
        }
    }
    Ok(())
}

/// What keeps buckets: the in-process [`local`] store, or a server.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Its name, for logs and errors: `local`, `nats`, ...
    fn name(&self) -> &str;

    /// Opens the bucket `name` (checked by the caller), creating it if it does not exist.
    async fn bucket(
        &self,
        name: &str,
        options: &BucketOptions,
    ) -> Result<Arc<dyn StoreBucket>, KvError>;
}

/// One bucket of a [`Store`]; [`Bucket`] checks the keys before they get here, and keeps the
/// [contract](self).
#[async_trait::async_trait]
pub trait StoreBucket: Send + Sync + 'static {
    /// The key's entry, `None` if it has none (never written, deleted or expired).
    async fn get(&self, key: &str) -> Result<Option<Entry>, KvError>;
    /// Writes the key; its new revision.
    async fn put(&self, key: &str, value: Bytes) -> Result<u64, KvError>;
    /// Writes the key if it has no value; its new revision.
    async fn create(&self, key: &str, value: Bytes) -> Result<u64, KvError>;
    /// Writes the key if its revision is `revision`; its new revision.
    async fn update(&self, key: &str, value: Bytes, revision: u64) -> Result<u64, KvError>;
    /// Deletes the key; only if its revision is `revision`, when given.
    async fn delete(&self, key: &str, revision: Option<u64>) -> Result<(), KvError>;
    /// Watches the keys matching `pattern`.
    async fn watch(&self, pattern: &str) -> Result<Watch, KvError>;
    /// The entries of every key that has a value.
    async fn entries(&self) -> Result<Vec<Entry>, KvError>;
}

/// The key-value store as services use it; cheap to clone.
#[derive(Clone)]
pub struct Kv {
    store: Arc<dyn Store>,
}

impl fmt::Debug for Kv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kv")
            .field("store", &self.store.name())
            .finish()
    }
}

impl Kv {
    /// The process's in-process store: every `Kv::local()` of the process is the same one.
    pub fn local() -> Self {
        Self::with_store(local::shared())
    }

    /// A new in-process store of its own (for tests, or to keep parts of a process apart).
    pub fn isolated() -> Self {
        Self::with_store(Arc::new(local::LocalStore::new()))
    }

    /// A store over `store`.
    pub fn with_store(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// The store's name: `local`, `nats`, ...
    pub fn store_name(&self) -> &str {
        self.store.name()
    }

    /// Opens the bucket `name`, creating it with `options` if it does not exist.
    ///
    /// # Errors
    ///
    /// A bad name, a bucket that exists with other options ([`KvError::Mismatch`]), or the
    /// store's error.
    pub async fn bucket(&self, name: &str, options: BucketOptions) -> Result<Bucket, KvError> {
        check_bucket(name)?;
        let inner = self.store.bucket(name, &options).await?;
        Ok(Bucket {
            name: name.to_owned(),
            inner,
        })
    }
}

/// A bucket: keys with values and revisions; cheap to clone.
#[derive(Clone)]
pub struct Bucket {
    name: String,
    inner: Arc<dyn StoreBucket>,
}

impl fmt::Debug for Bucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bucket").field("name", &self.name).finish()
    }
}

impl Bucket {
    /// The bucket's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key's entry; `None` if it has no value.
    ///
    /// # Errors
    ///
    /// A bad key, or the store's error.
    pub async fn get(&self, key: &str) -> Result<Option<Entry>, KvError> {
        check_key(key, false)?;
        self.inner.get(key).await
    }

    /// Writes `value` to `key`; the new revision.
    ///
    /// # Errors
    ///
    /// A bad key, or the store's error.
    pub async fn put(&self, key: &str, value: impl Into<Bytes>) -> Result<u64, KvError> {
        check_key(key, false)?;
        self.inner.put(key, value.into()).await
    }

    /// Writes `value` to `key` if it has no value; the new revision.
    ///
    /// # Errors
    ///
    /// [`KvError::Exists`], a bad key, or the store's error.
    pub async fn create(&self, key: &str, value: impl Into<Bytes>) -> Result<u64, KvError> {
        check_key(key, false)?;
        self.inner.create(key, value.into()).await
    }

    /// Writes `value` to `key` if it is at `revision`; the new revision.
    ///
    /// # Errors
    ///
    /// [`KvError::WrongRevision`], a bad key, or the store's error.
    pub async fn update(
        &self,
        key: &str,
        value: impl Into<Bytes>,
        revision: u64,
    ) -> Result<u64, KvError> {
        check_key(key, false)?;
        self.inner.update(key, value.into(), revision).await
    }

    /// Deletes `key`.
    ///
    /// # Errors
    ///
    /// A bad key, or the store's error.
    pub async fn delete(&self, key: &str) -> Result<(), KvError> {
        check_key(key, false)?;
        self.inner.delete(key, None).await
    }

    /// Deletes `key` if it is at `revision`.
    ///
    /// # Errors
    ///
    /// [`KvError::WrongRevision`], a bad key, or the store's error.
    pub async fn delete_if(&self, key: &str, revision: u64) -> Result<(), KvError> {
        check_key(key, false)?;
        self.inner.delete(key, Some(revision)).await
    }

    /// Watches the keys matching `pattern` (`*` and `>` allowed): first their current entries,
    /// then every change.
    ///
    /// # Errors
    ///
    /// A bad pattern, or the store's error.
    pub async fn watch(&self, pattern: &str) -> Result<Watch, KvError> {
        check_key(pattern, true)?;
        self.inner.watch(pattern).await
    }

    /// The entries of every key that has a value, by key.
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn entries(&self) -> Result<Vec<Entry>, KvError> {
        let mut entries = self.inner.entries().await?;
        entries.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(entries)
    }
}

/// The entries a watch sees, in revision order; dropping it ends the watch. Also a
/// [`Stream`](futures_core::Stream).
pub struct Watch {
    /// Boxed: a receiver is not `Unpin`, and a watch moves.
    entries: Pin<Box<async_channel::Receiver<Entry>>>,
    /// Ends the watch when dropped.
    _guard: Box<dyn Send + Sync>,
}

impl fmt::Debug for Watch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watch")
            .field("pending", &self.entries.len())
            .finish_non_exhaustive()
    }
}

impl Watch {
    /// For a [`Store`]: a watch reading `entries`, that ends by dropping `guard`.
    pub fn new(entries: async_channel::Receiver<Entry>, guard: impl Send + Sync + 'static) -> Self {
        Self {
            entries: Box::pin(entries),
            _guard: Box::new(guard),
        }
    }

    /// The next entry; `None` once the store is closed (or the watch failed).
    pub async fn next(&mut self) -> Option<Entry> {
        self.entries.recv().await.ok()
    }
}

impl futures_core::Stream for Watch {
    type Item = Entry;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Entry>> {
        self.entries.as_mut().poll_next(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked() {
        assert!(check_key("server.port", false).is_ok());
        assert!(check_key("a/b=c-d_e", false).is_ok());
        assert!(check_key("server.*", true).is_ok());
        assert!(check_key("server.>", true).is_ok());
        for (key, wildcards) in [
            ("", false),
            ("a..b", false),
            (".a", false),
            ("a b", false),
            ("a.*", false),
            ("a.>.b", true),
            ("ä", false),
        ] {
            assert!(
                check_key(key, wildcards).is_err(),
                "{key:?} passed (wildcards {wildcards})"
            );
        }
        assert!(check_bucket("leases_1-a").is_ok());
        assert!(check_bucket("a.b").is_err());
        assert!(check_bucket("").is_err());
    }
}
