//! [`BlockStore`] over the `blocks` table.

use chat_domain::UserId;
use chat_domain::block::Block;
use chat_domain::conversation::Member;
use chat_domain::ports::{BlockStore, StoreResult};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::SqliteStore;
use crate::error::StorageResult;
use crate::models::{id, ts, utc};
use crate::schema::blocks;

impl BlockStore for SqliteStore {
    fn block(&self, blocker: UserId, blocked: UserId, at: DateTime<Utc>) -> StoreResult<bool> {
        // A block closes a direct conversation to the blocked user's messages, which the
        // commit thread learns of as it learns of a membership change.
        self.write_membership(|conn| {
            let inserted = diesel::insert_or_ignore_into(blocks::table)
                .values((
                    blocks::blocker_id.eq(blocker.to_string()),
                    blocks::blocked_id.eq(blocked.to_string()),
                    blocks::blocked_at.eq(ts(at)),
                ))
                .execute(conn)?;
            Ok(inserted > 0)
        })
    }

    fn unblock(&self, blocker: UserId, blocked: UserId) -> StoreResult<bool> {
        self.write_membership(|conn| {
            let deleted =
                diesel::delete(blocks::table.find((blocker.to_string(), blocked.to_string())))
                    .execute(conn)?;
            Ok(deleted > 0)
        })
    }

    fn blocked_by(&self, blocker: UserId) -> StoreResult<Vec<Block>> {
        self.read(|conn| {
            let rows: Vec<(String, NaiveDateTime)> = blocks::table
                .filter(blocks::blocker_id.eq(blocker.to_string()))
                .order((blocks::blocked_at.desc(), blocks::blocked_id.desc()))
                .select((blocks::blocked_id, blocks::blocked_at))
                .load(conn)?;
            rows.into_iter()
                .map(|(user, at)| {
                    Ok(Block {
                        user_id: id("user id", &user)?,
                        blocked_at: utc(at),
                    })
                })
                .collect()
        })
    }

    fn blockers_of(&self, user: UserId, among: &[UserId]) -> StoreResult<Vec<UserId>> {
        if among.is_empty() {
            return Ok(Vec::new());
        }
        let among: Vec<String> = among.iter().map(ToString::to_string).collect();
        self.read(|conn| {
            let mut found = Vec::new();
            // SQLite caps bound parameters per statement; stay well below it.
            for chunk in among.chunks(500) {
                let rows: Vec<String> = blocks::table
                    .filter(blocks::blocked_id.eq(user.to_string()))
                    .filter(blocks::blocker_id.eq_any(chunk))
                    .select(blocks::blocker_id)
                    .load(conn)?;
                for row in rows {
                    found.push(id("user id", &row)?);
                }
            }
            Ok(found)
        })
    }
}

/// Those of a direct conversation's `members` whom another member has blocked: one lookup
/// on the primary key, made when an append first meets the conversation.
pub(crate) fn blocked_among(
    conn: &mut SqliteConnection,
    members: &[Member],
) -> StorageResult<Vec<UserId>> {
    let ids: Vec<String> = members.iter().map(|m| m.user_id.to_string()).collect();
    let rows: Vec<(String, String)> = blocks::table
        .filter(blocks::blocker_id.eq_any(&ids))
        .filter(blocks::blocked_id.eq_any(&ids))
        .select((blocks::blocker_id, blocks::blocked_id))
        .load(conn)?;
    rows.into_iter()
        .filter(|(blocker, blocked)| blocker != blocked)
        .map(|(_, blocked)| id("user id", &blocked))
        .collect()
}
