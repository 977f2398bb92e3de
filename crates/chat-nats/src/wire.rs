//! The bytes a node puts on the bus: every [`DomainEvent`] variant mirrored as plain serde
//! types, wrapped in an [`Envelope`] that names the node it came from.
//!
//! The mirror types live here, not in chat-domain, so that the domain stays free of serde and
//! the wire format is one file to read. Decoding re-parses every validated value (message
//! content, group names) with the rules the store uses for what it reads back, so a frame from
//! a newer node with looser rules still decodes; anything that does not parse is an error,
//! never a panic. JSON keeps the bus readable with `nats sub chatd.events`.

use chat_domain::attachment::{Attachment, BlobKey, FileName, Thumbnail};
use chat_domain::conversation::{
    Conversation, ConversationChange, ConversationKind, ConversationName, Role,
};
use chat_domain::events::{DomainEvent, PinChanged, ReactionChanged};
use chat_domain::message::{
    ClientMessageId, Deletion, Emoji, HiddenMessage, Message, MessageContent, MessageView, Pin,
    Reaction, ReplyTo, Seq, ThreadSummary,
};
use chat_domain::presence::{Presence, PresenceStatus};
use chat_domain::read_state::{
    Delivered, MarkerSet, MemberSettings, ReadMarker, ReadReceipt, SettingsChanged,
};
use chat_domain::{ConversationId, MessageId, UserId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One bus message: who sent it, and what.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    /// The sending node's id, fresh each time a node starts: a node skips its own messages.
    pub node: Uuid,
    pub body: Body,
}

/// What a bus message carries.
#[allow(
    clippy::large_enum_variant,
    reason = "one envelope per bus message, made and dropped at once; never held in bulk"
)]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Body {
    /// A domain event for the receiving node's sockets and caches.
    Event(WireEvent),
    /// "Events from me may not have reached you": the sending node was off the bus, or
    /// dropped events it could not publish. Every receiver makes its sockets whole again,
    /// from `since_seq` when it is given (see [`crate::ClusterPublisher`]).
    Resync { since_seq: Option<i64> },
    /// "I am alive", once a [`crate::cluster::HEARTBEAT_EVERY`]: a node that falls silent may
    /// have died between committing messages and publishing them, so the others resync.
    Heartbeat,
}

/// Why bytes from the bus are not an envelope.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("not a bus envelope: {0}")]
    Json(#[from] serde_json::Error),
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
}

impl Envelope {
    pub fn event(node: Uuid, event: &DomainEvent) -> Self {
        Self {
            node,
            body: Body::Event(WireEvent::from(event)),
        }
    }

    pub fn heartbeat(node: Uuid) -> Self {
        Self {
            node,
            body: Body::Heartbeat,
        }
    }

    pub fn resync(node: Uuid, since_seq: Option<i64>) -> Self {
        Self {
            node,
            body: Body::Resync { since_seq },
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        // Plain structs of strings, numbers and uuids: serializing them cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        Ok(serde_json::from_slice(bytes)?)
    }
}

/// [`DomainEvent`] on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WireEvent {
    MessageCreated {
        message: WireMessageView,
        audience: Vec<Uuid>,
        at: DateTime<Utc>,
    },
    MessageUpdated {
        message: WireMessageView,
        audience: Vec<Uuid>,
        at: DateTime<Utc>,
    },
    MessageDeleted {
        message: WireMessageView,
        audience: Vec<Uuid>,
        at: DateTime<Utc>,
    },
    MessageHidden {
        hidden: WireHidden,
        audience: Vec<Uuid>,
        at: DateTime<Utc>,
    },
    MessageRead {
        receipt: WireReceipt,
        audience: Vec<Uuid>,
        at: DateTime<Utc>,
    },
    ReadMarkerSet {
        set: WireMarkerSet,
        audience: Vec<Uuid>,
        at: DateTime<Utc>,
    },
    MessageDelivered {
        conversation_id: Uuid,
        user_id: Uuid,
        last_delivered_seq: i64,
        seq: i64,
        audience: Vec<Uuid>,
        at: DateTime<Utc>,
    },
    SettingsChanged {
        conversation_id: Uuid,
        user_id: Uuid,
        muted_until: Option<DateTime<Utc>>,
        archived: bool,
        seq: i64,
        audience: Vec<Uuid>,
        at: DateTime<Utc>,
    },
    Typing {
        conversation_id: Uuid,
        user_id: Uuid,
        is_typing: bool,
        audience: Vec<Uuid>,
        at: DateTime<Utc>,
    },
    Presence {
        user_id: Uuid,
        /// `online`, `away` or `offline`.
        status: String,
        last_seen_at: Option<DateTime<Utc>>,
        audience: Vec<Uuid>,
        at: DateTime<Utc>,
    },
    ConversationUpdated {
        conversation: WireConversation,
        /// The change's position in the change feed; 0 from a node older than the feed.
        #[serde(default)]
        seq: i64,
        change: WireChange,
        actor: Uuid,
        audience: Vec<Uuid>,
        at: DateTime<Utc>,
    },
    AccessRevoked {
        user_id: Uuid,
        token_id: Option<String>,
        /// The session ended; absent from a node older than sessions.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session_id: Option<Uuid>,
        audience: Vec<Uuid>,
    },
    ReactionAdded {
        change: WireReactionChange,
        audience: Vec<Uuid>,
        at: DateTime<Utc>,
    },
    ReactionRemoved {
        change: WireReactionChange,
        audience: Vec<Uuid>,
        at: DateTime<Utc>,
    },
    MessagePinned {
        change: WirePinChange,
        audience: Vec<Uuid>,
        at: DateTime<Utc>,
    },
    MessageUnpinned {
        change: WirePinChange,
        audience: Vec<Uuid>,
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireReactionChange {
    pub seq: i64,
    pub message_id: Uuid,
    pub conversation_id: Uuid,
    pub emoji: String,
    pub user_id: Uuid,
    pub count: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WirePinChange {
    pub seq: i64,
    pub message_id: Uuid,
    pub conversation_id: Uuid,
    pub user_id: Uuid,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireReaction {
    pub emoji: String,
    pub user_ids: Vec<Uuid>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WirePin {
    pub pinned_at: DateTime<Utc>,
    pub pinned_by: Uuid,
}

/// What a reply quotes of its original, as the sending node read it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireReplyTo {
    pub id: Uuid,
    pub sender_id: Uuid,
    pub snippet: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireMessageView {
    pub id: Uuid,
    pub seq: i64,
    pub conversation_id: Uuid,
    pub sender_id: Uuid,
    /// `null` for a tombstone.
    pub content: Option<String>,
    pub client_message_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub recipient_id: Option<Uuid>,
    pub is_read: bool,
    // A node from before edits and deletes sends none of these.
    #[serde(default)]
    pub edited_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub deleted_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub deleted_by: Option<Uuid>,
    #[serde(default)]
    pub change_seq: Option<i64>,
    /// Whom the view is for; absent from nodes older than reactions: the sender, whose
    /// view every `message_created` is.
    #[serde(default)]
    pub viewer: Option<Uuid>,
    #[serde(default)]
    pub reactions: Vec<WireReaction>,
    #[serde(default)]
    pub pin: Option<WirePin>,
    /// Absent from nodes older than replies: no message of theirs is one.
    #[serde(default)]
    pub reply_to: Option<WireReplyTo>,
    /// Absent from nodes older than threads: no message of theirs is in a thread.
    #[serde(default)]
    pub thread_root_id: Option<Uuid>,
    /// Absent from nodes older than threads, and on a message without replies.
    #[serde(default)]
    pub thread: Option<WireThread>,
    /// Absent from nodes older than mentions: no message of theirs mentions anyone.
    #[serde(default)]
    pub mentions: Vec<Uuid>,
    /// Absent from nodes older than attachments, and on a message without files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<WireAttachment>,
}

/// [`Attachment`] on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireAttachment {
    pub id: Uuid,
    pub uploader_id: Uuid,
    pub name: String,
    pub size: u64,
    pub content_type: String,
    pub sha256: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub thumbnail: Option<(String, String, u64)>,
    pub created_at: DateTime<Utc>,
    pub message_id: Option<Uuid>,
    pub conversation_id: Option<Uuid>,
}

impl From<&Attachment> for WireAttachment {
    fn from(a: &Attachment) -> Self {
        Self {
            id: a.id.as_uuid(),
            uploader_id: a.uploader_id.as_uuid(),
            name: a.name.as_str().to_owned(),
            size: a.size,
            content_type: a.content_type.clone(),
            sha256: a.blob_key.to_string(),
            width: a.width,
            height: a.height,
            thumbnail: a
                .thumbnail
                .as_ref()
                .map(|t| (t.key.to_string(), t.content_type.clone(), t.size)),
            created_at: a.created_at,
            message_id: a.message_id.map(|m| m.as_uuid()),
            conversation_id: a.conversation_id.map(|c| c.as_uuid()),
        }
    }
}

impl TryFrom<WireAttachment> for Attachment {
    type Error = WireError;

    fn try_from(w: WireAttachment) -> Result<Self, WireError> {
        let key = |raw: &str| {
            BlobKey::parse(raw).ok_or_else(|| WireError::Invalid {
                field: "sha256",
                reason: format!("{raw:?} is no blob key"),
            })
        };
        Ok(Attachment {
            id: w.id.into(),
            uploader_id: w.uploader_id.into(),
            name: FileName::parse(&w.name),
            size: w.size,
            content_type: w.content_type,
            blob_key: key(&w.sha256)?,
            width: w.width,
            height: w.height,
            thumbnail: match w.thumbnail {
                Some((k, content_type, size)) => Some(Thumbnail {
                    key: key(&k)?,
                    content_type,
                    size,
                }),
                None => None,
            },
            created_at: w.created_at,
            message_id: w.message_id.map(MessageId::from),
            conversation_id: w.conversation_id.map(ConversationId::from),
        })
    }
}

/// [`ThreadSummary`] on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireThread {
    pub reply_count: u64,
    pub last_reply_at: DateTime<Utc>,
    pub last_reply_seq: i64,
    pub participant_ids: Vec<Uuid>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireHidden {
    pub user_id: Uuid,
    pub message_id: Uuid,
    pub conversation_id: Uuid,
    pub seq: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireReceipt {
    pub message_id: Uuid,
    pub conversation_id: Uuid,
    pub user_id: Uuid,
    pub last_read_seq: i64,
    pub read_at: DateTime<Utc>,
    /// The move's place in the change feed; absent from nodes older than the feed.
    #[serde(default)]
    pub seq: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireConversation {
    pub id: Uuid,
    pub kind: WireKind,
    pub name: Option<String>,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WireKind {
    Direct,
    Group,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WireRole {
    Member,
    Admin,
    Owner,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum WireChange {
    Created,
    Renamed { name: String },
    MembersAdded { user_ids: Vec<Uuid> },
    MemberRemoved { user_id: Uuid },
    RoleChanged { user_id: Uuid, role: WireRole },
}

fn uuids<T: Copy + Into<Uuid>>(ids: &[T]) -> Vec<Uuid> {
    ids.iter().map(|id| (*id).into()).collect()
}

fn users(ids: Vec<Uuid>) -> Vec<UserId> {
    ids.into_iter().map(UserId::from).collect()
}

impl From<&DomainEvent> for WireEvent {
    fn from(event: &DomainEvent) -> Self {
        match event {
            DomainEvent::MessageCreated {
                message,
                audience,
                at,
            } => WireEvent::MessageCreated {
                message: message.into(),
                audience: uuids(audience),
                at: *at,
            },
            DomainEvent::MessageUpdated {
                message,
                audience,
                at,
            } => WireEvent::MessageUpdated {
                message: message.into(),
                audience: uuids(audience),
                at: *at,
            },
            DomainEvent::MessageDeleted {
                message,
                audience,
                at,
            } => WireEvent::MessageDeleted {
                message: message.into(),
                audience: uuids(audience),
                at: *at,
            },
            DomainEvent::MessageHidden {
                hidden,
                audience,
                at,
            } => WireEvent::MessageHidden {
                hidden: WireHidden {
                    user_id: hidden.user_id.as_uuid(),
                    message_id: hidden.message_id.as_uuid(),
                    conversation_id: hidden.conversation_id.as_uuid(),
                    seq: hidden.seq.0,
                },
                audience: uuids(audience),
                at: *at,
            },
            DomainEvent::MessageRead {
                receipt,
                audience,
                at,
            } => WireEvent::MessageRead {
                receipt: receipt.into(),
                audience: uuids(audience),
                at: *at,
            },
            DomainEvent::ReadMarkerSet { set, audience, at } => WireEvent::ReadMarkerSet {
                set: set.into(),
                audience: uuids(audience),
                at: *at,
            },
            DomainEvent::MessageDelivered {
                delivered,
                audience,
                at,
            } => WireEvent::MessageDelivered {
                conversation_id: delivered.conversation_id.as_uuid(),
                user_id: delivered.user_id.as_uuid(),
                last_delivered_seq: delivered.last_delivered_seq.0,
                seq: delivered.seq.0,
                audience: uuids(audience),
                at: *at,
            },
            DomainEvent::SettingsChanged {
                change,
                audience,
                at,
            } => WireEvent::SettingsChanged {
                conversation_id: change.conversation_id.as_uuid(),
                user_id: change.user_id.as_uuid(),
                muted_until: change.settings.muted_until,
                archived: change.settings.archived,
                seq: change.seq.0,
                audience: uuids(audience),
                at: *at,
            },
            DomainEvent::Typing {
                conversation_id,
                user_id,
                is_typing,
                audience,
                at,
            } => WireEvent::Typing {
                conversation_id: conversation_id.as_uuid(),
                user_id: user_id.as_uuid(),
                is_typing: *is_typing,
                audience: uuids(audience),
                at: *at,
            },
            DomainEvent::PresenceChanged {
                presence,
                audience,
                at,
            } => WireEvent::Presence {
                user_id: presence.user_id.as_uuid(),
                status: presence.status.as_str().to_owned(),
                last_seen_at: presence.last_seen_at,
                audience: uuids(audience),
                at: *at,
            },
            DomainEvent::ConversationUpdated {
                conversation,
                seq,
                change,
                actor,
                audience,
                at,
            } => WireEvent::ConversationUpdated {
                conversation: conversation.into(),
                seq: seq.0,
                change: change.into(),
                actor: actor.as_uuid(),
                audience: uuids(audience),
                at: *at,
            },
            DomainEvent::AccessRevoked {
                user_id,
                token_id,
                session_id,
                audience,
            } => WireEvent::AccessRevoked {
                user_id: user_id.as_uuid(),
                token_id: token_id.clone(),
                session_id: session_id.map(|s| s.as_uuid()),
                audience: uuids(audience),
            },
            DomainEvent::ReactionAdded {
                change,
                audience,
                at,
            } => WireEvent::ReactionAdded {
                change: change.into(),
                audience: uuids(audience),
                at: *at,
            },
            DomainEvent::ReactionRemoved {
                change,
                audience,
                at,
            } => WireEvent::ReactionRemoved {
                change: change.into(),
                audience: uuids(audience),
                at: *at,
            },
            DomainEvent::MessagePinned {
                change,
                audience,
                at,
            } => WireEvent::MessagePinned {
                change: change.into(),
                audience: uuids(audience),
                at: *at,
            },
            DomainEvent::MessageUnpinned {
                change,
                audience,
                at,
            } => WireEvent::MessageUnpinned {
                change: change.into(),
                audience: uuids(audience),
                at: *at,
            },
        }
    }
}

impl TryFrom<WireEvent> for DomainEvent {
    type Error = WireError;

    fn try_from(event: WireEvent) -> Result<Self, WireError> {
        Ok(match event {
            WireEvent::MessageCreated {
                message,
                audience,
                at,
            } => DomainEvent::MessageCreated {
                message: message.try_into()?,
                audience: users(audience),
                at,
            },
            WireEvent::MessageUpdated {
                message,
                audience,
                at,
            } => DomainEvent::MessageUpdated {
                message: message.try_into()?,
                audience: users(audience),
                at,
            },
            WireEvent::MessageDeleted {
                message,
                audience,
                at,
            } => DomainEvent::MessageDeleted {
                message: message.try_into()?,
                audience: users(audience),
                at,
            },
            WireEvent::MessageHidden {
                hidden,
                audience,
                at,
            } => DomainEvent::MessageHidden {
                hidden: HiddenMessage {
                    user_id: hidden.user_id.into(),
                    message_id: hidden.message_id.into(),
                    conversation_id: hidden.conversation_id.into(),
                    seq: Seq(hidden.seq),
                },
                audience: users(audience),
                at,
            },
            WireEvent::MessageRead {
                receipt,
                audience,
                at,
            } => DomainEvent::MessageRead {
                receipt: receipt.into(),
                audience: users(audience),
                at,
            },
            WireEvent::ReadMarkerSet { set, audience, at } => DomainEvent::ReadMarkerSet {
                set: set.into(),
                audience: users(audience),
                at,
            },
            WireEvent::MessageDelivered {
                conversation_id,
                user_id,
                last_delivered_seq,
                seq,
                audience,
                at,
            } => DomainEvent::MessageDelivered {
                delivered: Delivered {
                    conversation_id: conversation_id.into(),
                    user_id: user_id.into(),
                    last_delivered_seq: Seq(last_delivered_seq),
                    seq: Seq(seq),
                },
                audience: users(audience),
                at,
            },
            WireEvent::SettingsChanged {
                conversation_id,
                user_id,
                muted_until,
                archived,
                seq,
                audience,
                at,
            } => DomainEvent::SettingsChanged {
                change: SettingsChanged {
                    conversation_id: conversation_id.into(),
                    user_id: user_id.into(),
                    settings: MemberSettings {
                        muted_until,
                        archived,
                    },
                    seq: Seq(seq),
                },
                audience: users(audience),
                at,
            },
            WireEvent::Typing {
                conversation_id,
                user_id,
                is_typing,
                audience,
                at,
            } => DomainEvent::Typing {
                conversation_id: conversation_id.into(),
                user_id: user_id.into(),
                is_typing,
                audience: users(audience),
                at,
            },
            WireEvent::Presence {
                user_id,
                status,
                last_seen_at,
                audience,
                at,
            } => DomainEvent::PresenceChanged {
                presence: Presence {
                    user_id: user_id.into(),
                    status: match status.as_str() {
                        "online" => PresenceStatus::Online,
                        "away" => PresenceStatus::Away,
                        "offline" => PresenceStatus::Offline,
                        other => {
                            return Err(WireError::Invalid {
                                field: "status",
                                reason: format!("{other:?} is no presence status"),
                            });
                        }
                    },
                    last_seen_at,
                },
                audience: users(audience),
                at,
            },
            WireEvent::ConversationUpdated {
                conversation,
                seq,
                change,
                actor,
                audience,
                at,
            } => DomainEvent::ConversationUpdated {
                conversation: conversation.try_into()?,
                seq: Seq(seq),
                change: change.try_into()?,
                actor: actor.into(),
                audience: users(audience),
                at,
            },
            WireEvent::AccessRevoked {
                user_id,
                token_id,
                session_id,
                audience,
            } => DomainEvent::AccessRevoked {
                user_id: user_id.into(),
                token_id,
                session_id: session_id.map(Into::into),
                audience: users(audience),
            },
            WireEvent::ReactionAdded {
                change,
                audience,
                at,
            } => DomainEvent::ReactionAdded {
                change: change.try_into()?,
                audience: users(audience),
                at,
            },
            WireEvent::ReactionRemoved {
                change,
                audience,
                at,
            } => DomainEvent::ReactionRemoved {
                change: change.try_into()?,
                audience: users(audience),
                at,
            },
            WireEvent::MessagePinned {
                change,
                audience,
                at,
            } => DomainEvent::MessagePinned {
                change: change.into(),
                audience: users(audience),
                at,
            },
            WireEvent::MessageUnpinned {
                change,
                audience,
                at,
            } => DomainEvent::MessageUnpinned {
                change: change.into(),
                audience: users(audience),
                at,
            },
        })
    }
}

impl From<&MessageView> for WireMessageView {
    fn from(view: &MessageView) -> Self {
        let m = &view.message;
        Self {
            id: m.id.as_uuid(),
            seq: m.seq.0,
            conversation_id: m.conversation_id.as_uuid(),
            sender_id: m.sender_id.as_uuid(),
            content: m.text().map(str::to_owned),
            client_message_id: m.client_message_id.as_ref().map(|c| c.as_str().to_owned()),
            created_at: m.created_at,
            updated_at: m.updated_at,
            recipient_id: view.recipient_id.map(|u| u.as_uuid()),
            is_read: view.is_read,
            edited_at: m.edited_at,
            deleted_at: m.deletion.map(|d| d.at),
            deleted_by: m.deletion.map(|d| d.by.as_uuid()),
            change_seq: m.change_seq.map(|s| s.0),
            viewer: Some(view.viewer.as_uuid()),
            reactions: m
                .reactions
                .iter()
                .map(|r| WireReaction {
                    emoji: r.emoji.as_str().to_owned(),
                    user_ids: uuids(&r.user_ids),
                })
                .collect(),
            pin: m.pin.as_ref().map(|p| WirePin {
                pinned_at: p.pinned_at,
                pinned_by: p.pinned_by.as_uuid(),
            }),
            reply_to: m.reply_to.as_ref().map(|r| WireReplyTo {
                id: r.id.as_uuid(),
                sender_id: r.sender_id.as_uuid(),
                snippet: r.snippet.clone(),
            }),
            thread_root_id: m.thread_root_id.map(|r| r.as_uuid()),
            thread: m.thread.as_ref().map(|t| WireThread {
                reply_count: t.reply_count,
                last_reply_at: t.last_reply_at,
                last_reply_seq: t.last_reply_seq.0,
                participant_ids: uuids(&t.participant_ids),
            }),
            mentions: uuids(&m.mentions),
            attachments: m.attachments.iter().map(WireAttachment::from).collect(),
        }
    }
}

fn emoji(raw: &str) -> Result<Emoji, WireError> {
    Emoji::parse_stored(raw).map_err(invalid("emoji"))
}

impl From<&ReactionChanged> for WireReactionChange {
    fn from(c: &ReactionChanged) -> Self {
        Self {
            seq: c.seq.0,
            message_id: c.message_id.as_uuid(),
            conversation_id: c.conversation_id.as_uuid(),
            emoji: c.emoji.as_str().to_owned(),
            user_id: c.user_id.as_uuid(),
            count: c.count,
        }
    }
}

impl TryFrom<WireReactionChange> for ReactionChanged {
    type Error = WireError;

    fn try_from(w: WireReactionChange) -> Result<Self, WireError> {
        Ok(ReactionChanged {
            seq: Seq(w.seq),
            message_id: w.message_id.into(),
            conversation_id: w.conversation_id.into(),
            emoji: emoji(&w.emoji)?,
            user_id: w.user_id.into(),
            count: w.count,
        })
    }
}

impl From<&PinChanged> for WirePinChange {
    fn from(c: &PinChanged) -> Self {
        Self {
            seq: c.seq.0,
            message_id: c.message_id.as_uuid(),
            conversation_id: c.conversation_id.as_uuid(),
            user_id: c.user_id.as_uuid(),
        }
    }
}

impl From<WirePinChange> for PinChanged {
    fn from(w: WirePinChange) -> Self {
        PinChanged {
            seq: Seq(w.seq),
            message_id: w.message_id.into(),
            conversation_id: w.conversation_id.into(),
            user_id: w.user_id.into(),
        }
    }
}

fn invalid(field: &'static str) -> impl FnOnce(chat_domain::validation::FieldError) -> WireError {
    move |e| WireError::Invalid {
        field,
        reason: e.message,
    }
}

impl TryFrom<WireMessageView> for MessageView {
    type Error = WireError;

    fn try_from(w: WireMessageView) -> Result<Self, WireError> {
        // A tombstone has no content; any other message must have valid content.
        let (content, deletion) = match (w.deleted_at, w.deleted_by) {
            (Some(at), Some(by)) => (
                None,
                Some(Deletion {
                    at,
                    by: UserId::from(by),
                }),
            ),
            _ => (
                Some(
                    MessageContent::parse_stored(w.content.as_deref().unwrap_or_default())
                        .map_err(invalid("content"))?,
                ),
                None,
            ),
        };
        Ok(MessageView {
            message: Message {
                id: MessageId::from(w.id),
                seq: Seq(w.seq),
                conversation_id: ConversationId::from(w.conversation_id),
                sender_id: UserId::from(w.sender_id),
                content,
                client_message_id: w
                    .client_message_id
                    .as_deref()
                    .map(ClientMessageId::parse)
                    .transpose()
                    .map_err(invalid("client_message_id"))?,
                created_at: w.created_at,
                updated_at: w.updated_at,
                edited_at: w.edited_at,
                deletion,
                change_seq: w.change_seq.map(Seq),
                reactions: w
                    .reactions
                    .into_iter()
                    .map(|r| {
                        Ok(Reaction {
                            emoji: emoji(&r.emoji)?,
                            user_ids: users(r.user_ids),
                        })
                    })
                    .collect::<Result<_, WireError>>()?,
                pin: w.pin.map(|p| Pin {
                    pinned_at: p.pinned_at,
                    pinned_by: p.pinned_by.into(),
                }),
                reply_to: w.reply_to.map(|r| {
                    Box::new(ReplyTo {
                        id: MessageId::from(r.id),
                        sender_id: UserId::from(r.sender_id),
                        snippet: r.snippet,
                    })
                }),
                thread_root_id: w.thread_root_id.map(MessageId::from),
                thread: w.thread.map(|t| {
                    Box::new(ThreadSummary {
                        reply_count: t.reply_count,
                        last_reply_at: t.last_reply_at,
                        last_reply_seq: Seq(t.last_reply_seq),
                        participant_ids: users(t.participant_ids),
                    })
                }),
                mentions: users(w.mentions),
                attachments: w
                    .attachments
                    .into_iter()
                    .map(Attachment::try_from)
                    .collect::<Result<_, WireError>>()?,
            },
            recipient_id: w.recipient_id.map(UserId::from),
            is_read: w.is_read,
            viewer: UserId::from(w.viewer.unwrap_or(w.sender_id)),
        })
    }
}

/// [`MarkerSet`] on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireMarkerSet {
    pub conversation_id: Uuid,
    pub user_id: Uuid,
    pub last_read_seq: i64,
    pub read_at: DateTime<Utc>,
    pub seq: Option<i64>,
    pub message_id: Option<Uuid>,
    pub previous: i64,
    pub unread_count: u64,
    /// Absent from nodes older than mentions.
    #[serde(default)]
    pub unread_mentions: u64,
}

impl From<&MarkerSet> for WireMarkerSet {
    fn from(set: &MarkerSet) -> Self {
        Self {
            conversation_id: set.marker.conversation_id.as_uuid(),
            user_id: set.marker.user_id.as_uuid(),
            last_read_seq: set.marker.last_read_seq.0,
            read_at: set.marker.read_at,
            seq: set.marker.seq.map(|seq| seq.0),
            message_id: set.message_id.map(|id| id.as_uuid()),
            previous: set.previous.0,
            unread_count: set.unread_count,
            unread_mentions: set.unread_mentions,
        }
    }
}

impl From<WireMarkerSet> for MarkerSet {
    fn from(w: WireMarkerSet) -> Self {
        MarkerSet {
            marker: ReadMarker {
                conversation_id: w.conversation_id.into(),
                user_id: w.user_id.into(),
                last_read_seq: Seq(w.last_read_seq),
                read_at: w.read_at,
                seq: w.seq.map(Seq),
            },
            message_id: w.message_id.map(MessageId::from),
            previous: Seq(w.previous),
            unread_count: w.unread_count,
            unread_mentions: w.unread_mentions,
        }
    }
}

impl From<&ReadReceipt> for WireReceipt {
    fn from(r: &ReadReceipt) -> Self {
        Self {
            message_id: r.message_id.as_uuid(),
            conversation_id: r.marker.conversation_id.as_uuid(),
            user_id: r.marker.user_id.as_uuid(),
            last_read_seq: r.marker.last_read_seq.0,
            read_at: r.marker.read_at,
            seq: r.marker.seq.map(|seq| seq.0),
        }
    }
}

impl From<WireReceipt> for ReadReceipt {
    fn from(w: WireReceipt) -> Self {
        ReadReceipt {
            message_id: w.message_id.into(),
            marker: ReadMarker {
                conversation_id: w.conversation_id.into(),
                user_id: w.user_id.into(),
                last_read_seq: Seq(w.last_read_seq),
                read_at: w.read_at,
                seq: w.seq.map(Seq),
            },
        }
    }
}

impl From<&Conversation> for WireConversation {
    fn from(c: &Conversation) -> Self {
        Self {
            id: c.id.as_uuid(),
            kind: match c.kind {
                ConversationKind::Direct => WireKind::Direct,
                ConversationKind::Group => WireKind::Group,
            },
            name: c.name.as_ref().map(|n| n.as_str().to_owned()),
            created_by: c.created_by.as_uuid(),
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

fn name(raw: &str) -> Result<ConversationName, WireError> {
    ConversationName::parse_stored(raw).map_err(invalid("name"))
}

impl TryFrom<WireConversation> for Conversation {
    type Error = WireError;

    fn try_from(w: WireConversation) -> Result<Self, WireError> {
        Ok(Conversation {
            id: w.id.into(),
            kind: match w.kind {
                WireKind::Direct => ConversationKind::Direct,
                WireKind::Group => ConversationKind::Group,
            },
            name: w.name.as_deref().map(name).transpose()?,
            created_by: w.created_by.into(),
            created_at: w.created_at,
            updated_at: w.updated_at,
        })
    }
}

impl From<Role> for WireRole {
    fn from(role: Role) -> Self {
        match role {
            Role::Member => WireRole::Member,
            Role::Admin => WireRole::Admin,
            Role::Owner => WireRole::Owner,
        }
    }
}

impl From<WireRole> for Role {
    fn from(role: WireRole) -> Self {
        match role {
            WireRole::Member => Role::Member,
            WireRole::Admin => Role::Admin,
            WireRole::Owner => Role::Owner,
        }
    }
}

impl From<&ConversationChange> for WireChange {
    fn from(change: &ConversationChange) -> Self {
        match change {
            ConversationChange::Created => WireChange::Created,
            ConversationChange::Renamed { name } => WireChange::Renamed {
                name: name.as_str().to_owned(),
            },
            ConversationChange::MembersAdded { user_ids } => WireChange::MembersAdded {
                user_ids: uuids(user_ids),
            },
            ConversationChange::MemberRemoved { user_id } => WireChange::MemberRemoved {
                user_id: user_id.as_uuid(),
            },
            ConversationChange::RoleChanged { user_id, role } => WireChange::RoleChanged {
                user_id: user_id.as_uuid(),
                role: (*role).into(),
            },
        }
    }
}

impl TryFrom<WireChange> for ConversationChange {
    type Error = WireError;

    fn try_from(w: WireChange) -> Result<Self, WireError> {
        Ok(match w {
            WireChange::Created => ConversationChange::Created,
            WireChange::Renamed { name: raw } => ConversationChange::Renamed { name: name(&raw)? },
            WireChange::MembersAdded { user_ids } => ConversationChange::MembersAdded {
                user_ids: users(user_ids),
            },
            WireChange::MemberRemoved { user_id } => ConversationChange::MemberRemoved {
                user_id: user_id.into(),
            },
            WireChange::RoleChanged { user_id, role } => ConversationChange::RoleChanged {
                user_id: user_id.into(),
                role: role.into(),
            },
        })
    }
}

/// One event of every kind (and of every conversation change), for the codec's tests and the
/// bus's: a new variant added to [`DomainEvent`] fails to compile in [`WireEvent::from`] until
/// it is mirrored, and belongs here too.
#[doc(hidden)]
pub fn sample_events() -> Vec<DomainEvent> {
    let now = Utc::now();
    let (alice, bob) = (UserId::new(), UserId::new());
    let conversation_id = ConversationId::new();
    let group = Conversation {
        id: conversation_id,
        kind: ConversationKind::Group,
        name: ConversationName::parse("team").ok(),
        created_by: alice,
        created_at: now,
        updated_at: now,
    };
    let direct = Conversation {
        id: ConversationId::new(),
        kind: ConversationKind::Direct,
        name: None,
        ..group.clone()
    };
    let updated = |conversation: &Conversation, change| DomainEvent::ConversationUpdated {
        conversation: conversation.clone(),
        seq: Seq(77),
        change,
        actor: alice,
        audience: vec![alice, bob],
        at: now,
    };
    let mut events = vec![
        DomainEvent::MessageCreated {
            message: MessageView {
                message: Message {
                    id: MessageId::new(),
                    seq: Seq(42),
                    conversation_id,
                    sender_id: alice,
                    content: Some(MessageContent::parse("hello\nthere").expect("valid content")),
                    client_message_id: ClientMessageId::parse("c-1").ok(),
                    created_at: now,
                    updated_at: now,
                    edited_at: None,
                    deletion: None,
                    change_seq: None,
                    reactions: vec![Reaction {
                        emoji: Emoji::parse("👍").expect("an emoji"),
                        user_ids: vec![bob, alice],
                    }],
                    pin: Some(Pin {
                        pinned_at: now,
                        pinned_by: bob,
                    }),
                    reply_to: Some(Box::new(ReplyTo {
                        id: MessageId::new(),
                        sender_id: bob,
                        snippet: Some("what's the plan?".into()),
                    })),
                    thread_root_id: Some(MessageId::new()),
                    thread: None,
                    mentions: vec![bob],
                    attachments: vec![Attachment {
                        id: chat_domain::AttachmentId::new(),
                        uploader_id: alice,
                        name: FileName::parse("plan.png"),
                        size: 48_213,
                        content_type: "image/png".into(),
                        blob_key: BlobKey::from_digest(&[7; 32]),
                        width: Some(800),
                        height: Some(600),
                        thumbnail: Some(Thumbnail {
                            key: BlobKey::from_digest(&[8; 32]),
                            content_type: "image/jpeg".into(),
                            size: 9_000,
                        }),
                        created_at: now,
                        message_id: None,
                        conversation_id: Some(conversation_id),
                    }],
                },
                recipient_id: Some(bob),
                is_read: true,
                viewer: alice,
            },
            audience: vec![alice, bob],
            at: now,
        },
        DomainEvent::MessageUpdated {
            message: MessageView {
                message: Message {
                    id: MessageId::new(),
                    seq: Seq(40),
                    conversation_id,
                    sender_id: alice,
                    content: Some(MessageContent::parse("edited").expect("valid content")),
                    client_message_id: None,
                    created_at: now,
                    updated_at: now,
                    edited_at: Some(now),
                    deletion: None,
                    change_seq: Some(Seq(43)),
                    reactions: vec![Reaction {
                        emoji: Emoji::parse("🎉").expect("an emoji"),
                        user_ids: vec![bob],
                    }],
                    pin: None,
                    reply_to: Some(Box::new(ReplyTo {
                        id: MessageId::new(),
                        sender_id: bob,
                        snippet: None,
                    })),
                    thread_root_id: None,
                    thread: Some(Box::new(ThreadSummary {
                        reply_count: 3,
                        last_reply_at: now,
                        last_reply_seq: Seq(45),
                        participant_ids: vec![alice, bob],
                    })),
                    mentions: {
                        let mut both = vec![alice, bob];
                        both.sort();
                        both
                    },
                    attachments: Vec::new(),
                },
                recipient_id: None,
                is_read: false,
                viewer: alice,
            },
            audience: vec![alice, bob],
            at: now,
        },
        DomainEvent::MessageDeleted {
            message: MessageView {
                message: Message {
                    id: MessageId::new(),
                    seq: Seq(41),
                    conversation_id,
                    sender_id: bob,
                    content: None,
                    client_message_id: ClientMessageId::parse("c-2").ok(),
                    created_at: now,
                    updated_at: now,
                    edited_at: Some(now),
                    deletion: Some(Deletion { at: now, by: alice }),
                    change_seq: Some(Seq(44)),
                    reactions: Vec::new(),
                    pin: None,
                    reply_to: None,
                    thread_root_id: None,
                    thread: None,
                    mentions: Vec::new(),
                    attachments: Vec::new(),
                },
                recipient_id: None,
                is_read: true,
                viewer: bob,
            },
            audience: vec![alice, bob],
            at: now,
        },
        DomainEvent::MessageHidden {
            hidden: HiddenMessage {
                user_id: bob,
                message_id: MessageId::new(),
                conversation_id,
                seq: Seq(45),
            },
            audience: vec![bob],
            at: now,
        },
        DomainEvent::MessageRead {
            receipt: ReadReceipt {
                message_id: MessageId::new(),
                marker: ReadMarker {
                    conversation_id,
                    user_id: bob,
                    last_read_seq: Seq(42),
                    read_at: now,
                    seq: Some(Seq(43)),
                },
            },
            audience: vec![alice, bob],
            at: now,
        },
        DomainEvent::MessageDelivered {
            delivered: Delivered {
                conversation_id,
                user_id: bob,
                last_delivered_seq: Seq(44),
                seq: Seq(46),
            },
            audience: vec![alice, bob],
            at: now,
        },
        DomainEvent::ReadMarkerSet {
            set: MarkerSet {
                marker: ReadMarker {
                    conversation_id,
                    user_id: bob,
                    last_read_seq: Seq(40),
                    read_at: now,
                    seq: Some(Seq(44)),
                },
                message_id: Some(MessageId::new()),
                previous: Seq(42),
                unread_count: 2,
                unread_mentions: 1,
            },
            audience: vec![bob],
            at: now,
        },
        DomainEvent::ReadMarkerSet {
            set: MarkerSet {
                marker: ReadMarker {
                    conversation_id,
                    user_id: bob,
                    last_read_seq: Seq::ZERO,
                    read_at: now,
                    seq: Some(Seq(45)),
                },
                message_id: None,
                previous: Seq(40),
                unread_count: 3,
                unread_mentions: 0,
            },
            audience: vec![bob],
            at: now,
        },
        DomainEvent::SettingsChanged {
            change: SettingsChanged {
                conversation_id,
                user_id: bob,
                settings: MemberSettings {
                    muted_until: Some(now),
                    archived: true,
                },
                seq: Seq(46),
            },
            audience: vec![bob],
            at: now,
        },
        DomainEvent::SettingsChanged {
            change: SettingsChanged {
                conversation_id,
                user_id: bob,
                settings: MemberSettings::default(),
                seq: Seq(47),
            },
            audience: vec![bob],
            at: now,
        },
        DomainEvent::Typing {
            conversation_id,
            user_id: bob,
            is_typing: false,
            audience: vec![alice],
            at: now,
        },
        DomainEvent::AccessRevoked {
            user_id: alice,
            token_id: Some("jti-1".into()),
            session_id: None,
            audience: vec![alice],
        },
        DomainEvent::PresenceChanged {
            presence: Presence {
                user_id: alice,
                status: PresenceStatus::Offline,
                last_seen_at: Some(now),
            },
            audience: vec![bob],
            at: now,
        },
        DomainEvent::PresenceChanged {
            presence: Presence {
                user_id: bob,
                status: PresenceStatus::Away,
                last_seen_at: None,
            },
            audience: vec![alice],
            at: now,
        },
        DomainEvent::AccessRevoked {
            user_id: bob,
            token_id: None,
            session_id: None,
            audience: vec![bob],
        },
        DomainEvent::AccessRevoked {
            user_id: alice,
            token_id: None,
            session_id: Some(chat_domain::SessionId::new()),
            audience: vec![alice],
        },
        updated(&direct, ConversationChange::Created),
    ];
    let reaction = ReactionChanged {
        seq: Seq(43),
        message_id: MessageId::new(),
        conversation_id,
        emoji: Emoji::parse("👨‍👩‍👧").expect("an emoji"),
        user_id: bob,
        count: 2,
    };
    let pin = PinChanged {
        seq: Seq(44),
        message_id: MessageId::new(),
        conversation_id,
        user_id: alice,
    };
    events.extend([
        DomainEvent::ReactionAdded {
            change: reaction.clone(),
            audience: vec![alice, bob],
            at: now,
        },
        DomainEvent::ReactionRemoved {
            change: ReactionChanged {
                count: 0,
                ..reaction
            },
            audience: vec![alice, bob],
            at: now,
        },
        DomainEvent::MessagePinned {
            change: pin.clone(),
            audience: vec![alice, bob],
            at: now,
        },
        DomainEvent::MessageUnpinned {
            change: pin,
            audience: vec![alice, bob],
            at: now,
        },
    ]);
    for change in [
        ConversationChange::Created,
        ConversationChange::Renamed {
            name: ConversationName::parse("renamed").expect("valid name"),
        },
        ConversationChange::MembersAdded {
            user_ids: vec![bob, UserId::new()],
        },
        ConversationChange::MemberRemoved { user_id: bob },
        ConversationChange::RoleChanged {
            user_id: bob,
            role: Role::Admin,
        },
    ] {
        events.push(updated(&group, change));
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(event: &DomainEvent) -> DomainEvent {
        let bytes = Envelope::event(Uuid::nil(), event).encode();
        let envelope = Envelope::decode(&bytes).expect("decodes");
        assert_eq!(envelope.node, Uuid::nil());
        let Body::Event(wire) = envelope.body else {
            panic!("not an event envelope")
        };
        DomainEvent::try_from(wire).expect("a valid event")
    }

    #[test]
    fn every_event_variant_comes_back_exactly_as_it_went() {
        let events = sample_events();
        let mut kinds = std::collections::HashSet::new();
        for event in &events {
            kinds.insert(std::mem::discriminant(event));
            // DomainEvent has no PartialEq (the domain does not compare events); every field
            // is in its Debug output, so equal Debug output is equal events.
            assert_eq!(format!("{:?}", round_trip(event)), format!("{event:?}"));
        }
        assert_eq!(kinds.len(), 16, "every DomainEvent variant is sampled");
    }

    #[test]
    fn a_read_receipt_from_a_node_older_than_the_change_feed_decodes_without_a_seq() {
        let old = format!(
            r#"{{"node":"{node}","body":{{"event":{{"type":"message_read","receipt":{{
                "message_id":"{id}","conversation_id":"{id}","user_id":"{id}",
                "last_read_seq":3,"read_at":"2026-12-06T10:00:00Z"}},
                "audience":[],"at":"2026-12-06T10:00:00Z"}}}}}}"#,
            node = Uuid::nil(),
            id = Uuid::new_v4(),
        );
        let Body::Event(wire) = Envelope::decode(old.as_bytes()).expect("decodes").body else {
            panic!("not an event envelope")
        };
        let Ok(DomainEvent::MessageRead { receipt, .. }) = DomainEvent::try_from(wire) else {
            panic!("not a read receipt")
        };
        assert_eq!(receipt.marker.seq, None);
        assert_eq!(receipt.marker.last_read_seq, Seq(3));
    }

    #[test]
    fn a_revocation_from_a_node_older_than_sessions_names_no_session() {
        let user = Uuid::new_v4();
        let old = format!(
            r#"{{"node":"{node}","body":{{"event":{{"type":"access_revoked",
                "user_id":"{user}","token_id":"jti-1","audience":["{user}"]}}}}}}"#,
            node = Uuid::nil(),
        );
        let Body::Event(wire) = Envelope::decode(old.as_bytes()).expect("decodes").body else {
            panic!("not an event envelope")
        };
        let Ok(DomainEvent::AccessRevoked {
            token_id,
            session_id,
            ..
        }) = DomainEvent::try_from(wire)
        else {
            panic!("not a revocation")
        };
        assert_eq!(token_id.as_deref(), Some("jti-1"));
        assert_eq!(session_id, None);
    }

    #[test]
    fn a_message_from_a_node_before_edits_and_deletes_still_decodes() {
        let id = Uuid::new_v4();
        let old = format!(
            r#"{{"id":"{id}","seq":7,"conversation_id":"{id}","sender_id":"{id}","content":"hi",
               "client_message_id":null,"created_at":"2026-12-06T16:00:00Z",
               "updated_at":"2026-12-06T16:00:00Z","recipient_id":null,"is_read":false}}"#
        );
        let wire: WireMessageView = serde_json::from_str(&old).unwrap();
        let view = MessageView::try_from(wire).unwrap();
        assert_eq!(view.message.text(), Some("hi"));
        assert_eq!(
            (
                view.message.edited_at,
                view.message.deletion,
                view.message.change_seq
            ),
            (None, None, None)
        );
    }

    #[test]
    fn a_message_view_from_a_node_older_than_reactions_is_the_senders_without_any() {
        let Some(DomainEvent::MessageCreated { message, .. }) = sample_events().into_iter().next()
        else {
            panic!("the first sample is a message")
        };
        let mut old = serde_json::to_value(WireMessageView::from(&message)).unwrap();
        for field in ["viewer", "reactions", "pin"] {
            old.as_object_mut().unwrap().remove(field);
        }
        let wire: WireMessageView = serde_json::from_value(old).unwrap();
        let view = MessageView::try_from(wire).unwrap();
        assert_eq!(view.viewer, message.message.sender_id);
        assert!(view.message.reactions.is_empty() && view.message.pin.is_none());
    }

    #[test]
    fn a_message_from_a_node_older_than_replies_replies_to_nothing() {
        let Some(DomainEvent::MessageCreated { message, .. }) = sample_events().into_iter().next()
        else {
            panic!("the first sample is a message")
        };
        assert!(message.message.reply_to.is_some(), "the sample is a reply");
        let mut old = serde_json::to_value(WireMessageView::from(&message)).unwrap();
        old.as_object_mut().unwrap().remove("reply_to");
        let wire: WireMessageView = serde_json::from_value(old).unwrap();
        assert_eq!(MessageView::try_from(wire).unwrap().message.reply_to, None);
    }

    #[test]
    fn a_message_from_a_node_older_than_threads_is_in_no_thread_and_has_none() {
        for event in sample_events().into_iter().take(2) {
            let (DomainEvent::MessageCreated { message, .. }
            | DomainEvent::MessageUpdated { message, .. }) = event
            else {
                panic!("the first samples are messages")
            };
            let mut old = serde_json::to_value(WireMessageView::from(&message)).unwrap();
            old.as_object_mut().unwrap().remove("thread_root_id");
            old.as_object_mut().unwrap().remove("thread");
            let wire: WireMessageView = serde_json::from_value(old).unwrap();
            let view = MessageView::try_from(wire).unwrap();
            assert_eq!(
                (view.message.thread_root_id, view.message.thread),
                (None, None)
            );
        }
    }

    #[test]
    fn a_message_from_a_node_older_than_mentions_mentions_nobody() {
        let Some(DomainEvent::MessageCreated { message, .. }) = sample_events().into_iter().next()
        else {
            panic!("the first sample is a message")
        };
        assert!(!message.message.mentions.is_empty(), "the sample mentions");
        let mut old = serde_json::to_value(WireMessageView::from(&message)).unwrap();
        assert_eq!(
            old["mentions"],
            serde_json::json!([message.message.mentions[0].as_uuid()])
        );
        old.as_object_mut().unwrap().remove("mentions");
        let wire: WireMessageView = serde_json::from_value(old).unwrap();
        assert!(
            MessageView::try_from(wire)
                .unwrap()
                .message
                .mentions
                .is_empty()
        );
    }

    #[test]
    fn a_reaction_that_is_no_emoji_is_refused() {
        let mut wire = WireReactionChange::from(&ReactionChanged {
            seq: Seq(1),
            message_id: MessageId::new(),
            conversation_id: ConversationId::new(),
            emoji: Emoji::parse("👍").unwrap(),
            user_id: UserId::new(),
            count: 1,
        });
        wire.emoji = String::new();
        assert!(ReactionChanged::try_from(wire).is_err());
    }

    #[test]
    fn a_resync_envelope_names_its_node() {
        let node = Uuid::new_v4();
        let envelope = Envelope::decode(&Envelope::resync(node, Some(7)).encode()).unwrap();
        assert_eq!(envelope.node, node);
        assert!(matches!(envelope.body, Body::Resync { since_seq: Some(7) }));
    }

    #[test]
    fn bytes_that_are_not_an_envelope_are_an_error() {
        assert!(Envelope::decode(b"not json").is_err());
        assert!(Envelope::decode(br#"{"node":"x","body":"resync"}"#).is_err());
    }

    #[test]
    fn an_event_that_breaks_the_domain_rules_is_refused() {
        let Some(DomainEvent::MessageCreated { message, .. }) = sample_events().into_iter().next()
        else {
            panic!("the first sample is a message")
        };
        let mut wire = WireMessageView::from(&message);
        wire.content = Some("   ".into());
        assert!(MessageView::try_from(wire.clone()).is_err());
        // Only a tombstone may come without content.
        wire.content = None;
        assert!(MessageView::try_from(wire).is_err());
        let mut conversation = WireConversation::from(&Conversation {
            id: ConversationId::new(),
            kind: ConversationKind::Group,
            name: ConversationName::parse("ok").ok(),
            created_by: UserId::new(),
            created_at: Utc::now(),
            updated_at: Utc::now(),
        });
        conversation.name = Some(String::new());
        assert!(Conversation::try_from(conversation).is_err());
    }
}
