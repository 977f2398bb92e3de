//! The rules of reactions and pins in [`MessageStore`]: one row per user and emoji, the cap
//! on distinct emoji, a seq for every change, reactions on every read, pins in pin order,
//! and membership at commit.

use crate::contract::{Fixture, Stores, everything};
use crate::message::{Emoji, HistoryCursor, Marked, Message, Seq};
use crate::paging::Page;
use crate::ports::MessageStore;

use crate::{ConversationId, MessageId, StoreError, UserId};

fn emoji(raw: &str) -> Emoji {
    Emoji::parse(raw).unwrap()
}

/// The reactions of a message as `(emoji, users)`, in the order the store gives them.
fn reactions_of(message: &Message) -> Vec<(String, Vec<UserId>)> {
    message
        .reactions
        .iter()
        .map(|r| (r.emoji.as_str().to_owned(), r.user_ids.clone()))
        .collect()
}

fn found<S: Stores + ?Sized>(store: &S, id: MessageId) -> Message {
    MessageStore::find(store, id).unwrap().unwrap()
}

fn changed_seq(marked: Marked) -> (Seq, usize) {
    match marked {
        Marked::Changed { seq, count, .. } => (seq, count),
        other => panic!("expected a change, got {other:?}"),
    }
}

/// Reacting twice with the same emoji stores one reaction and takes no second seq; the
/// change names the conversation, its members and the count after it.
pub fn reacting_twice_stores_one_reaction_and_takes_one_seq<S: Stores + ?Sized>(store: &S) {
    let f = Fixture::new(store);
    let (a, b) = (f.user("alice"), f.user("bob"));
    let g = f.group(&[a, b]);
    let m = f.send(g, a, "hi");
    let first = store.react(m.id, b, &emoji("👍"), 20, f.now()).unwrap();
    let Marked::Changed {
        seq,
        count,
        conversation_id,
        audience,
    } = first
    else {
        panic!("the first reaction is a change: {first:?}");
    };
    assert_eq!((count, conversation_id), (1, g));
    assert_eq!(
        crate::contract::sorted(&audience),
        crate::contract::sorted(&[a, b])
    );
    assert!(seq > m.seq);
    assert_eq!(
        store.react(m.id, b, &emoji("👍"), 20, f.now()).unwrap(),
        Marked::Unchanged
    );
    assert_eq!(store.latest_seq().unwrap(), seq, "no seq for the repeat");
    let (_, count) = changed_seq(store.react(m.id, a, &emoji("👍"), 20, f.now()).unwrap());
    assert_eq!(count, 2);
    assert_eq!(
        reactions_of(&found(store, m.id)),
        [("👍".to_owned(), vec![b, a])]
    );
}

/// Every read of a message carries its reactions, one entry per emoji in the order each
/// emoji was first used, and its pin: find, history, catch-up, the inbox and the pins.
pub fn reactions_and_pins_come_with_every_read_of_a_message<S: Stores + ?Sized>(store: &S) {
    let f = Fixture::new(store);
    let (a, b) = (f.user("alice"), f.user("bob"));
    let g = f.group(&[a, b]);
    let m = f.send(g, a, "hi");
    let other = f.send(g, a, "untouched");
    for (user, e) in [(b, "🎉"), (a, "👍"), (a, "🎉")] {
        changed_seq(store.react(m.id, user, &emoji(e), 20, f.now()).unwrap());
    }
    let pinned_at = f.now();
    changed_seq(store.pin(g, m.id, b, 50, pinned_at).unwrap());
    let expected = [("🎉".to_owned(), vec![b, a]), ("👍".to_owned(), vec![a])];
    let check = |message: &Message, read: &str| {
        assert_eq!(reactions_of(message), expected, "{read}");
        let pin = message.pin.as_ref().expect(read);
        assert_eq!((pin.pinned_at, pin.pinned_by), (pinned_at, b), "{read}");
    };
    check(&found(store, m.id), "find");
    let history = store.history(g, HistoryCursor::Latest, 10).unwrap();
    check(&history[0], "history");
    assert!(history[1].reactions.is_empty() && history[1].pin.is_none());
    let after = store
        .history(g, HistoryCursor::After(Seq::ZERO), 10)
        .unwrap();
    check(&after[0], "history after");
    check(&store.since(b, Seq::ZERO, 10).unwrap()[0], "since");
    check(&store.pins(g).unwrap()[0], "pins");
    // The inbox's last message is the untouched one; react to it and it shows there too.
    changed_seq(store.react(other.id, b, &emoji("👀"), 20, f.now()).unwrap());
    let inbox = store.inbox(a, Page::default(), everything()).unwrap();
    let last = inbox[0].last_message.as_ref().unwrap();
    assert_eq!(last.id, other.id);
    assert_eq!(reactions_of(last), [("👀".to_owned(), vec![b])]);
}

/// The cap counts distinct emoji: more users on an emoji already there always fit, a new
/// emoji past the cap is refused and stores nothing.
pub fn the_reaction_cap_counts_distinct_emoji<S: Stores + ?Sized>(store: &S) {
    let f = Fixture::new(store);
    let (a, b, c) = (f.user("alice"), f.user("bob"), f.user("carol"));
    let g = f.group(&[a, b, c]);
    let m = f.send(g, a, "hi");
    changed_seq(store.react(m.id, a, &emoji("👍"), 2, f.now()).unwrap());
    changed_seq(store.react(m.id, b, &emoji("🎉"), 2, f.now()).unwrap());
    let before = store.latest_seq().unwrap();
    assert_eq!(
        store.react(m.id, c, &emoji("❤️"), 2, f.now()).unwrap(),
        Marked::OverCap
    );
    assert_eq!(store.latest_seq().unwrap(), before);
    for user in [b, c] {
        changed_seq(store.react(m.id, user, &emoji("👍"), 2, f.now()).unwrap());
    }
    let reactions = found(store, m.id).reactions;
    assert_eq!(reactions.len(), 2);
    assert_eq!(reactions[0].count(), 3);
}

/// Removing a reaction takes a seq and the count after it; removing the last one of an emoji
/// removes the emoji (and frees its place under the cap); removing one not held changes
/// nothing.
pub fn removing_the_last_reaction_of_an_emoji_removes_the_emoji<S: Stores + ?Sized>(store: &S) {
    let f = Fixture::new(store);
    let (a, b, c) = (f.user("alice"), f.user("bob"), f.user("carol"));
    let g = f.group(&[a, b, c]);
    let m = f.send(g, a, "hi");
    changed_seq(store.react(m.id, a, &emoji("👍"), 1, f.now()).unwrap());
    changed_seq(store.react(m.id, b, &emoji("👍"), 1, f.now()).unwrap());
    assert_eq!(
        store.unreact(m.id, c, &emoji("👍")).unwrap(),
        Marked::Unchanged
    );
    let (seq, count) = changed_seq(store.unreact(m.id, a, &emoji("👍")).unwrap());
    assert_eq!(count, 1);
    assert_eq!(store.latest_seq().unwrap(), seq);
    let (_, count) = changed_seq(store.unreact(m.id, b, &emoji("👍")).unwrap());
    assert_eq!(count, 0);
    assert!(found(store, m.id).reactions.is_empty());
    assert_eq!(
        store.unreact(m.id, b, &emoji("👍")).unwrap(),
        Marked::Unchanged
    );
    changed_seq(store.react(m.id, c, &emoji("🎉"), 1, f.now()).unwrap());
}

/// Every reaction and pin change takes a seq greater than every seq before it, messages'
/// included, and the next message comes after it.
pub fn every_reaction_or_pin_change_takes_a_seq_after_all_earlier<S: Stores + ?Sized>(store: &S) {
    let f = Fixture::new(store);
    let (a, b) = (f.user("alice"), f.user("bob"));
    let d = f.direct(a, b);
    let m = f.send(d, a, "hi");
    let mut last = m.seq;
    let changes: [&dyn Fn() -> Marked; 4] = [
        &|| store.react(m.id, b, &emoji("👍"), 20, f.now()).unwrap(),
        &|| store.pin(d, m.id, b, 50, f.now()).unwrap(),
        &|| store.unreact(m.id, b, &emoji("👍")).unwrap(),
        &|| store.unpin(d, m.id, a).unwrap(),
    ];
    for change in changes {
        let (seq, _) = changed_seq(change());
        assert!(seq > last, "{seq:?} after {last:?}");
        assert_eq!(store.latest_seq().unwrap(), seq);
        last = seq;
    }
    let next = f.send(d, b, "later");
    assert!(next.seq > last);
}

/// Pins are listed latest pin first; an unpinned message is not listed; pinning twice
/// changes nothing; the cap counts the conversation's pins; a message of another
/// conversation is missing.
pub fn pins_are_listed_latest_first_within_the_cap<S: Stores + ?Sized>(store: &S) {
    let f = Fixture::new(store);
    let (a, b) = (f.user("alice"), f.user("bob"));
    let g = f.group(&[a, b]);
    let elsewhere = f.group(&[a]);
    let m: Vec<Message> = (0..4).map(|i| f.send(g, a, &format!("m{i}"))).collect();
    let stray = f.send(elsewhere, a, "elsewhere");
    for i in [2, 0, 1] {
        changed_seq(store.pin(g, m[i].id, a, 3, f.now()).unwrap());
    }
    assert_eq!(
        store.pin(g, m[0].id, b, 3, f.now()).unwrap(),
        Marked::Unchanged
    );
    assert_eq!(
        store.pin(g, m[3].id, a, 3, f.now()).unwrap(),
        Marked::OverCap
    );
    let ids = |pins: Vec<Message>| pins.iter().map(|p| p.id).collect::<Vec<_>>();
    assert_eq!(ids(store.pins(g).unwrap()), [m[1].id, m[0].id, m[2].id]);
    let (_, count) = changed_seq(store.unpin(g, m[0].id, b).unwrap());
    assert_eq!(count, 2);
    assert_eq!(store.unpin(g, m[0].id, b).unwrap(), Marked::Unchanged);
    assert_eq!(ids(store.pins(g).unwrap()), [m[1].id, m[2].id]);
    assert!(found(store, m[0].id).pin.is_none());
    for result in [
        store.pin(g, stray.id, a, 3, f.now()),
        store.unpin(g, stray.id, a),
        store.pin(g, MessageId::new(), a, 3, f.now()),
    ] {
        assert!(matches!(result, Err(StoreError::Missing)), "{result:?}");
    }
    assert!(store.pins(elsewhere).unwrap().is_empty());
    assert!(store.pins(ConversationId::new()).unwrap().is_empty());
}

/// A member removed from the conversation can no longer react, take a reaction back, pin or
/// unpin; nor can a user who never was a member; a missing message is missing.
pub fn a_removed_member_cannot_react_or_pin<S: Stores + ?Sized>(store: &S) {
    let f = Fixture::new(store);
    let (a, b, eve) = (f.user("alice"), f.user("bob"), f.user("eve"));
    let g = f.group(&[a, b]);
    let m = f.send(g, a, "hi");
    changed_seq(store.react(m.id, b, &emoji("👍"), 20, f.now()).unwrap());
    assert!(store.remove_member(g, b, f.now()).unwrap().is_some());
    let before = store.latest_seq().unwrap();
    for user in [b, eve] {
        let results = [
            store.react(m.id, user, &emoji("🎉"), 20, f.now()),
            store.unreact(m.id, user, &emoji("👍")),
            store.pin(g, m.id, user, 50, f.now()),
            store.unpin(g, m.id, user),
        ];
        for result in results {
            assert!(matches!(result, Err(StoreError::Missing)), "{result:?}");
        }
    }
    let missing = store.react(MessageId::new(), a, &emoji("🎉"), 20, f.now());
    assert!(matches!(missing, Err(StoreError::Missing)), "{missing:?}");
    assert_eq!(store.latest_seq().unwrap(), before);
    assert_eq!(found(store, m.id).reactions.len(), 1);
}
