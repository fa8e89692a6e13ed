//! Kafka wire tests live in tests/.
