//! The HTTP/1.1 server: listener, connection loop, request head, body framing, responses.
//! It knows nothing of Kafka; `api` implements [`Handler`].

pub mod limits;
pub mod request;
pub mod response;
pub mod server;

pub use limits::Limits;
pub use request::{Header, Method, Request, Version};
pub use response::Response;
pub use server::{serve, Handler, ServerStats};
