//! Compression of a batch's records section, with the codecs Kafka's Java client uses.
//!
//! The whole records section (everything after the 61-byte header) is compressed as one
//! stream; the header stays uncompressed and its attributes name the codec. Gzip is RFC 1952,
//! Snappy is xerial's framed "snappy-java" stream, LZ4 is the LZ4 *frame* format, Zstd is a
//! standard zstd frame: the kafka-protocol crate's compressors produce exactly these.
//!
//! References: Kafka protocol guide, "Record Batch" (attributes bits 0-2: 0 none, 1 gzip,
//! 2 snappy, 3 lz4, 4 zstd); KIP-57 (LZ4 frame format for magic >= 1); KIP-110 (zstd).

use bytes::BytesMut;
use kafka_protocol::compression::{Compressor, Gzip, Lz4, Snappy, Zstd};

use super::EncodeError;
use crate::kafka::Compression;

/// The codec's number in the batch attributes (bits 0-2).
pub(super) fn codec_id(codec: Compression) -> i16 {
    match codec {
        Compression::None => 0,
        Compression::Gzip => 1,
        Compression::Snappy => 2,
        Compression::Lz4 => 3,
        Compression::Zstd => 4,
    }
}

fn codec_name(codec: Compression) -> &'static str {
    match codec {
        Compression::None => "none",
        Compression::Gzip => "gzip",
        Compression::Snappy => "snappy",
        Compression::Lz4 => "lz4",
        Compression::Zstd => "zstd",
    }
}

/// Appends the compressed form of `records` to `out`. `records` is handed to the codec as
/// it is (moved, not copied).
pub(super) fn compress(
    codec: Compression,
    records: BytesMut,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    // The codec takes the records buffer itself instead of a copy of it.
    let result = match codec {
        Compression::None => {
            out.unsplit(records);
            Ok(())
        }
        Compression::Gzip => Gzip::compress(out, |input: &mut BytesMut| {
            *input = records;
            Ok(())
        }),
        Compression::Snappy => Snappy::compress(out, |input: &mut BytesMut| {
            *input = records;
            Ok(())
        }),
        Compression::Lz4 => Lz4::compress(out, |input: &mut BytesMut| {
            *input = records;
            Ok(())
        }),
        Compression::Zstd => Zstd::compress(out, |input: &mut BytesMut| {
            *input = records;
            Ok(())
        }),
    };
    result.map_err(|e| EncodeError::Compression {
        codec: codec_name(codec),
        message: format!("{e:#}"),
    })
}
