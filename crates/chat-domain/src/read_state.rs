//! Read markers: how far each member has read each conversation.

use chrono::{DateTime, Utc};

use crate::message::Seq;
use crate::{ConversationId, MessageId, UserId};

/// A member's read position. Marking a message read marks it and every earlier message of
/// the conversation read, and the marker never moves back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadMarker {
    pub conversation_id: ConversationId,
    pub user_id: UserId,
    pub last_read_seq: Seq,
    pub read_at: DateTime<Utc>,
}

/// The answer to "mark this message read": the marker as it now stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadReceipt {
    pub message_id: MessageId,
    pub marker: ReadMarker,
}

/// Messages from others after the caller's marker, per conversation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UnreadCounts {
    pub total: u64,
    pub conversations: Vec<(ConversationId, u64)>,
}
