//! Sending, history, read receipts and unread counts.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::spawn_app;

#[tokio::test]
async fn a_sent_message_has_the_documented_shape() {
    let app = spawn_app().await;
    let [alice, bob] = app.users(["alice", "bob"]).await;
    let direct = app.direct(&alice, &bob).await;
    let response = app
        .post(
            &format!("/api/v1/conversations/{direct}/messages"),
            &alice.token,
            json!({"content": "  hello  ", "client_message_id": "c-1"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let message: Value = response.json().await.unwrap();
    assert_eq!(message["content"], "hello");
    assert_eq!(message["conversation_id"], direct.as_str());
    assert_eq!(message["sender_id"], alice.id.as_str());
    assert_eq!(message["recipient_id"], bob.id.as_str());
    assert_eq!(message["client_message_id"], "c-1");
    assert_eq!(message["is_read"], false);
    assert!(message["seq"].as_i64().unwrap() > 0);
    for field in ["id", "created_at", "updated_at"] {
        assert!(message[field].is_string(), "{field}");
    }

    let group = app.group(&alice, &[&bob]).await;
    let in_group = app.send(&alice, &group, "hi all").await;
    assert_eq!(in_group["recipient_id"], Value::Null);
}

#[tokio::test]
async fn a_retry_with_the_same_client_message_id_returns_the_stored_message() {
    let app = spawn_app().await;
    let [alice, bob] = app.users(["alice", "bob"]).await;
    let direct = app.direct(&alice, &bob).await;
    let path = format!("/api/v1/conversations/{direct}/messages");
    let body = json!({"content": "once", "client_message_id": "retry-me"});
    let first = app.post(&path, &alice.token, body.clone()).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let again = app.post(&path, &alice.token, body).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.json::<Value>().await.unwrap()["id"], first["id"]);
    let history: Vec<Value> = app.get(&path, &bob.token).await.json().await.unwrap();
    assert_eq!(history.len(), 1);
}

#[tokio::test]
async fn invalid_content_is_refused_and_nothing_is_stored() {
    let app = spawn_app().await;
    let [alice, bob] = app.users(["alice", "bob"]).await;
    let direct = app.direct(&alice, &bob).await;
    let path = format!("/api/v1/conversations/{direct}/messages");
    for content in [json!("   "), json!("x".repeat(4001)), json!(42)] {
        let response = app
            .post(&path, &alice.token, json!({"content": content}))
            .await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
    let history: Vec<Value> = app.get(&path, &alice.token).await.json().await.unwrap();
    assert!(history.is_empty());
}

#[tokio::test]
async fn history_pages_by_seq_before_and_after() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let direct = app.direct(&alice, &bob).await;
    let mut seqs = Vec::new();
    for i in 0..7 {
        seqs.push(
            app.send(&alice, &direct, &format!("m{i}")).await["seq"]
                .as_i64()
                .unwrap(),
        );
    }
    let page = |query: String| {
        let app = &app;
        let token = bob.token.clone();
        let path = format!("/api/v1/conversations/{direct}/messages?{query}");
        async move {
            let page: Vec<Value> = app.get(&path, &token).await.json().await.unwrap();
            page.iter()
                .map(|m| m["seq"].as_i64().unwrap())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(page("limit=3".into()).await, seqs[4..]);
    assert_eq!(
        page(format!("limit=3&before={}", seqs[4])).await,
        seqs[1..4]
    );
    assert_eq!(page(format!("limit=2&after={}", seqs[1])).await, seqs[2..4]);
    assert_eq!(page(String::new()).await, seqs);
    let both = app
        .get(
            &format!("/api/v1/conversations/{direct}/messages?before=5&after=1"),
            &bob.token,
        )
        .await;
    assert_eq!(both.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let not_a_number = app
        .get(
            &format!("/api/v1/conversations/{direct}/messages?before=soon"),
            &bob.token,
        )
        .await;
    assert_eq!(not_a_number.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn marking_read_covers_earlier_messages_and_never_moves_back() {
    let app = spawn_app().await;
    let [alice, bob] = app.users(["alice", "bob"]).await;
    let direct = app.direct(&alice, &bob).await;
    let first = app.send(&alice, &direct, "one").await;
    let second = app.send(&alice, &direct, "two").await;
    app.send(&alice, &direct, "three").await;

    let read = |id: &Value| {
        let path = format!("/api/v1/messages/{}/read", id.as_str().unwrap());
        let token = bob.token.clone();
        let app = &app;
        async move { app.put(&path, &token, json!({})).await }
    };
    let response = read(&second["id"]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let receipt: Value = response.json().await.unwrap();
    assert_eq!(receipt["message_id"], second["id"]);
    assert_eq!(receipt["conversation_id"], direct.as_str());
    assert_eq!(receipt["user_id"], bob.id.as_str());
    assert_eq!(receipt["last_read_seq"], second["seq"]);
    assert!(receipt["read_at"].is_string());

    let older: Value = read(&first["id"]).await.json().await.unwrap();
    assert_eq!(older["last_read_seq"], second["seq"]);
    let again: Value = read(&second["id"]).await.json().await.unwrap();
    assert_eq!(again["last_read_seq"], second["seq"]);

    let unread: Value = app
        .get("/api/v1/messages/unread/count", &bob.token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(unread["unread_count"], 1);
    assert_eq!(
        unread["conversations"],
        json!([{"conversation_id": direct, "unread_count": 1, "unread_mentions": 0, "muted": false}])
    );

    // From each side: bob has read "two" but not "three"; alice sees "two" read by bob.
    let path = format!("/api/v1/conversations/{direct}/messages");
    let bobs: Vec<Value> = app.get(&path, &bob.token).await.json().await.unwrap();
    let flags: Vec<bool> = bobs
        .iter()
        .map(|m| m["is_read"].as_bool().unwrap())
        .collect();
    assert_eq!(flags, [true, true, false]);
    let alices: Vec<Value> = app.get(&path, &alice.token).await.json().await.unwrap();
    let flags: Vec<bool> = alices
        .iter()
        .map(|m| m["is_read"].as_bool().unwrap())
        .collect();
    assert_eq!(flags, [true, true, false]);

    let unknown = app
        .put(
            &format!("/api/v1/messages/{}/read", uuid::Uuid::new_v4()),
            &bob.token,
            json!({}),
        )
        .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        unknown.json::<Value>().await.unwrap()["code"],
        "message_not_found"
    );
}

#[tokio::test]
async fn unread_counts_span_conversations_and_ignore_your_own_messages() {
    let app = spawn_app().await;
    let [alice, bob, carol] = app.users(["alice", "bob", "carol"]).await;
    let direct = app.direct(&alice, &bob).await;
    let group = app.group(&carol, &[&alice, &bob]).await;
    app.send(&bob, &direct, "1").await;
    app.send(&carol, &group, "2").await;
    app.send(&carol, &group, "3").await;
    app.send(&alice, &group, "mine").await;
    let unread: Value = app
        .get("/api/v1/messages/unread/count", &bob.token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(unread["unread_count"], 3);
    let per: Vec<(String, u64)> = unread["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["conversation_id"].as_str().unwrap().into(),
                c["unread_count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(per.len(), 1);
    assert_eq!(per[0], (group.clone(), 3));
    // Alice's send marked the group read up to her message for her.
    let alices: Value = app
        .get("/api/v1/messages/unread/count", &alice.token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(alices["unread_count"], 1);
}

#[tokio::test]
async fn concurrent_sends_get_distinct_seqs_and_none_is_lost() {
    let app = spawn_app().await;
    let [alice, bob] = app.users(["alice", "bob"]).await;
    let group = app.group(&alice, &[&bob]).await;
    let path = format!("/api/v1/conversations/{group}/messages");
    let sends = (0..100).map(|i| {
        let sender = if i % 2 == 0 { &alice } else { &bob };
        app.post(&path, &sender.token, json!({"content": format!("m{i}")}))
    });
    let mut seqs = Vec::new();
    for response in futures_util::future::join_all(sends).await {
        assert_eq!(response.status(), StatusCode::CREATED);
        seqs.push(
            response.json::<Value>().await.unwrap()["seq"]
                .as_i64()
                .unwrap(),
        );
    }
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), 100);
    let history: Vec<Value> = app
        .get(&format!("{path}?limit=200"), &alice.token)
        .await
        .json()
        .await
        .unwrap();
    let stored: Vec<i64> = history.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert_eq!(stored, seqs);
}
