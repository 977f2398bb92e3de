//! The ports: what the domain needs from the outside world, as traits.
//!
//! Storage ports are synchronous and may block; async callers run services on a blocking
//! pool. The one exception is [`MessageStore::submit`], the busiest write, which returns at
//! once and answers through a callback, so that no thread waits for a message to be stored.
//! Every store method is atomic on its own.

use std::io::Read;
use std::ops::Range;
use std::path::Path;

use chrono::{DateTime, Duration, Utc};

use crate::admin::{AuditEntry, AuditRecord};
use crate::attachment::{Attachment, BlobKey, ImageInfo, ImageRefused};
use crate::block::Block;

use crate::conversation::{
    Conversation, ConversationName, InboxEntry, InboxFilter, Member, NewConversation, Role,
};
use crate::error::StoreError;
use crate::events::DomainEvent;
use crate::feed::FeedItem;
use crate::limits::Quota;
use crate::message::{
    AppendOutcome, Emoji, HiddenMessage, HistoryCursor, Marked, Message, MessageChanged,
    MessageContent, NewMessage, Seq,
};
use crate::paging::Page;
use crate::presence::{LastSeen, PresenceStatus};
use crate::read_state::{
    Delivered, Delivery, MarkerSet, MemberSettings, ReadMarker, SettingsChanged, SettingsUpdate,
};
use crate::report::{NewReport, Report, ReportStatus, Resolution};
use crate::search::{MessageSearch, SearchHit};
use crate::session::{MintedRefresh, NewSession, PresentedRefresh, RefreshHash, Rotation, Session};
use crate::user::{NewUser, Password, PasswordHash, ProfileUpdate, User, UserQuery};
use crate::webhook::{Lease, NewDelivery, OutboxEvent, Webhook, WebhookDelivery, WebhookId};
use crate::{AttachmentId, ConversationId, MessageId, ReportId, SessionId, UserId};

pub type StoreResult<T> = Result<T, StoreError>;

/// What to do once an append has committed; see [`MessageStore::append`].
pub type OnCommit = Box<dyn FnOnce(&AppendOutcome) + Send>;

/// What to do with the outcome of a submitted append; see [`MessageStore::submit`].
pub type OnAppended = Box<dyn FnOnce(StoreResult<AppendOutcome>) + Send>;

/// What to do once a change to a stored message has committed; see [`MessageStore::edit`].
pub type OnChanged<'a> = &'a mut dyn FnMut(&MessageChanged);

/// User accounts.
pub trait UserStore: Send + Sync {
    /// Stores a new account. A taken username (ignoring case) or email is
    /// [`StoreError::Conflict`] naming the field.
    fn insert(&self, user: &NewUser) -> StoreResult<User>;
    fn find(&self, id: UserId) -> StoreResult<Option<User>>;
    fn find_many(&self, ids: &[UserId]) -> StoreResult<Vec<User>>;
    /// Finds an account by username or email, ignoring case, with its password hash.
    fn find_credentials(&self, login: &str) -> StoreResult<Option<(User, PasswordHash)>>;
    fn password_hash(&self, id: UserId) -> StoreResult<Option<PasswordHash>>;
    /// Whether the username (ignoring case) or the email is already taken, as
    /// `(username_taken, email_taken)`: lets signup fail fast before paying for a hash.
    fn taken(&self, username: &str, email: &str) -> StoreResult<(bool, bool)>;
    /// Users whose username or full name holds the text (a case-insensitive substring, taken
    /// literally), or whose whole email address it is ignoring case (never a part of one),
    /// best match first: the username itself or the email address, then usernames starting
    /// with the text, then full names with a word starting with it, then the rest; by
    /// username within each. With no text, every user by username.
    fn search(&self, query: &UserQuery) -> StoreResult<Vec<User>>;
    /// Applies a profile change. A taken email is [`StoreError::Conflict`];
    /// a missing user is [`StoreError::Missing`].
    fn update(&self, id: UserId, update: &ProfileUpdate, at: DateTime<Utc>) -> StoreResult<User>;
    /// Deactivates an account and raises its token generation. A missing user is
    /// [`StoreError::Missing`].
    fn deactivate(&self, id: UserId, at: DateTime<Utc>) -> StoreResult<User>;
}

/// Individually revoked access tokens (logout), remembered until they would have expired.
pub trait TokenRevocations: Send + Sync {
    fn revoke(&self, token_id: &str, expires_at: DateTime<Utc>) -> StoreResult<()>;
    fn is_revoked(&self, token_id: &str) -> StoreResult<bool>;
}

/// Conversations and their memberships.
pub trait ConversationStore: Send + Sync {
    /// Creates a conversation with its members, at a new position of the change feed (the
    /// returned seq, the conversation's `change_seq`): the members find it in their feed. A
    /// second direct conversation for the same pair is [`StoreError::Conflict`].
    fn create(&self, new: &NewConversation) -> StoreResult<Seq>;
    fn find(&self, id: ConversationId) -> StoreResult<Option<Conversation>>;
    /// The direct conversation between two users, if they have one.
    fn find_direct(&self, a: UserId, b: UserId) -> StoreResult<Option<Conversation>>;
    fn members(&self, id: ConversationId) -> StoreResult<Vec<Member>>;
    /// The members of several conversations at once, in the order of `ids`.
    fn members_of(&self, ids: &[ConversationId]) -> StoreResult<Vec<Vec<Member>>>;
    fn membership(&self, id: ConversationId, user: UserId) -> StoreResult<Option<Member>>;
    /// The conversations in which the user holds `role` (e.g. the groups they own).
    fn with_role(&self, user: UserId, role: Role) -> StoreResult<Vec<ConversationId>>;
    /// The user's conversations that pass the filter, most recent activity first, each with
    /// its last message, the user's unread count and unread mentions (counted as
    /// [`ReadReceiptStore::unread_counts`] and [`ReadReceiptStore::unread_mentions`] do) and the
    /// user's settings. A conversation is
    /// archived for the filter as [`MemberSettings::still_archived`] says, at `filter.now`.
    fn inbox(&self, user: UserId, page: Page, filter: InboxFilter) -> StoreResult<Vec<InboxEntry>>;
    /// The member's own settings, `archived` as it stands at `now`; `None` for a non-member.
    fn settings(
        &self,
        id: ConversationId,
        user: UserId,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<MemberSettings>>;
    /// Changes the member's settings, taking the change's seq in the same transaction and
    /// keeping it as the member's `settings_seq`; archiving remembers that seq as the point
    /// the archive holds from. Returns the settings as they stand at `at`. A non-member is
    /// [`StoreError::Missing`].
    fn update_settings(
        &self,
        id: ConversationId,
        user: UserId,
        update: &SettingsUpdate,
        at: DateTime<Utc>,
    ) -> StoreResult<SettingsChanged>;
    /// The user's conversations muted at `now`.
    fn muted(&self, user: UserId, now: DateTime<Utc>) -> StoreResult<Vec<ConversationId>>;
    /// Renames a conversation at a new position of the change feed (returned with it).
    fn rename(
        &self,
        id: ConversationId,
        name: &ConversationName,
        at: DateTime<Utc>,
    ) -> StoreResult<(Conversation, Seq)>;
    /// Adds members, skipping those already in. Returns who was added and, when anyone was,
    /// the change's new position in the feed. An added user who had been removed before no
    /// longer has that departure in their feed. Fails with [`StoreError::Conflict`]
    /// (`field: "members"`) rather than exceed `max_members`.
    fn add_members(
        &self,
        id: ConversationId,
        users: &[UserId],
        role: Role,
        max_members: usize,
        at: DateTime<Utc>,
    ) -> StoreResult<(Vec<UserId>, Option<Seq>)>;
    /// Removes a member. Returns the change's new position when they were a member: the
    /// conversation's, and that of the removed user's departure, which their feed shows.
    fn remove_member(
        &self,
        id: ConversationId,
        user: UserId,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<Seq>>;
    /// Gives a role to a member, e.g. the next owner when the owner leaves, at a new position
    /// of the change feed (returned).
    fn set_role(&self, id: ConversationId, user: UserId, role: Role) -> StoreResult<Seq>;
}

/// Messages.
pub trait MessageStore: Send + Sync {
    /// Stores a message, assigning the next [`Seq`], and in the same transaction records the
    /// conversation's activity, moves the sender's read marker to it, and reads the members
    /// it goes to. A message whose sender already stored one with the same client message id
    /// is not stored again: the earlier one comes back as [`Appended::Existing`]. A sender
    /// who is not a member when the write commits is [`StoreError::Missing`]; a message to a
    /// direct conversation whose other member's account is deactivated is
    /// [`StoreError::Deactivated`] and is not stored (a retry of one stored before still gets
    /// it back).
    ///
    /// The store calls `done` exactly once with the outcome: once the write has committed
    /// (or failed), and before the commit of any later append. Callers announce messages
    /// there, so announcements go out in `seq` order even when a store commits many appends
    /// together; and appends submitted one after another from one thread are stored in that
    /// order. `submit` itself never waits for the write, so an async caller needs no thread
    /// to block on; `done` runs on whichever thread the store chooses and must not block.
    /// A store too far behind to take more refuses at once with [`StoreError::Unavailable`].
    fn submit(&self, message: NewMessage, done: OnAppended);

    /// [`Self::submit`] for a caller that may block: waits for the write, calling
    /// `on_commit` with the outcome before any later append commits.
    fn append(&self, message: &NewMessage, on_commit: OnCommit) -> StoreResult<AppendOutcome> {
        let (reply, outcome) = std::sync::mpsc::sync_channel(1);
        self.submit(
            message.clone(),
            Box::new(move |result| {
                if let Ok(outcome) = &result {
                    on_commit(outcome);
                }
                let _ = reply.send(result);
            }),
        );
        outcome.recv().unwrap_or_else(|_| {
            Err(StoreError::Unavailable(
                "the store dropped an append without an answer".into(),
            ))
        })
    }
    fn find(&self, id: MessageId) -> StoreResult<Option<Message>>;
    /// A page of one conversation's history in ascending `seq` order: its main history,
    /// without thread replies (see [`Self::thread`]).
    fn history(
        &self,
        conversation: ConversationId,
        cursor: HistoryCursor,
        limit: u32,
    ) -> StoreResult<Vec<Message>>;
    /// A page of the replies in the thread of `root`, in ascending `seq` order, cut by
    /// `cursor` as [`Self::history`] is (`Latest`: the newest replies). Empty for a message
    /// without replies, a missing one, or one that is itself a thread reply.
    fn thread(
        &self,
        root: MessageId,
        cursor: HistoryCursor,
        limit: u32,
    ) -> StoreResult<Vec<Message>>;
    /// Messages with `seq > since` in every conversation the user is a member of, ascending,
    /// at most `limit`, but those the user hid ([`Self::hide`]): the catch-up after a
    /// reconnect.
    fn since(&self, user: UserId, since: Seq, limit: u32) -> StoreResult<Vec<Message>>;
    /// The highest seq in any conversation the user is a member of.
    fn last_seq_for(&self, user: UserId) -> StoreResult<Seq>;
    /// The highest seq handed out and committed, in any conversation: everything at or below
    /// it is visible to every reader. [`Seq::ZERO`] before the first.
    fn latest_seq(&self) -> StoreResult<Seq>;

    // Changes to a stored message. Each takes the next seq (the counter appends take theirs
    // from) inside its write, so a change is ordered after everything committed before it.
    // Whether the caller may make the change (its sender; a moderator) is the service's
    // decision; the store checks, as the write commits, that the caller is still a member
    // of the message's conversation, and answers [`StoreError::Missing`] if not, or if there
    // is no such message. A change that changed something calls `on_commit` once it has
    // committed and before any later append's or change's callback runs, as appends do
    // (see [`Self::submit`]): callers announce changes there, so a node announces messages
    // and changes in seq order.

    /// Replaces a message's content, sets `edited_at` and `updated_at` to `at`, and takes a
    /// seq for its `change_seq`. Content equal to the stored content, or a deleted message,
    /// is left as it is (`changed: false`, no seq taken).
    fn edit(
        &self,
        id: MessageId,
        editor: UserId,
        content: &MessageContent,
        at: DateTime<Utc>,
        on_commit: OnChanged<'_>,
    ) -> StoreResult<MessageChanged>;

    /// Deletes a message for everyone: purges its content (overwritten, not just flagged),
    /// drops its reactions, its pin and what it replied to, records `deleted_at`/`deleted_by`, sets `updated_at`
    /// and takes a seq for its `change_seq`. The message keeps its place (id, seq, sender).
    /// A message already deleted is left as it is (`changed: false`, no seq taken).
    fn delete(
        &self,
        id: MessageId,
        by: UserId,
        at: DateTime<Utc>,
        on_commit: OnChanged<'_>,
    ) -> StoreResult<MessageChanged>;

    /// [`Self::delete`] by a server admin moderating: the same change, announced the same
    /// way, but `by` need not be a member of the message's conversation. Only a missing
    /// message is [`StoreError::Missing`].
    fn moderate_delete(
        &self,
        id: MessageId,
        by: UserId,
        at: DateTime<Utc>,
        on_commit: OnChanged<'_>,
    ) -> StoreResult<MessageChanged>;

    /// Hides a message from one member only ("delete for me"), taking a seq for the hiding:
    /// from then on [`Self::since`] leaves it out for that user, [`Self::hidden_among`] names
    /// it, and it counts in none of the user's unread counts; nobody else's view changes.
    /// Returns the hiding and whether this call made it (`false`: hidden before, with the
    /// seq it took then).
    fn hide(
        &self,
        id: MessageId,
        user: UserId,
        on_commit: &mut dyn FnMut(&HiddenMessage),
    ) -> StoreResult<(HiddenMessage, bool)>;

    /// Which of `ids` the user has hidden, in no particular order.
    fn hidden_among(&self, user: UserId, ids: &[MessageId]) -> StoreResult<Vec<MessageId>>;
    /// Adds the user's reaction with `emoji`, taking a seq for it as the message's
    /// `change_seq`. Every message read ([`Self::find`], [`Self::history`], [`Self::since`],
    /// [`Self::pins`], the inbox) carries its reactions. A reaction the user already has is
    /// [`Marked::Unchanged`]; a deleted message is [`Marked::MessageDeleted`]; an emoji that
    /// would be the message's `max_emoji + 1`th distinct one is [`Marked::OverCap`]. A
    /// missing message, or a user who is not a member of its conversation when the write
    /// commits, is [`StoreError::Missing`].
    fn react(
        &self,
        message: MessageId,
        user: UserId,
        emoji: &Emoji,
        max_emoji: usize,
        at: DateTime<Utc>,
    ) -> StoreResult<Marked>;
    /// Removes the user's reaction with `emoji` (the emoji goes with its last reaction),
    /// taking a seq as [`Self::react`] does. No such reaction is [`Marked::Unchanged`];
    /// membership as for [`Self::react`]. Allowed on a deleted message.
    fn unreact(&self, message: MessageId, user: UserId, emoji: &Emoji) -> StoreResult<Marked>;
    /// Pins a message of `conversation` for everyone, by `user`, taking a seq as the
    /// message's `change_seq`. Already pinned is [`Marked::Unchanged`]; a deleted message is
    /// [`Marked::MessageDeleted`]; a conversation holding `max_pins` pins already is
    /// [`Marked::OverCap`]. A message not in `conversation`, or a user who is not a member
    /// when the write commits, is [`StoreError::Missing`]. Who may pin is the domain's rule.
    fn pin(
        &self,
        conversation: ConversationId,
        message: MessageId,
        user: UserId,
        max_pins: usize,
        at: DateTime<Utc>,
    ) -> StoreResult<Marked>;
    /// Unpins a message of `conversation`, taking a seq; not pinned is
    /// [`Marked::Unchanged`]. Missing as for [`Self::pin`].
    fn unpin(
        &self,
        conversation: ConversationId,
        message: MessageId,
        user: UserId,
    ) -> StoreResult<Marked>;
    /// The conversation's pinned messages, the latest pin first.
    fn pins(&self, conversation: ConversationId) -> StoreResult<Vec<Message>>;
}

/// Full-text search over messages (see [`crate::search`]).
pub trait SearchStore: Send + Sync {
    /// The messages `user` may see that contain every term of `search.query`, in
    /// `search.order`, after `search.cursor`, at most `limit`, each read as every read of
    /// messages is (reactions, pin, reply, thread, mentions).
    ///
    /// What the user may see: messages, thread replies included, of the conversations the
    /// user is a member of now, but never one deleted for everyone and never one the user
    /// hid. An edited message matches by its current content only. A word matches a whole
    /// word ignoring case, a prefix the start of a word, a phrase its words in a row; words
    /// are the runs of letters and digits (see [`crate::search::words`]).
    ///
    /// In relevance order a hit's [`SearchHit::score`] says how well it matches (the more
    /// often the terms occur in a shorter message, the higher), ties go newest first, and
    /// only the newest [`MessageSearch::RELEVANCE_WINDOW`] visible hits (after the filters)
    /// are ranked. In recent order hits come newest first and the score is 0.
    fn search_messages(
        &self,
        user: UserId,
        search: &MessageSearch,
        limit: u32,
    ) -> StoreResult<Vec<SearchHit>>;
}

/// The change feed (see [`crate::feed`]).
pub trait FeedStore: Send + Sync {
    /// Everything with a position after `since` that `user` may see now, ascending by
    /// position, at most `limit`, each thing once at the position of its latest change:
    /// - the messages of the conversations the user is a member of now, at
    ///   `change_seq` when changed, else at `seq`, but for those the user hid; a message
    ///   deleted for everyone as its tombstone;
    /// - the messages the user hid in those conversations, at the hiding's seq;
    /// - the read markers of every member of those conversations, at `marker_seq`;
    /// - the delivered markers of every other member of those conversations (never the
    ///   user's own: their devices know what they received), at `delivered_seq`;
    /// - the user's own settings of those conversations (never another member's), at
    ///   `settings_seq`;
    /// - those conversations, at `change_seq` (creation, rename, membership);
    /// - the user's departures from conversations they are no longer in.
    fn feed(&self, user: UserId, since: Seq, limit: u32) -> StoreResult<Vec<FeedItem>>;
}

/// Read markers and the unread counts derived from them.
pub trait ReadReceiptStore: Send + Sync {
    /// Moves the user's marker to `seq` if that is further than where it stands; never back.
    /// A move takes a seq in the same transaction and keeps it as the member's `marker_seq`
    /// (the marker's `seq`); no move takes none. Returns the marker as it now stands. A
    /// non-member is [`StoreError::Missing`].
    fn advance(
        &self,
        conversation: ConversationId,
        user: UserId,
        seq: Seq,
        at: DateTime<Utc>,
    ) -> StoreResult<ReadMarker>;
    /// Sets the user's marker, back or forward ("mark unread"), onto the conversation's newest
    /// message with a seq at or below `seq` (zero when there is none: nothing read), taking
    /// a seq for it as [`Self::advance`] does (always, even when it stays). Returns the
    /// marker, that message, where the marker stood before, and the user's unread count and
    /// unread mentions in the conversation after the change. A move back takes nothing back
    /// from delivery: when the delivered marker stood below where the read marker stood
    /// before, it moves there, taking a seq of its own (after the marker's), so that what
    /// every read shows as delivered ([`crate::read_state::delivered_up_to`]) never goes
    /// back. A non-member is [`StoreError::Missing`].
    fn set_marker(
        &self,
        conversation: ConversationId,
        user: UserId,
        seq: Seq,
        at: DateTime<Utc>,
    ) -> StoreResult<MarkerSet>;
    /// Records many deliveries in one transaction (one write however many it holds): each
    /// member's delivered marker moves to the seq given when that is past both where it
    /// stands and the member's read marker, never back. Each marker that moved takes its own
    /// seq (kept as its `delivered_seq`, its position in the feed; never two at one
    /// position) and is returned, in the order of `deliveries`; the rest, and non-members,
    /// are skipped. Several deliveries to one member count as their highest.
    fn deliver(&self, deliveries: &[Delivery]) -> StoreResult<Vec<Delivered>>;
    /// For each of the user's conversations with unread messages: how many messages from
    /// others lie after the user's marker, leaving out messages deleted for everyone and
    /// those the user hid.
    fn unread_counts(&self, user: UserId) -> StoreResult<Vec<(ConversationId, u64)>>;
    /// For each of the user's conversations with unread mentions of the user: how many of
    /// the messages [`Self::unread_counts`] counts mention the user ([`Message::mentions`]).
    fn unread_mentions(&self, user: UserId) -> StoreResult<Vec<(ConversationId, u64)>>;
}

/// The uploads' rows and the blobs they keep alive. An upload is attached to a message by
/// [`MessageStore::submit`] (see [`NewMessage::attachment_ids`]) and its row goes when the
/// message is deleted for everyone ([`MessageStore::delete`]).
///
/// Blob lifetime across nodes: an upload records its blob ([`Self::touch_blob`]) BEFORE it
/// puts the bytes, and [`Self::take_unreferenced_blobs`] only takes blobs no row references
/// and nobody touched for a grace period, removing their records before the caller deletes
/// the bytes. So bytes an upload on any node has just put are never deleted under it; a
/// crash leaves at worst bytes without a row, which a later sweep removes.
pub trait AttachmentStore: Send + Sync {
    /// Records that the blob `key` of `size` bytes is being put at `at` (creating its record,
    /// or moving its last put to `at`).
    fn touch_blob(&self, key: &BlobKey, size: u64, at: DateTime<Utc>) -> StoreResult<()>;
    /// Stores a new upload unless the uploader's uploads (their sizes summed, those removed
    /// not counted) would pass `quota_bytes` with it: then nothing is stored and the answer
    /// is `false`. The check and the insert are one atomic step per uploader.
    fn insert_upload(&self, attachment: &Attachment, quota_bytes: u64) -> StoreResult<bool>;
    fn find_upload(&self, id: AttachmentId) -> StoreResult<Option<Attachment>>;
    /// The sum of the sizes of the user's uploads.
    fn used_bytes(&self, user: UserId) -> StoreResult<u64>;
    /// Removes the uploads never attached to a message created before `before`; returns how
    /// many.
    fn remove_unattached(&self, before: DateTime<Utc>) -> StoreResult<u64>;
    /// Takes (removes the records of, in one transaction) up to `limit` blobs that no upload
    /// references, as its file or its thumbnail, and that were last put before `before`;
    /// returns their keys. The caller then deletes their bytes.
    fn take_unreferenced_blobs(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<BlobKey>>;
}

/// Bytes kept by content address ([`BlobKey`]), shared by every node: a directory on a local
/// or shared disk, or an object store. Calls block (disk, network): async callers make them on
/// a blocking thread.
pub trait BlobStore: Send + Sync {
    /// Keeps the bytes of the local file `staged` under `key`, which must be their SHA-256:
    /// moved when the store can (same disk), else copied, streaming, never read whole into
    /// memory. A key already stored is left as it is. The caller removes `staged` if it is
    /// still there afterwards. Once this returns the bytes are durable.
    fn put(&self, key: &BlobKey, staged: &Path) -> StoreResult<()>;
    /// Keeps small bytes (a thumbnail) under `key`, as [`Self::put`] does.
    fn put_bytes(&self, key: &BlobKey, bytes: &[u8]) -> StoreResult<()>;
    /// A reader of the blob's bytes in `range` (the whole blob when `None`; a range past the
    /// end is cut at the end), or `None` when no blob has that key. Streams: the bytes are
    /// not read into memory first.
    fn open(
        &self,
        key: &BlobKey,
        range: Option<Range<u64>>,
    ) -> StoreResult<Option<Box<dyn Read + Send>>>;
    /// Removes the blob; a missing one is no error.
    fn delete(&self, key: &BlobKey) -> StoreResult<()>;
}

/// Reads what an uploaded file is, from its bytes rather than from what the client claims.
/// CPU-bound (image decoding): async callers make the calls on a blocking thread.
pub trait MediaInspector: Send + Sync {
    /// The content type the file's first bytes show (`image/png`, `application/pdf`, ...),
    /// or `None` when they show none known (the upload is then `application/octet-stream`,
    /// or `text/plain` when it is valid UTF-8 text: the caller decides).
    fn sniff(&self, head: &[u8]) -> Option<&'static str>;
    /// For a file of an image type ([`Self::sniff`] said `image/jpeg`, `image/png`,
    /// `image/webp` or `image/gif`): its dimensions and a thumbnail whose longest side is at
    /// most `thumbnail_side`. An image of more than `max_pixels` pixels is refused from its
    /// header without being decoded.
    fn image(
        &self,
        file: &Path,
        content_type: &str,
        thumbnail_side: u32,
        max_pixels: u64,
    ) -> Result<ImageInfo, ImageRefused>;
}

/// Who blocked whom (see [`crate::block`]).
pub trait BlockStore: Send + Sync {
    /// `blocker` blocks `blocked` from `at`; `false` when they already had.
    fn block(&self, blocker: UserId, blocked: UserId, at: DateTime<Utc>) -> StoreResult<bool>;
    /// Lifts the block; `false` when there was none.
    fn unblock(&self, blocker: UserId, blocked: UserId) -> StoreResult<bool>;
    /// The users `blocker` has blocked, the latest first.
    fn blocked_by(&self, blocker: UserId) -> StoreResult<Vec<Block>>;
    /// Of `among`, those who have blocked `user`, in no particular order.
    fn blockers_of(&self, user: UserId, among: &[UserId]) -> StoreResult<Vec<UserId>>;
}

/// Who has a WebSocket open now, on any node.
pub trait PresenceDirectory: Send + Sync {
    /// Of `users`, those with at least one open socket on some live node, in no particular
    /// order.
    fn online_among(&self, users: &[UserId]) -> StoreResult<Vec<UserId>>;

    /// Of `users`, those with at least one open socket and their status: [`Away`] when
    /// every one of their sockets said so, else [`Online`]; users with no socket are left
    /// out. A directory that knows nothing of away says [`Online`] for every socket.
    ///
    /// [`Away`]: crate::presence::PresenceStatus::Away
    /// [`Online`]: crate::presence::PresenceStatus::Online
    fn status_among(&self, users: &[UserId]) -> StoreResult<Vec<(UserId, PresenceStatus)>> {
        Ok(self
            .online_among(users)?
            .into_iter()
            .map(|user| (user, PresenceStatus::Online))
            .collect())
    }
}

/// What is stored of presence (see [`crate::presence`]): when each user's last socket
/// closed, whether they hide it, and who shares a conversation with whom.
pub trait PresenceStore: Send + Sync {
    /// Records that the user's last socket closed at `at`. A missing user is
    /// [`StoreError::Missing`].
    fn record_last_seen(&self, user: UserId, at: DateTime<Utc>) -> StoreResult<()>;
    /// Hides the user's `last_seen_at` from others (or shows it again). A missing user is
    /// [`StoreError::Missing`].
    fn set_hide_last_seen(&self, user: UserId, hide: bool) -> StoreResult<()>;
    /// What is stored for each of `users` that exists, in no particular order; a user with
    /// nothing stored yet comes back as [`LastSeen::unknown`].
    fn last_seen(&self, users: &[UserId]) -> StoreResult<Vec<LastSeen>>;
    /// Every other user who is a member of a conversation `user` is a member of now, each
    /// once, in no particular order.
    fn contacts(&self, user: UserId) -> StoreResult<Vec<UserId>>;
    /// Of `among`, those (other than `user`) who share a conversation with `user` now, in
    /// no particular order.
    fn contacts_among(&self, user: UserId, among: &[UserId]) -> StoreResult<Vec<UserId>>;
}

/// Server admins and the audit log of what they do.
pub trait AdminStore: Send + Sync {
    fn is_admin(&self, user: UserId) -> StoreResult<bool>;
    /// Makes the user a server admin or takes it away; `false` when it already stood so. A
    /// missing user is [`StoreError::Missing`].
    fn set_admin(&self, user: UserId, admin: bool) -> StoreResult<bool>;
    /// Appends an entry to the audit log.
    fn record(&self, entry: &AuditEntry) -> StoreResult<AuditRecord>;
    /// The audit log, newest first, those with an id below `before` (all when `None`), at
    /// most `limit`.
    fn audit_log(&self, before: Option<i64>, limit: u32) -> StoreResult<Vec<AuditRecord>>;
    /// Reactivates a deactivated account (its old tokens stay dead: deactivation raised the
    /// token generation). Returns the account and whether this call changed it (`false`: it
    /// was active). A missing user is [`StoreError::Missing`].
    fn reactivate(&self, user: UserId, at: DateTime<Utc>) -> StoreResult<(User, bool)>;
}

/// Reports of messages and users, for the server admins.
pub trait ReportStore: Send + Sync {
    /// Stores a new report, open, in one write (whatever announces reports joins it).
    fn insert_report(&self, report: &NewReport) -> StoreResult<Report>;
    fn find_report(&self, id: ReportId) -> StoreResult<Option<Report>>;
    /// The reports with `status` (every one when `None`), newest first, at most `limit`.
    fn reports(&self, status: Option<ReportStatus>, limit: u32) -> StoreResult<Vec<Report>>;
    /// Resolves an open report. Returns the report and whether this call resolved it
    /// (`false`: it was resolved before, and is left as it was). A missing report is
    /// [`StoreError::Missing`].
    fn resolve_report(&self, id: ReportId, resolution: &Resolution) -> StoreResult<(Report, bool)>;
}

/// Real-time fan-out of domain events. Publishing must not block on slow receivers: an
/// implementation queues or drops, and a receiver that falls behind resynchronises.
pub trait EventPublisher: Send + Sync {
    fn publish(&self, event: DomainEvent);
}

/// One-way password hashing.
pub trait PasswordHasher: Send + Sync {
    fn hash(&self, password: &Password) -> Result<PasswordHash, String>;
    /// Whether `password` matches. A malformed hash is a mismatch, never a panic.
    fn verify(&self, password: &str, hash: &PasswordHash) -> bool;
}

/// A signed access token and how long it is good for.
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub token: String,
    pub expires_in: Duration,
}

/// What a verified access token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenClaims {
    pub user_id: UserId,
    /// The user's token generation when the token was issued.
    pub generation: i64,
    pub token_id: String,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// The login session the token was issued in; `None` for a token from before sessions,
    /// honoured until it expires.
    pub session_id: Option<SessionId>,
}

/// Why an access token was refused. Expiry is told apart so that a client knows to log in
/// again; every other reason is the same to a client and is only detailed for logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// A genuine token whose lifetime is over.
    #[error("token has expired")]
    Expired,
    /// Malformed, forged, signed for someone else, or otherwise not ours.
    #[error("invalid token: {0}")]
    Invalid(String),
}

/// Issues and verifies access tokens.
pub trait TokenIssuer: Send + Sync {
    fn issue(
        &self,
        user: UserId,
        generation: i64,
        now: DateTime<Utc>,
    ) -> Result<AccessToken, String>;
    /// Issues an access token that names the login session it belongs to, so that ending
    /// the session ends the token ([`TokenClaims::session_id`]).
    fn issue_in_session(
        &self,
        user: UserId,
        generation: i64,
        session: SessionId,
        now: DateTime<Utc>,
    ) -> Result<AccessToken, String>;
    /// Checks signature, algorithm and expiry. Only a token whose signature holds may be
    /// reported [`TokenError::Expired`]; the detail of `Invalid` is for logs, not clients.
    fn verify(&self, token: &str) -> Result<TokenClaims, TokenError>;
}

/// What a verified device token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceClaims {
    /// The account the token was issued to, at a successful login.
    pub user_id: UserId,
    /// The account's token generation then: a password change ends the trust of every
    /// device that logged in before it.
    pub generation: i64,
    /// This device's own id: the key of its own budget of failed logins.
    pub device_id: String,
}

/// Issues and verifies device tokens, OWASP's "device cookie": a signed note, handed to a
/// client at a successful login, that this client has logged in to this account before.
/// It grants no access by itself (it is not an access token and must never verify as
/// one, nor an access token as it); it only spares its holder the account's lockout.
pub trait DeviceTokens: Send + Sync {
    fn issue(&self, user: UserId, generation: i64, now: DateTime<Utc>) -> Result<String, String>;
    /// Checks signature and expiry. The error says why, for logs, not for clients.
    fn verify(&self, token: &str) -> Result<DeviceClaims, String>;
}

/// Budgets of actions per key (`"login:alice"`, `"send:<user id>"`), for abuse limits.
/// Shared between nodes when the implementation is.
pub trait RateLimiter: Send + Sync {
    /// Takes one action from the key's budget; when none is left, how long until one is.
    fn acquire(&self, key: &str, quota: Quota) -> Result<(), std::time::Duration>;
    /// Whether an action is available, without taking it.
    fn check(&self, key: &str, quota: Quota) -> Result<(), std::time::Duration>;
    /// Whether a call may wait on another process (budgets shared through a database): a
    /// caller on an async executor must then make it on a blocking thread. In-process
    /// budgets answer in well under a microsecond and say `false`.
    fn is_remote(&self) -> bool {
        false
    }
}

/// The current time.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

// ---- Sessions (issue #17) ----

/// Login sessions and their refresh tokens (see [`crate::session`]). Every method is one
/// atomic store operation.
pub trait SessionStore: Send + Sync {
    /// Stores a new session with the hash of its first refresh token. Sessions whose refresh
    /// token expired before `new.session.created_at` may be deleted on the way: nothing can
    /// revive them.
    fn open_session(&self, new: &NewSession) -> StoreResult<()>;
    /// A session by id, ended or not, while it is kept.
    fn find_session(&self, id: SessionId) -> StoreResult<Option<Session>>;
    /// Redeems a refresh token, in one atomic step. When `presented` is the current refresh
    /// hash of the live session `id` whose expiry is after `now`, that session moves to
    /// `next`, with `last_used_at = now` and `expires_at`, and the answer is
    /// [`Rotation::Rotated`]; of two concurrent calls with the same hash, at most one
    /// rotates. When the session is live and unexpired but `presented` is not its current
    /// hash, the session is ended and the answer is [`Rotation::Reused`]. Otherwise
    /// (unknown, ended or expired) it is [`Rotation::Unknown`] and nothing changes.
    fn rotate(
        &self,
        id: SessionId,
        presented: &RefreshHash,
        next: &RefreshHash,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<Rotation>;
    /// The user's live sessions whose refresh token has not expired by `now`, most recently
    /// used first.
    fn sessions_of(&self, user: UserId, now: DateTime<Utc>) -> StoreResult<Vec<Session>>;
    /// Ends the user's session `id`. `false` when the user has no such live session (another
    /// user's session is not theirs to end, and is left alone).
    fn end_session(&self, user: UserId, id: SessionId) -> StoreResult<bool>;
    /// Ends every live session of the user but `except`, and returns the ids it ended.
    fn end_sessions(&self, user: UserId, except: Option<SessionId>) -> StoreResult<Vec<SessionId>>;
}

/// Mints and reads refresh tokens: opaque to clients, unguessable, and stored only as a
/// hash. The domain does no randomness or hashing of its own.
pub trait RefreshTokens: Send + Sync {
    /// A fresh refresh token for the session, and its hash.
    fn mint(&self, session: SessionId) -> MintedRefresh;
    /// The session a presented token claims and its hash, or `None` if it is not in the form
    /// of a refresh token at all.
    fn read(&self, token: &str) -> Option<PresentedRefresh>;
    /// How long a refresh token can be redeemed after it is issued.
    fn lifetime(&self) -> Duration;
}

// Webhooks (issue #17): the outbox, the endpoints and the deliveries to them.

/// The outbox: events each change writes in its own transaction (see [`crate::webhook`]),
/// until the dispatcher fans them out into deliveries. Nothing is announced that was not
/// stored, and nothing stored is lost before it is fanned out, whatever crashes.
pub trait OutboxStore: Send + Sync {
    /// The oldest events still in the outbox, oldest first, at most `limit`.
    fn pending_events(&self, limit: u32) -> StoreResult<Vec<OutboxEvent>>;
    /// In one transaction: takes (removes) those of the `events` still in the outbox, and for
    /// every delivery whose `source` it took queues one delivery to each registered endpoint,
    /// due at `at`. Returns the ids it took; an event already taken (by a fan-out on another
    /// node) queues nothing here.
    fn fan_out(
        &self,
        events: &[i64],
        deliveries: &[NewDelivery],
        at: DateTime<Utc>,
    ) -> StoreResult<Vec<i64>>;
}

/// Webhook endpoints and the deliveries queued to them.
pub trait WebhookStore: Send + Sync {
    fn insert_webhook(&self, webhook: &Webhook) -> StoreResult<()>;
    /// Every endpoint, oldest first.
    fn webhooks(&self) -> StoreResult<Vec<Webhook>>;
    fn find_webhook(&self, id: WebhookId) -> StoreResult<Option<Webhook>>;
    /// Removes the endpoint with its deliveries and dead letters; `false` when there was none.
    fn delete_webhook(&self, id: WebhookId) -> StoreResult<bool>;
    /// Leases up to `limit` deliveries to `lease.holder` until `lease.until` (their
    /// `next_attempt_at` while leased), lowest id first: pending ones due at `now` and under
    /// no live lease, each either the first
    /// pending delivery of its endpoint and conversation or preceded only by ones claimed in
    /// this same call. So a delivery is never sent while an earlier one of its conversation
    /// to the same endpoint is pending, and two claims (on any nodes) never hold the same
    /// delivery at once.
    fn claim(
        &self,
        lease: &Lease,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<WebhookDelivery>>;
    /// Removes the deliveries that arrived, of those `holder` still holds; returns how many.
    fn delivered(&self, ids: &[i64], holder: &str) -> StoreResult<usize>;
    /// Records a failed attempt of a delivery `holder` holds and lets go of it: one more
    /// attempt, the first attempt's time set if unset, `error` kept; due again at `retry_at`,
    /// or a dead letter when `None`. `false` when `holder` no longer held it.
    fn failed(
        &self,
        id: i64,
        holder: &str,
        error: &str,
        at: DateTime<Utc>,
        retry_at: Option<DateTime<Utc>>,
    ) -> StoreResult<bool>;
    /// Lets go of deliveries `holder` holds, without an attempt: they are due again at `now`.
    fn release(&self, ids: &[i64], holder: &str, now: DateTime<Utc>) -> StoreResult<()>;
    /// Dead letters (of one endpoint, or all), newest first, ids below `before`, at most
    /// `limit`.
    fn dead_letters(
        &self,
        webhook: Option<WebhookId>,
        before: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<WebhookDelivery>>;
    /// Makes a dead letter pending again, due at `now`, its attempts counted afresh (same
    /// event id). `None` when there is no such dead letter.
    fn replay(&self, id: i64, now: DateTime<Utc>) -> StoreResult<Option<WebhookDelivery>>;
}
