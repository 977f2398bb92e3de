//! Threads: the `thread_root_id` of a reply, and for each root with replies a `threads` row
//! (its counters) and its `thread_participants`. A batch's thread replies have their roots
//! checked in one query under the batch's conversation locks, and keep both tables in the
//! batch's transaction; every read of a page of messages reads the summaries of the roots
//! among them in one query.

use std::collections::HashMap;

use chat_domain::message::{Message, NewMessage, Seq, ThreadSummary};
use chat_domain::{ConversationId, MessageId, StoreError, UserId};
use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use uuid::Uuid;

use crate::error::StorageResult;
use crate::schema::{messages, thread_participants, threads};

/// Gives `root` a new place in the change feed, after the change that took its seq just
/// before (see [`Message::restates_root`]).
pub(crate) fn restate(conn: &mut PgConnection, root: MessageId) -> StorageResult<()> {
    let seq = crate::seq::take(conn)?;
    diesel::update(messages::table.filter(messages::id.eq(Uuid::from(root))))
        .set(messages::change_seq.eq(seq.0))
        .execute(conn)?;
    Ok(())
}

/// Sets the summary of every root among `page`.
pub(crate) fn summarize(conn: &mut PgConnection, page: &mut [Message]) -> StorageResult<()> {
    if page.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = page.iter().map(|m| m.id.into()).collect();
    let mut summaries = summaries(conn, &ids)?;
    for message in page {
        message.thread = summaries.remove(&message.id).map(Box::new);
    }
    Ok(())
}

/// The summaries of the threads of those of `ids` that have replies, in one query.
pub(crate) fn summaries(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> StorageResult<HashMap<MessageId, ThreadSummary>> {
    let rows: Vec<(Uuid, Uuid, i64, i64, DateTime<Utc>)> = thread_participants::table
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
        summaries
            .entry(root.into())
            .or_insert_with(|| ThreadSummary {
                reply_count: u64::try_from(count).unwrap_or(0),
                last_reply_at: last_at,
                last_reply_seq: Seq(last_seq),
                participant_ids: Vec::new(),
            })
            .participant_ids
            .push(UserId::from(user));
    }
    Ok(summaries)
}

/// A thread's root as a batch of appends found it.
#[derive(Clone, Copy)]
pub(crate) struct Root {
    id: Uuid,
    conversation: ConversationId,
    sender: Uuid,
    seq: i64,
    /// Deleted for everyone, or a thread reply itself: it takes no reply.
    closed: bool,
}

/// The roots a batch of appends replies in, read in one query inside the append's
/// transaction (under its conversations' locks); no query for a batch without thread
/// replies.
pub(crate) struct Roots(HashMap<Uuid, Root>);

impl Roots {
    pub(crate) fn of(conn: &mut PgConnection, batch: &[&NewMessage]) -> StorageResult<Self> {
        let ids: Vec<Uuid> = batch
            .iter()
            .filter_map(|m| m.thread_root_id.map(Uuid::from))
            .collect();
        if ids.is_empty() {
            return Ok(Self(HashMap::new()));
        }
        type Found = (Uuid, Uuid, Uuid, i64, Option<DateTime<Utc>>, Option<Uuid>);
        let rows: Vec<Found> = messages::table
            .filter(messages::id.eq_any(&ids))
            .select((
                messages::id,
                messages::conversation_id,
                messages::sender_id,
                messages::seq,
                messages::deleted_at,
                messages::thread_root_id,
            ))
            .load(conn)?;
        Ok(Self(
            rows.into_iter()
                .map(|(id, conversation, sender, seq, deleted_at, in_thread)| {
                    let closed = deleted_at.is_some() || in_thread.is_some();
                    let root = Root {
                        id,
                        conversation: conversation.into(),
                        sender,
                        seq,
                        closed,
                    };
                    (id, root)
                })
                .collect(),
        ))
    }

    /// The root `new` replies in: none for a message of the main history,
    /// [`StoreError::ThreadRoot`] unless it is a message of the same conversation, not
    /// deleted, and no thread reply itself.
    pub(crate) fn check(&self, new: &NewMessage) -> Result<Option<Root>, StoreError> {
        let Some(root) = new.thread_root_id else {
            return Ok(None);
        };
        match self.0.get(&Uuid::from(root)) {
            Some(root) if root.conversation == new.conversation_id && !root.closed => {
                Ok(Some(*root))
            }
            _ => Err(StoreError::ThreadRoot),
        }
    }
}

/// Counts `reply` (just inserted) in its root's thread and makes its sender a participant;
/// the thread's first reply makes the root's sender one too.
pub(crate) fn count(conn: &mut PgConnection, root: &Root, reply: &Message) -> StorageResult<()> {
    let existed = diesel::insert_into(threads::table)
        .values((
            threads::root_id.eq(root.id),
            threads::reply_count.eq(1),
            threads::last_reply_seq.eq(reply.seq.0),
            threads::last_reply_at.eq(reply.created_at),
        ))
        .on_conflict_do_nothing()
        .execute(conn)?
        == 0;
    if existed {
        diesel::update(threads::table.find(root.id))
            .set((
                threads::reply_count.eq(threads::reply_count + 1),
                threads::last_reply_seq.eq(reply.seq.0),
                threads::last_reply_at.eq(reply.created_at),
            ))
            .execute(conn)?;
    } else {
        join(conn, root.id, &[root.sender.into()], Seq(root.seq))?;
    }
    // The reply's sender and the members it mentions follow the thread from it on.
    let joining: Vec<UserId> = std::iter::once(reply.sender_id)
        .chain(reply.mentions.iter().copied())
        .collect();
    join(conn, root.id, &joining, reply.seq)
}

/// Makes `users` participants of the thread of `root` (those not in it yet), as joined with
/// the message at `seq`. The one way in: replying, and whatever else makes a participant
/// (being mentioned in a reply), goes through here.
pub(crate) fn join(
    conn: &mut PgConnection,
    root: Uuid,
    users: &[UserId],
    seq: Seq,
) -> StorageResult<()> {
    let rows: Vec<_> = users
        .iter()
        .map(|&user| {
            (
                thread_participants::root_id.eq(root),
                thread_participants::user_id.eq(Uuid::from(user)),
                thread_participants::joined_seq.eq(seq.0),
            )
        })
        .collect();
    diesel::insert_into(thread_participants::table)
        .values(&rows)
        .on_conflict_do_nothing()
        .execute(conn)?;
    Ok(())
}
