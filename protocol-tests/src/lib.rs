//! Test support for the Kafka wire tests in `tests/`: nothing here ships.
//!
//! - [`records`]: record sets described once, encoded by our `BatchBuilder`, by Kafka's Java
//!   `MemoryRecordsBuilder` (via `java/GoldenBatch.java`) and by kafka-protocol, and rendered
//!   in the one text form the Java helpers print, so comparisons are plain string equality.
//! - [`kafka_script`]: the repository's `scripts/kafka` (Java classpath, broker, CLI tools).
//! - [`raw_client`]: a deliberately tiny Kafka client (one socket, one request at a time) that
//!   sends our batches in ProduceRequests, independent of the producer runtime under test.
//!
//! References: Kafka protocol guide (<https://kafka.apache.org/protocol>), "Record Batch"
//! (<https://kafka.apache.org/documentation/#recordbatch>); KIP-82 (headers); KIP-98.

#![allow(clippy::unwrap_used)] // test support: a panic is a test failure with a message

pub mod kafka_script;
pub mod raw_client;
pub mod records;
