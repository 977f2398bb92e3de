//! Checkpoints on a thread of their own.
//!
//! In WAL mode every commit appends pages to the log, and a checkpoint copies them back into
//! the database file and `fsync`s it. Left to SQLite, the commit that crosses the threshold
//! does that copy itself, and the messages in its batch wait tens of milliseconds for it.
//! Here automatic checkpoints are off and this thread copies the log while writers go on.
//! A log that writers keep growing is only started over once a checkpoint has copied all of
//! it, so when it gets long the thread copies the last few pages while holding the writer
//! lock, which takes a moment rather than the whole copy.

use std::sync::{Arc, Weak};
use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::Integer;
use diesel::sqlite::SqliteConnection;

use crate::error::StorageResult;
use crate::pool::Database;

/// How often the log is copied back.
const INTERVAL: Duration = Duration::from_millis(100);
/// Log pages left after an unlocked checkpoint beyond which the thread catches up under the
/// writer lock, so the log can start over instead of growing.
const CATCH_UP_AFTER_PAGES: i32 = 16_000;

#[derive(QueryableByName)]
struct Checkpointed {
    /// Pages in the log.
    #[diesel(sql_type = Integer)]
    log: i32,
    /// Pages of it now copied into the database.
    #[diesel(sql_type = Integer)]
    checkpointed: i32,
}

/// Starts the checkpoint thread; it ends once the database is dropped.
pub(crate) fn start(db: &Arc<Database>) -> std::io::Result<()> {
    let db = Arc::downgrade(db);
    std::thread::Builder::new()
        .name("chat-sqlite-checkpoint".into())
        .spawn(move || run(&db))?;
    Ok(())
}

fn run(db: &Weak<Database>) {
    loop {
        std::thread::sleep(INTERVAL);
        let Some(db) = db.upgrade() else { return };
        if let Err(error) = checkpoint(&db) {
            tracing::warn!(%error, "WAL checkpoint failed; retrying");
        }
    }
}

fn checkpoint(db: &Database) -> StorageResult<()> {
    let mut conn = db.conn()?;
    let done = passive(&mut conn)?;
    if done.log > CATCH_UP_AFTER_PAGES {
        // Writers went on during the copy; with them held back for the remainder, the log is
        // copied completely and the next write starts it over.
        let caught_up = db.holding_writers(|| passive(&mut conn))?;
        tracing::trace!(
            log = caught_up.log,
            checkpointed = caught_up.checkpointed,
            "WAL caught up"
        );
    }
    Ok(())
}

impl Database {
    /// Copies the whole log back into the database file and empties it, waiting for writers
    /// to finish: for a clean shutdown, so that the file alone holds everything.
    pub fn checkpoint(&self) -> StorageResult<()> {
        let mut conn = self.conn()?;
        self.holding_writers(|| {
            diesel::sql_query("PRAGMA wal_checkpoint(TRUNCATE)")
                .get_result::<Checkpointed>(&mut conn)
        })?;
        Ok(())
    }
}

fn passive(conn: &mut SqliteConnection) -> StorageResult<Checkpointed> {
    Ok(diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)").get_result(conn)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::temp_db;

    #[test]
    fn a_full_checkpoint_copies_the_log_into_the_database_and_empties_it() {
        let db = temp_db();
        let database = db.store.database();
        database
            .write(|conn| {
                diesel::sql_query("INSERT INTO server_settings (key, value) VALUES ('k', 'v')")
                    .execute(conn)?;
                Ok(())
            })
            .unwrap();
        let wal = db.path().with_extension("db-wal");
        let log_bytes = || {
            std::fs::metadata(&wal)
                .unwrap_or_else(|e| panic!("the log {} should exist: {e}", wal.display()))
                .len()
        };
        // The commit was appended to the log (a passive checkpoint may have copied it since,
        // but only a full one empties the log).
        assert!(log_bytes() > 0, "the write went to the log");

        database.checkpoint().unwrap();
        assert_eq!(log_bytes(), 0, "the log is truncated, not just copied");
        let mut conn = database.conn().unwrap();
        assert_eq!(
            passive(&mut conn).unwrap().log,
            0,
            "SQLite sees an empty log"
        );
        // The database file alone now holds the write: a copy of it without the log has it.
        let copy = db.path().with_file_name("copy.db");
        std::fs::copy(db.path(), &copy).unwrap();
        let mut alone = SqliteConnection::establish(copy.to_str().unwrap()).unwrap();
        #[derive(QueryableByName)]
        struct Setting {
            #[diesel(sql_type = diesel::sql_types::Text)]
            value: String,
        }
        let row: Setting = diesel::sql_query("SELECT value FROM server_settings WHERE key = 'k'")
            .get_result(&mut alone)
            .unwrap();
        assert_eq!(row.value, "v");
    }

    #[test]
    fn after_a_checkpoint_the_next_write_starts_the_log_over() {
        let db = temp_db();
        let database = db.store.database();
        for i in 0..200 {
            database
                .write(|conn| {
                    diesel::sql_query("INSERT INTO server_settings (key, value) VALUES (?, 'x')")
                        .bind::<diesel::sql_types::Text, _>(format!("k{i}"))
                        .execute(conn)?;
                    Ok(())
                })
                .unwrap();
        }
        // Automatic checkpoints are off: without a checkpoint the log holds every one of
        // those commits, at least a page each.
        checkpoint(database).unwrap();
        database
            .write(|conn| {
                diesel::sql_query("INSERT INTO server_settings (key, value) VALUES ('last', 'x')")
                    .execute(conn)?;
                Ok(())
            })
            .unwrap();
        let mut conn = database.conn().unwrap();
        let after = passive(&mut conn).unwrap();
        assert!(
            after.log < 10,
            "the write after the checkpoint started the log over, but it holds {} pages",
            after.log
        );
    }
}
