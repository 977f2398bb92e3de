//! What the API answers, and the few request bodies with more than a couple of fields, as
//! Rust types. Fields the server adds later are ignored, so an older client keeps working
//! against a newer server; lists the server may leave out read as empty.
//!
//! These mirror the HTTP layer's JSON (chat-http's `dto` module), not its Rust types: that
//! crate is the server's, and a client must not pull in actix and the domain to read JSON.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Your own account, with your email address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    pub id: Uuid,
    pub username: String,
    pub email: String,
    pub full_name: Option<String>,
    pub avatar_url: Option<String>,
    pub bio: Option<String>,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Another user's public profile (no email address).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: Uuid,
    pub username: String,
    pub full_name: Option<String>,
    pub avatar_url: Option<String>,
    pub bio: Option<String>,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
}

/// The answer to a login or a refresh.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Tokens {
    pub access_token: String,
    pub expires_in: i64,
    pub refresh_token: String,
    pub session_id: Uuid,
}

/// A new account, for [`Client::signup`](crate::Client::signup).
#[derive(Clone, Default, Serialize)]
pub struct Signup {
    /// 3 to 32 of `A-Z a-z 0-9 _ . -`.
    pub username: String,
    pub email: String,
    pub password: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_name: Option<String>,
}

/// Changes to your profile, for [`Client::update_me`](crate::Client::update_me). Fields left
/// `None` stay as they are; an empty `avatar_url` removes the avatar.
#[derive(Clone, Default, Serialize)]
pub struct ProfileChanges {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_name: Option<String>,
    /// An `http(s)://` URL, or empty to remove the avatar.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub avatar_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bio: Option<String>,
    /// A new password; needs `current_password`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_password: Option<String>,
}

// Passwords are credentials: never in a log line.
impl std::fmt::Debug for Signup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signup")
            .field("username", &self.username)
            .field("email", &self.email)
            .field("full_name", &self.full_name)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ProfileChanges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProfileChanges")
            .field("email", &self.email)
            .field("full_name", &self.full_name)
            .field("avatar_url", &self.avatar_url)
            .field("bio", &self.bio)
            .field("password", &self.password.as_ref().map(|_| ".."))
            .finish_non_exhaustive()
    }
}

/// One of your login sessions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    pub id: Uuid,
    /// The device name given at login.
    pub device: Option<String>,
    pub client_address: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    /// Whether it is the session making this request.
    pub current: bool,
}

/// A member of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    pub id: Uuid,
    pub username: String,
    pub full_name: Option<String>,
    pub avatar_url: Option<String>,
    /// `owner`, `admin` or `member`.
    pub role: String,
    pub joined_at: DateTime<Utc>,
    pub last_read_seq: i64,
    pub last_delivered_seq: i64,
}

/// A direct conversation or a group, with its members and your settings for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    pub id: Uuid,
    /// `direct` or `group`.
    pub kind: String,
    pub is_group: bool,
    pub name: Option<String>,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default)]
    pub participants: Vec<Participant>,
    /// Notifications are muted until then (your setting).
    #[serde(default)]
    pub muted_until: Option<DateTime<Utc>>,
    /// Whether you archived it (your setting).
    #[serde(default)]
    pub archived: bool,
}

/// A conversation as the inbox lists it: with its last message and your unread counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationSummary {
    #[serde(flatten)]
    pub conversation: Conversation,
    pub last_message: Option<Message>,
    pub unread_count: u64,
    pub unread_mentions: u64,
    pub last_activity_at: DateTime<Utc>,
}

/// A new conversation, for [`Client::create_conversation`](crate::Client::create_conversation).
/// One other participant and no name makes (or finds) the direct conversation with them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NewConversation {
    pub participant_ids: Vec<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_group: Option<bool>,
}

impl NewConversation {
    /// The direct conversation with `user`.
    pub fn direct(user: Uuid) -> Self {
        Self {
            participant_ids: vec![user],
            ..Self::default()
        }
    }

    /// A group named `name` with `members` (besides you).
    pub fn group(name: impl Into<String>, members: Vec<Uuid>) -> Self {
        Self {
            participant_ids: members,
            name: Some(name.into()),
            is_group: Some(true),
        }
    }
}

/// The inbox's filters and page, for [`Client::list_conversations`](crate::Client::list_conversations).
#[derive(Debug, Clone, Default, Serialize)]
pub struct InboxQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u32>,
    /// `Some(false)`: the inbox proper; `Some(true)`: the archive; `None`: both.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archived: Option<bool>,
}

/// A message to send: the body of [`Client::send_message`](crate::Client::send_message), and
/// of a [`SendMessage`](crate::events::SendMessage) over the live connection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NewMessage {
    pub content: String,
    /// Your id for it: sending twice with the same id stores it once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_message_id: Option<String>,
    /// A message of the conversation this one answers (quoted inline).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_to_id: Option<Uuid>,
    /// The thread this message goes into (the thread's first message).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread_root_id: Option<Uuid>,
    /// Files uploaded with [`Client::upload`](crate::Client::upload).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attachment_ids: Option<Vec<Uuid>>,
}

impl NewMessage {
    /// A plain message.
    pub fn text(content: impl Into<String>) -> Self {
        Self {
            content: content.into(),
            ..Self::default()
        }
    }

    /// With your id for it, so that a retry is not stored twice.
    pub fn client_message_id(mut self, id: impl Into<String>) -> Self {
        self.client_message_id = Some(id.into());
        self
    }

    /// As an answer to `message`.
    pub fn reply_to(mut self, message: Uuid) -> Self {
        self.reply_to_id = Some(message);
        self
    }

    /// Into the thread that `root` starts.
    pub fn in_thread(mut self, root: Uuid) -> Self {
        self.thread_root_id = Some(root);
        self
    }

    /// With these uploaded files.
    pub fn attachments(mut self, ids: Vec<Uuid>) -> Self {
        self.attachment_ids = Some(ids);
        self
    }
}

impl From<&str> for NewMessage {
    fn from(content: &str) -> Self {
        Self::text(content)
    }
}

impl From<String> for NewMessage {
    fn from(content: String) -> Self {
        Self::text(content)
    }
}

/// Which page of a conversation's history (or a thread's replies) to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HistoryCursor {
    /// The newest messages.
    #[default]
    Latest,
    /// Messages older than this `seq` (the next page back: the oldest `seq` you have).
    Before(i64),
    /// Messages newer than this `seq` (catching up: the newest `seq` you have).
    After(i64),
}

/// A message. A deleted one keeps its place with `content: None` and `deleted_at` set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub id: Uuid,
    /// Its place in the conversation: increasing, the history's cursor.
    pub seq: i64,
    pub conversation_id: Uuid,
    pub sender_id: Uuid,
    pub recipient_id: Option<Uuid>,
    pub content: Option<String>,
    pub client_message_id: Option<String>,
    pub is_read: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default)]
    pub edited_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub deleted_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub deleted_by: Option<Uuid>,
    #[serde(default)]
    pub reactions: Vec<Reaction>,
    #[serde(default)]
    pub pinned_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub pinned_by: Option<Uuid>,
    #[serde(default)]
    pub reply_to: Option<ReplyTo>,
    /// The users it mentions (`@all` expands to every member).
    #[serde(default)]
    pub mentions: Vec<Uuid>,
    /// The thread it is a reply in.
    #[serde(default)]
    pub thread_root_id: Option<Uuid>,
    /// On a thread's first message: the thread's summary.
    #[serde(default)]
    pub thread: Option<ThreadSummary>,
    #[serde(default)]
    pub attachments: Vec<Attachment>,
}

/// One emoji's reactions on a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reaction {
    pub emoji: String,
    pub count: usize,
    /// Whether you are one of those who reacted.
    pub me: bool,
}

/// The message a reply answers, as quoted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyTo {
    pub id: Uuid,
    pub sender_id: Uuid,
    /// The start of its text; `None` once it is deleted.
    pub snippet: Option<String>,
}

/// A thread's summary, on its first message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadSummary {
    pub reply_count: u64,
    pub last_reply_at: DateTime<Utc>,
    pub last_reply_seq: i64,
    pub participant_ids: Vec<Uuid>,
}

/// Who deletes a message for whom, for [`Client::delete_message`](crate::Client::delete_message)
/// and the live connection's `delete_message`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeleteScope {
    /// For everyone (your own message, or as a group admin): it becomes a tombstone.
    #[default]
    Everyone,
    /// Hidden from your own history only.
    Me,
}

/// An uploaded file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub id: Uuid,
    pub name: String,
    pub size: u64,
    /// Read from the bytes by the server.
    pub content_type: String,
    pub sha256: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// The thumbnail's path, for an image larger than a thumbnail.
    pub thumbnail_url: Option<String>,
}

/// A downloaded file (or thumbnail): its bytes and what the server says they are. Its name
/// is the [`Attachment`]'s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Download {
    pub bytes: Vec<u8>,
    pub content_type: Option<String>,
}

/// Your read position after [`Client::mark_read`](crate::Client::mark_read).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadReceipt {
    pub message_id: Uuid,
    pub conversation_id: Uuid,
    pub user_id: Uuid,
    pub last_read_seq: i64,
    pub read_at: DateTime<Utc>,
    /// The change's place in your feed (absent when nothing moved).
    #[serde(default)]
    pub seq: Option<i64>,
}

/// Your read marker after [`Client::set_read_marker`](crate::Client::set_read_marker), with
/// what is left unread.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadMarker {
    pub conversation_id: Uuid,
    pub user_id: Uuid,
    pub last_read_seq: i64,
    pub message_id: Option<Uuid>,
    pub read_at: DateTime<Utc>,
    pub seq: i64,
    pub unread_count: u64,
    pub unread_mentions: u64,
}

/// Your settings for a conversation, to change with
/// [`Client::update_settings`](crate::Client::update_settings). Fields left `None` stay.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SettingsChange {
    /// `Some(Some(t))`: mute until `t`; `Some(None)`: unmute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub muted_until: Option<Option<DateTime<Utc>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archived: Option<bool>,
}

/// Your settings for a conversation as they now are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationSettings {
    pub conversation_id: Uuid,
    pub muted_until: Option<DateTime<Utc>>,
    pub archived: bool,
    pub seq: i64,
}

/// What you have not read, in total and per conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnreadCounts {
    pub unread_count: u64,
    pub unread_mentions: u64,
    #[serde(default)]
    pub conversations: Vec<ConversationUnread>,
}

/// One conversation's unread counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationUnread {
    pub conversation_id: Uuid,
    pub unread_count: u64,
    pub unread_mentions: u64,
    pub muted: bool,
}

/// A message search, for [`Client::search_messages`](crate::Client::search_messages).
#[derive(Debug, Clone, Default, Serialize)]
pub struct SearchQuery {
    /// Words, `"phrases"` and `prefix*`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender_id: Option<Uuid>,
    /// Only messages with a `seq` below this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<i64>,
    /// Only messages with a `seq` above this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<i64>,
    /// `relevance` or `recent`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sort: Option<String>,
    /// The previous page's `next_cursor`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

impl SearchQuery {
    /// Messages matching `q` in every conversation you are in.
    pub fn text(q: impl Into<String>) -> Self {
        Self {
            q: Some(q.into()),
            ..Self::default()
        }
    }
}

/// A page of search results; `next_cursor` is `None` on the last page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchPage {
    pub hits: Vec<SearchHit>,
    pub next_cursor: Option<String>,
}

/// A message that matched, with the matching snippet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchHit {
    pub message: Message,
    pub snippet: String,
    /// Byte ranges `[start, end)` of the snippet that matched.
    pub highlights: Vec<[usize; 2]>,
}

/// A page of your change feed; ask again from `next` while `has_more`.
#[derive(Debug, Clone, Deserialize)]
pub struct SyncPage {
    /// The changes, as the WebSocket gateway would have sent them.
    pub events: Vec<crate::events::Event>,
    /// The `since` of the next page.
    pub next: i64,
    pub has_more: bool,
}

/// A user you blocked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockedUser {
    pub user: User,
    pub blocked_at: DateTime<Utc>,
}

/// Whether a user is online.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    pub user_id: Uuid,
    /// `online`, `away` or `offline`.
    pub status: String,
    /// When last online; `None` if they hide it or were never seen.
    pub last_seen_at: Option<DateTime<Utc>>,
}

/// Your presence privacy setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresencePrivacy {
    /// Others see you online or offline, never when you were last seen.
    pub hide_last_seen: bool,
}

/// A report of a message or a user to the server admins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub id: Uuid,
    pub reporter_id: Uuid,
    pub message_id: Option<Uuid>,
    /// The user reported (the message's sender, for a message).
    pub user_id: Uuid,
    pub reason: String,
    /// `open` or `resolved`.
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<Uuid>,
    pub note: Option<String>,
}

/// What a report is about, for [`Client::report`](crate::Client::report).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportSubject {
    Message(Uuid),
    User(Uuid),
}

/// A page of accounts for the server admins; `next_cursor` is `None` on the last page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminUserPage {
    pub users: Vec<Me>,
    pub next_cursor: Option<String>,
}

/// An entry of the admins' audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Increasing: the next page is `before` the smallest id you have.
    pub id: i64,
    pub actor_id: Option<Uuid>,
    pub action: String,
    pub target: String,
    pub detail: String,
    pub at: DateTime<Utc>,
}

/// A webhook the server posts events to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    pub id: Uuid,
    pub url: String,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

/// A webhook delivery that failed every attempt (or was replayed and is pending again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub id: i64,
    pub webhook_id: Uuid,
    pub event_id: Uuid,
    pub event_type: String,
    /// `dead` or `pending`.
    pub state: String,
    pub attempts: u32,
    pub first_attempt_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The dead-letter list's filters and page.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeadLetterQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_id: Option<Uuid>,
    /// Only ids below this (the next page).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// The server's health, from `/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// `ok`, `degraded` or `unavailable`.
    pub status: String,
    pub database: String,
    /// On a node of a cluster: `ok` or `down`.
    #[serde(default)]
    pub bus: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    pub version: String,
    pub connections: usize,
    pub pending_connections: usize,
}

impl Health {
    /// Whether the server answered 200 (`ok`), rather than 503.
    pub fn is_ok(&self) -> bool {
        self.status == "ok"
    }
}
