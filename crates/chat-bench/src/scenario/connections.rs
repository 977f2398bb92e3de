//! `connections`: many idle, authenticated WebSockets, and what they cost the server.
//!
//! Users are shared by up to `--per-user` connections (the server's per-user cap), so a large
//! count needs only count ÷ 20 sign-ups. Client sockets are bound to source addresses
//! 127.0.0.2, 127.0.0.3, ... before connecting, so no one address runs out of ports. A
//! process can hold only as many sockets as its open-file limit allows, so a count near that
//! limit is split over child processes of `chat-bench` itself (the hidden
//! `connections-worker` subcommand), which take their share as one JSON line on stdin, report
//! back one JSON line on stdout once connected, and close when stdin says so.
//!
//! With `--server-pid`, the server's resident memory (VmRSS) is read before connecting, with
//! everything connected, and `--settle` after the clients have gone.

use std::net::{IpAddr, Ipv4Addr};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use futures_util::{SinkExt, StreamExt, stream};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use crate::client::{Target, Ws};
use crate::report::Row;
use crate::stats::{Failures, Latency, LatencySummary, per_second};
use crate::{BenchError, Common, Setup, secs};

/// Descriptors a process keeps for itself besides its client sockets.
const SPARE_FILES: u64 = 1024;

#[derive(Debug, Clone, Args)]
pub struct ConnectionsOptions {
    /// Idle WebSockets to open.
    #[arg(long, default_value_t = 1000)]
    pub count: usize,
    /// Source addresses to spread client sockets over: 127.0.0.2 .. 127.0.0.(N+1); 0 lets the
    /// system choose.
    #[arg(long, default_value_t = 8)]
    pub sources: u8,
    /// Processes holding the connections (default: one while the count fits this process's
    /// open-file limit, otherwise enough child processes).
    #[arg(long)]
    pub processes: Option<usize>,
    /// Connections that share one user (the server allows 20 by default).
    #[arg(long, default_value_t = 20)]
    pub per_user: usize,
    /// Handshakes in flight at once, per process.
    #[arg(long, default_value_t = 200)]
    pub connect_concurrency: usize,
    /// The server's process id, to read its resident memory from /proc/<pid>/status.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// How long after the clients have gone to read the server's memory again.
    #[arg(long, default_value = "5s", value_parser = crate::parse_duration)]
    pub settle: Duration,
}

/// What a `connections` run measured.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectionsReport {
    pub requested: usize,
    /// Connections that completed the handshake and got `connected`.
    pub opened: u64,
    pub users: usize,
    pub processes: usize,
    pub source_addresses: usize,
    pub connect_s: f64,
    pub connects_per_s: f64,
    /// Handshake to `connected`, per connection.
    pub connect_latency: LatencySummary,
    /// How long all were held open and idle.
    pub held_s: f64,
    /// Connections the server closed while they were held (also counted in `failures`).
    pub dropped: u64,
    /// The `connections` figure of `/health` while all were open.
    pub server_reported_connections: Option<u64>,
    /// Server VmRSS in KiB: before connecting, all connected, after they have gone.
    pub rss_before_kib: Option<u64>,
    pub rss_connected_kib: Option<u64>,
    pub rss_after_kib: Option<u64>,
    /// (connected − before) ÷ opened.
    pub rss_per_connection_bytes: Option<f64>,
    /// (after − before) ÷ before, in percent.
    pub rss_after_vs_before_pct: Option<f64>,
    pub setup_s: f64,
    /// Failed handshakes and dropped connections, by kind.
    pub failures: Failures,
}

impl ConnectionsReport {
    pub fn title(&self) -> String {
        format!(
            "connections: {} idle WebSockets over {} source addresses in {} process(es), held {}s",
            self.requested, self.source_addresses, self.processes, self.held_s
        )
    }

    pub fn rows(&self) -> Vec<Row> {
        let kib =
            |v: Option<u64>| v.map_or("-".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0));
        vec![
            (
                "opened",
                format!(
                    "{} of {} ({:.0}/s over {:.1}s)",
                    self.opened, self.requested, self.connects_per_s, self.connect_s
                ),
            ),
            ("connect latency p50/p99/max", self.connect_latency.cell()),
            (
                "server says connected",
                self.server_reported_connections
                    .map_or("-".into(), |n| n.to_string()),
            ),
            ("dropped while held", self.dropped.to_string()),
            ("server RSS before", kib(self.rss_before_kib)),
            ("server RSS all connected", kib(self.rss_connected_kib)),
            ("server RSS after they left", kib(self.rss_after_kib)),
            (
                "RSS per connection",
                self.rss_per_connection_bytes
                    .map_or("-".into(), |b| format!("{:.1} KiB", b / 1024.0)),
            ),
            (
                "RSS after vs before",
                self.rss_after_vs_before_pct
                    .map_or("-".into(), |p| format!("{p:+.1}%")),
            ),
            ("errors", self.failures.cell()),
            ("setup (not measured)", format!("{:.1}s", self.setup_s)),
        ]
    }
}

/// A share of the connections, as handed to a worker process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerJob {
    /// Every node; the share's connection `j` goes to node `(first + j) % urls.len()`.
    pub urls: Vec<String>,
    pub first: usize,
    pub timeout_ms: u64,
    /// One token per connection.
    pub tokens: Vec<String>,
    pub sources: Vec<IpAddr>,
    pub concurrency: usize,
}

/// A worker's report once its share is connected.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerOpened {
    pub opened: u64,
    pub failures: Failures,
    pub connect_micros: Vec<u64>,
}

/// A worker's report after closing its share.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerClosed {
    pub dropped: u64,
}

/// Connections held open by one process, each read by its own task (which also answers the
/// server's pings).
pub struct Share {
    tasks: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
    dropped: Arc<AtomicU64>,
    opened: WorkerOpened,
}

impl Share {
    /// Opens one connection per token, spread round-robin over `sources`, and over the nodes
    /// `targets` starting with node `first`.
    pub async fn open(
        targets: &[Target],
        first: usize,
        tokens: &[String],
        sources: &[IpAddr],
        concurrency: usize,
    ) -> Result<Self, BenchError> {
        let mut addrs = Vec::with_capacity(targets.len());
        for target in targets {
            addrs.push(target.socket_addr().await?);
        }
        let (stop, stopped) = watch::channel(false);
        let dropped = Arc::new(AtomicU64::new(0));
        let mut share = Self {
            tasks: Vec::with_capacity(tokens.len()),
            stop,
            dropped: dropped.clone(),
            opened: WorkerOpened {
                opened: 0,
                failures: Failures::default(),
                connect_micros: Vec::with_capacity(tokens.len()),
            },
        };
        let mut attempts = stream::iter(tokens.iter().enumerate())
            .map(|(i, token)| {
                let source = (!sources.is_empty()).then(|| sources[i % sources.len()]);
                let node = (first + i) % targets.len();
                let (target, addr) = (&targets[node], addrs[node]);
                async move {
                    let began = Instant::now();
                    let ws = target.connect_ws(addr, token, source).await;
                    (ws, began.elapsed())
                }
            })
            .buffer_unordered(concurrency.max(1));
        while let Some((ws, took)) = attempts.next().await {
            match ws {
                Ok(ws) => {
                    share.opened.opened += 1;
                    share
                        .opened
                        .connect_micros
                        .push(u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
                    share
                        .tasks
                        .push(tokio::spawn(hold(ws, stopped.clone(), dropped.clone())));
                }
                Err(failure) => share.opened.failures.add(failure.0),
            }
        }
        Ok(share)
    }

    pub fn opened(&self) -> &WorkerOpened {
        &self.opened
    }

    /// Connections the server has closed so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Closes every connection (a close frame, then waiting briefly for the server's).
    pub async fn close(self) -> WorkerClosed {
        let dropped = self.dropped();
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        WorkerClosed { dropped }
    }
}

/// Keeps one connection open and read until told to stop; counts it if the server drops it.
async fn hold(mut ws: Ws, mut stop: watch::Receiver<bool>, dropped: Arc<AtomicU64>) {
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            frame = ws.next() => match frame {
                Some(Ok(Message::Close(_)) | Err(_)) | None => {
                    dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Some(Ok(_)) => {}
            },
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        let _ = ws.send(Message::Close(None)).await;
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}

/// Runs the `connections` scenario against the nodes of `common.urls` (connections spread round-robin).
pub async fn run(
    common: &Common,
    opts: &ConnectionsOptions,
) -> Result<ConnectionsReport, BenchError> {
    if opts.count == 0 || opts.per_user == 0 {
        return Err(BenchError::Invalid(
            "--count and --per-user must be above 0".into(),
        ));
    }
    let file_limit = raise_open_file_limit();
    let processes = match opts.processes {
        Some(p) => p.max(1),
        None if (opts.count as u64) + SPARE_FILES <= file_limit => 1,
        None => opts
            .count
            .div_ceil(usize::try_from(file_limit / 2).unwrap_or(1).max(1)),
    };
    let setup_started = Instant::now();
    let user_count = opts.count.div_ceil(opts.per_user);
    let Setup { targets, users, .. } = common.setup(user_count).await?;
    let tokens: Vec<String> = (0..opts.count)
        .map(|i| users[i / opts.per_user].token.clone())
        .collect();
    let sources: Vec<IpAddr> = (0..opts.sources)
        .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2u8.saturating_add(i))))
        .collect();
    let setup = setup_started.elapsed();
    let rss = |pid: Option<u32>| pid.and_then(read_rss_kib);
    let rss_before = rss(opts.server_pid);

    // Connect, in this process or in workers.
    let connect_started = Instant::now();
    let mut holders = Holders::start(common, opts, &targets, &tokens, &sources, processes).await?;
    let connect_elapsed = connect_started.elapsed();
    let mut failures = Failures::default();
    let mut connect = Latency::new();
    let mut opened = 0;
    for report in holders.opened() {
        opened += report.opened;
        failures.merge(&report.failures);
        for &micros in &report.connect_micros {
            connect.record_micros(micros);
        }
    }

    // Hold them all, idle.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let server_reported = server_connections(&targets).await;
    let rss_connected = rss(opts.server_pid);
    let held_started = Instant::now();
    tokio::time::sleep(common.duration.saturating_sub(Duration::from_secs(1))).await;
    let held = held_started.elapsed() + Duration::from_secs(1);

    let dropped = holders.close().await?;
    failures.add_n("dropped by the server while held", dropped);
    let rss_after = if opts.server_pid.is_some() {
        tokio::time::sleep(opts.settle).await;
        rss(opts.server_pid)
    } else {
        None
    };

    let per_connection = match (rss_before, rss_connected) {
        (Some(before), Some(connected)) if opened > 0 => {
            Some((connected as f64 - before as f64) * 1024.0 / opened as f64)
        }
        _ => None,
    };
    let after_vs_before = match (rss_before, rss_after) {
        (Some(before), Some(after)) if before > 0 => {
            Some((after as f64 - before as f64) * 100.0 / before as f64)
        }
        _ => None,
    };
    Ok(ConnectionsReport {
        requested: opts.count,
        opened,
        users: user_count,
        processes,
        source_addresses: sources.len(),
        connect_s: secs(connect_elapsed),
        connects_per_s: per_second(opened, connect_elapsed),
        connect_latency: connect.summary(),
        held_s: secs(held),
        dropped,
        server_reported_connections: server_reported,
        rss_before_kib: rss_before,
        rss_connected_kib: rss_connected,
        rss_after_kib: rss_after,
        rss_per_connection_bytes: per_connection,
        rss_after_vs_before_pct: after_vs_before,
        setup_s: secs(setup),
        failures,
    })
}

/// Whoever holds the connections: this process, or worker processes.
enum Holders {
    Here(Share),
    Workers(Vec<Worker>),
}

struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: tokio::io::Lines<BufReader<ChildStdout>>,
    opened: WorkerOpened,
}

impl Holders {
    async fn start(
        common: &Common,
        opts: &ConnectionsOptions,
        targets: &[Target],
        tokens: &[String],
        sources: &[IpAddr],
        processes: usize,
    ) -> Result<Self, BenchError> {
        if processes == 1 {
            let share = Share::open(targets, 0, tokens, sources, opts.connect_concurrency).await?;
            return Ok(Self::Here(share));
        }
        let exe = std::env::current_exe()
            .map_err(|e| BenchError::Worker(format!("cannot find chat-bench itself: {e}")))?;
        let per_process = tokens.len().div_ceil(processes);
        let mut workers = Vec::with_capacity(processes);
        // Start every worker first, so that they all connect at once.
        for (k, share) in tokens.chunks(per_process).enumerate() {
            let mut child = Command::new(&exe)
                .arg("connections-worker")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| BenchError::Worker(format!("cannot start {}: {e}", exe.display())))?;
            let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
                return Err(BenchError::Worker("worker without pipes".into()));
            };
            let job = WorkerJob {
                urls: common.urls.clone(),
                first: k * per_process,
                timeout_ms: u64::try_from(common.timeout.as_millis()).unwrap_or(u64::MAX),
                tokens: share.to_vec(),
                sources: sources.to_vec(),
                concurrency: opts.connect_concurrency,
            };
            write_line(&mut stdin, &job).await?;
            workers.push((child, stdin, BufReader::new(stdout).lines()));
        }
        let mut started = Vec::with_capacity(workers.len());
        for (child, stdin, mut stdout) in workers {
            let opened: WorkerOpened = read_line(&mut stdout).await?;
            started.push(Worker {
                child,
                stdin,
                stdout,
                opened,
            });
        }
        Ok(Self::Workers(started))
    }

    fn opened(&self) -> Vec<&WorkerOpened> {
        match self {
            Self::Here(share) => vec![share.opened()],
            Self::Workers(workers) => workers.iter().map(|w| &w.opened).collect(),
        }
    }

    /// Closes every connection; how many the server had dropped before.
    async fn close(&mut self) -> Result<u64, BenchError> {
        match std::mem::replace(self, Self::Workers(Vec::new())) {
            Self::Here(share) => Ok(share.close().await.dropped),
            Self::Workers(workers) => {
                let mut pending = Vec::with_capacity(workers.len());
                for mut w in workers {
                    w.stdin.write_all(b"close\n").await.map_err(|e| {
                        BenchError::Worker(format!("telling a worker to close: {e}"))
                    })?;
                    pending.push(w);
                }
                let mut dropped = 0;
                for mut w in pending {
                    let closed: WorkerClosed = read_line(&mut w.stdout).await?;
                    dropped += closed.dropped;
                    drop(w.stdin);
                    let _ = w.child.wait().await;
                }
                Ok(dropped)
            }
        }
    }
}

async fn write_line<T: Serialize>(stdin: &mut ChildStdin, value: &T) -> Result<(), BenchError> {
    let mut line = serde_json::to_vec(value)
        .map_err(|e| BenchError::Worker(format!("encoding a worker job: {e}")))?;
    line.push(b'\n');
    stdin
        .write_all(&line)
        .await
        .map_err(|e| BenchError::Worker(format!("writing to a worker: {e}")))
}

async fn read_line<T: for<'de> Deserialize<'de>>(
    stdout: &mut tokio::io::Lines<BufReader<ChildStdout>>,
) -> Result<T, BenchError> {
    let line = stdout
        .next_line()
        .await
        .map_err(|e| BenchError::Worker(format!("reading from a worker: {e}")))?
        .ok_or_else(|| BenchError::Worker("a worker exited early".into()))?;
    serde_json::from_str(&line)
        .map_err(|e| BenchError::Worker(format!("a worker said {line:?}: {e}")))
}

/// The hidden `connections-worker` subcommand: one job line in, one line out when connected,
/// then any line (or the end of stdin) closes the share and a last line reports it.
pub async fn worker_main() -> Result<(), BenchError> {
    raise_open_file_limit();
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    let line = stdin
        .next_line()
        .await
        .map_err(|e| BenchError::Worker(format!("reading the job: {e}")))?
        .ok_or_else(|| BenchError::Worker("no job on stdin".into()))?;
    let job: WorkerJob = serde_json::from_str(&line)
        .map_err(|e| BenchError::Worker(format!("reading the job: {e}")))?;
    let targets = job
        .urls
        .iter()
        .map(|url| Target::new(url, Duration::from_millis(job.timeout_ms)))
        .collect::<Result<Vec<_>, _>>()?;
    if targets.is_empty() {
        return Err(BenchError::Worker("a job without a node".into()));
    }
    let share = Share::open(
        &targets,
        job.first,
        &job.tokens,
        &job.sources,
        job.concurrency,
    )
    .await?;
    let mut stdout = tokio::io::stdout();
    report_line(&mut stdout, share.opened()).await?;
    let _ = stdin.next_line().await;
    let closed = share.close().await;
    report_line(&mut stdout, &closed).await
}

async fn report_line<T: Serialize>(
    stdout: &mut tokio::io::Stdout,
    value: &T,
) -> Result<(), BenchError> {
    let mut line = serde_json::to_vec(value)
        .map_err(|e| BenchError::Worker(format!("encoding a report: {e}")))?;
    line.push(b'\n');
    let written = stdout.write_all(&line).await;
    written
        .and(stdout.flush().await)
        .map_err(|e| BenchError::Worker(format!("reporting back: {e}")))
}

/// Raises this process's open-file limit to the hard limit; the soft limit now in force.
pub fn raise_open_file_limit() -> u64 {
    rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024)
}

/// `VmRSS` of process `pid` in KiB, from `/proc/<pid>/status`.
pub fn read_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vm_rss(&status)
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The `connections` figures of every node's `/health`, added up (`None` if a node does not
/// report one).
async fn server_connections(targets: &[Target]) -> Option<u64> {
    let mut total = 0;
    for target in targets {
        total += target.api().health().await.ok()?.connections as u64;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resident_memory_is_read_from_the_status_file() {
        let status =
            "Name:\tchat-server\nVmPeak:\t  999 kB\nVmRSS:\t   12345 kB\nRssAnon:\t 1 kB\n";
        assert_eq!(parse_vm_rss(status), Some(12345));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
        assert!(read_rss_kib(std::process::id()).is_some_and(|kib| kib > 0));
    }
}
