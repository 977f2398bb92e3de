//! Server settings that must outlive a restart.

use diesel::prelude::*;

use crate::error::StorageResult;
use crate::pool::Database;
use crate::schema::server_settings;

impl Database {
    /// The stored value for `key`, or `make()` stored and returned if there is none yet.
    /// Returns the value and whether it was just created. Racing servers agree on one value.
    pub fn setting_or_insert(
        &self,
        key: &str,
        make: impl FnOnce() -> String,
    ) -> StorageResult<(String, bool)> {
        self.write(|conn| {
            let existing = server_settings::table
                .find(key)
                .select(server_settings::value)
                .first::<String>(conn)
                .optional()?;
            if let Some(value) = existing {
                return Ok((value, false));
            }
            let value = make();
            diesel::insert_into(server_settings::table)
                .values((
                    server_settings::key.eq(key),
                    server_settings::value.eq(&value),
                ))
                .execute(conn)?;
            Ok((value, true))
        })
    }
}
