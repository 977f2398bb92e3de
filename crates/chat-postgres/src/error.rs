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
    #[error("cannot start the commit thread: {0}")]
    Thread(#[from] std::io::Error),
    #[error("migrations failed: {0}")]
    Migration(String),
    /// A bug: code that should have returned an error panicked instead.
    #[error("{0} panicked")]
    Panicked(&'static str),
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
                field: conflicting_field(info.constraint_name().unwrap_or(info.message())),
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

/// Names the domain field a unique index guards, from the name of the index PostgreSQL
/// reports (the names are those of `migrations/postgres/`).
fn conflicting_field(constraint: &str) -> &'static str {
    match constraint {
        "users_username_key" => "username",
        "users_email_key" => "email",
        "conversations_direct_key_key" => "direct_conversation",
        "messages_by_client_id" => "client_message_id",
        _ => "unique_value",
    }
}

pub type StorageResult<T> = Result<T, StorageError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unique_index_of_the_schema_names_its_field() {
        let schema =
            include_str!("../../../migrations/postgres/2026-12-06-000001_create_schema/up.sql");
        for (index, field) in [
            ("users_username_key", "username"),
            ("users_email_key", "email"),
            ("conversations_direct_key_key", "direct_conversation"),
            ("messages_by_client_id", "client_message_id"),
        ] {
            assert!(schema.contains(index), "the schema has no {index}");
            assert_eq!(conflicting_field(index), field);
        }
        assert_eq!(conflicting_field("messages_pkey"), "unique_value");
    }
}
