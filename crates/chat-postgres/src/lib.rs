//! PostgreSQL storage for chatd: Diesel over an r2d2 pool, with the schema migrations
//! embedded. Several chat-server nodes may share one database.
//!
//! [`PgStore`] implements every storage port of `chat-domain` with the semantics of the
//! SQLite adapter. Where SQLite relies on its single writer, this adapter relies on row locks
//! that hold across nodes; each module says which. [`PgRateLimiter`] and
//! [`PgConnectionCap`] keep abuse limits and per-user connection caps for the whole cluster.

#[cfg(test)]
mod cluster_tests;
mod connection_cap;
mod conversations;
mod error;
mod feed;
mod group_commit;
mod messages;
mod migrate;
mod models;
mod pool;
mod rate_limits;
mod read_receipts;
mod revocations;
pub mod schema;
mod seq;
mod settings;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod users;

use std::sync::Arc;

use chat_domain::StoreError;
use diesel::pg::PgConnection;

use group_commit::GroupCommit;

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
    commits: Arc<GroupCommit>,
}

impl PgStore {
    /// Wraps the database, starting the thread that commits message appends in groups.
    pub fn new(db: Arc<PgDatabase>) -> std::io::Result<Self> {
        let commits = Arc::new(GroupCommit::start(db.clone())?);
        Ok(Self { db, commits })
    }

    /// Connects to `url` with default options, applies pending migrations and starts the
    /// store: what a test or a tool needs in one call.
    pub fn open(url: &str) -> Result<Self, StorageError> {
        let db = PgDatabase::connect(url, &PgOptions::default())?;
        db.migrate()?;
        Ok(Self::new(Arc::new(db))?)
    }

    pub fn database(&self) -> &Arc<PgDatabase> {
        &self.db
    }

    fn read<T>(
        &self,
        f: impl FnOnce(&mut PgConnection) -> StorageResult<T>,
    ) -> Result<T, StoreError> {
        let mut conn = self.db.conn()?;
        Ok(f(&mut conn)?)
    }

    fn write<T>(
        &self,
        f: impl FnOnce(&mut PgConnection) -> StorageResult<T>,
    ) -> Result<T, StoreError> {
        Ok(self.db.write(f)?)
    }
}

/// SQL functions the queries use.
mod sql {
    use diesel::sql_types::{Nullable, Text};

    diesel::define_sql_function! {
        /// `lower(text)`: on this schema's `COLLATE "C"` columns it folds ASCII letters only.
        fn lower(text: Text) -> Text;
    }

    diesel::define_sql_function! {
        /// [`lower`] of a nullable column.
        #[sql_name = "lower"]
        fn lower_nullable(text: Nullable<Text>) -> Nullable<Text>;
    }
}

/// The storage ports' contract, against a fresh PostgreSQL database per rule.
#[cfg(test)]
mod contract {
    chat_domain::contract_tests!(
        optional crate::testing::TestStore::create("chat-postgres contract")
    );
}
