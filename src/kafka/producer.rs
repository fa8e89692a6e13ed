//! The producer's public face: validate, pick a partition, append to that
//! partition's batch, and wait for this record's acknowledgement.
//!
//! [`Producer`] is a thin handle over [`Core`], the state shared with the background
//! tasks: the metadata snapshot, per-partition queues, the sender of every pool
//! slot, the parking lot, buffer accounting and statistics. Background tasks stop
//! when the `Producer` is dropped or closed.
//!
//! References: Java `KafkaProducer.send` / `doSend` (apache/kafka).

use std::collections::{HashMap, HashSet};

use arc_swap::ArcSwap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{watch, Notify};

use super::accumulator::{self, BatchResult, Completion, PartitionQueue};
use super::idempotence::{Idempotence, INIT_PRODUCER_ID_BACKOFF, INIT_PRODUCER_ID_BACKOFF_MAX};
use super::metadata::{Cluster, Metadata, MetadataOptions, TopicInfo};
use super::parking;
use super::sender::{self, SenderHandle};
use super::stats::ProducerStats;
use super::topics::{choose_partition, validate_topic, TopicQueues};
use super::{Ack, ProduceError, ProducerConfig, Record};

/// Readiness allows a few missed metadata refreshes before the producer counts as
/// not ready (the metadata is stale).
pub const READY_METADATA_AGE_FACTOR: u32 = 3;

/// How long past its delivery deadline a caller waits for the producer's own verdict
/// on its batch (Unavailable when nothing reached Kafka, Timeout when the outcome is
/// unknown) before it concludes Timeout by itself.
pub const CALLER_GRACE: Duration = Duration::from_millis(100);

/// State shared by the handle and every background task.
pub struct Core {
    pub config: ProducerConfig,
    pub metadata: Metadata,
    pub stats: ProducerStats,
    pub idempotence: Idempotence,
    pub topics: RwLock<HashMap<Arc<str>, Arc<TopicQueues>>>,
    senders: Mutex<HashMap<(i32, usize), Arc<SenderHandle>>>,
    parked: Mutex<Vec<Arc<PartitionQueue>>>,
    pub parked_notify: Notify,
    refresh_wanted: Notify,
    /// Bytes charged against `buffer_memory`.
    buffered: AtomicUsize,
    /// Records appended and not yet settled, for `flush`.
    outstanding: AtomicUsize,
    settled: Notify,
    closed: AtomicBool,
    shutdown: watch::Receiver<bool>,
    /// Brokers our senders currently fail to connect to (read lock-free per record).
    pub unreachable: ArcSwap<HashSet<i32>>,
}

impl Core {
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.clone()
    }

    /// The pool slot of a partition: always the same connection for one partition.
    pub fn slot_index(&self, partition: i32) -> usize {
        let n = self.config.connections_per_broker.max(1);
        usize::try_from(partition).unwrap_or(0) % n
    }

    /// The sender of `broker`'s slot for `partition`, started on first use.
    pub fn sender_for(self: &Arc<Self>, broker: i32, partition: i32) -> Arc<SenderHandle> {
        let key = (broker, self.slot_index(partition));
        let mut senders = self.senders.lock().unwrap_or_else(|e| e.into_inner());
        senders
            .entry(key)
            .or_insert_with(|| {
                let handle = Arc::new(SenderHandle::new(key.0, key.1));
                tokio::spawn(sender::run(self.clone(), handle.clone()));
                handle
            })
            .clone()
    }

    pub fn park(&self, queue: Arc<PartitionQueue>) {
        self.parked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(queue);
        self.parked_notify.notify_one();
    }

    pub fn take_parked(&self) -> Vec<Arc<PartitionQueue>> {
        std::mem::take(&mut *self.parked.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Asks the refresh task for a metadata refresh soon, without waiting for it.
    pub fn request_refresh(&self) {
        self.refresh_wanted.notify_one();
    }

    /// A coalesced metadata refresh (see `metadata`), counted in stats.
    pub async fn refresh_metadata(
        &self,
        requested_at: Instant,
    ) -> Result<Arc<Cluster>, ProduceError> {
        let before = self.metadata.snapshot().fetched_at;
        let result = self.metadata.refresh(requested_at).await;
        if let Ok(c) = &result {
            if c.fetched_at != before {
                self.stats.metadata_refreshed();
            }
        }
        result
    }

    /// Returns a settled batch's memory and wakes `flush` when nothing is left.
    pub fn release(&self, charged: usize, records: i32) {
        self.buffered.fetch_sub(charged, Ordering::AcqRel);
        self.stats.buffered(-(charged as i64));
        let records = usize::try_from(records).unwrap_or(0);
        if self.outstanding.fetch_sub(records, Ordering::AcqRel) == records {
            self.settled.notify_waiters();
        }
    }

    /// Reserves memory for a record, or refuses it when `buffer_memory` is used up.
    fn charge(&self, bytes: usize) -> Result<(), ProduceError> {
        let before = self.buffered.fetch_add(bytes, Ordering::AcqRel);
        if before + bytes > self.config.buffer_memory && before > 0 {
            self.buffered.fetch_sub(bytes, Ordering::AcqRel);
            return Err(ProduceError::Backpressure);
        }
        self.stats.buffered(bytes as i64);
        Ok(())
    }

    /// A sender reports whether it can reach its broker.
    pub fn broker_reachable(&self, broker: i32, reachable: bool) {
        if self.unreachable.load().contains(&broker) != reachable {
            return; // no change: skip the copy
        }
        self.unreachable.rcu(|set| {
            let mut set = HashSet::clone(set);
            if reachable {
                set.remove(&broker);
            } else {
                set.insert(broker);
            }
            set
        });
    }

    /// The sticky partitioner moves on once a batch of its partition leaves (KIP-480).
    pub fn batch_left(&self, queue: &PartitionQueue) {
        let cluster = self.metadata.snapshot();
        let Some(TopicInfo::Ready(parts)) = cluster.topics.get(&queue.topic) else {
            return;
        };
        let n = i32::try_from(parts.len()).unwrap_or(i32::MAX);
        let topics = self.topics.read().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = topics.get(&queue.topic) {
            t.sticky.batch_sent(queue.partition, n);
        }
    }
}

/// A record appended to a batch, waiting for the batch's result.
struct Pending {
    /// Index of its batch's completion in the caller's list.
    completion: usize,
    index: i32,
    partition: i32,
    timestamp: i64,
}

/// Our minimal Kafka producer. Cheap to share behind an `Arc`; every method takes `&self`.
pub struct Producer {
    core: Arc<Core>,
    shutdown: watch::Sender<bool>,
}

impl Producer {
    /// Bootstrap: connect, negotiate versions, load metadata.
    pub async fn connect(config: ProducerConfig) -> Result<Producer, ProduceError> {
        if config.acks == 0 {
            // acks=0 gets no response, hence no offset to report.
            return Err(ProduceError::Unavailable("acks=0 is not supported".into()));
        }
        let idempotent = config.idempotence && config.acks == -1;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let metadata = Metadata::new(MetadataOptions {
            bootstrap: config.bootstrap.clone(),
            client_id: config.client_id.clone(),
            request_timeout: config.request_timeout,
        });
        let core = Arc::new(Core {
            config,
            metadata,
            stats: ProducerStats::default(),
            idempotence: Idempotence::new(idempotent),
            topics: RwLock::new(HashMap::new()),
            senders: Mutex::new(HashMap::new()),
            parked: Mutex::new(Vec::new()),
            parked_notify: Notify::new(),
            refresh_wanted: Notify::new(),
            buffered: AtomicUsize::new(0),
            outstanding: AtomicUsize::new(0),
            settled: Notify::new(),
            closed: AtomicBool::new(false),
            shutdown: shutdown_rx,
            unreachable: ArcSwap::from_pointee(HashSet::new()),
        });
        core.refresh_metadata(Instant::now()).await?;
        if idempotent {
            // Best effort now, so the first batches need not wait; retried in the
            // background if it fails.
            if let Err(e) = core.idempotence.fetch_if_needed(&core.metadata).await {
                tracing::warn!(error = %e, "InitProducerId failed; will retry");
            }
            tokio::spawn(run_producer_ids(core.clone()));
        }
        tokio::spawn(parking::run(core.clone()));
        tokio::spawn(run_refresh(core.clone()));
        Ok(Producer { core, shutdown })
    }

    /// Produce one record and wait for its acknowledgement.
    pub async fn send(&self, topic: &str, record: Record) -> Result<Ack, ProduceError> {
        let deadline = Instant::now() + self.core.config.delivery_timeout;
        // One record: collected without a heap allocation (see `One`).
        let mut done = One::default();
        let pending = self.enqueue(topic, &record, deadline, &mut done).await?;
        let Some(done) = done.0 else {
            return Err(ProduceError::ShuttingDown);
        };
        let result = wait(&done, deadline).await;
        ack(&result, &pending)
    }

    /// Produce many records (possibly to several topics); records sharing a partition go
    /// out in the same batch. Results come back in input order.
    pub async fn send_all(&self, items: Vec<(String, Record)>) -> Vec<Result<Ack, ProduceError>> {
        let deadline = Instant::now() + self.core.config.delivery_timeout;
        let mut completions = Vec::new();
        let mut pendings = Vec::with_capacity(items.len());
        for group in self.group(items, deadline).await {
            match group {
                Err((i, e)) => pendings.push((i, Err(e))),
                Ok(g) => self.enqueue_group(g, deadline, &mut completions, &mut pendings),
            }
        }
        let mut results = Vec::with_capacity(completions.len());
        for done in &completions {
            results.push(wait(done, deadline).await);
        }
        let mut out: Vec<Option<Result<Ack, ProduceError>>> = Vec::new();
        out.resize_with(pendings.len(), || None);
        for (i, p) in pendings {
            let r = match p {
                Ok(p) => match results.get(p.completion) {
                    Some(result) => ack(result, &p),
                    None => Err(ProduceError::ShuttingDown),
                },
                Err(e) => Err(e),
            };
            if let Some(slot) = out.get_mut(i) {
                *slot = Some(r);
            }
        }
        out.into_iter()
            .map(|r| r.unwrap_or(Err(ProduceError::ShuttingDown)))
            .collect()
    }

    /// The number of partitions of `topic` (fetching its metadata if needed).
    pub async fn partition_count(&self, topic: &str) -> Result<i32, ProduceError> {
        validate_topic(topic)?;
        let deadline = Instant::now() + self.core.config.delivery_timeout;
        let (_, _, count) = self.core.resolve_topic(topic, deadline).await?;
        Ok(count)
    }

    /// Counters for `/metrics`.
    pub fn stats(&self) -> &ProducerStats {
        &self.core.stats
    }

    /// Age of the metadata snapshot, `None` before the first load.
    pub fn metadata_age(&self) -> Option<Duration> {
        self.core.metadata.age()
    }

    /// True while the producer takes records and its metadata is fresh: refreshed within
    /// [`READY_METADATA_AGE_FACTOR`] refresh intervals, so at least one of the last periodic
    /// refreshes reached a broker. `/readyz` answers with this.
    pub fn is_ready(&self) -> bool {
        !self.core.closed.load(Ordering::Acquire)
            && self.metadata_age().is_some_and(|age| {
                age <= self.core.config.metadata_refresh * READY_METADATA_AGE_FACTOR
            })
    }

    /// Wait until everything appended so far is acknowledged or failed.
    pub async fn flush(&self) {
        loop {
            let settled = self.core.settled.notified();
            tokio::pin!(settled);
            settled.as_mut().enable();
            if self.core.outstanding.load(Ordering::Acquire) == 0 {
                return;
            }
            settled.await;
        }
    }

    /// Refuses new records, waits for those already appended, stops background tasks.
    pub async fn close(&self) {
        self.core.closed.store(true, Ordering::Release);
        self.flush().await;
        let _ = self.shutdown.send(true);
    }

    /// Validates, picks the partition, appends, and returns where the record went.
    async fn enqueue(
        &self,
        topic: &str,
        record: &Record,
        deadline: Instant,
        completions: &mut One<Arc<Completion>>,
    ) -> Result<Pending, ProduceError> {
        self.check_open()?;
        validate_topic(topic)?;
        let (name, cluster, count) = self.core.resolve_topic(topic, deadline).await?;
        let queues = self.core.topic_queues(&name);
        let partition = choose_partition(&self.core, &queues, &cluster, record, count)?;
        let mut out = One::default();
        self.append_all(
            &queues,
            partition,
            &[record],
            deadline,
            completions,
            &mut out,
        )?;
        out.0.ok_or(ProduceError::ShuttingDown)
    }

    fn check_open(&self) -> Result<(), ProduceError> {
        match self.core.closed.load(Ordering::Acquire) {
            true => Err(ProduceError::ShuttingDown),
            false => Ok(()),
        }
    }

    /// Resolves topics and partitions for `send_all`, grouping records by partition
    /// (input order kept within a group). Errors carry the item index.
    async fn group(
        &self,
        items: Vec<(String, Record)>,
        deadline: Instant,
    ) -> Vec<Result<Group, (usize, ProduceError)>> {
        let mut groups: Vec<Group> = Vec::new();
        let mut errors = Vec::new();
        let mut resolved: HashMap<String, Resolved> = HashMap::new();
        for (i, (topic, record)) in items.into_iter().enumerate() {
            if let Err(e) = self.check_open().and_then(|_| validate_topic(&topic)) {
                errors.push(Err((i, e)));
                continue;
            }
            if !resolved.contains_key(&topic) {
                let r = self.core.resolve_topic(&topic, deadline).await;
                let r = r.map(|(name, c, n)| (self.core.topic_queues(&name), c, n));
                resolved.insert(topic.clone(), r);
            }
            let (queues, cluster, count) = match resolved.get(&topic) {
                Some(Ok(v)) => v,
                Some(Err(e)) => {
                    errors.push(Err((i, e.clone())));
                    continue;
                }
                None => continue,
            };
            let partition = match choose_partition(&self.core, queues, cluster, &record, *count) {
                Ok(p) => p,
                Err(e) => {
                    errors.push(Err((i, e)));
                    continue;
                }
            };
            match groups
                .iter_mut()
                .find(|g| Arc::ptr_eq(&g.queues, queues) && g.partition == partition)
            {
                Some(g) => g.items.push((i, record)),
                None => groups.push(Group {
                    queues: queues.clone(),
                    partition,
                    items: vec![(i, record)],
                }),
            }
        }
        errors.extend(groups.into_iter().map(Ok));
        errors
    }

    fn enqueue_group(
        &self,
        g: Group,
        deadline: Instant,
        completions: &mut Vec<Arc<Completion>>,
        pendings: &mut Vec<(usize, Result<Pending, ProduceError>)>,
    ) {
        let records: Vec<&Record> = g.items.iter().map(|(_, r)| r).collect();
        let mut out = Vec::with_capacity(records.len());
        match self.append_all(
            &g.queues,
            g.partition,
            &records,
            deadline,
            completions,
            &mut out,
        ) {
            Ok(()) => {
                for ((i, _), p) in g.items.iter().zip(out) {
                    pendings.push((*i, Ok(p)));
                }
            }
            Err(e) => {
                // Records appended before the refusal still go out; report them, and the
                // refusal for the rest.
                let n = out.len();
                for ((i, _), p) in g.items.iter().zip(out) {
                    pendings.push((*i, Ok(p)));
                }
                for (i, _) in g.items.iter().skip(n) {
                    pendings.push((*i, Err(e.clone())));
                }
            }
        }
    }

    /// Appends records to one partition under one lock, so records of one call that
    /// share a partition land in the same batch (unless it fills up). Stops at the
    /// first record refused for lack of buffer memory or size.
    fn append_all(
        &self,
        queues: &TopicQueues,
        partition: i32,
        records: &[&Record],
        deadline: Instant,
        completions: &mut impl Sink<Arc<Completion>>,
        out: &mut impl Sink<Pending>,
    ) -> Result<(), ProduceError> {
        let core = &self.core;
        let queue = queues.queue(partition);
        let now = Instant::now();
        let mut st = queue.lock();
        let mut last_batch = None;
        let mut result = Ok(());
        for record in records {
            let charge = accumulator::record_charge(record);
            if charge > core.config.max_request_bytes {
                result = Err(ProduceError::RecordTooLarge);
                break;
            }
            if let Err(e) = core.charge(charge) {
                result = Err(e);
                break;
            }
            core.outstanding.fetch_add(1, Ordering::AcqRel);
            let timestamp = record.timestamp.unwrap_or_else(now_ms);
            let slot = st.append(
                record,
                timestamp,
                core.config.max_batch_bytes,
                charge,
                now,
                deadline,
            );
            if last_batch != Some(slot.batch_id) {
                if let Some(done) = st.subscribe(slot.batch_id) {
                    completions.push(done);
                }
                last_batch = Some(slot.batch_id);
            }
            out.push(Pending {
                completion: completions.len().saturating_sub(1),
                index: slot.index,
                partition,
                timestamp,
            });
        }
        sender::schedule(core, &queue, &mut st);
        sender::end_linger(core, &queue, &mut st, now);
        result
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        self.core.closed.store(true, Ordering::Release);
        let _ = self.shutdown.send(true);
    }
}

/// Where `append_all` puts completions and pendings: a `Vec` for many records, [`One`]
/// for `send`'s single record, which then needs no heap allocation for them.
trait Sink<T> {
    fn push(&mut self, item: T);
    fn len(&self) -> usize;
}

impl<T> Sink<T> for Vec<T> {
    fn push(&mut self, item: T) {
        Vec::push(self, item);
    }
    fn len(&self) -> usize {
        Vec::len(self)
    }
}

/// Holds the one item `send` expects; `len` counts what was pushed.
struct One<T>(Option<T>, usize);

impl<T> Default for One<T> {
    fn default() -> Self {
        One(None, 0)
    }
}

impl<T> Sink<T> for One<T> {
    fn push(&mut self, item: T) {
        self.0 = Some(item);
        self.1 += 1;
    }
    fn len(&self) -> usize {
        self.1
    }
}

/// A topic resolved once per `send_all` call.
type Resolved = Result<(Arc<TopicQueues>, Arc<Cluster>, i32), ProduceError>;

/// Records of one `send_all` call bound for one partition.
struct Group {
    queues: Arc<TopicQueues>,
    partition: i32,
    items: Vec<(usize, Record)>,
}

/// Waits for a batch's result until the caller's deadline (plus [`CALLER_GRACE`]). A
/// batch dropped without a result (the producer went away) reports `ShuttingDown`.
async fn wait(done: &Completion, deadline: Instant) -> BatchResult {
    match tokio::time::timeout_at((deadline + CALLER_GRACE).into(), done.wait()).await {
        Ok(result) => result,
        Err(_) => Err(ProduceError::Timeout),
    }
}

fn ack(result: &BatchResult, p: &Pending) -> Result<Ack, ProduceError> {
    let batch = result.as_ref().map_err(Clone::clone)?;
    Ok(Ack {
        partition: p.partition,
        offset: batch.base_offset + i64::from(p.index),
        timestamp: if batch.log_append_time_ms >= 0 {
            batch.log_append_time_ms
        } else {
            p.timestamp
        },
    })
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Periodic metadata refresh, plus refreshes other tasks ask for without waiting.
async fn run_refresh(core: Arc<Core>) {
    let mut shutdown = core.shutdown_signal();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(core.config.metadata_refresh) => {}
            _ = core.refresh_wanted.notified() => {}
            _ = shutdown.changed() => return,
        }
        if let Err(e) = core.refresh_metadata(Instant::now()).await {
            tracing::warn!(error = %e, "metadata refresh failed");
        }
    }
}

/// Fetches fresh producer ids when a partition asks for one (see `idempotence`).
async fn run_producer_ids(core: Arc<Core>) {
    let mut shutdown = core.shutdown_signal();
    loop {
        tokio::select! {
            _ = core.idempotence.wake.notified() => {}
            _ = shutdown.changed() => return,
        }
        let mut backoff = INIT_PRODUCER_ID_BACKOFF;
        while let Err(e) = core.idempotence.fetch_if_needed(&core.metadata).await {
            tracing::warn!(error = %e, "InitProducerId failed");
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = shutdown.changed() => return,
            }
            backoff = (backoff * 2).min(INIT_PRODUCER_ID_BACKOFF_MAX);
        }
        // Partitions that waited for the id sit in the parking lot.
        core.parked_notify.notify_one();
    }
}
