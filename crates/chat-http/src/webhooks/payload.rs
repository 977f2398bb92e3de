//! The JSON body of a webhook delivery, built from what the domain read for it (see
//! docs/webhooks.md for every shape). Every body has `id` (the event id, the same for every
//! attempt: de-duplicate by it), `type`, `created_at` (when the change happened) and `data`.

use chat_domain::conversation::Conversation;
use chat_domain::message::Message;
use chat_domain::service::{EventData, Notification, Outgoing};
use serde_json::{Value, json};

/// The body to send for one delivery.
pub fn body(outgoing: &Outgoing) -> Vec<u8> {
    let delivery = &outgoing.delivery;
    let refs = &delivery.refs;
    let data = match &outgoing.data {
        EventData::Message(message) => json!({
            "conversation_id": refs.conversation_id.map(|c| c.to_string()),
            "message_id": refs.message_id.map(|m| m.to_string()),
            "user_id": refs.user_id.map(|u| u.to_string()),
            "seq": refs.seq.map(|s| s.0),
            "message": message.as_ref().map(message_json),
        }),
        EventData::Conversation(conversation) => json!({
            "conversation_id": refs.conversation_id.map(|c| c.to_string()),
            "user_id": refs.user_id.map(|u| u.to_string()),
            "seq": refs.seq.map(|s| s.0),
            "conversation": conversation.as_ref().map(conversation_json),
        }),
        EventData::Member {
            conversation_id,
            user_id,
        } => json!({
            "conversation_id": conversation_id.map(|c| c.to_string()),
            "user_id": user_id.map(|u| u.to_string()),
            "seq": refs.seq.map(|s| s.0),
        }),
        EventData::Report { report_id } => json!({ "report_id": report_id }),
        EventData::Notification(notification) => notification_json(notification),
    };
    let body = json!({
        "id": delivery.event_id,
        "type": delivery.kind.as_str(),
        "created_at": delivery.created_at,
        "data": data,
    });
    // A `Value` always serializes.
    serde_json::to_vec(&body).unwrap_or_default()
}

fn message_json(m: &Message) -> Value {
    json!({
        "id": m.id.to_string(),
        "seq": m.seq.0,
        "conversation_id": m.conversation_id.to_string(),
        "sender_id": m.sender_id.to_string(),
        "content": m.content.as_ref().map(|c| c.as_str()),
        "created_at": m.created_at,
        "updated_at": m.updated_at,
        "edited_at": m.edited_at,
        "deleted_at": m.deletion.as_ref().map(|d| d.at),
        "deleted_by": m.deletion.as_ref().map(|d| d.by.to_string()),
        "reply_to_id": m.reply_to.as_ref().map(|r| r.id.to_string()),
        "thread_root_id": m.thread_root_id.map(|r| r.to_string()),
        "mentions": m.mentions.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "attachment_ids": m.attachments.iter().map(|a| a.id.to_string()).collect::<Vec<_>>(),
    })
}

fn conversation_json(c: &Conversation) -> Value {
    json!({
        "id": c.id.to_string(),
        "kind": c.kind.as_str(),
        "name": c.name.as_ref().map(|n| n.as_str()),
        "created_by": c.created_by.to_string(),
        "created_at": c.created_at,
        "updated_at": c.updated_at,
    })
}

/// What a push gateway needs, and no content (see the privacy note in docs/webhooks.md).
fn notification_json(n: &Notification) -> Value {
    json!({
        "recipient_id": n.recipient_id.to_string(),
        "conversation_id": n.conversation_id.to_string(),
        "conversation_kind": n.kind.as_str(),
        "conversation_name": n.conversation_name,
        "message_id": n.message_id.to_string(),
        "sender_id": n.sender_id.to_string(),
        "sender_name": n.sender_name,
        "count": n.count,
        "unread_count": n.unread_in_conversation,
        "badge": n.unread_total,
    })
}
