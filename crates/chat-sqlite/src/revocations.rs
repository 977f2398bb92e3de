//! [`TokenRevocations`] over the `revoked_tokens` table.

use chat_domain::ports::{StoreResult, TokenRevocations};
use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::SqliteStore;
use crate::models::ts;
use crate::schema::revoked_tokens;

impl TokenRevocations for SqliteStore {
    fn revoke(&self, token_id: &str, expires_at: DateTime<Utc>) -> StoreResult<()> {
        self.write(|conn| {
            // Entries for tokens that have expired by now can never matter again.
            diesel::delete(
                revoked_tokens::table.filter(revoked_tokens::expires_at.lt(ts(Utc::now()))),
            )
            .execute(conn)?;
            diesel::insert_or_ignore_into(revoked_tokens::table)
                .values((
                    revoked_tokens::token_id.eq(token_id),
                    revoked_tokens::expires_at.eq(ts(expires_at)),
                ))
                .execute(conn)?;
            Ok(())
        })
    }

    fn is_revoked(&self, token_id: &str) -> StoreResult<bool> {
        self.read(|conn| {
            Ok(
                diesel::select(diesel::dsl::exists(revoked_tokens::table.find(token_id)))
                    .get_result(conn)?,
            )
        })
    }
}
