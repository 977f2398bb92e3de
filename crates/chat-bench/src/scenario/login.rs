//! `login`: a storm of logins, with `/health` and WebSocket delivery probed alongside to see
//! whether the password hashing starves everything else.
//!
//! A login costs the server one bcrypt hash, by design the most expensive request there is.
//! The best a server can do is keep every core hashing: `cores ÷ one-hash time` logins a
//! second. The scenario first times a few logins one after another (≈ one hash each) to
//! give that reference, then runs `--concurrency` clients logging in back to back while
//! two probes run, each on its own connections:
//!
//! - `/health` is requested every `--health-interval`;
//! - one user sends a `message` frame every `--ws-interval` to a group of two, and the
//!   other member's WebSocket times each `new_message` from sent to received (the send time
//!   travels in the client message id). Two users kept out of the storm do this, so their
//!   own logins never queue behind it. A probe message the receiver has not got `--timeout`
//!   after the storm is lost, and counts as a failure like an error frame does.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use futures_util::stream::SplitStream;
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;
use tokio_tungstenite::tungstenite::Message;

use crate::client::{RequestFailure, Target, User, Ws, next_text};
use crate::frames::{self, Event};
use crate::report::{Row, count_rate};
use crate::stats::{Failures, Latency, LatencySummary, per_second};
use crate::{BenchError, Common, Setup, secs};

/// Sequential logins timed before the storm for the one-hash reference.
const BASELINE_LOGINS: usize = 5;

/// The WebSocket probe's one sender, as its client message ids name it.
const WS_SENDER: u32 = 0;

#[derive(Debug, Clone, Args)]
pub struct LoginOptions {
    /// Clients logging in at once, each waiting for its answer before the next.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Distinct users logging in (default: one per client, at most 16).
    #[arg(long)]
    pub users: Option<usize>,
    /// Time between two `/health` probes.
    #[arg(long, default_value = "10ms", value_parser = crate::parse_duration)]
    pub health_interval: Duration,
    /// Time between two WebSocket probe messages.
    #[arg(long, default_value = "10ms", value_parser = crate::parse_duration)]
    pub ws_interval: Duration,
    /// The server's cores, for the reference rate (default: this machine's, right when the
    /// server runs here).
    #[arg(long)]
    pub server_cores: Option<usize>,
}

/// What a `login` run measured.
#[derive(Debug, Clone, Serialize)]
pub struct LoginReport {
    pub concurrency: usize,
    pub duration_s: f64,
    /// Successful logins during the storm.
    pub logins: u64,
    pub logins_per_s: f64,
    pub login_latency: LatencySummary,
    /// Median of a few logins one after another, before the storm: about one hash.
    pub one_login_ms: f64,
    pub server_cores: usize,
    /// `server_cores ÷ one_login`: the rate with every core hashing.
    pub reference_logins_per_s: f64,
    /// `logins_per_s ÷ reference_logins_per_s`.
    pub share_of_reference: f64,
    /// `/health` answers during the storm.
    pub health: LatencySummary,
    /// Probe messages sent → received by the other member, during the storm.
    pub ws_delivery: LatencySummary,
    /// Probe messages sent during the storm.
    pub ws_sent: u64,
    /// Probe messages not received within `--timeout` after the storm (also in `failures`,
    /// as `ws lost`).
    pub ws_lost: u64,
    pub setup_s: f64,
    /// Failed logins, failed health probes (prefixed `health`), and the WebSocket probe's
    /// errors and lost messages (prefixed `ws`), by kind.
    pub failures: Failures,
}

impl LoginReport {
    pub fn title(&self) -> String {
        format!(
            "login: {} clients logging in for {}s, /health and WebSocket delivery probed alongside",
            self.concurrency, self.duration_s
        )
    }

    pub fn rows(&self) -> Vec<Row> {
        vec![
            ("logins", count_rate(self.logins, self.logins_per_s)),
            ("login latency p50/p99/max", self.login_latency.cell()),
            (
                "one login alone (≈ one hash)",
                format!("{:.1} ms", self.one_login_ms),
            ),
            (
                "reference: cores ÷ one login",
                format!(
                    "{:.1}/s ({} cores); measured {:.0}% of it",
                    self.reference_logins_per_s,
                    self.server_cores,
                    self.share_of_reference * 100.0
                ),
            ),
            ("/health probes", self.health.count.to_string()),
            ("/health latency p50/p99/max", self.health.cell()),
            (
                "ws messages sent / lost",
                format!("{} / {}", self.ws_sent, self.ws_lost),
            ),
            ("ws delivery p50/p99/max", self.ws_delivery.cell()),
            ("errors", self.failures.cell()),
            ("setup (not measured)", format!("{:.1}s", self.setup_s)),
        ]
    }
}

/// Runs the `login` scenario against the first node of `common.urls`.
pub async fn run(common: &Common, opts: &LoginOptions) -> Result<LoginReport, BenchError> {
    if opts.concurrency == 0 {
        return Err(BenchError::Invalid("--concurrency must be above 0".into()));
    }
    if opts.health_interval.is_zero() || opts.ws_interval.is_zero() {
        return Err(BenchError::Invalid(
            "--health-interval and --ws-interval must be above 0".into(),
        ));
    }
    let setup_started = Instant::now();
    let count = opts.users.unwrap_or(opts.concurrency.min(16)).max(1);
    // Two more users for the WebSocket probe, kept out of the storm.
    let Setup {
        target,
        tag,
        mut users,
        ..
    } = common.setup(count + 2).await?;
    let probe_users = users.split_off(count);
    let probe = WsProbe::connect(&target, &probe_users, &tag).await?;

    let mut baseline = Vec::with_capacity(BASELINE_LOGINS);
    for _ in 0..BASELINE_LOGINS {
        let began = Instant::now();
        target
            .login(target.http(), &users[0].username)
            .await
            .map_err(|f| BenchError::Setup(format!("baseline login: {}", f.0)))?;
        baseline.push(began.elapsed());
    }
    baseline.sort();
    let one_login = baseline[BASELINE_LOGINS / 2];
    let setup = setup_started.elapsed();

    let started = Instant::now();
    let end = started + common.duration;
    let health_client = Target::client(common.timeout)?;
    let health = tokio::spawn(probe_health(
        target.clone(),
        health_client,
        opts.health_interval,
        end,
    ));
    let ws = tokio::spawn(probe.run(opts.ws_interval, end, common.timeout));
    let clients: Vec<_> = (0..opts.concurrency)
        .map(|c| tokio::spawn(storm(target.clone(), users[c % users.len()].clone(), end)))
        .collect();
    let mut latency = Latency::new();
    let mut failures = Failures::default();
    for client in clients {
        let (l, f) = client
            .await
            .map_err(|e| BenchError::Setup(format!("a login task failed: {e}")))?;
        latency.merge(&l);
        failures.merge(&f);
    }
    let elapsed = started.elapsed();
    let (health_latency, health_failures) = health
        .await
        .map_err(|e| BenchError::Setup(format!("the health task failed: {e}")))?;
    failures.merge(&health_failures);
    let ws = ws
        .await
        .map_err(|e| BenchError::Setup(format!("the WebSocket probe failed: {e}")))??;
    failures.merge(&ws.failures);

    let server_cores = opts.server_cores.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let logins_per_s = per_second(latency.count(), elapsed);
    let reference = server_cores as f64 / one_login.as_secs_f64();
    Ok(LoginReport {
        concurrency: opts.concurrency,
        duration_s: secs(common.duration),
        logins: latency.count(),
        logins_per_s,
        login_latency: latency.summary(),
        one_login_ms: one_login.as_secs_f64() * 1000.0,
        server_cores,
        reference_logins_per_s: reference,
        share_of_reference: logins_per_s / reference,
        health: health_latency.summary(),
        ws_delivery: ws.delivery.summary(),
        ws_sent: ws.sent,
        ws_lost: ws.lost,
        setup_s: secs(setup),
        failures,
    })
}

/// One client logging in back to back until `end`.
async fn storm(target: Target, user: User, end: Instant) -> (Latency, Failures) {
    let mut latency = Latency::new();
    let mut failures = Failures::default();
    while Instant::now() < end {
        let began = Instant::now();
        match target.login(target.http(), &user.username).await {
            Ok(_) => latency.record(began.elapsed()),
            Err(RequestFailure(kind)) => failures.add(kind),
        }
    }
    (latency, failures)
}

/// `GET /health` every `interval` until `end`, each probe waiting for the one before.
async fn probe_health(
    target: Target,
    http: reqwest::Client,
    interval: Duration,
    end: Instant,
) -> (Latency, Failures) {
    let mut latency = Latency::new();
    let mut failures = Failures::default();
    let url = target.url("/health");
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    while Instant::now() < end {
        ticks.tick().await;
        let began = Instant::now();
        let outcome = match http.get(&url).send().await {
            Ok(response) if response.status().is_success() => response
                .bytes()
                .await
                .map(|_| ())
                .map_err(|e| RequestFailure::from_reqwest(&e)),
            Ok(response) => Err(RequestFailure::status(response.status())),
            Err(e) => Err(RequestFailure::from_reqwest(&e)),
        };
        match outcome {
            Ok(()) => latency.record(began.elapsed()),
            Err(RequestFailure(kind)) => failures.add(format!("health {kind}")),
        }
    }
    (latency, failures)
}

/// The WebSocket probe: two users in a group of their own, both connected, set up before
/// the storm so that the storm measures delivery and not connecting.
struct WsProbe {
    tag: String,
    conversation_id: uuid::Uuid,
    sender: Ws,
    receiver: Ws,
}

/// What the WebSocket probe measured; its failures are already prefixed `ws`.
struct WsOutcome {
    delivery: Latency,
    sent: u64,
    lost: u64,
    failures: Failures,
}

/// How far the probe has got, shared by the sender, the readers and the drain wait.
struct Progress {
    tag: String,
    epoch: Instant,
    /// Messages the receiver should get: those sent, less those the server refused.
    expected: AtomicI64,
    /// Messages the receiver got (a duplicate does not count).
    received: AtomicI64,
}

impl Progress {
    fn pending(&self) -> bool {
        self.received.load(Ordering::Relaxed) < self.expected.load(Ordering::Relaxed)
    }
}

/// What the receiver's socket saw.
#[derive(Default)]
struct Deliveries {
    delivery: Latency,
    /// Per message number, whether it arrived.
    arrived: Vec<bool>,
    failures: Failures,
}

/// What the sender's socket saw: its own messages come back there, refused or echoed.
#[derive(Default)]
struct Refusals {
    /// Numbers of the messages the server refused with an error frame.
    refused: HashSet<u32>,
    failures: Failures,
}

impl WsProbe {
    /// Puts `users` (sender first, then receiver) in a group and connects both.
    async fn connect(target: &Target, users: &[User], tag: &str) -> Result<Self, BenchError> {
        let [sender, receiver] = users else {
            return Err(BenchError::Setup(
                "the WebSocket probe needs exactly two users".into(),
            ));
        };
        let conversation_id = frames::conversation_id(
            &target
                .create_group(sender, &[receiver], &format!("bench {tag} login probe"))
                .await?,
        )?;
        let mut sockets =
            super::connect_all(std::slice::from_ref(target), &[sender, receiver], 2).await?;
        let (Some(receiver), Some(sender)) = (sockets.pop(), sockets.pop()) else {
            return Err(BenchError::Setup(
                "the WebSocket probe's connections went missing".into(),
            ));
        };
        Ok(Self {
            tag: tag.to_owned(),
            conversation_id,
            sender,
            receiver,
        })
    }

    /// Sends a probe message every `interval` until `end`, then gives the receiver `drain`
    /// to get the last ones: whatever it has not got by then is lost.
    async fn run(
        self,
        interval: Duration,
        end: Instant,
        drain: Duration,
    ) -> Result<WsOutcome, BenchError> {
        let progress = Arc::new(Progress {
            tag: self.tag,
            epoch: Instant::now(),
            expected: AtomicI64::new(0),
            received: AtomicI64::new(0),
        });
        let (stop, stopped) = watch::channel(false);
        let (mut sink, echoes) = self.sender.split();
        // The receiver never writes, but its half stays open until the probe is done.
        let (_receiver_sink, deliveries) = self.receiver.split();
        let refusals = tokio::spawn(read_refusals(echoes, progress.clone(), stopped.clone()));
        let receiver = tokio::spawn(read_deliveries(deliveries, progress.clone(), stopped));

        let mut failures = Failures::default();
        let sent = send_probes(
            &mut sink,
            self.conversation_id,
            interval,
            end,
            &progress,
            &mut failures,
        )
        .await;
        let drain_until = Instant::now() + drain;
        while progress.pending() && !receiver.is_finished() && Instant::now() < drain_until {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let _ = stop.send(true);
        let deliveries = receiver
            .await
            .map_err(|e| BenchError::Setup(format!("the WebSocket probe's reader failed: {e}")))?;
        let refusals = refusals
            .await
            .map_err(|e| BenchError::Setup(format!("the WebSocket probe's reader failed: {e}")))?;

        let lost = (0..sent)
            .filter(|n| !refusals.refused.contains(n))
            .filter(|&n| !deliveries.arrived.get(n as usize).copied().unwrap_or(false))
            .count() as u64;
        failures.merge(&deliveries.failures);
        failures.merge(&refusals.failures);
        failures.add_n("lost", lost);
        Ok(WsOutcome {
            delivery: deliveries.delivery,
            sent: u64::from(sent),
            lost,
            failures: prefixed("ws", &failures),
        })
    }
}

/// Sends a `message` frame every `interval` until `end`, each carrying its send time; how
/// many were sent. A late tick is not caught up: each message's latency is timed from its
/// own send, so a burst would only add load.
async fn send_probes(
    sink: &mut futures_util::stream::SplitSink<Ws, Message>,
    conversation_id: uuid::Uuid,
    interval: Duration,
    end: Instant,
    progress: &Progress,
    failures: &mut Failures,
) -> u32 {
    let mut sent = 0;
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if Instant::now() >= end {
            return sent;
        }
        let nanos = u64::try_from(progress.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let id = frames::client_message_id(&progress.tag, WS_SENDER, sent, nanos);
        let frame = frames::message_frame(conversation_id, &format!("login probe {sent}"), &id);
        if sink.send(Message::Text(frame.into())).await.is_err() {
            failures.add("send failed");
            return sent;
        }
        sent += 1;
        progress.expected.fetch_add(1, Ordering::Relaxed);
    }
}

/// Reads the receiver's socket until told to stop, timing each probe message from its send.
async fn read_deliveries(
    mut stream: SplitStream<Ws>,
    progress: Arc<Progress>,
    mut stop: watch::Receiver<bool>,
) -> Deliveries {
    let mut d = Deliveries::default();
    while let Some(text) = next_text(&mut stream, &mut stop, &mut d.failures).await {
        let now = Instant::now();
        match frames::parse(text.as_str()) {
            Some(Event::NewMessage {
                client_message_id: Some(id),
            }) => {
                let Some(m) = frames::parse_client_message_id(&progress.tag, &id) else {
                    continue;
                };
                let n = m.n as usize;
                if d.arrived.len() <= n {
                    d.arrived.resize(n + 1, false);
                }
                if d.arrived[n] {
                    d.failures.add("duplicate delivery");
                    continue;
                }
                d.arrived[n] = true;
                progress.received.fetch_add(1, Ordering::Relaxed);
                d.delivery
                    .record_micros(m.latency_micros(progress.epoch, now));
            }
            Some(Event::Error { code, .. }) => d.failures.add(format!("error frame {code}")),
            _ => {}
        }
    }
    d
}

/// Reads the sender's socket until told to stop: its echoes are only drained, so that they
/// cannot back up, and an error frame answering a probe message means the receiver will
/// never get that one.
async fn read_refusals(
    mut stream: SplitStream<Ws>,
    progress: Arc<Progress>,
    mut stop: watch::Receiver<bool>,
) -> Refusals {
    let mut r = Refusals::default();
    while let Some(text) = next_text(&mut stream, &mut stop, &mut r.failures).await {
        let Some(Event::Error { code, reference }) = frames::parse(text.as_str()) else {
            continue;
        };
        r.failures.add(format!("error frame {code}"));
        let refused = reference
            .as_deref()
            .and_then(|id| frames::parse_client_message_id(&progress.tag, id));
        if let Some(m) = refused
            && r.refused.insert(m.n)
        {
            progress.expected.fetch_sub(1, Ordering::Relaxed);
        }
    }
    r
}

/// `failures` with every kind prefixed `{prefix} `, to tell a probe's failures from the
/// storm's.
fn prefixed(prefix: &str, failures: &Failures) -> Failures {
    let mut out = Failures::default();
    for (kind, n) in failures.iter() {
        out.add_n(format!("{prefix} {kind}"), n);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_failures_are_told_apart_by_their_prefix() {
        let mut f = Failures::default();
        f.add("lost");
        f.add_n("error frame internal", 2);
        assert_eq!(
            prefixed("ws", &f).cell(),
            "3 (ws error frame internal: 2, ws lost: 1)"
        );
    }
}
