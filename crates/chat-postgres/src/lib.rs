//! PostgreSQL storage for chatd: Diesel over an r2d2 pool, with the schema migrations
//! embedded. Several chat-server nodes may share one database.
//!
//! [`PgStore`] implements every storage port of `chat-domain` with the semantics of the
//! SQLite adapter. Where SQLite relies on its single writer, this adapter relies on row locks
//! that hold across nodes; each module says which. [`PgRateLimiter`] and
//! [`PgConnectionCap`] keep abuse limits and per-user connection caps for the whole cluster.

mod connection_cap;
mod error;
mod migrate;
mod pool;
mod rate_limits;
pub mod schema;
mod settings;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

use std::sync::Arc;

pub use connection_cap::{CapOptions, PgConnectionCap};
pub use error::{StorageError, StorageResult};
pub use migrate::MIGRATIONS;
pub use pool::{Connection, PgDatabase, PgOptions, is_postgres_url};
pub use rate_limits::{PgRateLimiter, SharedLimitOptions};

/// The storage adapter: one PostgreSQL database behind the user, conversation, message and
/// read-receipt ports. Cheap to clone.
#[derive(Clone)]
pub struct PgStore {
    db: Arc<PgDatabase>,
}

impl PgStore {
    /// Wraps the database.
    pub fn new(db: Arc<PgDatabase>) -> std::io::Result<Self> {
        Ok(Self { db })
    }

    pub fn database(&self) -> &Arc<PgDatabase> {
        &self.db
    }
}
