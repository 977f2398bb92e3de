//! The cluster under test: a fresh PostgreSQL database, a private `nats-server` on a free port
//! and three `chat-server` processes sharing both, started for one test and stopped (the
//! database dropped) when it ends.
//!
//! The broker is private so a test may kill it and start it again on the same port; the
//! nodes are real processes so a test may SIGKILL one. Each node's log goes to a file that is
//! printed when the test fails.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chat_postgres::testing::TestDatabase;
use reqwest::StatusCode;

/// The token secret every node of a cluster shares, so a token from one is good on all.
const SECRET: &str = "cluster-test-secret-that-is-long-enough-0123456789";

/// How long a node or the broker may take to start answering.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Why the cluster tests cannot run on this machine, if they cannot (PostgreSQL is checked
/// by [`TestDatabase::create`]).
fn missing_broker() -> Option<&'static str> {
    let on_path = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| dir.join("nats-server").is_file())
    });
    (!on_path).then_some("nats-server is not on PATH")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("a free loopback port")
        .local_addr()
        .expect("the port bound")
        .port()
}

/// Waits until something listens on the loopback `port`.
async fn wait_listening(port: u16, what: &str) {
    let deadline = tokio::time::Instant::now() + START_TIMEOUT;
    while tokio::time::Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{what} did not listen on port {port} within {START_TIMEOUT:?}");
}

/// A private `nats-server` (JetStream on, its store in a temporary directory).
pub struct Broker {
    port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Broker {
    async fn start() -> Self {
        let mut broker = Self {
            port: free_port(),
            child: None,
            dir: tempfile::tempdir().expect("a directory for the broker"),
        };
        broker.spawn().await;
        broker
    }

    async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("nats.log"))
            .expect("the broker's log file");
        let child = Command::new("nats-server")
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(self.dir.path().join("store"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
        wait_listening(self.port, "nats-server").await;
    }

    /// `nats://127.0.0.1:<port>`, the same across [`Broker::kill`] and [`Broker::restart`].
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// SIGKILLs the broker: every node loses the bus at once.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the broker again on the same port and waits until it listens.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "the broker is still running");
        self.spawn().await;
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One `chat-server` process.
pub struct Node {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// `ws://127.0.0.1:<port>/api/v1/ws`.
    pub ws_url: String,
    /// The port of its metrics listener (`CHAT_METRICS_BIND`).
    pub metrics: u16,
    pub http: reqwest::Client,
    child: Option<Child>,
    log: PathBuf,
}

impl Node {
    async fn start(database_url: &str, bus_url: &str, log: PathBuf) -> Self {
        let (port, metrics) = (free_port(), free_port());
        let log_file = std::fs::File::create(&log).expect("the node's log file");
        let child = Command::new(env!("CARGO_BIN_EXE_chat-server"))
            .env("CHAT_BIND", format!("127.0.0.1:{port}"))
            .env("CHAT_METRICS_BIND", format!("127.0.0.1:{metrics}"))
            .env("DATABASE_URL", database_url)
            .env("CHAT_BUS_URL", bus_url)
            .env("CHAT_JWT_SECRET", SECRET)
            .env("CHAT_BCRYPT_COST", "4")
            .env("CHAT_RATE_LIMITS", "false")
            .env("CHAT_WORKERS", "2")
            // The heartbeat re-checks tokens every interval; keep it long so that only the
            // bus can close a revoked token's socket within a test's patience.
            .env("CHAT_WS_PING_INTERVAL", "30s")
            // Going offline is announced with the window, not 30 s later.
            .env("CHAT_PRESENCE_OFFLINE_AFTER", "0s")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("the chat-server binary starts");
        let mut node = Self {
            base: format!("http://127.0.0.1:{port}"),
            ws_url: format!("ws://127.0.0.1:{port}/api/v1/ws"),
            metrics,
            http: reqwest::Client::new(),
            child: Some(child),
            log,
        };
        node.wait_healthy().await;
        node
    }

    async fn wait_healthy(&mut self) {
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        while tokio::time::Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!(
                    "the node at {} exited ({status}) while starting; its log:\n{}",
                    self.base,
                    log_tail(&self.log)
                );
            }
            if let Ok(response) = self.http.get(format!("{}/health", self.base)).send().await
                && response.status() == StatusCode::OK
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "the node at {} did not become healthy within {START_TIMEOUT:?}; its log:\n{}",
            self.base,
            log_tail(&self.log)
        );
    }

    /// SIGKILLs the process: no shutdown, its sockets simply drop.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The last lines of a log file, for a failure message.
fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Three nodes on one database and one broker. Fields drop in order: the nodes first, then
/// the broker, then the database (which needs its connections gone).
pub struct Cluster {
    pub nodes: Vec<Node>,
    pub broker: Broker,
    database: TestDatabase,
    logs: tempfile::TempDir,
}

impl Cluster {
    /// Starts a cluster of three nodes, or prints why it cannot and returns `None` (only when
    /// `CHAT_TEST_POSTGRES_URL` is unset or `nats-server` is missing; CI checks both first).
    pub async fn start() -> Option<Self> {
        if let Some(reason) = missing_broker() {
            // Straight to the process's stderr, past the test harness's capture, so that a
            // plain `cargo test` shows what it did not run.
            let _ = writeln!(std::io::stderr(), "SKIPPED: cluster tests: {reason}");
            return None;
        }
        let database = tokio::task::spawn_blocking(|| TestDatabase::create("cluster tests"))
            .await
            .expect("the database is created or skipped")?;
        let broker = Broker::start().await;
        let logs = tempfile::tempdir().expect("a directory for the node logs");
        let log = |i: usize| logs.path().join(format!("node-{}.log", node_name(i)));
        // The first node applies the migrations; the others start once it has.
        let bus_url = broker.url();
        let first = Node::start(database.url(), &bus_url, log(0)).await;
        let (second, third) = tokio::join!(
            Node::start(database.url(), &bus_url, log(1)),
            Node::start(database.url(), &bus_url, log(2)),
        );
        Some(Self {
            nodes: vec![first, second, third],
            broker,
            database,
            logs,
        })
    }

    /// The WebSocket URLs of every node, starting with node `first` and going round.
    pub fn ws_urls_from(&self, first: usize) -> Vec<String> {
        (0..self.nodes.len())
            .map(|i| self.nodes[(first + i) % self.nodes.len()].ws_url.clone())
            .collect()
    }
}

/// Nodes are named A, B, C in failure messages.
pub fn node_name(i: usize) -> char {
    (b'A' + u8::try_from(i).expect("a few nodes")) as char
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for i in 0..self.nodes.len() {
                let path = self.logs.path().join(format!("node-{}.log", node_name(i)));
                eprintln!("--- log of node {} ---\n{}", node_name(i), log_tail(&path));
            }
            eprintln!(
                "--- broker log ---\n{}\n(database {})",
                log_tail(&self.broker.dir.path().join("nats.log")),
                self.database.url()
            );
        }
    }
}
