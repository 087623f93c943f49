//! The in-process store: no server, the [contract](super) within one process. A bucket is a
//! table under one lock (so create and update are atomic by construction); expiry is checked
//! when a key is read, watches are bounded channels fed on every write.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::{Duration, Instant};

use super::{BucketOptions, Bytes, Entry, KvError, Operation, Store, StoreBucket, Watch};
use crate::bus::subject;

/// How many changes a watch buffers before new ones for it are dropped (and logged).
const WATCH_LIMIT: usize = 65_536;

/// The process's shared store, behind [`Kv::local`](super::Kv::local).
pub(super) fn shared() -> Arc<LocalStore> {
    static SHARED: LazyLock<Arc<LocalStore>> = LazyLock::new(|| Arc::new(LocalStore::new()));
    SHARED.clone()
}

/// An in-process store.
#[derive(Debug, Default)]
pub struct LocalStore {
    buckets: Mutex<HashMap<String, Arc<LocalBucket>>>,
}

impl LocalStore {
    /// A new, empty in-process store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[derive(Debug)]
struct LocalBucket {
    name: String,
    max_age: Option<Duration>,
    table: Arc<Mutex<Table>>,
}

#[derive(Debug, Default)]
struct Table {
    revision: u64,
    keys: HashMap<String, Slot>,
    watchers: HashMap<u64, Watcher>,
    next_watcher: u64,
}

#[derive(Debug)]
struct Slot {
    entry: Entry,
    written: Instant,
}

#[derive(Debug)]
struct Watcher {
    pattern: String,
    sender: async_channel::Sender<Entry>,
}

/// Ends a watch when dropped.
struct Unwatch {
    table: Weak<Mutex<Table>>,
    id: u64,
}

impl Drop for Unwatch {
    fn drop(&mut self) {
        if let Some(table) = self.table.upgrade() {
            lock(&table).watchers.remove(&self.id);
        }
    }
}

// Every change is made whole under the lock: one poisoned elsewhere guards a consistent table.
use crate::sync::lock_unpoisoned as lock;

impl LocalBucket {
    /// The key's last entry (a delete included), if it has not expired.
    fn current<'t>(&self, table: &'t Table, key: &str) -> Option<&'t Entry> {
        let slot = table.keys.get(key)?;
        match self.max_age {
            Some(age) if slot.written.elapsed() >= age => None,
            _ => Some(&slot.entry),
        }
    }

    fn write(&self, table: &mut Table, key: &str, value: Bytes, operation: Operation) -> u64 {
        table.revision += 1;
        let entry = Entry {
            bucket: self.name.clone(),
            key: key.to_owned(),
            value,
            revision: table.revision,
            operation,
        };
        for watcher in table.watchers.values() {
            if subject::matches(&watcher.pattern, key)
                && let Err(async_channel::TrySendError::Full(_)) =
                    watcher.sender.try_send(entry.clone())
            {
                tracing::warn!(
                    bucket = %self.name,
                    watch = %watcher.pattern,
                    "a watch has {WATCH_LIMIT} changes waiting; dropping new ones"
                );
            }
        }
        let revision = entry.revision;
        table.keys.insert(
            key.to_owned(),
            Slot {
                entry,
                written: Instant::now(),
            },
        );
        revision
    }

    fn wrong_revision(&self, key: &str, expected: u64) -> KvError {
        KvError::WrongRevision {
            bucket: self.name.clone(),
            key: key.to_owned(),
            expected,
        }
    }
}

#[async_trait::async_trait]
impl Store for LocalStore {
    fn name(&self) -> &str {
        "local"
    }

    async fn bucket(
        &self,
        name: &str,
        options: &BucketOptions,
    ) -> Result<Arc<dyn StoreBucket>, KvError> {
        let mut buckets = lock(&self.buckets);
        if let Some(bucket) = buckets.get(name) {
            if bucket.max_age != options.max_age {
                return Err(KvError::Mismatch {
                    bucket: name.to_owned(),
                    reason: format!(
                        "its max_age is {:?}, asked for {:?}",
                        bucket.max_age, options.max_age
                    ),
                });
            }
            return Ok(bucket.clone());
        }
        let bucket = Arc::new(LocalBucket {
            name: name.to_owned(),
            max_age: options.max_age,
            table: Arc::default(),
        });
        buckets.insert(name.to_owned(), bucket.clone());
        Ok(bucket)
    }
}

#[async_trait::async_trait]
impl StoreBucket for LocalBucket {
    async fn get(&self, key: &str) -> Result<Option<Entry>, KvError> {
        let table = lock(&self.table);
        Ok(self
            .current(&table, key)
            .filter(|entry| entry.operation == Operation::Put)
            .cloned())
    }

    async fn put(&self, key: &str, value: Bytes) -> Result<u64, KvError> {
        let mut table = lock(&self.table);
        Ok(self.write(&mut table, key, value, Operation::Put))
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<u64, KvError> {
        let mut table = lock(&self.table);
        if let Some(entry) = self.current(&table, key)
            && entry.operation == Operation::Put
        {
            return Err(KvError::Exists {
                bucket: self.name.clone(),
                key: key.to_owned(),
            });
        }
        Ok(self.write(&mut table, key, value, Operation::Put))
    }

    async fn update(&self, key: &str, value: Bytes, revision: u64) -> Result<u64, KvError> {
        let mut table = lock(&self.table);
        let current = self.current(&table, key).map_or(0, |entry| entry.revision);
        if current != revision {
            return Err(self.wrong_revision(key, revision));
        }
        Ok(self.write(&mut table, key, value, Operation::Put))
    }

    async fn delete(&self, key: &str, revision: Option<u64>) -> Result<(), KvError> {
        let mut table = lock(&self.table);
        if let Some(expected) = revision {
            let current = self.current(&table, key).map_or(0, |entry| entry.revision);
            if current != expected {
                return Err(self.wrong_revision(key, expected));
            }
        }
        self.write(&mut table, key, Bytes::new(), Operation::Delete);
        Ok(())
    }

    async fn watch(&self, pattern: &str) -> Result<Watch, KvError> {
        let (sender, entries) = async_channel::bounded(WATCH_LIMIT);
        let mut table = lock(&self.table);
        let mut initial: Vec<Entry> = table
            .keys
            .keys()
            .filter(|key| subject::matches(pattern, key))
            .filter_map(|key| self.current(&table, key).cloned())
            .collect();
        initial.sort_by_key(|entry| entry.revision);
        for entry in initial {
            // A fresh channel of WATCH_LIMIT: beyond that the watch starts as a slow one.
            let _ = sender.try_send(entry);
        }
        let id = table.next_watcher;
        table.next_watcher += 1;
        table.watchers.insert(
            id,
            Watcher {
                pattern: pattern.to_owned(),
                sender,
            },
        );
        drop(table);
        Ok(Watch::new(
            entries,
            Unwatch {
                table: Arc::downgrade(&self.table),
                id,
            },
        ))
    }

    async fn entries(&self) -> Result<Vec<Entry>, KvError> {
        let table = lock(&self.table);
        Ok(table
            .keys
            .keys()
            .filter_map(|key| self.current(&table, key))
            .filter(|entry| entry.operation == Operation::Put)
            .cloned()
            .collect())
    }
}
