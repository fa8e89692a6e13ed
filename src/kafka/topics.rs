//! From a topic name to a partition: Kafka's naming rules, the topic's partition
//! count from metadata (waiting out asynchronous auto-creation), the per-topic queues,
//! and the partition a record goes to (explicit, key hash, or sticky).
//!
//! References: Kafka topic name rules in `org.apache.kafka.common.internals.Topic`;
//! KIP-480 (sticky partitioner); KIP-794 (avoiding unavailable partitions); Java
//! `DefaultPartitioner` / `BuiltInPartitioner`.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::accumulator::PartitionQueue;
use super::error::{self, classify, Disposition};
use super::metadata::{Cluster, TopicInfo};
use super::partitioner::{partition_for_key, StickyPartitioner};
use super::producer::Core;
use super::{ProduceError, Record};

/// Longest legal topic name (Kafka's `Topic.MAX_NAME_LENGTH`).
pub const MAX_TOPIC_NAME_LEN: usize = 249;

/// How long a topic may stay UNKNOWN_TOPIC_OR_PARTITION before we conclude the broker
/// will not auto-create it. KRaft creates topics asynchronously; on a loaded broker
/// that takes a few hundred milliseconds.
pub const AUTO_CREATE_WAIT: Duration = Duration::from_millis(2500);

/// Backoff while a topic is being created (LEADER_NOT_AVAILABLE in Metadata).
pub const TOPIC_WAIT_BACKOFF: Duration = Duration::from_millis(50);

/// Checks a topic name against Kafka's rules: 1 to 249 characters from
/// `[a-zA-Z0-9._-]`, and not `.` or `..`.
pub fn validate_topic(topic: &str) -> Result<(), ProduceError> {
    let legal = !topic.is_empty()
        && topic.len() <= MAX_TOPIC_NAME_LEN
        && topic != "."
        && topic != ".."
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if legal {
        Ok(())
    } else {
        Err(ProduceError::InvalidTopic(topic.into()))
    }
}

/// Per-topic producer state.
pub struct TopicQueues {
    pub name: Arc<str>,
    pub sticky: StickyPartitioner,
    partitions: RwLock<Vec<Arc<PartitionQueue>>>,
}

impl TopicQueues {
    pub fn queue(&self, partition: i32) -> Arc<PartitionQueue> {
        let i = usize::try_from(partition).unwrap_or(0);
        if let Some(q) = self
            .partitions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(i)
        {
            return q.clone();
        }
        let mut parts = self.partitions.write().unwrap_or_else(|e| e.into_inner());
        while parts.len() <= i {
            let p = i32::try_from(parts.len()).unwrap_or(i32::MAX);
            parts.push(Arc::new(PartitionQueue::new(self.name.clone(), p)));
        }
        parts[i].clone()
    }
}

impl Core {
    pub fn topic_queues(&self, topic: &Arc<str>) -> Arc<TopicQueues> {
        if let Some(t) = self
            .topics
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(topic)
        {
            return t.clone();
        }
        self.topics
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(topic.clone())
            .or_insert_with(|| {
                Arc::new(TopicQueues {
                    name: topic.clone(),
                    sticky: StickyPartitioner::new(),
                    partitions: RwLock::new(Vec::new()),
                })
            })
            .clone()
    }

    /// The topic's partition count from metadata, fetching (and, if the broker allows,
    /// auto-creating) the topic first if we have not seen it.
    ///
    /// A KRaft broker creates a topic asynchronously: the Metadata request that
    /// triggers auto-creation (and a few after it) still answers
    /// UNKNOWN_TOPIC_OR_PARTITION. A broker that does not auto-create answers the
    /// same forever. So "unknown" is final only after [`AUTO_CREATE_WAIT`]; the
    /// verdict is then cached for `metadata::UNKNOWN_TOPIC_TTL`.
    pub async fn resolve_topic(
        &self,
        topic: &str,
        deadline: Instant,
    ) -> Result<(Arc<str>, Arc<Cluster>, i32), ProduceError> {
        if let Some(found) = ready_topic(&self.metadata.snapshot(), topic) {
            return Ok(found);
        }
        if self.metadata.recently_unknown(topic) {
            return Err(ProduceError::UnknownTopic(topic.into()));
        }
        let name: Arc<str> = topic.into();
        let started = Instant::now();
        let give_up = deadline.min(started + AUTO_CREATE_WAIT);
        loop {
            self.metadata.add_interest(&name);
            let now = Instant::now();
            let cluster =
                match tokio::time::timeout_at(deadline.into(), self.refresh_metadata(now)).await {
                    Ok(result) => result?,
                    Err(_) => return Err(ProduceError::Timeout),
                };
            let code = match cluster.topics.get(topic) {
                Some(TopicInfo::Ready(_)) => match ready_topic(&cluster, topic) {
                    Some(found) => return Ok(found),
                    None => error::LEADER_NOT_AVAILABLE,
                },
                Some(TopicInfo::Error(code)) => *code,
                None => error::UNKNOWN_TOPIC_OR_PARTITION,
            };
            self.stats.broker_error(code);
            let unknown = code == error::UNKNOWN_TOPIC_OR_PARTITION;
            if let Disposition::Fail(e) = classify(code, &name) {
                self.metadata.drop_interest(topic);
                return Err(e);
            }
            if Instant::now() + TOPIC_WAIT_BACKOFF >= give_up {
                if unknown {
                    self.metadata.mark_unknown(&name);
                    return Err(ProduceError::UnknownTopic(name));
                }
                if Instant::now() + TOPIC_WAIT_BACKOFF >= deadline {
                    return Err(error::deadline_error(Some(code), false));
                }
            }
            tokio::time::sleep(TOPIC_WAIT_BACKOFF).await;
        }
    }
}

/// The topic's name, snapshot and partition count if the snapshot knows it.
pub fn ready_topic(cluster: &Arc<Cluster>, topic: &str) -> Option<(Arc<str>, Arc<Cluster>, i32)> {
    match cluster.topics.get_key_value(topic)? {
        (name, TopicInfo::Ready(parts)) => {
            let count = i32::try_from(parts.len()).unwrap_or(i32::MAX);
            Some((name.clone(), cluster.clone(), count))
        }
        _ => None,
    }
}

/// Explicit partition (validated), key hash, or sticky choice among partitions that
/// have a leader.
///
/// Unkeyed records also avoid partitions whose leader we currently cannot connect
/// to (in the spirit of KIP-794): until the cluster fences a dead broker (seconds),
/// metadata still names it leader, and sticky records sent there would only wait.
pub fn choose_partition(
    core: &Core,
    queues: &TopicQueues,
    cluster: &Cluster,
    record: &Record,
    count: i32,
) -> Result<i32, ProduceError> {
    if let Some(p) = record.partition {
        if p < 0 || p >= count {
            return Err(ProduceError::InvalidPartition {
                partition: p,
                count,
            });
        }
        return Ok(p);
    }
    if let Some(key) = &record.key {
        return Ok(partition_for_key(key, count));
    }
    let unreachable = core.unreachable.load();
    Ok(queues.sticky.partition_where(count, |p| {
        cluster
            .leader(&queues.name, p)
            .is_some_and(|leader| !unreachable.contains(&leader))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafka_rules() {
        for ok in ["a", "my-app.events_1", &"x".repeat(249)] {
            assert!(validate_topic(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a b", "ä", "a/b", &"x".repeat(250)] {
            assert!(
                matches!(validate_topic(bad), Err(ProduceError::InvalidTopic(_))),
                "{bad}"
            );
        }
    }
}
