//! What only a shared database asks of the store: several stores ("nodes", each with its own
//! pool and commit thread) on one PostgreSQL database at once. Each test gets a database of
//! its own from `CHAT_TEST_POSTGRES_URL` and skips, saying so, without it.

use std::collections::{HashMap, HashSet};
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use chat_domain::conversation::{
    Conversation, ConversationKind, ConversationName, NewConversation, Role,
};
use chat_domain::feed::FeedEntry;
use chat_domain::message::{
    AppendOutcome, Appended, ClientMessageId, Emoji, Marked, Message, MessageContent, NewMessage,
    Seq,
};
use chat_domain::ports::{ConversationStore, FeedStore, MessageStore, StoreResult, UserStore};
use chat_domain::user::{Email, NewUser, PasswordHash, Username};
use chat_domain::{ConversationId, MessageId, UserId};
use chrono::{SubsecRound, Utc};
use diesel::prelude::*;

use crate::PgStore;
use crate::messages::{Pending, conversation_states, insert_fresh, insert_in_commit_order};
use crate::schema::{message_seq, messages};
use crate::testing::TestStore;

const SUITE: &str = "chat-postgres cluster";

fn user(store: &PgStore, name: &str) -> UserId {
    let id = UserId::new();
    store
        .insert(&NewUser {
            id,
            username: Username::parse(name).unwrap(),
            email: Email::parse(&format!("{name}@example.com")).unwrap(),
            full_name: None,
            password_hash: PasswordHash("hash".into()),
            created_at: Utc::now().trunc_subsecs(6),
        })
        .unwrap();
    id
}

fn group(store: &PgStore, members: &[UserId]) -> ConversationId {
    let now = Utc::now().trunc_subsecs(6);
    let conversation = Conversation {
        id: ConversationId::new(),
        kind: ConversationKind::Group,
        name: Some(ConversationName::parse("team").unwrap()),
        created_by: members[0],
        created_at: now,
        updated_at: now,
    };
    let id = conversation.id;
    store
        .create(&NewConversation {
            conversation,
            members: members
                .iter()
                .enumerate()
                .map(|(i, &m)| (m, if i == 0 { Role::Owner } else { Role::Member }))
                .collect(),
        })
        .unwrap();
    id
}

fn message(conversation_id: ConversationId, sender_id: UserId, content: &str) -> NewMessage {
    NewMessage {
        id: MessageId::new(),
        conversation_id,
        sender_id,
        content: MessageContent::parse(content).unwrap(),
        client_message_id: None,
        created_at: Utc::now().trunc_subsecs(6),
        reply_to_id: None,
        thread_root_id: None,
        mentions: Default::default(),
        attachment_ids: Vec::new(),
    }
}

/// The last seq handed out, as the counter row holds it.
fn counter(store: &PgStore) -> i64 {
    let mut conn = store.database().conn().unwrap();
    message_seq::table
        .select(message_seq::last)
        .first(&mut conn)
        .unwrap()
}

fn stored_count(store: &PgStore) -> i64 {
    let mut conn = store.database().conn().unwrap();
    messages::table.count().get_result(&mut conn).unwrap()
}

#[test]
fn a_reader_paging_since_or_the_feed_while_three_nodes_append_sees_every_message_once_in_order() {
    let Some(first) = TestStore::create(SUITE) else {
        return;
    };
    let nodes: Vec<PgStore> = vec![(*first).clone(), first.another_node(), first.another_node()];
    let reader = user(&first, "reader");
    let writers: Vec<UserId> = (0..6)
        .map(|i| user(&first, &format!("writer{i}")))
        .collect();
    let mut everyone = vec![reader];
    everyone.extend(&writers);
    let groups: Vec<ConversationId> = (0..3).map(|_| group(&first, &everyone)).collect();
    // Creating the groups took the first seqs; the messages take the ones after.
    let before = counter(&first);

    const ROUNDS: usize = 10;
    const PER_ROUND: usize = 40;
    let done = AtomicBool::new(false);
    let (created, seen, fed) = std::thread::scope(|scope| {
        // Pages the change feed continuously from the third node, by position.
        let feeding = scope.spawn(|| {
            let mut last = Seq(0);
            let mut fed: Vec<Message> = Vec::new();
            loop {
                let finished = done.load(Ordering::Acquire);
                let page = FeedStore::feed(&nodes[2], reader, last, 100).unwrap();
                for item in &page {
                    assert!(
                        item.position > last,
                        "position {} came after {}",
                        item.position.0,
                        last.0
                    );
                    last = item.position;
                    if let FeedEntry::Message(message) = &item.entry {
                        fed.push(message.clone());
                    }
                }
                if finished && page.is_empty() {
                    return fed;
                }
            }
        });
        let reading = scope.spawn(|| {
            // Pages catch-up continuously, as a reconnecting client does, from its own node.
            let mut last = Seq(0);
            let mut seen: Vec<Message> = Vec::new();
            loop {
                let finished = done.load(Ordering::Acquire);
                let page = nodes[2].since(reader, last, 100).unwrap();
                for message in &page {
                    assert!(
                        message.seq > last,
                        "seq {} came after {} had been seen",
                        message.seq.0,
                        last.0
                    );
                    last = message.seq;
                }
                let empty = page.is_empty();
                seen.extend(page);
                if finished && empty {
                    return seen;
                }
            }
        });
        let appending: Vec<_> = writers
            .iter()
            .enumerate()
            .map(|(w, &writer)| {
                let node = &nodes[w % nodes.len()];
                let groups = &groups;
                scope.spawn(move || {
                    let mut created = Vec::new();
                    for round in 0..ROUNDS {
                        // Submitted without waiting, so the commit thread batches them.
                        let (answers, answered) = mpsc::channel();
                        for i in 0..PER_ROUND {
                            let new = message(
                                groups[(w + i) % groups.len()],
                                writer,
                                &format!("{w}/{round}/{i}"),
                            );
                            let answers = answers.clone();
                            node.submit(new, Box::new(move |r| answers.send(r).unwrap()));
                        }
                        drop(answers);
                        for outcome in answered {
                            match outcome {
                                Ok(AppendOutcome {
                                    appended: Appended::Created(message),
                                    ..
                                }) => created.push(message),
                                other => panic!("an append failed: {other:?}"),
                            }
                        }
                    }
                    created
                })
            })
            .collect();
        let created: Vec<Message> = appending
            .into_iter()
            .flat_map(|writer| writer.join().unwrap())
            .collect();
        done.store(true, Ordering::Release);
        (created, reading.join().unwrap(), feeding.join().unwrap())
    });

    let total = writers.len() * ROUNDS * PER_ROUND;
    assert_eq!(created.len(), total);
    // The feed, read page by page under three nodes' appends, held every message once.
    let mut fed_ids: Vec<MessageId> = fed.iter().map(|m| m.id).collect();
    let mut created_ids: Vec<MessageId> = created.iter().map(|m| m.id).collect();
    fed_ids.sort_unstable();
    created_ids.sort_unstable();
    assert_eq!(
        fed_ids, created_ids,
        "the feed skipped or repeated a message"
    );
    let seen_ids: HashSet<MessageId> = seen.iter().map(|m| m.id).collect();
    assert_eq!(seen_ids.len(), seen.len(), "the reader saw a message twice");
    let created_by_id: HashMap<MessageId, &Message> = created.iter().map(|m| (m.id, m)).collect();
    assert_eq!(seen.len(), total, "the reader missed messages");
    for message in &seen {
        assert_eq!(
            created_by_id.get(&message.id),
            Some(&message),
            "read back as answered"
        );
    }
    // Commit order leaves no holes: the seqs are exactly the next `total` ones.
    let mut seqs: Vec<i64> = created.iter().map(|m| m.seq.0).collect();
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (before + 1..=before + total as i64).collect::<Vec<_>>()
    );
    assert_eq!(counter(&first), before + total as i64);
}

#[test]
fn the_same_retry_sent_through_two_nodes_at_once_is_stored_once_and_spends_one_seq() {
    let Some(first) = TestStore::create(SUITE) else {
        return;
    };
    let nodes = [(*first).clone(), first.another_node()];
    let sender = user(&first, "sender");
    let conversation = group(&first, &[sender]);
    let before = counter(&first);

    const KEYS: usize = 200;
    let start = Barrier::new(nodes.len());
    let answers: Vec<Vec<StoreResult<AppendOutcome>>> = std::thread::scope(|scope| {
        let sending: Vec<_> = nodes
            .iter()
            .map(|node| {
                let start = &start;
                scope.spawn(move || {
                    start.wait();
                    let (answers, answered) = mpsc::channel();
                    for k in 0..KEYS {
                        let mut new = message(conversation, sender, &format!("message {k}"));
                        new.client_message_id =
                            Some(ClientMessageId::parse(&format!("key-{k}")).unwrap());
                        let answers = answers.clone();
                        node.submit(new, Box::new(move |r| answers.send((k, r)).unwrap()));
                    }
                    drop(answers);
                    let mut by_key: Vec<_> = answered.iter().collect();
                    by_key.sort_by_key(|(k, _)| *k);
                    by_key.into_iter().map(|(_, r)| r).collect::<Vec<_>>()
                })
            })
            .collect();
        sending.into_iter().map(|s| s.join().unwrap()).collect()
    });

    assert!(answers.iter().all(|node| node.len() == KEYS));
    let mut created = 0;
    for (k, (one, two)) in answers[0].iter().zip(&answers[1]).enumerate() {
        let [one, two] = [one, two].map(|answer| match answer {
            Ok(AppendOutcome { appended, .. }) => appended.clone(),
            Err(error) => panic!("key {k}: {error:?}"),
        });
        let (Appended::Created(a) | Appended::Existing(a)) = &one;
        let (Appended::Created(b) | Appended::Existing(b)) = &two;
        assert_eq!(
            a, b,
            "both nodes answer key {k} with the one stored message"
        );
        created += [&one, &two]
            .iter()
            .filter(|a| matches!(a, Appended::Created(_)))
            .count();
    }
    assert_eq!(created, KEYS, "each key is created exactly once");
    assert_eq!(stored_count(&first), KEYS as i64);
    assert_eq!(counter(&first) - before, KEYS as i64, "a retry spent a seq");
}

#[test]
fn a_membership_change_on_another_node_waits_for_an_append_that_has_checked_membership() {
    let Some(first) = TestStore::create(SUITE) else {
        return;
    };
    let other = first.another_node();
    let (alice, bob) = (user(&first, "alice"), user(&first, "bob"));
    let conversation = group(&first, &[alice, bob]);
    let new = message(conversation, bob, "sent while still a member");

    // An append transaction on this node has checked that bob is a member, and not committed.
    let (checked_tx, checked_rx) = mpsc::sync_channel(0);
    let (release_tx, release_rx) = mpsc::sync_channel::<()>(0);
    let (removed_tx, removed_rx) = mpsc::channel();
    std::thread::scope(|scope| {
        let database = first.database().clone();
        let new = &new;
        let appending = scope.spawn(move || {
            database.write(|conn| {
                let results = crate::messages::append_batch(conn, &[new])?;
                checked_tx.send(()).unwrap();
                release_rx.recv().unwrap();
                Ok(results)
            })
        });
        checked_rx.recv().unwrap();
        let other = &other;
        scope.spawn(move || {
            let removed = other.remove_member(conversation, bob, Utc::now()).unwrap();
            removed_tx.send(removed).unwrap();
        });
        assert!(
            removed_rx
                .recv_timeout(std::time::Duration::from_millis(500))
                .is_err(),
            "the removal went ahead of an append that had found bob a member"
        );
        release_tx.send(()).unwrap();
        let results = appending.join().unwrap().unwrap();
        assert!(matches!(
            results[0],
            Ok(AppendOutcome {
                appended: Appended::Created(_),
                ..
            })
        ));
        assert!(
            removed_rx.recv().unwrap().is_some(),
            "bob was removed after the append"
        );
    });
    // After the removal, bob's append is refused on either node.
    let refused = other.append(&message(conversation, bob, "too late"), Box::new(|_| {}));
    assert!(
        matches!(refused, Err(chat_domain::StoreError::Missing)),
        "{refused:?}"
    );
    assert_eq!(stored_count(&first), 1);
}

#[test]
fn an_append_on_another_node_waits_for_a_removal_in_progress_and_is_then_refused() {
    let Some(first) = TestStore::create(SUITE) else {
        return;
    };
    let other = first.another_node();
    let (alice, bob) = (user(&first, "alice"), user(&first, "bob"));
    let conversation = group(&first, &[alice, bob]);

    // A removal of bob on this node has deleted his membership, and not committed.
    let (removed_tx, removed_rx) = mpsc::sync_channel(0);
    let (release_tx, release_rx) = mpsc::sync_channel::<()>(0);
    let (answer_tx, answer_rx) = mpsc::channel();
    std::thread::scope(|scope| {
        let database = first.database().clone();
        let removing = scope.spawn(move || {
            database.write(|conn| {
                let removed = crate::conversations::remove_member(
                    conn,
                    conversation.into(),
                    bob.into(),
                    Utc::now(),
                )?;
                removed_tx.send(()).unwrap();
                release_rx.recv().unwrap();
                Ok(removed)
            })
        });
        removed_rx.recv().unwrap();
        other.submit(
            message(conversation, bob, "sent while being removed"),
            Box::new(move |outcome| answer_tx.send(outcome).unwrap()),
        );
        assert!(
            answer_rx
                .recv_timeout(std::time::Duration::from_millis(500))
                .is_err(),
            "the append was decided while a removal of its sender was in progress"
        );
        release_tx.send(()).unwrap();
        assert!(removing.join().unwrap().unwrap().is_some());
        let outcome = answer_rx.recv().unwrap();
        assert!(
            matches!(outcome, Err(chat_domain::StoreError::Missing)),
            "{outcome:?}"
        );
    });
    assert_eq!(stored_count(&first), 0);
}

#[test]
fn a_retry_key_stored_behind_the_lookup_is_answered_with_the_stored_message_and_spends_no_seq() {
    let Some(store) = TestStore::create(SUITE) else {
        return;
    };
    let sender = user(&store, "sender");
    let conversation = group(&store, &[sender]);
    let key = ClientMessageId::parse("key").unwrap();
    let mut earlier = message(conversation, sender, "earlier");
    earlier.client_message_id = Some(key.clone());
    let mut retry = message(conversation, sender, "retry");
    retry.client_message_id = Some(key);
    let other = message(conversation, sender, "other");
    // Creating the group took a seq.
    let first = counter(&store) + 1;
    store
        .database()
        .write(|conn| {
            // What a writer that does not lock the conversation could do: store the key
            // after the batch looked it up and found nothing.
            insert_in_commit_order(conn, &[&earlier], &[0])?;
            let batch = [&retry, &other];
            let states = conversation_states(conn, &batch)?;
            let mut pending = vec![Pending::New, Pending::New];
            let seqs = insert_fresh(conn, &batch, &mut pending, &states)?;
            assert_eq!(
                seqs,
                HashMap::from([(1, Seq(first + 1))]),
                "the other message takes the seq after the earlier one"
            );
            let stored = match &pending[0] {
                Pending::Done(done) => match &**done {
                    Ok(AppendOutcome {
                        appended: Appended::Existing(stored),
                        ..
                    }) => stored,
                    _ => panic!("the retry was not answered with the stored message"),
                },
                _ => panic!("the retry was not answered with the stored message"),
            };
            assert_eq!((stored.id, stored.seq), (earlier.id, Seq(first)));
            Ok(())
        })
        .unwrap();
    assert_eq!(
        counter(&store),
        first + 1,
        "the skipped insert's seq was given back"
    );
    assert_eq!(stored_count(&store), 2);
}

#[test]
fn a_removal_on_another_node_waits_for_a_reaction_that_has_checked_membership() {
    let Some(first) = TestStore::create(SUITE) else {
        return;
    };
    let other = first.another_node();
    let (alice, bob) = (user(&first, "alice"), user(&first, "bob"));
    let conversation = group(&first, &[alice, bob]);
    let target = first
        .append(
            &message(conversation, alice, "react to me"),
            Box::new(|_| {}),
        )
        .unwrap();
    let Appended::Created(target) = target.appended else {
        panic!("a new message")
    };
    let thumbs = Emoji::parse("👍").unwrap();

    let (checked_tx, checked_rx) = mpsc::sync_channel(0);
    let (release_tx, release_rx) = mpsc::sync_channel::<()>(0);
    let (removed_tx, removed_rx) = mpsc::channel();
    std::thread::scope(|scope| {
        let database = first.database().clone();
        let thumbs = &thumbs;
        let reacting = scope.spawn(move || {
            database.write(|conn| {
                let marked = crate::reactions::react(conn, target.id, bob, thumbs, 20, Utc::now())?;
                checked_tx.send(()).unwrap();
                release_rx.recv().unwrap();
                Ok(marked)
            })
        });
        checked_rx.recv().unwrap();
        let other = &other;
        scope.spawn(move || {
            let removed = other.remove_member(conversation, bob, Utc::now()).unwrap();
            removed_tx.send(removed).unwrap();
        });
        let went_ahead = removed_rx
            .recv_timeout(std::time::Duration::from_millis(500))
            .is_ok();
        // Released before asserting, so that a failure ends the test instead of hanging it.
        release_tx.send(()).unwrap();
        assert!(
            !went_ahead,
            "the removal went ahead of a reaction that had found bob a member"
        );
        let marked = reacting.join().unwrap().unwrap();
        assert!(
            matches!(marked, Some(Marked::Changed { count: 1, .. })),
            "{marked:?}"
        );
        assert!(removed_rx.recv().unwrap().is_some());
    });
    let refused = other.react(target.id, bob, &Emoji::parse("🎉").unwrap(), 20, Utc::now());
    assert!(
        matches!(refused, Err(chat_domain::StoreError::Missing)),
        "{refused:?}"
    );
}

#[test]
fn nodes_reacting_with_new_emoji_at_once_never_pass_the_cap_and_never_share_a_seq() {
    let Some(first) = TestStore::create(SUITE) else {
        return;
    };
    let nodes: Vec<PgStore> = vec![(*first).clone(), first.another_node(), first.another_node()];
    let users: Vec<UserId> = (0..6).map(|i| user(&first, &format!("user{i}"))).collect();
    let conversation = group(&first, &users);
    let Appended::Created(target) = first
        .append(
            &message(conversation, users[0], "pick one"),
            Box::new(|_| {}),
        )
        .unwrap()
        .appended
    else {
        panic!("a new message")
    };
    let emoji = ["😀", "😁", "😂", "🤣", "😃", "😄"];
    const CAP: usize = 3;
    let barrier = Barrier::new(users.len());
    let outcomes: Vec<Marked> = std::thread::scope(|scope| {
        let handles: Vec<_> = users
            .iter()
            .zip(emoji)
            .enumerate()
            .map(|(i, (&user, e))| {
                let (node, barrier) = (&nodes[i % nodes.len()], &barrier);
                scope.spawn(move || {
                    barrier.wait();
                    node.react(target.id, user, &Emoji::parse(e).unwrap(), CAP, Utc::now())
                        .unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let seqs: HashSet<i64> = outcomes
        .iter()
        .filter_map(|o| match o {
            Marked::Changed { seq, .. } => Some(seq.0),
            _ => None,
        })
        .collect();
    assert_eq!(seqs.len(), CAP, "{outcomes:?}");
    assert_eq!(
        outcomes.iter().filter(|o| **o == Marked::OverCap).count(),
        users.len() - CAP
    );
    let stored = MessageStore::find(&*first, target.id).unwrap().unwrap();
    assert_eq!(stored.reactions.len(), CAP);
    assert_eq!(counter(&first), *seqs.iter().max().unwrap());
}

#[test]
fn a_message_deleted_for_everyone_takes_no_reaction_or_pin() {
    let Some(store) = TestStore::create(SUITE) else {
        return;
    };
    let (alice, bob) = (user(&store, "alice"), user(&store, "bob"));
    let conversation = group(&store, &[alice, bob]);
    let Appended::Created(target) = store
        .append(&message(conversation, alice, "soon gone"), Box::new(|_| {}))
        .unwrap()
        .appended
    else {
        panic!("a new message")
    };
    let thumbs = Emoji::parse("👍").unwrap();
    store
        .react(target.id, bob, &thumbs, 20, Utc::now())
        .unwrap();
    let mut conn = store.database().conn().unwrap();
    diesel::update(messages::table.filter(messages::id.eq(uuid::Uuid::from(target.id))))
        .set(messages::deleted_at.eq(Utc::now()))
        .execute(&mut conn)
        .unwrap();
    let party = Emoji::parse("🎉").unwrap();
    assert_eq!(
        store
            .react(target.id, alice, &party, 20, Utc::now())
            .unwrap(),
        Marked::MessageDeleted
    );
    assert_eq!(
        store
            .pin(conversation, target.id, alice, 50, Utc::now())
            .unwrap(),
        Marked::MessageDeleted
    );
    assert!(matches!(
        store.unreact(target.id, bob, &thumbs).unwrap(),
        Marked::Changed { count: 0, .. }
    ));
}
