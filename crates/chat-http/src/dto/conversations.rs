//! Conversations and their members.

use chat_domain::conversation::{ConversationDetails, ConversationSummary, Participant};
use chat_domain::service::CreateConversation;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::messages::MessageResponse;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateConversationBody {
    /// The other members; you are always a member. Duplicates are ignored.
    #[schema(max_items = 999)]
    pub participant_ids: Vec<Uuid>,
    /// Required for a group: 1–100 characters after trimming, no control characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\x00-\\x1F\\x7F-\\x9F\\u061C\\u200E\\u200F\\u202A-\\u202E\\u2066-\\u2069]*[^\\s\\x00-\\x1F\\x7F-\\x9F\\u061C\\u200E\\u200F\\u202A-\\u202E\\u2066-\\u2069][^\\x00-\\x1F\\x7F-\\x9F\\u061C\\u200E\\u200F\\u202A-\\u202E\\u2066-\\u2069]*$"
    )]
    pub name: Option<String>,
    /// Defaults to `false` with exactly one other participant and no name (a direct
    /// conversation), and `true` otherwise.
    pub is_group: Option<bool>,
}

impl From<CreateConversationBody> for CreateConversation {
    fn from(body: CreateConversationBody) -> Self {
        Self {
            participant_ids: body.participant_ids.into_iter().map(Into::into).collect(),
            name: body.name,
            is_group: body.is_group,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenameConversationBody {
    /// 1–100 characters after trimming, no control characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\x00-\\x1F\\x7F-\\x9F\\u061C\\u200E\\u200F\\u202A-\\u202E\\u2066-\\u2069]*[^\\s\\x00-\\x1F\\x7F-\\x9F\\u061C\\u200E\\u200F\\u202A-\\u202E\\u2066-\\u2069][^\\x00-\\x1F\\x7F-\\x9F\\u061C\\u200E\\u200F\\u202A-\\u202E\\u2066-\\u2069]*$"
    )]
    pub name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRoleBody {
    /// `owner` (hands ownership over; you become an admin), `admin` or `member`.
    #[schema(example = "admin", pattern = "^(owner|admin|member)$")]
    pub role: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMembersBody {
    /// Users to add; a group has at most 1000 members.
    #[schema(min_items = 1, max_items = 999)]
    pub user_ids: Vec<Uuid>,
}

/// A member and their public profile.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ParticipantResponse {
    pub id: Uuid,
    pub username: String,
    pub full_name: Option<String>,
    pub avatar_url: Option<String>,
    /// `owner`, `admin` or `member`.
    #[schema(example = "member")]
    pub role: String,
    pub joined_at: DateTime<Utc>,
    /// The member's read marker: they have read every message up to this seq.
    #[schema(example = 41)]
    pub last_read_seq: i64,
    /// Every message up to this seq reached one of the member's devices (a live socket, or
    /// a fetch of messages); never below `last_read_seq`.
    #[schema(example = 42)]
    pub last_delivered_seq: i64,
}

impl From<Participant> for ParticipantResponse {
    fn from(p: Participant) -> Self {
        Self {
            id: p.user.id.as_uuid(),
            username: p.user.username.as_str().to_owned(),
            full_name: p.user.full_name,
            avatar_url: p.user.avatar_url,
            role: p.role.as_str().to_owned(),
            joined_at: p.joined_at,
            last_read_seq: p.last_read_seq.0,
            last_delivered_seq: p.last_delivered_seq.0,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConversationResponse {
    pub id: Uuid,
    /// `direct` or `group`.
    #[schema(example = "group")]
    pub kind: String,
    pub is_group: bool,
    /// A group's name; null for a direct conversation.
    pub name: Option<String>,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub participants: Vec<ParticipantResponse>,
    /// Your own mute: muted until then; null: not muted.
    pub muted_until: Option<DateTime<Utc>>,
    /// Whether you archived it (and no message arrived since, unless you muted it).
    pub archived: bool,
}

impl From<ConversationDetails> for ConversationResponse {
    fn from(details: ConversationDetails) -> Self {
        let c = details.conversation;
        Self {
            id: c.id.as_uuid(),
            kind: c.kind.as_str().to_owned(),
            is_group: c.kind == chat_domain::conversation::ConversationKind::Group,
            name: c.name.map(|n| n.as_str().to_owned()),
            created_by: c.created_by.as_uuid(),
            created_at: c.created_at,
            updated_at: c.updated_at,
            participants: details.participants.into_iter().map(Into::into).collect(),
            muted_until: details.settings.muted_until,
            archived: details.settings.archived,
        }
    }
}

/// A conversation as listed in the caller's inbox.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ConversationSummaryResponse {
    #[serde(flatten)]
    pub conversation: ConversationResponse,
    pub last_message: Option<MessageResponse>,
    /// Messages from others after your read marker.
    pub unread_count: u64,
    /// Of those, the messages that mention you.
    pub unread_mentions: u64,
    pub last_activity_at: DateTime<Utc>,
}

impl From<ConversationSummary> for ConversationSummaryResponse {
    fn from(s: ConversationSummary) -> Self {
        Self {
            conversation: ConversationDetails {
                conversation: s.conversation,
                participants: s.participants,
                settings: s.settings,
            }
            .into(),
            last_message: s.last_message.map(Into::into),
            unread_count: s.unread_count,
            unread_mentions: s.unread_mentions,
            last_activity_at: s.last_activity_at,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// 1–200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// Default 0.
    #[param(minimum = 0, maximum = 4294967295_i64)]
    pub offset: Option<i64>,
}
