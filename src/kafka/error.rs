//! Producer errors, and the one place where a Kafka error code is classified.
//!
//! `api::error` maps each [`ProduceError`] variant to exactly one HTTP status.
//! [`classify`] decides, for every error code a broker can put into a Produce or
//! Metadata response, whether the producer retries (and whether it must refresh its
//! metadata first) or gives up with a final [`ProduceError`].
//!
//! References: Kafka protocol guide, "Error Codes"
//! (<https://kafka.apache.org/protocol#protocol_error_codes>); `Errors.java` and
//! `Sender.canRetry` in apache/kafka for which codes the Java producer retries.

use std::sync::Arc;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ProduceError {
    #[error("topic '{0}' does not exist")]
    UnknownTopic(Arc<str>),
    #[error("illegal topic name '{0}'")]
    InvalidTopic(Arc<str>),
    #[error("partition {partition} does not exist (topic has {count})")]
    InvalidPartition { partition: i32, count: i32 },
    #[error("record is too large for the broker")]
    RecordTooLarge,
    #[error("not authorized to write to the topic")]
    Authorization,
    #[error("the broker rejected the record: {0}")]
    InvalidRecord(Arc<str>),
    #[error("Kafka is unavailable: {0}")]
    Unavailable(Arc<str>),
    #[error("Kafka did not answer in time")]
    Timeout,
    #[error("too much data is waiting for Kafka")]
    Backpressure,
    #[error("the producer is shutting down")]
    ShuttingDown,
    #[error("Kafka error {name} ({code})")]
    Broker { code: i16, name: &'static str },
}

/// What the producer does with a batch whose partition got an error code.
#[derive(Debug, Clone)]
pub(crate) enum Disposition {
    /// Send the batch again (after a backoff) while its delivery deadline allows.
    Retry {
        /// The error says our view of leaders or topics is stale.
        refresh_metadata: bool,
        /// The broker may have appended the batch although it answered with an
        /// error (e.g. NOT_ENOUGH_REPLICAS_AFTER_APPEND): a resend could duplicate,
        /// so a final failure must be reported as "unknown outcome" (Timeout).
        maybe_written: bool,
    },
    /// The broker does not know our idempotent producer state for this partition
    /// (it expired, or a batch we gave up on left a gap): the batch was not appended.
    /// Resend it under a fresh producer id (KIP-360).
    Restamp,
    /// Give up: every record of the batch fails with this error.
    Fail(ProduceError),
}

// Kafka error codes we treat specially (Errors.java).
pub(crate) const CORRUPT_MESSAGE: i16 = 2;
pub(crate) const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
pub(crate) const LEADER_NOT_AVAILABLE: i16 = 5;
pub(crate) const NOT_LEADER_OR_FOLLOWER: i16 = 6;
pub(crate) const REQUEST_TIMED_OUT: i16 = 7;
pub(crate) const MESSAGE_TOO_LARGE: i16 = 10;
pub(crate) const INVALID_TOPIC_EXCEPTION: i16 = 17;
pub(crate) const RECORD_LIST_TOO_LARGE: i16 = 18;
pub(crate) const NOT_ENOUGH_REPLICAS_AFTER_APPEND: i16 = 20;
pub(crate) const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
pub(crate) const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
pub(crate) const INVALID_TIMESTAMP: i16 = 32;
pub(crate) const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
pub(crate) const DUPLICATE_SEQUENCE_NUMBER: i16 = 46;
pub(crate) const INVALID_PRODUCER_EPOCH: i16 = 47;
pub(crate) const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i16 = 53;
pub(crate) const UNKNOWN_PRODUCER_ID: i16 = 59;
pub(crate) const INVALID_RECORD: i16 = 87;

/// Classifies one Kafka error code (never 0) from a Produce response partition or a
/// Metadata response topic/partition. This is the only place that decides what is
/// retried; keep it that way so the behaviour can be read in one screen.
pub(crate) fn classify(code: i16, topic: &Arc<str>) -> Disposition {
    let retry = |refresh_metadata, maybe_written| Disposition::Retry {
        refresh_metadata,
        maybe_written,
    };
    match code {
        // Our picture of the cluster is stale: leader moved, topic being created or
        // deleted, replica offline. Refresh metadata, then resend.
        UNKNOWN_TOPIC_OR_PARTITION | LEADER_NOT_AVAILABLE | NOT_LEADER_OR_FOLLOWER => {
            retry(true, false)
        }
        // REPLICA_NOT_AVAILABLE, KAFKA_STORAGE_ERROR, FENCED_LEADER_EPOCH,
        // UNKNOWN_LEADER_EPOCH, OFFLINE? (KIP-320, KIP-112)
        9 | 56 | 74 | 75 => retry(true, false),
        // The leader appended but replication did not complete in time: the records
        // may be in the log (KIP-98 discussion of acks=all timeouts).
        REQUEST_TIMED_OUT | NOT_ENOUGH_REPLICAS_AFTER_APPEND => retry(false, true),
        // NETWORK_EXCEPTION, NOT_ENOUGH_REPLICAS (nothing appended),
        // BROKER_NOT_AVAILABLE, CONCURRENT_TRANSACTIONS, THROTTLING_QUOTA_EXCEEDED.
        13 => retry(true, true),
        19 | 8 | 51 | 89 => retry(false, false),
        OUT_OF_ORDER_SEQUENCE_NUMBER | UNKNOWN_PRODUCER_ID | INVALID_PRODUCER_EPOCH => {
            Disposition::Restamp
        }
        MESSAGE_TOO_LARGE | RECORD_LIST_TOO_LARGE => {
            Disposition::Fail(ProduceError::RecordTooLarge)
        }
        TOPIC_AUTHORIZATION_FAILED | CLUSTER_AUTHORIZATION_FAILED => {
            Disposition::Fail(ProduceError::Authorization)
        }
        CORRUPT_MESSAGE | INVALID_TIMESTAMP | INVALID_RECORD => {
            Disposition::Fail(ProduceError::InvalidRecord(error_name(code).into()))
        }
        INVALID_TOPIC_EXCEPTION => Disposition::Fail(ProduceError::InvalidTopic(topic.clone())),
        _ => match kafka_protocol::ResponseError::try_from_code(code) {
            Some(e) if e.is_retriable() => retry(false, false),
            _ => Disposition::Fail(ProduceError::Broker {
                code,
                name: error_name(code),
            }),
        },
    }
}

/// The final error for a batch that ran out of delivery time while still retrying.
/// `maybe_written` means some attempt may have reached the log, so we must not
/// claim "not written" (Unavailable); we say we do not know (Timeout).
pub(crate) fn deadline_error(last_code: Option<i16>, maybe_written: bool) -> ProduceError {
    if maybe_written {
        return ProduceError::Timeout;
    }
    match last_code {
        Some(UNKNOWN_TOPIC_OR_PARTITION) => ProduceError::Unavailable(
            "topic or partition unknown to its leader (being created or deleted)".into(),
        ),
        Some(code) => ProduceError::Unavailable(error_name(code).into()),
        None => {
            ProduceError::Unavailable("no broker reachable before the delivery deadline".into())
        }
    }
}

/// Kafka's name for an error code, for messages and metrics labels.
pub(crate) fn error_name(code: i16) -> &'static str {
    match code {
        -1 => "UNKNOWN_SERVER_ERROR",
        0 => "NONE",
        CORRUPT_MESSAGE => "CORRUPT_MESSAGE",
        UNKNOWN_TOPIC_OR_PARTITION => "UNKNOWN_TOPIC_OR_PARTITION",
        LEADER_NOT_AVAILABLE => "LEADER_NOT_AVAILABLE",
        NOT_LEADER_OR_FOLLOWER => "NOT_LEADER_OR_FOLLOWER",
        REQUEST_TIMED_OUT => "REQUEST_TIMED_OUT",
        8 => "BROKER_NOT_AVAILABLE",
        9 => "REPLICA_NOT_AVAILABLE",
        MESSAGE_TOO_LARGE => "MESSAGE_TOO_LARGE",
        13 => "NETWORK_EXCEPTION",
        INVALID_TOPIC_EXCEPTION => "INVALID_TOPIC_EXCEPTION",
        RECORD_LIST_TOO_LARGE => "RECORD_LIST_TOO_LARGE",
        19 => "NOT_ENOUGH_REPLICAS",
        NOT_ENOUGH_REPLICAS_AFTER_APPEND => "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
        21 => "INVALID_REQUIRED_ACKS",
        TOPIC_AUTHORIZATION_FAILED => "TOPIC_AUTHORIZATION_FAILED",
        CLUSTER_AUTHORIZATION_FAILED => "CLUSTER_AUTHORIZATION_FAILED",
        INVALID_TIMESTAMP => "INVALID_TIMESTAMP",
        35 => "UNSUPPORTED_VERSION",
        37 => "INVALID_PARTITIONS",
        42 => "INVALID_REQUEST",
        43 => "UNSUPPORTED_FOR_MESSAGE_FORMAT",
        44 => "POLICY_VIOLATION",
        OUT_OF_ORDER_SEQUENCE_NUMBER => "OUT_OF_ORDER_SEQUENCE_NUMBER",
        DUPLICATE_SEQUENCE_NUMBER => "DUPLICATE_SEQUENCE_NUMBER",
        INVALID_PRODUCER_EPOCH => "INVALID_PRODUCER_EPOCH",
        51 => "CONCURRENT_TRANSACTIONS",
        TRANSACTIONAL_ID_AUTHORIZATION_FAILED => "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
        56 => "KAFKA_STORAGE_ERROR",
        UNKNOWN_PRODUCER_ID => "UNKNOWN_PRODUCER_ID",
        74 => "FENCED_LEADER_EPOCH",
        75 => "UNKNOWN_LEADER_EPOCH",
        76 => "UNSUPPORTED_COMPRESSION_TYPE",
        INVALID_RECORD => "INVALID_RECORD",
        89 => "THROTTLING_QUOTA_EXCEEDED",
        90 => "PRODUCER_FENCED",
        _ => "UNKNOWN",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify(code: i16) -> Disposition {
        super::classify(code, &Arc::from("t"))
    }

    #[test]
    fn leadership_errors_refresh_metadata() {
        for code in [3, 5, 6, 74] {
            assert!(
                matches!(
                    classify(code),
                    Disposition::Retry {
                        refresh_metadata: true,
                        ..
                    }
                ),
                "{code}"
            );
        }
    }

    #[test]
    fn final_errors_map_to_variants() {
        assert!(matches!(
            classify(10),
            Disposition::Fail(ProduceError::RecordTooLarge)
        ));
        assert!(matches!(
            classify(18),
            Disposition::Fail(ProduceError::RecordTooLarge)
        ));
        assert!(matches!(
            classify(29),
            Disposition::Fail(ProduceError::Authorization)
        ));
        for code in [2, 32, 87] {
            assert!(matches!(
                classify(code),
                Disposition::Fail(ProduceError::InvalidRecord(_))
            ));
        }
        assert!(matches!(
            classify(76),
            Disposition::Fail(ProduceError::Broker {
                code: 76,
                name: "UNSUPPORTED_COMPRESSION_TYPE"
            })
        ));
    }

    #[test]
    fn lost_producer_state_restamps() {
        for code in [45, 47, 59] {
            assert!(matches!(classify(code), Disposition::Restamp), "{code}");
        }
    }

    #[test]
    fn replication_timeouts_may_have_written() {
        assert!(matches!(
            classify(20),
            Disposition::Retry {
                refresh_metadata: false,
                maybe_written: true
            }
        ));
        assert!(matches!(
            deadline_error(Some(20), true),
            ProduceError::Timeout
        ));
        assert!(matches!(
            deadline_error(Some(19), false),
            ProduceError::Unavailable(_)
        ));
    }
}
