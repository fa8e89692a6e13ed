//! Request bodies: how long a body is (decided from the head, see `head.rs`) and taking it
//! out of the connection's read buffer as one `Bytes`, zero-copy for `Content-Length`
//! bodies and de-chunked in place for chunked ones.
//!
//! References: RFC 9112 §6 (message body), §6.3 (message body length), §7.1 (chunked).

use super::chunked::{ChunkedDecoder, Progress};
use super::error::RequestError;
use bytes::{Buf, Bytes, BytesMut};

/// How the body of a request is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// Exactly this many bytes follow the head (no framing headers means 0).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

impl BodyFraming {
    /// True when the request has no body at all.
    pub fn is_empty(&self) -> bool {
        *self == BodyFraming::Length(0)
    }
}

/// Takes one body out of a read buffer, across as many reads as it takes.
#[derive(Debug)]
pub(crate) enum BodyDecoder {
    Length(usize),
    Chunked {
        dec: ChunkedDecoder,
        /// Next undecoded byte in the buffer.
        read: usize,
        /// End of the de-chunked data at the front of the buffer.
        written: usize,
    },
}

impl BodyDecoder {
    /// A decoder for `framing`; `Length` must already be checked against the body limit.
    pub(crate) fn new(framing: BodyFraming, max_body: usize, max_trailer: usize) -> BodyDecoder {
        match framing {
            // Checked against `max_body` (a usize) before, so it fits.
            BodyFraming::Length(n) => BodyDecoder::Length(usize::try_from(n).unwrap_or(max_body)),
            BodyFraming::Chunked => BodyDecoder::Chunked {
                dec: ChunkedDecoder::new(max_body as u64, max_trailer),
                read: 0,
                written: 0,
            },
        }
    }

    /// The body, once the buffer holds all of it; `Ok(None)` means read more and call again.
    /// The body's bytes are removed from the front of `buf`; what follows stays for the
    /// next request.
    pub(crate) fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, RequestError> {
        match self {
            BodyDecoder::Length(0) => Ok(Some(Bytes::new())),
            BodyDecoder::Length(n) => {
                if buf.len() >= *n {
                    Ok(Some(buf.split_to(*n).freeze()))
                } else {
                    Ok(None)
                }
            }
            BodyDecoder::Chunked { dec, read, written } => {
                match dec.decode(&mut buf[..], read, written)? {
                    Progress::Done => {
                        let body = buf.split_to(*written).freeze();
                        buf.advance(*read - *written);
                        Ok(Some(body))
                    }
                    Progress::NeedMore => {
                        // Everything was consumed: drop the framing bytes so the buffer
                        // holds only body data (memory stays bounded by the body limit).
                        buf.truncate(*written);
                        *read = *written;
                        Ok(None)
                    }
                }
            }
        }
    }

    /// How many more bytes the buffer should have room for (a reserve hint).
    pub(crate) fn wanted(&self, buffered: usize) -> usize {
        match self {
            BodyDecoder::Length(n) => n.saturating_sub(buffered),
            BodyDecoder::Chunked { dec, .. } => {
                usize::try_from(dec.pending_data()).unwrap_or(usize::MAX)
            }
        }
    }
}
