//! Blocking, reports and server admins end to end: the rules over REST and WebSocket, the
//! admin routes, `chat-server admin grant|revoke` run as a binary, and a report and a block
//! acknowledged right before a SIGKILL.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::binary::{run_command, sigkill, start, token};
use crate::helpers::{TestApp, TestUser, assert_rate_limited, spawn_app, spawn_limited_app};

/// Makes `user` a server admin the way the command line does, on the app's database.
fn grant(app: &TestApp, username: &str) {
    let config = crate::helpers::test_config(&app.dir);
    let granted = chat_server::admin::set_admin(&config, username, true).unwrap();
    assert_eq!(granted.user.username.as_str(), username);
}

async fn status_and_code(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (status, body["code"].as_str().unwrap_or_default().to_owned())
}

async fn block(app: &TestApp, who: &TestUser, whom: &str) -> reqwest::Response {
    app.put(
        &format!("/api/v1/users/{whom}/block"),
        &who.token,
        json!({}),
    )
    .await
}

async fn blocked_ids(app: &TestApp, who: &TestUser) -> Vec<String> {
    let blocks: Vec<Value> = app
        .get("/api/v1/users/me/blocks", &who.token)
        .await
        .json()
        .await
        .unwrap();
    blocks
        .iter()
        .map(|b| {
            assert!(b["blocked_at"].is_string(), "{b}");
            assert!(b["user"].get("email").is_none(), "no email: {b}");
            b["user"]["id"].as_str().unwrap().to_owned()
        })
        .collect()
}

#[tokio::test]
async fn blocking_is_idempotent_listed_latest_first_and_refuses_yourself_and_unknown_users() {
    let app = spawn_app().await;
    let [alice, bob, carol] = app.users(["alice", "bob", "carol"]).await;
    for _ in 0..2 {
        assert_eq!(block(&app, &alice, &bob.id).await.status(), 204);
    }
    assert_eq!(block(&app, &alice, &carol.id).await.status(), 204);
    assert_eq!(
        blocked_ids(&app, &alice).await,
        [carol.id.as_str(), bob.id.as_str()]
    );
    assert!(blocked_ids(&app, &bob).await.is_empty());
    let path = format!("/api/v1/users/{}/block", bob.id);
    for _ in 0..2 {
        assert_eq!(app.delete(&path, &alice.token).await.status(), 204);
    }
    assert_eq!(blocked_ids(&app, &alice).await, [carol.id.as_str()]);

    let myself = status_and_code(block(&app, &alice, &alice.id).await).await;
    assert_eq!(myself, (422, "invalid_operation".to_owned()));
    let unknown = block(&app, &alice, &uuid::Uuid::new_v4().to_string()).await;
    assert_eq!(
        status_and_code(unknown).await,
        (404, "user_not_found".to_owned())
    );
    let not_an_id = block(&app, &alice, "bob").await;
    assert_eq!(not_an_id.status(), 422);
}

#[tokio::test]
async fn a_blocked_user_cannot_reach_the_blocker_over_rest_or_websocket_but_groups_still_carry() {
    let app = spawn_app().await;
    let [alice, bob, carol] = app.users(["alice", "bob", "carol"]).await;
    let direct = app.direct(&bob, &alice).await;
    let shared = app.group(&carol, &[&alice, &bob]).await;
    let bobs_group = app.group(&bob, &[&carol]).await;
    assert_eq!(block(&app, &alice, &bob.id).await.status(), 204);

    // Sending into the existing direct conversation.
    let sent = app
        .post(
            &format!("/api/v1/conversations/{direct}/messages"),
            &bob.token,
            json!({"content": "hello?"}),
        )
        .await;
    assert_eq!(status_and_code(sent).await, (403, "blocked".to_owned()));
    // The same over the WebSocket, by conversation and by recipient.
    let mut ws = app.ws(&bob).await;
    ws.send_message(&direct, "hello?", "c1").await;
    let error = ws.next_of_type("error").await;
    assert_eq!(error["code"], "blocked", "{error}");
    ws.send_json(json!({"type": "message", "recipient_id": alice.id, "content": "hi"}))
        .await;
    let error = ws.next_of_type("error").await;
    assert_eq!(error["code"], "blocked", "{error}");
    // Adding the blocker to a group, or starting a new one with them.
    let added = app
        .post(
            &format!("/api/v1/conversations/{bobs_group}/members"),
            &bob.token,
            json!({"user_ids": [alice.id]}),
        )
        .await;
    assert_eq!(status_and_code(added).await, (403, "blocked".to_owned()));
    let new_group = app
        .post(
            "/api/v1/conversations",
            &bob.token,
            json!({"participant_ids": [alice.id, carol.id], "name": "x", "is_group": true}),
        )
        .await;
    assert_eq!(
        status_and_code(new_group).await,
        (403, "blocked".to_owned())
    );

    // Nothing of those reached alice; the blocker may still write; groups still carry.
    let history: Vec<Value> = app
        .get(
            &format!("/api/v1/conversations/{direct}/messages"),
            &alice.token,
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(history.is_empty(), "{history:?}");
    app.send(&alice, &direct, "the blocker writes").await;
    let in_group = app.send(&bob, &shared, "still here").await;
    let seen: Vec<Value> = app
        .get(
            &format!("/api/v1/conversations/{shared}/messages"),
            &alice.token,
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(seen.iter().any(|m| m["id"] == in_group["id"]));

    // Unblocked, bob reaches alice again.
    app.delete(&format!("/api/v1/users/{}/block", bob.id), &alice.token)
        .await;
    app.send(&bob, &direct, "thanks").await;
}

#[tokio::test]
async fn a_report_needs_one_target_the_reporter_can_see_and_is_stored_open() {
    let app = spawn_app().await;
    let [alice, bob, carol] = app.users(["alice", "bob", "carol"]).await;
    let direct = app.direct(&alice, &bob).await;
    let message = app.send(&bob, &direct, "buy now").await;
    let report = |who: &TestUser, body: Value| {
        let token = who.token.clone();
        let app = &app;
        async move { app.post("/api/v1/reports", &token, body).await }
    };

    let created = report(
        &alice,
        json!({"message_id": message["id"], "reason": "spam"}),
    )
    .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["status"], "open");
    assert_eq!(created["user_id"], bob.id.as_str());
    assert_eq!(created["message_id"], message["id"]);
    assert_eq!(created["reporter_id"], alice.id.as_str());
    let about_user = report(&carol, json!({"user_id": bob.id, "reason": "abuse"})).await;
    assert_eq!(about_user.status(), StatusCode::CREATED);

    let cases = [
        // Carol is not in the conversation: as if the message did not exist.
        (
            &carol,
            json!({"message_id": message["id"], "reason": "spam"}),
            404,
            "message_not_found",
        ),
        (
            &alice,
            json!({"user_id": uuid::Uuid::new_v4(), "reason": "spam"}),
            404,
            "user_not_found",
        ),
        (
            &alice,
            json!({"message_id": message["id"], "user_id": bob.id, "reason": "spam"}),
            422,
            "validation_error",
        ),
        (&alice, json!({"reason": "spam"}), 422, "validation_error"),
        (
            &alice,
            json!({"user_id": bob.id, "reason": "  "}),
            422,
            "validation_error",
        ),
        (
            &alice,
            json!({"user_id": alice.id, "reason": "me"}),
            422,
            "invalid_operation",
        ),
        (
            &bob,
            json!({"message_id": message["id"], "reason": "mine"}),
            422,
            "invalid_operation",
        ),
    ];
    for (who, body, status, code) in cases {
        let answer = status_and_code(report(who, body.clone()).await).await;
        assert_eq!(answer, (status, code.to_owned()), "{body}");
    }
    let no_token = app
        .request(
            reqwest::Method::POST,
            "/api/v1/reports",
            None,
            Some(json!({"user_id": bob.id, "reason": "spam"})),
        )
        .await;
    assert_eq!(no_token.status(), 401);

    grant(&app, "carol");
    let stored: Vec<Value> = app
        .get("/api/v1/admin/reports", &carol.token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stored.len(), 2, "only the accepted reports: {stored:?}");
}

#[tokio::test]
async fn reports_are_rate_limited_per_reporter() {
    let app = spawn_limited_app(|_| {}).await;
    let [alice, bob] = app.users(["alice", "bob"]).await;
    let burst = chat_domain::limits::Limits::REPORTS_PER_HOUR;
    for _ in 0..burst {
        let accepted = app
            .post(
                "/api/v1/reports",
                &alice.token,
                json!({"user_id": bob.id, "reason": "spam"}),
            )
            .await;
        assert_eq!(accepted.status(), StatusCode::CREATED);
    }
    let refused = app
        .post(
            "/api/v1/reports",
            &alice.token,
            json!({"user_id": bob.id, "reason": "spam"}),
        )
        .await;
    assert_rate_limited(refused, 3600).await;
    let others = app
        .post(
            "/api/v1/reports",
            &bob.token,
            json!({"user_id": alice.id, "reason": "spam"}),
        )
        .await;
    assert_eq!(others.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn an_admin_lists_users_with_emails_deactivates_and_reactivates_and_it_is_audited() {
    let app = spawn_app().await;
    let [root, alice, bob] = app.users(["root", "alice", "bob"]).await;
    let forbidden = app.get("/api/v1/admin/users", &alice.token).await;
    assert_eq!(
        status_and_code(forbidden).await,
        (403, "forbidden".to_owned())
    );
    grant(&app, "root");

    let page: Value = app
        .get("/api/v1/admin/users?limit=2", &root.token)
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = page["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "bob"]);
    assert_eq!(page["users"][0]["email"], "alice@example.com");
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest: Value = app
        .get(
            &format!("/api/v1/admin/users?limit=2&cursor={cursor}"),
            &root.token,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rest["users"][0]["username"], "root");
    assert_eq!(rest["next_cursor"], Value::Null);
    let found: Value = app
        .get("/api/v1/admin/users?q=bob@example.com", &root.token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(found["users"][0]["id"], bob.id.as_str());
    let bad_cursor = app.get("/api/v1/admin/users?cursor=abc", &root.token).await;
    assert_eq!(bad_cursor.status(), 422);

    let deactivated = app
        .post(
            &format!("/api/v1/admin/users/{}/deactivate", bob.id),
            &root.token,
            json!({}),
        )
        .await;
    assert_eq!(deactivated.status(), 200);
    let deactivated: Value = deactivated.json().await.unwrap();
    assert_eq!(deactivated["is_active"], false);
    assert_eq!(
        app.get("/api/v1/auth/me", &bob.token).await.status(),
        401,
        "bob's token died with the deactivation"
    );
    let reactivated: Value = app
        .post(
            &format!("/api/v1/admin/users/{}/reactivate", bob.id),
            &root.token,
            json!({}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(reactivated["is_active"], true);
    assert_eq!(app.get("/api/v1/auth/me", &bob.token).await.status(), 401);
    let again = app.login("bob", "correct horse").await;
    assert_eq!(app.get("/api/v1/auth/me", &again).await.status(), 200);
    let yourself = app
        .post(
            &format!("/api/v1/admin/users/{}/deactivate", root.id),
            &root.token,
            json!({}),
        )
        .await;
    assert_eq!(yourself.status(), 422);
    let unknown = app
        .post(
            &format!("/api/v1/admin/users/{}/reactivate", uuid::Uuid::new_v4()),
            &root.token,
            json!({}),
        )
        .await;
    assert_eq!(unknown.status(), 404);

    let audit: Vec<Value> = app
        .get("/api/v1/admin/audit", &root.token)
        .await
        .json()
        .await
        .unwrap();
    let entries: Vec<(Value, Value, Value)> = audit
        .iter()
        .map(|e| {
            (
                e["action"].clone(),
                e["actor_id"].clone(),
                e["target"].clone(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            (json!("user.reactivate"), json!(root.id), json!(bob.id)),
            (json!("user.deactivate"), json!(root.id), json!(bob.id)),
            (json!("admin.grant"), Value::Null, json!(root.id)),
        ]
    );
    let older: Vec<Value> = app
        .get(
            &format!("/api/v1/admin/audit?before={}", audit[1]["id"]),
            &root.token,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(older.len(), 1);
    assert_eq!(older[0]["action"], "admin.grant");
}

#[tokio::test]
async fn an_admin_deletes_any_message_for_everyone_and_resolves_its_report() {
    let app = spawn_app().await;
    let [root, alice, bob] = app.users(["root", "alice", "bob"]).await;
    grant(&app, "root");
    let group = app.group(&alice, &[&bob]).await;
    let message = app.send(&bob, &group, "offensive").await;
    let id = message["id"].as_str().unwrap();
    let report: Value = app
        .post(
            "/api/v1/reports",
            &alice.token,
            json!({"message_id": id, "reason": "offensive"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let open: Vec<Value> = app
        .get("/api/v1/admin/reports?status=open", &root.token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0]["id"], report["id"]);

    let mut alices = app.ws(&alice).await;
    let deleted = app
        .delete(&format!("/api/v1/admin/messages/{id}"), &root.token)
        .await;
    assert_eq!(deleted.status(), 200);
    let tombstone: Value = deleted.json().await.unwrap();
    assert_eq!(tombstone["content"], Value::Null);
    assert_eq!(tombstone["deleted_by"], root.id.as_str());
    let frame = alices.next_of_type("message_deleted").await;
    assert_eq!(frame["message"]["id"], id, "{frame}");
    let history: Vec<Value> = app
        .get(
            &format!("/api/v1/conversations/{group}/messages"),
            &bob.token,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(history[0]["content"], Value::Null);
    let missing = app
        .delete(
            &format!("/api/v1/admin/messages/{}", uuid::Uuid::new_v4()),
            &root.token,
        )
        .await;
    assert_eq!(missing.status(), 404);

    let resolve = format!(
        "/api/v1/admin/reports/{}/resolve",
        report["id"].as_str().unwrap()
    );
    let resolved: Value = app
        .post(
            &resolve,
            &root.token,
            json!({"note": "deleted the message"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(resolved["resolved_by"], root.id.as_str());
    assert_eq!(resolved["note"], "deleted the message");
    let again: Value = app
        .post(&resolve, &root.token, json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again, resolved);
    let still_open: Vec<Value> = app
        .get("/api/v1/admin/reports?status=open", &root.token)
        .await
        .json()
        .await
        .unwrap();
    assert!(still_open.is_empty());
    let bad_status = app
        .get("/api/v1/admin/reports?status=closed", &root.token)
        .await;
    assert_eq!(bad_status.status(), 422);
    let unknown = app
        .post(
            &format!("/api/v1/admin/reports/{}/resolve", uuid::Uuid::new_v4()),
            &root.token,
            json!({}),
        )
        .await;
    assert_eq!(
        status_and_code(unknown).await,
        (404, "report_not_found".to_owned())
    );
    let actions: Vec<String> = app
        .get("/api/v1/admin/audit", &root.token)
        .await
        .json::<Vec<Value>>()
        .await
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(actions, ["report.resolve", "message.delete", "admin.grant"]);
}

#[tokio::test]
async fn admin_grant_and_revoke_from_the_command_line_take_effect_on_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chat.db");
    let server = start(&db).await;
    let client = reqwest::Client::new();
    let (alice_id, alice) = token(&client, &server.base, "alice").await;
    let admin_users = || {
        client
            .get(format!("{}/api/v1/admin/users", server.base))
            .bearer_auth(&alice)
            .send()
    };
    assert_eq!(admin_users().await.unwrap().status(), 403);

    let (granted, stderr) = run_command(&["admin", "grant", "ALICE"], &db);
    assert!(granted.success(), "{stderr}");
    assert_eq!(admin_users().await.unwrap().status(), 200);
    let (revoked, stderr) = run_command(&["admin", "revoke", "alice"], &db);
    assert!(revoked.success(), "{stderr}");
    assert_eq!(admin_users().await.unwrap().status(), 403);
    let (unknown, stderr) = run_command(&["admin", "grant", "nobody"], &db);
    assert!(!unknown.success());
    assert!(stderr.contains("user nobody not found"), "{stderr}");

    let (again, stderr) = run_command(&["admin", "grant", "alice"], &db);
    assert!(again.success(), "{stderr}");
    let audit: Vec<Value> = client
        .get(format!("{}/api/v1/admin/audit", server.base))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries: Vec<(Value, Value, Value)> = audit
        .iter()
        .map(|e| {
            (
                e["action"].clone(),
                e["actor_id"].clone(),
                e["target"].clone(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            (json!("admin.grant"), Value::Null, json!(alice_id)),
            (json!("admin.revoke"), Value::Null, json!(alice_id)),
            (json!("admin.grant"), Value::Null, json!(alice_id)),
        ]
    );
    sigkill(server);
}

#[tokio::test]
async fn an_acknowledged_report_and_block_survive_a_sigkill_right_after() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chat.db");
    let server = start(&db).await;
    let client = reqwest::Client::new();
    let base = server.base.clone();
    let (alice_id, alice) = token(&client, &base, "alice").await;
    let (bob_id, bob) = token(&client, &base, "bob").await;
    let blocked = client
        .put(format!("{base}/api/v1/users/{bob_id}/block"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(blocked.status(), StatusCode::NO_CONTENT);
    let reported = client
        .post(format!("{base}/api/v1/reports"))
        .bearer_auth(&alice)
        .json(&json!({"user_id": bob_id, "reason": "harassment"}))
        .send()
        .await
        .unwrap();
    assert_eq!(reported.status(), StatusCode::CREATED);
    let report: Value = reported.json().await.unwrap();
    sigkill(server); // SIGKILL the moment the report is acknowledged
    assert_eq!(crate::binary::integrity(&db), ["ok"]);

    let restarted = start(&db).await;
    let base = restarted.base.clone();
    let (granted, stderr) = run_command(&["admin", "grant", "alice"], &db);
    assert!(granted.success(), "{stderr}");
    let reports: Vec<Value> = client
        .get(format!("{base}/api/v1/admin/reports"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reports, [report]);
    let start_direct = client
        .post(format!("{base}/api/v1/conversations"))
        .bearer_auth(&bob)
        .json(&json!({"participant_ids": [alice_id]}))
        .send()
        .await
        .unwrap();
    assert_eq!(start_direct.status(), StatusCode::FORBIDDEN);
    sigkill(restarted);
}

#[tokio::test]
async fn on_postgres_a_block_made_on_one_node_holds_on_another_and_the_command_line_grants_admin() {
    let Some(database) = chat_postgres::testing::TestDatabase::create("safety on PostgreSQL")
    else {
        return;
    };
    let one = crate::postgres::spawn_node(&database).await;
    let two = crate::postgres::spawn_node(&database).await;
    let [alice, bob] = one.users(["alice", "bob"]).await;
    let direct = two.direct(&bob, &alice).await;
    two.send(&bob, &direct, "before").await;
    assert_eq!(block(&one, &alice, &bob.id).await.status(), 204);
    let sent = two
        .post(
            &format!("/api/v1/conversations/{direct}/messages"),
            &bob.token,
            json!({"content": "after"}),
        )
        .await;
    assert_eq!(status_and_code(sent).await, (403, "blocked".to_owned()));

    admin_command(&database, "grant", "alice");
    let reported = one
        .post(
            "/api/v1/reports",
            &alice.token,
            json!({"user_id": bob.id, "reason": "spam"}),
        )
        .await;
    assert_eq!(reported.status(), StatusCode::CREATED);
    let reports: Vec<Value> = two
        .get("/api/v1/admin/reports", &alice.token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(reports.len(), 1);
    let audit: Vec<Value> = two
        .get("/api/v1/admin/audit", &alice.token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(audit[0]["action"], "admin.grant");
    assert_eq!(audit[0]["actor_id"], Value::Null);
}

/// The command did its work and then, about one run in seven, died of SIGSEGV at exit:
/// OpenSSL's exit handler freed its state while one of r2d2's threads was inside it, opening
/// a TLS connection (the PostgreSQL here has `ssl = on`, and libpq prefers TLS). Forty runs
/// in a row all exit cleanly.
#[tokio::test]
async fn on_postgres_the_admin_command_exits_cleanly_every_time() {
    let Some(database) = chat_postgres::testing::TestDatabase::create("admin command exits") else {
        return;
    };
    let node = crate::postgres::spawn_node(&database).await;
    let [_alice] = node.users(["alice"]).await;
    for round in 0..40 {
        let action = if round % 2 == 0 { "grant" } else { "revoke" };
        admin_command(&database, action, "alice");
    }
}

/// Runs `chat-server admin <action> <username>` on the PostgreSQL database and asserts that it
/// succeeded, saying how it ended if not.
fn admin_command(database: &chat_postgres::testing::TestDatabase, action: &str, username: &str) {
    let ran = std::process::Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .args(["admin", action, username])
        .env("DATABASE_URL", database.url())
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert!(
        ran.status.success(),
        "chat-server admin {action}: {} (stdout {:?}, stderr {:?})",
        ran.status,
        String::from_utf8_lossy(&ran.stdout),
        String::from_utf8_lossy(&ran.stderr)
    );
}
