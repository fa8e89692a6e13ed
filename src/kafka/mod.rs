//! Our minimal Kafka producer: cluster metadata, pooled pipelined broker connections,
//! Java-compatible partitioner, per-partition batches, and record batch encoding.
//! It knows nothing of HTTP; `api` maps [`ProduceError`] to statuses.
//!
//! Layers, lowest first: `protocol` (pure request building and response reading),
//! `connection` (one pipelined socket), `metadata` (cluster snapshot), `accumulator`
//! (per-partition batches and their waiters), `sender` (per-connection drain loop,
//! retries), `producer` (the public handle).

mod accumulator;
pub mod config;
mod connection;
pub mod error;
mod idempotence;
mod metadata;
pub mod partitioner;
pub mod producer;
mod protocol;
pub mod record;
pub mod record_batch;
mod sender;
pub mod stats;

/// Pure response-reading functions, reached by benches and fuzz targets through the
/// `unstable-fuzzing` feature. Not public API.
#[cfg(feature = "unstable-fuzzing")]
pub mod fuzzing {
    pub use super::protocol::{decode_response, produce_results, PartitionResult, Request};
}

pub use config::{Compression, ProducerConfig};
pub use error::ProduceError;
pub use producer::Producer;
pub use record::{Ack, Record, RecordHeader};
pub use stats::{ProducerStats, StatsSnapshot};
