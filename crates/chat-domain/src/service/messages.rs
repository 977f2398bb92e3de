//! Sending messages, editing and deleting them, reading history, read markers and unread
//! counts.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, Mutex};

use crate::attachment::{ATTACHMENT_IDS_RULE, MAX_PER_MESSAGE};
use crate::conversation::{ConversationKind, Member, Role};
use crate::events::DomainEvent;
use crate::mention::MentionCandidates;
use crate::message::{
    Appended, ClientMessageId, DeleteScope, HiddenMessage, HistoryCursor, Message, MessageChanged,
    MessageContent, MessageView, NewMessage, Seq, THREAD_ROOT_RULE,
};
use crate::ports::{Clock, ConversationStore, EventPublisher, MessageStore, ReadReceiptStore};
use crate::read_state::{MarkerSet, ReadReceipt, UnreadCounts};
use crate::validation::{FieldError, Validator};
use crate::{AttachmentId, ConversationId, DomainError, MessageId, Resource, StoreError, UserId};

use super::{Ports, Throttle, view_message};
use crate::limits::Limits;

/// What a delete did. `new`: this call made the change (and announced it); `false` for a
/// repeat, which changes nothing.
#[derive(Debug, Clone)]
pub enum Deleted {
    /// Deleted for everyone: the tombstone left in the message's place (boxed: a message
    /// view is many times the size of a hiding).
    ForEveryone {
        tombstone: Box<MessageView>,
        new: bool,
    },
    /// Hidden for the caller only.
    ForMe { hidden: HiddenMessage, new: bool },
}

/// A message as a client sends it.
#[derive(Debug, Clone, Default)]
pub struct SendMessage {
    pub content: String,
    pub client_message_id: Option<String>,
    /// The message this one replies to: one of the same conversation, not deleted.
    pub reply_to_id: Option<MessageId>,
    /// The thread this message replies in: a message of the same conversation, not
    /// deleted, no thread reply itself.
    pub thread_root_id: Option<MessageId>,
    /// Uploads of the sender's to attach: at most
    /// [`crate::attachment::MAX_PER_MESSAGE`], distinct, none attached before.
    pub attachment_ids: Vec<AttachmentId>,
}

#[derive(Clone)]
pub struct MessageService {
    throttle: Throttle,
    kinds: Arc<Mutex<HashMap<ConversationId, ConversationKind>>>,
    limits: Limits,
    conversations: Arc<dyn ConversationStore>,
    messages: Arc<dyn MessageStore>,
    read_receipts: Arc<dyn ReadReceiptStore>,
    events: Arc<dyn EventPublisher>,
    clock: Arc<dyn Clock>,
}

impl MessageService {
    /// The most messages one catch-up call returns; a client asks again from the last seq.
    pub const MAX_SYNC_BATCH: u32 = 1000;
    /// Conversation kinds kept in memory before the memory is cleared and refilled.
    const KINDS_REMEMBERED: usize = 100_000;

    pub fn new(ports: &Ports) -> Self {
        Self {
            throttle: Throttle::new(ports),
            kinds: Arc::default(),
            limits: ports.limits,
            conversations: ports.conversations.clone(),
            messages: ports.messages.clone(),
            read_receipts: ports.read_receipts.clone(),
            events: ports.events.clone(),
            clock: ports.clock.clone(),
        }
    }

    /// Stores a message from a member and announces it to every member. Returns the message
    /// and whether it is new: a retry with a client message id the sender already used in this
    /// conversation returns the stored message (`false`) and announces nothing, and one whose
    /// content (or reply target) differs from the stored message's is
    /// [`DomainError::IdempotencyConflict`]. A reply whose `reply_to_id` is no message of the
    /// conversation, or one deleted for everyone, is a validation error on `reply_to_id`
    /// (422, not 404: the conversation exists, the field is wrong; and a message of a
    /// conversation the sender cannot read is refused exactly as a missing one). A message
    /// into a direct conversation whose other member has blocked the sender is
    /// [`DomainError::Blocked`]: the store checks it as it writes, with one indexed lookup for
    /// direct conversations only, so group sends pay nothing for blocking.
    /// Blocks until the message is stored; see [`Self::submit`] for callers that must not
    /// block.
    pub fn send(
        &self,
        sender: UserId,
        conversation_id: ConversationId,
        request: SendMessage,
    ) -> Result<(MessageView, bool), DomainError> {
        let (reply, sent) = std::sync::mpsc::sync_channel(1);
        self.submit(sender, conversation_id, request, move |result| {
            let _ = reply.send(result);
        });
        sent.recv().unwrap_or_else(|_| {
            Err(
                StoreError::Unavailable("the store dropped a message without an answer".into())
                    .into(),
            )
        })
    }

    /// Whether [`Self::submit`] may block: it takes from the sender's message budget, and
    /// that budget may live in another process. An async caller then makes the call on a
    /// blocking thread (and waits for it to return before it submits the next message, so
    /// the order holds); otherwise `submit` only hands the message over and returns.
    pub fn submit_may_block(&self) -> bool {
        self.limits.messages_per_user.is_some() && self.throttle.is_remote()
    }

    /// [`Self::send`] without waiting: checks the message, hands it to the store and returns;
    /// `done` gets the outcome once the message is stored (or refused), on whichever thread
    /// the store chooses, so it must not block. Messages submitted one after another are
    /// stored, announced and answered in that order.
    pub fn submit(
        &self,
        sender: UserId,
        conversation_id: ConversationId,
        request: SendMessage,
        done: impl FnOnce(Result<(MessageView, bool), DomainError>) + Send + 'static,
    ) {
        let checked = Self::parse(&request).and_then(|parsed| {
            self.throttle
                .acquire(&format!("send:{sender}"), self.limits.messages_per_user)?;
            Ok(parsed)
        });
        let (content, client_message_id) = match checked {
            Ok(parsed) => parsed,
            Err(refused) => return done(Err(refused)),
        };
        // A retry must repeat the message it retries; only then is the content needed again.
        let retry = client_message_id.as_ref().map(|key| {
            let targets = (request.reply_to_id, request.thread_root_id);
            (
                key.clone(),
                content.clone(),
                targets,
                request.attachment_ids.clone(),
            )
        });
        let new = NewMessage {
            id: MessageId::new(),
            conversation_id,
            sender_id: sender,
            mentions: MentionCandidates::parse(content.as_str()),
            content,
            client_message_id,
            created_at: self.clock.now(),
            reply_to_id: request.reply_to_id,
            thread_root_id: request.thread_root_id,
            attachment_ids: request.attachment_ids,
        };
        // Announced as soon as the store has committed, before any later message commits:
        // members hear of messages in seq order, so a client resuming from the highest seq it
        // saw misses none.
        let events = self.events.clone();
        self.messages.submit(
            new,
            Box::new(move |appended| {
                let outcome = match appended {
                    Ok(outcome) => outcome,
                    Err(StoreError::Missing) => {
                        return done(Err(DomainError::not_found(
                            Resource::Conversation,
                            conversation_id,
                        )));
                    }
                    // The other member of this direct conversation has blocked the sender.
                    Err(StoreError::Blocked) => return done(Err(DomainError::Blocked)),
                    // A deactivated account cannot be messaged, as if it did not exist.
                    Err(StoreError::Deactivated(user)) => {
                        return done(Err(DomainError::not_found(Resource::User, user)));
                    }
                    Err(StoreError::ReplyTarget) => {
                        return done(Err(DomainError::invalid(
                            "reply_to_id",
                            "must be a message of this conversation that is not deleted",
                        )));
                    }
                    Err(StoreError::ThreadRoot) => {
                        return done(Err(DomainError::invalid(
                            "thread_root_id",
                            THREAD_ROOT_RULE,
                        )));
                    }
                    Err(StoreError::Attachments) => {
                        return done(Err(DomainError::invalid(
                            "attachment_ids",
                            ATTACHMENT_IDS_RULE,
                        )));
                    }
                    Err(other) => return done(Err(other.into())),
                };
                let direct = outcome.kind == ConversationKind::Direct;
                let (message, created) = match outcome.appended {
                    Appended::Existing(stored) => match retry {
                        Some((key, content, (reply_to_id, thread_root_id), attachment_ids))
                            if Some(&content) != stored.content.as_ref()
                                || reply_to_id != stored.reply_to.as_ref().map(|r| r.id)
                                || thread_root_id != stored.thread_root_id
                                || (!stored.is_deleted()
                                    && !attachment_ids
                                        .iter()
                                        .copied()
                                        .eq(stored.attachments.iter().map(|a| a.id))) =>
                        {
                            return done(Err(DomainError::IdempotencyConflict {
                                client_message_id: key.as_str().to_owned(),
                            }));
                        }
                        _ => (stored, false),
                    },
                    Appended::Created(message) => (message, true),
                };
                if created {
                    events.publish(DomainEvent::MessageCreated {
                        message: view_message(message.clone(), &outcome.members, direct, sender),
                        audience: outcome.members.iter().map(|m| m.user_id).collect(),
                        at: message.created_at,
                    });
                }
                done(Ok((
                    view_message(message, &outcome.members, direct, sender),
                    created,
                )));
            }),
        );
    }

    /// Checks a message without sending it: what [`Self::send`] would refuse as invalid.
    pub fn validate(request: &SendMessage) -> Result<(), DomainError> {
        Self::parse(request).map(|_| ())
    }

    fn parse(
        request: &SendMessage,
    ) -> Result<(MessageContent, Option<ClientMessageId>), DomainError> {
        let mut v = Validator::new();
        let content = v.check(MessageContent::parse(&request.content));
        let client_message_id = request
            .client_message_id
            .as_deref()
            .and_then(|raw| v.check(ClientMessageId::parse(raw)));
        let ids = &request.attachment_ids;
        let distinct = ids.iter().enumerate().all(|(i, id)| !ids[..i].contains(id));
        if ids.len() > MAX_PER_MESSAGE || !distinct {
            v.check::<()>(Err(FieldError::new("attachment_ids", ATTACHMENT_IDS_RULE)));
        }
        v.finish()?;
        let Some(content) = content else {
            unreachable!("the validator fails when content is missing");
        };
        Ok((content, client_message_id))
    }

    /// A page of a conversation's history, ascending by seq, from the viewer's side.
    pub fn history(
        &self,
        viewer: UserId,
        conversation_id: ConversationId,
        cursor: HistoryCursor,
        limit: u32,
    ) -> Result<Vec<MessageView>, DomainError> {
        let members = self.conversations.members(conversation_id)?;
        if !members.iter().any(|m| m.user_id == viewer) {
            return Err(DomainError::not_found(
                Resource::Conversation,
                conversation_id,
            ));
        }
        let direct = self.kind_of(conversation_id)? == ConversationKind::Direct;
        let page = self.visible_page(viewer, cursor, limit, |cursor, wanted| {
            self.messages.history(conversation_id, cursor, wanted)
        })?;
        Ok(page
            .into_iter()
            .map(|m| view_message(m, &members, direct, viewer))
            .collect())
    }

    /// A page of the thread of `root_id` (its replies, ascending by seq, cut by `cursor` as
    /// history is), from the viewer's side, without the replies the viewer hid. A root the
    /// viewer cannot read (or that does not exist) is [`DomainError::NotFound`]; a message
    /// without replies, or a thread reply, has an empty thread.
    pub fn thread(
        &self,
        viewer: UserId,
        root_id: MessageId,
        cursor: HistoryCursor,
        limit: u32,
    ) -> Result<Vec<MessageView>, DomainError> {
        let (root, _) = self.readable(viewer, root_id)?;
        let members = self.conversations.members(root.conversation_id)?;
        let direct = self.kind_of(root.conversation_id)? == ConversationKind::Direct;
        let page = self.visible_page(viewer, cursor, limit, |cursor, wanted| {
            self.messages.thread(root_id, cursor, wanted)
        })?;
        Ok(page
            .into_iter()
            .map(|m| view_message(m, &members, direct, viewer))
            .collect())
    }

    /// A page of history without the messages the viewer hid, topped up from beyond the
    /// page so that a page is short only where the history ends.
    /// `read` reads a page of the messages at a cursor (a conversation's history, a thread).
    fn visible_page(
        &self,
        viewer: UserId,
        cursor: HistoryCursor,
        limit: u32,
        read: impl Fn(HistoryCursor, u32) -> Result<Vec<Message>, StoreError>,
    ) -> Result<Vec<Message>, DomainError> {
        let mut page: Vec<Message> = Vec::new();
        let mut cursor = cursor;
        loop {
            let wanted = limit.saturating_sub(page.len() as u32);
            let mut chunk = read(cursor, wanted)?;
            let exhausted = chunk.len() < wanted as usize;
            let (Some(first), Some(last)) = (chunk.first(), chunk.last()) else {
                return Ok(page);
            };
            // Where the next chunk starts, should this one lose messages to hiding.
            cursor = match cursor {
                HistoryCursor::After(_) => HistoryCursor::After(last.seq),
                HistoryCursor::Latest | HistoryCursor::Before(_) => {
                    HistoryCursor::Before(first.seq)
                }
            };
            let ids: Vec<MessageId> = chunk.iter().map(|m| m.id).collect();
            let hidden = self.messages.hidden_among(viewer, &ids)?;
            chunk.retain(|m| !hidden.contains(&m.id));
            match cursor {
                HistoryCursor::After(_) => page.extend(chunk),
                _ => {
                    chunk.extend(page);
                    page = chunk;
                }
            }
            if exhausted || hidden.is_empty() || page.len() >= limit as usize {
                return Ok(page);
            }
        }
    }

    /// Replaces the content of a message the editor sent, and tells every member. Returns the
    /// message as it now stands, with `edited_at`, and whether this call changed it: content
    /// equal to the stored content changes nothing and announces nothing. A message the
    /// editor cannot read (or that does not exist) is [`DomainError::NotFound`]; someone
    /// else's is [`DomainError::NotTheSender`]; a deleted one is
    /// [`DomainError::MessageDeleted`].
    pub fn edit(
        &self,
        editor: UserId,
        message_id: MessageId,
        content: &str,
    ) -> Result<(MessageView, bool), DomainError> {
        let content =
            MessageContent::parse(content).map_err(|e| DomainError::Validation(vec![e]))?;
        let (message, _) = self.readable(editor, message_id)?;
        if message.sender_id != editor {
            return Err(DomainError::NotTheSender(
                "only its sender may edit a message".into(),
            ));
        }
        if message.is_deleted() {
            return Err(DomainError::MessageDeleted(message_id));
        }
        let changed = self
            .messages
            .edit(
                message_id,
                editor,
                &content,
                self.clock.now(),
                &mut |changed| {
                    let (message, audience) = Self::audience_view(changed, editor);
                    let at = message.message.updated_at;
                    self.events.publish(DomainEvent::MessageUpdated {
                        message,
                        audience,
                        at,
                    });
                },
            )
            .map_err(|e| Self::gone(e, message_id))?;
        if changed.message.is_deleted() {
            // Deleted between the check above and the write.
            return Err(DomainError::MessageDeleted(message_id));
        }
        let (view, _) = Self::audience_view(&changed, editor);
        Ok((view, changed.changed))
    }

    /// Deletes a message for everyone or for the caller only.
    ///
    /// For everyone: its sender may, and in a group so may an owner or admin (moderation);
    /// the other member of a direct conversation may not ([`DomainError::NotTheSender`]).
    /// The content is purged and every member gets the tombstone; deleting again changes
    /// nothing and announces nothing.
    ///
    /// For the caller only: any member may; the message disappears from the caller's history,
    /// catch-up and unread counts, and the caller's devices hear of it (once).
    ///
    /// A message the caller cannot read (or that does not exist) is
    /// [`DomainError::NotFound`].
    pub fn delete(
        &self,
        actor: UserId,
        message_id: MessageId,
        scope: DeleteScope,
    ) -> Result<Deleted, DomainError> {
        let (message, me) = self.readable(actor, message_id)?;
        if scope == DeleteScope::Me {
            let (hidden, new) = self
                .messages
                .hide(message_id, actor, &mut |hidden| {
                    self.events.publish(DomainEvent::MessageHidden {
                        hidden: *hidden,
                        audience: vec![actor],
                        at: self.clock.now(),
                    });
                })
                .map_err(|e| Self::gone(e, message_id))?;
            if new && message.sender_id == actor && me.last_read_seq == message.seq {
                // Sending is reading: the caller's marker stands on this message, which was
                // its only trace in their feed. Set where it stands, the marker takes a
                // position of its own, so a device catching up still learns where it is.
                self.set_read_marker(actor, message.conversation_id, message.seq.0)?;
            }
            return Ok(Deleted::ForMe { hidden, new });
        }
        let moderates = matches!(me.role, Role::Owner | Role::Admin)
            && self.kind_of(message.conversation_id)? == ConversationKind::Group;
        if message.sender_id != actor && !moderates {
            return Err(DomainError::NotTheSender(
                "only its sender, or a group's owner or admin, may delete a message for everyone"
                    .into(),
            ));
        }
        let changed = self
            .messages
            .delete(message_id, actor, self.clock.now(), &mut |changed| {
                let (message, audience) = Self::audience_view(changed, actor);
                let at = message.message.updated_at;
                self.events.publish(DomainEvent::MessageDeleted {
                    message,
                    audience,
                    at,
                });
            })
            .map_err(|e| Self::gone(e, message_id))?;
        let (tombstone, _) = Self::audience_view(&changed, actor);
        Ok(Deleted::ForEveryone {
            tombstone: Box::new(tombstone),
            new: changed.changed,
        })
    }

    /// Deletes a message for everyone as a server admin, who need not be a member of its
    /// conversation: the same change and the same announcement to the members as
    /// [`Self::delete`]. Returns the tombstone and whether this call deleted it. Whether the
    /// actor is an admin is the caller's ([`super::AdminService`]) to check; a missing message
    /// is [`DomainError::NotFound`].
    pub(crate) fn moderate_delete(
        &self,
        admin: UserId,
        message_id: MessageId,
    ) -> Result<(MessageView, bool), DomainError> {
        let changed = self
            .messages
            .moderate_delete(message_id, admin, self.clock.now(), &mut |changed| {
                let (message, audience) = Self::audience_view(changed, admin);
                let at = message.message.updated_at;
                self.events.publish(DomainEvent::MessageDeleted {
                    message,
                    audience,
                    at,
                });
            })
            .map_err(|e| Self::gone(e, message_id))?;
        let (tombstone, _) = Self::audience_view(&changed, admin);
        Ok((tombstone, changed.changed))
    }

    /// A message and the caller's membership of its conversation, or "not found" when the
    /// caller may not read it.
    fn readable(
        &self,
        user: UserId,
        message_id: MessageId,
    ) -> Result<(Message, Member), DomainError> {
        let not_found = || DomainError::not_found(Resource::Message, message_id);
        let message = self.messages.find(message_id)?.ok_or_else(not_found)?;
        let member = self
            .conversations
            .membership(message.conversation_id, user)?
            .ok_or_else(not_found)?;
        Ok((message, member))
    }

    /// A change the store refused because the message, or the caller's membership, is gone.
    fn gone(error: StoreError, message_id: MessageId) -> DomainError {
        match error {
            StoreError::Missing => DomainError::not_found(Resource::Message, message_id),
            other => other.into(),
        }
    }

    /// A changed message from the actor's side, and who hears of the change: the members
    /// when it committed.
    fn audience_view(changed: &MessageChanged, actor: UserId) -> (MessageView, Vec<UserId>) {
        let direct = changed.kind == ConversationKind::Direct;
        let view = view_message(changed.message.clone(), &changed.members, direct, actor);
        (view, changed.members.iter().map(|m| m.user_id).collect())
    }

    /// Marks a message, and with it every earlier message of its conversation, read for the
    /// user. Idempotent; a marker never moves back. Returns the marker as it now stands and
    /// whether this call moved it; members hear of it only when it moved.
    pub fn mark_read(
        &self,
        user: UserId,
        message_id: MessageId,
    ) -> Result<(ReadReceipt, bool), DomainError> {
        let not_found = || DomainError::not_found(Resource::Message, message_id);
        let message = self.messages.find(message_id)?.ok_or_else(not_found)?;
        let conversation_id = message.conversation_id;
        let before = self
            .conversations
            .membership(conversation_id, user)?
            .ok_or_else(not_found)?;
        let marker = self
            .read_receipts
            .advance(conversation_id, user, message.seq, self.clock.now())
            .map_err(|e| match e {
                StoreError::Missing => not_found(),
                other => other.into(),
            })?;
        let receipt = ReadReceipt { message_id, marker };
        let moved = before.last_read_seq < message.seq;
        if moved {
            let audience = self
                .conversations
                .members(conversation_id)?
                .into_iter()
                .map(|m| m.user_id)
                .collect();
            self.events.publish(DomainEvent::MessageRead {
                receipt: receipt.clone(),
                audience,
                at: self.clock.now(),
            });
        }
        Ok((receipt, moved))
    }

    /// Sets the caller's read marker in a conversation explicitly, back ("mark unread") or
    /// forward, onto the newest message at or below `last_read_seq` (zero: nothing read; a
    /// seq past the newest message means all read). The caller's own devices hear of every
    /// set; the other members hear of a move forward only, as a read receipt, and of a move
    /// back nothing. A negative seq is invalid; a non-member gets "not found".
    pub fn set_read_marker(
        &self,
        user: UserId,
        conversation_id: ConversationId,
        last_read_seq: i64,
    ) -> Result<MarkerSet, DomainError> {
        if last_read_seq < 0 {
            return Err(DomainError::invalid(
                "last_read_seq",
                "must be a non-negative integer",
            ));
        }
        let not_found = || DomainError::not_found(Resource::Conversation, conversation_id);
        let now = self.clock.now();
        let set = self
            .read_receipts
            .set_marker(conversation_id, user, Seq(last_read_seq), now)
            .map_err(|e| match e {
                StoreError::Missing => not_found(),
                other => other.into(),
            })?;
        self.events.publish(DomainEvent::ReadMarkerSet {
            set: set.clone(),
            audience: vec![user],
            at: now,
        });
        if let (true, Some(message_id)) = (set.moved_forward(), set.message_id) {
            let audience = self
                .conversations
                .members(conversation_id)?
                .into_iter()
                .map(|m| m.user_id)
                .filter(|member| *member != user)
                .collect();
            self.events.publish(DomainEvent::MessageRead {
                receipt: ReadReceipt {
                    message_id,
                    marker: set.marker.clone(),
                },
                audience,
                at: now,
            });
        }
        Ok(set)
    }

    /// Messages from others after the user's marker, per conversation, and in total over the
    /// conversations the user has not muted (the badge); and those of them that mention the
    /// user, per conversation and in total over every conversation, muted ones included: a
    /// mute silences a conversation's chatter, not what is addressed to the user (as Slack
    /// and Discord count them).
    pub fn unread_counts(&self, user: UserId) -> Result<UnreadCounts, DomainError> {
        let conversations = self.read_receipts.unread_counts(user)?;
        let mentions = if conversations.is_empty() {
            Vec::new()
        } else {
            self.read_receipts.unread_mentions(user)?
        };
        let muted = if conversations.is_empty() {
            Vec::new()
        } else {
            let all_muted = self.conversations.muted(user, self.clock.now())?;
            conversations
                .iter()
                .map(|(id, _)| *id)
                .filter(|id| all_muted.contains(id))
                .collect()
        };
        Ok(UnreadCounts {
            total: conversations
                .iter()
                .filter(|(id, _)| !muted.contains(id))
                .map(|(_, n)| n)
                .sum(),
            conversations,
            muted,
            total_mentions: mentions.iter().map(|(_, n)| n).sum(),
            mentions,
        })
    }

    /// Every message after `since` in the user's conversations, ascending, at most
    /// [`Self::MAX_SYNC_BATCH`]: what a reconnecting client missed.
    pub fn since(&self, user: UserId, since: Seq) -> Result<Vec<MessageView>, DomainError> {
        let messages = self.messages.since(user, since, Self::MAX_SYNC_BATCH)?;
        let mut context: HashMap<ConversationId, (Vec<Member>, bool)> = HashMap::new();
        let mut views = Vec::with_capacity(messages.len());
        for message in messages {
            let id = message.conversation_id;
            let (members, direct) = match context.entry(id) {
                Entry::Occupied(entry) => entry.into_mut(),
                Entry::Vacant(entry) => {
                    let direct = self.kind_of(id)? == ConversationKind::Direct;
                    entry.insert((self.conversations.members(id)?, direct))
                }
            };
            views.push(view_message(message, members, *direct, user));
        }
        Ok(views)
    }

    /// The highest seq the user can see: where a fresh client's catch-up starts.
    pub fn last_seq(&self, user: UserId) -> Result<Seq, DomainError> {
        Ok(self.messages.last_seq_for(user)?)
    }

    /// A conversation's kind never changes, so once read it is remembered.
    pub(super) fn kind_of(&self, id: ConversationId) -> Result<ConversationKind, DomainError> {
        let known = self
            .kinds
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&id)
            .copied();
        if let Some(kind) = known {
            return Ok(kind);
        }
        let kind = self
            .conversations
            .find(id)?
            .ok_or_else(|| DomainError::not_found(Resource::Conversation, id))?
            .kind;
        let mut kinds = self
            .kinds
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if kinds.len() >= Self::KINDS_REMEMBERED {
            kinds.clear();
        }
        kinds.insert(id, kind);
        Ok(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::World;
    use crate::ports::UserStore;
    use crate::service::CreateConversation;
    use chrono::{DateTime, Utc};

    struct Chat {
        world: World,
        alice: UserId,
        bob: UserId,
        carol: UserId,
        group: ConversationId,
    }

    fn chat() -> Chat {
        let world = World::new();
        let (alice, bob, carol) = (world.user("alice"), world.user("bob"), world.user("carol"));
        let group = world
            .services
            .conversations
            .create(
                alice,
                CreateConversation {
                    participant_ids: vec![bob, carol],
                    name: Some("team".into()),
                    is_group: None,
                },
            )
            .unwrap()
            .0
            .conversation
            .id;
        world.events.take();
        Chat {
            world,
            alice,
            bob,
            carol,
            group,
        }
    }

    /// Alice's direct conversation with Bob.
    fn direct_with_bob(chat: &Chat) -> ConversationId {
        chat.world
            .services
            .conversations
            .create(
                chat.alice,
                CreateConversation {
                    participant_ids: vec![chat.bob],
                    ..Default::default()
                },
            )
            .unwrap()
            .0
            .conversation
            .id
    }

    fn send(chat: &Chat, from: UserId, text: &str) -> MessageView {
        chat.world
            .services
            .messages
            .send(
                from,
                chat.group,
                SendMessage {
                    content: text.into(),
                    client_message_id: None,
                    reply_to_id: None,
                    thread_root_id: None,
                    attachment_ids: Vec::new(),
                },
            )
            .unwrap()
            .0
    }

    #[test]
    fn a_thread_is_read_by_members_only_and_a_bad_root_is_a_validation_error() {
        let chat = chat();
        let messages = &chat.world.services.messages;
        let root = send(&chat, chat.alice, "root");
        let request = |root_id, key: &str| SendMessage {
            content: "in the thread".into(),
            client_message_id: Some(key.into()),
            thread_root_id: Some(root_id),
            ..Default::default()
        };
        let (reply, _) = messages
            .send(chat.bob, chat.group, request(root.message.id, "k"))
            .unwrap();
        let events = chat.world.events.take();
        let DomainEvent::MessageCreated { message, .. } = &events[1] else {
            panic!("a thread reply is announced: {events:?}");
        };
        assert_eq!(message.message.thread_root_id, Some(root.message.id));
        let error = messages
            .send(chat.bob, chat.group, request(reply.message.id, "k2"))
            .unwrap_err();
        assert!(
            matches!(&error, DomainError::Validation(e) if e[0].field == "thread_root_id"),
            "{error:?}"
        );
        let other = send(&chat, chat.alice, "another root");
        let conflict = messages
            .send(chat.bob, chat.group, request(other.message.id, "k"))
            .unwrap_err();
        assert!(matches!(conflict, DomainError::IdempotencyConflict { .. }));
        let thread = messages
            .thread(chat.carol, root.message.id, HistoryCursor::Latest, 50)
            .unwrap();
        assert_eq!(thread.len(), 1);
        assert_eq!(thread[0].message.id, reply.message.id);
        let stranger = chat.world.user("mallory");
        let refused = messages
            .thread(stranger, root.message.id, HistoryCursor::Latest, 50)
            .unwrap_err();
        assert!(
            matches!(refused, DomainError::NotFound { .. }),
            "{refused:?}"
        );
        let history = messages
            .history(chat.carol, chat.group, HistoryCursor::Latest, 50)
            .unwrap();
        assert_eq!(
            history.len(),
            2,
            "the thread reply is no main-history message"
        );
        assert_eq!(history[0].message.thread.as_ref().unwrap().reply_count, 1);
    }

    #[test]
    fn a_sent_message_is_announced_to_every_member_the_sender_included() {
        let chat = chat();
        let sent = send(&chat, chat.alice, "  hello  ");
        assert_eq!(sent.message.text(), Some("hello"));
        assert_eq!(sent.recipient_id, None);
        let events = chat.world.events.take();
        assert_eq!(events.len(), 1);
        let mut audience = events[0].audience().to_vec();
        audience.sort();
        let mut everyone = vec![chat.alice, chat.bob, chat.carol];
        everyone.sort();
        assert_eq!(audience, everyone);
    }

    #[test]
    fn a_retried_send_with_the_same_client_message_id_stores_nothing_new() {
        let chat = chat();
        let request = SendMessage {
            content: "once".into(),
            client_message_id: Some("c-1".into()),
            reply_to_id: None,
            thread_root_id: None,
            attachment_ids: Vec::new(),
        };
        let messages = &chat.world.services.messages;
        let (first, created) = messages
            .send(chat.alice, chat.group, request.clone())
            .unwrap();
        let (again, created_again) = messages
            .send(chat.alice, chat.group, request.clone())
            .unwrap();
        assert!(created && !created_again);
        assert_eq!(first.message.id, again.message.id);
        assert_eq!(chat.world.store.message_count(), 1);
        assert_eq!(chat.world.events.take().len(), 1);
        // The same client id from another sender is another message.
        let (bobs, bob_created) = messages.send(chat.bob, chat.group, request).unwrap();
        assert!(bob_created);
        assert_ne!(bobs.message.id, first.message.id);
    }

    #[test]
    fn a_client_message_id_used_in_another_conversation_is_another_message() {
        let chat = chat();
        let direct = direct_with_bob(&chat);
        let request = SendMessage {
            content: "same words".into(),
            client_message_id: Some("same".into()),
            reply_to_id: None,
            thread_root_id: None,
            attachment_ids: Vec::new(),
        };
        let messages = &chat.world.services.messages;
        let (in_group, _) = messages
            .send(chat.alice, chat.group, request.clone())
            .unwrap();
        let (in_direct, created) = messages.send(chat.alice, direct, request).unwrap();
        assert!(created);
        assert_ne!(in_direct.message.id, in_group.message.id);
        assert_eq!(in_direct.message.conversation_id, direct);
        assert_eq!(chat.world.store.message_count(), 2);
    }

    #[test]
    fn a_retry_key_reused_for_other_content_is_refused_and_stores_nothing() {
        let chat = chat();
        let messages = &chat.world.services.messages;
        let send_as = |content: &str| {
            messages.send(
                chat.alice,
                chat.group,
                SendMessage {
                    content: content.into(),
                    client_message_id: Some("k-1".into()),
                    reply_to_id: None,
                    thread_root_id: None,
                    attachment_ids: Vec::new(),
                },
            )
        };
        let (first, _) = send_as("first words").unwrap();
        chat.world.events.take();
        let refused = send_as("other words");
        assert!(
            matches!(&refused, Err(DomainError::IdempotencyConflict { client_message_id }) if client_message_id == "k-1"),
            "{refused:?}"
        );
        assert_eq!(chat.world.store.message_count(), 1);
        assert!(chat.world.events.take().is_empty());
        // The real retry still gets the stored message.
        let (again, created) = send_as("first words").unwrap();
        assert!(!created);
        assert_eq!(again.message.id, first.message.id);
    }

    #[test]
    fn a_deactivated_user_cannot_be_messaged_in_an_existing_direct_conversation() {
        let chat = chat();
        let direct = direct_with_bob(&chat);
        chat.world.store.deactivate(chat.bob, Utc::now()).unwrap();
        let refused = chat.world.services.messages.send(
            chat.alice,
            direct,
            SendMessage {
                content: "hello?".into(),
                client_message_id: None,
                reply_to_id: None,
                thread_root_id: None,
                attachment_ids: Vec::new(),
            },
        );
        assert!(
            matches!(
                &refused,
                Err(DomainError::NotFound {
                    resource: Resource::User,
                    ..
                })
            ),
            "{refused:?}"
        );
        assert_eq!(chat.world.store.message_count(), 0);
        // A group with a deactivated member still works for everyone else.
        send(&chat, chat.alice, "to the group");
    }

    #[test]
    fn non_members_can_neither_send_nor_read() {
        let chat = chat();
        let eve = chat.world.user("eve");
        let messages = &chat.world.services.messages;
        let sent = send(&chat, chat.alice, "secret");
        assert!(matches!(
            messages.send(
                eve,
                chat.group,
                SendMessage {
                    content: "hi".into(),
                    client_message_id: None,
                    reply_to_id: None,
                    thread_root_id: None,
                    attachment_ids: Vec::new(),
                }
            ),
            Err(DomainError::NotFound {
                resource: Resource::Conversation,
                ..
            })
        ));
        assert!(
            messages
                .history(eve, chat.group, HistoryCursor::Latest, 50)
                .is_err()
        );
        assert!(matches!(
            messages.mark_read(eve, sent.message.id),
            Err(DomainError::NotFound {
                resource: Resource::Message,
                ..
            })
        ));
    }

    #[test]
    fn history_pages_by_seq_in_both_directions() {
        let chat = chat();
        let seqs: Vec<Seq> = (0..5)
            .map(|i| send(&chat, chat.alice, &format!("m{i}")).message.seq)
            .collect();
        let history = |cursor| {
            chat.world
                .services
                .messages
                .history(chat.bob, chat.group, cursor, 2)
                .unwrap()
                .iter()
                .map(|v| v.message.seq)
                .collect::<Vec<_>>()
        };
        assert_eq!(history(HistoryCursor::Latest), seqs[3..]);
        assert_eq!(history(HistoryCursor::Before(seqs[3])), seqs[1..3]);
        assert_eq!(history(HistoryCursor::After(seqs[0])), seqs[1..3]);
    }

    #[test]
    fn marking_an_old_message_never_moves_the_marker_back() {
        let chat = chat();
        let first = send(&chat, chat.alice, "one");
        let second = send(&chat, chat.alice, "two");
        chat.world.events.take();
        let messages = &chat.world.services.messages;
        let (receipt, moved) = messages.mark_read(chat.bob, second.message.id).unwrap();
        assert!(moved);
        assert_eq!(receipt.marker.last_read_seq, second.message.seq);
        let (older, moved) = messages.mark_read(chat.bob, first.message.id).unwrap();
        assert!(!moved);
        assert_eq!(older.marker.last_read_seq, second.message.seq);
        let (again, _) = messages.mark_read(chat.bob, second.message.id).unwrap();
        assert_eq!(again.marker.last_read_seq, second.message.seq);
        // Only the move forward was announced.
        assert_eq!(chat.world.events.take().len(), 1);
    }

    #[test]
    fn unread_counts_count_only_messages_from_others_after_the_marker() {
        let chat = chat();
        send(&chat, chat.alice, "one");
        let two = send(&chat, chat.alice, "two");
        send(&chat, chat.alice, "three");
        send(&chat, chat.bob, "bob's own");
        let messages = &chat.world.services.messages;
        // Carol has read nothing: 3 from alice, 1 from bob.
        assert_eq!(messages.unread_counts(chat.carol).unwrap().total, 4);
        messages.mark_read(chat.carol, two.message.id).unwrap();
        let counts = messages.unread_counts(chat.carol).unwrap();
        assert_eq!(counts.total, 2);
        assert_eq!(counts.conversations, vec![(chat.group, 2)]);
        // Sending moves the sender's own marker: bob has read what came before his message.
        assert_eq!(messages.unread_counts(chat.bob).unwrap().total, 0);
    }

    #[test]
    fn is_read_is_seen_from_the_viewer_side() {
        let chat = chat();
        let sent = send(&chat, chat.alice, "hello");
        let messages = &chat.world.services.messages;
        let view = |viewer| {
            messages
                .history(viewer, chat.group, HistoryCursor::Latest, 1)
                .unwrap()[0]
                .is_read
        };
        assert!(!view(chat.bob));
        messages.mark_read(chat.bob, sent.message.id).unwrap();
        assert!(view(chat.bob));
        // Alice's message counts as read only when every other member has read it.
        assert!(!view(chat.alice));
        messages.mark_read(chat.carol, sent.message.id).unwrap();
        assert!(view(chat.alice));
    }

    #[test]
    fn catching_up_returns_exactly_the_messages_after_a_seq_in_the_users_conversations() {
        let chat = chat();
        let first = send(&chat, chat.alice, "one");
        let second = send(&chat, chat.bob, "two");
        let outsider = chat.world.user("dave");
        let messages = &chat.world.services.messages;
        let missed: Vec<_> = messages
            .since(chat.carol, first.message.seq)
            .unwrap()
            .into_iter()
            .map(|v| v.message.id)
            .collect();
        assert_eq!(missed, vec![second.message.id]);
        assert_eq!(messages.last_seq(chat.carol).unwrap(), second.message.seq);
        assert!(messages.since(outsider, Seq::ZERO).unwrap().is_empty());
    }

    #[test]
    fn a_sender_over_the_message_budget_is_refused_and_nothing_is_stored() {
        let chat = chat();
        let burst = crate::limits::Limits::default()
            .messages_per_user
            .unwrap()
            .burst;
        for i in 0..burst {
            send(&chat, chat.alice, &format!("m{i}"));
        }
        let refused = chat.world.services.messages.send(
            chat.alice,
            chat.group,
            SendMessage {
                content: "one too many".into(),
                client_message_id: None,
                reply_to_id: None,
                thread_root_id: None,
                attachment_ids: Vec::new(),
            },
        );
        assert!(matches!(refused, Err(DomainError::RateLimited { .. })));
        assert_eq!(chat.world.store.message_count(), burst as usize);
        // Others still have their own budget.
        send(&chat, chat.bob, "still fine");
    }

    #[test]
    fn a_submitted_message_is_answered_once_and_a_refused_one_announces_nothing() {
        let chat = chat();
        let answers = Arc::new(Mutex::new(Vec::new()));
        for content in ["hello", "   "] {
            let answers = answers.clone();
            chat.world.services.messages.submit(
                chat.bob,
                chat.group,
                SendMessage {
                    content: content.into(),
                    client_message_id: None,
                    reply_to_id: None,
                    thread_root_id: None,
                    attachment_ids: Vec::new(),
                },
                move |answer| answers.lock().unwrap().push(answer),
            );
        }
        let answers = std::mem::take(&mut *answers.lock().unwrap());
        let [Ok((view, true)), Err(DomainError::Validation(_))] = answers.as_slice() else {
            panic!("one stored message, then one refused: {answers:?}");
        };
        assert_eq!(view.message.text(), Some("hello"));
        assert_eq!(chat.world.store.message_count(), 1);
        assert_eq!(
            chat.world.events.take().len(),
            1,
            "only the stored one is announced"
        );
    }

    #[test]
    fn setting_the_marker_back_tells_only_the_readers_devices_and_forward_the_others_too() {
        let chat = chat();
        let first = send(&chat, chat.alice, "one");
        let second = send(&chat, chat.alice, "two");
        let messages = &chat.world.services.messages;
        messages.mark_read(chat.bob, second.message.id).unwrap();
        chat.world.events.take();

        let back = messages
            .set_read_marker(chat.bob, chat.group, first.message.seq.0)
            .unwrap();
        assert_eq!(back.marker.last_read_seq, first.message.seq);
        assert_eq!(back.unread_count, 1);
        let events = chat.world.events.take();
        assert_eq!(events.len(), 1, "{events:?}");
        assert!(
            matches!(&events[0], DomainEvent::ReadMarkerSet { set, audience, .. }
            if *set == back && *audience == vec![chat.bob])
        );

        let forward = messages
            .set_read_marker(chat.bob, chat.group, i64::MAX)
            .unwrap();
        assert_eq!(forward.marker.last_read_seq, second.message.seq);
        assert_eq!(forward.message_id, Some(second.message.id));
        let events = chat.world.events.take();
        assert_eq!(events.len(), 2, "{events:?}");
        assert!(
            matches!(&events[0], DomainEvent::ReadMarkerSet { audience, .. }
            if *audience == vec![chat.bob])
        );
        let DomainEvent::MessageRead {
            receipt, audience, ..
        } = &events[1]
        else {
            panic!("a move forward is a read receipt: {events:?}")
        };
        assert_eq!(receipt.message_id, second.message.id);
        assert_eq!(receipt.marker.seq, forward.marker.seq);
        let mut audience = audience.clone();
        audience.sort();
        let mut others = vec![chat.alice, chat.carol];
        others.sort();
        assert_eq!(audience, others, "the reader's own devices got the marker");
    }

    #[test]
    fn a_negative_marker_is_invalid_and_an_outsider_has_no_marker_to_set() {
        let chat = chat();
        send(&chat, chat.alice, "one");
        let outsider = chat.world.user("dave");
        chat.world.events.take();
        let messages = &chat.world.services.messages;
        assert!(matches!(
            messages.set_read_marker(chat.bob, chat.group, -1),
            Err(DomainError::Validation(_))
        ));
        assert!(matches!(
            messages.set_read_marker(outsider, chat.group, 0),
            Err(DomainError::NotFound {
                resource: Resource::Conversation,
                ..
            })
        ));
        assert!(chat.world.events.take().is_empty());
    }

    #[test]
    fn muted_conversations_stay_out_of_the_total_but_keep_their_count() {
        let chat = chat();
        let direct = direct_with_bob(&chat);
        send(&chat, chat.alice, "group one");
        send(&chat, chat.alice, "group two");
        chat.world
            .services
            .messages
            .send(
                chat.alice,
                direct,
                SendMessage {
                    content: "direct".into(),
                    client_message_id: None,
                    reply_to_id: None,
                    thread_root_id: None,
                    attachment_ids: Vec::new(),
                },
            )
            .unwrap();
        let mute = |until| {
            chat.world
                .services
                .conversations
                .update_settings(
                    chat.bob,
                    chat.group,
                    crate::read_state::SettingsUpdate {
                        muted_until: Some(until),
                        archived: None,
                    },
                )
                .unwrap()
        };
        let muted = mute(Some(Utc::now() + chrono::Duration::days(36500)));
        assert!(muted.settings.muted_until.is_some());
        let counts = chat
            .world
            .services
            .messages
            .unread_counts(chat.bob)
            .unwrap();
        assert_eq!(counts.total, 1);
        assert_eq!(counts.muted, vec![chat.group]);
        assert_eq!(counts.conversations.len(), 2);
        // A mute that already ended is no mute.
        let ended = mute(Some(DateTime::<Utc>::MIN_UTC));
        assert_eq!(ended.settings.muted_until, None);
        assert_eq!(
            chat.world
                .services
                .messages
                .unread_counts(chat.bob)
                .unwrap()
                .total,
            3
        );
    }

    #[test]
    fn mentions_of_a_muted_conversation_still_count_in_the_total() {
        let chat = chat();
        send(&chat, chat.alice, "@bob look");
        send(&chat, chat.carol, "@all standup");
        send(&chat, chat.alice, "nothing for bob");
        let messages = &chat.world.services.messages;
        let created = chat.world.events.take();
        let mentioned: Vec<usize> = created
            .iter()
            .filter_map(|event| match event {
                DomainEvent::MessageCreated { message, .. } => Some(message.message.mentions.len()),
                _ => None,
            })
            .collect();
        assert_eq!(
            mentioned,
            [1, 2, 0],
            "the service hands the store the @names"
        );
        let counts = messages.unread_counts(chat.bob).unwrap();
        assert_eq!((counts.total, counts.total_mentions), (3, 2));
        assert_eq!(counts.mentions, vec![(chat.group, 2)]);
        chat.world
            .services
            .conversations
            .update_settings(
                chat.bob,
                chat.group,
                crate::read_state::SettingsUpdate {
                    muted_until: Some(Some(Utc::now() + chrono::Duration::days(1))),
                    archived: None,
                },
            )
            .unwrap();
        let counts = messages.unread_counts(chat.bob).unwrap();
        assert_eq!(
            counts.total, 0,
            "the muted group's messages leave the badge"
        );
        assert_eq!(counts.total_mentions, 2, "its mentions stay");
        assert_eq!(counts.mentions, vec![(chat.group, 2)]);
    }

    #[test]
    fn only_the_sender_edits_and_every_member_hears_of_a_real_change_only() {
        let chat = chat();
        let sent = send(&chat, chat.alice, "helo");
        chat.world.events.take();
        let messages = &chat.world.services.messages;
        assert!(matches!(
            messages.edit(chat.bob, sent.message.id, "hello"),
            Err(DomainError::NotTheSender(_))
        ));
        let eve = chat.world.user("eve");
        assert!(matches!(
            messages.edit(eve, sent.message.id, "hello"),
            Err(DomainError::NotFound {
                resource: Resource::Message,
                ..
            })
        ));
        assert!(matches!(
            messages.edit(chat.alice, sent.message.id, "  "),
            Err(DomainError::Validation(_))
        ));
        let (edited, changed) = messages.edit(chat.alice, sent.message.id, "hello").unwrap();
        assert!(changed);
        assert_eq!(edited.message.text(), Some("hello"));
        assert!(edited.message.edited_at.is_some());
        let events = chat.world.events.take();
        let [DomainEvent::MessageUpdated { audience, .. }] = events.as_slice() else {
            panic!("one update announced: {events:?}");
        };
        assert_eq!(audience.len(), 3);
        let (same, changed) = messages.edit(chat.alice, sent.message.id, "hello").unwrap();
        assert!(!changed);
        assert_eq!(same.message.change_seq, edited.message.change_seq);
        assert!(chat.world.events.take().is_empty(), "no change, no event");
    }

    #[test]
    fn group_moderators_may_delete_for_everyone_but_a_direct_partner_may_not() {
        let chat = chat();
        let messages = &chat.world.services.messages;
        let from_bob = send(&chat, chat.bob, "spam");
        assert!(matches!(
            messages.delete(chat.carol, from_bob.message.id, DeleteScope::Everyone),
            Err(DomainError::NotTheSender(_))
        ));
        chat.world.events.take();
        // Alice owns the group.
        let Deleted::ForEveryone {
            tombstone,
            new: true,
        } = messages
            .delete(chat.alice, from_bob.message.id, DeleteScope::Everyone)
            .unwrap()
        else {
            panic!("deleted for everyone");
        };
        assert_eq!(tombstone.message.content, None);
        assert_eq!(tombstone.message.deletion.unwrap().by, chat.alice);
        assert!(matches!(
            chat.world.events.take().as_slice(),
            [DomainEvent::MessageDeleted { .. }]
        ));
        assert!(matches!(
            messages.edit(chat.bob, from_bob.message.id, "again"),
            Err(DomainError::MessageDeleted(_))
        ));
        let Deleted::ForEveryone {
            tombstone: again,
            new: false,
        } = messages
            .delete(chat.bob, from_bob.message.id, DeleteScope::Everyone)
            .unwrap()
        else {
            panic!("a second delete changes nothing");
        };
        assert_eq!(again.message.change_seq, tombstone.message.change_seq);
        assert!(chat.world.events.take().is_empty());

        let direct = direct_with_bob(&chat);
        let (to_bob, _) = messages
            .send(
                chat.alice,
                direct,
                SendMessage {
                    content: "hi".into(),
                    client_message_id: None,
                    reply_to_id: None,
                    thread_root_id: None,
                    attachment_ids: Vec::new(),
                },
            )
            .unwrap();
        assert!(matches!(
            messages.delete(chat.bob, to_bob.message.id, DeleteScope::Everyone),
            Err(DomainError::NotTheSender(_))
        ));
    }

    #[test]
    fn a_message_deleted_for_me_leaves_my_history_and_only_mine() {
        let chat = chat();
        let messages = &chat.world.services.messages;
        let ids: Vec<MessageId> = (0..5)
            .map(|i| send(&chat, chat.alice, &format!("m{i}")).message.id)
            .collect();
        chat.world.events.take();
        for id in &ids[2..4] {
            let deleted = messages.delete(chat.bob, *id, DeleteScope::Me).unwrap();
            assert!(matches!(deleted, Deleted::ForMe { new: true, .. }));
        }
        let again = messages.delete(chat.bob, ids[3], DeleteScope::Me).unwrap();
        assert!(matches!(again, Deleted::ForMe { new: false, .. }));
        let events = chat.world.events.take();
        assert_eq!(events.len(), 2, "one event per new hiding: {events:?}");
        assert!(events.iter().all(|e| e.audience() == [chat.bob]));
        let page = |viewer, cursor, limit| -> Vec<MessageId> {
            messages
                .history(viewer, chat.group, cursor, limit)
                .unwrap()
                .iter()
                .map(|v| v.message.id)
                .collect()
        };
        // Pages stay full: hidden messages are replaced by older ones.
        assert_eq!(
            page(chat.bob, HistoryCursor::Latest, 3),
            vec![ids[0], ids[1], ids[4]]
        );
        assert_eq!(
            page(chat.bob, HistoryCursor::After(Seq::ZERO), 3),
            vec![ids[0], ids[1], ids[4]]
        );
        assert_eq!(
            page(chat.carol, HistoryCursor::Latest, 3),
            ids[2..].to_vec()
        );
        assert_eq!(messages.unread_counts(chat.bob).unwrap().total, 3);
        assert_eq!(messages.unread_counts(chat.carol).unwrap().total, 5);
        assert_eq!(messages.since(chat.bob, Seq::ZERO).unwrap().len(), 3);
    }
}
