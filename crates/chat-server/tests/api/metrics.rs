//! Metrics and request ids: `GET /metrics` on its own listener (`CHAT_METRICS_BIND`), moved
//! by real traffic; and the `X-Request-Id` every request and handshake carries.
//!
//! Metrics are process-wide and other tests run beside these, so counters are compared
//! before and after (they only grow), never to exact values.

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::{TestApp, running, spawn_app, test_config};
use crate::scrape::{sample, scrape};

/// A server with its metrics listener on a random port, and that port.
async fn spawn_app_with_metrics() -> (TestApp, u16) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = test_config(&dir);
    spawn_with_metrics(config, dir).await
}

/// The server `config` describes, with its metrics listener on a random port, and that port.
pub(crate) async fn spawn_with_metrics(
    config: chat_server::Config,
    dir: tempfile::TempDir,
) -> (TestApp, u16) {
    let config = chat_server::Config {
        metrics_bind: Some("127.0.0.1:0".into()),
        ..config
    };
    let app = chat_server::Application::build(config)
        .await
        .expect("the server builds");
    let metrics_port = app.metrics_port().expect("a metrics listener");
    assert_ne!(
        metrics_port,
        app.port(),
        "metrics never share the public port"
    );
    let app = running(app, dir);
    (app, metrics_port)
}

#[tokio::test]
async fn metrics_are_served_on_their_own_listener_and_follow_the_traffic() {
    let (app, metrics) = spawn_app_with_metrics().await;
    let before = scrape(metrics).await;

    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let conversation = app.direct(&alice, &bob).await;
    let read = app
        .get(
            &format!("/api/v1/conversations/{conversation}"),
            &alice.token,
        )
        .await;
    assert_eq!(read.status(), StatusCode::OK);
    let missing = app.request(Method::GET, "/no/such/thing", None, None).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let mut alice_ws = app.ws(&alice).await;
    let mut bob_ws = app.ws(&bob).await;
    alice_ws
        .send_message(&conversation, "hello over the socket", "m-1")
        .await;
    let delivered = bob_ws.next_of_type("new_message").await;
    assert_eq!(
        delivered["message"]["content"], "hello over the socket",
        "{delivered}"
    );

    let after = scrape(metrics).await;
    let moved = |name: &str, labels: &[&str]| {
        let (was, is) = (sample(&before, name, labels), sample(&after, name, labels));
        assert!(
            is > was,
            "{name}{labels:?} did not move: {was} -> {is}\n{after}"
        );
    };
    // HTTP: by the route's pattern, never its raw path.
    let route = r#"route="/api/v1/conversations/{conversation_id}""#;
    moved(
        "chatd_http_requests_total",
        &[r#"method="GET""#, route, r#"status="200""#],
    );
    moved(
        "chatd_http_request_duration_seconds_count",
        &[r#"method="GET""#, route],
    );
    moved(
        "chatd_http_requests_total",
        &[r#"route="/api/v1/auth/login""#, r#"status="200""#],
    );
    moved(
        "chatd_http_requests_total",
        &[r#"route="unmatched""#, r#"status="404""#],
    );
    assert!(!after.contains(&conversation), "a raw path became a label");
    assert!(
        !after.contains("/no/such/thing"),
        "a raw path became a label"
    );
    // Histograms with the configured buckets (a summary would have quantiles instead).
    assert!(
        after.contains(
            r#"chatd_http_request_duration_seconds_bucket{method="POST",route="/api/v1/auth/signup",le="10"}"#
        ),
        "latency is a histogram up to 10 s\n{after}"
    );
    assert!(
        after.contains(r#"chatd_commit_batch_size_bucket{le="512"}"#),
        "batch sizes are a histogram up to 512\n{after}"
    );
    assert!(!after.contains("quantile="), "{after}");
    // Logins wait for a hashing slot; messages are committed, delivered and written out.
    moved("chatd_password_hash_queue_wait_seconds_count", &[]);
    moved("chatd_db_pool_wait_seconds_count", &[]);
    moved("chatd_messages_stored_total", &[]);
    moved("chatd_commit_batch_size_count", &[]);
    moved("chatd_commit_duration_seconds_count", &[]);
    moved("chatd_deliveries_total", &[]);
    moved("chatd_websocket_frames_sent_total", &[]);
    // This server's own sockets.
    assert_eq!(
        sample(
            &after,
            "chatd_websocket_connections",
            &[r#"state="authenticated""#]
        ),
        2.0,
        "{after}"
    );
    assert_eq!(
        sample(
            &after,
            "chatd_websocket_connections",
            &[r#"state="pending""#]
        ),
        0.0,
        "{after}"
    );
    assert!(
        after.contains("# HELP chatd_http_requests_total"),
        "{after}"
    );

    // The listener serves nothing else.
    let other = reqwest::get(format!("http://127.0.0.1:{metrics}/health"))
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
    app.shutdown.stop().await;
}

#[tokio::test]
async fn the_public_address_never_serves_metrics() {
    let (app, _) = spawn_app_with_metrics().await;
    let response = app.request(Method::GET, "/metrics", None, None).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body: Value = response.json().await.expect("a JSON error");
    assert_eq!(body["code"], "not_found", "{body}");
    app.shutdown.stop().await;
}

#[tokio::test]
async fn without_a_metrics_address_no_metrics_listener_is_opened() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(&dir);
    assert_eq!(config.metrics_bind, None);
    let app = chat_server::Application::build(config).await.unwrap();
    assert_eq!(app.metrics_port(), None);
}

// Request ids.

#[tokio::test]
async fn a_sane_request_id_is_echoed_and_a_bad_one_replaced() {
    let app = spawn_app().await;
    let given = app
        .client
        .get(format!("{}/health", app.address))
        .header("X-Request-Id", "client-42.retry_1")
        .send()
        .await
        .unwrap();
    assert_eq!(given.headers()["x-request-id"], "client-42.retry_1");

    for bad in ["has spaces", "quote\"and;semicolon", &"a".repeat(129)] {
        let replaced = app
            .client
            .get(format!("{}/health", app.address))
            .header("X-Request-Id", bad)
            .send()
            .await
            .unwrap();
        let id = replaced.headers()["x-request-id"].to_str().unwrap();
        assert_ne!(id, bad);
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    }

    let made = app.request(Method::GET, "/health", None, None).await;
    let id = made.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
}

#[tokio::test]
async fn error_bodies_carry_the_request_id_beside_detail_and_code() {
    let app = spawn_app().await;
    let unauthorized = app
        .client
        .get(format!("{}/api/v1/conversations", app.address))
        .header("X-Request-Id", "trace-me")
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(unauthorized.headers()["x-request-id"], "trace-me");
    let body: Value = unauthorized.json().await.unwrap();
    assert_eq!(body["request_id"], "trace-me", "{body}");
    assert_eq!(body["code"], "unauthorized", "{body}");
    assert!(body["detail"].is_string(), "{body}");

    // actix's own errors (here a 405), rewritten into the API's shape, carry it too.
    let not_allowed = app.request(Method::PATCH, "/health", None, None).await;
    assert_eq!(not_allowed.status(), StatusCode::METHOD_NOT_ALLOWED);
    let id = not_allowed.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = not_allowed.json().await.unwrap();
    assert_eq!(body["request_id"], id.as_str(), "{body}");
    assert_eq!(body["code"], "method_not_allowed", "{body}");

    // The schema documents it.
    let openapi = app.openapi().await;
    let field = &openapi["components"]["schemas"]["ErrorBody"]["properties"]["request_id"];
    assert!(
        field.is_object(),
        "{}",
        openapi["components"]["schemas"]["ErrorBody"]
    );
}

#[tokio::test]
async fn a_websocket_handshake_gets_a_request_id_too() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let mut request = format!("{}?token={}", app.ws_url, alice.token)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("x-request-id", "socket-1".parse().unwrap());
    let (_socket, response) = connect_async(request).await.unwrap();
    assert_eq!(response.headers()["x-request-id"], "socket-1");

    // A refused handshake says it in its error body as well.
    let refused = format!("ws://{}/api/v1/elsewhere", &app.address["http://".len()..])
        .into_client_request()
        .unwrap();
    let Err(tokio_tungstenite::tungstenite::Error::Http(response)) = connect_async(refused).await
    else {
        panic!("a handshake on another path was accepted");
    };
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let id = response.headers()["x-request-id"].to_str().unwrap();
    let body: Value = serde_json::from_slice(response.body().as_deref().unwrap()).unwrap();
    assert_eq!(body["request_id"], id, "{body}");
}
