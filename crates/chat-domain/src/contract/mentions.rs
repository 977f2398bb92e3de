//! The rules of mentions: who a content mentions is decided among the conversation's members
//! as the write that stores it commits (an append or an edit), every read carries it, a
//! delete for everyone drops it, and a member's unread mentions are the unread messages
//! (as [`ReadReceiptStore::unread_counts`] counts them) that mention the member.

use crate::contract::replies::every_read;
use crate::contract::{Fixture, Stores, created, everything, sorted};
use crate::conversation::Role;
use crate::message::{MessageContent, Seq};
use crate::paging::Page;
use crate::ports::MessageStore;
use crate::{ConversationId, UserId};

/// The user's unread mentions in `conversation` as the inbox shows them.
fn inbox_mentions<S: Stores + ?Sized>(
    store: &S,
    user: UserId,
    conversation: ConversationId,
) -> u64 {
    store
        .inbox(user, Page::default(), everything())
        .unwrap()
        .into_iter()
        .find(|e| e.conversation.id == conversation)
        .expect("the conversation is in the inbox")
        .unread_mentions
}

/// `@name` mentions the member of that name, whatever its case; a name that is nobody's, a
/// user who is not a member and the sender themselves are not mentioned. `@all` in a group
/// mentions every other member; in a direct conversation it mentions nobody. The mentions
/// come ascending by user id, from the append and from every read; a message without `@`
/// mentions nobody.
pub fn mentions_are_members_named_at_commit_and_every_read_carries_them<S: Stores + ?Sized>(
    store: &S,
) {
    let f = Fixture::new(store);
    let (a, b, c, d) = (
        f.user("alice"),
        f.user("bob"),
        f.user("carol"),
        f.user("dave"),
    );
    let g = f.group(&[a, b, c]);
    let plain = f.send(g, a, "no one here, write to bob@example.com");
    assert!(plain.mentions.is_empty());
    let named = f.send(g, a, "@BOB and @dave, @alice, @nobody: @carol. @bob");
    assert_eq!(named.mentions, sorted(&[b, c]));
    for read in every_read(store, a, g, named.id) {
        assert_eq!(read, named, "read back as appended");
    }
    let everyone = f.send(g, b, "@all standup");
    assert_eq!(everyone.mentions, sorted(&[a, c]));
    for read in every_read(store, c, g, everyone.id) {
        assert_eq!(read.mentions, everyone.mentions);
    }
    assert!(f.send(g, a, "@alice").mentions.is_empty(), "not oneself");

    let direct = f.direct(a, d);
    assert!(f.send(direct, a, "@all hi").mentions.is_empty());
    let to_dave = f.send(direct, a, "@all hi @dave");
    assert_eq!(to_dave.mentions, vec![d]);
    for read in every_read(store, d, direct, to_dave.id) {
        assert_eq!(read.mentions, vec![d]);
    }

    // Membership is judged at commit: dave joins, and only then can be mentioned.
    store
        .add_members(g, &[d], Role::Member, 10, f.now())
        .unwrap();
    let later = f.send(g, c, "welcome @dave");
    assert_eq!(later.mentions, vec![d]);
    let earlier = MessageStore::find(store, named.id).unwrap().unwrap();
    assert_eq!(
        earlier.mentions,
        sorted(&[b, c]),
        "mentions stay as decided"
    );
}

/// An edit decides the mentions of its new content again, replacing the old ones, and
/// answers with them; a delete for everyone drops them.
pub fn an_edit_mentions_whom_its_content_names_and_a_delete_mentions_nobody<S: Stores + ?Sized>(
    store: &S,
) {
    let f = Fixture::new(store);
    let (a, b, c) = (f.user("alice"), f.user("bob"), f.user("carol"));
    let g = f.group(&[a, b, c]);
    let message = f.send(g, a, "hi @bob");
    assert_eq!(message.mentions, vec![b]);
    let content = MessageContent::parse("hi @carol").unwrap();
    let edited = store
        .edit(message.id, a, &content, f.now(), &mut |_| {})
        .unwrap();
    assert_eq!(edited.message.mentions, vec![c]);
    for read in every_read(store, b, g, message.id) {
        assert_eq!(read.mentions, vec![c], "from every read");
    }
    assert_eq!(store.unread_mentions(b).unwrap(), vec![]);
    assert_eq!(store.unread_mentions(c).unwrap(), vec![(g, 1)]);
    let content = MessageContent::parse("hi all").unwrap();
    let edited = store
        .edit(message.id, a, &content, f.now(), &mut |_| {})
        .unwrap();
    assert!(edited.message.mentions.is_empty());
    assert!(store.unread_mentions(c).unwrap().is_empty());

    let other = f.send(g, a, "@all look");
    assert_eq!(store.unread_mentions(b).unwrap(), vec![(g, 1)]);
    let deleted = store.delete(other.id, a, f.now(), &mut |_| {}).unwrap();
    assert!(deleted.message.mentions.is_empty());
    let read = MessageStore::find(store, other.id).unwrap().unwrap();
    assert!(read.mentions.is_empty(), "a tombstone mentions nobody");
    assert!(store.unread_mentions(b).unwrap().is_empty());
    assert!(store.unread_mentions(c).unwrap().is_empty());
}

/// A member's unread mentions are the messages after their marker that mention them, but
/// those they hid; per conversation from [`ReadReceiptStore::unread_mentions`] and in the
/// inbox, and in the answer to setting the marker. Marking read lowers them and marking
/// unread raises them again; a member removed keeps none.
pub fn unread_mentions_are_the_unread_messages_that_mention_the_member<S: Stores + ?Sized>(
    store: &S,
) {
    let f = Fixture::new(store);
    let (a, b, c) = (f.user("alice"), f.user("bob"), f.user("carol"));
    let g = f.group(&[a, b, c]);
    let other = f.group(&[a, b]);
    let first = f.send(g, a, "@bob one");
    f.send(g, a, "not for bob");
    let second = f.send(g, c, "@all two");
    let third = f.send(g, a, "@bob three");
    f.send(other, a, "@bob elsewhere");
    f.send(g, b, "@bob talking to myself");
    let counts = |user| sorted(&store.unread_mentions(user).unwrap());
    // Bob's own message moved his marker past everything before it: sending is reading.
    assert_eq!(counts(b), vec![(other, 1)]);
    let set = store.set_marker(g, b, first.seq, f.now()).unwrap();
    assert_eq!(
        set.unread_mentions, 2,
        "setting the marker answers with them"
    );
    assert_eq!(counts(b), sorted(&[(g, 2), (other, 1)]));
    assert_eq!(inbox_mentions(store, b, g), 2);
    assert_eq!(inbox_mentions(store, b, other), 1);
    assert!(
        counts(a).is_empty(),
        "alice's own messages read carol's @all"
    );
    store.set_marker(g, a, first.seq, f.now()).unwrap();
    assert_eq!(counts(a), vec![(g, 1)], "carol's @all");

    store.hide(second.id, b, &mut |_| {}).unwrap();
    assert_eq!(counts(b), sorted(&[(g, 1), (other, 1)]));
    store.advance(g, b, third.seq, f.now()).unwrap();
    assert_eq!(counts(b), vec![(other, 1)]);
    assert_eq!(inbox_mentions(store, b, g), 0);
    let set = store.set_marker(g, b, Seq::ZERO, f.now()).unwrap();
    assert_eq!(set.unread_mentions, 2, "the hidden one stays out");
    assert_eq!(counts(b), sorted(&[(g, 2), (other, 1)]), "marked unread");

    store.remove_member(other, b, f.now()).unwrap();
    assert_eq!(counts(b), vec![(g, 2)]);
    assert!(store.unread_mentions(UserId::new()).unwrap().is_empty());
}

/// Appends submitted together (which a store may commit in one write) each mention whom
/// their own content names.
pub fn mentions_of_appends_committed_together_are_each_their_own<S: Stores + ?Sized>(store: &S) {
    let f = Fixture::new(store);
    let (a, b, c) = (f.user("alice"), f.user("bob"), f.user("carol"));
    let g = f.group(&[a, b, c]);
    let texts = ["@bob", "@carol", "nobody", "@all", "@bob @carol"];
    let (tx, rx) = std::sync::mpsc::channel();
    for text in texts {
        let tx = tx.clone();
        store.submit(
            f.message(g, a, text),
            Box::new(move |result| {
                let _ = tx.send(result);
            }),
        );
    }
    drop(tx);
    let stored: Vec<Vec<UserId>> = rx
        .iter()
        .map(|result| created(result.unwrap()).mentions)
        .collect();
    let both = sorted(&[b, c]);
    assert_eq!(stored, vec![vec![b], vec![c], vec![], both.clone(), both]);
}
