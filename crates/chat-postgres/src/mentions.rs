//! Mentions: the `message_mentions` table, one row per member a message mentions.
//!
//! Who is mentioned is decided inside the write that stores the content (an append batch or
//! an edit), among the members that write already read under its conversations' locks: a
//! batch without `@` names costs no query at all, one with names costs one lookup of all its
//! names in `users` (on the `lower(username)` index) and one insert. Reads load a page's
//! mentions with one extra query, `WHERE message_id = ANY(...)`.

use std::collections::HashMap;

use chat_domain::conversation::ConversationKind;
use chat_domain::mention::{self, MentionCandidates};
use chat_domain::message::{Message, NewMessage, Seq};
use chat_domain::{ConversationId, MessageId, UserId};
use diesel::dsl::{exists, not};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use uuid::Uuid;

use crate::error::StorageResult;
use crate::schema::{hidden_messages, message_mentions, users};
use crate::sql::lower;

/// Unread mentions of the member `cm` in its conversation: an index range scan past the
/// member's marker. Messages deleted for everyone keep no mention rows, and the sender is
/// never among them; a hidden message is a primary-key probe per unread mention.
pub(crate) const UNREAD_MENTIONS_OF_MEMBER_SQL: &str = "(SELECT COUNT(*) FROM message_mentions mm \
       WHERE mm.user_id = cm.user_id AND mm.conversation_id = cm.conversation_id \
         AND mm.seq > cm.last_read_seq \
         AND NOT EXISTS (SELECT 1 FROM hidden_messages h \
                          WHERE h.user_id = cm.user_id AND h.message_id = mm.message_id))";

/// The user's unread mentions in `conversation` with the marker at `last_read_seq`: what
/// [`UNREAD_MENTIONS_OF_MEMBER_SQL`] counts there, for a marker just set.
pub(crate) fn unread_in(
    conn: &mut PgConnection,
    conversation: Uuid,
    user: Uuid,
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
    conn: &mut PgConnection,
    mut page: Vec<Message>,
) -> StorageResult<Vec<Message>> {
    if page.is_empty() {
        return Ok(page);
    }
    let ids: Vec<Uuid> = page.iter().map(|m| m.id.into()).collect();
    let rows: Vec<(Uuid, Uuid)> = message_mentions::table
        .filter(message_mentions::message_id.eq_any(&ids))
        .select((message_mentions::message_id, message_mentions::user_id))
        .load(conn)?;
    if rows.is_empty() {
        return Ok(page);
    }
    let mut by_message: HashMap<Uuid, Vec<UserId>> = HashMap::new();
    for (message, user) in rows {
        by_message
            .entry(message)
            .or_default()
            .push(UserId::from(user));
    }
    for message in &mut page {
        if let Some(mut mentioned) = by_message.remove(&Uuid::from(message.id)) {
            mentioned.sort();
            message.mentions = mentioned;
        }
    }
    Ok(page)
}

/// The users the names of some contents belong to, by lowercased username: read once for a
/// whole append batch (or an edit), inside its transaction; no query when nobody is named.
pub(crate) struct Named(HashMap<String, UserId>);

impl Named {
    pub(crate) fn of_batch(conn: &mut PgConnection, batch: &[&NewMessage]) -> StorageResult<Self> {
        let mut names: Vec<&str> = batch
            .iter()
            .flat_map(|m| m.mentions.names.iter().map(String::as_str))
            .collect();
        names.sort_unstable();
        names.dedup();
        Self::of(conn, &names)
    }

    pub(crate) fn of(conn: &mut PgConnection, names: &[&str]) -> StorageResult<Self> {
        if names.is_empty() {
            return Ok(Self(HashMap::new()));
        }
        let found: Vec<(Uuid, String)> = users::table
            .filter(lower(users::username).eq_any(names))
            .select((users::id, users::username))
            .load(conn)?;
        Ok(Self(
            found
                .into_iter()
                .map(|(id, name)| (name.to_ascii_lowercase(), UserId::from(id)))
                .collect(),
        ))
    }

    /// Who `candidates` from `sender` mention among `members` of a conversation of `kind`.
    pub(crate) fn resolve(
        &self,
        candidates: &MentionCandidates,
        kind: ConversationKind,
        sender: UserId,
        members: impl IntoIterator<Item = UserId>,
    ) -> Vec<UserId> {
        if candidates.is_empty() {
            return Vec::new();
        }
        let named: Vec<UserId> = candidates
            .names
            .iter()
            .filter_map(|name| self.0.get(name).copied())
            .collect();
        mention::resolve(candidates, kind, sender, members, &named)
    }
}

/// Who `candidates` mention, for one content (an edit): see [`Named`].
pub(crate) fn resolve(
    conn: &mut PgConnection,
    candidates: &MentionCandidates,
    kind: ConversationKind,
    sender: UserId,
    members: impl IntoIterator<Item = UserId>,
) -> StorageResult<Vec<UserId>> {
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<&str> = candidates.names.iter().map(String::as_str).collect();
    Ok(Named::of(conn, &names)?.resolve(candidates, kind, sender, members))
}

/// Stores the mentions of new messages, one insert for all of them; nothing when none
/// mentions anyone.
pub(crate) fn insert<'m>(
    conn: &mut PgConnection,
    messages: impl IntoIterator<Item = &'m Message>,
) -> StorageResult<()> {
    let rows: Vec<_> = messages
        .into_iter()
        .flat_map(|m| {
            m.mentions.iter().map(|user| {
                (
                    message_mentions::message_id.eq(Uuid::from(m.id)),
                    message_mentions::conversation_id.eq(Uuid::from(m.conversation_id)),
                    message_mentions::user_id.eq(Uuid::from(*user)),
                    message_mentions::seq.eq(m.seq.0),
                )
            })
        })
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    // Four parameters a row: chunks of 10,000 rows stay under PostgreSQL's 65,535.
    for chunk in rows.chunks(10_000) {
        diesel::insert_into(message_mentions::table)
            .values(chunk)
            .execute(conn)?;
    }
    Ok(())
}

/// Stores that message `message` (at `seq` in `conversation`) mentions `mentioned`, in place
/// of whatever it mentioned before.
pub(crate) fn replace(
    conn: &mut PgConnection,
    message: MessageId,
    conversation: ConversationId,
    seq: Seq,
    mentioned: &[UserId],
) -> StorageResult<()> {
    let key = Uuid::from(message);
    diesel::delete(message_mentions::table.filter(message_mentions::message_id.eq(key)))
        .execute(conn)?;
    let rows: Vec<_> = mentioned
        .iter()
        .map(|user| {
            (
                message_mentions::message_id.eq(key),
                message_mentions::conversation_id.eq(Uuid::from(conversation)),
                message_mentions::user_id.eq(Uuid::from(*user)),
                message_mentions::seq.eq(seq.0),
            )
        })
        .collect();
    if !rows.is_empty() {
        diesel::insert_into(message_mentions::table)
            .values(&rows)
            .execute(conn)?;
    }
    Ok(())
}
