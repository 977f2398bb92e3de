//! `chat-bench`: a load generator for chatd.
//!
//! It drives any running server by URL exactly as real clients do: users sign up and log in
//! over REST, read and send over REST, and hold WebSockets authenticated with `?token=`. Each
//! scenario is one module under [`scenario`] with an options struct (the subcommand's flags)
//! and a report struct (the figures); `main.rs` only parses the command line and prints.
//! Failures (non-2xx answers, timeouts, refused or dropped sockets, lost or duplicated
//! deliveries) are counted by kind in every report and make the run fail, so they never
//! disappear into an average.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};

pub mod client;
pub mod frames;
pub mod report;
pub mod scenario;
pub mod stats;
pub mod users;

pub use report::Report;
pub use scenario::bus::{BusOptions, BusReport};
pub use scenario::catchup::{CatchupOptions, CatchupReport};
pub use scenario::chat::{ChatOptions, ChatReport};
pub use scenario::connections::{ConnectionsOptions, ConnectionsReport};
pub use scenario::fanout::{FanoutOptions, FanoutReport};
pub use scenario::files::{FilesOptions, FilesReport};
pub use scenario::login::{LoginOptions, LoginReport};
pub use scenario::presence::{PresenceOptions, PresenceReport};
pub use scenario::rest::{RestOptions, RestReport};
pub use scenario::search::{SearchOptions, SearchReport};
pub use scenario::webhooks::{WebhooksOptions, WebhooksReport};

/// Why a scenario could not run at all (as opposed to failures it measured and reports).
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("setup failed: {0}")]
    Setup(String),
    #[error("invalid parameters: {0}")]
    Invalid(String),
    #[error("worker process: {0}")]
    Worker(String),
}

#[derive(Debug, Parser)]
#[command(
    name = "chat-bench",
    version,
    about = "Load generator for chatd: drives a running server over HTTP and WebSocket",
    after_help = "Start the server with CHAT_RATE_LIMITS=false, or the limits are what you measure."
)]
pub struct Cli {
    #[command(flatten)]
    pub common: Common,
    #[command(subcommand)]
    pub scenario: Scenario,
}

/// Flags every scenario takes.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// Base URL of the server under test. For a cluster, give each node's (repeat `--url`, or
    /// separate them with commas): users are spread over the nodes round-robin (user `i` signs
    /// up and connects to node `i % nodes`), so a group's members sit on different nodes.
    #[arg(
        long = "url",
        global = true,
        value_delimiter = ',',
        default_value = "http://127.0.0.1:8000"
    )]
    pub urls: Vec<String>,
    /// Print the figures as JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    /// How long the measured phase lasts (`30s`, `1m`, `500ms`); setup is not counted.
    #[arg(long, global = true, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Prefix of the bench's user names (default: a fresh random one per run). Users that
    /// exist already are logged in and reused, which saves their sign-up on a later run.
    #[arg(long, global = true)]
    pub user_prefix: Option<String>,
    /// Users signed up and logged in at once while setting up.
    #[arg(long, global = true, default_value_t = 8)]
    pub setup_concurrency: usize,
    /// Limit for any one HTTP request; one that takes longer counts as a timeout.
    #[arg(long, global = true, default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
}

impl Common {
    /// The defaults of the command line, against `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            urls: vec![url.into()],
            json: false,
            duration: Duration::from_secs(10),
            user_prefix: None,
            setup_concurrency: 8,
            timeout: Duration::from_secs(10),
        }
    }

    /// Every node named by `--url`, in the order given (at least one).
    pub fn targets(&self) -> Result<Vec<client::Target>, BenchError> {
        if self.urls.is_empty() {
            return Err(BenchError::Invalid("give at least one --url".into()));
        }
        self.urls
            .iter()
            .map(|url| client::Target::new(url, self.timeout))
            .collect()
    }

    /// The user-name prefix for a run tagged `tag`.
    pub fn user_prefix(&self, tag: &str) -> String {
        self.user_prefix
            .clone()
            .unwrap_or_else(|| format!("b{tag}-"))
    }

    /// What every scenario starts from: the nodes, a fresh run tag, and `count` users signed
    /// up and logged in (user `i` on node `i % nodes`).
    pub async fn setup(&self, count: usize) -> Result<Setup, BenchError> {
        let targets = self.targets()?;
        let tag = users::run_tag();
        let users = users::create_users(
            &targets,
            &self.user_prefix(&tag),
            count,
            self.setup_concurrency,
        )
        .await?;
        Ok(Setup {
            target: targets[0].clone(),
            targets,
            tag,
            users,
        })
    }
}

/// See [`Common::setup`].
pub struct Setup {
    /// The first node: where a scenario's own REST traffic goes.
    pub target: client::Target,
    /// Every node; user `i` belongs to node `i % targets.len()`.
    pub targets: Vec<client::Target>,
    /// Names this run's conversations and client message ids.
    pub tag: String,
    pub users: Vec<client::User>,
}

#[derive(Debug, Subcommand)]
pub enum Scenario {
    /// Page through a conversation's history over REST (optionally also sending).
    Rest(RestOptions),
    /// Users in small groups all sending over WebSocket; stored and delivered rates, latency.
    Chat(ChatOptions),
    /// One member of a large group sends; time until every member has the message.
    Fanout(FanoutOptions),
    /// A client offline while 10,000 things changed catches up over the WebSocket `sync`
    /// and over `GET /api/v1/sync`: events per second, every message exactly once.
    Catchup(CatchupOptions),
    /// Open many idle WebSockets and measure the server's memory per connection.
    Connections(ConnectionsOptions),
    /// A storm of logins while /health is polled alongside.
    Login(LoginOptions),
    /// One large attachment uploaded and downloaded, streaming: MB/s each way and the
    /// server's memory (with `--server-pid`).
    Files(FilesOptions),
    /// A broker alone (NATS or Redis pub/sub): publish→receive latency at a fixed rate and
    /// the highest rate it sustains. Needs no chatd server.
    Bus(BusOptions),
    /// Seed many messages (the send rate with the search index kept in step), then time
    /// one-word and phrase searches over them.
    Search(SearchOptions),
    /// The `chat` scenario with a webhook endpoint registered on loopback: how fast
    /// `message.created` deliveries arrive, their lag, and that none is lost.
    Webhooks(WebhooksOptions),
    /// Users in groups connect, all drop and all reconnect: presence events received and the
    /// server's CPU time (with `--server-pid`) over the storm.
    Presence(PresenceOptions),
    /// Internal: holds a share of the `connections` scenario in a child process.
    #[command(hide = true)]
    ConnectionsWorker,
}

/// Runs the scenario the command line names.
pub async fn run(cli: &Cli) -> Result<Report, BenchError> {
    let common = &cli.common;
    Ok(match &cli.scenario {
        Scenario::Rest(o) => Report::Rest(scenario::rest::run(common, o).await?),
        Scenario::Chat(o) => Report::Chat(scenario::chat::run(common, o).await?),
        Scenario::Fanout(o) => Report::Fanout(scenario::fanout::run(common, o).await?),
        Scenario::Catchup(o) => Report::Catchup(scenario::catchup::run(common, o).await?),
        Scenario::Connections(o) => {
            Report::Connections(scenario::connections::run(common, o).await?)
        }
        Scenario::Login(o) => Report::Login(scenario::login::run(common, o).await?),
        Scenario::Files(o) => Report::Files(scenario::files::run(common, o).await?),
        Scenario::Bus(o) => Report::Bus(scenario::bus::run(common, o).await?),
        Scenario::Search(o) => Report::Search(scenario::search::run(common, o).await?),
        Scenario::Webhooks(o) => Report::Webhooks(scenario::webhooks::run(common, o).await?),
        Scenario::Presence(o) => Report::Presence(scenario::presence::run(common, o).await?),
        Scenario::ConnectionsWorker => {
            return Err(BenchError::Invalid(
                "connections-worker is run by the connections scenario itself".into(),
            ));
        }
    })
}

/// Parses `90` (seconds), `500ms`, `30s`, `2m` or any humantime duration.
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    if let Ok(seconds) = raw.parse::<f64>()
        && seconds.is_finite()
        && seconds >= 0.0
    {
        return Ok(Duration::from_secs_f64(seconds));
    }
    humantime::parse_duration(raw).map_err(|e| e.to_string())
}

/// Seconds as a float with millisecond precision, for JSON output.
pub(crate) fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_accept_plain_seconds_and_units() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("0.5").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("10ms").unwrap(), Duration::from_millis(10));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn common_flags_are_accepted_after_the_subcommand() {
        let cli = Cli::try_parse_from([
            "chat-bench",
            "chat",
            "--users",
            "6",
            "--json",
            "--duration",
            "2s",
            "--url",
            "http://127.0.0.1:9",
        ])
        .unwrap();
        assert!(cli.common.json);
        assert_eq!(cli.common.duration, Duration::from_secs(2));
        assert_eq!(cli.common.urls, ["http://127.0.0.1:9"]);
        let Scenario::Chat(chat) = cli.scenario else {
            panic!("not the chat scenario")
        };
        assert_eq!(chat.users, 6);
        assert_eq!(chat.group_size, 3);
    }

    #[test]
    fn several_urls_name_the_nodes_of_a_cluster_in_order() {
        let cli = Cli::try_parse_from([
            "chat-bench",
            "chat",
            "--url",
            "http://127.0.0.1:1",
            "--url",
            "http://127.0.0.1:2,http://127.0.0.1:3",
        ])
        .unwrap();
        assert_eq!(
            cli.common.urls,
            [
                "http://127.0.0.1:1",
                "http://127.0.0.1:2",
                "http://127.0.0.1:3"
            ]
        );
        assert_eq!(cli.common.targets().unwrap().len(), 3);
    }

    #[test]
    fn the_library_defaults_are_the_command_lines() {
        let cli = Cli::try_parse_from(["chat-bench", "login"]).unwrap();
        let defaults = Common::new("http://127.0.0.1:8000");
        assert_eq!(cli.common.urls, defaults.urls);
        assert_eq!(cli.common.duration, defaults.duration);
        assert_eq!(cli.common.timeout, defaults.timeout);
        assert_eq!(cli.common.setup_concurrency, defaults.setup_concurrency);
    }
}
