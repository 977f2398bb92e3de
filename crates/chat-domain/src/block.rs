//! Blocking: a user shuts another out of reaching them. The blocked user cannot start a
//! direct conversation with the blocker, send into an existing one, add the blocker to a
//! group, or see the blocker's presence; in groups both are in, their messages still show,
//! but raise no notification for the blocker.

use chrono::{DateTime, Utc};

use crate::UserId;

/// One user blocked by another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// Who is blocked.
    pub user_id: UserId,
    pub blocked_at: DateTime<Utc>,
}
