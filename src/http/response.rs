//! A response the handler returns; the server serialises it into the connection's write buffer.

use bytes::Bytes;

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    /// Extra header fields (Allow, WWW-Authenticate, Retry-After, ...). Empty does not allocate.
    pub headers: Vec<(&'static str, String)>,
    pub body: Bytes,
    /// Close the connection after this response.
    pub close: bool,
}

impl Response {
    pub fn json(status: u16, body: impl Into<Bytes>) -> Response {
        Response {
            status,
            content_type: "application/json",
            headers: Vec::new(),
            body: body.into(),
            close: false,
        }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }
}
