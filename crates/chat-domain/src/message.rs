//! Messages and the server-wide sequence that orders them.

use chrono::{DateTime, Utc};

use crate::mention::MentionCandidates;
use crate::validation::{FieldError, allowed_in_text};
use crate::{ConversationId, MessageId, UserId};

/// A message's position in the one ordering of every message stored on this server. It only
/// grows, so "everything after N" is a complete and exact catch-up query. `Seq(0)` is
/// "before the first message".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Seq(pub i64);

impl Seq {
    pub const ZERO: Seq = Seq(0);
}

/// A message's text: 1..=4000 characters after trimming surrounding whitespace, with no
/// control characters but newline and tab (see [`allowed_in_text`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageContent(String);

impl MessageContent {
    pub const MAX_CHARS: usize = 4000;

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let content = Self::parse_stored(raw)?;
        if !content.0.chars().all(allowed_in_text) {
            return Err(FieldError::new(
                "content",
                "must not contain control characters other than newline and tab",
            ));
        }
        Ok(content)
    }

    /// Content read back from storage: the rules of [`MessageContent::parse`] but the one on
    /// control characters, which came later, so that messages stored before it still read.
    /// Never for input.
    pub fn parse_stored(raw: &str) -> Result<Self, FieldError> {
        let text = raw.trim();
        if text.is_empty() {
            return Err(FieldError::new("content", "must not be empty"));
        }
        if text.chars().count() > Self::MAX_CHARS {
            return Err(FieldError::new(
                "content",
                format!("must be at most {} characters long", Self::MAX_CHARS),
            ));
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The sender's own id for a message, which makes a retried send safe: the same sender
/// sending the same id again gets the stored message back instead of a duplicate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientMessageId(String);

impl ClientMessageId {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        if raw.is_empty() || raw.chars().count() > Self::MAX_CHARS {
            return Err(FieldError::new(
                "client_message_id",
                format!("must be 1-{} characters long", Self::MAX_CHARS),
            ));
        }
        if raw.chars().any(char::is_control) {
            return Err(FieldError::new(
                "client_message_id",
                "must not contain control characters",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: MessageId,
    pub seq: Seq,
    pub conversation_id: ConversationId,
    pub sender_id: UserId,
    /// `None` once the message is deleted for everyone: its content is purged from storage
    /// and never comes back.
    pub content: Option<MessageContent>,
    pub client_message_id: Option<ClientMessageId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    // What happened to the message after it was sent: edits and deletes.
    /// When its sender last changed its content; `None` if never edited.
    pub edited_at: Option<DateTime<Utc>>,
    /// Set once the message is deleted for everyone (a tombstone).
    pub deletion: Option<Deletion>,
    /// The seq of the message's latest change (edit, delete, ...), taken from the counter
    /// new messages take theirs from; `None` if it never changed.
    pub change_seq: Option<Seq>,
    /// The reactions, one entry per emoji, in the order each emoji was first used.
    pub reactions: Vec<Reaction>,
    /// Whether, since when and by whom the message is pinned in its conversation.
    pub pin: Option<Pin>,
    /// The message this one replies to, as that message now stands. Boxed: most messages
    /// are no reply, and a message is moved often enough that its size counts.
    pub reply_to: Option<Box<ReplyTo>>,
    /// The root of the thread this message is a reply in; `None` for a message of the
    /// conversation's main history. A thread reply stays one when deleted for everyone.
    pub thread_root_id: Option<MessageId>,
    /// For a thread's root: its replies so far; `None` while it has none. Boxed as
    /// [`Self::reply_to`] is.
    pub thread: Option<Box<ThreadSummary>>,
    /// The members the content mentions (see [`crate::mention`]), ascending by user id,
    /// decided when the content was stored (sent or edited); empty once deleted.
    pub mentions: Vec<UserId>,
    /// The files sent with the message, in the order the sender listed them; empty once
    /// deleted for everyone.
    pub attachments: Vec<crate::attachment::Attachment>,
}

impl Message {
    /// The thread root that a change to this reply must give a new place in the change feed,
    /// if any: for an edit whose content now mentions `mentioned`, or (with none) a delete or
    /// a hiding, when that changes whom the reply shows as mentioned. A reply's sender and the
    /// members it mentioned when it was sent follow its thread; a client that first learns of
    /// the reply after such a change cannot tell whom it mentioned then, so the root, replayed
    /// after the change, brings its summary as it stands (docs/websocket.md, "Threads").
    pub fn restates_root(&self, mentioned: &[UserId]) -> Option<MessageId> {
        self.thread_root_id
            .filter(|_| self.mentions.as_slice() != mentioned)
    }

    pub fn is_deleted(&self) -> bool {
        self.deletion.is_some()
    }

    /// The content's text; `None` once deleted.
    pub fn text(&self) -> Option<&str> {
        self.content.as_ref().map(MessageContent::as_str)
    }
}

/// What a reply shows of the message it replies to. Only the original's id is stored with
/// the reply; the sender and the snippet are read from the original whenever the reply is
/// read, so an edit of the original shows in its replies and a delete purges the quote too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyTo {
    pub id: MessageId,
    pub sender_id: UserId,
    /// The start of the original's content (at most [`ReplyTo::SNIPPET_CHARS`] characters);
    /// `None` once the original is deleted for everyone.
    pub snippet: Option<String>,
}

impl ReplyTo {
    /// The most characters of the original a snippet shows.
    pub const SNIPPET_CHARS: usize = 100;

    /// What a reply shows of `original`, as it now stands.
    pub fn quoting(original: &Message) -> Self {
        Self::of(original.id, original.sender_id, original.text())
    }

    /// What a reply shows of the message `id` from `sender_id` whose content is now `text`
    /// (`None` once deleted).
    pub fn of(id: MessageId, sender_id: UserId, text: Option<&str>) -> Self {
        Self {
            id,
            sender_id,
            snippet: text.map(|text| match text.char_indices().nth(Self::SNIPPET_CHARS) {
                Some((end, _)) => text[..end].to_owned(),
                None => text.to_owned(),
            }),
        }
    }
}

/// Why a `thread_root_id` was refused, as a client is told.
pub const THREAD_ROOT_RULE: &str =
    "must be a message of this conversation that is not deleted and is no thread reply";

/// What a thread's root shows of its replies, as every read of the root shows it. A reply
/// takes no new position for its root: a client keeps this up to date from the replies it
/// receives (docs/websocket.md, "Threads").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadSummary {
    /// Every reply in the thread, those deleted for everyone included (a tombstone keeps
    /// its place) and those any one member hid.
    pub reply_count: u64,
    /// When the newest reply was sent.
    pub last_reply_at: DateTime<Utc>,
    /// The seq of the newest reply: the summary counts every reply up to it, so a client
    /// counts a reply it learns of only when its seq is past this one.
    pub last_reply_seq: Seq,
    /// The root's sender, then everyone who replied or was mentioned in a reply as it was
    /// sent, in the order they joined (by id among those who joined with one reply); once
    /// in, always in.
    pub participant_ids: Vec<UserId>,
}

impl ThreadSummary {
    /// The summary of a root sent by `root_sender` once `reply`, the thread's newest, is
    /// counted in it (a reply at or before `last_reply_seq` is counted already and changes
    /// nothing). How a client that may learn of replies out of order keeps it is described
    /// in docs/websocket.md, "Threads".
    pub fn count(summary: Option<Self>, root_sender: UserId, reply: &Message) -> Option<Self> {
        if summary
            .as_ref()
            .is_some_and(|s| reply.seq <= s.last_reply_seq)
        {
            return summary;
        }
        let mut summary = summary.unwrap_or(Self {
            reply_count: 0,
            last_reply_at: reply.created_at,
            last_reply_seq: reply.seq,
            participant_ids: vec![root_sender],
        });
        summary.reply_count += 1;
        summary.last_reply_at = summary.last_reply_at.max(reply.created_at);
        summary.last_reply_seq = reply.seq;
        // Its sender and the members it mentions join with it.
        let joining: Vec<UserId> = std::iter::once(reply.sender_id)
            .chain(reply.mentions.iter().copied())
            .collect();
        summary.join(&joining);
        Some(summary)
    }

    /// Adds `users` to the participants, those not in yet, in the order participants who
    /// join with one reply are stored in: by id.
    pub fn join(&mut self, users: &[UserId]) {
        let mut joining: Vec<UserId> = users
            .iter()
            .copied()
            .filter(|u| !self.participant_ids.contains(u))
            .collect();
        joining.sort();
        joining.dedup();
        self.participant_ids.extend(joining);
    }
}

/// Who deleted a message for everyone, and when: all that is left of it but its place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deletion {
    pub at: DateTime<Utc>,
    pub by: UserId,
}

/// What an edit or a delete for everyone did, with the conversation as it stood when the
/// write committed: who should hear of it.
#[derive(Debug, Clone)]
pub struct MessageChanged {
    /// The message as it now stands.
    pub message: Message,
    /// Whether this call changed it: an edit to the same content, an edit of a deleted
    /// message and a second delete change nothing and take no seq.
    pub changed: bool,
    pub kind: crate::conversation::ConversationKind,
    pub members: Vec<crate::conversation::Member>,
}

/// A message one user deleted for themselves only ("delete for me"): hidden from their
/// history, catch-up and unread counts, and from nobody else's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HiddenMessage {
    pub user_id: UserId,
    pub message_id: MessageId,
    pub conversation_id: ConversationId,
    /// The hiding's place in the user's catch-up.
    pub seq: Seq,
}

/// Whose copy of a message a delete removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeleteScope {
    /// Everyone's: the content is purged and a tombstone stays in its place.
    #[default]
    Everyone,
    /// The caller's own: hidden for them, untouched for everyone else.
    Me,
}

impl DeleteScope {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        match raw {
            "everyone" => Ok(Self::Everyone),
            "me" => Ok(Self::Me),
            _ => Err(FieldError::new("scope", "must be \"everyone\" or \"me\"")),
        }
    }
}

/// One emoji: exactly one emoji grapheme as Unicode lists it (skin tones and other
/// sequences included), nothing around it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Emoji(String);

impl Emoji {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        match emojis::get(raw) {
            Some(_) => Ok(Self(raw.to_owned())),
            None => Err(FieldError::new("emoji", "must be exactly one emoji")),
        }
    }

    /// An emoji read back from storage, checked when it was stored: a later Unicode version
    /// must not make stored reactions unreadable. Never for input.
    pub fn parse_stored(raw: &str) -> Result<Self, FieldError> {
        if raw.is_empty() {
            return Err(FieldError::new("emoji", "must not be empty"));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The users who reacted to a message with one emoji, in the order they reacted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reaction {
    pub emoji: Emoji,
    pub user_ids: Vec<UserId>,
}

impl Reaction {
    pub fn count(&self) -> usize {
        self.user_ids.len()
    }

    /// Groups `(emoji, user)` rows, given in the order they were made, into one reaction per
    /// emoji ordered by its first use.
    pub fn group(rows: impl IntoIterator<Item = (Emoji, UserId)>) -> Vec<Reaction> {
        let mut reactions: Vec<Reaction> = Vec::new();
        for (emoji, user) in rows {
            match reactions.iter_mut().find(|r| r.emoji == emoji) {
                Some(reaction) => reaction.user_ids.push(user),
                None => reactions.push(Reaction {
                    emoji,
                    user_ids: vec![user],
                }),
            }
        }
        reactions
    }
}

/// A message pinned in its conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    pub pinned_at: DateTime<Utc>,
    pub pinned_by: UserId,
}

/// What a store did with a reaction or a pin (see [`crate::ports::MessageStore::react`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Marked {
    /// Stored at `seq` (the message's new `change_seq`). `count`: for a reaction, the users
    /// now holding that emoji on the message; for a pin, the messages now pinned in the
    /// conversation. `audience`: the conversation's members when the change committed.
    Changed {
        seq: Seq,
        count: usize,
        conversation_id: ConversationId,
        audience: Vec<UserId>,
    },
    /// Already so (a reaction held, a pin already there, or nothing to remove): nothing was
    /// stored and no seq taken.
    Unchanged,
    /// The message was deleted for everyone: it takes no new reaction or pin.
    MessageDeleted,
    /// Adding would pass the cap (distinct emoji per message, or pins per conversation).
    OverCap,
}

/// A message to store; the store assigns its [`Seq`].
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    pub sender_id: UserId,
    pub content: MessageContent,
    pub client_message_id: Option<ClientMessageId>,
    pub created_at: DateTime<Utc>,
    /// The message this one replies to: the store refuses it with
    /// [`crate::StoreError::ReplyTarget`] unless it is a message of the same conversation
    /// that is not deleted.
    pub reply_to_id: Option<MessageId>,
    /// The thread this message is a reply in: the store refuses it with
    /// [`crate::StoreError::ThreadRoot`] unless it names a message of the same conversation
    /// that is not deleted and is no thread reply itself. The store adds the sender (and the
    /// root's sender, for a thread's first reply) to the thread's participants.
    pub thread_root_id: Option<MessageId>,
    /// The names the content mentions ([`MentionCandidates::parse`] of `content`): the store
    /// resolves them among the members as the write commits (see [`crate::mention::resolve`]).
    pub mentions: MentionCandidates,
    /// Uploads to attach (at most [`crate::attachment::MAX_PER_MESSAGE`], distinct): the
    /// store refuses the message with [`crate::StoreError::Attachments`] unless each is the
    /// sender's own upload not attached to any message yet, and attaches them in the same
    /// write. The stored message carries them in this order.
    pub attachment_ids: Vec<crate::AttachmentId>,
}

impl NewMessage {
    /// The message as stored with `seq`, replying to `reply_to` (what the store read of the
    /// original when it checked it) and mentioning `mentions` (as the store resolved them):
    /// what a store hands back for a new message without reading it again.
    pub fn stored_as(&self, seq: Seq, reply_to: Option<ReplyTo>, mentions: Vec<UserId>) -> Message {
        Message {
            id: self.id,
            seq,
            conversation_id: self.conversation_id,
            sender_id: self.sender_id,
            content: Some(self.content.clone()),
            client_message_id: self.client_message_id.clone(),
            created_at: self.created_at,
            updated_at: self.created_at,
            edited_at: None,
            deletion: None,
            change_seq: None,
            reactions: Vec::new(),
            pin: None,
            reply_to: reply_to.map(Box::new),
            thread_root_id: self.thread_root_id,
            thread: None,
            mentions,
            attachments: Vec::new(),
        }
    }
}

/// What storing a message did: a new row, or the row an earlier send with the same
/// client message id had already stored.
#[derive(Debug, Clone)]
pub enum Appended {
    Created(Message),
    Existing(Message),
}

/// The result of an append, with the conversation as it stood when the write committed: who
/// should hear of the message, and whether it went to a direct conversation.
#[derive(Debug, Clone)]
pub struct AppendOutcome {
    pub appended: Appended,
    pub kind: crate::conversation::ConversationKind,
    pub members: Vec<crate::conversation::Member>,
}

/// A message from one viewer's side: who it was sent to (in a direct conversation) and
/// whether it counts as read for this viewer.
#[derive(Debug, Clone)]
pub struct MessageView {
    pub message: Message,
    /// The other member of a direct conversation; `None` in a group.
    pub recipient_id: Option<UserId>,
    /// For a message the viewer received: the viewer has read it. For one the viewer sent:
    /// every other member has read it.
    pub is_read: bool,
    /// Whom the view is for: the reactions' `me` is theirs.
    pub viewer: UserId,
}

impl MessageView {
    /// The message's reactions as this viewer sees them: `(emoji, count, whether the viewer
    /// is among them)`, in the order each emoji was first used.
    pub fn reactions(&self) -> impl Iterator<Item = (&Emoji, usize, bool)> {
        self.message
            .reactions
            .iter()
            .map(|r| (&r.emoji, r.count(), r.user_ids.contains(&self.viewer)))
    }
}

/// Which slice of a conversation's history to return; pages stay exact under concurrent
/// writes because they are cut by `seq`, never by offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryCursor {
    /// The newest messages.
    Latest,
    /// The messages just before this seq.
    Before(Seq),
    /// The messages just after this seq.
    After(Seq),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_is_trimmed_and_must_keep_at_least_one_character() {
        assert_eq!(MessageContent::parse("  hi \n").unwrap().as_str(), "hi");
        assert!(MessageContent::parse(" \n\t ").is_err());
    }

    #[test]
    fn content_refuses_nul_and_escapes_but_keeps_newlines_and_tabs() {
        for bad in [
            "a\u{0}b",
            "\u{1b}[31mred",
            "a\rb",
            "bell\u{7}",
            "a\u{7f}",
            "a\u{9b}31m",
        ] {
            let error = MessageContent::parse(bad).unwrap_err();
            assert_eq!(error.field, "content", "{bad:?}");
        }
        let kept = "line one\n\tindented\nשלום \u{202E}";
        assert_eq!(MessageContent::parse(kept).unwrap().as_str(), kept);
    }

    #[test]
    fn content_stored_before_the_control_character_rule_still_reads() {
        let stored = MessageContent::parse_stored("a\u{0}b\u{1b}[0m").unwrap();
        assert_eq!(stored.as_str(), "a\u{0}b\u{1b}[0m");
        assert!(MessageContent::parse_stored("  ").is_err());
    }

    #[test]
    fn an_emoji_is_exactly_one_emoji_skin_tones_and_sequences_included() {
        for good in ["👍", "👍🏽", "❤️", "👨‍👩‍👧", "🇫🇷"] {
            assert_eq!(Emoji::parse(good).unwrap().as_str(), good, "{good:?}");
        }
        for bad in [
            "", "a", "1", "#", "👍👍", " 👍", "👍 ", ":+1:", "<b>", "\u{200d}",
        ] {
            assert_eq!(Emoji::parse(bad).unwrap_err().field, "emoji", "{bad:?}");
        }
    }

    #[test]
    fn reactions_group_by_emoji_in_order_of_first_use() {
        let (a, b) = (UserId::new(), UserId::new());
        let e = |s: &str| Emoji::parse(s).unwrap();
        let grouped = Reaction::group([(e("👍"), a), (e("🎉"), a), (e("👍"), b)]);
        assert_eq!(
            grouped,
            vec![
                Reaction {
                    emoji: e("👍"),
                    user_ids: vec![a, b]
                },
                Reaction {
                    emoji: e("🎉"),
                    user_ids: vec![a]
                },
            ]
        );
    }

    #[test]
    fn a_snippet_is_the_first_hundred_characters_and_none_once_deleted() {
        let (id, sender) = (MessageId::new(), UserId::new());
        let long = "é".repeat(150);
        let quoted = ReplyTo::of(id, sender, Some(&long));
        assert_eq!(quoted.snippet.unwrap(), "é".repeat(100));
        assert_eq!(
            ReplyTo::of(id, sender, Some("short")).snippet.unwrap(),
            "short"
        );
        assert_eq!(ReplyTo::of(id, sender, None).snippet, None);
    }

    #[test]
    fn content_is_limited_to_4000_characters_not_bytes() {
        assert!(MessageContent::parse(&"é".repeat(4000)).is_ok());
        assert!(MessageContent::parse(&"a".repeat(4001)).is_err());
    }
}
