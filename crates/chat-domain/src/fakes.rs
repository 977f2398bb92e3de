//! In-memory fakes of every port, for the domain's unit tests.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Duration, TimeZone, Utc};

use crate::admin::{AuditEntry, AuditRecord};
use crate::attachment::{Attachment, BlobKey, ImageInfo, ImageRefused, UploadLimits};
use crate::block::Block;
use crate::conversation::{
    Conversation, ConversationKind, ConversationName, InboxEntry, InboxFilter, Member,
    NewConversation, Role,
};
use crate::events::DomainEvent;
use crate::feed::{FeedEntry, FeedItem, HiddenReply};
use crate::limits::{Limits, Quota};
use crate::mention::{self, MentionCandidates};
use crate::message::{
    AppendOutcome, Appended, Deletion, Emoji, HiddenMessage, HistoryCursor, Marked, Message,
    MessageChanged, MessageContent, NewMessage, Pin, Reaction, ReplyTo, Seq, ThreadSummary,
};
use crate::paging::Page;
use crate::ports::*;
use crate::read_state::{
    Delivered, Delivery, MarkerSet, MemberSettings, ReadMarker, SettingsChanged, SettingsUpdate,
};
use crate::report::{NewReport, Report, ReportStatus, Resolution};
use crate::search::{MessageSearch, SearchHit, SearchOrder};
use crate::service::{AttachmentService, UploadPorts};
use crate::service::{ChatServices, Ports};
use crate::session::{MintedRefresh, NewSession, PresentedRefresh, RefreshHash, Rotation, Session};
use crate::user::{NewUser, Password, PasswordHash, ProfileUpdate, User, UserQuery};
use crate::webhook::{
    DeliveryState, EventKind, EventRefs, Lease, NewDelivery, OutboxEvent, Webhook, WebhookDelivery,
    WebhookId,
};
use crate::{AttachmentId, ConversationId, MessageId, ReportId, SessionId, StoreError, UserId};

#[derive(Default)]
struct State {
    users: Vec<(User, PasswordHash)>,
    conversations: Vec<Conversation>,
    members: HashMap<ConversationId, Vec<Member>>,
    messages: Vec<Message>,
    activity: HashMap<ConversationId, DateTime<Utc>>,
    /// When each read marker last moved.
    read_at: HashMap<(ConversationId, UserId), DateTime<Utc>>,
    /// The seq of each read marker's latest move by marking read or setting it.
    marker_seq: HashMap<(ConversationId, UserId), Seq>,
    /// The seq of each delivered marker's latest move.
    delivered_seq: HashMap<(ConversationId, UserId), Seq>,
    /// Each member's own settings; none: the defaults.
    settings: HashMap<(ConversationId, UserId), StoredSettings>,
    /// The last seq handed out, to a message or a change.
    last_seq: i64,
    revoked: Vec<String>,
    /// Messages deleted for one user only.
    hidden: Vec<HiddenMessage>,
    /// Each conversation's latest change (creation, rename, membership).
    conversation_changes: HashMap<ConversationId, Seq>,
    /// Users removed from conversations, at the removal's seq.
    departures: HashMap<(ConversationId, UserId), (Seq, DateTime<Utc>)>,
    /// Uploads, attached or not.
    attachments: Vec<Attachment>,
    /// Blob records: size and last put.
    blobs: HashMap<BlobKey, (u64, DateTime<Utc>)>,
    /// Blocks as (blocker, blocked, since), oldest first.
    blocks: Vec<(UserId, UserId, DateTime<Utc>)>,
    /// Server admins.
    admins: Vec<UserId>,
    audit: Vec<AuditRecord>,
    /// Users with an open socket, as a test sets them ([`MemoryStore::set_online`]).
    online: Vec<UserId>,
    /// Login sessions with their current refresh hash.
    sessions: Vec<(Session, RefreshHash)>,
    /// Reports, oldest first.
    reports: Vec<Report>,
    /// Webhooks: the outbox, the endpoints and the deliveries with their leases.
    outbox: Vec<OutboxEvent>,
    outbox_id: i64,
    webhooks: Vec<Webhook>,
    deliveries: Vec<(WebhookDelivery, Option<Lease>)>,
    delivery_id: i64,
    /// Presence: each user's last-seen time and whether they hide it.
    last_seen: HashMap<UserId, (Option<DateTime<Utc>>, bool)>,
}

impl State {
    /// Writes an event to the outbox, with the change it announces.
    fn announce(&mut self, kind: EventKind, refs: EventRefs, at: DateTime<Utc>) {
        self.outbox_id += 1;
        self.outbox.push(OutboxEvent {
            id: self.outbox_id,
            kind,
            refs,
            created_at: at,
        });
    }

    /// Where `message` is among the messages, and its conversation, if `user` is a member
    /// of that conversation; [`StoreError::Missing`] otherwise.
    fn member_message(
        &self,
        message: MessageId,
        user: UserId,
    ) -> StoreResult<(usize, ConversationId)> {
        let index = self
            .messages
            .iter()
            .position(|m| m.id == message)
            .ok_or(StoreError::Missing)?;
        let conversation = self.messages[index].conversation_id;
        if !self.is_member(conversation, user) {
            return Err(StoreError::Missing);
        }
        Ok((index, conversation))
    }

    /// Shows the message at `index` as it now stands in every reply to it: the stores derive
    /// a reply's quote when reading, which the fakes stand in for by updating it on change.
    fn requote(&mut self, index: usize) {
        let quoted = ReplyTo::quoting(&self.messages[index]);
        for reply in &mut self.messages {
            if reply.reply_to.as_ref().is_some_and(|r| r.id == quoted.id) {
                reply.reply_to = Some(Box::new(quoted.clone()));
            }
        }
    }

    /// Who `content` from `sender` mentions among the conversation's members now, as a
    /// store's write decides it.
    fn mentions(
        &self,
        conversation: ConversationId,
        sender: UserId,
        candidates: &MentionCandidates,
    ) -> Vec<UserId> {
        if candidates.is_empty() {
            return Vec::new();
        }
        let kind = self
            .conversations
            .iter()
            .find(|c| c.id == conversation)
            .map_or(ConversationKind::Group, |c| c.kind);
        let named: Vec<UserId> = self
            .users
            .iter()
            .filter(|(user, _)| {
                let name = user.username.as_str().to_ascii_lowercase();
                candidates.names.contains(&name)
            })
            .map(|(user, _)| user.id)
            .collect();
        let members = self.members.get(&conversation).into_iter().flatten();
        mention::resolve(candidates, kind, sender, members.map(|m| m.user_id), &named)
    }

    /// Takes the next seq, as a change or a new message does.
    /// Gives a thread's root a new place in the change feed (see
    /// [`Message::restates_root`]).
    fn restate(&mut self, root: Option<MessageId>) {
        let Some(root) = root else { return };
        let seq = self.take_seq();
        if let Some(m) = self.messages.iter_mut().find(|m| m.id == root) {
            m.change_seq = Some(seq);
        }
    }

    fn take_seq(&mut self) -> Seq {
        self.last_seq += 1;
        Seq(self.last_seq)
    }

    /// Whether `message` counts as unread for `user` at all: a thread reply counts only for
    /// the thread's participants.
    fn concerns(&self, message: &Message, user: UserId) -> bool {
        let Some(root) = message.thread_root_id else {
            return true;
        };
        self.messages
            .iter()
            .find(|m| m.id == root)
            .and_then(|root| root.thread.as_ref())
            .is_some_and(|thread| thread.participant_ids.contains(&user))
    }

    /// A page of `all` (ascending by seq) cut as the stores cut history pages.
    fn page(all: Vec<Message>, cursor: HistoryCursor, limit: u32) -> Vec<Message> {
        let limit = limit as usize;
        match cursor {
            HistoryCursor::Latest => all[all.len().saturating_sub(limit)..].to_vec(),
            HistoryCursor::Before(seq) => {
                let before: Vec<_> = all.into_iter().filter(|m| m.seq < seq).collect();
                before[before.len().saturating_sub(limit)..].to_vec()
            }
            HistoryCursor::After(seq) => all
                .into_iter()
                .filter(|m| m.seq > seq)
                .take(limit)
                .collect(),
        }
    }

    fn is_hidden(&self, user: UserId, message: MessageId) -> bool {
        self.hidden
            .iter()
            .any(|h| h.user_id == user && h.message_id == message)
    }

    /// The message and its conversation's kind and members, if `user` is a member.
    fn changing(&mut self, id: MessageId, user: UserId) -> StoreResult<(usize, MessageChanged)> {
        let (at, changed) = self.changing_any(id)?;
        if !changed.members.iter().any(|m| m.user_id == user) {
            return Err(StoreError::Missing);
        }
        Ok((at, changed))
    }

    /// [`Self::changing`] whoever changes it (a server admin moderating).
    fn changing_any(&mut self, id: MessageId) -> StoreResult<(usize, MessageChanged)> {
        let at = self
            .messages
            .iter()
            .position(|m| m.id == id)
            .ok_or(StoreError::Missing)?;
        let message = self.messages[at].clone();
        let members = self
            .members
            .get(&message.conversation_id)
            .cloned()
            .unwrap_or_default();
        let kind = self
            .conversations
            .iter()
            .find(|c| c.id == message.conversation_id)
            .map(|c| c.kind)
            .ok_or(StoreError::Missing)?;
        Ok((
            at,
            MessageChanged {
                message,
                changed: false,
                kind,
                members,
            },
        ))
    }
}

/// A member's settings as a store keeps them.
#[derive(Debug, Clone, Default)]
struct StoredSettings {
    muted_until: Option<DateTime<Utc>>,
    /// Where the archive holds from; `None`: not archived.
    archived_seq: Option<Seq>,
    seq: Option<Seq>,
}

impl State {
    fn last_seq_in(&self, conversation: ConversationId) -> Seq {
        self.messages
            .iter()
            .filter(|m| m.conversation_id == conversation)
            .map(|m| m.seq)
            .max()
            .unwrap_or(Seq::ZERO)
    }

    fn settings_of(
        &self,
        conversation: ConversationId,
        user: UserId,
        now: DateTime<Utc>,
    ) -> MemberSettings {
        let stored = self
            .settings
            .get(&(conversation, user))
            .cloned()
            .unwrap_or_default();
        MemberSettings {
            archived: MemberSettings::still_archived(
                stored.archived_seq,
                self.last_seq_in(conversation),
                stored.muted_until,
                now,
            ),
            muted_until: stored.muted_until,
        }
    }

    fn is_member(&self, conversation: ConversationId, user: UserId) -> bool {
        self.members
            .get(&conversation)
            .is_some_and(|m| m.iter().any(|m| m.user_id == user))
    }

    fn audience(&self, conversation: ConversationId) -> Vec<UserId> {
        self.members[&conversation]
            .iter()
            .map(|m| m.user_id)
            .collect()
    }
}

/// One in-memory store behind every storage port.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
    /// Held from an append until its callback has run, so callbacks run in seq order.
    commits: Mutex<()>,
}

impl MemoryStore {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    pub fn message_count(&self) -> usize {
        self.state().messages.len()
    }

    /// Deletes a message for everyone; `member_required`: as [`MessageStore::delete`],
    /// else as [`MessageStore::moderate_delete`].
    fn delete_for_everyone(
        &self,
        id: MessageId,
        by: UserId,
        member_required: bool,
        at: DateTime<Utc>,
        on_commit: OnChanged<'_>,
    ) -> StoreResult<MessageChanged> {
        let _in_order = self.commits.lock().unwrap();
        let mut state = self.state();
        let (index, mut changed) = if member_required {
            state.changing(id, by)?
        } else {
            state.changing_any(id)?
        };
        if changed.message.is_deleted() {
            return Ok(changed);
        }
        let seq = state.take_seq();
        let root = state.messages[index].restates_root(&[]);
        state.restate(root);
        state.attachments.retain(|a| a.message_id != Some(id));
        let message = &mut state.messages[index];
        message.content = None;
        message.reactions.clear();
        message.pin = None;
        message.reply_to = None;
        message.mentions.clear();
        message.attachments.clear();
        message.deletion = Some(Deletion { at, by });
        message.updated_at = at;
        message.change_seq = Some(seq);
        changed.message = message.clone();
        changed.changed = true;
        state.requote(index);
        let refs = EventRefs {
            conversation_id: Some(changed.message.conversation_id),
            message_id: Some(id),
            user_id: Some(by),
            seq: Some(seq),
            report_id: None,
        };
        state.announce(EventKind::MessageDeleted, refs, at);
        drop(state);
        on_commit(&changed);
        Ok(changed)
    }

    /// Says whether the user has a socket open, for [`PresenceDirectory`].
    pub fn set_online(&self, user: UserId, online: bool) {
        let mut state = self.state();
        state.online.retain(|u| *u != user);
        if online {
            state.online.push(user);
        }
    }
}

impl BlockStore for MemoryStore {
    fn block(&self, blocker: UserId, blocked: UserId, at: DateTime<Utc>) -> StoreResult<bool> {
        let mut state = self.state();
        if state
            .blocks
            .iter()
            .any(|b| b.0 == blocker && b.1 == blocked)
        {
            return Ok(false);
        }
        state.blocks.push((blocker, blocked, at));
        Ok(true)
    }

    fn unblock(&self, blocker: UserId, blocked: UserId) -> StoreResult<bool> {
        let mut state = self.state();
        let before = state.blocks.len();
        state.blocks.retain(|b| !(b.0 == blocker && b.1 == blocked));
        Ok(state.blocks.len() < before)
    }

    fn blocked_by(&self, blocker: UserId) -> StoreResult<Vec<Block>> {
        Ok(self
            .state()
            .blocks
            .iter()
            .rev()
            .filter(|b| b.0 == blocker)
            .map(|b| Block {
                user_id: b.1,
                blocked_at: b.2,
            })
            .collect())
    }

    fn blockers_of(&self, user: UserId, among: &[UserId]) -> StoreResult<Vec<UserId>> {
        let state = self.state();
        Ok(among
            .iter()
            .copied()
            .filter(|a| state.blocks.iter().any(|b| b.0 == *a && b.1 == user))
            .collect())
    }
}

impl PresenceDirectory for MemoryStore {
    fn online_among(&self, users: &[UserId]) -> StoreResult<Vec<UserId>> {
        let state = self.state();
        Ok(users
            .iter()
            .copied()
            .filter(|u| state.online.contains(u))
            .collect())
    }
}

impl PresenceStore for MemoryStore {
    fn record_last_seen(&self, user: UserId, at: DateTime<Utc>) -> StoreResult<()> {
        let mut state = self.state();
        if !state.users.iter().any(|(u, _)| u.id == user) {
            return Err(StoreError::Missing);
        }
        state.last_seen.entry(user).or_default().0 = Some(at);
        Ok(())
    }

    fn set_hide_last_seen(&self, user: UserId, hide: bool) -> StoreResult<()> {
        let mut state = self.state();
        if !state.users.iter().any(|(u, _)| u.id == user) {
            return Err(StoreError::Missing);
        }
        state.last_seen.entry(user).or_default().1 = hide;
        Ok(())
    }

    fn last_seen(&self, users: &[UserId]) -> StoreResult<Vec<crate::presence::LastSeen>> {
        let state = self.state();
        Ok(users
            .iter()
            .filter(|u| state.users.iter().any(|(user, _)| user.id == **u))
            .map(|u| {
                let (last_seen_at, hide_last_seen) =
                    state.last_seen.get(u).copied().unwrap_or_default();
                crate::presence::LastSeen {
                    user_id: *u,
                    last_seen_at,
                    hide_last_seen,
                }
            })
            .collect())
    }

    fn contacts(&self, user: UserId) -> StoreResult<Vec<UserId>> {
        let state = self.state();
        let mut contacts: Vec<UserId> = state
            .members
            .values()
            .filter(|members| members.iter().any(|m| m.user_id == user))
            .flatten()
            .map(|m| m.user_id)
            .filter(|u| *u != user)
            .collect();
        contacts.sort();
        contacts.dedup();
        Ok(contacts)
    }

    fn contacts_among(&self, user: UserId, among: &[UserId]) -> StoreResult<Vec<UserId>> {
        let contacts = self.contacts(user)?;
        Ok(among
            .iter()
            .copied()
            .filter(|u| contacts.contains(u))
            .collect())
    }
}

impl AdminStore for MemoryStore {
    fn is_admin(&self, user: UserId) -> StoreResult<bool> {
        Ok(self.state().admins.contains(&user))
    }

    fn set_admin(&self, user: UserId, admin: bool) -> StoreResult<bool> {
        let mut state = self.state();
        if !state.users.iter().any(|(u, _)| u.id == user) {
            return Err(StoreError::Missing);
        }
        if state.admins.contains(&user) == admin {
            return Ok(false);
        }
        state.admins.retain(|u| *u != user);
        if admin {
            state.admins.push(user);
        }
        Ok(true)
    }

    fn record(&self, entry: &AuditEntry) -> StoreResult<AuditRecord> {
        let mut state = self.state();
        let record = AuditRecord {
            id: state.audit.len() as i64 + 1,
            actor: entry.actor,
            action: entry.action.to_owned(),
            target: entry.target.clone(),
            detail: entry.detail.clone(),
            at: entry.at,
        };
        state.audit.push(record.clone());
        Ok(record)
    }

    fn audit_log(&self, before: Option<i64>, limit: u32) -> StoreResult<Vec<AuditRecord>> {
        Ok(self
            .state()
            .audit
            .iter()
            .rev()
            .filter(|r| before.is_none_or(|before| r.id < before))
            .take(limit as usize)
            .cloned()
            .collect())
    }

    fn reactivate(&self, user: UserId, at: DateTime<Utc>) -> StoreResult<(User, bool)> {
        let mut state = self.state();
        let (user, _) = state
            .users
            .iter_mut()
            .find(|(u, _)| u.id == user)
            .ok_or(StoreError::Missing)?;
        if user.is_active {
            return Ok((user.clone(), false));
        }
        user.is_active = true;
        user.updated_at = at;
        Ok((user.clone(), true))
    }
}

impl ReportStore for MemoryStore {
    fn insert_report(&self, new: &NewReport) -> StoreResult<Report> {
        let mut state = self.state();
        if !state.users.iter().any(|(u, _)| u.id == new.subject_id)
            || new
                .message_id
                .is_some_and(|id| !state.messages.iter().any(|m| m.id == id))
        {
            return Err(StoreError::Missing);
        }
        let report = Report {
            id: new.id,
            reporter_id: new.reporter_id,
            message_id: new.message_id,
            subject_id: new.subject_id,
            reason: new.reason.as_str().to_owned(),
            created_at: new.created_at,
            resolution: None,
        };
        state.reports.push(report.clone());
        let refs = EventRefs {
            conversation_id: None,
            message_id: None,
            user_id: None,
            report_id: Some(report.id.into()),
            seq: None,
        };
        state.announce(EventKind::ReportCreated, refs, report.created_at);
        Ok(report)
    }

    fn find_report(&self, id: ReportId) -> StoreResult<Option<Report>> {
        Ok(self.state().reports.iter().find(|r| r.id == id).cloned())
    }

    fn reports(&self, status: Option<ReportStatus>, limit: u32) -> StoreResult<Vec<Report>> {
        let mut reports: Vec<Report> = self
            .state()
            .reports
            .iter()
            .filter(|r| status.is_none_or(|s| r.status() == s))
            .cloned()
            .collect();
        reports.sort_by_key(|r| std::cmp::Reverse((r.created_at, r.id)));
        reports.truncate(limit as usize);
        Ok(reports)
    }

    fn resolve_report(&self, id: ReportId, resolution: &Resolution) -> StoreResult<(Report, bool)> {
        let mut state = self.state();
        let report = state
            .reports
            .iter_mut()
            .find(|r| r.id == id)
            .ok_or(StoreError::Missing)?;
        if report.resolution.is_some() {
            return Ok((report.clone(), false));
        }
        report.resolution = Some(resolution.clone());
        Ok((report.clone(), true))
    }
}

impl UserStore for MemoryStore {
    fn insert(&self, new: &NewUser) -> StoreResult<User> {
        let mut state = self.state();
        let (username_taken, email_taken) =
            taken(&state, new.username.as_str(), new.email.as_str());
        if username_taken {
            return Err(StoreError::Conflict { field: "username" });
        }
        if email_taken {
            return Err(StoreError::Conflict { field: "email" });
        }
        let user = User {
            id: new.id,
            username: new.username.clone(),
            email: new.email.clone(),
            full_name: new.full_name.clone(),
            avatar_url: None,
            bio: None,
            is_active: true,
            token_generation: 0,
            created_at: new.created_at,
            updated_at: new.created_at,
        };
        state.users.push((user.clone(), new.password_hash.clone()));
        Ok(user)
    }

    fn find(&self, id: UserId) -> StoreResult<Option<User>> {
        Ok(self
            .state()
            .users
            .iter()
            .find(|(u, _)| u.id == id)
            .map(|(u, _)| u.clone()))
    }

    fn find_many(&self, ids: &[UserId]) -> StoreResult<Vec<User>> {
        Ok(self
            .state()
            .users
            .iter()
            .filter(|(u, _)| ids.contains(&u.id))
            .map(|(u, _)| u.clone())
            .collect())
    }

    fn find_credentials(&self, login: &str) -> StoreResult<Option<(User, PasswordHash)>> {
        Ok(self
            .state()
            .users
            .iter()
            .find(|(u, _)| {
                u.username.as_str().eq_ignore_ascii_case(login)
                    || u.email.as_str().eq_ignore_ascii_case(login)
            })
            .cloned())
    }

    fn password_hash(&self, id: UserId) -> StoreResult<Option<PasswordHash>> {
        Ok(self
            .state()
            .users
            .iter()
            .find(|(u, _)| u.id == id)
            .map(|(_, h)| h.clone()))
    }

    fn taken(&self, username: &str, email: &str) -> StoreResult<(bool, bool)> {
        Ok(taken(&self.state(), username, email))
    }

    fn search(&self, query: &UserQuery) -> StoreResult<Vec<User>> {
        let needle = query.text.as_deref().unwrap_or("").to_lowercase();
        let mut users: Vec<User> = self
            .state()
            .users
            .iter()
            .map(|(u, _)| u.clone())
            .filter(|u| {
                u.username.as_str().to_lowercase().contains(&needle)
                    || u.email.as_str().eq_ignore_ascii_case(&needle)
                    || u.full_name
                        .as_deref()
                        .unwrap_or("")
                        .to_lowercase()
                        .contains(&needle)
            })
            .collect();
        let tier = |u: &User| {
            let name = u.username.as_str().to_lowercase();
            let full = u.full_name.as_deref().unwrap_or("").to_lowercase();
            if name == needle || u.email.as_str().eq_ignore_ascii_case(&needle) {
                0
            } else if name.starts_with(&needle) {
                1
            } else if full.starts_with(&needle) || full.contains(&format!(" {needle}")) {
                2
            } else {
                3
            }
        };
        users.sort_by(|a, b| {
            tier(a)
                .cmp(&tier(b))
                .then_with(|| a.username.as_str().cmp(b.username.as_str()))
        });
        Ok(users
            .into_iter()
            .skip(query.page.offset as usize)
            .take(query.page.limit as usize)
            .collect())
    }

    fn update(&self, id: UserId, update: &ProfileUpdate, at: DateTime<Utc>) -> StoreResult<User> {
        let mut state = self.state();
        if let Some(email) = &update.email {
            let clash = state
                .users
                .iter()
                .any(|(u, _)| u.id != id && u.email.as_str().eq_ignore_ascii_case(email.as_str()));
            if clash {
                return Err(StoreError::Conflict { field: "email" });
            }
        }
        let (user, hash) = state
            .users
            .iter_mut()
            .find(|(u, _)| u.id == id)
            .ok_or(StoreError::Missing)?;
        if let Some(email) = &update.email {
            user.email = email.clone();
        }
        if let Some(v) = &update.full_name {
            user.full_name = v.clone();
        }
        if let Some(v) = &update.avatar_url {
            user.avatar_url = v.clone();
        }
        if let Some(v) = &update.bio {
            user.bio = v.clone();
        }
        if let Some(h) = &update.password_hash {
            *hash = h.clone();
            user.token_generation += 1;
        }
        user.updated_at = at;
        Ok(user.clone())
    }

    fn deactivate(&self, id: UserId, at: DateTime<Utc>) -> StoreResult<User> {
        let mut state = self.state();
        let (user, _) = state
            .users
            .iter_mut()
            .find(|(u, _)| u.id == id)
            .ok_or(StoreError::Missing)?;
        user.is_active = false;
        user.token_generation += 1;
        user.updated_at = at;
        Ok(user.clone())
    }
}

impl TokenRevocations for MemoryStore {
    fn revoke(&self, token_id: &str, _expires_at: DateTime<Utc>) -> StoreResult<()> {
        self.state().revoked.push(token_id.to_owned());
        Ok(())
    }

    fn is_revoked(&self, token_id: &str) -> StoreResult<bool> {
        Ok(self.state().revoked.iter().any(|t| t == token_id))
    }
}

fn taken(state: &State, username: &str, email: &str) -> (bool, bool) {
    (
        state
            .users
            .iter()
            .any(|(u, _)| u.username.as_str().eq_ignore_ascii_case(username)),
        state
            .users
            .iter()
            .any(|(u, _)| u.email.as_str().eq_ignore_ascii_case(email)),
    )
}

/// The direct conversation between two users, if they have one.
fn direct_between(state: &State, a: UserId, b: UserId) -> Option<&Conversation> {
    state.conversations.iter().find(|c| {
        c.kind == ConversationKind::Direct && {
            let m = &state.members[&c.id];
            m.iter().any(|m| m.user_id == a) && m.iter().any(|m| m.user_id == b)
        }
    })
}

impl ConversationStore for MemoryStore {
    fn create(&self, new: &NewConversation) -> StoreResult<Seq> {
        let mut state = self.state();
        let c = &new.conversation;
        if let (ConversationKind::Direct, [(a, _), (b, _)]) = (c.kind, new.members.as_slice())
            && direct_between(&state, *a, *b).is_some()
        {
            return Err(StoreError::Conflict {
                field: "direct_conversation",
            });
        }
        state.conversations.push(c.clone());
        state.activity.insert(c.id, c.created_at);
        let members = new
            .members
            .iter()
            .map(|(user_id, role)| Member {
                user_id: *user_id,
                role: *role,
                joined_at: c.created_at,
                last_read_seq: Seq::ZERO,
                last_delivered_seq: Seq::ZERO,
            })
            .collect();
        state.members.insert(c.id, members);
        let seq = state.take_seq();
        state.conversation_changes.insert(c.id, seq);
        let refs = EventRefs {
            conversation_id: Some(c.id),
            user_id: Some(c.created_by),
            seq: Some(seq),
            ..EventRefs::default()
        };
        state.announce(EventKind::ConversationCreated, refs, c.created_at);
        Ok(seq)
    }

    fn find(&self, id: ConversationId) -> StoreResult<Option<Conversation>> {
        Ok(self
            .state()
            .conversations
            .iter()
            .find(|c| c.id == id)
            .cloned())
    }

    fn find_direct(&self, a: UserId, b: UserId) -> StoreResult<Option<Conversation>> {
        Ok(direct_between(&self.state(), a, b).cloned())
    }

    fn members_of(&self, ids: &[ConversationId]) -> StoreResult<Vec<Vec<Member>>> {
        ids.iter()
            .map(|id| ConversationStore::members(self, *id))
            .collect()
    }

    fn members(&self, id: ConversationId) -> StoreResult<Vec<Member>> {
        Ok(self.state().members.get(&id).cloned().unwrap_or_default())
    }

    fn membership(&self, id: ConversationId, user: UserId) -> StoreResult<Option<Member>> {
        Ok(self
            .state()
            .members
            .get(&id)
            .and_then(|m| m.iter().find(|m| m.user_id == user).cloned()))
    }

    fn with_role(&self, user: UserId, role: Role) -> StoreResult<Vec<ConversationId>> {
        Ok(self
            .state()
            .members
            .iter()
            .filter(|(_, members)| members.iter().any(|m| m.user_id == user && m.role == role))
            .map(|(id, _)| *id)
            .collect())
    }

    fn inbox(&self, user: UserId, page: Page, filter: InboxFilter) -> StoreResult<Vec<InboxEntry>> {
        let state = self.state();
        let mut entries: Vec<InboxEntry> = state
            .conversations
            .iter()
            .filter_map(|c| {
                let me = state.members[&c.id].iter().find(|m| m.user_id == user)?;
                let in_conv = state.messages.iter().filter(|m| m.conversation_id == c.id);
                let unread: Vec<&Message> = in_conv
                    .clone()
                    .filter(|m| m.seq > me.last_read_seq && m.sender_id != user)
                    .filter(|m| !m.is_deleted() && !state.is_hidden(user, m.id))
                    .filter(|m| state.concerns(m, user))
                    .collect();
                let settings = state.settings_of(c.id, user, filter.now);
                if filter
                    .archived
                    .is_some_and(|wanted| wanted != settings.archived)
                {
                    return None;
                }
                Some(InboxEntry {
                    conversation: c.clone(),
                    last_message: in_conv
                        .clone()
                        .rfind(|m| m.thread_root_id.is_none())
                        .cloned(),
                    unread_count: unread.len() as u64,
                    unread_mentions: unread.iter().filter(|m| m.mentions.contains(&user)).count()
                        as u64,
                    last_activity_at: state.activity[&c.id],
                    settings,
                })
            })
            .collect();
        entries.sort_by_key(|e| std::cmp::Reverse(e.last_activity_at));
        Ok(entries
            .into_iter()
            .skip(page.offset as usize)
            .take(page.limit as usize)
            .collect())
    }

    fn rename(
        &self,
        id: ConversationId,
        name: &ConversationName,
        at: DateTime<Utc>,
    ) -> StoreResult<(Conversation, Seq)> {
        let mut state = self.state();
        let c = state
            .conversations
            .iter_mut()
            .find(|c| c.id == id)
            .ok_or(StoreError::Missing)?;
        c.name = Some(name.clone());
        c.updated_at = at;
        let renamed = c.clone();
        let seq = state.take_seq();
        state.conversation_changes.insert(id, seq);
        let refs = EventRefs {
            conversation_id: Some(id),
            seq: Some(seq),
            ..EventRefs::default()
        };
        state.announce(EventKind::ConversationRenamed, refs, at);
        Ok((renamed, seq))
    }

    fn add_members(
        &self,
        id: ConversationId,
        users: &[UserId],
        role: Role,
        max_members: usize,
        at: DateTime<Utc>,
    ) -> StoreResult<(Vec<UserId>, Option<Seq>)> {
        let mut state = self.state();
        let members = state.members.get_mut(&id).ok_or(StoreError::Missing)?;
        let added: Vec<UserId> = users
            .iter()
            .copied()
            .filter(|u| !members.iter().any(|m| m.user_id == *u))
            .collect();
        if members.len() + added.len() > max_members {
            return Err(StoreError::Conflict { field: "members" });
        }
        members.extend(added.iter().map(|u| Member {
            user_id: *u,
            role,
            joined_at: at,
            last_read_seq: Seq::ZERO,
            last_delivered_seq: Seq::ZERO,
        }));
        if added.is_empty() {
            return Ok((added, None));
        }
        for user in &added {
            state.departures.remove(&(id, *user));
        }
        let seq = state.take_seq();
        state.conversation_changes.insert(id, seq);
        for user in &added {
            let refs = EventRefs {
                conversation_id: Some(id),
                user_id: Some(*user),
                seq: Some(seq),
                ..EventRefs::default()
            };
            state.announce(EventKind::MemberAdded, refs, at);
        }
        Ok((added, Some(seq)))
    }

    fn remove_member(
        &self,
        id: ConversationId,
        user: UserId,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<Seq>> {
        let mut state = self.state();
        let Some(members) = state.members.get_mut(&id) else {
            return Ok(None);
        };
        let before = members.len();
        members.retain(|m| m.user_id != user);
        if members.len() == before {
            return Ok(None);
        }
        // The membership row goes, and with it what the member set for themselves.
        state.settings.remove(&(id, user));
        state.marker_seq.remove(&(id, user));
        state.delivered_seq.remove(&(id, user));
        let seq = state.take_seq();
        state.conversation_changes.insert(id, seq);
        state.departures.insert((id, user), (seq, at));
        let refs = EventRefs {
            conversation_id: Some(id),
            user_id: Some(user),
            seq: Some(seq),
            ..EventRefs::default()
        };
        state.announce(EventKind::MemberRemoved, refs, at);
        Ok(Some(seq))
    }

    fn set_role(&self, id: ConversationId, user: UserId, role: Role) -> StoreResult<Seq> {
        let mut state = self.state();
        let member = state
            .members
            .get_mut(&id)
            .and_then(|m| m.iter_mut().find(|m| m.user_id == user))
            .ok_or(StoreError::Missing)?;
        member.role = role;
        let seq = state.take_seq();
        state.conversation_changes.insert(id, seq);
        Ok(seq)
    }

    fn settings(
        &self,
        id: ConversationId,
        user: UserId,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<MemberSettings>> {
        let state = self.state();
        Ok(state
            .is_member(id, user)
            .then(|| state.settings_of(id, user, now)))
    }

    fn update_settings(
        &self,
        id: ConversationId,
        user: UserId,
        update: &SettingsUpdate,
        at: DateTime<Utc>,
    ) -> StoreResult<SettingsChanged> {
        let mut state = self.state();
        if !state.is_member(id, user) {
            return Err(StoreError::Missing);
        }
        let seq = state.take_seq();
        let stored = state.settings.entry((id, user)).or_default();
        if let Some(muted_until) = update.muted_until {
            stored.muted_until = muted_until;
        }
        match update.archived {
            Some(true) => stored.archived_seq = Some(seq),
            Some(false) => stored.archived_seq = None,
            None => {}
        }
        stored.seq = Some(seq);
        Ok(SettingsChanged {
            conversation_id: id,
            user_id: user,
            settings: state.settings_of(id, user, at),
            seq,
        })
    }

    fn muted(&self, user: UserId, now: DateTime<Utc>) -> StoreResult<Vec<ConversationId>> {
        let state = self.state();
        Ok(state
            .settings
            .iter()
            .filter(|((_, u), s)| *u == user && s.muted_until.is_some_and(|t| t > now))
            .map(|((c, _), _)| *c)
            .filter(|c| state.is_member(*c, user))
            .collect())
    }
}

impl MemoryStore {
    fn append_now(&self, new: &NewMessage) -> StoreResult<AppendOutcome> {
        let mut state = self.state();
        let kind = state
            .conversations
            .iter()
            .find(|c| c.id == new.conversation_id)
            .map(|c| c.kind)
            .ok_or(StoreError::Missing)?;
        let is_member = state
            .members
            .get(&new.conversation_id)
            .is_some_and(|m| m.iter().any(|m| m.user_id == new.sender_id));
        if !is_member {
            return Err(StoreError::Missing);
        }
        let existing = new.client_message_id.as_ref().and_then(|cmid| {
            state.messages.iter().find(|m| {
                m.conversation_id == new.conversation_id
                    && m.sender_id == new.sender_id
                    && m.client_message_id.as_ref() == Some(cmid)
            })
        });
        let appended = match existing {
            Some(existing) => Appended::Existing(existing.clone()),
            None => {
                if kind == ConversationKind::Direct {
                    let deactivated = state.members[&new.conversation_id]
                        .iter()
                        .map(|m| m.user_id)
                        .filter(|&id| id != new.sender_id)
                        .find(|&id| {
                            state
                                .users
                                .iter()
                                .any(|(user, _)| user.id == id && !user.is_active)
                        });
                    if let Some(user) = deactivated {
                        return Err(StoreError::Deactivated(user));
                    }
                    let blocked = state.members[&new.conversation_id].iter().any(|m| {
                        state
                            .blocks
                            .iter()
                            .any(|b| b.0 == m.user_id && b.1 == new.sender_id)
                    });
                    if blocked {
                        return Err(StoreError::Blocked);
                    }
                }
                let reply_to = match new.reply_to_id {
                    None => None,
                    Some(target) => match state.messages.iter().find(|m| m.id == target) {
                        Some(original)
                            if original.conversation_id == new.conversation_id
                                && !original.is_deleted() =>
                        {
                            Some(ReplyTo::quoting(original))
                        }
                        _ => return Err(StoreError::ReplyTarget),
                    },
                };
                let root = match new.thread_root_id {
                    None => None,
                    Some(root) => match state.messages.iter().position(|m| m.id == root) {
                        Some(at)
                            if state.messages[at].conversation_id == new.conversation_id
                                && !state.messages[at].is_deleted()
                                && state.messages[at].thread_root_id.is_none() =>
                        {
                            Some(at)
                        }
                        _ => return Err(StoreError::ThreadRoot),
                    },
                };
                let attachable = new.attachment_ids.iter().all(|id| {
                    state.attachments.iter().any(|a| {
                        a.id == *id && a.uploader_id == new.sender_id && a.message_id.is_none()
                    })
                });
                if !attachable {
                    return Err(StoreError::Attachments);
                }
                let seq = state.take_seq();
                let mut attached = Vec::with_capacity(new.attachment_ids.len());
                for id in &new.attachment_ids {
                    if let Some(a) = state.attachments.iter_mut().find(|a| a.id == *id) {
                        a.message_id = Some(new.id);
                        a.conversation_id = Some(new.conversation_id);
                        attached.push(a.clone());
                    }
                }
                let members = state.members.get_mut(&new.conversation_id);
                if let Some(sender) =
                    members.and_then(|m| m.iter_mut().find(|m| m.user_id == new.sender_id))
                {
                    sender.last_read_seq = seq;
                }
                state
                    .read_at
                    .insert((new.conversation_id, new.sender_id), new.created_at);
                let mentions = state.mentions(new.conversation_id, new.sender_id, &new.mentions);
                let mut message = new.stored_as(seq, reply_to, mentions);
                message.attachments = attached;
                state.messages.push(message.clone());
                let refs = EventRefs {
                    conversation_id: Some(message.conversation_id),
                    message_id: Some(message.id),
                    user_id: Some(message.sender_id),
                    seq: Some(message.seq),
                    report_id: None,
                };
                state.announce(EventKind::MessageCreated, refs, message.created_at);
                match root {
                    // A thread reply is no activity of the conversation's main history.
                    Some(at) => {
                        let root = &mut state.messages[at];
                        let thread = root.thread.take().map(|thread| *thread);
                        root.thread =
                            ThreadSummary::count(thread, root.sender_id, &message).map(Box::new);
                    }
                    None => {
                        state.activity.insert(new.conversation_id, new.created_at);
                    }
                }
                Appended::Created(message)
            }
        };
        let outcome = AppendOutcome {
            appended,
            kind,
            members: state.members[&new.conversation_id].clone(),
        };
        Ok(outcome)
    }
}

impl MessageStore for MemoryStore {
    fn submit(&self, new: NewMessage, done: OnAppended) {
        let _in_order = self.commits.lock().unwrap();
        done(self.append_now(&new));
    }

    fn find(&self, id: MessageId) -> StoreResult<Option<Message>> {
        Ok(self.state().messages.iter().find(|m| m.id == id).cloned())
    }

    fn history(
        &self,
        conversation: ConversationId,
        cursor: HistoryCursor,
        limit: u32,
    ) -> StoreResult<Vec<Message>> {
        let state = self.state();
        let all: Vec<Message> = state
            .messages
            .iter()
            .filter(|m| m.conversation_id == conversation && m.thread_root_id.is_none())
            .cloned()
            .collect();
        Ok(State::page(all, cursor, limit))
    }

    fn thread(
        &self,
        root: MessageId,
        cursor: HistoryCursor,
        limit: u32,
    ) -> StoreResult<Vec<Message>> {
        let state = self.state();
        let all: Vec<Message> = state
            .messages
            .iter()
            .filter(|m| m.thread_root_id == Some(root))
            .cloned()
            .collect();
        Ok(State::page(all, cursor, limit))
    }

    fn since(&self, user: UserId, since: Seq, limit: u32) -> StoreResult<Vec<Message>> {
        let state = self.state();
        Ok(state
            .messages
            .iter()
            .filter(|m| m.seq > since && !state.is_hidden(user, m.id))
            .filter(|m| {
                state.members[&m.conversation_id]
                    .iter()
                    .any(|x| x.user_id == user)
            })
            .take(limit as usize)
            .cloned()
            .collect())
    }

    fn last_seq_for(&self, user: UserId) -> StoreResult<Seq> {
        let state = self.state();
        Ok(state
            .messages
            .iter()
            .filter(|m| {
                state.members[&m.conversation_id]
                    .iter()
                    .any(|x| x.user_id == user)
            })
            .map(|m| m.seq)
            .max()
            .unwrap_or(Seq::ZERO))
    }

    fn latest_seq(&self) -> StoreResult<Seq> {
        Ok(Seq(self.state().last_seq))
    }

    fn edit(
        &self,
        id: MessageId,
        editor: UserId,
        content: &MessageContent,
        at: DateTime<Utc>,
        on_commit: OnChanged<'_>,
    ) -> StoreResult<MessageChanged> {
        let _in_order = self.commits.lock().unwrap();
        let mut state = self.state();
        let (index, mut changed) = state.changing(id, editor)?;
        if changed.message.is_deleted() || changed.message.content.as_ref() == Some(content) {
            return Ok(changed);
        }
        let seq = state.take_seq();
        let mentions = state.mentions(
            changed.message.conversation_id,
            changed.message.sender_id,
            &MentionCandidates::parse(content.as_str()),
        );
        let root = state.messages[index].restates_root(&mentions);
        state.restate(root);
        let message = &mut state.messages[index];
        message.content = Some(content.clone());
        message.mentions = mentions;
        message.edited_at = Some(at);
        message.updated_at = at;
        message.change_seq = Some(seq);
        changed.message = message.clone();
        changed.changed = true;
        state.requote(index);
        let refs = EventRefs {
            conversation_id: Some(changed.message.conversation_id),
            message_id: Some(id),
            user_id: Some(editor),
            seq: Some(seq),
            report_id: None,
        };
        state.announce(EventKind::MessageEdited, refs, at);
        drop(state);
        on_commit(&changed);
        Ok(changed)
    }

    fn delete(
        &self,
        id: MessageId,
        by: UserId,
        at: DateTime<Utc>,
        on_commit: OnChanged<'_>,
    ) -> StoreResult<MessageChanged> {
        self.delete_for_everyone(id, by, true, at, on_commit)
    }

    fn moderate_delete(
        &self,
        id: MessageId,
        by: UserId,
        at: DateTime<Utc>,
        on_commit: OnChanged<'_>,
    ) -> StoreResult<MessageChanged> {
        self.delete_for_everyone(id, by, false, at, on_commit)
    }

    fn hide(
        &self,
        id: MessageId,
        user: UserId,
        on_commit: &mut dyn FnMut(&HiddenMessage),
    ) -> StoreResult<(HiddenMessage, bool)> {
        let _in_order = self.commits.lock().unwrap();
        let mut state = self.state();
        let (_, changed) = state.changing(id, user)?;
        if let Some(before) = state
            .hidden
            .iter()
            .find(|h| h.user_id == user && h.message_id == id)
        {
            return Ok((*before, false));
        }
        let hidden = HiddenMessage {
            user_id: user,
            message_id: id,
            conversation_id: changed.message.conversation_id,
            seq: state.take_seq(),
        };
        state.hidden.push(hidden);
        state.restate(changed.message.restates_root(&[]));
        drop(state);
        on_commit(&hidden);
        Ok((hidden, true))
    }

    fn hidden_among(&self, user: UserId, ids: &[MessageId]) -> StoreResult<Vec<MessageId>> {
        let state = self.state();
        Ok(ids
            .iter()
            .copied()
            .filter(|id| state.is_hidden(user, *id))
            .collect())
    }

    fn react(
        &self,
        message: MessageId,
        user: UserId,
        emoji: &Emoji,
        max_emoji: usize,
        _at: DateTime<Utc>,
    ) -> StoreResult<Marked> {
        let mut state = self.state();
        let (index, conversation) = state.member_message(message, user)?;
        if state.messages[index].is_deleted() {
            return Ok(Marked::MessageDeleted);
        }
        let reactions = &state.messages[index].reactions;
        let count = match reactions.iter().find(|r| &r.emoji == emoji) {
            Some(r) if r.user_ids.contains(&user) => return Ok(Marked::Unchanged),
            Some(r) => r.count() + 1,
            None if reactions.len() >= max_emoji => return Ok(Marked::OverCap),
            None => 1,
        };
        let seq = state.take_seq();
        let reactions = &mut state.messages[index].reactions;
        match reactions.iter_mut().find(|r| &r.emoji == emoji) {
            Some(r) => r.user_ids.push(user),
            None => reactions.push(Reaction {
                emoji: emoji.clone(),
                user_ids: vec![user],
            }),
        }
        state.messages[index].change_seq = Some(seq);
        Ok(Marked::Changed {
            seq,
            count,
            conversation_id: conversation,
            audience: state.audience(conversation),
        })
    }

    fn unreact(&self, message: MessageId, user: UserId, emoji: &Emoji) -> StoreResult<Marked> {
        let mut state = self.state();
        let (index, conversation) = state.member_message(message, user)?;
        let held = state.messages[index]
            .reactions
            .iter()
            .any(|r| &r.emoji == emoji && r.user_ids.contains(&user));
        if !held {
            return Ok(Marked::Unchanged);
        }
        let seq = state.take_seq();
        let reactions = &mut state.messages[index].reactions;
        let mut count = 0;
        for r in reactions.iter_mut().filter(|r| &r.emoji == emoji) {
            r.user_ids.retain(|&u| u != user);
            count = r.count();
        }
        reactions.retain(|r| r.count() > 0);
        state.messages[index].change_seq = Some(seq);
        Ok(Marked::Changed {
            seq,
            count,
            conversation_id: conversation,
            audience: state.audience(conversation),
        })
    }

    fn pin(
        &self,
        conversation: ConversationId,
        message: MessageId,
        user: UserId,
        max_pins: usize,
        at: DateTime<Utc>,
    ) -> StoreResult<Marked> {
        let mut state = self.state();
        let index = state
            .messages
            .iter()
            .position(|m| m.id == message && m.conversation_id == conversation)
            .ok_or(StoreError::Missing)?;
        if !state.is_member(conversation, user) {
            return Err(StoreError::Missing);
        }
        if state.messages[index].is_deleted() {
            return Ok(Marked::MessageDeleted);
        }
        if state.messages[index].pin.is_some() {
            return Ok(Marked::Unchanged);
        }
        let pinned = state
            .messages
            .iter()
            .filter(|m| m.conversation_id == conversation && m.pin.is_some())
            .count();
        if pinned >= max_pins {
            return Ok(Marked::OverCap);
        }
        let seq = state.take_seq();
        state.messages[index].pin = Some(Pin {
            pinned_at: at,
            pinned_by: user,
        });
        state.messages[index].change_seq = Some(seq);
        Ok(Marked::Changed {
            seq,
            count: pinned + 1,
            conversation_id: conversation,
            audience: state.audience(conversation),
        })
    }

    fn unpin(
        &self,
        conversation: ConversationId,
        message: MessageId,
        user: UserId,
    ) -> StoreResult<Marked> {
        let mut state = self.state();
        let index = state
            .messages
            .iter()
            .position(|m| m.id == message && m.conversation_id == conversation)
            .ok_or(StoreError::Missing)?;
        if !state.is_member(conversation, user) {
            return Err(StoreError::Missing);
        }
        if state.messages[index].pin.take().is_none() {
            return Ok(Marked::Unchanged);
        }
        let seq = state.take_seq();
        state.messages[index].change_seq = Some(seq);
        let count = state
            .messages
            .iter()
            .filter(|m| m.conversation_id == conversation && m.pin.is_some())
            .count();
        Ok(Marked::Changed {
            seq,
            count,
            conversation_id: conversation,
            audience: state.audience(conversation),
        })
    }

    fn pins(&self, conversation: ConversationId) -> StoreResult<Vec<Message>> {
        let state = self.state();
        let mut pinned: Vec<Message> = state
            .messages
            .iter()
            .filter(|m| m.conversation_id == conversation && m.pin.is_some())
            .cloned()
            .collect();
        let change = |m: &Message| m.change_seq;
        pinned.sort_by(|a, b| {
            let key = |m: &Message| (m.pin.as_ref().map(|p| p.pinned_at), change(m));
            key(b).cmp(&key(a))
        });
        Ok(pinned)
    }
}

impl MemoryStore {
    /// Records a change to a message the way an edit, reaction or pin does: at a new seq.
    pub fn change_message(&self, id: MessageId) -> Seq {
        let mut state = self.state();
        let seq = state.take_seq();
        if let Some(message) = state.messages.iter_mut().find(|m| m.id == id) {
            message.change_seq = Some(seq);
        }
        seq
    }

    /// Deletes a message for everyone at a new seq.
    pub fn delete_message(&self, id: MessageId, by: UserId, at: DateTime<Utc>) -> Seq {
        let mut state = self.state();
        if let Some(index) = state.messages.iter().position(|m| m.id == id) {
            state.attachments.retain(|a| a.message_id != Some(id));
            let message = &mut state.messages[index];
            message.content = None;
            message.reactions.clear();
            message.pin = None;
            message.reply_to = None;
            message.mentions.clear();
            message.attachments.clear();
            message.deletion = Some(Deletion { at, by });
            state.requote(index);
        }
        drop(state);
        self.change_message(id)
    }

    /// Hides a message from one user at a new seq.
    pub fn hide_message(&self, user: UserId, id: MessageId) -> Seq {
        let mut state = self.state();
        let seq = state.take_seq();
        let conversation_id = state
            .messages
            .iter()
            .find(|m| m.id == id)
            .map(|m| m.conversation_id)
            .expect("a stored message");
        state.hidden.push(HiddenMessage {
            user_id: user,
            message_id: id,
            conversation_id,
            seq,
        });
        seq
    }

    /// Moves a member's read marker to `to` (either way) at a new seq.
    pub fn set_marker(&self, conversation: ConversationId, user: UserId, to: Seq) -> Seq {
        let mut state = self.state();
        let seq = state.take_seq();
        if let Some(member) = state
            .members
            .get_mut(&conversation)
            .and_then(|m| m.iter_mut().find(|m| m.user_id == user))
        {
            member.last_read_seq = to;
        }
        state.marker_seq.insert((conversation, user), seq);
        seq
    }

    /// Changes a member's own settings at a new seq.
    pub fn set_settings(
        &self,
        conversation: ConversationId,
        user: UserId,
        muted_until: Option<DateTime<Utc>>,
        archived: bool,
    ) -> Seq {
        let mut state = self.state();
        let seq = state.take_seq();
        state.settings.insert(
            (conversation, user),
            StoredSettings {
                muted_until,
                archived_seq: archived.then_some(seq),
                seq: Some(seq),
            },
        );
        seq
    }
}

impl SearchStore for MemoryStore {
    /// Naively: every message is matched with [`SearchQuery::matches`], and scored by how
    /// many of its words match a term, for its number of words.
    fn search_messages(
        &self,
        user: UserId,
        search: &MessageSearch,
        limit: u32,
    ) -> StoreResult<Vec<SearchHit>> {
        let state = self.state();
        let f = &search.filters;
        let mut hits: Vec<SearchHit> = state
            .messages
            .iter()
            .rev()
            .filter(|m| {
                state.members[&m.conversation_id]
                    .iter()
                    .any(|x| x.user_id == user)
                    && !state.is_hidden(user, m.id)
                    && f.conversation.is_none_or(|c| m.conversation_id == c)
                    && f.sender.is_none_or(|s| m.sender_id == s)
                    && f.before.is_none_or(|b| m.seq < b)
                    && f.after.is_none_or(|a| m.seq > a)
                    && m.text().is_some_and(|t| search.query.matches(t))
            })
            .map(|m| SearchHit {
                message: m.clone(),
                score: 0.0,
            })
            .collect();
        if search.order == SearchOrder::Relevance {
            hits.truncate(MessageSearch::RELEVANCE_WINDOW);
            for hit in &mut hits {
                let text = hit.message.text().unwrap_or("");
                let words = crate::search::words(text).count().max(1);
                let matched: usize = search.query.highlights(text).len();
                hit.score = matched as f64 / words as f64;
            }
            hits.sort_by(|a, b| {
                b.score
                    .total_cmp(&a.score)
                    .then(b.message.seq.cmp(&a.message.seq))
            });
        }
        Ok(hits
            .into_iter()
            .filter(|h| {
                search
                    .cursor
                    .is_none_or(|c| c.precedes(h.score, h.message.seq))
            })
            .take(limit as usize)
            .collect())
    }
}

impl AttachmentStore for MemoryStore {
    fn touch_blob(&self, key: &BlobKey, size: u64, at: DateTime<Utc>) -> StoreResult<()> {
        self.state().blobs.insert(key.clone(), (size, at));
        Ok(())
    }

    fn insert_upload(&self, attachment: &Attachment, quota_bytes: u64) -> StoreResult<bool> {
        let mut state = self.state();
        let used: u64 = state
            .attachments
            .iter()
            .filter(|a| a.uploader_id == attachment.uploader_id)
            .map(|a| a.size)
            .sum();
        if used + attachment.size > quota_bytes {
            return Ok(false);
        }
        state.attachments.push(attachment.clone());
        Ok(true)
    }

    fn find_upload(&self, id: AttachmentId) -> StoreResult<Option<Attachment>> {
        Ok(self
            .state()
            .attachments
            .iter()
            .find(|a| a.id == id)
            .cloned())
    }

    fn used_bytes(&self, user: UserId) -> StoreResult<u64> {
        Ok(self
            .state()
            .attachments
            .iter()
            .filter(|a| a.uploader_id == user)
            .map(|a| a.size)
            .sum())
    }

    fn remove_unattached(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let mut state = self.state();
        let was = state.attachments.len();
        state
            .attachments
            .retain(|a| a.message_id.is_some() || a.created_at >= before);
        Ok((was - state.attachments.len()) as u64)
    }

    fn take_unreferenced_blobs(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<BlobKey>> {
        let mut state = self.state();
        let mut taken: Vec<BlobKey> = state
            .blobs
            .iter()
            .filter(|(key, (_, at))| {
                *at < before
                    && !state.attachments.iter().any(|a| {
                        &a.blob_key == *key || a.thumbnail.as_ref().is_some_and(|t| &t.key == *key)
                    })
            })
            .map(|(key, _)| key.clone())
            .collect();
        taken.sort();
        taken.truncate(limit as usize);
        for key in &taken {
            state.blobs.remove(key);
        }
        Ok(taken)
    }
}

/// Blobs in memory.
#[derive(Default)]
pub struct MemoryBlobs(pub Mutex<HashMap<BlobKey, Vec<u8>>>);

impl BlobStore for MemoryBlobs {
    fn put(&self, key: &BlobKey, staged: &std::path::Path) -> StoreResult<()> {
        let bytes = std::fs::read(staged).map_err(|e| StoreError::Unavailable(e.to_string()))?;
        self.put_bytes(key, &bytes)
    }

    fn put_bytes(&self, key: &BlobKey, bytes: &[u8]) -> StoreResult<()> {
        self.0
            .lock()
            .unwrap()
            .entry(key.clone())
            .or_insert_with(|| bytes.to_vec());
        Ok(())
    }

    fn open(
        &self,
        key: &BlobKey,
        range: Option<std::ops::Range<u64>>,
    ) -> StoreResult<Option<Box<dyn std::io::Read + Send>>> {
        let blobs = self.0.lock().unwrap();
        Ok(blobs.get(key).map(|bytes| {
            let len = bytes.len() as u64;
            let range = range.unwrap_or(0..len);
            let (start, end) = (range.start.min(len) as usize, range.end.min(len) as usize);
            Box::new(std::io::Cursor::new(bytes[start..end].to_vec()))
                as Box<dyn std::io::Read + Send>
        }))
    }

    fn delete(&self, key: &BlobKey) -> StoreResult<()> {
        self.0.lock().unwrap().remove(key);
        Ok(())
    }
}

/// Sniffs PNG by its signature and calls every PNG 1000x500 (refusing more than
/// `max_pixels`), with a thumbnail of bytes `thumb`.
pub struct FakeMedia;

impl MediaInspector for FakeMedia {
    fn sniff(&self, head: &[u8]) -> Option<&'static str> {
        head.starts_with(b"\x89PNG").then_some("image/png")
    }

    fn image(
        &self,
        _file: &std::path::Path,
        _content_type: &str,
        _thumbnail_side: u32,
        max_pixels: u64,
    ) -> Result<ImageInfo, ImageRefused> {
        if 500_000 > max_pixels {
            return Err(ImageRefused::TooLarge {
                width: 1000,
                height: 500,
                max_pixels,
            });
        }
        Ok(ImageInfo {
            width: 1000,
            height: 500,
            thumbnail: Some((b"thumb".to_vec(), "image/jpeg")),
        })
    }
}

/// A stand-in for SHA-256: distinct enough for tests.
pub fn fake_digest(bytes: &[u8]) -> BlobKey {
    let mut digest = [0u8; 32];
    for (i, byte) in bytes.iter().enumerate() {
        digest[i % 32] = digest[i % 32].wrapping_mul(31).wrapping_add(*byte);
    }
    digest[31] = digest[31].wrapping_add(bytes.len() as u8);
    BlobKey::from_digest(&digest)
}

impl FeedStore for MemoryStore {
    fn feed(&self, user: UserId, since: Seq, limit: u32) -> StoreResult<Vec<FeedItem>> {
        let state = self.state();
        let is_in = |c: &ConversationId| state.is_member(*c, user);
        let mut items = Vec::new();
        for m in state.messages.iter().filter(|m| is_in(&m.conversation_id)) {
            let position = m.change_seq.unwrap_or(m.seq);
            if position <= since || state.is_hidden(user, m.id) {
                continue;
            }
            items.push(FeedItem {
                position,
                entry: FeedEntry::Message(m.clone()),
            });
        }
        for hidden in &state.hidden {
            if hidden.user_id == user && hidden.seq > since && is_in(&hidden.conversation_id) {
                items.push(FeedItem {
                    position: hidden.seq,
                    entry: FeedEntry::Hidden {
                        conversation_id: hidden.conversation_id,
                        message_id: hidden.message_id,
                        thread_reply: state
                            .messages
                            .iter()
                            .find(|m| m.id == hidden.message_id)
                            .and_then(|m| {
                                Some(HiddenReply {
                                    thread_root_id: m.thread_root_id?,
                                    seq: m.seq,
                                    sender_id: m.sender_id,
                                    created_at: m.created_at,
                                })
                            }),
                    },
                });
            }
        }
        for ((c, member_id), seq) in &state.marker_seq {
            let member = state
                .members
                .get(c)
                .and_then(|m| m.iter().find(|m| m.user_id == *member_id));
            let (Some(member), true) = (member, *seq > since && is_in(c)) else {
                continue;
            };
            let at = member.last_read_seq;
            items.push(FeedItem {
                position: *seq,
                entry: FeedEntry::Marker {
                    marker: ReadMarker {
                        conversation_id: *c,
                        user_id: *member_id,
                        last_read_seq: at,
                        read_at: state
                            .read_at
                            .get(&(*c, *member_id))
                            .copied()
                            .unwrap_or(member.joined_at),
                        seq: Some(*seq),
                    },
                    message_id: state
                        .messages
                        .iter()
                        .find(|m| m.conversation_id == *c && m.seq == at)
                        .map(|m| m.id),
                },
            });
        }
        for ((c, member_id), seq) in &state.delivered_seq {
            let member = state
                .members
                .get(c)
                .and_then(|m| m.iter().find(|m| m.user_id == *member_id));
            let shown = *seq > since && is_in(c) && *member_id != user;
            let (Some(member), true) = (member, shown) else {
                continue;
            };
            items.push(FeedItem {
                position: *seq,
                entry: FeedEntry::Delivered(Delivered {
                    conversation_id: *c,
                    user_id: *member_id,
                    last_delivered_seq: member.last_delivered_seq,
                    seq: *seq,
                }),
            });
        }
        for ((c, member_id), stored) in &state.settings {
            let Some(seq) = stored.seq.filter(|seq| *seq > since) else {
                continue;
            };
            if *member_id == user && is_in(c) {
                let settings = state.settings_of(*c, user, Utc::now());
                items.push(FeedItem {
                    position: seq,
                    entry: FeedEntry::Settings {
                        conversation_id: *c,
                        muted_until: settings.muted_until,
                        archived: settings.archived,
                    },
                });
            }
        }
        for c in state.conversations.iter().filter(|c| is_in(&c.id)) {
            if let Some(seq) = state
                .conversation_changes
                .get(&c.id)
                .filter(|s| **s > since)
            {
                items.push(FeedItem {
                    position: *seq,
                    entry: FeedEntry::Conversation(c.clone()),
                });
            }
        }
        for ((c, departed), (seq, at)) in &state.departures {
            if *departed == user && *seq > since {
                items.push(FeedItem {
                    position: *seq,
                    entry: FeedEntry::Departure {
                        conversation_id: *c,
                        departed_at: *at,
                    },
                });
            }
        }
        items.sort_by_key(|item| item.position);
        items.truncate(limit as usize);
        Ok(items)
    }
}

impl ReadReceiptStore for MemoryStore {
    fn advance(
        &self,
        conversation: ConversationId,
        user: UserId,
        seq: Seq,
        at: DateTime<Utc>,
    ) -> StoreResult<ReadMarker> {
        let mut state = self.state();
        let member = state
            .members
            .get_mut(&conversation)
            .and_then(|m| m.iter_mut().find(|m| m.user_id == user))
            .ok_or(StoreError::Missing)?;
        let moved = seq > member.last_read_seq;
        member.last_read_seq = member.last_read_seq.max(seq);
        let last_read_seq = member.last_read_seq;
        let read_at = if moved {
            let change = state.take_seq();
            state.marker_seq.insert((conversation, user), change);
            state.read_at.insert((conversation, user), at);
            at
        } else {
            state
                .read_at
                .get(&(conversation, user))
                .copied()
                .unwrap_or(at)
        };
        Ok(ReadMarker {
            conversation_id: conversation,
            user_id: user,
            last_read_seq,
            read_at,
            seq: state.marker_seq.get(&(conversation, user)).copied(),
        })
    }

    fn set_marker(
        &self,
        conversation: ConversationId,
        user: UserId,
        seq: Seq,
        at: DateTime<Utc>,
    ) -> StoreResult<MarkerSet> {
        let mut state = self.state();
        if !state.is_member(conversation, user) {
            return Err(StoreError::Missing);
        }
        let onto = state
            .messages
            .iter()
            .rfind(|m| m.conversation_id == conversation && m.seq <= seq)
            .map(|m| (m.seq, m.id));
        let last_read_seq = onto.map_or(Seq::ZERO, |(seq, _)| seq);
        let change = state.take_seq();
        let member = state
            .members
            .get_mut(&conversation)
            .and_then(|m| m.iter_mut().find(|m| m.user_id == user))
            .ok_or(StoreError::Missing)?;
        let previous = member.last_read_seq;
        member.last_read_seq = last_read_seq;
        let raise = last_read_seq < previous && member.last_delivered_seq < previous;
        if raise {
            member.last_delivered_seq = previous;
        }
        state.marker_seq.insert((conversation, user), change);
        if raise {
            let delivered = state.take_seq();
            state.delivered_seq.insert((conversation, user), delivered);
        }
        state.read_at.insert((conversation, user), at);
        let unread_count = state
            .messages
            .iter()
            .filter(|m| {
                m.conversation_id == conversation && m.seq > last_read_seq && m.sender_id != user
            })
            .filter(|m| !m.is_deleted() && !state.is_hidden(user, m.id))
            .filter(|m| state.concerns(m, user))
            .count() as u64;
        let unread_mentions = state
            .messages
            .iter()
            .filter(|m| m.conversation_id == conversation && m.seq > last_read_seq)
            .filter(|m| m.mentions.contains(&user) && !state.is_hidden(user, m.id))
            .count() as u64;
        Ok(MarkerSet {
            marker: ReadMarker {
                conversation_id: conversation,
                user_id: user,
                last_read_seq,
                read_at: at,
                seq: Some(change),
            },
            message_id: onto.map(|(_, id)| id),
            previous,
            unread_count,
            unread_mentions,
        })
    }

    fn deliver(&self, deliveries: &[Delivery]) -> StoreResult<Vec<Delivered>> {
        let mut state = self.state();
        let mut moved = Vec::new();
        for d in Delivery::highest_per_member(deliveries) {
            let Some(member) = state
                .members
                .get_mut(&d.conversation_id)
                .and_then(|m| m.iter_mut().find(|m| m.user_id == d.user_id))
            else {
                continue;
            };
            if d.seq <= member.last_delivered_seq.max(member.last_read_seq) {
                continue;
            }
            member.last_delivered_seq = d.seq;
            let seq = state.take_seq();
            state
                .delivered_seq
                .insert((d.conversation_id, d.user_id), seq);
            moved.push(Delivered {
                conversation_id: d.conversation_id,
                user_id: d.user_id,
                last_delivered_seq: d.seq,
                seq,
            });
        }
        Ok(moved)
    }

    fn unread_counts(&self, user: UserId) -> StoreResult<Vec<(ConversationId, u64)>> {
        Ok(self
            .inbox(
                user,
                Page {
                    limit: u32::MAX,
                    offset: 0,
                },
                InboxFilter::all(Utc::now()),
            )?
            .into_iter()
            .filter(|e| e.unread_count > 0)
            .map(|e| (e.conversation.id, e.unread_count))
            .collect())
    }

    fn unread_mentions(&self, user: UserId) -> StoreResult<Vec<(ConversationId, u64)>> {
        Ok(self
            .inbox(
                user,
                Page {
                    limit: u32::MAX,
                    offset: 0,
                },
                InboxFilter::all(Utc::now()),
            )?
            .into_iter()
            .filter(|e| e.unread_mentions > 0)
            .map(|e| (e.conversation.id, e.unread_mentions))
            .collect())
    }
}

/// Records every published event.
#[derive(Default)]
pub struct RecordingPublisher(Mutex<Vec<DomainEvent>>);

impl RecordingPublisher {
    pub fn take(&self) -> Vec<DomainEvent> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl EventPublisher for RecordingPublisher {
    fn publish(&self, event: DomainEvent) {
        self.0.lock().unwrap().push(event);
    }
}

/// Budgets that never refill: `burst` actions per key, then refusal.
#[derive(Default)]
pub struct CountingLimiter(Mutex<HashMap<String, u32>>);

impl RateLimiter for CountingLimiter {
    fn acquire(&self, key: &str, quota: Quota) -> Result<(), std::time::Duration> {
        let mut counts = self.0.lock().unwrap();
        let count = counts.entry(key.to_owned()).or_default();
        if *count >= quota.burst {
            return Err(quota.refill_interval());
        }
        *count += 1;
        Ok(())
    }

    fn check(&self, key: &str, quota: Quota) -> Result<(), std::time::Duration> {
        let counts = self.0.lock().unwrap();
        match counts.get(key) {
            Some(count) if *count >= quota.burst => Err(quota.refill_interval()),
            _ => Ok(()),
        }
    }
}

/// A reversible "hash" that counts verifications, so tests can see the work done.
#[derive(Default)]
pub struct FakeHasher {
    verifications: AtomicUsize,
}

impl FakeHasher {
    pub fn verifications(&self) -> usize {
        self.verifications.load(Ordering::SeqCst)
    }
}

impl PasswordHasher for FakeHasher {
    fn hash(&self, password: &Password) -> Result<PasswordHash, String> {
        Ok(PasswordHash(format!("fake${}", password.expose())))
    }

    fn verify(&self, password: &str, hash: &PasswordHash) -> bool {
        self.verifications.fetch_add(1, Ordering::SeqCst);
        hash.0 == format!("fake${password}")
    }
}

/// Tokens of the form `token:<user id>:<generation>:<serial>`; the serial is the token id.
/// Any token starting `expired:` verifies as expired.
#[derive(Default)]
pub struct FakeTokens(AtomicUsize);

impl TokenIssuer for FakeTokens {
    fn issue(
        &self,
        user: UserId,
        generation: i64,
        _now: DateTime<Utc>,
    ) -> Result<AccessToken, String> {
        let serial = self.0.fetch_add(1, Ordering::SeqCst);
        Ok(AccessToken {
            token: format!("token:{user}:{generation}:{serial}"),
            expires_in: Duration::hours(1),
        })
    }

    fn issue_in_session(
        &self,
        user: UserId,
        generation: i64,
        session: SessionId,
        now: DateTime<Utc>,
    ) -> Result<AccessToken, String> {
        let mut access = self.issue(user, generation, now)?;
        access.token = format!("{}:{session}", access.token);
        Ok(access)
    }

    fn verify(&self, token: &str) -> Result<TokenClaims, TokenError> {
        let invalid = |why: &str| TokenError::Invalid(why.to_owned());
        if token.starts_with("expired:") {
            return Err(TokenError::Expired);
        }
        let rest = token
            .strip_prefix("token:")
            .ok_or_else(|| invalid("not a fake token"))?;
        let parts: Vec<&str> = rest.split(':').collect();
        let (id, generation, serial, session) = match parts.as_slice() {
            [id, generation, serial] => (id, generation, serial, None),
            [id, generation, serial, session] => (id, generation, serial, Some(session)),
            _ => return Err(invalid("not a fake token")),
        };
        let now = fixed_now();
        Ok(TokenClaims {
            user_id: id.parse().map_err(|_| invalid("bad id"))?,
            generation: generation.parse().map_err(|_| invalid("bad generation"))?,
            token_id: (*serial).to_owned(),
            issued_at: now,
            expires_at: now + Duration::hours(1),
            session_id: session
                .map(|s| s.parse().map_err(|_| invalid("bad session")))
                .transpose()?,
        })
    }
}

/// Device tokens of the form `device:<user id>:<generation>:<serial>`; the serial is the
/// device id.
/// Anything not in that form is refused, which is how tests forge one.
#[derive(Default)]
pub struct FakeDevices(AtomicUsize);

impl DeviceTokens for FakeDevices {
    fn issue(&self, user: UserId, generation: i64, _now: DateTime<Utc>) -> Result<String, String> {
        let serial = self.0.fetch_add(1, Ordering::SeqCst);
        Ok(format!("device:{user}:{generation}:{serial}"))
    }

    fn verify(&self, token: &str) -> Result<DeviceClaims, String> {
        let rest = token
            .strip_prefix("device:")
            .ok_or("not a fake device token")?;
        let parts: Vec<&str> = rest.split(':').collect();
        let [id, generation, serial] = parts.as_slice() else {
            return Err("not a fake device token".into());
        };
        Ok(DeviceClaims {
            user_id: id.parse().map_err(|_| "bad id")?,
            generation: generation.parse().map_err(|_| "bad generation")?,
            device_id: (*serial).to_owned(),
        })
    }
}

/// A clock that advances one second on every read, so orderings by time are strict.
#[derive(Default)]
pub struct SteppingClock(AtomicUsize);

fn fixed_now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

impl Clock for SteppingClock {
    fn now(&self) -> DateTime<Utc> {
        fixed_now() + Duration::seconds(self.0.fetch_add(1, Ordering::SeqCst) as i64)
    }
}

/// Services wired to fakes, with handles on the fakes.
pub struct World {
    pub services: ChatServices,
    pub attachments: AttachmentService,
    pub store: Arc<MemoryStore>,
    pub blobs: Arc<MemoryBlobs>,
    pub events: Arc<RecordingPublisher>,
    pub hasher: Arc<FakeHasher>,
    /// The ports the services were built with, for services built apart (webhooks).
    pub ports: Ports,
}

impl World {
    pub fn new() -> Self {
        Self::with_presence_window(Duration::zero())
    }

    /// A world whose presence events are coalesced over `presence_window`.
    pub fn with_presence_window(presence_window: Duration) -> Self {
        let store = Arc::new(MemoryStore::default());
        let events = Arc::new(RecordingPublisher::default());
        let hasher = Arc::new(FakeHasher::default());
        let limiter = Arc::new(CountingLimiter::default());
        let blobs = Arc::new(MemoryBlobs::default());
        let ports = Ports {
            users: store.clone(),
            conversations: store.clone(),
            messages: store.clone(),
            feed: store.clone(),
            read_receipts: store.clone(),
            search: store.clone(),
            events: events.clone(),
            hasher: hasher.clone(),
            tokens: Arc::new(FakeTokens::default()),
            devices: Arc::new(FakeDevices::default()),
            limiter: limiter.clone(),
            limits: Limits::default(),
            revocations: store.clone(),
            blocks: store.clone(),
            admins: store.clone(),
            presence: store.clone(),
            reports: store.clone(),
            clock: Arc::new(SteppingClock::default()),
            sessions: store.clone(),
            refresh_tokens: Arc::new(FakeRefreshTokens::default()),
            presence_store: store.clone(),
            presence_window,
            presence_offline_after: Duration::zero(),
        };
        let attachments = AttachmentService::new(
            &ports,
            UploadPorts {
                attachments: store.clone(),
                blobs: blobs.clone(),
                media: Arc::new(FakeMedia),
                limits: UploadLimits::default(),
                digest: fake_digest,
            },
        );
        let services = ChatServices::new(ports.clone());
        Self {
            services,
            attachments,
            store,
            blobs,
            events,
            hasher,
            ports,
        }
    }

    /// Signs up a user named `name` and returns its id.
    pub fn user(&self, name: &str) -> UserId {
        self.services
            .accounts
            .sign_up(
                crate::service::SignupRequest {
                    username: name.into(),
                    email: format!("{name}@example.com"),
                    password: "correct horse".into(),
                    full_name: None,
                },
                None,
            )
            .unwrap()
            .id
    }
}

impl SessionStore for MemoryStore {
    fn open_session(&self, new: &NewSession) -> StoreResult<()> {
        let mut state = self.state();
        let now = new.session.created_at;
        state.sessions.retain(|(s, _)| s.expires_at > now);
        state
            .sessions
            .push((new.session.clone(), new.refresh.clone()));
        Ok(())
    }

    fn find_session(&self, id: SessionId) -> StoreResult<Option<Session>> {
        Ok(self
            .state()
            .sessions
            .iter()
            .find(|(s, _)| s.id == id)
            .map(|(s, _)| s.clone()))
    }

    fn rotate(
        &self,
        id: SessionId,
        presented: &RefreshHash,
        next: &RefreshHash,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<Rotation> {
        let mut state = self.state();
        let Some((session, hash)) = state
            .sessions
            .iter_mut()
            .find(|(s, _)| s.id == id && !s.revoked && s.expires_at > now)
        else {
            return Ok(Rotation::Unknown);
        };
        if hash != presented {
            let before = session.clone();
            session.revoked = true;
            return Ok(Rotation::Reused(before));
        }
        *hash = next.clone();
        session.last_used_at = now;
        session.expires_at = expires_at;
        Ok(Rotation::Rotated(session.clone()))
    }

    fn sessions_of(&self, user: UserId, now: DateTime<Utc>) -> StoreResult<Vec<Session>> {
        let mut listed: Vec<Session> = self
            .state()
            .sessions
            .iter()
            .map(|(s, _)| s)
            .filter(|s| s.user_id == user && !s.revoked && s.expires_at > now)
            .cloned()
            .collect();
        listed.sort_by_key(|s| std::cmp::Reverse(s.last_used_at));
        Ok(listed)
    }

    fn end_session(&self, user: UserId, id: SessionId) -> StoreResult<bool> {
        let mut state = self.state();
        let found = state
            .sessions
            .iter_mut()
            .find(|(s, _)| s.id == id && s.user_id == user && !s.revoked);
        Ok(found.map(|(s, _)| s.revoked = true).is_some())
    }

    fn end_sessions(&self, user: UserId, except: Option<SessionId>) -> StoreResult<Vec<SessionId>> {
        let mut state = self.state();
        Ok(state
            .sessions
            .iter_mut()
            .filter(|(s, _)| s.user_id == user && !s.revoked && Some(s.id) != except)
            .map(|(s, _)| {
                s.revoked = true;
                s.id
            })
            .collect())
    }
}

/// Refresh tokens of the form `refresh:<session id>:<serial>`, hashed as `hash:<token>`.
#[derive(Default)]
pub struct FakeRefreshTokens(AtomicUsize);

impl RefreshTokens for FakeRefreshTokens {
    fn mint(&self, session: SessionId) -> MintedRefresh {
        let serial = self.0.fetch_add(1, Ordering::SeqCst);
        let token = format!("refresh:{session}:{serial}");
        MintedRefresh {
            hash: RefreshHash(format!("hash:{token}")),
            token,
        }
    }

    fn read(&self, token: &str) -> Option<PresentedRefresh> {
        let rest = token.strip_prefix("refresh:")?;
        let (session, _) = rest.split_once(':')?;
        Some(PresentedRefresh {
            session_id: session.parse().ok()?,
            hash: RefreshHash(format!("hash:{token}")),
        })
    }

    fn lifetime(&self) -> Duration {
        Duration::days(60)
    }
}

// Webhooks (issue #17).

impl OutboxStore for MemoryStore {
    fn pending_events(&self, limit: u32) -> StoreResult<Vec<OutboxEvent>> {
        Ok(self
            .state()
            .outbox
            .iter()
            .take(limit as usize)
            .cloned()
            .collect())
    }

    fn fan_out(
        &self,
        events: &[i64],
        deliveries: &[NewDelivery],
        at: DateTime<Utc>,
    ) -> StoreResult<Vec<i64>> {
        let mut state = self.state();
        let taken: Vec<i64> = state
            .outbox
            .iter()
            .map(|e| e.id)
            .filter(|id| events.contains(id))
            .collect();
        state.outbox.retain(|e| !taken.contains(&e.id));
        let endpoints: Vec<WebhookId> = state.webhooks.iter().map(|w| w.id).collect();
        for new in deliveries.iter().filter(|d| taken.contains(&d.source)) {
            for &webhook_id in &endpoints {
                state.delivery_id += 1;
                let delivery = WebhookDelivery {
                    id: state.delivery_id,
                    webhook_id,
                    event_id: new.event_id,
                    kind: new.kind,
                    refs: new.refs.clone(),
                    count: new.count,
                    created_at: new.created_at,
                    state: DeliveryState::Pending,
                    attempts: 0,
                    first_attempt_at: None,
                    next_attempt_at: Some(at),
                    last_error: None,
                };
                state.deliveries.push((delivery, None));
            }
        }
        Ok(taken)
    }
}

impl WebhookStore for MemoryStore {
    fn insert_webhook(&self, webhook: &Webhook) -> StoreResult<()> {
        self.state().webhooks.push(webhook.clone());
        Ok(())
    }

    fn webhooks(&self) -> StoreResult<Vec<Webhook>> {
        Ok(self.state().webhooks.clone())
    }

    fn find_webhook(&self, id: WebhookId) -> StoreResult<Option<Webhook>> {
        Ok(self.state().webhooks.iter().find(|w| w.id == id).cloned())
    }

    fn delete_webhook(&self, id: WebhookId) -> StoreResult<bool> {
        let mut state = self.state();
        let before = state.webhooks.len();
        state.webhooks.retain(|w| w.id != id);
        state.deliveries.retain(|(d, _)| d.webhook_id != id);
        Ok(state.webhooks.len() < before)
    }

    fn claim(
        &self,
        lease: &Lease,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<WebhookDelivery>> {
        let mut state = self.state();
        // Endpoint and conversation pairs that something earlier holds back.
        let mut held: Vec<(WebhookId, Option<ConversationId>)> = Vec::new();
        let mut claimed = Vec::new();
        for (delivery, holder) in state.deliveries.iter_mut() {
            if delivery.state != DeliveryState::Pending {
                continue;
            }
            let key = (delivery.webhook_id, delivery.refs.conversation_id);
            let leased = holder.as_ref().is_some_and(|l| l.until > now);
            let free = !leased && delivery.next_attempt_at.is_some_and(|due| due <= now);
            if held.contains(&key) || !free || claimed.len() >= limit as usize {
                held.push(key);
                continue;
            }
            *holder = Some(lease.clone());
            delivery.next_attempt_at = Some(lease.until);
            claimed.push(delivery.clone());
        }
        Ok(claimed)
    }

    fn delivered(&self, ids: &[i64], holder: &str) -> StoreResult<usize> {
        let mut state = self.state();
        let before = state.deliveries.len();
        state.deliveries.retain(|(d, lease)| {
            !(ids.contains(&d.id) && lease.as_ref().is_some_and(|l| l.holder == holder))
        });
        Ok(before - state.deliveries.len())
    }

    fn failed(
        &self,
        id: i64,
        holder: &str,
        error: &str,
        at: DateTime<Utc>,
        retry_at: Option<DateTime<Utc>>,
    ) -> StoreResult<bool> {
        let mut state = self.state();
        let Some((delivery, lease)) = state
            .deliveries
            .iter_mut()
            .find(|(d, l)| d.id == id && l.as_ref().is_some_and(|l| l.holder == holder))
        else {
            return Ok(false);
        };
        *lease = None;
        delivery.attempts += 1;
        delivery.first_attempt_at.get_or_insert(at);
        delivery.last_error = Some(error.to_owned());
        delivery.next_attempt_at = retry_at;
        if retry_at.is_none() {
            delivery.state = DeliveryState::Dead;
        }
        Ok(true)
    }

    fn release(&self, ids: &[i64], holder: &str, now: DateTime<Utc>) -> StoreResult<()> {
        for (delivery, lease) in self.state().deliveries.iter_mut() {
            if ids.contains(&delivery.id) && lease.as_ref().is_some_and(|l| l.holder == holder) {
                *lease = None;
                delivery.next_attempt_at = Some(now);
            }
        }
        Ok(())
    }

    fn dead_letters(
        &self,
        webhook: Option<WebhookId>,
        before: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<WebhookDelivery>> {
        let state = self.state();
        Ok(state
            .deliveries
            .iter()
            .rev()
            .map(|(d, _)| d)
            .filter(|d| d.state == DeliveryState::Dead)
            .filter(|d| webhook.is_none_or(|w| d.webhook_id == w))
            .filter(|d| before.is_none_or(|b| d.id < b))
            .take(limit as usize)
            .cloned()
            .collect())
    }

    fn replay(&self, id: i64, now: DateTime<Utc>) -> StoreResult<Option<WebhookDelivery>> {
        let mut state = self.state();
        let Some((delivery, lease)) = state
            .deliveries
            .iter_mut()
            .find(|(d, _)| d.id == id && d.state == DeliveryState::Dead)
        else {
            return Ok(None);
        };
        *lease = None;
        delivery.state = DeliveryState::Pending;
        delivery.attempts = 0;
        delivery.first_attempt_at = None;
        delivery.next_attempt_at = Some(now);
        Ok(Some(delivery.clone()))
    }
}
