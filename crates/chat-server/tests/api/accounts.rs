//! Sign-up, login, tokens and profiles.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::spawn_app;

async fn signup(app: &crate::helpers::TestApp, body: Value) -> reqwest::Response {
    app.request(Method::POST, "/api/v1/auth/signup", None, Some(body))
        .await
}

#[tokio::test]
async fn signup_returns_the_user_without_any_password_material() {
    let app = spawn_app().await;
    let response = signup(
        &app,
        json!({"username": "alice", "email": "alice@example.com", "password": "correct horse", "full_name": "Alice"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let user: Value = response.json().await.unwrap();
    assert_eq!(user["username"], "alice");
    assert_eq!(user["email"], "alice@example.com");
    assert_eq!(user["full_name"], "Alice");
    assert_eq!(user["is_active"], true);
    assert!(uuid::Uuid::parse_str(user["id"].as_str().unwrap()).is_ok());
    assert!(chrono::DateTime::parse_from_rfc3339(user["created_at"].as_str().unwrap()).is_ok());
    let text = user.to_string();
    assert!(!text.contains("password") && !text.contains("$2b$"));
}

#[tokio::test]
async fn duplicate_usernames_ignoring_case_and_duplicate_emails_conflict() {
    let app = spawn_app().await;
    app.user("alice").await;
    let same_name = signup(
        &app,
        json!({"username": "ALICE", "email": "other@example.com", "password": "correct horse"}),
    )
    .await;
    assert_eq!(same_name.status(), StatusCode::CONFLICT);
    let body: Value = same_name.json().await.unwrap();
    assert_eq!(body["code"], "username_taken");
    let same_email = signup(
        &app,
        json!({"username": "bob", "email": "Alice@Example.com", "password": "correct horse"}),
    )
    .await;
    assert_eq!(same_email.status(), StatusCode::CONFLICT);
    assert_eq!(
        same_email.json::<Value>().await.unwrap()["code"],
        "email_taken"
    );
}

#[tokio::test]
async fn invalid_signups_list_every_bad_field() {
    let app = spawn_app().await;
    let response = signup(
        &app,
        json!({"username": "a b", "email": "not-an-email", "password": "x".repeat(73)}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "validation_error");
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["username", "email", "password"]);
}

#[tokio::test]
async fn login_works_with_json_or_the_oauth2_form_and_username_or_email() {
    let app = spawn_app().await;
    app.user("alice").await;
    let token = app.login("alice@example.com", "correct horse").await;
    let me: Value = app
        .get("/api/v1/auth/me", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["username"], "alice");

    let form = app
        .client
        .post(format!("{}/api/v1/auth/login", app.address))
        .form(&[
            ("username", "alice"),
            ("password", "correct horse"),
            ("grant_type", "password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), StatusCode::OK);
    let body: Value = form.json().await.unwrap();
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 3600);
    assert!(body["access_token"].as_str().unwrap().split('.').count() == 3);
}

#[tokio::test]
async fn unknown_user_and_wrong_password_get_the_same_401() {
    let app = spawn_app().await;
    app.user("alice").await;
    let mut bodies = Vec::new();
    for (username, password) in [("alice", "wrong password"), ("nobody", "correct horse")] {
        let response = app
            .request(
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(json!({"username": username, "password": password})),
            )
            .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(response.headers().contains_key("www-authenticate"));
        let mut body = response.json::<Value>().await.unwrap();
        // Each response has its own request id; everything else must be the same.
        assert!(body["request_id"].is_string());
        body.as_object_mut().unwrap().remove("request_id");
        bodies.push(body);
    }
    assert_eq!(bodies[0], bodies[1]);
    assert_eq!(bodies[0]["code"], "invalid_credentials");
}

#[tokio::test]
async fn protected_endpoints_refuse_missing_and_bad_tokens_with_401() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let missing = app
        .request(Method::GET, "/api/v1/auth/me", None, None)
        .await;
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(missing.headers()["www-authenticate"], "Bearer");
    assert_eq!(
        missing.json::<Value>().await.unwrap()["code"],
        "unauthorized"
    );

    let mut tampered = alice.token.clone();
    tampered.pop();
    tampered.push(if alice.token.ends_with('A') { 'B' } else { 'A' });
    for token in [tampered.as_str(), "not-a-jwt", "a.b.c"] {
        let response = app.get("/api/v1/auth/me", token).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "token {token}");
    }
    let basic = app
        .client
        .get(format!("{}/api/v1/auth/me", app.address))
        .basic_auth("alice", Some("correct horse"))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_token_is_refused_once_expired() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::helpers::test_config(&dir);
    config.token_ttl = std::time::Duration::from_secs(1);
    let app = crate::helpers::spawn_app_with(config, dir).await;
    let alice = app.user("alice").await;
    assert_eq!(
        app.get("/api/v1/auth/me", &alice.token).await.status(),
        StatusCode::OK
    );
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(
        app.get("/api/v1/auth/me", &alice.token).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn tokens_survive_a_restart_with_the_generated_secret() {
    let dir = tempfile::tempdir().unwrap();
    let config = crate::helpers::test_config(&dir);
    let first = crate::helpers::spawn_app_with(config.clone(), tempfile::tempdir().unwrap()).await;
    let alice = first.user("alice").await;
    first.shutdown.stop().await;
    let second = crate::helpers::spawn_app_with(config, dir).await;
    let me = second.get("/api/v1/auth/me", &alice.token).await;
    assert_eq!(me.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_user_search_ranks_the_username_itself_then_prefixes_then_full_name_words() {
    let app = spawn_app().await;
    // Every test user's full name is "<name> Example".
    let [alice, ..] = app.users(["alice", "bob", "exam", "alexa", "exa"]).await;
    assert_eq!(
        app.search_usernames(&alice.token, "EXA").await,
        ["exa", "exam", "alexa", "alice", "bob"]
    );
    assert_eq!(app.search_usernames(&alice.token, "lex").await, ["alexa"]);
}

#[tokio::test]
async fn users_can_be_searched_paged_and_fetched_by_id() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    for name in ["bob", "malice", "carol"] {
        app.user(name).await;
    }
    let found: Vec<Value> = app
        .get("/api/v1/users?q=LIC", &alice.token)
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = found
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "malice"]);
    let page: Vec<Value> = app
        .get("/api/v1/users?limit=2&offset=1", &alice.token)
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = page
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["bob", "carol"]);
    let one: Value = app
        .get(&format!("/api/v1/users/{}", alice.id), &alice.token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one["username"], "alice");
    let missing = app
        .get(
            &format!("/api/v1/users/{}", uuid::Uuid::new_v4()),
            &alice.token,
        )
        .await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        missing.json::<Value>().await.unwrap()["code"],
        "user_not_found"
    );
    for bad in ["limit=0", "limit=201", "offset=-1", "limit=ten"] {
        let response = app.get(&format!("/api/v1/users?{bad}"), &alice.token).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
}

#[tokio::test]
async fn a_profile_update_changes_only_what_is_given() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let response = app
        .put(
            "/api/v1/users/me",
            &alice.token,
            json!({"bio": "hello", "avatar_url": "https://cdn.example.com/a.png"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let user: Value = response.json().await.unwrap();
    assert_eq!(user["bio"], "hello");
    assert_eq!(user["avatar_url"], "https://cdn.example.com/a.png");
    assert_eq!(user["full_name"], "alice Example");
    assert_ne!(user["updated_at"], user["created_at"]);
    let bad_url = app
        .put(
            "/api/v1/users/me",
            &alice.token,
            json!({"avatar_url": "javascript:alert(1)"}),
        )
        .await;
    assert_eq!(bad_url.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let me: Value = app
        .get("/api/v1/users/me", &alice.token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["bio"], "hello");
}

#[tokio::test]
async fn taking_someone_elses_email_conflicts() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    app.user("bob").await;
    let response = app
        .put(
            "/api/v1/users/me",
            &alice.token,
            json!({"email": "BOB@example.com"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(
        response.json::<Value>().await.unwrap()["code"],
        "email_taken"
    );
}

#[tokio::test]
async fn changing_the_password_requires_the_current_one() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let wrong = app
        .put(
            "/api/v1/users/me",
            &alice.token,
            json!({"password": "new password!", "current_password": "guess"}),
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    let missing = app
        .put(
            "/api/v1/users/me",
            &alice.token,
            json!({"password": "new password!"}),
        )
        .await;
    assert_eq!(missing.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let ok = app
        .put(
            "/api/v1/users/me",
            &alice.token,
            json!({"password": "new password!", "current_password": "correct horse"}),
        )
        .await;
    assert_eq!(ok.status(), StatusCode::OK);
    app.login("alice", "new password!").await;
    let old = app
        .request(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "alice", "password": "correct horse"})),
        )
        .await;
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn logout_revokes_the_token_used_and_closes_its_websocket_only() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let phone = crate::helpers::TestUser {
        token: app.login("alice", "correct horse").await,
        ..alice.clone()
    };
    let mut laptop_ws = app.ws(&alice).await;
    let mut phone_ws = app.ws(&phone).await;
    let logout = app
        .request(
            Method::POST,
            "/api/v1/auth/logout",
            Some(&phone.token),
            None,
        )
        .await;
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.get("/api/v1/auth/me", &phone.token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get("/api/v1/auth/me", &alice.token).await.status(),
        StatusCode::OK
    );

    let error = phone_ws.next_json().await;
    assert_eq!(error["code"], "unauthorized");
    assert_eq!(phone_ws.close_code().await, Some(1008));
    laptop_ws.send_json(json!({"type": "ping"})).await;
    assert_eq!(laptop_ws.next_json().await["type"], "pong");
}

#[tokio::test]
async fn a_password_change_revokes_every_earlier_token() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let other_device = app.login("alice", "correct horse").await;
    let mut ws = app.ws(&alice).await;
    let changed = app
        .put(
            "/api/v1/users/me",
            &alice.token,
            json!({"password": "new password!", "current_password": "correct horse"}),
        )
        .await;
    assert_eq!(changed.status(), StatusCode::OK);
    for token in [&alice.token, &other_device] {
        assert_eq!(
            app.get("/api/v1/auth/me", token).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(ws.next_json().await["code"], "unauthorized");
    assert_eq!(ws.close_code().await, Some(1008));
    let fresh = app.login("alice", "new password!").await;
    assert_eq!(
        app.get("/api/v1/auth/me", &fresh).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_deactivated_account_cannot_log_in_and_its_tokens_stop_working() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let mut ws = app.ws(&alice).await;
    let wrong = app
        .post(
            "/api/v1/users/me/deactivate",
            &alice.token,
            json!({"password": "guess"}),
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    let done = app
        .post(
            "/api/v1/users/me/deactivate",
            &alice.token,
            json!({"password": "correct horse"}),
        )
        .await;
    assert_eq!(done.status(), StatusCode::OK);
    assert_eq!(done.json::<Value>().await.unwrap()["is_active"], false);
    assert_eq!(
        app.get("/api/v1/auth/me", &alice.token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(ws.close_code().await, Some(1008));
    let login = app
        .request(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "alice", "password": "correct horse"})),
        )
        .await;
    assert_eq!(login.status(), StatusCode::UNAUTHORIZED);
}
