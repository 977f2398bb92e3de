//! Mentions: the `message_mentions` table, one row per member a message mentions.
//!
//! Who is mentioned is decided inside the write that stores the content (an append or an
//! edit), among the members that write already read: a content without `@` costs no query
//! at all, one with names costs one lookup of those names in `users` and one insert. Reads
//! load a page's mentions with one extra query, `WHERE message_id IN (...)`.

use std::collections::HashMap;

use chat_domain::conversation::ConversationKind;
use chat_domain::mention::{self, MentionCandidates};
use chat_domain::message::{Message, Seq};
use chat_domain::{ConversationId, MessageId, UserId};
use diesel::dsl::{exists, not};
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;

use crate::error::StorageResult;
use crate::models::id;
use crate::schema::{hidden_messages, message_mentions, users};

/// Unread mentions per conversation of one user: a range scan of the mentions index past
/// each of the user's markers. Messages deleted for everyone keep no mention rows, and the
/// sender is never among them; a hidden message is a primary-key probe per unread mention.
pub(crate) const UNREAD_MENTIONS_SQL: &str = "SELECT cm.conversation_id, \
       (SELECT COUNT(*) FROM message_mentions mm \
         WHERE mm.user_id = cm.user_id AND mm.conversation_id = cm.conversation_id \
           AND mm.seq > cm.last_read_seq \
           AND NOT EXISTS (SELECT 1 FROM hidden_messages h \
                            WHERE h.user_id = cm.user_id AND h.message_id = mm.message_id)) \
       AS unread_count \
     FROM conversation_members cm WHERE cm.user_id = ?";

/// The same count as [`UNREAD_MENTIONS_SQL`] for the member `cm` of conversation `c`, as a
/// column of the inbox's query.
pub(crate) const INBOX_UNREAD_MENTIONS_SQL: &str = "(SELECT COUNT(*) FROM message_mentions mm \
       WHERE mm.user_id = cm.user_id AND mm.conversation_id = c.id \
         AND mm.seq > cm.last_read_seq \
         AND NOT EXISTS (SELECT 1 FROM hidden_messages h \
                          WHERE h.user_id = cm.user_id AND h.message_id = mm.message_id))";

/// The user's unread mentions in `conversation` with the marker at `last_read_seq`: what
/// [`UNREAD_MENTIONS_SQL`] counts there, for a marker just set.
pub(crate) fn unread_in(
    conn: &mut SqliteConnection,
    conversation: &str,
    user: &str,
    last_read_seq: i64,
) -> StorageResult<u64> {
    let hidden = hidden_messages::table
        .filter(hidden_messages::user_id.eq(user))
        .filter(hidden_messages::message_id.eq(message_mentions::message_id));
    let n: i64 = message_mentions::table
        .filter(message_mentions::user_id.eq(user))
        .filter(message_mentions::conversation_id.eq(conversation))
        .filter(message_mentions::seq.gt(last_read_seq))
        .filter(not(exists(hidden)))
        .count()
        .get_result(conn)?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// The messages with their mentions, one query for all of them.
pub(crate) fn with_mentions(
    conn: &mut SqliteConnection,
    mut page: Vec<Message>,
) -> StorageResult<Vec<Message>> {
    if page.is_empty() {
        return Ok(page);
    }
    let ids: Vec<String> = page.iter().map(|m| m.id.to_string()).collect();
    let rows: Vec<(String, String)> = message_mentions::table
        .filter(message_mentions::message_id.eq_any(&ids))
        .select((message_mentions::message_id, message_mentions::user_id))
        .load(conn)?;
    if rows.is_empty() {
        return Ok(page);
    }
    let mut by_message: HashMap<String, Vec<UserId>> = HashMap::new();
    for (message, user) in rows {
        by_message
            .entry(message)
            .or_default()
            .push(id("user id", &user)?);
    }
    for (message, key) in page.iter_mut().zip(&ids) {
        if let Some(mut mentioned) = by_message.remove(key) {
            mentioned.sort();
            message.mentions = mentioned;
        }
    }
    Ok(page)
}

/// Who `candidates` from `sender` mention among `members` of a conversation of `kind`, read
/// inside the caller's write: no query unless `candidates` names someone.
pub(crate) fn resolve(
    conn: &mut SqliteConnection,
    candidates: &MentionCandidates,
    kind: ConversationKind,
    sender: UserId,
    members: impl IntoIterator<Item = UserId>,
) -> StorageResult<Vec<UserId>> {
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let named = if candidates.names.is_empty() {
        Vec::new()
    } else {
        // `username` is COLLATE NOCASE: the lowercased names find any spelling, on its index.
        let found: Vec<String> = users::table
            .filter(users::username.eq_any(&candidates.names))
            .select(users::id)
            .load(conn)?;
        found
            .iter()
            .map(|raw| id("user id", raw))
            .collect::<StorageResult<Vec<UserId>>>()?
    };
    Ok(mention::resolve(candidates, kind, sender, members, &named))
}

/// Stores that message `message` (at `seq` in `conversation`) mentions `mentioned`, in place
/// of whatever it mentioned before.
pub(crate) fn replace(
    conn: &mut SqliteConnection,
    message: MessageId,
    conversation: ConversationId,
    seq: Seq,
    mentioned: &[UserId],
) -> StorageResult<()> {
    let key = message.to_string();
    diesel::delete(message_mentions::table.filter(message_mentions::message_id.eq(&key)))
        .execute(conn)?;
    insert(conn, message, conversation, seq, mentioned)
}

/// Stores the mentions of a new message: nothing at all when it mentions nobody.
pub(crate) fn insert(
    conn: &mut SqliteConnection,
    message: MessageId,
    conversation: ConversationId,
    seq: Seq,
    mentioned: &[UserId],
) -> StorageResult<()> {
    if mentioned.is_empty() {
        return Ok(());
    }
    let (message, conversation) = (message.to_string(), conversation.to_string());
    let rows: Vec<_> = mentioned
        .iter()
        .map(|user| {
            (
                message_mentions::message_id.eq(&message),
                message_mentions::conversation_id.eq(&conversation),
                message_mentions::user_id.eq(user.to_string()),
                message_mentions::seq.eq(seq.0),
            )
        })
        .collect();
    diesel::insert_into(message_mentions::table)
        .values(&rows)
        .execute(conn)?;
    Ok(())
}
