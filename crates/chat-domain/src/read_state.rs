//! Read markers (how far each member has read each conversation) and the settings each
//! member keeps for themselves: mute and archive.

use chrono::{DateTime, Utc};

use crate::message::Seq;
use crate::{ConversationId, MessageId, UserId};

/// A member's read position. Marking a message read marks it and every earlier message of
/// the conversation read and never moves the marker back; only setting the marker
/// explicitly ("mark unread") does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadMarker {
    pub conversation_id: ConversationId,
    pub user_id: UserId,
    pub last_read_seq: Seq,
    pub read_at: DateTime<Utc>,
    /// The position in the change feed of the marker's latest move by marking read or by
    /// setting it; `None` while it only ever moved by the member sending (sending is reading,
    /// and the message itself is that change).
    pub seq: Option<Seq>,
}

/// The outcome of setting a marker explicitly: the marker as it now stands (its `seq` is
/// always set), the message it stands on, where it stood before, and the member's unread
/// count and unread mentions in the conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkerSet {
    pub marker: ReadMarker,
    /// The conversation's message at `marker.last_read_seq`; `None` at zero (nothing read).
    pub message_id: Option<MessageId>,
    pub previous: Seq,
    pub unread_count: u64,
    /// The unread messages that mention the member, as
    /// [`crate::ports::ReadReceiptStore::unread_mentions`] counts them.
    pub unread_mentions: u64,
}

impl MarkerSet {
    /// Whether the marker moved forward: only then do the other members hear of it.
    pub fn moved_forward(&self) -> bool {
        self.marker.last_read_seq > self.previous
    }
}

/// What a member set for themselves in one conversation, as it now stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberSettings {
    /// Notifications stay off until then; `None`: not muted. A time in the past reads as
    /// not muted (the stores keep what was set; [`MemberSettings::is_muted`] decides).
    pub muted_until: Option<DateTime<Utc>>,
    /// Archived and still out of the inbox: a member's archive lasts until a message newer
    /// than the archiving arrives, unless the conversation is muted then.
    pub archived: bool,
}

impl MemberSettings {
    pub fn is_muted(&self, now: DateTime<Utc>) -> bool {
        self.muted_until.is_some_and(|until| until > now)
    }

    /// Whether an archive taken at `archived_seq` still holds in a conversation whose newest
    /// message is `last_seq`: the rule every store applies when it reads `archived`.
    pub fn still_archived(
        archived_seq: Option<Seq>,
        last_seq: Seq,
        muted_until: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> bool {
        match archived_seq {
            None => false,
            Some(at) => last_seq <= at || muted_until.is_some_and(|until| until > now),
        }
    }
}

/// A change to a member's settings; a field left `None` stays as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SettingsUpdate {
    /// `Some(None)` unmutes; `Some(Some(t))` mutes until `t`.
    pub muted_until: Option<Option<DateTime<Utc>>>,
    /// `Some(true)` archives as of now, even when already archived (so a conversation a new
    /// message brought back goes away again); `Some(false)` unarchives.
    pub archived: Option<bool>,
}

/// How far a member's devices have received a conversation: every message with
/// `seq <= last_delivered_seq` reached one of the member's sockets or was fetched by them.
/// Reading is receiving, so a member's messages count as delivered up to the higher of this
/// and their read marker ([`delivered_up_to`]); the stores record a delivery only when it
/// goes past both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub conversation_id: ConversationId,
    pub user_id: UserId,
    pub last_delivered_seq: Seq,
    /// The position in the change feed of the marker's latest move (its `delivered_seq`).
    pub seq: Seq,
}

/// Messages up to `seq` reached one of `user_id`'s devices in `conversation_id`: what the
/// gateway and the message reads report, many at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Delivery {
    pub conversation_id: ConversationId,
    pub user_id: UserId,
    pub seq: Seq,
}

impl Delivery {
    /// The highest delivery per member and conversation, in the order each first appears:
    /// what a store records for a batch.
    pub fn highest_per_member(deliveries: &[Delivery]) -> Vec<Delivery> {
        let mut highest: Vec<Delivery> = Vec::with_capacity(deliveries.len());
        let mut index = std::collections::HashMap::with_capacity(deliveries.len());
        for d in deliveries {
            match index.entry((d.conversation_id, d.user_id)) {
                std::collections::hash_map::Entry::Occupied(at) => {
                    let h: &mut Delivery = &mut highest[*at.get()];
                    h.seq = h.seq.max(d.seq);
                }
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(highest.len());
                    highest.push(*d);
                }
            }
        }
        highest
    }
}

/// How far a member's messages count as delivered, as every read shows it: the recorded
/// delivery or the read marker, whichever is further (reading is receiving, and sending is
/// reading, so the sender's own message counts as delivered to them).
pub fn delivered_up_to(last_delivered_seq: Seq, last_read_seq: Seq) -> Seq {
    last_delivered_seq.max(last_read_seq)
}

/// A member's settings right after a change, and the change's position in the feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsChanged {
    pub conversation_id: ConversationId,
    pub user_id: UserId,
    pub settings: MemberSettings,
    pub seq: Seq,
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
    /// The badge: the sum over the conversations that are not muted.
    pub total: u64,
    pub conversations: Vec<(ConversationId, u64)>,
    /// Which of `conversations` are muted, and so left out of `total`.
    pub muted: Vec<ConversationId>,
    /// The unread messages that mention the caller, summed over every conversation, muted
    /// ones included.
    pub total_mentions: u64,
    /// Of `conversations`, those with unread mentions of the caller, and how many.
    pub mentions: Vec<(ConversationId, u64)>,
}
