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

    /// Records a batch of deliveries in one store write and tells every member of each
    /// conversation whose member's marker moved (the member's own devices too): one
    /// `message_delivered` per marker that moved. A delivery to someone who is no longer a
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
            self.events.publish(DomainEvent::MessageDelivered {
                delivered: *delivered,
                audience: audiences
                    .get(&delivered.conversation_id)
                    .cloned()
                    .unwrap_or_default(),
                at,
            });
        }
        Ok(moved)
    }
}
