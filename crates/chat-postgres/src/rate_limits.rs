//! Abuse-limit budgets shared by every node: the domain's [`RateLimiter`] port on the
//! `rate_limits` table, so that "20 messages a second" or "10 failed logins per account"
//! hold for the cluster, not per node.
//!
//! Each key keeps one number, its GCRA "theoretical arrival time" (TAT), exactly as the
//! in-memory limiter does, and each decision is one statement: an upsert that moves the TAT
//! only when the action is allowed, on the database's clock (the nodes' clocks never enter).
//! PostgreSQL's row lock on the key makes concurrent takers on any node queue for the row,
//! so a budget of N gives exactly N. A key whose TAT has passed has its whole budget back;
//! a sweeper thread deletes such keys every minute.
//!
//! Every call is a round trip to the database: callers on an async executor must make it
//! on a blocking thread ([`RateLimiter::is_remote`] says so). The limiter has its own small
//! pool, with a statement timeout, so that a slow limiter cannot starve the stores of
//! connections, nor a slow store the limiter.
//!
//! When the database does not answer in time (down, overloaded, a lock held too long), the
//! limiter **fails open**: the action is allowed and a warning logged (at most every 10 s).
//! Every action it guards needs the same database to succeed (a message is stored there, a
//! login reads the account there), so refusing with 429 would only tell clients to come back
//! for the wrong reason; and password guessing stays slow regardless, since password checks
//! are bounded to one per core.

use std::sync::Mutex;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use chat_domain::limits::Quota;
use chat_domain::ports::RateLimiter;
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool};
use diesel::sql_types::{BigInt, Bool, Text};

use crate::error::StorageResult;
use crate::pool::PgDatabase;

/// The pool, timeouts and sweeping of a shared limiter.
#[derive(Debug, Clone)]
pub struct SharedLimitOptions {
    /// Connections the limiter keeps open at most.
    pub pool_size: u32,
    /// How long one decision may take, waiting for a connection or for the statement
    /// (row locks included), before the limiter fails open.
    pub timeout: Duration,
    /// How often keys whose budget is full again are deleted.
    pub sweep_every: Duration,
}

impl Default for SharedLimitOptions {
    fn default() -> Self {
        Self {
            pool_size: 8,
            timeout: Duration::from_millis(500),
            sweep_every: Duration::from_secs(60),
        }
    }
}

pub(crate) type SharedPool = Pool<ConnectionManager<PgConnection>>;

/// A pool of its own for shared budgets and counts, whose statements give up after
/// `timeout`.
pub(crate) fn shared_pool(
    db: &PgDatabase,
    pool_size: u32,
    timeout: Duration,
) -> StorageResult<SharedPool> {
    Ok(Pool::builder()
        .max_size(pool_size.max(1))
        .min_idle(Some(1))
        .connection_timeout(timeout)
        .connection_customizer(Box::new(StatementTimeout(timeout)))
        .build(ConnectionManager::<PgConnection>::new(db.url()))?)
}

#[derive(Debug)]
struct StatementTimeout(Duration);

impl CustomizeConnection<PgConnection, diesel::r2d2::Error> for StatementTimeout {
    fn on_acquire(&self, conn: &mut PgConnection) -> Result<(), diesel::r2d2::Error> {
        conn.batch_execute(&format!(
            "SET statement_timeout = {}",
            self.0.as_millis().max(1)
        ))
        .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// Logs a failure of a shared budget at most every ten seconds: when the database is down,
/// every request would otherwise log one.
pub(crate) struct FailureLog(Mutex<Option<Instant>>);

impl FailureLog {
    pub(crate) fn new() -> Self {
        Self(Mutex::new(None))
    }

    pub(crate) fn warn(&self, what: &str, error: &dyn std::fmt::Display) {
        let mut last = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.is_none_or(|at| at.elapsed() >= Duration::from_secs(10)) {
            *last = Some(Instant::now());
            tracing::warn!(%error, "{what} failed; allowing the action (fail open)");
        }
    }
}

/// The domain's [`RateLimiter`] on PostgreSQL; see the module's documentation.
pub struct PgRateLimiter {
    pool: SharedPool,
    failures: FailureLog,
    /// Dropped with the limiter, which stops the sweeper thread.
    _stop_sweeping: mpsc::Sender<()>,
}

/// Takes an action if the key's TAT is no further ahead of now than the quota's tolerance,
/// moving it one interval on; otherwise leaves it. `$1` key, `$2` interval and `$3`
/// tolerance in microseconds. `wait` is read from the statement's snapshot: a refusal's
/// time to wait, which another node's take in the same instant may make a little short.
const ACQUIRE: &str = "\
WITH clock AS (SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint AS now),
taken AS (
    INSERT INTO rate_limits AS r (key, tat)
    SELECT $1, clock.now + $2 FROM clock
    ON CONFLICT (key) DO UPDATE
        SET tat = greatest(r.tat, excluded.tat - $2) + $2
        WHERE r.tat - (excluded.tat - $2) <= $3
    RETURNING 1
)
SELECT EXISTS (SELECT 1 FROM taken) AS taken,
       coalesce((SELECT tat FROM rate_limits WHERE key = $1), 0)
           - (SELECT now FROM clock) - $3 AS wait";

/// How far the key's TAT is past the tolerance (not positive: an action is available).
const CHECK: &str = "\
SELECT coalesce(max(tat), 0)
           - (extract(epoch FROM clock_timestamp()) * 1000000)::bigint - $2 AS wait
FROM rate_limits WHERE key = $1";

const SWEEP: &str = "\
DELETE FROM rate_limits WHERE tat < (extract(epoch FROM clock_timestamp()) * 1000000)::bigint";

#[derive(QueryableByName)]
struct Acquired {
    #[diesel(sql_type = Bool)]
    taken: bool,
    #[diesel(sql_type = BigInt)]
    wait: i64,
}

#[derive(QueryableByName)]
struct Checked {
    #[diesel(sql_type = BigInt)]
    wait: i64,
}

fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

impl PgRateLimiter {
    /// Opens the limiter's pool on `db` (migrated) and starts its sweeper thread.
    pub fn new(db: &PgDatabase, options: &SharedLimitOptions) -> StorageResult<Self> {
        let pool = shared_pool(db, options.pool_size, options.timeout)?;
        let (stop, stopped) = mpsc::channel::<()>();
        let sweeper = Sweeper {
            pool: pool.clone(),
            failures: FailureLog::new(),
        };
        let every = options.sweep_every;
        std::thread::Builder::new()
            .name("rate-limit-sweep".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    sweeper.sweep_logged();
                }
            })
            .map_err(|e| crate::StorageError::corrupt("sweeper thread", e))?;
        Ok(Self {
            pool,
            failures: FailureLog::new(),
            _stop_sweeping: stop,
        })
    }

    /// Deletes every key whose budget is full again; returns how many.
    pub fn sweep(&self) -> StorageResult<usize> {
        sweep(&self.pool)
    }

    fn decide(&self, key: &str, quota: Quota, take: bool) -> StorageResult<Result<(), Duration>> {
        let interval = quota.refill_interval();
        let tolerance = micros(interval * quota.burst.saturating_sub(1));
        let interval = micros(interval);
        let mut conn = self.pool.get()?;
        let wait = if take {
            let acquired: Acquired = diesel::sql_query(ACQUIRE)
                .bind::<Text, _>(key)
                .bind::<BigInt, _>(interval)
                .bind::<BigInt, _>(tolerance)
                .get_result(&mut conn)?;
            if acquired.taken {
                return Ok(Ok(()));
            }
            // Another node took the last action in the same instant, after the snapshot the
            // wait was read from: a whole interval is a safe answer.
            if acquired.wait > 0 {
                acquired.wait
            } else {
                interval
            }
        } else {
            let checked: Checked = diesel::sql_query(CHECK)
                .bind::<Text, _>(key)
                .bind::<BigInt, _>(tolerance)
                .get_result(&mut conn)?;
            if checked.wait <= 0 {
                return Ok(Ok(()));
            }
            checked.wait
        };
        Ok(Err(Duration::from_micros(wait.unsigned_abs())))
    }

    fn decide_or_allow(&self, key: &str, quota: Quota, take: bool) -> Result<(), Duration> {
        self.decide(key, quota, take).unwrap_or_else(|error| {
            self.failures.warn("a shared rate limit", &error);
            Ok(())
        })
    }
}

impl RateLimiter for PgRateLimiter {
    fn acquire(&self, key: &str, quota: Quota) -> Result<(), Duration> {
        self.decide_or_allow(key, quota, true)
    }

    fn check(&self, key: &str, quota: Quota) -> Result<(), Duration> {
        self.decide_or_allow(key, quota, false)
    }

    fn is_remote(&self) -> bool {
        true
    }
}

fn sweep(pool: &SharedPool) -> StorageResult<usize> {
    let mut conn = pool.get()?;
    Ok(diesel::sql_query(SWEEP).execute(&mut conn)?)
}

struct Sweeper {
    pool: SharedPool,
    failures: FailureLog,
}

impl Sweeper {
    fn sweep_logged(&self) {
        match sweep(&self.pool) {
            Ok(swept) => tracing::debug!(swept, "swept rate-limit keys"),
            Err(error) => self.failures.warn("sweeping rate-limit keys", &error),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::ops::Deref;

    use super::*;
    use crate::pool::PgOptions;
    use crate::testing::TestDatabase;

    /// A limiter on a fresh database; the limiter goes before the database.
    struct Limiter {
        limiter: PgRateLimiter,
        db: PgDatabase,
        test_db: TestDatabase,
    }

    impl Deref for Limiter {
        type Target = PgRateLimiter;
        fn deref(&self) -> &PgRateLimiter {
            &self.limiter
        }
    }

    impl Limiter {
        /// Another node's limiter on the same database.
        fn another(&self) -> PgRateLimiter {
            PgRateLimiter::new(&self.db, &SharedLimitOptions::default()).unwrap()
        }
    }

    fn limiter() -> Option<Limiter> {
        let test_db = TestDatabase::create("chat-postgres rate limits")?;
        let db = PgDatabase::connect(test_db.url(), &PgOptions::default()).unwrap();
        db.migrate().unwrap();
        Some(Limiter {
            limiter: PgRateLimiter::new(&db, &SharedLimitOptions::default()).unwrap(),
            db,
            test_db,
        })
    }

    chat_domain::rate_limiter_contract_tests!(limiter());

    #[test]
    fn two_nodes_share_one_budget() {
        let Some(a) = limiter() else { return };
        let b = a.another();
        let quota = Quota::new(4, Duration::from_secs(600));
        assert!(a.acquire("send:u", quota).is_ok());
        assert!(b.acquire("send:u", quota).is_ok());
        assert!(a.acquire("send:u", quota).is_ok());
        assert!(b.acquire("send:u", quota).is_ok());
        assert!(a.acquire("send:u", quota).is_err());
        assert!(b.acquire("send:u", quota).is_err());
        assert!(b.check("send:u", quota).is_err(), "B sees what A spent");
        assert!(a.acquire("send:other", quota).is_ok());
    }

    #[test]
    fn nodes_taking_at_once_get_exactly_the_burst_between_them() {
        let Some(a) = limiter() else { return };
        let nodes = [a.another(), a.another(), a.another()];
        let quota = Quota::new(25, Duration::from_secs(600));
        let granted = std::sync::atomic::AtomicU32::new(0);
        std::thread::scope(|scope| {
            for node in &nodes {
                for _ in 0..4 {
                    scope.spawn(|| {
                        for _ in 0..10 {
                            if node.acquire("login:alice", quota).is_ok() {
                                granted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            }
                        }
                    });
                }
            }
        });
        assert_eq!(granted.into_inner(), 25);
    }

    #[test]
    fn sweeping_deletes_only_keys_whose_budget_is_full_again() {
        let Some(limiter) = limiter() else { return };
        let short = Quota::new(1, Duration::from_millis(50));
        let long = Quota::new(1, Duration::from_secs(600));
        limiter.acquire("short", short).unwrap();
        limiter.acquire("long", long).unwrap();
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(limiter.sweep().unwrap(), 1);
        assert!(
            limiter.acquire("long", long).is_err(),
            "a spent budget stays"
        );
        assert!(limiter.acquire("short", short).is_ok());
    }

    #[test]
    fn a_database_that_is_gone_lets_actions_through() {
        let Some(Limiter {
            limiter,
            db,
            test_db,
        }) = limiter()
        else {
            return;
        };
        let quota = Quota::new(1, Duration::from_secs(600));
        limiter.acquire("k", quota).unwrap();
        assert!(limiter.acquire("k", quota).is_err());
        drop(db);
        drop(test_db); // DROP DATABASE ... WITH (FORCE): every connection is cut.
        let started = Instant::now();
        assert_eq!(limiter.acquire("k", quota), Ok(()));
        assert_eq!(limiter.check("k", quota), Ok(()));
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "it gives up after its timeout: {:?}",
            started.elapsed()
        );
    }
}
