//! Conversations: creating and listing them, their members, and your own state in each
//! (read marker, mute and archive settings).

use reqwest::Method;
use serde_json::json;
use uuid::Uuid;

use crate::types::{
    Conversation, ConversationSettings, ConversationSummary, InboxQuery, NewConversation,
    ReadMarker, SettingsChange,
};
use crate::{Client, Error};

impl Client {
    /// Starts a group, or the direct conversation with one user (answering the existing one
    /// if the pair already has it). Fails with `404` when a participant does not exist and
    /// `403 blocked` when one blocked you.
    pub async fn create_conversation(
        &self,
        conversation: &NewConversation,
    ) -> Result<Conversation, Error> {
        self.call(Method::POST, "api/v1/conversations", Some(conversation))
            .await
    }

    /// Your conversations, most recent activity first, with unread counts.
    pub async fn list_conversations(
        &self,
        query: &InboxQuery,
    ) -> Result<Vec<ConversationSummary>, Error> {
        self.get_query("api/v1/conversations", query).await
    }

    /// A conversation you are in. Fails with `404` when there is none or you are not in it.
    pub async fn conversation(&self, conversation_id: Uuid) -> Result<Conversation, Error> {
        self.get(&format!("api/v1/conversations/{conversation_id}"))
            .await
    }

    /// Renames a group (owner or admin).
    pub async fn rename_conversation(
        &self,
        conversation_id: Uuid,
        name: &str,
    ) -> Result<Conversation, Error> {
        self.call(
            Method::PUT,
            &format!("api/v1/conversations/{conversation_id}"),
            Some(&json!({ "name": name })),
        )
        .await
    }

    /// Adds members to a group (owner or admin); answers the group with its members.
    pub async fn add_members(
        &self,
        conversation_id: Uuid,
        user_ids: &[Uuid],
    ) -> Result<Conversation, Error> {
        self.call(
            Method::POST,
            &format!("api/v1/conversations/{conversation_id}/members"),
            Some(&json!({ "user_ids": user_ids })),
        )
        .await
    }

    /// Removes a member (owner or admin), or leaves the group when `user_id` is you.
    pub async fn remove_member(&self, conversation_id: Uuid, user_id: Uuid) -> Result<(), Error> {
        let path = format!("api/v1/conversations/{conversation_id}/members/{user_id}");
        self.call_empty(Method::DELETE, &path, None::<&()>).await
    }

    /// Leaves a group.
    pub async fn leave_conversation(&self, conversation_id: Uuid) -> Result<(), Error> {
        let me = self.me().await?;
        self.remove_member(conversation_id, me.id).await
    }

    /// Changes a member's role (`member`, `admin`, or `owner` to hand ownership over; owner
    /// only).
    pub async fn set_member_role(
        &self,
        conversation_id: Uuid,
        user_id: Uuid,
        role: &str,
    ) -> Result<Conversation, Error> {
        self.call(
            Method::PUT,
            &format!("api/v1/conversations/{conversation_id}/members/{user_id}"),
            Some(&json!({ "role": role })),
        )
        .await
    }

    /// Moves your read marker to `last_read_seq` (it may move back: "mark as unread");
    /// answers what is left unread.
    pub async fn set_read_marker(
        &self,
        conversation_id: Uuid,
        last_read_seq: i64,
    ) -> Result<ReadMarker, Error> {
        self.call(
            Method::PUT,
            &format!("api/v1/conversations/{conversation_id}/read"),
            Some(&json!({ "last_read_seq": last_read_seq })),
        )
        .await
    }

    /// Changes your settings for a conversation (mute, archive).
    pub async fn update_settings(
        &self,
        conversation_id: Uuid,
        change: &SettingsChange,
    ) -> Result<ConversationSettings, Error> {
        self.call(
            Method::PUT,
            &format!("api/v1/conversations/{conversation_id}/settings"),
            Some(change),
        )
        .await
    }
}
