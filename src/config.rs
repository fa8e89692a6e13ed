//! Settings: flags, environment, optional TOML file.
