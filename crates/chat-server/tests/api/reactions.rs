//! Reactions and pins, end to end: over REST and WebSocket, live to every member, `me` as
//! each caller sees it, who may pin, and the refusals (bad emoji, caps, unknown messages).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    TestApp, TestUser, assert_rate_limited, spawn_app, spawn_app_with, spawn_limited_app,
    test_config,
};

/// How long a connection must stay quiet to count as "got nothing".
const SILENCE: Duration = Duration::from_millis(300);

/// `text` percent-encoded byte by byte, as a path segment.
fn encoded(text: &str) -> String {
    text.bytes().map(|b| format!("%{b:02X}")).collect()
}

fn reaction_path(message: &Value, emoji: &str) -> String {
    format!(
        "/api/v1/messages/{}/reactions/{}",
        message["id"].as_str().unwrap(),
        encoded(emoji)
    )
}

async fn react(app: &TestApp, user: &TestUser, message: &Value, emoji: &str) -> reqwest::Response {
    app.put(&reaction_path(message, emoji), &user.token, Value::Null)
        .await
}

async fn unreact(
    app: &TestApp,
    user: &TestUser,
    message: &Value,
    emoji: &str,
) -> reqwest::Response {
    app.delete(&reaction_path(message, emoji), &user.token)
        .await
}

fn pin_path(conversation: &str, message: &Value) -> String {
    format!(
        "/api/v1/conversations/{conversation}/pins/{}",
        message["id"].as_str().unwrap()
    )
}

async fn ok_json(response: reqwest::Response) -> Value {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn refused(response: reqwest::Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert!(body["detail"].is_string(), "{body}");
    body
}

/// The one message of `conversation`'s latest page, as `user` reads it.
async fn read_back(app: &TestApp, user: &TestUser, conversation: &str) -> Value {
    let page: Vec<Value> = app
        .get(
            &format!("/api/v1/conversations/{conversation}/messages"),
            &user.token,
        )
        .await
        .json()
        .await
        .unwrap();
    page.last().cloned().unwrap()
}

fn assert_reaction_frame(frame: &Value, kind: &str, message: &Value, user: &TestUser, count: u64) {
    assert_eq!(frame["type"], kind, "{frame}");
    assert_eq!(frame["message_id"], message["id"], "{frame}");
    assert_eq!(
        frame["conversation_id"], message["conversation_id"],
        "{frame}"
    );
    assert_eq!(frame["user_id"], user.id.as_str(), "{frame}");
    assert_eq!(frame["count"], count, "{frame}");
    assert!(frame["seq"].as_i64().unwrap() > message["seq"].as_i64().unwrap());
    assert!(frame["timestamp"].is_string(), "{frame}");
    assert_eq!(frame.as_object().unwrap().len(), 8, "{frame}");
}

#[tokio::test]
async fn a_reaction_reaches_every_member_live_and_every_read_shows_it_with_me_per_caller() {
    let app = spawn_app().await;
    let [alice, bob, carol] = app.users(["alice", "bob", "carol"]).await;
    let group = app.group(&alice, &[&bob, &carol]).await;
    let message = app.send(&alice, &group, "ship it?").await;
    assert_eq!(message["reactions"], json!([]));
    let (mut alice_ws, mut carol_ws) = (app.ws(&alice).await, app.ws(&carol).await);

    let body = ok_json(react(&app, &bob, &message, "👍").await).await;
    assert_eq!(body["id"], message["id"]);
    assert_eq!(
        body["reactions"],
        json!([{"emoji": "👍", "count": 1, "me": true}])
    );
    let mut seqs = Vec::new();
    for ws in [&mut alice_ws, &mut carol_ws] {
        let frame = ws.next_json().await;
        assert_reaction_frame(&frame, "reaction_added", &message, &bob, 1);
        assert_eq!(frame["emoji"], "👍");
        seqs.push(frame["seq"].clone());
    }
    assert_eq!(seqs[0], seqs[1], "one change, one seq");

    // Reacting again changes nothing and announces nothing.
    let again = ok_json(react(&app, &bob, &message, "👍").await).await;
    assert_eq!(again["reactions"], body["reactions"]);
    alice_ws.assert_silent(SILENCE).await;

    ok_json(react(&app, &carol, &message, "🎉").await).await;
    let added = alice_ws.next_json().await;
    assert_reaction_frame(&added, "reaction_added", &message, &carol, 1);
    ok_json(react(&app, &alice, &message, "👍").await).await;
    assert_reaction_frame(
        &carol_ws.next_of_type("reaction_added").await,
        "reaction_added",
        &message,
        &carol,
        1,
    );
    assert_reaction_frame(
        &carol_ws.next_json().await,
        "reaction_added",
        &message,
        &alice,
        2,
    );

    // Every read shows the reactions, in the order each emoji was first used, with `me`
    // for whoever reads.
    for (user, thumbs_me, party_me) in [
        (&alice, true, false),
        (&bob, true, false),
        (&carol, false, true),
    ] {
        let expected = json!([
            {"emoji": "👍", "count": 2, "me": thumbs_me},
            {"emoji": "🎉", "count": 1, "me": party_me},
        ]);
        assert_eq!(read_back(&app, user, &group).await["reactions"], expected);
        let inbox: Vec<Value> = app
            .get("/api/v1/conversations", &user.token)
            .await
            .json()
            .await
            .unwrap();
        let entry = inbox.iter().find(|c| c["id"] == group.as_str()).unwrap();
        assert_eq!(entry["last_message"]["reactions"], expected);
    }

    // Taking a reaction back; the last one of an emoji takes the emoji away.
    let after = ok_json(unreact(&app, &carol, &message, "🎉").await).await;
    assert_eq!(
        after["reactions"],
        json!([{"emoji": "👍", "count": 2, "me": false}])
    );
    let removed = alice_ws.next_of_type("reaction_removed").await;
    assert_reaction_frame(&removed, "reaction_removed", &message, &carol, 0);
    assert_eq!(removed["emoji"], "🎉");
    assert!(removed["seq"].as_i64() > added["seq"].as_i64());
    // Taking back a reaction one does not have is fine and silent.
    ok_json(unreact(&app, &carol, &message, "🎉").await).await;
    alice_ws.assert_silent(SILENCE).await;
}

#[tokio::test]
async fn a_reaction_must_be_one_emoji_on_a_visible_message_within_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let config = chat_server::Config {
        max_reactions_per_message: 2,
        ..test_config(&dir)
    };
    let app = spawn_app_with(config, dir).await;
    let [alice, bob, eve] = app.users(["alice", "bob", "eve"]).await;
    let direct = app.direct(&alice, &bob).await;
    let message = app.send(&alice, &direct, "hi").await;

    for bad in ["a", "👍👍", "👍 ", ":+1:"] {
        let body = refused(
            react(&app, &bob, &message, bad).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
        )
        .await;
        assert_eq!(body["errors"][0]["field"], "emoji", "{bad:?}: {body}");
    }
    let ghost = json!({"id": uuid::Uuid::new_v4().to_string()});
    refused(
        react(&app, &bob, &ghost, "👍").await,
        StatusCode::NOT_FOUND,
        "message_not_found",
    )
    .await;
    // An outsider cannot tell the message from one that does not exist.
    refused(
        react(&app, &eve, &message, "👍").await,
        StatusCode::NOT_FOUND,
        "message_not_found",
    )
    .await;

    ok_json(react(&app, &alice, &message, "👍").await).await;
    ok_json(react(&app, &alice, &message, "👍🏽").await).await;
    let body = refused(
        react(&app, &bob, &message, "🎉").await,
        StatusCode::CONFLICT,
        "too_many_reactions",
    )
    .await;
    assert!(body["detail"].as_str().unwrap().contains('2'), "{body}");
    // An emoji already there still takes more people.
    let body = ok_json(react(&app, &bob, &message, "👍").await).await;
    assert_eq!(body["reactions"][0]["count"], 2);
    assert_eq!(body["reactions"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn owners_and_admins_pin_in_a_group_either_member_in_a_direct_chat_and_members_hear_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = chat_server::Config {
        max_pins_per_conversation: 2,
        ..test_config(&dir)
    };
    let app = spawn_app_with(config, dir).await;
    let [alice, bob, eve] = app.users(["alice", "bob", "eve"]).await;
    let group = app.group(&alice, &[&bob]).await;
    let first = app.send(&bob, &group, "first").await;
    let second = app.send(&bob, &group, "second").await;
    let third = app.send(&bob, &group, "third").await;
    let mut bob_ws = app.ws(&bob).await;

    // A plain member of a group may not pin; an outsider does not see the group.
    refused(
        app.put(&pin_path(&group, &first), &bob.token, Value::Null)
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    refused(
        app.put(&pin_path(&group, &first), &eve.token, Value::Null)
            .await,
        StatusCode::NOT_FOUND,
        "conversation_not_found",
    )
    .await;
    refused(
        app.get(&format!("/api/v1/conversations/{group}/pins"), &eve.token)
            .await,
        StatusCode::NOT_FOUND,
        "conversation_not_found",
    )
    .await;

    let pinned = ok_json(
        app.put(&pin_path(&group, &first), &alice.token, Value::Null)
            .await,
    )
    .await;
    assert_eq!(pinned["pinned_by"], alice.id.as_str());
    assert!(pinned["pinned_at"].is_string());
    let frame = bob_ws.next_json().await;
    assert_eq!(frame["type"], "message_pinned", "{frame}");
    assert_eq!(frame["message_id"], first["id"]);
    assert_eq!(frame["conversation_id"], group.as_str());
    assert_eq!(frame["user_id"], alice.id.as_str());
    assert!(frame["seq"].as_i64() > third["seq"].as_i64());
    assert!(frame["timestamp"].is_string());
    // Pinning again changes nothing.
    ok_json(
        app.put(&pin_path(&group, &first), &alice.token, Value::Null)
            .await,
    )
    .await;
    bob_ws.assert_silent(SILENCE).await;
    ok_json(
        app.put(&pin_path(&group, &third), &alice.token, Value::Null)
            .await,
    )
    .await;
    refused(
        app.put(&pin_path(&group, &second), &alice.token, Value::Null)
            .await,
        StatusCode::CONFLICT,
        "too_many_pins",
    )
    .await;

    // Members list the pins, the latest first; history shows who pinned.
    let pins: Vec<Value> = ok_json(
        app.get(&format!("/api/v1/conversations/{group}/pins"), &bob.token)
            .await,
    )
    .await
    .as_array()
    .unwrap()
    .clone();
    let ids: Vec<&Value> = pins.iter().map(|p| &p["id"]).collect();
    assert_eq!(ids, [&third["id"], &first["id"]]);
    assert_eq!(
        read_back(&app, &bob, &group).await["pinned_by"],
        alice.id.as_str()
    );

    let unpinned = ok_json(app.delete(&pin_path(&group, &first), &alice.token).await).await;
    assert_eq!(unpinned["pinned_at"], Value::Null);
    assert_eq!(unpinned["pinned_by"], Value::Null);
    let frame = bob_ws.next_of_type("message_unpinned").await;
    assert_eq!(frame["message_id"], first["id"]);
    ok_json(app.delete(&pin_path(&group, &first), &alice.token).await).await;
    bob_ws.assert_silent(SILENCE).await;

    // In a direct conversation either member pins, but only that conversation's messages.
    let direct = app.direct(&alice, &bob).await;
    let hello = app.send(&alice, &direct, "hello").await;
    ok_json(
        app.put(&pin_path(&direct, &hello), &bob.token, Value::Null)
            .await,
    )
    .await;
    refused(
        app.put(&pin_path(&direct, &second), &bob.token, Value::Null)
            .await,
        StatusCode::NOT_FOUND,
        "message_not_found",
    )
    .await;
    refused(
        app.put(
            &pin_path(&direct, &json!({"id": uuid::Uuid::new_v4().to_string()})),
            &bob.token,
            Value::Null,
        )
        .await,
        StatusCode::NOT_FOUND,
        "message_not_found",
    )
    .await;
}

#[tokio::test]
async fn websocket_frames_react_and_pin_like_rest_and_errors_carry_the_ref() {
    let app = spawn_app().await;
    let [alice, bob, eve] = app.users(["alice", "bob", "eve"]).await;
    let group = app.group(&alice, &[&bob]).await;
    let message = app.send(&alice, &group, "hello").await;
    let mut alice_ws = app.ws(&alice).await;
    let mut bob_ws = app.ws(&bob).await;

    bob_ws
        .send_json(
            json!({"type": "react", "message_id": message["id"], "emoji": "❤️", "ref": "r1"}),
        )
        .await;
    for ws in [&mut bob_ws, &mut alice_ws] {
        let frame = ws.next_json().await;
        assert_reaction_frame(&frame, "reaction_added", &message, &bob, 1);
        assert_eq!(frame["emoji"], "❤️");
    }
    bob_ws
        .send_json(json!({"type": "unreact", "message_id": message["id"], "emoji": "❤️"}))
        .await;
    assert_reaction_frame(
        &alice_ws.next_json().await,
        "reaction_removed",
        &message,
        &bob,
        0,
    );
    bob_ws.next_of_type("reaction_removed").await;

    // Refusals come back as error frames with the request's ref, and reach no one else.
    let cases = [
        (
            json!({"type": "react", "message_id": message["id"], "emoji": "nope", "ref": "r2"}),
            "validation_error",
        ),
        (
            json!({"type": "pin", "conversation_id": group, "message_id": message["id"], "ref": "r3"}),
            "forbidden",
        ),
        (
            json!({"type": "unpin", "conversation_id": group, "message_id": message["id"], "ref": "r4"}),
            "forbidden",
        ),
    ];
    for (frame, code) in cases {
        bob_ws.send_json(frame.clone()).await;
        let error = bob_ws.next_json().await;
        assert_eq!(error["type"], "error", "{frame}: {error}");
        assert_eq!(error["code"], code, "{frame}: {error}");
        assert_eq!(error["ref"], frame["ref"], "{frame}: {error}");
    }
    let mut eve_ws = app.ws(&eve).await;
    eve_ws
        .send_json(
            json!({"type": "react", "message_id": message["id"], "emoji": "👍", "ref": "r5"}),
        )
        .await;
    let error = eve_ws.next_json().await;
    assert_eq!(
        (&error["code"], &error["ref"]),
        (&json!("message_not_found"), &json!("r5"))
    );
    alice_ws.assert_silent(SILENCE).await;

    // The owner pins and unpins over the socket; both members hear each.
    alice_ws
        .send_json(json!({"type": "pin", "conversation_id": group, "message_id": message["id"]}))
        .await;
    for ws in [&mut alice_ws, &mut bob_ws] {
        let frame = ws.next_json().await;
        assert_eq!(frame["type"], "message_pinned", "{frame}");
        assert_eq!(frame["user_id"], alice.id.as_str());
    }
    alice_ws
        .send_json(json!({"type": "unpin", "conversation_id": group, "message_id": message["id"]}))
        .await;
    for ws in [&mut alice_ws, &mut bob_ws] {
        let frame = ws.next_json().await;
        assert_eq!(frame["type"], "message_unpinned", "{frame}");
        assert_eq!(frame["message_id"], message["id"]);
    }
}

#[tokio::test]
async fn reacting_faster_than_the_budget_is_429_and_leaves_sending_alone() {
    let app = spawn_limited_app(|config| config.messages_per_second = 1).await;
    let [alice, bob] = app.users(["alice", "bob"]).await;
    let direct = app.direct(&alice, &bob).await;
    let message = app.send(&alice, &direct, "hi").await;
    // A budget of 1 a second with room for 2 at once.
    ok_json(react(&app, &bob, &message, "👍").await).await;
    ok_json(unreact(&app, &bob, &message, "👍").await).await;
    assert_rate_limited(react(&app, &bob, &message, "👍").await, 1).await;
    app.send(&bob, &direct, "sending still works").await;
}
