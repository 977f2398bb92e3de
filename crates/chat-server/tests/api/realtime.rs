//! The WebSocket gateway, end to end: the three ways to authenticate and the refusals,
//! fan-out to every connection of every member, read receipts and typing, catching up after
//! a disconnect, refused frames, and the close codes a client has to handle.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, client_async, connect_async};

use crate::helpers::{
    TestApp, TestUser, Ws, expired_token, spawn_app, spawn_app_with, test_config, with_known_secret,
};

/// How long a connection must stay quiet to count as "got nothing".
const SILENCE: Duration = Duration::from_millis(300);

/// A WebSocket to `url`, nothing read from it yet.
async fn open(url: &str) -> Ws {
    let (stream, _) = connect_async(url)
        .await
        .expect("the WebSocket handshake succeeds");
    Ws { stream }
}

/// A `?token=` WebSocket for `user`, before its `connected` frame.
async fn open_as(app: &TestApp, user: &TestUser) -> Ws {
    open(&format!("{}?token={}", app.ws_url, user.token)).await
}

/// A WebSocket that sends `Authorization: <value>` with its upgrade request.
async fn open_with_authorization(app: &TestApp, value: &str) -> Ws {
    let mut request = app.ws_url.as_str().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Authorization", HeaderValue::from_str(value).unwrap());
    let (stream, _) = connect_async(request)
        .await
        .expect("the WebSocket handshake succeeds");
    Ws { stream }
}

/// Asserts the `connected` frame that opens an accepted connection.
async fn assert_connected(ws: &mut Ws, user: &TestUser, last_seq: i64) {
    let frame = ws.next_json().await;
    assert_eq!(
        frame,
        json!({"type": "connected", "user_id": user.id, "last_seq": last_seq})
    );
}

/// Asserts the refusal of a connection: an `unauthorized` error frame, then close 1008.
async fn assert_refused(ws: &mut Ws, detail: &str) {
    let frame = ws.next_json().await;
    assert_eq!(
        frame,
        json!({"type": "error", "code": "unauthorized", "detail": detail})
    );
    assert_eq!(ws.close_code().await, Some(1008));
}

/// Asserts that the connection answers a `ping` frame with `pong`: it is open and working.
async fn assert_alive(ws: &mut Ws) {
    ws.send_json(json!({"type": "ping"})).await;
    assert_eq!(ws.next_json().await, json!({"type": "pong"}));
}

/// Asserts a `new_message` frame for exactly `message` (as the REST API returns it) with a
/// well-formed timestamp.
fn assert_new_message(frame: &Value, message: &Value) {
    assert_eq!(frame["type"], "new_message", "{frame}");
    assert_eq!(&frame["message"], message);
    assert_eq!(
        frame["seq"], message["seq"],
        "a new message sits at its own seq"
    );
    assert_timestamp(&frame["timestamp"]);
    assert_eq!(frame.as_object().unwrap().len(), 4, "{frame}");
}

fn assert_timestamp(value: &Value) {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("{value} is not a string"));
    chrono::DateTime::parse_from_rfc3339(text).expect("an RFC 3339 timestamp");
}

/// The newest message of a conversation, as `viewer` sees it over REST.
async fn last_message(app: &TestApp, viewer: &TestUser, conversation: &str) -> Value {
    let response = app
        .get(
            &format!("/api/v1/conversations/{conversation}/messages?limit=1"),
            &viewer.token,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut page: Vec<Value> = response.json().await.unwrap();
    page.pop().expect("the conversation has a message")
}

/// Open WebSocket connections, as `/health` reports them.
async fn open_connections(app: &TestApp) -> u64 {
    let response = app
        .client
        .get(format!("{}/health", app.address))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    body["connections"].as_u64().unwrap()
}

#[tokio::test]
async fn a_token_in_the_query_string_authenticates() {
    let app = spawn_app().await;
    let [alice, bob] = app.users(["alice", "bob"]).await;
    let mut fresh = open_as(&app, &alice).await;
    assert_connected(&mut fresh, &alice, 0).await;

    let direct = app.direct(&alice, &bob).await;
    let sent = app.send(&alice, &direct, "hello").await;
    let mut ws = open_as(&app, &bob).await;
    // `last_seq` is the newest message the user can see: where catching up starts.
    assert_connected(&mut ws, &bob, sent["seq"].as_i64().unwrap()).await;
    assert_alive(&mut ws).await;
}

#[tokio::test]
async fn a_bearer_header_at_the_upgrade_authenticates() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let mut ws = open_with_authorization(&app, &format!("Bearer {}", alice.token)).await;
    assert_connected(&mut ws, &alice, 0).await;
    assert_alive(&mut ws).await;
}

#[tokio::test]
async fn a_token_in_the_first_frame_authenticates() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let mut ws = open(&app.ws_url).await;
    ws.send_json(json!({"token": alice.token})).await;
    assert_connected(&mut ws, &alice, 0).await;
    assert_alive(&mut ws).await;
}

#[tokio::test]
async fn a_first_frame_without_a_token_is_refused_with_1008() {
    let app = spawn_app().await;
    let mut ws = open(&app.ws_url).await;
    ws.send_json(json!({"type": "ping"})).await;
    assert_refused(
        &mut ws,
        "a token is required: ?token=, an Authorization header, or a first frame {\"token\": ...}",
    )
    .await;
}

#[tokio::test]
async fn a_bad_token_is_refused_with_1008_whichever_way_it_comes() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let forged = format!("{}x", alice.token);

    let mut by_query = open(&format!("{}?token={forged}", app.ws_url)).await;
    assert_refused(&mut by_query, "invalid token").await;

    let mut by_header = open_with_authorization(&app, &format!("Bearer {forged}")).await;
    assert_refused(&mut by_header, "invalid token").await;

    let mut by_frame = open(&app.ws_url).await;
    by_frame.send_json(json!({"token": "not-a-token"})).await;
    assert_refused(&mut by_frame, "invalid token").await;

    // A header that is not a bearer token is refused outright, not ignored in favour of a
    // first frame.
    let mut basic = open_with_authorization(&app, "Basic YWxpY2U6c2VjcmV0").await;
    assert_refused(
        &mut basic,
        "a token is required: ?token=, an Authorization header, or a first frame {\"token\": ...}",
    )
    .await;
}

#[tokio::test]
async fn an_expired_token_is_refused_with_1008_and_its_own_code() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(with_known_secret(&dir), dir).await;
    let alice = app.user("alice").await;
    let expired = expired_token(&alice.id);
    let mut ws = open(&format!("{}?token={expired}", app.ws_url)).await;
    assert_eq!(
        ws.next_json().await,
        json!({"type": "error", "code": "token_expired", "detail": "token has expired; log in again"})
    );
    assert_eq!(ws.close_code().await, Some(1008));
}

#[tokio::test]
async fn a_message_reaches_every_connection_of_every_member_in_a_direct_conversation() {
    let app = spawn_app().await;
    let [alice, bob, eve] = app.users(["alice", "bob", "eve"]).await;
    let direct = app.direct(&alice, &bob).await;
    let mut alice_phone = app.ws(&alice).await;
    let mut alice_laptop = app.ws(&alice).await;
    let mut bob_ws = app.ws(&bob).await;
    let mut eve_ws = app.ws(&eve).await;

    alice_phone
        .send_message(&direct, "  hi bob  ", "phone-1")
        .await;

    let mut frames = Vec::new();
    for ws in [&mut alice_phone, &mut alice_laptop, &mut bob_ws] {
        frames.push(ws.next_json().await);
    }
    // The frame is the stored message exactly, identical on every connection.
    let stored = last_message(&app, &alice, &direct).await;
    assert_eq!(stored["content"], "hi bob");
    assert_eq!(stored["client_message_id"], "phone-1");
    assert_eq!(stored["sender_id"], alice.id.as_str());
    assert_eq!(stored["recipient_id"], bob.id.as_str());
    assert_eq!(stored["conversation_id"], direct.as_str());
    assert_eq!(stored["is_read"], false);
    for frame in &frames {
        assert_new_message(frame, &stored);
    }
    eve_ws.assert_silent(SILENCE).await;
    for ws in [&mut alice_phone, &mut alice_laptop, &mut bob_ws] {
        ws.assert_silent(SILENCE).await;
    }
}

#[tokio::test]
async fn a_group_message_reaches_every_connection_of_every_member() {
    let app = spawn_app().await;
    let [alice, bob, carol, eve] = app.users(["alice", "bob", "carol", "eve"]).await;
    let group = app.group(&alice, &[&bob, &carol]).await;
    let earlier = app.send(&alice, &group, "first").await;
    let mut alice_ws = app.ws(&alice).await;
    let mut bob_phone = app.ws(&bob).await;
    let mut bob_laptop = app.ws(&bob).await;
    let mut carol_ws = app.ws(&carol).await;
    let mut eve_ws = app.ws(&eve).await;

    carol_ws.send_message(&group, "hello team", "c-42").await;

    let mut frames = Vec::new();
    for ws in [
        &mut alice_ws,
        &mut bob_phone,
        &mut bob_laptop,
        &mut carol_ws,
    ] {
        frames.push(ws.next_json().await);
    }
    let message = &frames[0]["message"];
    assert_eq!(message["content"], "hello team");
    assert_eq!(message["client_message_id"], "c-42");
    assert_eq!(message["sender_id"], carol.id.as_str());
    assert_eq!(message["conversation_id"], group.as_str());
    assert_eq!(message["recipient_id"], Value::Null);
    assert!(message["seq"].as_i64().unwrap() > earlier["seq"].as_i64().unwrap());
    // The frame is the stored message exactly, identical on every connection.
    let stored = last_message(&app, &carol, &group).await;
    for frame in &frames {
        assert_new_message(frame, &stored);
    }
    eve_ws.assert_silent(SILENCE).await;
}

#[tokio::test]
async fn a_message_sent_over_rest_is_pushed_over_the_websocket() {
    let app = spawn_app().await;
    let [alice, bob] = app.users(["alice", "bob"]).await;
    let direct = app.direct(&alice, &bob).await;
    let mut alice_ws = app.ws(&alice).await;
    let mut bob_ws = app.ws(&bob).await;

    let sent = app.send(&alice, &direct, "from the REST API").await;

    assert_new_message(&bob_ws.next_json().await, &sent);
    // The sender's own connections hear of it too, so its other devices stay in step.
    assert_new_message(&alice_ws.next_json().await, &sent);
}

#[tokio::test]
async fn a_retried_client_message_id_is_answered_on_the_sending_connection_only() {
    let app = spawn_app().await;
    let [alice, bob] = app.users(["alice", "bob"]).await;
    let direct = app.direct(&alice, &bob).await;
    let mut alice_phone = app.ws(&alice).await;
    let mut alice_laptop = app.ws(&alice).await;
    let mut bob_ws = app.ws(&bob).await;
    let frame = json!({
        "type": "message",
        "conversation_id": direct,
        "content": "only once",
        "client_message_id": "retry-me",
    });

    alice_phone.send_json(frame.clone()).await;
    let first = alice_phone.next_json().await;
    assert_new_message(&alice_laptop.next_json().await, &first["message"]);
    assert_new_message(&bob_ws.next_json().await, &first["message"]);

    alice_phone.send_json(frame).await;
    let again = alice_phone.next_json().await;
    assert_new_message(&again, &first["message"]);
    alice_laptop.assert_silent(SILENCE).await;
    bob_ws.assert_silent(SILENCE).await;

    let history: Vec<Value> = app
        .get(
            &format!("/api/v1/conversations/{direct}/messages"),
            &bob.token,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(history.len(), 1);
}

#[tokio::test]
async fn a_message_to_a_recipient_id_starts_the_direct_conversation_once() {
    let app = spawn_app().await;
    let [alice, bob] = app.users(["alice", "bob"]).await;
    let mut alice_ws = app.ws(&alice).await;
    let mut bob_ws = app.ws(&bob).await;

    alice_ws
        .send_json(json!({"type": "message", "recipient_id": bob.id, "content": "hi"}))
        .await;

    let mut conversation_id = String::new();
    for ws in [&mut alice_ws, &mut bob_ws] {
        let created = ws.next_json().await;
        assert_eq!(created["type"], "conversation_updated", "{created}");
        assert_eq!(created["change"], "created");
        assert_eq!(created["actor_id"], alice.id.as_str());
        assert_eq!(created["name"], Value::Null);
        assert_eq!(created["user_ids"], json!([]));
        assert_timestamp(&created["timestamp"]);
        conversation_id = created["conversation_id"].as_str().unwrap().to_owned();

        let frame = ws.next_json().await;
        assert_eq!(frame["type"], "new_message", "{frame}");
        assert_eq!(
            frame["message"]["conversation_id"],
            conversation_id.as_str()
        );
        assert_eq!(frame["message"]["sender_id"], alice.id.as_str());
        assert_eq!(frame["message"]["recipient_id"], bob.id.as_str());
        assert_eq!(frame["message"]["content"], "hi");
        assert_eq!(frame["message"]["client_message_id"], Value::Null);
    }
    assert_eq!(conversation_id, app.direct(&alice, &bob).await);

    // The second message goes to the same conversation, and nothing is "created" again.
    bob_ws
        .send_json(json!({"type": "message", "recipient_id": alice.id, "content": "hey"}))
        .await;
    for ws in [&mut alice_ws, &mut bob_ws] {
        let frame = ws.next_json().await;
        assert_eq!(frame["type"], "new_message", "{frame}");
        assert_eq!(
            frame["message"]["conversation_id"],
            conversation_id.as_str()
        );
        assert_eq!(frame["message"]["content"], "hey");
    }
    let inbox: Vec<Value> = app
        .get("/api/v1/conversations", &alice.token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(inbox.len(), 1);
}

#[tokio::test]
async fn marking_a_message_read_tells_every_member() {
    let app = spawn_app().await;
    let [alice, bob] = app.users(["alice", "bob"]).await;
    let direct = app.direct(&alice, &bob).await;
    let first = app.send(&alice, &direct, "one").await;
    let second = app.send(&alice, &direct, "two").await;
    let mut alice_ws = app.ws(&alice).await;
    let mut bob_ws = app.ws(&bob).await;

    bob_ws
        .send_json(json!({"type": "mark_read", "message_id": second["id"]}))
        .await;

    let receipt = alice_ws.next_json().await;
    assert_eq!(receipt["type"], "message_read", "{receipt}");
    assert_eq!(receipt["message_id"], second["id"]);
    assert_eq!(receipt["conversation_id"], direct.as_str());
    assert_eq!(receipt["user_id"], bob.id.as_str());
    assert_eq!(receipt["last_read_seq"], second["seq"]);
    assert_timestamp(&receipt["timestamp"]);
    assert!(receipt["seq"].as_i64().unwrap() > second["seq"].as_i64().unwrap());
    assert_eq!(receipt.as_object().unwrap().len(), 7, "{receipt}");
    // The reader's own connections are members too.
    assert_eq!(bob_ws.next_json().await, receipt);

    // Marking an older message moves nothing: only the asking connection gets an answer,
    // and it shows the marker where it stands.
    bob_ws
        .send_json(json!({"type": "mark_read", "message_id": first["id"]}))
        .await;
    let unchanged = bob_ws.next_json().await;
    assert_eq!(unchanged["type"], "message_read", "{unchanged}");
    assert_eq!(unchanged["message_id"], first["id"]);
    assert_eq!(unchanged["last_read_seq"], second["seq"]);
    alice_ws.assert_silent(SILENCE).await;
}

#[tokio::test]
async fn typing_reaches_the_other_members_but_not_the_typer_or_outsiders() {
    let app = spawn_app().await;
    let [alice, bob, carol, eve] = app.users(["alice", "bob", "carol", "eve"]).await;
    let mut alice_ws = app.ws(&alice).await;
    let mut bob_ws = app.ws(&bob).await;
    let mut carol_ws = app.ws(&carol).await;
    let mut eve_ws = app.ws(&eve).await;
    // Alice starts typing as soon as the group exists; its members hear of both.
    let group = app.group(&alice, &[&bob, &carol]).await;
    let created = alice_ws.next_json().await;
    assert_eq!(created["type"], "conversation_updated", "{created}");
    assert_eq!(created["change"], "created");

    alice_ws
        .send_json(json!({"type": "typing", "conversation_id": group}))
        .await;
    for ws in [&mut bob_ws, &mut carol_ws] {
        let frame = ws.next_of_type("user_typing").await;
        assert_eq!(frame["user_id"], alice.id.as_str());
        assert_eq!(frame["conversation_id"], group.as_str());
        assert_eq!(frame["is_typing"], true);
        assert_timestamp(&frame["timestamp"]);
    }
    alice_ws.assert_silent(SILENCE).await;
    eve_ws.assert_silent(SILENCE).await;

    alice_ws
        .send_json(json!({"type": "typing", "conversation_id": group, "is_typing": false}))
        .await;
    for ws in [&mut bob_ws, &mut carol_ws] {
        let frame = ws.next_json().await;
        assert_eq!(frame["type"], "user_typing", "{frame}");
        assert_eq!(frame["is_typing"], false);
    }
    alice_ws.assert_silent(SILENCE).await;
}

#[tokio::test]
async fn sync_after_a_disconnect_returns_exactly_the_missed_messages_in_order() {
    let app = spawn_app().await;
    let [alice, bob, carol] = app.users(["alice", "bob", "carol"]).await;
    let direct = app.direct(&alice, &bob).await;
    let group = app.group(&alice, &[&bob, &carol]).await;
    let not_bobs = app.direct(&alice, &carol).await;
    app.send(&alice, &direct, "seen before").await;

    let mut ws = open_as(&app, &bob).await;
    let connected = ws.next_json().await;
    let last_seen = connected["last_seq"].as_i64().unwrap();
    ws.stream.close(None).await.unwrap();
    drop(ws);

    let missed = vec![
        app.send(&alice, &direct, "one").await,
        app.send(&carol, &group, "two").await,
        app.send(&alice, &not_bobs, "not for bob").await,
        app.send(&alice, &direct, "three").await,
    ];
    let missed: Vec<Value> = missed
        .into_iter()
        .filter(|m| m["conversation_id"] != not_bobs.as_str())
        .collect();
    let newest = missed[2]["seq"].as_i64().unwrap();

    let mut ws = open_as(&app, &bob).await;
    assert_connected(&mut ws, &bob, newest).await;
    ws.send_json(json!({"type": "sync", "since_seq": last_seen}))
        .await;
    for message in &missed {
        let frame = ws.next_json().await;
        assert_eq!(frame["type"], "new_message", "{frame}");
        assert_eq!(frame["message"]["id"], message["id"]);
        assert_eq!(frame["message"]["seq"], message["seq"]);
        assert_eq!(frame["message"]["content"], message["content"]);
        assert_eq!(frame["message"]["is_read"], false);
    }
    assert_eq!(
        ws.next_json().await,
        json!({"type": "synced", "last_seq": newest, "has_more": false})
    );
    ws.assert_silent(SILENCE).await;

    // Syncing from the newest seq sends nothing but `synced`.
    ws.send_json(json!({"type": "sync", "since_seq": newest}))
        .await;
    assert_eq!(
        ws.next_json().await,
        json!({"type": "synced", "last_seq": newest, "has_more": false})
    );
}

#[tokio::test]
async fn malformed_frames_get_error_frames_and_the_connection_stays_open() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let mut ws = app.ws(&alice).await;

    let cases = [
        ("this is not json", "invalid_json", None),
        ("[1, 2]", "invalid_frame", None),
        (r#"{"no": "type"}"#, "invalid_frame", None),
        (
            r#"{"type": "dance", "ref": "r1"}"#,
            "unknown_type",
            Some("r1"),
        ),
        (
            r#"{"type": "message", "conversation_id": "0b7c9b8e-8c47-4a43-9d8e-3f3e2a1b0c9d", "client_message_id": "c9"}"#,
            "invalid_frame",
            Some("c9"),
        ),
        (
            r#"{"type": "typing", "conversation_id": "not-a-uuid"}"#,
            "invalid_frame",
            None,
        ),
        (r#"{"type": "sync"}"#, "invalid_frame", None),
    ];
    for (text, code, reference) in cases {
        ws.stream.send(Message::text(text)).await.unwrap();
        let error = ws.next_json().await;
        assert_eq!(error["type"], "error", "{text}: {error}");
        assert_eq!(error["code"], code, "{text}: {error}");
        assert!(error["detail"].as_str().is_some_and(|d| !d.is_empty()));
        match reference {
            Some(reference) => assert_eq!(error["ref"], reference, "{text}"),
            None => assert!(error.get("ref").is_none(), "{text}: {error}"),
        }
        assert_alive(&mut ws).await;
    }

    ws.stream
        .send(Message::binary(b"{\"type\":\"ping\"}".to_vec()))
        .await
        .unwrap();
    let error = ws.next_json().await;
    assert_eq!(error["type"], "error");
    assert_eq!(error["code"], "invalid_frame");
    assert_alive(&mut ws).await;
}

#[tokio::test]
async fn frames_the_rules_refuse_get_error_frames_and_the_connection_stays_open() {
    let app = spawn_app().await;
    let [alice, bob, carol] = app.users(["alice", "bob", "carol"]).await;
    let theirs = app.direct(&bob, &carol).await;
    let their_message = app.send(&bob, &theirs, "private").await;
    let mine = app.direct(&alice, &bob).await;
    let mut ws = app.ws(&alice).await;

    let cases = [
        (
            json!({"type": "message", "conversation_id": theirs, "content": "let me in", "client_message_id": "m-1"}),
            "conversation_not_found",
            Some("m-1"),
        ),
        (
            json!({"type": "typing", "conversation_id": theirs}),
            "conversation_not_found",
            None,
        ),
        (
            json!({"type": "mark_read", "message_id": their_message["id"], "ref": "r-7"}),
            "message_not_found",
            Some("r-7"),
        ),
        (
            json!({"type": "message", "conversation_id": mine, "content": "   "}),
            "validation_error",
            None,
        ),
        (
            json!({"type": "message", "conversation_id": mine, "content": "x".repeat(4001)}),
            "validation_error",
            None,
        ),
        (
            json!({"type": "message", "content": "to nobody"}),
            "validation_error",
            None,
        ),
        (
            json!({"type": "message", "recipient_id": "0b7c9b8e-8c47-4a43-9d8e-3f3e2a1b0c9d", "content": "hi"}),
            "user_not_found",
            None,
        ),
    ];
    for (frame, code, reference) in cases {
        ws.send_json(frame.clone()).await;
        let error = ws.next_json().await;
        assert_eq!(error["type"], "error", "{frame}: {error}");
        assert_eq!(error["code"], code, "{frame}: {error}");
        match reference {
            Some(reference) => assert_eq!(error["ref"], reference, "{frame}"),
            None => assert!(error.get("ref").is_none(), "{frame}: {error}"),
        }
        assert_alive(&mut ws).await;
    }
    // Nothing reached the conversation alice is not in.
    let history: Vec<Value> = app
        .get(
            &format!("/api/v1/conversations/{theirs}/messages"),
            &bob.token,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(history.len(), 1);
}

/// A text frame of exactly `len` bytes: a `ping` padded with spaces.
fn ping_of_len(len: usize) -> String {
    let ping = r#"{"type":"ping"}"#;
    format!("{ping}{}", " ".repeat(len - ping.len()))
}

#[tokio::test]
async fn a_frame_over_64_kib_closes_the_connection_with_1009() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let mut ws = app.ws(&alice).await;

    // 64 KiB exactly is still accepted.
    ws.stream
        .send(Message::text(ping_of_len(64 * 1024)))
        .await
        .unwrap();
    assert_eq!(ws.next_json().await, json!({"type": "pong"}));

    ws.stream
        .send(Message::text(ping_of_len(64 * 1024 + 1)))
        .await
        .unwrap();
    assert_eq!(ws.close_code().await, Some(1009));
}

#[tokio::test]
async fn removing_a_member_stops_their_deliveries_at_once() {
    let app = spawn_app().await;
    let [alice, bob, carol] = app.users(["alice", "bob", "carol"]).await;
    let group = app.group(&alice, &[&bob, &carol]).await;
    let mut alice_ws = app.ws(&alice).await;
    let mut bob_ws = app.ws(&bob).await;
    let mut carol_ws = app.ws(&carol).await;

    let response = app
        .delete(
            &format!("/api/v1/conversations/{group}/members/{}", carol.id),
            &alice.token,
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    for ws in [&mut alice_ws, &mut bob_ws, &mut carol_ws] {
        let update = ws.next_json().await;
        assert_eq!(update["type"], "conversation_updated", "{update}");
        assert_eq!(update["conversation_id"], group.as_str());
        assert_eq!(update["change"], "member_removed");
        assert_eq!(update["actor_id"], alice.id.as_str());
        assert_eq!(update["name"], "team");
        assert_eq!(update["user_ids"], json!([carol.id]));
        assert_timestamp(&update["timestamp"]);
    }

    let sent = app.send(&alice, &group, "carol has left").await;
    assert_new_message(&bob_ws.next_json().await, &sent);
    assert_new_message(&alice_ws.next_json().await, &sent);
    bob_ws
        .send_json(json!({"type": "typing", "conversation_id": group}))
        .await;
    assert_eq!(alice_ws.next_json().await["type"], "user_typing");
    carol_ws.assert_silent(SILENCE).await;

    carol_ws
        .send_json(json!({"type": "message", "conversation_id": group, "content": "wait"}))
        .await;
    let error = carol_ws.next_json().await;
    assert_eq!(error["code"], "conversation_not_found", "{error}");
}

#[tokio::test]
async fn shutting_down_closes_connections_with_1001() {
    let app = spawn_app().await;
    let [alice, bob] = app.users(["alice", "bob"]).await;
    let mut alice_ws = app.ws(&alice).await;
    let mut bob_ws = app.ws(&bob).await;

    // `stop` waits for the connections to close, so it runs beside the clients.
    let shutdown = app.shutdown.clone();
    let stopping = tokio::spawn(async move { shutdown.stop().await });

    assert_eq!(alice_ws.close_code().await, Some(1001));
    assert_eq!(bob_ws.close_code().await, Some(1001));
    tokio::time::timeout(Duration::from_secs(5), stopping)
        .await
        .expect("the server stops once its connections are closed")
        .unwrap();
    assert!(
        connect_async(format!("{}?token={}", app.ws_url, alice.token))
            .await
            .is_err()
    );
}

/// A WebSocket whose socket has a small receive buffer, so that a client that does not read
/// backs the server up quickly.
async fn open_small_buffered(app: &TestApp, user: &TestUser) -> Ws {
    let address = app.address.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(16 * 1024).unwrap();
    let tcp = socket.connect(address).await.unwrap();
    let url = format!("{}?token={}", app.ws_url, user.token);
    let (stream, _) = client_async(url, MaybeTlsStream::Plain(tcp))
        .await
        .expect("the WebSocket handshake succeeds");
    let mut ws = Ws { stream };
    assert_connected(&mut ws, user, 0).await;
    ws
}

/// Sends `count` messages of about 16 KB each (4000 four-byte characters) from `from` over
/// REST, four at a time, and returns their seqs in ascending order.
async fn flood(app: &TestApp, from: &TestUser, conversation: &str, count: usize) -> Vec<i64> {
    let content = Arc::new("🦀".repeat(4000));
    let next = Arc::new(AtomicUsize::new(0));
    let url = format!(
        "{}/api/v1/conversations/{conversation}/messages",
        app.address
    );
    let senders: Vec<_> = (0..4)
        .map(|_| {
            let (client, url, token) = (app.client.clone(), url.clone(), from.token.clone());
            let (next, content) = (next.clone(), content.clone());
            tokio::spawn(async move {
                let mut seqs = Vec::new();
                while next.fetch_add(1, Ordering::Relaxed) < count {
                    let response = client
                        .post(&url)
                        .bearer_auth(&token)
                        .json(&json!({"content": *content}))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(response.status(), StatusCode::CREATED);
                    let message: Value = response.json().await.unwrap();
                    seqs.push(message["seq"].as_i64().unwrap());
                }
                seqs
            })
        })
        .collect();
    let mut seqs = Vec::with_capacity(count);
    for sender in senders {
        seqs.extend(sender.await.unwrap());
    }
    seqs.sort_unstable();
    seqs
}

/// `chatd_websocket_slow_consumers_dropped_total`, from the server's metrics listener.
async fn slow_consumers_dropped(metrics: u16) -> f64 {
    let scraped = crate::scrape::scrape(metrics).await;
    crate::scrape::sample(
        &scraped,
        "chatd_websocket_slow_consumers_dropped_total",
        &[],
    )
}

/// More 16 KB frames than a connection's queue (1024) plus the socket buffers on both sides
/// of a loopback connection with a 16 KiB receive buffer can hold.
const OVERFLOWING: usize = 2000;

#[tokio::test]
async fn a_consumer_too_slow_for_its_queue_is_closed_with_1013_and_catches_up_by_sync() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (app, metrics) = crate::metrics::spawn_with_metrics(test_config(&dir), dir).await;
    let dropped_before = slow_consumers_dropped(metrics).await;
    let [alice, bob, carol] = app.users(["alice", "bob", "carol"]).await;
    let group = app.group(&alice, &[&bob, &carol]).await;
    // Bob's client stops reading: his queue and the socket buffers fill up.
    let mut slow = open_small_buffered(&app, &bob).await;
    // Carol's client reads as it should, all through the flood.
    let mut healthy = app.ws(&carol).await;
    let carol_reads = tokio::spawn(async move {
        let mut seqs = Vec::with_capacity(OVERFLOWING);
        while seqs.len() < OVERFLOWING {
            let frame = healthy.next_json().await;
            assert_eq!(frame["type"], "new_message", "{frame}");
            seqs.push(frame["message"]["seq"].as_i64().unwrap());
        }
        (healthy, seqs)
    });
    // Bob's client reads again once the server has let him go (his queue overflowed), well
    // within the time the server gives a close frame to get through.
    let (client, health) = (app.client.clone(), format!("{}/health", app.address));
    let bob_reads = tokio::spawn(async move {
        let mut waited = 0;
        loop {
            let body: Value = client
                .get(&health)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if body["connections"] == 1 {
                break;
            }
            waited += 1;
            assert!(waited < 3000, "bob's connection was never let go");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // What was already on its way arrives, then the close; the rest of the queue is gone.
        let mut received = Vec::new();
        let code = loop {
            let message = tokio::time::timeout(Duration::from_secs(5), slow.stream.next())
                .await
                .expect("a frame within 5 s")
                .expect("the connection is open until the close frame")
                .expect("a valid frame");
            match message {
                Message::Text(text) => {
                    let frame: Value = serde_json::from_str(&text).unwrap();
                    assert_eq!(frame["type"], "new_message");
                    received.push(frame["message"]["seq"].as_i64().unwrap());
                }
                Message::Close(frame) => break frame.map(|f| u16::from(f.code)),
                _ => {}
            }
        };
        (received, code)
    });
    let sent = flood(&app, &alice, &group, OVERFLOWING).await;
    let (mut received, code) = bob_reads.await.unwrap();
    assert_eq!(code, Some(1013));
    // Operators see it happen. Counters are process-wide and only grow, and no other test
    // overflows a queue.
    let dropped = slow_consumers_dropped(metrics).await;
    assert!(
        dropped > dropped_before,
        "chatd_websocket_slow_consumers_dropped_total went from {dropped_before} to {dropped}"
    );

    // The healthy member was not held back or cut off with him: every message reached it,
    // each once, and its connection is still open.
    let (mut healthy, mut carol_got) = carol_reads.await.expect("carol received every message");
    carol_got.sort_unstable();
    assert_eq!(carol_got, sent);
    assert_alive(&mut healthy).await;

    // Messages sent concurrently may be announced a little out of seq order.
    received.sort_unstable();
    received.dedup();
    assert!(!received.is_empty() && received.len() < sent.len());
    assert!(received.iter().all(|seq| sent.contains(seq)));

    // Reconnecting and syncing from the last seq before the first gap recovers exactly the
    // messages after it.
    let complete = sent
        .iter()
        .zip(&received)
        .take_while(|(sent, received)| sent == received)
        .count();
    let since = if complete == 0 { 0 } else { sent[complete - 1] };
    let mut ws = open_as(&app, &bob).await;
    assert_connected(&mut ws, &bob, *sent.last().unwrap()).await;
    ws.send_json(json!({"type": "sync", "since_seq": since}))
        .await;
    for seq in &sent[complete..] {
        let frame = ws.next_json().await;
        assert_eq!(frame["type"], "new_message");
        assert_eq!(frame["message"]["seq"], *seq);
    }
    assert_eq!(
        ws.next_json().await,
        json!({"type": "synced", "last_seq": sent.last().unwrap(), "has_more": false})
    );
}

/// A session blocked writing to a full socket still hears the hub: a client that stops
/// reading for good is unregistered at once instead of hanging on forever.
#[tokio::test]
async fn a_consumer_that_never_reads_again_is_let_go_without_reading() {
    let app = spawn_app().await;
    let [alice, bob] = app.users(["alice", "bob"]).await;
    let direct = app.direct(&alice, &bob).await;
    let _never_read = open_small_buffered(&app, &bob).await;
    assert_eq!(open_connections(&app).await, 1);
    flood(&app, &alice, &direct, OVERFLOWING).await;

    let deadline = Instant::now() + Duration::from_secs(20);
    while open_connections(&app).await > 0 {
        assert!(
            Instant::now() < deadline,
            "the overflowing connection is still registered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_server_pings_and_a_client_that_answers_stays_connected() {
    let dir = tempfile::tempdir().unwrap();
    let config = chat_server::Config {
        ws_ping_interval: Duration::from_millis(200),
        ..test_config(&dir)
    };
    let app = spawn_app_with(config, dir).await;
    let alice = app.user("alice").await;
    let mut ws = app.ws(&alice).await;

    // Reading answers pings (tungstenite replies with a pong by itself). Three pings span
    // more than twice the interval, so a server that ignored the answers would have closed
    // the connection by then.
    for _ in 0..3 {
        let message = tokio::time::timeout(Duration::from_secs(10), ws.stream.next())
            .await
            .expect("the server pings within 10 s")
            .expect("the connection stays open")
            .unwrap();
        assert!(
            matches!(message, Message::Ping(_)),
            "expected only pings, got {message:?}"
        );
    }
    assert_alive(&mut ws).await;
}

/// Waits for the refusal that ends a connection whose token no longer holds: an error frame
/// with `code` and `detail`, then close 1008 `token no longer valid`. Pings are answered
/// while waiting, so the heartbeat itself keeps the connection alive until then.
async fn assert_dropped_at_a_heartbeat(ws: &mut Ws, code: &str, detail: &str) {
    let mut error = None;
    let until = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let message = tokio::time::timeout_at(until, ws.stream.next())
            .await
            .expect("the connection is dropped within 20 s")
            .expect("a close frame before the end")
            .expect("a valid frame");
        match message {
            Message::Text(text) => {
                assert!(error.is_none(), "one error frame, then the close: {text}");
                let frame: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(
                    frame,
                    json!({"type": "error", "code": code, "detail": detail})
                );
                error = Some(frame);
            }
            Message::Close(frame) => {
                assert!(error.is_some(), "the close comes after an error frame");
                let frame = frame.expect("the close says why");
                assert_eq!(u16::from(frame.code), 1008);
                assert_eq!(frame.reason.as_str(), "token no longer valid");
                return;
            }
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected the error and the close, got {other:?}"),
        }
    }
}

/// Runs `sql` on the server's database behind its back, as another node or an operator would.
fn edit_database(app: &TestApp, sql: &str) {
    let db = chat_sqlite::Database::open(
        app.dir.path().join("chat.db").to_str().unwrap(),
        &chat_sqlite::SqliteOptions::default(),
    )
    .unwrap();
    diesel::connection::SimpleConnection::batch_execute(&mut *db.conn().unwrap(), sql).unwrap();
}

#[tokio::test]
async fn a_token_withdrawn_behind_the_servers_back_is_noticed_at_the_next_heartbeat() {
    let dir = tempfile::tempdir().unwrap();
    let config = chat_server::Config {
        ws_ping_interval: Duration::from_millis(200),
        ..test_config(&dir)
    };
    let app = spawn_app_with(config, dir).await;
    let [alice, bob, carol] = app.users(["alice", "bob", "carol"]).await;
    let mut alice_ws = app.ws(&alice).await;
    let mut bob_ws = app.ws(&bob).await;
    let mut carol_ws = app.ws(&carol).await;

    // Another node changed alice's password (her token generation moved on) and
    // deactivated bob; this node heard of neither.
    edit_database(
        &app,
        &format!(
            "UPDATE users SET token_generation = token_generation + 1 WHERE id = '{}';
             UPDATE users SET is_active = 0 WHERE id = '{}';",
            alice.id, bob.id
        ),
    );
    assert_dropped_at_a_heartbeat(&mut alice_ws, "unauthorized", "token has been revoked").await;
    assert_dropped_at_a_heartbeat(&mut bob_ws, "unauthorized", "account is deactivated").await;
    // Carol's token still holds: her connection goes through heartbeats untouched.
    for _ in 0..3 {
        let message = tokio::time::timeout(Duration::from_secs(10), carol_ws.stream.next())
            .await
            .expect("the server pings within 10 s")
            .expect("the connection stays open")
            .unwrap();
        assert!(matches!(message, Message::Ping(_)), "{message:?}");
    }
    assert_alive(&mut carol_ws).await;
}

#[tokio::test]
async fn a_token_that_expires_while_connected_is_noticed_at_the_next_heartbeat() {
    // A token from before sessions: its own expiry ends the connection. (A session's token
    // holds while its session does: tests/api/sessions.rs.)
    let dir = tempfile::tempdir().unwrap();
    let config = chat_server::Config {
        ws_ping_interval: Duration::from_millis(200),
        ..crate::helpers::with_known_secret(&dir)
    };
    let app = spawn_app_with(config, dir).await;
    let mut alice = app.user("alice").await;
    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "sub": alice.id, "iat": now, "exp": now + 2, "jti": "short-lived",
        "iss": "chatd", "aud": "chatd-api", "gen": 0,
    });
    alice.token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(crate::helpers::TEST_SECRET.as_bytes()),
    )
    .unwrap();
    let mut ws = app.ws(&alice).await;
    assert_dropped_at_a_heartbeat(&mut ws, "token_expired", "token has expired; log in again")
        .await;
}

#[tokio::test]
async fn a_client_that_never_answers_pings_is_closed_with_1008() {
    let dir = tempfile::tempdir().unwrap();
    let config = chat_server::Config {
        ws_ping_interval: Duration::from_millis(200),
        ..test_config(&dir)
    };
    let app = spawn_app_with(config, dir).await;
    let alice = app.user("alice").await;
    let mut ws = app.ws(&alice).await;

    // Not reading means not answering: the server gives up after twice the interval.
    let deadline = Instant::now() + Duration::from_secs(20);
    while open_connections(&app).await > 0 {
        assert!(
            Instant::now() < deadline,
            "the silent client is still connected"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(ws.close_code().await, Some(1008));
}

#[tokio::test]
async fn a_refused_direct_message_creates_no_conversation_and_names_the_bad_field() {
    let app = spawn_app().await;
    let [alice, bob] = app.users(["alice", "bob"]).await;
    let mut ws = app.ws(&alice).await;

    ws.send_json(json!({"type": "message", "recipient_id": bob.id, "content": "   "}))
        .await;
    let error = ws.next_json().await;
    assert_eq!(error["code"], "validation_error");
    assert_eq!(error["errors"][0]["field"], "content");

    ws.send_json(json!({"type": "message", "recipient_id": alice.id, "content": "me?"}))
        .await;
    let error = ws.next_json().await;
    assert_eq!(error["code"], "validation_error");
    assert_eq!(error["errors"][0]["field"], "recipient_id");

    let inbox: Vec<Value> = app
        .get("/api/v1/conversations", &alice.token)
        .await
        .json()
        .await
        .unwrap();
    assert!(inbox.is_empty(), "nothing was created: {inbox:?}");
}

#[tokio::test]
async fn messages_sent_back_to_back_on_one_socket_are_stored_and_delivered_in_the_order_sent() {
    let app = spawn_app().await;
    let [alice, bob] = app.users(["alice", "bob"]).await;
    let group = app.group(&alice, &[&bob]).await;
    let mut alice_ws = app.ws(&alice).await;
    let mut bob_ws = app.ws(&bob).await;

    // Nothing is awaited between sends: the connection has many in flight at once.
    const COUNT: usize = 200;
    for i in 0..COUNT {
        alice_ws
            .send_message(&group, &format!("m{i}"), &format!("c-{i}"))
            .await;
    }

    for ws in [&mut alice_ws, &mut bob_ws] {
        let mut last_seq = 0;
        for i in 0..COUNT {
            let frame = ws.next_of_type("new_message").await;
            assert_eq!(frame["message"]["content"], format!("m{i}"));
            let seq = frame["message"]["seq"].as_i64().unwrap();
            assert!(seq > last_seq, "seqs rise in the order sent");
            last_seq = seq;
        }
    }
    let stored = app
        .get(
            &format!("/api/v1/conversations/{group}/messages?limit=100"),
            &bob.token,
        )
        .await
        .json::<Value>()
        .await
        .unwrap();
    let contents: Vec<&str> = stored
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = (COUNT - 100..COUNT).map(|i| format!("m{i}")).collect();
    assert_eq!(contents, expected);
}
