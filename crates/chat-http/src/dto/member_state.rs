//! What a member sets for themselves in a conversation: the read marker, set explicitly, and
//! the settings (mute, archive).

use chat_domain::read_state::{MarkerSet, SettingsChanged, SettingsUpdate};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"last_read_seq": 41}))]
pub struct SetReadMarkerBody {
    /// Where your marker goes: onto the conversation's newest message with a seq at or below
    /// this (0: nothing read, everything unread; a seq past the newest message: all read).
    /// It may move back ("mark unread").
    #[schema(minimum = 0, example = 41)]
    pub last_read_seq: i64,
}

/// Your read marker after setting it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "conversation_id": "7d6b4c2e-3f0a-4f8e-9a51-2c1d0e9b8a77",
    "user_id": "0f8e2a4c-6b1d-4c3e-8f7a-9e5d3c1b2a10",
    "last_read_seq": 41,
    "message_id": "5a1c9e7b-2d4f-4a6c-8e0b-3f7d1c9a5e22",
    "read_at": "2026-12-06T16:30:00Z",
    "seq": 57,
    "unread_count": 3,
    "unread_mentions": 1
}))]
pub struct ReadMarkerResponse {
    pub conversation_id: Uuid,
    pub user_id: Uuid,
    /// Every message of the conversation up to this seq is read by you.
    pub last_read_seq: i64,
    /// The message the marker stands on; null at 0.
    pub message_id: Option<Uuid>,
    #[serde(serialize_with = "super::time::rfc3339")]
    pub read_at: DateTime<Utc>,
    /// This change's place in the change feed.
    pub seq: i64,
    /// Messages from others after the marker.
    pub unread_count: u64,
    /// Of those, the ones that mention you (deleted and hidden ones never count).
    pub unread_mentions: u64,
}

impl From<MarkerSet> for ReadMarkerResponse {
    fn from(set: MarkerSet) -> Self {
        Self {
            conversation_id: set.marker.conversation_id.as_uuid(),
            user_id: set.marker.user_id.as_uuid(),
            last_read_seq: set.marker.last_read_seq.0,
            message_id: set.message_id.map(|id| id.as_uuid()),
            read_at: set.marker.read_at,
            seq: set.marker.seq.map_or(0, |seq| seq.0),
            unread_count: set.unread_count,
            unread_mentions: set.unread_mentions,
        }
    }
}

/// A change to your settings; a field left out stays as it is, and at least one is needed.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"muted_until": "2026-12-07T08:00:00Z", "archived": true}))]
pub struct UpdateSettingsBody {
    /// Mute until this time (RFC 3339); null, or a time already past, unmutes. A muted
    /// conversation still counts its unread messages, but they stay out of the total of
    /// `GET /api/v1/messages/unread/count`.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<DateTime<Utc>>, example = "2026-12-07T08:00:00Z")]
    pub muted_until: Option<Option<DateTime<Utc>>>,
    /// true archives the conversation as of now (it leaves the unarchived inbox until a new
    /// message arrives, unless muted, which brings it back); false unarchives it.
    #[schema(value_type = bool, required = false, example = true)]
    pub archived: Option<bool>,
}

/// A field that is present, even as null, is `Some`; absent it stays `None` (the default).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

impl UpdateSettingsBody {
    /// `None` when the body names no field.
    pub fn into_update(self) -> Option<SettingsUpdate> {
        (self.muted_until.is_some() || self.archived.is_some()).then_some(SettingsUpdate {
            muted_until: self.muted_until,
            archived: self.archived,
        })
    }
}

/// Your settings of a conversation after a change.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "conversation_id": "7d6b4c2e-3f0a-4f8e-9a51-2c1d0e9b8a77",
    "muted_until": "2026-12-07T08:00:00Z",
    "archived": true,
    "seq": 58
}))]
pub struct SettingsResponse {
    pub conversation_id: Uuid,
    /// Muted until then; null: not muted.
    pub muted_until: Option<DateTime<Utc>>,
    /// Whether the conversation is archived, i.e. out of the unarchived inbox.
    pub archived: bool,
    /// This change's place in the change feed.
    pub seq: i64,
}

impl From<SettingsChanged> for SettingsResponse {
    fn from(change: SettingsChanged) -> Self {
        Self {
            conversation_id: change.conversation_id.as_uuid(),
            muted_until: change.settings.muted_until,
            archived: change.settings.archived,
            seq: change.seq.0,
        }
    }
}

/// The inbox's paging and filter.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InboxParams {
    /// 1–200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// Default 0.
    #[param(minimum = 0, maximum = 4294967295_i64)]
    pub offset: Option<i64>,
    /// `true`: only your archived conversations; `false`: only the others (the inbox proper).
    /// Left out: every conversation, archived or not, as before archiving existed. A
    /// conversation stays archived until a message newer than its archiving arrives, unless
    /// you muted it.
    #[param(example = false)]
    pub archived: Option<bool>,
}
