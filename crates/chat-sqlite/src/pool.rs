//! Opening the database: the connection pool, the PRAGMAs every connection gets, and the one
//! writer lock.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use diesel::Connection as _;
use diesel::connection::SimpleConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};
use diesel::sqlite::SqliteConnection;

use crate::error::{StorageError, StorageResult};

pub type Connection = PooledConnection<ConnectionManager<SqliteConnection>>;

/// How hard SQLite works to keep committed data through a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// WAL with `synchronous=NORMAL`: a commit survives the process crashing, but the last
    /// transactions before a power loss or OS crash may roll back. The database never corrupts.
    #[default]
    Normal,
    /// `synchronous=FULL`: every commit is on disk before it is acknowledged.
    Full,
}

impl Synchronous {
    fn pragma(self) -> &'static str {
        match self {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        }
    }
}

#[derive(Debug, Clone)]
pub struct SqliteOptions {
    pub synchronous: Synchronous,
    pub pool_size: u32,
    /// How long a connection waits for a lock held by another process before failing.
    pub busy_timeout: Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            synchronous: Synchronous::Normal,
            pool_size: 8,
            busy_timeout: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Clone)]
struct Pragmas {
    sql: String,
}

/// Reports the pool's checkouts to the metrics recorder: how long each wait for a connection
/// took (`chatd_db_pool_wait_seconds`) and how many waits gave up (`chatd_db_pool_timeouts_total`).
#[derive(Debug)]
struct PoolMetrics;

impl diesel::r2d2::HandleEvent for PoolMetrics {
    fn handle_checkout(&self, event: diesel::r2d2::event::CheckoutEvent) {
        metrics::histogram!("chatd_db_pool_wait_seconds").record(event.duration().as_secs_f64());
    }

    fn handle_timeout(&self, _event: diesel::r2d2::event::TimeoutEvent) {
        metrics::counter!("chatd_db_pool_timeouts_total").increment(1);
    }
}

impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for Pragmas {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        conn.batch_execute(&self.sql)
            .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// The SQLite database: a pool of connections for readers, and the one connection every
/// write goes through, behind a lock. SQLite admits one writer anyway; queueing writers here,
/// instead of in SQLite's sleep-and-retry busy handler, keeps write latency flat under
/// contention and means `SQLITE_BUSY` never reaches a caller. Keeping that writer on one
/// connection keeps its page cache warm: a connection that finds the database changed by
/// another connection since its last transaction throws its whole cache away.
pub struct Database {
    pool: Pool<ConnectionManager<SqliteConnection>>,
    path: String,
    pragmas: Pragmas,
    writer: Mutex<SqliteConnection>,
    /// How the latest write went, as a [`WriteFailure`] code (0: it committed).
    last_write: AtomicU8,
}

/// Why writes fail when the storage under the database does: what `/health` reports while
/// the latest write failed so. A write refused for what it asked (a duplicate username) is
/// not one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteFailure {
    /// `SQLITE_FULL`: no room left on the disk (or under the database's page limit).
    DiskFull,
    /// `SQLITE_IOERR`: the disk or file system failed a read or write.
    Io,
    /// `SQLITE_READONLY`: the file or its directory cannot be written.
    ReadOnly,
}

impl WriteFailure {
    /// The failure behind `error`, when it is a failure of the storage. SQLite's result code
    /// reaches Diesel's errors only as its message, which is SQLite's fixed text for the code.
    pub fn of(error: &StorageError) -> Option<Self> {
        match error {
            StorageError::Query(error) => Self::of_query(error),
            _ => None,
        }
    }

    fn of_query(error: &diesel::result::Error) -> Option<Self> {
        use diesel::result::Error;
        match error {
            Error::DatabaseError(_, info) => {
                let message = info.message();
                if message.contains("database or disk is full") {
                    Some(Self::DiskFull)
                } else if message.contains("disk I/O error") {
                    Some(Self::Io)
                } else if message.contains("readonly database") {
                    Some(Self::ReadOnly)
                } else {
                    None
                }
            }
            Error::RollbackErrorOnCommit {
                rollback_error,
                commit_error,
            } => Self::of_query(commit_error).or_else(|| Self::of_query(rollback_error)),
            _ => None,
        }
    }

    fn code(self) -> u8 {
        match self {
            Self::DiskFull => 1,
            Self::Io => 2,
            Self::ReadOnly => 3,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::DiskFull),
            2 => Some(Self::Io),
            3 => Some(Self::ReadOnly),
            _ => None,
        }
    }
}

impl std::fmt::Display for WriteFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::DiskFull => "the disk is full",
            Self::Io => "the disk reports I/O errors",
            Self::ReadOnly => "the database file is read-only",
        })
    }
}

impl Database {
    /// Opens (creating if needed) the database at `url`: a file path, optionally prefixed
    /// with `sqlite://` or `sqlite:`.
    pub fn open(url: &str, options: &SqliteOptions) -> StorageResult<Self> {
        let path = file_path(url);
        // WAL is a property of the database file: switch it once, before the pool opens its
        // connections all at once.
        let mut first = SqliteConnection::establish(path)?;
        first.batch_execute(&format!(
            "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL;",
            options.busy_timeout.as_millis()
        ))?;
        drop(first);
        // No `mmap_size`. A memory map made older-history reads ~10 % faster, but every
        // pooled connection maps the file on its own and its pages stay resident: RSS counts
        // the database up to once per connection and does not come back down after a burst
        // of reads, which hides what the server itself holds. The page cache serves instead.
        // `secure_delete`: the bytes a deleted or shrunk row leaves behind are overwritten
        // with zeros, not left in free space, so a message deleted for everyone is gone from
        // the file once the log is checkpointed (store_tests.rs proves it). Only writes that
        // free space pay for it; appends free none.
        let pragmas = Pragmas {
            sql: format!(
                "PRAGMA busy_timeout = {}; PRAGMA synchronous = {}; PRAGMA foreign_keys = ON; \
                 PRAGMA cache_size = -32768; PRAGMA secure_delete = ON; \
                 PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = 0;",
                options.busy_timeout.as_millis(),
                options.synchronous.pragma(),
            ),
        };
        let writer = Self::connect(path, &pragmas)?;
        let pool = Pool::builder()
            .max_size(options.pool_size.max(1))
            .connection_timeout(Duration::from_secs(10))
            .connection_customizer(Box::new(pragmas.clone()))
            .event_handler(Box::new(PoolMetrics))
            .build(ConnectionManager::<SqliteConnection>::new(path))?;
        Ok(Self {
            pool,
            path: path.to_owned(),
            pragmas,
            writer: Mutex::new(writer),
            last_write: AtomicU8::new(0),
        })
    }

    fn connect(path: &str, pragmas: &Pragmas) -> StorageResult<SqliteConnection> {
        let mut conn = SqliteConnection::establish(path)?;
        conn.batch_execute(&pragmas.sql)?;
        Ok(conn)
    }

    /// A connection for reading.
    pub fn conn(&self) -> StorageResult<Connection> {
        Ok(self.pool.get()?)
    }

    /// Runs `f` in an immediate (write-locking) transaction, one writer at a time.
    pub fn write<T>(
        &self,
        f: impl FnOnce(&mut SqliteConnection) -> StorageResult<T>,
    ) -> StorageResult<T> {
        let mut conn = match self.writer.lock() {
            Ok(conn) => conn,
            Err(poisoned) => {
                // A writer panicked inside its transaction, which is still open on this
                // connection: closing the connection rolls it back.
                let mut conn = poisoned.into_inner();
                *conn = Self::connect(&self.path, &self.pragmas)?;
                self.writer.clear_poison();
                conn
            }
        };
        // A statement that finds the disk full may roll the whole transaction back itself;
        // Diesel's own rollback then fails, and its error would replace the one that
        // mattered. So the transaction's own error is kept aside and is what the caller gets.
        let mut failed = None;
        let result = conn
            .immediate_transaction(|conn| {
                f(conn).map_err(|error| {
                    failed = Some(error);
                    StorageError::Query(diesel::result::Error::RollbackTransaction)
                })
            })
            .map_err(|error| failed.take().unwrap_or(error));
        match &result {
            Ok(_) => self.note_write_committed(),
            Err(error) => self.note_write_failed(error),
        }
        result
    }

    /// Why the latest write failed, if it failed for a reason of the storage's
    /// ([`WriteFailure`]); `None` once a write has committed since.
    pub fn write_failure(&self) -> Option<WriteFailure> {
        WriteFailure::from_code(self.last_write.load(Ordering::Relaxed))
    }

    fn note_write_committed(&self) {
        // Read first: the common case writes nothing, so writers do not contend for the line.
        if self.last_write.load(Ordering::Relaxed) != 0 {
            self.last_write.store(0, Ordering::Relaxed);
        }
    }

    /// Records `error` if it is a failure of the storage; other errors leave the record be.
    /// The group commit calls this for appends that failed inside a transaction that
    /// committed the others.
    pub(crate) fn note_write_failed(&self, error: &StorageError) {
        if let Some(failure) = WriteFailure::of(error) {
            self.last_write.store(failure.code(), Ordering::Relaxed);
        }
    }

    /// Caps the database at `pages` pages (SQLite's `max_page_count`, never below its current
    /// size) on the connection writes go through: a write that needs more fails as on a full
    /// disk. For tests and drills of a full disk; returns the cap now in force.
    pub fn limit_pages(&self, pages: u64) -> StorageResult<u64> {
        use diesel::RunQueryDsl;

        #[derive(diesel::QueryableByName)]
        struct MaxPageCount {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            max_page_count: i64,
        }
        let mut conn = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let pages = i64::try_from(pages).unwrap_or(i64::MAX);
        let now: MaxPageCount =
            diesel::sql_query(format!("PRAGMA max_page_count = {pages}")).get_result(&mut *conn)?;
        Ok(u64::try_from(now.max_page_count).unwrap_or(0))
    }

    /// Runs `f` while no write can start or commit (it does not use the writer connection).
    pub(crate) fn holding_writers<T>(&self, f: impl FnOnce() -> T) -> T {
        let _writer = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f()
    }

    /// A real round trip to the database, for health checks.
    pub fn ping(&self) -> StorageResult<()> {
        let mut conn = self.conn()?;
        conn.batch_execute("SELECT 1 FROM users LIMIT 1")
            .map_err(StorageError::from)
    }
}

/// The file path in a `DATABASE_URL`.
pub fn file_path(url: &str) -> &str {
    url.strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_accept_the_sqlite_scheme() {
        assert_eq!(file_path("sqlite://chat.db"), "chat.db");
        assert_eq!(file_path("sqlite:/var/lib/chat.db"), "/var/lib/chat.db");
        assert_eq!(file_path("chat.db"), "chat.db");
    }

    #[test]
    fn a_write_that_finds_the_disk_full_is_remembered_until_a_write_commits() {
        let db = crate::test_support::temp_db();
        let database = db.store.database();
        let insert = |key: &str, bytes: usize| {
            let key = key.to_owned();
            move |conn: &mut SqliteConnection| -> StorageResult<()> {
                use diesel::RunQueryDsl;
                diesel::sql_query("INSERT INTO server_settings (key, value) VALUES (?, ?)")
                    .bind::<diesel::sql_types::Text, _>(key)
                    .bind::<diesel::sql_types::Text, _>("x".repeat(bytes))
                    .execute(conn)?;
                Ok(())
            }
        };
        database.write(insert("taken", 1)).unwrap();
        assert_eq!(database.write_failure(), None);
        database.limit_pages(1).unwrap();
        let failed = (0..100)
            .find_map(|i| database.write(insert(&format!("k{i}"), 8192)).err())
            .expect("a database capped at its size fills up");
        assert_eq!(
            WriteFailure::of(&failed),
            Some(WriteFailure::DiskFull),
            "{failed:?}"
        );
        assert_eq!(database.write_failure(), Some(WriteFailure::DiskFull));

        // A write refused for what it asks for says nothing about the storage.
        let duplicate = database.write(insert("taken", 1)).unwrap_err();
        assert_eq!(WriteFailure::of(&duplicate), None, "{duplicate:?}");
        assert_eq!(database.write_failure(), Some(WriteFailure::DiskFull));

        database.limit_pages(1 << 30).unwrap();
        database.write(insert("after", 8192)).unwrap();
        assert_eq!(database.write_failure(), None);
    }

    #[test]
    fn a_writer_that_panics_mid_transaction_leaves_nothing_behind() {
        use diesel::RunQueryDsl;
        use diesel::sql_types::BigInt;

        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let db = crate::test_support::temp_db();
        let database = db.store.database();
        let insert = |key: &'static str| {
            move |conn: &mut SqliteConnection| -> StorageResult<()> {
                diesel::sql_query("INSERT INTO server_settings (key, value) VALUES (?, 'v')")
                    .bind::<diesel::sql_types::Text, _>(key)
                    .execute(conn)?;
                Ok(())
            }
        };
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            database.write(|conn| -> StorageResult<()> {
                insert("half-done")(conn)?;
                panic!("a bug mid-transaction");
            })
        }));
        assert!(panicked.is_err());

        // The next write gets a working connection, and the half-done one never committed.
        database.write(insert("next")).unwrap();
        let count = |key: &str| {
            let mut conn = database.conn().unwrap();
            diesel::sql_query("SELECT COUNT(*) AS n FROM server_settings WHERE key = ?")
                .bind::<diesel::sql_types::Text, _>(key.to_owned())
                .get_result::<Count>(&mut conn)
                .unwrap()
                .n
        };
        assert_eq!(count("half-done"), 0);
        assert_eq!(count("next"), 1);
    }
}
