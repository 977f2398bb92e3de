//! Abuse limits and the per-user connection cap hold across the nodes of a cluster: two
//! servers on one PostgreSQL database share the budgets and the counts. Each test gets a
//! database of its own from `CHAT_TEST_POSTGRES_URL` and skips, saying so, without it.

use std::time::Duration;

use chat_postgres::testing::TestDatabase;
use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio_tungstenite::connect_async;

use crate::helpers::{TestApp, Ws, assert_rate_limited, spawn_app_with, test_config};

const SUITE: &str = "chat-server limits across nodes";

/// A server on the test database with the abuse limits on, after `change`.
async fn spawn_node(
    database: &TestDatabase,
    change: impl FnOnce(&mut chat_server::Config),
) -> TestApp {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut config = test_config(&dir);
    config.database_url = database.url().to_owned();
    config.rate_limits = true;
    change(&mut config);
    spawn_app_with(config, dir).await
}

async fn login(app: &TestApp, username: &str, password: &str) -> reqwest::Response {
    app.request(
        Method::POST,
        "/api/v1/auth/login",
        None,
        Some(json!({"username": username, "password": password})),
    )
    .await
}

/// The WebSocket opens, and the server refuses it for the user's connection cap.
async fn assert_refused_for_too_many_connections(app: &TestApp, token: &str) {
    let (stream, _) = connect_async(format!("{}?token={token}", app.ws_url))
        .await
        .expect("the handshake itself succeeds");
    let mut refused = Ws { stream };
    let error = refused.next_json().await;
    assert_eq!(error["code"], "too_many_connections", "{error}");
    assert_eq!(refused.close_code().await, Some(1013));
}

#[tokio::test]
async fn a_user_at_the_connection_cap_on_one_node_is_refused_on_another_until_one_closes() {
    let Some(database) = TestDatabase::create(SUITE) else {
        return;
    };
    let cap = |config: &mut chat_server::Config| config.max_connections_per_user = 2;
    let (one, two) = (
        spawn_node(&database, cap).await,
        spawn_node(&database, cap).await,
    );
    let alice = one.user("alice").await;
    let first = one.ws(&alice).await;
    let _second = two.ws(&alice).await;
    assert_refused_for_too_many_connections(&two, &alice.token).await;
    assert_refused_for_too_many_connections(&one, &alice.token).await;

    // Closing the first frees its slot for every node (the release reaches the database
    // a moment after the close).
    drop(first);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (stream, _) = connect_async(format!("{}?token={}", two.ws_url, alice.token))
            .await
            .unwrap();
        let mut ws = Ws { stream };
        let frame = ws.next_json().await;
        if frame["type"] == "connected" {
            break;
        }
        assert_eq!(frame["code"], "too_many_connections", "{frame}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slot never came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn failed_logins_on_two_nodes_add_up_to_one_lockout() {
    let Some(database) = TestDatabase::create(SUITE) else {
        return;
    };
    let (one, two) = (
        spawn_node(&database, |_| {}).await,
        spawn_node(&database, |_| {}).await,
    );
    one.user("alice").await;
    for node in [&one, &two, &one, &two, &one, &two, &one, &two, &one, &two] {
        assert_eq!(
            login(node, "alice", "guess").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_rate_limited(login(&one, "alice", "correct horse").await, 90).await;
    assert_rate_limited(login(&two, "alice", "correct horse").await, 90).await;
}

#[tokio::test]
async fn messages_sent_on_two_nodes_over_rest_and_websocket_share_one_budget() {
    let Some(database) = TestDatabase::create(SUITE) else {
        return;
    };
    // One message a second, bursts of two.
    let slow = |config: &mut chat_server::Config| config.messages_per_second = 1;
    let (one, two) = (
        spawn_node(&database, slow).await,
        spawn_node(&database, slow).await,
    );
    let [alice, bob] = one.users(["alice", "bob"]).await;
    let group = one.group(&alice, &[&bob]).await;
    one.send(&alice, &group, "one").await;
    let mut socket = two.ws(&alice).await;
    socket.send_message(&group, "two", "c-2").await;
    assert_eq!(
        socket.next_of_type("new_message").await["message"]["content"],
        "two"
    );

    // The burst is spent on both nodes together.
    socket.send_message(&group, "three", "c-3").await;
    let error = socket.next_of_type("error").await;
    assert_eq!(error["code"], "rate_limited", "{error}");
    let refused = one
        .post(
            &format!("/api/v1/conversations/{group}/messages"),
            &alice.token,
            json!({"content": "four"}),
        )
        .await;
    assert_rate_limited(refused, 1).await;
}
