//! Mentions: `@username` and `@all` in what is sent over REST and the WebSocket, the
//! `mentions` every read and frame carries, how edits and deletes change them, and the
//! `unread_mentions` of the inbox and of `GET /messages/unread/count`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, spawn_app};

fn id(message: &Value) -> &str {
    message["id"].as_str().unwrap()
}

/// The ids of `users`, in the order `mentions` lists them: ascending.
fn ids(users: &[&TestUser]) -> Value {
    let mut ids: Vec<&str> = users.iter().map(|u| u.id.as_str()).collect();
    ids.sort();
    json!(ids)
}

async fn json_of(app: &TestApp, path: &str, user: &TestUser) -> Value {
    let response = app.get(path, &user.token).await;
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.json().await.unwrap()
}

/// The message `message_id` as `user`'s history shows it.
async fn read(app: &TestApp, user: &TestUser, conversation: &str, message_id: &str) -> Value {
    json_of(
        app,
        &format!("/api/v1/conversations/{conversation}/messages"),
        user,
    )
    .await
    .as_array()
    .unwrap()
    .iter()
    .find(|m| m["id"] == message_id)
    .cloned()
    .expect("the message is in the history")
}

/// The user's unread mentions: the total, then per conversation as
/// `GET /messages/unread/count` and the inbox show them (asserted equal).
async fn unread_mentions(app: &TestApp, user: &TestUser) -> (u64, Vec<(String, u64)>) {
    let counts = json_of(app, "/api/v1/messages/unread/count", user).await;
    let inbox = json_of(app, "/api/v1/conversations", user).await;
    let mut listed: Vec<(String, u64)> = counts["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let id = c["conversation_id"].as_str().unwrap().to_owned();
            (id, c["unread_mentions"].as_u64().unwrap())
        })
        .filter(|(_, n)| *n > 0)
        .collect();
    listed.sort();
    let mut in_inbox: Vec<(String, u64)> = inbox
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let id = c["id"].as_str().unwrap().to_owned();
            (id, c["unread_mentions"].as_u64().unwrap())
        })
        .filter(|(_, n)| *n > 0)
        .collect();
    in_inbox.sort();
    assert_eq!(listed, in_inbox, "the counts and the inbox agree");
    (counts["unread_mentions"].as_u64().unwrap(), listed)
}

async fn edit(app: &TestApp, user: &TestUser, message: &str, content: &str) -> Value {
    let response = app
        .request(
            reqwest::Method::PATCH,
            &format!("/api/v1/messages/{message}"),
            Some(&user.token),
            Some(json!({"content": content})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn mark_read(app: &TestApp, user: &TestUser, message: &Value) {
    let response = app
        .put(
            &format!("/api/v1/messages/{}/read", id(message)),
            &user.token,
            json!({}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_mention_sent_over_rest_names_members_only_in_every_read_and_frame() {
    let app = spawn_app().await;
    let [alice, bob, carol, dave] = app.users(["alice", "bob", "carol", "dave"]).await;
    let group = app.group(&alice, &[&bob, &carol]).await;
    let mut bob_ws = app.ws(&bob).await;

    let plain = app.send(&alice, &group, "mail bob@example.com").await;
    assert_eq!(plain["mentions"], json!([]), "an address mentions nobody");
    let sent = app
        .send(&alice, &group, "@BOB, @dave and @Carol. @alice @nobody")
        .await;
    let both = ids(&[&bob, &carol]);
    assert_eq!(
        sent["mentions"], both,
        "members only, not dave, not the sender: {sent}"
    );

    bob_ws.next_of_type("new_message").await;
    let frame = bob_ws.next_of_type("new_message").await;
    assert_eq!(frame["message"]["id"], sent["id"]);
    assert_eq!(frame["message"]["mentions"], both);
    assert_eq!(
        read(&app, &carol, &group, id(&sent)).await["mentions"],
        both
    );
    let inbox = json_of(&app, "/api/v1/conversations", &bob).await;
    assert_eq!(inbox[0]["last_message"]["mentions"], both);
    let feed = json_of(&app, "/api/v1/sync?since=0", &bob).await;
    let replayed = feed["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["message"]["id"] == sent["id"])
        .expect("the message is in the feed");
    assert_eq!(replayed["message"]["mentions"], both);

    // Dave, not a member, reads nothing of it and has no mention to count.
    assert_eq!(unread_mentions(&app, &dave).await, (0, vec![]));
    let response = app
        .get(
            &format!("/api/v1/conversations/{group}/messages"),
            &dave.token,
        )
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn at_all_over_the_websocket_mentions_every_other_group_member_and_nobody_in_a_direct_chat() {
    let app = spawn_app().await;
    let [alice, bob, carol] = app.users(["alice", "bob", "carol"]).await;
    let group = app.group(&alice, &[&bob, &carol]).await;
    let direct = app.direct(&alice, &bob).await;
    let mut alice_ws = app.ws(&alice).await;
    let mut carol_ws = app.ws(&carol).await;

    alice_ws
        .send_message(&group, "@all standup now", "m-1")
        .await;
    let others = ids(&[&bob, &carol]);
    let ack = alice_ws.next_of_type("new_message").await;
    assert_eq!(ack["message"]["mentions"], others, "{ack}");
    let frame = carol_ws.next_of_type("new_message").await;
    assert_eq!(frame["message"]["mentions"], others);

    alice_ws.send_message(&direct, "@all hello", "m-2").await;
    let ack = alice_ws.next_of_type("new_message").await;
    assert_eq!(
        ack["message"]["mentions"],
        json!([]),
        "@all in a direct chat"
    );
    let named = app.send(&alice, &direct, "@all hello @bob").await;
    assert_eq!(named["mentions"], ids(&[&bob]));
}

#[tokio::test]
async fn an_edit_mentions_whom_the_new_content_names_and_a_delete_mentions_nobody() {
    let app = spawn_app().await;
    let [alice, bob, carol] = app.users(["alice", "bob", "carol"]).await;
    let group = app.group(&alice, &[&bob, &carol]).await;
    let sent = app.send(&alice, &group, "ping @bob").await;
    let mut carol_ws = app.ws(&carol).await;
    assert_eq!(
        unread_mentions(&app, &bob).await,
        (1, vec![(group.clone(), 1)])
    );

    let edited = edit(&app, &alice, id(&sent), "ping @carol").await;
    assert_eq!(edited["mentions"], ids(&[&carol]));
    let frame = carol_ws.next_of_type("message_updated").await;
    assert_eq!(frame["message"]["mentions"], ids(&[&carol]));
    assert_eq!(
        read(&app, &bob, &group, id(&sent)).await["mentions"],
        ids(&[&carol])
    );
    assert_eq!(unread_mentions(&app, &bob).await, (0, vec![]));
    assert_eq!(
        unread_mentions(&app, &carol).await,
        (1, vec![(group.clone(), 1)])
    );

    let response = app
        .delete(&format!("/api/v1/messages/{}", id(&sent)), &alice.token)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let frame = carol_ws.next_of_type("message_deleted").await;
    assert_eq!(frame["message"]["mentions"], json!([]));
    assert_eq!(
        read(&app, &carol, &group, id(&sent)).await["mentions"],
        json!([])
    );
    assert_eq!(unread_mentions(&app, &carol).await, (0, vec![]));
}

#[tokio::test]
async fn unread_mentions_follow_the_marker_leave_out_hidden_messages_and_count_when_muted() {
    let app = spawn_app().await;
    let [alice, bob, carol] = app.users(["alice", "bob", "carol"]).await;
    let group = app.group(&alice, &[&bob, &carol]).await;
    let direct = app.direct(&alice, &bob).await;
    let first = app.send(&alice, &group, "@bob first").await;
    app.send(&carol, &group, "not for bob").await;
    let second = app.send(&carol, &group, "@all second").await;
    let third = app.send(&alice, &group, "third, @bob").await;
    app.send(&alice, &direct, "hey @bob").await;
    let mut expected = vec![(group.clone(), 3), (direct.clone(), 1)];
    expected.sort();
    assert_eq!(unread_mentions(&app, &bob).await, (4, expected.clone()));
    let counts = json_of(&app, "/api/v1/messages/unread/count", &bob).await;
    assert_eq!(counts["unread_count"], 5, "every unread message");

    // Read up to the first: it no longer counts.
    mark_read(&app, &bob, &first).await;
    let mut expected = vec![(group.clone(), 2), (direct.clone(), 1)];
    expected.sort();
    assert_eq!(unread_mentions(&app, &bob).await, (3, expected));

    // A message bob hid is no unread mention of his.
    let response = app
        .delete(
            &format!("/api/v1/messages/{}?scope=me", id(&second)),
            &bob.token,
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let mut expected = vec![(group.clone(), 1), (direct.clone(), 1)];
    expected.sort();
    assert_eq!(unread_mentions(&app, &bob).await, (2, expected.clone()));

    // Muted, the group's messages leave the badge, its mentions stay in the total.
    let until = (chrono::Utc::now() + chrono::Duration::hours(8)).to_rfc3339();
    let response = app
        .put(
            &format!("/api/v1/conversations/{group}/settings"),
            &bob.token,
            json!({"muted_until": until}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let counts = json_of(&app, "/api/v1/messages/unread/count", &bob).await;
    assert_eq!(counts["unread_count"], 1, "the group is muted: {counts}");
    assert_eq!(counts["unread_mentions"], 2, "{counts}");
    assert_eq!(unread_mentions(&app, &bob).await, (2, expected));

    // Reading the third message reads the group; marking unread back to the start brings
    // back every mention that is not hidden.
    mark_read(&app, &bob, &third).await;
    assert_eq!(
        unread_mentions(&app, &bob).await,
        (1, vec![(direct.clone(), 1)])
    );
    let mut phone = app.ws(&bob).await;
    let response = app
        .put(
            &format!("/api/v1/conversations/{group}/read"),
            &bob.token,
            json!({"last_read_seq": 0}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let set: Value = response.json().await.unwrap();
    assert_eq!(set["unread_mentions"], 2, "{set}");
    let frame = phone.next_of_type("read_marker_updated").await;
    assert_eq!(frame["unread_mentions"], 2, "{frame}");
    let mut expected = vec![(group.clone(), 2), (direct.clone(), 1)];
    expected.sort();
    assert_eq!(unread_mentions(&app, &bob).await, (3, expected));
    // Alice mentioned bob, never herself: she has nothing to count.
    assert_eq!(unread_mentions(&app, &alice).await, (0, vec![]));
}
