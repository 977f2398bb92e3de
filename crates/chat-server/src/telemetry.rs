//! Structured logs through `tracing`; `RUST_LOG` sets the level.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Also forwards the `log` records of actix-web's request
/// logger, so each request is one line with its status and duration.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
}
