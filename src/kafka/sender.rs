//! The per-connection sender: drains ready partitions into ProduceRequests, owns the
//! connection they go out on, and settles each batch from its response.
//!
//! Every pool slot — (broker id, connection index) — has one sender task with a list
//! of partition queues that have data. Whenever its connection has a free in-flight
//! slot (`max_in_flight`), the sender takes the front batch of every listed partition
//! (up to `max_request_bytes`) and encodes them as one ProduceRequest (kafka-protocol)
//! into the connection's write buffer. The same task reads the responses,
//! matches each to its request by correlation id (Kafka answers in order on a
//! connection; an answer out of order still finds its request) and settles each batch:
//! acknowledge, retry after a backoff (refreshing metadata when the error says our view
//! is stale), or fail. A request not answered within `request_timeout`, or any I/O or
//! framing error, ends the connection: every batch in flight on it is retried (it may or
//! may not have been appended) and the next batch opens a new connection.
//!
//! One task per connection, and the lists it works with (the ProduceRequest message
//! included) reused from one request to the next, so a warm sender allocates only a
//! copy of each batch's records per request, and the decoded response's lists.
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

use bytes::BytesMut;
use kafka_protocol::messages::ProduceRequest;
use tokio::sync::{watch, Notify};

use super::accumulator::{Batch, BatchAck, PartitionQueue, QueueState};
use super::connection::{ConnError, Connection};
use super::error::{self, classify, Disposition, ProduceError};
use super::idempotence::Stamp;
use super::metadata::Cluster;
use super::producer::Core;
use super::protocol::{
    self, NodeEndpoint, PartitionResult, ProduceHead, ProduceRequestBuilder, ProtocolError,
};
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

    /// Moves the ready list into `into` (both keep their memory).
    fn take_ready(&self, into: &mut VecDeque<Arc<PartitionQueue>>) {
        into.append(&mut self.ready.lock().unwrap_or_else(|e| e.into_inner()));
    }

    fn is_idle(&self) -> bool {
        self.ready
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }

    /// Puts `queues` back at the front of the ready list, in order, ahead of any that
    /// arrived meanwhile.
    fn put_back(&self, queues: &mut VecDeque<Arc<PartitionQueue>>) {
        if queues.is_empty() {
            return;
        }
        let mut ready = self.ready.lock().unwrap_or_else(|e| e.into_inner());
        for queue in queues.drain(..).rev() {
            ready.push_front(queue);
        }
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

/// Called after an append: wakes the sender when the front batch it holds back for
/// `linger` is due (or no longer the only batch). Under load records arrive far more
/// often than the runtime's millisecond timer ticks, so a sub-millisecond linger ends
/// on time instead of at the next tick.
pub fn end_linger(core: &Arc<Core>, queue: &PartitionQueue, st: &mut QueueState, now: Instant) {
    let Some(until) = st.linger_until else {
        return;
    };
    if until > now && st.batches.len() < 2 {
        return;
    }
    st.linger_until = None;
    if let Some(leader) = core
        .metadata
        .snapshot()
        .leader(&queue.topic, queue.partition)
    {
        core.sender_for(leader, queue.partition).notify.notify_one();
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

/// A batch taken for a request: its queue (the batch is the queue's front, marked in
/// flight).
pub struct InFlight {
    queue: Arc<PartitionQueue>,
}

/// A ProduceRequest queued or written, and not yet answered.
struct Outstanding {
    correlation_id: i32,
    queued: Instant,
    /// Past this, the connection is given up (`request_timeout`).
    deadline: Instant,
    batches: Vec<InFlight>,
}

/// What a sender keeps from one request to the next: its requests in flight and the
/// lists it works with, emptied after each use but keeping their memory.
#[derive(Default)]
struct Work {
    /// Requests on the current connection, oldest first.
    outstanding: VecDeque<Outstanding>,
    /// Batch lists of settled requests, for the next ones.
    spare_lists: Vec<Vec<InFlight>>,
    ready: VecDeque<Arc<PartitionQueue>>,
    leftover: VecDeque<Arc<PartitionQueue>>,
    expired: Vec<Batch>,
    failed: Vec<(Batch, ProduceError)>,
    request: ProduceRequestBuilder,
    /// When the last ProduceRequest went out (any connection of this slot).
    last_sent: Option<Instant>,
}

/// One sender task: runs until the producer shuts down.
pub async fn run(core: Arc<Core>, me: Arc<SenderHandle>) {
    let mut conn: Option<Connection> = None;
    let mut generation = 0u64;
    let mut reconnect = Backoff::new(RECONNECT_BACKOFF, RECONNECT_BACKOFF_MAX);
    let mut shutdown = core.shutdown_signal();
    let mut work = Work::default();
    loop {
        if let Some(live) = conn.as_mut() {
            match drive(&core, &me, live, &mut work, &mut shutdown).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::debug!(
                        error = %e,
                        generation = live.generation,
                        requests = work.outstanding.len(),
                        "produce connection lost"
                    );
                    conn = None;
                    work.connection_lost(&core);
                }
            }
            continue;
        }
        if *shutdown.borrow() {
            return; // the connection is gone, and with it what was in flight
        }
        if me.is_idle() {
            tokio::select! {
                _ = me.notify.notified() => {}
                _ = shutdown.changed() => return,
            }
            continue;
        }
        generation += 1;
        match open(&core, &me, generation).await {
            Ok(c) => {
                core.broker_reachable(me.broker, true);
                reconnect.reset();
                conn = Some(c);
            }
            Err(e) => {
                // A broker that accepts connections but never answers (paused,
                // overloaded) "did not answer in time"; one that refuses them
                // is "unavailable".
                let unreachable = !matches!(e, Some(ConnError::Timeout(_)));
                core.broker_reachable(me.broker, false);
                let next_deadline = reroute(&core, &me, &mut work, unreachable);
                let mut wait = reconnect.next();
                if let Some(d) = next_deadline {
                    wait = wait.min(d.saturating_duration_since(Instant::now()));
                }
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.changed() => return,
                }
            }
        }
    }
}

/// Runs one connection: sends what is ready while in-flight slots are free, and settles
/// responses as they come. `Ok` when the producer shuts down and nothing is in flight
/// any more; otherwise the error that ended the connection (with the requests still in
/// flight on it left in `work`).
///
/// Kept whole: it is the loop every request goes through, and its branches share the
/// in-flight state.
async fn drive(
    core: &Arc<Core>,
    me: &SenderHandle,
    conn: &mut Connection,
    work: &mut Work,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), ConnError> {
    let max_in_flight = core.config.max_in_flight.max(1);
    let mut closing = *shutdown.borrow();
    loop {
        let mut linger_until = None;
        while !closing && work.outstanding.len() < max_in_flight {
            let mut taken = work.spare_lists.pop().unwrap_or_default();
            linger_until = drain(core, me, work, &mut taken);
            if taken.is_empty() {
                work.spare_lists.push(taken);
                break;
            }
            work.send(core, conn, taken);
        }
        if closing && work.outstanding.is_empty() {
            return Ok(());
        }
        // The oldest request times out first: all share one timeout.
        let timeout = work.outstanding.front().map(|r| r.deadline);
        let wake = match (timeout, linger_until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let free_slot = !closing && work.outstanding.len() < max_in_flight;
        tokio::select! {
            io = conn.io() => {
                io?;
                work.settle_responses(core, conn)?;
            }
            // Woken by an append. Tokio would run us next (a task woken by the running
            // one takes its LIFO slot), ahead of connection tasks that already hold
            // requests; yielding once lets them append first (resumed once the runtime
            // has run what was ready and polled for I/O). Measured: p99 at half the peak
            // from 4 to 57 ms down to 3 to 4 ms (docs/producer.md).
            _ = me.notify.notified(), if free_slot => tokio::task::yield_now().await,
            _ = tokio::time::sleep_until(wake.unwrap_or_else(Instant::now).into()), if wake.is_some() => {
                if timeout.is_some_and(|t| t <= Instant::now()) {
                    return Err(ConnError::Timeout(conn.addr().clone()));
                }
            }
            // Stop taking new batches, but see the requests in flight through.
            _ = shutdown.changed(), if !closing => closing = true,
        }
    }
}

impl Work {
    /// Writes the batches in `taken` as one ProduceRequest into the connection's write
    /// buffer, and counts it in flight.
    fn send(&mut self, core: &Arc<Core>, conn: &mut Connection, mut taken: Vec<InFlight>) {
        // The request nests partitions under their topic: sorted, each finds its topic
        // at once.
        taken.sort_unstable_by(|a, b| a.queue.topic.cmp(&b.queue.topic));
        let (version, acks) = (conn.versions().produce, core.config.acks);
        let timeout_ms = broker_timeout_ms(core.config.request_timeout);
        let request = &mut self.request;
        let written = conn.queue_request(|buf, correlation_id, client_id| {
            let head = ProduceHead {
                version,
                correlation_id,
                client_id,
                acks,
                timeout_ms,
            };
            write_produce_request(buf, request, &head, &taken)
        });
        match written {
            Ok(correlation_id) => {
                core.stats.request_started();
                let queued = Instant::now();
                self.last_sent = Some(queued);
                self.outstanding.push_back(Outstanding {
                    correlation_id,
                    queued,
                    deadline: queued + conn.request_timeout(),
                    batches: taken,
                });
            }
            Err(e) => {
                // Only if an in-flight batch went missing, which nothing allows; nothing
                // was written, and the batches are tried again.
                tracing::warn!(error = %e, "could not write a produce request");
                for f in taken.drain(..) {
                    retry_or_fail(core, f, None, false, false);
                }
                self.spare_lists.push(taken);
            }
        }
    }

    /// Settles every request whose response is complete in the connection's buffer. An
    /// error (a response nobody asked for, or one we cannot read) ends the connection.
    fn settle_responses(
        &mut self,
        core: &Arc<Core>,
        conn: &mut Connection,
    ) -> Result<(), ConnError> {
        let version = conn.versions().produce;
        while let Some(frame) = conn.next_frame()? {
            let id = protocol::correlation_id(&frame)?;
            let Some(i) = self.outstanding.iter().position(|r| r.correlation_id == id) else {
                return Err(ProtocolError(
                    format!("response with unknown correlation id {id}").into(),
                )
                .into());
            };
            let response = protocol::decode_response::<ProduceRequest>(frame, version)?;
            let Some(request) = self.outstanding.remove(i) else {
                continue;
            };
            core.stats.request_finished();
            core.stats.request_answered(request.queued.elapsed());
            let endpoints = protocol::produce_node_endpoints(&response);
            let mut batches = request.batches;
            for f in batches.drain(..) {
                match protocol::produce_result(&response, &f.queue.topic, f.queue.partition) {
                    Some(r) => settle(core, f, &r, &endpoints),
                    // A broker that leaves a partition out of its answer is broken; treat
                    // it like a lost response.
                    None => retry_or_fail(core, f, None, true, true),
                }
            }
            self.spare_lists.push(batches);
        }
        Ok(())
    }

    /// The connection is gone: every batch in flight on it may or may not have been
    /// appended. Retry them all (after a metadata refresh: the broker may be gone).
    fn connection_lost(&mut self, core: &Arc<Core>) {
        while let Some(request) = self.outstanding.pop_front() {
            core.stats.request_finished();
            let mut batches = request.batches;
            for f in batches.drain(..) {
                retry_or_fail(core, f, None, true, true);
            }
            self.spare_lists.push(batches);
        }
    }
}

/// Encodes `taken` as one ProduceRequest into `buf`, taking each batch (shared, not
/// copied) from its queue, where it sits at the front, in flight, untouched by anyone
/// else. The request lets go of the batches once encoded, so an acknowledged batch's
/// buffer can serve its partition's next batch.
fn write_produce_request(
    buf: &mut BytesMut,
    request: &mut ProduceRequestBuilder,
    head: &ProduceHead<'_>,
    taken: &[InFlight],
) -> Result<(), ProtocolError> {
    for f in taken {
        let records = {
            let st = f.queue.lock();
            st.batches.front().and_then(Batch::encoded_bytes)
        };
        let Some(records) = records else {
            request.clear();
            return Err(ProtocolError("an in-flight batch is missing".into()));
        };
        request.push(&f.queue.topic_name, f.queue.partition, records);
    }
    request.encode(buf, head)
}

/// Connects this slot to its broker's current address. `Err(None)`: metadata no
/// longer lists the broker.
async fn open(
    core: &Arc<Core>,
    me: &SenderHandle,
    generation: u64,
) -> Result<Connection, Option<ConnError>> {
    let Some(addr) = core.metadata.snapshot().brokers.get(&me.broker).cloned() else {
        core.request_refresh();
        return Err(None);
    };
    let cfg = &core.config;
    match Connection::open(&addr, &cfg.client_id, cfg.request_timeout, generation).await {
        Ok(c) => {
            core.stats.connection_opened();
            tracing::debug!(broker = me.broker, %addr, generation, "connected");
            Ok(c)
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
fn reroute(
    core: &Arc<Core>,
    me: &SenderHandle,
    work: &mut Work,
    unreachable: bool,
) -> Option<Instant> {
    let now = Instant::now();
    let mut earliest: Option<Instant> = None;
    me.take_ready(&mut work.ready);
    while let Some(queue) = work.ready.pop_front() {
        let mut st = queue.lock();
        st.scheduled = false;
        st.take_expired(now, &mut work.expired);
        if let Some(d) = st.batches.iter().map(|b| b.deadline).min() {
            earliest = Some(earliest.map_or(d, |e| e.min(d)));
        }
        schedule(core, &queue, &mut st);
    }
    fail_expired(core, &mut work.expired, unreachable);
    earliest
}

/// Takes the front batch of every ready partition routed to this slot into `taken`, up
/// to the request size limit. Returns, if some partition is still lingering, when to
/// look again.
fn drain(
    core: &Arc<Core>,
    me: &SenderHandle,
    work: &mut Work,
    taken: &mut Vec<InFlight>,
) -> Option<Instant> {
    let now = Instant::now();
    let cluster = core.metadata.snapshot();
    let mut size = 0usize;
    let mut linger_until: Option<Instant> = None;
    me.take_ready(&mut work.ready);
    while let Some(queue) = work.ready.pop_front() {
        let mut st = queue.lock();
        st.scheduled = false;
        st.linger_until = None;
        if st.in_flight {
            continue; // rescheduled when its batch completes
        }
        st.take_expired(now, &mut work.expired);
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
            work.leftover.push_back(queue.clone());
            continue;
        }
        if let Some(until) = lingering(core, front, now, st.batches.len(), work.last_sent) {
            st.scheduled = true;
            st.linger_until = Some(until);
            work.leftover.push_back(queue.clone());
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
            (Some(stamp), true) => match front.restamp(stamp) {
                true => Ok(front.size_bytes()),
                false => Err(ProduceError::InvalidRecord(
                    "cannot restamp the batch".into(),
                )),
            },
            (stamp, _) => front
                .encode(
                    core.config.compression,
                    stamp.unwrap_or(ProducerIdentity::NONE),
                )
                .map_err(|e| ProduceError::InvalidRecord(e.to_string().into())),
        };
        match encoded {
            Ok(len) => {
                core.stats.batch_sent(count, retry);
                if !retry {
                    core.batch_left(&queue);
                }
                size += len;
                st.in_flight = true;
                taken.push(InFlight {
                    queue: queue.clone(),
                });
            }
            Err(e) => {
                if let Some(b) = st.batches.pop_front() {
                    st.seq.release(b.stamp, b.record_count, false);
                    work.failed.push((b, e));
                }
                schedule(core, &queue, &mut st);
            }
        }
    }
    me.put_back(&mut work.leftover);
    fail_expired(core, &mut work.expired, false);
    for (b, e) in work.failed.drain(..) {
        complete(core, b, Err(e));
    }
    linger_until
}

fn routed_here(core: &Core, cluster: &Cluster, me: &SenderHandle, q: &PartitionQueue) -> bool {
    cluster.leader(&q.topic, q.partition) == Some(me.broker)
        && core.slot_index(q.partition) == me.index
}

/// `Some(when)` if the front batch should wait for more records: for up to `linger`
/// after it opened, and only while the connection is busy (it sent a request within the
/// last `linger`). A record that finds the connection quiet goes out at once, so
/// lingering costs nothing at low rates; under load it turns many one-record requests
/// into a few larger ones, and a broker pays per request far more than per record.
fn lingering(
    core: &Core,
    front: &Batch,
    now: Instant,
    queued: usize,
    last_sent: Option<Instant>,
) -> Option<Instant> {
    let linger = core.config.linger;
    let busy = last_sent.is_some_and(|t| now.saturating_duration_since(t) < linger);
    if !busy || queued > 1 || front.is_encoded() || front.attempts > 0 {
        return None;
    }
    let until = front.created + linger;
    (until > now && front.size_bytes() < core.config.max_batch_bytes).then_some(until)
}

/// Fails batches whose delivery deadline passed before they could be (re)sent.
/// `unreachable`: the broker refused connections or has no leader for them, so a
/// batch that never reached it is reported Unavailable; otherwise (the broker is slow
/// or silent) we report Timeout.
fn fail_expired(core: &Core, expired: &mut Vec<Batch>, unreachable: bool) {
    for b in expired.drain(..) {
        let err = match (b.last_error, unreachable) {
            (Some(_), _) | (None, true) => error::deadline_error(b.last_error, b.maybe_written),
            (None, false) => ProduceError::Timeout,
        };
        complete(core, b, Err(err));
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
fn settle(core: &Arc<Core>, f: InFlight, r: &PartitionResult, endpoints: &[NodeEndpoint]) {
    if r.error_code == 0 {
        let batch = {
            let mut st = f.queue.lock();
            st.in_flight = false;
            let b = st.pop_acknowledged();
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
