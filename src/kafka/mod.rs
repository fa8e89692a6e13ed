//! Our minimal Kafka producer: cluster metadata, pooled pipelined broker connections,
//! Java-compatible partitioner, per-partition batches, and record batch encoding.
//! It knows nothing of HTTP; `api` maps [`ProduceError`] to statuses.

pub mod config;
pub mod error;
pub mod partitioner;
pub mod producer;
pub mod record;
pub mod record_batch;

pub use config::{Compression, ProducerConfig};
pub use error::ProduceError;
pub use producer::Producer;
pub use record::{Ack, Record, RecordHeader};
