//! Delivered receipts, coalesced per node: the gateway notes each new message it hands to a
//! member's socket, the message reads note what they returned, and a flush every
//! `CHAT_DELIVERY_FLUSH_INTERVAL` hands the highest seq per member and conversation to
//! [`DeliveryService::record`] on a blocking thread. One store transaction per flush, and
//! one `message_delivered` per member and conversation that moved, however many messages
//! arrived: sending, the hot path, pays one map insert per recipient under one short lock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chat_domain::message::Seq;
use chat_domain::read_state::Delivery;
use chat_domain::service::{ChatServices, DeliveryService};
use chat_domain::{ConversationId, UserId};

use super::Hub;

/// Deliveries noted since the last flush: the highest seq per conversation and member.
#[derive(Default)]
pub struct DeliveryTracker {
    pending: Mutex<HashMap<(ConversationId, UserId), Seq>>,
}

impl DeliveryTracker {
    /// Notes that messages of `conversation` up to `seq` reached each of `users`.
    pub fn note(&self, conversation: ConversationId, seq: Seq, users: &[UserId]) {
        if users.is_empty() {
            return;
        }
        let mut pending = self.lock();
        for user in users {
            let at = pending.entry((conversation, *user)).or_insert(seq);
            *at = (*at).max(seq);
        }
    }

    /// Notes deliveries computed elsewhere (what a fetch returned).
    pub fn note_all(&self, deliveries: impl IntoIterator<Item = Delivery>) {
        let mut pending = self.lock();
        for d in deliveries {
            let at = pending
                .entry((d.conversation_id, d.user_id))
                .or_insert(d.seq);
            *at = (*at).max(d.seq);
        }
    }

    /// Everything noted since the last take, leaving nothing behind.
    pub fn take(&self) -> Vec<Delivery> {
        let pending = std::mem::take(&mut *self.lock());
        pending
            .into_iter()
            .map(|((conversation_id, user_id), seq)| Delivery {
                conversation_id,
                user_id,
                seq,
            })
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(ConversationId, UserId), Seq>> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Flushes the hub's deliveries every `interval` until the hub shuts down, then once more.
/// A flush that fails (the store unavailable) is noted again for the next one, merged with
/// what arrived meanwhile: nothing is lost but the delay, and the map stays one entry per
/// member and conversation however long the store is away.
pub async fn flush_deliveries(hub: Arc<Hub>, services: ChatServices, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stopping = hub.shutting_down();
    tokio::pin!(stopping);
    loop {
        let last = tokio::select! {
            _ = tick.tick() => false,
            () = &mut stopping => true,
        };
        flush(&hub, &services).await;
        if last {
            return;
        }
    }
}

async fn flush(hub: &Arc<Hub>, services: &ChatServices) {
    let batch = hub.deliveries().take();
    if batch.is_empty() {
        return;
    }
    let services = services.clone();
    let recorded = tokio::task::spawn_blocking(move || {
        let result = services.delivery.record(&batch);
        (result, batch)
    })
    .await;
    match recorded {
        Ok((Ok(_), _)) => {}
        Ok((Err(error), batch)) => {
            tracing::warn!(%error, deliveries = batch.len(), "recording deliveries failed; retrying at the next flush");
            hub.deliveries().note_all(batch);
        }
        Err(error) => tracing::warn!(%error, "the delivery flush did not run"),
    }
}

/// What a member fetching `messages` received: noted as a socket's deliveries are.
pub fn note_fetched<'a>(
    hub: &Hub,
    user: UserId,
    messages: impl IntoIterator<Item = &'a chat_domain::message::Message>,
) {
    let fetched = DeliveryService::fetched(user, messages);
    if !fetched.is_empty() {
        hub.deliveries().note_all(fetched);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_coalesce_to_the_highest_seq_per_member_and_conversation() {
        let tracker = DeliveryTracker::default();
        let (c, d) = (ConversationId::new(), ConversationId::new());
        let (bob, carol) = (UserId::new(), UserId::new());
        tracker.note(c, Seq(3), &[bob, carol]);
        tracker.note(c, Seq(5), &[bob]);
        tracker.note(c, Seq(4), &[bob]);
        tracker.note_all([Delivery {
            conversation_id: d,
            user_id: bob,
            seq: Seq(9),
        }]);
        let mut taken: Vec<(ConversationId, UserId, Seq)> = tracker
            .take()
            .into_iter()
            .map(|d| (d.conversation_id, d.user_id, d.seq))
            .collect();
        taken.sort();
        let mut expected = vec![(c, bob, Seq(5)), (c, carol, Seq(3)), (d, bob, Seq(9))];
        expected.sort();
        assert_eq!(taken, expected);
        assert!(tracker.take().is_empty(), "a take leaves nothing behind");
    }
}
