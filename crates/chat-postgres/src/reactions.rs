//! Reactions and pins: the `reactions` table and the `pinned_*` columns of `messages`.
//!
//! Every change runs in one transaction that first locks the message's conversation row
//! (`FOR NO KEY UPDATE`, as appends and membership changes do), so the membership it checks,
//! and the caps it counts, still hold when it commits on any node. It then takes a seq from
//! the one counter ([`crate::seq::take`]), last, to hold that lock as briefly as appends do,
//! and stores it as the message's `change_seq`. Reads load a page's reactions with one extra
//! query, `WHERE message_id = ANY(...)`.

use std::collections::HashMap;

use chat_domain::message::{Emoji, Marked, Message, Reaction};
use chat_domain::{ConversationId, MessageId, UserId};
use chrono::{DateTime, Utc};
use diesel::dsl::{count, count_star};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use uuid::Uuid;

use crate::error::{StorageError, StorageResult};
use crate::models::MessageRow;
use crate::schema::{conversation_members, conversations, messages, reactions};

/// The messages with their reactions, one query for all of them.
pub(crate) fn with_reactions(
    conn: &mut PgConnection,
    mut page: Vec<Message>,
) -> StorageResult<Vec<Message>> {
    if page.is_empty() {
        return Ok(page);
    }
    let ids: Vec<Uuid> = page.iter().map(|m| m.id.into()).collect();
    let rows: Vec<(Uuid, String, Uuid)> = reactions::table
        .filter(reactions::message_id.eq_any(&ids))
        .order((
            reactions::created_at.asc(),
            reactions::emoji.asc(),
            reactions::user_id.asc(),
        ))
        .select((reactions::message_id, reactions::emoji, reactions::user_id))
        .load(conn)?;
    if rows.is_empty() {
        return Ok(page);
    }
    // One pass over the rows, in reaction order, then one lookup per message.
    let mut by_message: HashMap<Uuid, Vec<(Emoji, UserId)>> = HashMap::new();
    for (message, emoji, user) in rows {
        let emoji =
            Emoji::parse_stored(&emoji).map_err(|e| StorageError::corrupt("reaction emoji", e))?;
        by_message
            .entry(message)
            .or_default()
            .push((emoji, UserId::from(user)));
    }
    for message in &mut page {
        if let Some(rows) = by_message.remove(&Uuid::from(message.id)) {
            message.reactions = Reaction::group(rows);
        }
    }
    Ok(page)
}

/// What a change needs to know of the message it marks.
struct Target {
    conversation_id: Uuid,
    deleted: bool,
    pinned: bool,
}

/// The message, if it exists (in `conversation`, when given) and `user` is a member of its
/// conversation, with the conversation's row locked until the transaction ends; `None`
/// otherwise.
fn target(
    conn: &mut PgConnection,
    message: MessageId,
    conversation: Option<ConversationId>,
    user: UserId,
) -> StorageResult<Option<Target>> {
    // A message never moves to another conversation: read which one, then lock it.
    let found: Option<Uuid> = messages::table
        .filter(messages::id.eq(Uuid::from(message)))
        .select(messages::conversation_id)
        .first(conn)
        .optional()?;
    let Some(conversation_id) = found else {
        return Ok(None);
    };
    if conversation.is_some_and(|c| Uuid::from(c) != conversation_id) {
        return Ok(None);
    }
    conversations::table
        .find(conversation_id)
        .select(conversations::id)
        .for_no_key_update()
        .first::<Uuid>(conn)?;
    let member: i64 = conversation_members::table
        .filter(conversation_members::conversation_id.eq(conversation_id))
        .filter(conversation_members::user_id.eq(Uuid::from(user)))
        .select(count_star())
        .first(conn)?;
    if member == 0 {
        return Ok(None);
    }
    // Read under the lock: a delete or pin of this message committed before it is seen.
    let (deleted, pinned): (bool, bool) = messages::table
        .filter(messages::id.eq(Uuid::from(message)))
        .select((
            messages::deleted_at.is_not_null(),
            messages::pinned_at.is_not_null(),
        ))
        .first(conn)?;
    Ok(Some(Target {
        conversation_id,
        deleted,
        pinned,
    }))
}

/// Takes a seq for a change to `message` and stores it as its `change_seq`; returns the
/// change with the conversation's members.
fn changed(
    conn: &mut PgConnection,
    message: MessageId,
    conversation_id: Uuid,
    count: usize,
) -> StorageResult<Marked> {
    let audience: Vec<Uuid> = conversation_members::table
        .filter(conversation_members::conversation_id.eq(conversation_id))
        .select(conversation_members::user_id)
        .load(conn)?;
    let seq = crate::seq::take(conn)?;
    diesel::update(messages::table.filter(messages::id.eq(Uuid::from(message))))
        .set(messages::change_seq.eq(seq.0))
        .execute(conn)?;
    Ok(Marked::Changed {
        seq,
        count,
        conversation_id: conversation_id.into(),
        audience: audience.into_iter().map(UserId::from).collect(),
    })
}

fn holders(conn: &mut PgConnection, message: Uuid, emoji: &Emoji) -> StorageResult<usize> {
    let n: i64 = reactions::table
        .filter(reactions::message_id.eq(message))
        .filter(reactions::emoji.eq(emoji.as_str()))
        .select(count_star())
        .first(conn)?;
    Ok(usize::try_from(n).unwrap_or(0))
}

/// `None`: the port's [`chat_domain::StoreError::Missing`].
pub(crate) fn react(
    conn: &mut PgConnection,
    message: MessageId,
    user: UserId,
    emoji: &Emoji,
    max_emoji: usize,
    at: DateTime<Utc>,
) -> StorageResult<Option<Marked>> {
    let Some(target) = target(conn, message, None, user)? else {
        return Ok(None);
    };
    if target.deleted {
        return Ok(Some(Marked::MessageDeleted));
    }
    let key = Uuid::from(message);
    let held: i64 = reactions::table
        .filter(reactions::message_id.eq(key))
        .filter(reactions::emoji.eq(emoji.as_str()))
        .filter(reactions::user_id.eq(Uuid::from(user)))
        .select(count_star())
        .first(conn)?;
    if held > 0 {
        return Ok(Some(Marked::Unchanged));
    }
    let existing = holders(conn, key, emoji)?;
    if existing == 0 {
        let distinct: i64 = reactions::table
            .filter(reactions::message_id.eq(key))
            .select(count(reactions::emoji).aggregate_distinct())
            .first(conn)?;
        if usize::try_from(distinct).unwrap_or(usize::MAX) >= max_emoji {
            return Ok(Some(Marked::OverCap));
        }
    }
    diesel::insert_into(reactions::table)
        .values((
            reactions::message_id.eq(key),
            reactions::emoji.eq(emoji.as_str()),
            reactions::user_id.eq(Uuid::from(user)),
            reactions::created_at.eq(at),
        ))
        .execute(conn)?;
    changed(conn, message, target.conversation_id, existing + 1).map(Some)
}

pub(crate) fn unreact(
    conn: &mut PgConnection,
    message: MessageId,
    user: UserId,
    emoji: &Emoji,
) -> StorageResult<Option<Marked>> {
    let Some(target) = target(conn, message, None, user)? else {
        return Ok(None);
    };
    let key = Uuid::from(message);
    let removed = diesel::delete(
        reactions::table
            .filter(reactions::message_id.eq(key))
            .filter(reactions::emoji.eq(emoji.as_str()))
            .filter(reactions::user_id.eq(Uuid::from(user))),
    )
    .execute(conn)?;
    if removed == 0 {
        return Ok(Some(Marked::Unchanged));
    }
    let count = holders(conn, key, emoji)?;
    changed(conn, message, target.conversation_id, count).map(Some)
}

fn pinned_in(conn: &mut PgConnection, conversation: Uuid) -> StorageResult<usize> {
    let n: i64 = messages::table
        .filter(messages::conversation_id.eq(conversation))
        .filter(messages::pinned_at.is_not_null())
        .select(count_star())
        .first(conn)?;
    Ok(usize::try_from(n).unwrap_or(0))
}

pub(crate) fn pin(
    conn: &mut PgConnection,
    conversation: ConversationId,
    message: MessageId,
    user: UserId,
    max_pins: usize,
    at: DateTime<Utc>,
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
    let pinned = pinned_in(conn, target.conversation_id)?;
    if pinned >= max_pins {
        return Ok(Some(Marked::OverCap));
    }
    diesel::update(messages::table.filter(messages::id.eq(Uuid::from(message))))
        .set((
            messages::pinned_at.eq(at),
            messages::pinned_by.eq(Uuid::from(user)),
        ))
        .execute(conn)?;
    changed(conn, message, target.conversation_id, pinned + 1).map(Some)
}

pub(crate) fn unpin(
    conn: &mut PgConnection,
    conversation: ConversationId,
    message: MessageId,
    user: UserId,
) -> StorageResult<Option<Marked>> {
    let Some(target) = target(conn, message, Some(conversation), user)? else {
        return Ok(None);
    };
    if !target.pinned {
        return Ok(Some(Marked::Unchanged));
    }
    diesel::update(messages::table.filter(messages::id.eq(Uuid::from(message))))
        .set((
            messages::pinned_at.eq(None::<DateTime<Utc>>),
            messages::pinned_by.eq(None::<Uuid>),
        ))
        .execute(conn)?;
    let pinned = pinned_in(conn, target.conversation_id)?;
    changed(conn, message, target.conversation_id, pinned).map(Some)
}

/// The conversation's pinned messages with their reactions, the latest pin first.
pub(crate) fn pins(
    conn: &mut PgConnection,
    conversation: ConversationId,
) -> StorageResult<Vec<Message>> {
    let page = messages::table
        .filter(messages::conversation_id.eq(Uuid::from(conversation)))
        .filter(messages::pinned_at.is_not_null())
        .order((messages::pinned_at.desc(), messages::change_seq.desc()))
        .select(MessageRow::as_select())
        .load(conn)?;
    crate::replies::complete(conn, page)
}
