//! [`SessionStore`] over the `sessions` table: one row per login, holding the hash of its
//! current refresh token. A rotation locks the session's row (`FOR UPDATE`) before it reads
//! the hash, so of two concurrent redemptions of one token the second sees the first's
//! outcome.

use chat_domain::ports::{SessionStore, StoreResult};
use chat_domain::session::{NewSession, RefreshHash, Rotation, Session};
use chat_domain::{SessionId, UserId};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use crate::PgStore;
use crate::schema::sessions;

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions, check_for_backend(diesel::pg::Pg))]
struct SessionRow {
    id: Uuid,
    user_id: Uuid,
    refresh_hash: String,
    device: Option<String>,
    client_address: Option<String>,
    created_at: DateTime<Utc>,
    last_used_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    generation: i64,
    revoked: bool,
}

impl From<SessionRow> for Session {
    fn from(row: SessionRow) -> Self {
        Session {
            id: row.id.into(),
            user_id: row.user_id.into(),
            device: row.device,
            client_address: row.client_address,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
            expires_at: row.expires_at,
            generation: row.generation,
            revoked: row.revoked,
        }
    }
}

impl SessionStore for PgStore {
    fn open_session(&self, new: &NewSession) -> StoreResult<()> {
        let s = &new.session;
        self.write(|conn| {
            diesel::delete(sessions::table.filter(sessions::expires_at.lt(s.created_at)))
                .execute(conn)?;
            diesel::insert_into(sessions::table)
                .values(SessionRow {
                    id: s.id.as_uuid(),
                    user_id: s.user_id.as_uuid(),
                    refresh_hash: new.refresh.0.clone(),
                    device: s.device.clone(),
                    client_address: s.client_address.clone(),
                    created_at: s.created_at,
                    last_used_at: s.last_used_at,
                    expires_at: s.expires_at,
                    generation: s.generation,
                    revoked: s.revoked,
                })
                .execute(conn)?;
            Ok(())
        })
    }

    fn find_session(&self, session: SessionId) -> StoreResult<Option<Session>> {
        self.read(|conn| {
            Ok(sessions::table
                .find(session.as_uuid())
                .select(SessionRow::as_select())
                .first(conn)
                .optional()?
                .map(Session::from))
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
        let key = session.as_uuid();
        self.write(|conn| {
            let row = sessions::table
                .find(key)
                .select(SessionRow::as_select())
                .for_update()
                .first(conn)
                .optional()?;
            let Some(row) = row.filter(|r| !r.revoked && r.expires_at > now) else {
                return Ok(Rotation::Unknown);
            };
            if row.refresh_hash != presented.0 {
                diesel::update(sessions::table.find(key))
                    .set(sessions::revoked.eq(true))
                    .execute(conn)?;
                return Ok(Rotation::Reused(row.into()));
            }
            let rotated = diesel::update(
                sessions::table
                    .find(key)
                    .filter(sessions::refresh_hash.eq(&presented.0)),
            )
            .set((
                sessions::refresh_hash.eq(&next.0),
                sessions::last_used_at.eq(now),
                sessions::expires_at.eq(expires_at),
            ))
            .returning(SessionRow::as_returning())
            .get_result(conn)?;
            Ok(Rotation::Rotated(rotated.into()))
        })
    }

    fn sessions_of(&self, user: UserId, now: DateTime<Utc>) -> StoreResult<Vec<Session>> {
        self.read(|conn| {
            Ok(sessions::table
                .filter(sessions::user_id.eq(user.as_uuid()))
                .filter(sessions::revoked.eq(false))
                .filter(sessions::expires_at.gt(now))
                .order((sessions::last_used_at.desc(), sessions::id.desc()))
                .select(SessionRow::as_select())
                .load(conn)?
                .into_iter()
                .map(Session::from)
                .collect())
        })
    }

    fn end_session(&self, user: UserId, session: SessionId) -> StoreResult<bool> {
        self.write(|conn| {
            let ended = diesel::update(
                sessions::table
                    .find(session.as_uuid())
                    .filter(sessions::user_id.eq(user.as_uuid()))
                    .filter(sessions::revoked.eq(false)),
            )
            .set(sessions::revoked.eq(true))
            .execute(conn)?;
            Ok(ended > 0)
        })
    }

    fn end_sessions(&self, user: UserId, except: Option<SessionId>) -> StoreResult<Vec<SessionId>> {
        let except = except.map_or(Uuid::nil(), |s| s.as_uuid());
        self.write(|conn| {
            Ok(diesel::update(
                sessions::table
                    .filter(sessions::user_id.eq(user.as_uuid()))
                    .filter(sessions::revoked.eq(false))
                    .filter(sessions::id.ne(except)),
            )
            .set(sessions::revoked.eq(true))
            .returning(sessions::id)
            .get_results::<Uuid>(conn)?
            .into_iter()
            .map(SessionId::from)
            .collect())
        })
    }
}
