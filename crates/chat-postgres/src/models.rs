//! Row structs, and their conversions to and from domain types in one place.

use chat_domain::conversation::{Conversation, ConversationKind, ConversationName, Member, Role};
use chat_domain::message::{
    ClientMessageId, Deletion, Message, MessageContent, NewMessage, Pin, Seq,
};
use chat_domain::user::{Email, User, Username};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use crate::error::{StorageError, StorageResult};
use crate::schema::{conversation_members, conversations, messages, users};

#[derive(Queryable, Selectable, Insertable, QueryableByName)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub struct UserRow {
    pub id: Uuid,
    pub username: String,
    pub email: String,
    pub password_hash: String,
    pub full_name: Option<String>,
    pub avatar_url: Option<String>,
    pub bio: Option<String>,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub token_generation: i64,
}

impl TryFrom<UserRow> for User {
    type Error = StorageError;

    fn try_from(row: UserRow) -> StorageResult<Self> {
        Ok(User {
            id: row.id.into(),
            username: Username::parse(&row.username)
                .map_err(|e| StorageError::corrupt("username", e))?,
            email: Email::parse(&row.email).map_err(|e| StorageError::corrupt("email", e))?,
            full_name: row.full_name,
            avatar_url: row.avatar_url,
            bio: row.bio,
            is_active: row.is_active,
            token_generation: row.token_generation,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

#[derive(Queryable, Selectable, Insertable, QueryableByName)]
#[diesel(table_name = conversations, check_for_backend(diesel::pg::Pg))]
pub struct ConversationRow {
    pub id: Uuid,
    pub kind: String,
    pub name: Option<String>,
    pub direct_key: Option<String>,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_message_seq: Option<i64>,
    pub last_activity_at: DateTime<Utc>,
    /// The position of the conversation's latest change in the change feed.
    pub change_seq: Option<i64>,
}

impl ConversationRow {
    pub fn new(c: &Conversation, direct_key: Option<String>, change_seq: Seq) -> Self {
        Self {
            id: c.id.into(),
            kind: c.kind.as_str().to_owned(),
            name: c.name.as_ref().map(|n| n.as_str().to_owned()),
            direct_key,
            created_by: c.created_by.into(),
            created_at: c.created_at,
            updated_at: c.updated_at,
            last_message_seq: None,
            last_activity_at: c.created_at,
            change_seq: Some(change_seq.0),
        }
    }
}

impl TryFrom<ConversationRow> for Conversation {
    type Error = StorageError;

    fn try_from(row: ConversationRow) -> StorageResult<Self> {
        Ok(Conversation {
            id: row.id.into(),
            kind: kind(&row.kind)?,
            name: row
                .name
                .as_deref()
                .map(ConversationName::parse_stored)
                .transpose()
                .map_err(|e| StorageError::corrupt("conversation name", e))?,
            created_by: row.created_by.into(),
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

pub fn kind(raw: &str) -> StorageResult<ConversationKind> {
    ConversationKind::parse(raw).ok_or_else(|| StorageError::corrupt("conversation kind", raw))
}

#[derive(Queryable, Selectable, Insertable, QueryableByName)]
#[diesel(table_name = conversation_members, check_for_backend(diesel::pg::Pg))]
pub struct MemberRow {
    pub conversation_id: Uuid,
    pub user_id: Uuid,
    pub role: String,
    pub joined_at: DateTime<Utc>,
    pub last_read_seq: i64,
    pub last_delivered_seq: i64,
    pub read_at: Option<DateTime<Utc>>,
}

impl MemberRow {
    /// A new member who has read nothing yet.
    pub fn joining(conversation: Uuid, user: Uuid, role: Role, at: DateTime<Utc>) -> Self {
        Self {
            conversation_id: conversation,
            user_id: user,
            role: role.as_str().to_owned(),
            joined_at: at,
            last_read_seq: 0,
            last_delivered_seq: 0,
            read_at: None,
        }
    }
}

impl TryFrom<MemberRow> for Member {
    type Error = StorageError;

    fn try_from(row: MemberRow) -> StorageResult<Self> {
        Ok(Member {
            user_id: row.user_id.into(),
            role: Role::parse(&row.role).ok_or_else(|| StorageError::corrupt("role", &row.role))?,
            joined_at: row.joined_at,
            last_read_seq: Seq(row.last_read_seq),
            last_delivered_seq: Seq(row.last_delivered_seq),
        })
    }
}

#[derive(Queryable, Selectable, QueryableByName)]
#[diesel(table_name = messages, check_for_backend(diesel::pg::Pg))]
pub struct MessageRow {
    pub seq: i64,
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub sender_id: Uuid,
    pub content: String,
    pub client_message_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub change_seq: Option<i64>,
    pub edited_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub deleted_by: Option<Uuid>,
    /// Set by a pin, never by an append.
    pub pinned_at: Option<DateTime<Utc>>,
    pub pinned_by: Option<Uuid>,
    /// Read into [`Message::reply_to`] by [`crate::replies::complete`].
    pub reply_to_id: Option<Uuid>,
    pub thread_root_id: Option<Uuid>,
}

/// A new message's row: only the columns an append writes (the change columns start NULL).
#[derive(Insertable)]
#[diesel(table_name = messages, check_for_backend(diesel::pg::Pg))]
pub struct NewMessageRow {
    pub seq: i64,
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub sender_id: Uuid,
    pub content: String,
    pub client_message_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub reply_to_id: Option<Uuid>,
    pub thread_root_id: Option<Uuid>,
}

impl NewMessageRow {
    /// The row for a new message as stored with its seq.
    pub fn of(message: &NewMessage, seq: Seq) -> Self {
        Self {
            seq: seq.0,
            id: message.id.into(),
            conversation_id: message.conversation_id.into(),
            sender_id: message.sender_id.into(),
            content: message.content.as_str().to_owned(),
            client_message_id: message
                .client_message_id
                .as_ref()
                .map(|c| c.as_str().to_owned()),
            created_at: message.created_at,
            updated_at: message.created_at,
            reply_to_id: crate::replies::stored_id(message),
            thread_root_id: message.thread_root_id.map(Uuid::from),
        }
    }
}

impl TryFrom<MessageRow> for Message {
    type Error = StorageError;

    fn try_from(row: MessageRow) -> StorageResult<Self> {
        // A deleted message's content is purged (stored as ''): only the tombstone remains.
        let (content, deletion) = match (row.deleted_at, row.deleted_by) {
            (Some(at), Some(by)) => (None, Some(Deletion { at, by: by.into() })),
            _ => (
                Some(
                    MessageContent::parse_stored(&row.content)
                        .map_err(|e| StorageError::corrupt("message content", e))?,
                ),
                None,
            ),
        };
        Ok(Message {
            id: row.id.into(),
            seq: Seq(row.seq),
            conversation_id: row.conversation_id.into(),
            sender_id: row.sender_id.into(),
            content,
            client_message_id: row
                .client_message_id
                .as_deref()
                .map(ClientMessageId::parse)
                .transpose()
                .map_err(|e| StorageError::corrupt("client message id", e))?,
            created_at: row.created_at,
            updated_at: row.updated_at,
            edited_at: row.edited_at,
            deletion,
            change_seq: row.change_seq.map(Seq),
            // Filled in by `reactions::with_reactions`, one query for a whole page.
            reactions: Vec::new(),
            pin: match (row.pinned_at, row.pinned_by) {
                (Some(pinned_at), Some(by)) => Some(Pin {
                    pinned_at,
                    pinned_by: by.into(),
                }),
                _ => None,
            },
            // Filled in by `replies::complete`, from the original as it now stands.
            reply_to: None,
            thread_root_id: row.thread_root_id.map(chat_domain::MessageId::from),
            // Filled in by `threads::summarize`, with the participants.
            thread: None,
            // Filled in by `mentions::with_mentions`, one query for a whole page.
            mentions: Vec::new(),
            attachments: Vec::new(),
        })
    }
}

/// Converts a list of rows, failing on the first that does not convert.
pub fn convert<R, T>(rows: Vec<R>) -> StorageResult<Vec<T>>
where
    T: TryFrom<R, Error = StorageError>,
{
    rows.into_iter().map(T::try_from).collect()
}

/// Ids as the database's uuids.
pub fn uuids<T: Copy + Into<Uuid>>(ids: &[T]) -> Vec<Uuid> {
    ids.iter().map(|&id| id.into()).collect()
}
