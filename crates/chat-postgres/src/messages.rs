//! [`MessageStore`] over the `messages` table, and the batch append the group commit runs.
//!
//! # Why seqs stay exact across nodes
//!
//! A client catches up with "every message after seq N", so once any reader has seen seq N,
//! no message with a seq at or below N may appear later. A PostgreSQL sequence cannot promise
//! that: transaction A takes seq 7, transaction B takes seq 8 and commits first, a reader sees
//! 8, then A commits 7 behind the reader's back, and the reader never catches up on it.
//!
//! So seqs come from the one row of `message_seq`, taken with
//! `UPDATE message_seq SET last = last + n RETURNING last`. The update locks the row until the
//! transaction ends, so the next transaction (on any node) gets its seqs only once this one
//! has committed (or rolled back, giving them back), and PostgreSQL makes a committed
//! transaction visible before it releases its locks. Seqs are therefore handed out in commit
//! order: whatever any snapshot sees is exactly seqs 1..=M for some M, with no holes to fill
//! later. To keep that lock short, a batch takes it as late as it can, after every check and
//! lookup (the users its `@names` name included), and holds it only for its inserts (messages
//! and their mentions, which need the seqs), the conversation and read-marker updates that go
//! with them, and the commit. One batch carries up to 512 messages, so one lock (and one
//! commit) serves many appends.
//!
//! # Checks that must hold when the append commits
//!
//! The batch locks its conversations' rows (in id order, `FOR NO KEY UPDATE`) before reading
//! their members and, for direct conversations, whether the other member is still active.
//! Membership changes and deactivations lock the same rows first, so on every node an append
//! is refused exactly when its sender is not a member (or its direct partner is deactivated)
//! as it commits. Nothing read is kept from one batch to the next: another node may have
//! changed it in between.
//!
//! # Retries
//!
//! A message whose client message id its sender already used in the conversation is not
//! stored again: the stored one comes back. The lookup comes first, as with SQLite, and it is
//! exact across nodes: it runs once the batch holds its conversations' locks, which every
//! append to them takes too, so whatever stored the key before has committed and is seen.
//! The unique index keeps the last word all the same: inserts are `ON CONFLICT DO NOTHING`,
//! and should one be skipped (a writer that does not follow this protocol), the batch takes
//! its inserts back, gives their seqs back, answers the skipped appends with the stored
//! messages and inserts the rest again. A retry never spends a seq.

use std::collections::HashMap;

use chat_domain::conversation::{ConversationKind, Member};
use chat_domain::mention::MentionCandidates;
use chat_domain::message::{
    AppendOutcome, Appended, Deletion, Emoji, HiddenMessage, HistoryCursor, Marked, Message,
    MessageChanged, MessageContent, NewMessage, ReplyTo, Seq,
};
use chat_domain::ports::{MessageStore, OnAppended, OnChanged, StoreResult};
use chat_domain::webhook::{EventKind, EventRefs};
use chat_domain::{ConversationId, MessageId, StoreError, UserId};
use chrono::{DateTime, Utc};
use diesel::dsl::{AsSelect, SqlTypeOf, exists, max, not};
use diesel::pg::{Pg, PgConnection};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Text, Timestamptz, Uuid as SqlUuid};
use uuid::Uuid;

use crate::conversations::members_of;
use crate::error::{StorageError, StorageResult};
use crate::models::{MessageRow, NewMessageRow, kind};
use crate::schema::{
    conversation_members, conversations, hidden_messages, message_seq, messages,
    reactions as reaction_rows, users,
};
use crate::{PgStore, announce_in_order};
use crate::{attachments, mentions, reactions, replies, threads};

impl MessageStore for PgStore {
    fn submit(&self, new: NewMessage, done: OnAppended) {
        self.commits.submit(new, done);
    }

    fn find(&self, id: MessageId) -> StoreResult<Option<Message>> {
        self.read(|conn| {
            messages::table
                .filter(messages::id.eq(Uuid::from(id)))
                .select(MessageRow::as_select())
                .first(conn)
                .optional()
                .map_err(StorageError::from)
                .and_then(|row| replies::complete_one(conn, row))
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
                .filter(messages::conversation_id.eq(Uuid::from(conversation)))
                .filter(messages::thread_root_id.is_null())
                .select(MessageRow::as_select())
                .limit(i64::from(limit))
                .into_boxed();
            page_at(conn, base, cursor)
        })
    }

    fn thread(
        &self,
        root: MessageId,
        cursor: HistoryCursor,
        limit: u32,
    ) -> StoreResult<Vec<Message>> {
        self.read(|conn| {
            // A range scan of the (thread_root_id, seq) index.
            let base = messages::table
                .filter(messages::thread_root_id.eq(Uuid::from(root)))
                .select(MessageRow::as_select())
                .limit(i64::from(limit))
                .into_boxed();
            page_at(conn, base, cursor)
        })
    }

    fn since(&self, user: UserId, since: Seq, limit: u32) -> StoreResult<Vec<Message>> {
        self.read(|conn| {
            let mine = conversation_members::table
                .filter(conversation_members::user_id.eq(Uuid::from(user)))
                .select(conversation_members::conversation_id);
            let hidden = hidden_messages::table
                .filter(hidden_messages::user_id.eq(Uuid::from(user)))
                .filter(hidden_messages::message_id.eq(messages::id));
            let page = messages::table
                .filter(messages::seq.gt(since.0))
                .filter(messages::conversation_id.eq_any(mine))
                .filter(not(exists(hidden)))
                .order(messages::seq.asc())
                .limit(i64::from(limit))
                .select(MessageRow::as_select())
                .load(conn)?;
            replies::complete(conn, page)
        })
    }

    fn last_seq_for(&self, user: UserId) -> StoreResult<Seq> {
        self.read(|conn| {
            let last: Option<i64> = conversation_members::table
                .inner_join(conversations::table)
                .filter(conversation_members::user_id.eq(Uuid::from(user)))
                .select(max(conversations::last_message_seq))
                .first(conn)?;
            Ok(Seq(last.unwrap_or(0)))
        })
    }

    fn latest_seq(&self) -> StoreResult<Seq> {
        self.read(crate::seq::latest)
    }

    fn edit(
        &self,
        id: MessageId,
        editor: UserId,
        content: &MessageContent,
        at: DateTime<Utc>,
        on_commit: OnChanged<'_>,
    ) -> StoreResult<MessageChanged> {
        let _in_order = announce_in_order(&self.announcing);
        let changed = self.write(|conn| {
            let Some(mut changed) = changing(conn, id, editor)? else {
                return Ok(Err(StoreError::Missing));
            };
            if changed.message.is_deleted() || changed.message.content.as_ref() == Some(content) {
                return Ok(Ok(changed));
            }
            let seq = crate::seq::take(conn)?;
            // The new content mentions whom it names among the members now.
            let mentioned = mentions::resolve(
                conn,
                &MentionCandidates::parse(content.as_str()),
                changed.kind,
                changed.message.sender_id,
                changed.members.iter().map(|m| m.user_id),
            )?;
            let message = &mut changed.message;
            mentions::replace(conn, id, message.conversation_id, message.seq, &mentioned)?;
            if let Some(root) = message.restates_root(&mentioned) {
                threads::restate(conn, root)?;
            }
            message.mentions = mentioned;
            diesel::update(messages::table.filter(messages::id.eq(Uuid::from(id))))
                .set((
                    messages::content.eq(content.as_str()),
                    messages::edited_at.eq(at),
                    messages::updated_at.eq(at),
                    messages::change_seq.eq(seq.0),
                ))
                .execute(conn)?;
            message.content = Some(content.clone());
            message.edited_at = Some(at);
            message.updated_at = at;
            message.change_seq = Some(seq);
            changed.changed = true;
            crate::outbox::record(
                conn,
                EventKind::MessageEdited,
                &changed_refs(message, editor, seq),
                at,
            )?;
            Ok(Ok(changed))
        })??;
        if changed.changed {
            on_commit(&changed);
        }
        Ok(changed)
    }

    fn delete(
        &self,
        id: MessageId,
        by: UserId,
        at: DateTime<Utc>,
        on_commit: OnChanged<'_>,
    ) -> StoreResult<MessageChanged> {
        self.delete_for_everyone(id, by, true, at, on_commit)
    }

    fn moderate_delete(
        &self,
        id: MessageId,
        by: UserId,
        at: DateTime<Utc>,
        on_commit: OnChanged<'_>,
    ) -> StoreResult<MessageChanged> {
        self.delete_for_everyone(id, by, false, at, on_commit)
    }

    fn hide(
        &self,
        id: MessageId,
        user: UserId,
        on_commit: &mut dyn FnMut(&HiddenMessage),
    ) -> StoreResult<(HiddenMessage, bool)> {
        let _in_order = announce_in_order(&self.announcing);
        let hidden = self.write(|conn| {
            let Some(changed) = changing(conn, id, user)? else {
                return Ok(Err(StoreError::Missing));
            };
            let before: Option<i64> = hidden_messages::table
                .find((Uuid::from(user), Uuid::from(id)))
                .select(hidden_messages::seq)
                .first(conn)
                .optional()?;
            let mut hidden = HiddenMessage {
                user_id: user,
                message_id: id,
                conversation_id: changed.message.conversation_id,
                seq: Seq(before.unwrap_or(0)),
            };
            if before.is_some() {
                return Ok(Ok((hidden, false)));
            }
            hidden.seq = crate::seq::take(conn)?;
            diesel::insert_into(hidden_messages::table)
                .values((
                    hidden_messages::user_id.eq(Uuid::from(user)),
                    hidden_messages::message_id.eq(Uuid::from(id)),
                    hidden_messages::conversation_id.eq(Uuid::from(hidden.conversation_id)),
                    hidden_messages::seq.eq(hidden.seq.0),
                ))
                .execute(conn)?;
            if let Some(root) = changed.message.restates_root(&[]) {
                threads::restate(conn, root)?;
            }
            Ok(Ok((hidden, true)))
        })??;
        if hidden.1 {
            on_commit(&hidden.0);
        }
        Ok(hidden)
    }

    fn hidden_among(&self, user: UserId, ids: &[MessageId]) -> StoreResult<Vec<MessageId>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<Uuid> = ids.iter().map(|&id| Uuid::from(id)).collect();
        self.read(|conn| {
            let hidden: Vec<Uuid> = hidden_messages::table
                .filter(hidden_messages::user_id.eq(Uuid::from(user)))
                .filter(hidden_messages::message_id.eq_any(&keys))
                .select(hidden_messages::message_id)
                .load(conn)?;
            Ok(hidden.into_iter().map(MessageId::from).collect())
        })
    }

    fn react(
        &self,
        message: MessageId,
        user: UserId,
        emoji: &Emoji,
        max_emoji: usize,
        at: DateTime<Utc>,
    ) -> StoreResult<Marked> {
        self.write(|conn| reactions::react(conn, message, user, emoji, max_emoji, at))?
            .ok_or(StoreError::Missing)
    }

    fn unreact(&self, message: MessageId, user: UserId, emoji: &Emoji) -> StoreResult<Marked> {
        self.write(|conn| reactions::unreact(conn, message, user, emoji))?
            .ok_or(StoreError::Missing)
    }

    fn pin(
        &self,
        conversation: ConversationId,
        message: MessageId,
        user: UserId,
        max_pins: usize,
        at: DateTime<Utc>,
    ) -> StoreResult<Marked> {
        self.write(|conn| reactions::pin(conn, conversation, message, user, max_pins, at))?
            .ok_or(StoreError::Missing)
    }

    fn unpin(
        &self,
        conversation: ConversationId,
        message: MessageId,
        user: UserId,
    ) -> StoreResult<Marked> {
        self.write(|conn| reactions::unpin(conn, conversation, message, user))?
            .ok_or(StoreError::Missing)
    }

    fn pins(&self, conversation: ConversationId) -> StoreResult<Vec<Message>> {
        self.read(|conn| reactions::pins(conn, conversation))
    }
}

impl crate::PgStore {
    /// Deletes a message for everyone; `member_required`: `by` must be a member of its
    /// conversation (a sender or a group moderator), else a server admin moderates.
    fn delete_for_everyone(
        &self,
        id: MessageId,
        by: UserId,
        member_required: bool,
        at: DateTime<Utc>,
        on_commit: OnChanged<'_>,
    ) -> StoreResult<MessageChanged> {
        let _in_order = announce_in_order(&self.announcing);
        let changed = self.write(|conn| {
            let found = if member_required {
                changing(conn, id, by)?
            } else {
                changing_any(conn, id)?
            };
            let Some(mut changed) = found else {
                return Ok(Err(StoreError::Missing));
            };
            let message = &mut changed.message;
            if message.is_deleted() {
                return Ok(Ok(changed));
            }
            let seq = crate::seq::take(conn)?;
            // The old row version stays in the table file as a dead tuple until VACUUM
            // reclaims it (docs/security.md says what "purged" means here).
            diesel::update(messages::table.filter(messages::id.eq(Uuid::from(id))))
                .set((
                    messages::content.eq(""),
                    messages::deleted_at.eq(at),
                    messages::deleted_by.eq(Uuid::from(by)),
                    messages::pinned_at.eq(None::<DateTime<Utc>>),
                    messages::pinned_by.eq(None::<Uuid>),
                    messages::reply_to_id.eq(None::<Uuid>),
                    messages::updated_at.eq(at),
                    messages::change_seq.eq(seq.0),
                ))
                .execute(conn)?;
            diesel::delete(
                reaction_rows::table.filter(reaction_rows::message_id.eq(Uuid::from(id))),
            )
            .execute(conn)?;
            mentions::replace(conn, id, message.conversation_id, message.seq, &[])?;
            attachments::drop_for(conn, id)?;
            if let Some(root) = message.restates_root(&[]) {
                threads::restate(conn, root)?;
            }
            message.attachments.clear();
            message.content = None;
            message.reactions.clear();
            message.pin = None;
            message.reply_to = None;
            message.mentions.clear();
            message.deletion = Some(Deletion { at, by });
            message.updated_at = at;
            message.change_seq = Some(seq);
            changed.changed = true;
            crate::outbox::record(
                conn,
                EventKind::MessageDeleted,
                &changed_refs(message, by, seq),
                at,
            )?;
            Ok(Ok(changed))
        })??;
        if changed.changed {
            on_commit(&changed);
        }
        Ok(changed)
    }
}

/// The message a change is about, with its conversation's kind and members, read inside the
/// change's transaction; `None` if there is no such message or `user` is not a member of its
/// conversation as the change commits. The conversation's row is locked first
/// (`FOR NO KEY UPDATE`, as appends and membership changes lock it), so a member removed on
/// another node either is removed before this reads the members or waits for it to commit.
fn changing(
    conn: &mut PgConnection,
    id: MessageId,
    user: UserId,
) -> StorageResult<Option<MessageChanged>> {
    Ok(changing_any(conn, id)?.filter(|c| c.members.iter().any(|m| m.user_id == user)))
}

/// [`changing`] whoever changes it: a server admin moderating need not be a member.
fn changing_any(conn: &mut PgConnection, id: MessageId) -> StorageResult<Option<MessageChanged>> {
    let conversation: Option<Uuid> = messages::table
        .filter(messages::id.eq(Uuid::from(id)))
        .select(messages::conversation_id)
        .first(conn)
        .optional()?;
    let Some(conversation) = conversation else {
        return Ok(None);
    };
    let raw_kind: String = conversations::table
        .find(conversation)
        .select(conversations::kind)
        .for_no_key_update()
        .first(conn)?;
    // Read after the lock: another change to the message has committed by now. As every
    // read shows it (reactions, its quote): an edit answers with it.
    let row = messages::table
        .filter(messages::id.eq(Uuid::from(id)))
        .select(MessageRow::as_select())
        .first(conn)?;
    let Some(message) = crate::replies::complete_one(conn, Some(row))? else {
        return Ok(None);
    };
    let members = members_of(conn, &[conversation])?.pop().unwrap_or_default();
    Ok(Some(MessageChanged {
        message,
        changed: false,
        kind: kind(&raw_kind)?,
        members,
    }))
}

/// What an append needs to know of its conversation, read once per batch.
pub(crate) struct ConversationState {
    kind: ConversationKind,
    /// In joining order; senders' read markers move as the batch's messages are stored.
    members: Vec<Member>,
    /// Members whose accounts are deactivated (read for direct conversations only): a direct
    /// conversation with one of them takes no more messages.
    deactivated: Vec<UserId>,
    /// Members of a direct conversation whom the other member has blocked: they may send no
    /// more into it.
    blocked: Vec<UserId>,
}

/// Where one append of a batch stands while the batch is being written.
#[allow(
    clippy::large_enum_variant,
    reason = "one per append of a batch (at most 512), in one vector that lives for the batch"
)]
pub(crate) enum Pending {
    /// Refused, or answered with a message stored before: the rare case, boxed so that
    /// every pending append does not take a whole message's room.
    Done(Box<StoreResult<AppendOutcome>>),
    /// To be inserted.
    New,
    /// A retry of the message at this index of the batch, itself [`Pending::New`].
    SameAs(usize),
}

impl Pending {
    fn done(result: StoreResult<AppendOutcome>) -> Self {
        Pending::Done(Box::new(result))
    }
}

/// A seq and the time of the message that has it.
type Stamp = (i64, DateTime<Utc>);

/// A retry key: conversation, sender and client message id.
type RetryKey = (Uuid, Uuid, String);

fn retry_key(new: &NewMessage) -> Option<RetryKey> {
    let client_message_id = new.client_message_id.as_ref()?;
    Some((
        new.conversation_id.into(),
        new.sender_id.into(),
        client_message_id.as_str().to_owned(),
    ))
}

/// Appends a batch of messages inside the caller's transaction, in order, and returns one
/// result per message: the port's refusal ([`StoreError::Missing`] for a sender who is not a
/// member, [`StoreError::Deactivated`] for a direct message to a deactivated account) or the
/// outcome. A failing statement fails the whole transaction (PostgreSQL aborts it), so a
/// storage failure is the batch's error, and every append of it fails.
///
/// See the module's doc for the order of the steps and why.
pub(crate) fn append_batch(
    conn: &mut PgConnection,
    batch: &[&NewMessage],
) -> StorageResult<Vec<StoreResult<AppendOutcome>>> {
    let mut states = conversation_states(conn, batch)?;
    let stored = stored_retries(conn, batch)?;
    let targets = replies::Targets::of(conn, batch)?;
    let roots = threads::Roots::of(conn, batch)?;
    let named = mentions::Named::of_batch(conn, batch)?;
    let mut uploads = attachments::Uploads::of(conn, batch)?;
    let mut quotes: HashMap<usize, ReplyTo> = HashMap::new();
    let mut in_threads: HashMap<usize, threads::Root> = HashMap::new();

    let mut pending: Vec<Pending> = Vec::with_capacity(batch.len());
    let mut new_in_batch: HashMap<RetryKey, usize> = HashMap::new();
    for (index, new) in batch.iter().enumerate() {
        let Some(state) = states.get(&new.conversation_id) else {
            pending.push(Pending::done(Err(StoreError::Missing)));
            continue;
        };
        if !state.members.iter().any(|m| m.user_id == new.sender_id) {
            pending.push(Pending::done(Err(StoreError::Missing)));
            continue;
        }
        // A retry gets the stored message back whatever has happened since.
        let key = retry_key(new);
        if let Some(key) = &key {
            if let Some(message) = stored.get(key) {
                pending.push(Pending::done(Ok(AppendOutcome {
                    appended: Appended::Existing(message.clone()),
                    kind: state.kind,
                    members: state.members.clone(),
                })));
                continue;
            }
            if let Some(&first) = new_in_batch.get(key) {
                pending.push(Pending::SameAs(first));
                continue;
            }
        }
        if state.kind == ConversationKind::Direct
            && let Some(gone) = state.deactivated.iter().find(|&&u| u != new.sender_id)
        {
            pending.push(Pending::done(Err(StoreError::Deactivated(*gone))));
            continue;
        }
        if state.kind == ConversationKind::Direct && state.blocked.contains(&new.sender_id) {
            pending.push(Pending::done(Err(StoreError::Blocked)));
            continue;
        }
        match targets.quote(new) {
            Ok(None) => {}
            Ok(Some(quoted)) => {
                quotes.insert(index, quoted);
            }
            Err(refused) => {
                pending.push(Pending::done(Err(refused)));
                continue;
            }
        }
        match roots.check(new) {
            Ok(None) => {}
            Ok(Some(root)) => {
                in_threads.insert(index, root);
            }
            Err(refused) => {
                pending.push(Pending::done(Err(refused)));
                continue;
            }
        }
        if !new.attachment_ids.is_empty()
            && let Err(refused) = uploads.claim(new)
        {
            pending.push(Pending::done(Err(refused)));
            continue;
        }
        if let Some(key) = key {
            new_in_batch.insert(key, index);
        }
        pending.push(Pending::New);
    }

    let seqs = insert_fresh(conn, batch, &mut pending, &states)?;

    // Record the conversations' activity and the senders' read markers, once per conversation
    // and sender, with the batch's last values; and build the outcomes in batch order, each
    // with the members as they stand after its own message.
    let mut activity: HashMap<Uuid, Stamp> = HashMap::new();
    let mut markers: HashMap<(Uuid, Uuid), Stamp> = HashMap::new();
    let mut results = Vec::with_capacity(batch.len());
    for (index, state) in pending.into_iter().enumerate() {
        let new = batch[index];
        let result = match state {
            Pending::Done(result) => *result,
            Pending::New => {
                let seq = seqs[&index];
                let state = states
                    .get_mut(&new.conversation_id)
                    .ok_or_else(|| StorageError::corrupt("conversation", "gone while appending"))?;
                let mentioned = named.resolve(
                    &new.mentions,
                    state.kind,
                    new.sender_id,
                    state.members.iter().map(|m| m.user_id),
                );
                let mut message = new.stored_as(seq, quotes.remove(&index), mentioned);
                if !new.attachment_ids.is_empty() {
                    message.attachments = attachments::attach(
                        conn,
                        message.id,
                        message.conversation_id,
                        &new.attachment_ids,
                    )?;
                }
                match in_threads.get(&index) {
                    // A thread reply is no activity of the conversation's main history: it
                    // is not the inbox's last message and brings no archive back.
                    Some(root) => threads::count(conn, root, &message)?,
                    None => {
                        activity.insert(new.conversation_id.into(), (seq.0, new.created_at));
                    }
                }
                markers.insert(
                    (new.conversation_id.into(), new.sender_id.into()),
                    (seq.0, new.created_at),
                );
                // Sending is reading: the sender has seen everything up to their own message.
                for member in state
                    .members
                    .iter_mut()
                    .filter(|m| m.user_id == new.sender_id)
                {
                    member.last_read_seq = member.last_read_seq.max(seq);
                }
                Ok(AppendOutcome {
                    appended: Appended::Created(message),
                    kind: state.kind,
                    members: state.members.clone(),
                })
            }
            Pending::SameAs(first) => {
                let state = &states[&new.conversation_id];
                match &results[first] {
                    Ok(AppendOutcome {
                        appended: Appended::Created(message) | Appended::Existing(message),
                        ..
                    }) => Ok(AppendOutcome {
                        appended: Appended::Existing(message.clone()),
                        kind: state.kind,
                        members: state.members.clone(),
                    }),
                    Err(_) => {
                        return Err(StorageError::corrupt(
                            "append batch",
                            "a message to store came out refused",
                        ));
                    }
                }
            }
        };
        results.push(result);
    }
    mentions::insert(
        conn,
        results.iter().filter_map(|result| match result {
            Ok(AppendOutcome {
                appended: Appended::Created(message),
                ..
            }) => Some(message),
            _ => None,
        }),
    )?;
    record_activity(conn, &activity)?;
    record_markers(conn, &markers)?;
    // The batch's new messages took the seqs between these (see `insert_in_commit_order`).
    if let (Some(first), Some(last)) = (seqs.values().min(), seqs.values().max()) {
        crate::outbox::record_appended(conn, first.0, last.0)?;
    }
    Ok(results)
}

/// What an edit or a delete of `message` by `by` announces (see [`crate::outbox`]).
fn changed_refs(message: &Message, by: UserId, seq: Seq) -> EventRefs {
    EventRefs {
        conversation_id: Some(message.conversation_id),
        message_id: Some(message.id),
        user_id: Some(by),
        seq: Some(seq),
        report_id: None,
    }
}

/// Inserts the batch's [`Pending::New`] appends with seqs taken in commit order, and returns
/// each one's seq by index. One whose retry key turns out taken after all (by a writer that
/// did not lock the conversation first) is answered with the stored message instead, and
/// spends no seq: the batch's inserts are taken back and the rest inserted again.
pub(crate) fn insert_fresh(
    conn: &mut PgConnection,
    batch: &[&NewMessage],
    pending: &mut [Pending],
    states: &HashMap<ConversationId, ConversationState>,
) -> StorageResult<HashMap<usize, Seq>> {
    let mut fresh: Vec<usize> = (0..batch.len())
        .filter(|&i| matches!(pending[i], Pending::New))
        .collect();
    let mut inserted = insert_in_commit_order(conn, batch, &fresh)?;
    let lost: Vec<usize> = fresh
        .iter()
        .copied()
        .filter(|i| !inserted.seqs.contains_key(i))
        .collect();
    if !lost.is_empty() {
        // Something stored these retry keys after the lookup: answer with its messages and
        // store the rest with seqs of their own (see the module's doc).
        inserted.take_back(conn)?;
        let lost_messages: Vec<&NewMessage> = lost.iter().map(|&i| batch[i]).collect();
        let winners = stored_retries(conn, &lost_messages)?;
        for &i in &lost {
            let message = retry_key(batch[i])
                .and_then(|key| winners.get(&key))
                .ok_or_else(|| {
                    StorageError::corrupt("message", "a skipped insert has no stored message")
                })?;
            let state = &states[&batch[i].conversation_id];
            pending[i] = Pending::done(Ok(AppendOutcome {
                appended: Appended::Existing(message.clone()),
                kind: state.kind,
                members: state.members.clone(),
            }));
        }
        fresh.retain(|i| !lost.contains(i));
        inserted = insert_in_commit_order(conn, batch, &fresh)?;
        if inserted.seqs.len() != fresh.len() {
            return Err(StorageError::corrupt(
                "message",
                "an insert was skipped while holding the seq lock",
            ));
        }
    }
    Ok(inserted.seqs)
}

/// Locks the batch's conversations and reads their kinds, members and deactivated direct
/// partners: three queries for the whole batch.
pub(crate) fn conversation_states(
    conn: &mut PgConnection,
    batch: &[&NewMessage],
) -> StorageResult<HashMap<ConversationId, ConversationState>> {
    let mut ids: Vec<Uuid> = batch.iter().map(|m| m.conversation_id.into()).collect();
    ids.sort_unstable();
    ids.dedup();
    // In id order, as every writer that locks several conversations does: no deadlocks.
    let kinds: Vec<(Uuid, String)> = conversations::table
        .filter(conversations::id.eq_any(&ids))
        .order(conversations::id.asc())
        .select((conversations::id, conversations::kind))
        .for_no_key_update()
        .load(conn)?;
    let found: Vec<Uuid> = kinds.iter().map(|(id, _)| *id).collect();
    let members = members_of(conn, &found)?;
    let direct_members: Vec<Uuid> = kinds
        .iter()
        .zip(&members)
        .filter(|((_, kind), _)| kind == ConversationKind::Direct.as_str())
        .flat_map(|(_, members)| members.iter().map(|m| m.user_id.into()))
        .collect();
    let inactive: Vec<Uuid> = if direct_members.is_empty() {
        Vec::new()
    } else {
        users::table
            .filter(users::id.eq_any(&direct_members))
            .filter(users::is_active.eq(false))
            .select(users::id)
            .load(conn)?
    };
    // Blocks between members of the batch's direct conversations, in one lookup; a block
    // committed on another node while this batch is written may let one message through.
    let blocks = crate::blocks::between(conn, &direct_members)?;
    kinds
        .into_iter()
        .zip(members)
        .map(|((id, raw_kind), members)| {
            let kind = kind(&raw_kind)?;
            let deactivated = if kind == ConversationKind::Direct {
                members
                    .iter()
                    .map(|m| m.user_id)
                    .filter(|&u| inactive.contains(&u.into()))
                    .collect()
            } else {
                Vec::new()
            };
            let blocked = if kind == ConversationKind::Direct {
                blocked_in(&members, &blocks)
            } else {
                Vec::new()
            };
            Ok((
                ConversationId::from(id),
                ConversationState {
                    kind,
                    members,
                    deactivated,
                    blocked,
                },
            ))
        })
        .collect()
}

/// Those of `members` whom another of them has blocked, of `blocks` as `(blocker, blocked)`.
fn blocked_in(members: &[Member], blocks: &[(Uuid, Uuid)]) -> Vec<UserId> {
    let ids: Vec<Uuid> = members.iter().map(|m| m.user_id.into()).collect();
    blocks
        .iter()
        .filter(|(blocker, blocked)| {
            blocker != blocked && ids.contains(blocker) && ids.contains(blocked)
        })
        .map(|(_, blocked)| UserId::from(*blocked))
        .collect()
}

/// The messages already stored under the retry keys the batch carries, in one query.
fn stored_retries(
    conn: &mut PgConnection,
    batch: &[&NewMessage],
) -> StorageResult<HashMap<RetryKey, Message>> {
    let keys: Vec<RetryKey> = batch.iter().filter_map(|m| retry_key(m)).collect();
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let (conversations, senders, client_ids): (Vec<Uuid>, Vec<Uuid>, Vec<String>) =
        keys.into_iter().fold(
            (Vec::new(), Vec::new(), Vec::new()),
            |(mut c, mut s, mut k), (conversation, sender, key)| {
                c.push(conversation);
                s.push(sender);
                k.push(key);
                (c, s, k)
            },
        );
    let rows: Vec<MessageRow> = diesel::sql_query(
        "SELECT m.* FROM messages m \
         JOIN unnest($1::uuid[], $2::uuid[], $3::text[]) AS k(conversation_id, sender_id, key) \
           ON m.conversation_id = k.conversation_id AND m.sender_id = k.sender_id \
          AND m.client_message_id = k.key",
    )
    .bind::<Array<SqlUuid>, _>(conversations)
    .bind::<Array<SqlUuid>, _>(senders)
    .bind::<Array<Text>, _>(client_ids)
    .load(conn)?;
    let mut found = HashMap::with_capacity(rows.len());
    for message in replies::complete(conn, rows)? {
        if let Some(key) = message.client_message_id.as_ref().map(|c| {
            (
                Uuid::from(message.conversation_id),
                Uuid::from(message.sender_id),
                c.as_str().to_owned(),
            )
        }) {
            found.insert(key, message);
        }
    }
    Ok(found)
}

/// The seqs one batch took and the appends it inserted with them.
pub(crate) struct Inserted {
    /// The first seq taken and how many.
    first: i64,
    count: i64,
    /// The seq of each append inserted, by its index in the batch.
    seqs: HashMap<usize, Seq>,
}

impl Inserted {
    /// Deletes the messages just inserted and gives every seq taken back. Only while the
    /// transaction still holds the `message_seq` lock it took them under: nobody else has
    /// seen them, nor taken seqs since.
    fn take_back(&self, conn: &mut PgConnection) -> StorageResult<()> {
        let last = self.first + self.count - 1;
        diesel::delete(messages::table.filter(messages::seq.between(self.first, last)))
            .execute(conn)?;
        diesel::update(message_seq::table)
            .set(message_seq::last.eq(message_seq::last - self.count))
            .execute(conn)?;
        Ok(())
    }
}

/// Takes seqs for the appends at `indexes` of the batch (locking `message_seq` until the
/// transaction ends) and inserts them, skipping any whose retry key is taken.
pub(crate) fn insert_in_commit_order(
    conn: &mut PgConnection,
    batch: &[&NewMessage],
    indexes: &[usize],
) -> StorageResult<Inserted> {
    let count = i64::try_from(indexes.len()).map_err(|e| StorageError::corrupt("batch", e))?;
    if count == 0 {
        return Ok(Inserted {
            first: 0,
            count,
            seqs: HashMap::new(),
        });
    }
    let last: i64 = diesel::update(message_seq::table)
        .set(message_seq::last.eq(message_seq::last + count))
        .returning(message_seq::last)
        .get_result(conn)?;
    let first = last - count + 1;
    let rows: Vec<NewMessageRow> = indexes
        .iter()
        .zip(first..)
        .map(|(&i, seq)| NewMessageRow::of(batch[i], Seq(seq)))
        .collect();
    let mut stored: Vec<i64> = Vec::with_capacity(rows.len());
    // PostgreSQL takes at most 65535 parameters per statement; a message row has ten.
    for chunk in rows.chunks(4096) {
        stored.extend(
            diesel::insert_into(messages::table)
                .values(chunk)
                .on_conflict_do_nothing()
                .returning(messages::seq)
                .get_results::<i64>(conn)?,
        );
    }
    let stored: std::collections::HashSet<i64> = stored.into_iter().collect();
    let seqs = indexes
        .iter()
        .zip(first..)
        .filter(|(_, seq)| stored.contains(seq))
        .map(|(&i, seq)| (i, Seq(seq)))
        .collect();
    Ok(Inserted { first, count, seqs })
}

/// Each conversation's last message and activity time, in one statement.
fn record_activity(conn: &mut PgConnection, activity: &HashMap<Uuid, Stamp>) -> StorageResult<()> {
    if activity.is_empty() {
        return Ok(());
    }
    let mut rows: Vec<_> = activity.iter().collect();
    rows.sort_unstable_by_key(|(id, _)| **id);
    diesel::sql_query(
        "UPDATE conversations c SET last_message_seq = v.seq, last_activity_at = v.at \
         FROM unnest($1::uuid[], $2::bigint[], $3::timestamptz[]) AS v(id, seq, at) \
         WHERE c.id = v.id",
    )
    .bind::<Array<SqlUuid>, _>(rows.iter().map(|(id, _)| **id).collect::<Vec<_>>())
    .bind::<Array<BigInt>, _>(rows.iter().map(|(_, (seq, _))| *seq).collect::<Vec<_>>())
    .bind::<Array<Timestamptz>, _>(rows.iter().map(|(_, (_, at))| *at).collect::<Vec<_>>())
    .execute(conn)?;
    Ok(())
}

/// Moves each sender's read marker to their last message of the batch (never back), in one
/// statement.
fn record_markers(
    conn: &mut PgConnection,
    markers: &HashMap<(Uuid, Uuid), Stamp>,
) -> StorageResult<()> {
    if markers.is_empty() {
        return Ok(());
    }
    let mut rows: Vec<_> = markers.iter().collect();
    rows.sort_unstable_by_key(|(key, _)| **key);
    diesel::sql_query(
        "UPDATE conversation_members cm SET last_read_seq = v.seq, read_at = v.at \
         FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::timestamptz[]) \
           AS v(conversation_id, user_id, seq, at) \
         WHERE cm.conversation_id = v.conversation_id AND cm.user_id = v.user_id \
           AND cm.last_read_seq < v.seq",
    )
    .bind::<Array<SqlUuid>, _>(rows.iter().map(|((c, _), _)| *c).collect::<Vec<_>>())
    .bind::<Array<SqlUuid>, _>(rows.iter().map(|((_, u), _)| *u).collect::<Vec<_>>())
    .bind::<Array<BigInt>, _>(rows.iter().map(|(_, (seq, _))| *seq).collect::<Vec<_>>())
    .bind::<Array<Timestamptz>, _>(rows.iter().map(|(_, (_, at))| *at).collect::<Vec<_>>())
    .execute(conn)?;
    Ok(())
}

/// The message rows of one history or thread page as a boxed query, to be paged.
type PageQuery<'a> = messages::BoxedQuery<'a, Pg, SqlTypeOf<AsSelect<MessageRow, Pg>>>;

/// The page of `base` (the rows of one conversation's history, or of one thread) at `cursor`,
/// ascending by seq, completed as every read of messages is.
fn page_at(
    conn: &mut PgConnection,
    base: PageQuery<'_>,
    cursor: HistoryCursor,
) -> StorageResult<Vec<Message>> {
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
    replies::complete(conn, rows)
}
