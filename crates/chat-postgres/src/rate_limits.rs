//! Abuse-limit budgets shared by every node: the domain's [`RateLimiter`] port on the
//! `rate_limits` table, so that "20 messages a second" or "10 failed logins per account"
//! hold for the cluster, not per node.
//!
//! Each key keeps one number, its GCRA "theoretical arrival time" (TAT), exactly as the
//! in-memory limiter does, and a decision is an upsert that moves the TAT only when the
//! action is allowed, on the database's clock (the nodes' clocks never enter). PostgreSQL's
//! row lock on the key makes concurrent takers on any node queue for the row, so a budget
//! of N gives exactly N. A key whose TAT has passed has its whole budget back; a sweeper
//! thread deletes such keys every minute.
//!
//! Taking is the busy path (every message sent takes from its sender's budget), so takes
//! are batched the way messages are committed: one thread sends every take waiting at that
//! moment as one statement (one row per key, keys in one order on every node so that two
//! nodes' batches never deadlock), and while it runs the next batch gathers. A quiet node
//! pays one round trip per take; a busy one, one per batch. Checks (login attempts) are rare
//! and go alone.
//!
//! Every call waits on the database: callers on an async executor must make it on a blocking
//! thread ([`RateLimiter::is_remote`] says so). The limiter has its own small pool, with a
//! statement timeout, so that a slow limiter cannot starve the stores of connections, nor a
//! slow store the limiter.
//!
//! When the database does not answer in time (down, overloaded, a lock held too long), the
//! limiter **fails open**: the action is allowed and a warning logged (at most every 10 s).
//! Every action it guards needs the same database to succeed (a message is stored there, a
//! login reads the account there), so refusing with 429 would only tell clients to come back
//! for the wrong reason; and password guessing stays slow regardless, since password checks
//! are bounded to one per core.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chat_domain::limits::Quota;
use chat_domain::ports::RateLimiter;
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool};
use diesel::sql_types::{Array, BigInt, Bool, Text};

use crate::error::{StorageError, StorageResult};
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
            timeout: Duration::from_secs(1),
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
    takes: Arc<Takes>,
    /// How long a take waits for its batch's answer before it fails open.
    timeout: Duration,
    failures: FailureLog,
    /// Dropped with the limiter, which stops the sweeper thread.
    _stop_sweeping: mpsc::Sender<()>,
}

/// Takes one action from each of the distinct keys `$1`, whose quotas are `$2` (step: one
/// action's refill time) and `$3` (tolerance), in microseconds: a key whose TAT is no
/// further ahead of now than its tolerance moves one step on, the others are left as they
/// are. Rows are locked in key order. `wait` is read from the statement's snapshot: for a
/// refusal, the time until an action comes back, which another node's take in the same
/// instant may make a little short.
const TAKE: &str = "\
WITH clock AS (SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint AS now),
asked AS (SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS a (key, step, tolerance)),
taken AS (
    INSERT INTO rate_limits AS r (key, tat, step, tolerance)
    SELECT asked.key, clock.now + asked.step, asked.step, asked.tolerance
    FROM asked CROSS JOIN clock ORDER BY asked.key
    ON CONFLICT (key) DO UPDATE
        SET tat = greatest(r.tat, excluded.tat - excluded.step) + excluded.step,
            step = excluded.step, tolerance = excluded.tolerance
        WHERE r.tat - (excluded.tat - excluded.step) <= excluded.tolerance
    RETURNING r.key
)
SELECT asked.key,
       asked.key IN (SELECT key FROM taken) AS taken,
       coalesce(r.tat, 0) - clock.now - asked.tolerance AS wait
FROM asked CROSS JOIN clock LEFT JOIN rate_limits r ON r.key = asked.key";

/// How far the key's TAT is past the tolerance (not positive: an action is available).
const CHECK: &str = "\
SELECT coalesce(max(tat), 0)
           - (extract(epoch FROM clock_timestamp()) * 1000000)::bigint - $2 AS wait
FROM rate_limits WHERE key = $1";

const SWEEP: &str = "\
DELETE FROM rate_limits WHERE tat < (extract(epoch FROM clock_timestamp()) * 1000000)::bigint";

#[derive(QueryableByName)]
struct Taken {
    #[diesel(sql_type = Text)]
    key: String,
    #[diesel(sql_type = Bool)]
    taken: bool,
    #[diesel(sql_type = BigInt)]
    wait: i64,
}

/// A take's answer; `Err` says why the database gave none, for the log.
type Decision = Result<Result<(), Duration>, String>;

/// Keys in one statement at most.
const MAX_BATCH: usize = 512;

/// A take waiting for the batch thread.
struct Take {
    key: String,
    step: i64,
    tolerance: i64,
    answer: mpsc::SyncSender<Decision>,
}

#[derive(Default)]
struct Queue {
    waiting: VecDeque<Take>,
    stopping: bool,
}

/// The takes waiting for the batch thread, and its wake-up call.
#[derive(Default)]
struct Takes {
    queue: Mutex<Queue>,
    wake: Condvar,
}

impl Takes {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The next batch: the first take of each key, in arrival order, up to [`MAX_BATCH`].
    /// A later take of a key already in the batch waits for the next one, in its order.
    /// `None` once the limiter is dropped.
    fn next_batch(&self) -> Option<Vec<Take>> {
        let mut queue = self.queue();
        while queue.waiting.is_empty() {
            if queue.stopping {
                return None;
            }
            queue = self
                .wake
                .wait(queue)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        let mut keys = HashSet::new();
        let mut batch = Vec::new();
        let mut later = VecDeque::new();
        while let Some(take) = queue.waiting.pop_front() {
            if batch.len() < MAX_BATCH && keys.insert(take.key.clone()) {
                batch.push(take);
            } else {
                later.push_back(take);
            }
        }
        queue.waiting = later;
        Some(batch)
    }

    /// Decides a batch in one statement and answers each take.
    fn run_batch(&self, pool: &SharedPool, batch: Vec<Take>) {
        let keys: Vec<&str> = batch.iter().map(|t| t.key.as_str()).collect();
        let steps: Vec<i64> = batch.iter().map(|t| t.step).collect();
        let tolerances: Vec<i64> = batch.iter().map(|t| t.tolerance).collect();
        let decided = pool.get().map_err(StorageError::from).and_then(|mut conn| {
            diesel::sql_query(TAKE)
                .bind::<Array<Text>, _>(&keys)
                .bind::<Array<BigInt>, _>(&steps)
                .bind::<Array<BigInt>, _>(&tolerances)
                .load::<Taken>(&mut conn)
                .map_err(StorageError::from)
        });
        let mut decided: HashMap<String, (bool, i64)> = match decided {
            Ok(rows) => rows
                .into_iter()
                .map(|row| (row.key, (row.taken, row.wait)))
                .collect(),
            Err(error) => {
                let error = error.to_string();
                for take in batch {
                    let _ = take.answer.send(Err(error.clone()));
                }
                return;
            }
        };
        for take in batch {
            let answer = match decided.remove(&take.key) {
                Some((true, _)) => Ok(Ok(())),
                // Another node took the last action in the same instant, after the snapshot
                // the wait was read from: a whole step is a safe answer.
                Some((false, wait)) => Ok(Err(Duration::from_micros(
                    (if wait > 0 { wait } else { take.step }).unsigned_abs(),
                ))),
                None => Err("the batch's answer left a key out".to_owned()),
            };
            let _ = take.answer.send(answer);
        }
    }
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
    /// Opens the limiter's pool on `db` (migrated) and starts its batch and sweeper threads.
    pub fn new(db: &PgDatabase, options: &SharedLimitOptions) -> std::io::Result<Self> {
        let pool =
            shared_pool(db, options.pool_size, options.timeout).map_err(std::io::Error::other)?;
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
            })?;
        let takes = Arc::new(Takes::default());
        let (batcher, batch_pool) = (takes.clone(), pool.clone());
        std::thread::Builder::new()
            .name("rate-limit-batch".into())
            .spawn(move || {
                while let Some(batch) = batcher.next_batch() {
                    batcher.run_batch(&batch_pool, batch);
                }
            })?;
        Ok(Self {
            pool,
            takes,
            timeout: options.timeout,
            failures: FailureLog::new(),
            _stop_sweeping: stop,
        })
    }

    /// Deletes every key whose budget is full again; returns how many.
    pub fn sweep(&self) -> StorageResult<usize> {
        sweep(&self.pool)
    }

    fn decide(&self, key: &str, quota: Quota, take: bool) -> Decision {
        let interval = quota.refill_interval();
        let tolerance = micros(interval * quota.burst.saturating_sub(1));
        let interval = micros(interval);
        if take {
            let (answer, answered) = mpsc::sync_channel(1);
            self.takes.queue().waiting.push_back(Take {
                key: key.to_owned(),
                step: interval,
                tolerance,
                answer,
            });
            self.takes.wake.notify_one();
            // The statement itself gives up after the timeout; waiting for the batch before
            // it adds at most one more.
            return answered
                .recv_timeout(self.timeout * 2)
                .unwrap_or_else(|_| Err("no answer in time".to_owned()));
        }
        let mut conn = self.pool.get().map_err(|e| e.to_string())?;
        let checked: Checked = diesel::sql_query(CHECK)
            .bind::<Text, _>(key)
            .bind::<BigInt, _>(tolerance)
            .get_result(&mut conn)
            .map_err(|e| e.to_string())?;
        if checked.wait <= 0 {
            return Ok(Ok(()));
        }
        Ok(Err(Duration::from_micros(checked.wait.unsigned_abs())))
    }

    fn decide_or_allow(&self, key: &str, quota: Quota, take: bool) -> Result<(), Duration> {
        self.decide(key, quota, take).unwrap_or_else(|error| {
            self.failures.warn("a shared rate limit", &error);
            Ok(())
        })
    }
}

impl Drop for PgRateLimiter {
    fn drop(&mut self) {
        self.takes.queue().stopping = true;
        self.takes.wake.notify_all();
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
    fn batches_naming_the_same_keys_in_opposite_orders_do_not_deadlock() {
        use diesel::connection::SimpleConnection;
        let Some(a) = limiter() else { return };
        let b = a.another();
        let quota = Quota::new(100, Duration::from_secs(600));
        a.acquire("k1", quota).unwrap();
        a.acquire("k2", quota).unwrap();
        // Another transaction holds k1, so both batches queue on it with what they hold.
        let mut blocker = a.db.conn().unwrap();
        blocker
            .batch_execute("BEGIN; SELECT * FROM rate_limits WHERE key = 'k1' FOR UPDATE")
            .unwrap();
        let batch = |keys: [&str; 2]| {
            let (takes, answers): (Vec<Take>, Vec<_>) = keys
                .iter()
                .map(|key| {
                    let (answer, answered) = mpsc::sync_channel(1);
                    let take = Take {
                        key: (*key).to_owned(),
                        step: micros(quota.refill_interval()),
                        tolerance: micros(quota.refill_interval() * 99),
                        answer,
                    };
                    (take, answered)
                })
                .unzip();
            (takes, answers)
        };
        let answers = std::thread::scope(|scope| {
            let (first, first_answers) = batch(["k1", "k2"]);
            let (second, second_answers) = batch(["k2", "k1"]);
            scope.spawn(|| a.takes.run_batch(&a.pool, first));
            std::thread::sleep(Duration::from_millis(100));
            scope.spawn(|| b.takes.run_batch(&b.pool, second));
            std::thread::sleep(Duration::from_millis(100));
            blocker.batch_execute("COMMIT").unwrap();
            [first_answers, second_answers]
        });
        for answered in answers.into_iter().flatten() {
            assert_eq!(answered.recv().unwrap(), Ok(Ok(())));
        }
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
            started.elapsed() < Duration::from_secs(5),
            "it gives up after its timeout: {:?}",
            started.elapsed()
        );
    }
}
