//! Login sessions end to end: refresh-token rotation and theft detection, the list of
//! signed-in devices, ending one (its tokens refused, its sockets closed), ending the others,
//! and clients of before sessions that keep working.

use std::time::Duration;

use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{
    TEST_SECRET, TestApp, TestUser, Ws, spawn_app, spawn_app_with, with_known_secret,
};

/// A login's answer, for `name` (password "correct horse") on a device called `device`.
async fn log_in(app: &TestApp, name: &str, device: &str) -> Value {
    let response = app
        .client
        .post(format!("{}/api/v1/auth/login", app.address))
        .header("User-Agent", "chatd-tests/1.0")
        .json(&json!({"username": name, "password": "correct horse", "device_name": device}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

fn access(login: &Value) -> String {
    login["access_token"].as_str().unwrap().to_owned()
}

async fn refresh(app: &TestApp, token: &Value) -> reqwest::Response {
    app.request(
        Method::POST,
        "/api/v1/auth/refresh",
        None,
        Some(json!({"refresh_token": token})),
    )
    .await
}

async fn me_status(app: &TestApp, token: &str) -> StatusCode {
    app.get("/api/v1/auth/me", token).await.status()
}

async fn sessions(app: &TestApp, token: &str) -> Vec<Value> {
    let response = app.get("/api/v1/auth/sessions", token).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn ws_with(app: &TestApp, token: &str) -> Ws {
    let (stream, _) = connect_async(format!("{}?token={token}", app.ws_url))
        .await
        .expect("the WebSocket handshake succeeds");
    let mut ws = Ws { stream };
    assert_eq!(ws.next_json().await["type"], "connected");
    ws
}

/// The socket was told its token is no longer valid and closed with 1008 (answers to our
/// own pings still queued before that are skipped).
async fn assert_revoked(ws: &mut Ws) {
    let mut error = ws.next_json().await;
    while error["type"] == "pong" {
        error = ws.next_json().await;
    }
    assert_eq!(error["code"], "unauthorized", "{error}");
    assert_eq!(ws.close_code().await, Some(1008));
}

#[tokio::test]
async fn a_login_opens_a_session_listed_under_its_device_name_with_a_refresh_token() {
    let app = spawn_app().await;
    app.user("alice").await;
    let login = log_in(&app, "alice", "Alice's phone").await;
    assert_eq!(login["expires_in"], 3600);
    assert_eq!(login["refresh_expires_in"], 60 * 86_400);
    let refresh_token = login["refresh_token"].as_str().unwrap();
    assert!(
        refresh_token.len() >= 43 + 33,
        "256 bits and the session: {refresh_token}"
    );
    let listed = sessions(&app, &access(&login)).await;
    let mine = listed
        .iter()
        .find(|s| s["id"] == login["session_id"])
        .expect("the new session is listed");
    assert_eq!(mine["device"], "Alice's phone");
    assert_eq!(mine["client_address"], "127.0.0.1");
    assert_eq!(mine["current"], true);
    assert!(mine["created_at"].is_string() && mine["last_used_at"].is_string());
    // The other login (app.user's) is listed too, under its user agent, and is not current.
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().filter(|s| s["current"] == true).count() == 1);
}

#[tokio::test]
async fn a_refresh_answers_a_new_pair_and_spends_the_token_it_was_given() {
    let app = spawn_app().await;
    app.user("alice").await;
    let login = log_in(&app, "alice", "phone").await;
    let response = refresh(&app, &login["refresh_token"]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["cache-control"].to_str().unwrap(),
        "no-store"
    );
    let first: Value = response.json().await.unwrap();
    assert_eq!(first["session_id"], login["session_id"]);
    assert_eq!(first["token_type"], "bearer");
    assert_ne!(first["refresh_token"], login["refresh_token"]);
    assert_eq!(me_status(&app, &access(&first)).await, StatusCode::OK);
    let second: Value = refresh(&app, &first["refresh_token"])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me_status(&app, &access(&second)).await, StatusCode::OK);
    let listed = sessions(&app, &access(&second)).await;
    let session = listed.iter().find(|s| s["current"] == true).unwrap();
    assert_eq!(session["id"], login["session_id"], "one session all along");
}

#[tokio::test]
async fn reusing_a_spent_refresh_token_ends_the_whole_session_and_closes_its_sockets() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let login = log_in(&app, "alice", "phone").await;
    let legit: Value = refresh(&app, &login["refresh_token"])
        .await
        .json()
        .await
        .unwrap();
    let mut socket = ws_with(&app, &access(&legit)).await;
    let mut other_device = app.ws(&alice).await;
    // An attacker replays the stolen token the client already rotated.
    let replay = refresh(&app, &login["refresh_token"]).await;
    assert_eq!(replay.status(), StatusCode::UNAUTHORIZED);
    let body: Value = replay.json().await.unwrap();
    assert_eq!(body["code"], "unauthorized");
    assert!(
        body["detail"].as_str().unwrap().contains("already used"),
        "{body}"
    );
    // Every token of that login is dead, the legitimate client's current ones too.
    assert_eq!(
        me_status(&app, &access(&legit)).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        refresh(&app, &legit["refresh_token"]).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_revoked(&mut socket).await;
    // Alice's other login is untouched.
    assert_eq!(me_status(&app, &alice.token).await, StatusCode::OK);
    other_device.assert_open().await;
}

#[tokio::test]
async fn two_refreshes_racing_with_one_token_let_at_most_one_through() {
    let app = spawn_app().await;
    app.user("alice").await;
    let login = log_in(&app, "alice", "phone").await;
    let token = &login["refresh_token"];
    let (a, b) = tokio::join!(refresh(&app, token), refresh(&app, token));
    let statuses = [a.status(), b.status()];
    assert!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count() <= 1,
        "{statuses:?}"
    );
    assert!(statuses.contains(&StatusCode::UNAUTHORIZED), "{statuses:?}");
}

#[tokio::test]
async fn ending_a_session_refuses_its_tokens_at_once_and_closes_its_socket_only() {
    let app = spawn_app().await;
    app.user("alice").await;
    let phone = log_in(&app, "alice", "phone").await;
    let laptop = log_in(&app, "alice", "laptop").await;
    let mut phone_ws = ws_with(&app, &access(&phone)).await;
    let mut laptop_ws = ws_with(&app, &access(&laptop)).await;
    let ended = app
        .delete(
            &format!(
                "/api/v1/auth/sessions/{}",
                phone["session_id"].as_str().unwrap()
            ),
            &access(&laptop),
        )
        .await;
    assert_eq!(ended.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        me_status(&app, &access(&phone)).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        refresh(&app, &phone["refresh_token"]).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_revoked(&mut phone_ws).await;
    assert_eq!(me_status(&app, &access(&laptop)).await, StatusCode::OK);
    laptop_ws.send_json(json!({"type": "ping"})).await;
    assert_eq!(laptop_ws.next_json().await["type"], "pong");
    let listed = sessions(&app, &access(&laptop)).await;
    assert!(listed.iter().all(|s| s["id"] != phone["session_id"]));
}

#[tokio::test]
async fn nobody_can_end_someone_elses_session_nor_tell_it_from_a_missing_one() {
    let app = spawn_app().await;
    app.user("alice").await;
    let mallory = app.user("mallory").await;
    let alice = log_in(&app, "alice", "phone").await;
    let theirs = app
        .delete(
            &format!(
                "/api/v1/auth/sessions/{}",
                alice["session_id"].as_str().unwrap()
            ),
            &mallory.token,
        )
        .await;
    assert_eq!(theirs.status(), StatusCode::NOT_FOUND);
    let theirs: Value = theirs.json().await.unwrap();
    assert_eq!(theirs["code"], "session_not_found");
    let missing: Value = app
        .delete(
            &format!("/api/v1/auth/sessions/{}", uuid::Uuid::new_v4()),
            &mallory.token,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(missing["code"], theirs["code"]);
    assert_eq!(me_status(&app, &access(&alice)).await, StatusCode::OK);
    let not_an_id = app
        .delete("/api/v1/auth/sessions/not-a-uuid", &mallory.token)
        .await;
    assert_eq!(not_an_id.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // Nor list them: each user sees their own sessions only.
    let listed = sessions(&app, &mallory.token).await;
    assert!(listed.iter().all(|s| s["id"] != alice["session_id"]));
}

#[tokio::test]
async fn revoking_the_others_keeps_only_the_session_that_asked() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let phone = log_in(&app, "alice", "phone").await;
    let laptop = log_in(&app, "alice", "laptop").await;
    let bob = app.user("bob").await;
    let mut phone_ws = ws_with(&app, &access(&phone)).await;
    let response = app
        .post(
            "/api/v1/auth/sessions/revoke-others",
            &access(&laptop),
            json!({}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap()["ended"], 2);
    assert_revoked(&mut phone_ws).await;
    for gone in [access(&phone), alice.token] {
        assert_eq!(me_status(&app, &gone).await, StatusCode::UNAUTHORIZED);
    }
    let listed = sessions(&app, &access(&laptop)).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], laptop["session_id"]);
    assert_eq!(me_status(&app, &bob.token).await, StatusCode::OK);
}

#[tokio::test]
async fn logging_out_ends_the_session_with_its_refresh_token() {
    let app = spawn_app().await;
    app.user("alice").await;
    let phone = log_in(&app, "alice", "phone").await;
    let refreshed: Value = refresh(&app, &phone["refresh_token"])
        .await
        .json()
        .await
        .unwrap();
    let logout = app
        .request(
            Method::POST,
            "/api/v1/auth/logout",
            Some(&access(&refreshed)),
            None,
        )
        .await;
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        refresh(&app, &refreshed["refresh_token"]).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_password_change_ends_every_session_so_no_refresh_token_survives_it() {
    let app = spawn_app().await;
    app.user("alice").await;
    let phone = log_in(&app, "alice", "phone").await;
    let laptop = log_in(&app, "alice", "laptop").await;
    let changed = app
        .put(
            "/api/v1/users/me",
            &access(&laptop),
            json!({"password": "a new password!", "current_password": "correct horse"}),
        )
        .await;
    assert_eq!(changed.status(), StatusCode::OK);
    for login in [&phone, &laptop] {
        assert_eq!(
            refresh(&app, &login["refresh_token"]).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
}

#[tokio::test]
async fn a_client_that_ignores_refresh_tokens_works_as_before_and_old_tokens_until_they_expire() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(with_known_secret(&dir), dir).await;
    let alice = app.user("alice").await;
    // The OAuth2 form, as before; the answer has what it had, and more.
    let form: Value = app
        .client
        .post(format!("{}/api/v1/auth/login", app.address))
        .form(&[("username", "alice"), ("password", "correct horse")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for field in ["access_token", "token_type", "expires_in", "device_token"] {
        assert!(!form[field].is_null(), "{field} in {form}");
    }
    let user = TestUser {
        token: access(&form),
        ..alice.clone()
    };
    assert_eq!(me_status(&app, &user.token).await, StatusCode::OK);
    let mut ws = app.ws(&user).await;
    ws.assert_open().await;
    // A token issued before sessions (no `sid`) is honoured until it expires, and logging
    // out still revokes it.
    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "sub": alice.id, "iat": now, "exp": now + 3600, "jti": "issued-before-sessions",
        "iss": "chatd", "aud": "chatd-api", "gen": 0,
    });
    let old = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(TEST_SECRET.as_bytes()),
    )
    .unwrap();
    assert_eq!(me_status(&app, &old).await, StatusCode::OK);
    let listed = sessions(&app, &old).await;
    assert!(listed.iter().all(|s| s["current"] == false));
    let logout = app
        .request(Method::POST, "/api/v1/auth/logout", Some(&old), None)
        .await;
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    assert_eq!(me_status(&app, &old).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me_status(&app, &user.token).await, StatusCode::OK);
}

#[tokio::test]
async fn a_bad_refresh_request_gets_a_json_error_never_a_500() {
    let app = spawn_app().await;
    for (body, status) in [
        (
            json!({"refresh_token": "garbage"}),
            StatusCode::UNAUTHORIZED,
        ),
        (json!({"refresh_token": ""}), StatusCode::UNAUTHORIZED),
        (
            json!({"refresh_token": format!("{}.{}", "0".repeat(32), "A".repeat(43))}),
            StatusCode::UNAUTHORIZED,
        ),
        (json!({}), StatusCode::UNPROCESSABLE_ENTITY),
        (
            json!({"refresh_token": 5}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let response = app
            .request(
                Method::POST,
                "/api/v1/auth/refresh",
                None,
                Some(body.clone()),
            )
            .await;
        assert_eq!(response.status(), status, "{body}");
        let error: Value = response.json().await.unwrap();
        assert!(
            error["detail"].is_string() && error["code"].is_string(),
            "{error}"
        );
    }
    let invalid_name = app
        .request(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "x", "password": "y", "device_name": "two\nlines"})),
        )
        .await;
    assert_eq!(invalid_name.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn a_sessions_socket_outlives_its_access_token_and_closes_when_the_session_ends() {
    let dir = tempfile::tempdir().unwrap();
    let config = chat_server::Config {
        ws_ping_interval: Duration::from_millis(200),
        token_ttl: Duration::from_secs(1),
        ..crate::helpers::test_config(&dir)
    };
    let app = spawn_app_with(config, dir).await;
    app.user("alice").await;
    let login = log_in(&app, "alice", "phone").await;
    let mut ws = ws_with(&app, &access(&login)).await;
    // Wait until the access token has expired for REST, talking all along so that the
    // server keeps hearing from us.
    loop {
        ws.send_json(json!({"type": "ping"})).await;
        assert_eq!(ws.next_json().await["type"], "pong");
        let response = app.get("/api/v1/auth/me", &access(&login)).await;
        if response.status() == StatusCode::UNAUTHORIZED {
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["code"], "token_expired");
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Three heartbeats after that, each re-checking the connection, it is still open.
    let mut pings = 0;
    while pings < 3 {
        let frame = tokio::time::timeout(crate::ws::PATIENCE, ws.stream.next())
            .await
            .expect("the server pings")
            .expect("the connection stays open")
            .unwrap();
        match frame {
            Message::Ping(_) => {
                pings += 1;
                ws.send_json(json!({"type": "ping"})).await;
            }
            Message::Text(text) => assert!(text.contains("pong"), "{text}"),
            other => panic!("expected pings, got {other:?}"),
        }
    }
    // The client refreshes and signs that session out: the socket closes.
    let refreshed: Value = refresh(&app, &login["refresh_token"])
        .await
        .json()
        .await
        .unwrap();
    let ended = app
        .delete(
            &format!(
                "/api/v1/auth/sessions/{}",
                login["session_id"].as_str().unwrap()
            ),
            &access(&refreshed),
        )
        .await;
    assert_eq!(ended.status(), StatusCode::NO_CONTENT);
    assert_revoked(&mut ws).await;
}
