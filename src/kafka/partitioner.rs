//! Java-compatible partitioning (stub).
