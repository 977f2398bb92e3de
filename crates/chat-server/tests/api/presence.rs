//! Presence end to end: online, away and offline over the WebSocket, read over REST by those
//! who may see it, `presence` events to co-members only (coalesced), the last-seen privacy
//! setting, and the routes' answers to those who may not ask.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, Ws, spawn_app, spawn_app_with, test_config};
use crate::ws::PATIENCE;

/// A server that sends presence events, coalesced over `window`.
async fn spawn_presence_app(window: Duration) -> TestApp {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut config = test_config(&dir);
    config.presence_events = true;
    config.presence_window = window;
    spawn_app_with(config, dir).await
}

async fn presence_of(app: &TestApp, viewer: &TestUser, user: &TestUser) -> reqwest::Response {
    app.get(
        &format!("/api/v1/users/{}/presence", user.id),
        &viewer.token,
    )
    .await
}

/// `user`'s presence as `viewer` sees it, which must be visible.
async fn seen(app: &TestApp, viewer: &TestUser, user: &TestUser) -> Value {
    let response = presence_of(app, viewer, user).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// Polls `user`'s presence as `viewer` sees it until its status is `status`: a socket's
/// close reaches the server a moment after the client sends it.
async fn until_status(app: &TestApp, viewer: &TestUser, user: &TestUser, status: &str) -> Value {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let presence = seen(app, viewer, user).await;
        if presence["status"] == status {
            return presence;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} never became {status}: {presence}",
            user.id
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sends a `presence` frame, then waits for the answer to a ping sent after it: frames are
/// handled in order, so the status is set by then.
async fn say(ws: &mut Ws, status: &str) {
    ws.send_json(json!({"type": "presence", "status": status}))
        .await;
    ws.assert_open().await;
}

async fn close(mut ws: Ws) {
    ws.stream.close(None).await.expect("the close is sent");
}

/// The next presence event about `user`, skipping those about others.
async fn next_presence_of(ws: &mut Ws, user: &TestUser) -> Value {
    loop {
        let event = ws.next_of_type("presence").await;
        if event["user_id"] == user.id.as_str() {
            return event;
        }
    }
}

async fn set_hidden(app: &TestApp, user: &TestUser, hide: bool) {
    let response = app
        .put(
            "/api/v1/users/me/privacy",
            &user.token,
            json!({"hide_last_seen": hide}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"hide_last_seen": hide}));
}

#[tokio::test]
async fn a_co_member_sees_online_then_away_then_offline_with_when_last_seen() {
    let app = spawn_app().await;
    let [alice, bob] = app.users(["alice", "bob"]).await;
    app.direct(&alice, &bob).await;
    let never = seen(&app, &bob, &alice).await;
    assert_eq!(
        never,
        json!({"user_id": alice.id, "status": "offline", "last_seen_at": null}),
        "never connected"
    );

    let mut phone = app.ws(&alice).await;
    let mut laptop = app.ws(&alice).await;
    assert_eq!(seen(&app, &bob, &alice).await["status"], "online");
    say(&mut phone, "away").await;
    assert_eq!(
        seen(&app, &bob, &alice).await["status"],
        "online",
        "the laptop is not away"
    );
    say(&mut laptop, "away").await;
    assert_eq!(seen(&app, &bob, &alice).await["status"], "away");
    say(&mut laptop, "online").await;
    assert_eq!(seen(&app, &bob, &alice).await["status"], "online");
    assert_eq!(seen(&app, &bob, &alice).await["last_seen_at"], Value::Null);

    close(phone).await;
    close(laptop).await;
    let gone = until_status(&app, &bob, &alice, "offline").await;
    // Written a moment after the last close, on the blocking pool.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut gone = gone;
    while gone["last_seen_at"].is_null() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no last_seen_at: {gone}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        gone = seen(&app, &bob, &alice).await;
    }
    let at: chrono::DateTime<chrono::Utc> = gone["last_seen_at"].as_str().unwrap().parse().unwrap();
    assert!(at <= chrono::Utc::now());
}

#[tokio::test]
async fn presence_is_read_by_co_members_only_and_a_stranger_is_not_found() {
    let app = spawn_app().await;
    let [alice, bob, eve] = app.users(["alice", "bob", "eve"]).await;
    app.group(&alice, &[&bob]).await;
    let _alices = app.ws(&alice).await;
    assert_eq!(seen(&app, &bob, &alice).await["status"], "online");
    assert_eq!(
        seen(&app, &alice, &alice).await["status"],
        "online",
        "everyone sees their own"
    );
    let refused = presence_of(&app, &eve, &alice).await;
    assert_eq!(refused.status(), StatusCode::NOT_FOUND);
    let refused: Value = refused.json().await.unwrap();
    let ghost = TestUser {
        id: uuid::Uuid::new_v4().to_string(),
        token: eve.token.clone(),
    };
    let missing = presence_of(&app, &eve, &ghost).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let missing: Value = missing.json().await.unwrap();
    assert_eq!(
        refused["code"], missing["code"],
        "a stranger looks like nobody"
    );
}

#[tokio::test]
async fn the_bulk_query_answers_in_order_those_the_caller_may_see_each_once() {
    let app = spawn_app().await;
    let [alice, bob, carol, eve] = app.users(["alice", "bob", "carol", "eve"]).await;
    app.group(&alice, &[&bob, &carol]).await;
    let _carols = app.ws(&carol).await;
    let response = app
        .post(
            "/api/v1/presence/query",
            &alice.token,
            json!({"user_ids": [carol.id, eve.id, bob.id, carol.id, uuid::Uuid::new_v4()]}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Vec<Value> = response.json().await.unwrap();
    let got: Vec<(&str, &str)> = body
        .iter()
        .map(|p| {
            (
                p["user_id"].as_str().unwrap(),
                p["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [(carol.id.as_str(), "online"), (bob.id.as_str(), "offline")]
    );
}

#[tokio::test]
async fn a_bulk_query_over_two_hundred_ids_or_with_a_bad_id_is_unprocessable() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let many: Vec<String> = (0..201).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    for body in [
        json!({"user_ids": many}),
        json!({"user_ids": ["not-a-uuid"]}),
        json!({"user_ids": "x"}),
    ] {
        let response = app
            .post("/api/v1/presence/query", &alice.token, body.clone())
            .await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}"
        );
        let error: Value = response.json().await.unwrap();
        assert!(
            error["code"].is_string() && error["detail"].is_string(),
            "{error}"
        );
    }
    let two_hundred = &many[..200];
    let response = app
        .post(
            "/api/v1/presence/query",
            &alice.token,
            json!({ "user_ids": two_hundred }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn presence_routes_refuse_callers_without_a_valid_token() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let calls = [
        (
            Method::GET,
            format!("/api/v1/users/{}/presence", alice.id),
            None,
        ),
        (
            Method::POST,
            "/api/v1/presence/query".to_owned(),
            Some(json!({"user_ids": [alice.id]})),
        ),
        (Method::GET, "/api/v1/users/me/privacy".to_owned(), None),
        (
            Method::PUT,
            "/api/v1/users/me/privacy".to_owned(),
            Some(json!({"hide_last_seen": true})),
        ),
    ];
    for (method, path, body) in calls {
        for token in [None, Some("not-a-token")] {
            let response = app
                .request(method.clone(), &path, token, body.clone())
                .await;
            assert_eq!(
                response.status(),
                StatusCode::UNAUTHORIZED,
                "{method} {path}"
            );
        }
    }
    let hidden: Value = app
        .get("/api/v1/users/me/privacy", &alice.token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(hidden["hide_last_seen"], false, "nothing changed");
}

#[tokio::test]
async fn hiding_last_seen_hides_it_from_others_and_theirs_from_you() {
    let app = spawn_app().await;
    let [alice, bob] = app.users(["alice", "bob"]).await;
    app.direct(&alice, &bob).await;
    for user in [&alice, &bob] {
        let ws = app.ws(user).await;
        close(ws).await;
    }
    for (viewer, user) in [(&bob, &alice), (&alice, &bob)] {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while seen(&app, viewer, user).await["last_seen_at"].is_null() {
            assert!(tokio::time::Instant::now() < deadline, "no last_seen_at");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    set_hidden(&app, &alice, true).await;
    let hidden: Value = app
        .get("/api/v1/users/me/privacy", &alice.token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(hidden["hide_last_seen"], true);
    assert_eq!(seen(&app, &bob, &alice).await["last_seen_at"], Value::Null);
    assert_eq!(
        seen(&app, &alice, &bob).await["last_seen_at"],
        Value::Null,
        "who hides theirs sees nobody's"
    );
    assert!(
        seen(&app, &alice, &alice).await["last_seen_at"].is_string(),
        "but their own"
    );
    set_hidden(&app, &alice, false).await;
    assert!(seen(&app, &bob, &alice).await["last_seen_at"].is_string());
}

#[tokio::test]
async fn presence_events_reach_those_who_share_a_conversation_and_nobody_else() {
    let app = spawn_presence_app(Duration::ZERO).await;
    let [alice, bob, carol, eve] = app.users(["alice", "bob", "carol", "eve"]).await;
    app.group(&alice, &[&bob]).await;
    app.direct(&eve, &carol).await;
    let mut bobs = app.ws(&bob).await;
    let mut eves = app.ws(&eve).await;

    let mut alices = app.ws(&alice).await;
    let online = bobs.next_of_type("presence").await;
    assert_eq!(
        online,
        json!({"type": "presence", "user_id": alice.id, "status": "online", "last_seen_at": null})
    );
    say(&mut alices, "away").await;
    let away = bobs.next_of_type("presence").await;
    assert_eq!(
        (&away["user_id"], &away["status"]),
        (&json!(alice.id), &json!("away"))
    );
    close(alices).await;
    let offline = bobs.next_of_type("presence").await;
    assert_eq!(offline["status"], "offline", "{offline}");

    // Eve shares nothing with alice: the first presence she hears of is carol's, whose
    // socket opened after every one of alice's changes had been announced.
    let _carols = app.ws(&carol).await;
    let first = eves.next_of_type("presence").await;
    assert_eq!(first["user_id"], carol.id.as_str(), "{first}");
}

#[tokio::test]
async fn changes_wait_out_their_window_so_a_drop_and_reconnect_within_it_announce_nothing() {
    let app = spawn_presence_app(Duration::from_secs(3600)).await;
    let [alice, bob] = app.users(["alice", "bob"]).await;
    let group = app.group(&bob, &[&alice]).await;
    let mut bobs = app.ws(&bob).await;
    // Alice comes online, drops, comes back and goes away: all within her window.
    let alices = app.ws(&alice).await;
    close(alices).await;
    until_status(&app, &bob, &alice, "offline").await;
    let mut again = app.ws(&alice).await;
    say(&mut again, "away").await;
    assert_eq!(
        seen(&app, &bob, &alice).await["status"],
        "away",
        "read at once"
    );
    // A message sent after all that reaches bob with no presence event before it.
    app.send(&alice, &group, "still here").await;
    let next = loop {
        let frame = bobs.next_json().await;
        if frame["type"] == "presence" || frame["type"] == "new_message" {
            break frame;
        }
    };
    assert_eq!(next["type"], "new_message", "{next}");
}

#[tokio::test]
async fn viewers_who_hide_their_last_seen_get_events_without_anyones() {
    let app = spawn_presence_app(Duration::ZERO).await;
    let [alice, bob, carol] = app.users(["alice", "bob", "carol"]).await;
    app.group(&alice, &[&bob, &carol]).await;
    set_hidden(&app, &bob, true).await;
    let mut bobs = app.ws(&bob).await;
    let mut carols = app.ws(&carol).await;
    let alices = app.ws(&alice).await;
    for ws in [&mut bobs, &mut carols] {
        assert_eq!(next_presence_of(ws, &alice).await["status"], "online");
    }
    close(alices).await;
    let for_carol = next_presence_of(&mut carols, &alice).await;
    assert_eq!(for_carol["status"], "offline");
    assert!(for_carol["last_seen_at"].is_string(), "{for_carol}");
    let for_bob = next_presence_of(&mut bobs, &alice).await;
    assert_eq!(for_bob["status"], "offline");
    assert_eq!(for_bob["last_seen_at"], Value::Null, "{for_bob}");
}

#[tokio::test]
async fn a_presence_frame_with_an_unknown_status_is_an_invalid_frame() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let mut ws = app.ws(&alice).await;
    ws.send_json(json!({"type": "presence", "status": "invisible", "ref": "p1"}))
        .await;
    let error = ws.next_json().await;
    assert_eq!(
        (&error["type"], &error["code"], &error["ref"]),
        (&json!("error"), &json!("invalid_frame"), &json!("p1")),
        "{error}"
    );
    ws.assert_open().await;
}

#[tokio::test]
async fn a_recorded_last_seen_and_an_acknowledged_privacy_setting_survive_a_sigkill() {
    use crate::binary::{direct, integrity, sigkill, start, token};

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chat.db");
    let server = start(&db).await;
    let client = reqwest::Client::new();
    let base = server.base.clone();
    let (alice_id, alice) = token(&client, &base, "alice").await;
    let (bob_id, bob) = token(&client, &base, "bob").await;
    direct(&client, &base, &alice, &bob_id).await;
    let presence = |base: &str, token: &str| {
        client
            .get(format!("{base}/api/v1/users/{alice_id}/presence"))
            .bearer_auth(token.to_owned())
            .send()
    };

    let ws_url = format!("{}/api/v1/ws?token={alice}", base.replace("http", "ws"));
    let (mut socket, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
    socket.close(None).await.unwrap();
    // The last-seen time is written a moment after the close; alice sees her own.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let recorded = loop {
        let own: Value = presence(&base, &alice).await.unwrap().json().await.unwrap();
        if own["status"] == "offline" && own["last_seen_at"].is_string() {
            break own["last_seen_at"].clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never recorded: {own}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let hidden = client
        .put(format!("{base}/api/v1/users/me/privacy"))
        .bearer_auth(&bob)
        .json(&json!({"hide_last_seen": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(hidden.status(), StatusCode::OK);
    sigkill(server); // SIGKILL the moment the setting is acknowledged
    assert_eq!(integrity(&db), ["ok"]);

    let mut restarted = start(&db).await;
    let own: Value = presence(&restarted.base, &alice)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(own["last_seen_at"], recorded);
    let setting: Value = client
        .get(format!("{}/api/v1/users/me/privacy", restarted.base))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(setting["hide_last_seen"], true);
    let as_bob: Value = presence(&restarted.base, &bob)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        as_bob["last_seen_at"],
        Value::Null,
        "bob hides, so sees none"
    );
    restarted.child.kill().unwrap();
    restarted.child.wait().unwrap();
}
