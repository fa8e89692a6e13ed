//! The producer (stub; replaced by the kafka work).

use super::{Ack, ProduceError, ProducerConfig, Record};

pub struct Producer {
    _config: ProducerConfig,
}

impl Producer {
    /// Bootstrap: connect, negotiate versions, load metadata.
    pub async fn connect(config: ProducerConfig) -> Result<Producer, ProduceError> {
        Ok(Producer { _config: config })
    }

    /// Produce one record and wait for its acknowledgement.
    pub async fn send(&self, _topic: &str, _record: Record) -> Result<Ack, ProduceError> {
        Err(ProduceError::Unavailable("not implemented".into()))
    }

    /// Produce many records (possibly to several topics); records sharing a partition go
    /// out in the same batch. Results come back in input order.
    pub async fn send_all(&self, items: Vec<(String, Record)>) -> Vec<Result<Ack, ProduceError>> {
        let mut out = Vec::with_capacity(items.len());
        for (t, r) in items {
            out.push(self.send(&t, r).await);
        }
        out
    }

    /// Age of the metadata snapshot, `None` before the first load.
    pub fn metadata_age(&self) -> Option<std::time::Duration> {
        None
    }

    /// Wait until everything appended so far is acknowledged or failed.
    pub async fn flush(&self) {}
}
