//! Server settings that must outlive a restart, agreed on by every node.

use diesel::prelude::*;

use crate::error::StorageResult;
use crate::pool::PgDatabase;
use crate::schema::server_settings;

impl PgDatabase {
    /// The stored value for `key`, or `make()` stored and returned if there is none yet.
    /// Returns the value and whether it was just created. Nodes racing to create it agree on
    /// one value: the insert that loses (`ON CONFLICT DO NOTHING`) reads the winner's.
    pub fn setting_or_insert(
        &self,
        key: &str,
        make: impl FnOnce() -> String,
    ) -> StorageResult<(String, bool)> {
        let mut conn = self.conn()?;
        let stored = |conn: &mut PgConnection| {
            server_settings::table
                .find(key)
                .select(server_settings::value)
                .first::<String>(conn)
                .optional()
        };
        if let Some(value) = stored(&mut conn)? {
            return Ok((value, false));
        }
        let value = make();
        let inserted = diesel::insert_into(server_settings::table)
            .values((
                server_settings::key.eq(key),
                server_settings::value.eq(&value),
            ))
            .on_conflict_do_nothing()
            .execute(&mut conn)?;
        if inserted == 1 {
            return Ok((value, true));
        }
        // Another node stored one between the read and the insert; the row is committed (the
        // insert waited for it), so this read finds it.
        let winner = stored(&mut conn)?.ok_or_else(|| {
            crate::error::StorageError::corrupt("server setting", format!("{key} vanished"))
        })?;
        Ok((winner, false))
    }
}
