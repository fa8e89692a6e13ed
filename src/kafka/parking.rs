//! The parking lot: partition queues with data whose leader is unknown (being
//! elected, topic being created or deleted) or that wait for a fresh producer id.
//! One task refreshes metadata, fails what can no longer be delivered (topic gone,
//! partition gone, deadline passed) and routes the rest again.
//!
//! References: Java `Sender` / `RecordAccumulator.ready` (partitions with unknown
//! leaders trigger a metadata update); KIP-91 (delivery timeout).

use std::sync::Arc;
use std::time::Instant;

use super::accumulator::{Batch, PartitionQueue};
use super::error::{self, classify, Disposition, ProduceError};
use super::metadata::{Cluster, TopicInfo};
use super::producer::Core;
use super::sender::{complete, jitter, schedule, RETRY_BACKOFF};

/// The parking lot: partitions without a known leader wait here until a metadata
/// refresh routes them again, or until we learn that the topic or partition is gone.
pub async fn run(core: Arc<Core>) {
    let mut shutdown = core.shutdown_signal();
    loop {
        tokio::select! {
            _ = core.parked_notify.notified() => {}
            _ = shutdown.changed() => return,
        }
        loop {
            let parked = core.take_parked();
            if parked.is_empty() {
                break;
            }
            let cluster = match core.refresh_metadata(Instant::now()).await {
                Ok(c) => c,
                Err(_) => core.metadata.snapshot(),
            };
            for queue in parked {
                let doomed = {
                    let mut st = queue.lock();
                    st.scheduled = false;
                    let mut doomed: Vec<(Batch, ProduceError)> = Vec::new();
                    let mut expired = Vec::new();
                    st.take_expired(Instant::now(), &mut expired);
                    for b in expired {
                        // No leader (or no producer id) in time: unavailable.
                        let e = error::deadline_error(b.last_error, b.maybe_written);
                        doomed.push((b, e));
                    }
                    if let Some(err) = partition_gone(&cluster, &queue) {
                        doomed.extend(st.take_all_idle().into_iter().map(|b| (b, err.clone())));
                    }
                    schedule(&core, &queue, &mut st);
                    doomed
                };
                for (b, e) in doomed {
                    complete(&core, b, Err(e));
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(jitter(RETRY_BACKOFF * 2)) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// The final error for a partition's waiting batches when metadata says it cannot
/// exist; `None` while it may still get a leader.
fn partition_gone(cluster: &Cluster, q: &PartitionQueue) -> Option<ProduceError> {
    match cluster.topics.get(&q.topic)? {
        TopicInfo::Error(error::UNKNOWN_TOPIC_OR_PARTITION) => {
            Some(ProduceError::UnknownTopic(q.topic.clone()))
        }
        TopicInfo::Error(code) => match classify(*code, &q.topic) {
            Disposition::Fail(e) => Some(e),
            Disposition::Retry { .. } | Disposition::Restamp => None,
        },
        TopicInfo::Ready(parts) => {
            let count = i32::try_from(parts.len()).unwrap_or(i32::MAX);
            (q.partition >= count).then_some(ProduceError::InvalidPartition {
                partition: q.partition,
                count,
            })
        }
    }
}
