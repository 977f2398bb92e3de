//! Domain events: every state change a member should learn about in real time.
//!
//! Each event names its audience, resolved when the change was made, so a gateway only has
//! to deliver: it never has to ask the store who may see what. A member removed from a
//! conversation is absent from the audience of everything after the removal.

use chrono::{DateTime, Utc};

use crate::conversation::{Conversation, ConversationChange};
use crate::message::{Emoji, HiddenMessage, MessageView, Seq};
use crate::presence::Presence;
use crate::read_state::{Delivered, MarkerSet, ReadReceipt, SettingsChanged};
use crate::{ConversationId, MessageId, SessionId, UserId};

/// A reaction added to or removed from a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReactionChanged {
    /// The change's place in the feed: the message's `change_seq` after it.
    pub seq: Seq,
    pub message_id: MessageId,
    pub conversation_id: ConversationId,
    pub emoji: Emoji,
    /// Who reacted, or took their reaction back.
    pub user_id: UserId,
    /// How many users hold this emoji on the message after the change.
    pub count: usize,
}

/// A message pinned or unpinned in its conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinChanged {
    /// The change's place in the feed: the message's `change_seq` after it.
    pub seq: Seq,
    pub message_id: MessageId,
    pub conversation_id: ConversationId,
    /// Who pinned or unpinned it.
    pub user_id: UserId,
}

#[derive(Debug, Clone)]
pub enum DomainEvent {
    /// A message was stored. Every member hears of it, the sender too, so the sender's other
    /// devices stay in step.
    MessageCreated {
        message: MessageView,
        audience: Vec<UserId>,
        at: DateTime<Utc>,
    },
    /// Its sender edited a message. Every member hears of it; the message is as it now
    /// stands, and its `change_seq` is the edit's place in the order.
    MessageUpdated {
        message: MessageView,
        audience: Vec<UserId>,
        at: DateTime<Utc>,
    },
    /// A message was deleted for everyone: every member gets its tombstone, whose
    /// `change_seq` is the delete's place in the order.
    MessageDeleted {
        message: MessageView,
        audience: Vec<UserId>,
        at: DateTime<Utc>,
    },
    /// A user deleted a message for themselves only; only that user hears of it (their
    /// other devices).
    MessageHidden {
        hidden: HiddenMessage,
        audience: Vec<UserId>,
        at: DateTime<Utc>,
    },
    /// A member's read marker moved forward.
    MessageRead {
        receipt: ReadReceipt,
        audience: Vec<UserId>,
        at: DateTime<Utc>,
    },
    /// A member set their own read marker explicitly ("mark unread", or forward). Only the
    /// member's own devices hear of it; a move forward is also a [`Self::MessageRead`].
    ReadMarkerSet {
        set: MarkerSet,
        audience: Vec<UserId>,
        at: DateTime<Utc>,
    },
    /// Messages reached a member's devices further than before (coalesced: one event per
    /// member and conversation per recording, however many messages it covers). The other
    /// members hear of it, so senders can show "delivered" beside "read".
    MessageDelivered {
        delivered: Delivered,
        audience: Vec<UserId>,
        at: DateTime<Utc>,
    },
    /// A member changed their own settings (mute, archive). Only their own devices hear of it.
    SettingsChanged {
        change: SettingsChanged,
        audience: Vec<UserId>,
        at: DateTime<Utc>,
    },
    /// A member started or stopped typing. Not stored; the typer is not in the audience.
    Typing {
        conversation_id: ConversationId,
        user_id: UserId,
        is_typing: bool,
        audience: Vec<UserId>,
        at: DateTime<Utc>,
    },
    /// A conversation was created, renamed, or its membership changed. Removed members are in
    /// the audience of their own removal, and of nothing after it.
    ConversationUpdated {
        conversation: Conversation,
        /// The change's position in the change feed.
        seq: Seq,
        change: ConversationChange,
        actor: UserId,
        audience: Vec<UserId>,
        at: DateTime<Utc>,
    },
    /// A member reacted to a message. Every member hears of it, the reactor too.
    ReactionAdded {
        change: ReactionChanged,
        audience: Vec<UserId>,
        at: DateTime<Utc>,
    },
    /// A member took a reaction back.
    ReactionRemoved {
        change: ReactionChanged,
        audience: Vec<UserId>,
        at: DateTime<Utc>,
    },
    /// A message was pinned in its conversation.
    MessagePinned {
        change: PinChanged,
        audience: Vec<UserId>,
        at: DateTime<Utc>,
    },
    /// A message was unpinned.
    MessageUnpinned {
        change: PinChanged,
        audience: Vec<UserId>,
        at: DateTime<Utc>,
    },
    /// Access was withdrawn: one token (logout of a token from before sessions), one login
    /// session (logout, signing a device out, refresh-token reuse), or every token of the
    /// user (password change, deactivation). Connections opened with a withdrawn token
    /// must close.
    AccessRevoked {
        user_id: UserId,
        /// The one token revoked; with `session_id` also `None`, all of the user's tokens.
        token_id: Option<String>,
        /// The session ended: every token issued in it is withdrawn.
        session_id: Option<SessionId>,
        audience: Vec<UserId>,
    },
    /// A user's presence changed (coalesced: see [`crate::presence::Coalescer`]). Only those
    /// who may see it are in the audience, and `presence` is as they may see it (one event
    /// per way of seeing it: `last_seen_at` shown or hidden). Not stored.
    PresenceChanged {
        presence: Presence,
        audience: Vec<UserId>,
        at: DateTime<Utc>,
    },
}

impl DomainEvent {
    /// The users whose connections should receive this event.
    pub fn audience(&self) -> &[UserId] {
        match self {
            DomainEvent::MessageCreated { audience, .. }
            | DomainEvent::MessageUpdated { audience, .. }
            | DomainEvent::MessageDeleted { audience, .. }
            | DomainEvent::MessageHidden { audience, .. }
            | DomainEvent::MessageRead { audience, .. }
            | DomainEvent::ReadMarkerSet { audience, .. }
            | DomainEvent::MessageDelivered { audience, .. }
            | DomainEvent::SettingsChanged { audience, .. }
            | DomainEvent::Typing { audience, .. }
            | DomainEvent::ConversationUpdated { audience, .. }
            | DomainEvent::ReactionAdded { audience, .. }
            | DomainEvent::ReactionRemoved { audience, .. }
            | DomainEvent::MessagePinned { audience, .. }
            | DomainEvent::MessageUnpinned { audience, .. }
            | DomainEvent::AccessRevoked { audience, .. }
            | DomainEvent::PresenceChanged { audience, .. } => audience,
        }
    }

    /// Whether an `AccessRevoked` for `user_id`, naming `token_id` and `session_id`,
    /// withdraws the token `token` of session `session` held by `holder`.
    pub fn revokes(
        (user_id, token_id, session_id): (UserId, Option<&str>, Option<SessionId>),
        holder: UserId,
        token: &str,
        session: Option<SessionId>,
    ) -> bool {
        holder == user_id
            && match (token_id, session_id) {
                (None, None) => true,
                (token_id, session_id) => {
                    token_id.is_some_and(|t| t == token)
                        || session_id.is_some_and(|s| Some(s) == session)
                }
            }
    }
}
