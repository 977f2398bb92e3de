//! Running one node safely: one server per database file, commands that refuse a database
//! that is not there, health that notices failing writes, and text that carries no control
//! characters.

use diesel::connection::SimpleConnection;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app, test_config};

#[tokio::test]
async fn a_second_server_on_the_same_database_file_refuses_to_start() {
    let app = spawn_app().await;
    let second = chat_server::Application::build(test_config(&app.dir)).await;
    let Err(error) = second else {
        panic!("a second server started on the same file");
    };
    assert!(
        matches!(
            error,
            chat_server::StartupError::Storage(chat_sqlite::StorageError::InUse { .. })
        ),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .contains("run one server per database file")
    );
    // The first one serves on.
    let health = app.request(Method::GET, "/health", None, None).await;
    assert_eq!(health.status(), StatusCode::OK);
}

#[tokio::test]
async fn health_is_degraded_while_writes_find_the_disk_full_and_recovers_after() {
    let dir = tempfile::tempdir().unwrap();
    let server = chat_server::Application::build(test_config(&dir))
        .await
        .unwrap();
    let database = server.database().expect("a SQLite server").clone();
    let app = TestApp {
        address: format!("http://127.0.0.1:{}", server.port()),
        ws_url: format!("ws://127.0.0.1:{}/api/v1/ws", server.port()),
        client: reqwest::Client::new(),
        shutdown: server.shutdown_handle(),
        dir,
    };
    tokio::spawn(server.run_until_stopped());
    let health = || app.request(Method::GET, "/health", None, None);
    let [alice, bob] = app.users(["alice", "bob"]).await;
    let direct = app.direct(&alice, &bob).await;
    let path = format!("/api/v1/conversations/{direct}/messages");
    assert_eq!(health().await.status(), StatusCode::OK);

    // The disk fills up: the database may not grow past its size.
    database.limit_pages(1).unwrap();
    let mut refused = None;
    for _ in 0..500 {
        let sent = app
            .post(&path, &alice.token, json!({"content": "x".repeat(3000)}))
            .await;
        if sent.status() != StatusCode::CREATED {
            refused = Some(sent);
            break;
        }
    }
    let refused = refused.expect("a send fails once the disk is full");
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        refused.json::<Value>().await.unwrap()["code"],
        "storage_unavailable"
    );

    let degraded = health().await;
    assert_eq!(degraded.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = degraded.json().await.unwrap();
    assert_eq!(body["status"], "degraded", "{body}");
    assert_eq!(body["database"], "degraded", "{body}");
    assert_eq!(body["reason"], "writes are failing: the disk is full");

    // Room again: health follows the next write, not the limit.
    database.limit_pages(1 << 30).unwrap();
    assert_eq!(
        health().await.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "no write has succeeded yet"
    );
    app.send(&alice, &direct, "the disk has room again").await;
    let recovered = health().await;
    assert_eq!(recovered.status(), StatusCode::OK);
    let body: Value = recovered.json().await.unwrap();
    assert_eq!(body["database"], "ok");
    assert!(body.get("reason").is_none(), "{body}");
}

/// Asserts a 422 that names `field`.
async fn refused(response: reqwest::Response, field: &str, what: &str) {
    assert_eq!(
        response.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "{what} should be refused"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "validation_error", "{what}: {body}");
    let fields: Vec<&Value> = body["errors"].as_array().unwrap().iter().collect();
    assert!(
        fields.iter().any(|error| error["field"] == field),
        "{what}: {body}"
    );
}

#[tokio::test]
async fn message_content_refuses_control_characters_but_keeps_newlines_and_tabs() {
    let app = spawn_app().await;
    let [alice, bob] = app.users(["alice", "bob"]).await;
    let direct = app.direct(&alice, &bob).await;
    let path = format!("/api/v1/conversations/{direct}/messages");
    for bad in ["a\u{0}b", "\u{1b}[31mred", "a\rb", "a\u{7f}b", "a\u{9b}31m"] {
        let response = app.post(&path, &alice.token, json!({"content": bad})).await;
        refused(response, "content", &format!("{bad:?}")).await;
    }

    let text = "first line\n\tsecond, indented\nשלום";
    let sent = app.send(&alice, &direct, text).await;
    assert_eq!(sent["content"], text);
    let history: Value = app.get(&path, &bob.token).await.json().await.unwrap();
    assert_eq!(history[0]["content"], text);
    let inbox: Value = app
        .get("/api/v1/conversations", &bob.token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(inbox[0]["last_message"]["content"], text);
}

#[tokio::test]
async fn names_refuse_line_breaks_and_text_direction_overrides() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    for bad in [
        "Ann\nAdmin",
        "Ann\u{0}",
        "\u{1b}[31mAnn",
        "Ann \u{202E}nimda",
        "\u{2066}Ann",
    ] {
        let signup = app
            .request(
                Method::POST,
                "/api/v1/auth/signup",
                None,
                Some(json!({
                    "username": "mallory",
                    "email": "mallory@example.com",
                    "password": "correct horse",
                    "full_name": bad,
                })),
            )
            .await;
        refused(signup, "full_name", &format!("sign-up with {bad:?}")).await;
        let update = app
            .put("/api/v1/users/me", &alice.token, json!({"full_name": bad}))
            .await;
        refused(update, "full_name", &format!("profile with {bad:?}")).await;
        let group = app
            .post(
                "/api/v1/conversations",
                &alice.token,
                json!({"participant_ids": [], "name": bad, "is_group": true}),
            )
            .await;
        refused(group, "name", &format!("group named {bad:?}")).await;
    }
    let update = app
        .put(
            "/api/v1/users/me",
            &alice.token,
            json!({"full_name": "Zoë Åström-שלום"}),
        )
        .await;
    assert_eq!(update.status(), StatusCode::OK);
}

/// Runs SQL on the app's database file, beside the running server, as an older version or
/// another tool could have written it.
fn run_sql(app: &TestApp, sql: &str) {
    let db = chat_sqlite::Database::open(
        app.dir.path().join("chat.db").to_str().unwrap(),
        &chat_sqlite::SqliteOptions::default(),
    )
    .unwrap();
    db.conn().unwrap().batch_execute(sql).unwrap();
}

#[tokio::test]
async fn text_stored_before_the_rules_reads_back_byte_for_byte_everywhere() {
    let app = spawn_app().await;
    let [alice, bob] = app.users(["alice", "bob"]).await;
    let group = app.group(&alice, &[&bob]).await;
    let sent = app.send(&alice, &group, "placeholder").await;
    run_sql(
        &app,
        &format!(
            "UPDATE messages SET content = 'a' || char(0) || 'b' || char(0) || 'c' \
               WHERE id = '{id}'; \
             UPDATE conversations SET name = 'team ' || char(8238) || 'gnp' \
               WHERE id = '{group}';",
            id = sent["id"].as_str().unwrap(),
        ),
    );
    let history: Value = app
        .get(
            &format!("/api/v1/conversations/{group}/messages"),
            &bob.token,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(history[0]["content"], "a\u{0}b\u{0}c");
    let inbox = app.get("/api/v1/conversations", &bob.token).await;
    assert_eq!(inbox.status(), StatusCode::OK);
    let inbox: Value = inbox.json().await.unwrap();
    assert_eq!(inbox[0]["last_message"]["content"], "a\u{0}b\u{0}c");
    assert_eq!(inbox[0]["name"], "team \u{202E}gnp");
}
