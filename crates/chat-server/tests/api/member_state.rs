//! What a member sets for themselves: the read marker set explicitly ("mark unread"), and the
//! settings, mute and archive; over REST and WebSocket, who hears of each change, and what
//! the inbox and the unread badge make of them.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, spawn_app};

const SILENCE: Duration = Duration::from_millis(300);

async fn set_marker(
    app: &TestApp,
    user: &TestUser,
    conversation: &str,
    seq: Value,
) -> reqwest::Response {
    app.put(
        &format!("/api/v1/conversations/{conversation}/read"),
        &user.token,
        json!({"last_read_seq": seq}),
    )
    .await
}

async fn set_settings(
    app: &TestApp,
    user: &TestUser,
    conversation: &str,
    body: Value,
) -> reqwest::Response {
    app.put(
        &format!("/api/v1/conversations/{conversation}/settings"),
        &user.token,
        body,
    )
    .await
}

async fn unread(app: &TestApp, user: &TestUser) -> Value {
    let response = app.get("/api/v1/messages/unread/count", &user.token).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// The ids of the user's inbox with `query` (e.g. `?archived=true`), in order.
async fn inbox(app: &TestApp, user: &TestUser, query: &str) -> Vec<String> {
    let response = app
        .get(&format!("/api/v1/conversations{query}"), &user.token)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let entries: Vec<Value> = response.json().await.unwrap();
    entries
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn details(app: &TestApp, user: &TestUser, conversation: &str) -> Value {
    let response = app
        .get(
            &format!("/api/v1/conversations/{conversation}"),
            &user.token,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

fn seq(value: &Value) -> i64 {
    value
        .as_i64()
        .unwrap_or_else(|| panic!("{value} is not a seq"))
}

#[tokio::test]
async fn marking_unread_moves_the_marker_back_and_tells_only_the_readers_own_devices() {
    let app = spawn_app().await;
    let [alice, bob] = app.users(["alice", "bob"]).await;
    let direct = app.direct(&alice, &bob).await;
    let first = app.send(&alice, &direct, "one").await;
    app.send(&alice, &direct, "two").await;
    let third = app.send(&alice, &direct, "three").await;
    let read = app
        .put(
            &format!("/api/v1/messages/{}/read", third["id"].as_str().unwrap()),
            &bob.token,
            json!({}),
        )
        .await;
    assert_eq!(read.status(), StatusCode::OK);
    assert_eq!(unread(&app, &bob).await["unread_count"], 0);
    let mut alice_ws = app.ws(&alice).await;
    let mut phone = app.ws(&bob).await;
    let mut laptop = app.ws(&bob).await;

    let response = set_marker(&app, &bob, &direct, first["seq"].clone()).await;
    assert_eq!(response.status(), StatusCode::OK);
    let marker: Value = response.json().await.unwrap();
    assert_eq!(marker["conversation_id"], direct.as_str());
    assert_eq!(marker["user_id"], bob.id.as_str());
    assert_eq!(marker["last_read_seq"], first["seq"]);
    assert_eq!(marker["message_id"], first["id"]);
    assert_eq!(marker["unread_count"], 2);
    assert!(seq(&marker["seq"]) > seq(&third["seq"]), "{marker}");

    for ws in [&mut phone, &mut laptop] {
        let frame = ws.next_json().await;
        assert_eq!(
            frame,
            json!({
                "type": "read_marker_updated",
                "seq": marker["seq"],
                "conversation_id": direct,
                "last_read_seq": first["seq"],
                "unread_count": 2,
                "unread_mentions": 0,
                "timestamp": frame["timestamp"],
            })
        );
        DateTime::parse_from_rfc3339(frame["timestamp"].as_str().unwrap()).unwrap();
    }
    // A move back tells the others nothing.
    alice_ws.assert_silent(SILENCE).await;

    assert_eq!(unread(&app, &bob).await["unread_count"], 2);
    let history: Vec<Value> = app
        .get(
            &format!("/api/v1/conversations/{direct}/messages"),
            &bob.token,
        )
        .await
        .json()
        .await
        .unwrap();
    let read: Vec<bool> = history.iter().map(|m| m["is_read"] == true).collect();
    assert_eq!(read, [true, false, false]);

    // Zero marks everything unread.
    let none: Value = set_marker(&app, &bob, &direct, json!(0))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            &none["last_read_seq"],
            &none["message_id"],
            &none["unread_count"]
        ),
        (&json!(0), &Value::Null, &json!(3))
    );
    assert!(seq(&none["seq"]) > seq(&marker["seq"]));
}

#[tokio::test]
async fn setting_the_marker_forward_over_the_websocket_is_a_read_receipt_for_the_others() {
    let app = spawn_app().await;
    let [alice, bob, carol] = app.users(["alice", "bob", "carol"]).await;
    let group = app.group(&alice, &[&bob, &carol]).await;
    app.send(&alice, &group, "one").await;
    let last = app.send(&alice, &group, "two").await;
    let mut alice_ws = app.ws(&alice).await;
    let mut carol_ws = app.ws(&carol).await;
    let mut phone = app.ws(&bob).await;
    let mut laptop = app.ws(&bob).await;

    // Past the newest message: all read, onto the newest.
    phone
        .send_json(json!({
            "type": "set_read_marker",
            "conversation_id": group,
            "last_read_seq": seq(&last["seq"]) + 1000,
            "ref": "s-1",
        }))
        .await;
    let mine = phone.next_of_type("read_marker_updated").await;
    assert_eq!(mine["conversation_id"], group.as_str());
    assert_eq!(mine["last_read_seq"], last["seq"]);
    assert_eq!(mine["unread_count"], 0);
    assert_eq!(laptop.next_of_type("read_marker_updated").await, mine);
    for ws in [&mut alice_ws, &mut carol_ws] {
        let receipt = ws.next_json().await;
        assert_eq!(receipt["type"], "message_read", "{receipt}");
        assert_eq!(receipt["user_id"], bob.id.as_str());
        assert_eq!(receipt["message_id"], last["id"]);
        assert_eq!(receipt["last_read_seq"], last["seq"]);
        assert_eq!(receipt["seq"], mine["seq"]);
    }
    // The reader's devices get the marker, not a receipt about themselves.
    phone.assert_silent(SILENCE).await;
    laptop.assert_silent(SILENCE).await;
    assert_eq!(unread(&app, &bob).await["unread_count"], 0);

    // A negative seq is refused with the frame's ref, and changes nothing.
    phone
        .send_json(json!({
            "type": "set_read_marker",
            "conversation_id": group,
            "last_read_seq": -1,
            "ref": "s-2",
        }))
        .await;
    let error = phone.next_json().await;
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(error["code"], "validation_error");
    assert_eq!(error["ref"], "s-2");
    alice_ws.assert_silent(SILENCE).await;
}

#[tokio::test]
async fn mark_read_receipts_carry_the_position_of_the_move() {
    let app = spawn_app().await;
    let [alice, bob] = app.users(["alice", "bob"]).await;
    let direct = app.direct(&alice, &bob).await;
    let sent = app.send(&alice, &direct, "hi").await;
    let mut alice_ws = app.ws(&alice).await;
    let response = app
        .put(
            &format!("/api/v1/messages/{}/read", sent["id"].as_str().unwrap()),
            &bob.token,
            json!({}),
        )
        .await;
    let receipt: Value = response.json().await.unwrap();
    assert!(seq(&receipt["seq"]) > seq(&sent["seq"]), "{receipt}");
    let frame = alice_ws.next_of_type("message_read").await;
    assert_eq!(frame["seq"], receipt["seq"]);
}

#[tokio::test]
async fn settings_reach_only_the_members_own_devices_and_show_in_what_they_read() {
    let app = spawn_app().await;
    let [alice, bob] = app.users(["alice", "bob"]).await;
    let direct = app.direct(&alice, &bob).await;
    let sent = app.send(&alice, &direct, "hi").await;
    let mut alice_ws = app.ws(&alice).await;
    let mut phone = app.ws(&bob).await;
    let mut laptop = app.ws(&bob).await;
    let until = (Utc::now() + chrono::Duration::hours(8)).to_rfc3339();

    let response = set_settings(
        &app,
        &bob,
        &direct,
        json!({"muted_until": until, "archived": true}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let settings: Value = response.json().await.unwrap();
    assert_eq!(settings["conversation_id"], direct.as_str());
    assert_eq!(settings["archived"], true);
    let muted_until: DateTime<Utc> = settings["muted_until"].as_str().unwrap().parse().unwrap();
    assert_eq!(muted_until, until.parse::<DateTime<Utc>>().unwrap());
    assert!(seq(&settings["seq"]) > seq(&sent["seq"]));
    for ws in [&mut phone, &mut laptop] {
        let frame = ws.next_json().await;
        assert_eq!(frame["type"], "conversation_settings_updated", "{frame}");
        assert_eq!(frame["seq"], settings["seq"]);
        assert_eq!(frame["conversation_id"], direct.as_str());
        assert_eq!(frame["muted_until"], settings["muted_until"]);
        assert_eq!(frame["archived"], true);
        assert_eq!(frame.as_object().unwrap().len(), 6, "{frame}");
    }
    alice_ws.assert_silent(SILENCE).await;

    let mine = details(&app, &bob, &direct).await;
    assert_eq!(
        (&mine["muted_until"], &mine["archived"]),
        (&settings["muted_until"], &json!(true))
    );
    let theirs = details(&app, &alice, &direct).await;
    assert_eq!(
        (&theirs["muted_until"], &theirs["archived"]),
        (&Value::Null, &json!(false)),
        "settings are the member's own"
    );
    let entries: Vec<Value> = app
        .get("/api/v1/conversations", &bob.token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(entries[0]["archived"], true);
    assert_eq!(entries[0]["muted_until"], settings["muted_until"]);

    // A field left out stays; a mute in the past is no mute.
    let past = (Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let unmuted: Value = set_settings(&app, &bob, &direct, json!({"muted_until": past}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (&unmuted["muted_until"], &unmuted["archived"]),
        (&Value::Null, &json!(true))
    );
    let cleared: Value = set_settings(&app, &bob, &direct, json!({"archived": false}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(cleared["archived"], false);
    assert!(seq(&cleared["seq"]) > seq(&unmuted["seq"]));
}

#[tokio::test]
async fn the_inbox_filter_follows_archiving_and_a_new_message_brings_a_conversation_back_unless_muted()
 {
    let app = spawn_app().await;
    let [alice, bob, carol] = app.users(["alice", "bob", "carol"]).await;
    let with_alice = app.direct(&bob, &alice).await;
    let with_carol = app.direct(&bob, &carol).await;
    app.send(&alice, &with_alice, "hi").await;
    app.send(&carol, &with_carol, "hey").await;

    let archived = set_settings(&app, &bob, &with_alice, json!({"archived": true})).await;
    assert_eq!(archived.status(), StatusCode::OK);
    assert_eq!(
        inbox(&app, &bob, "?archived=true").await,
        vec![with_alice.clone()]
    );
    assert_eq!(
        inbox(&app, &bob, "?archived=false").await,
        vec![with_carol.clone()]
    );
    // Left out, the filter lists everything, as before archiving existed.
    assert_eq!(inbox(&app, &bob, "").await.len(), 2);
    assert_eq!(
        inbox(&app, &alice, "?archived=false").await,
        vec![with_alice.clone()]
    );

    app.send(&alice, &with_alice, "are you there?").await;
    assert!(inbox(&app, &bob, "?archived=true").await.is_empty());
    assert_eq!(
        inbox(&app, &bob, "?archived=false&limit=1").await,
        vec![with_alice.clone()]
    );

    let until = (Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    set_settings(
        &app,
        &bob,
        &with_alice,
        json!({"archived": true, "muted_until": until}),
    )
    .await;
    app.send(&alice, &with_alice, "still there?").await;
    assert_eq!(
        inbox(&app, &bob, "?archived=true").await,
        vec![with_alice.clone()]
    );
    assert_eq!(details(&app, &bob, &with_alice).await["archived"], true);
}

#[tokio::test]
async fn muted_conversations_stay_out_of_the_badge_but_keep_their_own_count() {
    let app = spawn_app().await;
    let [alice, bob, carol] = app.users(["alice", "bob", "carol"]).await;
    let noisy = app.group(&alice, &[&bob, &carol]).await;
    let quiet = app.direct(&carol, &bob).await;
    for text in ["1", "2", "3"] {
        app.send(&alice, &noisy, text).await;
    }
    app.send(&carol, &quiet, "hello").await;
    assert_eq!(unread(&app, &bob).await["unread_count"], 4);

    let until = (Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    set_settings(&app, &bob, &noisy, json!({"muted_until": until})).await;
    let counts = unread(&app, &bob).await;
    assert_eq!(counts["unread_count"], 1, "{counts}");
    let mut entries = counts["conversations"].as_array().unwrap().clone();
    entries.sort_by_key(|e| e["unread_count"].as_u64());
    assert_eq!(
        entries,
        [
            json!({"conversation_id": quiet, "unread_count": 1, "unread_mentions": 0, "muted": false}),
            json!({"conversation_id": noisy, "unread_count": 3, "unread_mentions": 0, "muted": true}),
        ]
    );
    // Carol's badge is her own.
    assert_eq!(unread(&app, &carol).await["unread_count"], 3);

    set_settings(&app, &bob, &noisy, json!({"muted_until": null})).await;
    assert_eq!(unread(&app, &bob).await["unread_count"], 4);
}

#[tokio::test]
async fn outsiders_cannot_set_a_marker_or_settings_and_change_nothing() {
    let app = spawn_app().await;
    let [alice, bob, eve] = app.users(["alice", "bob", "eve"]).await;
    let direct = app.direct(&alice, &bob).await;
    let sent = app.send(&alice, &direct, "hi").await;
    let mut alice_ws = app.ws(&alice).await;
    let mut bob_ws = app.ws(&bob).await;
    let unknown = uuid::Uuid::new_v4().to_string();

    for conversation in [&direct, &unknown] {
        let refused = set_marker(&app, &eve, conversation, sent["seq"].clone()).await;
        assert_eq!(refused.status(), StatusCode::NOT_FOUND);
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["code"], "conversation_not_found", "{body}");
        let refused = set_settings(&app, &eve, conversation, json!({"archived": true})).await;
        assert_eq!(refused.status(), StatusCode::NOT_FOUND);
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["code"], "conversation_not_found", "{body}");
    }
    let mut eve_ws = app.ws(&eve).await;
    eve_ws
        .send_json(json!({
            "type": "set_read_marker",
            "conversation_id": direct,
            "last_read_seq": 0,
            "ref": "e-1",
        }))
        .await;
    let error = eve_ws.next_json().await;
    assert_eq!(
        (&error["type"], &error["code"], &error["ref"]),
        (
            &json!("error"),
            &json!("conversation_not_found"),
            &json!("e-1")
        )
    );
    alice_ws.assert_silent(SILENCE).await;
    bob_ws.assert_silent(SILENCE).await;
    assert_eq!(unread(&app, &bob).await["unread_count"], 1);
    assert_eq!(details(&app, &bob, &direct).await["archived"], false);
}

#[tokio::test]
async fn bad_bodies_and_filters_are_422_validation_errors() {
    let app = spawn_app().await;
    let [alice, bob] = app.users(["alice", "bob"]).await;
    let direct = app.direct(&alice, &bob).await;
    let read = format!("/api/v1/conversations/{direct}/read");
    let settings = format!("/api/v1/conversations/{direct}/settings");
    for (path, body) in [
        (&read, json!({})),
        (&read, json!({"last_read_seq": -1})),
        (&read, json!({"last_read_seq": "7"})),
        (&read, json!({"last_read_seq": 1.5})),
        (&read, json!({"last_read_seq": 1, "extra": true})),
        (&settings, json!({})),
        (&settings, json!({"archived": "yes"})),
        (&settings, json!({"muted_until": "tomorrow"})),
        (&settings, json!({"muted_until": 12})),
        (&settings, json!({"pinned": true})),
    ] {
        let response = app.put(path, &bob.token, body.clone()).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{path} {body}"
        );
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["code"], "validation_error", "{path} {body}: {error}");
        assert!(error["detail"].is_string());
    }
    for query in ["?archived=maybe", "?archived=1x"] {
        let response = app
            .get(&format!("/api/v1/conversations{query}"), &bob.token)
            .await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{query}"
        );
    }
    assert_eq!(details(&app, &bob, &direct).await["archived"], false);
}
