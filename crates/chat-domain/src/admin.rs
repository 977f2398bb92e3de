//! Server admins, and the audit log of every admin action: who did what to whom, and when.

use chrono::{DateTime, Utc};

use crate::UserId;

/// One admin action, as the audit log keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// The admin who acted; `None` for the command line (`chat-server admin grant`).
    pub actor: Option<UserId>,
    /// What was done, a stable dotted name: `user.deactivate`, `report.resolve`,
    /// `message.delete`, `webhook.create`, `admin.grant`, ...
    pub action: &'static str,
    /// What it was done to: the id of the user, message, report or webhook.
    pub target: String,
    /// A short human-readable note (a reason, a URL); never a secret.
    pub detail: String,
    pub at: DateTime<Utc>,
}

/// An [`AuditEntry`] as stored, with its place in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Increasing with every entry: the log's order and its paging cursor.
    pub id: i64,
    pub actor: Option<UserId>,
    pub action: String,
    pub target: String,
    pub detail: String,
    pub at: DateTime<Utc>,
}
