//! The rules of replies: a message stored with `reply_to_id` reads back, from every read,
//! quoting its original as the original now stands, and a reply to anything but a live
//! message of the same conversation is refused without storing anything.

use crate::contract::{Fixture, Stores, created, everything};
use crate::feed::FeedEntry;
use crate::message::{HistoryCursor, Message, MessageContent, NewMessage, ReplyTo, Seq};
use crate::paging::Page;
use crate::ports::MessageStore;
use crate::{ConversationId, MessageId, StoreError, UserId};

fn reply(
    f: &Fixture<'_, impl Stores + ?Sized>,
    conversation: ConversationId,
    sender: UserId,
    to: MessageId,
    text: &str,
) -> NewMessage {
    NewMessage {
        reply_to_id: Some(to),
        ..f.message(conversation, sender, text)
    }
}

/// Every read of `id`: find, history, catch-up, feed and the inbox's last message.
pub(super) fn every_read<S: Stores + ?Sized>(
    store: &S,
    user: UserId,
    conversation: ConversationId,
    id: MessageId,
) -> Vec<Message> {
    let pick = |page: Vec<Message>| page.into_iter().find(|m| m.id == id);
    let mut reads = vec![MessageStore::find(store, id).unwrap()];
    reads.push(pick(
        store
            .history(conversation, HistoryCursor::Latest, 50)
            .unwrap(),
    ));
    reads.push(pick(store.since(user, Seq::ZERO, 50).unwrap()));
    reads.push(pick(
        store
            .feed(user, Seq::ZERO, 50)
            .unwrap()
            .into_iter()
            .filter_map(|item| match item.entry {
                FeedEntry::Message(m) => Some(m),
                _ => None,
            })
            .collect(),
    ));
    reads.push(
        store
            .inbox(user, Page::default(), everything())
            .unwrap()
            .into_iter()
            .filter_map(|entry| entry.last_message)
            .find(|m| m.id == id),
    );
    reads
        .into_iter()
        .map(|read| read.expect("every read finds the message"))
        .collect()
}

/// A reply is stored with its original's id and reads back, from the append and from every
/// read, with `reply_to` quoting the original's sender and the start of its content; a
/// message that replies to nothing has no `reply_to`.
pub fn a_reply_reads_back_quoting_its_original_from_every_read<S: Stores + ?Sized>(store: &S) {
    let f = Fixture::new(store);
    let (a, b) = (f.user("alice"), f.user("bob"));
    let g = f.group(&[a, b]);
    let long = "x".repeat(ReplyTo::SNIPPET_CHARS + 20);
    let original = f.send(g, a, &long);
    let plain = f.send(g, b, "not a reply");
    assert_eq!(plain.reply_to, None);
    let answer = created(f.append(&reply(&f, g, b, original.id, "agreed")).unwrap());
    let quoted = ReplyTo {
        id: original.id,
        sender_id: a,
        snippet: Some("x".repeat(ReplyTo::SNIPPET_CHARS)),
    };
    assert_eq!(answer.reply_to.as_deref(), Some(&quoted));
    for read in every_read(store, b, g, answer.id) {
        assert_eq!(read, answer, "read back as appended");
    }
    let history = store.history(g, HistoryCursor::Latest, 50).unwrap();
    assert_eq!(history[0].reply_to, None, "the original replies to nothing");
    assert_eq!(history[1].reply_to, None);
}

/// A reply quotes its original as the original now stands: an edit shows in the snippet, and
/// once the original is deleted for everyone the snippet is gone (`None`) while its id and
/// sender stay. A reply deleted for everyone replies to nothing any more.
pub fn a_replys_snippet_follows_edits_and_deletes_of_its_original<S: Stores + ?Sized>(store: &S) {
    let f = Fixture::new(store);
    let (a, b) = (f.user("alice"), f.user("bob"));
    let g = f.group(&[a, b]);
    let original = f.send(g, a, "lunch at noon?");
    let answer = created(f.append(&reply(&f, g, b, original.id, "yes")).unwrap());
    let edited = MessageContent::parse("lunch at one?").unwrap();
    store
        .edit(original.id, a, &edited, f.now(), &mut |_| {})
        .unwrap();
    for read in every_read(store, b, g, answer.id) {
        let quoted = read.reply_to.as_deref().expect("still a reply");
        assert_eq!(quoted.snippet.as_deref(), Some("lunch at one?"));
    }
    store.delete(original.id, a, f.now(), &mut |_| {}).unwrap();
    for read in every_read(store, b, g, answer.id) {
        let quoted = read.reply_to.as_deref().expect("still a reply");
        assert_eq!((quoted.id, quoted.sender_id), (original.id, a));
        assert_eq!(quoted.snippet, None, "a deleted original leaves no snippet");
        assert_eq!(read.text(), Some("yes"), "the reply itself is untouched");
    }
    let tombstone = store.delete(answer.id, b, f.now(), &mut |_| {}).unwrap();
    assert_eq!(tombstone.message.reply_to, None);
    let read = MessageStore::find(store, answer.id).unwrap().unwrap();
    assert_eq!(
        read.reply_to, None,
        "a deleted reply keeps nothing of what it quoted"
    );
}

/// A reply to a message of another conversation, to a deleted message or to no message at
/// all is [`StoreError::ReplyTarget`]: nothing is stored and no seq is used.
pub fn a_reply_to_anything_but_a_live_message_of_its_conversation_is_refused<S: Stores + ?Sized>(
    store: &S,
) {
    let f = Fixture::new(store);
    let (a, b, c) = (f.user("alice"), f.user("bob"), f.user("carol"));
    let g = f.group(&[a, b]);
    let elsewhere = f.group(&[a, c]);
    let foreign = f.send(elsewhere, c, "secret");
    let gone = f.send(g, a, "oops");
    store.delete(gone.id, a, f.now(), &mut |_| {}).unwrap();
    let before = store.history(g, HistoryCursor::Latest, 50).unwrap();
    let latest = store.latest_seq().unwrap();
    for target in [foreign.id, gone.id, MessageId::new()] {
        assert!(
            matches!(
                f.append(&reply(&f, g, b, target, "re")),
                Err(StoreError::ReplyTarget)
            ),
            "a reply to {target:?} is refused"
        );
    }
    assert_eq!(store.history(g, HistoryCursor::Latest, 50).unwrap(), before);
    assert_eq!(store.latest_seq().unwrap(), latest, "no seq used");
    let live = f.send(g, a, "live");
    let fine = created(f.append(&reply(&f, g, b, live.id, "re")).unwrap());
    assert_eq!(fine.reply_to.map(|r| r.id), Some(live.id));
}
