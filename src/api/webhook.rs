//! `GET|POST /webhook?topic=T`: the request body becomes the record value, non-standard
//! request headers become record headers (API.md, Webhook).

use super::error::ApiError;
use super::query::Params;
use super::{render, App};
use crate::http::{Header, Request, Response};
use crate::kafka::{Record, RecordHeader, RecordHeaders};
use bytes::Bytes;
use std::borrow::Cow;

/// Everything the webhook needs from the query, checked before the body is read.
/// Borrows from the request target when nothing needed decoding (the common case).
pub struct Target<'a> {
    pub topic: Cow<'a, str>,
    pub key: Option<Bytes>,
    pub partition: Option<i32>,
}

/// Authenticate, authorise and parse the query. Used both before the body is read (so a
/// refused sender is not made to upload) and when handling.
pub fn check<'a>(app: &App, req: &'a Request) -> Result<Target<'a>, ApiError> {
    let params = Params::parse(req.query())
        .map_err(|_| ApiError::BadRequest("malformed query string".into()))?;
    let who = app.authenticate(req, params.user.as_deref(), params.pass.as_deref())?;
    let topic = match params.topic {
        Some(Cow::Borrowed(t)) if !t.is_empty() => super::topic_name(t)?,
        Some(Cow::Owned(t)) if !t.is_empty() => Cow::Owned(super::topic_name(&t)?.into_owned()),
        _ => {
            return Err(ApiError::BadRequest(
                "missing query parameter 'topic'".into(),
            ))
        }
    };
    app.authorize(who, &topic)?;
    let partition = params
        .partition
        .as_deref()
        .map(super::parse_partition)
        .transpose()?;
    // A key that needed no decoding is a zero-copy view of the request target.
    let key = params.key.map(|k| match k {
        Cow::Borrowed(k) => req.target.slice_ref(k),
        Cow::Owned(k) => Bytes::from(k),
    });
    Ok(Target {
        topic,
        key,
        partition,
    })
}

pub async fn handle(app: &App, req: &mut Request) -> Result<Response, ApiError> {
    let body = std::mem::take(&mut req.body);
    let target = check(app, req)?;
    let record = Record {
        key: target.key,
        value: Some(body),
        headers: record_headers(&req.headers, &app.excluded_headers),
        timestamp: None,
        partition: target.partition,
    };
    let size = body_len(&record);
    let ack = app.producer.send(&target.topic, record).await?;
    app.metrics.produced(&target.topic, 1, size);
    app.metrics.request_records(1);
    Ok(render::metadata_response(&target.topic, &ack))
}

fn body_len(record: &Record) -> u64 {
    record.value.as_ref().map_or(0, |v| v.len() as u64)
}

/// The request headers to copy: all but the excluded ones, in order, repeats kept.
pub fn record_headers(headers: &[Header], excluded: &[String]) -> RecordHeaders {
    headers
        .iter()
        .filter(|h| !is_excluded(&h.name, excluded))
        .map(|h| RecordHeader {
            key: h.name.clone(),
            value: Some(h.value.clone()),
        })
        .collect()
}

fn is_excluded(name: &[u8], excluded: &[String]) -> bool {
    excluded.iter().any(|e| match e.strip_suffix('*') {
        Some(prefix) => {
            name.len() >= prefix.len()
                && name[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
        }
        None => name.eq_ignore_ascii_case(e.as_bytes()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::excluded_headers;

    fn h(name: &'static str, value: &'static str) -> Header {
        Header {
            name: Bytes::from_static(name.as_bytes()),
            value: Bytes::from_static(value.as_bytes()),
        }
    }

    #[test]
    fn standard_headers_are_not_copied() {
        let ex = excluded_headers(&[], &[]);
        let got = record_headers(
            &[
                h("Host", "x"),
                h("User-Agent", "curl"),
                h("Accept-Encoding", "gzip"),
                h("event-timestamp", "1642628041"),
                h("Content-Type", "application/json"),
                h("X-Forwarded-For", "1.2.3.4"),
                h("X-GitHub-Event", "push"),
                h("x-dup", "1"),
                h("If-None-Match", "*"),
                h("x-dup", "2"),
            ],
            &ex,
        );
        let names: Vec<(&[u8], &[u8])> = got
            .iter()
            .map(|r| (&r.key[..], r.value.as_deref().unwrap_or_default()))
            .collect();
        assert_eq!(
            names,
            vec![
                (&b"event-timestamp"[..], &b"1642628041"[..]),
                (b"X-GitHub-Event", b"push"),
                (b"x-dup", b"1"),
                (b"x-dup", b"2"),
            ]
        );
    }

    #[test]
    fn operator_can_keep_content_type() {
        let ex = excluded_headers(&["content-type".into()], &[]);
        let got = record_headers(&[h("Content-Type", "text/plain")], &ex);
        assert_eq!(got.len(), 1);
    }
}
