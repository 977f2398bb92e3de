//! [`AdminStore`] over the `server_admins` and `admin_audit` tables, and reactivation of
//! accounts over `users`.

use chat_domain::admin::{AuditEntry, AuditRecord};
use chat_domain::ports::{AdminStore, StoreResult};
use chat_domain::user::User;
use chat_domain::{StoreError, UserId};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use crate::PgStore;
use crate::models::UserRow;
use crate::schema::{admin_audit, server_admins, users};

type AuditRow = (i64, Option<Uuid>, String, String, String, DateTime<Utc>);

fn record_of((id, actor, action, target, detail, at): AuditRow) -> AuditRecord {
    AuditRecord {
        id,
        actor: actor.map(UserId::from),
        action,
        target,
        detail,
        at,
    }
}

impl AdminStore for PgStore {
    fn is_admin(&self, user: UserId) -> StoreResult<bool> {
        self.read(|conn| {
            Ok(diesel::select(diesel::dsl::exists(
                server_admins::table.find(Uuid::from(user)),
            ))
            .get_result(conn)?)
        })
    }

    fn set_admin(&self, user: UserId, admin: bool) -> StoreResult<bool> {
        self.write(|conn| {
            let exists: bool =
                diesel::select(diesel::dsl::exists(users::table.find(Uuid::from(user))))
                    .get_result(conn)?;
            if !exists {
                return Ok(Err(StoreError::Missing));
            }
            let changed = if admin {
                diesel::insert_into(server_admins::table)
                    .values(server_admins::user_id.eq(Uuid::from(user)))
                    .on_conflict_do_nothing()
                    .execute(conn)?
            } else {
                diesel::delete(server_admins::table.find(Uuid::from(user))).execute(conn)?
            };
            Ok(Ok(changed > 0))
        })?
    }

    fn record(&self, entry: &AuditEntry) -> StoreResult<AuditRecord> {
        self.write(|conn| {
            let row: AuditRow = diesel::insert_into(admin_audit::table)
                .values((
                    admin_audit::actor_id.eq(entry.actor.map(Uuid::from)),
                    admin_audit::action.eq(entry.action),
                    admin_audit::target.eq(&entry.target),
                    admin_audit::detail.eq(&entry.detail),
                    admin_audit::at.eq(entry.at),
                ))
                .returning((
                    admin_audit::id,
                    admin_audit::actor_id,
                    admin_audit::action,
                    admin_audit::target,
                    admin_audit::detail,
                    admin_audit::at,
                ))
                .get_result(conn)?;
            Ok(record_of(row))
        })
    }

    fn audit_log(&self, before: Option<i64>, limit: u32) -> StoreResult<Vec<AuditRecord>> {
        self.read(|conn| {
            let mut query = admin_audit::table
                .order(admin_audit::id.desc())
                .limit(i64::from(limit))
                .select((
                    admin_audit::id,
                    admin_audit::actor_id,
                    admin_audit::action,
                    admin_audit::target,
                    admin_audit::detail,
                    admin_audit::at,
                ))
                .into_boxed();
            if let Some(before) = before {
                query = query.filter(admin_audit::id.lt(before));
            }
            let rows: Vec<AuditRow> = query.load(conn)?;
            Ok(rows.into_iter().map(record_of).collect())
        })
    }

    fn reactivate(&self, user: UserId, at: DateTime<Utc>) -> StoreResult<(User, bool)> {
        self.write(|conn| {
            let Some(row) = users::table
                .find(Uuid::from(user))
                .select(UserRow::as_select())
                .for_update()
                .first(conn)
                .optional()?
            else {
                return Ok(Err(StoreError::Missing));
            };
            if row.is_active {
                return Ok(Ok((User::try_from(row)?, false)));
            }
            let row = diesel::update(users::table.find(Uuid::from(user)))
                .set((users::is_active.eq(true), users::updated_at.eq(at)))
                .returning(UserRow::as_returning())
                .get_result(conn)?;
            Ok(Ok((User::try_from(row)?, true)))
        })?
    }
}
