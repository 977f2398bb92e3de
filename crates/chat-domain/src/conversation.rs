//! Conversations, their members and the members' roles.

use chrono::{DateTime, Utc};

use crate::message::{Message, MessageView, Seq};
use crate::read_state::MemberSettings;
use crate::user::PublicProfile;
use crate::validation::{FieldError, allowed_in_line};
use crate::{ConversationId, UserId};

/// The largest group the server carries.
pub const MAX_GROUP_MEMBERS: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConversationKind {
    /// Exactly two members, and at most one such conversation per pair of users.
    Direct,
    /// A named conversation of 1..=[`MAX_GROUP_MEMBERS`] members with roles.
    Group,
}

impl ConversationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ConversationKind::Direct => "direct",
            ConversationKind::Group => "group",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "direct" => Some(Self::Direct),
            "group" => Some(Self::Group),
            _ => None,
        }
    }
}

/// A member's standing in a group. Both members of a direct conversation are plain members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Member,
    Admin,
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "owner" => Some(Self::Owner),
            "admin" => Some(Self::Admin),
            "member" => Some(Self::Member),
            _ => None,
        }
    }

    /// Owners and admins manage a group: rename it, add and remove members.
    pub fn can_manage(self) -> bool {
        self >= Role::Admin
    }
}

/// A group's display name: 1–100 characters after trimming, on one line, without control or
/// text-direction characters (see [`allowed_in_line`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationName(String);

impl ConversationName {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let name = Self::parse_stored(raw)?;
        if !name.0.chars().all(allowed_in_line) {
            return Err(FieldError::new(
                "name",
                "must be one line without control or text-direction characters",
            ));
        }
        Ok(name)
    }

    /// A name read back from storage: the rules of [`ConversationName::parse`] but the one on
    /// text-direction characters, which came later, so that names stored before it still
    /// read. Never for input.
    pub fn parse_stored(raw: &str) -> Result<Self, FieldError> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(FieldError::new("name", "must not be empty"));
        }
        if name.chars().count() > Self::MAX_CHARS {
            return Err(FieldError::new(
                "name",
                format!("must be at most {} characters long", Self::MAX_CHARS),
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(FieldError::new(
                "name",
                "must not contain control characters",
            ));
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    pub id: ConversationId,
    pub kind: ConversationKind,
    /// Always set for a group, never for a direct conversation.
    pub name: Option<ConversationName>,
    pub created_by: UserId,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One user's membership of one conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub user_id: UserId,
    pub role: Role,
    pub joined_at: DateTime<Utc>,
    /// The member's read marker: every message with `seq <= last_read_seq` is read.
    pub last_read_seq: Seq,
    /// The member's delivered marker as recorded; see
    /// [`Delivered`](crate::read_state::Delivered) for how it is shown.
    pub last_delivered_seq: Seq,
}

/// A member together with their public profile (never their email), for conversation details.
#[derive(Debug, Clone)]
pub struct Participant {
    pub user: PublicProfile,
    pub role: Role,
    pub joined_at: DateTime<Utc>,
    /// The member's read marker.
    pub last_read_seq: Seq,
    /// How far the member's messages count as delivered, as
    /// [`delivered_up_to`](crate::read_state::delivered_up_to) shows it: never below
    /// `last_read_seq`.
    pub last_delivered_seq: Seq,
}

/// A conversation as its member sees it in full.
#[derive(Debug, Clone)]
pub struct ConversationDetails {
    pub conversation: Conversation,
    pub participants: Vec<Participant>,
    /// The caller's own settings (mute, archive); the defaults where no caller reads it.
    pub settings: MemberSettings,
}

/// A conversation as it appears in a member's inbox.
#[derive(Debug, Clone)]
pub struct ConversationSummary {
    pub conversation: Conversation,
    pub participants: Vec<Participant>,
    /// The newest message, seen from the caller's side.
    pub last_message: Option<MessageView>,
    pub unread_count: u64,
    /// How many of the unread messages mention the caller.
    pub unread_mentions: u64,
    pub last_activity_at: DateTime<Utc>,
    /// The caller's own settings (mute, archive).
    pub settings: MemberSettings,
}

/// One row of the inbox as a store returns it, before participants are attached.
#[derive(Debug, Clone)]
pub struct InboxEntry {
    pub conversation: Conversation,
    pub last_message: Option<Message>,
    pub unread_count: u64,
    /// How many of those unread messages mention the user (see
    /// [`crate::ports::ReadReceiptStore::unread_mentions`]).
    pub unread_mentions: u64,
    pub last_activity_at: DateTime<Utc>,
    /// The user's own settings, `archived` as it stands at the filter's `now`.
    pub settings: MemberSettings,
}

/// Which of a user's conversations an inbox lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InboxFilter {
    /// `Some(true)`: only the archived ones; `Some(false)`: only the others; `None`: all.
    pub archived: Option<bool>,
    /// The time mutes are judged at (a muted archive holds, see [`MemberSettings`]).
    pub now: DateTime<Utc>,
}

impl InboxFilter {
    /// Every conversation, whatever its settings.
    pub fn all(now: DateTime<Utc>) -> Self {
        Self {
            archived: None,
            now,
        }
    }
}

/// What to create: the conversation and its first members.
#[derive(Debug, Clone)]
pub struct NewConversation {
    pub conversation: Conversation,
    pub members: Vec<(UserId, Role)>,
}

/// What changed about a conversation, as announced to its members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConversationChange {
    Created,
    Renamed { name: ConversationName },
    MembersAdded { user_ids: Vec<UserId> },
    MemberRemoved { user_id: UserId },
    RoleChanged { user_id: UserId, role: Role },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_owners_and_admins_manage_a_group() {
        assert!(Role::Owner.can_manage());
        assert!(Role::Admin.can_manage());
        assert!(!Role::Member.can_manage());
    }

    #[test]
    fn group_names_are_trimmed_and_bounded() {
        assert_eq!(ConversationName::parse("  team ").unwrap().as_str(), "team");
        assert!(ConversationName::parse("   ").is_err());
        assert!(ConversationName::parse(&"n".repeat(101)).is_err());
    }

    #[test]
    fn group_names_are_one_line_without_text_direction_controls() {
        for bad in [
            "a\nb",
            "a\tb",
            "a\u{0}b",
            "\u{1b}[31mteam",
            "team \u{202E}gnp.exe",
            "a\u{2066}b",
        ] {
            assert_eq!(
                ConversationName::parse(bad).unwrap_err().field,
                "name",
                "{bad:?}"
            );
        }
        assert_eq!(
            ConversationName::parse("צוות 1").unwrap().as_str(),
            "צוות 1"
        );
        // Names stored before the rule still read.
        assert!(ConversationName::parse_stored("team \u{202E}gnp").is_ok());
    }
}
