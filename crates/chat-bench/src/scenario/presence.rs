//! `presence`: a mass reconnect. `--users` users in groups of `--group-size` each open one
//! WebSocket; once the presence events of that first connect have died down, every socket
//! drops at once (the TCP connections are cut, as when a node or a network goes) and every
//! user reconnects straight away. From the drop until `--quiet` after the last reconnect the
//! scenario counts the `presence` events its clients receive and, with `--server-pid`, the
//! CPU time the server spent (user + system, from `/proc/<pid>/stat`).
//!
//! Run it against a server with coalescing (`CHAT_PRESENCE_WINDOW=5s`, the default) and
//! without (`CHAT_PRESENCE_WINDOW=0`) to see what coalescing saves; `--quiet` must be longer
//! than the window, or the coalesced events are still waiting when the count ends.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use futures_util::StreamExt;
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::client::{Ws, next_text};
use crate::report::Row;
use crate::stats::Failures;
use crate::{BenchError, Common, Setup, secs};

#[derive(Debug, Clone, Args)]
pub struct PresenceOptions {
    /// Users, each with one WebSocket.
    #[arg(long, default_value_t = 2000)]
    pub users: usize,
    /// Members per group (2–1000): each user shares a conversation with this many others
    /// less one.
    #[arg(long, default_value_t = 20)]
    pub group_size: usize,
    /// Handshakes in flight at once.
    #[arg(long, default_value_t = 200)]
    pub connect_concurrency: usize,
    /// How long to keep counting after the first connect and after the reconnect: longer
    /// than the server's presence window.
    #[arg(long, default_value = "8s", value_parser = crate::parse_duration)]
    pub quiet: Duration,
    /// The server's process id, to read its CPU time from /proc/<pid>/stat.
    #[arg(long)]
    pub server_pid: Option<u32>,
}

/// What a `presence` run measured.
#[derive(Debug, Clone, Serialize)]
pub struct PresenceReport {
    pub users: usize,
    pub group_size: usize,
    /// Presence events received while everyone first connected (not part of the storm).
    pub first_connect_events: u64,
    /// Presence events received from the drop until `quiet` after the last reconnect.
    pub storm_events: u64,
    pub storm_events_per_user: f64,
    /// From the drop until every user had reconnected.
    pub reconnect_s: f64,
    /// Server CPU seconds (user + system) over the storm, with `--server-pid`.
    pub server_cpu_s: Option<f64>,
    pub quiet_s: f64,
    pub setup_s: f64,
    pub failures: Failures,
}

impl PresenceReport {
    pub fn title(&self) -> String {
        format!(
            "presence: {} users in groups of {} drop and reconnect at once",
            self.users, self.group_size
        )
    }

    pub fn rows(&self) -> Vec<Row> {
        vec![
            (
                "presence events, first connect",
                self.first_connect_events.to_string(),
            ),
            (
                "presence events, drop + reconnect",
                self.storm_events.to_string(),
            ),
            ("  per user", format!("{:.2}", self.storm_events_per_user)),
            ("reconnect of everyone", format!("{:.1}s", self.reconnect_s)),
            (
                "server CPU over the storm",
                self.server_cpu_s
                    .map_or_else(|| "(give --server-pid)".into(), |s| format!("{s:.2}s")),
            ),
            (
                "counted until, after reconnect",
                format!("{:.1}s", self.quiet_s),
            ),
            ("errors", self.failures.cell()),
            ("setup (not measured)", format!("{:.1}s", self.setup_s)),
        ]
    }
}

/// Runs the `presence` scenario against the nodes of `common.urls`.
pub async fn run(common: &Common, opts: &PresenceOptions) -> Result<PresenceReport, BenchError> {
    if !(2..=super::fanout::MAX_GROUP).contains(&opts.group_size) || opts.users < opts.group_size {
        return Err(BenchError::Invalid(
            "--group-size must be 2..=1000 and at most --users".into(),
        ));
    }
    let setup_started = Instant::now();
    let Setup {
        target,
        targets,
        tag,
        users,
    } = common.setup(opts.users).await?;
    for (i, members) in users.chunks(opts.group_size).enumerate() {
        let others: Vec<_> = members[1..].iter().collect();
        if !others.is_empty() {
            target
                .create_group(&members[0], &others, &format!("bench {tag} presence {i}"))
                .await?;
        }
    }
    let everyone: Vec<_> = users.iter().collect();
    let events = Arc::new(AtomicU64::new(0));
    let (stop, stopped) = watch::channel(false);
    let sockets = super::connect_all(&targets, &everyone, opts.connect_concurrency).await?;
    let mut readers = listen(sockets, &events, &stopped);
    tokio::time::sleep(opts.quiet).await;
    let first_connect_events = events.swap(0, Ordering::AcqRel);
    let setup = setup_started.elapsed();

    // The storm: every connection cut at once, then everyone back.
    let cpu_before = opts.server_pid.and_then(cpu_seconds);
    let dropped_at = Instant::now();
    for reader in &readers {
        reader.abort();
    }
    let mut failures = Failures::default();
    for reader in readers.drain(..) {
        if let Ok(f) = reader.await {
            failures.merge(&f);
        }
    }
    let sockets = super::connect_all(&targets, &everyone, opts.connect_concurrency).await?;
    let reconnect = dropped_at.elapsed();
    let readers = listen(sockets, &events, &stopped);
    tokio::time::sleep(opts.quiet).await;
    let storm_events = events.load(Ordering::Acquire);
    let cpu_after = opts.server_pid.and_then(cpu_seconds);
    let _ = stop.send(true);
    for reader in readers {
        if let Ok(f) = reader.await {
            failures.merge(&f);
        }
    }

    Ok(PresenceReport {
        users: opts.users,
        group_size: opts.group_size,
        first_connect_events,
        storm_events,
        storm_events_per_user: storm_events as f64 / opts.users as f64,
        reconnect_s: secs(reconnect),
        server_cpu_s: cpu_before.zip(cpu_after).map(|(b, a)| a - b),
        quiet_s: secs(opts.quiet),
        setup_s: secs(setup),
        failures,
    })
}

/// One task per socket counting the `presence` events it receives; dropping (aborting) the
/// task cuts the connection.
fn listen(
    sockets: Vec<Ws>,
    events: &Arc<AtomicU64>,
    stopped: &watch::Receiver<bool>,
) -> Vec<JoinHandle<Failures>> {
    sockets
        .into_iter()
        .map(|ws| {
            let (events, mut stop) = (events.clone(), stopped.clone());
            tokio::spawn(async move {
                // The writing half stays alive with the task, so the socket stays open.
                let (_sink, mut stream) = ws.split();
                let mut failures = Failures::default();
                while let Some(text) = next_text(&mut stream, &mut stop, &mut failures).await {
                    if text.as_str().starts_with(r#"{"type":"presence""#) {
                        events.fetch_add(1, Ordering::Relaxed);
                    }
                }
                failures
            })
        })
        .collect()
}

/// The CPU time (user + system) process `pid` has used, from `/proc/<pid>/stat`, in
/// seconds. Its fields count clock ticks of `USER_HZ`, which Linux fixes at 100 for user
/// space.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_cpu_ticks(&stat).map(|ticks| ticks as f64 / 100.0)
}

/// utime + stime (fields 14 and 15) of a `/proc/<pid>/stat` line; the command name, which
/// may hold spaces and parentheses, ends at the last `)`.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_user_plus_system_even_with_a_strange_command_name() {
        let stat = "4242 (chat (server) x) S 1 4242 4242 0 -1 4194560 1234 0 0 0 \
                    250 75 0 0 20 0 9 0 100 1000 50 18446744073709551615";
        assert_eq!(parse_cpu_ticks(stat), Some(325));
        assert_eq!(parse_cpu_ticks("garbage"), None);
    }
}
