//! [`SessionStore`] over the `sessions` table: one row per login, holding the hash of its
//! current refresh token. Every method is one write transaction (the single writer makes
//! each atomic), so a rotation reads and replaces the hash with nobody in between.

use chat_domain::SessionId;
use chat_domain::UserId;
use chat_domain::ports::{SessionStore, StoreResult};
use chat_domain::session::{NewSession, RefreshHash, Rotation, Session};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::SqliteStore;
use crate::error::StorageResult;
use crate::models::{id, ts, utc};
use crate::schema::sessions;

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions, check_for_backend(diesel::sqlite::Sqlite))]
struct SessionRow {
    id: String,
    user_id: String,
    refresh_hash: String,
    device: Option<String>,
    client_address: Option<String>,
    created_at: NaiveDateTime,
    last_used_at: NaiveDateTime,
    expires_at: NaiveDateTime,
    generation: i64,
    revoked: bool,
}

impl SessionRow {
    fn into_session(self) -> StorageResult<Session> {
        Ok(Session {
            id: id("session id", &self.id)?,
            user_id: id("session user id", &self.user_id)?,
            device: self.device,
            client_address: self.client_address,
            created_at: utc(self.created_at),
            last_used_at: utc(self.last_used_at),
            expires_at: utc(self.expires_at),
            generation: self.generation,
            revoked: self.revoked,
        })
    }
}

fn find(conn: &mut SqliteConnection, session: SessionId) -> StorageResult<Option<SessionRow>> {
    Ok(sessions::table
        .find(session.to_string())
        .select(SessionRow::as_select())
        .first(conn)
        .optional()?)
}

impl SessionStore for SqliteStore {
    fn open_session(&self, new: &NewSession) -> StoreResult<()> {
        let s = &new.session;
        self.write(|conn| {
            diesel::delete(sessions::table.filter(sessions::expires_at.lt(ts(s.created_at))))
                .execute(conn)?;
            diesel::insert_into(sessions::table)
                .values(SessionRow {
                    id: s.id.to_string(),
                    user_id: s.user_id.to_string(),
                    refresh_hash: new.refresh.0.clone(),
                    device: s.device.clone(),
                    client_address: s.client_address.clone(),
                    created_at: ts(s.created_at),
                    last_used_at: ts(s.last_used_at),
                    expires_at: ts(s.expires_at),
                    generation: s.generation,
                    revoked: s.revoked,
                })
                .execute(conn)?;
            Ok(())
        })
    }

    fn find_session(&self, session: SessionId) -> StoreResult<Option<Session>> {
        self.read(|conn| {
            find(conn, session)?
                .map(SessionRow::into_session)
                .transpose()
        })
    }

    fn rotate(
        &self,
        session: SessionId,
        presented: &RefreshHash,
        next: &RefreshHash,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<Rotation> {
        self.write(|conn| {
            let Some(row) = find(conn, session)? else {
                return Ok(Rotation::Unknown);
            };
            if row.revoked || row.expires_at <= ts(now) {
                return Ok(Rotation::Unknown);
            }
            let key = session.to_string();
            if row.refresh_hash != presented.0 {
                diesel::update(sessions::table.find(&key))
                    .set(sessions::revoked.eq(true))
                    .execute(conn)?;
                return Ok(Rotation::Reused(row.into_session()?));
            }
            let rotated = diesel::update(
                sessions::table
                    .find(&key)
                    .filter(sessions::refresh_hash.eq(&presented.0)),
            )
            .set((
                sessions::refresh_hash.eq(&next.0),
                sessions::last_used_at.eq(ts(now)),
                sessions::expires_at.eq(ts(expires_at)),
            ))
            .returning(SessionRow::as_returning())
            .get_result(conn)?;
            Ok(Rotation::Rotated(rotated.into_session()?))
        })
    }

    fn sessions_of(&self, user: UserId, now: DateTime<Utc>) -> StoreResult<Vec<Session>> {
        self.read(|conn| {
            sessions::table
                .filter(sessions::user_id.eq(user.to_string()))
                .filter(sessions::revoked.eq(false))
                .filter(sessions::expires_at.gt(ts(now)))
                .order((sessions::last_used_at.desc(), sessions::id.desc()))
                .select(SessionRow::as_select())
                .load(conn)?
                .into_iter()
                .map(SessionRow::into_session)
                .collect()
        })
    }

    fn end_session(&self, user: UserId, session: SessionId) -> StoreResult<bool> {
        self.write(|conn| {
            let ended = diesel::update(
                sessions::table
                    .find(session.to_string())
                    .filter(sessions::user_id.eq(user.to_string()))
                    .filter(sessions::revoked.eq(false)),
            )
            .set(sessions::revoked.eq(true))
            .execute(conn)?;
            Ok(ended > 0)
        })
    }

    fn end_sessions(&self, user: UserId, except: Option<SessionId>) -> StoreResult<Vec<SessionId>> {
        let except = except.map(|s| s.to_string()).unwrap_or_default();
        self.write(|conn| {
            diesel::update(
                sessions::table
                    .filter(sessions::user_id.eq(user.to_string()))
                    .filter(sessions::revoked.eq(false))
                    .filter(sessions::id.ne(&except)),
            )
            .set(sessions::revoked.eq(true))
            .returning(sessions::id)
            .get_results::<String>(conn)?
            .iter()
            .map(|raw| id("session id", raw))
            .collect()
        })
    }
}
