//! Tests of what is SQLite's own in the store: migrations, the unread-count query plan and
//! the latest page kept in memory. The rules every storage port must keep are the contract
//! suite's (`chat_domain::contract`), run here against a fresh SQLite file per rule.

use chat_domain::contract::Fixture;
use chat_domain::message::{Emoji, HistoryCursor, Marked, Seq};
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

#[test]
fn a_message_deleted_for_everyone_is_gone_from_the_database_files_after_a_checkpoint() {
    let db = temp_db();
    let f = Fixture::new(&*db);
    let (a, b) = (f.user("alice"), f.user("bob"));
    let c = f.direct(a, b);
    let marker = format!("purge-marker-{}", uuid::Uuid::new_v4().simple());
    f.send(c, a, "before");
    // The marker sits in the middle of a long text: an updated row's new, shorter cell may be
    // written over the tail of the old one, but not over all of it.
    let secret = f.send(
        c,
        a,
        &format!("the secret is {marker}, {}", "and it goes on. ".repeat(20)),
    );
    f.send(c, b, "after");
    let files = || -> Vec<u8> {
        let mut bytes = std::fs::read(db.path()).unwrap();
        if let Ok(log) = std::fs::read(db.path().with_extension("db-wal")) {
            bytes.extend(log);
        }
        bytes
    };
    let holds_marker = |bytes: &[u8]| {
        bytes
            .windows(marker.len())
            .any(|window| window == marker.as_bytes())
    };
    db.store.database().checkpoint().unwrap();
    assert!(
        holds_marker(&files()),
        "the message was written to the file"
    );

    // The latest page is now kept in memory: the delete must reach that copy too.
    assert_eq!(
        db.store
            .history(c, HistoryCursor::Latest, 10)
            .unwrap()
            .len(),
        3
    );
    let deleted = db.store.delete(secret.id, a, f.now(), &mut |_| {}).unwrap();
    assert!(deleted.changed);
    db.store.database().checkpoint().unwrap();
    assert!(
        !holds_marker(&files()),
        "the deleted content is still in the database file or its log"
    );
    // The other messages are intact, in the page kept in memory as in the database.
    let texts: Vec<Option<String>> = db
        .store
        .history(c, HistoryCursor::Latest, 10)
        .unwrap()
        .iter()
        .map(|m| m.text().map(str::to_owned))
        .collect();
    assert_eq!(
        texts,
        vec![Some("before".into()), None, Some("after".into())]
    );
    assert_eq!(
        db.store
            .history(c, HistoryCursor::Before(Seq(i64::MAX)), 10)
            .unwrap(),
        db.store.history(c, HistoryCursor::Latest, 10).unwrap()
    );
}

#[test]
fn a_reaction_or_pin_shows_in_the_latest_page_kept_in_memory() {
    let db = temp_db();
    let f = Fixture::new(&*db);
    let (a, b) = (f.user("alice"), f.user("bob"));
    let c = f.direct(a, b);
    let m = f.send(c, a, "hi");
    let latest = || db.store.history(c, HistoryCursor::Latest, 10).unwrap();
    assert!(latest()[0].reactions.is_empty(), "kept without reactions");
    let thumbs = Emoji::parse("👍").unwrap();
    db.store.react(m.id, b, &thumbs, 20, f.now()).unwrap();
    assert_eq!(latest()[0].reactions[0].user_ids, [b]);
    db.store.pin(c, m.id, b, 50, f.now()).unwrap();
    assert!(latest()[0].pin.is_some());
    db.store.unreact(m.id, b, &thumbs).unwrap();
    assert!(latest()[0].reactions.is_empty());
}

#[test]
fn a_message_deleted_for_everyone_takes_no_reaction_or_pin_but_loses_them() {
    use crate::schema::messages;
    let db = temp_db();
    let f = Fixture::new(&*db);
    let (a, b) = (f.user("alice"), f.user("bob"));
    let c = f.direct(a, b);
    let m = f.send(c, a, "hi");
    let thumbs = Emoji::parse("👍").unwrap();
    db.store.react(m.id, b, &thumbs, 20, f.now()).unwrap();
    let mut conn = db.store.database().conn().unwrap();
    diesel::update(messages::table.filter(messages::id.eq(m.id.to_string())))
        .set(messages::deleted_at.eq(crate::models::ts(f.now())))
        .execute(&mut conn)
        .unwrap();
    let party = Emoji::parse("🎉").unwrap();
    assert_eq!(
        db.store.react(m.id, a, &party, 20, f.now()).unwrap(),
        Marked::MessageDeleted
    );
    assert_eq!(
        db.store.pin(c, m.id, a, 50, f.now()).unwrap(),
        Marked::MessageDeleted
    );
    // Taking a reaction back stays possible.
    assert!(matches!(
        db.store.unreact(m.id, b, &thumbs).unwrap(),
        Marked::Changed { count: 0, .. }
    ));
}

/// `PRAGMA integrity_check`'s answer, which checks the search index's structure too (the
/// index is contentless: what it holds is checked by [`indexed`]).
fn integrity(db: &crate::test_support::TempDb) -> Vec<String> {
    #[derive(QueryableByName)]
    struct Check {
        #[diesel(sql_type = Text)]
        integrity_check: String,
    }
    let rows: Vec<Check> = diesel::sql_query("PRAGMA integrity_check")
        .load(&mut *db.store.database().conn().unwrap())
        .unwrap();
    rows.into_iter().map(|r| r.integrity_check).collect()
}

#[test]
fn the_search_index_stays_in_step_with_sends_edits_and_deletes() {
    let db = temp_db();
    let f = Fixture::new(&*db);
    let (a, b) = (f.user("alice"), f.user("bob"));
    let c = f.direct(a, b);
    let kept = f.send(c, a, "alpha kept");
    assert_eq!(integrity(&db), ["ok"], "after a send");
    let edited = f.send(c, a, "beta before");
    let content = chat_domain::message::MessageContent::parse("gamma after").unwrap();
    db.store
        .edit(edited.id, a, &content, f.now(), &mut |_| {})
        .unwrap();
    assert_eq!(integrity(&db), ["ok"], "after an edit");
    let deleted = f.send(c, a, "delta gone");
    db.store
        .delete(deleted.id, a, f.now(), &mut |_| {})
        .unwrap();
    assert_eq!(integrity(&db), ["ok"], "after a delete");
    assert_eq!(indexed(&db, "alpha"), [kept.seq.0]);
    assert_eq!(
        indexed(&db, "beta"),
        Vec::<i64>::new(),
        "old words are gone"
    );
    assert_eq!(indexed(&db, "gamma"), [edited.seq.0]);
    assert_eq!(
        indexed(&db, "delta"),
        Vec::<i64>::new(),
        "a deleted message is gone"
    );
    let conversation = c.to_string();
    assert_eq!(
        indexed(
            &db,
            &format!("{{conversation}} : \"{}\"", &conversation[24..])
        ),
        [kept.seq.0, edited.seq.0],
        "each message is indexed under its conversation's token"
    );
}

/// The seqs the search index holds for an FTS5 query, ascending.
fn indexed(db: &crate::test_support::TempDb, fts: &str) -> Vec<i64> {
    #[derive(QueryableByName)]
    struct Hit {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        rowid: i64,
    }
    let hits: Vec<Hit> = diesel::sql_query(
        "SELECT rowid FROM messages_search WHERE messages_search MATCH ? ORDER BY rowid",
    )
    .bind::<Text, _>(fts)
    .load(&mut *db.store.database().conn().unwrap())
    .unwrap();
    hits.into_iter().map(|h| h.rowid).collect()
}
