//! Producer settings.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    #[default]
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// Bootstrap addresses, `host:port`.
    pub bootstrap: Vec<String>,
    pub client_id: String,
    /// -1 (all), 1 or 0 is not allowed (we must know offsets).
    pub acks: i16,
    pub compression: Compression,
    pub linger: Duration,
    pub max_batch_bytes: usize,
    pub max_request_bytes: usize,
    pub max_in_flight: usize,
    pub connections_per_broker: usize,
    pub request_timeout: Duration,
    pub delivery_timeout: Duration,
    pub metadata_refresh: Duration,
    /// Bytes allowed to wait for Kafka before new records are refused.
    pub buffer_memory: usize,
    /// Idempotent producer (KIP-98): a resent batch cannot be written twice. Needs
    /// acks=all (-1); ignored otherwise. Off only for brokers that refuse it.
    pub idempotence: bool,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            bootstrap: vec!["127.0.0.1:9092".into()],
            client_id: "kafka-webhook".into(),
            acks: -1,
            compression: Compression::None,
            linger: Duration::ZERO,
            max_batch_bytes: 1024 * 1024,
            max_request_bytes: 4 * 1024 * 1024,
            max_in_flight: 5,
            connections_per_broker: 1,
            request_timeout: Duration::from_secs(5),
            delivery_timeout: Duration::from_secs(8),
            metadata_refresh: Duration::from_secs(30),
            buffer_memory: 64 * 1024 * 1024,
            idempotence: true,
        }
    }
}
