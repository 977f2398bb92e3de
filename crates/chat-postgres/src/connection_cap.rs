//! The per-user WebSocket cap (`CHAT_MAX_CONNECTIONS_PER_USER`) across every node, on the
//! `chat_nodes` and `user_connections` tables.
//!
//! Each node counts its own connections per user in memory (the truth for that node) and
//! writes the counts to `user_connections` under its node id; it proves it is alive by
//! writing `chat_nodes.heartbeat_at` every [`CapOptions::heartbeat_every`]. A claim adds up
//! the other nodes' counts, leaving out those of nodes silent for longer than
//! [`CapOptions::stale_after`] (30 s by default): a node killed with SIGKILL locks its users
//! out for at most that long. Such nodes are swept, their counts with them, at every
//! heartbeat of every live node. A node id is new at every start, so a restarted node
//! begins with no counts, and a node whose row was swept while it was alive (cut off from
//! the database for longer than the stale time) writes all its counts again as soon as its
//! heartbeat gets through.
//!
//! Claims are race-free across nodes: each is one call of the database function
//! `chatd_claim_connection` (its migration says how), which counts the other nodes' connections
//! under a transaction-level advisory lock on the user, so two nodes never both see the last
//! free slot; on one node, claims for one user take turns. A claim is one round trip, which the
//! WebSocket session makes on the blocking pool (chat-server plugs this
//! type into chat-http's `UserConnectionCap`, whose `may_block` says so). A release never
//! blocks: it changes the node's own count in memory and a
//! background thread writes it moments later; until then another node may still see the
//! slot taken.
//!
//! When the database does not answer in time, a claim **fails open** to this node's own
//! count: the user may hold up to the limit here, whatever they hold elsewhere, and the
//! count is written once the database is back.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chat_domain::UserId;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Integer, Uuid as SqlUuid};
use uuid::Uuid;

use crate::error::StorageResult;
use crate::pool::PgDatabase;
use crate::rate_limits::{FailureLog, SharedPool, shared_pool};

/// How nodes prove they are alive, and how long the claim may take.
#[derive(Debug, Clone)]
pub struct CapOptions {
    /// A node whose heartbeat is older than this is dead: its connections stop counting and
    /// it is swept.
    pub stale_after: Duration,
    /// How often a node writes its heartbeat (a third of the stale time by default, so two
    /// missed heartbeats are forgiven).
    pub heartbeat_every: Duration,
    /// How long a claim may wait (for a connection, a lock or the statement) before it fails
    /// open.
    pub timeout: Duration,
    /// Connections the cap keeps open at most.
    pub pool_size: u32,
}

impl Default for CapOptions {
    fn default() -> Self {
        Self {
            stale_after: Duration::from_secs(30),
            heartbeat_every: Duration::from_secs(10),
            // Once per connection: it can afford to wait out a busy moment.
            timeout: Duration::from_secs(2),
            // A mass reconnect claims hundreds of slots a second, each a short transaction:
            // with 4 connections, claims of 50,000 sockets opening on three nodes waited out
            // the 2 s timeout and failed open; with 16, none did (docs/scaling.md).
            pool_size: 16,
        }
    }
}

/// The advisory-lock class of per-user claims (the two-key form, a key space apart from the
/// one-key locks of migrations): "cap" in ASCII.
const CLAIM_LOCK_CLASS: i32 = i32::from_be_bytes(*b"\0cap");

/// The transaction-level lock on one user's slots; the lock is released at commit.
const LOCK_USER: &str = "SELECT pg_advisory_xact_lock($1, hashtext($2::text))";

/// Takes a slot when the user's connections on the other live nodes plus `$3` (this node's)
/// are under `$4`, writing this node's new count.
const CLAIM: &str = "SELECT chatd_claim_connection($1, $2, $3, $4, $5, $6) AS granted";

/// Claims of one user on this node take turns (the count they start from is this node's),
/// in one of this many lanes picked by the user.
const CLAIM_LANES: usize = 64;

const WRITE_COUNT: &str = "\
INSERT INTO user_connections (user_id, node_id, connections) VALUES ($1, $2, $3)
ON CONFLICT (user_id, node_id) DO UPDATE SET connections = excluded.connections";

const DELETE_COUNT: &str = "DELETE FROM user_connections WHERE user_id = $1 AND node_id = $2";

/// `inserted` is true when the row was not there: a new node, or one swept as dead.
const HEARTBEAT: &str = "\
INSERT INTO chat_nodes AS n (id, heartbeat_at) VALUES ($1, clock_timestamp())
ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at
RETURNING (n.xmax = 0) AS inserted";

const SWEEP_DEAD: &str = "\
DELETE FROM chat_nodes WHERE heartbeat_at < clock_timestamp() - $1 * interval '1 millisecond'";

#[derive(QueryableByName)]
struct Claimed {
    #[diesel(sql_type = Bool)]
    granted: bool,
}

#[derive(QueryableByName)]
struct Beat {
    #[diesel(sql_type = Bool)]
    inserted: bool,
}

/// The per-user cap across nodes; see the module's documentation. Dropping it stops the
/// heartbeat (the node's counts then stop counting after the stale time, as after a crash).
pub struct PgConnectionCap {
    shared: Arc<Shared>,
}

struct Shared {
    pool: SharedPool,
    node: Uuid,
    options: CapOptions,
    /// This node's connections per user.
    held: Mutex<HashMap<UserId, i32>>,
    /// Lanes in which one user's claims on this node take turns.
    lanes: Box<[Mutex<()>]>,
    lane_hasher: std::hash::RandomState,
    /// What the background thread has to do.
    work: Mutex<Work>,
    wake: Condvar,
    failures: FailureLog,
}

#[derive(Default)]
struct Work {
    /// Users whose count here changed since it was last written.
    dirty: HashSet<UserId>,
    stopping: bool,
}

impl PgConnectionCap {
    /// Registers this node (`node`, new at every start) on `db` (migrated), with no
    /// connections, and starts its heartbeat thread.
    pub fn start(db: &PgDatabase, node: Uuid, options: CapOptions) -> std::io::Result<Self> {
        let pool =
            shared_pool(db, options.pool_size, options.timeout).map_err(std::io::Error::other)?;
        let shared = Arc::new(Shared {
            pool,
            node,
            options,
            held: Mutex::default(),
            lanes: (0..CLAIM_LANES).map(|_| Mutex::new(())).collect(),
            lane_hasher: std::hash::RandomState::new(),
            work: Mutex::default(),
            wake: Condvar::new(),
            failures: FailureLog::new(),
        });
        {
            let mut conn = shared.pool.get().map_err(std::io::Error::other)?;
            conn.transaction(|conn| {
                diesel::sql_query("DELETE FROM user_connections WHERE node_id = $1")
                    .bind::<SqlUuid, _>(node)
                    .execute(conn)?;
                diesel::sql_query(HEARTBEAT)
                    .bind::<SqlUuid, _>(node)
                    .execute(conn)
            })
            .map_err(std::io::Error::other)?;
        }
        let background = shared.clone();
        std::thread::Builder::new()
            .name("connection-cap".into())
            .spawn(move || background.run())?;
        Ok(Self { shared })
    }

    /// This node's id.
    pub fn node(&self) -> Uuid {
        self.shared.node
    }
}

impl Drop for PgConnectionCap {
    fn drop(&mut self) {
        self.shared.work().stopping = true;
        self.shared.wake.notify_all();
    }
}

impl PgConnectionCap {
    /// Takes one of `user`'s slots unless they hold `limit` on the live nodes together;
    /// `false` refuses the connection. Every `true` must be matched by one
    /// [`Self::release`]. A round trip to the database: never call it on an async worker.
    pub fn claim(&self, user: UserId, limit: usize) -> bool {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut counted = false;
        match self.shared.try_claim(user, limit, &mut counted) {
            Ok(granted) => granted,
            Err(error) => {
                self.shared
                    .failures
                    .warn("a per-user connection cap", &error);
                if !counted {
                    let mut held = self.shared.held();
                    let mine = held.entry(user).or_default();
                    if i64::from(*mine) >= limit {
                        return false;
                    }
                    *mine += 1;
                }
                self.shared.mark_dirty(user);
                true
            }
        }
    }

    /// Gives a claimed slot back: at once on this node, moments later for the others.
    /// Never blocks.
    pub fn release(&self, user: UserId) {
        {
            let mut held = self.shared.held();
            if let Some(mine) = held.get_mut(&user) {
                *mine -= 1;
                if *mine <= 0 {
                    held.remove(&user);
                }
            }
        }
        self.shared.mark_dirty(user);
    }
}

impl Shared {
    fn held(&self) -> MutexGuard<'_, HashMap<UserId, i32>> {
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn work(&self) -> MutexGuard<'_, Work> {
        self.work
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn mark_dirty(&self, user: UserId) {
        self.work().dirty.insert(user);
        self.wake.notify_one();
    }

    fn stale_millis(&self) -> i64 {
        i64::try_from(self.options.stale_after.as_millis()).unwrap_or(i64::MAX)
    }

    /// Takes a slot if the user holds fewer than `limit` on every live node together.
    /// `counted` turns true once this node's count holds the new connection (from then
    /// on, a failure to write it still leaves it counted here, to be written later).
    fn try_claim(&self, user: UserId, limit: i64, counted: &mut bool) -> StorageResult<bool> {
        use std::hash::BuildHasher;
        let lane = &self.lanes[self.lane_hasher.hash_one(user) as usize % self.lanes.len()];
        let _turn = lane
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // A release meanwhile only makes this count too high: the claim errs on the safe side,
        // and the release's own write corrects the stored count.
        let mine = self.held().get(&user).copied().unwrap_or(0);
        let mut conn = self.pool.get()?;
        let claimed: Claimed = diesel::sql_query(CLAIM)
            .bind::<SqlUuid, _>(user.as_uuid())
            .bind::<SqlUuid, _>(self.node)
            .bind::<Integer, _>(mine)
            .bind::<BigInt, _>(limit)
            .bind::<Integer, _>(CLAIM_LOCK_CLASS)
            .bind::<BigInt, _>(self.stale_millis())
            .get_result(&mut conn)?;
        if claimed.granted {
            *self.held().entry(user).or_default() += 1;
            *counted = true;
        }
        Ok(claimed.granted)
    }

    /// Writes this node's current count for `user`, under the user's lock so that it never
    /// overwrites a claim's newer one.
    fn write(&self, user: UserId) -> StorageResult<()> {
        let mut conn = self.pool.get()?;
        conn.transaction(|conn| {
            lock_user(conn, user)?;
            let mine = self.held().get(&user).copied().unwrap_or(0);
            write_count(conn, self.node, user, mine)
        })
    }

    /// Writes the heartbeat, sweeps dead nodes; when this node's row had been swept, every
    /// count it holds is written again.
    fn heartbeat(&self) -> StorageResult<()> {
        let mut conn = self.pool.get()?;
        let beat: Beat = diesel::sql_query(HEARTBEAT)
            .bind::<SqlUuid, _>(self.node)
            .get_result(&mut conn)?;
        if beat.inserted {
            tracing::warn!(
                node = %self.node,
                "this node was taken for dead; writing its connection counts again"
            );
            let users: Vec<UserId> = self.held().keys().copied().collect();
            self.work().dirty.extend(users);
        }
        diesel::sql_query(SWEEP_DEAD)
            .bind::<BigInt, _>(self.stale_millis())
            .execute(&mut conn)?;
        Ok(())
    }

    /// The background thread: writes changed counts as they come, and the heartbeat on
    /// time. After a failure it waits a second before it tries again.
    fn run(&self) {
        let mut next_beat = Instant::now() + self.options.heartbeat_every;
        let mut retry_at: Option<Instant> = None;
        loop {
            let dirty = {
                let mut work = self.work();
                loop {
                    if work.stopping {
                        return;
                    }
                    let now = Instant::now();
                    let ready = retry_at.is_none_or(|at| at <= now);
                    if now >= next_beat || (ready && !work.dirty.is_empty()) {
                        break;
                    }
                    let until = match retry_at {
                        Some(at) if !work.dirty.is_empty() => at.min(next_beat),
                        _ => next_beat,
                    };
                    work = self
                        .wake
                        .wait_timeout(work, until.saturating_duration_since(now))
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .0;
                }
                std::mem::take(&mut work.dirty)
            };
            retry_at = None;
            let mut failed = Vec::new();
            for user in dirty {
                if let Err(error) = self.write(user) {
                    self.failures.warn("writing a connection count", &error);
                    failed.push(user);
                }
            }
            if Instant::now() >= next_beat {
                next_beat = Instant::now() + self.options.heartbeat_every;
                if let Err(error) = self.heartbeat() {
                    self.failures.warn("the node heartbeat", &error);
                }
            }
            if !failed.is_empty() {
                self.work().dirty.extend(failed);
                retry_at = Some(Instant::now() + Duration::from_secs(1));
            }
        }
    }
}

fn lock_user(conn: &mut PgConnection, user: UserId) -> QueryResult<()> {
    diesel::sql_query(LOCK_USER)
        .bind::<Integer, _>(CLAIM_LOCK_CLASS)
        .bind::<SqlUuid, _>(user.as_uuid())
        .execute(conn)
        .map(drop)
}

fn write_count(
    conn: &mut PgConnection,
    node: Uuid,
    user: UserId,
    connections: i32,
) -> StorageResult<()> {
    if connections > 0 {
        diesel::sql_query(WRITE_COUNT)
            .bind::<SqlUuid, _>(user.as_uuid())
            .bind::<SqlUuid, _>(node)
            .bind::<Integer, _>(connections)
            .execute(conn)?;
    } else {
        diesel::sql_query(DELETE_COUNT)
            .bind::<SqlUuid, _>(user.as_uuid())
            .bind::<SqlUuid, _>(node)
            .execute(conn)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::PgOptions;
    use crate::testing::TestDatabase;

    struct Cluster {
        db: PgDatabase,
        _test_db: TestDatabase,
    }

    fn cluster() -> Option<Cluster> {
        let test_db = TestDatabase::create("chat-postgres connection cap")?;
        let db = PgDatabase::connect(test_db.url(), &PgOptions::default()).unwrap();
        db.migrate().unwrap();
        Some(Cluster {
            db,
            _test_db: test_db,
        })
    }

    impl Cluster {
        fn node(&self, options: CapOptions) -> PgConnectionCap {
            PgConnectionCap::start(&self.db, Uuid::new_v4(), options).unwrap()
        }

        fn rows(&self, table: &str) -> i64 {
            #[derive(QueryableByName)]
            struct Count {
                #[diesel(sql_type = BigInt)]
                n: i64,
            }
            let mut conn = self.db.conn().unwrap();
            diesel::sql_query(format!("SELECT count(*) AS n FROM {table}"))
                .get_result::<Count>(&mut conn)
                .unwrap()
                .n
        }
    }

    /// Polls `condition` for up to five seconds: releases reach the database moments later.
    fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !condition() {
            assert!(Instant::now() < deadline, "never: {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn a_user_at_the_cap_on_one_node_is_refused_on_another() {
        let Some(cluster) = cluster() else { return };
        let (a, b) = (
            cluster.node(CapOptions::default()),
            cluster.node(CapOptions::default()),
        );
        let (alice, bob) = (UserId::new(), UserId::new());
        assert!(a.claim(alice, 2));
        assert!(b.claim(alice, 2));
        assert!(!a.claim(alice, 2));
        assert!(!b.claim(alice, 2));
        assert!(b.claim(bob, 2), "other users have their own slots");
    }

    #[test]
    fn a_release_frees_the_slot_for_every_node() {
        let Some(cluster) = cluster() else { return };
        let (a, b) = (
            cluster.node(CapOptions::default()),
            cluster.node(CapOptions::default()),
        );
        let alice = UserId::new();
        assert!(a.claim(alice, 1));
        assert!(!b.claim(alice, 1));
        a.release(alice);
        assert!(a.claim(alice, 1), "at once on the node that released");
        a.release(alice);
        eventually("B sees A's release", || {
            let claimed = b.claim(alice, 1);
            if claimed {
                assert!(!a.claim(alice, 1));
            }
            claimed
        });
        b.release(alice);
        eventually("the counts are gone from the database", || {
            cluster.rows("user_connections") == 0
        });
    }

    #[test]
    fn claims_racing_on_several_nodes_never_exceed_the_cap() {
        let Some(cluster) = cluster() else { return };
        let nodes: Vec<_> = (0..3)
            .map(|_| cluster.node(CapOptions::default()))
            .collect();
        let alice = UserId::new();
        let granted = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for node in &nodes {
                for _ in 0..3 {
                    scope.spawn(|| {
                        for _ in 0..5 {
                            if node.claim(alice, 7) {
                                granted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            }
                        }
                    });
                }
            }
        });
        assert_eq!(granted.into_inner(), 7);
    }

    #[test]
    fn the_last_slot_goes_to_exactly_one_of_many_claims_made_at_the_same_moment() {
        let Some(cluster) = cluster() else { return };
        let nodes: Vec<_> = (0..3)
            .map(|_| cluster.node(CapOptions::default()))
            .collect();
        const CLAIMS_PER_NODE: usize = 4;
        for round in 0..40 {
            let user = UserId::new();
            let start = std::sync::Barrier::new(nodes.len() * CLAIMS_PER_NODE);
            let granted = std::sync::atomic::AtomicUsize::new(0);
            std::thread::scope(|scope| {
                for node in &nodes {
                    for _ in 0..CLAIMS_PER_NODE {
                        scope.spawn(|| {
                            start.wait();
                            if node.claim(user, 1) {
                                granted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            }
                        });
                    }
                }
            });
            assert_eq!(
                granted.into_inner(),
                1,
                "round {round}: one slot, one claim"
            );
        }
    }

    #[test]
    fn a_dead_nodes_connections_stop_counting_after_the_stale_time_and_are_swept() {
        let Some(cluster) = cluster() else { return };
        let quick = CapOptions {
            stale_after: Duration::from_millis(600),
            heartbeat_every: Duration::from_millis(200),
            ..CapOptions::default()
        };
        let survivor = cluster.node(quick.clone());
        let doomed = cluster.node(quick.clone());
        let alice = UserId::new();
        assert!(doomed.claim(alice, 1));
        // Alive (heartbeating) past the stale time: its connection still counts.
        std::thread::sleep(Duration::from_millis(800));
        assert!(!survivor.claim(alice, 1));
        // Killed: no release, no more heartbeats.
        drop(doomed);
        assert!(!survivor.claim(alice, 1), "not before the stale time");
        eventually("the dead node's connection stops counting", || {
            survivor.claim(alice, 1)
        });
        eventually("the dead node is swept with its counts", || {
            cluster.rows("chat_nodes") == 1 && cluster.rows("user_connections") == 1
        });
    }

    #[test]
    fn a_node_taken_for_dead_writes_its_counts_again_when_its_heartbeat_returns() {
        let Some(cluster) = cluster() else { return };
        let quick = CapOptions {
            stale_after: Duration::from_millis(600),
            heartbeat_every: Duration::from_millis(200),
            ..CapOptions::default()
        };
        let (a, b) = (cluster.node(quick.clone()), cluster.node(quick));
        let alice = UserId::new();
        assert!(a.claim(alice, 1));
        // As if A had been cut off and swept: its row and counts are gone.
        let mut conn = cluster.db.conn().unwrap();
        diesel::sql_query("DELETE FROM chat_nodes WHERE id = $1")
            .bind::<SqlUuid, _>(a.node())
            .execute(&mut conn)
            .unwrap();
        eventually("A's connection counts again", || {
            cluster.rows("user_connections") == 1
        });
        assert!(!b.claim(alice, 1));
    }

    #[test]
    fn a_node_that_cannot_reach_the_database_caps_users_at_its_own_count() {
        let Some(cluster) = cluster() else { return };
        let a = cluster.node(CapOptions::default());
        let alice = UserId::new();
        assert!(a.claim(alice, 2));
        let Cluster { db, _test_db } = cluster;
        drop(db);
        drop(_test_db);
        assert!(a.claim(alice, 2), "fails open");
        assert!(!a.claim(alice, 2), "but not past the cap on this node");
        a.release(alice);
        assert!(a.claim(alice, 2));
    }
}
