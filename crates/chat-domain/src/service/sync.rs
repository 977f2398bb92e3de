//! Catching up: the change feed of one user, paged by position. REST (`GET /sync`) and the
//! WebSocket (`sync`) both page it here, so both replay the same events in the same order.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::conversation::{ConversationDetails, ConversationKind, Member};
use crate::feed::{FeedEntry, HiddenReply};
use crate::message::{MessageView, Seq};
use crate::ports::{Clock, ConversationStore, FeedStore, ReadReceiptStore};
use crate::read_state::{Delivered, ReadMarker};
use crate::validation::{FieldError, Validator};
use crate::{ConversationId, DomainError, MessageId, UserId};

use super::{ConversationService, MessageService, Ports, view_message};

/// Where to read a feed from and how much of it: parsed once at the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedQuery {
    /// Everything after this position; 0 is the beginning.
    pub since: Seq,
    /// At most this many events, 1..=[`FeedQuery::MAX_LIMIT`].
    pub limit: u32,
}

impl FeedQuery {
    pub const DEFAULT_LIMIT: u32 = 100;
    pub const MAX_LIMIT: u32 = 1000;

    /// `since` must be 0 or more (absent: 0); `limit` 1..=1000 (absent: 100).
    pub fn parse(since: Option<i64>, limit: Option<i64>) -> Result<Self, DomainError> {
        let mut v = Validator::new();
        let since = v.check(match since {
            None => Ok(Seq::ZERO),
            Some(s) if s >= 0 => Ok(Seq(s)),
            Some(_) => Err(FieldError::new("since", "must be 0 or more")),
        });
        let limit = v.check(match limit {
            None => Ok(Self::DEFAULT_LIMIT),
            Some(l) if (1..=i64::from(Self::MAX_LIMIT)).contains(&l) => Ok(l as u32),
            Some(_) => Err(FieldError::new(
                "limit",
                format!("must be between 1 and {}", Self::MAX_LIMIT),
            )),
        });
        v.finish()?;
        match (since, limit) {
            (Some(since), Some(limit)) => Ok(Self { since, limit }),
            _ => unreachable!("the validator fails when a field is refused"),
        }
    }
}

/// One event of the feed, in the form a live client would have received it, at its
/// position `seq`.
#[derive(Debug, Clone)]
pub enum FeedEvent {
    /// A message sent after the position asked from, as it now stands (edited, reacted to).
    NewMessage { seq: Seq, message: MessageView },
    /// A message sent before the position asked from and changed since.
    MessageUpdated { seq: Seq, message: MessageView },
    /// A message deleted for everyone: its tombstone, as every read shows it.
    MessageDeleted { seq: Seq, message: MessageView },
    /// A message the caller deleted for themselves.
    MessageHidden {
        seq: Seq,
        conversation_id: ConversationId,
        message_id: MessageId,
        /// For a thread reply: what its thread's summary counts of it.
        thread_reply: Option<HiddenReply>,
    },
    /// Another member's read marker, and the message at it when there is one.
    MessageRead {
        seq: Seq,
        marker: ReadMarker,
        message_id: Option<MessageId>,
    },
    /// Another member's delivered marker, as recorded.
    MessageDelivered { seq: Seq, delivered: Delivered },
    /// The caller's own read marker, with the conversation's unread count and unread
    /// mentions for them, as they now stand.
    ReadMarkerUpdated {
        seq: Seq,
        marker: ReadMarker,
        unread_count: u64,
        unread_mentions: u64,
    },
    /// The caller's own settings of a conversation.
    SettingsUpdated {
        seq: Seq,
        conversation_id: ConversationId,
        muted_until: Option<DateTime<Utc>>,
        archived: bool,
    },
    /// A conversation the caller is in, as it now stands: name, members and roles, and the
    /// caller's own read marker in it (adding a member back starts them from zero).
    ConversationState {
        seq: Seq,
        details: ConversationDetails,
        last_read_seq: Seq,
    },
    /// The caller was removed from (or left) a conversation.
    ConversationLeft {
        seq: Seq,
        conversation_id: ConversationId,
        user_id: UserId,
        at: DateTime<Utc>,
    },
}

impl FeedEvent {
    /// The event's position in the feed.
    pub fn seq(&self) -> Seq {
        match self {
            FeedEvent::NewMessage { seq, .. }
            | FeedEvent::MessageUpdated { seq, .. }
            | FeedEvent::MessageDeleted { seq, .. }
            | FeedEvent::MessageHidden { seq, .. }
            | FeedEvent::MessageRead { seq, .. }
            | FeedEvent::MessageDelivered { seq, .. }
            | FeedEvent::ReadMarkerUpdated { seq, .. }
            | FeedEvent::SettingsUpdated { seq, .. }
            | FeedEvent::ConversationState { seq, .. }
            | FeedEvent::ConversationLeft { seq, .. } => *seq,
        }
    }
}

/// A page of the feed.
#[derive(Debug, Clone)]
pub struct FeedPage {
    pub events: Vec<FeedEvent>,
    /// Where the next page starts: the position of the last event, or the position asked
    /// from when there was none.
    pub next: Seq,
    /// Whether more events lie after `next` already.
    pub has_more: bool,
}

impl FeedPage {
    /// The messages the page carries (sent or changed; not tombstones): what fetching it
    /// delivers.
    pub fn messages(&self) -> impl Iterator<Item = &crate::message::Message> {
        self.events.iter().filter_map(|event| match event {
            FeedEvent::NewMessage { message, .. } | FeedEvent::MessageUpdated { message, .. } => {
                Some(&message.message)
            }
            _ => None,
        })
    }
}

#[derive(Clone)]
pub struct SyncService {
    feed: Arc<dyn FeedStore>,
    conversations: Arc<dyn ConversationStore>,
    read_receipts: Arc<dyn ReadReceiptStore>,
    conversation_service: ConversationService,
    message_service: MessageService,
    clock: Arc<dyn Clock>,
}

impl SyncService {
    pub fn new(
        ports: &Ports,
        conversation_service: ConversationService,
        message_service: MessageService,
    ) -> Self {
        Self {
            feed: ports.feed.clone(),
            conversations: ports.conversations.clone(),
            read_receipts: ports.read_receipts.clone(),
            conversation_service,
            message_service,
            clock: ports.clock.clone(),
        }
    }

    /// The caller's feed after `query.since`: every change they may see, each once at the
    /// position of its latest change and as it now stands, ascending. A client applies the
    /// events in order and asks again from `next` while `has_more`.
    pub fn feed(&self, caller: UserId, query: FeedQuery) -> Result<FeedPage, DomainError> {
        let limit = query.limit.min(FeedQuery::MAX_LIMIT);
        let mut items = self.feed.feed(caller, query.since, limit + 1)?;
        let has_more = items.len() > limit as usize;
        items.truncate(limit as usize);

        // What viewing the page's messages needs, read once per conversation.
        let mut message_conversations: Vec<ConversationId> = Vec::new();
        let mut seen = HashSet::new();
        let mut own_marker = false;
        for item in &items {
            match &item.entry {
                FeedEntry::Message(m) if seen.insert(m.conversation_id) => {
                    message_conversations.push(m.conversation_id)
                }
                FeedEntry::Marker { marker, .. } if marker.user_id == caller => own_marker = true,
                _ => {}
            }
        }
        let members = self.conversations.members_of(&message_conversations)?;
        let mut context: HashMap<ConversationId, (Vec<Member>, bool)> = HashMap::new();
        for (id, members) in message_conversations.into_iter().zip(members) {
            let direct = self.message_service.kind_of(id)? == ConversationKind::Direct;
            context.insert(id, (members, direct));
        }
        let (unread, mentions): (HashMap<ConversationId, u64>, HashMap<ConversationId, u64>) =
            if own_marker {
                let unread = self.read_receipts.unread_counts(caller)?;
                let mentions = if unread.is_empty() {
                    Vec::new()
                } else {
                    self.read_receipts.unread_mentions(caller)?
                };
                (unread.into_iter().collect(), mentions.into_iter().collect())
            } else {
                (HashMap::new(), HashMap::new())
            };

        let mut events = Vec::with_capacity(items.len());
        for item in items {
            let seq = item.position;
            events.push(match item.entry {
                FeedEntry::Message(message) => {
                    let (members, direct) = &context[&message.conversation_id];
                    let (is_new, deleted) = (message.seq > query.since, message.is_deleted());
                    let message = view_message(message, members, *direct, caller);
                    match (deleted, is_new) {
                        (true, _) => FeedEvent::MessageDeleted { seq, message },
                        (false, true) => FeedEvent::NewMessage { seq, message },
                        (false, false) => FeedEvent::MessageUpdated { seq, message },
                    }
                }
                FeedEntry::Hidden {
                    conversation_id,
                    message_id,
                    thread_reply,
                } => FeedEvent::MessageHidden {
                    seq,
                    conversation_id,
                    message_id,
                    thread_reply,
                },
                FeedEntry::Marker { marker, .. } if marker.user_id == caller => {
                    FeedEvent::ReadMarkerUpdated {
                        seq,
                        unread_count: unread.get(&marker.conversation_id).copied().unwrap_or(0),
                        unread_mentions: mentions
                            .get(&marker.conversation_id)
                            .copied()
                            .unwrap_or(0),
                        marker,
                    }
                }
                FeedEntry::Marker { marker, message_id } => FeedEvent::MessageRead {
                    seq,
                    marker,
                    message_id,
                },
                FeedEntry::Delivered(delivered) => FeedEvent::MessageDelivered { seq, delivered },
                FeedEntry::Settings {
                    conversation_id,
                    muted_until,
                    archived,
                } => FeedEvent::SettingsUpdated {
                    seq,
                    conversation_id,
                    muted_until,
                    archived,
                },
                FeedEntry::Conversation(conversation) => {
                    let details = self.conversation_service.details_of(conversation, caller)?;
                    let last_read_seq = self
                        .conversations
                        .membership(details.conversation.id, caller)?
                        .map_or(Seq::ZERO, |m| m.last_read_seq);
                    FeedEvent::ConversationState {
                        seq,
                        details,
                        last_read_seq,
                    }
                }
                FeedEntry::Departure {
                    conversation_id,
                    departed_at,
                } => FeedEvent::ConversationLeft {
                    seq,
                    conversation_id,
                    user_id: caller,
                    at: departed_at,
                },
            });
        }
        let next = events.last().map_or(query.since, FeedEvent::seq);
        Ok(FeedPage {
            events,
            next,
            has_more,
        })
    }

    /// The time a replayed event is stamped with when its change kept no time of its own.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::World;
    use crate::service::{CreateConversation, SendMessage};

    fn query(since: Seq, limit: u32) -> FeedQuery {
        FeedQuery { since, limit }
    }

    fn kinds(page: &FeedPage) -> Vec<&'static str> {
        page.events
            .iter()
            .map(|e| match e {
                FeedEvent::NewMessage { .. } => "new_message",
                FeedEvent::MessageUpdated { .. } => "message_updated",
                FeedEvent::MessageDeleted { .. } => "message_deleted",
                FeedEvent::MessageHidden { .. } => "message_hidden",
                FeedEvent::MessageRead { .. } => "message_read",
                FeedEvent::MessageDelivered { .. } => "message_delivered",
                FeedEvent::ReadMarkerUpdated { .. } => "read_marker_updated",
                FeedEvent::SettingsUpdated { .. } => "settings_updated",
                FeedEvent::ConversationState { .. } => "conversation_state",
                FeedEvent::ConversationLeft { .. } => "conversation_left",
            })
            .collect()
    }

    #[test]
    fn each_change_replays_once_in_the_form_a_live_client_would_have_seen() {
        let world = World::new();
        let (alice, bob) = (world.user("alice"), world.user("bob"));
        let (details, _) = world
            .services
            .conversations
            .create(
                alice,
                CreateConversation {
                    participant_ids: vec![bob],
                    name: Some("team".into()),
                    is_group: None,
                },
            )
            .unwrap();
        let group = details.conversation.id;
        let send = |text: &str| {
            world
                .services
                .messages
                .send(
                    alice,
                    group,
                    SendMessage {
                        content: text.into(),
                        client_message_id: None,
                        reply_to_id: None,
                        thread_root_id: None,
                        attachment_ids: Vec::new(),
                    },
                )
                .unwrap()
                .0
                .message
        };
        let (edited, deleted, hidden, fresh) = (send("a"), send("b"), send("c"), send("d"));
        let position = fresh.seq;
        let edit = world.store.change_message(edited.id);
        let delete = world
            .store
            .delete_message(deleted.id, alice, edited.created_at);
        let hide = world.store.hide_message(bob, hidden.id);
        let alices_marker = world.store.set_marker(group, alice, fresh.seq);
        let bobs_marker = world.store.set_marker(group, bob, edited.seq);
        let settings = world.store.set_settings(group, bob, None, true);
        let alices_settings = world.store.set_settings(group, alice, None, true);

        let sync = &world.services.sync;
        let page = sync.feed(bob, query(position, 100)).unwrap();
        assert_eq!(
            kinds(&page),
            [
                "message_updated",
                "message_deleted",
                "message_hidden",
                "message_read",
                "read_marker_updated",
                "settings_updated",
            ],
            "another member's settings never reach bob: {page:?}"
        );
        let seqs: Vec<Seq> = page.events.iter().map(FeedEvent::seq).collect();
        assert_eq!(
            seqs,
            [edit, delete, hide, alices_marker, bobs_marker, settings]
        );
        assert!(settings < alices_settings);
        assert_eq!((page.next, page.has_more), (settings, false));
        match &page.events[4] {
            FeedEvent::ReadMarkerUpdated {
                marker,
                unread_count,
                ..
            } => {
                assert_eq!(marker.last_read_seq, edited.seq);
                // After the marker: the tombstone... is still a message here; the hidden
                // one is bob's to skip; "d" from alice.
                assert!(*unread_count >= 1);
            }
            other => panic!("expected bob's own marker, got {other:?}"),
        }

        // From the start: the conversation at its creation, the edited message as new (it
        // was sent after 0) at its edit's position, and nothing of the hidden one but its
        // hiding.
        let from_start = sync.feed(bob, query(Seq::ZERO, 100)).unwrap();
        assert_eq!(
            kinds(&from_start),
            [
                "conversation_state",
                "new_message",
                "new_message",
                "message_deleted",
                "message_hidden",
                "message_read",
                "read_marker_updated",
                "settings_updated",
            ]
        );
        match &from_start.events[2] {
            FeedEvent::NewMessage { seq, message } => {
                assert_eq!((*seq, message.message.id), (edit, edited.id))
            }
            other => panic!("expected the edited message, got {other:?}"),
        }
        match &from_start.events[0] {
            FeedEvent::ConversationState { details, .. } => {
                assert_eq!(details.participants.len(), 2)
            }
            other => panic!("expected the conversation, got {other:?}"),
        }

        // Paged by two, the same events, and `has_more` until the last page.
        let mut since = Seq::ZERO;
        let mut paged = Vec::new();
        loop {
            let page = sync.feed(bob, query(since, 2)).unwrap();
            paged.extend(page.events.iter().map(FeedEvent::seq));
            since = page.next;
            if !page.has_more {
                break;
            }
        }
        assert_eq!(
            paged,
            from_start
                .events
                .iter()
                .map(FeedEvent::seq)
                .collect::<Vec<_>>()
        );
        assert_eq!(sync.feed(bob, query(since, 2)).unwrap().next, since);
    }

    #[test]
    fn a_feed_query_refuses_a_negative_position_and_a_limit_out_of_range() {
        assert_eq!(
            FeedQuery::parse(None, None).unwrap(),
            query(Seq::ZERO, FeedQuery::DEFAULT_LIMIT)
        );
        assert_eq!(
            FeedQuery::parse(Some(7), Some(1000)).unwrap(),
            query(Seq(7), 1000)
        );
        for (since, limit, field) in [
            (Some(-1), None, "since"),
            (None, Some(0), "limit"),
            (None, Some(1001), "limit"),
        ] {
            match FeedQuery::parse(since, limit) {
                Err(DomainError::Validation(errors)) => assert_eq!(errors[0].field, field),
                other => panic!("expected a validation error, got {other:?}"),
            }
        }
    }

    #[test]
    fn hiding_the_own_message_a_marker_stands_on_replays_the_marker() {
        let world = World::new();
        let (alice, bob) = (world.user("alice"), world.user("bob"));
        let (details, _) = world
            .services
            .conversations
            .create(
                alice,
                CreateConversation {
                    participant_ids: vec![bob],
                    name: Some("team".into()),
                    is_group: None,
                },
            )
            .unwrap();
        let group = details.conversation.id;
        let messages = &world.services.messages;
        let send = |from, text: &str| {
            messages
                .send(
                    from,
                    group,
                    SendMessage {
                        content: text.into(),
                        client_message_id: None,
                        reply_to_id: None,
                        thread_root_id: None,
                        attachment_ids: Vec::new(),
                    },
                )
                .unwrap()
                .0
                .message
        };
        let position = send(alice, "hello").seq;
        // Sending is reading: bob's marker moves onto his message, with no position of its own.
        let mine = send(bob, "hi");
        messages
            .delete(bob, mine.id, crate::message::DeleteScope::Me)
            .unwrap();

        let page = world.services.sync.feed(bob, query(position, 100)).unwrap();
        assert_eq!(
            kinds(&page),
            ["message_hidden", "read_marker_updated"],
            "{page:?}"
        );
        match &page.events[1] {
            FeedEvent::ReadMarkerUpdated { marker, .. } => {
                assert_eq!(marker.last_read_seq, mine.seq)
            }
            other => panic!("expected bob's own marker, got {other:?}"),
        }
    }
}
