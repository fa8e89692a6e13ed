//! The producer's view of the cluster: which brokers exist, and for every topic we
//! write to, its partitions and their leaders.
//!
//! Readers take an immutable [`Cluster`] snapshot from an `ArcSwap` without locking.
//! A refresh builds a new snapshot and swaps it in. Concurrent refresh requests are
//! coalesced: a caller that asked for fresh data at time T is satisfied by any
//! refresh that *started* after T, so a storm of NOT_LEADER_OR_FOLLOWER errors costs
//! one Metadata request, not one per batch.
//!
//! Metadata requests go over a dedicated control connection (not a Produce
//! connection, whose in-flight slots belong to the sender), to any broker that
//! answers: known brokers first, then the bootstrap list, so a dead first bootstrap
//! address does not matter.
//!
//! References: Kafka protocol guide, "Metadata API"; KIP-4 (Metadata v1+, topic
//! auto-creation flag in v4, KIP-204); KIP-320 (leader epochs); KIP-951 (leader
//! hints in Produce responses); Java `ProducerMetadata`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use super::connection::{ConnError, Connection};
use super::error::{self, ProduceError};
use super::protocol::{self, LeaderHint, NodeEndpoint, Request, Versions};

/// How long "topic does not exist" is believed without asking the broker again, so a
/// flood of requests for a missing topic costs one Metadata request, not one each.
pub const UNKNOWN_TOPIC_TTL: Duration = Duration::from_secs(1);

/// One partition as the last Metadata response described it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionInfo {
    /// -1 while the partition has no leader.
    pub leader: i32,
    pub leader_epoch: i32,
}

/// A topic as the last Metadata response described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicInfo {
    /// Partitions indexed by partition id.
    Ready(Arc<[PartitionInfo]>),
    /// The broker answered with this error code for the whole topic.
    Error(i16),
}

/// An immutable snapshot of the cluster.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub brokers: HashMap<i32, Arc<str>>,
    pub topics: HashMap<Arc<str>, TopicInfo>,
    /// When the Metadata request that produced this snapshot was *sent*, or `None`
    /// for the empty snapshot before bootstrap.
    pub fetched_at: Option<Instant>,
}

impl Cluster {
    fn empty() -> Cluster {
        Cluster {
            brokers: HashMap::new(),
            topics: HashMap::new(),
            fetched_at: None,
        }
    }

    pub fn leader(&self, topic: &str, partition: i32) -> Option<i32> {
        match self.topics.get(topic)? {
            TopicInfo::Ready(parts) => {
                let p = parts.get(usize::try_from(partition).ok()?)?;
                (p.leader >= 0).then_some(p.leader)
            }
            TopicInfo::Error(_) => None,
        }
    }

    /// Merges a Metadata response into a copy of `self`.
    fn merged(&self, resp: &kafka_protocol::messages::MetadataResponse, at: Instant) -> Cluster {
        let mut next = Cluster {
            brokers: resp
                .brokers
                .iter()
                .map(|b| {
                    let addr = format!("{}:{}", b.host.as_str(), b.port);
                    (b.node_id.0, Arc::from(addr))
                })
                .collect(),
            topics: self.topics.clone(),
            fetched_at: Some(at),
        };
        for t in &resp.topics {
            let Some(name) = &t.name else { continue };
            next.topics
                .insert(Arc::from(name.0.as_str()), topic_info(t));
        }
        next
    }
}

/// Interprets one topic of a Metadata response. Partitions arrive in any order and
/// may have gaps (an offline partition is still listed with an error); we index by id.
fn topic_info(t: &kafka_protocol::messages::metadata_response::MetadataResponseTopic) -> TopicInfo {
    if t.error_code != 0 {
        return TopicInfo::Error(t.error_code);
    }
    let count = t
        .partitions
        .iter()
        .map(|p| p.partition_index.saturating_add(1))
        .max()
        .unwrap_or(0);
    let Ok(count) = usize::try_from(count) else {
        return TopicInfo::Error(error::LEADER_NOT_AVAILABLE);
    };
    if count == 0 {
        return TopicInfo::Error(error::LEADER_NOT_AVAILABLE);
    }
    let mut parts = vec![
        PartitionInfo {
            leader: -1,
            leader_epoch: -1
        };
        count
    ];
    for p in &t.partitions {
        let Ok(i) = usize::try_from(p.partition_index) else {
            continue;
        };
        if let Some(slot) = parts.get_mut(i) {
            *slot = PartitionInfo {
                // A partition with an error (LEADER_NOT_AVAILABLE) has no usable leader.
                leader: if p.error_code == 0 { p.leader_id.0 } else { -1 },
                leader_epoch: p.leader_epoch,
            };
        }
    }
    TopicInfo::Ready(parts.into())
}

/// Settings the metadata layer needs.
#[derive(Debug, Clone)]
pub struct MetadataOptions {
    pub bootstrap: Vec<String>,
    pub client_id: String,
    pub request_timeout: Duration,
}

pub struct Metadata {
    snapshot: ArcSwap<Cluster>,
    /// Topics we produce to; every refresh asks for all of them.
    interest: Mutex<HashSet<Arc<str>>>,
    /// Topics recently found not to exist, and when (a negative cache).
    unknown: Mutex<HashMap<Arc<str>, Instant>>,
    /// Held while a refresh runs; guards the control connection.
    control: tokio::sync::Mutex<Option<Connection>>,
    options: MetadataOptions,
}

impl Metadata {
    pub fn new(options: MetadataOptions) -> Metadata {
        Metadata {
            snapshot: ArcSwap::from_pointee(Cluster::empty()),
            interest: Mutex::new(HashSet::new()),
            unknown: Mutex::new(HashMap::new()),
            control: tokio::sync::Mutex::new(None),
            options,
        }
    }

    /// The current snapshot, lock-free.
    pub fn snapshot(&self) -> Arc<Cluster> {
        self.snapshot.load_full()
    }

    pub fn age(&self) -> Option<Duration> {
        self.snapshot.load().fetched_at.map(|t| t.elapsed())
    }

    /// Adds a topic to the set every refresh asks for. Returns true if it is new.
    pub fn add_interest(&self, topic: &Arc<str>) -> bool {
        match self.interest.lock() {
            Ok(mut set) => set.insert(topic.clone()),
            Err(_) => false,
        }
    }

    /// Stops asking for a topic (it does not exist); otherwise every periodic refresh
    /// would auto-create it again.
    pub fn drop_interest(&self, topic: &str) {
        if let Ok(mut set) = self.interest.lock() {
            set.remove(topic);
        }
    }

    /// Remembers that `topic` does not exist (and stops asking for it).
    pub fn mark_unknown(&self, topic: &Arc<str>) {
        self.drop_interest(topic);
        if let Ok(mut unknown) = self.unknown.lock() {
            // Names are chosen by callers: keep the cache from growing without bound.
            unknown.retain(|_, at| at.elapsed() < UNKNOWN_TOPIC_TTL);
            unknown.insert(topic.clone(), Instant::now());
        }
    }

    /// True if `topic` was found not to exist within the last [`UNKNOWN_TOPIC_TTL`].
    pub fn recently_unknown(&self, topic: &str) -> bool {
        self.unknown
            .lock()
            .ok()
            .and_then(|u| u.get(topic).map(|at| at.elapsed() < UNKNOWN_TOPIC_TTL))
            .unwrap_or(false)
    }

    /// Makes sure the snapshot is at least as new as `requested_at`; coalesces with a
    /// refresh that is already running if that one started after `requested_at`.
    pub async fn refresh(&self, requested_at: Instant) -> Result<Arc<Cluster>, ProduceError> {
        let mut control = self.control.lock().await;
        let current = self.snapshot.load_full();
        if current.fetched_at.is_some_and(|t| t >= requested_at) {
            return Ok(current);
        }
        let started = Instant::now();
        let topics: Vec<Arc<str>> = match self.interest.lock() {
            Ok(set) => set.iter().cloned().collect(),
            Err(_) => Vec::new(),
        };
        let response = self
            .exchange(&mut control, &current, |v| {
                let request = protocol::metadata_request(Some(topics.iter()), true);
                Some((request, v.metadata))
            })
            .await?;
        let next = Arc::new(current.merged(&response, started));
        self.snapshot.store(next.clone());
        Ok(next)
    }

    /// Sends one request over the control connection (not a Produce connection): used
    /// for InitProducerId. `build` picks the request and version from the broker's
    /// versions, or `None` if the broker cannot take it.
    pub async fn control_request<R: Request>(
        &self,
        build: impl Fn(Versions) -> Option<(R, i16)>,
    ) -> Result<R::Response, ProduceError> {
        let mut control = self.control.lock().await;
        let current = self.snapshot.load_full();
        self.exchange(&mut control, &current, build).await
    }

    /// One request/response on the control connection, reconnecting to the first
    /// broker that answers if needed.
    async fn exchange<R: Request>(
        &self,
        control: &mut Option<Connection>,
        current: &Cluster,
        build: impl Fn(Versions) -> Option<(R, i16)>,
    ) -> Result<R::Response, ProduceError> {
        let mut last_error: Option<ConnError> = None;
        // Two passes: a cached connection may have died since its last use.
        for _ in 0..2 {
            if control.as_ref().is_none_or(|c| !c.is_usable()) {
                *control = None;
                match self.connect_any(current).await {
                    Ok(conn) => *control = Some(conn),
                    Err(e) => {
                        last_error = Some(e);
                        break;
                    }
                }
            }
            let Some(conn) = control.as_mut() else { break };
            let Some((request, version)) = build(conn.versions()) else {
                return Err(ProduceError::Unavailable(
                    "the broker does not support this request".into(),
                ));
            };
            match conn.request(&request, version).await {
                Ok(resp) => return Ok(resp),
                Err(e) => {
                    tracing::debug!(error = %e, "control request failed");
                    last_error = Some(e);
                    *control = None;
                }
            }
        }
        Err(match last_error {
            Some(ConnError::Timeout(_)) => ProduceError::Timeout,
            Some(e) => ProduceError::Unavailable(e.to_string().into()),
            None => ProduceError::Unavailable("no broker reachable".into()),
        })
    }

    /// Known brokers first (they are live as of the last snapshot), then bootstrap.
    async fn connect_any(&self, current: &Cluster) -> Result<Connection, ConnError> {
        let mut candidates: Vec<Arc<str>> = current.brokers.values().cloned().collect();
        candidates.sort();
        rotate_randomly(&mut candidates);
        candidates.extend(self.options.bootstrap.iter().map(|s| Arc::from(s.as_str())));
        let mut last = None;
        for addr in candidates {
            match Connection::open(
                &addr,
                &self.options.client_id,
                self.options.request_timeout,
                0,
            )
            .await
            {
                Ok(conn) => return Ok(conn),
                Err(e) => {
                    tracing::debug!(%addr, error = %e, "metadata connect failed");
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| ConnError::Io {
            addr: "".into(),
            reason: "no bootstrap address configured".into(),
        }))
    }

    /// Applies a Produce v10+ leader hint (KIP-951) so the retry goes straight to the
    /// new leader. Ignored unless it is newer than what we know.
    pub fn apply_leader_hint(
        &self,
        topic: &str,
        partition: i32,
        hint: LeaderHint,
        endpoints: &[NodeEndpoint],
    ) -> bool {
        let current = self.snapshot.load_full();
        let Some(TopicInfo::Ready(parts)) = current.topics.get(topic) else {
            return false;
        };
        let Some(p) = usize::try_from(partition).ok().and_then(|i| parts.get(i)) else {
            return false;
        };
        let known = current.brokers.contains_key(&hint.leader_id)
            || endpoints.iter().any(|e| e.node_id == hint.leader_id);
        if hint.leader_epoch <= p.leader_epoch || !known {
            return false;
        }
        let mut next = (*current).clone();
        for e in endpoints {
            next.brokers
                .insert(e.node_id, Arc::from(format!("{}:{}", e.host, e.port)));
        }
        let mut new_parts = parts.to_vec();
        if let Some(slot) = new_parts.get_mut(partition as usize) {
            *slot = PartitionInfo {
                leader: hint.leader_id,
                leader_epoch: hint.leader_epoch,
            };
        }
        next.topics
            .insert(Arc::from(topic), TopicInfo::Ready(new_parts.into()));
        // Lost a race with a refresh: fine, the refresh is at least as new.
        let _ = self.snapshot.compare_and_swap(&current, Arc::new(next));
        true
    }
}

/// Spreads control connections over brokers instead of always hitting the first.
fn rotate_randomly(list: &mut [Arc<str>]) {
    if list.len() > 1 {
        let k = rand::random_range(0..list.len());
        list.rotate_left(k);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use kafka_protocol::messages::metadata_response::{
        MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
    };
    use kafka_protocol::messages::{BrokerId, MetadataResponse, TopicName};
    use kafka_protocol::protocol::StrBytes;

    fn response() -> MetadataResponse {
        MetadataResponse::default()
            .with_brokers(vec![MetadataResponseBroker::default()
                .with_node_id(BrokerId(1))
                .with_host(StrBytes::from_static_str("h"))
                .with_port(9092)])
            .with_topics(vec![
                MetadataResponseTopic::default()
                    .with_name(Some(TopicName(StrBytes::from_static_str("t"))))
                    .with_partitions(vec![
                        MetadataResponsePartition::default()
                            .with_partition_index(1)
                            .with_leader_id(BrokerId(1))
                            .with_leader_epoch(3),
                        MetadataResponsePartition::default()
                            .with_partition_index(0)
                            .with_error_code(5)
                            .with_leader_id(BrokerId(1)),
                    ]),
                MetadataResponseTopic::default()
                    .with_name(Some(TopicName(StrBytes::from_static_str("gone"))))
                    .with_error_code(3),
            ])
    }

    #[test]
    fn metadata_response_becomes_a_snapshot() {
        let c = Cluster::empty().merged(&response(), Instant::now());
        assert_eq!(c.brokers.get(&1).map(|a| &**a), Some("h:9092"));
        assert_eq!(c.leader("t", 1), Some(1));
        assert_eq!(
            c.leader("t", 0),
            None,
            "partition with an error has no leader"
        );
        assert_eq!(c.leader("t", 2), None);
        assert_eq!(c.topics.get("gone"), Some(&TopicInfo::Error(3)));
    }

    #[test]
    fn leader_hint_applies_only_when_newer() {
        let m = Metadata::new(MetadataOptions {
            bootstrap: vec![],
            client_id: "c".into(),
            request_timeout: Duration::from_secs(1),
        });
        m.snapshot.store(Arc::new(
            Cluster::empty().merged(&response(), Instant::now()),
        ));
        let ep = [NodeEndpoint {
            node_id: 2,
            host: "h2".into(),
            port: 1,
        }];
        assert!(!m.apply_leader_hint(
            "t",
            1,
            LeaderHint {
                leader_id: 2,
                leader_epoch: 3
            },
            &ep
        ));
        assert!(m.apply_leader_hint(
            "t",
            1,
            LeaderHint {
                leader_id: 2,
                leader_epoch: 4
            },
            &ep
        ));
        let s = m.snapshot();
        assert_eq!(s.leader("t", 1), Some(2));
        assert_eq!(s.brokers.get(&2).map(|a| &**a), Some("h2:1"));
    }
}
