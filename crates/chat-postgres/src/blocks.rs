//! [`BlockStore`] over the `blocks` table.

use chat_domain::UserId;
use chat_domain::block::Block;
use chat_domain::ports::{BlockStore, StoreResult};
use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use uuid::Uuid;

use crate::PgStore;
use crate::error::StorageResult;
use crate::schema::blocks;

impl BlockStore for PgStore {
    fn block(&self, blocker: UserId, blocked: UserId, at: DateTime<Utc>) -> StoreResult<bool> {
        self.write(|conn| {
            let inserted = diesel::insert_into(blocks::table)
                .values((
                    blocks::blocker_id.eq(Uuid::from(blocker)),
                    blocks::blocked_id.eq(Uuid::from(blocked)),
                    blocks::blocked_at.eq(at),
                ))
                .on_conflict_do_nothing()
                .execute(conn)?;
            Ok(inserted > 0)
        })
    }

    fn unblock(&self, blocker: UserId, blocked: UserId) -> StoreResult<bool> {
        self.write(|conn| {
            let deleted =
                diesel::delete(blocks::table.find((Uuid::from(blocker), Uuid::from(blocked))))
                    .execute(conn)?;
            Ok(deleted > 0)
        })
    }

    fn blocked_by(&self, blocker: UserId) -> StoreResult<Vec<Block>> {
        self.read(|conn| {
            let rows: Vec<(Uuid, DateTime<Utc>)> = blocks::table
                .filter(blocks::blocker_id.eq(Uuid::from(blocker)))
                .order((blocks::blocked_at.desc(), blocks::blocked_id.desc()))
                .select((blocks::blocked_id, blocks::blocked_at))
                .load(conn)?;
            Ok(rows
                .into_iter()
                .map(|(user, blocked_at)| Block {
                    user_id: user.into(),
                    blocked_at,
                })
                .collect())
        })
    }

    fn blockers_of(&self, user: UserId, among: &[UserId]) -> StoreResult<Vec<UserId>> {
        if among.is_empty() {
            return Ok(Vec::new());
        }
        let among: Vec<Uuid> = among.iter().map(|&u| u.into()).collect();
        self.read(|conn| {
            let rows: Vec<Uuid> = blocks::table
                .filter(blocks::blocked_id.eq(Uuid::from(user)))
                .filter(blocks::blocker_id.eq_any(&among))
                .select(blocks::blocker_id)
                .load(conn)?;
            Ok(rows.into_iter().map(UserId::from).collect())
        })
    }
}

/// The blocks among `users`, as `(blocker, blocked)`: one lookup on the primary key.
pub(crate) fn between(conn: &mut PgConnection, users: &[Uuid]) -> StorageResult<Vec<(Uuid, Uuid)>> {
    if users.is_empty() {
        return Ok(Vec::new());
    }
    Ok(blocks::table
        .filter(blocks::blocker_id.eq_any(users))
        .filter(blocks::blocked_id.eq_any(users))
        .select((blocks::blocker_id, blocks::blocked_id))
        .load(conn)?)
}
