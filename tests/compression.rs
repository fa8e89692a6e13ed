//! `--compression` end to end: webhooks through a proxy set to each codec are read back
//! exactly by Kafka's own console consumer (Java decompression) and by rskafka.

mod common;

use common::*;

#[tokio::test]
async fn every_codec_through_the_proxy() {
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        let proxy = Proxy::start(&["--compression", codec]);
        let topic = unique_topic(&format!("t-codec-{codec}"));
        let mut values = Vec::new();
        for i in 0..3 {
            // Compressible and not: a repeated text and some varied bytes.
            let value = format!("{codec}-{i}-{}", "event data ".repeat(50 * (i + 1)));
            let raw = build(
                "POST",
                &format!("/webhook?topic={topic}&user=myuser&pass=mypass"),
                "X-Codec: yes\r\n",
                value.as_bytes(),
            );
            let r = request(proxy.addr, &raw).await;
            assert_eq!(
                r.status,
                200,
                "{codec}: {}",
                String::from_utf8_lossy(&r.body)
            );
            values.push(value);
        }
        // The batches on the wire really were compressed: far fewer bytes than the values.
        let admin = proxy.admin.expect("admin");
        let m = request(admin, &build("GET", "/metrics", "", b"")).await;
        let text = String::from_utf8_lossy(&m.body).into_owned();
        let sent: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix("kafka_webhook_producer_batch_bytes_acked_total "))
            .and_then(|v| v.trim().parse().ok())
            .expect("batch bytes metric");
        let raw: usize = values.iter().map(String::len).sum();
        assert!(
            (sent as usize) < raw / 3,
            "{codec}: {sent} batch bytes for {raw} value bytes"
        );
        let recs = read_records(&topic, 0, 0, 3).await;
        for (r, v) in recs.iter().zip(&values) {
            assert_eq!(r.record.value.as_deref(), Some(v.as_bytes()), "{codec}");
        }
        let lines = console_records(&topic, 0, 0, 3);
        let expected: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, v)| format!("Partition:0\tOffset:{i}\tX-Codec:yes\tnull\t{v}"))
            .collect();
        assert_eq!(lines, expected, "{codec}");
    }
}
