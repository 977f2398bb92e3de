//! Throw-away databases for tests: each test gets a database of its own on the server named
//! by `CHAT_TEST_POSTGRES_URL`, created empty and dropped when the guard is dropped.

use std::io::Write as _;

use diesel::Connection as _;
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;

/// The variable naming a PostgreSQL server where tests may create and drop databases,
/// e.g. `postgres://postgres@127.0.0.1:5432/postgres`.
pub const TEST_URL_VAR: &str = "CHAT_TEST_POSTGRES_URL";

/// A database created for one test, dropped (with any connection still open to it) on drop.
pub struct TestDatabase {
    url: String,
    admin_url: String,
    name: String,
}

impl TestDatabase {
    /// A new empty database, or `None` after printing a loud `SKIPPED` line naming `suite`
    /// when [`TEST_URL_VAR`] is not set.
    pub fn create(suite: &str) -> Option<Self> {
        let Ok(admin_url) = std::env::var(TEST_URL_VAR) else {
            // Straight to stderr, past the test harness's capture: a skip must be seen.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: {suite}: set {TEST_URL_VAR} to run it"
            );
            return None;
        };
        let name = format!("chatd_test_{}", uuid::Uuid::new_v4().simple());
        crate::pool::init_tls();
        let mut admin = PgConnection::establish(&admin_url)
            .unwrap_or_else(|e| panic!("{TEST_URL_VAR}: cannot connect: {e}"));
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("cannot create the test database {name}: {e}"));
        Some(Self {
            url: with_database(&admin_url, &name),
            admin_url,
            name,
        })
    }

    /// The database's URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let dropped = PgConnection::establish(&self.admin_url).and_then(|mut admin| {
            admin
                .batch_execute(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.name
                ))
                .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))
        });
        if let Err(error) = dropped {
            eprintln!("could not drop the test database {}: {error}", self.name);
        }
    }
}

/// `url` with its database name replaced by `name`, keeping any query parameters.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

/// A migrated store on a database of its own, dropped after the store when the guard is.
pub struct TestStore {
    store: Option<crate::PgStore>,
    database: TestDatabase,
}

impl TestStore {
    /// A fresh migrated store, or `None` after the `SKIPPED` line of [`TestDatabase::create`].
    pub fn create(suite: &str) -> Option<Self> {
        let database = TestDatabase::create(suite)?;
        let store = crate::PgStore::open(database.url()).expect("a migrated test store");
        Some(Self {
            store: Some(store),
            database,
        })
    }

    /// Another store ("node") on the same database, with its own pool and commit thread.
    pub fn another_node(&self) -> crate::PgStore {
        crate::PgStore::open(self.database.url()).expect("another store on the test database")
    }

    /// The database under the store (its URL, say).
    pub fn test_database(&self) -> &TestDatabase {
        &self.database
    }
}

impl std::ops::Deref for TestStore {
    type Target = crate::PgStore;

    fn deref(&self) -> &crate::PgStore {
        self.store
            .as_ref()
            .expect("the store lives as long as its guard")
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        // The store's connections close first, then the database goes.
        self.store.take();
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn the_test_database_replaces_the_name_in_the_url_and_keeps_the_rest() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "t1"),
            "postgres://u:p@h/t1?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5432", "t1"),
            "postgres://h:5432/t1"
        );
    }
}
