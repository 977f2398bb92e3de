//! [`UserStore`] over the `users` table.

use chat_domain::ports::{StoreResult, UserStore};
use chat_domain::user::{NewUser, PasswordHash, ProfileUpdate, User, UserQuery};
use chat_domain::{StoreError, UserId};
use chrono::{DateTime, Utc};
use diesel::prelude::*;

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
                // The email column is COLLATE NOCASE: `=` ignores case, and only a whole
                // address matches, never a part of one.
                select = select.filter(
                    users::username
                        .like(pattern.clone())
                        .escape('\\')
                        .or(users::full_name.like(pattern).escape('\\'))
                        .or(users::email.eq(text.to_owned())),
                );
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{TempDb, temp_db};
    use chat_domain::paging::Page;
    use chat_domain::user::{Email, Username};

    fn new_user(name: &str) -> NewUser {
        NewUser {
            id: UserId::new(),
            username: Username::parse(name).unwrap(),
            email: Email::parse(&format!("{name}@example.com")).unwrap(),
            full_name: Some(format!("{name} Full")),
            password_hash: PasswordHash("hash".into()),
            created_at: Utc::now(),
        }
    }

    #[test]
    fn usernames_and_emails_are_unique_ignoring_case() {
        let db = temp_db();
        db.store.insert(&new_user("alice")).unwrap();
        let mut shouting = new_user("ALICE");
        shouting.email = Email::parse("other@example.com").unwrap();
        assert!(matches!(
            db.store.insert(&shouting),
            Err(StoreError::Conflict { field: "username" })
        ));
        let mut same_email = new_user("bob");
        same_email.email = Email::parse("ALICE@example.com").unwrap();
        assert!(matches!(
            db.store.insert(&same_email),
            Err(StoreError::Conflict { field: "email" })
        ));
        assert_eq!(db.store.taken("Alice", "x@y.z").unwrap(), (true, false));
    }

    #[test]
    fn a_user_reads_back_as_written_and_credentials_are_found_by_either_name() {
        let db = temp_db();
        let new = new_user("alice");
        let stored = db.store.insert(&new).unwrap();
        assert_eq!(db.store.find(new.id).unwrap(), Some(stored.clone()));
        let (by_email, hash) = db
            .store
            .find_credentials("Alice@Example.com")
            .unwrap()
            .unwrap();
        assert_eq!(by_email.id, new.id);
        assert_eq!(hash.0, "hash");
        assert!(db.store.find_credentials("nobody").unwrap().is_none());
    }

    /// The usernames a search for `text` finds, in order.
    fn usernames_found(db: &TempDb, text: &str) -> Vec<String> {
        db.store
            .search(&UserQuery {
                text: Some(text.into()),
                page: Page::default(),
            })
            .unwrap()
            .into_iter()
            .map(|u| u.username.as_str().to_owned())
            .collect()
    }

    #[test]
    fn search_matches_substrings_literally() {
        let db = temp_db();
        for name in ["alice", "malik", "bob", "a_b"] {
            db.store.insert(&new_user(name)).unwrap();
        }
        let search = |text: &str| usernames_found(&db, text);
        assert_eq!(search("LI"), ["alice", "malik"]);
        assert_eq!(search("_"), ["a_b"]);
        assert_eq!(search("%"), Vec::<String>::new());
    }

    #[test]
    fn search_finds_an_email_only_by_the_whole_address() {
        let db = temp_db();
        for name in ["alice", "bob"] {
            db.store.insert(&new_user(name)).unwrap();
        }
        let search = |text: &str| usernames_found(&db, text);
        assert_eq!(search("Bob@Example.COM"), ["bob"]);
        assert_eq!(search("@example.com"), Vec::<String>::new());
        assert_eq!(search("bob@example"), Vec::<String>::new());
        assert_eq!(search("example.com"), Vec::<String>::new());
    }

    #[test]
    fn a_new_password_or_deactivation_raises_the_token_generation() {
        let db = temp_db();
        let user = db.store.insert(&new_user("alice")).unwrap();
        assert_eq!(user.token_generation, 0);
        let bio_only = ProfileUpdate {
            bio: Some(Some("hi".into())),
            ..Default::default()
        };
        assert_eq!(
            db.store
                .update(user.id, &bio_only, Utc::now())
                .unwrap()
                .token_generation,
            0
        );
        let password = ProfileUpdate {
            password_hash: Some(PasswordHash("new".into())),
            ..Default::default()
        };
        assert_eq!(
            db.store
                .update(user.id, &password, Utc::now())
                .unwrap()
                .token_generation,
            1
        );
        let deactivated = db.store.deactivate(user.id, Utc::now()).unwrap();
        assert!(!deactivated.is_active);
        assert_eq!(deactivated.token_generation, 2);
    }

    #[test]
    fn updating_a_missing_user_is_missing_not_a_panic() {
        let db = temp_db();
        let result = db
            .store
            .update(UserId::new(), &ProfileUpdate::default(), Utc::now());
        assert!(matches!(result, Err(StoreError::Missing)));
    }
}
