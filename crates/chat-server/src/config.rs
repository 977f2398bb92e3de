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
    /// Apply pending database migrations and exit.
    Migrate,
    /// Write a consistent copy of the database to a new file; safe while the server runs.
    Backup {
        /// Where to write the copy; must not exist yet.
        path: std::path::PathBuf,
    },
}

#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address and port to listen on.
    #[arg(long, env = "CHAT_BIND", default_value = "127.0.0.1:8000")]
    pub bind: String,

    /// SQLite database file; a `sqlite://` prefix is accepted.
    #[arg(long, env = "DATABASE_URL", default_value = "chat.db")]
    pub database_url: String,

    /// HMAC secret for access tokens (at least 32 bytes). When unset, a random secret is
    /// generated on first start and kept in the database.
    #[arg(long, env = "CHAT_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// Access-token lifetime, e.g. `24h`, `90m`, or seconds.
    #[arg(long, env = "CHAT_TOKEN_TTL", default_value = "24h", value_parser = parse_duration)]
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

    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "CHAT_WORKERS")]
    pub workers: Option<usize>,
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
        assert_eq!(cli.config.token_ttl, Duration::from_secs(86_400));
        assert_eq!(cli.config.bcrypt_cost, 12);
        assert_eq!(cli.config.sqlite_sync, SyncMode::Normal);
    }
}
