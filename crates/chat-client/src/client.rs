//! The REST client's core: the base URL, the session's tokens and the one request path every
//! route goes through.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::{Mutex, RwLock};
use url::Url;
use uuid::Uuid;

use crate::error::Error;
use crate::types::{Me, Signup, Tokens};

/// How long before its expiry an access token is refreshed rather than used, at most; a
/// third of its lifetime when that is shorter (a server with 1 s tokens is not asked for a
/// new one on every request).
const REFRESH_AHEAD: chrono::TimeDelta = chrono::TimeDelta::seconds(30);

/// A chatd server and, once logged in, one session on it. Cheap to clone: clones share the
/// connection pool and the session, so a refresh by one is seen by all.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    /// The server's base URL, ending in `/`.
    base: Url,
    session: RwLock<Option<Session>>,
    /// Held while redeeming the refresh token: it is single use, and two concurrent
    /// redemptions of the same token would end the session (the server takes the second
    /// for a stolen token).
    refreshing: Mutex<()>,
}

/// A login session's tokens. Serializable so that an app can store it (somewhere only the
/// user can read: the tokens are credentials) and restore it with [`Client::from_session`]
/// on its next run instead of asking for the password again.
#[derive(Clone, Serialize, Deserialize)]
pub struct Session {
    pub access_token: String,
    /// Single use: each refresh replaces it. A stored session must be stored again after a
    /// refresh (see [`Client::session`]), or the next run's refresh is refused.
    pub refresh_token: String,
    pub session_id: Uuid,
    /// When the access token expires, by this machine's clock (wall time, so that it
    /// survives a restart).
    pub expires_at: DateTime<Utc>,
    /// When this client refreshes the access token rather than use it: a little before
    /// `expires_at`. A token the server finds expired anyway (the clocks disagree) is
    /// refreshed then, and the request sent again.
    pub refresh_at: DateTime<Utc>,
}

impl std::fmt::Debug for Session {
    // Tokens are credentials: never in a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("session_id", &self.session_id)
            .field("expires_at", &self.expires_at)
            .field("refresh_at", &self.refresh_at)
            .finish_non_exhaustive()
    }
}

impl From<Tokens> for Session {
    fn from(tokens: Tokens) -> Self {
        let lifetime = chrono::TimeDelta::seconds(tokens.expires_in.max(0));
        let expires_at = Utc::now() + lifetime;
        Self {
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            session_id: tokens.session_id,
            expires_at,
            refresh_at: expires_at - REFRESH_AHEAD.min(lifetime / 3),
        }
    }
}

impl Client {
    /// A client of the server at `base_url` (`http://127.0.0.1:8000`), not logged in.
    pub fn new(base_url: &str) -> Result<Self, Error> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .tcp_nodelay(true)
            .build()?;
        Self::with_http(base_url, http)
    }

    /// A client of the server at `base_url` that resumes `session` (stored by the app from an
    /// earlier run): no login needed while its refresh token is good.
    pub fn from_session(base_url: &str, session: Session) -> Result<Self, Error> {
        let client = Self::new(base_url)?;
        Ok(client.sharing_pool(Some(session)))
    }

    /// Like [`Client::new`], with an HTTP client of your own (timeouts, proxies, pool size).
    pub fn with_http(base_url: &str, http: reqwest::Client) -> Result<Self, Error> {
        let mut base = Url::parse(base_url).map_err(|e| Error::InvalidUrl(e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(Error::InvalidUrl(format!(
                "{base_url} is not an http or https URL"
            )));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base,
                session: RwLock::new(None),
                refreshing: Mutex::new(()),
            }),
        })
    }

    /// A client of the same server, sharing this one's connection pool, that sends
    /// `access_token` as it is, with no refresh: for a caller handed only an access token (a
    /// test acting as several users, a tool run by a logged-in process). Once the token
    /// expires, its calls fail with `401 token_expired`.
    pub fn with_access_token(&self, access_token: &str) -> Client {
        let session = Session {
            access_token: access_token.to_owned(),
            refresh_token: String::new(),
            session_id: Uuid::nil(),
            expires_at: DateTime::<Utc>::MAX_UTC,
            refresh_at: DateTime::<Utc>::MAX_UTC,
        };
        self.sharing_pool(Some(session))
    }

    /// A client of the same server, sharing this one's connection pool, not logged in: for
    /// acting as several users at once (a bridge, a test, a load generator).
    pub fn without_session(&self) -> Client {
        self.sharing_pool(None)
    }

    /// A client of the same server and connection pool with a session of its own.
    fn sharing_pool(&self, session: Option<Session>) -> Client {
        Self {
            inner: Arc::new(Inner {
                http: self.inner.http.clone(),
                base: self.inner.base.clone(),
                session: RwLock::new(session),
                refreshing: Mutex::new(()),
            }),
        }
    }

    /// The server's base URL.
    pub fn base_url(&self) -> &Url {
        &self.inner.base
    }

    /// The URL of `path` (relative, such as `api/v1/conversations`) on the server.
    pub fn url(&self, path: &str) -> Url {
        self.inner
            .base
            .join(path.trim_start_matches('/'))
            .expect("a relative path joins a base URL")
    }

    /// The WebSocket gateway's URL (`ws://` or `wss://`).
    pub fn websocket_url(&self) -> Url {
        let mut url = self.url("api/v1/ws");
        let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
        url.set_scheme(scheme)
            .expect("ws and wss replace http and https");
        url
    }

    /// The HTTP client requests go through.
    pub fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// The current session, if logged in: the one to store for [`Client::from_session`]
    /// (after a refresh it holds new tokens).
    pub async fn session(&self) -> Option<Session> {
        self.inner.session.read().await.clone()
    }

    /// Uses a session obtained elsewhere (stored by the app from an earlier run).
    pub async fn set_session(&self, session: Option<Session>) {
        *self.inner.session.write().await = session;
    }

    /// Creates an account. It does not log in: call [`Client::login`] next.
    ///
    /// Fails with `409 username_taken` / `email_taken`, or `422 validation_error` naming
    /// the field that is not acceptable.
    pub async fn signup(&self, signup: &Signup) -> Result<Me, Error> {
        let response = self
            .send(
                self.http()
                    .post(self.url("api/v1/auth/signup"))
                    .json(signup),
            )
            .await?;
        decode(response).await
    }

    /// Logs in with a username and password, starting a session named after this client.
    /// Fails with `401 invalid_credentials`.
    pub async fn login(&self, username: &str, password: &str) -> Result<Session, Error> {
        self.login_as(username, password, "chat-client").await
    }

    /// Logs in, naming the session `device_name` (as [`SessionInfo::device`] lists it).
    ///
    /// [`SessionInfo::device`]: crate::types::SessionInfo::device
    pub async fn login_as(
        &self,
        username: &str,
        password: &str,
        device_name: &str,
    ) -> Result<Session, Error> {
        let body = json!({
            "username": username,
            "password": password,
            "device_name": device_name,
        });
        let response = self
            .send(self.http().post(self.url("api/v1/auth/login")).json(&body))
            .await?;
        let session = Session::from(decode::<Tokens>(response).await?);
        self.set_session(Some(session.clone())).await;
        Ok(session)
    }

    /// Ends this session on the server (its tokens stop working at once, its sockets close)
    /// and forgets it here.
    pub async fn logout(&self) -> Result<(), Error> {
        self.call_empty(Method::POST, "api/v1/auth/logout", None::<&()>)
            .await?;
        self.set_session(None).await;
        Ok(())
    }

    /// An access token that is good for at least a little while: the current one, or a fresh
    /// one from the refresh token when it is about to expire. For the WebSocket handshake
    /// and for requests made outside this client.
    pub async fn access_token(&self) -> Result<String, Error> {
        // Every request asks: copy the one token it needs, not the whole session.
        let refresh_token = {
            let session = self.inner.session.read().await;
            let session = session.as_ref().ok_or(Error::NotLoggedIn)?;
            if session.refresh_at > Utc::now() {
                return Ok(session.access_token.clone());
            }
            session.refresh_token.clone()
        };
        self.refresh_from(&refresh_token).await
    }

    /// Redeems the refresh token now, for a new access token and refresh token.
    pub async fn refresh(&self) -> Result<(), Error> {
        let session = self.session().await.ok_or(Error::NotLoggedIn)?;
        self.refresh_from(&session.refresh_token).await.map(drop)
    }

    /// Redeems `spent` unless another task already has (then its result is used): the
    /// refresh token is single use.
    async fn refresh_from(&self, spent: &str) -> Result<String, Error> {
        let _one_at_a_time = self.inner.refreshing.lock().await;
        if let Some(current) = self.session().await
            && current.refresh_token != spent
        {
            return Ok(current.access_token);
        }
        let response = self
            .send(
                self.http()
                    .post(self.url("api/v1/auth/refresh"))
                    .json(&json!({ "refresh_token": spent })),
            )
            .await;
        let response = match response {
            Ok(response) => response,
            Err(error) => {
                if error.status() == Some(401) {
                    // The session has ended (logged out, revoked, or the token was reused).
                    self.set_session(None).await;
                }
                return Err(error);
            }
        };
        let session = Session::from(decode::<Tokens>(response).await?);
        let access = session.access_token.clone();
        self.set_session(Some(session)).await;
        Ok(access)
    }

    /// `GET path` as the session's user, decoded.
    pub(crate) async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, Error> {
        decode(self.authorized(Method::GET, path, None::<&()>).await?).await
    }

    /// `GET path?query` as the session's user, decoded.
    pub(crate) async fn get_query<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &impl Serialize,
    ) -> Result<T, Error> {
        let response = self
            .authorized_with(Method::GET, path, |request| request.query(query))
            .await?;
        decode(response).await
    }

    /// A request with a JSON body (or none) as the session's user, decoded.
    pub(crate) async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T, Error> {
        decode(self.authorized(method, path, body).await?).await
    }

    /// A request as the session's user, whose answer has no body worth decoding.
    pub(crate) async fn call_empty(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<(), Error> {
        self.authorized(method, path, body).await.map(drop)
    }

    /// Sends a request with the access token; if the server says the token has expired (the
    /// clocks disagree, or the process slept), refreshes and sends it once more.
    pub(crate) async fn authorized(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<Response, Error> {
        self.authorized_with(method, path, |request| match body {
            Some(body) => request.json(body),
            None => request,
        })
        .await
    }

    /// Like [`Client::authorized`], with the request finished by `finish` (a query, a
    /// multipart body, headers). `finish` may run twice: once more after a refresh.
    pub(crate) async fn authorized_with(
        &self,
        method: Method,
        path: &str,
        finish: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<Response, Error> {
        let build = |token: &str| {
            finish(
                self.http()
                    .request(method.clone(), self.url(path))
                    .bearer_auth(token),
            )
        };
        let token = self.access_token().await?;
        match self.send(build(&token)).await {
            Err(error) if error.code() == Some("token_expired") => {
                let fresh = self.refresh_from_token(&token, error).await?;
                self.send(build(&fresh)).await
            }
            other => other,
        }
    }

    /// Refreshes after `rejected` was refused as expired (with `refusal`), unless another
    /// task already has. A session without a refresh token answers the refusal.
    async fn refresh_from_token(&self, rejected: &str, refusal: Error) -> Result<String, Error> {
        let session = self.session().await.ok_or(Error::NotLoggedIn)?;
        if session.access_token != rejected {
            return Ok(session.access_token);
        }
        if session.refresh_token.is_empty() {
            return Err(refusal);
        }
        self.refresh_from(&session.refresh_token).await
    }

    /// Sends a request; a non-success answer becomes [`Error::Api`].
    pub(crate) async fn send(&self, request: RequestBuilder) -> Result<Response, Error> {
        let response = request.send().await?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(api_error(response).await)
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.inner.base.as_str())
            .finish_non_exhaustive()
    }
}

/// The answer's JSON body as `T`.
pub(crate) async fn decode<T: DeserializeOwned>(response: Response) -> Result<T, Error> {
    let bytes = response.bytes().await?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Decode(e.to_string()))
}

/// An error answer as [`Error::Api`]: the API's `{"detail", "code"}` body, or the status's
/// reason when the body is something else (a proxy's HTML page).
pub(crate) async fn api_error(response: Response) -> Error {
    #[derive(serde::Deserialize)]
    struct Body {
        detail: String,
        code: String,
    }
    let status = response.status();
    let request_id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.bytes().await.unwrap_or_default();
    let (detail, code) = match serde_json::from_slice::<Body>(&body) {
        Ok(body) => (body.detail, body.code),
        Err(_) => (
            status.canonical_reason().unwrap_or("error").to_owned(),
            fallback_code(status),
        ),
    };
    Error::Api {
        status: status.as_u16(),
        code,
        detail,
        request_id,
    }
}

fn fallback_code(status: StatusCode) -> String {
    if status.is_server_error() {
        "internal_error".into()
    } else {
        format!("http_{}", status.as_u16())
    }
}
