//! The server on PostgreSQL (`DATABASE_URL=postgres://...`): the same API, several servers
//! on one database, and the commands that differ from SQLite's. Each test gets a database of
//! its own from `CHAT_TEST_POSTGRES_URL` and skips, saying so, without it.

use std::process::Command;

use chat_postgres::testing::TestDatabase;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app_with, test_config};

const SUITE: &str = "chat-server on PostgreSQL";

/// A server on the test database.
pub(crate) async fn spawn_node(database: &TestDatabase) -> TestApp {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut config = test_config(&dir);
    config.database_url = database.url().to_owned();
    spawn_app_with(config, dir).await
}

/// A server on the test database that records deliveries every
/// [`DELIVERING_OFTEN`](crate::helpers::DELIVERING_OFTEN).
pub(crate) async fn spawn_delivering_node(database: &TestDatabase) -> TestApp {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut config = test_config(&dir);
    config.database_url = database.url().to_owned();
    config.delivery_flush_interval = crate::helpers::DELIVERING_OFTEN;
    spawn_app_with(config, dir).await
}

#[tokio::test]
async fn two_servers_on_one_postgres_database_share_accounts_tokens_and_one_message_order() {
    let Some(database) = TestDatabase::create(SUITE) else {
        return;
    };
    let (one, two) = (spawn_node(&database).await, spawn_node(&database).await);
    for node in [&one, &two] {
        let health = node.request(Method::GET, "/health", None, None).await;
        assert_eq!(health.status(), StatusCode::OK);
    }
    // Signed up on one server; the token (signed with the secret both read from the
    // database) works on the other.
    let [alice, bob] = one.users(["alice", "bob"]).await;
    assert_eq!(two.signup("ALICE").await.status(), StatusCode::CONFLICT);
    let group = two.group(&alice, &[&bob]).await;

    let mut sent = Vec::new();
    for i in 0..10 {
        let (node, from) = if i % 2 == 0 {
            (&one, &alice)
        } else {
            (&two, &bob)
        };
        sent.push(node.send(from, &group, &format!("message {i}")).await);
    }
    let seqs: Vec<i64> = sent.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");

    let path = format!("/api/v1/conversations/{group}/messages?limit=50");
    for node in [&one, &two] {
        let history: Vec<Value> = node.get(&path, &bob.token).await.json().await.unwrap();
        let contents: Vec<&str> = history
            .iter()
            .map(|m| m["content"].as_str().unwrap())
            .collect();
        let expected: Vec<String> = (0..10).map(|i| format!("message {i}")).collect();
        assert_eq!(contents, expected);
    }

    // A retry through the other server gets the stored message back.
    let body = json!({"content": "once", "client_message_id": "retry-1"});
    let first = one
        .post(
            &format!("/api/v1/conversations/{group}/messages"),
            &alice.token,
            body.clone(),
        )
        .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let again = two
        .post(
            &format!("/api/v1/conversations/{group}/messages"),
            &alice.token,
            body,
        )
        .await;
    assert!(again.status().is_success(), "{}", again.status());
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["seq"], first["seq"]);
}

/// Runs `chat-server` with `args` on `url`; returns whether it succeeded and its stderr.
fn run_command(args: &[&str], url: &str) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .args(args)
        .env("DATABASE_URL", url)
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn migrate_works_on_postgres_and_backup_points_to_pg_dump() {
    let Some(database) = TestDatabase::create(SUITE) else {
        return;
    };
    let (migrated, stderr) = run_command(&["migrate"], database.url());
    assert!(migrated, "{stderr}");
    let db = chat_postgres::PgDatabase::connect(database.url(), &Default::default()).unwrap();
    assert_eq!(db.migrate().unwrap(), 0, "migrate applied every migration");
    let (migrated_again, stderr) = run_command(&["migrate"], database.url());
    assert!(migrated_again, "{stderr}");

    let target = tempfile::tempdir().unwrap();
    let copy = target.path().join("copy.db");
    let (backed_up, stderr) = run_command(&["backup", copy.to_str().unwrap()], database.url());
    assert!(!backed_up);
    assert!(stderr.contains("pg_dump"), "{stderr}");
    assert!(!copy.exists());
}

#[tokio::test]
async fn files_uploaded_on_one_node_are_sent_and_downloaded_on_another() {
    let Some(database) = TestDatabase::create(SUITE) else {
        return;
    };
    // Two nodes sharing one database and one blob directory (a shared disk).
    let shared = tempfile::tempdir().unwrap();
    let node = |dir: tempfile::TempDir| {
        let mut config = test_config(&dir);
        config.database_url = database.url().to_owned();
        config.data_dir = Some(shared.path().to_owned());
        spawn_app_with(config, dir)
    };
    let one = node(tempfile::tempdir().unwrap()).await;
    let two = node(tempfile::tempdir().unwrap()).await;
    let [alice, bob, eve] = one.users(["alice", "bob", "eve"]).await;
    let group = one.group(&alice, &[&bob]).await;
    let file = crate::attachments::upload(&one, &alice, "notes.txt", b"shared notes").await;
    let id = file["id"].as_str().unwrap();
    let sent = two
        .post(
            &format!("/api/v1/conversations/{group}/messages"),
            &alice.token,
            json!({"content": "notes", "attachment_ids": [id]}),
        )
        .await;
    assert_eq!(sent.status(), StatusCode::CREATED);
    let sent: Value = sent.json().await.unwrap();
    assert_eq!(sent["attachments"], json!([file]));
    let path = format!("/api/v1/attachments/{id}");
    let seen = two.get(&path, &bob.token).await;
    assert_eq!(seen.status(), StatusCode::OK);
    assert_eq!(seen.bytes().await.unwrap().as_ref(), b"shared notes");
    assert_eq!(
        two.get(&path, &eve.token).await.status(),
        StatusCode::NOT_FOUND
    );
    let again = one
        .post(
            &format!("/api/v1/conversations/{group}/messages"),
            &alice.token,
            json!({"content": "again", "attachment_ids": [id]}),
        )
        .await;
    assert_eq!(again.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let message = sent["id"].as_str().unwrap();
    let deleted = one
        .delete(&format!("/api/v1/messages/{message}"), &alice.token)
        .await;
    assert!(deleted.status().is_success());
    for node in [&one, &two] {
        assert_eq!(
            node.get(&path, &bob.token).await.status(),
            StatusCode::NOT_FOUND
        );
    }
}
