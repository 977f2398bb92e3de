//! The rules of [`MessageStore`]: the one growing sequence, membership checks, retry keys,
//! "sending is reading", history cursors, catch-up, deactivation, and the order in which
//! appends are answered.

use std::sync::{Arc, Mutex};

use crate::contract::{Fixture, Stores, created, existing, sorted};
use crate::conversation::{ConversationKind, Role};
use crate::message::{AppendOutcome, Appended, ClientMessageId, HistoryCursor, Seq};
use crate::ports::{MessageStore, UserStore};
use crate::{ConversationId, MessageId, StoreError, UserId};

/// Every message gets a seq greater than every message stored before it, whatever its
/// conversation, and reads back as it was stored.
pub fn appended_messages_get_increasing_seqs_across_conversations<S: Stores + ?Sized>(store: &S) {
    let f = Fixture::new(store);
    let (a, b) = (f.user("alice"), f.user("bob"));
    let one = f.direct(a, b);
    let two = f.group(&[a]);
    let new = f.message(one, a, "1");
    let outcome = f.append(&new).unwrap();
    assert_eq!(outcome.kind, ConversationKind::Direct);
    let m1 = created(outcome);
    assert_eq!(
        m1,
        new.stored_as(m1.seq, None, Vec::new()),
        "stored as given"
    );
    assert!(m1.seq > Seq::ZERO);
    let m2 = f.send(two, a, "2");
    let m3 = f.send(one, b, "3");
    assert!(m1.seq < m2.seq && m2.seq < m3.seq);
    for m in [&m1, &m2, &m3] {
        assert_eq!(MessageStore::find(store, m.id).unwrap().as_ref(), Some(m));
    }
    assert_eq!(MessageStore::find(store, MessageId::new()).unwrap(), None);
}

/// A sender who is not a member, or a conversation that does not exist, is `Missing`, and
/// nothing is stored.
pub fn a_sender_who_is_not_a_member_cannot_append<S: Stores + ?Sized>(store: &S) {
    let f = Fixture::new(store);
    let (a, b, eve) = (f.user("alice"), f.user("bob"), f.user("eve"));
    let c = f.direct(a, b);
    let g = f.group(&[a, b]);
    for (conversation, sender) in [(c, eve), (g, eve), (ConversationId::new(), a)] {
        assert!(matches!(
            f.append(&f.message(conversation, sender, "hi")),
            Err(StoreError::Missing)
        ));
    }
    assert!(
        store
            .history(c, HistoryCursor::Latest, 10)
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .history(g, HistoryCursor::Latest, 10)
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.last_seq_for(a).unwrap(), Seq::ZERO);
}

/// A message carrying a client message id its sender already used in that conversation is
/// not stored again: the earlier one comes back. The same id from another sender, or in
/// another conversation, is another message.
pub fn a_client_message_id_is_stored_once_per_sender_and_conversation<S: Stores + ?Sized>(
    store: &S,
) {
    let f = Fixture::new(store);
    let (a, b, c) = (f.user("alice"), f.user("bob"), f.user("carol"));
    let with_bob = f.direct(a, b);
    let with_carol = f.direct(a, c);
    let mut new = f.message(with_bob, a, "hi");
    new.client_message_id = Some(ClientMessageId::parse("retry-1").unwrap());
    let first = created(f.append(&new).unwrap());
    assert_eq!(first.client_message_id, new.client_message_id);
    new.id = MessageId::new();
    let again = f.append(&new).unwrap();
    assert_eq!(again.kind, ConversationKind::Direct);
    assert_eq!(existing(again), first);
    assert_eq!(MessageStore::find(store, new.id).unwrap(), None);

    new.id = MessageId::new();
    new.sender_id = b;
    let from_bob = created(f.append(&new).unwrap());
    new.id = MessageId::new();
    new.sender_id = a;
    new.conversation_id = with_carol;
    let to_carol = created(f.append(&new).unwrap());
    assert_eq!(
        store.history(with_bob, HistoryCursor::Latest, 10).unwrap(),
        vec![first, from_bob]
    );
    assert_eq!(
        store
            .history(with_carol, HistoryCursor::Latest, 10)
            .unwrap(),
        vec![to_carol]
    );
}

/// A retry takes no seq: the next new message gets the seq right after the first.
pub fn a_retry_uses_up_no_seq<S: Stores + ?Sized>(store: &S) {
    let f = Fixture::new(store);
    let (a, b) = (f.user("alice"), f.user("bob"));
    let c = f.direct(a, b);
    let mut new = f.message(c, a, "once");
    new.client_message_id = Some(ClientMessageId::parse("s-1").unwrap());
    let first = created(f.append(&new).unwrap());
    for _ in 0..3 {
        new.id = MessageId::new();
        existing(f.append(&new).unwrap());
    }
    let next = f.send(c, a, "next");
    assert_eq!(next.seq, Seq(first.seq.0 + 1));
}

/// A retry whose content differs from the stored message is not stored either: the stored
/// message comes back unchanged, for the caller to compare.
pub fn a_retry_with_other_content_gets_the_stored_message_back_unchanged<S: Stores + ?Sized>(
    store: &S,
) {
    let f = Fixture::new(store);
    let (a, b) = (f.user("alice"), f.user("bob"));
    let c = f.group(&[a, b]);
    let mut new = f.message(c, a, "hello");
    new.client_message_id = Some(ClientMessageId::parse("k-1").unwrap());
    let first = created(f.append(&new).unwrap());
    let mut other = f.message(c, a, "something else");
    other.client_message_id = new.client_message_id.clone();
    let back = existing(f.append(&other).unwrap());
    assert_eq!(back, first);
    assert_eq!(back.text(), Some("hello"));
    assert_eq!(
        store.history(c, HistoryCursor::Latest, 10).unwrap(),
        vec![first]
    );
}

/// Sending is reading: the sender's read marker moves to their own message in the same
/// write, so the outcome's member list, the membership and the unread counts all say so.
pub fn sending_is_reading<S: Stores + ?Sized>(store: &S) {
    let f = Fixture::new(store);
    let (a, b, c) = (f.user("alice"), f.user("bob"), f.user("carol"));
    let g = f.group(&[a, b, c]);
    let m1 = f.send(g, b, "from bob");
    let outcome = f.append(&f.message(g, a, "from alice")).unwrap();
    let marker_of = |outcome: &AppendOutcome, user| {
        outcome
            .members
            .iter()
            .find(|m| m.user_id == user)
            .map(|m| m.last_read_seq)
    };
    let Appended::Created(m2) = &outcome.appended else {
        panic!("a new message was not stored");
    };
    assert_eq!(marker_of(&outcome, a), Some(m2.seq));
    assert_eq!(marker_of(&outcome, b), Some(m1.seq));
    assert_eq!(marker_of(&outcome, c), Some(Seq::ZERO));
    assert_eq!(
        sorted(
            &outcome
                .members
                .iter()
                .map(|m| m.user_id)
                .collect::<Vec<_>>()
        ),
        sorted(&[a, b, c])
    );
    assert_eq!(
        store.membership(g, a).unwrap().unwrap().last_read_seq,
        m2.seq
    );
    assert_eq!(
        store.membership(g, b).unwrap().unwrap().last_read_seq,
        m1.seq
    );
    assert!(
        store.unread_counts(a).unwrap().is_empty(),
        "alice read bob's message by answering"
    );
    assert_eq!(store.unread_counts(b).unwrap(), vec![(g, 1)]);
    assert_eq!(store.unread_counts(c).unwrap(), vec![(g, 2)]);
}

/// History pages are cut by seq: the newest, those just before a seq, those just after one,
/// each in ascending order and holding only the conversation's own messages.
pub fn history_pages_are_cut_by_seq<S: Stores + ?Sized>(store: &S) {
    let f = Fixture::new(store);
    let a = f.user("alice");
    let c = f.group(&[a]);
    let other = f.group(&[a]);
    let empty = f.group(&[a]);
    let seqs: Vec<Seq> = (0..10)
        .map(|i| {
            // Messages elsewhere between them, so this conversation's seqs have gaps.
            f.send(other, a, &format!("elsewhere {i}"));
            f.send(c, a, &format!("m{i}")).seq
        })
        .collect();
    let page = |cursor, limit| -> Vec<Seq> {
        store
            .history(c, cursor, limit)
            .unwrap()
            .iter()
            .map(|m| m.seq)
            .collect()
    };
    assert_eq!(page(HistoryCursor::Latest, 3), seqs[7..]);
    assert_eq!(page(HistoryCursor::Latest, 50), seqs);
    assert_eq!(page(HistoryCursor::Before(seqs[7]), 3), seqs[4..7]);
    assert_eq!(page(HistoryCursor::Before(seqs[2]), 3), seqs[..2]);
    assert_eq!(page(HistoryCursor::Before(seqs[0]), 3), Vec::<Seq>::new());
    assert_eq!(page(HistoryCursor::Before(Seq(i64::MAX)), 2), seqs[8..]);
    assert_eq!(page(HistoryCursor::After(seqs[1]), 3), seqs[2..5]);
    assert_eq!(page(HistoryCursor::After(Seq::ZERO), 2), seqs[..2]);
    assert_eq!(page(HistoryCursor::After(seqs[8]), 3), seqs[9..]);
    assert_eq!(page(HistoryCursor::After(seqs[9]), 3), Vec::<Seq>::new());
    // A cursor between two of this conversation's messages (a seq of another one) works too.
    assert_eq!(
        page(HistoryCursor::After(Seq(seqs[4].0 - 1)), 1),
        seqs[4..5]
    );
    assert!(
        store
            .history(empty, HistoryCursor::Latest, 10)
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .history(ConversationId::new(), HistoryCursor::After(Seq::ZERO), 10)
            .unwrap()
            .is_empty()
    );
}

/// `since` returns, in ascending seq order and at most `limit`, the messages after a seq in
/// the user's conversations only; `last_seq_for` is the highest seq among them.
pub fn since_and_last_seq_for_cover_only_the_users_conversations<S: Stores + ?Sized>(store: &S) {
    let f = Fixture::new(store);
    let (a, b, c, eve) = (
        f.user("alice"),
        f.user("bob"),
        f.user("carol"),
        f.user("eve"),
    );
    let ab = f.direct(a, b);
    let ac = f.direct(a, c);
    let quiet = f.group(&[eve, a]);
    let m1 = f.send(ab, a, "1");
    let m2 = f.send(ac, c, "2");
    let m3 = f.send(ab, b, "3");
    let m4 = f.send(ac, a, "4");
    let since = |user, after, limit| -> Vec<MessageId> {
        store
            .since(user, after, limit)
            .unwrap()
            .iter()
            .map(|m| m.id)
            .collect()
    };
    assert_eq!(since(a, Seq::ZERO, 10), [m1.id, m2.id, m3.id, m4.id]);
    assert_eq!(since(a, m2.seq, 10), [m3.id, m4.id]);
    assert_eq!(since(a, Seq::ZERO, 3), [m1.id, m2.id, m3.id]);
    assert_eq!(since(b, Seq::ZERO, 10), [m1.id, m3.id]);
    assert_eq!(since(b, m3.seq, 10), Vec::<MessageId>::new());
    assert_eq!(since(eve, Seq::ZERO, 10), Vec::<MessageId>::new());
    assert_eq!(store.since(b, Seq::ZERO, 10).unwrap(), vec![m1, m3.clone()]);
    assert_eq!(store.last_seq_for(a).unwrap(), m4.seq);
    assert_eq!(store.last_seq_for(b).unwrap(), m3.seq);
    assert_eq!(store.last_seq_for(eve).unwrap(), Seq::ZERO);
    assert_eq!(store.last_seq_for(UserId::new()).unwrap(), Seq::ZERO);
    let m5 = f.send(quiet, eve, "5");
    assert_eq!(store.last_seq_for(a).unwrap(), m5.seq);
    assert_eq!(since(eve, Seq::ZERO, 10), [m5.id]);
}

/// An append is checked against the members as they stand when it is written, and its
/// outcome lists them so: whoever was added, removed or given a role before it counts.
pub fn an_append_sees_members_added_removed_or_changed_before_it<S: Stores + ?Sized>(store: &S) {
    let f = Fixture::new(store);
    let (a, b, c) = (f.user("alice"), f.user("bob"), f.user("carol"));
    let group = f.group(&[a, b]);
    // A store may now remember the group's members...
    assert_eq!(
        f.append(&f.message(group, a, "1")).unwrap().members.len(),
        2
    );

    // ...and must see when they change.
    store
        .add_members(group, &[c], Role::Member, 10, f.now())
        .unwrap();
    let outcome = f.append(&f.message(group, c, "2")).unwrap();
    assert_eq!(outcome.members.len(), 3);

    store.set_role(group, c, Role::Admin).unwrap();
    let outcome = f.append(&f.message(group, a, "3")).unwrap();
    let carol = outcome.members.iter().find(|m| m.user_id == c).unwrap();
    assert_eq!(carol.role, Role::Admin);

    assert!(store.remove_member(group, b, f.now()).unwrap().is_some());
    assert!(matches!(
        f.append(&f.message(group, b, "4")),
        Err(StoreError::Missing)
    ));
    let outcome = f.append(&f.message(group, a, "5")).unwrap();
    assert_eq!(
        sorted(
            &outcome
                .members
                .iter()
                .map(|m| m.user_id)
                .collect::<Vec<_>>()
        ),
        sorted(&[a, c]),
        "a removed member is not told of what follows"
    );
}

/// A new message to a direct conversation whose other member is deactivated is refused with
/// `Deactivated` naming them and is not stored; a retry of a message stored before still gets
/// it back, and groups with that user still take messages.
pub fn a_deactivated_user_takes_no_new_direct_message_but_a_retry_gets_its_message<
    S: Stores + ?Sized,
>(
    store: &S,
) {
    let f = Fixture::new(store);
    let (a, b) = (f.user("alice"), f.user("bob"));
    let direct = f.direct(a, b);
    let group = f.group(&[a, b]);
    let mut sent = f.message(direct, a, "before");
    sent.client_message_id = Some(ClientMessageId::parse("early").unwrap());
    // Stored while bob was active, so a store may remember the conversation as open.
    let stored = created(f.append(&sent).unwrap());

    store.deactivate(b, f.now()).unwrap();
    let refused = f.append(&f.message(direct, a, "after"));
    assert!(
        matches!(refused, Err(StoreError::Deactivated(user)) if user == b),
        "a message to a deactivated user was {refused:?}"
    );
    sent.id = MessageId::new();
    assert_eq!(existing(f.append(&sent).unwrap()), stored);
    assert_eq!(
        store.history(direct, HistoryCursor::Latest, 10).unwrap(),
        vec![stored]
    );
    f.send(group, a, "the group goes on");
    assert!(!UserStore::find(store, b).unwrap().unwrap().is_active);
}

/// Appends submitted one after another from one thread are stored in that order and each is
/// answered exactly once, in that order.
pub fn submitted_appends_are_stored_and_answered_in_the_order_submitted<S: Stores + ?Sized>(
    store: &S,
) {
    let f = Fixture::new(store);
    let (a, b) = (f.user("alice"), f.user("bob"));
    let one = f.group(&[a, b]);
    let two = f.direct(a, b);
    let (answers, answered) = std::sync::mpsc::channel();
    for i in 0..200 {
        let (c, sender) = if i % 3 == 0 { (two, b) } else { (one, a) };
        let answers = answers.clone();
        store.submit(
            f.message(c, sender, &format!("m{i}")),
            Box::new(move |outcome| {
                answers
                    .send((i, outcome))
                    .expect("the test waits for every answer")
            }),
        );
    }
    drop(answers);
    let answered: Vec<_> = answered.iter().collect();
    let order: Vec<i32> = answered.iter().map(|(i, _)| *i).collect();
    assert_eq!(
        order,
        (0..200).collect::<Vec<_>>(),
        "each answered once, in order"
    );
    let seqs: Vec<Seq> = answered
        .into_iter()
        .map(|(_, outcome)| created(outcome.unwrap()).seq)
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "seqs follow submission"
    );
}

/// Commit callbacks run in seq order, even when threads append at once and a store commits
/// many appends together: announcing from them announces in seq order.
pub fn commit_callbacks_run_in_seq_order_even_for_appends_committed_together<S: Stores + ?Sized>(
    store: &S,
) {
    let f = Fixture::new(store);
    let a = f.user("alice");
    let c = f.group(&[a]);
    let announced: Arc<Mutex<Vec<Seq>>> = Arc::default();
    std::thread::scope(|scope| {
        for t in 0..8 {
            let (f, announced) = (&f, &announced);
            scope.spawn(move || {
                for i in 0..50 {
                    let announced = announced.clone();
                    let callback = Box::new(move |outcome: &AppendOutcome| {
                        if let Appended::Created(m) = &outcome.appended {
                            announced.lock().unwrap().push(m.seq);
                        }
                    });
                    f.store
                        .append(&f.message(c, a, &format!("{t}-{i}")), callback)
                        .unwrap();
                }
            });
        }
    });
    let announced = announced.lock().unwrap();
    assert_eq!(announced.len(), 400, "every callback ran once");
    assert!(
        announced.windows(2).all(|w| w[0] < w[1]),
        "callbacks ran out of seq order"
    );
}

/// Appends from many threads at once are all stored, each with a seq of its own.
pub fn concurrent_appends_lose_nothing_and_never_share_a_seq<S: Stores + ?Sized>(store: &S) {
    let f = Fixture::new(store);
    let (a, b) = (f.user("alice"), f.user("bob"));
    let c = f.group(&[a, b]);
    let d = f.direct(a, b);
    let mut seqs: Vec<Seq> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let f = &f;
                scope.spawn(move || {
                    (0..50)
                        .map(|i| {
                            let (conversation, sender) = if t % 2 == 0 { (c, a) } else { (d, b) };
                            f.send(conversation, sender, &format!("{t}-{i}")).seq
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        threads
            .into_iter()
            .flat_map(|t| t.join().expect("no sender panicked"))
            .collect()
    });
    seqs.sort();
    seqs.dedup();
    assert_eq!(seqs.len(), 400);
    let stored = |conversation| {
        store
            .history(conversation, HistoryCursor::After(Seq::ZERO), 500)
            .unwrap()
            .len()
    };
    assert_eq!((stored(c), stored(d)), (200, 200));
    assert_eq!(store.since(a, Seq::ZERO, 500).unwrap().len(), 400);
}

/// The latest seq is the highest handed out in any conversation, whoever can see it: zero
/// before the first message, and never lowered by a retry.
pub fn the_latest_seq_is_the_highest_handed_out<S: Stores + ?Sized>(store: &S) {
    let f = Fixture::new(store);
    assert_eq!(store.latest_seq().unwrap(), Seq::ZERO);
    let (a, b, c) = (f.user("alice"), f.user("bob"), f.user("carol"));
    let ab = f.direct(a, b);
    let bc = f.direct(b, c);
    let first = f.send(ab, a, "1");
    assert_eq!(store.latest_seq().unwrap(), first.seq);
    let second = f.send(bc, c, "2");
    assert_eq!(store.latest_seq().unwrap(), second.seq);
    let mut retried = f.message(ab, a, "3");
    retried.client_message_id = Some(ClientMessageId::parse("once").unwrap());
    let third = created(f.append(&retried).unwrap());
    retried.id = MessageId::new();
    existing(f.append(&retried).unwrap());
    assert_eq!(store.latest_seq().unwrap(), third.seq);
}
