//! Abuse limits at the edge: 429 with Retry-After, and the WebSocket handshake's guards.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::{TestApp, assert_rate_limited, spawn_limited_app};

async fn login(app: &TestApp, username: &str, password: &str) -> reqwest::Response {
    app.request(
        Method::POST,
        "/api/v1/auth/login",
        None,
        Some(json!({"username": username, "password": password})),
    )
    .await
}

#[tokio::test]
async fn after_ten_failed_logins_the_account_is_refused_with_429_even_for_the_right_password() {
    let app = spawn_limited_app(|_| {}).await;
    app.user("alice").await;
    for _ in 0..10 {
        assert_eq!(
            login(&app, "alice", "guess").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let refused = login(&app, "alice", "correct horse").await;
    assert_rate_limited(refused, 90).await;
}

#[tokio::test]
async fn after_ten_failed_logins_from_one_address_its_logins_are_refused_for_every_account() {
    let app = spawn_limited_app(|_| {}).await;
    app.user("alice").await;
    // Ten guesses, each at a different account, so no account's own budget runs out.
    for i in 0..10 {
        assert_eq!(
            login(&app, &format!("someone{i}"), "guess").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let refused = login(&app, "alice", "correct horse").await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(
        refused.json::<Value>().await.unwrap()["code"],
        "rate_limited"
    );
}

#[tokio::test]
async fn a_sender_past_the_message_rate_gets_429_and_nothing_is_stored() {
    let app = spawn_limited_app(|config| config.messages_per_second = 5).await;
    let [alice, bob] = app.users(["alice", "bob"]).await;
    let direct = app.direct(&alice, &bob).await;
    let path = format!("/api/v1/conversations/{direct}/messages");
    let mut statuses = Vec::new();
    for i in 0..15 {
        let response = app
            .post(&path, &alice.token, json!({"content": format!("m{i}")}))
            .await;
        statuses.push(response.status());
    }
    let accepted = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    assert!(statuses.contains(&StatusCode::TOO_MANY_REQUESTS));
    assert!((10..15).contains(&accepted), "{statuses:?}");
    let stored: Vec<Value> = app
        .get(&format!("{path}?limit=200"), &bob.token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stored.len(), accepted);
}

#[tokio::test]
async fn a_browser_handshake_from_another_origin_is_refused_with_403() {
    let app =
        spawn_limited_app(|config| config.allowed_origins = vec!["https://app.example".into()])
            .await;
    let alice = app.user("alice").await;
    let handshake = |origin: &str| {
        let mut request = format!("{}?token={}", app.ws_url, alice.token)
            .into_client_request()
            .unwrap();
        request
            .headers_mut()
            .insert("origin", origin.parse().unwrap());
        connect_async(request)
    };
    match handshake("https://evil.example").await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), StatusCode::FORBIDDEN);
        }
        other => panic!("expected a 403, got {:?}", other.map(|(_, r)| r.status())),
    }
    assert!(handshake("https://app.example").await.is_ok());
    assert!(
        handshake(&app.address).await.is_ok(),
        "same-origin is always allowed"
    );
}

#[tokio::test]
async fn a_handshake_anywhere_but_the_websocket_endpoint_gets_a_json_404() {
    let app = spawn_limited_app(|_| {}).await;
    let alice = app.user("alice").await;
    let elsewhere = app.ws_url.replace("/api/v1/ws", "/api/v1/conversations");
    match connect_async(format!("{elsewhere}?token={}", alice.token)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), StatusCode::NOT_FOUND);
            let body: Value = serde_json::from_slice(response.body().as_deref().unwrap()).unwrap();
            assert_eq!(body["code"], "not_found", "{body}");
        }
        other => panic!("expected a 404, got {:?}", other.map(|(_, r)| r.status())),
    }
}

#[tokio::test]
async fn a_user_past_the_connection_limit_is_told_and_closed_with_1013() {
    let app = spawn_limited_app(|config| config.max_connections_per_user = 2).await;
    let alice = app.user("alice").await;
    let _first = app.ws(&alice).await;
    let _second = app.ws(&alice).await;
    let (stream, _) = connect_async(format!("{}?token={}", app.ws_url, alice.token))
        .await
        .unwrap();
    let mut third = crate::helpers::Ws { stream };
    let error = third.next_json().await;
    assert_eq!(error["type"], "error");
    assert_eq!(error["code"], "too_many_connections");
    assert_eq!(third.close_code().await, Some(1013));
    // A refusal gives back no one's slot.
    let (stream, _) = connect_async(format!("{}?token={}", app.ws_url, alice.token))
        .await
        .unwrap();
    let mut fourth = crate::helpers::Ws { stream };
    assert_eq!(fourth.next_json().await["code"], "too_many_connections");
}

#[tokio::test]
async fn a_full_server_refuses_the_handshake_cleanly_and_health_counts_connections() {
    let app = spawn_limited_app(|config| config.max_connections = Some(1)).await;
    let alice = app.user("alice").await;
    let _only = app.ws(&alice).await;
    let health: Value = app
        .request(Method::GET, "/health", None, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(health["connections"], 1);
    match connect_async(format!("{}?token={}", app.ws_url, alice.token)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        }
        other => panic!("expected a 503, got {:?}", other.map(|(_, r)| r.status())),
    }
    // The server is still serving.
    assert_eq!(
        app.get("/api/v1/auth/me", &alice.token).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_connection_sending_frames_too_fast_gets_rate_limited_errors_and_stays_open() {
    let app = spawn_limited_app(|_| {}).await;
    let alice = app.user("alice").await;
    let mut ws = app.ws(&alice).await;
    // The default frame budget is 60 at once, refilled at 30 a second.
    for _ in 0..80 {
        ws.send_json(json!({"type": "ping"})).await;
    }
    let mut pongs = 0;
    let mut limited = 0;
    for _ in 0..80 {
        let frame = ws.next_json().await;
        match frame["type"].as_str().unwrap() {
            "pong" => pongs += 1,
            "error" if frame["code"] == "rate_limited" => limited += 1,
            _ => panic!("unexpected frame {frame}"),
        }
    }
    assert!(
        limited > 0 && pongs >= 60,
        "{pongs} pongs, {limited} refusals"
    );
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    ws.send_json(json!({"type": "ping"})).await;
    assert_eq!(ws.next_json().await["type"], "pong");
}

#[tokio::test]
async fn an_address_past_ten_sign_ups_an_hour_is_refused_with_429_and_nothing_is_created() {
    let app = spawn_limited_app(|_| {}).await;
    for i in 0..10 {
        assert_eq!(
            app.signup(&format!("user{i}")).await.status(),
            StatusCode::CREATED,
            "sign-up {i} of the hour's ten"
        );
    }
    let refused = app.signup("user10").await;
    // One sign-up comes back every six minutes.
    assert_rate_limited(refused, 360).await;

    let token = app.login("user0", "correct horse").await;
    let search = |name: &'static str| app.search_usernames(&token, name);
    assert_eq!(
        search("user9").await,
        ["user9"],
        "an accepted sign-up is found"
    );
    assert!(
        search("user10").await.is_empty(),
        "the refused sign-up created nobody"
    );
}

#[tokio::test]
async fn typing_past_five_a_second_is_refused_and_the_refused_signals_reach_nobody() {
    let app = spawn_limited_app(|_| {}).await;
    let [alice, bob] = app.users(["alice", "bob"]).await;
    let direct = app.direct(&alice, &bob).await;
    let mut alice_ws = app.ws(&alice).await;
    let mut bob_ws = app.ws(&bob).await;

    // The budget is 10 at once, refilled at 5 a second; 40 sent back to back overrun it
    // (and stay within the connection's own frame budget of 60).
    const SENT: usize = 40;
    for _ in 0..SENT {
        alice_ws
            .send_json(json!({"type": "typing", "conversation_id": direct}))
            .await;
    }
    alice_ws.send_json(json!({"type": "ping"})).await;
    let mut refused = 0;
    loop {
        let frame = alice_ws.next_json().await;
        match frame["type"].as_str().unwrap() {
            "pong" => break,
            "error" if frame["code"] == "rate_limited" => refused += 1,
            _ => panic!("unexpected frame {frame}"),
        }
    }
    let accepted = SENT - refused;
    assert!(
        (10..SENT).contains(&accepted),
        "{accepted} accepted, {refused} refused"
    );
    // Bob hears exactly the accepted ones.
    for _ in 0..accepted {
        let frame = bob_ws.next_json().await;
        assert_eq!(frame["type"], "user_typing", "{frame}");
        assert_eq!(frame["user_id"], alice.id.as_str());
    }
    bob_ws
        .assert_silent(std::time::Duration::from_millis(300))
        .await;
}
