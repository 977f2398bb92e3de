//! Changing sent messages: editing (`PATCH /api/v1/messages/{id}`, `edit_message`), deleting
//! for everyone and for oneself (`DELETE /api/v1/messages/{id}[?scope=]`, `delete_message`):
//! who may, what history, unread counts and catch-up show afterwards, and which frames reach
//! whom, live.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, spawn_app};

/// How long a connection must stay quiet to count as "got nothing".
const SILENCE: Duration = Duration::from_millis(300);

async fn edit(app: &TestApp, user: &TestUser, message: &str, content: &str) -> reqwest::Response {
    app.request(
        Method::PATCH,
        &format!("/api/v1/messages/{message}"),
        Some(&user.token),
        Some(json!({"content": content})),
    )
    .await
}

async fn delete(app: &TestApp, user: &TestUser, message: &str, scope: &str) -> reqwest::Response {
    app.delete(&format!("/api/v1/messages/{message}{scope}"), &user.token)
        .await
}

async fn history(app: &TestApp, user: &TestUser, conversation: &str) -> Vec<Value> {
    let response = app
        .get(
            &format!("/api/v1/conversations/{conversation}/messages"),
            &user.token,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn unread(app: &TestApp, user: &TestUser) -> u64 {
    let counts: Value = app
        .get("/api/v1/messages/unread/count", &user.token)
        .await
        .json()
        .await
        .unwrap();
    counts["unread_count"].as_u64().unwrap()
}

async fn error_code(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    assert!(body["detail"].is_string(), "{body}");
    (status, body["code"].as_str().unwrap_or_default().to_owned())
}

fn id(message: &Value) -> &str {
    message["id"].as_str().unwrap()
}

#[tokio::test]
async fn an_edit_reaches_every_member_and_the_senders_other_device_and_history_shows_it() {
    let app = spawn_app().await;
    let [alice, bob, carol] = app.users(["alice", "bob", "carol"]).await;
    let group = app.group(&alice, &[&bob, &carol]).await;
    let sent = app.send(&alice, &group, "helo").await;
    let later = app.send(&bob, &group, "later").await;
    let mut alice_phone = app.ws(&alice).await;
    let mut bob_ws = app.ws(&bob).await;

    let response = edit(&app, &alice, id(&sent), "  hello  ").await;
    assert_eq!(response.status(), StatusCode::OK);
    let edited: Value = response.json().await.unwrap();
    assert_eq!(edited["content"], "hello");
    assert_eq!(edited["seq"], sent["seq"], "the message keeps its place");
    assert!(edited["edited_at"].is_string(), "{edited}");
    assert_eq!(edited["updated_at"], edited["edited_at"]);
    assert_eq!(edited["deleted_at"], Value::Null);

    for ws in [&mut alice_phone, &mut bob_ws] {
        let frame = ws.next_of_type("message_updated").await;
        assert_eq!(frame["message"]["id"], sent["id"]);
        assert_eq!(frame["message"]["content"], "hello");
        assert!(frame["timestamp"].is_string());
        // The edit's own place in the order: after everything sent before it.
        assert!(
            frame["seq"].as_i64().unwrap() > later["seq"].as_i64().unwrap(),
            "{frame}"
        );
    }
    let contents: Vec<Value> = history(&app, &carol, &group)
        .await
        .iter()
        .map(|m| json!([m["id"], m["content"], m["edited_at"].is_string()]))
        .collect();
    assert_eq!(
        contents,
        vec![
            json!([sent["id"], "hello", true]),
            json!([later["id"], "later", false])
        ]
    );

    // The same content again changes nothing and tells nobody.
    let again = edit(&app, &alice, id(&sent), "hello").await;
    assert_eq!(again.status(), StatusCode::OK);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["edited_at"], edited["edited_at"]);
    bob_ws.assert_silent(SILENCE).await;
}

#[tokio::test]
async fn only_the_sender_may_edit_and_bad_edits_are_refused_with_the_right_code() {
    let app = spawn_app().await;
    let [alice, bob, eve] = app.users(["alice", "bob", "eve"]).await;
    let group = app.group(&alice, &[&bob]).await;
    let sent = app.send(&alice, &group, "original").await;
    let message = id(&sent);

    let cases = [
        (
            &bob,
            message.to_owned(),
            "by bob".to_owned(),
            403,
            "not_the_sender",
        ),
        (
            &eve,
            message.to_owned(),
            "by eve".to_owned(),
            404,
            "message_not_found",
        ),
        (
            &alice,
            uuid::Uuid::new_v4().to_string(),
            "x".into(),
            404,
            "message_not_found",
        ),
        (
            &alice,
            message.to_owned(),
            "a".repeat(4001),
            422,
            "validation_error",
        ),
        (
            &alice,
            message.to_owned(),
            " \n ".into(),
            422,
            "validation_error",
        ),
        (
            &alice,
            "not-a-uuid".into(),
            "x".into(),
            422,
            "validation_error",
        ),
    ];
    for (who, target, content, status, code) in cases {
        let answer = error_code(edit(&app, who, &target, &content).await).await;
        assert_eq!(
            answer,
            (status, code.to_owned()),
            "{content:.20} on {target}"
        );
    }
    // An unknown field is refused like on a send.
    let extra = app
        .request(
            Method::PATCH,
            &format!("/api/v1/messages/{message}"),
            Some(&alice.token),
            Some(json!({"content": "x", "sender_id": bob.id})),
        )
        .await;
    assert_eq!(extra.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(history(&app, &bob, &group).await[0]["content"], "original");

    // A deleted message cannot be edited.
    assert_eq!(
        delete(&app, &alice, message, "").await.status(),
        StatusCode::OK
    );
    let answer = error_code(edit(&app, &alice, message, "back").await).await;
    assert_eq!(answer, (409, "message_deleted".to_owned()));
}

#[tokio::test]
async fn a_delete_for_everyone_leaves_a_tombstone_in_place_and_reaches_every_member() {
    let app = spawn_app().await;
    let [alice, bob, carol] = app.users(["alice", "bob", "carol"]).await;
    let group = app.group(&alice, &[&bob, &carol]).await;
    let first = app.send(&bob, &group, "first").await;
    let secret = app.send(&bob, &group, "secret").await;
    let last = app.send(&bob, &group, "last").await;
    assert_eq!(unread(&app, &carol).await, 3);
    let mut bob_ws = app.ws(&bob).await;
    let mut carol_ws = app.ws(&carol).await;

    let response = delete(&app, &bob, id(&secret), "?scope=everyone").await;
    assert_eq!(response.status(), StatusCode::OK);
    let tombstone: Value = response.json().await.unwrap();
    assert_eq!(tombstone["id"], secret["id"]);
    assert_eq!(tombstone["seq"], secret["seq"]);
    assert_eq!(tombstone["sender_id"], bob.id.as_str());
    assert_eq!(tombstone["created_at"], secret["created_at"]);
    assert_eq!(tombstone["content"], Value::Null);
    assert_eq!(tombstone["deleted_by"], bob.id.as_str());
    assert!(tombstone["deleted_at"].is_string());

    for ws in [&mut bob_ws, &mut carol_ws] {
        let frame = ws.next_of_type("message_deleted").await;
        assert_eq!(
            frame["message"], tombstone,
            "every member gets the tombstone"
        );
        assert!(frame["seq"].as_i64().unwrap() > last["seq"].as_i64().unwrap());
    }
    let page = history(&app, &carol, &group).await;
    let seen: Vec<Value> = page
        .iter()
        .map(|m| json!([m["id"], m["content"]]))
        .collect();
    assert_eq!(
        seen,
        vec![
            json!([first["id"], "first"]),
            json!([secret["id"], null]),
            json!([last["id"], "last"])
        ],
        "the tombstone keeps its place"
    );
    assert_eq!(
        unread(&app, &carol).await,
        2,
        "a tombstone is no unread message"
    );

    // Deleting again is answered the same and changes nothing.
    let again = delete(&app, &bob, id(&secret), "").await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.json::<Value>().await.unwrap(), tombstone);
    carol_ws.assert_silent(SILENCE).await;
}

#[tokio::test]
async fn a_groups_owner_and_admins_may_delete_anyones_message_but_members_and_direct_partners_may_not()
 {
    let app = spawn_app().await;
    let [owner, admin, member, other] = app.users(["owner", "admin", "member", "other"]).await;
    let group = app.group(&owner, &[&admin, &member, &other]).await;
    let promoted = app
        .put(
            &format!("/api/v1/conversations/{group}/members/{}", admin.id),
            &owner.token,
            json!({"role": "admin"}),
        )
        .await;
    assert_eq!(promoted.status(), StatusCode::OK);
    let from_other = app.send(&other, &group, "spam").await;
    let from_owner = app.send(&owner, &group, "rules").await;

    let refused = error_code(delete(&app, &member, id(&from_other), "").await).await;
    assert_eq!(refused, (403, "not_the_sender".to_owned()));
    let moderated = delete(&app, &admin, id(&from_other), "").await;
    assert_eq!(moderated.status(), StatusCode::OK);
    let moderated: Value = moderated.json().await.unwrap();
    assert_eq!(moderated["deleted_by"], admin.id.as_str());
    assert_eq!(moderated["sender_id"], other.id.as_str());
    let by_admin = delete(&app, &admin, id(&from_owner), "").await;
    assert_eq!(
        by_admin.status(),
        StatusCode::OK,
        "an admin moderates the owner too"
    );

    let direct = app.direct(&owner, &member).await;
    let to_member = app.send(&owner, &direct, "only mine to delete").await;
    let refused = error_code(delete(&app, &member, id(&to_member), "").await).await;
    assert_eq!(refused, (403, "not_the_sender".to_owned()));
    assert_eq!(
        history(&app, &owner, &direct).await[0]["content"],
        "only mine to delete"
    );
    // What a member cannot delete for everyone, they can still delete for themselves.
    assert_eq!(
        delete(&app, &member, id(&to_member), "?scope=me")
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn a_delete_for_me_hides_the_message_from_my_history_unread_and_sync_only_and_tells_only_my_devices()
 {
    let app = spawn_app().await;
    let [alice, bob] = app.users(["alice", "bob"]).await;
    let direct = app.direct(&alice, &bob).await;
    let kept = app.send(&alice, &direct, "kept").await;
    let hidden = app.send(&alice, &direct, "hide me").await;
    assert_eq!(unread(&app, &bob).await, 2);
    let mut alice_ws = app.ws(&alice).await;
    let mut bob_phone = app.ws(&bob).await;

    let response = delete(&app, &bob, id(&hidden), "?scope=me").await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let frame = bob_phone.next_of_type("message_hidden").await;
    assert_eq!(frame["message_id"], hidden["id"]);
    assert_eq!(frame["conversation_id"], direct.as_str());
    assert!(frame["seq"].as_i64().unwrap() > hidden["seq"].as_i64().unwrap());
    alice_ws.assert_silent(SILENCE).await;

    let ids = |page: Vec<Value>| -> Vec<Value> { page.iter().map(|m| m["id"].clone()).collect() };
    assert_eq!(
        ids(history(&app, &bob, &direct).await),
        vec![kept["id"].clone()]
    );
    assert_eq!(
        ids(history(&app, &alice, &direct).await),
        vec![kept["id"].clone(), hidden["id"].clone()]
    );
    assert_eq!(unread(&app, &bob).await, 1);
    // The WebSocket catch-up leaves it out too.
    bob_phone
        .send_json(json!({"type": "sync", "since_seq": 0}))
        .await;
    let mut replayed = Vec::new();
    loop {
        let frame = bob_phone.next_json().await;
        match frame["type"].as_str() {
            Some("synced") => break,
            Some("new_message") => replayed.push(frame["message"]["id"].clone()),
            _ => {}
        }
    }
    assert_eq!(replayed, vec![kept["id"].clone()]);

    // Hiding again is answered the same and tells nobody.
    let again = delete(&app, &bob, id(&hidden), "?scope=me").await;
    assert_eq!(again.status(), StatusCode::NO_CONTENT);
    bob_phone.assert_silent(SILENCE).await;
}

#[tokio::test]
async fn a_delete_with_an_unknown_scope_or_of_an_unknown_message_is_refused() {
    let app = spawn_app().await;
    let [alice, bob, eve] = app.users(["alice", "bob", "eve"]).await;
    let group = app.group(&alice, &[&bob]).await;
    let sent = app.send(&alice, &group, "hello").await;
    let cases = [
        (
            &alice,
            id(&sent).to_owned(),
            "?scope=all",
            422,
            "validation_error",
        ),
        (
            &alice,
            id(&sent).to_owned(),
            "?scope=me&extra=1",
            422,
            "validation_error",
        ),
        (
            &alice,
            uuid::Uuid::new_v4().to_string(),
            "",
            404,
            "message_not_found",
        ),
        (&eve, id(&sent).to_owned(), "", 404, "message_not_found"),
        (
            &eve,
            id(&sent).to_owned(),
            "?scope=me",
            404,
            "message_not_found",
        ),
    ];
    for (who, target, scope, status, code) in cases {
        let answer = error_code(delete(&app, who, &target, scope).await).await;
        assert_eq!(answer, (status, code.to_owned()), "{target}{scope}");
    }
    assert_eq!(history(&app, &bob, &group).await[0]["content"], "hello");
    // A removed member can no longer change what they sent.
    let from_bob = app.send(&bob, &group, "mine").await;
    let removed = app
        .delete(
            &format!("/api/v1/conversations/{group}/members/{}", bob.id),
            &alice.token,
        )
        .await;
    assert!(removed.status().is_success());
    let answer = error_code(delete(&app, &bob, id(&from_bob), "").await).await;
    assert_eq!(answer, (404, "message_not_found".to_owned()));
    let answer = error_code(edit(&app, &bob, id(&from_bob), "changed").await).await;
    assert_eq!(answer, (404, "message_not_found".to_owned()));
}

#[tokio::test]
async fn edits_and_deletes_over_the_websocket_follow_the_same_rules_and_answer_with_the_ref() {
    let app = spawn_app().await;
    let [alice, bob] = app.users(["alice", "bob"]).await;
    let group = app.group(&alice, &[&bob]).await;
    let sent = app.send(&alice, &group, "helo").await;
    let mut alice_ws = app.ws(&alice).await;
    let mut bob_ws = app.ws(&bob).await;

    alice_ws
        .send_json(json!({"type": "edit_message", "message_id": sent["id"], "content": "hello", "ref": "e1"}))
        .await;
    for ws in [&mut alice_ws, &mut bob_ws] {
        let frame = ws.next_of_type("message_updated").await;
        assert_eq!(frame["message"]["content"], "hello");
    }

    let refusals = [
        (
            json!({"type": "edit_message", "message_id": sent["id"], "content": "mine now", "ref": "r1"}),
            "not_the_sender",
        ),
        (
            json!({"type": "delete_message", "message_id": sent["id"], "ref": "r2"}),
            "not_the_sender",
        ),
        (
            json!({"type": "delete_message", "message_id": sent["id"], "scope": "all", "ref": "r3"}),
            "validation_error",
        ),
        (
            json!({"type": "edit_message", "message_id": sent["id"], "content": "", "ref": "r4"}),
            "validation_error",
        ),
        (
            json!({"type": "edit_message", "message_id": uuid::Uuid::new_v4(), "content": "x", "ref": "r5"}),
            "message_not_found",
        ),
    ];
    for (frame, code) in refusals {
        bob_ws.send_json(frame.clone()).await;
        let reply = bob_ws.next_json().await;
        assert_eq!(reply["type"], "error", "{frame}: {reply}");
        assert_eq!(reply["code"], code, "{frame}: {reply}");
        assert_eq!(reply["ref"], frame["ref"], "{frame}: {reply}");
    }
    alice_ws.assert_silent(SILENCE).await;

    bob_ws
        .send_json(
            json!({"type": "delete_message", "message_id": sent["id"], "scope": "me", "ref": "h1"}),
        )
        .await;
    let hidden = bob_ws.next_of_type("message_hidden").await;
    assert_eq!(hidden["message_id"], sent["id"]);
    alice_ws.assert_silent(SILENCE).await;

    alice_ws
        .send_json(json!({"type": "delete_message", "message_id": sent["id"], "ref": "d1"}))
        .await;
    for ws in [&mut alice_ws, &mut bob_ws] {
        let frame = ws.next_of_type("message_deleted").await;
        assert_eq!(frame["message"]["content"], Value::Null);
        assert_eq!(frame["message"]["deleted_by"], alice.id.as_str());
    }
    // A repeat changes nothing, but the caller still gets an answer.
    alice_ws
        .send_json(json!({"type": "delete_message", "message_id": sent["id"], "ref": "d2"}))
        .await;
    let answer = alice_ws.next_json().await;
    assert_eq!(answer["type"], "message_deleted", "{answer}");
    bob_ws.assert_silent(SILENCE).await;
    alice_ws
        .send_json(
            json!({"type": "edit_message", "message_id": sent["id"], "content": "x", "ref": "e2"}),
        )
        .await;
    let answer = alice_ws.next_json().await;
    assert_eq!(
        (answer["code"].as_str(), answer["ref"].as_str()),
        (Some("message_deleted"), Some("e2"))
    );
}

#[tokio::test]
async fn edits_and_deletes_work_the_same_on_postgres_across_two_servers() {
    let Some(database) =
        chat_postgres::testing::TestDatabase::create("message changes on PostgreSQL")
    else {
        return;
    };
    let one = crate::postgres::spawn_node(&database).await;
    let two = crate::postgres::spawn_node(&database).await;
    let [alice, bob] = one.users(["alice", "bob"]).await;
    let group = one.group(&alice, &[&bob]).await;
    let first = one.send(&alice, &group, "helo").await;
    let second = two.send(&bob, &group, "second").await;

    let edited = edit(&two, &alice, id(&first), "hello").await;
    assert_eq!(edited.status(), StatusCode::OK);
    let refused = error_code(edit(&one, &bob, id(&first), "mine").await).await;
    assert_eq!(refused, (403, "not_the_sender".to_owned()));
    let deleted = delete(&one, &bob, id(&second), "").await;
    assert_eq!(deleted.status(), StatusCode::OK);
    assert_eq!(
        delete(&two, &bob, id(&first), "?scope=me").await.status(),
        StatusCode::NO_CONTENT
    );
    for node in [&one, &two] {
        let alice_sees: Vec<Value> = history(node, &alice, &group)
            .await
            .iter()
            .map(|m| json!([m["content"], m["deleted_by"]]))
            .collect();
        assert_eq!(
            alice_sees,
            vec![json!(["hello", null]), json!([null, bob.id])]
        );
        let bob_sees = history(node, &bob, &group).await;
        assert_eq!(bob_sees.len(), 1, "bob hid alice's message: {bob_sees:?}");
        assert_eq!(
            unread(node, &alice).await,
            0,
            "bob's only message is a tombstone"
        );
    }
}
