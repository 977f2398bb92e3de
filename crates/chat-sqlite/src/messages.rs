//! [`MessageStore`] over the `messages` table.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use chat_domain::conversation::{ConversationKind, Member};
use chat_domain::message::{AppendOutcome, Appended, HistoryCursor, Message, NewMessage, Seq};
use chat_domain::ports::{MessageStore, OnAppended, StoreResult};
use chat_domain::{ConversationId, MessageId, UserId};
use chrono::NaiveDateTime;
use diesel::dsl::max;
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;

use crate::error::{StorageError, StorageResult};
use crate::models::{MemberRow, MessageRow, NewMessageRow, convert, ts};
use crate::schema::{conversation_members, conversations, messages};
use crate::{MembershipEpoch, SqliteStore};

impl MessageStore for SqliteStore {
    fn submit(&self, new: NewMessage, done: OnAppended) {
        self.commits.submit(new, done);
    }

    fn find(&self, id: MessageId) -> StoreResult<Option<Message>> {
        self.read(|conn| {
            messages::table
                .filter(messages::id.eq(id.to_string()))
                .select(MessageRow::as_select())
                .first(conn)
                .optional()?
                .map(Message::try_from)
                .transpose()
        })
    }

    fn history(
        &self,
        conversation: ConversationId,
        cursor: HistoryCursor,
        limit: u32,
    ) -> StoreResult<Vec<Message>> {
        let latest = cursor == HistoryCursor::Latest;
        if latest && let Some(page) = self.recent.latest(conversation, limit as usize) {
            return Ok(page);
        }
        let epoch = self.recent.epoch();
        let page = self.read(|conn| {
            let base = messages::table
                .filter(messages::conversation_id.eq(conversation.to_string()))
                .select(MessageRow::as_select())
                .limit(i64::from(limit))
                .into_boxed();
            let mut rows: Vec<MessageRow> = match cursor {
                HistoryCursor::Latest => base.order(messages::seq.desc()).load(conn)?,
                HistoryCursor::Before(Seq(seq)) => base
                    .filter(messages::seq.lt(seq))
                    .order(messages::seq.desc())
                    .load(conn)?,
                HistoryCursor::After(Seq(seq)) => base
                    .filter(messages::seq.gt(seq))
                    .order(messages::seq.asc())
                    .load(conn)?,
            };
            if !matches!(cursor, HistoryCursor::After(_)) {
                rows.reverse();
            }
            convert(rows)
        })?;
        if latest {
            let whole = page.len() < limit as usize;
            self.recent.fill(conversation, &page, whole, epoch);
        }
        Ok(page)
    }

    fn since(&self, user: UserId, since: Seq, limit: u32) -> StoreResult<Vec<Message>> {
        self.read(|conn| {
            let mine = conversation_members::table
                .filter(conversation_members::user_id.eq(user.to_string()))
                .select(conversation_members::conversation_id);
            convert(
                messages::table
                    .filter(messages::seq.gt(since.0))
                    .filter(messages::conversation_id.eq_any(mine))
                    .order(messages::seq.asc())
                    .limit(i64::from(limit))
                    .select(MessageRow::as_select())
                    .load(conn)?,
            )
        })
    }

    fn last_seq_for(&self, user: UserId) -> StoreResult<Seq> {
        self.read(|conn| {
            let last: Option<i64> = conversation_members::table
                .inner_join(conversations::table)
                .filter(conversation_members::user_id.eq(user.to_string()))
                .select(max(conversations::last_message_seq))
                .first(conn)?;
            Ok(Seq(last.unwrap_or(0)))
        })
    }
}

/// Appends a batch of messages inside the caller's transaction, in order, and returns one
/// result per message: `None` when its sender is not a member of its conversation.
///
/// Work that messages of one batch share is done once: each conversation's kind and members
/// are read once, and its activity and the senders' read markers are written once, at the
/// end, with the batch's last values. Each message itself costs one insert (a retried client
/// message id costs a lookup instead). A message whose insert fails gets that error without
/// affecting the others; a failure of the shared writes fails the whole transaction.
pub(crate) fn append_batch(
    conn: &mut SqliteConnection,
    batch: &[&NewMessage],
    known: &mut KnownConversations,
) -> StorageResult<Vec<StorageResult<Option<AppendOutcome>>>> {
    known.refresh();
    let conversations_seen = &mut known.conversations;
    let mut activity: HashMap<ConversationId, (i64, NaiveDateTime)> = HashMap::new();
    let mut markers: HashMap<(ConversationId, UserId), (i64, NaiveDateTime)> = HashMap::new();
    let mut results = Vec::with_capacity(batch.len());
    for new in batch {
        let (kind, members) = match conversations_seen.entry(new.conversation_id) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => match conversation_state(conn, new.conversation_id)? {
                Some(state) => entry.insert(state),
                None => {
                    results.push(Ok(None));
                    continue;
                }
            },
        };
        if !members.iter().any(|m| m.user_id == new.sender_id) {
            results.push(Ok(None));
            continue;
        }
        let appended = match insert_or_find(conn, new) {
            Ok(appended) => appended,
            Err(error) => {
                results.push(Err(error));
                continue;
            }
        };
        if let Appended::Existing(_) = &appended {
            // A retry reports whether the earlier message has been read since, which the
            // remembered read markers may not know yet: read them again.
            let (kind, members) = conversation_state(conn, new.conversation_id)?
                .ok_or_else(|| StorageError::corrupt("conversation", "gone while appending"))?;
            results.push(Ok(Some(AppendOutcome {
                appended,
                kind,
                members,
            })));
            continue;
        }
        if let Appended::Created(message) = &appended {
            let at = ts(message.created_at);
            activity.insert(message.conversation_id, (message.seq.0, at));
            markers.insert(
                (message.conversation_id, message.sender_id),
                (message.seq.0, at),
            );
            // Sending is reading: the sender has seen everything up to their own message.
            for member in members.iter_mut().filter(|m| m.user_id == new.sender_id) {
                member.last_read_seq = member.last_read_seq.max(message.seq);
            }
        }
        results.push(Ok(Some(AppendOutcome {
            appended,
            kind: *kind,
            members: members.clone(),
        })));
    }
    for (conversation, (seq, at)) in activity {
        diesel::update(conversations::table.find(conversation.to_string()))
            .set((
                conversations::last_message_seq.eq(seq),
                conversations::last_activity_at.eq(at),
            ))
            .execute(conn)?;
    }
    for ((conversation, sender), (seq, at)) in markers {
        diesel::update(
            conversation_members::table.find((conversation.to_string(), sender.to_string())),
        )
        .filter(conversation_members::last_read_seq.lt(seq))
        .set((
            conversation_members::last_read_seq.eq(seq),
            conversation_members::read_at.eq(at),
        ))
        .execute(conn)?;
    }
    Ok(results)
}

/// The kind and members of the conversations the commit thread has appended to, so a busy
/// conversation costs no reads per batch. Only membership writes change what is kept here
/// (read markers matter only to messages that already exist, and those are read afresh), and
/// those writes raise the [`MembershipEpoch`]: the first batch after one starts over.
pub(crate) struct KnownConversations {
    conversations: HashMap<ConversationId, (ConversationKind, Vec<Member>)>,
    epoch: Arc<MembershipEpoch>,
    seen_epoch: u64,
}

impl KnownConversations {
    /// Conversations kept before the memory is cleared and refilled.
    const MAX_KEPT: usize = 50_000;

    pub(crate) fn new(epoch: Arc<MembershipEpoch>) -> Self {
        let seen_epoch = epoch.current();
        Self {
            conversations: HashMap::new(),
            epoch,
            seen_epoch,
        }
    }

    /// Forgets everything if membership changed since the last batch. Called under the writer
    /// lock, where no membership write can be half done.
    fn refresh(&mut self) {
        let epoch = self.epoch.current();
        if epoch != self.seen_epoch || self.conversations.len() > Self::MAX_KEPT {
            self.conversations.clear();
            self.seen_epoch = epoch;
        }
    }

    /// Forgets everything: after a failed batch, what it read may have been rolled back.
    pub(crate) fn forget(&mut self) {
        self.conversations.clear();
    }
}

/// A conversation's kind and members, as this transaction sees them; `None` if it does not
/// exist.
fn conversation_state(
    conn: &mut SqliteConnection,
    id: ConversationId,
) -> StorageResult<Option<(ConversationKind, Vec<Member>)>> {
    let key = id.to_string();
    let members = convert(
        conversation_members::table
            .filter(conversation_members::conversation_id.eq(&key))
            .order(conversation_members::joined_at.asc())
            .select(MemberRow::as_select())
            .load(conn)?,
    )?;
    let kind: Option<String> = conversations::table
        .find(&key)
        .select(conversations::kind)
        .first(conn)
        .optional()?;
    let Some(kind) = kind else {
        return Ok(None);
    };
    let kind = ConversationKind::parse(&kind)
        .ok_or_else(|| StorageError::corrupt("conversation kind", &kind))?;
    Ok(Some((kind, members)))
}

/// Inserts the message, or finds the one its sender already stored in the same conversation
/// with the same client message id.
///
/// The lookup comes first, under the writer lock, rather than an insert that the unique index
/// turns into a no-op: SQLite's `AUTOINCREMENT` spends a seq on an insert it then ignores, and
/// a retry must not leave a gap in the conversation's numbering.
fn insert_or_find(conn: &mut SqliteConnection, new: &NewMessage) -> StorageResult<Appended> {
    let conversation_id = new.conversation_id.to_string();
    let sender_id = new.sender_id.to_string();
    if let Some(client_message_id) = &new.client_message_id {
        let existing = messages::table
            .filter(messages::conversation_id.eq(&conversation_id))
            .filter(messages::sender_id.eq(&sender_id))
            .filter(messages::client_message_id.eq(client_message_id.as_str()))
            .select(MessageRow::as_select())
            .first(conn)
            .optional()?;
        if let Some(existing) = existing {
            return Ok(Appended::Existing(existing.try_into()?));
        }
    }
    let row = NewMessageRow {
        id: new.id.to_string(),
        conversation_id,
        sender_id,
        content: new.content.as_str(),
        client_message_id: new.client_message_id.as_ref().map(|c| c.as_str()),
        created_at: ts(new.created_at),
        updated_at: ts(new.created_at),
    };
    // Only the seq comes back: every other field is what was just written, so reading the
    // row back (and parsing its timestamps) would be work for nothing.
    let seq: i64 = diesel::insert_into(messages::table)
        .values(&row)
        .returning(messages::seq)
        .get_result(conn)?;
    Ok(Appended::Created(new.stored_as(Seq(seq))))
}
