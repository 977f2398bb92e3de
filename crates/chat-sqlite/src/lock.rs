//! One server per database file.
//!
//! A server keeps state that is only right while it is the only writer of its file: the
//! latest pages of busy conversations in memory, the membership cache of the commit thread,
//! and the WebSockets it tells of new messages. A second server on the same file would store
//! messages the first one's sockets never hear of. So a server holds an exclusive advisory
//! lock on a file beside the database (`chat.db.lock` for `chat.db`) for as long as it runs,
//! and a second one refuses to start. The operating system releases the lock when the
//! process ends, however it ends: a killed server never leaves a stale lock behind.
//!
//! Readers that do not need to be alone (`chat-server backup`, `sqlite3` for a look) take no
//! lock and work beside a running server.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use crate::error::{StorageError, StorageResult};
use crate::pool::file_path;

/// The exclusive hold on a database file; released when dropped or when the process ends.
#[derive(Debug)]
pub struct ExclusiveLock {
    _file: File,
    path: PathBuf,
}

impl ExclusiveLock {
    /// Takes the lock on the database at `url`, or fails at once with
    /// [`StorageError::InUse`] if another process holds it.
    pub fn acquire(url: &str) -> StorageResult<Self> {
        let database = std::path::absolute(file_path(url))
            .map_err(|e| StorageError::Lock(format!("database path {url:?}: {e}")))?;
        let path = lock_path(&database);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| StorageError::Lock(format!("cannot open {}: {e}", path.display())))?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file, path }),
            Err(TryLockError::WouldBlock) => Err(StorageError::InUse {
                database,
                lock: path,
            }),
            Err(TryLockError::Error(e)) => Err(StorageError::Lock(format!(
                "cannot lock {}: {e}",
                path.display()
            ))),
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn lock_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("chat.db");
        let url = format!("sqlite://{}", db.display());
        let first = ExclusiveLock::acquire(&url).unwrap();
        assert_eq!(first.path(), dir.path().join("chat.db.lock"));

        let refused = ExclusiveLock::acquire(db.to_str().unwrap()).unwrap_err();
        assert!(matches!(&refused, StorageError::InUse { database, .. } if database == &db));
        let message = refused.to_string();
        assert!(message.contains(db.to_str().unwrap()), "{message}");
        assert!(
            message.contains("run one server per database file"),
            "{message}"
        );

        drop(first);
        ExclusiveLock::acquire(&url).unwrap();
    }
}
