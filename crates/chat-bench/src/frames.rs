//! The few gateway frames the bench reads, and the client message ids it tags messages with.
//!
//! Every message the bench sends carries a client message id `{tag}.{sender}.{n}.{nanos}`:
//! the run's tag (so frames of other runs or other clients are ignored), who sent it, its
//! number for that sender, and when it was sent in nanoseconds since the run's epoch. The
//! id comes back in every `new_message`, so a receiver knows the send time without asking
//! anyone: latencies are measured per delivery with both timestamps taken in this process.
//!
//! Frames sent are written by chat-client ([`chat_client::events::Command`]), as every Rust
//! caller's are. Frames read are not decoded into chat-client's typed
//! [`chat_client::events::Event`]: that builds every field of every message (strings, dates,
//! vectors) for each of the hundreds of thousands of frames a run reads, on the cores the
//! server under test shares, and the bench would measure its own decoding. [`parse`] borrows
//! the two or three fields the bench looks at; a test checks it reads what the typed events
//! read.

use std::borrow::Cow;

use chat_client::events::{Command, SendMessage};
use chat_client::types::NewMessage;
use serde::Deserialize;
use uuid::Uuid;

use crate::BenchError;

/// A frame from the server, reduced to what the bench looks at.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// A `new_message` and its client message id, if it has one.
    NewMessage {
        client_message_id: Option<Cow<'a, str>>,
    },
    /// An `error` frame: its code, and the `ref` (our client message id) it answers.
    Error {
        code: Cow<'a, str>,
        reference: Option<Cow<'a, str>>,
    },
    Other,
}

#[derive(Deserialize)]
struct RawFrame<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    message: Option<RawMessage<'a>>,
    #[serde(default, borrow)]
    code: Option<Cow<'a, str>>,
    #[serde(default, rename = "ref", borrow)]
    reference: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct RawMessage<'a> {
    #[serde(default, borrow)]
    client_message_id: Option<Cow<'a, str>>,
}

/// Reads one text frame; `None` if it is not a JSON object with a `type`.
pub fn parse(text: &str) -> Option<Event<'_>> {
    let frame: RawFrame<'_> = serde_json::from_str(text).ok()?;
    Some(match frame.kind.as_ref() {
        "new_message" => Event::NewMessage {
            client_message_id: frame.message.and_then(|m| m.client_message_id),
        },
        "error" => Event::Error {
            code: frame.code.unwrap_or(Cow::Borrowed("unknown")),
            reference: frame.reference,
        },
        _ => Event::Other,
    })
}

/// What a bench client message id says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tagged {
    pub sender: u32,
    pub n: u32,
    pub sent_nanos: u64,
}

impl Tagged {
    /// Microseconds from the send to `received`, both measured from the same `epoch`.
    pub fn latency_micros(&self, epoch: std::time::Instant, received: std::time::Instant) -> u64 {
        let since_epoch = u64::try_from(received.duration_since(epoch).as_nanos()).unwrap_or(0);
        since_epoch.saturating_sub(self.sent_nanos) / 1000
    }
}

/// The client message id of message `n` of `sender`, sent `sent_nanos` after the epoch.
pub fn client_message_id(tag: &str, sender: u32, n: u32, sent_nanos: u64) -> String {
    format!("{tag}.{sender}.{n}.{sent_nanos}")
}

/// Reads a client message id made by [`client_message_id`] with the same `tag`.
pub fn parse_client_message_id(tag: &str, id: &str) -> Option<Tagged> {
    let rest = id.strip_prefix(tag)?.strip_prefix('.')?;
    let mut parts = rest.split('.');
    let tagged = Tagged {
        sender: parts.next()?.parse().ok()?,
        n: parts.next()?.parse().ok()?,
        sent_nanos: parts.next()?.parse().ok()?,
    };
    parts.next().is_none().then_some(tagged)
}

/// The id of a conversation the server created, as the frames take it.
pub fn conversation_id(id: &str) -> Result<Uuid, BenchError> {
    id.parse()
        .map_err(|_| BenchError::Setup(format!("the conversation id {id:?} is not a UUID")))
}

/// The `message` frame sending `content` to a conversation.
pub fn message_frame(conversation_id: Uuid, content: &str, client_message_id: &str) -> String {
    Command::Message(SendMessage::to_conversation(
        conversation_id,
        NewMessage::text(content).client_message_id(client_message_id),
    ))
    .to_json(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_message_id_reads_back_only_with_its_own_tag() {
        let id = client_message_id("ab12", 7, 42, 123_456_789);
        assert_eq!(
            parse_client_message_id("ab12", &id),
            Some(Tagged {
                sender: 7,
                n: 42,
                sent_nanos: 123_456_789
            })
        );
        assert_eq!(parse_client_message_id("ab1", &id), None);
        assert_eq!(parse_client_message_id("zz99", &id), None);
        assert_eq!(parse_client_message_id("ab12", "ab12.7.42"), None);
    }

    #[test]
    fn frames_are_reduced_to_what_the_bench_needs() {
        let new_message = r#"{"type":"new_message","message":{"id":"x","seq":2,"client_message_id":"t.1.2.3","content":"hi \"there\""},"timestamp":"now"}"#;
        assert_eq!(
            parse(new_message),
            Some(Event::NewMessage {
                client_message_id: Some("t.1.2.3".into())
            })
        );
        let error =
            r#"{"type":"error","code":"rate_limited","detail":"slow down","ref":"t.1.2.3"}"#;
        assert_eq!(
            parse(error),
            Some(Event::Error {
                code: "rate_limited".into(),
                reference: Some("t.1.2.3".into())
            })
        );
        assert_eq!(parse(r#"{"type":"pong"}"#), Some(Event::Other));
        assert_eq!(parse("not json"), None);
    }

    #[test]
    fn the_reduced_reading_agrees_with_chat_clients_events() {
        use chat_client::events::Event as Full;
        let new_message = r#"{"type":"new_message","seq":2,"message":{
            "id":"2ddb1a01-16be-4a0a-a049-535b0091df06","seq":2,
            "conversation_id":"c69abb94-0438-4ebb-9759-8f819aa160d5",
            "sender_id":"daced227-db43-4ad7-a3eb-1d5943fde8b9","recipient_id":null,
            "content":"Hello!","client_message_id":"t.1.2.3","is_read":false,
            "created_at":"2026-11-25T14:33:43.235835Z","updated_at":"2026-11-25T14:33:43.235835Z",
            "edited_at":null,"deleted_at":null,"deleted_by":null,"reactions":[],
            "pinned_at":null,"pinned_by":null,"reply_to":null,"mentions":[],
            "thread_root_id":null,"thread":null,"attachments":[]},
            "timestamp":"2026-11-25T14:33:43.236250Z"}"#;
        let Ok(Full::NewMessage(full)) = Full::from_json(new_message) else {
            panic!("chat-client reads a new_message");
        };
        assert_eq!(
            parse(new_message),
            Some(Event::NewMessage {
                client_message_id: full.message.client_message_id.map(Cow::Owned)
            })
        );
        let error =
            r#"{"type":"error","code":"rate_limited","detail":"slow down","ref":"t.1.2.3"}"#;
        let Ok(Full::Error(full)) = Full::from_json(error) else {
            panic!("chat-client reads an error");
        };
        assert_eq!(
            parse(error),
            Some(Event::Error {
                code: Cow::Owned(full.code),
                reference: full.reference.map(Cow::Owned)
            })
        );
    }

    #[test]
    fn a_message_frame_is_the_protocols() {
        let conversation = conversation_id("c69abb94-0438-4ebb-9759-8f819aa160d5").unwrap();
        let frame: serde_json::Value =
            serde_json::from_str(&message_frame(conversation, "hi", "t.1.2.3")).unwrap();
        assert_eq!(
            frame,
            serde_json::json!({"type": "message",
                "conversation_id": "c69abb94-0438-4ebb-9759-8f819aa160d5",
                "content": "hi", "client_message_id": "t.1.2.3"})
        );
        assert!(conversation_id("not-a-uuid").is_err());
    }
}
