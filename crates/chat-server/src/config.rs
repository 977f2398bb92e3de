//! Configuration from flags and environment variables (a `.env` file is read first).

use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "chat-server",
    version,
    about = "chatd: a real-time chat backend"
)]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Start the server (the default).
    Serve,
    /// Apply pending migrations to an existing database and exit. On SQLite it is refused
    /// while a server runs on the file; on PostgreSQL it may run beside the servers.
    Migrate,
    /// Write a consistent copy of an existing SQLite database to a new file; safe while the
    /// server runs. (On PostgreSQL it refuses: use pg_dump.)
    Backup {
        /// Where to write the copy; must not exist yet.
        path: std::path::PathBuf,
    },
    /// Grant or revoke server admin (`/api/v1/admin/...`) for a user, on an existing
    /// database; safe while the server runs. Written to the audit log.
    Admin {
        #[command(subcommand)]
        action: AdminAction,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum AdminAction {
    /// Make the user a server admin.
    Grant {
        /// The user's username (case does not matter).
        username: String,
    },
    /// Take server admin away from the user.
    Revoke {
        /// The user's username (case does not matter).
        username: String,
    },
}

#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address and port to listen on.
    #[arg(long, env = "CHAT_BIND", default_value = "127.0.0.1:8000")]
    pub bind: String,

    /// Where data lives. A `postgres://` or `postgresql://` URL selects PostgreSQL (the
    /// database must exist; several servers may share it). Anything else is a SQLite database
    /// file, created if needed and held by one server alone; a `sqlite://` prefix is accepted.
    #[arg(long, env = "DATABASE_URL", default_value = "chat.db")]
    pub database_url: String,

    /// HMAC secret for access tokens (at least 32 bytes). When unset, a random secret is
    /// generated on first start and kept in the database.
    #[arg(long, env = "CHAT_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// Access-token lifetime, e.g. `15m`, `24h`, or seconds.
    ///
    /// Why 15 minutes by default (it was 24 hours before sessions): an access token cannot be
    /// taken back from a node that has not heard of its revocation, so it should be short, and
    /// a client that keeps a session going redeems its refresh token instead (see
    /// `CHAT_REFRESH_TOKEN_TTL`). A client that ignores refresh tokens works as it always
    /// did, logging in again when its token expires; only how often changes. A deployment
    /// whose clients cannot be updated sets `CHAT_TOKEN_TTL=24h` and they see no change at
    /// all: this setting keeps meaning the access token's lifetime.
    #[arg(long, env = "CHAT_TOKEN_TTL", default_value = "15m", value_parser = parse_duration)]
    pub token_ttl: Duration,

    /// bcrypt cost factor (4–31); each step doubles the work of a login.
    #[arg(long, env = "CHAT_BCRYPT_COST", default_value_t = 12)]
    pub bcrypt_cost: u32,

    /// SQLite durability: `normal` survives a crash of the server process, `full` also
    /// survives power loss, at the price of an fsync per commit.
    #[arg(long, env = "CHAT_SQLITE_SYNC", value_enum, default_value_t = SyncMode::Normal)]
    pub sqlite_sync: SyncMode,

    /// How often the server pings each WebSocket; a socket silent for twice this is dropped.
    #[arg(long, env = "CHAT_WS_PING_INTERVAL", default_value = "30s", value_parser = parse_duration)]
    pub ws_ping_interval: Duration,

    /// How often a node records the deliveries it saw (messages reaching members' sockets,
    /// or fetched by them): one database write per interval, and the longest a sender
    /// waits for `message_delivered`.
    #[arg(long, env = "CHAT_DELIVERY_FLUSH_INTERVAL", default_value = "300ms", value_parser = parse_duration)]
    pub delivery_flush_interval: Duration,

    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "CHAT_WORKERS")]
    pub workers: Option<usize>,

    /// Abuse limits (failed logins, sign-ups, message and typing rates, WebSocket frames).
    /// On by default; `false` turns them all off (benchmarks, trusted networks).
    #[arg(long, env = "CHAT_RATE_LIMITS", default_value_t = true, action = clap::ArgAction::Set)]
    pub rate_limits: bool,

    /// Messages a user may send per second (twice as many in a burst).
    #[arg(long, env = "CHAT_MESSAGES_PER_SECOND", default_value_t = 20)]
    pub messages_per_second: u32,

    /// Conversations a user may create plus member additions they may make per minute, all
    /// of which may come at once; 0 turns this limit off.
    #[arg(long, env = "CHAT_CONVERSATIONS_PER_MINUTE", default_value_t = chat_domain::limits::Limits::CONVERSATIONS_PER_MINUTE)]
    pub conversations_per_minute: u32,

    /// The most distinct emoji one message may carry (a product rule: kept when
    /// `CHAT_RATE_LIMITS=false`).
    #[arg(long, env = "CHAT_MAX_REACTIONS_PER_MESSAGE", default_value_t = chat_domain::limits::Limits::MAX_REACTIONS_PER_MESSAGE)]
    pub max_reactions_per_message: usize,

    /// The most messages one conversation may have pinned at once.
    #[arg(long, env = "CHAT_MAX_PINS_PER_CONVERSATION", default_value_t = chat_domain::limits::Limits::MAX_PINS_PER_CONVERSATION)]
    pub max_pins_per_conversation: usize,

    /// WebSocket connections this node accepts (default: the open-file limit less 512).
    #[arg(long, env = "CHAT_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,

    /// WebSocket connections opened without a token that have not sent their token frame
    /// yet, over the whole node. They have this budget of their own and never take one of
    /// `CHAT_MAX_CONNECTIONS`.
    #[arg(long, env = "CHAT_MAX_PENDING_CONNECTIONS", default_value_t = chat_http::ws::DEFAULT_MAX_PENDING)]
    pub max_pending_connections: usize,

    /// WebSocket connections that have not sent their token yet, from one client address.
    #[arg(long, env = "CHAT_MAX_PENDING_CONNECTIONS_PER_ADDRESS", default_value_t = chat_http::ws::DEFAULT_MAX_PENDING_PER_ADDRESS)]
    pub max_pending_connections_per_address: usize,

    /// WebSocket connections one user may hold at once.
    #[arg(long, env = "CHAT_MAX_CONNECTIONS_PER_USER", default_value_t = 20)]
    pub max_connections_per_user: usize,

    /// Browser origins, besides the server's own, allowed to open WebSockets and to call the
    /// REST API cross-origin (CORS) (comma-separated, `*` for any). Empty: same-origin and
    /// non-browser clients only.
    #[arg(long, env = "CHAT_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// Address and port of the Prometheus scrape endpoint, `GET /metrics` (e.g.
    /// `127.0.0.1:9100`): a listener of its own, never the public one, so metrics are not
    /// public by accident. Unset: no metrics are kept and nothing more listens.
    #[arg(long, env = "CHAT_METRICS_BIND")]
    pub metrics_bind: Option<String>,

    /// Log lines as `text` (coloured only on a terminal) or `json` (one object a line).
    #[arg(long, env = "CHAT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// The cluster's event bus, `nats://host:port` (several servers of one NATS cluster:
    /// comma-separated). Unset: one node, events stay in this process. A node on a bus needs
    /// a database every node shares (PostgreSQL): a SQLite server refuses to start with it.
    /// The server does not start if the broker cannot be reached; later losses of the broker
    /// are survived (clients are told to `resync`).
    #[arg(long, env = "CHAT_BUS_URL")]
    pub bus_url: Option<String>,

    /// Where uploaded files are kept (`blobs/`, and `staging/` for uploads in progress).
    /// Default: `chatd-data` beside the SQLite database file; `./chatd-data` on PostgreSQL.
    /// With S3 configured, only uploads in progress are staged here.
    #[arg(long, env = "CHAT_DATA_DIR")]
    pub data_dir: Option<std::path::PathBuf>,

    /// The largest file an upload may be, in bytes (413 beyond it).
    #[arg(long, env = "CHAT_UPLOAD_MAX_BYTES", default_value_t = 25 * 1024 * 1024)]
    pub upload_max_bytes: u64,

    /// How many bytes one user's uploads may add up to.
    #[arg(long, env = "CHAT_UPLOAD_QUOTA_BYTES", default_value_t = 1024 * 1024 * 1024)]
    pub upload_quota_bytes: u64,

    /// The content types an upload may have (as read from its bytes), comma-separated;
    /// `type/*` allows a whole family, `*` anything. Default: images, PDF, plain text, zip,
    /// office documents, audio and video.
    #[arg(long, env = "CHAT_UPLOAD_TYPES")]
    pub upload_types: Option<String>,

    /// Keep uploaded files in this S3 bucket (shared by every node) instead of the data
    /// directory.
    #[arg(long, env = "CHAT_S3_BUCKET")]
    pub s3_bucket: Option<String>,

    /// The S3-compatible endpoint (`https://...`); unset: AWS.
    #[arg(long, env = "CHAT_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,

    #[arg(long, env = "CHAT_S3_REGION", default_value = "us-east-1")]
    pub s3_region: String,

    #[arg(long, env = "CHAT_S3_ACCESS_KEY_ID", hide_env_values = true)]
    pub s3_access_key_id: Option<String>,

    #[arg(long, env = "CHAT_S3_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub s3_secret_access_key: Option<String>,

    /// Allow a plain `http://` S3 endpoint (a local test server).
    #[arg(long, env = "CHAT_S3_ALLOW_HTTP", default_value_t = false, action = clap::ArgAction::Set)]
    pub s3_allow_http: bool,

    /// Refresh-token lifetime: how long a session may go unused before it must log in again.
    /// Every refresh starts it over, so a device in use stays signed in indefinitely.
    #[arg(long, env = "CHAT_REFRESH_TOKEN_TTL", default_value = "60d", value_parser = parse_duration)]
    pub refresh_token_ttl: Duration,

    /// Presence events go out at most once per user per this window, the latest state
    /// winning, so a mass reconnect does not become a storm of events; `0` announces every
    /// change (at the next flush, within 50 ms).
    #[arg(long, env = "CHAT_PRESENCE_WINDOW", default_value = "5s", value_parser = parse_duration)]
    pub presence_window: Duration,

    /// A user whose sockets all closed is announced `offline` only once they have been
    /// offline this long (never sooner than the window), so that clients reconnecting after
    /// a network drop or a server restart announce nothing; `0` announces it with the window.
    #[arg(long, env = "CHAT_PRESENCE_OFFLINE_AFTER", default_value = "30s", value_parser = parse_duration)]
    pub presence_offline_after: Duration,

    /// Send `presence` events to those who share a conversation; `false` keeps presence
    /// readable over REST only.
    #[arg(long, env = "CHAT_PRESENCE_EVENTS", default_value_t = true, action = clap::ArgAction::Set)]
    pub presence_events: bool,

    /// Webhooks and push notifications.
    #[command(flatten)]
    pub webhooks: WebhookSettings,
}

/// How webhooks are delivered (see docs/webhooks.md).
#[derive(Debug, Clone, clap::Args)]
pub struct WebhookSettings {
    /// The wait before the first retry of a failed delivery; doubled after each further
    /// failure (with jitter), up to `CHAT_WEBHOOK_RETRY_MAX_DELAY`.
    #[arg(long, env = "CHAT_WEBHOOK_RETRY_BASE", default_value = "5s", value_parser = parse_duration)]
    pub webhook_retry_base: Duration,

    /// The longest wait between two attempts of a delivery.
    #[arg(long, env = "CHAT_WEBHOOK_RETRY_MAX_DELAY", default_value = "1h", value_parser = parse_duration)]
    pub webhook_retry_max_delay: Duration,

    /// How long a failing delivery is retried before it becomes a dead letter.
    #[arg(long, env = "CHAT_WEBHOOK_GIVE_UP_AFTER", default_value = "24h", value_parser = parse_duration)]
    pub webhook_give_up_after: Duration,

    /// How long a node holds the deliveries it claimed: one that dies mid-send has them sent
    /// again by another node (or itself, restarted) once this has passed.
    #[arg(long, env = "CHAT_WEBHOOK_LEASE", default_value = "60s", value_parser = parse_duration)]
    pub webhook_lease: Duration,

    /// The longest one delivery request may take, connecting included.
    #[arg(long, env = "CHAT_WEBHOOK_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub webhook_timeout: Duration,

    /// How often an idle dispatcher looks for new events.
    #[arg(long, env = "CHAT_WEBHOOK_POLL_INTERVAL", default_value = "200ms", value_parser = parse_duration)]
    pub webhook_poll_interval: Duration,

    /// At most one `notification` per recipient and conversation this often; `0s`: one per
    /// message.
    #[arg(long, env = "CHAT_NOTIFICATION_COLLAPSE", default_value = "30s", value_parser = parse_duration)]
    pub notification_collapse: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            webhook_retry_base: Duration::from_secs(5),
            webhook_retry_max_delay: Duration::from_secs(3600),
            webhook_give_up_after: Duration::from_secs(24 * 3600),
            webhook_lease: Duration::from_secs(60),
            webhook_timeout: Duration::from_secs(10),
            webhook_poll_interval: Duration::from_millis(200),
            notification_collapse: Duration::from_secs(30),
        }
    }
}

impl Config {
    /// A server for a test to start in-process (or a program to embed): loopback on a port
    /// the system picks, `database_url`, one worker, and what makes tests slow or their
    /// frame counts unpredictable turned down or off (bcrypt cost 4, no rate limits,
    /// delivered receipts and presence events off, offline at once), and tokens that last an
    /// hour. Everything else is the documented default (a unit test holds it to that). Start from it and change what the test is about:
    /// `Config { token_ttl, ..Config::for_tests(url) }`.
    pub fn for_tests(database_url: impl Into<String>) -> Self {
        Config {
            bind: "127.0.0.1:0".into(),
            database_url: database_url.into(),
            jwt_secret: None,
            token_ttl: Duration::from_secs(3600),
            bcrypt_cost: 4,
            sqlite_sync: SyncMode::Normal,
            ws_ping_interval: Duration::from_secs(30),
            // Tests of other behaviour count the frames they get; delivered receipts, which
            // would come between them, have tests of their own that flush often.
            delivery_flush_interval: Duration::from_secs(3600),
            workers: Some(1),
            // Tests of other behaviour send faster than a person; limits have their own tests.
            rate_limits: false,
            messages_per_second: 20,
            conversations_per_minute: 20,
            max_reactions_per_message: chat_domain::limits::Limits::MAX_REACTIONS_PER_MESSAGE,
            max_pins_per_conversation: chat_domain::limits::Limits::MAX_PINS_PER_CONVERSATION,
            max_connections: None,
            max_connections_per_user: 20,
            allowed_origins: Vec::new(),
            max_pending_connections: chat_http::ws::DEFAULT_MAX_PENDING,
            max_pending_connections_per_address: chat_http::ws::DEFAULT_MAX_PENDING_PER_ADDRESS,
            log_format: LogFormat::Text,
            metrics_bind: None,
            bus_url: None,
            data_dir: None,
            upload_max_bytes: 25 * 1024 * 1024,
            upload_quota_bytes: 1024 * 1024 * 1024,
            upload_types: None,
            s3_bucket: None,
            s3_endpoint: None,
            s3_region: "us-east-1".into(),
            s3_access_key_id: None,
            s3_secret_access_key: None,
            s3_allow_http: false,
            refresh_token_ttl: Duration::from_secs(60 * 86_400),
            webhooks: Default::default(),
            presence_window: Duration::from_secs(5),
            presence_offline_after: Duration::ZERO,
            // Tests of other behaviour count the frames they get; presence has its own tests.
            presence_events: false,
        }
    }

    /// What uploads are held to, from the configuration.
    pub fn upload_limits(&self) -> chat_domain::attachment::UploadLimits {
        use chat_domain::attachment::{AllowedTypes, UploadLimits};
        UploadLimits {
            max_bytes: self.upload_max_bytes,
            quota_bytes: self.upload_quota_bytes,
            allowed: self
                .upload_types
                .as_deref()
                .map_or_else(AllowedTypes::sensible_default, AllowedTypes::parse),
            ..UploadLimits::default()
        }
    }

    /// Where uploaded files are kept: the configured directory, or `chatd-data` beside the
    /// SQLite database file (`./chatd-data` on PostgreSQL).
    pub fn data_dir(&self) -> std::path::PathBuf {
        if let Some(dir) = &self.data_dir {
            return dir.clone();
        }
        if crate::storage::uses_postgres(self) {
            return "chatd-data".into();
        }
        let file = self
            .database_url
            .strip_prefix("sqlite://")
            .unwrap_or(&self.database_url);
        std::path::Path::new(file)
            .parent()
            .map_or_else(|| "chatd-data".into(), |dir| dir.join("chatd-data"))
    }

    /// The limits the services enforce, from the configuration.
    pub fn limits(&self) -> chat_domain::limits::Limits {
        use chat_domain::limits::{Limits, Quota};
        let caps = Limits {
            max_reactions_per_message: self.max_reactions_per_message,
            max_pins_per_conversation: self.max_pins_per_conversation,
            ..Limits::none()
        };
        if !self.rate_limits {
            return caps;
        }
        let rate = self.messages_per_second.max(1);
        let conversations = (self.conversations_per_minute > 0).then(|| {
            Quota::new(
                self.conversations_per_minute,
                std::time::Duration::from_secs(60),
            )
        });
        Limits {
            messages_per_user: Some(Quota::per_second(rate, rate.saturating_mul(2))),
            conversations_per_user: conversations,
            ..Limits {
                max_reactions_per_message: caps.max_reactions_per_message,
                max_pins_per_conversation: caps.max_pins_per_conversation,
                ..Limits::default()
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SyncMode {
    Normal,
    Full,
}

/// Parses `90`, `90s`, `15m`, `24h` or any humantime duration.
fn parse_duration(raw: &str) -> Result<Duration, String> {
    if let Ok(seconds) = raw.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    humantime::parse_duration(raw).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_accept_seconds_and_units() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("24h").unwrap(), Duration::from_secs(86_400));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn defaults_match_the_documentation() {
        let cli = Cli::try_parse_from(["chat-server"]).unwrap();
        assert_eq!(cli.config.bind, "127.0.0.1:8000");
        assert_eq!(cli.config.token_ttl, Duration::from_secs(15 * 60));
        assert_eq!(
            cli.config.refresh_token_ttl,
            Duration::from_secs(60 * 86_400)
        );
        assert_eq!(cli.config.bcrypt_cost, 12);
        assert_eq!(cli.config.sqlite_sync, SyncMode::Normal);
        assert_eq!(
            cli.config.delivery_flush_interval,
            Duration::from_millis(300)
        );
        assert!(cli.config.rate_limits);
        assert_eq!(cli.config.max_connections_per_user, 20);
        assert!(cli.config.allowed_origins.is_empty());
        assert_eq!(cli.config.log_format, LogFormat::Text);
        assert_eq!(cli.config.max_pending_connections, 1024);
        assert_eq!(cli.config.max_pending_connections_per_address, 32);
        assert_eq!(cli.config.conversations_per_minute, 20);
        assert_eq!(cli.config.bus_url, None);
        assert_eq!(cli.config.metrics_bind, None);
        assert_eq!(cli.config.upload_max_bytes, 25 * 1024 * 1024);
        assert_eq!(cli.config.upload_quota_bytes, 1024 * 1024 * 1024);
        assert_eq!(cli.config.presence_window, Duration::from_secs(5));
        assert_eq!(cli.config.presence_offline_after, Duration::from_secs(30));
        assert!(cli.config.presence_events);
        assert_eq!(cli.config.data_dir(), std::path::Path::new("chatd-data"));
        assert!(!cli.config.s3_allow_http);
    }

    /// `Config::for_tests` repeats the defaults it keeps; this catches a default changed in
    /// one place only. What it changes on purpose is listed here, and nothing else may differ.
    #[test]
    fn the_test_configuration_is_the_default_but_for_what_it_turns_down() {
        let defaults = Cli::try_parse_from(["chat-server"]).unwrap().config;
        let expected = Config {
            bind: "127.0.0.1:0".into(),
            database_url: "tests.db".into(),
            token_ttl: Duration::from_secs(3600),
            bcrypt_cost: 4,
            delivery_flush_interval: Duration::from_secs(3600),
            workers: Some(1),
            rate_limits: false,
            presence_offline_after: Duration::ZERO,
            presence_events: false,
            ..defaults
        };
        assert_eq!(
            format!("{:?}", Config::for_tests("tests.db")),
            format!("{expected:?}")
        );
    }

    #[test]
    fn the_conversation_limit_is_per_minute_on_by_default_and_zero_turns_it_off() {
        let limits = |args: &[&str]| {
            Cli::try_parse_from(["chat-server"].iter().chain(args))
                .unwrap()
                .config
                .limits()
                .conversations_per_user
        };
        assert_eq!(
            limits(&[]),
            Some(chat_domain::limits::Quota::new(20, Duration::from_secs(60)))
        );
        assert_eq!(
            limits(&["--conversations-per-minute", "5"]).map(|q| q.burst),
            Some(5)
        );
        assert_eq!(limits(&["--conversations-per-minute", "0"]), None);
    }

    #[test]
    fn the_reaction_and_pin_caps_are_configurable_and_outlive_turning_rate_limits_off() {
        let limits = |args: &[&str]| {
            Cli::try_parse_from(["chat-server"].iter().chain(args))
                .unwrap()
                .config
                .limits()
        };
        let defaults = limits(&[]);
        assert_eq!(defaults.max_reactions_per_message, 20);
        assert_eq!(defaults.max_pins_per_conversation, 50);
        let set = limits(&[
            "--max-reactions-per-message",
            "3",
            "--max-pins-per-conversation",
            "2",
            "--rate-limits",
            "false",
        ]);
        assert_eq!(
            (set.max_reactions_per_message, set.max_pins_per_conversation),
            (3, 2)
        );
        assert_eq!(set.messages_per_user, None);
    }

    #[test]
    fn origins_are_a_comma_separated_list_and_limits_can_be_turned_off() {
        let cli = Cli::try_parse_from([
            "chat-server",
            "--allowed-origins",
            "https://a.example,https://b.example",
            "--rate-limits",
            "false",
        ])
        .unwrap();
        assert_eq!(
            cli.config.allowed_origins,
            ["https://a.example", "https://b.example"]
        );
        assert_eq!(cli.config.limits(), chat_domain::limits::Limits::none());
    }
}
