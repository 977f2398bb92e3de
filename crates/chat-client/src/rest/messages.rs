//! Messages: sending, history and threads, editing and deleting, read receipts and unread
//! counts, reactions, pins, search, and the change feed.

use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use super::segment;
use crate::types::{
    DeleteScope, HistoryCursor, Message, NewMessage, ReadReceipt, SearchPage, SearchQuery,
    SyncPage, UnreadCounts,
};
use crate::{Client, Error};

/// The query of a history page: `limit` and at most one of `before` / `after`.
#[derive(Serialize)]
struct Page {
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    before: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    after: Option<i64>,
}

impl Page {
    fn new(cursor: HistoryCursor, limit: Option<u32>) -> Self {
        let (before, after) = match cursor {
            HistoryCursor::Latest => (None, None),
            HistoryCursor::Before(seq) => (Some(seq), None),
            HistoryCursor::After(seq) => (None, Some(seq)),
        };
        Self {
            limit,
            before,
            after,
        }
    }
}

impl Client {
    /// Sends a message. With a `client_message_id` already used in this conversation it
    /// answers the stored message and stores nothing (the same id with other content is
    /// `409 idempotency_conflict`), so a send may be retried safely.
    pub async fn send_message(
        &self,
        conversation_id: Uuid,
        message: &NewMessage,
    ) -> Result<Message, Error> {
        self.call(
            Method::POST,
            &format!("api/v1/conversations/{conversation_id}/messages"),
            Some(message),
        )
        .await
    }

    /// A page of a conversation's history, ascending by `seq`: the latest `limit` messages,
    /// or those before or after a `seq`. Page back with `HistoryCursor::Before(oldest.seq)`
    /// until a page is empty. Thread replies are not in it (see [`Client::thread`]).
    pub async fn messages(
        &self,
        conversation_id: Uuid,
        cursor: HistoryCursor,
        limit: Option<u32>,
    ) -> Result<Vec<Message>, Error> {
        self.get_query(
            &format!("api/v1/conversations/{conversation_id}/messages"),
            &Page::new(cursor, limit),
        )
        .await
    }

    /// A page of the replies in the thread that `root_id` starts, ascending by `seq`, paged
    /// as [`Client::messages`] is.
    pub async fn thread(
        &self,
        root_id: Uuid,
        cursor: HistoryCursor,
        limit: Option<u32>,
    ) -> Result<Vec<Message>, Error> {
        self.get_query(
            &format!("api/v1/messages/{root_id}/thread"),
            &Page::new(cursor, limit),
        )
        .await
    }

    /// Replaces the content of a message you sent.
    pub async fn edit_message(&self, message_id: Uuid, content: &str) -> Result<Message, Error> {
        self.call(
            Method::PATCH,
            &format!("api/v1/messages/{message_id}"),
            Some(&json!({ "content": content })),
        )
        .await
    }

    /// Deletes a message for everyone (answering its tombstone) or hides it from your own
    /// history (answering `None`). Deleting again changes nothing.
    pub async fn delete_message(
        &self,
        message_id: Uuid,
        scope: DeleteScope,
    ) -> Result<Option<Message>, Error> {
        let response = self
            .authorized_with(
                Method::DELETE,
                &format!("api/v1/messages/{message_id}"),
                |request| request.query(&[("scope", scope)]),
            )
            .await?;
        if response.status() == StatusCode::NO_CONTENT {
            return Ok(None);
        }
        crate::client::decode(response).await.map(Some)
    }

    /// Marks a message, and every earlier one of its conversation, read. Idempotent.
    pub async fn mark_read(&self, message_id: Uuid) -> Result<ReadReceipt, Error> {
        self.call(
            Method::PUT,
            &format!("api/v1/messages/{message_id}/read"),
            None::<&()>,
        )
        .await
    }

    /// Your unread messages, in total and per conversation.
    pub async fn unread_counts(&self) -> Result<UnreadCounts, Error> {
        self.get("api/v1/messages/unread/count").await
    }

    /// Reacts to a message with one emoji; answers the message with its reactions.
    /// Idempotent. Fails with `422` when `emoji` is not exactly one emoji.
    pub async fn add_reaction(&self, message_id: Uuid, emoji: &str) -> Result<Message, Error> {
        let path = format!("api/v1/messages/{message_id}/reactions/{}", segment(emoji));
        self.call(Method::PUT, &path, None::<&()>).await
    }

    /// Takes back your reaction with `emoji`. Idempotent.
    pub async fn remove_reaction(&self, message_id: Uuid, emoji: &str) -> Result<Message, Error> {
        let path = format!("api/v1/messages/{message_id}/reactions/{}", segment(emoji));
        self.call(Method::DELETE, &path, None::<&()>).await
    }

    /// The pinned messages of a conversation, the latest pin first.
    pub async fn pins(&self, conversation_id: Uuid) -> Result<Vec<Message>, Error> {
        self.get(&format!("api/v1/conversations/{conversation_id}/pins"))
            .await
    }

    /// Pins a message for every member (in a group: owners and admins). Idempotent.
    pub async fn pin_message(
        &self,
        conversation_id: Uuid,
        message_id: Uuid,
    ) -> Result<Message, Error> {
        let path = format!("api/v1/conversations/{conversation_id}/pins/{message_id}");
        self.call(Method::PUT, &path, None::<&()>).await
    }

    /// Unpins a message. Idempotent.
    pub async fn unpin_message(
        &self,
        conversation_id: Uuid,
        message_id: Uuid,
    ) -> Result<Message, Error> {
        let path = format!("api/v1/conversations/{conversation_id}/pins/{message_id}");
        self.call(Method::DELETE, &path, None::<&()>).await
    }

    /// Searches the messages of your conversations. Ask for the next page with the
    /// answer's `next_cursor` in `query.cursor`.
    pub async fn search_messages(&self, query: &SearchQuery) -> Result<SearchPage, Error> {
        self.get_query("api/v1/search/messages", query).await
    }

    /// Your change feed after position `since` (0: from the start), at most `limit`
    /// events: what a client that was offline applies to catch up.
    pub async fn sync(&self, since: i64, limit: Option<u32>) -> Result<SyncPage, Error> {
        #[derive(Serialize)]
        struct Query {
            since: i64,
            #[serde(skip_serializing_if = "Option::is_none")]
            limit: Option<u32>,
        }
        self.get_query("api/v1/sync", &Query { since, limit }).await
    }
}
