//! [`UserStore`] over the `users` table.

use chat_domain::ports::{StoreResult, UserStore};
use chat_domain::user::{NewUser, PasswordHash, ProfileUpdate, User, UserQuery};
use chat_domain::{StoreError, UserId};
use chrono::{DateTime, Utc};
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{Integer, Text};

use crate::SqliteStore;
use crate::models::{UserRow, convert, ts};
use crate::schema::users;

impl UserStore for SqliteStore {
    fn insert(&self, new: &NewUser) -> StoreResult<User> {
        let row = UserRow {
            id: new.id.to_string(),
            username: new.username.as_str().to_owned(),
            email: new.email.as_str().to_owned(),
            password_hash: new.password_hash.0.clone(),
            full_name: new.full_name.clone(),
            avatar_url: None,
            bio: None,
            is_active: true,
            created_at: ts(new.created_at),
            updated_at: ts(new.created_at),
            token_generation: 0,
        };
        self.write(|conn| {
            let row = diesel::insert_into(users::table)
                .values(&row)
                .returning(UserRow::as_returning())
                .get_result(conn)?;
            User::try_from(row)
        })
    }

    fn find(&self, id: UserId) -> StoreResult<Option<User>> {
        self.read(|conn| {
            users::table
                .find(id.to_string())
                .select(UserRow::as_select())
                .first(conn)
                .optional()?
                .map(User::try_from)
                .transpose()
        })
    }

    fn find_many(&self, ids: &[UserId]) -> StoreResult<Vec<User>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
        self.read(|conn| {
            let mut rows = Vec::with_capacity(ids.len());
            // SQLite caps bound parameters per statement; stay well below it.
            for chunk in ids.chunks(500) {
                rows.extend(
                    users::table
                        .filter(users::id.eq_any(chunk))
                        .select(UserRow::as_select())
                        .load(conn)?,
                );
            }
            convert(rows)
        })
    }

    fn find_credentials(&self, login: &str) -> StoreResult<Option<(User, PasswordHash)>> {
        self.read(|conn| {
            // Both columns are COLLATE NOCASE, so these lookups ignore case and use the
            // unique indexes.
            let row = users::table
                .filter(users::username.eq(login).or(users::email.eq(login)))
                .select(UserRow::as_select())
                .first(conn)
                .optional()?;
            row.map(|row| {
                let hash = PasswordHash(row.password_hash.clone());
                User::try_from(row).map(|user| (user, hash))
            })
            .transpose()
        })
    }

    fn password_hash(&self, id: UserId) -> StoreResult<Option<PasswordHash>> {
        self.read(|conn| {
            Ok(users::table
                .find(id.to_string())
                .select(users::password_hash)
                .first::<String>(conn)
                .optional()?
                .map(PasswordHash))
        })
    }

    fn taken(&self, username: &str, email: &str) -> StoreResult<(bool, bool)> {
        self.read(|conn| {
            let username_taken = diesel::select(diesel::dsl::exists(
                users::table.filter(users::username.eq(username)),
            ))
            .get_result(conn)?;
            let email_taken = diesel::select(diesel::dsl::exists(
                users::table.filter(users::email.eq(email)),
            ))
            .get_result(conn)?;
            Ok((username_taken, email_taken))
        })
    }

    fn search(&self, query: &UserQuery) -> StoreResult<Vec<User>> {
        self.read(|conn| {
            let mut select = users::table
                .select(UserRow::as_select())
                .order(users::username.asc())
                .limit(i64::from(query.page.limit))
                .offset(i64::from(query.page.offset))
                .into_boxed();
            if let Some(text) = query.text.as_deref().filter(|t| !t.is_empty()) {
                let pattern = format!("%{}%", escape_like(text));
                let prefix = format!("{}%", escape_like(text));
                let word = format!("% {}%", escape_like(text));
                // The username and email columns are COLLATE NOCASE: `=` ignores case, and
                // only a whole address matches, never a part of one. LIKE ignores case too.
                select = select
                    .filter(
                        users::username
                            .like(pattern.clone())
                            .escape('\\')
                            .or(users::full_name.like(pattern).escape('\\'))
                            .or(users::email.eq(text.to_owned())),
                    )
                    .order((
                        sql::<Integer>("CASE WHEN username = ")
                            .bind::<Text, _>(text.to_owned())
                            .sql(" OR email = ")
                            .bind::<Text, _>(text.to_owned())
                            .sql(" THEN 0 WHEN username LIKE ")
                            .bind::<Text, _>(prefix.clone())
                            .sql(" ESCAPE '\\' THEN 1 WHEN full_name LIKE ")
                            .bind::<Text, _>(prefix)
                            .sql(" ESCAPE '\\' OR full_name LIKE ")
                            .bind::<Text, _>(word)
                            .sql(" ESCAPE '\\' THEN 2 ELSE 3 END"),
                        users::username.asc(),
                    ));
            }
            convert(select.load(conn)?)
        })
    }

    fn update(&self, id: UserId, update: &ProfileUpdate, at: DateTime<Utc>) -> StoreResult<User> {
        #[derive(AsChangeset)]
        #[diesel(table_name = users)]
        struct Changes<'a> {
            email: Option<&'a str>,
            full_name: Option<Option<&'a str>>,
            avatar_url: Option<Option<&'a str>>,
            bio: Option<Option<&'a str>>,
            password_hash: Option<&'a str>,
            updated_at: chrono::NaiveDateTime,
        }
        let changes = Changes {
            email: update.email.as_ref().map(|e| e.as_str()),
            full_name: update.full_name.as_ref().map(Option::as_deref),
            avatar_url: update.avatar_url.as_ref().map(Option::as_deref),
            bio: update.bio.as_ref().map(Option::as_deref),
            password_hash: update.password_hash.as_ref().map(|h| h.0.as_str()),
            updated_at: ts(at),
        };
        self.write(|conn| {
            let key = id.to_string();
            if changes.password_hash.is_some() {
                diesel::update(users::table.find(&key))
                    .set(users::token_generation.eq(users::token_generation + 1))
                    .execute(conn)?;
            }
            let row = diesel::update(users::table.find(&key))
                .set(&changes)
                .returning(UserRow::as_returning())
                .get_result(conn)
                .optional()?;
            row.map(User::try_from).transpose()
        })?
        .ok_or(StoreError::Missing)
    }

    fn deactivate(&self, id: UserId, at: DateTime<Utc>) -> StoreResult<User> {
        // A deactivated account closes its direct conversations to new messages, which the
        // commit thread learns of as it learns of a membership change.
        self.write_membership(|conn| {
            let row = diesel::update(users::table.find(id.to_string()))
                .set((
                    users::is_active.eq(false),
                    users::token_generation.eq(users::token_generation + 1),
                    users::updated_at.eq(ts(at)),
                ))
                .returning(UserRow::as_returning())
                .get_result(conn)
                .optional()?;
            row.map(User::try_from).transpose()
        })?
        .ok_or(StoreError::Missing)
    }
}

/// Escapes LIKE's wildcards so user input matches literally.
fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}
