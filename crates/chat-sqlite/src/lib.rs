//! SQLite storage for chatd: Diesel over an r2d2 pool, with the schema migrations embedded.
//!
//! [`SqliteStore`] implements every storage port of `chat-domain`. Writes go through one
//! writer at a time in immediate transactions; reads use the pool concurrently (WAL).

mod attachments;
mod backup;
mod checkpoint;
mod conversations;
mod error;
mod feed;
mod group_commit;
mod lock;
mod mentions;
mod messages;
mod migrate;
mod models;
pub mod outbox;
mod pool;
mod presence;
mod reactions;
mod read_receipts;
mod recent;
mod replies;
mod revocations;
pub mod schema;
mod search;
mod seq;
mod sessions;
mod settings;
#[cfg(test)]
mod store_tests;
mod threads;
mod timestamp;
mod users;
mod webhooks;

// Blocking, reports and server admins (issue #17).
mod admins;
mod blocks;
mod reports;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chat_domain::StoreError;
use diesel::SqliteConnection;

pub use error::StorageError;
pub use lock::ExclusiveLock;
pub use migrate::MIGRATIONS;
pub use pool::{Database, SqliteOptions, Synchronous, WriteFailure, file_path};

use error::StorageResult;
use group_commit::GroupCommit;
use recent::RecentMessages;

/// The storage adapter: one database behind the user, conversation, message and read-receipt
/// ports. Cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    db: Arc<Database>,
    commits: Arc<GroupCommit>,
    memberships: Arc<MembershipEpoch>,
    recent: Arc<RecentMessages>,
    /// Held from a write that is announced (an append batch, a change to a message) until its
    /// callbacks have run: the one writer commits in seq order, and this keeps announcements
    /// in that order too, although appends announce from the commit thread and changes from
    /// the caller's.
    announcing: Arc<Announcing>,
}

/// See [`SqliteStore`]'s `announcing`.
pub(crate) type Announcing = std::sync::Mutex<()>;

/// Takes the announcement order; nothing is left half done under it by a panic.
pub(crate) fn announce_in_order(announcing: &Announcing) -> std::sync::MutexGuard<'_, ()> {
    announcing
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Counts the writes that change who belongs to a conversation, so the commit thread knows
/// when the memberships it remembers are stale. It is read and raised only under the writer
/// lock, so an append batch never sees half a change.
#[derive(Debug, Default)]
pub(crate) struct MembershipEpoch(AtomicU64);

impl MembershipEpoch {
    pub(crate) fn current(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    fn advance(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }
}

impl SqliteStore {
    /// Wraps the database, starting the thread that commits message appends in groups.
    pub fn new(db: Arc<Database>) -> std::io::Result<Self> {
        let memberships = Arc::new(MembershipEpoch::default());
        let recent = Arc::new(RecentMessages::default());
        let announcing = Arc::new(Announcing::default());
        let commits = Arc::new(GroupCommit::start(
            db.clone(),
            memberships.clone(),
            recent.clone(),
            announcing.clone(),
        )?);
        checkpoint::start(&db)?;
        Ok(Self {
            db,
            commits,
            memberships,
            recent,
            announcing,
        })
    }

    pub fn database(&self) -> &Arc<Database> {
        &self.db
    }

    fn read<T>(
        &self,
        f: impl FnOnce(&mut SqliteConnection) -> StorageResult<T>,
    ) -> Result<T, StoreError> {
        let mut conn = self.db.conn()?;
        Ok(f(&mut conn)?)
    }

    fn write<T>(
        &self,
        f: impl FnOnce(&mut SqliteConnection) -> StorageResult<T>,
    ) -> Result<T, StoreError> {
        Ok(self.db.write(f)?)
    }

    /// A write that changes a conversation's members or their roles.
    fn write_membership<T>(
        &self,
        f: impl FnOnce(&mut SqliteConnection) -> StorageResult<T>,
    ) -> Result<T, StoreError> {
        self.write(|conn| {
            self.memberships.advance();
            f(conn)
        })
    }
}

#[cfg(test)]
mod test_support {
    use super::*;

    /// A migrated database in a fresh temporary directory, removed on drop.
    pub struct TempDb {
        pub store: SqliteStore,
        _dir: tempfile::TempDir,
    }

    impl TempDb {
        /// The database file.
        pub fn path(&self) -> std::path::PathBuf {
            self._dir.path().join("test.db")
        }
    }

    /// The store, so a `TempDb` is the guard the ports' contract suite runs against.
    impl std::ops::Deref for TempDb {
        type Target = SqliteStore;

        fn deref(&self) -> &SqliteStore {
            &self.store
        }
    }

    pub fn temp_db() -> TempDb {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test.db");
        let db = Database::open(path.to_str().unwrap(), &SqliteOptions::default()).unwrap();
        db.migrate().unwrap();
        TempDb {
            store: SqliteStore::new(Arc::new(db)).unwrap(),
            _dir: dir,
        }
    }
}
