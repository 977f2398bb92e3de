//! Webhooks: what admins do with endpoints and dead letters, and the rules the dispatcher
//! follows (fan-out, notifications, retries). The dispatcher itself (HTTP, signing, JSON)
//! lives at the edge; everything it decides is decided here.
//!
//! Notifications: each `message.created` fanned out becomes one `notification` per member
//! who should hear of it on a phone: not the sender, nobody with a socket open on any node
//! (their app shows the message already), nobody who muted the conversation, nobody who
//! blocked the sender. Bursts collapse: at most one per recipient and conversation per
//! [`WebhookPorts::collapse`], the next one carrying how many messages it stands for (its
//! `count`) besides the recipient's unread count. The collapsing windows live in the node's
//! memory: with several nodes fanning out in turn, a recipient may get one per node and
//! window at worst.
//!
//! What a notification carries (see [`Notification`]): ids, the sender's display name, a
//! group's name, the counts. Never the content: a push gateway (FCM, APNs, a relay) is a
//! third party, and a preview would hand every message's text to it; the app, once woken,
//! fetches the message over its own authenticated connection.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::admin::AuditEntry;
use crate::conversation::{Conversation, ConversationKind};
use crate::message::Message;
use crate::ports::{
    AdminStore, BlockStore, Clock, ConversationStore, MessageStore, OutboxStore, PresenceDirectory,
    ReadReceiptStore, UserStore, WebhookStore,
};
use crate::webhook::{
    EventKind, EventRefs, Lease, NewDelivery, NewWebhook, OutboxEvent, RetryPolicy, Webhook,
    WebhookDelivery, WebhookId,
};
use crate::{ConversationId, DomainError, MessageId, Resource, UserId};

use super::{Ports, require_admin};

/// What webhooks need besides the common ports.
#[derive(Clone)]
pub struct WebhookPorts {
    pub outbox: Arc<dyn OutboxStore>,
    pub webhooks: Arc<dyn WebhookStore>,
    pub retries: RetryPolicy,
    /// At most one notification per recipient and conversation per this long.
    pub collapse: Duration,
}

/// Webhook use cases. Cheap to clone.
#[derive(Clone)]
pub struct WebhookService {
    users: Arc<dyn UserStore>,
    conversations: Arc<dyn ConversationStore>,
    messages: Arc<dyn MessageStore>,
    read_receipts: Arc<dyn ReadReceiptStore>,
    blocks: Arc<dyn BlockStore>,
    admins: Arc<dyn AdminStore>,
    presence: Arc<dyn PresenceDirectory>,
    clock: Arc<dyn Clock>,
    outbox: Arc<dyn OutboxStore>,
    webhooks: Arc<dyn WebhookStore>,
    retries: RetryPolicy,
    collapse: Duration,
    windows: Arc<Mutex<Windows>>,
}

/// The collapsing windows: per recipient and conversation, when the last notification went
/// and how many messages have been held back since.
#[derive(Default)]
struct Windows(HashMap<(UserId, ConversationId), (DateTime<Utc>, u32)>);

/// What an event says, read from the entities when it is sent.
#[derive(Debug, Clone)]
pub enum EventData {
    /// `message.*`: the message as it stands now (`None` if it is gone altogether).
    Message(Option<Message>),
    /// `conversation.*`: the conversation as it stands now.
    Conversation(Option<Conversation>),
    /// `member.*`.
    Member {
        conversation_id: Option<ConversationId>,
        user_id: Option<UserId>,
    },
    /// `report.created`.
    Report {
        report_id: Option<Uuid>,
    },
    Notification(Notification),
}

/// What a push gateway needs to wake one recipient's app, and nothing more (see the module
/// doc for why there is no content).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub recipient_id: UserId,
    pub conversation_id: ConversationId,
    pub kind: ConversationKind,
    /// A group's name; `None` for a direct conversation.
    pub conversation_name: Option<String>,
    pub message_id: MessageId,
    pub sender_id: UserId,
    /// The sender's full name, or their username.
    pub sender_name: String,
    /// How many messages this notification stands for (a collapsed burst).
    pub count: u32,
    /// The recipient's unread messages in this conversation, and in all.
    pub unread_in_conversation: u64,
    pub unread_total: u64,
}

/// One delivery with what it announces.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub delivery: WebhookDelivery,
    pub data: EventData,
}

impl WebhookService {
    pub fn new(ports: &Ports, webhook_ports: WebhookPorts) -> Self {
        Self {
            users: ports.users.clone(),
            conversations: ports.conversations.clone(),
            messages: ports.messages.clone(),
            read_receipts: ports.read_receipts.clone(),
            blocks: ports.blocks.clone(),
            admins: ports.admins.clone(),
            presence: ports.presence.clone(),
            clock: ports.clock.clone(),
            outbox: webhook_ports.outbox,
            webhooks: webhook_ports.webhooks,
            retries: webhook_ports.retries,
            collapse: webhook_ports.collapse,
            windows: Arc::default(),
        }
    }

    // What admins do.

    /// Registers an endpoint (`url` http or https, `secret` 16 to 256 characters); the
    /// audit log gets its URL, never its secret. Whether the caller may is checked before
    /// the fields are.
    pub fn register(&self, admin: UserId, url: &str, secret: &str) -> Result<Webhook, DomainError> {
        require_admin(self.admins.as_ref(), admin)?;
        let new = NewWebhook::parse(url, secret)?;
        let now = self.clock.now();
        let webhook = Webhook {
            id: WebhookId::new(),
            url: new.url,
            secret: new.secret,
            created_by: Some(admin),
            created_at: now,
        };
        self.webhooks.insert_webhook(&webhook)?;
        self.audit(
            admin,
            "webhook.create",
            webhook.id.to_string(),
            webhook.url.as_str(),
        )?;
        Ok(webhook)
    }

    /// Every endpoint (the edge shows them without their secrets).
    pub fn list(&self, admin: UserId) -> Result<Vec<Webhook>, DomainError> {
        require_admin(self.admins.as_ref(), admin)?;
        Ok(self.webhooks.webhooks()?)
    }

    /// Removes an endpoint, with what was queued for it.
    pub fn remove(&self, admin: UserId, id: WebhookId) -> Result<(), DomainError> {
        require_admin(self.admins.as_ref(), admin)?;
        if !self.webhooks.delete_webhook(id)? {
            return Err(not_found(Resource::Webhook, id));
        }
        self.audit(admin, "webhook.delete", id.to_string(), "")?;
        Ok(())
    }

    /// Dead letters, newest first; of one endpoint when `webhook` names one (which must
    /// exist).
    pub fn dead_letters(
        &self,
        admin: UserId,
        webhook: Option<WebhookId>,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<WebhookDelivery>, DomainError> {
        require_admin(self.admins.as_ref(), admin)?;
        if let Some(id) = webhook
            && self.webhooks.find_webhook(id)?.is_none()
        {
            return Err(not_found(Resource::Webhook, id));
        }
        Ok(self.webhooks.dead_letters(webhook, before, limit)?)
    }

    /// Sends a dead letter again, from its first attempt (same event id).
    pub fn replay(&self, admin: UserId, id: i64) -> Result<WebhookDelivery, DomainError> {
        require_admin(self.admins.as_ref(), admin)?;
        let replayed = self
            .webhooks
            .replay(id, self.clock.now())?
            .ok_or_else(|| not_found(Resource::DeadLetter, id))?;
        self.audit(
            admin,
            "webhook.replay",
            replayed.webhook_id.to_string(),
            &format!("dead letter {id}, event {}", replayed.event_id),
        )?;
        Ok(replayed)
    }

    fn audit(
        &self,
        admin: UserId,
        action: &'static str,
        target: String,
        detail: &str,
    ) -> Result<(), DomainError> {
        self.admins.record(&AuditEntry {
            actor: Some(admin),
            action,
            target,
            detail: detail.to_owned(),
            at: self.clock.now(),
        })?;
        Ok(())
    }

    // What the dispatcher does.

    /// Fans out up to `limit` outbox events into deliveries to every endpoint (with the
    /// notifications each new message makes); returns how many events it took. With no
    /// endpoint, the events are taken and nothing is queued: nobody is owed them.
    pub fn fan_out(&self, limit: u32) -> Result<usize, DomainError> {
        let events = self.outbox.pending_events(limit)?;
        if events.is_empty() {
            return Ok(0);
        }
        let now = self.clock.now();
        let ids: Vec<i64> = events.iter().map(|event| event.id).collect();
        let deliveries = if self.webhooks.webhooks()?.is_empty() {
            Vec::new()
        } else {
            let mut deliveries: Vec<NewDelivery> = events
                .iter()
                .map(|event| NewDelivery {
                    source: event.id,
                    event_id: Uuid::new_v4(),
                    kind: event.kind,
                    refs: event.refs.clone(),
                    count: 1,
                    created_at: event.created_at,
                })
                .collect();
            deliveries.extend(self.notifications(&events, now)?);
            // Within an event, its own announcement first, then its notifications.
            deliveries.sort_by_key(|d| (d.source, d.kind == EventKind::Notification));
            deliveries
        };
        Ok(self.outbox.fan_out(&ids, &deliveries, now)?.len())
    }

    /// The notifications the new messages among `events` make (see the module doc).
    fn notifications(
        &self,
        events: &[OutboxEvent],
        now: DateTime<Utc>,
    ) -> Result<Vec<NewDelivery>, DomainError> {
        let created: Vec<&OutboxEvent> = events
            .iter()
            .filter(|e| e.kind == EventKind::MessageCreated)
            .collect();
        if created.is_empty() {
            return Ok(Vec::new());
        }
        // Who might hear of each message, read once per conversation and sender.
        let mut members: HashMap<ConversationId, Vec<UserId>> = HashMap::new();
        let mut candidates: Vec<(&OutboxEvent, ConversationId, UserId, UserId)> = Vec::new();
        for event in &created {
            let (Some(conversation), Some(sender)) =
                (event.refs.conversation_id, event.refs.user_id)
            else {
                continue;
            };
            if let std::collections::hash_map::Entry::Vacant(entry) = members.entry(conversation) {
                let ids = self.conversations.members(conversation)?;
                entry.insert(ids.into_iter().map(|m| m.user_id).collect());
            }
            for &recipient in &members[&conversation] {
                if recipient != sender {
                    candidates.push((event, conversation, sender, recipient));
                }
            }
        }
        let everyone: Vec<UserId> = {
            let set: HashSet<UserId> = candidates.iter().map(|c| c.3).collect();
            set.into_iter().collect()
        };
        let online: HashSet<UserId> = self.presence.online_among(&everyone)?.into_iter().collect();
        // Per sender and conversation: who among its members blocked the sender.
        let mut blocked_by: HashMap<(UserId, ConversationId), HashSet<UserId>> = HashMap::new();
        let mut muted: HashMap<(ConversationId, UserId), bool> = HashMap::new();
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        windows.forget_before(now - self.collapse);
        let mut notifications = Vec::new();
        for (event, conversation, sender, recipient) in candidates {
            if online.contains(&recipient) {
                continue;
            }
            if let std::collections::hash_map::Entry::Vacant(entry) =
                blocked_by.entry((sender, conversation))
            {
                let blockers = self.blocks.blockers_of(sender, &members[&conversation])?;
                entry.insert(blockers.into_iter().collect());
            }
            if blocked_by[&(sender, conversation)].contains(&recipient) {
                continue;
            }
            let is_muted = match muted.get(&(conversation, recipient)) {
                Some(&muted) => muted,
                None => {
                    let settings = self.conversations.settings(conversation, recipient, now)?;
                    // A member gone since the message: nothing to tell them.
                    let is_muted = settings.is_none_or(|s| s.is_muted(now));
                    muted.insert((conversation, recipient), is_muted);
                    is_muted
                }
            };
            if is_muted {
                continue;
            }
            let Some(count) = windows.admit(recipient, conversation, now, self.collapse) else {
                continue;
            };
            notifications.push(NewDelivery {
                source: event.id,
                event_id: Uuid::new_v4(),
                kind: EventKind::Notification,
                refs: EventRefs {
                    user_id: Some(recipient),
                    ..event.refs.clone()
                },
                count,
                created_at: event.created_at,
            });
        }
        Ok(notifications)
    }

    /// Claims deliveries for this dispatcher (see [`WebhookStore::claim`]).
    pub fn claim(&self, lease: &Lease, limit: u32) -> Result<Vec<WebhookDelivery>, DomainError> {
        Ok(self.webhooks.claim(lease, self.clock.now(), limit)?)
    }

    /// The endpoints, with their secrets, to send to.
    pub fn endpoints(&self) -> Result<Vec<Webhook>, DomainError> {
        Ok(self.webhooks.webhooks()?)
    }

    /// What each delivery announces, read from the entities as they stand now.
    pub fn payloads(&self, deliveries: Vec<WebhookDelivery>) -> Result<Vec<Outgoing>, DomainError> {
        let mut users: HashMap<UserId, String> = HashMap::new();
        let mut unread: HashMap<UserId, Vec<(ConversationId, u64)>> = HashMap::new();
        deliveries
            .into_iter()
            .map(|delivery| {
                let refs = &delivery.refs;
                let data = match delivery.kind {
                    EventKind::MessageCreated
                    | EventKind::MessageEdited
                    | EventKind::MessageDeleted => EventData::Message(match refs.message_id {
                        Some(id) => self.messages.find(id)?,
                        None => None,
                    }),
                    EventKind::ConversationCreated | EventKind::ConversationRenamed => {
                        EventData::Conversation(match refs.conversation_id {
                            Some(id) => self.conversations.find(id)?,
                            None => None,
                        })
                    }
                    EventKind::MemberAdded | EventKind::MemberRemoved => EventData::Member {
                        conversation_id: refs.conversation_id,
                        user_id: refs.user_id,
                    },
                    EventKind::ReportCreated => EventData::Report {
                        report_id: refs.report_id,
                    },
                    EventKind::Notification => {
                        match self.notification(&delivery, &mut users, &mut unread)? {
                            Some(notification) => EventData::Notification(notification),
                            // The message or conversation is gone: the notification still
                            // goes, as a message event would, with nothing to show.
                            None => EventData::Message(None),
                        }
                    }
                };
                Ok(Outgoing { delivery, data })
            })
            .collect()
    }

    fn notification(
        &self,
        delivery: &WebhookDelivery,
        users: &mut HashMap<UserId, String>,
        unread: &mut HashMap<UserId, Vec<(ConversationId, u64)>>,
    ) -> Result<Option<Notification>, DomainError> {
        let refs = &delivery.refs;
        let (Some(recipient), Some(message_id)) = (refs.user_id, refs.message_id) else {
            return Ok(None);
        };
        let Some(message) = self.messages.find(message_id)? else {
            return Ok(None);
        };
        let Some(conversation) = self.conversations.find(message.conversation_id)? else {
            return Ok(None);
        };
        let sender_name = match users.get(&message.sender_id) {
            Some(name) => name.clone(),
            None => {
                let name = self
                    .users
                    .find(message.sender_id)?
                    .map(|u| {
                        u.full_name
                            .unwrap_or_else(|| u.username.as_str().to_owned())
                    })
                    .unwrap_or_default();
                users.insert(message.sender_id, name.clone());
                name
            }
        };
        if let std::collections::hash_map::Entry::Vacant(entry) = unread.entry(recipient) {
            entry.insert(self.read_receipts.unread_counts(recipient)?);
        }
        let counts = &unread[&recipient];
        Ok(Some(Notification {
            recipient_id: recipient,
            conversation_id: conversation.id,
            kind: conversation.kind,
            conversation_name: conversation.name.as_ref().map(|n| n.as_str().to_owned()),
            message_id,
            sender_id: message.sender_id,
            sender_name,
            count: delivery.count,
            unread_in_conversation: counts
                .iter()
                .find(|(id, _)| *id == conversation.id)
                .map_or(0, |(_, n)| *n),
            unread_total: counts.iter().map(|(_, n)| n).sum(),
        }))
    }

    /// The deliveries arrived.
    pub fn delivered(&self, ids: &[i64], holder: &str) -> Result<usize, DomainError> {
        Ok(self.webhooks.delivered(ids, holder)?)
    }

    /// An attempt failed: retried with backoff and jitter (`jitter` in `0.0..1.0`, from the
    /// caller's randomness), or a dead letter once retried for the policy's period. Returns
    /// when it is due again (`None`: dead).
    pub fn failed(
        &self,
        delivery: &WebhookDelivery,
        holder: &str,
        error: &str,
        jitter: f64,
    ) -> Result<Option<DateTime<Utc>>, DomainError> {
        let now = self.clock.now();
        let first = delivery.first_attempt_at.unwrap_or(now);
        let retry_at = self
            .retries
            .next_attempt(delivery.attempts + 1, first, now, jitter);
        self.webhooks
            .failed(delivery.id, holder, error, now, retry_at)?;
        Ok(retry_at)
    }

    /// Lets go of deliveries without an attempt.
    pub fn release(&self, ids: &[i64], holder: &str) -> Result<(), DomainError> {
        Ok(self.webhooks.release(ids, holder, self.clock.now())?)
    }
}

impl Windows {
    /// Whether to notify `recipient` of a message in `conversation` now and, if so, how many
    /// messages the notification stands for (itself and those held back since the last).
    fn admit(
        &mut self,
        recipient: UserId,
        conversation: ConversationId,
        now: DateTime<Utc>,
        collapse: Duration,
    ) -> Option<u32> {
        match self.0.get_mut(&(recipient, conversation)) {
            Some((last, held)) if now - *last < collapse => {
                *held += 1;
                None
            }
            Some((last, held)) => {
                let count = *held + 1;
                *last = now;
                *held = 0;
                Some(count)
            }
            None => {
                self.0.insert((recipient, conversation), (now, 0));
                Some(1)
            }
        }
    }

    /// Drops windows that closed before `before` with nothing held back: the map stays the
    /// size of the recent bursts.
    fn forget_before(&mut self, before: DateTime<Utc>) {
        if self.0.len() > 10_000 {
            self.0
                .retain(|_, (last, held)| *last >= before || *held > 0);
        }
    }
}

fn not_found(resource: Resource, id: impl ToString) -> DomainError {
    DomainError::NotFound {
        resource,
        id: id.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::World;
    use crate::ports::{AdminStore, BlockStore, ConversationStore};
    use crate::read_state::SettingsUpdate;
    use crate::service::{CreateConversation, SendMessage};
    use crate::webhook::DeliveryState;

    struct Hooks {
        world: World,
        service: WebhookService,
        admin: UserId,
    }

    fn hooks(collapse: Duration) -> Hooks {
        let world = World::new();
        let service = WebhookService::new(
            &world.ports,
            WebhookPorts {
                outbox: world.store.clone(),
                webhooks: world.store.clone(),
                retries: RetryPolicy {
                    base: Duration::seconds(10),
                    max_delay: Duration::seconds(60),
                    give_up_after: Duration::seconds(100),
                },
                collapse,
            },
        );
        let admin = world.user("admin");
        world.store.set_admin(admin, true).unwrap();
        Hooks {
            world,
            service,
            admin,
        }
    }

    impl Hooks {
        fn register(&self) -> Webhook {
            self.service
                .register(self.admin, "https://example.com/hook", "0123456789abcdef")
                .unwrap()
        }

        fn group(&self, owner: UserId, others: &[UserId]) -> ConversationId {
            let (details, _) = self
                .world
                .services
                .conversations
                .create(
                    owner,
                    CreateConversation {
                        participant_ids: others.to_vec(),
                        name: Some("team".into()),
                        is_group: Some(true),
                    },
                )
                .unwrap();
            details.conversation.id
        }

        fn send(&self, sender: UserId, conversation: ConversationId, text: &str) -> MessageId {
            let request = SendMessage {
                content: text.into(),
                ..SendMessage::default()
            };
            let (view, _) = self
                .world
                .services
                .messages
                .send(sender, conversation, request)
                .unwrap();
            view.message.id
        }

        /// Fans out everything and claims every delivery now due.
        fn deliveries(&self) -> Vec<WebhookDelivery> {
            while self.service.fan_out(100).unwrap() > 0 {}
            let lease = Lease {
                holder: "test".into(),
                until: Utc::now() + Duration::days(3650),
            };
            self.service.claim(&lease, 1000).unwrap()
        }

        fn notified(&self) -> Vec<(UserId, u32)> {
            self.deliveries()
                .into_iter()
                .filter(|d| d.kind == EventKind::Notification)
                .map(|d| (d.refs.user_id.unwrap(), d.count))
                .collect()
        }
    }

    #[test]
    fn only_a_server_admin_manages_webhooks_and_each_action_is_audited() {
        let h = hooks(Duration::zero());
        let someone = h.world.user("someone");
        assert!(matches!(
            h.service
                .register(someone, "https://example.com/hook", "0123456789abcdef"),
            Err(DomainError::Forbidden(_))
        ));
        assert!(
            matches!(
                h.service.register(someone, "ftp://nowhere", "short"),
                Err(DomainError::Forbidden(_))
            ),
            "who may is checked before what"
        );
        assert!(matches!(
            h.service.register(h.admin, "ftp://nowhere", "short"),
            Err(DomainError::Validation(errors)) if errors.len() == 2
        ));
        assert!(matches!(
            h.service.list(someone),
            Err(DomainError::Forbidden(_))
        ));
        let webhook = h.register();
        assert_eq!(h.service.list(h.admin).unwrap(), vec![webhook.clone()]);
        assert!(matches!(
            h.service.remove(someone, webhook.id),
            Err(DomainError::Forbidden(_))
        ));
        h.service.remove(h.admin, webhook.id).unwrap();
        assert!(matches!(
            h.service.remove(h.admin, webhook.id),
            Err(DomainError::NotFound {
                resource: Resource::Webhook,
                ..
            })
        ));
        let log = h.world.store.audit_log(None, 10).unwrap();
        let actions: Vec<&str> = log.iter().map(|r| r.action.as_str()).collect();
        assert_eq!(actions, ["webhook.delete", "webhook.create"]);
        assert!(
            log.iter().all(|r| !r.detail.contains("0123456789abcdef")),
            "the secret is never written to the audit log"
        );
    }

    #[test]
    fn every_change_is_announced_to_every_endpoint_in_the_order_it_was_made() {
        let h = hooks(Duration::zero());
        let (first, second) = (h.register(), h.register());
        let (alice, bob) = (h.world.user("alice"), h.world.user("bob"));
        let group = h.group(alice, &[bob]);
        let message = h.send(alice, group, "hello");
        h.world
            .services
            .messages
            .edit(alice, message, "hello again")
            .unwrap();
        let announced: Vec<_> = h
            .deliveries()
            .into_iter()
            .filter(|d| d.kind != EventKind::Notification)
            .collect();
        for endpoint in [first.id, second.id] {
            let kinds: Vec<EventKind> = announced
                .iter()
                .filter(|d| d.webhook_id == endpoint)
                .map(|d| d.kind)
                .collect();
            assert_eq!(
                kinds,
                [
                    EventKind::ConversationCreated,
                    EventKind::MessageCreated,
                    EventKind::MessageEdited
                ]
            );
        }
        // One event id per event, shared by its endpoints.
        let ids: HashSet<Uuid> = announced.iter().map(|d| d.event_id).collect();
        assert_eq!(ids.len(), 3);
    }

    #[test]
    fn a_member_is_notified_only_when_offline_unmuted_and_not_blocking_the_sender() {
        let h = hooks(Duration::zero());
        h.register();
        let alice = h.world.user("alice");
        let [offline, online, muted, blocking] =
            ["offline", "online", "muted", "blocking"].map(|name| h.world.user(name));
        let group = h.group(alice, &[offline, online, muted, blocking]);
        h.world.store.set_online(online, true);
        h.world
            .store
            .update_settings(
                group,
                muted,
                &SettingsUpdate {
                    muted_until: Some(Some(Utc::now() + Duration::days(365 * 20))),
                    archived: None,
                },
                Utc::now(),
            )
            .unwrap();
        h.world.store.block(blocking, alice, Utc::now()).unwrap();
        h.send(alice, group, "hello");
        assert_eq!(h.notified(), [(offline, 1)]);
    }

    #[test]
    fn a_burst_collapses_into_one_notification_unless_there_is_no_window() {
        // The fake clock moves one second per read; a window of an hour holds the burst.
        let h = hooks(Duration::hours(1));
        h.register();
        let (alice, bob) = (h.world.user("alice"), h.world.user("bob"));
        let group = h.group(alice, &[bob]);
        for i in 0..5 {
            h.send(alice, group, &format!("message {i}"));
        }
        assert_eq!(h.notified(), [(bob, 1)], "one notification for the burst");

        let h = hooks(Duration::zero());
        h.register();
        let (alice, bob) = (h.world.user("alice"), h.world.user("bob"));
        let group = h.group(alice, &[bob]);
        h.send(alice, group, "one");
        h.send(alice, group, "two");
        assert_eq!(
            h.notified(),
            [(bob, 1), (bob, 1)],
            "no window, no collapsing"
        );
    }

    #[test]
    fn the_first_notification_after_a_window_counts_the_messages_held_back_in_it() {
        let mut windows = Windows::default();
        let (bob, group) = (UserId::new(), ConversationId::new());
        let start = DateTime::<Utc>::from_timestamp(1_000_000, 0).unwrap();
        let window = Duration::seconds(30);
        let at = |s| start + Duration::seconds(s);
        assert_eq!(windows.admit(bob, group, at(0), window), Some(1));
        assert_eq!(windows.admit(bob, group, at(10), window), None);
        assert_eq!(windows.admit(bob, group, at(29), window), None);
        assert_eq!(
            windows.admit(UserId::new(), group, at(29), window),
            Some(1),
            "another recipient has a window of their own"
        );
        assert_eq!(windows.admit(bob, group, at(30), window), Some(3));
        assert_eq!(windows.admit(bob, group, at(61), window), Some(1));
    }

    #[test]
    fn a_notification_carries_the_sender_name_and_unread_count_but_never_the_content() {
        let h = hooks(Duration::zero());
        h.register();
        let (alice, bob) = (h.world.user("alice"), h.world.user("bob"));
        let group = h.group(alice, &[bob]);
        let message = h.send(alice, group, "a secret plan");
        let outgoing = h.service.payloads(h.deliveries()).unwrap();
        let notification = outgoing
            .iter()
            .find_map(|o| match &o.data {
                EventData::Notification(n) => Some(n.clone()),
                _ => None,
            })
            .expect("bob is notified");
        assert_eq!(notification.recipient_id, bob);
        assert_eq!(notification.message_id, message);
        assert_eq!(notification.sender_name, "alice");
        assert_eq!(notification.conversation_name.as_deref(), Some("team"));
        assert_eq!(notification.unread_in_conversation, 1);
        assert_eq!(notification.unread_total, 1);
        assert!(!format!("{notification:?}").contains("secret plan"));
    }

    #[test]
    fn a_failed_delivery_waits_for_its_retry_and_holds_back_its_conversation() {
        let h = hooks(Duration::zero());
        h.register();
        let (alice, bob) = (h.world.user("alice"), h.world.user("bob"));
        let group = h.group(alice, &[bob]);
        let claimed = h.deliveries();
        let [created] = claimed.as_slice() else {
            panic!("one conversation.created, got {claimed:?}");
        };
        let retry_at = h
            .service
            .failed(created, "test", "status 500", 0.0)
            .unwrap()
            .expect("retried");
        h.send(alice, group, "after the failure");
        assert!(
            h.deliveries().is_empty(),
            "neither the failed delivery nor a later one of its conversation goes before the retry"
        );
        let lease = Lease {
            holder: "later".into(),
            until: retry_at + Duration::minutes(1),
        };
        let due: Vec<EventKind> = h
            .world
            .store
            .claim(&lease, retry_at, 10)
            .unwrap()
            .into_iter()
            .map(|d| d.kind)
            .collect();
        assert_eq!(
            due,
            [
                EventKind::ConversationCreated,
                EventKind::MessageCreated,
                EventKind::Notification
            ],
            "at its retry time, in the conversation's order"
        );
    }

    #[test]
    fn a_delivery_failing_past_the_retry_period_becomes_a_dead_letter_that_an_admin_replays() {
        let h = hooks(Duration::zero());
        let webhook = h.register();
        let (alice, bob) = (h.world.user("alice"), h.world.user("bob"));
        h.group(alice, &[bob]);
        let claimed = h.deliveries();
        let [delivery] = claimed.as_slice() else {
            panic!("one conversation.created, got {claimed:?}");
        };
        // First tried longer ago than the policy's 100 seconds.
        let mut tried = delivery.clone();
        tried.first_attempt_at = Some(DateTime::<Utc>::MIN_UTC);
        assert_eq!(
            h.service.failed(&tried, "test", "status 500", 0.5).unwrap(),
            None
        );
        let dead = h
            .service
            .dead_letters(h.admin, Some(webhook.id), None, 10)
            .unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].state, DeliveryState::Dead);
        assert_eq!(dead[0].last_error.as_deref(), Some("status 500"));
        assert_eq!(dead[0].attempts, 1);
        assert!(h.deliveries().is_empty(), "a dead letter is not sent");

        let replayed = h.service.replay(h.admin, dead[0].id).unwrap();
        assert_eq!(replayed.event_id, delivery.event_id, "same event id");
        assert_eq!(replayed.state, DeliveryState::Pending);
        assert!(
            h.service
                .dead_letters(h.admin, None, None, 10)
                .unwrap()
                .is_empty()
        );
        assert_eq!(h.deliveries().len(), 1, "sent again");
        assert!(matches!(
            h.service.replay(h.admin, dead[0].id),
            Err(DomainError::NotFound {
                resource: Resource::DeadLetter,
                ..
            })
        ));
        let someone = h.world.user("someone");
        assert!(matches!(
            h.service.dead_letters(someone, None, None, 10),
            Err(DomainError::Forbidden(_))
        ));
        assert!(matches!(
            h.service.replay(someone, dead[0].id),
            Err(DomainError::Forbidden(_))
        ));
    }
}
