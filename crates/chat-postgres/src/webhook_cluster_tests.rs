//! Webhook dispatch across nodes: several stores ("nodes") on one database claim deliveries
//! at once. Each delivery is held by exactly one claim, and a conversation's deliveries are
//! claimed only once everything before them has been acknowledged (or in the same claim).
//! Skips without `CHAT_TEST_POSTGRES_URL`, as the other cluster tests do.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use chat_domain::conversation::{
    Conversation, ConversationKind, ConversationName, NewConversation, Role,
};
use chat_domain::message::{MessageContent, NewMessage};
use chat_domain::ports::{ConversationStore, MessageStore, OutboxStore, UserStore, WebhookStore};
use chat_domain::user::{Email, NewUser, PasswordHash, Username};
use chat_domain::webhook::{Lease, NewDelivery, Webhook, WebhookId, WebhookSecret, WebhookUrl};
use chat_domain::{ConversationId, MessageId, UserId};
use chrono::{Duration, SubsecRound, Utc};

use crate::PgStore;
use crate::testing::TestStore;

const SUITE: &str = "chat-postgres webhooks";

/// Every claim as (delivery id, conversation, holder).
type Claims = Arc<Mutex<Vec<(i64, Option<ConversationId>, String)>>>;

#[test]
fn dispatchers_on_several_nodes_claim_each_delivery_once_and_keep_each_conversations_order() {
    let Some(first) = TestStore::create(SUITE) else {
        return;
    };
    let store: &PgStore = &first;
    let now = Utc::now().trunc_subsecs(6);
    let alice = UserId::new();
    store
        .insert(&NewUser {
            id: alice,
            username: Username::parse("alice").unwrap(),
            email: Email::parse("alice@example.com").unwrap(),
            full_name: None,
            password_hash: PasswordHash("hash".into()),
            created_at: now,
        })
        .unwrap();
    store
        .insert_webhook(&Webhook {
            id: WebhookId::new(),
            url: WebhookUrl::parse("https://example.com/hook").unwrap(),
            secret: WebhookSecret::parse("0123456789abcdef").unwrap(),
            created_by: None,
            created_at: now,
        })
        .unwrap();
    for c in 0..4 {
        let conversation = Conversation {
            id: ConversationId::new(),
            kind: ConversationKind::Group,
            name: Some(ConversationName::parse("team").unwrap()),
            created_by: alice,
            created_at: now,
            updated_at: now,
        };
        let id = conversation.id;
        store
            .create(&NewConversation {
                conversation,
                members: vec![(alice, Role::Owner)],
            })
            .unwrap();
        for i in 0..40 {
            let message = NewMessage {
                id: MessageId::new(),
                conversation_id: id,
                sender_id: alice,
                content: MessageContent::parse(&format!("{c}/{i}")).unwrap(),
                client_message_id: None,
                reply_to_id: None,
                thread_root_id: None,
                mentions: Default::default(),
                created_at: now,
                attachment_ids: Vec::new(),
            };
            store.append(&message, Box::new(|_| {})).unwrap();
        }
    }
    let events = store.pending_events(10_000).unwrap();
    let deliveries: Vec<NewDelivery> = events
        .iter()
        .map(|e| NewDelivery {
            source: e.id,
            event_id: uuid::Uuid::new_v4(),
            kind: e.kind,
            refs: e.refs.clone(),
            count: 1,
            created_at: e.created_at,
        })
        .collect();
    let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
    store.fan_out(&ids, &deliveries, now).unwrap();
    let expected = events.len();
    assert_eq!(expected, 4 * 41);

    let nodes: Vec<PgStore> = vec![store.clone(), first.another_node(), first.another_node()];
    // Every claim, and what was acknowledged.
    let claims: Claims = Arc::default();
    let acknowledged: Arc<Mutex<HashSet<i64>>> = Arc::default();
    // Each conversation's deliveries, by id: the order they must go in.
    let order: Arc<Mutex<HashMap<Option<ConversationId>, Vec<i64>>>> = Arc::default();
    std::thread::scope(|scope| {
        for (n, node) in nodes.iter().enumerate() {
            for t in 0..2 {
                let (claims, acknowledged, order) =
                    (claims.clone(), acknowledged.clone(), order.clone());
                scope.spawn(move || {
                    let holder = format!("node{n}-{t}");
                    loop {
                        if acknowledged.lock().unwrap().len() == expected {
                            return;
                        }
                        let lease = Lease {
                            holder: holder.clone(),
                            until: Utc::now() + Duration::minutes(5),
                        };
                        let claimed = node.claim(&lease, Utc::now(), 8).unwrap();
                        {
                            let done = acknowledged.lock().unwrap();
                            let batch: HashSet<i64> = claimed.iter().map(|d| d.id).collect();
                            let mut order = order.lock().unwrap();
                            for d in &claimed {
                                let key = d.refs.conversation_id;
                                let seen = order.entry(key).or_default();
                                seen.push(d.id);
                                let before_unsettled = claims
                                    .lock()
                                    .unwrap()
                                    .iter()
                                    .filter(|(id, c, _)| *c == key && *id < d.id)
                                    .any(|(id, _, _)| !done.contains(id) && !batch.contains(id));
                                assert!(
                                    !before_unsettled,
                                    "{holder} claimed {} while an earlier one of its conversation was held",
                                    d.id
                                );
                                claims.lock().unwrap().push((d.id, key, holder.clone()));
                            }
                        }
                        // Marked acknowledged before the write commits: a claim can only see
                        // them gone after it.
                        let ids: Vec<i64> = claimed.iter().map(|d| d.id).collect();
                        acknowledged.lock().unwrap().extend(ids.iter().copied());
                        assert_eq!(node.delivered(&ids, &holder).unwrap(), ids.len());
                    }
                });
            }
        }
    });
    let claims = claims.lock().unwrap();
    let mut once: HashMap<i64, usize> = HashMap::new();
    for (id, _, _) in claims.iter() {
        *once.entry(*id).or_default() += 1;
    }
    assert_eq!(once.len(), expected, "every delivery was claimed");
    assert!(once.values().all(|&n| n == 1), "none was claimed twice");
    let holders: HashSet<&str> = claims.iter().map(|(_, _, h)| h.as_str()).collect();
    assert!(holders.len() > 1, "the nodes shared the work: {holders:?}");
    for ids in order.lock().unwrap().values() {
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "claimed in order: {ids:?}"
        );
    }
}
