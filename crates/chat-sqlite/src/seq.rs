//! The one sequence every change takes its position from.
//!
//! Messages get their seq from `messages`' `AUTOINCREMENT`, whose counter is the `messages`
//! row of SQLite's own `sqlite_sequence` table. A change that is not a new message (an edit,
//! a reaction, a moved marker) takes its seq from the same row, so messages and changes share
//! one order and "everything after seq N" covers both. SQLite documents `sqlite_sequence` as
//! an ordinary table that may be updated, and `AUTOINCREMENT` always goes past its value.

use chat_domain::message::Seq;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel::sqlite::SqliteConnection;

use crate::error::StorageResult;

#[derive(QueryableByName)]
struct Counter {
    #[diesel(sql_type = BigInt)]
    seq: i64,
}

/// Takes the next seq, inside the caller's write transaction.
pub(crate) fn take(conn: &mut SqliteConnection) -> StorageResult<Seq> {
    // The row exists once a message was ever stored; before that, it starts at zero.
    diesel::sql_query(
        "INSERT INTO sqlite_sequence (name, seq) SELECT 'messages', 0 \
         WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'messages')",
    )
    .execute(conn)?;
    let counter: Counter = diesel::sql_query(
        "UPDATE sqlite_sequence SET seq = seq + 1 WHERE name = 'messages' RETURNING seq",
    )
    .get_result(conn)?;
    Ok(Seq(counter.seq))
}

/// The highest seq handed out so far; [`Seq::ZERO`] before the first.
pub(crate) fn latest(conn: &mut SqliteConnection) -> StorageResult<Seq> {
    let counter: Option<Counter> =
        diesel::sql_query("SELECT seq FROM sqlite_sequence WHERE name = 'messages'")
            .get_result(conn)
            .optional()?;
    Ok(Seq(counter.map_or(0, |c| c.seq)))
}
