//! Talking to a chatd server the way a real client does: set-up calls (sign-up, login,
//! groups) through chat-client, and the WebSocket gateway with `?token=`.
//!
//! The REST calls a scenario times in its hot loop (`post_message`) stay raw reqwest: they
//! read only the `id` and `seq` of the answer, where chat-client would decode the whole
//! message, and that client-side work would be measured with the server's.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use chat_client::types::{NewConversation, Signup};

use crate::BenchError;

/// One WebSocket connection to the gateway.
pub type Ws = WebSocketStream<TcpStream>;

/// The password every bench user is created with.
pub const PASSWORD: &str = "bench-password-1";

/// How long a WebSocket handshake and its `connected` frame may take.
const WS_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// A server under test, reached by its base URL (`http://127.0.0.1:8000`).
#[derive(Debug, Clone)]
pub struct Target {
    base: String,
    ws_url: String,
    http: reqwest::Client,
    /// The same connection pool, through chat-client.
    api: chat_client::Client,
    timeout: Duration,
}

/// A logged-in bench user.
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub username: String,
    pub token: String,
}

/// Why one request did not succeed, as a failure kind (`"http 503"`, `"timeout"`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestFailure(pub String);

impl RequestFailure {
    pub fn from_reqwest(error: &reqwest::Error) -> Self {
        if error.is_timeout() {
            Self("timeout".into())
        } else if error.is_connect() {
            Self("connect error".into())
        } else {
            Self("transport error".into())
        }
    }

    pub fn status(status: StatusCode) -> Self {
        Self(format!("http {}", status.as_u16()))
    }

    /// A chat-client error as a failure kind: an answer by its status, as a raw request's.
    pub fn from_client(error: &chat_client::Error) -> Self {
        match error {
            chat_client::Error::Api { status, .. } => Self(format!("http {status}")),
            chat_client::Error::Transport(e) => Self::from_reqwest(e),
            chat_client::Error::Decode(_) => Self("unexpected answer".into()),
            chat_client::Error::NotLoggedIn => Self("not logged in".into()),
            chat_client::Error::InvalidUrl(_) => Self("invalid url".into()),
            chat_client::Error::WebSocket(_) => Self("websocket error".into()),
        }
    }
}

impl Target {
    /// `url` is the server's base URL; `timeout` bounds every HTTP request.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, BenchError> {
        let base = url.trim_end_matches('/').to_owned();
        let ws_base = if let Some(rest) = base.strip_prefix("http://") {
            format!("ws://{rest}")
        } else if base.starts_with("https://") {
            return Err(BenchError::Setup(
                "https is not supported: run the bench against the server's plain HTTP port".into(),
            ));
        } else {
            return Err(BenchError::Setup(format!(
                "--url must start with http://, got {url}"
            )));
        };
        let http = Self::client(timeout)?;
        let api = chat_client::Client::with_http(&base, http.clone())
            .map_err(|e| BenchError::Setup(format!("--url {url}: {e}")))?;
        Ok(Self {
            ws_url: format!("{ws_base}/api/v1/ws"),
            base,
            http,
            api,
            timeout,
        })
    }

    /// A fresh HTTP client with its own connection pool (so one kind of traffic cannot
    /// queue behind another's connections).
    pub fn client(timeout: Duration) -> Result<reqwest::Client, BenchError> {
        reqwest::Client::builder()
            .timeout(timeout)
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(90))
            .build()
            .map_err(|e| BenchError::Setup(format!("HTTP client: {e}")))
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// chat-client on this target's connection pool, not logged in.
    pub fn api(&self) -> chat_client::Client {
        self.api.without_session()
    }

    /// chat-client on this target's connection pool, acting as `user`.
    pub fn api_as(&self, user: &User) -> chat_client::Client {
        self.api.with_access_token(&user.token)
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// `path` below the base URL, e.g. `/health`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn ws_url(&self) -> &str {
        &self.ws_url
    }

    /// The server's socket address, for clients that bind their own sockets.
    pub async fn socket_addr(&self) -> Result<SocketAddr, BenchError> {
        let authority = self
            .base
            .strip_prefix("http://")
            .unwrap_or(&self.base)
            .split('/')
            .next()
            .unwrap_or_default();
        let with_port = if authority.contains(':') && !authority.ends_with(']') {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        tokio::net::lookup_host(&with_port)
            .await
            .map_err(|e| BenchError::Setup(format!("cannot resolve {with_port}: {e}")))?
            .next()
            .ok_or_else(|| BenchError::Setup(format!("{with_port} resolves to nothing")))
    }

    /// Signs `username` up (a taken name is fine: the user is reused) and logs in.
    pub async fn signup_and_login(&self, username: &str) -> Result<User, BenchError> {
        let signup = Signup {
            username: username.to_owned(),
            email: format!("{username}@bench.example"),
            password: PASSWORD.to_owned(),
            full_name: None,
        };
        match self.api.signup(&signup).await {
            Ok(_) => {}
            Err(e) if e.status() == Some(409) => {}
            Err(e) => return Err(BenchError::Setup(format!("sign-up of {username}: {e}"))),
        }
        let token = self
            .login(&self.http, username)
            .await
            .map_err(|f| BenchError::Setup(format!("login of {username}: {}", f.0)))?;
        let me = self
            .api
            .with_access_token(&token)
            .me()
            .await
            .map_err(|e| BenchError::Setup(format!("/auth/me of {username}: {e}")))?;
        Ok(User {
            id: me.id.to_string(),
            username: username.to_owned(),
            token,
        })
    }

    /// One login with the bench password through `client`'s connection pool; the token, or
    /// why it failed.
    pub async fn login(
        &self,
        client: &reqwest::Client,
        username: &str,
    ) -> Result<String, RequestFailure> {
        let api = chat_client::Client::with_http(&self.base, client.clone())
            .map_err(|e| RequestFailure::from_client(&e))?;
        api.login_as(username, PASSWORD, "chat-bench")
            .await
            .map(|session| session.access_token)
            .map_err(|e| RequestFailure::from_client(&e))
    }

    /// Creates a group of `owner` and `others`; its id.
    pub async fn create_group(
        &self,
        owner: &User,
        others: &[&User],
        name: &str,
    ) -> Result<String, BenchError> {
        let members = others
            .iter()
            .map(|u| u.id.parse())
            .collect::<Result<Vec<uuid::Uuid>, _>>()
            .map_err(|e| BenchError::Setup(format!("creating group {name}: a user id: {e}")))?;
        self.api_as(owner)
            .create_conversation(&NewConversation::group(name, members))
            .await
            .map(|group| group.id.to_string())
            .map_err(|e| BenchError::Setup(format!("creating group {name}: {e}")))
    }

    /// Sends a message over REST; its seq once stored, or why it failed. Seqs are
    /// server-wide, so a conversation's messages are in order but not numbered from 1.
    pub async fn post_message(
        &self,
        client: &reqwest::Client,
        token: &str,
        conversation_id: &str,
        content: &str,
        client_message_id: &str,
    ) -> Result<i64, RequestFailure> {
        self.post_message_returning_id(client, token, conversation_id, content, client_message_id)
            .await
            .map(|(_, seq)| seq)
    }

    /// [`Self::post_message`], answering the stored message's id beside its seq.
    pub async fn post_message_returning_id(
        &self,
        client: &reqwest::Client,
        token: &str,
        conversation_id: &str,
        content: &str,
        client_message_id: &str,
    ) -> Result<(String, i64), RequestFailure> {
        #[derive(Deserialize)]
        struct Stored {
            id: String,
            seq: i64,
        }
        let response = client
            .post(self.url(&format!("/api/v1/conversations/{conversation_id}/messages")))
            .bearer_auth(token)
            .json(&json!({"content": content, "client_message_id": client_message_id}))
            .send()
            .await
            .map_err(|e| RequestFailure::from_reqwest(&e))?;
        let status = response.status();
        // Read the whole body: a response is done when its last byte is in.
        let body = response
            .bytes()
            .await
            .map_err(|e| RequestFailure::from_reqwest(&e))?;
        if !status.is_success() {
            return Err(RequestFailure::status(status));
        }
        serde_json::from_slice::<Stored>(&body)
            .map(|stored| (stored.id, stored.seq))
            .map_err(|_| RequestFailure("a stored message without its id and seq".into()))
    }

    /// Opens a WebSocket as the bearer of `token`, from `source` when given (any loopback
    /// address on Linux), and waits for the `connected` frame.
    pub async fn connect_ws(
        &self,
        addr: SocketAddr,
        token: &str,
        source: Option<IpAddr>,
    ) -> Result<Ws, RequestFailure> {
        tokio::time::timeout(
            WS_CONNECT_TIMEOUT,
            self.connect_ws_inner(addr, token, source),
        )
        .await
        .unwrap_or_else(|_| Err(RequestFailure("websocket connect timeout".into())))
    }

    async fn connect_ws_inner(
        &self,
        addr: SocketAddr,
        token: &str,
        source: Option<IpAddr>,
    ) -> Result<Ws, RequestFailure> {
        let io = |what: &str, e: std::io::Error| RequestFailure(format!("{what}: {}", e.kind()));
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
        .map_err(|e| io("socket", e))?;
        if let Some(source) = source {
            socket
                .bind(SocketAddr::new(source, 0))
                .map_err(|e| io("bind", e))?;
        }
        let stream = socket.connect(addr).await.map_err(|e| io("connect", e))?;
        stream.set_nodelay(true).map_err(|e| io("nodelay", e))?;
        let url = format!("{}?token={token}", self.ws_url);
        let (mut ws, _) = tokio_tungstenite::client_async(url, stream)
            .await
            .map_err(|e| RequestFailure(handshake_failure(&e)))?;
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    let frame: Value = serde_json::from_str(text.as_str()).unwrap_or(Value::Null);
                    return match frame["type"].as_str() {
                        Some("connected") => Ok(ws),
                        Some("error") => Err(RequestFailure(format!(
                            "websocket refused: {}",
                            frame["code"].as_str().unwrap_or("unknown")
                        ))),
                        _ => Err(RequestFailure("websocket: unexpected first frame".into())),
                    };
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(_)) | None => {
                    return Err(RequestFailure("websocket closed before connected".into()));
                }
                Some(Err(e)) => return Err(RequestFailure(format!("websocket: {e}"))),
            }
        }
    }
}

fn handshake_failure(error: &tokio_tungstenite::tungstenite::Error) -> String {
    use tokio_tungstenite::tungstenite::Error;
    match error {
        Error::Http(response) => format!("websocket handshake http {}", response.status().as_u16()),
        Error::Io(e) => format!("websocket handshake: {}", e.kind()),
        other => format!("websocket handshake: {other}"),
    }
}

/// The next text frame of a reading half, or `None` when told to stop or when the socket is
/// gone; a socket the server closed or broke is counted in `failures`.
pub async fn next_text(
    stream: &mut futures_util::stream::SplitStream<Ws>,
    stop: &mut tokio::sync::watch::Receiver<bool>,
    failures: &mut crate::stats::Failures,
) -> Option<tokio_tungstenite::tungstenite::Utf8Bytes> {
    loop {
        let frame = tokio::select! {
            biased;
            _ = stop.changed() => return None,
            frame = stream.next() => frame,
        };
        match frame {
            Some(Ok(Message::Text(text))) => return Some(text),
            Some(Ok(Message::Close(_))) | None => {
                failures.add("websocket closed by the server");
                return None;
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                failures.add(format!("websocket error: {e}"));
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gateway_url_follows_the_base_url() {
        let target = Target::new("http://127.0.0.1:8000/", Duration::from_secs(1)).unwrap();
        assert_eq!(target.ws_url(), "ws://127.0.0.1:8000/api/v1/ws");
        assert_eq!(target.url("/health"), "http://127.0.0.1:8000/health");
        assert!(Target::new("ftp://x", Duration::from_secs(1)).is_err());
    }
}
