//! Magic-2 record batch writer (stub).
