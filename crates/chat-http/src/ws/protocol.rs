//! The WebSocket frames: what clients send, what the server sends, and how domain events
//! become server frames.

use bytestring::ByteString;
use chat_domain::conversation::ConversationChange;
use chat_domain::events::{DomainEvent, PinChanged, ReactionChanged};
use chat_domain::feed::HiddenReply;
use chat_domain::message::{HiddenMessage, MessageView};
use chat_domain::read_state::{Delivered, ReadReceipt};
use chat_domain::service::FeedEvent;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::dto::conversations::ConversationResponse;
use crate::dto::messages::MessageResponse;
use crate::error::FieldErrorBody;

/// A frame from an authenticated client.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// Send a message to a conversation, or to the direct conversation with `recipient_id`.
    Message {
        conversation_id: Option<Uuid>,
        recipient_id: Option<Uuid>,
        content: String,
        client_message_id: Option<String>,
        /// The message this one replies to: one of the same conversation, not deleted.
        reply_to_id: Option<Uuid>,
        /// The thread this message goes into: a message of the same conversation, not
        /// deleted, no thread reply itself.
        thread_root_id: Option<Uuid>,
        /// The sender's own uploads to attach, not attached yet, at most 10.
        attachment_ids: Option<Vec<Uuid>>,
    },
    MarkRead {
        message_id: Uuid,
    },
    /// Set your read marker in a conversation, back ("mark unread") or forward.
    SetReadMarker {
        conversation_id: Uuid,
        last_read_seq: i64,
    },
    /// Edit a message the client's user sent.
    EditMessage {
        message_id: Uuid,
        content: String,
    },
    /// Delete a message for everyone (`scope` absent or `"everyone"`) or for the client's
    /// user only (`"me"`).
    DeleteMessage {
        message_id: Uuid,
        scope: Option<String>,
    },
    Typing {
        conversation_id: Uuid,
        #[serde(default = "default_true")]
        is_typing: bool,
    },
    /// React to a message with one emoji.
    React {
        message_id: Uuid,
        emoji: String,
    },
    /// Take a reaction back.
    Unreact {
        message_id: Uuid,
        emoji: String,
    },
    /// Pin a message in its conversation.
    Pin {
        conversation_id: Uuid,
        message_id: Uuid,
    },
    /// Unpin a message.
    Unpin {
        conversation_id: Uuid,
        message_id: Uuid,
    },
    /// Ask for the change feed after position `since_seq`: every page of it, or with
    /// `limit` (1–1000) one page.
    Sync {
        since_seq: i64,
        #[serde(default)]
        limit: Option<i64>,
    },
    Ping,
    /// This socket's presence: `away` (the app is in the background, the user idle) or
    /// `online` again. The user is away while every socket of theirs says so.
    Presence {
        status: ClientPresence,
    },
}

/// What a client may say of its own presence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientPresence {
    Online,
    Away,
}

fn default_true() -> bool {
    true
}

const CLIENT_TYPES: &[&str] = &[
    "message",
    "mark_read",
    "set_read_marker",
    "edit_message",
    "delete_message",
    "typing",
    "react",
    "unreact",
    "pin",
    "unpin",
    "sync",
    "ping",
    "presence",
];

/// Why a client frame was refused; sent back as an `error` frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError {
    pub code: &'static str,
    pub detail: String,
    pub reference: Option<String>,
}

/// Decodes a client text frame. The error carries the frame's `ref` (or its
/// `client_message_id`) when it had one, so the client can match the error to its request.
pub fn decode(text: &str) -> Result<(ClientFrame, Option<String>), FrameError> {
    let value: Value = serde_json::from_str(text).map_err(|e| FrameError {
        code: "invalid_json",
        detail: format!("the frame is not JSON: {e}"),
        reference: None,
    })?;
    let reference = reference_of(&value);
    let fail = |code, detail: String| FrameError {
        code,
        detail,
        reference: reference.clone(),
    };
    let Some(object) = value.as_object() else {
        return Err(fail("invalid_frame", "a frame is a JSON object".into()));
    };
    let Some(kind) = object.get("type").and_then(Value::as_str) else {
        return Err(fail("invalid_frame", "the frame has no \"type\"".into()));
    };
    if !CLIENT_TYPES.contains(&kind) {
        return Err(fail("unknown_type", format!("unknown frame type {kind:?}")));
    }
    let frame = serde_json::from_value(value.clone()).map_err(|e| {
        let why = crate::extract::client_message(&e.to_string());
        fail("invalid_frame", format!("invalid {kind} frame: {why}"))
    })?;
    Ok((frame, reference))
}

/// The token of an authentication frame `{"token": "..."}`.
pub fn decode_auth(text: &str) -> Option<String> {
    let value: Value = serde_json::from_str(text).ok()?;
    value.get("token")?.as_str().map(str::to_owned)
}

fn reference_of(value: &Value) -> Option<String> {
    ["ref", "client_message_id"]
        .iter()
        .find_map(|key| value.get(key))
        .and_then(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
}

/// A hidden thread reply as its thread's summary counts it (docs/websocket.md, "Threads").
#[derive(Debug, Clone, Serialize)]
pub struct HiddenReplyFrame {
    pub thread_root_id: Uuid,
    pub seq: i64,
    pub sender_id: Uuid,
    #[serde(serialize_with = "crate::dto::time::rfc3339")]
    pub created_at: DateTime<Utc>,
}

impl From<&HiddenReply> for HiddenReplyFrame {
    fn from(reply: &HiddenReply) -> Self {
        Self {
            thread_root_id: reply.thread_root_id.as_uuid(),
            seq: reply.seq.0,
            sender_id: reply.sender_id.as_uuid(),
            created_at: reply.created_at,
        }
    }
}

/// A frame the server sends.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    Connected {
        user_id: Uuid,
        last_seq: i64,
    },
    NewMessage {
        /// The message's position in the change feed: its seq, or in a replay, the seq of
        /// its latest change when it changed since it was sent.
        seq: i64,
        message: MessageResponse,
        timestamp: DateTime<Utc>,
    },
    /// A message was edited, reacted to or pinned (`seq` is the change's place in the
    /// order); in a replay, a message sent before the position asked from and changed
    /// since, as it now stands.
    MessageUpdated {
        seq: i64,
        message: MessageResponse,
        timestamp: DateTime<Utc>,
    },
    /// A message was deleted for everyone: its tombstone.
    MessageDeleted {
        seq: i64,
        message: MessageResponse,
        timestamp: DateTime<Utc>,
    },
    /// The user deleted a message for themselves; sent to their own connections only.
    MessageHidden {
        seq: i64,
        message_id: Uuid,
        conversation_id: Uuid,
        /// In a replay of a hidden thread reply: what its thread's summary counts of it.
        #[serde(skip_serializing_if = "Option::is_none")]
        thread_reply: Option<HiddenReplyFrame>,
        timestamp: DateTime<Utc>,
    },
    MessageRead {
        /// The marker's position in the change feed, when it has one (replays).
        #[serde(skip_serializing_if = "Option::is_none")]
        seq: Option<i64>,
        /// The message at the marker; null in a replay when no message sits at it.
        message_id: Option<Uuid>,
        conversation_id: Uuid,
        user_id: Uuid,
        last_read_seq: i64,
        timestamp: DateTime<Utc>,
    },
    /// Messages of a conversation reached a member's devices (a socket, or a fetch) up to
    /// `last_delivered_seq`: coalesced, one frame for many messages. A member's messages
    /// count as delivered up to the higher of this and their read marker.
    MessageDelivered {
        /// The marker's position in the change feed.
        seq: i64,
        conversation_id: Uuid,
        user_id: Uuid,
        last_delivered_seq: i64,
        timestamp: DateTime<Utc>,
    },
    /// Your own read marker was set (by you, on any of your devices); in a replay, as it
    /// now stands, with the conversation's unread count and unread mentions.
    ReadMarkerUpdated {
        seq: i64,
        conversation_id: Uuid,
        last_read_seq: i64,
        unread_count: u64,
        unread_mentions: u64,
        timestamp: DateTime<Utc>,
    },
    /// Your own settings of a conversation changed (on any of your devices); in a replay,
    /// as they now stand.
    ConversationSettingsUpdated {
        seq: i64,
        conversation_id: Uuid,
        muted_until: Option<DateTime<Utc>>,
        archived: bool,
        timestamp: DateTime<Utc>,
    },
    /// In a replay: a conversation you are in, as it now stands (`change: "state"`).
    #[serde(rename = "conversation_updated")]
    ConversationState {
        seq: i64,
        conversation_id: Uuid,
        change: &'static str,
        name: Option<String>,
        /// Every member, in joining order.
        user_ids: Vec<Uuid>,
        /// The conversation as `GET /conversations/{id}` shows it.
        conversation: ConversationResponse,
        /// Your read marker in it.
        last_read_seq: i64,
        timestamp: DateTime<Utc>,
    },
    /// In a replay: you were removed from (or left) a conversation (`change:
    /// "member_removed"`, `user_ids` your own id); nothing of it follows.
    #[serde(rename = "conversation_updated")]
    ConversationLeft {
        seq: i64,
        conversation_id: Uuid,
        change: &'static str,
        user_ids: Vec<Uuid>,
        timestamp: DateTime<Utc>,
    },
    /// A user who shares a conversation with you came online, went away or offline.
    Presence {
        user_id: Uuid,
        /// `online`, `away` or `offline`.
        status: &'static str,
        /// When their last socket closed, for `offline`; null otherwise, or when either of
        /// you hides it.
        #[serde(serialize_with = "crate::dto::time::rfc3339_opt")]
        last_seen_at: Option<DateTime<Utc>>,
    },
    UserTyping {
        user_id: Uuid,
        conversation_id: Uuid,
        is_typing: bool,
        timestamp: DateTime<Utc>,
    },
    ConversationUpdated {
        /// The change's position in the change feed.
        seq: i64,
        conversation_id: Uuid,
        /// `created`, `renamed`, `members_added`, `member_removed` or `role_changed`.
        change: &'static str,
        actor_id: Uuid,
        /// The group's name after the change; null for a direct conversation.
        name: Option<String>,
        /// The users added, removed or given a new role.
        user_ids: Vec<Uuid>,
        /// For `role_changed`: the new role.
        #[serde(skip_serializing_if = "Option::is_none")]
        role: Option<&'static str>,
        timestamp: DateTime<Utc>,
    },
    /// A reaction was added to a message (`reaction_added`) or taken back
    /// (`reaction_removed`); `count`: how many hold the emoji after the change.
    ReactionAdded(ReactionFrame),
    ReactionRemoved(ReactionFrame),
    /// A message was pinned (`message_pinned`) or unpinned (`message_unpinned`) by `user_id`.
    MessagePinned(PinFrame),
    MessageUnpinned(PinFrame),
    /// The end of a `sync`: `last_seq` is the position to resume from, and `has_more`
    /// whether events lie past it already (send `sync` again from `last_seq`).
    Synced {
        last_seq: i64,
        has_more: bool,
    },
    /// Events may have been missed (the node lost its event bus for a while): the client
    /// sends `sync` with the highest seq it has, or with `since_seq` when that is lower.
    Resync {
        #[serde(skip_serializing_if = "Option::is_none")]
        since_seq: Option<i64>,
    },
    Pong,
    Error {
        code: &'static str,
        detail: String,
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
        /// For `validation_error`: every field that failed and why, as in REST.
        #[serde(skip_serializing_if = "Option::is_none")]
        errors: Option<Vec<FieldErrorBody>>,
    },
}

/// The body of `reaction_added` and `reaction_removed`.
#[derive(Debug, Clone, Serialize)]
pub struct ReactionFrame {
    pub seq: i64,
    pub message_id: Uuid,
    pub conversation_id: Uuid,
    pub emoji: String,
    pub user_id: Uuid,
    pub count: usize,
    pub timestamp: DateTime<Utc>,
}

impl ReactionFrame {
    fn new(change: &ReactionChanged, timestamp: DateTime<Utc>) -> Self {
        Self {
            seq: change.seq.0,
            message_id: change.message_id.as_uuid(),
            conversation_id: change.conversation_id.as_uuid(),
            emoji: change.emoji.as_str().to_owned(),
            user_id: change.user_id.as_uuid(),
            count: change.count,
            timestamp,
        }
    }
}

/// The body of `message_pinned` and `message_unpinned`.
#[derive(Debug, Clone, Serialize)]
pub struct PinFrame {
    pub seq: i64,
    pub message_id: Uuid,
    pub conversation_id: Uuid,
    pub user_id: Uuid,
    pub timestamp: DateTime<Utc>,
}

impl PinFrame {
    fn new(change: &PinChanged, timestamp: DateTime<Utc>) -> Self {
        Self {
            seq: change.seq.0,
            message_id: change.message_id.as_uuid(),
            conversation_id: change.conversation_id.as_uuid(),
            user_id: change.user_id.as_uuid(),
            timestamp,
        }
    }
}

impl ServerFrame {
    pub fn to_text(&self) -> ByteString {
        // Serializing these plain structs cannot fail.
        serde_json::to_string(self)
            .unwrap_or_else(|_| r#"{"type":"error","code":"internal_error"}"#.into())
            .into()
    }

    pub fn error(error: FrameError) -> Self {
        ServerFrame::Error {
            code: error.code,
            detail: error.detail,
            reference: error.reference,
            errors: None,
        }
    }
}

impl ServerFrame {
    /// A read marker as it now stands.
    pub fn message_read(receipt: &ReadReceipt, timestamp: DateTime<Utc>) -> Self {
        ServerFrame::MessageRead {
            seq: receipt.marker.seq.map(|seq| seq.0),
            message_id: Some(receipt.message_id.as_uuid()),
            conversation_id: receipt.marker.conversation_id.as_uuid(),
            user_id: receipt.marker.user_id.as_uuid(),
            last_read_seq: receipt.marker.last_read_seq.0,
            timestamp,
        }
    }

    /// A delivered marker as it now stands.
    pub fn message_delivered(delivered: &Delivered, timestamp: DateTime<Utc>) -> Self {
        ServerFrame::MessageDelivered {
            seq: delivered.seq.0,
            conversation_id: delivered.conversation_id.as_uuid(),
            user_id: delivered.user_id.as_uuid(),
            last_delivered_seq: delivered.last_delivered_seq.0,
            timestamp,
        }
    }

    /// A change to a message as it now stands: `message_updated`, or `message_deleted` for a
    /// tombstone. `seq` is the change's place in the order (the message's own for one never
    /// changed).
    pub fn message_changed(message: &MessageView, timestamp: DateTime<Utc>) -> Self {
        let seq = message.message.change_seq.unwrap_or(message.message.seq).0;
        let deleted = message.message.is_deleted();
        let message = MessageResponse::from(message.clone());
        if deleted {
            ServerFrame::MessageDeleted {
                seq,
                message,
                timestamp,
            }
        } else {
            ServerFrame::MessageUpdated {
                seq,
                message,
                timestamp,
            }
        }
    }

    /// A message hidden for its user.
    pub fn message_hidden(hidden: &HiddenMessage, timestamp: DateTime<Utc>) -> Self {
        ServerFrame::MessageHidden {
            seq: hidden.seq.0,
            message_id: hidden.message_id.as_uuid(),
            conversation_id: hidden.conversation_id.as_uuid(),
            // Live, the hiding device's user saw the reply when it was sent.
            thread_reply: None,
            timestamp,
        }
    }

    /// The frame announcing a domain event, if clients are told of it at all (a revoked
    /// token closes connections instead).
    pub fn for_event(event: &DomainEvent) -> Option<Self> {
        Some(match event {
            DomainEvent::AccessRevoked { .. } => return None,
            DomainEvent::PresenceChanged { presence, .. } => ServerFrame::Presence {
                user_id: presence.user_id.as_uuid(),
                status: presence.status.as_str(),
                last_seen_at: presence.last_seen_at,
            },
            DomainEvent::MessageCreated { message, at, .. } => ServerFrame::NewMessage {
                seq: message.message.seq.0,
                message: message.clone().into(),
                timestamp: *at,
            },
            DomainEvent::MessageUpdated { message, at, .. }
            | DomainEvent::MessageDeleted { message, at, .. } => {
                Self::message_changed(message, *at)
            }
            DomainEvent::MessageHidden { hidden, at, .. } => Self::message_hidden(hidden, *at),
            DomainEvent::MessageRead { receipt, at, .. } => Self::message_read(receipt, *at),
            DomainEvent::MessageDelivered { delivered, at, .. } => {
                Self::message_delivered(delivered, *at)
            }
            DomainEvent::ReadMarkerSet { set, at, .. } => ServerFrame::ReadMarkerUpdated {
                seq: set.marker.seq.map_or(0, |seq| seq.0),
                conversation_id: set.marker.conversation_id.as_uuid(),
                last_read_seq: set.marker.last_read_seq.0,
                unread_count: set.unread_count,
                unread_mentions: set.unread_mentions,
                timestamp: *at,
            },
            DomainEvent::SettingsChanged { change, at, .. } => {
                ServerFrame::ConversationSettingsUpdated {
                    seq: change.seq.0,
                    conversation_id: change.conversation_id.as_uuid(),
                    muted_until: change.settings.muted_until,
                    archived: change.settings.archived,
                    timestamp: *at,
                }
            }
            // Counts, not whole messages: one rendering serves every member, and `me` is
            // the client's own `user_id == self`.
            DomainEvent::ReactionAdded { change, at, .. } => {
                ServerFrame::ReactionAdded(ReactionFrame::new(change, *at))
            }
            DomainEvent::ReactionRemoved { change, at, .. } => {
                ServerFrame::ReactionRemoved(ReactionFrame::new(change, *at))
            }
            DomainEvent::MessagePinned { change, at, .. } => {
                ServerFrame::MessagePinned(PinFrame::new(change, *at))
            }
            DomainEvent::MessageUnpinned { change, at, .. } => {
                ServerFrame::MessageUnpinned(PinFrame::new(change, *at))
            }
            DomainEvent::Typing {
                conversation_id,
                user_id,
                is_typing,
                at,
                ..
            } => ServerFrame::UserTyping {
                user_id: user_id.as_uuid(),
                conversation_id: conversation_id.as_uuid(),
                is_typing: *is_typing,
                timestamp: *at,
            },
            DomainEvent::ConversationUpdated {
                conversation,
                seq,
                change,
                actor,
                at,
                ..
            } => {
                let mut role = None;
                let (change, user_ids) = match change {
                    ConversationChange::Created => ("created", Vec::new()),
                    ConversationChange::Renamed { .. } => ("renamed", Vec::new()),
                    ConversationChange::RoleChanged { user_id, role: new } => {
                        role = Some(new.as_str());
                        ("role_changed", vec![user_id.as_uuid()])
                    }
                    ConversationChange::MembersAdded { user_ids } => (
                        "members_added",
                        user_ids.iter().map(|u| u.as_uuid()).collect(),
                    ),
                    ConversationChange::MemberRemoved { user_id } => {
                        ("member_removed", vec![user_id.as_uuid()])
                    }
                };
                ServerFrame::ConversationUpdated {
                    seq: seq.0,
                    conversation_id: conversation.id.as_uuid(),
                    change,
                    actor_id: actor.as_uuid(),
                    name: conversation.name.as_ref().map(|n| n.as_str().to_owned()),
                    user_ids,
                    role,
                    timestamp: *at,
                }
            }
        })
    }
}

impl ServerFrame {
    /// The frame replaying one event of the change feed: the frame a live client would have
    /// received for it, as the thing now stands. `now` stamps the events whose change kept
    /// no time of its own (a hidden message, settings).
    pub fn for_feed_event(event: FeedEvent, now: DateTime<Utc>) -> Self {
        match event {
            FeedEvent::NewMessage { seq, message } => ServerFrame::NewMessage {
                seq: seq.0,
                timestamp: message.message.updated_at,
                message: message.into(),
            },
            FeedEvent::MessageUpdated { seq, message } => ServerFrame::MessageUpdated {
                seq: seq.0,
                timestamp: message.message.updated_at,
                message: message.into(),
            },
            FeedEvent::MessageDeleted { seq, message } => ServerFrame::MessageDeleted {
                seq: seq.0,
                timestamp: message.message.updated_at,
                message: message.into(),
            },
            FeedEvent::MessageHidden {
                seq,
                conversation_id,
                message_id,
                thread_reply,
            } => ServerFrame::MessageHidden {
                seq: seq.0,
                message_id: message_id.as_uuid(),
                conversation_id: conversation_id.as_uuid(),
                thread_reply: thread_reply.as_ref().map(HiddenReplyFrame::from),
                timestamp: now,
            },
            FeedEvent::MessageRead {
                seq,
                marker,
                message_id,
            } => ServerFrame::MessageRead {
                seq: Some(seq.0),
                message_id: message_id.map(|m| m.as_uuid()),
                conversation_id: marker.conversation_id.as_uuid(),
                user_id: marker.user_id.as_uuid(),
                last_read_seq: marker.last_read_seq.0,
                timestamp: marker.read_at,
            },
            // Delivery keeps no time of its own.
            FeedEvent::MessageDelivered { delivered, .. } => {
                Self::message_delivered(&delivered, now)
            }
            FeedEvent::ReadMarkerUpdated {
                seq,
                marker,
                unread_count,
                unread_mentions,
            } => ServerFrame::ReadMarkerUpdated {
                seq: seq.0,
                conversation_id: marker.conversation_id.as_uuid(),
                last_read_seq: marker.last_read_seq.0,
                unread_count,
                unread_mentions,
                timestamp: marker.read_at,
            },
            FeedEvent::SettingsUpdated {
                seq,
                conversation_id,
                muted_until,
                archived,
            } => ServerFrame::ConversationSettingsUpdated {
                seq: seq.0,
                conversation_id: conversation_id.as_uuid(),
                muted_until,
                archived,
                timestamp: now,
            },
            FeedEvent::ConversationState {
                seq,
                details,
                last_read_seq,
            } => {
                let conversation = ConversationResponse::from(details);
                ServerFrame::ConversationState {
                    seq: seq.0,
                    last_read_seq: last_read_seq.0,
                    conversation_id: conversation.id,
                    change: "state",
                    name: conversation.name.clone(),
                    user_ids: conversation.participants.iter().map(|p| p.id).collect(),
                    timestamp: conversation.updated_at,
                    conversation,
                }
            }
            FeedEvent::ConversationLeft {
                seq,
                conversation_id,
                user_id,
                at,
            } => ServerFrame::ConversationLeft {
                seq: seq.0,
                conversation_id: conversation_id.as_uuid(),
                change: "member_removed",
                user_ids: vec![user_id.as_uuid()],
                timestamp: at,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_presence_frame_says_online_or_away_and_nothing_else() {
        for (text, status) in [
            (
                r#"{"type":"presence","status":"away"}"#,
                ClientPresence::Away,
            ),
            (
                r#"{"type":"presence","status":"online"}"#,
                ClientPresence::Online,
            ),
        ] {
            assert_eq!(decode(text).unwrap().0, ClientFrame::Presence { status });
        }
        for text in [
            r#"{"type":"presence","status":"offline"}"#,
            r#"{"type":"presence","status":"Away"}"#,
            r#"{"type":"presence"}"#,
            r#"{"type":"presence","status":1,"ref":"r"}"#,
        ] {
            assert_eq!(decode(text).unwrap_err().code, "invalid_frame", "{text}");
        }
    }

    #[test]
    fn a_presence_event_shows_last_seen_only_when_it_has_one() {
        let user = Uuid::nil();
        let frame = ServerFrame::Presence {
            user_id: user,
            status: "online",
            last_seen_at: None,
        };
        assert_eq!(
            frame.to_text(),
            format!(
                r#"{{"type":"presence","user_id":"{user}","status":"online","last_seen_at":null}}"#
            )
        );
        let at: DateTime<Utc> = "2026-12-07T01:02:03Z".parse().unwrap();
        let frame = ServerFrame::Presence {
            user_id: user,
            status: "offline",
            last_seen_at: Some(at),
        };
        assert!(
            frame
                .to_text()
                .ends_with(r#""last_seen_at":"2026-12-07T01:02:03Z"}"#)
        );
    }

    #[test]
    fn the_resync_frame_names_a_seq_only_when_it_has_one() {
        let frame = ServerFrame::Resync { since_seq: None };
        assert_eq!(frame.to_text(), r#"{"type":"resync"}"#);
        let frame = ServerFrame::Resync {
            since_seq: Some(41),
        };
        assert_eq!(frame.to_text(), r#"{"type":"resync","since_seq":41}"#);
    }

    #[test]
    fn known_frames_decode() {
        let id = Uuid::new_v4();
        let (frame, _) =
            decode(&format!(r#"{{"type":"typing","conversation_id":"{id}"}}"#)).unwrap();
        assert_eq!(
            frame,
            ClientFrame::Typing {
                conversation_id: id,
                is_typing: true
            }
        );
        assert_eq!(decode(r#"{"type":"ping"}"#).unwrap().0, ClientFrame::Ping);
        assert_eq!(
            decode(r#"{"type":"sync","since_seq":7}"#).unwrap().0,
            ClientFrame::Sync {
                since_seq: 7,
                limit: None
            }
        );
    }

    #[test]
    fn bad_frames_say_what_is_wrong_and_carry_the_reference() {
        assert_eq!(decode("not json").unwrap_err().code, "invalid_json");
        assert_eq!(decode("[1,2]").unwrap_err().code, "invalid_frame");
        assert_eq!(
            decode(r#"{"no":"type"}"#).unwrap_err().code,
            "invalid_frame"
        );
        let unknown = decode(r#"{"type":"dance","ref":"r1"}"#).unwrap_err();
        assert_eq!(
            (unknown.code, unknown.reference.as_deref()),
            ("unknown_type", Some("r1"))
        );
        let missing = decode(r#"{"type":"message","client_message_id":"c9"}"#).unwrap_err();
        assert_eq!(missing.code, "invalid_frame");
        assert_eq!(missing.reference.as_deref(), Some("c9"));
        assert!(missing.detail.contains("content"));
    }

    #[test]
    fn bad_frames_never_name_a_rust_type() {
        for text in [
            r#"{"type":"sync","since_seq":1.5}"#,
            r#"{"type":"sync","since_seq":99999999999999999999}"#,
            r#"{"type":"mark_read","message_id":"nope"}"#,
            r#"{"type":"typing","conversation_id":5}"#,
        ] {
            let error = decode(text).unwrap_err();
            assert_eq!(error.code, "invalid_frame", "{text}");
            for internal in [
                "i64",
                "u64",
                "::",
                "struct",
                "line 1",
                "UUID parsing failed",
            ] {
                assert!(!error.detail.contains(internal), "{text}: {}", error.detail);
            }
        }
    }

    #[test]
    fn error_frames_have_the_documented_shape() {
        let text = ServerFrame::error(FrameError {
            code: "unknown_type",
            detail: "nope".into(),
            reference: Some("r".into()),
        })
        .to_text();
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["type"], "error");
        assert_eq!(value["code"], "unknown_type");
        assert_eq!(value["ref"], "r");
    }

    /// Properties against the protocol as docs/websocket.md states it, written here again
    /// rather than taken from the decoder: the frame types, each field's JSON type, which
    /// fields may be left out, and that fields a frame does not use are ignored.
    mod props {
        use super::*;
        use proptest::prelude::*;
        use serde_json::{Map, json};

        /// The client frame types, as docs/websocket.md lists them.
        const DOCUMENTED_TYPES: [&str; 6] = [
            "message",
            "mark_read",
            "set_read_marker",
            "typing",
            "sync",
            "ping",
        ];

        /// Every field name some client frame uses, and `ref`.
        const FIELDS: [&str; 12] = [
            "last_read_seq",
            "conversation_id",
            "recipient_id",
            "reply_to_id",
            "thread_root_id",
            "attachment_ids",
            "content",
            "client_message_id",
            "message_id",
            "is_typing",
            "since_seq",
            "ref",
        ];

        /// Any JSON value a field might hold: right for one field, wrong for another.
        fn field_value() -> impl Strategy<Value = Value> {
            prop_oneof![
                2 => Just(Value::String(Uuid::new_v4().to_string())),
                1 => any::<u128>().prop_map(|n| Value::String(Uuid::from_u128(n).hyphenated().to_string())),
                1 => Just(json!("not-a-uuid")),
                2 => "\\PC{0,12}".prop_map(Value::String),
                1 => Just(Value::Null),
                1 => any::<bool>().prop_map(Value::Bool),
                2 => any::<i64>().prop_map(Value::from),
                1 => Just(json!(u64::MAX)),
                1 => Just(json!(1.5)),
                1 => Just(json!([1, "a"])),
                1 => Just(json!({"nested": true})),
            ]
        }

        /// A `type`: a documented one (most often), another word, another case, or not a
        /// string at all.
        fn type_value() -> impl Strategy<Value = Option<Value>> {
            prop_oneof![
                8 => proptest::sample::select(&DOCUMENTED_TYPES[..]).prop_map(|t| Some(json!(t))),
                1 => "[a-z_]{1,10}".prop_map(|t| Some(json!(t))),
                1 => proptest::sample::select(vec!["Message", "PING", "mark-read", "sync ", ""])
                    .prop_map(|t| Some(json!(t))),
                1 => prop_oneof![Just(json!(null)), Just(json!(1)), Just(json!(["ping"]))].prop_map(Some),
                1 => Just(None),
            ]
        }

        /// A JSON object with a type, any of the protocol's fields (each present or not, of the
        /// right type or not), and now and then a field no frame uses.
        fn frame_object() -> impl Strategy<Value = Value> {
            let fields =
                proptest::collection::vec(proptest::option::of(field_value()), FIELDS.len());
            let extra = proptest::option::weighted(0.3, ("[a-z]{1,8}", field_value()));
            (type_value(), fields, extra).prop_map(|(kind, fields, extra)| {
                let mut object = Map::new();
                if let Some((name, value)) = extra {
                    object.insert(format!("x_{name}"), value);
                }
                for (name, value) in FIELDS.iter().zip(fields) {
                    if let Some(value) = value {
                        object.insert((*name).to_owned(), value);
                    }
                }
                if let Some(kind) = kind {
                    object.insert("type".into(), kind);
                }
                Value::Object(object)
            })
        }

        /// What the protocol says a field of each kind accepts; `Err` when it is mistyped.
        fn uuid(
            object: &Map<String, Value>,
            name: &str,
            required: bool,
        ) -> Result<Option<Uuid>, ()> {
            match object.get(name) {
                None | Some(Value::Null) if !required => Ok(None),
                Some(Value::String(text)) => Uuid::parse_str(text).map(Some).map_err(|_| ()),
                _ => Err(()),
            }
        }

        /// An optional list of uuids.
        fn uuids(object: &Map<String, Value>, name: &str) -> Result<Option<Vec<Uuid>>, ()> {
            match object.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|item| match item {
                        Value::String(text) => Uuid::parse_str(text).map_err(|_| ()),
                        _ => Err(()),
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(Some),
                _ => Err(()),
            }
        }

        fn string(
            object: &Map<String, Value>,
            name: &str,
            required: bool,
        ) -> Result<Option<String>, ()> {
            match object.get(name) {
                None | Some(Value::Null) if !required => Ok(None),
                Some(Value::String(text)) => Ok(Some(text.clone())),
                _ => Err(()),
            }
        }

        /// The frame a text decodes to, or the error code it gets, by the documented rules.
        fn documented_outcome(value: &Value) -> Result<ClientFrame, &'static str> {
            let Value::Object(object) = value else {
                return Err("invalid_frame");
            };
            let Some(Value::String(kind)) = object.get("type") else {
                return Err("invalid_frame");
            };
            let mistyped = |()| "invalid_frame";
            match kind.as_str() {
                "message" => Ok(ClientFrame::Message {
                    conversation_id: uuid(object, "conversation_id", false).map_err(mistyped)?,
                    recipient_id: uuid(object, "recipient_id", false).map_err(mistyped)?,
                    content: string(object, "content", true)
                        .map_err(mistyped)?
                        .unwrap_or_default(),
                    client_message_id: string(object, "client_message_id", false)
                        .map_err(mistyped)?,
                    reply_to_id: uuid(object, "reply_to_id", false).map_err(mistyped)?,
                    thread_root_id: uuid(object, "thread_root_id", false).map_err(mistyped)?,
                    attachment_ids: uuids(object, "attachment_ids").map_err(mistyped)?,
                }),
                "mark_read" => Ok(ClientFrame::MarkRead {
                    message_id: uuid(object, "message_id", true)
                        .map_err(mistyped)?
                        .unwrap_or_default(),
                }),
                "set_read_marker" => Ok(ClientFrame::SetReadMarker {
                    conversation_id: uuid(object, "conversation_id", true)
                        .map_err(mistyped)?
                        .unwrap_or_default(),
                    last_read_seq: object
                        .get("last_read_seq")
                        .and_then(Value::as_i64)
                        .ok_or("invalid_frame")?,
                }),
                "typing" => Ok(ClientFrame::Typing {
                    conversation_id: uuid(object, "conversation_id", true)
                        .map_err(mistyped)?
                        .unwrap_or_default(),
                    // Defaults to true when left out; present, it must be a boolean.
                    is_typing: match object.get("is_typing") {
                        None => true,
                        Some(Value::Bool(b)) => *b,
                        Some(_) => return Err("invalid_frame"),
                    },
                }),
                "sync" => Ok(ClientFrame::Sync {
                    since_seq: object
                        .get("since_seq")
                        .and_then(Value::as_i64)
                        .ok_or("invalid_frame")?,
                    limit: match object.get("limit") {
                        None | Some(Value::Null) => None,
                        Some(limit) => Some(limit.as_i64().ok_or("invalid_frame")?),
                    },
                }),
                "ping" => Ok(ClientFrame::Ping),
                _ => Err("unknown_type"),
            }
        }

        /// The reference an error carries back: the frame's `ref`, or when it has none its
        /// `client_message_id`; a string as it is, a number as its text, anything else none.
        fn documented_reference(value: &Value) -> Option<String> {
            match value
                .get("ref")
                .or_else(|| value.get("client_message_id"))?
            {
                Value::String(text) => Some(text.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(1024))]

            #[test]
            fn decoding_never_panics_on_any_text(text in any::<String>()) {
                let _ = decode(&text);
                let _ = decode_auth(&text);
            }

            #[test]
            fn an_object_frame_decodes_exactly_as_the_protocol_documents(value in frame_object()) {
                let documented = documented_outcome(&value);
                match (decode(&value.to_string()), documented) {
                    (Ok((frame, _)), Ok(expected)) => prop_assert_eq!(frame, expected),
                    (Err(error), Err(code)) => {
                        prop_assert_eq!(error.code, code, "{:?}", error);
                        prop_assert_eq!(error.reference, documented_reference(&value));
                    }
                    (got, expected) => prop_assert!(
                        false,
                        "{value} decoded to {got:?}, but the protocol says {expected:?}"
                    ),
                }
            }

            #[test]
            fn json_that_is_not_an_object_is_an_invalid_frame(
                value in prop_oneof![
                    Just(Value::Null),
                    any::<bool>().prop_map(Value::Bool),
                    any::<i64>().prop_map(Value::from),
                    "\\PC{0,12}".prop_map(Value::String),
                    proptest::collection::vec(frame_object(), 0..3).prop_map(Value::Array),
                ]
            ) {
                let error = decode(&value.to_string()).unwrap_err();
                prop_assert_eq!(error.code, "invalid_frame");
                prop_assert_eq!(error.reference, None);
            }

            #[test]
            fn a_frame_cut_short_is_not_json(value in frame_object(), keep in any::<proptest::sample::Index>()) {
                let text = value.to_string();
                // Any proper prefix of an object's text is incomplete JSON.
                let cut = text.char_indices().map(|(i, _)| i).nth(keep.index(text.chars().count())).unwrap_or(0);
                let error = decode(&text[..cut]).unwrap_err();
                prop_assert_eq!(error.code, "invalid_json");
                prop_assert_eq!(error.reference, None);
            }
        }
    }
}
