//! `fanout`: one large group, every member connected, one member sending one message at a
//! time; how long until the last member has it.
//!
//! Each member's connection reports the arrival time of every bench message to the
//! coordinator, which sends the next message only once every member has the current one
//! (or `--timeout` has passed, and the members without it count as lost).

use std::time::{Duration, Instant};

use clap::Args;
use futures_util::stream::SplitStream;
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;

use crate::client::{Ws, next_text};
use crate::frames::{self, Event};
use crate::report::{Row, count_rate};
use crate::stats::{Failures, Latency, LatencySummary, per_second};
use crate::{BenchError, Common, Setup, secs};

/// The most members a group may have (`MAX_GROUP_MEMBERS` on the server).
pub const MAX_GROUP: usize = 1000;

#[derive(Debug, Clone, Args)]
pub struct FanoutOptions {
    /// Members of the group, the sender included (2–1000), each with one WebSocket.
    #[arg(long, default_value_t = 1000)]
    pub members: usize,
    /// Most messages to send; the run also ends after --duration.
    #[arg(long, default_value_t = 1000)]
    pub messages: usize,
    /// How long every member has to receive a message; members without it by then lose it.
    #[arg(long, default_value = "5s", value_parser = crate::parse_duration)]
    pub timeout: Duration,
    /// Pause after a message has reached everyone, before the next one.
    #[arg(long, default_value = "10ms", value_parser = crate::parse_duration)]
    pub gap: Duration,
}

/// What a `fanout` run measured.
#[derive(Debug, Clone, Serialize)]
pub struct FanoutReport {
    pub members: usize,
    pub duration_s: f64,
    /// Messages sent by the one sender.
    pub messages: u64,
    /// Messages every member received within the timeout.
    pub complete: u64,
    /// Deliveries within the timeout, the sender's echo included.
    pub deliveries: u64,
    pub deliveries_per_s: f64,
    /// Per message: sent → the last member has it (complete messages only).
    pub last_member_latency: LatencySummary,
    /// Per delivery: sent → this member has it.
    pub delivery_latency: LatencySummary,
    /// Member × message pairs not delivered within the timeout.
    pub lost: u64,
    /// Deliveries that came after their timeout (already counted as lost).
    pub late: u64,
    pub duplicates: u64,
    pub setup_s: f64,
    pub failures: Failures,
}

impl FanoutReport {
    pub fn failure_count(&self) -> u64 {
        self.failures.total() + self.lost + self.duplicates
    }

    pub fn title(&self) -> String {
        format!(
            "fanout: one sender to a group of {} members, one message at a time, for {}s",
            self.members, self.duration_s
        )
    }

    pub fn rows(&self) -> Vec<Row> {
        vec![
            ("messages sent", self.messages.to_string()),
            ("messages every member got", self.complete.to_string()),
            (
                "deliveries",
                count_rate(self.deliveries, self.deliveries_per_s),
            ),
            (
                "time to last member p50/p99/max",
                self.last_member_latency.cell(),
            ),
            (
                "per-delivery latency p50/p99/max",
                self.delivery_latency.cell(),
            ),
            ("lost deliveries", self.lost.to_string()),
            ("late deliveries (counted lost)", self.late.to_string()),
            ("duplicated deliveries", self.duplicates.to_string()),
            ("errors", self.failures.cell()),
            ("setup (not measured)", format!("{:.1}s", self.setup_s)),
        ]
    }
}

/// An arrival, as a member's reader reports it: member, message number, when.
type Arrival = (u32, u32, Instant);

/// Runs the `fanout` scenario against the nodes of `common.urls` (members spread round-robin; the sender is on the first).
pub async fn run(common: &Common, opts: &FanoutOptions) -> Result<FanoutReport, BenchError> {
    if !(2..=MAX_GROUP).contains(&opts.members) {
        return Err(BenchError::Invalid(format!(
            "--members must be 2..={MAX_GROUP}"
        )));
    }
    let setup_started = Instant::now();
    let Setup {
        target,
        targets,
        tag,
        users,
    } = common.setup(opts.members).await?;
    let others: Vec<_> = users[1..].iter().collect();
    let conversation = frames::conversation_id(
        &target
            .create_group(&users[0], &others, &format!("bench {tag} fanout"))
            .await?,
    )?;
    let sockets = super::connect_all(&targets, &users.iter().collect::<Vec<_>>(), 64).await?;
    let setup = setup_started.elapsed();

    let epoch = Instant::now();
    let (arrivals, mut arrived) = mpsc::unbounded_channel::<Arrival>();
    let (stop, stopped) = watch::channel(false);
    let mut readers = Vec::with_capacity(opts.members);
    let mut sender = None;
    for (i, ws) in sockets.into_iter().enumerate() {
        let (sink, stream) = ws.split();
        if i == 0 {
            sender = Some(sink);
        }
        let me = u32::try_from(i).unwrap_or(u32::MAX);
        readers.push(tokio::spawn(read(
            me,
            stream,
            tag.clone(),
            arrivals.clone(),
            stopped.clone(),
        )));
    }
    drop(arrivals);
    let Some(mut sender) = sender else {
        return Err(BenchError::Setup("no sender connection".into()));
    };

    let members = opts.members;
    let mut failures = Failures::default();
    let mut seen: Vec<Vec<u8>> = Vec::new();
    let mut last_member = Latency::new();
    let mut delivery = Latency::new();
    let (mut complete, mut deliveries, mut lost, mut late, mut duplicates) = (0, 0, 0, 0, 0);
    let started = Instant::now();
    let end = started + common.duration;
    let mut last_arrival = started;
    for k in 0..opts.messages {
        if Instant::now() >= end {
            break;
        }
        let k32 = u32::try_from(k).unwrap_or(u32::MAX);
        seen.push(vec![0; members]);
        let sent_at = Instant::now();
        let nanos = u64::try_from((sent_at - epoch).as_nanos()).unwrap_or(0);
        let id = frames::client_message_id(&tag, 0, k32, nanos);
        let frame = frames::message_frame(conversation, &format!("fan-out message {k}"), &id);
        if sender.send(Message::Text(frame.into())).await.is_err() {
            failures.add("websocket send failed");
            seen.pop();
            break;
        }
        let deadline = tokio::time::Instant::from_std(sent_at + opts.timeout);
        let mut got = 0;
        let mut slowest = sent_at;
        while got < members {
            let (member, n, at) = match tokio::time::timeout_at(deadline, arrived.recv()).await {
                Ok(Some(arrival)) => arrival,
                Ok(None) | Err(_) => break,
            };
            let Some(slot) = seen
                .get_mut(n as usize)
                .and_then(|s| s.get_mut(member as usize))
            else {
                continue;
            };
            *slot = slot.saturating_add(1);
            if *slot > 1 {
                duplicates += 1;
            } else if n != k32 {
                late += 1;
            } else {
                got += 1;
                deliveries += 1;
                delivery.record(at - sent_at);
                slowest = slowest.max(at);
                last_arrival = last_arrival.max(at);
            }
        }
        if got == members {
            complete += 1;
            last_member.record(slowest - sent_at);
        } else {
            lost += (members - got) as u64;
        }
        tokio::time::sleep(opts.gap).await;
    }
    let elapsed = last_arrival - started;

    let _ = stop.send(true);
    for reader in readers {
        let r = reader
            .await
            .map_err(|e| BenchError::Setup(format!("a reader task failed: {e}")))?;
        failures.merge(&r);
    }
    // Arrivals still queued: duplicates and late ones are still worth counting.
    while let Ok((member, n, _)) = arrived.try_recv() {
        if let Some(slot) = seen
            .get_mut(n as usize)
            .and_then(|s| s.get_mut(member as usize))
        {
            *slot = slot.saturating_add(1);
            if *slot > 1 {
                duplicates += 1;
            } else {
                late += 1;
            }
        }
    }

    Ok(FanoutReport {
        members,
        duration_s: secs(common.duration),
        messages: seen.len() as u64,
        complete,
        deliveries,
        deliveries_per_s: per_second(deliveries, elapsed),
        last_member_latency: last_member.summary(),
        delivery_latency: delivery.summary(),
        lost,
        late,
        duplicates,
        setup_s: secs(setup),
        failures,
    })
}

/// Reports the arrival of every bench message on one member's connection.
async fn read(
    me: u32,
    mut stream: SplitStream<Ws>,
    tag: String,
    arrivals: mpsc::UnboundedSender<Arrival>,
    mut stop: watch::Receiver<bool>,
) -> Failures {
    let mut failures = Failures::default();
    while let Some(text) = next_text(&mut stream, &mut stop, &mut failures).await {
        let now = Instant::now();
        match frames::parse(text.as_str()) {
            Some(Event::NewMessage {
                client_message_id: Some(id),
            }) => {
                if let Some(m) = frames::parse_client_message_id(&tag, &id) {
                    let _ = arrivals.send((me, m.n, now));
                }
            }
            Some(Event::Error { code, .. }) => failures.add(format!("error frame {code}")),
            _ => {}
        }
    }
    failures
}
