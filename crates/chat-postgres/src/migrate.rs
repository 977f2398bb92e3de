//! The schema migrations in the workspace's `migrations/postgres/`, embedded in the binary.
//!
//! Nodes that start together all migrate: each takes a session-level advisory lock first, so
//! one applies the pending migrations while the others wait, and then find none pending.

use diesel::Connection as _;
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::error::{StorageError, StorageResult};
use crate::pool::PgDatabase;

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");

/// The advisory lock key that serialises migrations: "chatd" in ASCII, so that it does not
/// collide with another application's lock on a shared server by accident.
const MIGRATION_LOCK: i64 = i64::from_be_bytes(*b"\0\0\0chatd");

impl PgDatabase {
    /// Applies every pending migration; returns how many ran (0 on every node but one when
    /// several start at once).
    pub fn migrate(&self) -> StorageResult<usize> {
        // A connection of its own, closed at the end: the advisory lock dies with it even if
        // a migration fails half-way, and no pooled connection is left holding it.
        let mut conn = PgConnection::establish(self.url())?;
        conn.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))?;
        let applied = conn
            .run_pending_migrations(MIGRATIONS)
            .map(|versions| versions.iter().map(ToString::to_string).collect::<Vec<_>>())
            .map_err(|e| StorageError::Migration(e.to_string()));
        let unlocked = conn.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"));
        let applied = applied?;
        unlocked?;
        for version in &applied {
            tracing::info!(%version, "applied migration");
        }
        Ok(applied.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::PgOptions;
    use crate::testing::TestDatabase;
    use diesel::migration::MigrationSource;
    use diesel::pg::Pg;

    #[test]
    fn migrations_applied_twice_run_once() {
        let Some(test_db) = TestDatabase::create("chat-postgres migrations") else {
            return;
        };
        let db = PgDatabase::connect(test_db.url(), &PgOptions::default()).unwrap();
        let all = MigrationSource::<Pg>::migrations(&MIGRATIONS)
            .unwrap()
            .len();
        assert!(all > 0);
        assert_eq!(db.migrate().unwrap(), all);
        assert_eq!(db.migrate().unwrap(), 0);
        db.ping().unwrap();
    }

    #[test]
    fn three_nodes_migrating_at_once_apply_each_migration_once() {
        let Some(test_db) = TestDatabase::create("chat-postgres migrations") else {
            return;
        };
        let all = MigrationSource::<Pg>::migrations(&MIGRATIONS)
            .unwrap()
            .len();
        let start = std::sync::Barrier::new(3);
        let applied: Vec<usize> = std::thread::scope(|scope| {
            let nodes: Vec<_> = (0..3)
                .map(|_| {
                    scope.spawn(|| {
                        let db = PgDatabase::connect(test_db.url(), &PgOptions::default()).unwrap();
                        start.wait();
                        db.migrate().unwrap()
                    })
                })
                .collect();
            nodes.into_iter().map(|node| node.join().unwrap()).collect()
        });
        assert_eq!(applied.iter().sum::<usize>(), all, "{applied:?}");
        assert!(
            applied.contains(&all),
            "one node applied them all: {applied:?}"
        );
        let db = PgDatabase::connect(test_db.url(), &PgOptions::default()).unwrap();
        assert_eq!(db.migrate().unwrap(), 0);
        db.ping().unwrap();
    }

    #[test]
    fn racing_nodes_agree_on_one_setting() {
        let Some(test_db) = TestDatabase::create("chat-postgres settings") else {
            return;
        };
        PgDatabase::connect(test_db.url(), &PgOptions::default())
            .unwrap()
            .migrate()
            .unwrap();
        let start = std::sync::Barrier::new(3);
        let results: Vec<(String, bool)> = std::thread::scope(|scope| {
            let nodes: Vec<_> = (0..3)
                .map(|node| {
                    let start = &start;
                    let url = test_db.url();
                    scope.spawn(move || {
                        let db = PgDatabase::connect(url, &PgOptions::default()).unwrap();
                        start.wait();
                        db.setting_or_insert("secret", || format!("from node {node}"))
                            .unwrap()
                    })
                })
                .collect();
            nodes.into_iter().map(|node| node.join().unwrap()).collect()
        });
        let created: Vec<_> = results.iter().filter(|(_, created)| *created).collect();
        assert_eq!(created.len(), 1, "{results:?}");
        assert!(
            results.iter().all(|(value, _)| *value == created[0].0),
            "{results:?}"
        );
    }
}
