//! The WebSocket test client both end-to-end suites use (`tests/api` and `tests/cluster`),
//! included by each with `#[path]`. Each suite uses only part of it.
//!
//! Connecting and the frames a test sends go through chat-client, as every Rust caller's do;
//! the frames read stay raw JSON, so tests assert the exact bytes of the protocol, and
//! [`Ws::send_json`] sends anything, malformed frames included.
#![allow(dead_code)]

use std::time::Duration;

use chat_client::events::{Command, SendMessage};
use chat_client::types::NewMessage;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for a frame: generous, for the cluster suite's nine clusters of debug
/// builds sharing two cores. The revocation tests stay meaningful: the heartbeat fallback
/// would take 30 s.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// A test WebSocket client.
pub struct Ws {
    pub stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Ws {
    /// Opens a WebSocket to `ws_url` as the holder of `token` (an `Authorization` header)
    /// and reads its `connected` frame.
    pub async fn connect(ws_url: &str, token: &str) -> Ws {
        let stream = chat_client::live::connect_with_token(ws_url, token)
            .await
            .expect("the WebSocket handshake succeeds");
        let mut ws = Ws { stream };
        let connected = ws.next_json().await;
        assert_eq!(connected["type"], "connected", "{connected}");
        ws
    }

    /// Sends a frame as chat-client writes it.
    pub async fn send_command(&mut self, command: Command) {
        self.stream
            .send(Message::text(command.to_json(None)))
            .await
            .expect("the frame is sent");
    }

    pub async fn send_json(&mut self, value: Value) {
        self.stream
            .send(Message::text(value.to_string()))
            .await
            .expect("the frame is sent");
    }

    /// Sends a `message` frame to a conversation.
    pub async fn send_message(&mut self, conversation: &str, content: &str, client_id: &str) {
        let conversation = conversation.parse().expect("a conversation id");
        self.send_command(Command::Message(SendMessage::to_conversation(
            conversation,
            NewMessage::text(content).client_message_id(client_id),
        )))
        .await;
    }

    /// The next text frame as JSON; fails the test after [`PATIENCE`] of silence.
    pub async fn next_json(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(PATIENCE, self.stream.next())
                .await
                .expect("a frame arrives in time")
                .expect("the connection is open")
                .expect("the frame is valid");
            match message {
                Message::Text(text) => return serde_json::from_str(&text).expect("JSON frame"),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// The next frame of the given type, skipping others (typing, conversation updates).
    pub async fn next_of_type(&mut self, kind: &str) -> Value {
        loop {
            let frame = self.next_json().await;
            if frame["type"] == kind {
                return frame;
            }
        }
    }

    /// Asserts that the connection stays open and quiet for `wait` (no text frame, no close,
    /// no error), then still answers a `ping` frame with a `pong`: a socket that closed or
    /// broke does not pass for a quiet one.
    pub async fn assert_silent(&mut self, wait: Duration) {
        let until = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(until, self.stream.next()).await {
                Err(_) => break,
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
                Ok(Some(Ok(Message::Text(text)))) => panic!("expected silence, got {text}"),
                Ok(Some(Ok(other))) => panic!("expected an open, quiet connection, got {other:?}"),
                Ok(Some(Err(error))) => panic!("expected an open, quiet connection, got {error}"),
                Ok(None) => panic!("expected an open, quiet connection, but it ended"),
            }
        }
        self.send_command(Command::Ping).await;
        assert_eq!(
            self.next_json().await,
            json!({"type": "pong"}),
            "after its silence the connection still answers"
        );
    }

    /// Asserts that the connection is still open and answers a `ping`.
    pub async fn assert_open(&mut self) {
        self.send_command(Command::Ping).await;
        assert_eq!(self.next_of_type("pong").await["type"], "pong");
    }

    /// Waits ([`PATIENCE`] at most) for the close frame, skipping other frames, and returns
    /// its code.
    pub async fn close_code(&mut self) -> Option<u16> {
        loop {
            match tokio::time::timeout(PATIENCE, self.stream.next()).await {
                Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| u16::from(f.code)),
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(_)) | None) => return None,
                Err(_) => panic!("no close within {PATIENCE:?}"),
            }
        }
    }
}
