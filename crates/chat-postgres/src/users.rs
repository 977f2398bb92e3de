//! [`UserStore`] over the `users` table.
//!
//! Names compare as SQLite's NOCASE columns do: `lower()` of a `COLLATE "C"` column folds
//! ASCII letters only, and the text it is compared with is folded the same way here
//! ([`str::to_ascii_lowercase`]), so lookups match exactly what SQLite matches and use the
//! `lower()` unique indexes.

use chat_domain::ports::{StoreResult, UserStore};
use chat_domain::user::{NewUser, PasswordHash, ProfileUpdate, User, UserQuery};
use chat_domain::{StoreError, UserId};
use chrono::{DateTime, Utc};
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{Integer, Text};
use uuid::Uuid;

use crate::PgStore;
use crate::models::{UserRow, convert};
use crate::schema::{conversation_members, conversations, users};
use crate::sql::{lower, lower_nullable};

impl UserStore for PgStore {
    fn insert(&self, new: &NewUser) -> StoreResult<User> {
        let row = UserRow {
            id: new.id.into(),
            username: new.username.as_str().to_owned(),
            email: new.email.as_str().to_owned(),
            password_hash: new.password_hash.0.clone(),
            full_name: new.full_name.clone(),
            avatar_url: None,
            bio: None,
            is_active: true,
            created_at: new.created_at,
            updated_at: new.created_at,
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
                .find(Uuid::from(id))
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
        let ids = crate::models::uuids(ids);
        self.read(|conn| {
            convert(
                users::table
                    .filter(users::id.eq_any(&ids))
                    .select(UserRow::as_select())
                    .load(conn)?,
            )
        })
    }

    fn find_credentials(&self, login: &str) -> StoreResult<Option<(User, PasswordHash)>> {
        let login = login.to_ascii_lowercase();
        self.read(|conn| {
            let row = users::table
                .filter(
                    lower(users::username)
                        .eq(&login)
                        .or(lower(users::email).eq(&login)),
                )
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
                .find(Uuid::from(id))
                .select(users::password_hash)
                .first::<String>(conn)
                .optional()?
                .map(PasswordHash))
        })
    }

    fn taken(&self, username: &str, email: &str) -> StoreResult<(bool, bool)> {
        let (username, email) = (username.to_ascii_lowercase(), email.to_ascii_lowercase());
        self.read(|conn| {
            let username_taken = diesel::select(diesel::dsl::exists(
                users::table.filter(lower(users::username).eq(&username)),
            ))
            .get_result(conn)?;
            let email_taken = diesel::select(diesel::dsl::exists(
                users::table.filter(lower(users::email).eq(&email)),
            ))
            .get_result(conn)?;
            Ok((username_taken, email_taken))
        })
    }

    fn search(&self, query: &UserQuery) -> StoreResult<Vec<User>> {
        self.read(|conn| {
            let mut select = users::table
                .select(UserRow::as_select())
                .order(lower(users::username).asc())
                .limit(i64::from(query.page.limit))
                .offset(i64::from(query.page.offset))
                .into_boxed();
            if let Some(text) = query.text.as_deref().filter(|t| !t.is_empty()) {
                let text = text.to_ascii_lowercase();
                let pattern = format!("%{}%", escape_like(&text));
                let prefix = format!("{}%", escape_like(&text));
                let word = format!("% {}%", escape_like(&text));
                // Only a whole address matches an email, never a part of one.
                select = select
                    .filter(
                        lower(users::username)
                            .like(pattern.clone())
                            .escape('\\')
                            .or(lower_nullable(users::full_name).like(pattern).escape('\\'))
                            .or(lower(users::email).eq(text.clone())),
                    )
                    .order((
                        sql::<Integer>("CASE WHEN lower(username) = ")
                            .bind::<Text, _>(text.clone())
                            .sql(" OR lower(email) = ")
                            .bind::<Text, _>(text)
                            .sql(" THEN 0 WHEN lower(username) LIKE ")
                            .bind::<Text, _>(prefix.clone())
                            .sql(" ESCAPE '\\' THEN 1 WHEN lower(full_name) LIKE ")
                            .bind::<Text, _>(prefix)
                            .sql(" ESCAPE '\\' OR lower(full_name) LIKE ")
                            .bind::<Text, _>(word)
                            .sql(" ESCAPE '\\' THEN 2 ELSE 3 END"),
                        lower(users::username).asc(),
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
            updated_at: DateTime<Utc>,
        }
        let changes = Changes {
            email: update.email.as_ref().map(|e| e.as_str()),
            full_name: update.full_name.as_ref().map(Option::as_deref),
            avatar_url: update.avatar_url.as_ref().map(Option::as_deref),
            bio: update.bio.as_ref().map(Option::as_deref),
            password_hash: update.password_hash.as_ref().map(|h| h.0.as_str()),
            updated_at: at,
        };
        let key = Uuid::from(id);
        self.write(|conn| {
            if changes.password_hash.is_some() {
                diesel::update(users::table.find(key))
                    .set(users::token_generation.eq(users::token_generation + 1))
                    .execute(conn)?;
            }
            let row = diesel::update(users::table.find(key))
                .set(&changes)
                .returning(UserRow::as_returning())
                .get_result(conn)
                .optional()?;
            row.map(User::try_from).transpose()
        })?
        .ok_or(StoreError::Missing)
    }

    fn deactivate(&self, id: UserId, at: DateTime<Utc>) -> StoreResult<User> {
        let key = Uuid::from(id);
        self.write(|conn| {
            // A deactivated account closes its direct conversations to new messages. Appends
            // lock the rows of the conversations they write to before they read who is
            // active; locking this user's direct conversations first (in the same order)
            // means an append on any node either sees the deactivation or commits before it.
            let direct = conversation_members::table
                .filter(conversation_members::user_id.eq(key))
                .select(conversation_members::conversation_id);
            conversations::table
                .filter(conversations::id.eq_any(direct))
                .filter(conversations::kind.eq("direct"))
                .order(conversations::id.asc())
                .select(conversations::id)
                .for_no_key_update()
                .load::<Uuid>(conn)?;
            let row = diesel::update(users::table.find(key))
                .set((
                    users::is_active.eq(false),
                    users::token_generation.eq(users::token_generation + 1),
                    users::updated_at.eq(at),
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
