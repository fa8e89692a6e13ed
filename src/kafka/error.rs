//! Producer errors. `api::error` maps each variant to exactly one HTTP status.

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
