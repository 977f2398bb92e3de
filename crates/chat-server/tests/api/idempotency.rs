//! Retry keys (`client_message_id`): one key names one message in one conversation.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, spawn_app};

async fn post_message(
    app: &TestApp,
    from: &TestUser,
    conversation: &str,
    body: Value,
) -> (StatusCode, Value) {
    let response = app
        .post(
            &format!("/api/v1/conversations/{conversation}/messages"),
            &from.token,
            body,
        )
        .await;
    (response.status(), response.json().await.unwrap())
}

async fn history(app: &TestApp, viewer: &TestUser, conversation: &str) -> Vec<Value> {
    app.get(
        &format!("/api/v1/conversations/{conversation}/messages"),
        &viewer.token,
    )
    .await
    .json()
    .await
    .unwrap()
}

#[tokio::test]
async fn the_same_retry_key_in_another_conversation_is_another_message() {
    let app = spawn_app().await;
    let [alice, bob, carol] = app.users(["alice", "bob", "carol"]).await;
    let with_bob = app.direct(&alice, &bob).await;
    let with_carol = app.direct(&alice, &carol).await;

    let (status, to_bob) = post_message(
        &app,
        &alice,
        &with_bob,
        json!({"content": "hi Bob", "client_message_id": "same"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, to_carol) = post_message(
        &app,
        &alice,
        &with_carol,
        json!({"content": "hi Carol", "client_message_id": "same"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{to_carol}");
    assert_ne!(to_carol["id"], to_bob["id"]);
    assert_eq!(to_carol["conversation_id"], with_carol.as_str());
    assert_eq!(to_carol["content"], "hi Carol");

    let carol_sees = history(&app, &carol, &with_carol).await;
    assert_eq!(carol_sees.len(), 1);
    assert_eq!(carol_sees[0]["content"], "hi Carol");
}

#[tokio::test]
async fn a_retry_key_reused_for_other_content_is_a_409_and_stores_nothing() {
    let app = spawn_app().await;
    let [alice, bob] = app.users(["alice", "bob"]).await;
    let direct = app.direct(&alice, &bob).await;
    let (status, first) = post_message(
        &app,
        &alice,
        &direct,
        json!({"content": "the first", "client_message_id": "k"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);

    let (status, error) = post_message(
        &app,
        &alice,
        &direct,
        json!({"content": "something else", "client_message_id": "k"}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    assert_eq!(error["code"], "idempotency_conflict");
    assert!(
        error["detail"]
            .as_str()
            .unwrap()
            .contains("client_message_id"),
        "{error}"
    );

    let stored = history(&app, &bob, &direct).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["id"], first["id"]);
    assert_eq!(stored[0]["content"], "the first");
}

#[tokio::test]
async fn a_retry_returns_the_stored_message_and_uses_up_no_seq() {
    let app = spawn_app().await;
    let [alice, bob] = app.users(["alice", "bob"]).await;
    let direct = app.direct(&alice, &bob).await;
    let body = json!({"content": "once", "client_message_id": "s-1"});
    let (status, first) = post_message(&app, &alice, &direct, body.clone()).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, again) = post_message(&app, &alice, &direct, body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["seq"], first["seq"]);

    let (_, next) = post_message(&app, &alice, &direct, json!({"content": "next"})).await;
    assert_eq!(
        next["seq"].as_i64().unwrap(),
        first["seq"].as_i64().unwrap() + 1
    );
}

#[tokio::test]
async fn over_the_websocket_a_conflicting_retry_gets_an_error_frame_and_stores_nothing() {
    let app = spawn_app().await;
    let [alice, bob] = app.users(["alice", "bob"]).await;
    let direct = app.direct(&alice, &bob).await;
    let mut ws = app.ws(&alice).await;
    ws.send_message(&direct, "first", "w-1").await;
    let sent = ws.next_of_type("new_message").await;
    assert_eq!(sent["message"]["content"], "first");

    ws.send_message(&direct, "changed", "w-1").await;
    let error = ws.next_json().await;
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(error["code"], "idempotency_conflict", "{error}");
    assert_eq!(error["ref"], "w-1");
    assert_eq!(history(&app, &bob, &direct).await.len(), 1);
}

#[tokio::test]
async fn a_member_removed_from_a_group_gets_a_new_direct_message_not_the_old_group_one() {
    let app = spawn_app().await;
    let [alice, bob] = app.users(["alice", "bob"]).await;
    let group = app.group(&alice, &[&bob]).await;
    let mut bob_ws = app.ws(&bob).await;
    bob_ws.send_message(&group, "in the group", "old-key").await;
    let old = bob_ws.next_of_type("new_message").await;
    let removed = app
        .delete(
            &format!("/api/v1/conversations/{group}/members/{}", bob.id),
            &alice.token,
        )
        .await;
    assert!(removed.status().is_success());

    bob_ws
        .send_json(json!({
            "type": "message",
            "recipient_id": alice.id,
            "content": "just to you",
            "client_message_id": "old-key",
        }))
        .await;
    let sent = bob_ws.next_of_type("new_message").await;
    assert_ne!(sent["message"]["id"], old["message"]["id"], "{sent}");
    assert_eq!(sent["message"]["content"], "just to you");
    assert_ne!(sent["message"]["conversation_id"], group.as_str());
}
