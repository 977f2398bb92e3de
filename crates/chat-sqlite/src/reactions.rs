//! Reactions and pins: the `reactions` table and the `pinned_*` columns of `messages`.
//!
//! Every change runs in one write transaction that checks membership, takes a seq from the
//! one counter ([`crate::seq::take`]) and stores it as the message's `change_seq`; SQLite has
//! one writer at a time, so what was checked still holds at commit. Reads load a page's
//! reactions with one extra query, `WHERE message_id IN (...)`.

use std::collections::HashMap;

use chat_domain::message::{Emoji, Marked, Message, Reaction};
use chat_domain::{ConversationId, MessageId, UserId};
use diesel::dsl::{count, count_star};
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel::sqlite::SqliteConnection;

use crate::error::{StorageError, StorageResult};
use crate::models::{MessageRow, id, ts};
use crate::schema::{conversation_members, messages, reactions};

/// The messages with their reactions, one query for all of them.
pub(crate) fn with_reactions(
    conn: &mut SqliteConnection,
    mut page: Vec<Message>,
) -> StorageResult<Vec<Message>> {
    if page.is_empty() {
        return Ok(page);
    }
    let ids: Vec<String> = page.iter().map(|m| m.id.to_string()).collect();
    let rows: Vec<(String, String, String)> = reactions::table
        .filter(reactions::message_id.eq_any(&ids))
        // Insertion order breaks ties of the same instant.
        .order((
            reactions::created_at.asc(),
            diesel::dsl::sql::<BigInt>("reactions.rowid").asc(),
        ))
        .select((reactions::message_id, reactions::emoji, reactions::user_id))
        .load(conn)?;
    if rows.is_empty() {
        return Ok(page);
    }
    // One pass over the rows, in reaction order, then one lookup per message.
    let mut by_message: HashMap<String, Vec<(Emoji, UserId)>> = HashMap::new();
    for (message, emoji, user) in rows {
        let emoji =
            Emoji::parse_stored(&emoji).map_err(|e| StorageError::corrupt("reaction emoji", e))?;
        by_message
            .entry(message)
            .or_default()
            .push((emoji, id("user id", &user)?));
    }
    for (message, key) in page.iter_mut().zip(&ids) {
        if let Some(rows) = by_message.remove(key) {
            message.reactions = Reaction::group(rows);
        }
    }
    Ok(page)
}

/// What a change needs to know of the message it marks.
struct Target {
    conversation_id: String,
    deleted: bool,
    pinned: bool,
}

/// The message, if it exists (in `conversation`, when given) and `user` is a member of its
/// conversation now; `None` otherwise.
fn target(
    conn: &mut SqliteConnection,
    message: MessageId,
    conversation: Option<ConversationId>,
    user: UserId,
) -> StorageResult<Option<Target>> {
    let mut query = messages::table
        .filter(messages::id.eq(message.to_string()))
        .select((
            messages::conversation_id,
            messages::deleted_at.is_not_null(),
            messages::pinned_at.is_not_null(),
        ))
        .into_boxed();
    if let Some(conversation) = conversation {
        query = query.filter(messages::conversation_id.eq(conversation.to_string()));
    }
    let found: Option<(String, bool, bool)> = query.first(conn).optional()?;
    let Some((conversation_id, deleted, pinned)) = found else {
        return Ok(None);
    };
    let member: i64 = conversation_members::table
        .filter(conversation_members::conversation_id.eq(&conversation_id))
        .filter(conversation_members::user_id.eq(user.to_string()))
        .select(count_star())
        .first(conn)?;
    Ok((member > 0).then_some(Target {
        conversation_id,
        deleted,
        pinned,
    }))
}

/// Takes a seq for a change to `message` and stores it as its `change_seq`; returns the
/// change with the conversation's members.
fn changed(
    conn: &mut SqliteConnection,
    message: MessageId,
    conversation_id: &str,
    count: usize,
) -> StorageResult<Marked> {
    let seq = crate::seq::take(conn)?;
    diesel::update(messages::table.filter(messages::id.eq(message.to_string())))
        .set(messages::change_seq.eq(seq.0))
        .execute(conn)?;
    let audience: Vec<String> = conversation_members::table
        .filter(conversation_members::conversation_id.eq(conversation_id))
        .select(conversation_members::user_id)
        .load(conn)?;
    Ok(Marked::Changed {
        seq,
        count,
        conversation_id: id("conversation id", conversation_id)?,
        audience: audience
            .iter()
            .map(|u| id("user id", u))
            .collect::<StorageResult<_>>()?,
    })
}

fn holders(conn: &mut SqliteConnection, message: &str, emoji: &Emoji) -> StorageResult<usize> {
    let n: i64 = reactions::table
        .filter(reactions::message_id.eq(message))
        .filter(reactions::emoji.eq(emoji.as_str()))
        .select(count_star())
        .first(conn)?;
    Ok(usize::try_from(n).unwrap_or(0))
}

/// `None`: the port's [`chat_domain::StoreError::Missing`].
pub(crate) fn react(
    conn: &mut SqliteConnection,
    message: MessageId,
    user: UserId,
    emoji: &Emoji,
    max_emoji: usize,
    at: chrono::DateTime<chrono::Utc>,
) -> StorageResult<Option<Marked>> {
    let Some(target) = target(conn, message, None, user)? else {
        return Ok(None);
    };
    if target.deleted {
        return Ok(Some(Marked::MessageDeleted));
    }
    let key = message.to_string();
    let held: i64 = reactions::table
        .filter(reactions::message_id.eq(&key))
        .filter(reactions::emoji.eq(emoji.as_str()))
        .filter(reactions::user_id.eq(user.to_string()))
        .select(count_star())
        .first(conn)?;
    if held > 0 {
        return Ok(Some(Marked::Unchanged));
    }
    let existing = holders(conn, &key, emoji)?;
    if existing == 0 {
        let distinct: i64 = reactions::table
            .filter(reactions::message_id.eq(&key))
            .select(count(reactions::emoji).aggregate_distinct())
            .first(conn)?;
        if usize::try_from(distinct).unwrap_or(usize::MAX) >= max_emoji {
            return Ok(Some(Marked::OverCap));
        }
    }
    diesel::insert_into(reactions::table)
        .values((
            reactions::message_id.eq(&key),
            reactions::emoji.eq(emoji.as_str()),
            reactions::user_id.eq(user.to_string()),
            reactions::created_at.eq(ts(at)),
        ))
        .execute(conn)?;
    changed(conn, message, &target.conversation_id, existing + 1).map(Some)
}

pub(crate) fn unreact(
    conn: &mut SqliteConnection,
    message: MessageId,
    user: UserId,
    emoji: &Emoji,
) -> StorageResult<Option<Marked>> {
    let Some(target) = target(conn, message, None, user)? else {
        return Ok(None);
    };
    let key = message.to_string();
    let removed = diesel::delete(
        reactions::table
            .filter(reactions::message_id.eq(&key))
            .filter(reactions::emoji.eq(emoji.as_str()))
            .filter(reactions::user_id.eq(user.to_string())),
    )
    .execute(conn)?;
    if removed == 0 {
        return Ok(Some(Marked::Unchanged));
    }
    let count = holders(conn, &key, emoji)?;
    changed(conn, message, &target.conversation_id, count).map(Some)
}

fn pinned_in(conn: &mut SqliteConnection, conversation: &str) -> StorageResult<usize> {
    let n: i64 = messages::table
        .filter(messages::conversation_id.eq(conversation))
        .filter(messages::pinned_at.is_not_null())
        .select(count_star())
        .first(conn)?;
    Ok(usize::try_from(n).unwrap_or(0))
}

pub(crate) fn pin(
    conn: &mut SqliteConnection,
    conversation: ConversationId,
    message: MessageId,
    user: UserId,
    max_pins: usize,
    at: chrono::DateTime<chrono::Utc>,
) -> StorageResult<Option<Marked>> {
    let Some(target) = target(conn, message, Some(conversation), user)? else {
        return Ok(None);
    };
    if target.deleted {
        return Ok(Some(Marked::MessageDeleted));
    }
    if target.pinned {
        return Ok(Some(Marked::Unchanged));
    }
    let pinned = pinned_in(conn, &target.conversation_id)?;
    if pinned >= max_pins {
        return Ok(Some(Marked::OverCap));
    }
    diesel::update(messages::table.filter(messages::id.eq(message.to_string())))
        .set((
            messages::pinned_at.eq(ts(at)),
            messages::pinned_by.eq(user.to_string()),
        ))
        .execute(conn)?;
    let pinned = pinned + 1;
    changed(conn, message, &target.conversation_id, pinned).map(Some)
}

pub(crate) fn unpin(
    conn: &mut SqliteConnection,
    conversation: ConversationId,
    message: MessageId,
    user: UserId,
) -> StorageResult<Option<Marked>> {
    let Some(target) = target(conn, message, Some(conversation), user)? else {
        return Ok(None);
    };
    let updated = diesel::update(
        messages::table
            .filter(messages::id.eq(message.to_string()))
            .filter(messages::pinned_at.is_not_null()),
    )
    .set((
        messages::pinned_at.eq(None::<chrono::NaiveDateTime>),
        messages::pinned_by.eq(None::<String>),
    ))
    .execute(conn)?;
    if updated == 0 {
        return Ok(Some(Marked::Unchanged));
    }
    let pinned = pinned_in(conn, &target.conversation_id)?;
    changed(conn, message, &target.conversation_id, pinned).map(Some)
}

/// The conversation's pinned messages with their reactions, the latest pin first.
pub(crate) fn pins(
    conn: &mut SqliteConnection,
    conversation: ConversationId,
) -> StorageResult<Vec<Message>> {
    let page = messages::table
        .filter(messages::conversation_id.eq(conversation.to_string()))
        .filter(messages::pinned_at.is_not_null())
        .order((messages::pinned_at.desc(), messages::change_seq.desc()))
        .select(MessageRow::as_select())
        .load(conn)?;
    crate::replies::complete(conn, page)
}
