//! Threads: sending with `thread_root_id` over REST and the WebSocket, paging a thread with
//! `GET /api/v1/messages/{id}/thread`, the root's `thread` summary, thread replies kept out
//! of history and the inbox, unread counts for the thread's participants only, and what is
//! refused.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, spawn_app};

fn id(message: &Value) -> &str {
    message["id"].as_str().unwrap()
}

async fn in_thread(
    app: &TestApp,
    from: &TestUser,
    conversation: &str,
    root: &str,
    content: &str,
) -> reqwest::Response {
    app.post(
        &format!("/api/v1/conversations/{conversation}/messages"),
        &from.token,
        json!({"content": content, "thread_root_id": root}),
    )
    .await
}

/// Sends a thread reply that must be stored, and returns it.
async fn reply(
    app: &TestApp,
    from: &TestUser,
    conversation: &str,
    root: &str,
    text: &str,
) -> Value {
    let response = in_thread(app, from, conversation, root, text).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
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

/// The ids of a page of the thread of `root`, with `query` (e.g. `?limit=1`).
async fn thread(app: &TestApp, user: &TestUser, root: &str, query: &str) -> Vec<String> {
    let response = app
        .get(
            &format!("/api/v1/messages/{root}/thread{query}"),
            &user.token,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let page: Vec<Value> = response.json().await.unwrap();
    page.iter().map(|m| id(m).to_owned()).collect()
}

async fn unread_in(app: &TestApp, user: &TestUser, conversation: &str) -> u64 {
    let response = app.get("/api/v1/messages/unread/count", &user.token).await;
    assert_eq!(response.status(), StatusCode::OK);
    let badge: Value = response.json().await.unwrap();
    let counted = badge["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["conversation_id"] == conversation)
        .map_or(0, |c| c["unread_count"].as_u64().unwrap());
    let inbox: Vec<Value> = app
        .get("/api/v1/conversations", &user.token)
        .await
        .json()
        .await
        .unwrap();
    let entry = inbox.iter().find(|e| e["id"] == conversation).unwrap();
    assert_eq!(entry["unread_count"], counted, "the inbox counts alike");
    counted
}

#[tokio::test]
async fn a_thread_is_paged_apart_from_history_and_its_root_carries_the_summary_everywhere() {
    let app = spawn_app().await;
    let [alice, bob, carol] = app.users(["alice", "bob", "carol"]).await;
    let group = app.group(&alice, &[&bob, &carol]).await;
    let root = app.send(&alice, &group, "friday plans?").await;
    assert_eq!(root["thread"], Value::Null);
    assert_eq!(root["thread_root_id"], Value::Null);
    let mut alice_ws = app.ws(&alice).await;

    let first = reply(&app, &bob, &group, id(&root), "pizza").await;
    assert_eq!(first["thread_root_id"], root["id"]);
    assert_eq!(first["thread"], Value::Null);
    let frame = alice_ws.next_of_type("new_message").await;
    assert_eq!(frame["message"]["id"], first["id"]);
    assert_eq!(frame["message"]["thread_root_id"], root["id"], "{frame}");
    let second = reply(&app, &carol, &group, id(&root), "bowling").await;
    let third = reply(&app, &bob, &group, id(&root), "both").await;
    let after = app.send(&carol, &group, "unrelated").await;

    let summary = json!({
        "reply_count": 3,
        "last_reply_at": third["created_at"],
        "last_reply_seq": third["seq"],
        "participant_ids": [alice.id, bob.id, carol.id],
    });
    let main = history(&app, &carol, &group).await;
    let ids: Vec<&str> = main.iter().map(id).collect();
    assert_eq!(ids, [id(&root), id(&after)], "no thread reply in history");
    assert_eq!(main[0]["thread"], summary);
    let pinned = app
        .put(
            &format!("/api/v1/conversations/{group}/pins/{}", id(&root)),
            &alice.token,
            json!({}),
        )
        .await;
    assert_eq!(pinned.status(), StatusCode::OK);
    let pins: Vec<Value> = app
        .get(&format!("/api/v1/conversations/{group}/pins"), &bob.token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(pins[0]["thread"], summary);
    let inbox: Vec<Value> = app
        .get("/api/v1/conversations", &bob.token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(inbox[0]["last_message"]["id"], after["id"]);

    let all = [id(&first), id(&second), id(&third)];
    assert_eq!(thread(&app, &carol, id(&root), "").await, all);
    assert_eq!(thread(&app, &carol, id(&root), "?limit=2").await, all[1..]);
    let before = format!("?limit=1&before={}", third["seq"]);
    assert_eq!(thread(&app, &carol, id(&root), &before).await, all[1..2]);
    let since = format!("?after={}", first["seq"]);
    assert_eq!(thread(&app, &carol, id(&root), &since).await, all[1..]);
    assert!(thread(&app, &carol, id(&after), "").await.is_empty());
    assert!(thread(&app, &carol, id(&first), "").await.is_empty());

    let feed: Value = app
        .get("/api/v1/sync?since=0", &carol.token)
        .await
        .json()
        .await
        .unwrap();
    let replayed: Vec<&Value> = feed["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["message"]["thread_root_id"] == root["id"])
        .collect();
    assert_eq!(replayed.len(), 3, "catch-up carries the thread replies");
}

#[tokio::test]
async fn a_thread_reply_sent_over_the_websocket_reaches_every_member_and_a_retry_gets_it_back() {
    let app = spawn_app().await;
    let [alice, bob] = app.users(["alice", "bob"]).await;
    let direct = app.direct(&alice, &bob).await;
    let root = app.send(&alice, &direct, "lunch?").await;
    let mut alice_ws = app.ws(&alice).await;
    let mut bob_ws = app.ws(&bob).await;
    let frame = json!({
        "type": "message", "conversation_id": direct, "content": "yes",
        "client_message_id": "t-1", "thread_root_id": root["id"],
    });
    bob_ws.send_json(frame.clone()).await;
    let mut sent = Value::Null;
    for ws in [&mut bob_ws, &mut alice_ws] {
        let frame = ws.next_of_type("new_message").await;
        assert_eq!(frame["message"]["thread_root_id"], root["id"], "{frame}");
        sent = frame["message"].clone();
    }
    let retried = app
        .post(
            &format!("/api/v1/conversations/{direct}/messages"),
            &bob.token,
            json!({"content": "yes", "client_message_id": "t-1", "thread_root_id": root["id"]}),
        )
        .await;
    assert_eq!(
        retried.status(),
        StatusCode::OK,
        "a retry gets the stored reply"
    );
    let retried: Value = retried.json().await.unwrap();
    assert_eq!(retried["id"], sent["id"]);
    let elsewhere = app
        .post(
            &format!("/api/v1/conversations/{direct}/messages"),
            &bob.token,
            json!({"content": "yes", "client_message_id": "t-1"}),
        )
        .await;
    assert_eq!(elsewhere.status(), StatusCode::CONFLICT, "the key is taken");
    let root_now = &history(&app, &alice, &direct).await[0];
    assert_eq!(root_now["thread"]["reply_count"], 1);
}

#[tokio::test]
async fn a_thread_root_that_is_no_live_main_message_of_the_conversation_is_refused() {
    let app = spawn_app().await;
    let [alice, bob, carol] = app.users(["alice", "bob", "carol"]).await;
    let group = app.group(&alice, &[&bob]).await;
    let elsewhere = app.group(&carol, &[&alice]).await;
    let foreign = app.send(&carol, &elsewhere, "secret").await;
    let gone = app.send(&alice, &group, "oops").await;
    let deleted = app
        .delete(&format!("/api/v1/messages/{}", id(&gone)), &alice.token)
        .await;
    assert_eq!(deleted.status(), StatusCode::OK);
    let root = app.send(&alice, &group, "root").await;
    let nested = reply(&app, &bob, &group, id(&root), "first").await;
    let before = history(&app, &bob, &group).await;
    let missing = uuid::Uuid::new_v4().to_string();
    for target in [id(&foreign), id(&gone), id(&nested), missing.as_str()] {
        let response = in_thread(&app, &bob, &group, target, "re").await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], "validation_error", "{body}");
        assert_eq!(body["errors"][0]["field"], "thread_root_id", "{target}");
    }
    let response = in_thread(&app, &bob, &group, "not-a-uuid", "re").await;
    assert!(response.status().is_client_error());

    let mut ws = app.ws(&alice).await;
    ws.send_json(json!({
        "type": "message", "conversation_id": group, "content": "re",
        "thread_root_id": nested["id"], "ref": "t-9",
    }))
    .await;
    let error = ws.next_of_type("error").await;
    assert_eq!(error["code"], "validation_error", "{error}");
    assert_eq!(error["ref"], "t-9");
    assert_eq!(error["errors"][0]["field"], "thread_root_id");

    assert_eq!(history(&app, &bob, &group).await, before, "nothing stored");
    assert_eq!(thread(&app, &bob, id(&root), "").await, [id(&nested)]);
}

#[tokio::test]
async fn a_thread_is_read_by_members_only_and_bad_paging_is_refused() {
    let app = spawn_app().await;
    let [alice, bob, eve] = app.users(["alice", "bob", "eve"]).await;
    let group = app.group(&alice, &[&bob]).await;
    let root = app.send(&alice, &group, "members only").await;
    reply(&app, &bob, &group, id(&root), "indeed").await;
    let path = format!("/api/v1/messages/{}/thread", id(&root));
    let refused = app.get(&path, &eve.token).await;
    assert_eq!(refused.status(), StatusCode::NOT_FOUND);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["code"], "message_not_found");
    let nowhere = format!("/api/v1/messages/{}/thread", uuid::Uuid::new_v4());
    assert_eq!(
        app.get(&nowhere, &alice.token).await.status(),
        StatusCode::NOT_FOUND
    );
    let sent_by_eve = in_thread(&app, &eve, &group, id(&root), "let me in").await;
    assert_eq!(sent_by_eve.status(), StatusCode::NOT_FOUND);
    for query in ["?before=5&after=1", "?limit=0", "?limit=201", "?before=x"] {
        let response = app.get(&format!("{path}{query}"), &alice.token).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{query}"
        );
        let body: Value = response.json().await.unwrap();
        assert!(body["detail"].is_string(), "{body}");
    }
    let unauthenticated = reqwest::get(format!("{}{path}", app.address))
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_thread_reply_is_unread_only_for_the_threads_participants() {
    let app = spawn_app().await;
    let [alice, bob, carol, dave] = app.users(["alice", "bob", "carol", "dave"]).await;
    let group = app.group(&alice, &[&bob, &carol, &dave]).await;
    let root = app.send(&alice, &group, "root").await;
    for user in [&bob, &carol, &dave] {
        let read = app
            .put(
                &format!("/api/v1/messages/{}/read", id(&root)),
                &user.token,
                json!({}),
            )
            .await;
        assert_eq!(read.status(), StatusCode::OK);
    }
    reply(&app, &bob, &group, id(&root), "one").await;
    reply(&app, &bob, &group, id(&root), "two").await;
    assert_eq!(
        unread_in(&app, &alice, &group).await,
        2,
        "the root's sender"
    );
    assert_eq!(unread_in(&app, &carol, &group).await, 0, "no participant");
    reply(&app, &carol, &group, id(&root), "me too").await;
    reply(&app, &bob, &group, id(&root), "three").await;
    assert_eq!(
        unread_in(&app, &carol, &group).await,
        1,
        "carol follows now"
    );
    assert_eq!(unread_in(&app, &alice, &group).await, 4);
    assert_eq!(unread_in(&app, &dave, &group).await, 0);
    app.send(&bob, &group, "main history").await;
    assert_eq!(
        unread_in(&app, &dave, &group).await,
        1,
        "counts for everyone"
    );
    // Setting the marker back counts as the badge does.
    let set = app
        .put(
            &format!("/api/v1/conversations/{group}/read"),
            &dave.token,
            json!({"last_read_seq": root["seq"]}),
        )
        .await;
    assert_eq!(set.status(), StatusCode::OK);
    let set: Value = set.json().await.unwrap();
    assert_eq!(set["unread_count"], 1, "{set}");
}

#[tokio::test]
async fn the_openapi_document_describes_threads_and_the_thread_route() {
    let app = spawn_app().await;
    let document = app.openapi().await;
    let schemas = &document["components"]["schemas"];
    let body = &schemas["SendMessageBody"]["properties"]["thread_root_id"];
    assert!(body.is_object(), "{}", schemas["SendMessageBody"]);
    let message = &schemas["MessageResponse"]["properties"];
    assert!(message["thread_root_id"].is_object(), "{message}");
    assert!(
        message["thread"].to_string().contains("ThreadResponse"),
        "{message}"
    );
    let thread = &schemas["ThreadResponse"];
    for field in [
        "reply_count",
        "last_reply_at",
        "last_reply_seq",
        "participant_ids",
    ] {
        assert!(thread["properties"][field].is_object(), "{thread}");
    }
    assert_eq!(thread["example"]["reply_count"], 3, "{thread}");
    let route = &document["paths"]["/api/v1/messages/{message_id}/thread"]["get"];
    let parameters = route["parameters"].to_string();
    for name in ["message_id", "limit", "before", "after"] {
        assert!(parameters.contains(name), "{name}: {route}");
    }
    for status in ["200", "401", "404", "422"] {
        assert!(route["responses"][status].is_object(), "{status}: {route}");
    }
}
