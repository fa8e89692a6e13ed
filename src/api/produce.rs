//! The Upstash-compatible produce API (API.md, Produce):
//! `GET /produce/T/MSG?key=K`, `GET|POST /produce/T` and `GET|POST /produce` with one JSON
//! message or an array of them.
//!
//! Every message is checked (topic name, permission, partition) before anything is sent,
//! so a request refused for its content writes nothing. Messages that pass are handed to
//! the producer together, so those sharing a partition travel in one batch.

use super::error::ApiError;
use super::query::{percent_decode, Params};
use super::{render, App};
use crate::http::{Request, Response};
use crate::kafka::{Ack, ProduceError, Record, RecordHeader};
use bytes::Bytes;
use serde::Deserialize;
use std::borrow::Cow;

/// One message as the JSON body gives it.
#[derive(Debug, Deserialize)]
pub struct Message {
    pub topic: Option<String>,
    pub value: String,
    pub key: Option<String>,
    pub partition: Option<i32>,
    pub timestamp: Option<i64>,
    #[serde(default)]
    pub headers: Vec<JsonHeader>,
}

#[derive(Debug, Deserialize)]
pub struct JsonHeader {
    pub key: String,
    pub value: String,
}

/// Which form of the route was called.
enum Form<'a> {
    /// `/produce`: each message names its topic.
    Multi,
    /// `/produce/T`.
    Topic(&'a [u8]),
    /// `/produce/T/MSG`.
    Single(&'a [u8], &'a [u8]),
}

fn form(path: &[u8]) -> Result<Form<'_>, ApiError> {
    let rest = match path.strip_prefix(b"/produce") {
        Some(b"") | Some(b"/") => return Ok(Form::Multi),
        Some(rest) => rest.strip_prefix(b"/").ok_or(ApiError::NotFound)?,
        None => return Err(ApiError::NotFound),
    };
    let mut parts = rest.splitn(2, |&b| b == b'/');
    let topic = parts.next().unwrap_or_default();
    match parts.next() {
        None | Some(b"") => Ok(Form::Topic(topic)),
        Some(msg) if !msg.contains(&b'/') => Ok(Form::Single(topic, msg)),
        Some(_) => Err(ApiError::NotFound),
    }
}

/// Authentication and, when the path names the topic, authorisation: what can be decided
/// before the body is read.
pub fn check(app: &App, req: &Request) -> Result<(), ApiError> {
    let form = form(req.path())?;
    let params = Params::parse(req.query())
        .map_err(|_| ApiError::BadRequest("malformed query string".into()))?;
    let who = app.authenticate(req, params.user.as_deref(), params.pass.as_deref())?;
    match form {
        Form::Multi => Ok(()),
        Form::Topic(t) | Form::Single(t, _) => app.authorize(who, &path_topic(t)?),
    }
}

pub async fn handle(app: &App, req: &Request) -> Result<Response, ApiError> {
    let params = Params::parse(req.query())
        .map_err(|_| ApiError::BadRequest("malformed query string".into()))?;
    let who = app.authenticate(req, params.user.as_deref(), params.pass.as_deref())?;
    match form(req.path())? {
        Form::Single(topic, msg) => {
            let topic = path_topic(topic)?;
            app.authorize(who, &topic)?;
            let value = percent_decode(msg, false).map_err(|_| {
                ApiError::BadRequest("malformed percent-encoding in message".into())
            })?;
            let record = Record {
                key: params.key.map(|k| Bytes::copy_from_slice(&k)),
                value: Some(Bytes::copy_from_slice(&value)),
                ..Record::default()
            };
            let size = record.value.as_ref().map_or(0, |v| v.len() as u64);
            let ack = app.producer.send(&topic, record).await?;
            app.metrics.produced(&topic, 1, size);
            app.metrics.request_records(1);
            Ok(render::metadata_response(&topic, &ack))
        }
        Form::Topic(topic) => {
            let topic = path_topic(topic)?;
            app.authorize(who, &topic)?;
            let messages = parse_body(&req.body, app.max_records_per_request)?;
            send_messages(app, who, Some(&topic), messages).await
        }
        Form::Multi => {
            let messages = parse_body(&req.body, app.max_records_per_request)?;
            send_messages(app, who, None, messages).await
        }
    }
}

fn path_topic(raw: &[u8]) -> Result<String, ApiError> {
    let decoded = percent_decode(raw, false)
        .map_err(|_| ApiError::BadRequest("malformed percent-encoding in topic".into()))?;
    super::topic_name(&decoded).map(Cow::into_owned)
}

/// One JSON object or an array of them. Any Content-Type is accepted: curl's `-d` sends
/// `application/x-www-form-urlencoded`, and the Upstash examples use it as is.
pub fn parse_body(body: &[u8], max_records: usize) -> Result<Vec<Message>, ApiError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    let messages = match first {
        Some(b'[') => serde_json::from_slice::<Vec<Message>>(body).map_err(json_error)?,
        Some(b'{') => vec![serde_json::from_slice::<Message>(body).map_err(json_error)?],
        None => {
            return Err(ApiError::BadRequest(
                "empty body: expected a JSON message or an array of messages".into(),
            ))
        }
        Some(_) => {
            return Err(ApiError::BadRequest(
                "expected a JSON message object or an array of them".into(),
            ))
        }
    };
    if messages.is_empty() {
        return Err(ApiError::BadRequest("empty array of messages".into()));
    }
    if messages.len() > max_records {
        return Err(ApiError::PayloadTooLarge(format!(
            "{} messages in one request; at most {max_records} are allowed",
            messages.len()
        )));
    }
    Ok(messages)
}

fn json_error(e: serde_json::Error) -> ApiError {
    ApiError::BadRequest(format!("malformed JSON: {e}"))
}

async fn send_messages(
    app: &App,
    who: super::auth::Principal,
    path_topic: Option<&str>,
    messages: Vec<Message>,
) -> Result<Response, ApiError> {
    let mut items = Vec::with_capacity(messages.len());
    for (i, m) in messages.into_iter().enumerate() {
        items.push(to_record(app, who, path_topic, m).map_err(|e| at_message(i, e))?);
    }
    let topics: Vec<String> = items.iter().map(|(t, _)| t.clone()).collect();
    let sizes: Vec<u64> = items
        .iter()
        .map(|(_, r)| r.value.as_ref().map_or(0, |v| v.len() as u64))
        .collect();
    let results = app.producer.send_all(items).await;
    count_acked(app, &topics, &sizes, &results);
    Ok(render_results(&topics, &results))
}

/// Per-topic record and byte counters for the acknowledged messages.
fn count_acked(app: &App, topics: &[String], sizes: &[u64], results: &[Result<Ack, ProduceError>]) {
    let mut acked = 0;
    for ((topic, size), r) in topics.iter().zip(sizes).zip(results) {
        if r.is_ok() {
            app.metrics.produced(topic, 1, *size);
            acked += 1;
        }
    }
    app.metrics.request_records(acked);
}

fn at_message(i: usize, e: ApiError) -> ApiError {
    let status = e.status();
    let msg = format!("message {}: {e}", i + 1);
    match status {
        403 => ApiError::Forbidden(msg),
        _ => ApiError::BadRequest(msg),
    }
}

fn to_record(
    app: &App,
    who: super::auth::Principal,
    path_topic: Option<&str>,
    m: Message,
) -> Result<(String, Record), ApiError> {
    let topic = match (path_topic, m.topic) {
        (Some(t), _) => t.to_string(),
        (None, Some(t)) => super::topic_name(t.as_bytes())?.into_owned(),
        (None, None) => return Err(ApiError::BadRequest("missing field `topic`".into())),
    };
    app.authorize(who, &topic)?;
    if let Some(p) = m.partition {
        if p < 0 {
            return Err(ApiError::BadRequest(format!("invalid partition {p}")));
        }
    }
    let headers = m
        .headers
        .into_iter()
        .map(|h| RecordHeader {
            key: Bytes::from(h.key),
            value: Some(Bytes::from(h.value)),
        })
        .collect();
    let record = Record {
        key: m.key.map(Bytes::from),
        value: Some(Bytes::from(m.value)),
        headers,
        timestamp: m.timestamp,
        partition: m.partition,
    };
    Ok((topic, record))
}

/// All succeeded: an array of metadata. Otherwise the first failure's status, with a
/// `result` array giving each message's metadata or error, in order.
fn render_results(topics: &[String], results: &[Result<Ack, ProduceError>]) -> Response {
    let first_error = results.iter().find_map(|r| r.as_ref().err());
    match first_error {
        None => render::metadata_array(topics, results),
        Some(e) => render::partial_failure(&ApiError::Produce(e.clone()), topics, results),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_forms() {
        assert!(matches!(form(b"/produce"), Ok(Form::Multi)));
        assert!(matches!(form(b"/produce/"), Ok(Form::Multi)));
        assert!(matches!(form(b"/produce/t1"), Ok(Form::Topic(b"t1"))));
        assert!(matches!(form(b"/produce/t1/"), Ok(Form::Topic(b"t1"))));
        assert!(matches!(
            form(b"/produce/t1/hello"),
            Ok(Form::Single(b"t1", b"hello"))
        ));
        assert!(matches!(form(b"/produce/t1/a/b"), Err(ApiError::NotFound)));
        assert!(matches!(form(b"/producer"), Err(ApiError::NotFound)));
    }

    #[test]
    fn bodies() {
        let one = parse_body(
            br#" {"value":"v","key":"k","headers":[{"key":"a","value":"b"}]}"#,
            10,
        )
        .expect("one");
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].headers[0].key, "a");
        let many = parse_body(
            br#"[{"value":"1"},{"value":"2","partition":3,"timestamp":5}]"#,
            10,
        )
        .expect("many");
        assert_eq!(many[1].partition, Some(3));
        let bad: &[&[u8]] = &[
            b"",
            b"   ",
            b"[]",
            b"\"str\"",
            br#"{"key":"k"}"#,
            br#"{"value":1}"#,
            br#"{"value":"v","partition":"x"}"#,
            br#"{"value":"v""#,
            br#"[{"value":"v"},]"#,
        ];
        for b in bad {
            let err = parse_body(b, 10).expect_err("should fail");
            assert_eq!(err.status(), 400, "{}", String::from_utf8_lossy(b));
        }
        let too_many = parse_body(br#"[{"value":"1"},{"value":"2"}]"#, 1).expect_err("limit");
        assert_eq!(too_many.status(), 413);
    }
}
