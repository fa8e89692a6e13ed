//! Credentials: loading the TOML file, checking a user and password in constant time, and
//! deciding whether a credential may produce to a topic.
//!
//! Passwords are kept only as SHA-256 digests. Every check hashes the given password and
//! compares it with a digest even when the user is unknown (against a fixed dummy), so an
//! unknown user and a wrong password give the same answer in the same time.

use base64::Engine;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::path::Path;
use subtle::ConstantTimeEq;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    Produce,
    Consume,
    All,
}

impl Permission {
    fn may_produce(self) -> bool {
        matches!(self, Permission::Produce | Permission::All)
    }
}

#[derive(Debug, Clone)]
struct Credential {
    user: String,
    digest: [u8; 32],
    topics: Vec<TopicPattern>,
    permission: Permission,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum TopicPattern {
    Exact(String),
    Prefix(String),
}

impl TopicPattern {
    fn parse(s: &str) -> TopicPattern {
        match s.strip_suffix('*') {
            Some(prefix) => TopicPattern::Prefix(prefix.to_string()),
            None => TopicPattern::Exact(s.to_string()),
        }
    }

    fn matches(&self, topic: &str) -> bool {
        match self {
            TopicPattern::Exact(t) => t == topic,
            TopicPattern::Prefix(p) => topic.starts_with(p.as_str()),
        }
    }
}

/// The loaded credentials file.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    entries: Vec<Credential>,
}

/// Who a request authenticated as (an index into the credentials it was checked against).
#[derive(Debug, Clone, Copy)]
pub struct Principal(usize);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    /// No credentials, malformed credentials, unknown user or wrong password: one answer for all.
    Unauthenticated,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read credentials file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("credentials file {path}: {message}")]
    Invalid { path: String, message: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    #[serde(default)]
    credential: Vec<FileCredential>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileCredential {
    user: String,
    password: Option<String>,
    password_sha256: Option<String>,
    topics: Vec<String>,
    #[serde(default = "default_permission")]
    permission: String,
}

fn default_permission() -> String {
    "produce".into()
}

/// Stands in for the digest of an unknown user so the comparison still happens.
const DUMMY_DIGEST: [u8; 32] = [0x5a; 32];

impl Credentials {
    pub fn load(path: &Path) -> Result<Credentials, LoadError> {
        let display = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
            path: display.clone(),
            source,
        })?;
        Credentials::parse(&text).map_err(|message| LoadError::Invalid {
            path: display,
            message,
        })
    }

    /// Parse the TOML text. Error messages never contain a password.
    pub fn parse(text: &str) -> Result<Credentials, String> {
        let doc: FileDoc = toml::from_str(text).map_err(|e| e.message().to_string())?;
        let mut entries = Vec::with_capacity(doc.credential.len());
        for (i, c) in doc.credential.into_iter().enumerate() {
            entries.push(credential(i, c)?);
        }
        Ok(Credentials { entries })
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Check a user and password. Always hashes and compares once, whatever the user.
    pub fn authenticate(&self, user: &[u8], password: &[u8]) -> Result<Principal, AuthError> {
        let given: [u8; 32] = Sha256::digest(password).into();
        let found = self.entries.iter().position(|c| c.user.as_bytes() == user);
        let expected = found.map_or(&DUMMY_DIGEST, |i| &self.entries[i].digest);
        let equal: bool = given.ct_eq(expected).into();
        match found {
            Some(i) if equal => Ok(Principal(i)),
            _ => Err(AuthError::Unauthenticated),
        }
    }

    /// May this principal produce to `topic`?
    pub fn may_produce(&self, who: Principal, topic: &str) -> bool {
        self.entries.get(who.0).is_some_and(|c| {
            c.permission.may_produce() && c.topics.iter().any(|p| p.matches(topic))
        })
    }
}

fn credential(i: usize, c: FileCredential) -> Result<Credential, String> {
    let at = || format!("credential #{} (user '{}')", i + 1, c.user);
    if c.user.is_empty() {
        return Err(format!("credential #{}: empty user", i + 1));
    }
    let digest = match (&c.password, &c.password_sha256) {
        (Some(p), None) => Sha256::digest(p.as_bytes()).into(),
        (None, Some(hex)) => parse_hex_digest(hex)
            .ok_or_else(|| format!("{}: password_sha256 must be 64 hex digits", at()))?,
        _ => {
            return Err(format!(
                "{}: give exactly one of password and password_sha256",
                at()
            ))
        }
    };
    let permission = match c.permission.to_ascii_lowercase().as_str() {
        "produce" => Permission::Produce,
        "consume" => Permission::Consume,
        "all" => Permission::All,
        other => {
            return Err(format!(
                "{}: permission '{other}' (use produce, consume or all)",
                at()
            ))
        }
    };
    Ok(Credential {
        topics: c.topics.iter().map(|t| TopicPattern::parse(t)).collect(),
        user: c.user,
        digest,
        permission,
    })
}

fn parse_hex_digest(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim().as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in hex.chunks(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

/// Longest decoded `user:password` accepted in a Basic header. Real credentials are far
/// shorter; the bound lets the decode use a stack buffer instead of the heap.
pub const MAX_BASIC_CREDENTIALS: usize = 1024;

/// Split an `Authorization: Basic <base64(user:pass)>` value, decoding into `buf`.
/// `None` when it is not Basic, is malformed, or decodes to more than `buf` holds.
pub fn split_basic<'b>(
    value: &[u8],
    buf: &'b mut [u8; MAX_BASIC_CREDENTIALS],
) -> Option<(&'b [u8], &'b [u8])> {
    let value = trim(value);
    if value.len() < 6 || !value[..6].eq_ignore_ascii_case(b"basic ") {
        return None;
    }
    let n = base64::engine::general_purpose::STANDARD
        .decode_slice(trim(&value[6..]), &mut buf[..])
        .ok()?;
    let decoded = &buf[..n];
    let colon = decoded.iter().position(|&b| b == b':')?;
    Some((&decoded[..colon], &decoded[colon + 1..]))
}

/// [`split_basic`] with owned results.
pub fn parse_basic(value: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut buf = [0u8; MAX_BASIC_CREDENTIALS];
    split_basic(value, &mut buf).map(|(u, p)| (u.to_vec(), p.to_vec()))
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
[[credential]]
user = "myuser"
password = "mypass"
topics = ["my-app-*", "exact"]
permission = "produce"

[[credential]]
user = "hashed"
password_sha256 = "89e01536ac207279409d4de1e5253e01f4a1769e696db0d6062ca9b8f56767c8"
topics = ["*"]
permission = "all"

[[credential]]
user = "reader"
password = "r"
topics = ["*"]
permission = "consume"
"#;

    fn creds() -> Credentials {
        Credentials::parse(FILE).expect("valid file")
    }

    #[test]
    fn authenticates_plain_and_hashed() {
        let c = creds();
        assert!(c.authenticate(b"myuser", b"mypass").is_ok());
        // sha256("mypassword")
        assert!(c.authenticate(b"hashed", b"mypassword").is_ok());
        assert_eq!(
            c.authenticate(b"myuser", b"wrong").err(),
            Some(AuthError::Unauthenticated)
        );
        assert_eq!(
            c.authenticate(b"nobody", b"mypass").err(),
            Some(AuthError::Unauthenticated)
        );
    }

    #[test]
    fn topic_patterns_and_permissions() {
        let c = creds();
        let me = c.authenticate(b"myuser", b"mypass").expect("auth");
        assert!(c.may_produce(me, "my-app-events"));
        assert!(c.may_produce(me, "exact"));
        assert!(!c.may_produce(me, "exactly"));
        assert!(!c.may_produce(me, "other"));
        let reader = c.authenticate(b"reader", b"r").expect("auth");
        assert!(!c.may_produce(reader, "anything"));
    }

    #[test]
    fn basic_header() {
        assert_eq!(
            parse_basic(b"Basic bXl1c2VyOm15cGFzcw=="),
            Some((b"myuser".to_vec(), b"mypass".to_vec()))
        );
        // password may contain ':'
        assert_eq!(
            parse_basic(b"basic  dTpwOnE= "),
            Some((b"u".to_vec(), b"p:q".to_vec()))
        );
        assert_eq!(parse_basic(b"Bearer abc"), None);
        assert_eq!(parse_basic(b"Basic !!!"), None);
        assert_eq!(parse_basic(b"Basic dXNlcg=="), None); // no colon
                                                          // Over the bound: refused, not truncated.
        let long = base64::engine::general_purpose::STANDARD
            .encode(format!("u:{}", "p".repeat(MAX_BASIC_CREDENTIALS)));
        assert_eq!(parse_basic(format!("Basic {long}").as_bytes()), None);
        let fits = base64::engine::general_purpose::STANDARD
            .encode(format!("u:{}", "p".repeat(MAX_BASIC_CREDENTIALS - 2)));
        assert!(parse_basic(format!("Basic {fits}").as_bytes()).is_some());
    }

    #[test]
    fn bad_files_are_rejected_without_echoing_secrets() {
        let err = Credentials::parse(
            "[[credential]]\nuser=\"u\"\npassword=\"s3cret\"\npassword_sha256=\"00\"\ntopics=[]\n",
        )
        .expect_err("both password forms");
        assert!(!err.contains("s3cret"));
        assert!(Credentials::parse("[[credential]]\nuser=\"u\"\ntopics=[]\n").is_err());
        assert!(Credentials::parse(
            "[[credential]]\nuser=\"u\"\npassword=\"p\"\ntopics=[]\npermission=\"root\"\n"
        )
        .is_err());
    }
}
