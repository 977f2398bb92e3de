//! [`MessageStore`] over the `messages` table.

use chat_domain::conversation::{ConversationKind, Member};
use chat_domain::message::{AppendOutcome, Appended, HistoryCursor, Message, NewMessage, Seq};
use chat_domain::ports::{MessageStore, OnCommit, StoreResult};
use chat_domain::{ConversationId, MessageId, UserId};
use diesel::dsl::max;
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;

use crate::SqliteStore;
use crate::error::{StorageError, StorageResult};
use crate::models::{MemberRow, MessageRow, NewMessageRow, convert, ts};
use crate::schema::{conversation_members, conversations, messages};

impl MessageStore for SqliteStore {
    fn append(&self, new: &NewMessage, on_commit: OnCommit) -> StoreResult<AppendOutcome> {
        self.commits.append(new, on_commit)
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
        self.read(|conn| {
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
        })
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

/// Appends one message inside the caller's transaction: `None` when the sender is not a
/// member. The group-commit thread runs this for every append of a batch.
pub(crate) fn append_in(
    conn: &mut SqliteConnection,
    new: &NewMessage,
) -> StorageResult<Option<AppendOutcome>> {
    let conversation_id = new.conversation_id.to_string();
    let sender_id = new.sender_id.to_string();
    let row = NewMessageRow {
        id: new.id.to_string(),
        conversation_id: conversation_id.clone(),
        sender_id: sender_id.clone(),
        content: new.content.as_str(),
        client_message_id: new.client_message_id.as_ref().map(|c| c.as_str()),
        created_at: ts(new.created_at),
        updated_at: ts(new.created_at),
    };
    // The members as of this transaction: the membership check, and the audience.
    let mut members: Vec<Member> = convert(
        conversation_members::table
            .filter(conversation_members::conversation_id.eq(&conversation_id))
            .order(conversation_members::joined_at.asc())
            .select(MemberRow::as_select())
            .load(conn)?,
    )?;
    if !members.iter().any(|m| m.user_id == new.sender_id) {
        return Ok(None);
    }
    let kind: String = conversations::table
        .find(&conversation_id)
        .select(conversations::kind)
        .first(conn)?;
    let kind = ConversationKind::parse(&kind)
        .ok_or_else(|| StorageError::corrupt("conversation kind", &kind))?;
    if let Some(client_id) = row.client_message_id {
        let existing = messages::table
            .filter(messages::sender_id.eq(&sender_id))
            .filter(messages::client_message_id.eq(client_id))
            .select(MessageRow::as_select())
            .first(conn)
            .optional()?;
        if let Some(existing) = existing {
            let appended = Appended::Existing(existing.try_into()?);
            return Ok(Some(AppendOutcome {
                appended,
                kind,
                members,
            }));
        }
    }
    let stored = diesel::insert_into(messages::table)
        .values(&row)
        .returning(MessageRow::as_returning())
        .get_result(conn)?;
    diesel::update(conversations::table.find(&conversation_id))
        .set((
            conversations::last_message_seq.eq(stored.seq),
            conversations::last_activity_at.eq(row.created_at),
        ))
        .execute(conn)?;
    // Sending is reading: the sender has seen everything up to their own message.
    diesel::update(conversation_members::table.find((&conversation_id, &sender_id)))
        .filter(conversation_members::last_read_seq.lt(stored.seq))
        .set((
            conversation_members::last_read_seq.eq(stored.seq),
            conversation_members::read_at.eq(row.created_at),
        ))
        .execute(conn)?;
    let seq = Seq(stored.seq);
    for member in members.iter_mut().filter(|m| m.user_id == new.sender_id) {
        member.last_read_seq = member.last_read_seq.max(seq);
    }
    let appended = Appended::Created(stored.try_into()?);
    Ok(Some(AppendOutcome {
        appended,
        kind,
        members,
    }))
}
