//! The adapter's own errors, and their one mapping into the domain's [`StoreError`].

use chat_domain::StoreError;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("database query failed: {0}")]
    Query(#[from] DieselError),
    #[error("no database connection available: {0}")]
    Pool(#[from] diesel::r2d2::PoolError),
    #[error("database connection failed: {0}")]
    Connection(#[from] diesel::ConnectionError),
    #[error("backup failed: {0}")]
    Backup(String),
    /// A bug: code that should have returned an error panicked instead.
    #[error("{0} panicked")]
    Panicked(&'static str),
    /// Another process holds the database's [`ExclusiveLock`](crate::ExclusiveLock).
    #[error(
        "{} is in use by another chat-server (it holds {}): run one server per database \
         file; stop that server first, or use `chat-server backup` beside it",
        database.display(),
        lock.display()
    )]
    InUse {
        database: std::path::PathBuf,
        lock: std::path::PathBuf,
    },
    #[error("database lock: {0}")]
    Lock(String),
    #[error("migrations failed: {0}")]
    Migration(String),
    /// A stored value does not parse into its domain type: the data was written by something
    /// other than this server, or by a version with other rules.
    #[error("stored {what} is invalid: {detail}")]
    Corrupt { what: &'static str, detail: String },
}

impl StorageError {
    pub fn corrupt(what: &'static str, detail: impl ToString) -> Self {
        StorageError::Corrupt {
            what,
            detail: detail.to_string(),
        }
    }
}

impl From<StorageError> for StoreError {
    fn from(error: StorageError) -> Self {
        match error {
            StorageError::Query(DieselError::DatabaseError(
                DatabaseErrorKind::UniqueViolation,
                info,
            )) => StoreError::Conflict {
                field: conflicting_field(info.message()),
            },
            StorageError::Query(DieselError::DatabaseError(
                DatabaseErrorKind::ForeignKeyViolation,
                _,
            )) => StoreError::Missing,
            other => {
                tracing::error!(error = %other, "storage failure");
                StoreError::Unavailable(other.to_string())
            }
        }
    }
}

/// Names the domain field a unique index guards, from SQLite's "UNIQUE constraint failed:
/// table.column" message.
fn conflicting_field(message: &str) -> &'static str {
    if message.contains("users.username") {
        "username"
    } else if message.contains("users.email") {
        "email"
    } else if message.contains("direct_key") {
        "direct_conversation"
    } else if message.contains("client_message_id") {
        "client_message_id"
    } else {
        "unique_value"
    }
}

pub type StorageResult<T> = Result<T, StorageError>;
