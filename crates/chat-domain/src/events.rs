//! Domain events: every state change a member should learn about in real time.
//!
//! Each event names its audience, resolved when the change was made, so a gateway only has
//! to deliver: it never has to ask the store who may see what. A member removed from a
//! conversation is absent from the audience of everything after the removal.

use chrono::{DateTime, Utc};

use crate::conversation::{Conversation, ConversationChange};
use crate::message::{MessageView, Seq};
use crate::read_state::ReadReceipt;
use crate::{ConversationId, UserId};

#[derive(Debug, Clone)]
pub enum DomainEvent {
    /// A message was stored. Every member hears of it, the sender too, so the sender's other
    /// devices stay in step.
    MessageCreated {
        message: MessageView,
        audience: Vec<UserId>,
        at: DateTime<Utc>,
    },
    /// A member's read marker moved forward.
    MessageRead {
        receipt: ReadReceipt,
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
    /// Access was withdrawn: one token (logout), or every token of the user (password
    /// change, deactivation). Connections opened with a withdrawn token must close.
    AccessRevoked {
        user_id: UserId,
        /// The one token revoked; `None` means all of the user's tokens.
        token_id: Option<String>,
        audience: Vec<UserId>,
    },
}

impl DomainEvent {
    /// The users whose connections should receive this event.
    pub fn audience(&self) -> &[UserId] {
        match self {
            DomainEvent::MessageCreated { audience, .. }
            | DomainEvent::MessageRead { audience, .. }
            | DomainEvent::Typing { audience, .. }
            | DomainEvent::ConversationUpdated { audience, .. }
            | DomainEvent::AccessRevoked { audience, .. } => audience,
        }
    }
}
