//! Threads: the `thread_root_id` of a reply, and for each root with replies a `threads` row
//! (its counters) and its `thread_participants`. A thread reply's append checks its root and
//! keeps both in its own write; every read of a page of messages reads the summaries of the
//! roots among them in one query.

use std::collections::HashMap;

use chat_domain::message::{Message, Seq, ThreadSummary};
use chat_domain::{ConversationId, MessageId, StoreError, UserId};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;

use crate::error::StorageResult;
use crate::models::id;
use crate::schema::{messages, thread_participants, threads};
use crate::timestamp::Stored;

/// Gives `root` a new place in the change feed, after the change that took its seq just
/// before (see [`Message::restates_root`]).
pub(crate) fn restate(conn: &mut SqliteConnection, root: MessageId) -> StorageResult<()> {
    let seq = crate::seq::take(conn)?;
    diesel::update(messages::table.filter(messages::id.eq(root.to_string())))
        .set(messages::change_seq.eq(seq.0))
        .execute(conn)?;
    Ok(())
}

/// Sets the summary of every root among `page`.
pub(crate) fn summarize(conn: &mut SqliteConnection, page: &mut [Message]) -> StorageResult<()> {
    if page.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = page.iter().map(|m| m.id.to_string()).collect();
    let mut summaries = summaries(conn, &ids)?;
    for message in page {
        message.thread = summaries.remove(&message.id).map(Box::new);
    }
    Ok(())
}

/// The summaries of the threads of those of `ids` that have replies: one query, a probe of
/// the participants' primary key per message asked about.
pub(crate) fn summaries(
    conn: &mut SqliteConnection,
    ids: &[String],
) -> StorageResult<HashMap<MessageId, ThreadSummary>> {
    let rows: Vec<(String, String, i64, i64, Stored)> = thread_participants::table
        .inner_join(threads::table)
        .filter(thread_participants::root_id.eq_any(ids))
        .order((
            thread_participants::root_id,
            thread_participants::joined_seq,
            thread_participants::user_id,
        ))
        .select((
            thread_participants::root_id,
            thread_participants::user_id,
            threads::reply_count,
            threads::last_reply_seq,
            threads::last_reply_at,
        ))
        .load(conn)?;
    let mut summaries: HashMap<MessageId, ThreadSummary> = HashMap::new();
    for (root, user, count, last_seq, last_at) in rows {
        let user: UserId = id("user id", &user)?;
        summaries
            .entry(id("message id", &root)?)
            .or_insert_with(|| ThreadSummary {
                reply_count: u64::try_from(count).unwrap_or(0),
                last_reply_at: last_at.utc(),
                last_reply_seq: Seq(last_seq),
                participant_ids: Vec::new(),
            })
            .participant_ids
            .push(user);
    }
    Ok(summaries)
}

/// A thread reply's root, checked inside the append's transaction:
/// [`StoreError::ThreadRoot`] unless `root` is a message of `conversation`, not deleted,
/// and no thread reply itself.
pub(crate) fn root(
    conn: &mut SqliteConnection,
    conversation: ConversationId,
    root: MessageId,
) -> StorageResult<Result<Root, StoreError>> {
    type Found = (String, String, i64, Option<NaiveDateTime>, Option<String>);
    let found: Option<Found> = messages::table
        .filter(messages::id.eq(root.to_string()))
        .select((
            messages::conversation_id,
            messages::sender_id,
            messages::seq,
            messages::deleted_at,
            messages::thread_root_id,
        ))
        .first(conn)
        .optional()?;
    Ok(match found {
        Some((in_conversation, sender, seq, None, None))
            if in_conversation == conversation.to_string() =>
        {
            Ok(Root {
                id: root.to_string(),
                sender: id("user id", &sender)?,
                seq: Seq(seq),
            })
        }
        _ => Err(StoreError::ThreadRoot),
    })
}

/// A thread's root as a reply's append found it.
pub(crate) struct Root {
    id: String,
    sender: UserId,
    seq: Seq,
}

/// Counts `reply` (just inserted) in its root's thread and makes its sender a participant;
/// the thread's first reply makes the root's sender one too.
pub(crate) fn count(
    conn: &mut SqliteConnection,
    root: &Root,
    reply: &Message,
) -> StorageResult<()> {
    let at = crate::models::ts(reply.created_at);
    let started = diesel::update(threads::table.find(&root.id))
        .set((
            threads::reply_count.eq(threads::reply_count + 1),
            threads::last_reply_seq.eq(reply.seq.0),
            threads::last_reply_at.eq(at),
        ))
        .execute(conn)?
        > 0;
    if !started {
        diesel::insert_into(threads::table)
            .values((
                threads::root_id.eq(&root.id),
                threads::reply_count.eq(1),
                threads::last_reply_seq.eq(reply.seq.0),
                threads::last_reply_at.eq(at),
            ))
            .execute(conn)?;
        join(conn, &root.id, &[root.sender], root.seq)?;
    }
    // The reply's sender and the members it mentions follow the thread from it on.
    let joining: Vec<UserId> = std::iter::once(reply.sender_id)
        .chain(reply.mentions.iter().copied())
        .collect();
    join(conn, &root.id, &joining, reply.seq)
}

/// Makes `users` participants of the thread of `root` (those not in it yet), as joined with
/// the message at `seq`. The one way in: replying, and whatever else makes a participant
/// (being mentioned in a reply), goes through here.
pub(crate) fn join(
    conn: &mut SqliteConnection,
    root: &str,
    users: &[UserId],
    seq: Seq,
) -> StorageResult<()> {
    for user in users {
        diesel::insert_or_ignore_into(thread_participants::table)
            .values((
                thread_participants::root_id.eq(root),
                thread_participants::user_id.eq(user.to_string()),
                thread_participants::joined_seq.eq(seq.0),
            ))
            .execute(conn)?;
    }
    Ok(())
}
