//! How the cluster tests talk to the nodes: REST calls on a chosen node (the set-up steps
//! through chat-client, raw requests for the rest), a plain WebSocket,
//! and [`Device`], a client app that behaves as docs/websocket.md asks (it reconnects to
//! another node when its own goes away and `sync`s from the highest seq it had received
//! [`SEQ_LAG`] before the connection ended, and answers `resync` with `sync` from its highest
//! seq, or from the resync's `since_seq` if lower).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chat_nats::SEQ_LAG;

use chat_client::types::{HistoryCursor, NewConversation, NewMessage, Signup};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

use crate::harness::Node;
pub use crate::ws::Ws;

#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub id: String,
    pub token: String,
}

/// The password every test user signs up with.
pub const PASSWORD: &str = "correct horse";

impl Node {
    pub async fn put(&self, path: &str, token: &str, body: Value) -> reqwest::Response {
        self.http
            .put(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("the request reaches the node")
    }

    pub async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("the request reaches the node")
    }

    /// chat-client on this node, not logged in, sharing the node's connection pool.
    pub fn api(&self) -> chat_client::Client {
        chat_client::Client::with_http(&self.base, self.http.clone())
            .expect("a node's address is a base URL")
    }

    /// chat-client on this node acting as `user`.
    pub fn api_as(&self, user: &User) -> chat_client::Client {
        self.api().with_access_token(&user.token)
    }

    /// Logs `name` in on this node and returns the access token.
    pub async fn login(&self, name: &str, password: &str) -> String {
        self.api()
            .login(name, password)
            .await
            .expect("the user logs in")
            .access_token
    }

    /// Signs `name` up on this node and logs in.
    pub async fn user(&self, name: &str) -> User {
        let created = self
            .api()
            .signup(&Signup {
                username: name.into(),
                email: format!("{name}@example.com"),
                password: PASSWORD.into(),
                full_name: None,
            })
            .await
            .expect("the user signs up");
        User {
            name: name.to_owned(),
            id: created.id.to_string(),
            token: self.login(name, PASSWORD).await,
        }
    }

    /// A group named "cluster" owned by `owner` with `members`, created on this node.
    pub async fn group(&self, owner: &User, members: &[User]) -> String {
        let members = members.iter().map(|m| uuid(&m.id)).collect();
        self.api_as(owner)
            .create_conversation(&NewConversation::group("cluster", members))
            .await
            .expect("the group is created")
            .id
            .to_string()
    }

    /// Sends over REST on this node; `Some(message)` once stored (201 or a retry's 200),
    /// `None` if the node did not answer with one.
    pub async fn try_send(
        &self,
        from: &User,
        conversation: &str,
        content: &str,
        client_id: &str,
    ) -> Option<Value> {
        let message = NewMessage::text(content).client_message_id(client_id);
        let stored = self
            .api_as(from)
            .send_message(uuid(conversation), &message)
            .await
            .ok()?;
        Some(serde_json::to_value(stored).expect("a message is JSON"))
    }

    /// One page of a conversation's history after `after`, ascending by seq.
    pub async fn page_after(
        &self,
        user: &User,
        conversation: &str,
        after: i64,
        limit: usize,
    ) -> Vec<Value> {
        let limit = u32::try_from(limit).expect("a page size");
        self.api_as(user)
            .messages(uuid(conversation), HistoryCursor::After(after), Some(limit))
            .await
            .expect("a page of history")
            .into_iter()
            .map(|message| serde_json::to_value(message).expect("a message is JSON"))
            .collect()
    }

    /// Every message of a conversation, paged through in seq order.
    pub async fn history(&self, user: &User, conversation: &str) -> Vec<Value> {
        let mut all = Vec::new();
        loop {
            let after = all.last().map_or(0, |m: &Value| seq_of(m));
            let page = self.page_after(user, conversation, after, 100).await;
            if page.is_empty() {
                return all;
            }
            all.extend(page);
        }
    }

    /// A WebSocket on this node as `user`, past its `connected` frame.
    pub async fn ws(&self, user: &User) -> Ws {
        Ws::connect(&self.ws_url, &user.token).await
    }
}

/// An id the tests hold as text, as a UUID.
fn uuid(id: &str) -> uuid::Uuid {
    id.parse().expect("a UUID")
}

pub fn seq_of(message: &Value) -> i64 {
    message["seq"].as_i64().expect("a message has a seq")
}

pub fn id_of(message: &Value) -> String {
    message["id"]
        .as_str()
        .expect("a message has an id")
        .to_owned()
}

/// What a [`Device`] has seen so far.
#[derive(Debug, Default)]
pub struct Seen {
    /// Every message received (live, as a retry's answer, or from `sync`), by id, with its
    /// seq: the client's message store, deduplicated by id as the protocol asks.
    pub messages: HashMap<String, i64>,
    /// The same, by seq.
    by_seq: HashMap<i64, String>,
    /// Two different message ids that arrived with the same seq.
    pub seq_clashes: Vec<(i64, String, String)>,
    /// The highest seq received; what a `resync` without a `since_seq` syncs from.
    pub highest_seq: i64,
    /// `highest_seq` about once a second, newest last: after a reconnect a cluster client
    /// syncs from the one [`SEQ_LAG`] old (messages through different nodes may arrive out of
    /// seq order by up to that much).
    samples: VecDeque<(Instant, i64)>,
    /// Ids of this device's own messages the server acknowledged (their `new_message` came
    /// back to this connection).
    pub acked: Vec<String>,
    /// The client message id sent and not yet acknowledged.
    pub pending: Option<String>,
    /// Connections opened after the first.
    pub reconnects: usize,
    /// `resync` frames answered with `sync`.
    pub resyncs: usize,
    /// `error` frames received.
    pub errors: Vec<Value>,
    /// Set when the device gave up reconnecting.
    pub gave_up: Option<String>,
}

impl Seen {
    /// Keeps a sample of `highest_seq` if the last one is a second old.
    fn sample(&mut self, now: Instant) {
        if self
            .samples
            .back()
            .is_none_or(|(at, _)| now.duration_since(*at) >= Duration::from_secs(1))
        {
            self.samples.push_back((now, self.highest_seq));
        }
    }

    /// Where to sync from after a connection lost at `lost_at`: the highest seq received
    /// [`SEQ_LAG`] before, or 0 when the client has not run that long.
    fn sync_point(&self, lost_at: Instant) -> i64 {
        lost_at.checked_sub(SEQ_LAG).map_or(0, |cutoff| {
            self.samples
                .iter()
                .rev()
                .find(|(at, _)| *at <= cutoff)
                .map_or(0, |(_, seq)| *seq)
        })
    }
}

/// A client app on one user's account, running as a task until [`Device::finish`].
pub struct Device {
    pub name: String,
    pub seen: Arc<Mutex<Seen>>,
    sending: Arc<AtomicBool>,
    finish: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

/// What a sending device sends to.
#[derive(Debug, Clone)]
pub struct Sending {
    pub conversation: String,
}

impl Device {
    /// Connects `user` to `urls[0]` (falling back to the next URLs in turn whenever the
    /// connection drops or cannot be made) and keeps its message store whole. With
    /// `sending`, it sends one message after another over its WebSocket, each once the
    /// previous one was acknowledged, until [`Device::stop_sending`]; a message in flight when
    /// the connection dropped is sent again, with the same client message id, after the
    /// reconnect. Sending starts with [`Device::start_sending`]. Returns once the first
    /// connection is open.
    pub async fn start(user: &User, urls: Vec<String>, sending: Option<Sending>) -> Self {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let sending_on = Arc::new(AtomicBool::new(false));
        let finish = Arc::new(AtomicBool::new(false));
        let first = connect(&urls[0], user)
            .await
            .expect("the device's first connection opens");
        let run = Run {
            user: user.clone(),
            urls,
            sending,
            seen: seen.clone(),
            sending_on: sending_on.clone(),
            finish: finish.clone(),
        };
        Self {
            name: user.name.clone(),
            seen,
            sending: sending_on,
            finish,
            task: tokio::spawn(run.run(first)),
        }
    }

    /// Starts sending (a device started with something to send).
    pub fn start_sending(&self) {
        self.sending.store(true, Ordering::Relaxed);
    }

    /// Sends no new message; the one in flight is still seen through to its acknowledgement.
    pub fn stop_sending(&self) {
        self.sending.store(false, Ordering::Relaxed);
    }

    /// Ends the task and returns what the device saw.
    pub async fn finish(self) -> Seen {
        self.finish.store(true, Ordering::Relaxed);
        self.task.await.expect("the device task ends cleanly");
        Arc::try_unwrap(self.seen)
            .expect("the task is over")
            .into_inner()
            .expect("the lock is sound")
    }
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens a `?token=` socket and reads its `connected` frame, within 5 s.
async fn connect(url: &str, user: &User) -> Result<Socket, String> {
    let opened = tokio::time::timeout(Duration::from_secs(5), async {
        let (mut socket, _) = connect_async(format!("{url}?token={}", user.token))
            .await
            .map_err(|e| e.to_string())?;
        loop {
            match socket.next().await {
                Some(Ok(Message::Text(text))) => {
                    let frame: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
                    return if frame["type"] == "connected" {
                        Ok(socket)
                    } else {
                        Err(format!("expected connected, got {frame}"))
                    };
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e.to_string()),
                None => return Err("closed before connected".into()),
            }
        }
    })
    .await;
    opened.unwrap_or_else(|_| Err(format!("no connected frame from {url} within 5 s")))
}

struct Run {
    user: User,
    urls: Vec<String>,
    sending: Option<Sending>,
    seen: Arc<Mutex<Seen>>,
    sending_on: Arc<AtomicBool>,
    finish: Arc<AtomicBool>,
}

/// How a connection ended.
enum Ended {
    Finished,
    Dropped,
}

impl Run {
    async fn run(self, first: Socket) {
        let mut socket = first;
        let mut at = 0;
        let mut counter = 0_u64;
        loop {
            match self.serve(&mut socket, &mut counter).await {
                Ended::Finished => return,
                Ended::Dropped => {}
            }
            let lost_at = Instant::now();
            // Reconnect: the next node in turn, with a little backoff, for 30 s at most.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            let mut last_error = String::new();
            socket = loop {
                if tokio::time::Instant::now() > deadline {
                    self.seen.lock().unwrap().gave_up = Some(last_error);
                    return;
                }
                at = (at + 1) % self.urls.len();
                match connect(&self.urls[at], &self.user).await {
                    Ok(socket) => break socket,
                    Err(error) => last_error = error,
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            let since = {
                let mut seen = self.seen.lock().unwrap();
                seen.reconnects += 1;
                seen.sync_point(lost_at)
            };
            if send(&mut socket, json!({"type": "sync", "since_seq": since}))
                .await
                .is_err()
            {
                continue;
            }
            let pending = self.seen.lock().unwrap().pending.clone();
            if let Some(client_id) = pending
                && self.resend(&mut socket, &client_id).await.is_err()
            {
                continue;
            }
        }
    }

    fn content(client_id: &str) -> String {
        format!("message {client_id}")
    }

    async fn resend(&self, socket: &mut Socket, client_id: &str) -> Result<(), ()> {
        let sending = self.sending.as_ref().expect("only a sender has messages");
        send(
            socket,
            json!({
                "type": "message",
                "conversation_id": sending.conversation,
                "content": Self::content(client_id),
                "client_message_id": client_id,
            }),
        )
        .await
    }

    /// Serves one connection until it drops or the device is finished.
    async fn serve(&self, socket: &mut Socket, counter: &mut u64) -> Ended {
        loop {
            if self.finish.load(Ordering::Relaxed) {
                let _ = socket.close(None).await;
                return Ended::Finished;
            }
            let next = {
                let mut seen = self.seen.lock().unwrap();
                seen.sample(Instant::now());
                if seen.pending.is_none()
                    && self.sending.is_some()
                    && self.sending_on.load(Ordering::Relaxed)
                {
                    let client_id = format!("{}-{counter}", self.user.name);
                    *counter += 1;
                    seen.pending = Some(client_id.clone());
                    Some(client_id)
                } else {
                    None
                }
            };
            if let Some(client_id) = next
                && self.resend(socket, &client_id).await.is_err()
            {
                return Ended::Dropped;
            }
            let frame = match tokio::time::timeout(Duration::from_millis(20), socket.next()).await {
                Err(_) => continue,
                Ok(Some(Ok(Message::Text(text)))) => {
                    serde_json::from_str::<Value>(&text).expect("the server sends JSON")
                }
                Ok(Some(Ok(Message::Close(_))) | Some(Err(_)) | None) => return Ended::Dropped,
                Ok(Some(Ok(_))) => continue,
            };
            match frame["type"].as_str() {
                Some("new_message") => self.record(&frame["message"]),
                Some("resync") => {
                    // From the node's watermark when it names one below ours: events from
                    // several nodes may have arrived out of seq order.
                    let since = {
                        let mut seen = self.seen.lock().unwrap();
                        seen.resyncs += 1;
                        frame["since_seq"]
                            .as_i64()
                            .map_or(seen.highest_seq, |since| since.min(seen.highest_seq))
                    };
                    if send(socket, json!({"type": "sync", "since_seq": since}))
                        .await
                        .is_err()
                    {
                        return Ended::Dropped;
                    }
                }
                Some("error") => self.seen.lock().unwrap().errors.push(frame),
                _ => {}
            }
        }
    }

    fn record(&self, message: &Value) {
        let (id, seq) = (id_of(message), seq_of(message));
        let mut seen = self.seen.lock().unwrap();
        match seen.by_seq.insert(seq, id.clone()) {
            Some(other) if other != id => seen.seq_clashes.push((seq, id.clone(), other)),
            _ => {}
        }
        seen.messages.insert(id.clone(), seq);
        seen.highest_seq = seen.highest_seq.max(seq);
        if message["sender_id"] == self.user.id.as_str()
            && seen
                .pending
                .as_deref()
                .is_some_and(|pending| message["client_message_id"] == pending)
        {
            seen.pending = None;
            seen.acked.push(id);
        }
    }
}

async fn send(socket: &mut Socket, frame: Value) -> Result<(), ()> {
    socket
        .send(Message::text(frame.to_string()))
        .await
        .map_err(|_| ())
}
