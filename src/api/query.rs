//! Query strings and percent-decoding (RFC 3986 §2.1, and the form convention that `+` in a
//! query means a space).
//!
//! Decoding borrows when there is nothing to decode, so the common case allocates nothing.

use std::borrow::Cow;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed percent-encoding")]
pub struct DecodeError;

/// Decode `%XX` escapes; with `plus_is_space`, also `+` to a space (query strings).
pub fn percent_decode(input: &[u8], plus_is_space: bool) -> Result<Cow<'_, [u8]>, DecodeError> {
    if !input
        .iter()
        .any(|&b| b == b'%' || (plus_is_space && b == b'+'))
    {
        return Ok(Cow::Borrowed(input));
    }
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'%' => {
                let hi = input.get(i + 1).and_then(|&b| hex(b)).ok_or(DecodeError)?;
                let lo = input.get(i + 2).and_then(|&b| hex(b)).ok_or(DecodeError)?;
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Ok(Cow::Owned(out))
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Iterate `name=value` pairs of a raw query, still encoded. A pair without `=` has an
/// empty value; empty pairs (`a=1&&b=2`) are skipped.
pub fn pairs(query: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    query
        .split(|&b| b == b'&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.iter().position(|&b| b == b'=') {
            Some(i) => (&p[..i], &p[i + 1..]),
            None => (p, &p[p.len()..]),
        })
}

/// The parameters the API understands, decoded. Unknown parameters are ignored; a
/// repeated parameter keeps its first value.
#[derive(Debug, Default)]
pub struct Params<'a> {
    pub topic: Option<Cow<'a, [u8]>>,
    pub key: Option<Cow<'a, [u8]>>,
    pub partition: Option<Cow<'a, [u8]>>,
    pub user: Option<Cow<'a, [u8]>>,
    pub pass: Option<Cow<'a, [u8]>>,
}

impl<'a> Params<'a> {
    pub fn parse(query: &'a [u8]) -> Result<Params<'a>, DecodeError> {
        let mut p = Params::default();
        for (name, value) in pairs(query) {
            let slot = match name {
                b"topic" => &mut p.topic,
                b"key" => &mut p.key,
                b"partition" => &mut p.partition,
                b"user" => &mut p.user,
                b"pass" => &mut p.pass,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(percent_decode(value, true)?);
            }
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_table() {
        type Case = (&'static [u8], bool, Option<&'static [u8]>);
        let cases: &[Case] = &[
            (b"plain", true, Some(b"plain")),
            (b"a%20b", true, Some(b"a b")),
            (b"a+b", true, Some(b"a b")),
            (b"a+b", false, Some(b"a+b")),
            (b"%41%6a%6A%4A", true, Some(b"AjjJ")),
            (b"%00%ff", true, Some(b"\x00\xff")),
            (b"%", true, None),
            (b"%4", true, None),
            (b"%zz", true, None),
            (b"%%41", true, None),
        ];
        for (input, plus, want) in cases {
            let got = percent_decode(input, *plus).ok();
            assert_eq!(
                got.as_deref(),
                *want,
                "input {:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn borrowed_when_nothing_to_decode() {
        assert!(matches!(percent_decode(b"abc", true), Ok(Cow::Borrowed(_))));
    }

    #[test]
    fn params() {
        let p = Params::parse(b"topic=t1&key=a%2Fb&&x=1&user=u&pass=p+q&topic=second&flag")
            .expect("valid");
        assert_eq!(p.topic.as_deref(), Some(&b"t1"[..]));
        assert_eq!(p.key.as_deref(), Some(&b"a/b"[..]));
        assert_eq!(p.user.as_deref(), Some(&b"u"[..]));
        assert_eq!(p.pass.as_deref(), Some(&b"p q"[..]));
        assert!(p.partition.is_none());
        assert!(Params::parse(b"topic=%").is_err());
        let empty = Params::parse(b"").expect("valid");
        assert!(empty.topic.is_none());
    }
}
