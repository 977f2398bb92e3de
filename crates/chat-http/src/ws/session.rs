//! One WebSocket connection: authenticate, register with the hub, then one loop over the
//! socket, the outbound queue, the heartbeat and the hub's signals.

use std::sync::Arc;
use std::time::Instant;

use actix_http::ws::{CloseCode, CloseReason};
use bytestring::ByteString;
use chat_domain::limits::Quota;
use chat_domain::message::DeleteScope;
use chat_domain::ports::RateLimiter as _;
use chat_domain::service::{Authenticated, ChatServices, Deleted, FeedQuery, SendMessage};
use chat_domain::{ConversationId, DomainError, MessageId, UserId};
use chrono::Utc;
use tokio::sync::mpsc;

use super::error::{SessionError, refuses_token};
use super::protocol::{ClientFrame, ClientPresence, FrameError, ServerFrame, decode, decode_auth};
use super::socket::{Closed, Incoming, ReceiveError, WsSocket};
use super::{Registration, Socket, UserConnectionCap};
use crate::error::ApiError;
use crate::state::AppState;

fn close(code: CloseCode, description: &str) -> Option<CloseReason> {
    Some(CloseReason {
        code,
        description: Some(description.to_owned()),
    })
}

/// How to close a connection whose client broke the protocol; none for a broken stream.
fn close_for(error: &ReceiveError) -> Option<CloseReason> {
    let code = match error {
        ReceiveError::FrameTooLarge | ReceiveError::MessageTooLarge => CloseCode::Size,
        ReceiveError::InvalidUtf8 => CloseCode::Invalid,
        ReceiveError::Protocol(_) => CloseCode::Protocol,
        ReceiveError::Io(_) => return None,
    };
    close(code, &error.to_string())
}

/// Runs a connection to its end. `upgrade_token` is the token given at the handshake, if any.
pub async fn run(
    state: Arc<AppState>,
    mut ws: WsSocket,
    upgrade_token: Option<Result<String, ApiError>>,
    mut slot: Socket,
) {
    let (authenticated, token) = match Box::pin(authenticate(&state, &mut ws, upgrade_token)).await
    {
        Ok(authenticated) => authenticated,
        Err(reason) => {
            let _ = tokio::time::timeout(CLOSE_GRACE, ws.close(reason)).await;
            return;
        }
    };
    // Leave the pending budget for an authenticated slot; the last one may have gone to
    // another socket since the handshake.
    if !slot.authenticated() {
        let detail = "the server is at its connection limit; retry later";
        let _ = send_error(&mut ws, "too_many_connections", detail, None).await;
        let reason = close(CloseCode::Again, "server at its connection limit");
        let _ = tokio::time::timeout(CLOSE_GRACE, ws.close(reason)).await;
        return;
    }
    let user = authenticated.user.id;
    let token = Token {
        claims: authenticated.claims,
        raw: token,
    };
    let reason = serve(&state, &mut ws, user, token).await;
    // A client that is behind takes the close frame once it has read what is queued before
    // it; one that stopped reading for good never will, and is let go after the grace.
    let _ = tokio::time::timeout(CLOSE_GRACE, ws.close(reason)).await;
}

/// The token a connection authenticated with: the heartbeat checks it again, and its id
/// lets a logout of that one token reach this connection.
struct Token {
    /// What it said at the handshake: its id and session let a logout or an ended session
    /// reach this connection.
    claims: chat_domain::ports::TokenClaims,
    raw: String,
}

/// How long a close frame may wait for room on a client's socket.
const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Resolves the caller from the handshake token or, failing that, the first frame. On
/// failure the client gets an `unauthorized` error frame and the close reason is 1008.
async fn authenticate(
    state: &AppState,
    ws: &mut WsSocket,
    upgrade_token: Option<Result<String, ApiError>>,
) -> Result<(Authenticated, String), Option<CloseReason>> {
    let token = match upgrade_token {
        Some(Ok(token)) => Some(token),
        Some(Err(_)) => None,
        None => {
            let timeout = state.hub.config().auth_timeout;
            let first = tokio::select! {
                first = tokio::time::timeout(timeout, ws.recv()) => first,
                () = state.hub.shutting_down() => {
                    return Err(close(CloseCode::Away, "server shutting down"));
                }
            };
            match first {
                Ok(Some(Ok(Incoming::Text(text)))) => decode_auth(&text),
                Ok(Some(Ok(Incoming::Close(_)))) | Ok(None) => return Err(None),
                Ok(_) => None,
                Err(_) => {
                    let _ = send_error(
                        ws,
                        "unauthorized",
                        "no token frame within the time allowed",
                        None,
                    )
                    .await;
                    return Err(close(CloseCode::Policy, "authentication timed out"));
                }
            }
        }
    };
    let authenticated = match token {
        Some(token) => state
            .authenticate(token.clone())
            .await
            .map(|session| (session, token))
            .map_err(|e| (e.code, e.detail)),
        None => Err((
            "unauthorized",
            "a token is required: ?token=, an Authorization header, or a first frame {\"token\": ...}"
                .to_owned(),
        )),
    };
    match authenticated {
        Ok(authenticated) => Ok(authenticated),
        Err((code, detail)) => {
            let _ = send_error(ws, code, &detail, None).await;
            Err(close(CloseCode::Policy, code))
        }
    }
}

async fn serve(
    state: &Arc<AppState>,
    ws: &mut WsSocket,
    user: UserId,
    token: Token,
) -> Option<CloseReason> {
    // Only what the loop needs is kept: this future lives as long as the connection, and an
    // idle connection should cost as little memory as possible.
    let config = state.hub.config();
    let (ping_interval, client_timeout, frame_quota) = (
        config.ping_interval,
        config.client_timeout,
        config.frame_quota,
    );
    // Held until the connection ends, on this node or across the cluster.
    let _user_slot = match UserSlot::claim(state, user).await {
        Ok(Some(slot)) => slot,
        Ok(None) => {
            let limit = state.hub.config().max_connections_per_user;
            let detail = format!("at most {limit} connections per user; close another first");
            let _ = send_error(ws, "too_many_connections", &detail, None).await;
            return close(CloseCode::Again, "too many connections for this user");
        }
        Err(error) => {
            let _ = send_error(ws, error.code, &error.detail, None).await;
            return close(CloseCode::Error, "could not claim a connection slot");
        }
    };
    // Register before reading `last_seq`: anything stored after that read is queued for us.
    let mut registration =
        state
            .hub
            .register_in_session(user, &token.claims.token_id, token.claims.session_id);
    let frames_key = format!("ws-frames:{}", registration.id());
    let last_seq = match blocking(state, move |s| s.messages.last_seq(user)).await {
        Ok(seq) => seq,
        Err(error) => {
            let _ = send_error(ws, error.code, &error.detail, None).await;
            return close(CloseCode::Error, "could not load the connection state");
        }
    };
    let connected = ServerFrame::Connected {
        user_id: user.as_uuid(),
        last_seq: last_seq.0,
    };
    if ws.text(connected.to_text()).await.is_err() {
        return None;
    }

    let mut heartbeat = tokio::time::interval(ping_interval);
    heartbeat.tick().await;
    let mut last_heard = Instant::now();
    let mut sends = Sends::default();
    loop {
        tokio::select! {
            biased;
            _ = registration.overflowed.notified() => return too_slow(),
            _ = registration.shutdown.changed() => {
                return close(CloseCode::Away, "server shutting down");
            }
            _ = registration.revoked.notified() => {
                let _ = send_error(ws, "unauthorized", "token has been revoked", None).await;
                return close(CloseCode::Policy, "token revoked");
            }
            frame = registration.outbound.recv() => {
                let frame = frame?;
                if let Err(reason) = Box::pin(forward(ws, &mut registration, frame)).await {
                    return reason;
                }
            }
            answer = sends.answered() => {
                sends.in_flight -= 1;
                if Box::pin(answer.deliver(ws)).await.is_err() {
                    return None;
                }
            }
            _ = heartbeat.tick() => {
                if last_heard.elapsed() > client_timeout {
                    return close(CloseCode::Policy, "no heartbeat");
                }
                if let Err(reason) = Box::pin(check_in(state, ws, &token, client_timeout)).await {
                    return reason;
                }
            }
            // A client with many sends still being stored is not read from until some are
            // done: back-pressure reaches it through its own socket.
            message = ws.recv(), if sends.in_flight < MAX_SENDS_IN_FLIGHT => {
                last_heard = Instant::now();
                let result = match message {
                    None => return None,
                    Some(Err(error)) => return close_for(&error),
                    Some(Ok(Incoming::Close(reason))) => return reason,
                    Some(Ok(Incoming::Ping(bytes))) => ws.pong(&bytes).await,
                    Some(Ok(Incoming::Pong(_))) => Ok(()),
                    Some(Ok(Incoming::Binary(_))) => {
                        send_error(ws, "invalid_frame", "binary frames are not supported; send JSON text", None).await
                    }
                    Some(Ok(Incoming::Text(text))) => {
                        match frame_budget(state, &frames_key, frame_quota) {
                            // Boxed, like the other rare paths: an idle connection's task then
                            // holds only what it waits on, not the largest thing it might do.
                            Ok(()) => Box::pin(handle_text(state, ws, &mut sends, user, registration.id(), &text)).await,
                            Err(detail) => send_error(ws, "rate_limited", &detail, None).await,
                        }
                    }
                };
                if result.is_err() {
                    return None;
                }
            }
        }
    }
}

/// How a client whose queue overflowed is closed (counted as
/// `chatd_websocket_slow_consumers_dropped_total`).
fn too_slow() -> Option<CloseReason> {
    metrics::counter!("chatd_websocket_slow_consumers_dropped_total").increment(1);
    close(CloseCode::Again, "too slow to keep up; reconnect and sync")
}

/// Writes one queued frame to the client. A client that stops reading fills the socket and
/// the write waits; the hub's signals must still get through, or the session would hang
/// forever. `Err` holds how to close.
async fn forward(
    ws: &mut WsSocket,
    registration: &mut Registration,
    frame: ByteString,
) -> Result<(), Option<CloseReason>> {
    tokio::select! {
        biased;
        sent = ws.text(frame) => sent.map_err(|_| None),
        _ = registration.overflowed.notified() => Err(too_slow()),
        _ = registration.shutdown.changed() => {
            Err(close(CloseCode::Away, "server shutting down"))
        }
        _ = registration.revoked.notified() => Err(close(CloseCode::Policy, "token revoked")),
    }
}

/// The heartbeat's check: the connection's access must still hold (it can be withdrawn
/// outside this process: expiry, another node, the CLI; see
/// [`chat_domain::service::AccountService::connection_holds`]) and the client must take a
/// ping. `Err` holds how to close.
async fn check_in(
    state: &AppState,
    ws: &mut WsSocket,
    token: &Token,
    client_timeout: std::time::Duration,
) -> Result<(), Option<CloseReason>> {
    let (presented, claims) = (token.raw.clone(), token.claims.clone());
    let services = state.services.clone();
    let still_valid =
        actix_web::web::block(move || services.accounts.connection_holds(&presented, &claims))
            .await;
    if let Ok(Err(error)) = still_valid
        && refuses_token(&error)
    {
        let error = SessionError::from(error);
        let _ = send_error(ws, error.code, &error.detail, None).await;
        return Err(close(CloseCode::Policy, "token no longer valid"));
    }
    match tokio::time::timeout(client_timeout, ws.ping(b"")).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) | Err(_) => Err(None),
    }
}

/// One of a user's connection slots, given back when dropped.
struct UserSlot {
    cap: Arc<dyn UserConnectionCap>,
    user: UserId,
}

impl UserSlot {
    /// Claims a slot for `user`, or `None` when they hold as many connections as allowed.
    /// A cap shared through a database is asked on the blocking pool.
    async fn claim(state: &AppState, user: UserId) -> Result<Option<Self>, SessionError> {
        let cap = state.user_connections.clone();
        let limit = state.hub.config().max_connections_per_user;
        let claimed = if cap.may_block() {
            let remote = cap.clone();
            actix_web::web::block(move || remote.claim(user, limit)).await?
        } else {
            cap.claim(user, limit)
        };
        Ok(claimed.then(|| Self { cap, user }))
    }
}

impl Drop for UserSlot {
    fn drop(&mut self) {
        self.cap.release(self.user);
    }
}

/// Takes one frame from the connection's budget (this node's memory: see
/// [`AppState::frame_limiter`]).
fn frame_budget(state: &AppState, key: &str, quota: Option<Quota>) -> Result<(), String> {
    match quota {
        Some(quota) => state
            .frame_limiter
            .acquire(key, quota)
            .map_err(|wait| format!("too many frames; retry in {} ms", wait.as_millis().max(1))),
        None => Ok(()),
    }
}

/// Sends a connection may have waiting to be stored at once.
const MAX_SENDS_IN_FLIGHT: usize = 64;

/// The connection's sends that are handed to the store and not yet answered. They are stored
/// in the order the client sent them, while the connection goes on delivering and reading.
/// The channel is made at the first send: most connections mostly listen, and an idle one
/// should cost as little memory as possible.
#[derive(Default)]
struct Sends {
    answers: Option<(
        mpsc::UnboundedSender<Answer>,
        mpsc::UnboundedReceiver<Answer>,
    )>,
    in_flight: usize,
}

/// How a send ended, for the client: nothing for a new message (it arrives through the hub
/// like everyone else's), the stored message for a retry, or an error.
struct Answer {
    outcome: Result<Option<ServerFrame>, SessionError>,
    reference: Option<String>,
}

impl Sends {
    /// The next answer; pending for as long as nothing is in flight.
    async fn answered(&mut self) -> Answer {
        match &mut self.answers {
            // This connection holds a sender, so the channel never closes.
            Some((_, answers)) => match answers.recv().await {
                Some(answer) => answer,
                None => std::future::pending().await,
            },
            None => std::future::pending().await,
        }
    }

    /// Hands the message over; returns once it is handed over (which may take a round trip
    /// to the database that holds the sender's message budget), so the next frame's message
    /// cannot overtake it. `Err` when it could not be handed over at all.
    async fn submit(
        &mut self,
        state: &AppState,
        user: UserId,
        conversation: ConversationId,
        request: SendMessage,
        reference: Option<String>,
    ) -> Result<(), SessionError> {
        let (answers, _) = self.answers.get_or_insert_with(mpsc::unbounded_channel);
        let answers = answers.clone();
        state
            .submit_message(user, conversation, request, move |result| {
                let outcome = result.map_err(SessionError::from).map(|(view, created)| {
                    (!created).then(|| ServerFrame::NewMessage {
                        seq: view.message.seq.0,
                        timestamp: view.message.created_at,
                        message: view.into(),
                    })
                });
                let _ = answers.send(Answer { outcome, reference });
            })
            .await?;
        self.in_flight += 1;
        Ok(())
    }
}

impl Answer {
    async fn deliver(self, ws: &mut WsSocket) -> Result<(), Closed> {
        match self.outcome {
            Ok(Some(frame)) => ws.text(frame.to_text()).await,
            Ok(None) => Ok(()),
            Err(error) => send_session_error(ws, &error, self.reference).await,
        }
    }
}

async fn handle_text(
    state: &AppState,
    ws: &mut WsSocket,
    sends: &mut Sends,
    user: UserId,
    connection: u64,
    text: &str,
) -> Result<(), Closed> {
    let (frame, reference) = match decode(text) {
        Ok(decoded) => decoded,
        Err(error) => return ws.text(ServerFrame::error(error).to_text()).await,
    };
    let outcome = match frame {
        ClientFrame::Ping => return ws.text(ServerFrame::Pong.to_text()).await,
        // Nothing is answered: the user's contacts hear of a change of status.
        ClientFrame::Presence { status } => {
            let away = status == ClientPresence::Away;
            state.hub.set_away(user, connection, away);
            return Ok(());
        }
        ClientFrame::Sync { since_seq, limit } => {
            return sync(state, ws, user, since_seq, limit, reference).await;
        }
        ClientFrame::Message {
            conversation_id,
            recipient_id,
            content,
            client_message_id,
            reply_to_id,
            thread_root_id,
            attachment_ids,
        } => {
            let request = SendMessage {
                content,
                client_message_id,
                reply_to_id: reply_to_id.map(MessageId::from),
                thread_root_id: thread_root_id.map(MessageId::from),
                attachment_ids: attachment_ids
                    .unwrap_or_default()
                    .into_iter()
                    .map(chat_domain::AttachmentId::from)
                    .collect(),
            };
            let destination = match conversation_id {
                // A named conversation is the destination as it is: the hot path takes no
                // trip to the blocking pool before the send.
                Some(id) => Ok(ConversationId::from(id)),
                None => {
                    let (recipient, checked) = (recipient_id.map(UserId::from), request.clone());
                    blocking(state, move |s| {
                        s.destination(user, None, recipient, &checked)
                    })
                    .await
                }
            };
            match destination {
                Ok(conversation) => {
                    match sends
                        .submit(state, user, conversation, request, reference.clone())
                        .await
                    {
                        Ok(()) => return Ok(()),
                        Err(error) => Err(error),
                    }
                }
                Err(error) => Err(error),
            }
        }
        ClientFrame::MarkRead { message_id } => {
            let id = MessageId::from(message_id);
            blocking(state, move |s| s.messages.mark_read(user, id))
                .await
                .map(|(receipt, moved)| {
                    // A marker that moved reaches every member's connections through the
                    // hub; a call that changed nothing still gets this connection an answer.
                    (!moved).then(|| ServerFrame::message_read(&receipt, receipt.marker.read_at))
                })
        }
        ClientFrame::SetReadMarker {
            conversation_id,
            last_read_seq,
        } => {
            let id = ConversationId::from(conversation_id);
            // The answer is `read_marker_updated`, which reaches every connection of the
            // user, this one included, through the hub.
            blocking(state, move |s| {
                s.messages.set_read_marker(user, id, last_read_seq)
            })
            .await
            .map(|_| None)
        }
        ClientFrame::EditMessage {
            message_id,
            content,
        } => {
            let id = MessageId::from(message_id);
            blocking(state, move |s| s.messages.edit(user, id, &content))
                .await
                .map(|(view, changed)| {
                    // A change reaches every member's connections through the hub; an edit
                    // that changed nothing still gets this connection an answer.
                    (!changed).then(|| ServerFrame::message_changed(&view, view.message.updated_at))
                })
        }
        ClientFrame::DeleteMessage { message_id, scope } => {
            let id = MessageId::from(message_id);
            match scope.as_deref().map(DeleteScope::parse).transpose() {
                Err(invalid) => Err(DomainError::Validation(vec![invalid]).into()),
                Ok(scope) => blocking(state, move |s| {
                    s.messages.delete(user, id, scope.unwrap_or_default())
                })
                .await
                .map(|deleted| match deleted {
                    // As for edits: only a repeat is answered here.
                    Deleted::ForEveryone { tombstone, new } => (!new).then(|| {
                        ServerFrame::message_changed(&tombstone, tombstone.message.updated_at)
                    }),
                    Deleted::ForMe { hidden, new } => {
                        (!new).then(|| ServerFrame::message_hidden(&hidden, Utc::now()))
                    }
                }),
            }
        }
        // A change reaches every member's connections, this one's too, through the hub; one
        // that changed nothing (already so) is answered with nothing.
        ClientFrame::React { message_id, emoji } => {
            let id = MessageId::from(message_id);
            blocking(state, move |s| s.reactions.react(user, id, &emoji))
                .await
                .map(|_| None)
        }
        ClientFrame::Unreact { message_id, emoji } => {
            let id = MessageId::from(message_id);
            blocking(state, move |s| s.reactions.unreact(user, id, &emoji))
                .await
                .map(|_| None)
        }
        ClientFrame::Pin {
            conversation_id,
            message_id,
        } => {
            let (conversation, message) = (
                ConversationId::from(conversation_id),
                MessageId::from(message_id),
            );
            blocking(state, move |s| s.reactions.pin(user, conversation, message))
                .await
                .map(|_| None)
        }
        ClientFrame::Unpin {
            conversation_id,
            message_id,
        } => {
            let (conversation, message) = (
                ConversationId::from(conversation_id),
                MessageId::from(message_id),
            );
            blocking(state, move |s| {
                s.reactions.unpin(user, conversation, message)
            })
            .await
            .map(|_| None)
        }
        ClientFrame::Typing {
            conversation_id,
            is_typing,
        } => {
            let id = ConversationId::from(conversation_id);
            blocking(state, move |s| s.conversations.typing(user, id, is_typing))
                .await
                .map(|()| None)
        }
    };
    match outcome {
        Ok(Some(frame)) => ws.text(frame.to_text()).await,
        Ok(None) => Ok(()),
        Err(error) => send_session_error(ws, &error, reference).await,
    }
}

/// Replays the user's change feed after `since` as the frames a live client would have
/// received, in order, then `synced` with the position to resume from: with `limit`, one
/// page of at most that many events (`has_more` says whether to ask again); without, every
/// page until the end, as clients from before the feed expect. The paging is the domain's
/// ([`SyncService::feed`]); this only writes frames.
///
/// [`SyncService::feed`]: chat_domain::service::SyncService::feed
async fn sync(
    state: &AppState,
    ws: &mut WsSocket,
    user: UserId,
    since: i64,
    limit: Option<i64>,
    reference: Option<String>,
) -> Result<(), Closed> {
    let one_page = limit.is_some();
    let limit = limit.or(Some(i64::from(FeedQuery::MAX_LIMIT)));
    let mut query = match FeedQuery::parse(Some(since), limit) {
        Ok(query) => query,
        Err(error) => return send_session_error(ws, &SessionError::from(error), reference).await,
    };
    loop {
        let page = match blocking(state, move |s| {
            let page = s.sync.feed(user, query)?;
            Ok((page, s.sync.now()))
        })
        .await
        {
            Ok(page) => page,
            Err(error) => return send_session_error(ws, &error, reference).await,
        };
        let (page, now) = page;
        super::delivery::note_fetched(&state.hub, user, page.messages());
        ws.texts(
            page.events
                .into_iter()
                .map(|event| ServerFrame::for_feed_event(event, now).to_text()),
        )
        .await?;
        query.since = page.next;
        if one_page || !page.has_more {
            let frame = ServerFrame::Synced {
                last_seq: query.since.0,
                has_more: page.has_more,
            };
            return ws.text(frame.to_text()).await;
        }
    }
}

/// Runs a use case on the blocking pool (services do database work).
async fn blocking<T, F>(state: &AppState, f: F) -> Result<T, SessionError>
where
    T: Send + 'static,
    F: FnOnce(&ChatServices) -> Result<T, DomainError> + Send + 'static,
{
    let services = state.services.clone();
    Ok(actix_web::web::block(move || f(&services)).await??)
}

/// Sends a use case's error as an error frame, with the failing fields for validation errors.
async fn send_session_error(
    ws: &mut WsSocket,
    error: &SessionError,
    reference: Option<String>,
) -> Result<(), Closed> {
    let frame = ServerFrame::Error {
        code: error.code,
        detail: error.detail.clone(),
        reference,
        errors: error.errors.clone(),
    };
    ws.text(frame.to_text()).await
}

async fn send_error(
    ws: &mut WsSocket,
    code: &'static str,
    detail: &str,
    reference: Option<String>,
) -> Result<(), Closed> {
    let frame = ServerFrame::error(FrameError {
        code,
        detail: detail.to_owned(),
        reference,
    });
    ws.text(frame.to_text()).await
}
