//! Tests of the conversation, message and read-receipt adapters against a real SQLite file.

use std::sync::Arc;

use chat_domain::conversation::{
    Conversation, ConversationKind, ConversationName, NewConversation, Role,
};
use chat_domain::message::{
    AppendOutcome, Appended, ClientMessageId, HistoryCursor, MessageContent, NewMessage, Seq,
};
use chat_domain::paging::Page;
use chat_domain::ports::{ConversationStore, MessageStore, ReadReceiptStore, UserStore};
use chat_domain::user::{Email, NewUser, PasswordHash, Username};
use chat_domain::{ConversationId, MessageId, StoreError, UserId};
use chrono::Utc;
use diesel::prelude::*;
use diesel::sql_types::Text;

use crate::read_receipts::UNREAD_COUNTS_SQL;
use crate::test_support::{TempDb, temp_db};

fn user(db: &TempDb, name: &str) -> UserId {
    let id = UserId::new();
    db.store
        .insert(&NewUser {
            id,
            username: Username::parse(name).unwrap(),
            email: Email::parse(&format!("{name}@example.com")).unwrap(),
            full_name: None,
            password_hash: PasswordHash("hash".into()),
            created_at: Utc::now(),
        })
        .unwrap();
    id
}

fn conversation(db: &TempDb, kind: ConversationKind, members: &[UserId]) -> StoreResultId {
    let now = Utc::now();
    let conversation = Conversation {
        id: ConversationId::new(),
        kind,
        name: (kind == ConversationKind::Group).then(|| ConversationName::parse("team").unwrap()),
        created_by: members[0],
        created_at: now,
        updated_at: now,
    };
    let id = conversation.id;
    db.store
        .create(&NewConversation {
            conversation,
            members: members.iter().map(|m| (*m, Role::Member)).collect(),
        })
        .map(|()| id)
}

type StoreResultId = Result<ConversationId, StoreError>;

fn message(conversation: ConversationId, sender: UserId, text: &str) -> NewMessage {
    NewMessage {
        id: MessageId::new(),
        conversation_id: conversation,
        sender_id: sender,
        content: MessageContent::parse(text).unwrap(),
        client_message_id: None,
        created_at: Utc::now(),
    }
}

fn created(outcome: AppendOutcome) -> chat_domain::message::Message {
    match outcome.appended {
        Appended::Created(m) => m,
        Appended::Existing(m) => panic!("expected a new message, got existing {m:?}"),
    }
}

#[test]
fn migrations_apply_once_to_a_fresh_database() {
    let db = temp_db();
    assert_eq!(db.store.database().migrate().unwrap(), 0);
}

#[test]
fn a_pair_can_have_only_one_direct_conversation_whichever_order() {
    let db = temp_db();
    let (a, b) = (user(&db, "alice"), user(&db, "bob"));
    let first = conversation(&db, ConversationKind::Direct, &[a, b]).unwrap();
    assert!(matches!(
        conversation(&db, ConversationKind::Direct, &[b, a]),
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(db.store.find_direct(b, a).unwrap().unwrap().id, first);
}

#[test]
fn appended_messages_get_increasing_seqs_across_conversations() {
    let db = temp_db();
    let (a, b) = (user(&db, "alice"), user(&db, "bob"));
    let one = conversation(&db, ConversationKind::Direct, &[a, b]).unwrap();
    let two = conversation(&db, ConversationKind::Group, &[a]).unwrap();
    let m1 = created(
        db.store
            .append(&message(one, a, "1"), Box::new(|_| {}))
            .unwrap(),
    );
    let m2 = created(
        db.store
            .append(&message(two, a, "2"), Box::new(|_| {}))
            .unwrap(),
    );
    let m3 = created(
        db.store
            .append(&message(one, b, "3"), Box::new(|_| {}))
            .unwrap(),
    );
    assert!(m1.seq < m2.seq && m2.seq < m3.seq);
    assert_eq!(
        MessageStore::find(&db.store, m2.id).unwrap(),
        Some(m2.clone())
    );
    assert_eq!(db.store.last_seq_for(b).unwrap(), m3.seq);
    let since: Vec<Seq> = db
        .store
        .since(b, Seq::ZERO, 10)
        .unwrap()
        .iter()
        .map(|m| m.seq)
        .collect();
    assert_eq!(since, vec![m1.seq, m3.seq]);
}

#[test]
fn a_client_message_id_is_stored_once_per_sender_and_conversation() {
    let db = temp_db();
    let (a, b, c) = (user(&db, "alice"), user(&db, "bob"), user(&db, "carol"));
    let with_bob = conversation(&db, ConversationKind::Direct, &[a, b]).unwrap();
    let with_carol = conversation(&db, ConversationKind::Direct, &[a, c]).unwrap();
    let mut new = message(with_bob, a, "hi");
    new.client_message_id = Some(ClientMessageId::parse("retry-1").unwrap());
    let first = created(db.store.append(&new, Box::new(|_| {})).unwrap());
    new.id = MessageId::new();
    let Appended::Existing(again) = db.store.append(&new, Box::new(|_| {})).unwrap().appended
    else {
        panic!("a retry must not store a second message");
    };
    assert_eq!(again, first);
    // The same key from another sender, or in another conversation, is another message.
    new.id = MessageId::new();
    new.sender_id = b;
    created(db.store.append(&new, Box::new(|_| {})).unwrap());
    new.id = MessageId::new();
    new.sender_id = a;
    new.conversation_id = with_carol;
    let to_carol = created(db.store.append(&new, Box::new(|_| {})).unwrap());
    assert_eq!(to_carol.conversation_id, with_carol);
    assert_eq!(
        db.store
            .history(with_carol, HistoryCursor::Latest, 10)
            .unwrap(),
        vec![to_carol]
    );
}

#[test]
fn a_retry_uses_up_no_seq() {
    let db = temp_db();
    let (a, b) = (user(&db, "alice"), user(&db, "bob"));
    let c = conversation(&db, ConversationKind::Direct, &[a, b]).unwrap();
    let mut new = message(c, a, "once");
    new.client_message_id = Some(ClientMessageId::parse("s-1").unwrap());
    let first = created(db.store.append(&new, Box::new(|_| {})).unwrap());
    for _ in 0..3 {
        new.id = MessageId::new();
        db.store.append(&new, Box::new(|_| {})).unwrap();
    }
    let next = created(
        db.store
            .append(&message(c, a, "next"), Box::new(|_| {}))
            .unwrap(),
    );
    assert_eq!(next.seq, Seq(first.seq.0 + 1));
}

#[test]
fn a_non_member_cannot_append() {
    let db = temp_db();
    let (a, b, eve) = (user(&db, "alice"), user(&db, "bob"), user(&db, "eve"));
    let c = conversation(&db, ConversationKind::Direct, &[a, b]).unwrap();
    assert!(matches!(
        db.store.append(&message(c, eve, "hi"), Box::new(|_| {})),
        Err(StoreError::Missing)
    ));
}

#[test]
fn history_pages_are_cut_by_seq() {
    let db = temp_db();
    let a = user(&db, "alice");
    let c = conversation(&db, ConversationKind::Group, &[a]).unwrap();
    let seqs: Vec<Seq> = (0..10)
        .map(|i| {
            created(
                db.store
                    .append(&message(c, a, &format!("m{i}")), Box::new(|_| {}))
                    .unwrap(),
            )
            .seq
        })
        .collect();
    let page = |cursor| -> Vec<Seq> {
        db.store
            .history(c, cursor, 3)
            .unwrap()
            .iter()
            .map(|m| m.seq)
            .collect()
    };
    assert_eq!(page(HistoryCursor::Latest), seqs[7..]);
    assert_eq!(page(HistoryCursor::Before(seqs[7])), seqs[4..7]);
    assert_eq!(page(HistoryCursor::After(seqs[1])), seqs[2..5]);
    assert_eq!(page(HistoryCursor::After(seqs[9])), Vec::<Seq>::new());
}

#[test]
fn a_read_marker_only_moves_forward() {
    let db = temp_db();
    let (a, b) = (user(&db, "alice"), user(&db, "bob"));
    let c = conversation(&db, ConversationKind::Direct, &[a, b]).unwrap();
    let m1 = created(
        db.store
            .append(&message(c, a, "1"), Box::new(|_| {}))
            .unwrap(),
    );
    let m2 = created(
        db.store
            .append(&message(c, a, "2"), Box::new(|_| {}))
            .unwrap(),
    );
    assert_eq!(
        db.store
            .advance(c, b, m2.seq, Utc::now())
            .unwrap()
            .last_read_seq,
        m2.seq
    );
    assert_eq!(
        db.store
            .advance(c, b, m1.seq, Utc::now())
            .unwrap()
            .last_read_seq,
        m2.seq
    );
    assert!(matches!(
        db.store.advance(c, UserId::new(), m1.seq, Utc::now()),
        Err(StoreError::Missing)
    ));
}

#[test]
fn the_inbox_lists_recent_activity_first_with_last_message_and_unread_count() {
    let db = temp_db();
    let (a, b, c) = (user(&db, "alice"), user(&db, "bob"), user(&db, "carol"));
    let ab = conversation(&db, ConversationKind::Direct, &[a, b]).unwrap();
    let ac = conversation(&db, ConversationKind::Direct, &[a, c]).unwrap();
    created(
        db.store
            .append(&message(ac, c, "from carol"), Box::new(|_| {}))
            .unwrap(),
    );
    let last = created(
        db.store
            .append(&message(ab, b, "from bob"), Box::new(|_| {}))
            .unwrap(),
    );
    let inbox = db.store.inbox(a, Page::default()).unwrap();
    let order: Vec<ConversationId> = inbox.iter().map(|e| e.conversation.id).collect();
    assert_eq!(order, vec![ab, ac]);
    assert_eq!(inbox[0].last_message.as_ref().unwrap().id, last.id);
    assert_eq!(inbox[0].unread_count, 1);
    assert_eq!(
        db.store.inbox(b, Page::default()).unwrap()[0].unread_count,
        0
    );
}

#[test]
fn unread_counts_scan_only_messages_past_the_marker() {
    let db = temp_db();
    let (a, b) = (user(&db, "alice"), user(&db, "bob"));
    let c = conversation(&db, ConversationKind::Direct, &[a, b]).unwrap();
    let mut last = Seq::ZERO;
    for i in 0..2000 {
        last = created(
            db.store
                .append(&message(c, a, &format!("m{i}")), Box::new(|_| {}))
                .unwrap(),
        )
        .seq;
    }
    assert_eq!(db.store.unread_counts(b).unwrap(), vec![(c, 2000)]);
    db.store.advance(c, b, Seq(last.0 - 5), Utc::now()).unwrap();
    assert_eq!(db.store.unread_counts(b).unwrap(), vec![(c, 5)]);

    // The plan must be an index range scan from the marker, never a scan of all messages.
    #[derive(QueryableByName)]
    struct PlanRow {
        #[diesel(sql_type = Text)]
        detail: String,
    }
    let mut conn = db.store.database().conn().unwrap();
    let plan: Vec<PlanRow> = diesel::sql_query(format!("EXPLAIN QUERY PLAN {UNREAD_COUNTS_SQL}"))
        .bind::<Text, _>(b.to_string())
        .load(&mut conn)
        .unwrap();
    let plan: Vec<String> = plan.into_iter().map(|r| r.detail).collect();
    assert!(
        plan.iter()
            .any(|d| d.contains("messages_by_conversation (conversation_id=? AND seq>?)")),
        "unexpected plan: {plan:?}"
    );
    assert!(
        !plan.iter().any(|d| d.starts_with("SCAN m")),
        "unexpected plan: {plan:?}"
    );
}

#[test]
fn concurrent_appends_lose_nothing_and_never_share_a_seq() {
    let db = temp_db();
    let a = user(&db, "alice");
    let c = conversation(&db, ConversationKind::Group, &[a]).unwrap();
    let store = Arc::new(db.store.clone());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                (0..50)
                    .map(|i| {
                        created(
                            store
                                .append(&message(c, a, &format!("{t}-{i}")), Box::new(|_| {}))
                                .unwrap(),
                        )
                        .seq
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut seqs: Vec<Seq> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    seqs.sort();
    seqs.dedup();
    assert_eq!(seqs.len(), 400);
    assert_eq!(
        db.store
            .history(c, HistoryCursor::After(Seq::ZERO), 500)
            .unwrap()
            .len(),
        400
    );
}

#[test]
fn removing_a_member_hides_the_conversation_from_them() {
    let db = temp_db();
    let (a, b) = (user(&db, "alice"), user(&db, "bob"));
    let c = conversation(&db, ConversationKind::Group, &[a, b]).unwrap();
    assert!(db.store.remove_member(c, b, Utc::now()).unwrap());
    assert!(!db.store.remove_member(c, b, Utc::now()).unwrap());
    assert!(db.store.inbox(b, Page::default()).unwrap().is_empty());
    assert!(db.store.membership(c, b).unwrap().is_none());
    assert!(matches!(
        db.store.append(&message(c, b, "late"), Box::new(|_| {})),
        Err(StoreError::Missing)
    ));
}

#[test]
fn adding_members_skips_existing_ones_and_respects_the_cap() {
    let db = temp_db();
    let (a, b, c) = (user(&db, "alice"), user(&db, "bob"), user(&db, "carol"));
    let g = conversation(&db, ConversationKind::Group, &[a]).unwrap();
    assert_eq!(
        db.store
            .add_members(g, &[a, b], Role::Member, 10, Utc::now())
            .unwrap(),
        vec![b]
    );
    assert!(matches!(
        db.store.add_members(g, &[c], Role::Member, 2, Utc::now()),
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(db.store.members(g).unwrap().len(), 2);
}

#[test]
fn commit_hooks_run_in_seq_order_even_when_appends_are_committed_together() {
    let db = temp_db();
    let a = user(&db, "alice");
    let c = conversation(&db, ConversationKind::Group, &[a]).unwrap();
    let store = Arc::new(db.store.clone());
    let announced: Arc<std::sync::Mutex<Vec<Seq>>> = Arc::default();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (store, announced) = (store.clone(), announced.clone());
            std::thread::spawn(move || {
                for i in 0..50 {
                    let announced = announced.clone();
                    let hook = Box::new(move |outcome: &AppendOutcome| {
                        if let Appended::Created(m) = &outcome.appended {
                            announced.lock().unwrap().push(m.seq);
                        }
                    });
                    store
                        .append(&message(c, a, &format!("{t}-{i}")), hook)
                        .unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let announced = announced.lock().unwrap();
    assert_eq!(announced.len(), 400);
    assert!(
        announced.windows(2).all(|w| w[0] < w[1]),
        "hooks ran out of seq order"
    );
}

#[test]
fn members_of_several_conversations_come_back_grouped_in_the_order_asked() {
    let db = temp_db();
    let (a, b, c) = (user(&db, "alice"), user(&db, "bob"), user(&db, "carol"));
    let ab = conversation(&db, ConversationKind::Direct, &[a, b]).unwrap();
    let abc = conversation(&db, ConversationKind::Group, &[a, b, c]).unwrap();
    let ids = |members: &Vec<chat_domain::conversation::Member>| {
        let mut ids: Vec<UserId> = members.iter().map(|m| m.user_id).collect();
        ids.sort();
        ids
    };
    let grouped = db
        .store
        .members_of(&[abc, ab, ConversationId::new()])
        .unwrap();
    assert_eq!(grouped.len(), 3);
    let (mut two, mut three) = (vec![a, b], vec![a, b, c]);
    two.sort();
    three.sort();
    assert_eq!(ids(&grouped[0]), three);
    assert_eq!(ids(&grouped[1]), two);
    assert!(grouped[2].is_empty());
}

#[test]
fn appends_see_members_added_removed_or_changed_since_the_last_append() {
    let db = temp_db();
    let (a, b, c) = (user(&db, "alice"), user(&db, "bob"), user(&db, "carol"));
    let group = conversation(&db, ConversationKind::Group, &[a, b]).unwrap();
    // The commit thread now remembers the group's members...
    created(
        db.store
            .append(&message(group, a, "1"), Box::new(|_| {}))
            .unwrap(),
    );

    // ...and must forget them when they change.
    db.store
        .add_members(group, &[c], Role::Member, 10, Utc::now())
        .unwrap();
    let outcome = db
        .store
        .append(&message(group, c, "2"), Box::new(|_| {}))
        .unwrap();
    assert_eq!(outcome.members.len(), 3);

    db.store.set_role(group, c, Role::Admin).unwrap();
    let outcome = db
        .store
        .append(&message(group, a, "3"), Box::new(|_| {}))
        .unwrap();
    let carol = outcome.members.iter().find(|m| m.user_id == c).unwrap();
    assert_eq!(carol.role, Role::Admin);

    assert!(db.store.remove_member(group, b, Utc::now()).unwrap());
    assert!(matches!(
        db.store.append(&message(group, b, "4"), Box::new(|_| {})),
        Err(StoreError::Missing)
    ));
}

#[test]
fn submitted_appends_are_stored_and_answered_in_the_order_submitted() {
    let db = temp_db();
    let (a, b) = (user(&db, "alice"), user(&db, "bob"));
    let one = conversation(&db, ConversationKind::Group, &[a, b]).unwrap();
    let two = conversation(&db, ConversationKind::Direct, &[a, b]).unwrap();
    let (answers, answered) = std::sync::mpsc::channel();
    for i in 0..200 {
        let (c, sender) = if i % 3 == 0 { (two, b) } else { (one, a) };
        let answers = answers.clone();
        db.store.submit(
            message(c, sender, &format!("m{i}")),
            Box::new(move |outcome| answers.send((i, outcome)).unwrap()),
        );
    }
    drop(answers);
    let answered: Vec<_> = answered.iter().collect();
    let order: Vec<i32> = answered.iter().map(|(i, _)| *i).collect();
    assert_eq!(order, (0..200).collect::<Vec<_>>());
    let seqs: Vec<Seq> = answered
        .into_iter()
        .map(|(_, outcome)| created(outcome.unwrap()).seq)
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "seqs follow submission"
    );
}

#[test]
fn the_latest_page_kept_in_memory_stays_what_the_database_holds() {
    let db = temp_db();
    let (a, b) = (user(&db, "alice"), user(&db, "bob"));
    let c = conversation(&db, ConversationKind::Group, &[a, b]).unwrap();
    let from_database = |limit| -> Vec<Seq> {
        // `Before` a seq beyond every message reads the same page from the database.
        db.store
            .history(c, HistoryCursor::Before(Seq(i64::MAX)), limit)
            .unwrap()
            .iter()
            .map(|m| m.seq)
            .collect()
    };
    let latest = |limit| -> Vec<Seq> {
        db.store
            .history(c, HistoryCursor::Latest, limit)
            .unwrap()
            .iter()
            .map(|m| m.seq)
            .collect()
    };
    assert!(latest(3).is_empty());
    for round in 0..3 {
        for i in 0..4 {
            let sender = if i % 2 == 0 { a } else { b };
            created(
                db.store
                    .append(
                        &message(c, sender, &format!("r{round} m{i}")),
                        Box::new(|_| {}),
                    )
                    .unwrap(),
            );
        }
        // A read keeps the page; later appends extend it.
        for limit in [1, 3, 5, 50] {
            assert_eq!(
                latest(limit),
                from_database(limit),
                "round {round}, limit {limit}"
            );
        }
    }
}
