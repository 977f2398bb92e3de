//! The WebSocket gateway's frames as Rust types: [`Event`], every frame the server sends, and
//! [`Command`], every frame a client sends (docs/websocket.md describes both).
//!
//! Separate from the connection ([`crate::live`]) so that code driving a socket of its own (a
//! benchmark's hot loop, a test probing the server) reads and writes the same frames.
//!
//! Frames a newer server adds, or known frames in a shape this client does not know, come out
//! as [`Event::Unknown`] with their JSON, so an older client keeps working.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

pub use crate::types::DeleteScope;
use crate::types::{Conversation, Message, NewMessage};

/// A frame the server sent.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// The token was accepted: the first frame of every connection.
    Connected(Connected),
    /// A message was stored in one of your conversations (by anyone, you included), or the
    /// answer to a retried send, or a replayed message.
    NewMessage(MessageEvent),
    /// A message was edited (or, replayed, changed since your position).
    MessageUpdated(MessageEvent),
    /// A message was deleted for everyone: `message` is its tombstone.
    MessageDeleted(MessageEvent),
    /// You deleted a message for yourself (on any of your devices).
    MessageHidden(MessageHidden),
    /// A member's read marker moved forward.
    MessageRead(MessageRead),
    /// Messages of a conversation reached another member's devices.
    MessageDelivered(MessageDelivered),
    /// Your own read marker was set (on any of your devices).
    ReadMarkerUpdated(ReadMarkerUpdated),
    /// Your own settings of a conversation changed (on any of your devices).
    ConversationSettingsUpdated(ConversationSettingsUpdated),
    /// A conversation was created, renamed, or its members or roles changed; replayed, a
    /// conversation as it now stands, or your removal from one.
    ConversationUpdated(ConversationUpdated),
    /// Another member started or stopped typing.
    UserTyping(UserTyping),
    /// A user who shares a conversation with you came online, went away or offline.
    Presence(Presence),
    /// Someone reacted to a message.
    ReactionAdded(Reaction),
    /// Someone took a reaction back.
    ReactionRemoved(Reaction),
    /// A message was pinned.
    MessagePinned(Pin),
    /// A message was unpinned.
    MessageUnpinned(Pin),
    /// The end of a `sync` (or of one page of it).
    Synced(Synced),
    /// Events may have been missed (clusters only): sync again.
    Resync(Resync),
    /// The answer to a `ping` frame.
    Pong,
    /// A frame was refused.
    Error(ErrorFrame),
    /// A frame this client does not understand (a newer server's), as JSON.
    #[serde(skip)]
    Unknown(Value),
}

impl Event {
    /// Reads one text frame. Anything that is JSON but not a frame this client knows becomes
    /// [`Event::Unknown`]; only text that is not JSON at all is an error.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        // Straight into the event: a known frame is parsed once. Only a frame this client
        // does not know is parsed again, as plain JSON.
        serde_json::from_str(text).or_else(|_| serde_json::from_str(text).map(Event::Unknown))
    }

    /// The frame's position in the change feed, for the frames that carry one at their top
    /// level: what a client keeps to `sync` from (docs/websocket.md, "Positions").
    pub fn seq(&self) -> Option<i64> {
        match self {
            Event::NewMessage(e) | Event::MessageUpdated(e) | Event::MessageDeleted(e) => {
                Some(e.seq)
            }
            Event::MessageHidden(e) => Some(e.seq),
            Event::MessageRead(e) => e.seq,
            Event::MessageDelivered(e) => Some(e.seq),
            Event::ReadMarkerUpdated(e) => Some(e.seq),
            Event::ConversationSettingsUpdated(e) => Some(e.seq),
            Event::ConversationUpdated(e) => Some(e.seq),
            Event::ReactionAdded(e) | Event::ReactionRemoved(e) => Some(e.seq),
            Event::MessagePinned(e) | Event::MessageUnpinned(e) => Some(e.seq),
            Event::Connected(_)
            | Event::UserTyping(_)
            | Event::Presence(_)
            | Event::Synced(_)
            | Event::Resync(_)
            | Event::Pong
            | Event::Error(_)
            | Event::Unknown(_) => None,
        }
    }
}

/// `connected`: who you are, and the highest seq in your conversations now.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Connected {
    pub user_id: Uuid,
    pub last_seq: i64,
}

/// `new_message`, `message_updated`, `message_deleted`: a message as it now stands.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MessageEvent {
    /// The frame's position: live, the message's own seq for a new message, the change's
    /// for an edit or deletion; replayed, the position of the message's latest change. Not
    /// always `message.seq`, the message's place in its conversation.
    pub seq: i64,
    pub message: Message,
    pub timestamp: DateTime<Utc>,
}

/// `message_hidden`: a message you deleted for yourself.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct MessageHidden {
    pub seq: i64,
    pub message_id: Uuid,
    pub conversation_id: Uuid,
    /// Replayed for a hidden thread reply: what its root's thread summary counts of it.
    #[serde(default)]
    pub thread_reply: Option<HiddenThreadReply>,
    pub timestamp: DateTime<Utc>,
}

/// What a thread's summary counts of a reply you hid.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct HiddenThreadReply {
    pub thread_root_id: Uuid,
    pub seq: i64,
    pub sender_id: Uuid,
    pub created_at: DateTime<Utc>,
}

/// `message_read`: `user_id` has read the conversation up to `last_read_seq`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct MessageRead {
    /// The move's position; absent only on the answer to a `mark_read` that moved nothing.
    #[serde(default)]
    pub seq: Option<i64>,
    /// The message at the marker; replayed, `None` when no message sits at it.
    pub message_id: Option<Uuid>,
    pub conversation_id: Uuid,
    pub user_id: Uuid,
    pub last_read_seq: i64,
    pub timestamp: DateTime<Utc>,
}

/// `message_delivered`: the conversation's messages up to `last_delivered_seq` reached
/// `user_id`'s devices.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct MessageDelivered {
    pub seq: i64,
    pub conversation_id: Uuid,
    pub user_id: Uuid,
    pub last_delivered_seq: i64,
    pub timestamp: DateTime<Utc>,
}

/// `read_marker_updated`: your own read marker, with the conversation's unread counts after
/// the change.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ReadMarkerUpdated {
    pub seq: i64,
    pub conversation_id: Uuid,
    pub last_read_seq: i64,
    pub unread_count: u64,
    pub unread_mentions: u64,
    pub timestamp: DateTime<Utc>,
}

/// `conversation_settings_updated`: your own settings of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ConversationSettingsUpdated {
    pub seq: i64,
    pub conversation_id: Uuid,
    pub muted_until: Option<DateTime<Utc>>,
    pub archived: bool,
    pub timestamp: DateTime<Utc>,
}

/// `conversation_updated`, live (a change, with `actor_id`) or replayed (`change` is
/// [`ConversationChange::State`] with the whole `conversation`, or
/// [`ConversationChange::MemberRemoved`] without `actor_id` for your own removal).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ConversationUpdated {
    pub seq: i64,
    pub conversation_id: Uuid,
    pub change: ConversationChange,
    /// Who made the change; `None` in a replay.
    #[serde(default)]
    pub actor_id: Option<Uuid>,
    /// The group's name after the change; `None` for a direct conversation.
    #[serde(default)]
    pub name: Option<String>,
    /// Live: the users added, removed or given a new role. Replayed `state`: every member.
    #[serde(default)]
    pub user_ids: Vec<Uuid>,
    /// For `role_changed`: the new role (`owner`, `admin`, `member`).
    #[serde(default)]
    pub role: Option<String>,
    /// For a replayed `state`: the conversation as `GET /api/v1/conversations/{id}` shows it.
    #[serde(default)]
    pub conversation: Option<Conversation>,
    /// For a replayed `state`: your read marker in it.
    #[serde(default)]
    pub last_read_seq: Option<i64>,
    pub timestamp: DateTime<Utc>,
}

/// What a `conversation_updated` says changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationChange {
    Created,
    Renamed,
    MembersAdded,
    MemberRemoved,
    RoleChanged,
    /// Replayed: the conversation as it now stands.
    State,
    /// A change this client does not know.
    #[serde(other)]
    Other,
}

/// `user_typing`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct UserTyping {
    pub user_id: Uuid,
    pub conversation_id: Uuid,
    pub is_typing: bool,
    pub timestamp: DateTime<Utc>,
}

/// `presence`: not part of the change feed (no seq, never replayed).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Presence {
    pub user_id: Uuid,
    pub status: PresenceStatus,
    /// For `offline`: when their last socket closed; `None` when either of you hides it.
    #[serde(default)]
    pub last_seen_at: Option<DateTime<Utc>>,
}

/// A user's presence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PresenceStatus {
    Online,
    Away,
    Offline,
    /// A status this client does not know.
    #[serde(other)]
    Other,
}

/// `reaction_added`, `reaction_removed`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Reaction {
    pub seq: i64,
    pub message_id: Uuid,
    pub conversation_id: Uuid,
    pub emoji: String,
    pub user_id: Uuid,
    /// How many users hold `emoji` on the message after the change.
    pub count: u64,
    pub timestamp: DateTime<Utc>,
}

/// `message_pinned`, `message_unpinned`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Pin {
    pub seq: i64,
    pub message_id: Uuid,
    pub conversation_id: Uuid,
    pub user_id: Uuid,
    pub timestamp: DateTime<Utc>,
}

/// `synced`: the end of a sync, or of one page of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Synced {
    /// The position to sync from next.
    pub last_seq: i64,
    /// More events lie past `last_seq` already (a paged sync): ask again from it.
    pub has_more: bool,
}

/// `resync`: sync again, from `since_seq` when it is lower than your position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Resync {
    #[serde(default)]
    pub since_seq: Option<i64>,
}

/// `error`: a frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ErrorFrame {
    /// Stable, for programs: `validation_error`, `rate_limited`, `unauthorized`, ...
    pub code: String,
    /// For people; may change.
    pub detail: String,
    /// The refused frame's `ref`, or its `client_message_id` when it had no `ref`.
    #[serde(default, rename = "ref")]
    pub reference: Option<String>,
    /// For `validation_error`: the fields that failed.
    #[serde(default)]
    pub errors: Option<Vec<FieldError>>,
}

/// One field of a refused frame and why.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// A frame a client sends. [`Command::to_json`] writes it, with a `ref` if given.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Command {
    /// Send a message.
    Message(SendMessage),
    /// Mark a message, and everything before it in its conversation, read.
    MarkRead { message_id: Uuid },
    /// Set your read marker, back ("mark unread") or forward.
    SetReadMarker {
        conversation_id: Uuid,
        last_read_seq: i64,
    },
    /// Change the content of a message you sent.
    EditMessage { message_id: Uuid, content: String },
    /// Delete a message for everyone or for yourself.
    DeleteMessage {
        message_id: Uuid,
        scope: DeleteScope,
    },
    /// You started or stopped typing.
    Typing {
        conversation_id: Uuid,
        is_typing: bool,
    },
    /// Add a reaction (one emoji).
    React { message_id: Uuid, emoji: String },
    /// Take a reaction back.
    Unreact { message_id: Uuid, emoji: String },
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
    /// Replay the change feed after `since_seq`: all of it, or one page of `limit` (1–1000).
    Sync {
        since_seq: i64,
        #[serde(skip_serializing_if = "Option::is_none")]
        limit: Option<i64>,
    },
    /// Check the connection: answered with [`Event::Pong`].
    Ping,
    /// This device is away, or back.
    Presence { status: OwnPresence },
}

impl Command {
    /// The frame as JSON text, carrying `reference` as its `ref` when given (an `error`
    /// frame refusing it carries the same `ref`).
    pub fn to_json(&self, reference: Option<&str>) -> String {
        #[derive(Serialize)]
        struct Framed<'a> {
            #[serde(flatten)]
            command: &'a Command,
            #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
            reference: Option<&'a str>,
        }
        // Plain structs of strings, numbers and UUIDs always serialize.
        serde_json::to_string(&Framed {
            command: self,
            reference,
        })
        .expect("a command serializes")
    }
}

/// What a device may say of its own presence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OwnPresence {
    Online,
    Away,
}

/// A message to send over the live connection: a [`NewMessage`] (the same body as
/// [`Client::send_message`](crate::Client::send_message) takes) to a conversation or to a
/// user (their direct conversation). Its `client_message_id` makes a resend safe: the server
/// stores one message per id and conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SendMessage {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipient_id: Option<Uuid>,
    #[serde(flatten)]
    pub message: NewMessage,
}

impl SendMessage {
    /// `message` (or plain text) to a conversation you are a member of.
    pub fn to_conversation(conversation_id: Uuid, message: impl Into<NewMessage>) -> Self {
        Self {
            conversation_id: Some(conversation_id),
            recipient_id: None,
            message: message.into(),
        }
    }

    /// `message` (or plain text) to your direct conversation with `user_id`, started if there
    /// is none.
    pub fn to_user(user_id: Uuid, message: impl Into<NewMessage>) -> Self {
        Self {
            conversation_id: None,
            recipient_id: Some(user_id),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_frame_of_a_type_this_client_does_not_know_is_kept_as_json() {
        let text = r#"{"type":"aurora","seq":3}"#;
        assert_eq!(
            Event::from_json(text).unwrap(),
            Event::Unknown(json!({"type": "aurora", "seq": 3}))
        );
        assert!(Event::from_json("not json").is_err());
    }

    #[test]
    fn known_frames_read_into_their_types_and_tell_their_position() {
        let read = Event::from_json(
            r#"{"type":"message_read","seq":3,"message_id":"5bac3cf7-2a8c-4775-b298-380c67e306e1",
                "conversation_id":"c69abb94-0438-4ebb-9759-8f819aa160d5",
                "user_id":"daced227-db43-4ad7-a3eb-1d5943fde8b9","last_read_seq":1,
                "timestamp":"2026-11-25T14:33:43.235058Z"}"#,
        )
        .unwrap();
        assert!(matches!(read, Event::MessageRead(ref r) if r.last_read_seq == 1));
        assert_eq!(read.seq(), Some(3));
        let error = Event::from_json(
            r#"{"type":"error","code":"validation_error","detail":"bad","ref":"a-2",
                "errors":[{"field":"content","message":"must not be empty"}]}"#,
        )
        .unwrap();
        let Event::Error(error) = error else {
            panic!("an error frame: {error:?}")
        };
        assert_eq!(error.reference.as_deref(), Some("a-2"));
        assert_eq!(error.errors.unwrap()[0].field, "content");
        assert_eq!(Event::from_json(r#"{"type":"pong"}"#).unwrap(), Event::Pong);
        let presence =
            Event::from_json(r#"{"type":"presence","user_id":"daced227-db43-4ad7-a3eb-1d5943fde8b9","status":"online","last_seen_at":null}"#)
                .unwrap();
        assert!(matches!(presence, Event::Presence(ref p) if p.status == PresenceStatus::Online));
    }

    #[test]
    fn commands_write_the_frames_of_the_protocol() {
        let conversation = Uuid::nil();
        let send = Command::Message(SendMessage::to_conversation(
            conversation,
            NewMessage::text("Hello!").client_message_id("b-1"),
        ));
        assert_eq!(
            serde_json::from_str::<Value>(&send.to_json(None)).unwrap(),
            json!({"type": "message", "conversation_id": conversation,
                   "content": "Hello!", "client_message_id": "b-1"})
        );
        let delete = Command::DeleteMessage {
            message_id: conversation,
            scope: DeleteScope::Me,
        };
        assert_eq!(
            serde_json::from_str::<Value>(&delete.to_json(Some("d-1"))).unwrap(),
            json!({"type": "delete_message", "message_id": conversation,
                   "scope": "me", "ref": "d-1"})
        );
        assert_eq!(Command::Ping.to_json(None), r#"{"type":"ping"}"#);
        assert_eq!(
            Command::Sync {
                since_seq: 41,
                limit: None
            }
            .to_json(None),
            r#"{"type":"sync","since_seq":41}"#
        );
    }
}
