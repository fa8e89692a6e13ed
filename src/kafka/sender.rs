//! The per-connection drain loop and what happens to a batch after its request.
//!
//! Every pool slot — (broker id, connection index) — has one sender task with a list
//! of partition queues that have data. Whenever its connection has a free in-flight
//! slot, the sender takes the front batch of every listed partition (up to
//! `max_request_bytes`), writes them as one ProduceRequest, and spawns a task that
//! waits for the response and settles each batch: acknowledge, retry after a backoff
//! (refreshing metadata when the error says our view is stale), or fail.
//!
//! A partition is routed to its leader's slot `partition % connections_per_broker`,
//! so one partition always uses one connection. A partition whose leader is unknown
//! is *parked*: a parking task refreshes metadata and routes it again, or fails its
//! batches when the topic or partition no longer exists.
//!
//! References: Java `Sender.sendProducerData` / `completeBatch` / `canRetry`;
//! KIP-91 (delivery.timeout.ms); KIP-951 (leader discovery optimisations).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{Notify, OwnedSemaphorePermit};

use super::accumulator::{Batch, BatchAck, PartitionQueue, QueueState};
use super::connection::{ConnError, Connection};
use super::error::{self, classify, Disposition, ProduceError};
use super::idempotence::Stamp;
use super::metadata::Cluster;
use super::producer::Core;
use super::protocol::{self, PartitionBatch, PartitionResult};
use super::record_batch::ProducerIdentity;

/// First retry backoff; doubles per attempt up to [`RETRY_BACKOFF_MAX`], with jitter
/// so that many partitions failing together do not retry in lockstep.
pub const RETRY_BACKOFF: Duration = Duration::from_millis(50);
pub const RETRY_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Reconnect backoff bounds for a broker that refuses or drops connections.
pub const RECONNECT_BACKOFF: Duration = Duration::from_millis(50);
pub const RECONNECT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// The sender of one pool slot.
pub struct SenderHandle {
    pub broker: i32,
    pub index: usize,
    ready: Mutex<VecDeque<Arc<PartitionQueue>>>,
    notify: Notify,
}

impl SenderHandle {
    pub fn new(broker: i32, index: usize) -> SenderHandle {
        SenderHandle {
            broker,
            index,
            ready: Mutex::new(VecDeque::new()),
            notify: Notify::new(),
        }
    }

    fn push(&self, queue: Arc<PartitionQueue>) {
        self.ready
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(queue);
        self.notify.notify_one();
    }

    fn take_ready(&self) -> VecDeque<Arc<PartitionQueue>> {
        std::mem::take(&mut *self.ready.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn is_idle(&self) -> bool {
        self.ready
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }

    fn put_back(&self, mut queues: VecDeque<Arc<PartitionQueue>>) {
        if queues.is_empty() {
            return;
        }
        let mut ready = self.ready.lock().unwrap_or_else(|e| e.into_inner());
        queues.append(&mut ready);
        *ready = queues;
    }
}

/// Routes a queue that has data to the sender of its leader's slot, or parks it.
/// Call with the queue locked (`st`), after any change that may make it sendable.
pub fn schedule(core: &Arc<Core>, queue: &Arc<PartitionQueue>, st: &mut QueueState) {
    if st.scheduled || st.in_flight || !st.has_data() {
        return;
    }
    st.scheduled = true;
    let cluster = core.metadata.snapshot();
    match cluster.leader(&queue.topic, queue.partition) {
        Some(leader) => core.sender_for(leader, queue.partition).push(queue.clone()),
        None => core.park(queue.clone()),
    }
}

/// Settles a batch: wakes its waiters, returns its memory, counts it.
pub fn complete(core: &Core, batch: Batch, result: Result<BatchAck, ProduceError>) {
    match &result {
        Ok(_) => core.stats.acked(batch.record_count, batch.size_bytes()),
        Err(_) => core.stats.failed(batch.record_count),
    }
    core.release(batch.charged, batch.record_count);
    batch.complete(result);
}

/// One sender task: runs until the producer shuts down.
pub async fn run(core: Arc<Core>, me: Arc<SenderHandle>) {
    let mut conn: Option<Arc<Connection>> = None;
    let mut generation = 0u64;
    let mut reconnect = Backoff::new(RECONNECT_BACKOFF, RECONNECT_BACKOFF_MAX);
    let mut shutdown = core.shutdown_signal();
    loop {
        if me.is_idle() {
            tokio::select! {
                _ = me.notify.notified() => {}
                _ = shutdown.changed() => return,
            }
            continue;
        }
        let live = match conn.as_ref().filter(|c| c.is_usable()) {
            Some(c) => c.clone(),
            None => {
                conn = None;
                generation += 1;
                match open(&core, &me, generation).await {
                    Ok(c) => {
                        core.broker_reachable(me.broker, true);
                        reconnect.reset();
                        conn = Some(c.clone());
                        c
                    }
                    Err(e) => {
                        // A broker that accepts connections but never answers (paused,
                        // overloaded) "did not answer in time"; one that refuses them
                        // is "unavailable".
                        let unreachable = !matches!(e, Some(ConnError::Timeout(_)));
                        core.broker_reachable(me.broker, false);
                        let next_deadline = reroute(&core, &me, unreachable);
                        let mut wait = reconnect.next();
                        if let Some(d) = next_deadline {
                            wait = wait.min(d.saturating_duration_since(Instant::now()));
                        }
                        tokio::select! {
                            _ = tokio::time::sleep(wait) => {}
                            _ = shutdown.changed() => return,
                        }
                        continue;
                    }
                }
            }
        };
        let permit = tokio::select! {
            p = live.in_flight().clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
            _ = shutdown.changed() => return,
        };
        let (taken, linger_until) = drain(&core, &me);
        if taken.is_empty() {
            drop(permit);
            match linger_until {
                Some(until) => tokio::select! {
                    _ = tokio::time::sleep_until(until.into()) => {}
                    _ = me.notify.notified() => {}
                    _ = shutdown.changed() => return,
                },
                None => tokio::select! {
                    _ = me.notify.notified() => {}
                    _ = shutdown.changed() => return,
                },
            }
            continue;
        }
        tokio::spawn(send(core.clone(), live, permit, taken));
    }
}

/// Connects this slot to its broker's current address. `Err(None)`: metadata no
/// longer lists the broker.
async fn open(
    core: &Arc<Core>,
    me: &SenderHandle,
    generation: u64,
) -> Result<Arc<Connection>, Option<ConnError>> {
    let Some(addr) = core.metadata.snapshot().brokers.get(&me.broker).cloned() else {
        core.request_refresh();
        return Err(None);
    };
    let cfg = &core.config;
    match Connection::open(
        &addr,
        &cfg.client_id,
        cfg.request_timeout,
        cfg.max_in_flight,
        generation,
    )
    .await
    {
        Ok(c) => {
            core.stats.connection_opened();
            tracing::debug!(broker = me.broker, %addr, generation, "connected");
            Ok(Arc::new(c))
        }
        Err(e) => {
            core.stats.connection_failed();
            tracing::warn!(broker = me.broker, %addr, error = %e, "connect failed");
            // The broker may be gone for good; let metadata tell us who leads now.
            core.request_refresh();
            Err(Some(e))
        }
    }
}

/// While this slot cannot connect: expire what is overdue and send the rest to
/// wherever metadata now says it belongs (possibly back here). Returns the earliest
/// delivery deadline still waiting here, so the caller can wake up for it.
fn reroute(core: &Arc<Core>, me: &SenderHandle, unreachable: bool) -> Option<Instant> {
    let now = Instant::now();
    let mut earliest: Option<Instant> = None;
    for queue in me.take_ready() {
        let expired = {
            let mut st = queue.lock();
            st.scheduled = false;
            let expired = st.take_expired(now);
            if let Some(d) = st.batches.iter().map(|b| b.deadline).min() {
                earliest = Some(earliest.map_or(d, |e| e.min(d)));
            }
            schedule(core, &queue, &mut st);
            expired
        };
        fail_expired(core, expired, unreachable);
    }
    earliest
}

/// A batch taken for a request.
pub struct InFlight {
    queue: Arc<PartitionQueue>,
    records: Bytes,
}

/// Takes the front batch of every ready partition routed to this slot, up to the
/// request size limit. Returns the batches and, if some partition is still
/// lingering, when to look again.
fn drain(core: &Arc<Core>, me: &SenderHandle) -> (Vec<InFlight>, Option<Instant>) {
    let now = Instant::now();
    let cluster = core.metadata.snapshot();
    let mut taken = Vec::new();
    let mut size = 0usize;
    let mut leftover = VecDeque::new();
    let mut linger_until: Option<Instant> = None;
    let mut expired = Vec::new();
    let mut failed = Vec::new();
    for queue in me.take_ready() {
        let mut st = queue.lock();
        st.scheduled = false;
        if st.in_flight {
            continue; // rescheduled when its batch completes
        }
        expired.extend(st.take_expired(now));
        let Some(front) = st.batches.front() else {
            continue;
        };
        if !routed_here(core, &cluster, me, &queue) {
            schedule(core, &queue, &mut st);
            continue;
        }
        let front_size = front.size_bytes();
        if !taken.is_empty() && size + front_size > core.config.max_request_bytes {
            st.scheduled = true;
            leftover.push_back(queue.clone());
            continue;
        }
        if let Some(until) = lingering(core, front, now, st.batches.len()) {
            st.scheduled = true;
            leftover.push_back(queue.clone());
            linger_until = Some(linger_until.map_or(until, |u| u.min(until)));
            continue;
        }
        let retry = front.attempts > 0;
        let (count, encoded) = (front.record_count, front.is_encoded());
        let stamp = if !encoded || st.seq.restamp_front {
            match st.seq.assign(&core.idempotence, count) {
                Stamp::Ready(stamp) => Some(stamp),
                Stamp::Wait => {
                    // A fresh producer id is being fetched; the parking lot retries.
                    st.scheduled = true;
                    core.park(queue.clone());
                    continue;
                }
            }
        } else {
            None
        };
        // Only an encoded batch can be restamped; a batch still open simply gets the
        // fresh identity when it is encoded.
        let restamp = std::mem::take(&mut st.seq.restamp_front) && encoded;
        let Some(front) = st.batches.front_mut() else {
            continue;
        };
        let encoded = match (stamp, restamp) {
            (Some(stamp), true) => front
                .restamp(stamp)
                .ok_or_else(|| ProduceError::InvalidRecord("cannot restamp the batch".into())),
            (stamp, _) => front
                .encode(
                    core.config.compression,
                    stamp.unwrap_or(ProducerIdentity::NONE),
                )
                .map_err(|e| ProduceError::InvalidRecord(e.to_string().into())),
        };
        match encoded {
            Ok(records) => {
                core.stats.batch_sent(count, retry);
                if !retry {
                    core.batch_left(&queue);
                }
                size += records.len();
                st.in_flight = true;
                taken.push(InFlight {
                    queue: queue.clone(),
                    records,
                });
            }
            Err(e) => {
                if let Some(b) = st.batches.pop_front() {
                    st.seq.release(b.stamp, b.record_count, false);
                    failed.push((b, e));
                }
                schedule(core, &queue, &mut st);
            }
        }
    }
    me.put_back(leftover);
    fail_expired(core, expired, false);
    for (b, e) in failed {
        complete(core, b, Err(e));
    }
    (taken, linger_until)
}

fn routed_here(core: &Core, cluster: &Cluster, me: &SenderHandle, q: &PartitionQueue) -> bool {
    cluster.leader(&q.topic, q.partition) == Some(me.broker)
        && core.slot_index(q.partition) == me.index
}

/// `Some(when)` if the front batch should wait for more records (optional linger).
fn lingering(core: &Core, front: &Batch, now: Instant, queued: usize) -> Option<Instant> {
    let linger = core.config.linger;
    if linger.is_zero() || queued > 1 || front.is_encoded() || front.attempts > 0 {
        return None;
    }
    let until = front.created + linger;
    (until > now && front.size_bytes() < core.config.max_batch_bytes).then_some(until)
}

/// Fails batches whose delivery deadline passed before they could be (re)sent.
/// `unreachable`: the broker refused connections or has no leader for them, so a
/// batch that never reached it is reported Unavailable; otherwise (the broker is slow
/// or silent) we report Timeout.
fn fail_expired(core: &Core, expired: Vec<Batch>, unreachable: bool) {
    for b in expired {
        let err = match (b.last_error, unreachable) {
            (Some(_), _) | (None, true) => error::deadline_error(b.last_error, b.maybe_written),
            (None, false) => ProduceError::Timeout,
        };
        complete(core, b, Err(err));
    }
}

/// Writes one ProduceRequest and settles its batches from the response.
async fn send(
    core: Arc<Core>,
    conn: Arc<Connection>,
    permit: OwnedSemaphorePermit,
    taken: Vec<InFlight>,
) {
    let request = protocol::produce_request(
        core.config.acks,
        broker_timeout_ms(core.config.request_timeout),
        taken.iter().map(|f| PartitionBatch {
            topic: &f.queue.topic_name,
            partition: f.queue.partition,
            records: f.records.clone(),
        }),
    );
    core.stats.request_started();
    let result = conn.request(&request, conn.versions().produce).await;
    core.stats.request_finished();
    drop(permit);
    drop(request);
    let response = match result {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(
                error = %e,
                generation = conn.generation,
                batches = taken.len(),
                "produce request failed"
            );
            // Lost connection: the request may or may not have been appended.
            for f in taken {
                retry_or_fail(&core, f, None, true, true);
            }
            return;
        }
    };
    let endpoints = protocol::produce_node_endpoints(&response);
    let results = protocol::produce_results(&response);
    for f in taken {
        let found = results
            .iter()
            .find(|(t, p, _)| *t == &*f.queue.topic && *p == f.queue.partition);
        match found {
            Some((_, _, r)) => settle(&core, f, r, &endpoints),
            // A broker that leaves a partition out of its answer is broken; treat it
            // like a lost response.
            None => retry_or_fail(&core, f, None, true, true),
        }
    }
}

/// How long the broker may wait for in-sync replicas (the Produce `timeout_ms`): a
/// fifth less than our own request timeout, so a slow replication comes back as
/// REQUEST_TIMED_OUT on a healthy connection instead of our timeout killing it.
fn broker_timeout_ms(request_timeout: Duration) -> i32 {
    let wait = request_timeout.saturating_sub(request_timeout / 5);
    i32::try_from(wait.as_millis()).unwrap_or(i32::MAX).max(1)
}

/// Applies one partition's result to its in-flight batch.
fn settle(
    core: &Arc<Core>,
    f: InFlight,
    r: &PartitionResult,
    endpoints: &[protocol::NodeEndpoint],
) {
    if r.error_code == 0 {
        let batch = {
            let mut st = f.queue.lock();
            st.in_flight = false;
            let b = st.batches.pop_front();
            schedule(core, &f.queue, &mut st);
            b
        };
        if let Some(b) = batch {
            let ack = BatchAck {
                base_offset: r.base_offset,
                log_append_time_ms: r.log_append_time_ms,
            };
            complete(core, b, Ok(ack));
        }
        return;
    }
    core.stats.broker_error(r.error_code);
    tracing::debug!(
        topic = %f.queue.topic,
        partition = f.queue.partition,
        code = r.error_code,
        name = error::error_name(r.error_code),
        message = r.error_message.as_deref().unwrap_or(""),
        "produce error"
    );
    match classify(r.error_code, &f.queue.topic) {
        Disposition::Retry {
            refresh_metadata,
            maybe_written,
        } => {
            let hinted = r.current_leader.is_some_and(|hint| {
                core.metadata
                    .apply_leader_hint(&f.queue.topic, f.queue.partition, hint, endpoints)
            });
            let refresh = refresh_metadata && !hinted;
            retry_or_fail(core, f, Some(r.error_code), refresh, maybe_written);
        }
        Disposition::Restamp => {
            {
                let mut st = f.queue.lock();
                st.seq.abandon();
                st.seq.restamp_front = true;
            }
            retry_or_fail(core, f, Some(r.error_code), false, false);
        }
        Disposition::Fail(err) => {
            let batch = {
                let mut st = f.queue.lock();
                st.in_flight = false;
                let b = st.batches.pop_front();
                if let Some(b) = &b {
                    // A duplicate was appended before: our sequence is still right.
                    if r.error_code != error::DUPLICATE_SEQUENCE_NUMBER {
                        st.seq.release(b.stamp, b.record_count, false);
                    }
                }
                schedule(core, &f.queue, &mut st);
                b
            };
            if let Some(b) = batch {
                complete(core, b, Err(err));
            }
        }
    }
}

/// Keeps the batch at the front of its queue (still "in flight", so nothing
/// overtakes it) and resends it after a backoff — or fails it if the backoff would
/// end past its delivery deadline.
fn retry_or_fail(
    core: &Arc<Core>,
    f: InFlight,
    code: Option<i16>,
    refresh: bool,
    maybe_written: bool,
) {
    let now = Instant::now();
    let (delay, gave_up) = {
        let mut st = f.queue.lock();
        let Some(front) = st.batches.front_mut() else {
            st.in_flight = false;
            return;
        };
        front.attempts += 1;
        front.maybe_written |= maybe_written;
        if code.is_some() {
            front.last_error = code;
        }
        let delay = backoff_for(front.attempts);
        if now + delay >= front.deadline {
            st.in_flight = false;
            let b = st.batches.pop_front();
            if let Some(b) = &b {
                st.seq.release(b.stamp, b.record_count, b.maybe_written);
            }
            schedule(core, &f.queue, &mut st);
            (delay, b)
        } else {
            (delay, None)
        }
    };
    if let Some(b) = gave_up {
        let err = error::deadline_error(b.last_error, b.maybe_written);
        complete(core, b, Err(err));
        return;
    }
    let core = core.clone();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        if refresh {
            let _ = core.refresh_metadata(now).await;
        }
        let mut st = f.queue.lock();
        st.in_flight = false;
        schedule(&core, &f.queue, &mut st);
    });
}

/// Exponential backoff with jitter for the `attempt`-th retry (1-based).
fn backoff_for(attempt: u32) -> Duration {
    let exp = RETRY_BACKOFF.saturating_mul(1 << attempt.min(10).saturating_sub(1));
    jitter(exp.min(RETRY_BACKOFF_MAX))
}

/// Between 80% and 120% of `d`.
pub fn jitter(d: Duration) -> Duration {
    d.mul_f64(rand::random_range(0.8..1.2))
}

/// Reconnect backoff state of one sender.
struct Backoff {
    next: Duration,
    min: Duration,
    max: Duration,
}

impl Backoff {
    fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            next: min,
            min,
            max,
        }
    }
    fn next(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        jitter(d)
    }
    fn reset(&mut self) {
        self.next = self.min;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_waits_less_than_we_do() {
        assert_eq!(broker_timeout_ms(Duration::from_secs(5)), 4000);
        assert_eq!(broker_timeout_ms(Duration::ZERO), 1);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let first = backoff_for(1);
        assert!(first >= RETRY_BACKOFF.mul_f64(0.8) && first <= RETRY_BACKOFF.mul_f64(1.2));
        let late = backoff_for(30);
        assert!(late <= RETRY_BACKOFF_MAX.mul_f64(1.2));
        assert!(late >= RETRY_BACKOFF_MAX.mul_f64(0.8));
    }
}
