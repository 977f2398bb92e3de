//! The rules of changes to stored messages ([`MessageStore::edit`], [`MessageStore::delete`],
//! [`MessageStore::hide`]): each takes a seq after everything before it, a delete leaves only
//! a tombstone, hiding is one user's business, and only members change anything.

use std::sync::{Arc, Mutex};

use crate::contract::{Fixture, Stores, everything};
use crate::message::{AppendOutcome, Appended, Deletion, HistoryCursor, MessageContent, Seq};
use crate::paging::Page;
use crate::ports::MessageStore;
use crate::{MessageId, StoreError};

fn content(text: &str) -> MessageContent {
    MessageContent::parse(text).expect("valid content")
}

/// An edit replaces the content, sets `edited_at` and `updated_at`, and takes a seq greater
/// than every seq handed out before it, message or change; the message keeps its own seq and
/// place in history, and the next message comes after the edit.
pub fn an_edit_replaces_the_content_and_takes_a_seq_after_every_earlier_one<S: Stores + ?Sized>(
    store: &S,
) {
    let f = Fixture::new(store);
    let (a, b) = (f.user("alice"), f.user("bob"));
    let g = f.group(&[a, b]);
    let first = f.send(g, a, "frist");
    let second = f.send(g, b, "second");
    let at = f.now();
    let edited = store
        .edit(first.id, a, &content("first"), at, &mut |_| {})
        .unwrap();
    assert!(edited.changed);
    let message = &edited.message;
    assert_eq!((message.id, message.seq), (first.id, first.seq));
    assert_eq!(message.text(), Some("first"));
    assert_eq!(message.edited_at, Some(at));
    assert_eq!(message.updated_at, at);
    assert_eq!(message.created_at, first.created_at);
    let change = message.change_seq.expect("an edit takes a seq");
    assert!(change > second.seq);
    assert_eq!(store.latest_seq().unwrap(), change);
    assert!(edited.members.iter().any(|m| m.user_id == b));
    assert_eq!(
        MessageStore::find(store, first.id).unwrap().as_ref(),
        Some(message)
    );
    let history = store.history(g, HistoryCursor::Latest, 10).unwrap();
    assert_eq!(history, vec![message.clone(), second.clone()]);
    let again = store
        .edit(first.id, a, &content("first!"), f.now(), &mut |_| {})
        .unwrap();
    assert!(
        again.message.change_seq > Some(change),
        "each edit takes its own seq"
    );
    let next = f.send(g, b, "third");
    assert!(Some(next.seq) > again.message.change_seq);
}

/// Content equal to the stored content, or a deleted message, is left as it is: no seq is
/// taken and nothing changes.
pub fn an_edit_to_the_same_content_or_of_a_deleted_message_changes_nothing<S: Stores + ?Sized>(
    store: &S,
) {
    let f = Fixture::new(store);
    let (a, b) = (f.user("alice"), f.user("bob"));
    let c = f.direct(a, b);
    let sent = f.send(c, a, "same");
    let before = store.latest_seq().unwrap();
    let same = store
        .edit(sent.id, a, &content("same"), f.now(), &mut |_| {})
        .unwrap();
    assert!(!same.changed);
    assert_eq!(same.message, sent);
    assert_eq!(store.latest_seq().unwrap(), before);
    let deleted = store.delete(sent.id, a, f.now(), &mut |_| {}).unwrap();
    let after_delete = store.latest_seq().unwrap();
    let edit = store
        .edit(sent.id, a, &content("back"), f.now(), &mut |_| {})
        .unwrap();
    assert!(!edit.changed);
    assert_eq!(edit.message, deleted.message);
    assert_eq!(edit.message.content, None);
    assert_eq!(store.latest_seq().unwrap(), after_delete);
}

/// A delete purges the content and leaves a tombstone in the message's place: id, seq,
/// sender and time kept, `deleted_at`/`deleted_by` set, a seq taken. Deleting again changes
/// nothing. A tombstone counts as no unread message, in the counts and in the inbox.
pub fn a_delete_purges_the_content_and_leaves_a_tombstone_in_place<S: Stores + ?Sized>(store: &S) {
    let f = Fixture::new(store);
    let (a, b, c) = (f.user("alice"), f.user("bob"), f.user("carol"));
    let g = f.group(&[a, b, c]);
    let one = f.send(g, a, "one");
    let two = f.send(g, a, "secret");
    let three = f.send(g, a, "three");
    assert_eq!(store.unread_counts(b).unwrap(), vec![(g, 3)]);
    let at = f.now();
    // Carol deletes: who may is the service's decision, the store records who did.
    let deleted = store.delete(two.id, c, at, &mut |_| {}).unwrap();
    assert!(deleted.changed);
    let tombstone = &deleted.message;
    assert_eq!(
        (tombstone.id, tombstone.seq, tombstone.sender_id),
        (two.id, two.seq, a)
    );
    assert_eq!(tombstone.created_at, two.created_at);
    assert_eq!(tombstone.content, None);
    assert_eq!(tombstone.deletion, Some(Deletion { at, by: c }));
    assert_eq!(tombstone.updated_at, at);
    let change = tombstone.change_seq.expect("a delete takes a seq");
    assert!(change > three.seq);
    assert_eq!(
        MessageStore::find(store, two.id).unwrap().as_ref(),
        Some(tombstone)
    );
    assert_eq!(
        store.history(g, HistoryCursor::Latest, 10).unwrap(),
        vec![one.clone(), tombstone.clone(), three.clone()]
    );
    let again = store.delete(two.id, a, f.now(), &mut |_| {}).unwrap();
    assert!(!again.changed);
    assert_eq!(&again.message, tombstone);
    assert_eq!(store.latest_seq().unwrap(), change);
    assert_eq!(store.unread_counts(b).unwrap(), vec![(g, 2)]);
    let inbox = store.inbox(b, Page::default(), everything()).unwrap();
    assert_eq!(inbox[0].unread_count, 2);
    // The catch-up still carries the tombstone, so a client learns of it.
    let since: Vec<_> = store.since(b, Seq::ZERO, 10).unwrap();
    assert_eq!(since, vec![one, tombstone.clone(), three]);
}

/// A user who is not (or no longer) a member can neither edit, delete nor hide, and a message
/// that does not exist is `Missing` too; nothing changes.
pub fn a_removed_member_can_neither_edit_nor_delete_nor_hide<S: Stores + ?Sized>(store: &S) {
    let f = Fixture::new(store);
    let (a, b, eve) = (f.user("alice"), f.user("bob"), f.user("eve"));
    let g = f.group(&[a, b]);
    let from_b = f.send(g, b, "mine");
    assert!(store.remove_member(g, b, f.now()).unwrap());
    let before = store.latest_seq().unwrap();
    for user in [b, eve] {
        assert!(matches!(
            store.edit(from_b.id, user, &content("changed"), f.now(), &mut |_| {}),
            Err(StoreError::Missing)
        ));
        assert!(matches!(
            store.delete(from_b.id, user, f.now(), &mut |_| {}),
            Err(StoreError::Missing)
        ));
        assert!(matches!(
            store.hide(from_b.id, user, &mut |_| {}),
            Err(StoreError::Missing)
        ));
    }
    let nothing = MessageId::new();
    assert!(matches!(
        store.edit(nothing, a, &content("x"), f.now(), &mut |_| {}),
        Err(StoreError::Missing)
    ));
    assert!(matches!(
        store.delete(nothing, a, f.now(), &mut |_| {}),
        Err(StoreError::Missing)
    ));
    assert!(matches!(
        store.hide(nothing, a, &mut |_| {}),
        Err(StoreError::Missing)
    ));
    assert_eq!(store.latest_seq().unwrap(), before);
    assert_eq!(MessageStore::find(store, from_b.id).unwrap(), Some(from_b));
}

/// Hiding takes a seq and hides the message from that user's catch-up and unread counts only;
/// hiding again changes nothing and keeps the first seq.
pub fn hiding_affects_only_that_users_catch_up_and_unread_counts<S: Stores + ?Sized>(store: &S) {
    let f = Fixture::new(store);
    let (a, b, c) = (f.user("alice"), f.user("bob"), f.user("carol"));
    let g = f.group(&[a, b, c]);
    let one = f.send(g, a, "one");
    let two = f.send(g, a, "two");
    let (hidden, new) = store.hide(one.id, b, &mut |_| {}).unwrap();
    assert!(new);
    assert_eq!(
        (hidden.user_id, hidden.message_id, hidden.conversation_id),
        (b, one.id, g)
    );
    assert!(hidden.seq > two.seq);
    assert_eq!(store.latest_seq().unwrap(), hidden.seq);
    let (again, new) = store.hide(one.id, b, &mut |_| {}).unwrap();
    assert!(!new);
    assert_eq!(again, hidden);
    assert_eq!(store.latest_seq().unwrap(), hidden.seq);

    let ids = |user| -> Vec<MessageId> {
        store
            .since(user, Seq::ZERO, 10)
            .unwrap()
            .iter()
            .map(|m| m.id)
            .collect()
    };
    assert_eq!(ids(b), vec![two.id]);
    assert_eq!(ids(c), vec![one.id, two.id]);
    assert_eq!(
        store.hidden_among(b, &[one.id, two.id]).unwrap(),
        vec![one.id]
    );
    assert!(store.hidden_among(c, &[one.id, two.id]).unwrap().is_empty());
    assert_eq!(store.unread_counts(b).unwrap(), vec![(g, 1)]);
    assert_eq!(store.unread_counts(c).unwrap(), vec![(g, 2)]);
    assert_eq!(
        store.inbox(b, Page::default(), everything()).unwrap()[0].unread_count,
        1
    );
    // History itself is every member's: the service leaves out what the viewer hid.
    assert_eq!(
        store.history(g, HistoryCursor::Latest, 10).unwrap().len(),
        2
    );
    // The message itself is untouched.
    assert_eq!(MessageStore::find(store, one.id).unwrap(), Some(one));
}

/// A change's commit callback runs once when it changed something, never when it did not, and
/// callbacks of changes and appends made at the same time run in seq order, so a node that
/// announces from them announces in seq order.
pub fn change_callbacks_run_once_per_real_change_in_seq_order_with_appends<S: Stores + ?Sized>(
    store: &S,
) {
    let f = Fixture::new(store);
    let (a, b) = (f.user("alice"), f.user("bob"));
    let c = f.group(&[a, b]);
    let target = f.send(c, a, "edit me");
    let announced: Arc<Mutex<Vec<Seq>>> = Arc::default();
    std::thread::scope(|scope| {
        for t in 0..4 {
            let (f, announced) = (&f, &announced);
            scope.spawn(move || {
                for i in 0..40 {
                    let announced = announced.clone();
                    let callback = Box::new(move |outcome: &AppendOutcome| {
                        if let Appended::Created(m) = &outcome.appended {
                            announced.lock().unwrap().push(m.seq);
                        }
                    });
                    f.store
                        .append(&f.message(c, b, &format!("{t}-{i}")), callback)
                        .unwrap();
                }
            });
        }
        let (f, announced) = (&f, &announced);
        scope.spawn(move || {
            for i in 0..40 {
                let mut calls = 0;
                let changed = f
                    .store
                    .edit(
                        target.id,
                        a,
                        &content(&format!("edit {i}")),
                        f.now(),
                        &mut |m| {
                            calls += 1;
                            let seq = m.message.change_seq.expect("a change has a seq");
                            announced.lock().unwrap().push(seq);
                        },
                    )
                    .unwrap();
                assert!(changed.changed);
                assert_eq!(calls, 1, "one callback per change");
            }
        });
    });
    let announced = announced.lock().unwrap();
    assert_eq!(announced.len(), 200, "every callback ran once");
    assert!(
        announced.windows(2).all(|w| w[0] < w[1]),
        "callbacks ran out of seq order: {announced:?}"
    );
    let mut calls = 0;
    let same = store
        .edit(target.id, a, &content("edit 39"), f.now(), &mut |_| {
            calls += 1
        })
        .unwrap();
    assert!(!same.changed);
    store.hide(target.id, b, &mut |_| calls += 1).unwrap();
    store.hide(target.id, b, &mut |_| calls += 1).unwrap();
    store
        .delete(target.id, a, f.now(), &mut |_| calls += 1)
        .unwrap();
    store
        .delete(target.id, a, f.now(), &mut |_| calls += 1)
        .unwrap();
    assert_eq!(
        calls, 2,
        "only the first hiding and the first delete changed anything"
    );
}
