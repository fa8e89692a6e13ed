//! The chunked transfer coding, decoded by a byte-at-a-time state machine so that input
//! split anywhere gives the same result. Chunk data is moved down in place inside the
//! connection's read buffer, so the de-chunked body ends up contiguous and becomes one
//! `Bytes` without a second buffer.
//!
//! We do not use `httparse::parse_chunk_size`: it reads an empty size line as 0 and lets a
//! bare LF through inside extensions. Grammar enforced here (RFC 9112 §7.1, RFC 9110 §5.6):
//!
//! ```text
//! chunked-body   = *chunk last-chunk trailer-section CRLF
//! chunk          = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
//! chunk-size     = 1*HEXDIG
//! last-chunk     = 1*("0") [ chunk-ext ] CRLF
//! chunk-ext      = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
//! chunk-ext-val  = token / quoted-string
//! trailer-section = *( field-line CRLF )
//! ```
//!
//! Extensions are checked and ignored; trailer fields are checked and discarded
//! (RFC 9112 §7.1.2 lets a recipient discard them).
//!
//! References: RFC 9112 §7.1 (chunked), §7.1.1 (extensions), §7.1.2 (trailers);
//! RFC 9110 §5.6.2 (token), §5.6.3 (BWS), §5.6.4 (quoted-string).

use super::error::RequestError;
use super::limits::{MAX_CHUNK_EXT_BYTES, MAX_CHUNK_SIZE_DIGITS};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Expecting the first hex digit of a chunk size.
    SizeStart,
    Size,
    /// Whitespace after the size: only `;` (an extension) may follow.
    SizeBws,
    ExtNameStart,
    ExtName,
    ExtAfterName,
    ExtValueStart,
    ExtToken,
    ExtQuoted,
    ExtQuotedEscape,
    ExtAfterQuote,
    ExtAfterValue,
    /// Saw CR ending the size line; LF must follow.
    SizeLf,
    Data,
    DataCr,
    DataLf,
    TrailerStart,
    TrailerName,
    TrailerValue,
    TrailerLf,
    /// Saw the CR of the final empty line; LF must follow.
    EndLf,
    Done,
}

/// What a call to [`ChunkedDecoder::decode`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Progress {
    /// Every byte given was consumed; the body continues.
    NeedMore,
    /// The body ended; bytes from `*read` on belong to the next request.
    Done,
}

#[derive(Debug)]
pub(crate) struct ChunkedDecoder {
    state: State,
    /// Size of the chunk being read; during `Data`, bytes of it still to come.
    size: u64,
    digits: usize,
    body_len: u64,
    max_body: u64,
    ext_bytes: usize,
    trailer_bytes: usize,
    max_trailer_bytes: usize,
}

fn is_tchar(b: u8) -> bool {
    matches!(b,
        b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' |
        b'^' | b'_' | b'`' | b'|' | b'~' | b'0'..=b'9' | b'A'..=b'Z' | b'a'..=b'z')
}

fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn hex(b: u8) -> Option<u64> {
    match b {
        b'0'..=b'9' => Some(u64::from(b - b'0')),
        b'a'..=b'f' => Some(u64::from(b - b'a' + 10)),
        b'A'..=b'F' => Some(u64::from(b - b'A' + 10)),
        _ => None,
    }
}

const BAD_SIZE: RequestError = RequestError::Malformed("invalid chunk size");
const BAD_EXT: RequestError = RequestError::Malformed("invalid chunk extension");
const BAD_SIZE_LINE_END: RequestError =
    RequestError::Malformed("chunk size line not terminated by CRLF");
const BAD_DATA_END: RequestError = RequestError::Malformed("chunk data not followed by CRLF");
const BAD_TRAILER: RequestError = RequestError::Malformed("invalid trailer field");

impl ChunkedDecoder {
    /// A decoder refusing bodies over `max_body` bytes (413) and trailer sections over
    /// `max_trailer_bytes` (431).
    pub(crate) fn new(max_body: u64, max_trailer_bytes: usize) -> ChunkedDecoder {
        ChunkedDecoder {
            state: State::SizeStart,
            size: 0,
            digits: 0,
            body_len: 0,
            max_body,
            ext_bytes: 0,
            trailer_bytes: 0,
            max_trailer_bytes,
        }
    }

    /// Decodes `buf[*read..]`, moving chunk data down to `buf[*written..]` (always
    /// `*written <= *read`). On `NeedMore` every byte was consumed (`*read == buf.len()`),
    /// so the caller may truncate the buffer to `*written` before reading more.
    ///
    /// Kept as one loop over the bytes, with data copied in bulk: this runs for every
    /// byte of every chunked upload.
    pub(crate) fn decode(
        &mut self,
        buf: &mut [u8],
        read: &mut usize,
        written: &mut usize,
    ) -> Result<Progress, RequestError> {
        while *read < buf.len() {
            if self.state == State::Data {
                let avail = buf.len() - *read;
                // `size` may exceed usize on 32-bit targets; `avail` bounds it anyway.
                let n = usize::try_from(self.size).map_or(avail, |s| s.min(avail));
                buf.copy_within(*read..*read + n, *written);
                *read += n;
                *written += n;
                self.size -= n as u64;
                if self.size == 0 {
                    self.state = State::DataCr;
                }
                continue;
            }
            let b = buf[*read];
            *read += 1;
            self.step(b)?;
            if self.state == State::Done {
                return Ok(Progress::Done);
            }
        }
        Ok(Progress::NeedMore)
    }

    /// Bytes of chunk data still expected in the current chunk (a hint for reserving).
    pub(crate) fn pending_data(&self) -> u64 {
        if self.state == State::Data {
            self.size
        } else {
            0
        }
    }

    fn step(&mut self, b: u8) -> Result<(), RequestError> {
        use State::*;
        let st = self.state;
        if matches!(
            st,
            ExtNameStart
                | ExtName
                | ExtAfterName
                | ExtValueStart
                | ExtToken
                | ExtQuoted
                | ExtQuotedEscape
                | ExtAfterQuote
                | ExtAfterValue
        ) {
            self.ext_bytes += 1;
            if self.ext_bytes > MAX_CHUNK_EXT_BYTES {
                return Err(RequestError::Malformed("chunk extensions too long"));
            }
        }
        if matches!(
            st,
            TrailerStart | TrailerName | TrailerValue | TrailerLf | EndLf
        ) {
            self.trailer_bytes += 1;
            if self.trailer_bytes > self.max_trailer_bytes {
                return Err(RequestError::HeadersTooLarge);
            }
        }
        self.state = match st {
            SizeStart => {
                // 1*HEXDIG: an empty size, a sign or `0x` is malformed.
                let v = hex(b).ok_or(BAD_SIZE)?;
                self.size = v;
                self.digits = 1;
                Size
            }
            Size => {
                if let Some(v) = hex(b) {
                    self.digits += 1;
                    if self.digits > MAX_CHUNK_SIZE_DIGITS {
                        return Err(RequestError::Malformed("chunk size too long"));
                    }
                    // Cannot overflow: at most 16 hex digits fit a u64.
                    self.size = self.size * 16 + v;
                    return Ok(());
                }
                // The size is complete: refuse at once a chunk that would pass the
                // body limit, before any of its data is read.
                if self.size > self.max_body - self.body_len {
                    return Err(RequestError::BodyTooLarge);
                }
                match b {
                    b';' => ExtNameStart,
                    b'\r' => SizeLf,
                    b if is_ws(b) => SizeBws,
                    _ => return Err(BAD_SIZE),
                }
            }
            // BWS is allowed only before `;` (RFC 9112 §7.1.1); "a \r\n" is refused.
            SizeBws => match b {
                b';' => ExtNameStart,
                b if is_ws(b) => SizeBws,
                _ => return Err(BAD_SIZE),
            },
            ExtNameStart => match b {
                b if is_ws(b) => ExtNameStart,
                b if is_tchar(b) => ExtName,
                _ => return Err(BAD_EXT),
            },
            ExtName => match b {
                b if is_tchar(b) => ExtName,
                b'=' => ExtValueStart,
                b';' => ExtNameStart,
                b'\r' => SizeLf,
                b if is_ws(b) => ExtAfterName,
                _ => return Err(BAD_EXT),
            },
            ExtAfterName => match b {
                b if is_ws(b) => ExtAfterName,
                b'=' => ExtValueStart,
                b';' => ExtNameStart,
                _ => return Err(BAD_EXT),
            },
            ExtValueStart => match b {
                b if is_ws(b) => ExtValueStart,
                b'"' => ExtQuoted,
                b if is_tchar(b) => ExtToken,
                _ => return Err(BAD_EXT),
            },
            ExtToken => match b {
                b if is_tchar(b) => ExtToken,
                b';' => ExtNameStart,
                b'\r' => SizeLf,
                b if is_ws(b) => ExtAfterValue,
                _ => return Err(BAD_EXT),
            },
            // qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
            ExtQuoted => match b {
                b'"' => ExtAfterQuote,
                b'\\' => ExtQuotedEscape,
                b'\t' | b' ' | 0x21 | 0x23..=0x5B | 0x5D..=0x7E | 0x80..=0xFF => ExtQuoted,
                _ => return Err(BAD_EXT),
            },
            // quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
            ExtQuotedEscape => match b {
                b'\t' | b' ' | 0x21..=0x7E | 0x80..=0xFF => ExtQuoted,
                _ => return Err(BAD_EXT),
            },
            ExtAfterQuote => match b {
                b';' => ExtNameStart,
                b'\r' => SizeLf,
                b if is_ws(b) => ExtAfterValue,
                _ => return Err(BAD_EXT),
            },
            ExtAfterValue => match b {
                b if is_ws(b) => ExtAfterValue,
                b';' => ExtNameStart,
                _ => return Err(BAD_EXT),
            },
            SizeLf => match b {
                b'\n' if self.size == 0 => TrailerStart,
                b'\n' => {
                    self.body_len += self.size;
                    Data
                }
                _ => return Err(BAD_SIZE_LINE_END),
            },
            // Reached only with `size == 0`; `decode` copies data in bulk.
            Data => DataCr,
            DataCr => match b {
                b'\r' => DataLf,
                _ => return Err(BAD_DATA_END),
            },
            DataLf => match b {
                b'\n' => SizeStart,
                _ => return Err(BAD_DATA_END),
            },
            TrailerStart => match b {
                b'\r' => EndLf,
                // A leading space would be obs-fold; anything else must start a name.
                b if is_tchar(b) => TrailerName,
                _ => return Err(BAD_TRAILER),
            },
            TrailerName => match b {
                b if is_tchar(b) => TrailerName,
                b':' => TrailerValue,
                _ => return Err(BAD_TRAILER),
            },
            TrailerValue => match b {
                b'\r' => TrailerLf,
                b'\t' | b' '..=0x7E | 0x80..=0xFF => TrailerValue,
                _ => return Err(BAD_TRAILER),
            },
            TrailerLf => match b {
                b'\n' => TrailerStart,
                _ => return Err(BAD_TRAILER),
            },
            EndLf => match b {
                b'\n' => Done,
                _ => return Err(BAD_TRAILER),
            },
            Done => Done,
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type BodyAndRest = (Vec<u8>, Vec<u8>);

    /// Decodes `input` fed in pieces cut at `cuts`, compacting like the connection does.
    /// Returns the body and the bytes left over after it.
    fn decode_split(
        input: &[u8],
        cuts: &[usize],
        max_body: u64,
    ) -> Result<Option<BodyAndRest>, RequestError> {
        let mut dec = ChunkedDecoder::new(max_body, 64);
        let mut buf: Vec<u8> = Vec::new();
        let (mut read, mut written) = (0, 0);
        let mut from = 0;
        for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
            buf.extend_from_slice(&input[from..cut]);
            from = cut;
            match dec.decode(&mut buf, &mut read, &mut written)? {
                Progress::Done => {
                    buf.extend_from_slice(&input[from..]);
                    return Ok(Some((buf[..written].to_vec(), buf[read..].to_vec())));
                }
                Progress::NeedMore => {
                    assert_eq!(read, buf.len());
                    buf.truncate(written);
                    read = written;
                }
            }
        }
        Ok(None)
    }

    type Outcome = Result<Option<(&'static [u8], &'static [u8])>, RequestError>;

    fn ok(body: &'static [u8], rest: &'static [u8]) -> Outcome {
        Ok(Some((body, rest)))
    }

    const M: fn(&'static str) -> RequestError = RequestError::Malformed;

    /// Raw chunked body bytes -> expected outcome (body, leftover), `None` = needs more.
    fn table() -> Vec<(&'static [u8], Outcome)> {
        vec![
            (b"0\r\n\r\n", ok(b"", b"")),
            (b"5\r\nhello\r\n0\r\n\r\n", ok(b"hello", b"")),
            (
                b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nGET",
                ok(b"hello world", b"GET"),
            ),
            (b"A\r\n0123456789\r\n000\r\n\r\n", ok(b"0123456789", b"")),
            (
                b"a;foo=bar\r\n0123456789\r\n0\r\n\r\n",
                ok(b"0123456789", b""),
            ),
            (b"1;a;b=c;d=\"x\\\"y\"\r\nZ\r\n0\r\n\r\n", ok(b"Z", b"")),
            (b"1 ;a = b\r\nZ\r\n0;last\r\n\r\n", ok(b"Z", b"")),
            (b"1\r\nZ\r\n0\r\nVary: *\r\nX-T: 1\r\n\r\n", ok(b"Z", b"")),
            (b"0000000000000001\r\nZ\r\n0\r\n\r\n", ok(b"Z", b"")),
            (b"5\r\nhel", Ok(None)),
            (b"3\r\nfoo\r\n", Ok(None)),
            // Malformed chunk sizes.
            (b"\r\n", Err(BAD_SIZE)),
            (b"x\r\n", Err(BAD_SIZE)),
            (b"-1\r\n", Err(BAD_SIZE)),
            (b"+5\r\n", Err(BAD_SIZE)),
            (b"0x5\r\n", Err(BAD_SIZE)),
            (b" 5\r\n", Err(BAD_SIZE)),
            (b"a \r\n0123456789\r\n0\r\n\r\n", Err(BAD_SIZE)),
            (b"2 erfrferferf\r\naa\r\n0\r\n\r\n", Err(BAD_SIZE)),
            (b"00000000000000001\r\n", Err(M("chunk size too long"))),
            (b"fffffffffffffffff\r\n", Err(M("chunk size too long"))),
            // Line ends.
            (b"5\nhello\r\n0\r\n\r\n", Err(BAD_SIZE)),
            (b"5\r\rhello", Err(BAD_SIZE_LINE_END)),
            (b"5\r\nhelloX\r\n", Err(BAD_DATA_END)),
            (b"5\r\nABCDE0", Err(BAD_DATA_END)),
            (b"5\r\nhello\r\r", Err(BAD_DATA_END)),
            (b"5\r\nhello\n0\r\n\r\n", Err(BAD_DATA_END)),
            // Extensions.
            (b"2;\r\naa\r\n0\r\n\r\n", Err(BAD_EXT)),
            (b"2;a=\r\naa\r\n", Err(BAD_EXT)),
            (b"2;a=\"x\r\naa\r\n", Err(BAD_EXT)),
            (b"2;a b\r\naa\r\n", Err(BAD_EXT)),
            (b"2;a\nx\r\naa\r\n", Err(BAD_EXT)),
            (b"2;a=b \r\naa\r\n", Err(BAD_EXT)),
            (b"2;\x00\r\n", Err(BAD_EXT)),
            // Trailers.
            (b"0\r\n X: 1\r\n\r\n", Err(BAD_TRAILER)),
            (b"0\r\nX 1\r\n\r\n", Err(BAD_TRAILER)),
            (b"0\r\nX: 1\n\r\n", Err(BAD_TRAILER)),
            (b"0\r\nX: \x01\r\n\r\n", Err(BAD_TRAILER)),
            (b"0\r\n\r\r", Err(BAD_TRAILER)),
            (
                b"0\r\nX: 0123456789012345678901234567890123456789012345678901234567890123\r\n\r\n",
                Err(RequestError::HeadersTooLarge),
            ),
            // Body limit (max_body = 16 in these tables).
            (
                b"10\r\n0123456789abcdef\r\n0\r\n\r\n",
                ok(b"0123456789abcdef", b""),
            ),
            (b"11\r\n", Err(RequestError::BodyTooLarge)),
            (b"8\r\n01234567\r\n9\r\n", Err(RequestError::BodyTooLarge)),
        ]
    }

    fn check(input: &[u8], cuts: &[usize], want: &Outcome) {
        let got = decode_split(input, cuts, 16);
        let got_ref = got
            .as_ref()
            .map(|o| o.as_ref().map(|(b, r)| (&b[..], &r[..])));
        let want_ref = want.as_ref().map(|o| o.map(|(b, r)| (b, r)));
        assert_eq!(
            got_ref.map_err(|e| *e),
            want_ref.map_err(|e| *e),
            "input {:?} cuts {cuts:?}",
            String::from_utf8_lossy(input)
        );
    }

    #[test]
    fn table_whole() {
        for (input, want) in table() {
            check(input, &[], &want);
        }
    }

    #[test]
    fn table_split_at_every_byte() {
        for (input, want) in table() {
            for cut in 0..=input.len() {
                check(input, &[cut], &want);
            }
            // And one byte at a time.
            let every: Vec<usize> = (1..input.len()).collect();
            check(input, &every, &want);
        }
    }

    #[test]
    fn extensions_are_bounded() {
        let mut input = b"1;".to_vec();
        input.extend(std::iter::repeat_n(b'a', MAX_CHUNK_EXT_BYTES + 1));
        let got = decode_split(&input, &[], 16);
        assert_eq!(got, Err(M("chunk extensions too long")));
    }
}
