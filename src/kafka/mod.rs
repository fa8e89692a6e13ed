//! Our minimal Kafka producer: cluster metadata, pooled pipelined broker connections,
//! Java-compatible partitioner, per-partition batches, and record batch encoding.
//! It knows nothing of HTTP; `api` maps [`ProduceError`] to statuses.
//!
//! Layers, lowest first: `protocol` (pure request building and response reading),
//! `connection` (one socket and its buffers), `metadata` (cluster snapshot), `idempotence`
//! (producer ids and sequences), `topics` (name rules, partition count, partition
//! choice), `accumulator` (per-partition batches and their waiters), `sender` (the
//! task that owns a connection: requests out, responses in, retries), `parking`
//! (partitions without a leader), `stats`, and `producer` (the public handle).
//! `record_batch` and `partitioner` are the wire format of a batch and the
//! Java-compatible key hash.
//!
//! References: Kafka protocol guide (<https://kafka.apache.org/protocol>); KIP-98
//! (idempotent producer); KIP-91 (delivery timeout); KIP-480 (sticky partitioner);
//! KIP-951 (leader hints); influxdata/rskafka for the layering.

mod accumulator;
pub mod config;
mod connection;
pub mod error;
mod idempotence;
mod metadata;
mod parking;
pub mod partitioner;
pub mod producer;
mod protocol;
pub mod record;
pub mod record_batch;
mod sender;
pub mod stats;
mod topics;

/// Pure request-writing and response-reading functions, reached by benches, fuzz targets
/// and the protocol tests through the `unstable-fuzzing` feature. Not public API.
#[cfg(feature = "unstable-fuzzing")]
pub mod fuzzing {
    pub use super::protocol::{
        correlation_id, decode_response, encode_request, produce_node_endpoints, produce_result,
        topic_name, PartitionResult, ProduceHead, ProduceRequestBuilder, Request,
    };
}

pub use config::{Compression, ProducerConfig};
pub use error::ProduceError;
pub use producer::Producer;
pub use record::{Ack, Record, RecordHeader, RecordHeaders};
pub use stats::{ProducerStats, StatsSnapshot};
pub use topics::validate_topic;
