//! Tests of what is SQLite's own in the store: migrations, the unread-count query plan and
//! the latest page kept in memory. The rules every storage port must keep are the contract
//! suite's (`chat_domain::contract`), run here against a fresh SQLite file per rule.

use chat_domain::contract::Fixture;
use chat_domain::message::{HistoryCursor, Seq};
use chat_domain::ports::{MessageStore, ReadReceiptStore};
use diesel::prelude::*;
use diesel::sql_types::Text;

use crate::read_receipts::UNREAD_COUNTS_SQL;
use crate::test_support::temp_db;

mod contract {
    chat_domain::contract_tests!(crate::test_support::temp_db());
}

#[test]
fn migrations_apply_once_to_a_fresh_database() {
    let db = temp_db();
    assert_eq!(db.store.database().migrate().unwrap(), 0);
}

#[test]
fn unread_counts_scan_only_messages_past_the_marker() {
    let db = temp_db();
    let f = Fixture::new(&*db);
    let (a, b) = (f.user("alice"), f.user("bob"));
    let c = f.direct(a, b);
    let mut last = Seq::ZERO;
    for i in 0..200 {
        last = f.send(c, a, &format!("m{i}")).seq;
    }
    db.store.advance(c, b, Seq(last.0 - 5), f.now()).unwrap();
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
fn the_latest_page_kept_in_memory_stays_what_the_database_holds() {
    let db = temp_db();
    let f = Fixture::new(&*db);
    let (a, b) = (f.user("alice"), f.user("bob"));
    let c = f.group(&[a, b]);
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
            f.send(c, sender, &format!("r{round} m{i}"));
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

#[test]
fn a_change_takes_its_seq_from_the_counter_new_messages_take_theirs_from() {
    let db = temp_db();
    let mut conn = db.store.database().conn().unwrap();
    assert_eq!(
        crate::seq::take(&mut conn).unwrap(),
        Seq(1),
        "before any message"
    );
    let f = Fixture::new(&*db);
    let (a, b) = (f.user("alice"), f.user("bob"));
    let c = f.direct(a, b); // a change too: the conversation's creation takes seq 2
    assert_eq!(f.send(c, a, "after a change").seq, Seq(3));
    assert_eq!(crate::seq::take(&mut conn).unwrap(), Seq(4));
    assert_eq!(f.send(c, b, "after another").seq, Seq(5));
    assert_eq!(db.store.latest_seq().unwrap(), Seq(5));
}
