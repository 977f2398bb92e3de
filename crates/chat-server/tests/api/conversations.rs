//! Direct conversations, groups, roles and membership.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::spawn_app;

#[tokio::test]
async fn a_direct_conversation_is_created_once_and_then_returned() {
    let app = spawn_app().await;
    let [alice, bob] = app.users(["alice", "bob"]).await;
    let first = app
        .post(
            "/api/v1/conversations",
            &alice.token,
            json!({"participant_ids": [bob.id, bob.id]}),
        )
        .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["kind"], "direct");
    assert_eq!(first["is_group"], false);
    assert_eq!(first["name"], Value::Null);
    assert_eq!(first["participants"].as_array().unwrap().len(), 2);

    let again = app
        .post(
            "/api/v1/conversations",
            &bob.token,
            json!({"participant_ids": [alice.id]}),
        )
        .await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.json::<Value>().await.unwrap()["id"], first["id"]);
}

#[tokio::test]
async fn concurrent_requests_for_the_same_pair_make_one_direct_conversation() {
    let app = spawn_app().await;
    let [alice, bob] = app.users(["alice", "bob"]).await;
    let requests = (0..8).map(|i| {
        let (from, to) = if i % 2 == 0 {
            (&alice, &bob)
        } else {
            (&bob, &alice)
        };
        app.post(
            "/api/v1/conversations",
            &from.token,
            json!({"participant_ids": [to.id]}),
        )
    });
    let responses = futures_util::future::join_all(requests).await;
    let mut ids = Vec::new();
    for response in responses {
        assert!(response.status().is_success());
        ids.push(response.json::<Value>().await.unwrap()["id"].clone());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1);
}

#[tokio::test]
async fn a_group_needs_a_name_and_its_creator_is_owner() {
    let app = spawn_app().await;
    let [alice, bob, carol] = app.users(["alice", "bob", "carol"]).await;
    let unnamed = app
        .post(
            "/api/v1/conversations",
            &alice.token,
            json!({"participant_ids": [bob.id, carol.id]}),
        )
        .await;
    assert_eq!(unnamed.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let group = app
        .post(
            "/api/v1/conversations",
            &alice.token,
            json!({"participant_ids": [bob.id, carol.id], "name": " Team "}),
        )
        .await;
    assert_eq!(group.status(), StatusCode::CREATED);
    let group: Value = group.json().await.unwrap();
    assert_eq!(group["kind"], "group");
    assert_eq!(group["name"], "Team");
    let roles: Vec<(String, String)> = group["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["username"].as_str().unwrap().into(),
                p["role"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(roles.contains(&("alice".into(), "owner".into())));
    assert!(roles.contains(&("bob".into(), "member".into())));
}

#[tokio::test]
async fn an_unknown_participant_is_a_404_naming_it() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let ghost = uuid::Uuid::new_v4();
    let response = app
        .post(
            "/api/v1/conversations",
            &alice.token,
            json!({"participant_ids": [ghost]}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "user_not_found");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains(&ghost.to_string())
    );
}

#[tokio::test]
async fn non_members_get_404_on_every_conversation_endpoint() {
    let app = spawn_app().await;
    let [alice, bob, eve] = app.users(["alice", "bob", "eve"]).await;
    let group = app.group(&alice, &[&bob]).await;
    let message = app.send(&alice, &group, "secret").await;
    let base = format!("/api/v1/conversations/{group}");
    let responses = [
        app.get(&base, &eve.token).await,
        app.put(&base, &eve.token, json!({"name": "mine"})).await,
        app.post(
            &format!("{base}/members"),
            &eve.token,
            json!({"user_ids": [eve.id]}),
        )
        .await,
        app.delete(&format!("{base}/members/{}", bob.id), &eve.token)
            .await,
        app.post(
            &format!("{base}/messages"),
            &eve.token,
            json!({"content": "hi"}),
        )
        .await,
        app.get(&format!("{base}/messages"), &eve.token).await,
        app.put(
            &format!("/api/v1/messages/{}/read", message["id"].as_str().unwrap()),
            &eve.token,
            json!({}),
        )
        .await,
    ];
    for response in responses {
        assert_eq!(
            response.status(),
            StatusCode::NOT_FOUND,
            "{}",
            response.url()
        );
    }
    let inbox: Vec<Value> = app
        .get("/api/v1/conversations", &eve.token)
        .await
        .json()
        .await
        .unwrap();
    assert!(inbox.is_empty());

    // Nothing eve tried happened: bob is still in, eve was not added, the name and the
    // history are as they were.
    let details: Value = app.get(&base, &alice.token).await.json().await.unwrap();
    let mut members: Vec<(&str, &str)> = details["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["username"].as_str().unwrap(), p["role"].as_str().unwrap()))
        .collect();
    members.sort_unstable();
    assert_eq!(members, [("alice", "owner"), ("bob", "member")]);
    assert_eq!(details["name"], "team");
    let history: Vec<Value> = app
        .get(&format!("{base}/messages"), &alice.token)
        .await
        .json()
        .await
        .unwrap();
    let ids: Vec<&Value> = history.iter().map(|m| &m["id"]).collect();
    assert_eq!(ids, [&message["id"]]);
}

#[tokio::test]
async fn only_owners_and_admins_rename_a_group_and_direct_conversations_cannot_be_renamed() {
    let app = spawn_app().await;
    let [alice, bob] = app.users(["alice", "bob"]).await;
    let group = app.group(&alice, &[&bob]).await;
    let path = format!("/api/v1/conversations/{group}");
    let by_member = app.put(&path, &bob.token, json!({"name": "bob's"})).await;
    assert_eq!(by_member.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        by_member.json::<Value>().await.unwrap()["code"],
        "forbidden"
    );
    let by_owner = app
        .put(&path, &alice.token, json!({"name": "renamed"}))
        .await;
    assert_eq!(by_owner.status(), StatusCode::OK);
    assert_eq!(by_owner.json::<Value>().await.unwrap()["name"], "renamed");
    let details: Value = app.get(&path, &bob.token).await.json().await.unwrap();
    assert_eq!(details["name"], "renamed");

    let direct = app.direct(&alice, &bob).await;
    let rename_direct = app
        .put(
            &format!("/api/v1/conversations/{direct}"),
            &alice.token,
            json!({"name": "x"}),
        )
        .await;
    assert_eq!(rename_direct.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn members_are_added_by_admins_and_removed_members_lose_sight_of_the_group() {
    let app = spawn_app().await;
    let [alice, bob, carol] = app.users(["alice", "bob", "carol"]).await;
    let group = app.group(&alice, &[&bob]).await;
    let base = format!("/api/v1/conversations/{group}");
    let by_member = app
        .post(
            &format!("{base}/members"),
            &bob.token,
            json!({"user_ids": [carol.id]}),
        )
        .await;
    assert_eq!(by_member.status(), StatusCode::FORBIDDEN);
    let added = app
        .post(
            &format!("{base}/members"),
            &alice.token,
            json!({"user_ids": [carol.id]}),
        )
        .await;
    assert_eq!(added.status(), StatusCode::OK);
    assert_eq!(
        added.json::<Value>().await.unwrap()["participants"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    app.send(&alice, &group, "before").await;

    let not_allowed = app
        .delete(&format!("{base}/members/{}", carol.id), &bob.token)
        .await;
    assert_eq!(not_allowed.status(), StatusCode::FORBIDDEN);
    let removed = app
        .delete(&format!("{base}/members/{}", carol.id), &alice.token)
        .await;
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    app.send(&alice, &group, "after").await;
    assert_eq!(
        app.get(&base, &carol.token).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(&format!("{base}/messages"), &carol.token)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let unread: Value = app
        .get("/api/v1/messages/unread/count", &carol.token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(unread["unread_count"], 0);

    let left = app
        .delete(&format!("{base}/members/{}", bob.id), &bob.token)
        .await;
    assert_eq!(left.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.get(&base, &bob.token).await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn the_inbox_lists_recent_activity_first_with_last_message_and_unread_count() {
    let app = spawn_app().await;
    let [alice, bob, carol] = app.users(["alice", "bob", "carol"]).await;
    let with_bob = app.direct(&alice, &bob).await;
    let with_carol = app.direct(&alice, &carol).await;
    app.send(&bob, &with_bob, "one").await;
    app.send(&bob, &with_bob, "two").await;
    app.send(&carol, &with_carol, "latest").await;
    let inbox: Vec<Value> = app
        .get("/api/v1/conversations", &alice.token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(inbox.len(), 2);
    assert_eq!(inbox[0]["id"], with_carol.as_str());
    assert_eq!(inbox[0]["last_message"]["content"], "latest");
    assert_eq!(inbox[0]["unread_count"], 1);
    assert_eq!(inbox[1]["id"], with_bob.as_str());
    assert_eq!(inbox[1]["unread_count"], 2);
    assert_eq!(inbox[1]["participants"].as_array().unwrap().len(), 2);
    let second_page: Vec<Value> = app
        .get("/api/v1/conversations?limit=1&offset=1", &alice.token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(second_page.len(), 1);
    assert_eq!(second_page[0]["id"], with_bob.as_str());
}
