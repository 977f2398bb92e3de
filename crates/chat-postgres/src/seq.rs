//! The one sequence every change takes its position from: the row of `message_seq`.
//!
//! New messages take their seqs there (see [`crate::messages`] for why the row's lock gives
//! commit order across nodes), and so does every other change (an edit, a reaction, a moved
//! marker): messages and changes share one order, and "everything after seq N" covers both.

use chat_domain::message::Seq;
use diesel::pg::PgConnection;
use diesel::prelude::*;

use crate::error::StorageResult;
use crate::schema::message_seq;

/// Takes the next seq, locking the counter until the caller's transaction ends.
pub(crate) fn take(conn: &mut PgConnection) -> StorageResult<Seq> {
    let last: i64 = diesel::update(message_seq::table)
        .set(message_seq::last.eq(message_seq::last + 1))
        .returning(message_seq::last)
        .get_result(conn)?;
    Ok(Seq(last))
}

/// Takes `n` seqs at once (n ≥ 1): the last of them; the others are the `n - 1` before it.
pub(crate) fn take_many(conn: &mut PgConnection, n: usize) -> StorageResult<Seq> {
    let n = i64::try_from(n).unwrap_or(i64::MAX);
    let last: i64 = diesel::update(message_seq::table)
        .set(message_seq::last.eq(message_seq::last + n))
        .returning(message_seq::last)
        .get_result(conn)?;
    Ok(Seq(last))
}

/// The highest seq committed so far; [`Seq::ZERO`] before the first. The counter's lock is
/// held until each taker commits, so every seq at or below it is committed too.
pub(crate) fn latest(conn: &mut PgConnection) -> StorageResult<Seq> {
    let last: i64 = message_seq::table.select(message_seq::last).first(conn)?;
    Ok(Seq(last))
}
