//! `catchup`: a client that was offline while `--changes` things changed catches up, over
//! the WebSocket `sync` and over `GET /api/v1/sync`; how many events per second it receives.
//!
//! Setup signs up a writer and a reader, who share `--conversations` groups, and makes the
//! changes while the reader is away: every change is a new message, and a share of them
//! (`--changed-share`) is then edited or reacted to, so that the replay holds every frame
//! kind a message can come back as. The feed replays each message once, as it now stands,
//! so the reader gets one event per change (and one per conversation).
//!
//! Each round then times a whole catch-up from position 0: over the WebSocket, from the
//! `sync` frame sent to the `synced` frame read (the server pages the feed itself); over
//! REST, paging `GET /api/v1/sync?limit=--page` until `has_more` is false, each page read to
//! its last byte. Every round checks that every message came back exactly once: a lost or
//! duplicated message is a failure, not a slower figure.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use clap::Args;
use futures_util::{SinkExt, StreamExt, stream};
use reqwest::StatusCode;
use serde::Serialize;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use crate::client::{RequestFailure, Target, User, Ws};
use crate::report::Row;
use crate::stats::Failures;
use crate::{BenchError, Common, Setup, secs};

#[derive(Debug, Clone, Args)]
pub struct CatchupOptions {
    /// Changes made while the reader is away, each a message of its own.
    #[arg(long, default_value_t = 10_000)]
    pub changes: usize,
    /// Groups the changes are spread over.
    #[arg(long, default_value_t = 10)]
    pub conversations: usize,
    /// Share of the messages edited (half of it) or reacted to (the other half) after they
    /// were sent (0.0–1.0).
    #[arg(long, default_value_t = 0.2)]
    pub changed_share: f64,
    /// Catch-ups timed, each over the WebSocket and over REST; the report gives the median.
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Events per `GET /api/v1/sync` page (its `limit`, 1–1000).
    #[arg(long, default_value_t = 1000)]
    pub page: usize,
    /// Requests making the changes at once.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
}

/// What a `catchup` run measured.
#[derive(Debug, Clone, Serialize)]
pub struct CatchupReport {
    pub changes: usize,
    pub edited: usize,
    pub reacted: usize,
    pub conversations: usize,
    /// Events one catch-up replays (the same every round).
    pub events: u64,
    pub rounds: usize,
    /// WebSocket `sync`: the median round's events per second, and the slowest and fastest.
    pub ws_events_per_s: f64,
    pub ws_events_per_s_min: f64,
    pub ws_events_per_s_max: f64,
    /// REST paging, as the WebSocket figures.
    pub rest_events_per_s: f64,
    pub rest_events_per_s_min: f64,
    pub rest_events_per_s_max: f64,
    pub rest_page: usize,
    /// How long making the changes took (not measured).
    pub setup_s: f64,
    /// Refused requests, broken sockets, and messages lost or replayed twice in a round.
    pub failures: Failures,
}

impl CatchupReport {
    pub fn title(&self) -> String {
        format!(
            "catchup: an offline client replays {} changes ({} messages, {} edited, {} reacted to) in {} groups, {} rounds",
            self.changes,
            self.changes - self.edited - self.reacted,
            self.edited,
            self.reacted,
            self.conversations,
            self.rounds
        )
    }

    pub fn rows(&self) -> Vec<Row> {
        let rates =
            |median: f64, min: f64, max: f64| format!("{median:.0}/s (min {min:.0}, max {max:.0})");
        vec![
            ("events per catch-up", self.events.to_string()),
            (
                "WebSocket sync, events/s",
                rates(
                    self.ws_events_per_s,
                    self.ws_events_per_s_min,
                    self.ws_events_per_s_max,
                ),
            ),
            (
                "REST GET /api/v1/sync, events/s",
                rates(
                    self.rest_events_per_s,
                    self.rest_events_per_s_min,
                    self.rest_events_per_s_max,
                ),
            ),
            ("REST page size", self.rest_page.to_string()),
            ("errors", self.failures.cell()),
            ("setup (not measured)", format!("{:.1}s", self.setup_s)),
        ]
    }
}

/// One round's catch-up: the seqs of the messages it replayed, and the events it counted.
struct Replay {
    events: u64,
    seqs: Vec<i64>,
    elapsed: Duration,
}

/// Runs the `catchup` scenario against the first node of `common.urls`.
pub async fn run(common: &Common, opts: &CatchupOptions) -> Result<CatchupReport, BenchError> {
    if opts.changes == 0 || opts.conversations == 0 || opts.rounds == 0 {
        return Err(BenchError::Invalid(
            "--changes, --conversations and --rounds must be at least 1".into(),
        ));
    }
    if !(0.0..=1.0).contains(&opts.changed_share) {
        return Err(BenchError::Invalid(
            "--changed-share must be 0.0-1.0".into(),
        ));
    }
    if !(1..=1000).contains(&opts.page) {
        return Err(BenchError::Invalid("--page must be 1-1000".into()));
    }
    let setup_started = Instant::now();
    let Setup {
        target, tag, users, ..
    } = common.setup(2).await?;
    let (writer, reader) = (&users[0], &users[1]);
    let mut conversations = Vec::with_capacity(opts.conversations);
    for c in 0..opts.conversations {
        let name = format!("bench {tag} catchup {c}");
        conversations.push(target.create_group(writer, &[reader], &name).await?);
    }

    let mut failures = Failures::default();
    let sent = send_messages(&target, writer, &conversations, &tag, opts, &mut failures).await;
    let changed = ((sent.len() as f64) * opts.changed_share).round() as usize;
    let (edited, reacted) = change_some(&target, writer, &sent, changed, &mut failures).await;
    let expected: HashSet<i64> = sent.iter().map(|(_, seq)| *seq).collect();
    let setup = setup_started.elapsed();

    let addr = target.socket_addr().await?;
    let (mut ws_rates, mut rest_rates, mut events) = (Vec::new(), Vec::new(), 0);
    for _ in 0..opts.rounds {
        let ws = target
            .connect_ws(addr, &reader.token, None)
            .await
            .map_err(|f| BenchError::Setup(format!("the reader's WebSocket: {}", f.0)))?;
        let replay = ws_catch_up(ws).await;
        events = record(replay, &expected, &mut ws_rates, &mut failures).unwrap_or(events);
        let replay = rest_catch_up(&target, reader, opts.page).await;
        events = record(replay, &expected, &mut rest_rates, &mut failures).unwrap_or(events);
    }

    let (ws_median, ws_min, ws_max) = spread(&mut ws_rates);
    let (rest_median, rest_min, rest_max) = spread(&mut rest_rates);
    Ok(CatchupReport {
        changes: sent.len(),
        edited,
        reacted,
        conversations: opts.conversations,
        events,
        rounds: opts.rounds,
        ws_events_per_s: ws_median,
        ws_events_per_s_min: ws_min,
        ws_events_per_s_max: ws_max,
        rest_events_per_s: rest_median,
        rest_events_per_s_min: rest_min,
        rest_events_per_s_max: rest_max,
        rest_page: opts.page,
        setup_s: secs(setup),
        failures,
    })
}

/// Sends `opts.changes` messages round-robin over the conversations; the `(id, seq)` of
/// each one stored.
async fn send_messages(
    target: &Target,
    writer: &User,
    conversations: &[String],
    tag: &str,
    opts: &CatchupOptions,
    failures: &mut Failures,
) -> Vec<(String, i64)> {
    let results: Vec<_> = stream::iter(0..opts.changes)
        .map(|n| {
            let conversation = &conversations[n % conversations.len()];
            let http = target.http();
            async move {
                let content = format!("catch-up message {n}: what was said while you were away");
                target
                    .post_message_returning_id(
                        http,
                        &writer.token,
                        conversation,
                        &content,
                        &format!("{tag}-c{n}"),
                    )
                    .await
            }
        })
        .buffer_unordered(opts.concurrency.max(1))
        .collect()
        .await;
    results
        .into_iter()
        .filter_map(|result| result.map_err(|f| failures.add(f.0)).ok())
        .collect()
}

/// Edits the first half of `count` messages and reacts to the second half; how many of
/// each succeeded.
async fn change_some(
    target: &Target,
    writer: &User,
    sent: &[(String, i64)],
    count: usize,
    failures: &mut Failures,
) -> (usize, usize) {
    let edits = count / 2;
    let results: Vec<_> = stream::iter(sent.iter().take(count).enumerate())
        .map(|(i, (id, _))| {
            let api = target.api_as(writer);
            async move {
                let id: uuid::Uuid = id
                    .parse()
                    .map_err(|_| RequestFailure("a stored message id that is not a UUID".into()))?;
                let changed = if i < edits {
                    api.edit_message(id, &format!("edited while you were away ({i})"))
                        .await
                } else {
                    api.add_reaction(id, "\u{1F44D}").await
                };
                changed
                    .map(|_| i < edits)
                    .map_err(|e| RequestFailure::from_client(&e))
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let (mut edited, mut reacted) = (0, 0);
    for result in results {
        match result {
            Ok(true) => edited += 1,
            Ok(false) => reacted += 1,
            Err(failure) => failures.add(failure.0),
        }
    }
    (edited, reacted)
}

/// The seq of the message a replayed event carries, if it carries one.
fn message_seq(event: &Value) -> Option<i64> {
    event["message"]["seq"].as_i64()
}

/// One whole catch-up over the WebSocket: `sync` from 0 without a limit, every frame until
/// `synced`.
async fn ws_catch_up(mut ws: Ws) -> Result<Replay, RequestFailure> {
    let started = Instant::now();
    ws.send(Message::Text(r#"{"type":"sync","since_seq":0}"#.into()))
        .await
        .map_err(|e| RequestFailure(format!("websocket send: {e}")))?;
    let (mut events, mut seqs) = (0, Vec::new());
    loop {
        let text = match ws.next().await {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(_))) | None => {
                return Err(RequestFailure("websocket closed during sync".into()));
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(RequestFailure(format!("websocket: {e}"))),
        };
        let frame: Value = serde_json::from_str(text.as_str())
            .map_err(|_| RequestFailure("a frame that is not JSON".into()))?;
        match frame["type"].as_str() {
            Some("synced") => break,
            Some("error") => {
                return Err(RequestFailure(format!(
                    "error frame {}",
                    frame["code"].as_str().unwrap_or("unknown")
                )));
            }
            _ => {
                events += 1;
                seqs.extend(message_seq(&frame));
            }
        }
    }
    let elapsed = started.elapsed();
    let _ = ws.close(None).await;
    Ok(Replay {
        events,
        seqs,
        elapsed,
    })
}

/// One whole catch-up over REST: pages of `page` events from 0 until `has_more` is false.
async fn rest_catch_up(
    target: &Target,
    reader: &User,
    page: usize,
) -> Result<Replay, RequestFailure> {
    let started = Instant::now();
    let (mut events, mut seqs, mut since) = (0, Vec::new(), 0);
    loop {
        let response = target
            .http()
            .get(target.url(&format!("/api/v1/sync?since={since}&limit={page}")))
            .bearer_auth(&reader.token)
            .send()
            .await
            .map_err(|e| RequestFailure::from_reqwest(&e))?;
        if response.status() != StatusCode::OK {
            return Err(RequestFailure::status(response.status()));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| RequestFailure::from_reqwest(&e))?;
        let body: Value = serde_json::from_slice(&body)
            .map_err(|_| RequestFailure("a sync page that is not JSON".into()))?;
        let Some(page_events) = body["events"].as_array() else {
            return Err(RequestFailure("a sync page without events".into()));
        };
        events += page_events.len() as u64;
        seqs.extend(page_events.iter().filter_map(message_seq));
        since = body["next"]
            .as_i64()
            .ok_or_else(|| RequestFailure("a sync page without next".into()))?;
        if !body["has_more"].as_bool().unwrap_or(false) {
            break;
        }
    }
    Ok(Replay {
        events,
        seqs,
        elapsed: started.elapsed(),
    })
}

/// Adds a round's rate to `rates` (0 for a round that failed) and counts the messages it
/// lost or replayed twice; the events it replayed.
fn record(
    replay: Result<Replay, RequestFailure>,
    expected: &HashSet<i64>,
    rates: &mut Vec<f64>,
    failures: &mut Failures,
) -> Option<u64> {
    let replay = match replay {
        Ok(replay) => replay,
        Err(failure) => {
            failures.add(failure.0);
            rates.push(0.0);
            return None;
        }
    };
    let mut seen = HashSet::with_capacity(replay.seqs.len());
    for seq in &replay.seqs {
        if !seen.insert(*seq) {
            failures.add("a message replayed twice");
        }
    }
    let missing = expected.difference(&seen).count() as u64;
    if missing > 0 {
        failures.add_n("a message missing from the replay", missing);
    }
    rates.push(replay.events as f64 / replay.elapsed.as_secs_f64());
    Some(replay.events)
}

/// The median, lowest and highest of `rates`.
fn spread(rates: &mut [f64]) -> (f64, f64, f64) {
    if rates.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    rates.sort_by(f64::total_cmp);
    (rates[rates.len() / 2], rates[0], rates[rates.len() - 1])
}
