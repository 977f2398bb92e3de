//! Tests that drive the `chat-server` binary itself: crash safety under SIGKILL, and the
//! online backup command.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use diesel::RunQueryDsl;
use diesel::sql_types::Text;
use reqwest::StatusCode;
use serde_json::{Value, json};

const SECRET: &str = "crash-test-secret-that-is-long-enough-0123456789";

struct Server {
    child: Child,
    base: String,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start(db: &Path) -> Server {
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .env("CHAT_BIND", format!("127.0.0.1:{port}"))
        .env("DATABASE_URL", db)
        .env("CHAT_JWT_SECRET", SECRET)
        .env("CHAT_BCRYPT_COST", "4")
        .env("CHAT_RATE_LIMITS", "false")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the server binary starts");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    for _ in 0..100 {
        if let Ok(response) = client.get(format!("{base}/health")).send().await
            && response.status() == StatusCode::OK
        {
            return Server { child, base };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the server did not become healthy");
}

async fn token(client: &reqwest::Client, base: &str, name: &str) -> (String, String) {
    let user: Value = client
        .post(format!("{base}/api/v1/auth/signup"))
        .json(&json!({"username": name, "email": format!("{name}@example.com"), "password": "correct horse"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let login: Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": name, "password": "correct horse"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (
        user["id"].as_str().unwrap().to_owned(),
        login["access_token"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn acknowledged_messages_survive_a_sigkill_mid_load() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chat.db");
    let mut server = start(&db).await;
    let client = reqwest::Client::new();
    let (_, alice) = token(&client, &server.base, "alice").await;
    let (bob_id, _) = token(&client, &server.base, "bob").await;
    let conversation: Value = client
        .post(format!("{}/api/v1/conversations", server.base))
        .bearer_auth(&alice)
        .json(&json!({"participant_ids": [bob_id]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let path = format!(
        "{}/api/v1/conversations/{}/messages",
        server.base,
        conversation["id"].as_str().unwrap()
    );

    // Eight senders, each recording what the server acknowledged.
    let acknowledged: Arc<Mutex<Vec<(String, i64)>>> = Arc::default();
    let senders: Vec<_> = (0..8)
        .map(|sender| {
            let (client, path, alice, acknowledged) =
                (client.clone(), path.clone(), alice.clone(), acknowledged.clone());
            tokio::spawn(async move {
                for i in 0.. {
                    let sent = client
                        .post(&path)
                        .bearer_auth(&alice)
                        .json(&json!({"content": format!("{sender}-{i}"), "client_message_id": format!("{sender}-{i}")}))
                        .send()
                        .await;
                    let Ok(response) = sent else { break };
                    if response.status() != StatusCode::CREATED {
                        break;
                    }
                    let Ok(message) = response.json::<Value>().await else { break };
                    acknowledged.lock().unwrap().push((
                        message["id"].as_str().unwrap().to_owned(),
                        message["seq"].as_i64().unwrap(),
                    ));
                }
            })
        })
        .collect();
    while acknowledged.lock().unwrap().len() < 300 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.child.kill().unwrap(); // SIGKILL: no shutdown, no flush
    server.child.wait().unwrap();
    for sender in senders {
        sender.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();

    let mut restarted = start(&db).await;
    let path = path.replace(&server.base, &restarted.base);
    let mut stored: Vec<Value> = Vec::new();
    let mut after = 0;
    loop {
        let page: Vec<Value> = client
            .get(format!("{path}?limit=200&after={after}"))
            .bearer_auth(&alice)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        after = last["seq"].as_i64().unwrap();
        stored.extend(page);
    }
    restarted.child.kill().unwrap();
    restarted.child.wait().unwrap();

    let seqs: Vec<i64> = stored.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "history is in order without repeats"
    );
    let mut client_ids: Vec<&str> = stored
        .iter()
        .map(|m| m["client_message_id"].as_str().unwrap())
        .collect();
    client_ids.sort_unstable();
    client_ids.dedup();
    assert_eq!(client_ids.len(), stored.len(), "no message is stored twice");
    for (id, seq) in &acknowledged {
        assert!(
            stored
                .iter()
                .any(|m| m["id"] == id.as_str() && m["seq"] == *seq),
            "acknowledged message {id} (seq {seq}) was lost"
        );
    }

    #[derive(diesel::QueryableByName)]
    struct Check {
        #[diesel(sql_type = Text)]
        integrity_check: String,
    }
    let database = chat_sqlite::Database::open(db.to_str().unwrap(), &Default::default()).unwrap();
    let check: Vec<Check> = diesel::sql_query("PRAGMA integrity_check")
        .load(&mut *database.conn().unwrap())
        .unwrap();
    assert_eq!(check.len(), 1);
    assert_eq!(check[0].integrity_check, "ok");
}

#[tokio::test]
async fn a_backup_taken_while_the_server_runs_is_a_complete_working_copy() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chat.db");
    let mut server = start(&db).await;
    let client = reqwest::Client::new();
    let (alice_id, _) = token(&client, &server.base, "alice").await;

    let backup = dir.path().join("backup.db");
    let status = Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .arg("backup")
        .arg(&backup)
        .env("DATABASE_URL", &db)
        .env("RUST_LOG", "warn")
        .status()
        .unwrap();
    assert!(status.success());
    let again = Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .arg("backup")
        .arg(&backup)
        .env("DATABASE_URL", &db)
        .env("RUST_LOG", "off")
        .status()
        .unwrap();
    assert!(!again.success(), "an existing file is never overwritten");
    server.child.kill().unwrap();
    server.child.wait().unwrap();

    // The copy serves: the user signed up before the backup can log in against it.
    let mut restored = start(&backup).await;
    let login: Value = client
        .post(format!("{}/api/v1/auth/login", restored.base))
        .json(&json!({"username": "alice", "password": "correct horse"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["access_token"].as_str().unwrap();
    let me: Value = client
        .get(format!("{}/api/v1/auth/me", restored.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    restored.child.kill().unwrap();
    restored.child.wait().unwrap();
    assert_eq!(me["id"], alice_id.as_str());
}

#[tokio::test]
async fn migrate_applies_the_migrations_and_reads_a_dot_env_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "DATABASE_URL=sqlite://from-dotenv.db\n",
    )
    .unwrap();
    // An empty file is an empty SQLite database; migrate never creates one (see below).
    std::fs::write(dir.path().join("from-dotenv.db"), "").unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .arg("migrate")
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn")
        .status()
        .unwrap();
    assert!(status.success());
    let db = dir.path().join("from-dotenv.db");
    let database = chat_sqlite::Database::open(db.to_str().unwrap(), &Default::default()).unwrap();
    assert_eq!(
        database.migrate().unwrap(),
        0,
        "every migration was already applied"
    );
}

/// Runs `chat-server` with `args` against `db` and returns its exit status and stderr.
fn run_command(args: &[&str], db: &Path) -> (std::process::ExitStatus, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .args(args)
        .env("CHAT_BIND", format!("127.0.0.1:{}", free_port()))
        .env("DATABASE_URL", db)
        .env("CHAT_JWT_SECRET", SECRET)
        .env("RUST_LOG", "off")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        output.status,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn a_second_server_or_migrate_on_the_same_file_refuses_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chat.db");
    let mut server = start(&db).await;

    let (second, stderr) = run_command(&[], &db);
    assert!(!second.success(), "a second server must not start");
    assert!(
        stderr.contains("run one server per database file") && stderr.contains("chat.db"),
        "stderr says why: {stderr}"
    );
    let (migrate, stderr) = run_command(&["migrate"], &db);
    assert!(!migrate.success(), "migrate must not write under a server");
    assert!(
        stderr.contains("run one server per database file"),
        "{stderr}"
    );
    // The first server is unaffected, and a backup still works beside it.
    let health = reqwest::get(format!("{}/health", server.base))
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let (backup, stderr) = run_command(
        &["backup", dir.path().join("copy.db").to_str().unwrap()],
        &db,
    );
    assert!(backup.success(), "{stderr}");

    // A killed server leaves no lock behind.
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let mut next = start(&db).await;
    next.child.kill().unwrap();
    next.child.wait().unwrap();
}

#[test]
fn commands_other_than_serve_refuse_a_database_that_does_not_exist() {
    let elsewhere = tempfile::tempdir().unwrap();
    for args in [&["backup", "copy.db"][..], &["migrate"][..]] {
        let output = Command::new(env!("CARGO_BIN_EXE_chat-server"))
            .args(args)
            .current_dir(elsewhere.path())
            .env_remove("DATABASE_URL")
            .env("RUST_LOG", "off")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} must fail");
        let expected = elsewhere.path().canonicalize().unwrap().join("chat.db");
        assert!(
            stderr.contains(&format!("no database at {}", expected.display())),
            "{args:?} names the absolute path: {stderr}"
        );
    }
    let left: Vec<_> = std::fs::read_dir(elsewhere.path()).unwrap().collect();
    assert!(left.is_empty(), "nothing was created: {left:?}");
}
