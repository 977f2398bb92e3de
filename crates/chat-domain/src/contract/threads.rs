//! The rules of threads: a message stored with `thread_root_id` is a reply in its root's
//! thread, read from the thread and from catch-up but not from the conversation's main
//! history; every read of the root carries the thread's summary; a thread reply is unread
//! only for the thread's participants; and a root that is no live main-history message of
//! the same conversation is refused without storing anything.

use crate::contract::{Fixture, Stores, created, everything, existing};
use crate::feed::{FeedEntry, HiddenReply};
use crate::message::{ClientMessageId, HistoryCursor, Message, NewMessage, Seq, ThreadSummary};
use crate::paging::Page;
use crate::ports::MessageStore;
use crate::{ConversationId, MessageId, StoreError, UserId};

fn in_thread(
    f: &Fixture<'_, impl Stores + ?Sized>,
    conversation: ConversationId,
    sender: UserId,
    root: MessageId,
    text: &str,
) -> NewMessage {
    NewMessage {
        thread_root_id: Some(root),
        ..f.message(conversation, sender, text)
    }
}

/// Every read of `id` that finds it: find, history, catch-up, the feed, pins and the
/// inbox's last message.
fn reads_of<S: Stores + ?Sized>(
    store: &S,
    user: UserId,
    conversation: ConversationId,
    id: MessageId,
) -> Vec<(&'static str, Message)> {
    let pick = |page: Vec<Message>| page.into_iter().find(|m| m.id == id);
    let feed = store
        .feed(user, Seq::ZERO, 500)
        .unwrap()
        .into_iter()
        .filter_map(|item| match item.entry {
            FeedEntry::Message(m) => Some(m),
            _ => None,
        })
        .collect();
    let last = store
        .inbox(user, Page::default(), everything())
        .unwrap()
        .into_iter()
        .filter_map(|entry| entry.last_message)
        .collect();
    let reads = [
        ("find", MessageStore::find(store, id).unwrap()),
        (
            "history",
            pick(
                store
                    .history(conversation, HistoryCursor::Latest, 50)
                    .unwrap(),
            ),
        ),
        ("since", pick(store.since(user, Seq::ZERO, 500).unwrap())),
        ("feed", pick(feed)),
        ("pins", pick(store.pins(conversation).unwrap())),
        ("inbox", pick(last)),
    ];
    reads
        .into_iter()
        .filter_map(|(read, found)| found.map(|m| (read, m)))
        .collect()
}

fn names(reads: &[(&'static str, Message)]) -> Vec<&'static str> {
    reads.iter().map(|(read, _)| *read).collect()
}

/// A thread reply reads back from find, catch-up and the feed carrying `thread_root_id`, and
/// from the thread's pages, but not from the conversation's history nor as the inbox's last
/// message. Its root reads, from every read of it, with the thread's summary: every reply
/// counted, the newest one's time and seq, and the root's sender then each replier once, in
/// the order they joined. A root without replies has no summary.
pub fn a_thread_reply_is_read_from_its_thread_and_its_root_carries_the_summary<
    S: Stores + ?Sized,
>(
    store: &S,
) {
    let f = Fixture::new(store);
    let (a, b, c) = (f.user("alice"), f.user("bob"), f.user("carol"));
    let g = f.group(&[a, b, c]);
    let root = f.send(g, a, "plans for friday?");
    let lonely = f.send(g, b, "nobody answers this");
    store.pin(g, root.id, a, 10, f.now()).unwrap();
    // A page read before the replies (which a store may keep) shows them after.
    let before = store.history(g, HistoryCursor::Latest, 50).unwrap();
    assert_eq!(before[0].thread, None);
    let first = created(f.append(&in_thread(&f, g, c, root.id, "pizza")).unwrap());
    assert_eq!(first.thread_root_id, Some(root.id));
    assert_eq!(first.thread, None);
    let second = created(f.append(&in_thread(&f, g, b, root.id, "bowling")).unwrap());
    let third = created(f.append(&in_thread(&f, g, c, root.id, "both")).unwrap());
    let after = f.send(g, b, "unrelated");
    let summary = ThreadSummary {
        reply_count: 3,
        last_reply_at: third.created_at,
        last_reply_seq: third.seq,
        participant_ids: vec![a, c, b],
    };
    let root_reads = reads_of(store, b, g, root.id);
    assert_eq!(
        names(&root_reads),
        ["find", "history", "since", "feed", "pins"]
    );
    for (read, message) in root_reads {
        assert_eq!(message.thread.as_deref(), Some(&summary), "{read}");
        assert_eq!(message.thread_root_id, None, "{read}");
    }
    for (read, message) in reads_of(store, b, g, lonely.id) {
        assert_eq!(message.thread, None, "{read}: no replies, no summary");
    }
    for reply in [&first, &second, &third] {
        let reads = reads_of(store, b, g, reply.id);
        assert_eq!(names(&reads), ["find", "since", "feed"]);
        for (read, message) in reads {
            assert_eq!(&message, reply, "{read}: read back as appended");
        }
    }
    let history: Vec<MessageId> = store
        .history(g, HistoryCursor::Latest, 50)
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(history, [root.id, lonely.id, after.id]);
    let inbox = store.inbox(b, Page::default(), everything()).unwrap();
    assert_eq!(inbox[0].last_message.as_ref().map(|m| m.id), Some(after.id));

    let page = |cursor, limit| -> Vec<MessageId> {
        let thread = store.thread(root.id, cursor, limit).unwrap();
        thread.iter().map(|m| m.id).collect()
    };
    assert_eq!(
        page(HistoryCursor::Latest, 50),
        [first.id, second.id, third.id]
    );
    assert_eq!(page(HistoryCursor::Latest, 2), [second.id, third.id]);
    assert_eq!(page(HistoryCursor::Before(third.seq), 1), [second.id]);
    assert_eq!(
        page(HistoryCursor::After(first.seq), 50),
        [second.id, third.id]
    );
    assert_eq!(page(HistoryCursor::After(third.seq), 50), []);
    assert!(
        store
            .thread(lonely.id, HistoryCursor::Latest, 50)
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .thread(first.id, HistoryCursor::Latest, 50)
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .thread(MessageId::new(), HistoryCursor::Latest, 50)
            .unwrap()
            .is_empty()
    );
}

/// A deleted reply keeps its place in its thread and its count in the summary, and replays
/// as a tombstone that names its root; a root deleted for everyone keeps its thread and its
/// tombstone carries the summary. Participants stay participants. A reply one member hid
/// still counts, and that member's feed says what of it the summary counts.
pub fn a_deleted_reply_still_counts_and_a_deleted_root_keeps_its_thread<S: Stores + ?Sized>(
    store: &S,
) {
    let f = Fixture::new(store);
    let (a, b) = (f.user("alice"), f.user("bob"));
    let g = f.group(&[a, b]);
    let root = f.send(g, a, "root");
    let reply = created(f.append(&in_thread(&f, g, b, root.id, "oops")).unwrap());
    store.delete(reply.id, b, f.now(), &mut |_| {}).unwrap();
    let summary = ThreadSummary {
        reply_count: 1,
        last_reply_at: reply.created_at,
        last_reply_seq: reply.seq,
        participant_ids: vec![a, b],
    };
    let read = MessageStore::find(store, root.id).unwrap().unwrap();
    assert_eq!(read.thread.as_deref(), Some(&summary));
    let thread = store.thread(root.id, HistoryCursor::Latest, 50).unwrap();
    assert_eq!(thread.len(), 1);
    assert!(thread[0].is_deleted());
    assert_eq!(
        thread[0].thread_root_id,
        Some(root.id),
        "still a thread reply"
    );
    store.delete(root.id, a, f.now(), &mut |_| {}).unwrap();
    let read = MessageStore::find(store, root.id).unwrap().unwrap();
    assert_eq!(
        read.thread.as_deref(),
        Some(&summary),
        "a deleted root keeps it"
    );
    let tombstones: Vec<_> = store
        .feed(a, Seq::ZERO, 100)
        .unwrap()
        .into_iter()
        .filter_map(|item| match item.entry {
            FeedEntry::Message(t) if t.is_deleted() => Some(t),
            _ => None,
        })
        .collect();
    assert_eq!(tombstones.len(), 2);
    assert_eq!(tombstones[0].id, reply.id);
    assert_eq!(tombstones[0].thread_root_id, Some(root.id));
    assert_eq!(tombstones[0].thread, None);
    assert_eq!(tombstones[1].id, root.id);
    assert_eq!(tombstones[1].thread_root_id, None);
    assert_eq!(tombstones[1].thread.as_deref(), Some(&summary));
    // A deleted root takes no new reply, but its thread stays readable.
    assert!(matches!(
        f.append(&in_thread(&f, g, a, root.id, "late")),
        Err(StoreError::ThreadRoot)
    ));
    assert_eq!(
        store
            .thread(root.id, HistoryCursor::Latest, 50)
            .unwrap()
            .len(),
        1
    );
    // A reply hidden by one member still counts for everyone, and their feed says what of it.
    let open = f.send(g, b, "another root");
    let kept = created(f.append(&in_thread(&f, g, a, open.id, "kept")).unwrap());
    store.hide(kept.id, b, &mut |_| {}).unwrap();
    let read = MessageStore::find(store, open.id).unwrap().unwrap();
    assert_eq!(
        read.thread.map(|t| t.reply_count),
        Some(1),
        "hidden, still counted"
    );
    let hidden: Vec<_> = store
        .feed(b, Seq::ZERO, 100)
        .unwrap()
        .into_iter()
        .filter_map(|item| match item.entry {
            FeedEntry::Hidden { thread_reply, .. } => Some(thread_reply),
            _ => None,
        })
        .collect();
    let counted = HiddenReply {
        thread_root_id: open.id,
        seq: kept.seq,
        sender_id: a,
        created_at: kept.created_at,
    };
    assert_eq!(hidden, [Some(counted)]);
    // Hiding a message of the main history says nothing more.
    store.hide(open.id, b, &mut |_| {}).unwrap();
    let plain = store.feed(b, Seq::ZERO, 100).unwrap();
    assert!(plain.iter().any(|item| matches!(
        &item.entry,
        FeedEntry::Hidden { message_id, thread_reply: None, .. } if *message_id == open.id
    )));
}

/// A thread root in another conversation, deleted for everyone, itself a thread reply, or
/// no message at all is [`StoreError::ThreadRoot`]: nothing is stored and no seq is used. A
/// retry of a stored thread reply gets it back.
pub fn a_thread_root_must_be_a_live_main_message_of_the_conversation<S: Stores + ?Sized>(
    store: &S,
) {
    let f = Fixture::new(store);
    let (a, b, c) = (f.user("alice"), f.user("bob"), f.user("carol"));
    let g = f.group(&[a, b]);
    let elsewhere = f.group(&[a, c]);
    let foreign = f.send(elsewhere, c, "secret");
    let gone = f.send(g, a, "oops");
    store.delete(gone.id, a, f.now(), &mut |_| {}).unwrap();
    let root = f.send(g, a, "root");
    let keyed = NewMessage {
        client_message_id: Some(ClientMessageId::parse("k-1").unwrap()),
        ..in_thread(&f, g, b, root.id, "first")
    };
    let reply = created(f.append(&keyed).unwrap());
    let before = store.since(a, Seq::ZERO, 100).unwrap();
    let latest = store.latest_seq().unwrap();
    for target in [foreign.id, gone.id, reply.id, MessageId::new()] {
        assert!(
            matches!(
                f.append(&in_thread(&f, g, b, target, "re")),
                Err(StoreError::ThreadRoot)
            ),
            "a thread reply to {target:?} is refused"
        );
    }
    assert_eq!(store.since(a, Seq::ZERO, 100).unwrap(), before);
    assert_eq!(store.latest_seq().unwrap(), latest, "no seq used");
    let again = existing(f.append(&keyed).unwrap());
    assert_eq!(again, reply, "a retry gets the stored reply back");
    let read = MessageStore::find(store, root.id).unwrap().unwrap();
    assert_eq!(read.thread.map(|t| t.reply_count), Some(1), "counted once");
}

/// A thread reply counts as unread (in the unread counts, the inbox and a set marker's count)
/// only for the thread's participants: the root's sender and those who replied in it. A
/// member who replies becomes a participant and from then on counts every reply of the
/// thread, earlier ones included; a reply in the main history counts for everyone.
pub fn a_thread_reply_is_unread_only_for_the_threads_participants<S: Stores + ?Sized>(store: &S) {
    let f = Fixture::new(store);
    let (a, b, c) = (f.user("alice"), f.user("bob"), f.user("carol"));
    let g = f.group(&[a, b, c]);
    let root = f.send(g, a, "root");
    let start = store.latest_seq().unwrap();
    for user in [a, b, c] {
        store.set_marker(g, user, start, f.now()).unwrap();
    }
    f.append(&in_thread(&f, g, b, root.id, "one")).unwrap();
    f.append(&in_thread(&f, g, b, root.id, "two")).unwrap();
    let unread = |user| {
        let counts = store.unread_counts(user).unwrap();
        let count = counts
            .iter()
            .find(|(id, _)| *id == g)
            .map_or(0, |(_, n)| *n);
        let inbox = store.inbox(user, Page::default(), everything()).unwrap();
        assert_eq!(inbox[0].unread_count, count, "the inbox counts alike");
        count
    };
    assert_eq!(unread(a), 2, "the root's sender follows the thread");
    assert_eq!(unread(c), 0, "carol is no participant");
    assert_eq!(
        store.set_marker(g, c, start, f.now()).unwrap().unread_count,
        0
    );
    f.send(g, b, "main history");
    assert_eq!(unread(c), 1, "a main-history message counts for everyone");
    // Carol joins the thread: her own reply reads everything before it, and the replies
    // before it count for her from her marker on.
    f.append(&in_thread(&f, g, c, root.id, "me too")).unwrap();
    assert_eq!(unread(c), 0, "sending is reading");
    let set = store.set_marker(g, c, start, f.now()).unwrap();
    assert_eq!(
        set.unread_count, 3,
        "two thread replies and the main message"
    );
    assert_eq!(unread(c), 3);
    f.append(&in_thread(&f, g, b, root.id, "three")).unwrap();
    assert_eq!(unread(c), 4);
    assert_eq!(
        unread(a),
        5,
        "three of bob's, one of carol's, one in the main history"
    );
}
