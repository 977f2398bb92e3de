//! Privacy and abuse: who sees an email address, logins that an attacker cannot lock,
//! deactivated users, and how fast one user can pull others into conversations.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_rate_limited, spawn_app, spawn_limited_app};

async fn login(app: &TestApp, body: Value) -> reqwest::Response {
    app.request(Method::POST, "/api/v1/auth/login", None, Some(body))
        .await
}

/// Ten wrong passwords for `username`: without a device token, the account is now locked.
async fn lock_out(app: &TestApp, username: &str) {
    for _ in 0..10 {
        let response = login(app, json!({"username": username, "password": "guess"})).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let attacker = login(
        app,
        json!({"username": username, "password": "correct horse"}),
    )
    .await;
    assert_eq!(attacker.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        attacker.json::<Value>().await.unwrap()["code"],
        "rate_limited"
    );
}

/// Logs `username` in and returns the device token handed out.
async fn device_token(app: &TestApp, username: &str) -> String {
    let response = login(
        app,
        json!({"username": username, "password": "correct horse"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let token = body["device_token"].as_str().unwrap().to_owned();
    assert_ne!(token, body["access_token"].as_str().unwrap());
    token
}

/// Every `email` key anywhere in a JSON document.
fn emails_in(value: &Value) -> Vec<String> {
    match value {
        Value::Object(map) => map
            .iter()
            .flat_map(|(key, v)| match (key.as_str(), v) {
                ("email", Value::String(email)) => vec![email.clone()],
                _ => emails_in(v),
            })
            .collect(),
        Value::Array(items) => items.iter().flat_map(emails_in).collect(),
        _ => Vec::new(),
    }
}

#[tokio::test]
async fn no_other_user_sees_an_email_address_anywhere() {
    let app = spawn_app().await;
    let [alice, bob, carol] = app.users(["alice", "bob", "carol"]).await;
    let group = app.group(&alice, &[&bob, &carol]).await;
    app.direct(&alice, &bob).await;
    app.send(&alice, &group, "hello").await;
    // A deactivated user's address is no more visible than anyone else's.
    app.deactivate(&carol).await;

    for path in [
        "/api/v1/users".to_owned(),
        "/api/v1/users?q=example".to_owned(),
        format!("/api/v1/users/{}", bob.id),
        format!("/api/v1/users/{}", carol.id),
        format!("/api/v1/users/{}", alice.id),
        "/api/v1/conversations".to_owned(),
        format!("/api/v1/conversations/{group}"),
    ] {
        let response = app.get(&path, &alice.token).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let body: Value = response.json().await.unwrap();
        assert!(emails_in(&body).is_empty(), "{path} shows {body}");
        assert!(!body.to_string().contains("@example.com"), "{path}: {body}");
    }
    let listed: Vec<Value> = app
        .get("/api/v1/users", &alice.token)
        .await
        .json()
        .await
        .unwrap();
    let carol_listed = listed.iter().find(|u| u["username"] == "carol").unwrap();
    assert_eq!(carol_listed["is_active"], false);
    assert_eq!(carol_listed["full_name"], "carol Example");
}

#[tokio::test]
async fn the_owner_sees_their_own_email_where_they_read_or_edit_their_account() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    for path in ["/api/v1/auth/me", "/api/v1/users/me"] {
        let me: Value = app.get(path, &alice.token).await.json().await.unwrap();
        assert_eq!(me["email"], "alice@example.com", "{path}");
    }
    let edited: Value = app
        .put(
            "/api/v1/users/me",
            &alice.token,
            json!({"email": "alice@new.example.com"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(edited["email"], "alice@new.example.com");
}

#[tokio::test]
async fn search_finds_a_user_by_their_whole_email_but_never_by_part_of_it() {
    let app = spawn_app().await;
    let [alice, _bob] = app.users(["alice", "bob"]).await;
    let search = |q: &'static str| app.search_usernames(&alice.token, q);
    assert_eq!(search("BOB%40example.com").await, ["bob"]);
    assert!(search("%40example.com").await.is_empty());
    assert!(search("bob%40exam").await.is_empty());
    assert!(search("example.com").await.is_empty());
}

#[tokio::test]
async fn the_openapi_schema_of_another_user_has_no_email() {
    let app = spawn_app().await;
    let doc = app.openapi().await;
    let schemas = &doc["components"]["schemas"];
    let public = &schemas["PublicUserResponse"]["properties"];
    assert!(public.get("username").is_some(), "{public}");
    assert!(public.get("email").is_none(), "{public}");
    assert!(
        schemas["ParticipantResponse"]["properties"]
            .get("email")
            .is_none()
    );
    let list = &doc["paths"]["/api/v1/users"]["get"]["responses"]["200"]["content"]["application/json"]
        ["schema"]["items"]["$ref"];
    assert_eq!(list, "#/components/schemas/PublicUserResponse");
    let one = &doc["paths"]["/api/v1/users/{user_id}"]["get"]["responses"]["200"]["content"]["application/json"]
        ["schema"]["$ref"];
    assert_eq!(one, "#/components/schemas/PublicUserResponse");
}

#[tokio::test]
async fn a_locked_out_account_still_lets_in_a_client_with_its_device_token() {
    let app = spawn_limited_app(|_| {}).await;
    app.user("alice").await;
    let device = device_token(&app, "alice").await;
    lock_out(&app, "alice").await;

    let response = login(
        &app,
        json!({"username": "alice", "password": "correct horse", "device_token": device}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(
        app.get("/api/v1/auth/me", access).await.status(),
        StatusCode::OK
    );
    // The OAuth2 form carries the device token too.
    let form = app
        .client
        .post(format!("{}/api/v1/auth/login", app.address))
        .form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "correct horse"),
            ("device_token", body["device_token"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), StatusCode::OK);
    // Whoever has no device token is still refused.
    let attacker = login(
        &app,
        json!({"username": "alice", "password": "correct horse"}),
    )
    .await;
    assert_eq!(attacker.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_forged_device_token_or_one_for_another_account_does_not_lift_the_lockout() {
    let app = spawn_limited_app(|_| {}).await;
    app.users(["alice", "bob"]).await;
    let bobs = device_token(&app, "bob").await;
    let alices = device_token(&app, "alice").await;
    let access = app.login("alice", "correct horse").await;
    lock_out(&app, "alice").await;
    let (head, rest) = alices.split_once('.').unwrap();
    let forged = format!(
        "{head}.{}",
        rest.replacen(|c: char| c.is_ascii_alphanumeric(), "A", 1)
    );
    for token in [
        bobs.as_str(),
        forged.as_str(),
        access.as_str(),
        "not a token",
    ] {
        let response = login(
            &app,
            json!({"username": "alice", "password": "correct horse", "device_token": token}),
        )
        .await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS, "{token}");
    }
}

#[tokio::test]
async fn a_device_past_its_own_budget_of_failures_is_refused_too() {
    let app = spawn_limited_app(|_| {}).await;
    app.user("alice").await;
    let device = device_token(&app, "alice").await;
    for _ in 0..5 {
        let response = login(
            &app,
            json!({"username": "alice", "password": "guess", "device_token": device}),
        )
        .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let refused = login(
        &app,
        json!({"username": "alice", "password": "correct horse", "device_token": device}),
    )
    .await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().contains_key("retry-after"));
}

/// `user`'s role in a conversation, as `viewer` sees it.
async fn role_of(app: &TestApp, viewer: &crate::helpers::TestUser, id: &str, user: &str) -> Value {
    let details: Value = app
        .get(&format!("/api/v1/conversations/{id}"), &viewer.token)
        .await
        .json()
        .await
        .unwrap();
    details["participants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == user)
        .map(|p| p["role"].clone())
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn a_deactivated_owner_stays_a_member_and_the_group_passes_to_the_next_member() {
    let app = spawn_app().await;
    let [alice, bob, carol] = app.users(["alice", "bob", "carol"]).await;
    let group = app.group(&alice, &[&bob]).await;
    // Carol joins later: Bob is the longest-standing member.
    let added = app
        .post(
            &format!("/api/v1/conversations/{group}/members"),
            &alice.token,
            json!({"user_ids": [carol.id]}),
        )
        .await;
    assert_eq!(added.status(), StatusCode::OK);
    app.deactivate(&alice).await;
    assert_eq!(role_of(&app, &bob, &group, &bob.id).await, "owner");
    assert_eq!(role_of(&app, &bob, &group, &alice.id).await, "member");
    // The new owner manages the group.
    let renamed = app
        .put(
            &format!("/api/v1/conversations/{group}"),
            &bob.token,
            json!({"name": "bob's"}),
        )
        .await;
    assert_eq!(renamed.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_deactivated_user_cannot_be_messaged_added_or_put_in_a_conversation() {
    let app = spawn_app().await;
    let [alice, bob, carol] = app.users(["alice", "bob", "carol"]).await;
    let group = app.group(&alice, &[&bob]).await;
    app.deactivate(&carol).await;

    let attempts = [
        app.post(
            "/api/v1/conversations",
            &alice.token,
            json!({"participant_ids": [carol.id]}),
        )
        .await,
        app.post(
            "/api/v1/conversations",
            &alice.token,
            json!({"participant_ids": [bob.id, carol.id], "name": "new", "is_group": true}),
        )
        .await,
        app.post(
            &format!("/api/v1/conversations/{group}/members"),
            &alice.token,
            json!({"user_ids": [carol.id]}),
        )
        .await,
    ];
    for response in attempts {
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            response.json::<Value>().await.unwrap()["code"],
            "user_not_found"
        );
    }
    // A direct message by recipient over the WebSocket is refused the same way.
    let mut ws = app.ws(&alice).await;
    ws.send_json(json!({
        "type": "message",
        "recipient_id": carol.id,
        "content": "hello?",
        "client_message_id": "c1",
    }))
    .await;
    let error = ws.next_of_type("error").await;
    assert_eq!(error["code"], "user_not_found", "{error}");
}

#[tokio::test]
async fn creating_conversations_and_adding_members_fast_gets_429_with_retry_after() {
    let app = spawn_limited_app(|config| config.conversations_per_minute = 3).await;
    let [alice, bob, carol] = app.users(["alice", "bob", "carol"]).await;
    let group = app.group(&alice, &[&bob]).await;
    app.group(&alice, &[&bob]).await;
    let added = app
        .post(
            &format!("/api/v1/conversations/{group}/members"),
            &alice.token,
            json!({"user_ids": [carol.id]}),
        )
        .await;
    assert_eq!(added.status(), StatusCode::OK);
    let refused = app
        .post(
            "/api/v1/conversations",
            &alice.token,
            json!({"participant_ids": [carol.id], "name": "one more", "is_group": true}),
        )
        .await;
    assert_rate_limited(refused, 20).await;
    // Bob was not pulled into anything more, and has a budget of his own.
    let bobs: Vec<Value> = app
        .get("/api/v1/conversations", &bob.token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(bobs.len(), 2);
    app.group(&bob, &[&carol]).await;
}

#[tokio::test]
async fn a_direct_conversation_with_a_user_who_deactivated_takes_no_more_messages() {
    let app = spawn_app().await;
    let [alice, carol] = app.users(["alice", "carol"]).await;
    let direct = app.direct(&alice, &carol).await;
    let path = format!("/api/v1/conversations/{direct}/messages");
    let asked = json!({"content": "still there?", "client_message_id": "k-1"});
    let before: Value = app
        .post(&path, &alice.token, asked.clone())
        .await
        .json()
        .await
        .unwrap();
    // The commit thread has this conversation's members in memory now: deactivation must
    // reach it too.
    app.deactivate(&carol).await;

    // A retry of what was stored before still gets it back.
    let retried = app.post(&path, &alice.token, asked).await;
    assert_eq!(retried.status(), StatusCode::OK);
    assert_eq!(retried.json::<Value>().await.unwrap()["id"], before["id"]);

    let refused = app
        .post(&path, &alice.token, json!({"content": "hello?"}))
        .await;
    assert_eq!(refused.status(), StatusCode::NOT_FOUND);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["code"], "user_not_found", "{body}");

    let mut ws = app.ws(&alice).await;
    ws.send_message(&direct, "hello again?", "d-1").await;
    let error = ws.next_of_type("error").await;
    assert_eq!(error["code"], "user_not_found", "{error}");
    assert_eq!(error["ref"], "d-1");

    // Alice still reads what was said before.
    let history: Vec<Value> = app.get(&path, &alice.token).await.json().await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["id"], before["id"]);
}
