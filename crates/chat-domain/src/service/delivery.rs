//! Delivered receipts: how far each member's devices have received each conversation.
//!
//! The gateway reports a message reaching a socket, and the message reads report what they
//! returned, to a per-node coalescer that hands them here in batches: one store transaction
//! per batch, never one write per message, and one `message_delivered` per member and
//! conversation that moved, however many messages the batch covered.

use std::collections::HashMap;
use std::sync::Arc;

use crate::events::DomainEvent;
use crate::message::Message;
use crate::ports::{Clock, ConversationStore, EventPublisher, ReadReceiptStore};
use crate::read_state::{Delivered, Delivery};
use crate::{ConversationId, DomainError, UserId};

use super::Ports;

#[derive(Clone)]
pub struct DeliveryService {
    conversations: Arc<dyn ConversationStore>,
    read_receipts: Arc<dyn ReadReceiptStore>,
    events: Arc<dyn EventPublisher>,
    clock: Arc<dyn Clock>,
}

impl DeliveryService {
    pub fn new(ports: &Ports) -> Self {
        Self {
            conversations: ports.conversations.clone(),
            read_receipts: ports.read_receipts.clone(),
            events: ports.events.clone(),
            clock: ports.clock.clone(),
        }
    }

    /// What fetching `messages` delivers to `user`: the newest seq of each conversation among
    /// them. The caller reports it as it reports a socket's deliveries.
    pub fn fetched<'a>(
        user: UserId,
        messages: impl IntoIterator<Item = &'a Message>,
    ) -> Vec<Delivery> {
        let mut newest: HashMap<ConversationId, Delivery> = HashMap::new();
        for m in messages {
            let delivery = newest.entry(m.conversation_id).or_insert(Delivery {
                conversation_id: m.conversation_id,
                user_id: user,
                seq: m.seq,
            });
            delivery.seq = delivery.seq.max(m.seq);
        }
        newest.into_values().collect()
    }

    /// Records a batch of deliveries in one store write and tells the other members of each
    /// conversation whose member's marker moved (not the member: their devices know what
    /// they received): one `message_delivered` per marker that moved. A delivery to someone who is no longer a
    /// member, or that is not past where their markers stand, changes nothing and is not
    /// announced. Returns the markers that moved.
    pub fn record(&self, deliveries: &[Delivery]) -> Result<Vec<Delivered>, DomainError> {
        if deliveries.is_empty() {
            return Ok(Vec::new());
        }
        let moved = self.read_receipts.deliver(deliveries)?;
        if moved.is_empty() {
            return Ok(moved);
        }
        let mut conversations: Vec<ConversationId> =
            moved.iter().map(|d| d.conversation_id).collect();
        conversations.sort();
        conversations.dedup();
        let members = self.conversations.members_of(&conversations)?;
        let audiences: HashMap<ConversationId, Vec<UserId>> = conversations
            .into_iter()
            .zip(members)
            .map(|(id, members)| (id, members.into_iter().map(|m| m.user_id).collect()))
            .collect();
        let at = self.clock.now();
        for delivered in &moved {
            let audience = audiences
                .get(&delivered.conversation_id)
                .into_iter()
                .flatten()
                .copied()
                .filter(|member| *member != delivered.user_id)
                .collect();
            self.events.publish(DomainEvent::MessageDelivered {
                delivered: *delivered,
                audience,
                at,
            });
        }
        Ok(moved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::World;
    use crate::message::{HistoryCursor, Seq};
    use crate::service::{CreateConversation, SendMessage};

    struct Chat {
        world: World,
        alice: UserId,
        bob: UserId,
        carol: UserId,
        group: ConversationId,
    }

    fn chat() -> Chat {
        let world = World::new();
        let (alice, bob, carol) = (world.user("alice"), world.user("bob"), world.user("carol"));
        let (details, _) = world
            .services
            .conversations
            .create(
                alice,
                CreateConversation {
                    participant_ids: vec![bob, carol],
                    name: Some("team".into()),
                    is_group: None,
                },
            )
            .unwrap();
        Chat {
            world,
            alice,
            bob,
            carol,
            group: details.conversation.id,
        }
    }

    fn send(chat: &Chat, text: &str) -> Seq {
        let request = SendMessage {
            content: text.into(),
            ..Default::default()
        };
        let (view, _) = chat
            .world
            .services
            .messages
            .send(chat.alice, chat.group, request)
            .unwrap();
        view.message.seq
    }

    fn delivered(events: &[DomainEvent]) -> Vec<(Delivered, Vec<UserId>)> {
        events
            .iter()
            .filter_map(|e| match e {
                DomainEvent::MessageDelivered {
                    delivered,
                    audience,
                    ..
                } => {
                    let mut audience = audience.clone();
                    audience.sort();
                    Some((*delivered, audience))
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_batch_is_one_event_per_member_that_moved_heard_by_every_member() {
        let chat = chat();
        let seqs: Vec<Seq> = (0..5).map(|i| send(&chat, &format!("m{i}"))).collect();
        chat.world.events.take();
        let service = &chat.world.services.delivery;
        let batch: Vec<Delivery> = seqs
            .iter()
            .flat_map(|seq| {
                [chat.bob, chat.carol, chat.alice].map(|user_id| Delivery {
                    conversation_id: chat.group,
                    user_id,
                    seq: *seq,
                })
            })
            .collect();
        let moved = service.record(&batch).unwrap();
        assert_eq!(moved.len(), 2, "bob and carol; alice sent them: {moved:?}");
        let events = delivered(&chat.world.events.take());
        assert_eq!(events.len(), 2, "coalesced: five messages, one event each");
        for (event, audience) in &events {
            assert_eq!(event.last_delivered_seq, seqs[4]);
            let mut others: Vec<UserId> = [chat.alice, chat.bob, chat.carol]
                .into_iter()
                .filter(|u| *u != event.user_id)
                .collect();
            others.sort();
            assert_eq!(audience, &others, "every other member hears of it");
        }
        assert_eq!(service.record(&batch).unwrap(), []);
        assert!(
            delivered(&chat.world.events.take()).is_empty(),
            "nothing moved, nothing announced"
        );
    }

    #[test]
    fn a_member_removed_is_neither_recorded_nor_told() {
        let chat = chat();
        let seq = send(&chat, "hello");
        chat.world
            .services
            .conversations
            .remove_member(chat.alice, chat.group, chat.carol)
            .unwrap();
        chat.world.events.take();
        let moved = chat
            .world
            .services
            .delivery
            .record(&[
                Delivery {
                    conversation_id: chat.group,
                    user_id: chat.carol,
                    seq,
                },
                Delivery {
                    conversation_id: chat.group,
                    user_id: chat.bob,
                    seq,
                },
            ])
            .unwrap();
        assert_eq!(moved.len(), 1);
        let events = delivered(&chat.world.events.take());
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].0.user_id, chat.bob);
        assert_eq!(
            events[0].1,
            [chat.alice],
            "alice; carol hears nothing of the group now"
        );
    }

    #[test]
    fn fetching_delivers_the_newest_message_of_each_conversation_returned() {
        let chat = chat();
        send(&chat, "one");
        let two = send(&chat, "two");
        let history = chat
            .world
            .services
            .messages
            .history(chat.bob, chat.group, HistoryCursor::Latest, 10)
            .unwrap();
        let fetched = DeliveryService::fetched(chat.bob, history.iter().map(|v| &v.message));
        assert_eq!(
            fetched,
            [Delivery {
                conversation_id: chat.group,
                user_id: chat.bob,
                seq: two,
            }]
        );
        assert!(DeliveryService::fetched(chat.bob, []).is_empty());
    }

    #[test]
    fn conversation_details_show_delivered_never_below_read() {
        let chat = chat();
        let one = send(&chat, "one");
        let two = send(&chat, "two");
        let services = &chat.world.services;
        services
            .delivery
            .record(&[Delivery {
                conversation_id: chat.group,
                user_id: chat.bob,
                seq: one,
            }])
            .unwrap();
        let (read, _) = services
            .messages
            .mark_read(chat.carol, {
                let h = services
                    .messages
                    .history(chat.carol, chat.group, HistoryCursor::Latest, 1)
                    .unwrap();
                h[0].message.id
            })
            .unwrap();
        assert_eq!(read.marker.last_read_seq, two);
        let details = services
            .conversations
            .details(chat.alice, chat.group)
            .unwrap();
        let shown = |user| {
            let p = details
                .participants
                .iter()
                .find(|p| p.user.id == user)
                .unwrap();
            (p.last_read_seq, p.last_delivered_seq)
        };
        assert_eq!(shown(chat.bob), (Seq::ZERO, one));
        assert_eq!(shown(chat.carol), (two, two), "reading is receiving");
        assert_eq!(shown(chat.alice), (two, two), "sending is reading");
    }
}
