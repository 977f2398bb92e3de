//! Opening the database: the connection pool, the PRAGMAs every connection gets, and the one
//! writer lock.

use std::sync::Mutex;
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
        let pragmas = Pragmas {
            sql: format!(
                "PRAGMA busy_timeout = {}; PRAGMA synchronous = {}; PRAGMA foreign_keys = ON; \
                 PRAGMA cache_size = -32768; \
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
            .build(ConnectionManager::<SqliteConnection>::new(path))?;
        Ok(Self {
            pool,
            path: path.to_owned(),
            pragmas,
            writer: Mutex::new(writer),
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
        conn.immediate_transaction(f)
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
