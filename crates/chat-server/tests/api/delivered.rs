//! Delivered receipts end to end: a message reaching a member's socket, or fetched by them,
//! tells the other members `message_delivered` (coalesced), and every read of the
//! conversation shows the member's `last_delivered_seq` beside `last_read_seq`.

use std::time::Duration;

use chat_postgres::testing::TestDatabase;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, spawn_app_with, spawn_delivering_app, test_config};
use crate::postgres::spawn_delivering_node;
use crate::ws::Ws;

/// Frames until the `message_delivered` about `user` reaching `seq` or further; returns
/// every `message_delivered` seen on the way (that one last).
async fn until_delivered(ws: &mut Ws, user: &TestUser, seq: i64) -> Vec<Value> {
    let mut seen = Vec::new();
    loop {
        let frame = ws.next_of_type("message_delivered").await;
        seen.push(frame.clone());
        if frame["user_id"] == user.id.as_str() && frame["last_delivered_seq"].as_i64() >= Some(seq)
        {
            return seen;
        }
    }
}

/// A member as `GET /conversations/{id}` shows them to `reader`.
async fn participant(
    app: &TestApp,
    reader: &TestUser,
    conversation: &str,
    who: &TestUser,
) -> Value {
    let response = app
        .get(
            &format!("/api/v1/conversations/{conversation}"),
            &reader.token,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let details: Value = response.json().await.unwrap();
    details["participants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == who.id.as_str())
        .cloned()
        .expect("a participant")
}

async fn a_message_reaching_a_socket_is_delivered(app: &TestApp) {
    let [alice, bob, eve] = app.users(["alice", "bob", "eve"]).await;
    let direct = app.direct(&alice, &bob).await;
    let mut alices = app.ws(&alice).await;
    let mut bobs = app.ws(&bob).await;
    let mut eves = app.ws(&eve).await;

    let sent = app.send(&alice, &direct, "hello").await;
    let seq = sent["seq"].as_i64().unwrap();
    let arrived = bobs.next_of_type("new_message").await;
    assert_eq!(arrived["message"]["id"], sent["id"]);

    let seen = until_delivered(&mut alices, &bob, seq).await;
    let frame = seen.last().unwrap();
    assert_eq!(frame["conversation_id"], direct.as_str());
    assert_eq!(frame["last_delivered_seq"], seq);
    assert!(
        frame["seq"].as_i64().unwrap() > seq,
        "a position after the message's"
    );
    let shown = participant(app, &alice, &direct, &bob).await;
    assert_eq!(
        (&shown["last_read_seq"], &shown["last_delivered_seq"]),
        (&json!(0), &json!(seq))
    );
    // The sender's own message is delivered to them: sending is reading.
    let own = participant(app, &bob, &direct, &alice).await;
    assert_eq!(
        (&own["last_read_seq"], &own["last_delivered_seq"]),
        (&json!(seq), &json!(seq))
    );

    // Bob is not told of his own delivery, and Eve, in no conversation with them, hears
    // nothing: had either been in the event's audience, the frame would have been queued
    // before Alice got hers, so ahead of the pong.
    for ws in [&mut bobs, &mut eves] {
        ws.send_json(json!({"type": "ping"})).await;
        assert_eq!(ws.next_json().await, json!({"type": "pong"}));
    }
    // Eve cannot read the conversation's members either.
    let response = app
        .get(&format!("/api/v1/conversations/{direct}"), &eve.token)
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_message_reaching_the_recipients_socket_tells_the_sender_it_was_delivered() {
    a_message_reaching_a_socket_is_delivered(&spawn_delivering_app().await).await;
}

#[tokio::test]
async fn on_postgresql_a_message_reaching_the_recipients_socket_is_delivered() {
    let Some(database) = TestDatabase::create("delivered receipts on PostgreSQL") else {
        return;
    };
    a_message_reaching_a_socket_is_delivered(&spawn_delivering_node(&database).await).await;
}

#[tokio::test]
async fn fetching_history_or_the_feed_delivers_what_it_returned() {
    let app = spawn_delivering_app().await;
    let [alice, bob, carol] = app.users(["alice", "bob", "carol"]).await;
    let group = app.group(&alice, &[&bob, &carol]).await;
    app.send(&alice, &group, "one").await;
    let two = app.send(&alice, &group, "two").await["seq"]
        .as_i64()
        .unwrap();
    let mut alices = app.ws(&alice).await;

    // Nobody else was connected: nothing is delivered until they fetch.
    assert_eq!(
        participant(&app, &alice, &group, &bob).await["last_delivered_seq"],
        0
    );
    let history = app
        .get(
            &format!("/api/v1/conversations/{group}/messages"),
            &bob.token,
        )
        .await;
    assert_eq!(history.status(), StatusCode::OK);
    let frame = until_delivered(&mut alices, &bob, two).await.pop().unwrap();
    assert_eq!(frame["last_delivered_seq"], two);

    let three = app.send(&alice, &group, "three").await["seq"]
        .as_i64()
        .unwrap();
    let feed = app.get("/api/v1/sync?since=0", &carol.token).await;
    assert_eq!(feed.status(), StatusCode::OK);
    let frame = until_delivered(&mut alices, &carol, three)
        .await
        .pop()
        .unwrap();
    assert_eq!(frame["last_delivered_seq"], three);
    let shown = participant(&app, &alice, &group, &carol).await;
    assert_eq!(shown["last_delivered_seq"], three);
}

#[tokio::test]
async fn a_burst_to_a_connected_member_is_announced_in_far_fewer_receipts_than_messages() {
    // A flush a second apart: the burst below, sent all at once, would need twenty
    // seconds to spread over twenty flushes.
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(&dir);
    config.delivery_flush_interval = Duration::from_secs(1);
    let app = spawn_app_with(config, dir).await;
    let [alice, bob] = app.users(["alice", "bob"]).await;
    let direct = app.direct(&alice, &bob).await;
    let mut alices = app.ws(&alice).await;
    let mut bobs = app.ws(&bob).await;

    const BURST: usize = 20;
    for i in 0..BURST {
        alices
            .send_message(&direct, &format!("m{i}"), &format!("c{i}"))
            .await;
    }
    let mut last = 0;
    for _ in 0..BURST {
        last = bobs.next_of_type("new_message").await["seq"]
            .as_i64()
            .unwrap();
    }
    let receipts = until_delivered(&mut alices, &bob, last).await;
    assert!(
        receipts.len() < BURST,
        "{} receipts for {BURST} messages",
        receipts.len()
    );
    let seqs: Vec<i64> = receipts
        .iter()
        .map(|r| r["last_delivered_seq"].as_i64().unwrap())
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "forward only: {seqs:?}"
    );
}

#[tokio::test]
async fn marking_unread_leaves_what_was_delivered_and_the_feed_replays_receipts() {
    let app = spawn_delivering_app().await;
    let [alice, bob] = app.users(["alice", "bob"]).await;
    let direct = app.direct(&alice, &bob).await;
    let seq = app.send(&alice, &direct, "hello").await["seq"]
        .as_i64()
        .unwrap();
    let sent = app.send(&alice, &direct, "again").await;
    let read = app
        .put(
            &format!("/api/v1/messages/{}/read", sent["id"].as_str().unwrap()),
            &bob.token,
            json!({}),
        )
        .await;
    assert_eq!(read.status(), StatusCode::OK);
    let unread = app
        .put(
            &format!("/api/v1/conversations/{direct}/read"),
            &bob.token,
            json!({"last_read_seq": seq}),
        )
        .await;
    assert_eq!(unread.status(), StatusCode::OK);
    let again = sent["seq"].as_i64().unwrap();
    let shown = participant(&app, &alice, &direct, &bob).await;
    assert_eq!(
        (&shown["last_read_seq"], &shown["last_delivered_seq"]),
        (&json!(seq), &json!(again)),
        "read was received"
    );
    // Alice's feed replays Bob's delivered marker as a message_delivered.
    let feed: Value = app
        .get("/api/v1/sync?since=0", &alice.token)
        .await
        .json()
        .await
        .unwrap();
    let receipts: Vec<&Value> = feed["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "message_delivered")
        .collect();
    assert_eq!(receipts.len(), 1, "{feed}");
    assert_eq!(receipts[0]["user_id"], bob.id.as_str());
    assert_eq!(receipts[0]["last_delivered_seq"], again);
}

#[tokio::test]
async fn the_openapi_document_shows_each_participants_read_and_delivered_markers() {
    let app = spawn_delivering_app().await;
    let document = app.openapi().await;
    let participant = &document["components"]["schemas"]["ParticipantResponse"];
    for field in ["last_read_seq", "last_delivered_seq"] {
        let property = &participant["properties"][field];
        assert_eq!(property["type"], "integer", "{field}: {participant}");
        assert!(
            participant["required"]
                .as_array()
                .unwrap()
                .contains(&json!(field)),
            "{field} is always there: {participant}"
        );
    }
    let example = &document["components"]["schemas"]["SyncResponse"]["example"];
    assert!(
        example["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "message_delivered"),
        "{example}"
    );
}
