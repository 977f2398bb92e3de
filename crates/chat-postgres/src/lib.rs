//! PostgreSQL storage for chatd: Diesel over an r2d2 pool, with the schema migrations
//! embedded. Several chat-server nodes may share one database.
//!
//! [`PgStore`] implements every storage port of `chat-domain` with the semantics of the
//! SQLite adapter. Where SQLite relies on its single writer, this adapter relies on row locks
//! that hold across nodes; each module says which. [`PgRateLimiter`] and
//! [`PgConnectionCap`] keep abuse limits and per-user connection caps for the whole cluster.

mod attachments;
#[cfg(test)]
mod cluster_tests;
mod connection_cap;
mod conversations;
mod error;
mod feed;
mod group_commit;
mod mentions;
mod messages;
mod migrate;
mod models;
pub mod outbox;
mod pool;
mod presence;
mod rate_limits;
mod reactions;
mod read_receipts;
mod replies;
mod revocations;
pub mod schema;
mod search;
mod seq;
mod sessions;
mod settings;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod threads;
mod users;
#[cfg(test)]
mod webhook_cluster_tests;
mod webhooks;

// Blocking, reports and server admins (issue #17).
mod admins;
mod blocks;
mod reports;

use std::sync::Arc;

use chat_domain::StoreError;
use diesel::pg::PgConnection;

use group_commit::GroupCommit;

pub use connection_cap::{CapOptions, PgConnectionCap};
pub use error::{StorageError, StorageResult};
pub use migrate::MIGRATIONS;
pub use pool::{Connection, PgDatabase, PgOptions, is_postgres_url};
pub use presence::PgPresenceDirectory;
pub use rate_limits::{PgRateLimiter, SharedLimitOptions};

/// The storage adapter: one PostgreSQL database behind the user, conversation, message and
/// read-receipt ports. Cheap to clone.
#[derive(Clone)]
pub struct PgStore {
    db: Arc<PgDatabase>,
    commits: Arc<GroupCommit>,
    /// Held from a write this node announces (an append batch, a change to a message) until
    /// its callbacks have run, so that this node announces in the order the `message_seq`
    /// lock gave seqs: appends announce from the commit thread, changes from the caller's.
    announcing: Arc<Announcing>,
}

/// See [`PgStore`]'s `announcing`.
pub(crate) type Announcing = std::sync::Mutex<()>;

/// Takes the announcement order; nothing is left half done under it by a panic.
pub(crate) fn announce_in_order(announcing: &Announcing) -> std::sync::MutexGuard<'_, ()> {
    announcing
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl PgStore {
    /// Wraps the database, starting the thread that commits message appends in groups.
    pub fn new(db: Arc<PgDatabase>) -> std::io::Result<Self> {
        let announcing = Arc::new(Announcing::default());
        let commits = Arc::new(GroupCommit::start(db.clone(), announcing.clone())?);
        Ok(Self {
            db,
            commits,
            announcing,
        })
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
