//! [`MessageStore`] over the `messages` table.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use chat_domain::conversation::{ConversationKind, Member};
use chat_domain::mention::MentionCandidates;
use chat_domain::message::{
    AppendOutcome, Appended, Deletion, Emoji, HiddenMessage, HistoryCursor, Marked, Message,
    MessageChanged, MessageContent, NewMessage, ReplyTo, Seq,
};
use chat_domain::ports::{MessageStore, OnAppended, OnChanged, StoreResult};
use chat_domain::webhook::{EventKind, EventRefs};
use chat_domain::{ConversationId, MessageId, StoreError, UserId};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::dsl::{AsSelect, SqlTypeOf, exists, max, not};
use diesel::prelude::*;
use diesel::sqlite::{Sqlite, SqliteConnection};

use crate::error::{StorageError, StorageResult};
use crate::models::{MemberRow, MessageRow, NewMessageRow, convert, id, ts};
use crate::schema::{
    conversation_members, conversations, hidden_messages, messages, reactions as reaction_rows,
    users,
};
use crate::{MembershipEpoch, SqliteStore, announce_in_order};
use crate::{attachments, mentions, reactions, replies, threads};

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
        let latest = cursor == HistoryCursor::Latest;
        if latest && let Some(page) = self.recent.latest(conversation, limit as usize) {
            return Ok(page);
        }
        let epoch = self.recent.epoch();
        let page = self.read(|conn| {
            let base = messages::table
                .filter(messages::conversation_id.eq(conversation.to_string()))
                .filter(messages::thread_root_id.is_null())
                .select(MessageRow::as_select())
                .limit(i64::from(limit))
                .into_boxed();
            page_at(conn, base, cursor)
        })?;
        if latest {
            let whole = page.len() < limit as usize;
            self.recent.fill(conversation, &page, whole, epoch);
        }
        Ok(page)
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
                .filter(messages::thread_root_id.eq(root.to_string()))
                .select(MessageRow::as_select())
                .limit(i64::from(limit))
                .into_boxed();
            page_at(conn, base, cursor)
        })
    }

    fn since(&self, user: UserId, since: Seq, limit: u32) -> StoreResult<Vec<Message>> {
        self.read(|conn| {
            let mine = conversation_members::table
                .filter(conversation_members::user_id.eq(user.to_string()))
                .select(conversation_members::conversation_id);
            let hidden = hidden_messages::table
                .filter(hidden_messages::user_id.eq(user.to_string()))
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
                .filter(conversation_members::user_id.eq(user.to_string()))
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
            diesel::update(messages::table.find(message.seq.0))
                .set((
                    messages::content.eq(content.as_str()),
                    messages::edited_at.eq(ts(at)),
                    messages::updated_at.eq(ts(at)),
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
            self.recent.forget(changed.message.conversation_id);
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
            let key = (user.to_string(), id.to_string());
            let before: Option<i64> = hidden_messages::table
                .find((&key.0, &key.1))
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
                    hidden_messages::user_id.eq(&key.0),
                    hidden_messages::message_id.eq(&key.1),
                    hidden_messages::conversation_id.eq(hidden.conversation_id.to_string()),
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
        self.read(|conn| {
            let hidden: Vec<String> = hidden_messages::table
                .filter(hidden_messages::user_id.eq(user.to_string()))
                .filter(hidden_messages::message_id.eq_any(ids.iter().map(ToString::to_string)))
                .select(hidden_messages::message_id)
                .load(conn)?;
            hidden.iter().map(|raw| id("message id", raw)).collect()
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
        let marked = self.write(|conn| reactions::react(conn, message, user, emoji, max_emoji, at));
        self.marked(marked)
    }

    fn unreact(&self, message: MessageId, user: UserId, emoji: &Emoji) -> StoreResult<Marked> {
        let marked = self.write(|conn| reactions::unreact(conn, message, user, emoji));
        self.marked(marked)
    }

    fn pin(
        &self,
        conversation: ConversationId,
        message: MessageId,
        user: UserId,
        max_pins: usize,
        at: DateTime<Utc>,
    ) -> StoreResult<Marked> {
        let marked =
            self.write(|conn| reactions::pin(conn, conversation, message, user, max_pins, at));
        self.marked(marked)
    }

    fn unpin(
        &self,
        conversation: ConversationId,
        message: MessageId,
        user: UserId,
    ) -> StoreResult<Marked> {
        let marked = self.write(|conn| reactions::unpin(conn, conversation, message, user));
        self.marked(marked)
    }

    fn pins(&self, conversation: ConversationId) -> StoreResult<Vec<Message>> {
        self.read(|conn| reactions::pins(conn, conversation))
    }
}

impl SqliteStore {
    /// The port's answer to a committed change of a message; a changed message's conversation
    /// no longer serves its latest page from memory (see [`crate::recent`]).
    fn marked(&self, marked: StoreResult<Option<Marked>>) -> StoreResult<Marked> {
        let marked = marked?.ok_or(StoreError::Missing)?;
        if let Marked::Changed {
            conversation_id, ..
        } = &marked
        {
            self.recent.forget(*conversation_id);
        }
        Ok(marked)
    }
}

impl crate::SqliteStore {
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
            // The content is overwritten, and `secure_delete` (see pool.rs) zeroes the bytes
            // the old row leaves behind, so the text is gone from the file once the log is
            // checkpointed, not just flagged.
            diesel::update(messages::table.find(message.seq.0))
                .set((
                    messages::content.eq(""),
                    messages::deleted_at.eq(ts(at)),
                    messages::deleted_by.eq(by.to_string()),
                    messages::pinned_at.eq(None::<NaiveDateTime>),
                    messages::pinned_by.eq(None::<String>),
                    messages::reply_to_id.eq(None::<String>),
                    messages::updated_at.eq(ts(at)),
                    messages::change_seq.eq(seq.0),
                ))
                .execute(conn)?;
            diesel::delete(
                reaction_rows::table.filter(reaction_rows::message_id.eq(id.to_string())),
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
            self.recent.forget(changed.message.conversation_id);
            on_commit(&changed);
        }
        Ok(changed)
    }
}

/// The message a change is about, with its conversation's kind and members, read inside the
/// change's write transaction; `None` if there is no such message or `user` is not a member
/// of its conversation as the write commits.
fn changing(
    conn: &mut SqliteConnection,
    id: MessageId,
    user: UserId,
) -> StorageResult<Option<MessageChanged>> {
    Ok(changing_any(conn, id)?.filter(|c| c.members.iter().any(|m| m.user_id == user)))
}

/// [`changing`] whoever changes it: a server admin moderating need not be a member.
fn changing_any(
    conn: &mut SqliteConnection,
    id: MessageId,
) -> StorageResult<Option<MessageChanged>> {
    let Some(message) = messages::table
        .filter(messages::id.eq(id.to_string()))
        .select(MessageRow::as_select())
        .first(conn)
        .optional()?
    else {
        return Ok(None);
    };
    // The message as every read shows it (reactions, its quote): an edit answers with it.
    let Some(message) = crate::replies::complete_one(conn, Some(message))? else {
        return Ok(None);
    };
    let Some(state) = conversation_state(conn, message.conversation_id)? else {
        return Ok(None);
    };
    Ok(Some(MessageChanged {
        message,
        changed: false,
        kind: state.kind,
        members: state.members,
    }))
}

/// Appends a batch of messages inside the caller's transaction, in order, and returns one
/// result per message: the port's refusal ([`StoreError::Missing`] for a sender who is not a
/// member, [`StoreError::Deactivated`] for a direct message to a deactivated account) or the
/// outcome, inside the storage's own failure.
///
/// Work that messages of one batch share is done once: each conversation's kind and members
/// are read once, and its activity and the senders' read markers are written once, at the
/// end, with the batch's last values. Each message itself costs one insert, and a lookup first
/// when it carries a client message id; one whose content names users (`@name`) costs a lookup
/// of those names and one insert of its mentions, and one with `@all` only that insert. A message whose insert fails gets that error without
/// affecting the others; a failure of the shared writes fails the whole transaction.
pub(crate) fn append_batch(
    conn: &mut SqliteConnection,
    batch: &[&NewMessage],
    known: &mut KnownConversations,
) -> StorageResult<Vec<StorageResult<StoreResult<AppendOutcome>>>> {
    known.refresh();
    let conversations_seen = &mut known.conversations;
    let mut activity: HashMap<ConversationId, (i64, NaiveDateTime)> = HashMap::new();
    let mut markers: HashMap<(ConversationId, UserId), (i64, NaiveDateTime)> = HashMap::new();
    let mut results = Vec::with_capacity(batch.len());
    for new in batch {
        let ConversationState {
            kind,
            members,
            deactivated,
            blocked,
        } = match conversations_seen.entry(new.conversation_id) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => match conversation_state(conn, new.conversation_id)? {
                Some(state) => entry.insert(state),
                None => {
                    results.push(Ok(Err(StoreError::Missing)));
                    continue;
                }
            },
        };
        if !members.iter().any(|m| m.user_id == new.sender_id) {
            results.push(Ok(Err(StoreError::Missing)));
            continue;
        }
        // A retry gets the stored message back whatever has happened since.
        let retried = match find_retried(conn, new) {
            Ok(retried) => retried,
            Err(error) => {
                results.push(Err(error));
                continue;
            }
        };
        if let Some(stored) = retried {
            // A retry reports whether the earlier message has been read since, which the
            // remembered read markers may not know yet: read them again.
            let ConversationState { kind, members, .. } =
                conversation_state(conn, new.conversation_id)?
                    .ok_or_else(|| StorageError::corrupt("conversation", "gone while appending"))?;
            results.push(Ok(Ok(AppendOutcome {
                appended: Appended::Existing(stored),
                kind,
                members,
            })));
            continue;
        }
        if *kind == ConversationKind::Direct
            && let Some(gone) = deactivated.iter().find(|&&user| user != new.sender_id)
        {
            results.push(Ok(Err(StoreError::Deactivated(*gone))));
            continue;
        }
        if *kind == ConversationKind::Direct && blocked.contains(&new.sender_id) {
            results.push(Ok(Err(StoreError::Blocked)));
            continue;
        }
        // Only a reply reads anything more: its original, checked under the writer lock.
        let reply_to = match new.reply_to_id {
            None => None,
            Some(original) => match replies::target(conn, new.conversation_id, original) {
                Ok(Ok(quoted)) => Some(quoted),
                Ok(Err(refused)) => {
                    results.push(Ok(Err(refused)));
                    continue;
                }
                Err(error) => {
                    results.push(Err(error));
                    continue;
                }
            },
        };
        // Only a thread reply reads its root, under the writer lock as well.
        let root = match new.thread_root_id {
            None => None,
            Some(root) => match threads::root(conn, new.conversation_id, root) {
                Ok(Ok(root)) => Some(root),
                Ok(Err(refused)) => {
                    results.push(Ok(Err(refused)));
                    continue;
                }
                Err(error) => {
                    results.push(Err(error));
                    continue;
                }
            },
        };
        // Only a message with files reads anything for them: its uploads, under the writer
        // lock, so nothing else attaches them first.
        if !new.attachment_ids.is_empty() {
            match attachments::check(conn, new.sender_id, &new.attachment_ids) {
                Ok(Ok(())) => {}
                Ok(Err(refused)) => {
                    results.push(Ok(Err(refused)));
                    continue;
                }
                Err(error) => {
                    results.push(Err(error));
                    continue;
                }
            }
        }
        // Only a message naming someone reads anything for its mentions: those names' users.
        let mentioned = mentions::resolve(
            conn,
            &new.mentions,
            *kind,
            new.sender_id,
            members.iter().map(|m| m.user_id),
        )?;
        let mut message = match insert(conn, new, reply_to, mentioned) {
            Ok(message) => message,
            Err(error) => {
                results.push(Err(error));
                continue;
            }
        };
        // A failure here fails the whole batch: the message must not commit without its files.
        if !new.attachment_ids.is_empty() {
            message.attachments = attachments::attach(
                conn,
                message.id,
                message.conversation_id,
                &new.attachment_ids,
            )?;
        }
        // A failure here fails the whole batch, as the shared writes do: the message must not
        // commit without its mentions.
        mentions::insert(
            conn,
            message.id,
            message.conversation_id,
            message.seq,
            &message.mentions,
        )?;
        let at = ts(message.created_at);
        match &root {
            // A thread reply is no activity of the conversation's main history: it is not
            // the inbox's last message and does not bring an archived conversation back.
            Some(root) => threads::count(conn, root, &message)?,
            None => {
                activity.insert(message.conversation_id, (message.seq.0, at));
            }
        }
        markers.insert(
            (message.conversation_id, message.sender_id),
            (message.seq.0, at),
        );
        // Sending is reading: the sender has seen everything up to their own message.
        for member in members.iter_mut().filter(|m| m.user_id == new.sender_id) {
            member.last_read_seq = member.last_read_seq.max(message.seq);
        }
        results.push(Ok(Ok(AppendOutcome {
            appended: Appended::Created(message),
            kind: *kind,
            members: members.clone(),
        })));
    }
    let created = results.iter().filter_map(|result| match result {
        Ok(Ok(AppendOutcome {
            appended: Appended::Created(message),
            ..
        })) => Some(message.seq.0),
        _ => None,
    });
    if let Some((first, last)) = created.fold(None, |range, seq| match range {
        None => Some((seq, seq)),
        Some((first, last)) => Some((seq.min(first), seq.max(last))),
    }) {
        crate::search::index_appended(conn, first, last)?;
        crate::outbox::record_appended(conn, first, last)?;
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

/// The kind and members of the conversations the commit thread has appended to, so a busy
/// conversation costs no reads per batch. Only membership writes (and deactivations, which
/// close direct conversations) change what is kept here
/// (read markers matter only to messages that already exist, and those are read afresh), and
/// those writes raise the [`MembershipEpoch`]: the first batch after one starts over.
pub(crate) struct KnownConversations {
    conversations: HashMap<ConversationId, ConversationState>,
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

/// What an append needs to know of its conversation.
pub(crate) struct ConversationState {
    kind: ConversationKind,
    members: Vec<Member>,
    /// Members whose accounts are deactivated: a direct conversation with one of them takes
    /// no more messages.
    deactivated: Vec<UserId>,
    /// Members of a direct conversation whom the other member has blocked: they may send no
    /// more into it. Blocks raise the [`MembershipEpoch`] as they change.
    blocked: Vec<UserId>,
}

/// A conversation's kind and members, as this transaction sees them; `None` if it does not
/// exist.
fn conversation_state(
    conn: &mut SqliteConnection,
    id: ConversationId,
) -> StorageResult<Option<ConversationState>> {
    let key = id.to_string();
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
    let members = convert(
        conversation_members::table
            .filter(conversation_members::conversation_id.eq(&key))
            .order(conversation_members::joined_at.asc())
            .select(MemberRow::as_select())
            .load(conn)?,
    )?;
    let deactivated = if kind == ConversationKind::Direct {
        let inactive: Vec<String> = conversation_members::table
            .inner_join(users::table)
            .filter(conversation_members::conversation_id.eq(&key))
            .filter(users::is_active.eq(false))
            .select(users::id)
            .load(conn)?;
        inactive
            .iter()
            .map(|id| id.parse().map_err(|_| StorageError::corrupt("user id", id)))
            .collect::<StorageResult<_>>()?
    } else {
        Vec::new()
    };
    let blocked = if kind == ConversationKind::Direct {
        crate::blocks::blocked_among(conn, &members)?
    } else {
        Vec::new()
    };
    Ok(Some(ConversationState {
        kind,
        members,
        deactivated,
        blocked,
    }))
}

/// The message its sender already stored in this conversation with the same client message
/// id, if the new one carries an id.
///
/// The lookup comes before the insert, under the writer lock, rather than an insert that the
/// unique index turns into a no-op: SQLite's `AUTOINCREMENT` spends a seq on an insert it then
/// ignores, and a retry must not leave a gap in the numbering.
fn find_retried(conn: &mut SqliteConnection, new: &NewMessage) -> StorageResult<Option<Message>> {
    let Some(client_message_id) = &new.client_message_id else {
        return Ok(None);
    };
    let row = messages::table
        .filter(messages::conversation_id.eq(new.conversation_id.to_string()))
        .filter(messages::sender_id.eq(new.sender_id.to_string()))
        .filter(messages::client_message_id.eq(client_message_id.as_str()))
        .select(MessageRow::as_select())
        .first(conn)
        .optional()?;
    replies::complete_one(conn, row)
}

/// Inserts a new message and returns it with the seq it was given, quoting `reply_to` (its
/// original as just checked) if it is a reply, and mentioning `mentioned` (stored by the
/// caller).
fn insert(
    conn: &mut SqliteConnection,
    new: &NewMessage,
    reply_to: Option<ReplyTo>,
    mentioned: Vec<UserId>,
) -> StorageResult<Message> {
    let row = NewMessageRow {
        id: new.id.to_string(),
        conversation_id: new.conversation_id.to_string(),
        sender_id: new.sender_id.to_string(),
        content: new.content.as_str(),
        client_message_id: new.client_message_id.as_ref().map(|c| c.as_str()),
        created_at: ts(new.created_at),
        updated_at: ts(new.created_at),
        reply_to_id: new.reply_to_id.map(|id| id.to_string()),
        thread_root_id: new.thread_root_id.map(|id| id.to_string()),
    };
    // Only the seq comes back: every other field is what was just written, so reading the
    // row back (and parsing its timestamps) would be work for nothing.
    let seq: i64 = diesel::insert_into(messages::table)
        .values(&row)
        .returning(messages::seq)
        .get_result(conn)?;
    Ok(new.stored_as(Seq(seq), reply_to, mentioned))
}

/// The message rows of one history or thread page as a boxed query, to be paged.
type PageQuery<'a> = messages::BoxedQuery<'a, Sqlite, SqlTypeOf<AsSelect<MessageRow, Sqlite>>>;

/// The page of `base` (the rows of one conversation's history, or of one thread) at `cursor`,
/// ascending by seq, completed as every read of messages is.
fn page_at(
    conn: &mut SqliteConnection,
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
