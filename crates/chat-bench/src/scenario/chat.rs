//! `chat`: many users in small groups, all on WebSocket, all sending at a fixed rate.
//!
//! Each user has one connection and a conversation of `--group-size` members; every user
//! sends `--rate` messages a second to it as `message` frames (open loop: the schedule does
//! not wait for answers). The server stores each message and sends `new_message` to every
//! member's connection, the sender's included (the echo, which is how a client learns its
//! message is stored). Every receiver checks off what it got; after sending stops, whatever a
//! member has not received within `--drain` is lost.
//!
//! Against several nodes (`--url` repeated) user `i` is on node `i % nodes`, so the members
//! of a group sit on different nodes; deliveries between users on different nodes are also
//! reported on their own (cross-node latency).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt, stream};
use serde::Serialize;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;
use tokio_tungstenite::tungstenite::Message;

use crate::client::{Ws, next_text};
use crate::frames::{self, Event};
use crate::report::{Row, count_rate};
use crate::stats::{Failures, Latency, LatencySummary, per_second};
use crate::{BenchError, Common, Setup, secs};

#[derive(Debug, Clone, Args)]
pub struct ChatOptions {
    /// Users, each with one WebSocket.
    #[arg(long, default_value_t = 300)]
    pub users: usize,
    /// Members per conversation (2–1000).
    #[arg(long, default_value_t = 3)]
    pub group_size: usize,
    /// Messages each user sends per second; the offered load is users × rate.
    #[arg(long, default_value_t = 33.0)]
    pub rate: f64,
    /// After sending stops, how long deliveries still under way may take; a member that has
    /// not received a message by then counts it as lost.
    #[arg(long, default_value = "5s", value_parser = crate::parse_duration)]
    pub drain: Duration,
}

/// What a `chat` run measured.
#[derive(Debug, Clone, Serialize)]
pub struct ChatReport {
    pub users: usize,
    pub group_size: usize,
    pub conversations: usize,
    pub rate_per_user: f64,
    /// users × rate.
    pub offered_per_s: f64,
    pub duration_s: f64,
    /// Message frames written to the server.
    pub sent: u64,
    pub sent_per_s: f64,
    /// Messages whose echo reached the sender: stored by the server.
    pub stored: u64,
    /// `stored` over the time from the first send to the last echo.
    pub stored_per_s: f64,
    /// `new_message` frames received by the other members (not counting echoes).
    pub deliveries: u64,
    /// `deliveries` over the time from the first send to the last delivery.
    pub deliveries_per_s: f64,
    /// Sent → received by another member, per delivery.
    pub delivery_latency: LatencySummary,
    /// The nodes the users were spread over (`--url`s).
    pub nodes: usize,
    /// Of `delivery_latency`, the deliveries whose sender sat on another node than the
    /// receiver; `None` on one node.
    pub cross_node_delivery_latency: Option<LatencySummary>,
    /// Sent → echoed back to the sender, per message.
    pub echo_latency: LatencySummary,
    /// Messages whose echo never reached the sender within the drain time.
    pub lost_echoes: u64,
    /// Deliveries to other members that never arrived within the drain time.
    pub lost_deliveries: u64,
    /// Messages a connection received more than once.
    pub duplicates: u64,
    /// Messages the server refused with an error frame (also counted in `failures`).
    pub refused: u64,
    /// Setup time (sign-ups, logins, groups, connections), not part of the measurement.
    pub setup_s: f64,
    pub failures: Failures,
}

impl ChatReport {
    /// Errors, lost and duplicated deliveries together.
    pub fn failure_count(&self) -> u64 {
        self.failures.total() + self.lost_echoes + self.lost_deliveries + self.duplicates
    }

    pub fn title(&self) -> String {
        let nodes = if self.nodes > 1 {
            format!(" on {} nodes", self.nodes)
        } else {
            String::new()
        };
        format!(
            "chat: {} users{nodes} in {} groups of {}, {}/s each (offered {:.0} msg/s) for {}s",
            self.users,
            self.conversations,
            self.group_size,
            self.rate_per_user,
            self.offered_per_s,
            self.duration_s
        )
    }

    pub fn rows(&self) -> Vec<Row> {
        let mut rows = vec![
            ("messages sent", count_rate(self.sent, self.sent_per_s)),
            (
                "messages stored (echoed)",
                count_rate(self.stored, self.stored_per_s),
            ),
            (
                "deliveries to other members",
                count_rate(self.deliveries, self.deliveries_per_s),
            ),
            ("delivery latency p50/p99/max", self.delivery_latency.cell()),
            (
                "cross-node delivery p50/p99/max",
                self.cross_node_delivery_latency
                    .as_ref()
                    .map_or_else(|| "-".into(), LatencySummary::cell),
            ),
            ("echo latency p50/p99/max", self.echo_latency.cell()),
            ("lost echoes", self.lost_echoes.to_string()),
            ("lost deliveries", self.lost_deliveries.to_string()),
            ("duplicated deliveries", self.duplicates.to_string()),
            ("errors", self.failures.cell()),
            ("setup (not measured)", format!("{:.1}s", self.setup_s)),
        ];
        if self.cross_node_delivery_latency.is_none() {
            rows.retain(|(label, _)| !label.starts_with("cross-node"));
        }
        rows
    }
}

/// What every client task shares: the run's identity and the running totals the drain
/// phase watches.
struct Shared {
    tag: String,
    epoch: Instant,
    /// Receipts expected so far: group size × messages sent, less refused ones.
    expected: AtomicI64,
    /// First receipts so far (a duplicate does not count).
    received: AtomicI64,
    /// User `i` is on node `i % nodes`.
    nodes: usize,
}

struct SenderResult {
    sent: u32,
    failures: Failures,
}

#[derive(Default)]
struct ReaderResult {
    /// Per sender, how often each of its messages arrived here.
    received: HashMap<u32, Vec<u8>>,
    /// Numbers of this user's own messages the server refused.
    refused: Vec<u32>,
    echoes: u64,
    deliveries: u64,
    duplicates: u64,
    echo: Latency,
    delivery: Latency,
    /// The deliveries from a sender on another node.
    cross_node: Latency,
    last_echo: Option<Instant>,
    last_delivery: Option<Instant>,
    failures: Failures,
}

/// Runs the `chat` scenario against the nodes of `common.urls` (users spread round-robin).
pub async fn run(common: &Common, opts: &ChatOptions) -> Result<ChatReport, BenchError> {
    if opts.users < 2 || !(2..=1000).contains(&opts.group_size) || opts.group_size > opts.users {
        return Err(BenchError::Invalid(
            "chat needs at least 2 users and a group size of 2..=1000, at most --users".into(),
        ));
    }
    if !(opts.rate > 0.0 && opts.rate.is_finite()) {
        return Err(BenchError::Invalid("--rate must be above 0".into()));
    }
    let setup_started = Instant::now();
    let Setup {
        target,
        targets,
        tag,
        users,
    } = common.setup(opts.users).await?;

    let groups = partition(opts.users, opts.group_size);
    let conversations: Vec<uuid::Uuid> =
        stream::iter(groups.iter().enumerate())
            .map(|(g, members)| {
                let owner = &users[members[0]];
                let others: Vec<_> = members[1..].iter().map(|&m| &users[m]).collect();
                let target = &target;
                let name = format!("bench {tag} {g}");
                async move {
                    frames::conversation_id(&target.create_group(owner, &others, &name).await?)
                }
            })
            .buffered(16)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_, _>>()?;
    let mut group_of = vec![0; opts.users];
    for (g, members) in groups.iter().enumerate() {
        for &m in members {
            group_of[m] = g;
        }
    }

    let sockets = super::connect_all(&targets, &users.iter().collect::<Vec<_>>(), 64).await?;
    let setup = setup_started.elapsed();

    let shared = Arc::new(Shared {
        tag: tag.clone(),
        epoch: Instant::now(),
        expected: AtomicI64::new(0),
        received: AtomicI64::new(0),
        nodes: targets.len(),
    });
    let (stop, stopped) = watch::channel(false);
    let start = tokio::time::Instant::now() + Duration::from_millis(200);
    let end = start + common.duration;
    let period = Duration::from_secs_f64(1.0 / opts.rate);
    let mut senders = Vec::with_capacity(opts.users);
    let mut readers = Vec::with_capacity(opts.users);
    for (i, ws) in sockets.into_iter().enumerate() {
        let me = u32::try_from(i).unwrap_or(u32::MAX);
        let (sink, stream) = ws.split();
        let group = i64::try_from(groups[group_of[i]].len()).unwrap_or(i64::MAX);
        readers.push(tokio::spawn(read(
            me,
            group,
            stream,
            shared.clone(),
            stopped.clone(),
        )));
        // Spread the first sends over one period so that users do not send in lockstep.
        let offset = period.mul_f64((i as f64 * 0.618_033_988_75).fract());
        senders.push(tokio::spawn(send(Sender {
            me,
            sink,
            conversation_id: conversations[group_of[i]],
            group,
            first: start + offset,
            period,
            end,
            shared: shared.clone(),
        })));
    }

    let mut sent = Vec::with_capacity(opts.users);
    let mut failures = Failures::default();
    for sender in senders {
        let result = sender
            .await
            .map_err(|e| BenchError::Setup(format!("a sender task failed: {e}")))?;
        failures.merge(&result.failures);
        sent.push(result.sent);
    }
    let drain_until = Instant::now() + opts.drain;
    while shared.received.load(Ordering::Relaxed) < shared.expected.load(Ordering::Relaxed)
        && Instant::now() < drain_until
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let _ = stop.send(true);
    let mut results = Vec::with_capacity(opts.users);
    for reader in readers {
        results.push(
            reader
                .await
                .map_err(|e| BenchError::Setup(format!("a reader task failed: {e}")))?,
        );
    }

    // Every message of every sender, checked off at every member of its group.
    let (mut lost_echoes, mut lost_deliveries) = (0, 0);
    for (s, &count) in sent.iter().enumerate() {
        let refused: HashSet<u32> = results[s].refused.iter().copied().collect();
        let sender = u32::try_from(s).unwrap_or(u32::MAX);
        for &m in &groups[group_of[s]] {
            let got = results[m].received.get(&sender);
            for n in 0..count {
                if refused.contains(&n) {
                    continue;
                }
                let times = got.and_then(|v| v.get(n as usize)).copied().unwrap_or(0);
                if times == 0 {
                    if m == s {
                        lost_echoes += 1;
                    } else {
                        lost_deliveries += 1;
                    }
                }
            }
        }
    }

    let measured_start = start.into_std();
    let mut echo = Latency::new();
    let mut delivery = Latency::new();
    let mut cross_node = Latency::new();
    let (mut stored, mut deliveries, mut duplicates, mut refused) = (0, 0, 0, 0);
    let (mut last_echo, mut last_delivery) = (measured_start, measured_start);
    for r in &results {
        echo.merge(&r.echo);
        delivery.merge(&r.delivery);
        cross_node.merge(&r.cross_node);
        stored += r.echoes;
        deliveries += r.deliveries;
        duplicates += r.duplicates;
        refused += r.refused.len() as u64;
        last_echo = last_echo.max(r.last_echo.unwrap_or(measured_start));
        last_delivery = last_delivery.max(r.last_delivery.unwrap_or(measured_start));
        failures.merge(&r.failures);
    }
    let total_sent: u64 = sent.iter().map(|&n| u64::from(n)).sum();
    Ok(ChatReport {
        users: opts.users,
        group_size: opts.group_size,
        conversations: groups.len(),
        rate_per_user: opts.rate,
        offered_per_s: opts.rate * opts.users as f64,
        duration_s: secs(common.duration),
        sent: total_sent,
        sent_per_s: per_second(total_sent, common.duration),
        stored,
        stored_per_s: per_second(stored, last_echo - measured_start),
        deliveries,
        deliveries_per_s: per_second(deliveries, last_delivery - measured_start),
        delivery_latency: delivery.summary(),
        nodes: targets.len(),
        cross_node_delivery_latency: (targets.len() > 1).then(|| cross_node.summary()),
        echo_latency: echo.summary(),
        lost_echoes,
        lost_deliveries,
        duplicates,
        refused,
        setup_s: secs(setup),
        failures,
    })
}

/// Splits users `0..users` into groups of `size`; a remainder too small to be a group of two
/// joins the last group.
fn partition(users: usize, size: usize) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = (0..users)
        .collect::<Vec<_>>()
        .chunks(size)
        .map(<[usize]>::to_vec)
        .collect();
    if groups.len() > 1 && groups.last().is_some_and(|g| g.len() < 2) {
        let rest = groups.pop().unwrap_or_default();
        if let Some(last) = groups.last_mut() {
            last.extend(rest);
        }
    }
    groups
}

struct Sender {
    me: u32,
    sink: SplitSink<Ws, Message>,
    conversation_id: uuid::Uuid,
    group: i64,
    first: tokio::time::Instant,
    period: Duration,
    end: tokio::time::Instant,
    shared: Arc<Shared>,
}

/// Sends on schedule until `end`; a tick that is late is caught up at once (open loop).
async fn send(mut s: Sender) -> SenderResult {
    let mut result = SenderResult {
        sent: 0,
        failures: Failures::default(),
    };
    let mut ticks = tokio::time::interval_at(s.first, s.period);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
    loop {
        let due = ticks.tick().await;
        if due >= s.end {
            break;
        }
        let nanos = u64::try_from(s.shared.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let id = frames::client_message_id(&s.shared.tag, s.me, result.sent, nanos);
        let frame = frames::message_frame(
            s.conversation_id,
            &format!("bench message {} from user {}", result.sent, s.me),
            &id,
        );
        if s.sink.send(Message::Text(frame.into())).await.is_err() {
            result.failures.add("websocket send failed");
            break;
        }
        result.sent += 1;
        s.shared.expected.fetch_add(s.group, Ordering::Relaxed);
    }
    result
}

/// Reads `new_message` frames until told to stop, checking off each arrival. `group` is the
/// size of this user's group: the receipts a refused message of theirs will never get.
async fn read(
    me: u32,
    group: i64,
    mut stream: SplitStream<Ws>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> ReaderResult {
    let mut r = ReaderResult::default();
    while let Some(text) = next_text(&mut stream, &mut stop, &mut r.failures).await {
        let now = Instant::now();
        match frames::parse(text.as_str()) {
            Some(Event::NewMessage {
                client_message_id: Some(id),
            }) => {
                let Some(m) = frames::parse_client_message_id(&shared.tag, &id) else {
                    continue;
                };
                let counts = r.received.entry(m.sender).or_default();
                let n = m.n as usize;
                if counts.len() <= n {
                    counts.resize(n + 1, 0);
                }
                counts[n] = counts[n].saturating_add(1);
                if counts[n] > 1 {
                    r.duplicates += 1;
                    continue;
                }
                shared.received.fetch_add(1, Ordering::Relaxed);
                let micros = m.latency_micros(shared.epoch, now);
                if m.sender == me {
                    r.echoes += 1;
                    r.echo.record_micros(micros);
                    r.last_echo = Some(now);
                } else {
                    r.deliveries += 1;
                    r.delivery.record_micros(micros);
                    let nodes = u32::try_from(shared.nodes).unwrap_or(1);
                    if m.sender % nodes != me % nodes {
                        r.cross_node.record_micros(micros);
                    }
                    r.last_delivery = Some(now);
                }
            }
            Some(Event::Error { code, reference }) => {
                r.failures.add(format!("error frame {code}"));
                let mine = reference
                    .as_deref()
                    .and_then(|id| frames::parse_client_message_id(&shared.tag, id))
                    .filter(|m| m.sender == me);
                if let Some(m) = mine {
                    r.refused.push(m.n);
                    // Nobody will receive it: stop waiting for its receipts.
                    shared.expected.fetch_sub(group, Ordering::Relaxed);
                }
            }
            _ => {}
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_split_into_groups_and_a_lone_remainder_joins_the_last() {
        assert_eq!(partition(6, 3), vec![vec![0, 1, 2], vec![3, 4, 5]]);
        assert_eq!(partition(7, 3), vec![vec![0, 1, 2], vec![3, 4, 5, 6]]);
        assert_eq!(
            partition(8, 3),
            vec![vec![0, 1, 2], vec![3, 4, 5], vec![6, 7]]
        );
        assert_eq!(partition(2, 3), vec![vec![0, 1]]);
    }
}
