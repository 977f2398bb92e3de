//! Starting a real server on a random port with its own database, and talking to it.
//!
//! The set-up steps (signing up, logging in, starting conversations, sending) go through
//! chat-client, as every Rust caller's do; [`TestApp::request`] and friends stay raw, for
//! the tests that probe the HTTP layer itself.

use std::time::Duration;

use chat_client::types::{NewConversation, NewMessage, Signup};
use chat_server::{Application, Config, Shutdown};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub use crate::ws::Ws;

pub struct TestApp {
    pub address: String,
    pub ws_url: String,
    pub client: reqwest::Client,
    pub shutdown: Shutdown,
    pub dir: tempfile::TempDir,
}

#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: String,
    pub token: String,
}

pub fn test_config(dir: &tempfile::TempDir) -> Config {
    Config::for_tests(format!("sqlite://{}", dir.path().join("chat.db").display()))
}

/// How often the delivered receipts' tests, and the feed proof, record deliveries.
pub const DELIVERING_OFTEN: Duration = Duration::from_millis(50);

/// A server that records deliveries every [`DELIVERING_OFTEN`].
pub async fn spawn_delivering_app() -> TestApp {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut config = test_config(&dir);
    config.delivery_flush_interval = DELIVERING_OFTEN;
    spawn_app_with(config, dir).await
}

/// A server with the abuse limits on, as in production, after `change` to its configuration.
pub async fn spawn_limited_app(change: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut config = test_config(&dir);
    config.rate_limits = true;
    change(&mut config);
    spawn_app_with(config, dir).await
}

/// Asserts a 429 `rate_limited` whose `Retry-After` is between 1 and `max_seconds`.
pub async fn assert_rate_limited(response: reqwest::Response, max_seconds: u64) {
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .expect("Retry-After is text")
        .parse()
        .expect("Retry-After is whole seconds");
    assert!((1..=max_seconds).contains(&retry_after), "{retry_after}");
    let body: Value = response.json().await.expect("a JSON error");
    assert_eq!(body["code"], "rate_limited", "{body}");
}

pub async fn spawn_app() -> TestApp {
    let dir = tempfile::tempdir().expect("temporary directory");
    spawn_app_with(test_config(&dir), dir).await
}

pub async fn spawn_app_with(config: Config, dir: tempfile::TempDir) -> TestApp {
    let app = Application::build(config).await.expect("the server builds");
    running(app, dir)
}

/// `app` started in the background, as a test talks to it.
pub fn running(app: Application, dir: tempfile::TempDir) -> TestApp {
    let port = app.port();
    let shutdown = app.shutdown_handle();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        ws_url: format!("ws://127.0.0.1:{port}/api/v1/ws"),
        client: reqwest::Client::new(),
        shutdown,
        dir,
    }
}

impl TestApp {
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.address));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request
            .send()
            .await
            .expect("the request reaches the server")
    }

    /// The server's OpenAPI document.
    pub async fn openapi(&self) -> Value {
        self.request(Method::GET, "/openapi.json", None, None)
            .await
            .json()
            .await
            .expect("the OpenAPI document is JSON")
    }

    pub async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.request(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> reqwest::Response {
        self.request(Method::POST, path, Some(token), Some(body))
            .await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> reqwest::Response {
        self.request(Method::PUT, path, Some(token), Some(body))
            .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> reqwest::Response {
        self.request(Method::DELETE, path, Some(token), None).await
    }

    /// Asks to sign up `name` (password "correct horse"), whatever the answer.
    pub async fn signup(&self, name: &str) -> reqwest::Response {
        self.request(
            Method::POST,
            "/api/v1/auth/signup",
            None,
            Some(json!({
                "username": name,
                "email": format!("{name}@example.com"),
                "password": "correct horse",
                "full_name": format!("{name} Example"),
            })),
        )
        .await
    }

    /// The usernames a user search for `query` (URL-encoded) finds, as `token` sees them.
    pub async fn search_usernames(&self, token: &str, query: &str) -> Vec<String> {
        let found: Vec<Value> = self
            .get(&format!("/api/v1/users?q={query}"), token)
            .await
            .json()
            .await
            .unwrap();
        found
            .iter()
            .map(|u| u["username"].as_str().unwrap().to_owned())
            .collect()
    }

    /// A chat-client of this server, not logged in, sharing the test's connection pool.
    pub fn api(&self) -> chat_client::Client {
        chat_client::Client::with_http(&self.address, self.client.clone())
            .expect("the test server's address is a base URL")
    }

    /// A chat-client of this server acting as `user`.
    pub fn api_as(&self, user: &TestUser) -> chat_client::Client {
        self.api().with_access_token(&user.token)
    }

    /// Signs up `name` (password "correct horse") and logs in.
    pub async fn user(&self, name: &str) -> TestUser {
        let api = self.api();
        let created = api
            .signup(&Signup {
                username: name.into(),
                email: format!("{name}@example.com"),
                password: "correct horse".into(),
                full_name: Some(format!("{name} Example")),
            })
            .await
            .expect("the user signs up");
        let session = api
            .login(name, "correct horse")
            .await
            .expect("the user logs in");
        TestUser {
            id: created.id.to_string(),
            token: session.access_token,
        }
    }

    /// Deactivates `user`'s account (their password is "correct horse").
    pub async fn deactivate(&self, user: &TestUser) {
        self.api_as(user)
            .deactivate_me("correct horse")
            .await
            .expect("the account is deactivated");
    }

    /// Several users signed up and logged in, in the order named.
    pub async fn users<const N: usize>(&self, names: [&str; N]) -> [TestUser; N] {
        let mut users = Vec::with_capacity(N);
        for name in names {
            users.push(self.user(name).await);
        }
        users
            .try_into()
            .unwrap_or_else(|_| unreachable!("one user per name"))
    }

    /// Logs `username` in; answers the access token.
    pub async fn login(&self, username: &str, password: &str) -> String {
        self.api()
            .login(username, password)
            .await
            .expect("the user logs in")
            .access_token
    }

    /// The direct conversation of `a` and `b`, as `a` sees it.
    pub async fn direct(&self, a: &TestUser, b: &TestUser) -> String {
        self.api_as(a)
            .create_conversation(&NewConversation::direct(uuid(&b.id)))
            .await
            .expect("the direct conversation is started")
            .id
            .to_string()
    }

    /// A group named "team" owned by `owner` with `members`.
    pub async fn group(&self, owner: &TestUser, members: &[&TestUser]) -> String {
        let members = members.iter().map(|m| uuid(&m.id)).collect();
        self.api_as(owner)
            .create_conversation(&NewConversation::group("team", members))
            .await
            .expect("the group is created")
            .id
            .to_string()
    }

    /// Sends `content` to a conversation over REST and returns the stored message, as JSON.
    pub async fn send(&self, from: &TestUser, conversation: &str, content: &str) -> Value {
        let message = self
            .api_as(from)
            .send_message(uuid(conversation), &NewMessage::text(content))
            .await
            .expect("the message is sent");
        serde_json::to_value(message).expect("a message is JSON")
    }

    /// A WebSocket authenticated as `user`, past its `connected` frame.
    pub async fn ws(&self, user: &TestUser) -> Ws {
        Ws::connect(&self.ws_url, &user.token).await
    }
}

/// An id the tests hold as text, as a UUID.
fn uuid(id: &str) -> uuid::Uuid {
    id.parse().expect("a UUID")
}

/// The token secret of apps built with [`with_known_secret`], so tests can sign tokens.
pub const TEST_SECRET: &str = "authorization-matrix-secret-long-enough-0123456789";

/// A test configuration whose token secret is [`TEST_SECRET`].
pub fn with_known_secret(dir: &tempfile::TempDir) -> Config {
    Config {
        jwt_secret: Some(TEST_SECRET.into()),
        ..test_config(dir)
    }
}

/// A correctly signed token (with [`TEST_SECRET`]) for `user` that expired an hour ago.
pub fn expired_token(user: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "sub": user, "iat": now - 7200, "exp": now - 3600, "jti": "expired",
        "iss": "chatd", "aud": "chatd-api", "gen": 0,
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(TEST_SECRET.as_bytes()),
    )
    .unwrap()
}
