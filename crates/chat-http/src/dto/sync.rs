//! The change feed as REST returns it.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::ws::protocol::ServerFrame;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SyncParams {
    /// The position to read after: 0 (the default) for everything, else the `next` of the
    /// previous page or the highest `seq` of any event or frame you applied.
    #[param(minimum = 0)]
    pub since: Option<i64>,
    /// 1–1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// A page of your change feed: every change you may see after `since`, in position order,
/// each as it now stands. Apply the events in order, then ask again from `next` while
/// `has_more`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "events": [
        {"type": "conversation_updated", "seq": 41, "change": "state",
         "conversation_id": "6f2c7d1e-3b4a-4c5d-8e9f-0a1b2c3d4e5f", "name": "team",
         "user_ids": ["0d9c8b7a-6f5e-4d3c-2b1a-0f9e8d7c6b5a",
             "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b"],
         "conversation": {"id": "6f2c7d1e-3b4a-4c5d-8e9f-0a1b2c3d4e5f", "kind": "group",
             "is_group": true, "name": "team",
             "created_by": "0d9c8b7a-6f5e-4d3c-2b1a-0f9e8d7c6b5a",
             "created_at": "2026-12-07T10:00:00Z", "updated_at": "2026-12-07T10:05:00Z",
             "participants": [{"id": "0d9c8b7a-6f5e-4d3c-2b1a-0f9e8d7c6b5a",
                 "username": "alice", "full_name": null, "avatar_url": null,
                 "role": "owner", "joined_at": "2026-12-07T10:00:00Z",
                 "last_read_seq": 40, "last_delivered_seq": 40},
                {"id": "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b",
                 "username": "bob", "full_name": null, "avatar_url": null,
                 "role": "member", "joined_at": "2026-12-07T10:00:00Z",
                 "last_read_seq": 38, "last_delivered_seq": 40}]},
         "last_read_seq": 40, "timestamp": "2026-12-07T10:05:00Z"},
        {"type": "new_message", "seq": 42,
         "message": {"id": "3a4b5c6d-7e8f-4a0b-9c1d-2e3f4a5b6c7d", "seq": 42,
             "conversation_id": "6f2c7d1e-3b4a-4c5d-8e9f-0a1b2c3d4e5f",
             "sender_id": "0d9c8b7a-6f5e-4d3c-2b1a-0f9e8d7c6b5a", "recipient_id": null,
             "content": "hello", "client_message_id": null, "is_read": true,
             "created_at": "2026-12-07T10:06:00Z", "updated_at": "2026-12-07T10:06:00Z"},
         "timestamp": "2026-12-07T10:06:00Z"},
        {"type": "message_delivered", "seq": 43,
         "conversation_id": "6f2c7d1e-3b4a-4c5d-8e9f-0a1b2c3d4e5f",
         "user_id": "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b", "last_delivered_seq": 42,
         "timestamp": "2026-12-07T10:06:01Z"}
    ],
    "next": 43,
    "has_more": false
}))]
pub struct SyncResponse {
    /// The events, each the JSON object of the WebSocket frame a live client would have
    /// received (`type`, `seq`, ...; see docs/websocket.md), in ascending `seq`.
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<ServerFrame>,
    /// The position to ask from next: the `seq` of the last event, or `since` when there
    /// was none.
    pub next: i64,
    /// Whether more events lie after `next` already.
    pub has_more: bool,
}
