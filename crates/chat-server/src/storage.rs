//! Where the server keeps its data, chosen by `DATABASE_URL`: a `postgres://` (or
//! `postgresql://`) URL selects PostgreSQL, which several nodes may share; anything else is a
//! SQLite file, which one server holds alone. Everything that differs between the two is here.

use std::sync::Arc;

use chat_domain::ports::SessionStore;
use chat_domain::ports::{AdminStore, BlockStore, ReportStore};
use chat_domain::ports::{
    AttachmentStore, ConversationStore, FeedStore, MessageStore, PresenceStore, ReadReceiptStore,
    SearchStore, TokenRevocations, UserStore,
};
use chat_domain::ports::{OutboxStore, WebhookStore};
use chat_http::HealthProbe;
use chat_postgres::{PgDatabase, PgOptions, PgStore, is_postgres_url};
use chat_sqlite::{Database, ExclusiveLock, SqliteStore};

use crate::config::Config;
use crate::startup::{StartupError, open_database};

/// The open storage the server runs on.
pub enum Storage {
    /// A SQLite file, with its [`ExclusiveLock`] held until the server has stopped and
    /// checkpointed: no other server starts on the file meanwhile.
    Sqlite {
        db: Arc<Database>,
        /// Held, never read: dropping the storage lets go of the file.
        _lock: ExclusiveLock,
    },
    /// A PostgreSQL database; other nodes may be using it too.
    Postgres(Arc<PgDatabase>),
}

/// The storage ports, all served by one store.
pub struct Stores {
    pub users: Arc<dyn UserStore>,
    pub conversations: Arc<dyn ConversationStore>,
    pub messages: Arc<dyn MessageStore>,
    pub feed: Arc<dyn FeedStore>,
    pub read_receipts: Arc<dyn ReadReceiptStore>,
    pub search: Arc<dyn SearchStore>,
    pub revocations: Arc<dyn TokenRevocations>,
    pub attachments: Arc<dyn AttachmentStore>,
    pub sessions: Arc<dyn SessionStore>,
    pub blocks: Arc<dyn BlockStore>,
    pub admins: Arc<dyn AdminStore>,
    pub reports: Arc<dyn ReportStore>,
    pub outbox: Arc<dyn OutboxStore>,
    pub webhooks: Arc<dyn WebhookStore>,
    /// Last-seen times and their privacy (presence).
    pub presence: Arc<dyn PresenceStore>,
}

impl Stores {
    fn of<S>(store: Arc<S>) -> Self
    where
        S: UserStore + ConversationStore + MessageStore + ReadReceiptStore + TokenRevocations,
        S: FeedStore + SearchStore + AttachmentStore + 'static,
        S: SessionStore,
        S: BlockStore + AdminStore + ReportStore,
        S: OutboxStore + WebhookStore,
        S: FeedStore + SearchStore + AttachmentStore + PresenceStore + 'static,
    {
        Self {
            blocks: store.clone(),
            admins: store.clone(),
            reports: store.clone(),
            users: store.clone(),
            conversations: store.clone(),
            messages: store.clone(),
            feed: store.clone(),
            read_receipts: store.clone(),
            search: store.clone(),
            revocations: store.clone(),
            sessions: store.clone(),
            attachments: store.clone(),
            outbox: store.clone(),
            webhooks: store.clone(),
            presence: store,
        }
    }
}

/// Whether the configuration names a PostgreSQL database.
pub fn uses_postgres(config: &Config) -> bool {
    is_postgres_url(&config.database_url)
}

/// Connects to the PostgreSQL database the configuration names.
pub fn connect_postgres(config: &Config) -> Result<PgDatabase, StartupError> {
    Ok(PgDatabase::connect(
        &config.database_url,
        &PgOptions::default(),
    )?)
}

impl Storage {
    /// Opens the configured storage and applies pending migrations. SQLite: takes the file's
    /// lock first (another server on the file is an error) and creates the file if needed.
    /// PostgreSQL: the database must exist; nodes starting together migrate it once.
    /// Blocks.
    pub fn open(config: &Config) -> Result<Self, StartupError> {
        if uses_postgres(config) {
            let db = connect_postgres(config)?;
            db.migrate()?;
            return Ok(Self::Postgres(Arc::new(db)));
        }
        let lock = ExclusiveLock::acquire(&config.database_url)?;
        let db = open_database(config)?;
        Ok(Self::Sqlite { db, _lock: lock })
    }

    /// The stored setting `key`, or `make()` stored; and whether it was just created.
    pub fn setting_or_insert(
        &self,
        key: &str,
        make: impl FnOnce() -> String,
    ) -> Result<(String, bool), StartupError> {
        Ok(match self {
            Self::Sqlite { db, .. } => db.setting_or_insert(key, make)?,
            Self::Postgres(db) => db.setting_or_insert(key, make)?,
        })
    }

    /// Starts the store behind every storage port.
    pub fn stores(&self) -> std::io::Result<Stores> {
        Ok(match self {
            Self::Sqlite { db, .. } => Stores::of(Arc::new(SqliteStore::new(db.clone())?)),
            Self::Postgres(db) => Stores::of(Arc::new(PgStore::new(db.clone())?)),
        })
    }

    /// What `/health` asks about the storage.
    pub fn health(&self) -> Arc<dyn HealthProbe> {
        match self {
            Self::Sqlite { db, .. } => Arc::new(SqliteHealth(db.clone())),
            Self::Postgres(db) => Arc::new(PostgresHealth(db.clone())),
        }
    }

    /// The SQLite database, when the server runs on one.
    pub fn sqlite(&self) -> Option<&Arc<Database>> {
        match self {
            Self::Sqlite { db, .. } => Some(db),
            Self::Postgres(_) => None,
        }
    }
}

struct SqliteHealth(Arc<Database>);

impl HealthProbe for SqliteHealth {
    fn check(&self) -> Result<(), String> {
        self.0.ping().map_err(|e| e.to_string())
    }

    fn degraded(&self) -> Option<String> {
        self.0
            .write_failure()
            .map(|failure| format!("writes are failing: {failure}"))
    }
}

struct PostgresHealth(Arc<PgDatabase>);

impl HealthProbe for PostgresHealth {
    /// The driver's error names hosts and users: it goes to the log, and clients read only
    /// that the database does not answer.
    fn check(&self) -> Result<(), String> {
        self.0.ping().map_err(|error| {
            tracing::warn!(%error, "PostgreSQL health check failed");
            "PostgreSQL does not answer".to_owned()
        })
    }
}
