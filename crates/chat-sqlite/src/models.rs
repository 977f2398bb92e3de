//! Row structs, and their conversions to and from domain types in one place.

use chat_domain::conversation::{Conversation, ConversationKind, ConversationName, Member, Role};
use chat_domain::message::{ClientMessageId, Deletion, Message, MessageContent, Pin, Seq};
use chat_domain::user::{Email, User, Username};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use crate::error::{StorageError, StorageResult};
use crate::schema::{conversation_members, conversations, messages, users};
use crate::timestamp::Stored;

pub fn ts(at: DateTime<Utc>) -> NaiveDateTime {
    at.naive_utc()
}

pub fn utc(at: NaiveDateTime) -> DateTime<Utc> {
    at.and_utc()
}

pub fn id<T: From<Uuid>>(what: &'static str, raw: &str) -> StorageResult<T> {
    Uuid::parse_str(raw)
        .map(T::from)
        .map_err(|e| StorageError::corrupt(what, e))
}

#[derive(Queryable, Selectable, Insertable, QueryableByName)]
#[diesel(table_name = users, check_for_backend(diesel::sqlite::Sqlite))]
pub struct UserRow {
    pub id: String,
    pub username: String,
    pub email: String,
    pub password_hash: String,
    pub full_name: Option<String>,
    pub avatar_url: Option<String>,
    pub bio: Option<String>,
    pub is_active: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub token_generation: i64,
}

impl TryFrom<UserRow> for User {
    type Error = StorageError;

    fn try_from(row: UserRow) -> StorageResult<Self> {
        Ok(User {
            id: id("user id", &row.id)?,
            username: Username::parse(&row.username)
                .map_err(|e| StorageError::corrupt("username", e))?,
            email: Email::parse(&row.email).map_err(|e| StorageError::corrupt("email", e))?,
            full_name: row.full_name,
            avatar_url: row.avatar_url,
            bio: row.bio,
            is_active: row.is_active,
            token_generation: row.token_generation,
            created_at: utc(row.created_at),
            updated_at: utc(row.updated_at),
        })
    }
}

#[derive(Queryable, Selectable, Insertable, QueryableByName)]
#[diesel(table_name = conversations, check_for_backend(diesel::sqlite::Sqlite))]
pub struct ConversationRow {
    pub id: String,
    pub kind: String,
    pub name: Option<String>,
    pub direct_key: Option<String>,
    pub created_by: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub last_message_seq: Option<i64>,
    pub last_activity_at: NaiveDateTime,
    /// The position of the conversation's latest change in the change feed.
    pub change_seq: Option<i64>,
}

impl ConversationRow {
    pub fn new(c: &Conversation, direct_key: Option<String>, change_seq: Seq) -> Self {
        Self {
            id: c.id.to_string(),
            kind: c.kind.as_str().to_owned(),
            name: c.name.as_ref().map(|n| n.as_str().to_owned()),
            direct_key,
            created_by: c.created_by.to_string(),
            created_at: ts(c.created_at),
            updated_at: ts(c.updated_at),
            last_message_seq: None,
            last_activity_at: ts(c.created_at),
            change_seq: Some(change_seq.0),
        }
    }
}

impl TryFrom<ConversationRow> for Conversation {
    type Error = StorageError;

    fn try_from(row: ConversationRow) -> StorageResult<Self> {
        Ok(Conversation {
            id: id("conversation id", &row.id)?,
            kind: ConversationKind::parse(&row.kind)
                .ok_or_else(|| StorageError::corrupt("conversation kind", &row.kind))?,
            name: row
                .name
                .as_deref()
                .map(ConversationName::parse_stored)
                .transpose()
                .map_err(|e| StorageError::corrupt("conversation name", e))?,
            created_by: id("user id", &row.created_by)?,
            created_at: utc(row.created_at),
            updated_at: utc(row.updated_at),
        })
    }
}

#[derive(Queryable, Selectable, Insertable, QueryableByName)]
#[diesel(table_name = conversation_members, check_for_backend(diesel::sqlite::Sqlite))]
pub struct MemberRow {
    pub conversation_id: String,
    pub user_id: String,
    pub role: String,
    pub joined_at: NaiveDateTime,
    pub last_read_seq: i64,
    pub last_delivered_seq: i64,
    pub read_at: Option<NaiveDateTime>,
}

impl MemberRow {
    pub fn read_at(&self) -> Option<DateTime<Utc>> {
        self.read_at.map(utc)
    }
}

impl TryFrom<MemberRow> for Member {
    type Error = StorageError;

    fn try_from(row: MemberRow) -> StorageResult<Self> {
        Ok(Member {
            user_id: id("user id", &row.user_id)?,
            role: Role::parse(&row.role).ok_or_else(|| StorageError::corrupt("role", &row.role))?,
            joined_at: utc(row.joined_at),
            last_read_seq: Seq(row.last_read_seq),
            last_delivered_seq: Seq(row.last_delivered_seq),
        })
    }
}

#[derive(Queryable, Selectable, QueryableByName)]
#[diesel(table_name = messages, check_for_backend(diesel::sqlite::Sqlite))]
pub struct MessageRow {
    pub seq: i64,
    pub id: String,
    pub conversation_id: String,
    pub sender_id: String,
    pub content: String,
    pub client_message_id: Option<String>,
    pub created_at: Stored,
    pub updated_at: Stored,
    pub change_seq: Option<i64>,
    pub edited_at: Option<Stored>,
    pub deleted_at: Option<Stored>,
    pub deleted_by: Option<String>,
    pub pinned_at: Option<Stored>,
    pub pinned_by: Option<String>,
    /// Read into [`Message::reply_to`] by [`crate::replies::complete`].
    pub reply_to_id: Option<String>,
    pub thread_root_id: Option<String>,
}

#[derive(Insertable)]
#[diesel(table_name = messages)]
pub struct NewMessageRow<'a> {
    pub id: String,
    pub conversation_id: String,
    pub sender_id: String,
    pub content: &'a str,
    pub client_message_id: Option<&'a str>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub reply_to_id: Option<String>,
    pub thread_root_id: Option<String>,
}

impl TryFrom<MessageRow> for Message {
    type Error = StorageError;

    fn try_from(row: MessageRow) -> StorageResult<Self> {
        // A deleted message's content is purged (stored as ''): only the tombstone remains.
        let (content, deletion) = match (row.deleted_at, row.deleted_by.as_deref()) {
            (Some(at), Some(by)) => (
                None,
                Some(Deletion {
                    at: at.utc(),
                    by: id("user id", by)?,
                }),
            ),
            _ => (
                Some(
                    MessageContent::parse_stored(&row.content)
                        .map_err(|e| StorageError::corrupt("message content", e))?,
                ),
                None,
            ),
        };
        Ok(Message {
            id: id("message id", &row.id)?,
            seq: Seq(row.seq),
            conversation_id: id("conversation id", &row.conversation_id)?,
            sender_id: id("user id", &row.sender_id)?,
            content,
            client_message_id: row
                .client_message_id
                .as_deref()
                .map(ClientMessageId::parse)
                .transpose()
                .map_err(|e| StorageError::corrupt("client message id", e))?,
            created_at: row.created_at.utc(),
            updated_at: row.updated_at.utc(),
            edited_at: row.edited_at.map(Stored::utc),
            deletion,
            change_seq: row.change_seq.map(Seq),
            // Filled in by `reactions::with_reactions`, one query for a whole page.
            reactions: Vec::new(),
            pin: match (row.pinned_at, row.pinned_by) {
                (Some(at), Some(by)) => Some(Pin {
                    pinned_at: at.utc(),
                    pinned_by: id("user id", &by)?,
                }),
                _ => None,
            },
            // Filled in by `replies::complete`, from the original as it now stands.
            reply_to: None,
            thread_root_id: row
                .thread_root_id
                .as_deref()
                .map(|root| id("message id", root))
                .transpose()?,
            // Filled in by `threads::summaries`, with the participants.
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
