//! The outbox and webhook deliveries: every announced change writes its event with it, a
//! fan-out takes each event once, claims keep each conversation's order per endpoint and
//! never hold a delivery twice, and dead letters come back when replayed.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::{Fixture, Stores};
use crate::conversation::{ConversationName, Role};
use crate::message::MessageContent;
use crate::webhook::{
    DeliveryState, EventKind, Lease, NewDelivery, OutboxEvent, Webhook, WebhookDelivery, WebhookId,
    WebhookSecret, WebhookUrl,
};

fn endpoint<S: Stores + ?Sized>(store: &S, at: DateTime<Utc>) -> WebhookId {
    let webhook = Webhook {
        id: WebhookId::new(),
        url: WebhookUrl::parse("https://example.com/hook").unwrap(),
        secret: WebhookSecret::parse("0123456789abcdef").unwrap(),
        created_by: None,
        created_at: at,
    };
    store.insert_webhook(&webhook).unwrap();
    webhook.id
}

/// Fans every pending event out as its own delivery, due at `at`.
fn fan_out_all<S: Stores + ?Sized>(store: &S, at: DateTime<Utc>) -> Vec<OutboxEvent> {
    let events = store.pending_events(1000).unwrap();
    let deliveries: Vec<NewDelivery> = events
        .iter()
        .map(|e| NewDelivery {
            source: e.id,
            event_id: Uuid::new_v4(),
            kind: e.kind,
            refs: e.refs.clone(),
            count: 1,
            created_at: e.created_at,
        })
        .collect();
    let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
    assert_eq!(store.fan_out(&ids, &deliveries, at).unwrap(), ids);
    events
}

fn lease(holder: &str, until: DateTime<Utc>) -> Lease {
    Lease {
        holder: holder.into(),
        until,
    }
}

fn kinds(deliveries: &[WebhookDelivery]) -> Vec<EventKind> {
    deliveries.iter().map(|d| d.kind).collect()
}

pub fn every_announced_change_is_in_the_outbox_in_the_order_it_was_made<S: Stores + ?Sized>(
    store: &S,
) {
    let f = Fixture::new(store);
    let (alice, bob, carol) = (f.user("alice"), f.user("bob"), f.user("carol"));
    let group = f.group(&[alice, bob]);
    let first = f.send(group, alice, "one");
    let second = f.send(group, bob, "two");
    let content = MessageContent::parse("one, edited").unwrap();
    store
        .edit(first.id, alice, &content, f.now(), &mut |_| {})
        .unwrap();
    store.delete(second.id, bob, f.now(), &mut |_| {}).unwrap();
    let name = ConversationName::parse("renamed").unwrap();
    store.rename(group, &name, f.now()).unwrap();
    store
        .add_members(group, &[carol], Role::Member, 10, f.now())
        .unwrap();
    store.remove_member(group, bob, f.now()).unwrap();
    // Changes that change nothing announce nothing.
    store
        .edit(first.id, alice, &content, f.now(), &mut |_| {})
        .unwrap();
    store
        .delete(second.id, bob, f.now(), &mut |_| {})
        .unwrap_err();

    let events = store.pending_events(100).unwrap();
    let got: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
    assert_eq!(
        got,
        [
            EventKind::ConversationCreated,
            EventKind::MessageCreated,
            EventKind::MessageCreated,
            EventKind::MessageEdited,
            EventKind::MessageDeleted,
            EventKind::ConversationRenamed,
            EventKind::MemberAdded,
            EventKind::MemberRemoved,
        ]
    );
    assert!(events.windows(2).all(|w| w[0].id < w[1].id));
    assert!(events.iter().all(|e| e.refs.conversation_id == Some(group)));
    assert_eq!(events[1].refs.message_id, Some(first.id));
    assert_eq!(
        events[1].refs.user_id,
        Some(alice),
        "a message names its sender"
    );
    assert_eq!(events[1].refs.seq, Some(first.seq));
    assert_eq!(events[2].refs.user_id, Some(bob));
    assert_eq!(events[4].refs.message_id, Some(second.id));
    assert_eq!(events[6].refs.user_id, Some(carol));
    assert_eq!(events[7].refs.user_id, Some(bob));
    assert!(
        events[3].refs.seq > events[2].refs.seq,
        "an edit takes a later seq"
    );
}

pub fn a_fan_out_takes_each_event_once_and_queues_it_to_every_endpoint<S: Stores + ?Sized>(
    store: &S,
) {
    let f = Fixture::new(store);
    let (alice, bob) = (f.user("alice"), f.user("bob"));
    let (one, two) = (endpoint(store, f.now()), endpoint(store, f.now()));
    f.direct(alice, bob);
    let events = store.pending_events(100).unwrap();
    let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
    let event_id = Uuid::new_v4();
    let delivery = NewDelivery {
        source: ids[0],
        event_id,
        kind: events[0].kind,
        refs: events[0].refs.clone(),
        count: 1,
        created_at: events[0].created_at,
    };
    let at = f.now();
    assert_eq!(
        store
            .fan_out(&ids, std::slice::from_ref(&delivery), at)
            .unwrap(),
        ids
    );
    assert!(store.pending_events(100).unwrap().is_empty());
    assert!(
        store.fan_out(&ids, &[delivery], at).unwrap().is_empty(),
        "an event already taken queues nothing again"
    );
    let claimed = store
        .claim(&lease("a", at + Duration::minutes(1)), at, 100)
        .unwrap();
    assert_eq!(claimed.len(), 2, "one delivery per endpoint");
    let mut to: Vec<WebhookId> = claimed.iter().map(|d| d.webhook_id).collect();
    to.sort();
    let mut expected = vec![one, two];
    expected.sort();
    assert_eq!(to, expected);
    assert!(
        claimed
            .iter()
            .all(|d| d.event_id == event_id && d.attempts == 0)
    );
}

pub fn a_claim_never_holds_a_leased_delivery_nor_one_behind_a_pending_earlier_one<
    S: Stores + ?Sized,
>(
    store: &S,
) {
    let f = Fixture::new(store);
    let (alice, bob) = (f.user("alice"), f.user("bob"));
    endpoint(store, f.now());
    let group = f.group(&[alice, bob]);
    let other = f.group(&[bob, alice]);
    f.send(group, alice, "one");
    let at = f.now();
    fan_out_all(store, at);
    let until = at + Duration::minutes(1);
    let mine = store.claim(&lease("a", until), at, 2).unwrap();
    assert_eq!(
        kinds(&mine),
        [
            EventKind::ConversationCreated,
            EventKind::ConversationCreated
        ],
        "the lowest ids first, up to the limit"
    );
    assert!(mine.iter().all(|d| d.next_attempt_at == Some(until)));
    let theirs = store.claim(&lease("b", until), at, 10).unwrap();
    assert!(
        theirs.is_empty(),
        "nothing leased is claimed again, nor what waits behind it: {theirs:?}"
    );
    // The first of `group` fails and is due again later; the other conversation goes on.
    let failed = mine
        .iter()
        .find(|d| d.refs.conversation_id == Some(group))
        .unwrap();
    let later = at + Duration::seconds(30);
    assert!(
        store
            .failed(failed.id, "a", "answered 500", at, Some(later))
            .unwrap()
    );
    assert!(
        !store
            .failed(failed.id, "a", "answered 500", at, Some(later))
            .unwrap()
    );
    let done = mine
        .iter()
        .find(|d| d.refs.conversation_id == Some(other))
        .unwrap();
    assert_eq!(
        store.delivered(&[done.id], "b").unwrap(),
        0,
        "only the holder acknowledges"
    );
    assert_eq!(store.delivered(&[done.id], "a").unwrap(), 1);
    assert!(store.claim(&lease("b", until), at, 10).unwrap().is_empty());
    let retried = store
        .claim(&lease("b", until + Duration::minutes(1)), later, 10)
        .unwrap();
    assert_eq!(
        kinds(&retried),
        [EventKind::ConversationCreated, EventKind::MessageCreated],
        "at its time the failed delivery goes again, then what waited behind it"
    );
    assert_eq!(retried[0].attempts, 1);
    assert_eq!(retried[0].first_attempt_at, Some(at));
    assert_eq!(retried[0].last_error.as_deref(), Some("answered 500"));
    // Let go without an attempt: due again at once.
    assert_eq!(store.delivered(&[retried[0].id], "b").unwrap(), 1);
    store.release(&[retried[1].id], "b", later).unwrap();
    let again = store.claim(&lease("c", until), later, 10).unwrap();
    assert_eq!(kinds(&again), [EventKind::MessageCreated]);
    assert_eq!(again[0].attempts, 0);
}

pub fn a_lease_that_runs_out_lets_another_claim_take_the_delivery<S: Stores + ?Sized>(store: &S) {
    let f = Fixture::new(store);
    let (alice, bob) = (f.user("alice"), f.user("bob"));
    endpoint(store, f.now());
    f.direct(alice, bob);
    let at = f.now();
    fan_out_all(store, at);
    let until = at + Duration::seconds(10);
    let first = store.claim(&lease("dead node", until), at, 10).unwrap();
    assert_eq!(first.len(), 1);
    let second = store
        .claim(&lease("b", until + Duration::seconds(10)), until, 10)
        .unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(
        second[0].event_id, first[0].event_id,
        "the same event, the same id"
    );
    assert_eq!(store.delivered(&[first[0].id], "dead node").unwrap(), 0);
    assert_eq!(store.delivered(&[first[0].id], "b").unwrap(), 1);
}

pub fn a_dead_letter_is_listed_until_replayed_and_goes_with_its_endpoint<S: Stores + ?Sized>(
    store: &S,
) {
    let f = Fixture::new(store);
    let (alice, bob) = (f.user("alice"), f.user("bob"));
    let hook = endpoint(store, f.now());
    f.direct(alice, bob);
    let at = f.now();
    fan_out_all(store, at);
    let claimed = store
        .claim(&lease("a", at + Duration::minutes(1)), at, 10)
        .unwrap();
    assert!(
        store
            .failed(claimed[0].id, "a", "timed out", at, None)
            .unwrap()
    );
    let dead = store.dead_letters(None, None, 10).unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].state, DeliveryState::Dead);
    assert_eq!(dead[0].next_attempt_at, None);
    assert_eq!(store.dead_letters(Some(hook), None, 10).unwrap().len(), 1);
    assert!(
        store
            .dead_letters(Some(WebhookId::new()), None, 10)
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .dead_letters(None, Some(dead[0].id), 10)
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .claim(
                &lease("b", at + Duration::hours(1)),
                at + Duration::minutes(30),
                10
            )
            .unwrap()
            .is_empty(),
        "a dead letter is never claimed"
    );
    let replayed = store.replay(dead[0].id, at).unwrap().expect("replayed");
    assert_eq!(replayed.state, DeliveryState::Pending);
    assert_eq!((replayed.attempts, replayed.first_attempt_at), (0, None));
    assert_eq!(
        store.replay(dead[0].id, at).unwrap(),
        None,
        "no longer dead"
    );
    assert_eq!(
        store
            .claim(&lease("b", at + Duration::minutes(1)), at, 10)
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .failed(replayed.id, "b", "timed out", at, None)
            .unwrap()
    );
    assert!(store.delete_webhook(hook).unwrap());
    assert!(!store.delete_webhook(hook).unwrap());
    assert!(store.dead_letters(None, None, 10).unwrap().is_empty());
    assert!(store.webhooks().unwrap().is_empty());
    assert_eq!(store.find_webhook(hook).unwrap(), None);
}
