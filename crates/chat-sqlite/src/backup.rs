//! Online backups.

use std::path::Path;

use diesel::RunQueryDsl;
use diesel::sql_types::Text;

use crate::error::{StorageError, StorageResult};
use crate::pool::Database;

impl Database {
    /// Writes a consistent copy of the database to `target` with `VACUUM INTO`, while the
    /// server keeps serving: the copy is one read transaction's snapshot, so writers are not
    /// blocked (WAL) and the copy never contains half a transaction. `target` must not exist.
    pub fn backup_to(&self, target: &Path) -> StorageResult<()> {
        if target.exists() {
            return Err(StorageError::Backup(format!(
                "{} already exists; choose a new file",
                target.display()
            )));
        }
        let target = target
            .to_str()
            .ok_or_else(|| StorageError::Backup("the backup path is not valid UTF-8".into()))?;
        let mut conn = self.conn()?;
        diesel::sql_query("VACUUM INTO ?")
            .bind::<Text, _>(target)
            .execute(&mut conn)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use chat_domain::UserId;
    use chat_domain::ports::UserStore;
    use chat_domain::user::{Email, NewUser, PasswordHash, Username};

    use super::*;
    use crate::test_support::temp_db;
    use crate::{SqliteOptions, SqliteStore};

    #[test]
    fn a_backup_is_a_working_copy_and_never_overwrites() {
        let db = temp_db();
        let id = UserId::new();
        db.store
            .insert(&NewUser {
                id,
                username: Username::parse("alice").unwrap(),
                email: Email::parse("alice@example.com").unwrap(),
                full_name: None,
                password_hash: PasswordHash("hash".into()),
                created_at: chrono::Utc::now(),
            })
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("backup.db");
        db.store.database().backup_to(&target).unwrap();
        assert!(db.store.database().backup_to(&target).is_err());

        let copy = Database::open(target.to_str().unwrap(), &SqliteOptions::default()).unwrap();
        assert_eq!(copy.migrate().unwrap(), 0);
        let copy = SqliteStore::new(std::sync::Arc::new(copy)).unwrap();
        assert_eq!(copy.find(id).unwrap().unwrap().username.as_str(), "alice");
    }
}
