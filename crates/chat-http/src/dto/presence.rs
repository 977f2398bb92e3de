//! Presence: who is online, away or offline, and the last-seen privacy setting.

use chat_domain::presence::Presence;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// One user's presence as you may see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PresenceResponse {
    pub user_id: Uuid,
    /// `online` (a socket open), `away` (every open socket said so) or `offline`.
    #[schema(example = "online", pattern = "^(online|away|offline)$")]
    pub status: &'static str,
    /// When their last socket closed, for `offline`; null otherwise, when they never
    /// connected, or when they or you hide last-seen times.
    #[serde(serialize_with = "crate::dto::time::rfc3339_opt")]
    pub last_seen_at: Option<DateTime<Utc>>,
}

impl From<Presence> for PresenceResponse {
    fn from(p: Presence) -> Self {
        Self {
            user_id: p.user_id.as_uuid(),
            status: p.status.as_str(),
            last_seen_at: p.last_seen_at,
        }
    }
}

/// The users whose presence to read.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PresenceQueryBody {
    /// At most 200 ids; repeats count once. Users you may not see are left out of the
    /// answer.
    #[schema(max_items = 200)]
    pub user_ids: Vec<Uuid>,
}

/// Your last-seen privacy setting.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PresencePrivacy {
    /// Hide when you were last seen: others get null for yours, and you get null for
    /// theirs.
    pub hide_last_seen: bool,
}
