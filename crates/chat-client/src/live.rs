//! The live connection: one WebSocket to the gateway, kept open by a background task that
//! reconnects when it drops, catches up with `sync` and resends what was not confirmed.
//!
//! ```no_run
//! # async fn run(client: chat_client::Client, conversation: uuid::Uuid) -> Result<(), chat_client::Error> {
//! use chat_client::events::SendMessage;
//! use chat_client::live::Update;
//!
//! let mut live = client.connect().await?;
//! live.send_message(SendMessage::to_conversation(conversation, "Hello!"))?;
//! while let Some(update) = live.next().await {
//!     match update {
//!         Update::Event(event) => println!("{event:?}"),
//!         Update::Status(status) => println!("{status:?}"),
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! What the task guarantees (docs/clients.md, "Live connection"):
//! - Events with a position (`seq`) are yielded once: a frame whose position was already
//!   yielded (a message that comes both live and in a catch-up, the echo of a resend) is
//!   skipped.
//! - After a reconnect it syncs from the position it held a few seconds before the drop (live
//!   frames of changes other than messages may arrive slightly out of order), and yields the
//!   catch-up and the live frames that arrive meanwhile in ascending position, page by page.
//! - A message is kept until the server confirms it (its `new_message` comes back with its
//!   `client_message_id`) or refuses it (an `error` frame whose `ref` is that id), and sent
//!   again after every reconnect until then: the server stores one message per id.
//! - It stops for good after [`Live::close`], when [`Live`] is dropped, or when the session
//!   has ended (a refusal of the token that a refresh cannot mend); the last update is then
//!   [`Status::Ended`].

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use rand::Rng;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::http::header::AUTHORIZATION;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message as Frame};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

use crate::client::Client;
use crate::error::Error;
use crate::events::{Command, Connected, DeleteScope, ErrorFrame, Event, OwnPresence, SendMessage};

/// An open WebSocket to the gateway, as [`connect_raw`] returns it.
pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens a WebSocket to `url` (the gateway, `ws://host/api/v1/ws`) with `token` in the
/// `Authorization` header, and returns it before its first frame: the server then sends
/// `connected`, or an `error` frame and a 1008 close if it refuses the token. For code that
/// drives a socket itself (tests of the protocol, a benchmark); apps use [`Client::connect`].
pub async fn connect_with_token(url: &str, token: &str) -> Result<Socket, Error> {
    let mut request = url.into_client_request()?;
    let bearer = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| Error::Decode("the token cannot be sent in a header".into()))?;
    request.headers_mut().insert(AUTHORIZATION, bearer);
    let (socket, _) = tokio_tungstenite::connect_async(request).await?;
    Ok(socket)
}

/// Opens a WebSocket to `client`'s gateway with its session's access token (refreshed first
/// when it is about to expire); see [`connect_with_token`].
pub async fn connect_raw(client: &Client) -> Result<Socket, Error> {
    let token = client.access_token().await?;
    connect_with_token(client.websocket_url().as_str(), &token).await
}

/// How a [`Live`] connection behaves. [`Options::default`] suits an app.
#[derive(Debug, Clone)]
pub struct Options {
    /// The position to catch up from on the first connection (one kept from an earlier run,
    /// see [`Live::position`]); `None` starts at the server's `last_seq` with no catch-up.
    pub since: Option<i64>,
    /// The first reconnect waits up to this long; each further one up to twice as long as the
    /// one before, up to `backoff_cap`. The wait is drawn at random below that bound ("full
    /// jitter"), so clients dropped together do not come back together.
    pub backoff_base: Duration,
    /// The most a reconnect waits.
    pub backoff_cap: Duration,
    /// A connection that stayed up this long starts the next reconnect from `backoff_base`.
    pub stable_after: Duration,
    /// How often a ping goes out to notice a dead link (a phone that lost its network sends
    /// no close); the connection is taken for dead when nothing came back for twice this.
    pub keepalive: Duration,
    /// The most events one `sync` page asks for (1–1000).
    pub sync_page: i64,
    /// How far back from a drop a catch-up starts (docs/websocket.md, "Positions").
    pub resume_lag: Duration,
    /// How long opening a connection (handshake and `connected` frame) may take.
    pub connect_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            since: None,
            backoff_base: Duration::from_millis(500),
            backoff_cap: Duration::from_secs(30),
            stable_after: Duration::from_secs(30),
            keepalive: Duration::from_secs(25),
            sync_page: 500,
            resume_lag: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(20),
        }
    }
}

/// What [`Live::next`] yields: a frame of the server, or a change of the connection's state.
// Events are the common case and move once through a channel; boxing them would make every
// match on an update dereference a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// A frame the server sent (never `connected`: that is [`Status::Connected`]).
    Event(Event),
    /// The connection went up or down.
    Status(Status),
}

/// The connection's state, as it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Connected (again): the server accepted the token. After a reconnect the catch-up
    /// follows, ending with an [`Event::Synced`] whose `has_more` is false.
    Connected { user_id: Uuid, last_seq: i64 },
    /// The connection dropped; a reconnect follows.
    Disconnected { reason: String },
    /// Reconnect number `attempt` (from 1) starts after `delay`.
    Reconnecting { attempt: u32, delay: Duration },
    /// The connection is over for good; nothing follows.
    Ended(EndReason),
}

/// Why a [`Live`] connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// [`Live::close`] was called, or the [`Live`] dropped.
    Closed,
    /// The session ended (logged out, revoked, password changed, account deactivated): log in
    /// again, then connect again. Messages not confirmed yet were not delivered.
    SessionEnded { detail: String },
}

impl Client {
    /// Opens a live connection with [`Options::default`]; see [`Live::connect`].
    pub async fn connect(&self) -> Result<Live, Error> {
        Live::connect(self.clone(), Options::default()).await
    }
}

/// A live connection to the gateway, kept up by a background task. Sending never waits: a
/// frame goes out at once when connected, and otherwise when the connection is back.
pub struct Live {
    requests: mpsc::UnboundedSender<Request>,
    updates: mpsc::Receiver<Update>,
    position: Arc<AtomicI64>,
    next_ref: AtomicU64,
}

enum Request {
    Send {
        command: Command,
        reference: Option<String>,
    },
    Close,
}

/// How many updates wait for the app before the task stops reading the socket. A slow app
/// then slows the socket; if the server gives up on it (close 1013), the task reconnects
/// and catches up, so nothing is lost.
const UPDATES_BUFFERED: usize = 1024;

/// How many positions the task remembers to skip duplicates: far more than a catch-up window
/// holds.
const POSITIONS_REMEMBERED: usize = 20_000;

impl Live {
    /// Connects as `client`'s session and starts the task that keeps the connection up.
    /// Fails if this first connection fails (the server is unreachable, the session is over);
    /// later drops are handled by the task.
    pub async fn connect(client: Client, options: Options) -> Result<Live, Error> {
        let (socket, connected) =
            match tokio::time::timeout(options.connect_timeout, open(&client)).await {
                Ok(Ok(opened)) => opened,
                Ok(Err(Failure::SessionEnded(error) | Failure::Retry(error))) => return Err(error),
                Err(_) => {
                    return Err(Error::from(tungstenite::Error::Io(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "no connected frame in time",
                    ))));
                }
            };
        let (requests, requests_rx) = mpsc::unbounded_channel();
        let (updates_tx, updates) = mpsc::channel(UPDATES_BUFFERED);
        let start = options.since.unwrap_or(connected.last_seq);
        let position = Arc::new(AtomicI64::new(start));
        let task = Task {
            client,
            requests: requests_rx,
            updates: updates_tx,
            shared_position: position.clone(),
            position: start,
            samples: VecDeque::from([(Instant::now(), start)]),
            applied: BTreeSet::new(),
            outbox: Outbox::default(),
            user_id: connected.user_id,
            internal_pings: 0,
            catching_up: None,
            catch_up_first: options.since.is_some(),
            options,
        };
        tokio::spawn(task.run(socket, connected));
        Ok(Live {
            requests,
            updates,
            position,
            next_ref: AtomicU64::new(1),
        })
    }

    /// The next event or change of state; `None` once the connection has ended and every
    /// update before the end was taken.
    pub async fn next(&mut self) -> Option<Update> {
        self.updates.recv().await
    }

    /// The next server frame, skipping changes of state; `None` once the connection has
    /// ended.
    pub async fn next_event(&mut self) -> Option<Event> {
        loop {
            match self.next().await? {
                Update::Event(event) => return Some(event),
                Update::Status(_) => continue,
            }
        }
    }

    /// The highest position applied so far: keep it (with what you store of the events) and
    /// pass it as [`Options::since`] next time to catch up from there.
    pub fn position(&self) -> i64 {
        self.position.load(Ordering::Relaxed)
    }

    /// Closes the connection: the server is told, the task stops without reconnecting, and
    /// after the updates already waiting, [`Live::next`] yields [`Status::Ended`] and then
    /// `None`. Messages not confirmed yet are not sent again.
    pub fn close(&self) {
        let _ = self.requests.send(Request::Close);
    }

    /// Sends a message and returns its `client_message_id` (a new UUID unless you gave one),
    /// which its `new_message` carries back. It is sent again after each reconnect until the
    /// server confirms or refuses it.
    pub fn send_message(&self, mut message: SendMessage) -> Result<String, Error> {
        let id = message
            .message
            .client_message_id
            .get_or_insert_with(|| Uuid::new_v4().to_string())
            .clone();
        self.request(Command::Message(message), None)?;
        Ok(id)
    }

    /// Sends any command with a fresh `ref`, returned: an `error` frame refusing it carries the
    /// same `ref`. Sent when connected, or after the next reconnect (except `typing` and
    /// `ping`, which would be stale by then and are dropped). For a message, use
    /// [`Live::send_message`], which resends until confirmed. A `sync` is run as the task's
    /// own catch-ups are: in pages of [`Options::sync_page`] (its `limit` is not used), in
    /// ascending position, skipping what was already yielded; one asked for while
    /// disconnected is dropped, since the reconnect catches up anyway.
    pub fn send(&self, command: Command) -> Result<String, Error> {
        if let Command::Message(message) = command {
            return self.send_message(message);
        }
        let reference = format!("r-{}", self.next_ref.fetch_add(1, Ordering::Relaxed));
        self.request(command, Some(reference.clone()))?;
        Ok(reference)
    }

    fn request(&self, command: Command, reference: Option<String>) -> Result<(), Error> {
        self.requests
            .send(Request::Send { command, reference })
            .map_err(|_| Error::from(tungstenite::Error::AlreadyClosed))
    }

    /// Edits a message you sent.
    pub fn edit(&self, message_id: Uuid, content: impl Into<String>) -> Result<String, Error> {
        self.send(Command::EditMessage {
            message_id,
            content: content.into(),
        })
    }

    /// Deletes a message for everyone or for yourself.
    pub fn delete(&self, message_id: Uuid, scope: DeleteScope) -> Result<String, Error> {
        self.send(Command::DeleteMessage { message_id, scope })
    }

    /// Reacts to a message with one emoji.
    pub fn react(&self, message_id: Uuid, emoji: impl Into<String>) -> Result<String, Error> {
        self.send(Command::React {
            message_id,
            emoji: emoji.into(),
        })
    }

    /// Takes a reaction back.
    pub fn unreact(&self, message_id: Uuid, emoji: impl Into<String>) -> Result<String, Error> {
        self.send(Command::Unreact {
            message_id,
            emoji: emoji.into(),
        })
    }

    /// Says you started (`true`) or stopped typing in a conversation.
    pub fn typing(&self, conversation_id: Uuid, is_typing: bool) -> Result<String, Error> {
        self.send(Command::Typing {
            conversation_id,
            is_typing,
        })
    }

    /// Marks a message, and everything before it in its conversation, read.
    pub fn mark_read(&self, message_id: Uuid) -> Result<String, Error> {
        self.send(Command::MarkRead { message_id })
    }

    /// Sets your read marker in a conversation, back (0: all unread) or forward.
    pub fn set_read_marker(
        &self,
        conversation_id: Uuid,
        last_read_seq: i64,
    ) -> Result<String, Error> {
        self.send(Command::SetReadMarker {
            conversation_id,
            last_read_seq,
        })
    }

    /// Pins a message in its conversation.
    pub fn pin(&self, conversation_id: Uuid, message_id: Uuid) -> Result<String, Error> {
        self.send(Command::Pin {
            conversation_id,
            message_id,
        })
    }

    /// Unpins a message.
    pub fn unpin(&self, conversation_id: Uuid, message_id: Uuid) -> Result<String, Error> {
        self.send(Command::Unpin {
            conversation_id,
            message_id,
        })
    }

    /// Says this device is away (the app went to the background).
    pub fn away(&self) -> Result<String, Error> {
        self.send(Command::Presence {
            status: OwnPresence::Away,
        })
    }

    /// Says this device is back.
    pub fn back(&self) -> Result<String, Error> {
        self.send(Command::Presence {
            status: OwnPresence::Online,
        })
    }

    /// Pings the server: [`Event::Pong`] answers. The task pings by itself to notice a dead
    /// link; those answers are not yielded.
    pub fn ping(&self) -> Result<String, Error> {
        self.send(Command::Ping)
    }
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live")
            .field("position", &self.position())
            .finish_non_exhaustive()
    }
}

/// Why opening a connection failed.
enum Failure {
    /// The session is over: no reconnect can mend it.
    SessionEnded(Error),
    /// Worth another try after a wait.
    Retry(Error),
}

/// Whether `error` says the session is over (a refresh refused, or no session left).
fn session_over(error: &Error) -> bool {
    matches!(error, Error::NotLoggedIn) || error.status() == Some(401)
}

/// An `error` frame refusing the connection, as the API error REST would answer for the same
/// token (401) or the same lack of room (503).
fn refusal(frame: ErrorFrame) -> Error {
    let status = if frame.code == "too_many_connections" {
        503
    } else {
        401
    };
    Error::Api {
        status,
        code: frame.code,
        detail: frame.detail,
        request_id: None,
    }
}

/// Opens a connection and reads its first frame. A token the server refuses as expired (the
/// clocks disagree, or the process slept) is refreshed and tried once more; one it refuses
/// otherwise gets a refresh too, which fails if the session is over.
async fn open(client: &Client) -> Result<(Socket, Connected), Failure> {
    let mut refreshed = false;
    loop {
        let token = client.access_token().await.map_err(|error| {
            if session_over(&error) {
                Failure::SessionEnded(error)
            } else {
                Failure::Retry(error)
            }
        })?;
        let mut socket = connect_with_token(client.websocket_url().as_str(), &token)
            .await
            .map_err(Failure::Retry)?;
        let refused = loop {
            let text = match socket.next().await {
                Some(Ok(Frame::Text(text))) => text,
                Some(Ok(Frame::Close(_))) | None => {
                    return Err(Failure::Retry(tungstenite::Error::ConnectionClosed.into()));
                }
                Some(Ok(_)) => continue,
                Some(Err(error)) => return Err(Failure::Retry(error.into())),
            };
            match Event::from_json(&text) {
                Ok(Event::Connected(connected)) => return Ok((socket, connected)),
                Ok(Event::Error(frame)) => break frame,
                _ => {
                    return Err(Failure::Retry(Error::Decode(
                        "the first frame was neither connected nor an error".into(),
                    )));
                }
            }
        };
        let _ = socket.close(None).await;
        if refused.code == "too_many_connections" {
            return Err(Failure::Retry(refusal(refused)));
        }
        if refreshed {
            return Err(Failure::SessionEnded(refusal(refused)));
        }
        refreshed = true;
        if let Err(error) = client.refresh().await {
            return Err(if session_over(&error) {
                Failure::SessionEnded(error)
            } else {
                Failure::Retry(error)
            });
        }
    }
}

/// Messages not confirmed yet, and other commands made while disconnected.
#[derive(Default)]
struct Outbox {
    /// In the order sent; the key is the `client_message_id`.
    pending: VecDeque<(String, SendMessage)>,
    /// Sent on the next connection.
    queued: VecDeque<(Command, Option<String>)>,
}

impl Outbox {
    /// Takes a request made while no connection is up; true if it was [`Request::Close`].
    fn take_offline(&mut self, request: Option<Request>) -> bool {
        match request {
            None | Some(Request::Close) => true,
            Some(Request::Send {
                command: Command::Message(message),
                ..
            }) => {
                self.keep(message);
                false
            }
            // Stale by the time the connection is back, or (a sync) done by the reconnect.
            Some(Request::Send {
                command: Command::Typing { .. } | Command::Ping | Command::Sync { .. },
                ..
            }) => false,
            Some(Request::Send { command, reference }) => {
                self.queued.push_back((command, reference));
                false
            }
        }
    }

    fn keep(&mut self, message: SendMessage) {
        let id = message
            .message
            .client_message_id
            .clone()
            .unwrap_or_default();
        self.pending.push_back((id, message));
    }

    fn confirm(&mut self, client_message_id: &str) {
        self.pending.retain(|(id, _)| id != client_message_id);
    }
}

/// How a connection ended.
enum SessionEnd {
    /// [`Live::close`], or the [`Live`] dropped.
    Closed,
    /// Reconnect.
    Dropped(String),
    /// The server refused the token on an open connection (revoked): refresh, or end.
    Refused(String),
}

/// A catch-up in progress: frames with a position wait here to be yielded in order.
struct CatchUp {
    held: Vec<Event>,
}

struct Task {
    client: Client,
    options: Options,
    requests: mpsc::UnboundedReceiver<Request>,
    updates: mpsc::Sender<Update>,
    shared_position: Arc<AtomicI64>,
    /// The highest position yielded.
    position: i64,
    /// When `position` took each of its recent values, to resume from a little before a drop.
    samples: VecDeque<(Instant, i64)>,
    /// Positions yielded recently, to skip duplicates.
    applied: BTreeSet<i64>,
    outbox: Outbox,
    user_id: Uuid,
    /// Pings the task sent whose pongs it swallows.
    internal_pings: u32,
    catching_up: Option<CatchUp>,
    /// Whether the first connection catches up (from [`Options::since`]).
    catch_up_first: bool,
}

type Sink = SplitSink<Socket, Frame>;
type Stream = SplitStream<Socket>;

impl Task {
    async fn run(mut self, socket: Socket, connected: Connected) {
        let mut next = Some((socket, connected));
        let mut attempt: u32 = 0;
        let mut catch_up = self.catch_up_first;
        loop {
            let (socket, connected) = match next.take() {
                Some(opened) => opened,
                None => match self.reconnect(&mut attempt).await {
                    Ok(opened) => opened,
                    Err(reason) => return self.end(reason).await,
                },
            };
            let started = Instant::now();
            let dropped_at;
            let end = self.session(socket, connected, catch_up).await;
            catch_up = true;
            if started.elapsed() >= self.options.stable_after {
                attempt = 0;
            }
            match end {
                SessionEnd::Closed => return self.end(EndReason::Closed).await,
                SessionEnd::Dropped(reason) => {
                    dropped_at = Instant::now();
                    tracing::debug!(%reason, "live connection dropped");
                    self.emit(Update::Status(Status::Disconnected { reason }))
                        .await;
                }
                SessionEnd::Refused(reason) => {
                    dropped_at = Instant::now();
                    // A revoked token: a refresh tells whether the session lives on.
                    if let Err(error) = self.client.refresh().await
                        && session_over(&error)
                    {
                        return self
                            .end(EndReason::SessionEnded {
                                detail: error.to_string(),
                            })
                            .await;
                    }
                    self.emit(Update::Status(Status::Disconnected { reason }))
                        .await;
                }
            }
            self.resume_point(dropped_at);
        }
    }

    /// Waits and reconnects until a connection opens; `Err` when the task must end instead.
    async fn reconnect(&mut self, attempt: &mut u32) -> Result<(Socket, Connected), EndReason> {
        loop {
            *attempt += 1;
            let delay = backoff(&self.options, *attempt);
            self.emit(Update::Status(Status::Reconnecting {
                attempt: *attempt,
                delay,
            }))
            .await;
            let wake = tokio::time::sleep(delay);
            tokio::pin!(wake);
            loop {
                tokio::select! {
                    () = &mut wake => break,
                    request = self.requests.recv() => {
                        if self.outbox.take_offline(request) {
                            return Err(EndReason::Closed);
                        }
                    }
                }
            }
            let opening = tokio::time::timeout(self.options.connect_timeout, open(&self.client));
            tokio::pin!(opening);
            let opened = loop {
                tokio::select! {
                    opened = &mut opening => break opened,
                    request = self.requests.recv() => {
                        if self.outbox.take_offline(request) {
                            return Err(EndReason::Closed);
                        }
                    }
                }
            };
            match opened {
                Ok(Ok(opened)) => return Ok(opened),
                Ok(Err(Failure::SessionEnded(error))) => {
                    return Err(EndReason::SessionEnded {
                        detail: error.to_string(),
                    });
                }
                Ok(Err(Failure::Retry(error))) => {
                    tracing::debug!(%error, attempt = *attempt, "reconnect failed");
                }
                Err(_) => tracing::debug!(attempt = *attempt, "reconnect timed out"),
            }
        }
    }

    async fn end(mut self, reason: EndReason) {
        self.emit(Update::Status(Status::Ended(reason))).await;
    }

    /// One connection, from its `connected` frame to its end.
    async fn session(
        &mut self,
        socket: Socket,
        connected: Connected,
        catch_up: bool,
    ) -> SessionEnd {
        let (mut sink, mut stream): (Sink, Stream) = socket.split();
        self.user_id = connected.user_id;
        self.internal_pings = 0;
        self.catching_up = None;
        self.emit(Update::Status(Status::Connected {
            user_id: connected.user_id,
            last_seq: connected.last_seq,
        }))
        .await;
        if catch_up && let Err(reason) = self.start_sync(&mut sink, self.resume_from()).await {
            return SessionEnd::Dropped(reason);
        }
        // Unconfirmed messages first, in the order sent, then what was made offline.
        let mut backlog: Vec<String> = self
            .outbox
            .pending
            .iter()
            .map(|(_, message)| Command::Message(message.clone()).to_json(None))
            .collect();
        backlog.extend(
            self.outbox
                .queued
                .drain(..)
                .map(|(command, reference)| command.to_json(reference.as_deref())),
        );
        for text in backlog {
            if let Err(reason) = write(&mut sink, text).await {
                return SessionEnd::Dropped(reason);
            }
        }
        let mut keepalive = tokio::time::interval_at(
            Instant::now() + self.options.keepalive,
            self.options.keepalive,
        );
        let mut heard = Instant::now();
        loop {
            tokio::select! {
                frame = stream.next() => {
                    heard = Instant::now();
                    match frame {
                        Some(Ok(Frame::Text(text))) => {
                            if let Err(reason) = self.receive(&mut sink, &text).await {
                                return SessionEnd::Dropped(reason);
                            }
                        }
                        Some(Ok(Frame::Close(frame))) => return closed_by_server(frame),
                        Some(Ok(_)) => {}
                        Some(Err(error)) => return SessionEnd::Dropped(error.to_string()),
                        None => return SessionEnd::Dropped("the connection ended".into()),
                    }
                }
                request = self.requests.recv() => match request {
                    None | Some(Request::Close) => {
                        let _ = sink.send(Frame::Close(Some(CloseFrame {
                            code: CloseCode::Normal,
                            reason: "closed by the client".into(),
                        }))).await;
                        return SessionEnd::Closed;
                    }
                    Some(Request::Send { command: Command::Sync { since_seq, .. }, .. }) => {
                        if let Err(reason) = self.start_sync(&mut sink, since_seq).await {
                            return SessionEnd::Dropped(reason);
                        }
                    }
                    Some(Request::Send { command, reference }) => {
                        let text = command.to_json(reference.as_deref());
                        if let Command::Message(message) = command {
                            self.outbox.keep(message);
                        }
                        if let Err(reason) = write(&mut sink, text).await {
                            return SessionEnd::Dropped(reason);
                        }
                    }
                },
                _ = keepalive.tick() => {
                    if heard.elapsed() >= self.options.keepalive * 2 {
                        return SessionEnd::Dropped("no answer from the server".into());
                    }
                    self.internal_pings += 1;
                    if let Err(reason) = write(&mut sink, Command::Ping.to_json(None)).await {
                        return SessionEnd::Dropped(reason);
                    }
                }
            }
        }
    }

    /// Handles one text frame.
    async fn receive(&mut self, sink: &mut Sink, text: &str) -> Result<(), String> {
        let event = match Event::from_json(text) {
            Ok(event) => event,
            Err(error) => {
                tracing::warn!(%error, "the server sent a frame that is not JSON");
                return Ok(());
            }
        };
        match event {
            Event::Connected(_) => {}
            Event::Pong if self.internal_pings > 0 => self.internal_pings -= 1,
            Event::Synced(synced) if self.catching_up.is_some() => {
                self.release(Some(synced.last_seq)).await;
                self.advance(synced.last_seq);
                if synced.has_more {
                    self.send_sync(sink, synced.last_seq).await?;
                } else {
                    self.release(None).await;
                    self.catching_up = None;
                }
                self.emit(Update::Event(Event::Synced(synced))).await;
            }
            Event::Resync(resync) => {
                let since = resync
                    .since_seq
                    .map_or(self.position, |since| since.min(self.position));
                self.start_sync(sink, since).await?;
                self.emit(Update::Event(Event::Resync(resync))).await;
            }
            event if event.seq().is_some() && self.catching_up.is_some() => {
                if let Some(catch_up) = self.catching_up.as_mut() {
                    catch_up.held.push(event);
                }
            }
            event => self.apply(event).await,
        }
        Ok(())
    }

    async fn start_sync(&mut self, sink: &mut Sink, since: i64) -> Result<(), String> {
        if self.catching_up.is_none() {
            self.catching_up = Some(CatchUp { held: Vec::new() });
        }
        self.send_sync(sink, since).await
    }

    async fn send_sync(&mut self, sink: &mut Sink, since: i64) -> Result<(), String> {
        let sync = Command::Sync {
            since_seq: since,
            limit: Some(self.options.sync_page),
        };
        write(sink, sync.to_json(None)).await
    }

    /// Yields the held frames up to position `upto` (all of them for `None`), in ascending
    /// position.
    async fn release(&mut self, upto: Option<i64>) {
        let Some(catch_up) = self.catching_up.as_mut() else {
            return;
        };
        let held = std::mem::take(&mut catch_up.held);
        let (mut ready, rest): (Vec<Event>, Vec<Event>) = held
            .into_iter()
            .partition(|event| upto.is_none_or(|upto| event.seq().unwrap_or(0) <= upto));
        catch_up.held = rest;
        // Stable: frames of one position keep their order of arrival.
        ready.sort_by_key(|event| event.seq().unwrap_or(0));
        for event in ready {
            self.apply(event).await;
        }
    }

    /// Yields a frame unless its position was yielded already, and settles what it confirms.
    async fn apply(&mut self, event: Event) {
        if let Some(seq) = event.seq().filter(|seq| *seq > 0) {
            if !self.applied.insert(seq) {
                return;
            }
            if self.applied.len() > POSITIONS_REMEMBERED {
                self.applied.pop_first();
            }
            self.advance(seq);
        }
        match &event {
            Event::NewMessage(e) | Event::MessageUpdated(e) | Event::MessageDeleted(e)
                if e.message.sender_id == self.user_id =>
            {
                if let Some(id) = &e.message.client_message_id {
                    self.outbox.confirm(id);
                }
            }
            Event::Error(error) => {
                if let Some(reference) = &error.reference {
                    self.outbox.confirm(reference);
                }
            }
            _ => {}
        }
        self.emit(Update::Event(event)).await;
    }

    fn advance(&mut self, seq: i64) {
        if seq > self.position {
            self.position = seq;
            self.shared_position.store(seq, Ordering::Relaxed);
            let now = Instant::now();
            self.samples.push_back((now, seq));
            // Keep the newest sample older than the lag, and all newer ones.
            if let Some(cutoff) = now.checked_sub(self.options.resume_lag) {
                while self.samples.len() > 1 && self.samples[1].0 <= cutoff {
                    self.samples.pop_front();
                }
            }
        }
    }

    /// Fixes where the next catch-up starts: the position held `resume_lag` before
    /// `dropped_at` (the oldest one known when the connection was younger than that).
    fn resume_point(&mut self, dropped_at: Instant) {
        let cutoff = dropped_at.checked_sub(self.options.resume_lag);
        let point = self
            .samples
            .iter()
            .rev()
            .find(|(at, _)| cutoff.is_some_and(|cutoff| *at <= cutoff))
            .or(self.samples.front())
            .map_or(self.position, |(_, seq)| *seq);
        self.samples.clear();
        self.samples.push_back((dropped_at, point));
    }

    /// Where a catch-up on the current connection starts.
    fn resume_from(&self) -> i64 {
        self.samples.front().map_or(self.position, |(_, seq)| *seq)
    }

    async fn emit(&mut self, update: Update) {
        // The app dropped its Live: the next request read ends the task.
        let _ = self.updates.send(update).await;
    }
}

/// How a close frame from the server ends the connection: a 1008 after the token was refused
/// (revoked) is a refusal; anything else (restart, heartbeat, too slow) is a drop.
fn closed_by_server(frame: Option<CloseFrame>) -> SessionEnd {
    match frame {
        Some(frame) if frame.code == CloseCode::Policy && frame.reason != "no heartbeat" => {
            SessionEnd::Refused(format!("closed by the server: {}", frame.reason))
        }
        Some(frame) => SessionEnd::Dropped(format!(
            "closed by the server: {} {}",
            u16::from(frame.code),
            frame.reason
        )),
        None => SessionEnd::Dropped("closed by the server".into()),
    }
}

async fn write(sink: &mut Sink, text: String) -> Result<(), String> {
    sink.send(Frame::text(text))
        .await
        .map_err(|error| error.to_string())
}

/// The wait before reconnect number `attempt`: random up to `base * 2^(attempt - 1)`, at most
/// the cap ("full jitter").
fn backoff(options: &Options, attempt: u32) -> Duration {
    let doubling = 2u32.saturating_pow(attempt.saturating_sub(1).min(20));
    let bound = options
        .backoff_base
        .saturating_mul(doubling)
        .min(options.backoff_cap);
    let millis = u64::try_from(bound.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(rand::rng().random_range(0..=millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_cap_and_never_past_it() {
        let options = Options {
            backoff_base: Duration::from_millis(100),
            backoff_cap: Duration::from_millis(1000),
            ..Options::default()
        };
        for _ in 0..200 {
            assert!(backoff(&options, 1) <= Duration::from_millis(100));
            assert!(backoff(&options, 3) <= Duration::from_millis(400));
            assert!(backoff(&options, 40) <= Duration::from_millis(1000));
        }
        assert!(
            (0..200).any(|_| backoff(&options, 40) > Duration::from_millis(400)),
            "later attempts wait longer"
        );
    }

    #[tokio::test]
    async fn a_wss_url_is_spoken_over_tls() {
        // Nothing listens there: the connection fails, not for want of TLS support.
        let error = connect_with_token("wss://127.0.0.1:9/api/v1/ws", "token")
            .await
            .expect_err("nothing listens");
        let Error::WebSocket(error) = error else {
            panic!("a WebSocket error: {error}");
        };
        assert!(
            !matches!(
                *error,
                tungstenite::Error::Url(tungstenite::error::UrlError::TlsFeatureNotEnabled)
            ),
            "{error}"
        );
    }
}
