//! Routes: webhook, produce, health, metrics; authentication; error JSON.
