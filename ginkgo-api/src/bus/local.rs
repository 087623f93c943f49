//! The in-process bus: no server, the [contract](super) within one process. Subscriptions are
//! bounded channels; publishing matches the subject against every subscription and hands the
//! message to each match (one member per queue group, in turn), never waiting for a reader.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, Weak};

use super::{BusError, Bytes, Message, PENDING_LIMIT, Subscription, Transport, subject};

/// The process's shared hub, behind [`Bus::local`](super::Bus::local).
pub(super) fn shared() -> Arc<LocalBus> {
    static SHARED: LazyLock<Arc<LocalBus>> = LazyLock::new(|| Arc::new(LocalBus::new()));
    SHARED.clone()
}

/// An in-process bus.
#[derive(Debug, Default)]
pub struct LocalBus {
    hub: Arc<Hub>,
}

#[derive(Debug, Default)]
struct Hub {
    subscriptions: Mutex<Subscriptions>,
}

#[derive(Debug, Default)]
struct Subscriptions {
    by_id: HashMap<u64, Entry>,
    next_id: u64,
    /// Per queue group: the next member's turn.
    turns: HashMap<String, usize>,
    next_inbox: u64,
}

#[derive(Debug)]
struct Entry {
    pattern: String,
    queue: Option<String>,
    sender: async_channel::Sender<Message>,
    dropped: Arc<AtomicU64>,
}

/// Unsubscribes when dropped.
struct Unsubscribe {
    hub: Weak<Hub>,
    id: u64,
}

impl Drop for Unsubscribe {
    fn drop(&mut self) {
        if let Some(hub) = self.hub.upgrade() {
            hub.lock().by_id.remove(&self.id);
        }
    }
}

impl Hub {
    fn lock(&self) -> MutexGuard<'_, Subscriptions> {
        // Every change is one insert or remove: a lock poisoned elsewhere guards a
        // consistent table.
        self.subscriptions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl LocalBus {
    /// A new, empty in-process bus.
    pub fn new() -> Self {
        Self::default()
    }

    fn add(&self, subject: &str, queue: Option<&str>) -> Subscription {
        let (sender, messages) = async_channel::bounded(PENDING_LIMIT);
        let dropped = Arc::new(AtomicU64::new(0));
        let mut table = self.hub.lock();
        let id = table.next_id;
        table.next_id += 1;
        table.by_id.insert(
            id,
            Entry {
                pattern: subject.to_owned(),
                queue: queue.map(str::to_owned),
                sender,
                dropped: dropped.clone(),
            },
        );
        drop(table);
        let guard = Unsubscribe {
            hub: Arc::downgrade(&self.hub),
            id,
        };
        Subscription::new(subject, messages, dropped, guard)
    }

    /// Hands `message` to every matching subscription (one per queue group); how many got it.
    fn deliver(&self, message: &Message) -> usize {
        let mut table = self.hub.lock();
        let mut plain = Vec::new();
        let mut groups: HashMap<&str, Vec<u64>> = HashMap::new();
        let mut ids: Vec<&u64> = table.by_id.keys().collect();
        // In subscription order, so that queue turns go round the members the same way.
        ids.sort_unstable();
        for id in ids {
            let entry = &table.by_id[id];
            if !subject::matches(&entry.pattern, &message.subject) {
                continue;
            }
            match &entry.queue {
                None => plain.push(*id),
                Some(queue) => groups.entry(queue.as_str()).or_default().push(*id),
            }
        }
        let groups: Vec<(String, Vec<u64>)> = groups
            .into_iter()
            .map(|(queue, members)| (queue.to_owned(), members))
            .collect();
        let mut targets = plain;
        for (queue, members) in groups {
            let turn = table.turns.entry(queue).or_insert(0);
            targets.push(members[*turn % members.len()]);
            *turn = turn.wrapping_add(1);
        }
        let mut delivered = 0;
        for id in targets {
            let entry = &table.by_id[&id];
            match entry.sender.try_send(message.clone()) {
                Ok(()) => delivered += 1,
                Err(async_channel::TrySendError::Full(_)) => {
                    let dropped = entry.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                    // Logged at the first drop and then every 10,000, so a slow consumer
                    // cannot flood the log.
                    if dropped % 10_000 == 1 {
                        tracing::warn!(
                            subject = %message.subject,
                            subscription = %entry.pattern,
                            dropped,
                            "slow consumer: a subscription has {PENDING_LIMIT} messages waiting; dropping new ones"
                        );
                    }
                }
                // Its subscription is being dropped.
                Err(async_channel::TrySendError::Closed(_)) => {}
            }
        }
        delivered
    }

    fn has_interest(&self, subject: &str) -> bool {
        self.hub
            .lock()
            .by_id
            .values()
            .any(|entry| subject::matches(&entry.pattern, subject))
    }

    fn inbox(&self) -> String {
        let mut table = self.hub.lock();
        table.next_inbox += 1;
        format!("_INBOX.local.{}", table.next_inbox)
    }
}

#[async_trait::async_trait]
impl Transport for LocalBus {
    fn name(&self) -> &str {
        "local"
    }

    async fn publish(&self, message: Message) -> Result<(), BusError> {
        self.deliver(&message);
        Ok(())
    }

    fn try_publish_payload(&self, subject: &str, payload: &Bytes) -> Option<Result<(), BusError>> {
        // Delivering never waits: a full subscriber drops the message (a slow consumer).
        self.deliver(&Message::new(subject, payload.clone()));
        Some(Ok(()))
    }

    async fn subscribe(
        &self,
        subject: &str,
        queue: Option<&str>,
    ) -> Result<Subscription, BusError> {
        Ok(self.add(subject, queue))
    }

    async fn request(&self, mut message: Message) -> Result<Message, BusError> {
        if !self.has_interest(&message.subject) {
            return Err(BusError::NoResponders {
                subject: message.subject,
            });
        }
        let inbox = self.inbox();
        let mut answers = self.add(&inbox, None);
        message.reply = Some(inbox);
        // A responder that is full (a slow consumer) drops it: the caller's timeout tells.
        self.deliver(&message);
        answers.next().await.ok_or(BusError::Closed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_members_take_turns() {
        futures_lite::future::block_on(async {
            let bus = LocalBus::new();
            let mut members: Vec<Subscription> =
                (0..3).map(|_| bus.add("jobs.*", Some("workers"))).collect();
            for n in 0..9u8 {
                bus.publish(Message::new("jobs.build", vec![n]))
                    .await
                    .unwrap();
            }
            for (i, member) in members.iter_mut().enumerate() {
                for round in 0..3u8 {
                    let message = member.next().await.unwrap();
                    assert_eq!(message.payload[0], round * 3 + i as u8);
                }
            }
        });
    }
}
