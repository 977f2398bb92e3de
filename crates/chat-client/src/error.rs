//! What a call can fail with.

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with an error: its status and the API's `{"detail", "code"}`
    /// body, plus the request id it gave the request (for its logs).
    #[error("{status} {code}: {detail}")]
    Api {
        status: u16,
        code: String,
        detail: String,
        request_id: Option<String>,
    },
    /// The request did not get an answer: connection refused or reset, a timeout, TLS.
    #[error("transport: {0}")]
    Transport(#[from] reqwest::Error),
    /// The WebSocket connection failed or was closed. Boxed: tungstenite's error is large,
    /// and every `Result` of this crate would carry its size.
    #[error("websocket: {0}")]
    WebSocket(Box<tokio_tungstenite::tungstenite::Error>),
    /// The server's answer was not what this client understands.
    #[error("unexpected answer: {0}")]
    Decode(String),
    /// The base URL cannot be used (not http or https, or not a base).
    #[error("invalid server URL: {0}")]
    InvalidUrl(String),
    /// A call that needs a session was made before logging in, or after the session ended.
    #[error("not logged in")]
    NotLoggedIn,
}

impl Error {
    /// The API error code (`"not_found"`, `"token_expired"`, ...), when the server sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } => Some(*status),
            Self::Transport(error) => error.status().map(|s| s.as_u16()),
            _ => None,
        }
    }
}

impl From<tokio_tungstenite::tungstenite::Error> for Error {
    fn from(error: tokio_tungstenite::tungstenite::Error) -> Self {
        Self::WebSocket(Box::new(error))
    }
}
