//! Blocking other users.

use chat_domain::service::BlockedUser;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::users::PublicUserResponse;

/// A user you have blocked.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BlockResponse {
    pub user: PublicUserResponse,
    pub blocked_at: DateTime<Utc>,
}

impl From<BlockedUser> for BlockResponse {
    fn from(blocked: BlockedUser) -> Self {
        Self {
            user: chat_domain::user::PublicProfile::from(blocked.user).into(),
            blocked_at: blocked.blocked_at,
        }
    }
}
