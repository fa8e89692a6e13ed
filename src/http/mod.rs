//! The HTTP/1.1 server: listener, connection loop, request head, body framing, responses.
//! It knows nothing of Kafka; `api` implements [`Handler`].
//!
//! Where things are: `server` (bind, accept, connection limit, shutdown), `connection`
//! (keep-alive, pipelining, timeouts, 100-continue, writing responses), `head` (end of
//! head, line rules, httparse), `framing` (body length, persistence, Host, Expect),
//! `body` and `chunked` (bodies), `response` (serialisation), `date` (cached Date
//! header), `error` (server-generated errors and their statuses), `limits` (every limit
//! and fixed size).
//!
//! References: RFC 9110 (HTTP semantics), RFC 9112 (HTTP/1.1).

mod body;
mod chunked;
mod connection;
mod date;
pub mod error;
mod framing;
#[cfg(test)]
mod framing_tests;
#[cfg(any(test, feature = "unstable-fuzzing"))]
pub mod fuzzing;
mod head;
pub mod limits;
pub mod request;
pub mod response;
pub mod server;

pub use body::BodyFraming;
pub use error::RequestError;
pub use framing::Framing;
pub use limits::Limits;
pub use request::{Header, Method, Request, Version};
pub use response::{Body, Response};
pub use server::{bind, serve, Handler, ServerStats};
