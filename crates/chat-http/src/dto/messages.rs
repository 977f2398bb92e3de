//! Messages, read receipts and unread counts.

use chat_domain::message::{HistoryCursor, MessageView, Seq, ThreadSummary};
use chat_domain::paging::parse_limit;
use chat_domain::read_state::{ReadReceipt, UnreadCounts};
use chat_domain::service::SendMessage;
use chat_domain::{AttachmentId, MessageId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::attachments::AttachmentResponse;
use crate::error::ApiError;
use uuid::Uuid;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendMessageBody {
    /// 1–4000 characters after trimming.
    #[schema(
        example = "Hello!",
        min_length = 1,
        max_length = 4000,
        pattern = "^[^\\x00-\\x08\\x0B-\\x1F\\x7F-\\x9F]*[^\\s\\x00-\\x1F\\x7F-\\x9F][^\\x00-\\x08\\x0B-\\x1F\\x7F-\\x9F]*$"
    )]
    pub content: String,
    /// Your own id for this message: sending again with the same id returns the stored
    /// message (200) instead of storing a duplicate.
    #[schema(
        example = "7d1c2f0e-tab-3",
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\x00-\\x1F\\x7F-\\x9F]*$"
    )]
    pub client_message_id: Option<String>,
    /// The message this one replies to: a message of the same conversation that is not
    /// deleted (otherwise 422 `validation_error` on `reply_to_id`).
    #[schema(example = "0193a5c2-1111-7c3a-9d8e-2b4f6a1c0e55")]
    pub reply_to_id: Option<Uuid>,
    /// Send into the thread of this message: a message of the same conversation that is not
    /// deleted and is no thread reply itself (otherwise 422 `validation_error` on
    /// `thread_root_id`). A thread reply is read from `GET /api/v1/messages/{id}/thread`
    /// and catch-up, not from the conversation's history.
    #[schema(example = "0193a5c2-3333-7c3a-9d8e-2b4f6a1c0e55")]
    pub thread_root_id: Option<Uuid>,
    /// Files to send with the message: ids of your own uploads (`POST /api/v1/attachments`)
    /// not attached to any message yet, at most 10, no repeats (otherwise 422
    /// `validation_error` on `attachment_ids`, and nothing is stored).
    #[schema(example = json!(["0193a5c2-5555-7c3a-9d8e-2b4f6a1c0e55"]), max_items = 10)]
    pub attachment_ids: Option<Vec<Uuid>>,
}

impl From<SendMessageBody> for SendMessage {
    fn from(body: SendMessageBody) -> Self {
        Self {
            content: body.content,
            client_message_id: body.client_message_id,
            reply_to_id: body.reply_to_id.map(MessageId::from),
            thread_root_id: body.thread_root_id.map(MessageId::from),
            attachment_ids: body
                .attachment_ids
                .unwrap_or_default()
                .into_iter()
                .map(AttachmentId::from)
                .collect(),
        }
    }
}

/// An edit: the message's new content.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"content": "Hello, everyone!"}))]
pub struct EditMessageBody {
    /// 1–4000 characters after trimming, as when sending.
    #[schema(
        example = "Hello, everyone!",
        min_length = 1,
        max_length = 4000,
        pattern = "^[^\\x00-\\x08\\x0B-\\x1F\\x7F-\\x9F]*[^\\s\\x00-\\x1F\\x7F-\\x9F][^\\x00-\\x08\\x0B-\\x1F\\x7F-\\x9F]*$"
    )]
    pub content: String,
}

/// Whose copy of the message `DELETE` removes.
#[derive(Debug, Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeleteParams {
    /// `everyone` (the default): its sender, or a group's owner or admin, deletes it for
    /// every member, leaving a tombstone. `me`: any member hides it from their own history,
    /// catch-up and unread counts.
    #[param(example = "everyone", pattern = "^(everyone|me)$")]
    pub scope: Option<String>,
}

/// A message from the caller's side.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MessageResponse {
    pub id: Uuid,
    /// The server-wide order of messages: increases with every message stored.
    pub seq: i64,
    pub conversation_id: Uuid,
    pub sender_id: Uuid,
    /// The other member of a direct conversation; null in a group.
    pub recipient_id: Option<Uuid>,
    /// Null once the message is deleted for everyone: the content is purged.
    #[schema(example = "Hello!")]
    pub content: Option<String>,
    pub client_message_id: Option<String>,
    /// For a message you received: you have read it. For one you sent: every other member
    /// has read it.
    pub is_read: bool,
    #[serde(serialize_with = "super::time::rfc3339")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "super::time::rfc3339")]
    pub updated_at: DateTime<Utc>,
    /// When its sender last edited it; null if never.
    #[serde(serialize_with = "super::time::rfc3339_opt")]
    pub edited_at: Option<DateTime<Utc>>,
    /// When it was deleted for everyone; null unless it is a tombstone.
    #[serde(serialize_with = "super::time::rfc3339_opt")]
    pub deleted_at: Option<DateTime<Utc>>,
    /// Who deleted it for everyone: its sender, or a group's owner or admin.
    pub deleted_by: Option<Uuid>,
    /// One entry per emoji, in the order each emoji was first used.
    pub reactions: Vec<ReactionResponse>,
    /// When the message was pinned in its conversation; null when it is not pinned.
    #[schema(example = "2026-12-07T10:15:00Z")]
    pub pinned_at: Option<DateTime<Utc>>,
    /// Who pinned it; null when it is not pinned.
    pub pinned_by: Option<Uuid>,
    /// The message this one replies to, as that message now stands; null if it replies to
    /// nothing.
    pub reply_to: Option<ReplyToResponse>,
    /// The members its content mentions (`@username`, and `@all` in a group: every member
    /// but the sender), ascending by id, as decided when it was sent or last edited: a name
    /// that is no member's then, and the sender's own, mention nobody. Empty once deleted.
    #[schema(example = json!(["0193a5c2-2222-7c3a-9d8e-2b4f6a1c0e55"]))]
    pub mentions: Vec<Uuid>,
    /// The thread this message is a reply in; null for a message of the conversation's
    /// main history.
    pub thread_root_id: Option<Uuid>,
    /// For a thread's root: its replies so far; null while it has none.
    pub thread: Option<ThreadResponse>,
    /// The files sent with it, in the order sent; empty once deleted for everyone.
    pub attachments: Vec<AttachmentResponse>,
}

/// What a thread's root shows of its replies. A reply takes no new place in the change feed
/// for its root: a client counts each reply it learns of whose `seq` is past
/// `last_reply_seq` (see docs/websocket.md).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "reply_count": 3,
    "last_reply_at": "2026-12-07T10:20:00Z",
    "last_reply_seq": 4121,
    "participant_ids": ["0193a5c2-2222-7c3a-9d8e-2b4f6a1c0e55", "0193a5c2-4444-7c3a-9d8e-2b4f6a1c0e55"]
}))]
pub struct ThreadResponse {
    /// Every reply, those deleted for everyone included.
    pub reply_count: u64,
    /// When the newest reply was sent.
    #[serde(serialize_with = "super::time::rfc3339")]
    pub last_reply_at: DateTime<Utc>,
    /// The newest reply's seq.
    pub last_reply_seq: i64,
    /// Who follows the thread (its replies count as unread for them only): the root's
    /// sender, then everyone who replied, in the order they joined.
    pub participant_ids: Vec<Uuid>,
}

impl From<ThreadSummary> for ThreadResponse {
    fn from(t: ThreadSummary) -> Self {
        Self {
            reply_count: t.reply_count,
            last_reply_at: t.last_reply_at,
            last_reply_seq: t.last_reply_seq.0,
            participant_ids: t.participant_ids.iter().map(|u| u.as_uuid()).collect(),
        }
    }
}

/// What a reply shows of the message it replies to. Read from the original whenever the
/// reply is read: an edit of the original shows here, and once the original is deleted
/// for everyone `snippet` is null.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "0193a5c2-1111-7c3a-9d8e-2b4f6a1c0e55",
    "sender_id": "0193a5c2-2222-7c3a-9d8e-2b4f6a1c0e55",
    "snippet": "Ship it?"
}))]
pub struct ReplyToResponse {
    /// The original message's id.
    pub id: Uuid,
    /// Who sent the original.
    pub sender_id: Uuid,
    /// The first 100 characters of the original's content; null once it is deleted.
    #[schema(example = "Ship it?", max_length = 100)]
    pub snippet: Option<String>,
}

/// The reactions of one emoji to a message.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReactionResponse {
    #[schema(example = "👍")]
    pub emoji: String,
    /// How many users reacted with it.
    #[schema(example = 3)]
    pub count: usize,
    /// Whether you are one of them.
    pub me: bool,
}

impl From<MessageView> for MessageResponse {
    fn from(view: MessageView) -> Self {
        let reactions = view
            .reactions()
            .map(|(emoji, count, me)| ReactionResponse {
                emoji: emoji.as_str().to_owned(),
                count,
                me,
            })
            .collect();
        let m = view.message;
        let (pinned_at, pinned_by) = match &m.pin {
            Some(pin) => (Some(pin.pinned_at), Some(pin.pinned_by.as_uuid())),
            None => (None, None),
        };
        Self {
            id: m.id.as_uuid(),
            seq: m.seq.0,
            conversation_id: m.conversation_id.as_uuid(),
            sender_id: m.sender_id.as_uuid(),
            recipient_id: view.recipient_id.map(|r| r.as_uuid()),
            content: m.text().map(str::to_owned),
            client_message_id: m.client_message_id.map(|c| c.as_str().to_owned()),
            is_read: view.is_read,
            created_at: m.created_at,
            updated_at: m.updated_at,
            edited_at: m.edited_at,
            deleted_at: m.deletion.map(|d| d.at),
            deleted_by: m.deletion.map(|d| d.by.as_uuid()),
            reactions,
            pinned_at,
            pinned_by,
            reply_to: m.reply_to.map(|r| ReplyToResponse {
                id: r.id.as_uuid(),
                sender_id: r.sender_id.as_uuid(),
                snippet: r.snippet,
            }),
            thread_root_id: m.thread_root_id.map(|r| r.as_uuid()),
            thread: m.thread.map(|t| ThreadResponse::from(*t)),
            mentions: m.mentions.iter().map(|u| u.as_uuid()).collect(),
            attachments: m.attachments.iter().map(AttachmentResponse::from).collect(),
        }
    }
}

/// The query of a history page; documented through [`HistoryCursorParams`].
#[derive(Debug, Deserialize)]
pub struct HistoryParams {
    /// 1–200, default 50.
    pub limit: Option<i64>,
    /// Return the `limit` messages just before this seq.
    pub before: Option<i64>,
    /// Return the `limit` messages just after this seq.
    pub after: Option<i64>,
}

impl HistoryParams {
    /// The page asked for: its cursor and its size.
    pub fn page(&self) -> Result<(HistoryCursor, u32), ApiError> {
        let limit =
            parse_limit(self.limit).map_err(|e| ApiError::validation(e.field, e.message))?;
        let cursor = match (self.before, self.after) {
            (None, None) => HistoryCursor::Latest,
            (Some(before), None) => HistoryCursor::Before(Seq(before)),
            (None, Some(after)) => HistoryCursor::After(Seq(after)),
            (Some(_), Some(_)) => {
                return Err(ApiError::validation(
                    "before",
                    "give either before or after, not both",
                ));
            }
        };
        Ok((cursor, limit))
    }
}

// `before` and `after` are query parameters that exclude each other, which a list of
// separate parameters cannot say; the document declares them as one exploded object
// parameter with at most one property, so that generated clients and fuzzers know that
// giving both is a 422. `HistoryParams` is what the handler reads.
/// Where the page starts: `before=<seq>` or `after=<seq>`, not both. Neither: the latest.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(max_properties = 1)]
pub struct HistoryCursorParams {
    /// Return the `limit` messages just before this seq.
    #[serde(default)]
    pub before: i64,
    /// Return the `limit` messages just after this seq.
    #[serde(default)]
    pub after: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReadReceiptResponse {
    pub message_id: Uuid,
    pub conversation_id: Uuid,
    pub user_id: Uuid,
    /// Every message of the conversation up to this seq is read by the user.
    pub last_read_seq: i64,
    #[serde(serialize_with = "super::time::rfc3339")]
    pub read_at: DateTime<Utc>,
    /// The place in the change feed of the marker's latest move by marking read or setting
    /// it; absent while it only ever moved by you sending.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub seq: Option<i64>,
}

impl From<ReadReceipt> for ReadReceiptResponse {
    fn from(receipt: ReadReceipt) -> Self {
        Self {
            message_id: receipt.message_id.as_uuid(),
            conversation_id: receipt.marker.conversation_id.as_uuid(),
            user_id: receipt.marker.user_id.as_uuid(),
            last_read_seq: receipt.marker.last_read_seq.0,
            read_at: receipt.marker.read_at,
            seq: receipt.marker.seq.map(|seq| seq.0),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "unread_count": 2,
    "unread_mentions": 2,
    "conversations": [
        {"conversation_id": "7d6b4c2e-3f0a-4f8e-9a51-2c1d0e9b8a77", "unread_count": 2, "unread_mentions": 0, "muted": false},
        {"conversation_id": "1c3e5a7b-9d0f-4b2a-8c6e-4f1a3b5c7d99", "unread_count": 5, "unread_mentions": 2, "muted": true}
    ]
}))]
pub struct UnreadCountResponse {
    /// The badge: the sum of `unread_count` over the conversations that are not muted.
    /// A muted conversation's unread messages are left out here and counted only in its own
    /// entry below.
    pub unread_count: u64,
    /// The unread messages that mention you, over every conversation: muted ones count here
    /// (a mute silences a conversation's chatter, not what is addressed to you).
    pub unread_mentions: u64,
    /// Only conversations with unread messages, muted ones included.
    pub conversations: Vec<ConversationUnread>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ConversationUnread {
    pub conversation_id: Uuid,
    pub unread_count: u64,
    /// Of those, the messages that mention you.
    pub unread_mentions: u64,
    /// You muted the conversation: its count is not in the total.
    pub muted: bool,
}

impl From<UnreadCounts> for UnreadCountResponse {
    fn from(counts: UnreadCounts) -> Self {
        let mentions = |id| {
            counts
                .mentions
                .iter()
                .find(|(with, _)| *with == id)
                .map_or(0, |(_, n)| *n)
        };
        Self {
            unread_count: counts.total,
            unread_mentions: counts.total_mentions,
            conversations: counts
                .conversations
                .iter()
                .map(|&(id, n)| ConversationUnread {
                    conversation_id: id.as_uuid(),
                    unread_count: n,
                    unread_mentions: mentions(id),
                    muted: counts.muted.contains(&id),
                })
                .collect(),
        }
    }
}
