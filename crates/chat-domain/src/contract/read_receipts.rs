//! The rules of [`ReadReceiptStore`](crate::ports::ReadReceiptStore) and of what the inbox
//! derives from read markers.

use crate::contract::{Fixture, Stores, everything, sorted};
use crate::message::Seq;
use crate::paging::Page;
use crate::ports::ConversationStore;
use crate::{ConversationId, StoreError, UserId};

/// A read marker moves forward only; `advance` returns the marker as it then stands (with the
/// time it last moved), and a non-member has no marker to move.
pub fn a_read_marker_only_moves_forward<S: Stores + ?Sized>(store: &S) {
    let f = Fixture::new(store);
    let (a, b) = (f.user("alice"), f.user("bob"));
    let c = f.direct(a, b);
    let m1 = f.send(c, a, "1");
    let m2 = f.send(c, a, "2");
    let moved_at = f.now();
    let marker = store.advance(c, b, m2.seq, moved_at).unwrap();
    assert_eq!(
        (marker.conversation_id, marker.user_id, marker.last_read_seq),
        (c, b, m2.seq)
    );
    assert_eq!(marker.read_at, moved_at);
    let marker = store.advance(c, b, m1.seq, f.now()).unwrap();
    assert_eq!(marker.last_read_seq, m2.seq, "the marker never moves back");
    assert_eq!(
        marker.read_at, moved_at,
        "a marker that did not move keeps its time"
    );
    assert_eq!(
        store.advance(c, b, m2.seq, f.now()).unwrap().last_read_seq,
        m2.seq
    );
    assert_eq!(
        store.membership(c, b).unwrap().unwrap().last_read_seq,
        m2.seq
    );
    for (conversation, user) in [(c, UserId::new()), (ConversationId::new(), b)] {
        assert!(matches!(
            store.advance(conversation, user, m1.seq, f.now()),
            Err(StoreError::Missing)
        ));
    }
}

/// The inbox lists the user's conversations, most recent activity first (a message is
/// activity, and so is creation), each with its last message and the user's unread count,
/// and is paged.
pub fn the_inbox_lists_recent_activity_first_with_last_message_and_unread_count<
    S: Stores + ?Sized,
>(
    store: &S,
) {
    let f = Fixture::new(store);
    let (a, b, c) = (f.user("alice"), f.user("bob"), f.user("carol"));
    let ab = f.direct(a, b);
    let ac = f.direct(a, c);
    let quiet = f.group(&[a, b]);
    f.send(ac, c, "from carol");
    f.send(ab, a, "from alice");
    let last = f.send(ab, b, "from bob");
    let newest = f.group(&[c, a]);
    let newest_created = ConversationStore::find(store, newest)
        .unwrap()
        .unwrap()
        .created_at;

    let inbox = store.inbox(a, Page::default(), everything()).unwrap();
    let order: Vec<ConversationId> = inbox.iter().map(|e| e.conversation.id).collect();
    assert_eq!(order, [newest, ab, ac, quiet]);
    assert_eq!(inbox[0].last_message, None);
    assert_eq!(inbox[0].last_activity_at, newest_created);
    assert_eq!(inbox[1].last_message.as_ref(), Some(&last));
    assert_eq!(inbox[1].last_activity_at, last.created_at);
    assert_eq!(
        inbox.iter().map(|e| e.unread_count).collect::<Vec<_>>(),
        [0, 1, 1, 0],
        "unread: messages from others after the marker"
    );
    assert_eq!(
        ConversationStore::find(store, ab).unwrap().as_ref(),
        Some(&inbox[1].conversation)
    );

    let bobs = store.inbox(b, Page::default(), everything()).unwrap();
    assert_eq!(
        bobs.iter()
            .map(|e| (e.conversation.id, e.unread_count))
            .collect::<Vec<_>>(),
        [(ab, 0), (quiet, 0)]
    );
    let page = |limit, offset| -> Vec<ConversationId> {
        store
            .inbox(a, Page { limit, offset }, everything())
            .unwrap()
            .iter()
            .map(|e| e.conversation.id)
            .collect()
    };
    assert_eq!(page(2, 1), [ab, ac]);
    assert_eq!(page(2, 3), [quiet]);
    assert!(page(2, 4).is_empty());
    assert!(
        store
            .inbox(UserId::new(), Page::default(), everything())
            .unwrap()
            .is_empty()
    );
}

/// `unread_counts` lists each of the user's conversations with unread messages (from others,
/// after the user's marker) and no other.
pub fn unread_counts_are_messages_from_others_past_the_marker<S: Stores + ?Sized>(store: &S) {
    let f = Fixture::new(store);
    let (a, b, c) = (f.user("alice"), f.user("bob"), f.user("carol"));
    let direct = f.direct(a, b);
    let group = f.group(&[a, b, c]);
    let from_bob: Vec<Seq> = (0..3)
        .map(|i| f.send(direct, b, &format!("b{i}")).seq)
        .collect();
    let from_carol: Vec<Seq> = (0..2)
        .map(|i| f.send(group, c, &format!("c{i}")).seq)
        .collect();
    let counts = |user| sorted(&store.unread_counts(user).unwrap());
    assert_eq!(counts(a), sorted(&[(direct, 3), (group, 2)]));
    assert_eq!(counts(c), []);

    store.advance(direct, a, from_bob[1], f.now()).unwrap();
    assert_eq!(counts(a), sorted(&[(direct, 1), (group, 2)]));
    store.advance(group, a, from_carol[1], f.now()).unwrap();
    assert_eq!(counts(a), [(direct, 1)]);
    store.advance(direct, a, from_bob[2], f.now()).unwrap();
    assert_eq!(counts(a), []);
    assert!(
        store.unread_counts(UserId::new()).unwrap().is_empty(),
        "a stranger has nothing unread"
    );
}
