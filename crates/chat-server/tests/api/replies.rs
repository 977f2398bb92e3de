//! Replies: sending with `reply_to_id` over REST (`POST .../messages`) and the WebSocket
//! (`message`), what every read and frame shows of the original (`reply_to`), how the quote
//! follows edits and deletes of the original, and what is refused.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, spawn_app};

fn id(message: &Value) -> &str {
    message["id"].as_str().unwrap()
}

async fn reply(
    app: &TestApp,
    from: &TestUser,
    conversation: &str,
    to: &str,
    content: &str,
) -> reqwest::Response {
    app.post(
        &format!("/api/v1/conversations/{conversation}/messages"),
        &from.token,
        json!({"content": content, "reply_to_id": to}),
    )
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

/// The message `message_id` as `user`'s history shows it.
async fn read(app: &TestApp, user: &TestUser, conversation: &str, message_id: &str) -> Value {
    history(app, user, conversation)
        .await
        .into_iter()
        .find(|m| m["id"] == message_id)
        .expect("the message is in the history")
}

/// A refusal's status, code and the fields its errors name.
async fn refusal(response: reqwest::Response) -> (u16, String, Vec<String>) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    assert!(body["detail"].is_string(), "{body}");
    let fields = body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| e["field"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default();
    (status, body["code"].as_str().unwrap().to_owned(), fields)
}

#[tokio::test]
async fn a_reply_sent_over_rest_quotes_its_original_in_the_answer_frames_history_and_sync() {
    let app = spawn_app().await;
    let [alice, bob] = app.users(["alice", "bob"]).await;
    let group = app.group(&alice, &[&bob]).await;
    let original = app.send(&alice, &group, "Ship it?").await;
    let plain = app.send(&bob, &group, "not a reply").await;
    assert_eq!(plain["reply_to"], Value::Null);
    let mut alice_ws = app.ws(&alice).await;

    let response = reply(&app, &bob, &group, id(&original), "Ship it!").await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let sent: Value = response.json().await.unwrap();
    let quoted = json!({"id": original["id"], "sender_id": alice.id, "snippet": "Ship it?"});
    assert_eq!(sent["reply_to"], quoted, "{sent}");

    let frame = alice_ws.next_of_type("new_message").await;
    assert_eq!(frame["message"]["id"], sent["id"]);
    assert_eq!(frame["message"]["reply_to"], quoted);
    assert_eq!(
        read(&app, &alice, &group, id(&sent)).await["reply_to"],
        quoted
    );

    let feed: Value = app
        .get("/api/v1/sync?since=0", &alice.token)
        .await
        .json()
        .await
        .unwrap();
    let replayed = feed["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["message"]["id"] == sent["id"])
        .expect("the reply is in the feed");
    assert_eq!(replayed["message"]["reply_to"], quoted);
}

#[tokio::test]
async fn a_reply_sent_over_the_websocket_reaches_every_member_with_its_quote() {
    let app = spawn_app().await;
    let [alice, bob] = app.users(["alice", "bob"]).await;
    let direct = app.direct(&alice, &bob).await;
    let original = app.send(&alice, &direct, "lunch?").await;
    let mut alice_ws = app.ws(&alice).await;
    let mut bob_ws = app.ws(&bob).await;

    bob_ws
        .send_json(json!({
            "type": "message", "conversation_id": direct, "content": "yes",
            "client_message_id": "r-1", "reply_to_id": original["id"],
        }))
        .await;
    let quoted = json!({"id": original["id"], "sender_id": alice.id, "snippet": "lunch?"});
    for ws in [&mut bob_ws, &mut alice_ws] {
        let frame = ws.next_of_type("new_message").await;
        assert_eq!(frame["message"]["content"], "yes");
        assert_eq!(frame["message"]["reply_to"], quoted, "{frame}");
    }
}

#[tokio::test]
async fn a_replys_snippet_is_the_originals_start_and_follows_its_edits_and_delete() {
    let app = spawn_app().await;
    let [alice, bob] = app.users(["alice", "bob"]).await;
    let group = app.group(&alice, &[&bob]).await;
    let long = format!("{}{}", "é".repeat(100), " and the rest");
    let original = app.send(&alice, &group, &long).await;
    let sent: Value = reply(&app, &bob, &group, id(&original), "agreed")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(sent["reply_to"]["snippet"], "é".repeat(100));

    let edited = app
        .request(
            reqwest::Method::PATCH,
            &format!("/api/v1/messages/{}", id(&original)),
            Some(&alice.token),
            Some(json!({"content": "short now"})),
        )
        .await;
    assert_eq!(edited.status(), StatusCode::OK);
    let after_edit = read(&app, &bob, &group, id(&sent)).await;
    assert_eq!(after_edit["reply_to"]["snippet"], "short now");

    let deleted = app
        .delete(&format!("/api/v1/messages/{}", id(&original)), &alice.token)
        .await;
    assert_eq!(deleted.status(), StatusCode::OK);
    for viewer in [&alice, &bob] {
        let after_delete = read(&app, viewer, &group, id(&sent)).await;
        assert_eq!(
            after_delete["reply_to"],
            json!({"id": original["id"], "sender_id": alice.id, "snippet": null}),
            "the quote is purged with the original"
        );
        assert_eq!(after_delete["content"], "agreed");
    }
}

#[tokio::test]
async fn a_reply_to_a_deleted_missing_or_foreign_message_is_422_on_reply_to_id_and_stores_nothing()
{
    let app = spawn_app().await;
    let [alice, bob, carol] = app.users(["alice", "bob", "carol"]).await;
    let group = app.group(&alice, &[&bob]).await;
    let elsewhere = app.group(&alice, &[&carol]).await;
    let foreign = app.send(&carol, &elsewhere, "elsewhere").await;
    let gone = app.send(&alice, &group, "oops").await;
    let deleted = app
        .delete(&format!("/api/v1/messages/{}", id(&gone)), &alice.token)
        .await;
    assert_eq!(deleted.status(), StatusCode::OK);
    let before = history(&app, &bob, &group).await;

    let missing = uuid::Uuid::new_v4().to_string();
    for target in [id(&foreign), id(&gone), missing.as_str()] {
        let (status, code, fields) = refusal(reply(&app, &alice, &group, target, "re").await).await;
        assert_eq!(
            (status, code.as_str(), fields),
            (422, "validation_error", vec!["reply_to_id".to_owned()]),
            "a reply to {target}"
        );
    }
    let (status, _, _) = refusal(reply(&app, &alice, &group, "not-a-uuid", "re").await).await;
    assert!((400..500).contains(&status), "{status}");

    let mut ws = app.ws(&alice).await;
    ws.send_json(json!({
        "type": "message", "conversation_id": group, "content": "re",
        "reply_to_id": foreign["id"], "ref": "x-1",
    }))
    .await;
    let error = ws.next_of_type("error").await;
    assert_eq!(error["code"], "validation_error", "{error}");
    assert_eq!(error["ref"], "x-1");
    assert_eq!(error["errors"][0]["field"], "reply_to_id");

    assert_eq!(history(&app, &bob, &group).await, before, "nothing stored");
}

#[tokio::test]
async fn replying_in_a_conversation_you_are_not_in_is_refused_as_if_it_did_not_exist() {
    let app = spawn_app().await;
    let [alice, bob, eve] = app.users(["alice", "bob", "eve"]).await;
    let group = app.group(&alice, &[&bob]).await;
    let original = app.send(&alice, &group, "members only").await;
    let before = history(&app, &bob, &group).await;

    // Into the conversation itself: eve is not in it.
    let (status, code, _) = refusal(reply(&app, &eve, &group, id(&original), "hi").await).await;
    assert_eq!((status, code.as_str()), (404, "conversation_not_found"));
    // From eve's own conversation: its message is no message of hers to reply to, refused
    // exactly as a missing one (nothing of it leaks into her quote).
    let own = app.group(&eve, &[&bob]).await;
    let (status, code, fields) = refusal(reply(&app, &eve, &own, id(&original), "hi").await).await;
    assert_eq!(
        (status, code.as_str(), fields),
        (422, "validation_error", vec!["reply_to_id".to_owned()])
    );
    assert!(history(&app, &eve, &own).await.is_empty());
    assert_eq!(history(&app, &bob, &group).await, before);
}

#[tokio::test]
async fn the_openapi_document_describes_reply_to_id_and_reply_to_with_an_example() {
    let app = spawn_app().await;
    let document = app.openapi().await;
    let schemas = &document["components"]["schemas"];
    let body = &schemas["SendMessageBody"]["properties"]["reply_to_id"];
    assert!(body.is_object(), "{}", schemas["SendMessageBody"]);
    let message = &schemas["MessageResponse"]["properties"]["reply_to"];
    assert!(message.to_string().contains("ReplyToResponse"), "{message}");
    let reply_to = &schemas["ReplyToResponse"];
    for field in ["id", "sender_id", "snippet"] {
        assert!(reply_to["properties"][field].is_object(), "{reply_to}");
    }
    assert_eq!(reply_to["example"]["snippet"], "Ship it?", "{reply_to}");
}

/// The documented client rule: keep the `reply_to` each message arrives with, and when an
/// original changes, requote the replies to it. A client catching up that way ends with the
/// quotes a fresh history shows.
#[tokio::test]
async fn a_client_catching_up_through_the_feed_ends_with_the_quotes_history_shows() {
    let app = spawn_app().await;
    let [alice, bob, carol] = app.users(["alice", "bob", "carol"]).await;
    let group = app.group(&alice, &[&bob, &carol]).await;
    let first = app.send(&alice, &group, "first draft").await;
    let second = app.send(&alice, &group, "doomed").await;
    for (to, text) in [
        (&first, "re first"),
        (&second, "re second"),
        (&first, "again"),
    ] {
        let response = reply(&app, &carol, &group, id(to), text).await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let edit = app
        .request(
            reqwest::Method::PATCH,
            &format!("/api/v1/messages/{}", id(&first)),
            Some(&alice.token),
            Some(json!({"content": "final draft"})),
        )
        .await;
    assert_eq!(edit.status(), StatusCode::OK);
    let delete = app
        .delete(&format!("/api/v1/messages/{}", id(&second)), &alice.token)
        .await;
    assert_eq!(delete.status(), StatusCode::OK);

    // Bob was offline throughout: he replays everything from the start.
    let feed: Value = app
        .get("/api/v1/sync?since=0", &bob.token)
        .await
        .json()
        .await
        .unwrap();
    let mut quotes: std::collections::BTreeMap<String, Value> = Default::default();
    for event in feed["events"].as_array().unwrap() {
        let message = &event["message"];
        let kind = event["type"].as_str().unwrap();
        if !matches!(kind, "new_message" | "message_updated" | "message_deleted") {
            continue;
        }
        quotes.insert(id(message).to_owned(), message["reply_to"].clone());
        let snippet = message["content"]
            .as_str()
            .map(|text| Value::from(text.chars().take(100).collect::<String>()))
            .unwrap_or(Value::Null);
        for quote in quotes.values_mut() {
            if quote["id"] == message["id"] {
                quote["snippet"] = snippet.clone();
            }
        }
    }
    let fresh: std::collections::BTreeMap<String, Value> = history(&app, &bob, &group)
        .await
        .iter()
        .map(|m| (id(m).to_owned(), m["reply_to"].clone()))
        .collect();
    assert_eq!(quotes, fresh);
    let quoting = |original: &Value| -> Vec<Value> {
        fresh
            .values()
            .filter(|q| q["id"] == original["id"])
            .map(|q| q["snippet"].clone())
            .collect()
    };
    assert_eq!(quoting(&first), vec![json!("final draft"); 2]);
    assert_eq!(quoting(&second), vec![Value::Null]);
}

#[tokio::test]
async fn a_retried_reply_gets_the_stored_reply_and_one_to_another_message_is_a_conflict() {
    let app = spawn_app().await;
    let [alice, bob] = app.users(["alice", "bob"]).await;
    let group = app.group(&alice, &[&bob]).await;
    let (one, two) = (
        app.send(&alice, &group, "one").await,
        app.send(&alice, &group, "two").await,
    );
    let path = format!("/api/v1/conversations/{group}/messages");
    let send = |to: Value| {
        app.post(
            &path,
            &bob.token,
            json!({"content": "yes", "client_message_id": "k-1", "reply_to_id": to}),
        )
    };
    let first = send(one["id"].clone()).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let retry = send(one["id"].clone()).await;
    assert_eq!(retry.status(), StatusCode::OK);
    let retry: Value = retry.json().await.unwrap();
    assert_eq!(
        (&retry["id"], &retry["reply_to"]),
        (&first["id"], &first["reply_to"])
    );
    let (status, code, _) = refusal(send(two["id"].clone()).await).await;
    assert_eq!((status, code.as_str()), (409, "idempotency_conflict"));
}
