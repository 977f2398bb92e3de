//! `chat-server admin grant|revoke <username>`: makes a user a server admin, or takes it
//! away, on the configured database, beside a running server or without one. The database
//! must exist and be migrated (a server has started on it once, or `chat-server migrate`).

use std::sync::Arc;

use chat_domain::clock::SystemClock;
use chat_domain::service::{Granted, grant_admin};
use chat_postgres::PgStore;
use chat_sqlite::{Database, SqliteStore};

use crate::config::Config;
use crate::startup::{StartupError, require_existing_database, sqlite_options};
use crate::storage::{connect_postgres, uses_postgres};

/// Grants (`admin: true`) or revokes server admin for `username`, writing the audit log
/// entry (no actor: the command line). Blocks.
pub fn set_admin(config: &Config, username: &str, admin: bool) -> Result<Granted, StartupError> {
    let granted = if uses_postgres(config) {
        let store = PgStore::new(Arc::new(connect_postgres(config)?))?;
        grant_admin(&store, &store, &SystemClock, username, admin)
    } else {
        // No lock: a running server keeps serving, and sees the change at its next admin
        // request (it reads the flag every time). SQLite lets the two processes take turns
        // writing.
        require_existing_database(config)?;
        let db = Database::open(&config.database_url, &sqlite_options(config))?;
        let store = SqliteStore::new(Arc::new(db))?;
        grant_admin(&store, &store, &SystemClock, username, admin)
    };
    granted.map_err(|e| StartupError::Refused(e.to_string()))
}
