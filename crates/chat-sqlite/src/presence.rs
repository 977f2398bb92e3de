//! [`PresenceStore`] over the `user_presence` table, and who shares a conversation with
//! whom from `conversation_members`.

use chat_domain::StoreError;
use chat_domain::UserId;
use chat_domain::ports::{PresenceStore, StoreResult};
use chat_domain::presence::LastSeen;
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::Text;

use crate::SqliteStore;
use crate::error::StorageResult;
use crate::models::{id, ts, utc};
use crate::schema::{user_presence, users};

/// The other members of every conversation `$1` is in.
const CONTACTS: &str = "\
SELECT DISTINCT o.user_id AS user_id
FROM conversation_members m
JOIN conversation_members o ON o.conversation_id = m.conversation_id
WHERE m.user_id = ?1 AND o.user_id <> ?1";

#[derive(QueryableByName)]
struct Contact {
    #[diesel(sql_type = Text)]
    user_id: String,
}

fn exists(conn: &mut SqliteConnection, user: UserId) -> StorageResult<bool> {
    Ok(
        diesel::select(diesel::dsl::exists(users::table.find(user.to_string())))
            .get_result(conn)?,
    )
}

fn contacts(conn: &mut SqliteConnection, user: UserId) -> StorageResult<Vec<UserId>> {
    diesel::sql_query(CONTACTS)
        .bind::<Text, _>(user.to_string())
        .load::<Contact>(conn)?
        .iter()
        .map(|c| id("user_id", &c.user_id))
        .collect()
}

impl PresenceStore for SqliteStore {
    fn record_last_seen(&self, user: UserId, at: DateTime<Utc>) -> StoreResult<()> {
        self.write(|conn| {
            if !exists(conn, user)? {
                return Ok(false);
            }
            diesel::insert_into(user_presence::table)
                .values((
                    user_presence::user_id.eq(user.to_string()),
                    user_presence::last_seen_at.eq(Some(ts(at))),
                ))
                .on_conflict(user_presence::user_id)
                .do_update()
                .set(user_presence::last_seen_at.eq(Some(ts(at))))
                .execute(conn)?;
            Ok(true)
        })?
        .then_some(())
        .ok_or(StoreError::Missing)
    }

    fn set_hide_last_seen(&self, user: UserId, hide: bool) -> StoreResult<()> {
        self.write(|conn| {
            if !exists(conn, user)? {
                return Ok(false);
            }
            diesel::insert_into(user_presence::table)
                .values((
                    user_presence::user_id.eq(user.to_string()),
                    user_presence::hide_last_seen.eq(hide),
                ))
                .on_conflict(user_presence::user_id)
                .do_update()
                .set(user_presence::hide_last_seen.eq(hide))
                .execute(conn)?;
            Ok(true)
        })?
        .then_some(())
        .ok_or(StoreError::Missing)
    }

    fn last_seen(&self, ids: &[UserId]) -> StoreResult<Vec<LastSeen>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ids.iter().map(ToString::to_string).collect();
        self.read(|conn| {
            let rows: Vec<(String, Option<NaiveDateTime>, Option<bool>)> = users::table
                .left_join(user_presence::table)
                .filter(users::id.eq_any(&keys))
                .select((
                    users::id,
                    user_presence::last_seen_at.nullable(),
                    user_presence::hide_last_seen.nullable(),
                ))
                .load(conn)?;
            rows.into_iter()
                .map(|(user, last_seen_at, hide)| {
                    Ok(LastSeen {
                        user_id: id("user_id", &user)?,
                        last_seen_at: last_seen_at.map(utc),
                        hide_last_seen: hide.unwrap_or(false),
                    })
                })
                .collect()
        })
    }

    fn contacts(&self, user: UserId) -> StoreResult<Vec<UserId>> {
        self.read(|conn| contacts(conn, user))
    }

    fn contacts_among(&self, user: UserId, among: &[UserId]) -> StoreResult<Vec<UserId>> {
        if among.is_empty() {
            return Ok(Vec::new());
        }
        let contacts = self.read(|conn| contacts(conn, user))?;
        Ok(among
            .iter()
            .copied()
            .filter(|u| contacts.contains(u))
            .collect())
    }
}
