//! `webhooks`: how fast the server's webhook dispatcher keeps up with the messages it stores.
//!
//! The bench starts a receiver on loopback that answers every delivery 200 at once, registers
//! it as a webhook endpoint with a server admin's token (`--admin`; make one with
//! `chat-server admin grant <username>`), then runs the `chat` scenario against the server and
//! counts the `message.created` deliveries that arrive. After the chat run it waits up to
//! `--settle` for the deliveries still under way, and removes the endpoint at the end.
//!
//! Reported: deliveries per second while messages were being sent (from the first delivery
//! to the last), each delivery's lag (the message's `created_at` on the server to its arrival
//! here: both clocks are this machine's), deliveries that arrived twice (by event id), and
//! messages stored but never delivered within the settle time.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use clap::Args;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

use crate::client::Target;
use crate::report::{Row, count_rate};
use crate::scenario::chat::{self, ChatOptions, ChatReport};
use crate::stats::{Latency, LatencySummary, per_second};
use crate::{BenchError, Common, secs};

#[derive(Debug, Clone, Args)]
pub struct WebhooksOptions {
    /// A server admin as `username:password`: registers (and at the end removes) the bench's
    /// endpoint.
    #[arg(long)]
    pub admin: String,
    /// After the chat run, how long deliveries still under way may take to arrive.
    #[arg(long, default_value = "60s", value_parser = crate::parse_duration)]
    pub settle: Duration,
    #[command(flatten)]
    pub chat: ChatOptions,
}

/// What a `webhooks` run measured.
#[derive(Debug, Clone, Serialize)]
pub struct WebhooksReport {
    /// The chat run that made the messages.
    pub chat: ChatReport,
    /// `message.created` deliveries that arrived (each event id once).
    pub delivered: u64,
    /// `delivered` over the time from the first delivery to the last.
    pub delivered_per_s: f64,
    /// The message's creation on the server to its delivery's arrival.
    pub lag: LatencySummary,
    /// From the end of the chat run until the last delivery arrived.
    pub drain_s: f64,
    /// Deliveries of an event id that had arrived before.
    pub repeated: u64,
    /// Messages stored (echoed to their senders) with no delivery by the end.
    pub undelivered: u64,
}

impl WebhooksReport {
    /// Lost deliveries and the chat run's own failures; repeats are allowed (at least once).
    pub fn failure_count(&self) -> u64 {
        self.chat.failure_count() + self.undelivered
    }

    pub fn title(&self) -> String {
        format!(
            "webhooks: one endpoint on loopback behind {}",
            self.chat.title()
        )
    }

    pub fn rows(&self) -> Vec<Row> {
        let mut rows = vec![
            (
                "messages stored (echoed)",
                count_rate(self.chat.stored, self.chat.stored_per_s),
            ),
            (
                "message.created delivered",
                count_rate(self.delivered, self.delivered_per_s),
            ),
            ("lag (created → arrived)", self.lag.cell()),
            ("drain after sending", format!("{:.2} s", self.drain_s)),
            ("repeated deliveries", self.repeated.to_string()),
            ("undelivered", self.undelivered.to_string()),
        ];
        rows.extend(
            self.chat
                .rows()
                .into_iter()
                .filter(|(name, _)| *name != "messages stored (echoed)"),
        );
        rows
    }
}

/// What the receiver has seen.
#[derive(Default)]
struct Seen {
    ids: HashSet<String>,
    lag: Latency,
    repeated: u64,
    first: Option<Instant>,
    last: Option<Instant>,
}

#[derive(Deserialize)]
struct Delivery {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    created_at: String,
}

pub async fn run(common: &Common, opts: &WebhooksOptions) -> Result<WebhooksReport, BenchError> {
    let (username, password) = opts
        .admin
        .split_once(':')
        .ok_or_else(|| BenchError::Invalid("--admin takes username:password".into()))?;
    let target = Target::new(&common.urls[0], common.timeout)?;
    let seen = Arc::new(Mutex::new(Seen::default()));
    let address = receive(seen.clone()).await?;
    let token = admin_token(&target, username, password).await?;
    let webhook = register(&target, &token, address).await?;

    let chat = chat::run(common, &opts.chat).await;
    let chat_ended = Instant::now();
    let stored = chat.as_ref().map_or(0, |c| c.stored);
    let deadline = chat_ended + opts.settle;
    while Instant::now() < deadline && (seen.lock().unwrap().ids.len() as u64) < stored {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Removed whatever happened, so that a later run does not deliver to a dead port.
    let removed = target
        .api()
        .with_access_token(&token)
        .delete_webhook(webhook)
        .await;
    let chat = chat?;
    if let Err(error) = removed {
        eprintln!("chat-bench: could not remove the bench's webhook {webhook}: {error}");
    }

    let seen = seen.lock().unwrap();
    let delivered = seen.ids.len() as u64;
    let (delivered_per_s, drain_s) = match (seen.first, seen.last) {
        (Some(first), Some(last)) => (
            per_second(delivered, last.duration_since(first)),
            secs(last.saturating_duration_since(chat_ended)),
        ),
        _ => (0.0, 0.0),
    };
    Ok(WebhooksReport {
        delivered,
        delivered_per_s,
        lag: seen.lag.summary(),
        drain_s,
        repeated: seen.repeated,
        undelivered: chat.stored.saturating_sub(delivered),
        chat,
    })
}

/// Starts the receiver on a free loopback port: every request is answered 200 at once, over
/// kept-alive HTTP/1.1 connections, as a push relay in front of a queue would.
async fn receive(seen: Arc<Mutex<Seen>>) -> Result<SocketAddr, BenchError> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| BenchError::Setup(format!("the receiver's port: {e}")))?;
    let address = listener
        .local_addr()
        .map_err(|e| BenchError::Setup(format!("the receiver's port: {e}")))?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let seen = seen.clone();
                    async move {
                        if let Ok(body) = request.into_body().collect().await {
                            record(&seen, &body.to_bytes());
                        }
                        Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::new())))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(address)
}

/// Counts one delivery's body, if it is a `message.created`.
fn record(seen: &Mutex<Seen>, body: &[u8]) {
    let arrived = (Instant::now(), SystemTime::now());
    let Ok(delivery) = serde_json::from_slice::<Delivery>(body) else {
        return;
    };
    if delivery.kind != "message.created" {
        return;
    }
    let mut seen = seen.lock().unwrap();
    if !seen.ids.insert(delivery.id) {
        seen.repeated += 1;
        return;
    }
    if let Ok(created) = humantime::parse_rfc3339(&delivery.created_at) {
        seen.lag
            .record(arrived.1.duration_since(created).unwrap_or_default());
    }
    seen.first.get_or_insert(arrived.0);
    seen.last = Some(arrived.0);
}

async fn admin_token(
    target: &Target,
    username: &str,
    password: &str,
) -> Result<String, BenchError> {
    target
        .api()
        .login_as(username, password, "chat-bench")
        .await
        .map(|session| session.access_token)
        .map_err(|e| BenchError::Setup(format!("admin login: {e}")))
}

/// Registers the receiver as an endpoint; its id.
async fn register(
    target: &Target,
    token: &str,
    address: SocketAddr,
) -> Result<uuid::Uuid, BenchError> {
    let secret = format!("bench-{}", uuid::Uuid::new_v4().simple());
    target
        .api()
        .with_access_token(token)
        .create_webhook(&format!("http://{address}/chatd"), &secret)
        .await
        .map(|webhook| webhook.id)
        .map_err(|e| match e.status() {
            Some(403) => BenchError::Setup(format!(
                "registering the webhook: {e} (is --admin a server admin?)"
            )),
            _ => BenchError::Setup(format!("registering the webhook: {e}")),
        })
}
