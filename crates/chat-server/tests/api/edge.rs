//! The HTTP edge as a client meets it: errors that name the field and never a Rust type,
//! an expired token told apart from a bad one, OAuth2 grant types, input limits in the
//! OpenAPI document, `HEAD` and trailing slashes, and the budget of WebSocket handshakes
//! that never authenticate.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::connect_async;

use crate::helpers::{
    Ws, expired_token, spawn_app, spawn_app_with, test_config, with_known_secret,
};

/// What no error a client sees may contain: Rust type names and parser internals.
const INTERNALS: &[&str] = &[
    "struct",
    "Body",
    "Params",
    "::",
    "deserialize",
    "Deserialize",
    "line 1",
    "u64",
    "i64",
];

#[tokio::test]
async fn bad_bodies_paths_and_queries_name_the_field_and_never_a_rust_type() {
    let app = spawn_app().await;
    let [alice, bob] = app.users(["alice", "bob"]).await;
    let chat = app.direct(&alice, &bob).await;
    let messages = format!("/api/v1/conversations/{chat}/messages");
    // (method, path, body, the field the 422 names, words its message contains)
    let cases: Vec<(Method, String, Option<Value>, &str, &str)> = vec![
        (
            Method::POST,
            messages.clone(),
            Some(json!(["hi", null])),
            "body",
            "expected an object",
        ),
        (
            Method::POST,
            messages.clone(),
            Some(json!("hi")),
            "body",
            "expected an object",
        ),
        (
            Method::POST,
            messages.clone(),
            Some(json!({"content": 5})),
            "content",
            "expected a string",
        ),
        (
            Method::POST,
            messages.clone(),
            Some(json!({})),
            "content",
            "missing field `content`",
        ),
        (
            Method::POST,
            messages.clone(),
            Some(json!({"content": "hi", "colour": "red"})),
            "colour",
            "unknown field `colour`",
        ),
        (
            Method::POST,
            "/api/v1/conversations".into(),
            Some(json!({"participant_ids": [bob.id, "nope"]})),
            "participant_ids[1]",
            "invalid UUID",
        ),
        (
            Method::POST,
            "/api/v1/conversations".into(),
            Some(json!({"participant_ids": [bob.id], "is_group": "yes"})),
            "is_group",
            "expected a boolean",
        ),
        (
            Method::PUT,
            "/api/v1/users/me".into(),
            Some(json!({"bio": ["a"]})),
            "bio",
            "expected a string",
        ),
        (
            Method::GET,
            "/api/v1/conversations/not-a-uuid".into(),
            None,
            "conversation_id",
            "invalid UUID",
        ),
        (
            Method::DELETE,
            format!("/api/v1/conversations/{chat}/members/42"),
            None,
            "user_id",
            "invalid UUID",
        ),
        (
            Method::GET,
            "/api/v1/users/nobody".into(),
            None,
            "user_id",
            "invalid UUID",
        ),
        (
            Method::GET,
            "/api/v1/conversations?limit=abc".into(),
            None,
            "limit",
            "expected an integer",
        ),
        (
            Method::GET,
            format!("{messages}?before=99999999999999999999"),
            None,
            "before",
            "integer out of range",
        ),
    ];
    let mut failures = Vec::new();
    for (method, path, body, field, words) in cases {
        let response = app
            .request(method.clone(), &path, Some(&alice.token), body.clone())
            .await;
        let status = response.status();
        let error: Value = response.json().await.unwrap();
        let text = error.to_string();
        let named = &error["errors"][0];
        if status != StatusCode::UNPROCESSABLE_ENTITY
            || error["code"] != "validation_error"
            || named["field"] != field
            || !named["message"].as_str().unwrap_or("").contains(words)
        {
            failures.push(format!("{method} {path} {body:?}: {status} {text}"));
        }
        if let Some(internal) = INTERNALS.iter().find(|i| text.contains(*i)) {
            failures.push(format!("{method} {path}: shows `{internal}`: {text}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[tokio::test]
async fn sign_up_and_login_errors_name_the_field() {
    let app = spawn_app().await;
    let signup = app
        .request(
            Method::POST,
            "/api/v1/auth/signup",
            None,
            Some(json!({"username": 5, "email": "a@b.co", "password": "12345678"})),
        )
        .await;
    assert_eq!(signup.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = signup.json().await.unwrap();
    assert_eq!(body["errors"][0]["field"], "username", "{body}");
    let form = app
        .client
        .post(format!("{}/api/v1/auth/login", app.address))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("username=alice")
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = form.json().await.unwrap();
    assert_eq!(body["errors"][0]["field"], "password", "{body}");
    assert_eq!(body["errors"][0]["message"], "missing field `password`");
}

#[tokio::test]
async fn an_expired_token_gets_token_expired_and_a_forged_one_unauthorized() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(with_known_secret(&dir), dir).await;
    let alice = app.user("alice").await;
    let expired = app.get("/api/v1/auth/me", &expired_token(&alice.id)).await;
    assert_eq!(expired.status(), StatusCode::UNAUTHORIZED);
    let challenge = expired.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.contains("invalid_token"), "{challenge}");
    let body: Value = expired.json().await.unwrap();
    assert_eq!(body["code"], "token_expired", "{body}");

    let forged = app
        .get("/api/v1/auth/me", &format!("{}x", alice.token))
        .await;
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    let body: Value = forged.json().await.unwrap();
    assert_eq!(body["code"], "unauthorized", "{body}");
}

async fn form_login(app: &crate::helpers::TestApp, form: &str) -> reqwest::Response {
    app.client
        .post(format!("{}/api/v1/auth/login", app.address))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.to_owned())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_form_login_with_another_grant_type_is_unsupported_grant_type() {
    let app = spawn_app().await;
    app.user("alice").await;
    for grant in ["client_credentials", "refresh_token", ""] {
        let response = form_login(
            &app,
            &format!("grant_type={grant}&username=alice&password=correct+horse"),
        )
        .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{grant}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], "unsupported_grant_type", "{body}");
    }
    for form in [
        "grant_type=password&username=alice&password=correct+horse",
        "username=alice&password=correct+horse",
    ] {
        assert_eq!(
            form_login(&app, form).await.status(),
            StatusCode::OK,
            "{form}"
        );
    }
}

#[tokio::test]
async fn the_openapi_document_carries_the_input_limits_as_constraints() {
    let app = spawn_app().await;
    let doc = app.openapi().await;
    let schemas = &doc["components"]["schemas"];
    let field = |schema: &str, name: &str| schemas[schema]["properties"][name].clone();
    let content = field("SendMessageBody", "content");
    assert_eq!(
        (content["minLength"].clone(), content["maxLength"].clone()),
        (json!(1), json!(4000)),
        "{content}"
    );
    assert!(content["pattern"].is_string(), "{content}");
    assert_eq!(
        field("SendMessageBody", "client_message_id")["maxLength"],
        100
    );
    let username = field("SignupBody", "username");
    assert_eq!(
        (username["minLength"].clone(), username["maxLength"].clone()),
        (json!(3), json!(32)),
        "{username}"
    );
    assert!(username["pattern"].is_string());
    let password = field("SignupBody", "password");
    assert_eq!(
        (password["minLength"].clone(), password["maxLength"].clone()),
        (json!(8), json!(72)),
        "{password}"
    );
    assert_eq!(field("SignupBody", "email")["maxLength"], 254);
    assert_eq!(field("RenameConversationBody", "name")["maxLength"], 100);
    assert_eq!(field("UpdateMeBody", "bio")["maxLength"], 500);
    assert_eq!(field("UpdateMeBody", "avatar_url")["maxLength"], 2048);
    assert_eq!(field("AddMembersBody", "user_ids")["minItems"], 1);
    // `before` and `after` exclude each other: one exploded object of at most one property.
    assert_eq!(schemas["HistoryCursorParams"]["maxProperties"], 1);
    let params = doc["paths"]["/api/v1/conversations"]["get"]["parameters"]
        .as_array()
        .unwrap();
    let limit = params.iter().find(|p| p["name"] == "limit").unwrap();
    assert_eq!(
        (
            limit["schema"]["minimum"].clone(),
            limit["schema"]["maximum"].clone()
        ),
        (json!(1), json!(200)),
        "{limit}"
    );
}

#[tokio::test]
async fn head_health_answers_like_get_without_a_body() {
    let app = spawn_app().await;
    let response = app
        .client
        .head(format!("{}/health", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    assert!(response.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_trailing_slash_on_an_api_path_reaches_the_endpoint_and_the_docs_still_load() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    assert_eq!(
        app.get("/api/v1/auth/me/", &alice.token).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.get("/api/v1/conversations/?limit=5", &alice.token)
            .await
            .status(),
        StatusCode::OK
    );
    let health = app.request(Method::GET, "/health/", None, None).await;
    assert_eq!(health.status(), StatusCode::OK);
    let docs = app.request(Method::GET, "/docs/", None, None).await;
    assert_eq!(docs.status(), StatusCode::OK);
    assert!(docs.text().await.unwrap().contains("swagger"));
}

async fn health(app: &crate::helpers::TestApp) -> Value {
    app.request(Method::GET, "/health", None, None)
        .await
        .json()
        .await
        .unwrap()
}

/// A socket past its handshake that never sends a token.
async fn idle_socket(url: &str) -> Result<Ws, StatusCode> {
    match connect_async(url).await {
        Ok((stream, _)) => Ok(Ws { stream }),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Err(response.status()),
        Err(other) => panic!("handshake failed: {other}"),
    }
}

#[tokio::test]
async fn sockets_that_never_authenticate_cannot_lock_real_users_out() {
    let dir = tempfile::tempdir().unwrap();
    let config = chat_server::Config {
        max_connections: Some(10),
        max_pending_connections: 16,
        max_pending_connections_per_address: 11,
        ..test_config(&dir)
    };
    let app = spawn_app_with(config, dir).await;
    let alice = app.user("alice").await;
    let mut idle = Vec::new();
    for _ in 0..10 {
        idle.push(
            idle_socket(&app.ws_url)
                .await
                .expect("a pending socket is accepted"),
        );
    }
    let before = health(&app).await;
    assert_eq!(before["pending_connections"], 10, "{before}");
    assert_eq!(before["connections"], 0, "{before}");

    // As many idle sockets as the node serves, and a real user still gets in.
    let _alice = app.ws(&alice).await;
    let after = health(&app).await;
    assert_eq!(after["connections"], 1, "{after}");
    assert_eq!(after["pending_connections"], 10, "{after}");

    // One address's share of pending sockets is 11: the 12th is refused.
    idle.push(
        idle_socket(&app.ws_url)
            .await
            .expect("the 11th pending socket"),
    );
    match idle_socket(&app.ws_url).await {
        Err(status) => assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE),
        Ok(_) => panic!("a 12th pending socket from one address was accepted"),
    }
}

/// Every `log` record of this test binary (actix-web's request logger writes through `log`).
fn captured_log() -> &'static std::sync::Mutex<Vec<String>> {
    static LINES: std::sync::OnceLock<std::sync::Mutex<Vec<String>>> = std::sync::OnceLock::new();
    LINES.get_or_init(|| {
        struct Capture;
        impl log::Log for Capture {
            fn enabled(&self, _: &log::Metadata<'_>) -> bool {
                true
            }
            fn log(&self, record: &log::Record<'_>) {
                captured_log()
                    .lock()
                    .unwrap()
                    .push(record.args().to_string());
            }
            fn flush(&self) {}
        }
        static CAPTURE: Capture = Capture;
        log::set_logger(&CAPTURE).expect("no other logger in the end-to-end tests");
        log::set_max_level(log::LevelFilter::Info);
        std::sync::Mutex::default()
    })
}

#[tokio::test]
async fn a_token_in_a_query_string_never_reaches_the_request_log() {
    let lines = captured_log();
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let secret = alice.token.split('.').nth(2).unwrap().to_owned();
    // The WebSocket address without an upgrade goes through the HTTP app and its logger.
    let plain = app
        .client
        .get(format!(
            "{}?token={}",
            app.ws_url.replace("ws://", "http://"),
            alice.token
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), StatusCode::BAD_REQUEST);
    let _ = plain.bytes().await;
    // The line is written once the response is done; wait for it, generously.
    let mut line = None;
    for _ in 0..500 {
        line = lines
            .lock()
            .unwrap()
            .iter()
            .find(|l| l.contains("/api/v1/ws?token="))
            .cloned();
        if line.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let line = line.expect("the request is logged");
    assert!(line.contains("token=REDACTED"), "{line}");
    assert!(!line.contains(&secret), "{line}");
    let all = lines.lock().unwrap().join("\n");
    assert!(
        !all.contains(&secret),
        "the token's signature is in the log"
    );
}
