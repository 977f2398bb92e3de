//! Connecting to PostgreSQL: the connection pool and the transaction every write runs in.

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::r2d2::{ConnectionManager, Pool, PooledConnection};

use crate::error::{StorageError, StorageResult};

pub type Connection = PooledConnection<ConnectionManager<PgConnection>>;

#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Connections this process keeps open at most (readers and writers share them).
    pub pool_size: u32,
    /// How long a caller waits for a free connection (or a new one) before failing.
    pub connection_timeout: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            pool_size: 16,
            connection_timeout: Duration::from_secs(10),
        }
    }
}

/// Initialises the OpenSSL that libpq speaks TLS through, once per process, before its first
/// connection. By default OpenSSL frees its global state in an `atexit` handler, but r2d2 opens
/// and closes connections on worker threads that are never joined, and the commit thread may
/// close the pool's last connections: a process ending while one of them was inside OpenSSL
/// died of SIGSEGV (one `chat-server admin grant` in seven, against a server with `ssl = on`).
/// openssl-sys initialises with `OPENSSL_INIT_NO_ATEXIT`, which leaves that clean-up to the
/// operating system; libpq's own later initialisation keeps the first one's choice.
pub(crate) fn init_tls() {
    openssl_sys::init();
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

/// A PostgreSQL database shared by every node: a pool of connections. Unlike SQLite there is
/// no writer lock in the process: PostgreSQL serialises what must be, with row locks that
/// other nodes' transactions respect as well.
pub struct PgDatabase {
    pool: Pool<ConnectionManager<PgConnection>>,
    url: String,
}

impl PgDatabase {
    /// Connects to the database at `url` (`postgres://` or `postgresql://`). Fails if no
    /// connection can be made within the options' timeout.
    pub fn connect(url: &str, options: &PgOptions) -> StorageResult<Self> {
        init_tls();
        let pool = Pool::builder()
            .max_size(options.pool_size.max(1))
            .min_idle(Some(1))
            .connection_timeout(options.connection_timeout)
            .event_handler(Box::new(PoolMetrics))
            .build(ConnectionManager::<PgConnection>::new(url))?;
        Ok(Self {
            pool,
            url: url.to_owned(),
        })
    }

    /// The URL the database was opened with (it may carry a password: not for logs).
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// A connection for reading.
    pub fn conn(&self) -> StorageResult<Connection> {
        Ok(self.pool.get()?)
    }

    /// Runs `f` in a transaction (READ COMMITTED) on a pooled connection; commits if it
    /// returns `Ok`, rolls back otherwise (and if it panics: the connection is then dropped
    /// with the transaction open, which closes it).
    pub fn write<T>(
        &self,
        f: impl FnOnce(&mut PgConnection) -> StorageResult<T>,
    ) -> StorageResult<T> {
        let mut conn = self.conn()?;
        let mut failed = None;
        let result = diesel::Connection::transaction(&mut *conn, |conn| {
            f(conn).map_err(|error| {
                failed = Some(error);
                StorageError::Query(diesel::result::Error::RollbackTransaction)
            })
        });
        result.map_err(|error| failed.take().unwrap_or(error))
    }

    /// A real round trip to the database, for health checks.
    pub fn ping(&self) -> StorageResult<()> {
        let mut conn = self.conn()?;
        conn.batch_execute("SELECT 1 FROM users LIMIT 1")
            .map_err(StorageError::from)
    }
}

/// Whether `url` names a PostgreSQL database (`postgres://` or `postgresql://`).
pub fn is_postgres_url(url: &str) -> bool {
    let scheme = url.split_once("://").map(|(scheme, _)| scheme);
    matches!(scheme, Some(s) if s.eq_ignore_ascii_case("postgres") || s.eq_ignore_ascii_case("postgresql"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_and_postgresql_urls_select_postgres_and_nothing_else_does() {
        assert!(is_postgres_url("postgres://u@localhost/chat"));
        assert!(is_postgres_url(
            "postgresql://localhost:5433/chat?sslmode=require"
        ));
        assert!(is_postgres_url("POSTGRES://localhost/chat"));
        assert!(!is_postgres_url("sqlite://chat.db"));
        assert!(!is_postgres_url("chat.db"));
        assert!(!is_postgres_url("postgres.db"));
        assert!(!is_postgres_url("./postgres://x"));
    }
}
