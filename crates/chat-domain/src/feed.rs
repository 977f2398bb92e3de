//! The change feed: every change a user may see, each at its position in the one order that
//! new messages and changes share (see [`Seq`]).
//!
//! A store keeps no log: each changed row keeps the seq of its latest change, so the feed
//! after position N is "every row whose position is past N", each thing once and as it now
//! stands. Applying the feed in order therefore ends in exactly the state fresh reads show,
//! however long a client was away.

use chrono::{DateTime, Utc};

use crate::conversation::Conversation;
use crate::message::{Message, Seq};
use crate::read_state::{Delivered, ReadMarker};
use crate::{ConversationId, MessageId, UserId};

/// A hidden thread reply as its thread's summary counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HiddenReply {
    pub thread_root_id: MessageId,
    pub seq: Seq,
    pub sender_id: UserId,
    pub created_at: DateTime<Utc>,
}

/// One row of a user's feed as a store holds it now.
#[derive(Debug, Clone, PartialEq, Eq)]
#[expect(
    clippy::large_enum_variant,
    reason = "most entries of a page are messages: boxing them would add an allocation to each \
              to save space in the rarer small ones"
)]
pub enum FeedEntry {
    /// A message of a conversation the user is in: sent, or changed, after the position
    /// asked from (the feed tells which by its `seq`), as every read shows it: once deleted
    /// for everyone, a tombstone (`deletion` set, no content).
    Message(Message),
    /// A message the user deleted for themselves.
    Hidden {
        conversation_id: ConversationId,
        message_id: MessageId,
        /// For a thread reply: what its thread's summary counts of it, which a client that
        /// never saw the reply counts it by (it still counts for everyone).
        thread_reply: Option<HiddenReply>,
    },
    /// A member's read marker (the user's own or another member's) and the message at it,
    /// when there is one.
    Marker {
        marker: ReadMarker,
        message_id: Option<MessageId>,
    },
    /// Another member's delivered marker, as recorded.
    Delivered(Delivered),
    /// The user's own settings of a conversation.
    Settings {
        conversation_id: ConversationId,
        muted_until: Option<DateTime<Utc>>,
        archived: bool,
    },
    /// A conversation the user is in that was created, renamed, or whose members changed.
    Conversation(Conversation),
    /// The user was removed from (or left) a conversation.
    Departure {
        conversation_id: ConversationId,
        departed_at: DateTime<Utc>,
    },
}

/// A feed entry at its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedItem {
    pub position: Seq,
    pub entry: FeedEntry,
}
