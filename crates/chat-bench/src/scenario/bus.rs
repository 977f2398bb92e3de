//! `bus`: a broker alone, without chatd: publish→receive latency at a fixed rate and the
//! highest rate it sustains, for NATS core pub/sub and Redis pub/sub alike, so the event bus
//! is chosen by measurement (docs/scaling.md, "The event bus").
//!
//! One publisher and `--subscribers` subscribers, each on its own connection, all in this
//! process so that one clock times them: every payload starts with its sequence number and
//! its send time. The fixed-rate phase paces sends per millisecond; the ramp then doubles the
//! offered rate, two seconds a step, while every subscriber still gets every message at no
//! less than 95 % of the offered rate with p99 under 100 ms.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use futures_util::StreamExt;
use futures_util::future::join_all;
use serde::Serialize;

use crate::report::Row;
use crate::stats::{Latency, LatencySummary};
use crate::{BenchError, Common, secs};

#[derive(Debug, Clone, Args)]
pub struct BusOptions {
    /// The broker: `nats://host:port` or `redis://host:port`.
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    pub broker: String,
    /// Messages per second in the fixed-rate phase (which lasts --duration).
    #[arg(long, default_value_t = 5000)]
    pub rate: u64,
    /// Bytes per message.
    #[arg(long, default_value_t = 500)]
    pub payload: usize,
    /// Subscribers, each on its own connection.
    #[arg(long, default_value_t = 2)]
    pub subscribers: usize,
    /// Skip the search for the highest sustained rate.
    #[arg(long)]
    pub no_ramp: bool,
}

/// One phase at one offered rate.
#[derive(Debug, Clone, Serialize)]
pub struct BusPhase {
    pub offered_per_s: u64,
    pub sent: u64,
    /// Sent messages per second actually achieved by the publisher.
    pub sent_per_s: f64,
    /// Deliveries over all subscribers (each should get every message).
    pub received: u64,
    pub lost: u64,
    pub latency: LatencySummary,
}

#[derive(Debug, Clone, Serialize)]
pub struct BusReport {
    pub broker: String,
    pub payload_bytes: usize,
    pub subscribers: usize,
    pub duration_s: f64,
    pub fixed: BusPhase,
    /// The highest ramp step every subscriber kept up with (none when the ramp was skipped).
    pub max_sustained_per_s: Option<u64>,
    pub ramp: Vec<BusPhase>,
}

impl BusReport {
    pub fn failure_count(&self) -> u64 {
        self.fixed.lost
    }

    pub fn title(&self) -> String {
        format!(
            "bus: {} with {} subscribers, {}-byte messages",
            self.broker, self.subscribers, self.payload_bytes
        )
    }

    pub fn rows(&self) -> Vec<Row> {
        let mut rows = vec![
            (
                "fixed rate offered / sent",
                format!(
                    "{}/s / {:.0}/s for {}s",
                    self.fixed.offered_per_s, self.fixed.sent_per_s, self.duration_s
                ),
            ),
            (
                "deliveries (lost)",
                format!("{} ({})", self.fixed.received, self.fixed.lost),
            ),
            ("latency p50/p99/max", self.fixed.latency.cell()),
        ];
        for step in &self.ramp {
            rows.push((
                "ramp step: offered, sent, lost, p99",
                format!(
                    "{}/s, {:.0}/s, {}, {:.2} ms",
                    step.offered_per_s, step.sent_per_s, step.lost, step.latency.p99_ms
                ),
            ));
        }
        rows.push((
            "max sustained rate",
            self.max_sustained_per_s
                .map_or("not measured".into(), |r| format!("{r}/s")),
        ));
        rows
    }
}

/// The bench's subject (NATS) or channel (Redis).
const TOPIC: &str = "chatd.bench.bus";
const RAMP_STEP: Duration = Duration::from_secs(2);
const RAMP_START: u64 = 10_000;
const RAMP_MAX: u64 = 1_280_000;

pub async fn run(common: &Common, options: &BusOptions) -> Result<BusReport, BenchError> {
    if options.payload < 16 || options.subscribers == 0 || options.rate == 0 {
        return Err(BenchError::Invalid(
            "--payload must be at least 16 bytes; --subscribers and --rate at least 1".into(),
        ));
    }
    let broker = Broker::connect(&options.broker).await?;
    let fixed = phase(&broker, options, options.rate, common.duration).await?;
    let mut ramp = Vec::new();
    let mut max_sustained = None;
    if !options.no_ramp {
        let mut rate = RAMP_START;
        while rate <= RAMP_MAX {
            let step = phase(&broker, options, rate, RAMP_STEP).await?;
            let kept_up = step.lost == 0
                && step.sent_per_s >= 0.95 * rate as f64
                && step.latency.p99_ms < 100.0;
            ramp.push(step);
            if !kept_up {
                break;
            }
            max_sustained = Some(rate);
            rate *= 2;
        }
    }
    Ok(BusReport {
        broker: options.broker.clone(),
        payload_bytes: options.payload,
        subscribers: options.subscribers,
        duration_s: secs(common.duration),
        fixed,
        max_sustained_per_s: max_sustained,
        ramp,
    })
}

/// Offers `rate` messages a second for `length`, then waits for the stragglers.
async fn phase(
    broker: &Broker,
    options: &BusOptions,
    rate: u64,
    length: Duration,
) -> Result<BusPhase, BenchError> {
    let epoch = Instant::now();
    let received = Arc::new(AtomicU64::new(0));
    let mut subscribers = Vec::new();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(options.subscribers);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    for _ in 0..options.subscribers {
        subscribers.push(tokio::spawn(subscribe(
            broker.clone(),
            epoch,
            received.clone(),
            ready_tx.clone(),
            stop_rx.clone(),
        )));
    }
    for _ in 0..options.subscribers {
        ready_rx
            .recv()
            .await
            .ok_or_else(|| BenchError::Setup("a subscriber failed to subscribe".into()))??;
    }
    // Subscriptions are in place at the broker once a round trip has followed them.
    broker.flush().await?;

    let sent = publish(broker, epoch, rate, length, options.payload).await?;
    let elapsed = epoch.elapsed();
    let expected = sent * options.subscribers as u64;
    let deadline = Instant::now() + Duration::from_secs(5);
    while received.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = stop_tx.send(true);
    let mut latency = Latency::new();
    for subscriber in subscribers {
        if let Ok(histogram) = subscriber.await {
            latency.merge(&histogram);
        }
    }
    let got = received.load(Ordering::Relaxed);
    Ok(BusPhase {
        offered_per_s: rate,
        sent,
        sent_per_s: sent as f64 / elapsed.as_secs_f64().min(length.as_secs_f64()).max(1e-3),
        received: got,
        lost: expected.saturating_sub(got),
        latency: latency.summary(),
    })
}

/// Sends `rate / 1000` messages each millisecond (catching up when a tick runs late).
async fn publish(
    broker: &Broker,
    epoch: Instant,
    rate: u64,
    length: Duration,
    payload: usize,
) -> Result<u64, BenchError> {
    let start = Instant::now();
    let mut sent = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut buffer = vec![0u8; payload];
    while start.elapsed() < length {
        tick.tick().await;
        let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
        let mut batch = Vec::new();
        while sent < due {
            buffer[..8].copy_from_slice(&sent.to_le_bytes());
            let micros = epoch.elapsed().as_micros() as u64;
            buffer[8..16].copy_from_slice(&micros.to_le_bytes());
            batch.push(bytes::Bytes::copy_from_slice(&buffer));
            sent += 1;
        }
        broker.publish(batch).await?;
    }
    broker.flush().await?;
    Ok(sent)
}

/// Records every message's latency until told to stop.
async fn subscribe(
    broker: Broker,
    epoch: Instant,
    received: Arc<AtomicU64>,
    ready: tokio::sync::mpsc::Sender<Result<(), BenchError>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Latency {
    let mut latency = Latency::new();
    let mut record = |payload: &[u8]| {
        if let Some(sent) = payload.get(8..16) {
            let mut micros = [0u8; 8];
            micros.copy_from_slice(sent);
            let now = epoch.elapsed().as_micros() as u64;
            latency.record_micros(now.saturating_sub(u64::from_le_bytes(micros)));
            received.fetch_add(1, Ordering::Relaxed);
        }
    };
    match broker {
        Broker::Nats(client) => {
            let mut subscription = match client.subscribe(TOPIC).await {
                Ok(s) => s,
                Err(e) => {
                    let _ = ready.send(Err(setup(e))).await;
                    return latency;
                }
            };
            let _ = ready.send(Ok(())).await;
            loop {
                tokio::select! {
                    message = subscription.next() => match message {
                        Some(message) => record(&message.payload),
                        None => break,
                    },
                    _ = stop.changed() => break,
                }
            }
        }
        Broker::Redis { client, .. } => {
            let mut pubsub = match client.get_async_pubsub().await {
                Ok(p) => p,
                Err(e) => {
                    let _ = ready.send(Err(setup(e))).await;
                    return latency;
                }
            };
            if let Err(e) = pubsub.subscribe(TOPIC).await {
                let _ = ready.send(Err(setup(e))).await;
                return latency;
            }
            let _ = ready.send(Ok(())).await;
            let mut messages = pubsub.on_message();
            loop {
                tokio::select! {
                    message = messages.next() => match message {
                        Some(message) => record(message.get_payload_bytes()),
                        None => break,
                    },
                    _ = stop.changed() => break,
                }
            }
        }
    }
    latency
}

fn setup(error: impl std::fmt::Display) -> BenchError {
    BenchError::Setup(format!("broker: {error}"))
}

/// A connection to one of the two brokers.
#[derive(Clone)]
enum Broker {
    /// One client: publishes are buffered and need no reply.
    Nats(async_nats::Client),
    /// Subscribers open their own connection from `client`; publishes go down one
    /// multiplexed connection, pipelined (each `PUBLISH` has a reply).
    Redis {
        client: redis::Client,
        publisher: redis::aio::MultiplexedConnection,
    },
}

impl Broker {
    async fn connect(url: &str) -> Result<Self, BenchError> {
        if url.starts_with("nats://") {
            return Ok(Broker::Nats(async_nats::connect(url).await.map_err(setup)?));
        }
        if url.starts_with("redis://") {
            let client = redis::Client::open(url).map_err(setup)?;
            let publisher = client
                .get_multiplexed_async_connection()
                .await
                .map_err(setup)?;
            return Ok(Broker::Redis { client, publisher });
        }
        Err(BenchError::Invalid(format!(
            "--broker must be nats://... or redis://..., not {url}"
        )))
    }

    async fn publish(&self, batch: Vec<bytes::Bytes>) -> Result<(), BenchError> {
        match self {
            Broker::Nats(client) => {
                for payload in batch {
                    client.publish(TOPIC, payload).await.map_err(setup)?;
                }
            }
            Broker::Redis { publisher, .. } => {
                let sends = batch.into_iter().map(|payload| {
                    let mut connection = publisher.clone();
                    async move {
                        redis::cmd("PUBLISH")
                            .arg(TOPIC)
                            .arg(payload.as_ref())
                            .query_async::<i64>(&mut connection)
                            .await
                    }
                });
                for result in join_all(sends).await {
                    result.map_err(setup)?;
                }
            }
        }
        Ok(())
    }

    /// Returns once everything sent before has reached the broker.
    async fn flush(&self) -> Result<(), BenchError> {
        match self {
            Broker::Nats(client) => client.flush().await.map_err(setup),
            Broker::Redis { publisher, .. } => {
                let mut connection = publisher.clone();
                redis::cmd("PING")
                    .query_async::<String>(&mut connection)
                    .await
                    .map(|_| ())
                    .map_err(setup)
            }
        }
    }
}
