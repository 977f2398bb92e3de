//! The rules of [`FeedStore`](crate::ports::FeedStore): messages (sent, edited, deleted,
//! hidden), read markers, a member's own settings, conversations and memberships, each at
//! the position of its latest change, as the user may see it now.

use crate::contract::{Fixture, Stores};
use crate::conversation::{ConversationName, Role};
use crate::feed::{FeedEntry, FeedItem};
use crate::message::{Deletion, MessageContent, Seq};
use crate::ports::{ConversationStore, MessageStore};
use crate::read_state::SettingsUpdate;
use crate::{ConversationId, MessageId, UserId};

/// What an entry is about, to compare feeds without their timestamps.
#[derive(Debug, Clone, PartialEq, Eq)]
enum About {
    Message(MessageId),
    Conversation(ConversationId, Option<String>),
    Departure(ConversationId),
    Other,
}

fn about(item: &FeedItem) -> (Seq, About) {
    let about = match &item.entry {
        FeedEntry::Message(m) => About::Message(m.id),
        FeedEntry::Conversation(c) => {
            About::Conversation(c.id, c.name.as_ref().map(|n| n.as_str().to_owned()))
        }
        FeedEntry::Departure {
            conversation_id, ..
        } => About::Departure(*conversation_id),
        _ => About::Other,
    };
    (item.position, about)
}

fn feed<S: Stores + ?Sized>(store: &S, user: UserId, since: Seq, limit: u32) -> Vec<(Seq, About)> {
    store
        .feed(user, since, limit)
        .expect("the feed reads")
        .iter()
        .map(about)
        .collect()
}

/// A conversation enters its members' feeds at its creation, each message at its seq, and
/// a rename moves the conversation to the rename's position, where it stands as renamed:
/// each thing once, ascending by position.
pub fn the_feed_holds_each_thing_once_at_its_latest_change_in_position_order<S: Stores + ?Sized>(
    store: &S,
) {
    let f = Fixture::new(store);
    let (a, b) = (f.user("alice"), f.user("bob"));
    let before = store.latest_seq().unwrap();
    let g = f.group(&[a, b]);
    let created = store.latest_seq().unwrap();
    assert!(created > before, "creating a conversation takes a position");
    let m1 = f.send(g, a, "one");
    let d = f.direct(a, b);
    let m2 = f.send(d, b, "two");
    let name = ConversationName::parse("renamed").unwrap();
    let (_, renamed) = store.rename(g, &name, f.now()).unwrap();
    assert!(
        renamed > m2.seq,
        "a change takes a seq after every earlier one"
    );
    let direct_created = ConversationStore::find(store, d).unwrap().unwrap();
    let whole = feed(store, b, Seq::ZERO, 100);
    let positions: Vec<Seq> = whole.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(
        whole
            .iter()
            .map(|(_, about)| about.clone())
            .collect::<Vec<_>>(),
        [
            About::Message(m1.id),
            About::Conversation(d, None),
            About::Message(m2.id),
            About::Conversation(g, Some("renamed".into())),
        ],
        "{whole:?}"
    );
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    assert_eq!((positions[0], positions[2]), (m1.seq, m2.seq));
    assert_eq!(positions[3], renamed);
    assert_eq!(direct_created.id, d);
    assert_eq!(
        feed(store, a, Seq::ZERO, 100),
        whole,
        "both members see the same"
    );
    assert_eq!(
        feed(store, b, m2.seq, 100),
        [(renamed, About::Conversation(g, Some("renamed".into())))],
        "only what changed after the position asked from"
    );
    assert_eq!(feed(store, b, renamed, 100), []);
}

/// Membership is judged now: someone who never was a member sees nothing of a
/// conversation; a member removed sees their removal, at its position, and nothing of the
/// conversation, whatever happens in it after; adding them again takes the removal out
/// of their feed and gives them the conversation again. Membership changes move the
/// conversation for those who stay, role changes too.
pub fn the_feed_shows_only_conversations_the_user_is_in_now_and_their_own_removal<
    S: Stores + ?Sized,
>(
    store: &S,
) {
    let f = Fixture::new(store);
    let (a, b, eve) = (f.user("alice"), f.user("bob"), f.user("eve"));
    let g = f.group(&[a, b]);
    f.send(g, a, "before");
    assert_eq!(
        feed(store, eve, Seq::ZERO, 100),
        [],
        "an outsider sees nothing"
    );

    let removed = store.remove_member(g, b, f.now()).unwrap().unwrap();
    f.send(g, a, "after");
    let (_, renamed) = store
        .rename(g, &ConversationName::parse("gone").unwrap(), f.now())
        .unwrap();
    assert_eq!(
        feed(store, b, Seq::ZERO, 100),
        [(removed, About::Departure(g))],
        "a removed member sees the removal and nothing else of the conversation"
    );
    assert_eq!(feed(store, b, removed, 100), []);
    assert_eq!(
        feed(store, a, removed, 100).last(),
        Some(&(renamed, About::Conversation(g, Some("gone".into()))))
    );

    let (added, readded) = store
        .add_members(g, &[b], Role::Member, 10, f.now())
        .unwrap();
    let readded = readded.expect("adding someone is a change");
    assert_eq!(added, [b]);
    let again = feed(store, b, removed, 100);
    assert_eq!(
        again.last(),
        Some(&(readded, About::Conversation(g, Some("gone".into())))),
        "{again:?}"
    );
    assert!(
        !again.iter().any(|(_, about)| *about == About::Departure(g)),
        "adding a member back takes their removal out of their feed: {again:?}"
    );
    let promoted = store.set_role(g, b, Role::Admin).unwrap();
    assert!(promoted > readded);
    assert_eq!(
        feed(store, a, readded, 100),
        [(promoted, About::Conversation(g, Some("gone".into())))]
    );
}

/// Reading the feed page by page from each page's last position, with any page size,
/// yields exactly the whole feed: nothing skipped, nothing repeated, even where a changed
/// message sits at a position far from its seq.
pub fn paging_the_feed_by_position_never_skips_or_repeats<S: Stores + ?Sized>(store: &S) {
    let f = Fixture::new(store);
    let (a, b, c) = (f.user("alice"), f.user("bob"), f.user("carol"));
    let g = f.group(&[a, b, c]);
    let d = f.direct(a, b);
    let h = f.group(&[c, b]);
    for i in 0..12 {
        let (to, from) = match i % 3 {
            0 => (g, a),
            1 => (d, b),
            _ => (h, c),
        };
        f.send(to, from, &format!("message {i}"));
        if i % 4 == 0 {
            store
                .rename(
                    g,
                    &ConversationName::parse(&format!("g{i}")).unwrap(),
                    f.now(),
                )
                .unwrap();
        }
    }
    let whole = feed(store, b, Seq::ZERO, 1000);
    assert_eq!(whole.len(), 12 + 3, "{whole:?}");
    for limit in [1, 2, 5, 7] {
        let mut paged = Vec::new();
        let mut since = Seq::ZERO;
        loop {
            let page = feed(store, b, since, limit);
            assert!(page.len() <= limit as usize);
            let Some((last, _)) = page.last() else { break };
            since = *last;
            paged.extend(page);
        }
        assert_eq!(paged, whole, "pages of {limit}");
    }
}

/// A message deleted for everyone stands in the feed as a tombstone at the delete's
/// position, keeping what every other read of it keeps: its place, who sent it when, that
/// it was edited and when, who deleted it and when; never its content.
pub fn a_deleted_message_replays_as_a_tombstone_that_keeps_its_edit_time<S: Stores + ?Sized>(
    store: &S,
) {
    let f = Fixture::new(store);
    let (a, b) = (f.user("alice"), f.user("bob"));
    let g = f.group(&[a, b]);
    let sent = f.send(g, a, "frist");
    let position = sent.seq;
    let content = MessageContent::parse("first").unwrap();
    let edited_at = f.now();
    store
        .edit(sent.id, a, &content, edited_at, &mut |_| {})
        .unwrap();
    let deleted_at = f.now();
    let deleted = store.delete(sent.id, a, deleted_at, &mut |_| {}).unwrap();
    let stored = MessageStore::find(store, sent.id).unwrap().unwrap();
    assert_eq!(stored.edited_at, Some(edited_at));

    let items = store.feed(b, position, 100).unwrap();
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(Some(items[0].position), deleted.message.change_seq);
    let FeedEntry::Message(tombstone) = &items[0].entry else {
        panic!("a deleted message replays as its tombstone: {items:?}");
    };
    // The tombstone as every read shows it: its place, its sender and client message id,
    // when it was edited and who deleted it when; no content.
    assert_eq!(tombstone, &stored);
    assert_eq!(
        (tombstone.id, tombstone.seq, tombstone.conversation_id),
        (sent.id, sent.seq, g)
    );
    assert_eq!(tombstone.sender_id, a);
    assert_eq!(tombstone.content, None);
    assert_eq!(tombstone.client_message_id, sent.client_message_id);
    assert_eq!(
        tombstone.deletion,
        Some(Deletion {
            at: deleted_at,
            by: a
        })
    );
}

/// Every kind of change comes back at its own position, as it now stands: an edit, a delete
/// for everyone (the tombstone), the user's own hiding, another member's read marker (with
/// the message at it) and the user's own settings. Another member's settings, and anything
/// of a conversation the user is not in, are not theirs to see; a message they hid is gone
/// from their messages only. Once removed, nothing of the conversation is left in their feed
/// but the removal: not their hiding, not the markers, not their settings there.
pub fn every_change_comes_back_at_its_position_to_those_who_may_see_it<S: Stores + ?Sized>(
    store: &S,
) {
    let f = Fixture::new(store);
    let (a, b, c) = (f.user("alice"), f.user("bob"), f.user("carol"));
    let g = f.group(&[a, b]);
    let other = f.group(&[a, c]);
    let edited = f.send(g, a, "edited");
    let deleted = f.send(g, a, "deleted");
    let hidden = f.send(g, a, "hidden");
    let unseen = f.send(other, a, "not bob's");
    let since = store.latest_seq().unwrap();

    let changed = MessageContent::parse("changed").unwrap();
    let edit = store
        .edit(edited.id, a, &changed, f.now(), &mut |_| {})
        .unwrap();
    let delete = store.delete(deleted.id, a, f.now(), &mut |_| {}).unwrap();
    let (hide, _) = store.hide(hidden.id, b, &mut |_| {}).unwrap();
    let alices_marker = store.set_marker(g, a, hidden.seq, f.now()).unwrap();
    let archive = SettingsUpdate {
        muted_until: None,
        archived: Some(true),
    };
    let bobs_settings = store.update_settings(g, b, &archive, f.now()).unwrap();
    // Neither alice's settings nor anything in carol's group is bob's to see.
    store.update_settings(g, a, &archive, f.now()).unwrap();
    store.advance(other, c, unseen.seq, f.now()).unwrap();
    let again = MessageContent::parse("still not bob's").unwrap();
    store
        .edit(unseen.id, a, &again, f.now(), &mut |_| {})
        .unwrap();

    let feed = store.feed(b, since, 100).unwrap();
    let positions: Vec<Seq> = feed.iter().map(|i| i.position).collect();
    assert_eq!(
        positions,
        [
            edit.message.change_seq.unwrap(),
            delete.message.change_seq.unwrap(),
            hide.seq,
            alices_marker.marker.seq.unwrap(),
            bobs_settings.seq,
        ],
        "{feed:#?}"
    );
    match &feed[0].entry {
        FeedEntry::Message(m) => assert_eq!(m.text(), Some("changed")),
        other => panic!("expected the edited message, got {other:?}"),
    }
    match &feed[1].entry {
        FeedEntry::Message(t) if t.is_deleted() => {
            assert_eq!(
                (t.id, t.seq, t.deletion.map(|d| d.by)),
                (deleted.id, deleted.seq, Some(a))
            )
        }
        other => panic!("expected a tombstone, got {other:?}"),
    }
    assert_eq!(
        feed[2].entry,
        FeedEntry::Hidden {
            conversation_id: g,
            message_id: hidden.id,
            thread_reply: None,
        }
    );
    match &feed[3].entry {
        FeedEntry::Marker { marker, message_id } => {
            assert_eq!((marker.user_id, marker.last_read_seq), (a, hidden.seq));
            assert_eq!(*message_id, Some(hidden.id));
        }
        other => panic!("expected alice's marker, got {other:?}"),
    }
    assert_eq!(
        feed[4].entry,
        FeedEntry::Settings {
            conversation_id: g,
            muted_until: None,
            archived: true
        }
    );

    // The hidden message is gone from bob's messages, not from alice's.
    let from_start = |user| -> Vec<FeedEntry> {
        store
            .feed(user, Seq::ZERO, 100)
            .unwrap()
            .into_iter()
            .map(|i| i.entry)
            .collect()
    };
    let is_hidden_message = |e: &FeedEntry| matches!(e, FeedEntry::Message(m) if m.id == hidden.id);
    assert!(!from_start(b).iter().any(is_hidden_message));
    assert!(from_start(a).iter().any(is_hidden_message));

    let removed = store.remove_member(g, b, f.now()).unwrap().unwrap();
    let after = store.feed(b, since, 100).unwrap();
    assert_eq!(after.len(), 1, "{after:#?}");
    assert_eq!(after[0].position, removed);
    assert!(
        matches!(after[0].entry, FeedEntry::Departure { conversation_id, .. } if conversation_id == g)
    );
}
