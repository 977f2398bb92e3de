//! Tests that drive the `chat-server` binary itself: crash safety under SIGKILL at several
//! points of a load, and the online backup command while messages are being written.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use diesel::RunQueryDsl;
use diesel::sql_types::Text;
use reqwest::StatusCode;
use serde_json::{Value, json};

const SECRET: &str = "crash-test-secret-that-is-long-enough-0123456789";

pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) base: String,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) async fn start(db: &Path) -> Server {
    start_with(db, &[]).await
}

/// [`start`] with more environment variables for the server.
pub(crate) async fn start_with(db: &Path, env: &[(&str, &str)]) -> Server {
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .env("CHAT_BIND", format!("127.0.0.1:{port}"))
        .env("DATABASE_URL", db)
        .env("CHAT_JWT_SECRET", SECRET)
        .env("CHAT_BCRYPT_COST", "4")
        .env("CHAT_RATE_LIMITS", "false")
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
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

pub(crate) async fn token(client: &reqwest::Client, base: &str, name: &str) -> (String, String) {
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

/// The id of the direct conversation the holder of `token` starts with `other`.
pub(crate) async fn direct(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    other: &str,
) -> String {
    let conversation: Value = client
        .post(format!("{base}/api/v1/conversations"))
        .bearer_auth(token)
        .json(&json!({"participant_ids": [other]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    conversation["id"].as_str().unwrap().to_owned()
}

/// A message the server acknowledged, and who sent it with which counter.
#[derive(Debug, Clone)]
struct Ack {
    sender: String,
    counter: u64,
    id: String,
    seq: i64,
}

/// Senders that each send messages one after another, numbered from 0, to `path`, and
/// record what the server acknowledged, until a request fails or `stop` is set.
fn start_senders(
    client: &reqwest::Client,
    path: &str,
    token: &str,
    names: &[String],
    padding: usize,
    stop: &Arc<AtomicBool>,
) -> (Arc<Mutex<Vec<Ack>>>, Vec<tokio::task::JoinHandle<()>>) {
    let acknowledged: Arc<Mutex<Vec<Ack>>> = Arc::default();
    let senders = names
        .iter()
        .map(|name| {
            let (client, path, token, name) = (
                client.clone(),
                path.to_owned(),
                token.to_owned(),
                name.clone(),
            );
            let (acknowledged, stop) = (acknowledged.clone(), stop.clone());
            tokio::spawn(async move {
                for counter in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let sent = client
                        .post(&path)
                        .bearer_auth(&token)
                        .json(&json!({
                            "content": format!("{name} {counter} {}", "x".repeat(padding)),
                            "client_message_id": format!("{name}-{counter}"),
                        }))
                        .send()
                        .await;
                    let Ok(response) = sent else { break };
                    if response.status() != StatusCode::CREATED {
                        break;
                    }
                    let Ok(message) = response.json::<Value>().await else {
                        break;
                    };
                    acknowledged.lock().unwrap().push(Ack {
                        sender: name.clone(),
                        counter,
                        id: message["id"].as_str().unwrap().to_owned(),
                        seq: message["seq"].as_i64().unwrap(),
                    });
                }
            })
        })
        .collect();
    (acknowledged, senders)
}

/// Waits (within 60 s) until `done` holds.
async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..60_000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("gave up waiting: {what}");
}

/// Every message of a conversation, paged through in seq order.
async fn history(client: &reqwest::Client, path: &str, token: &str) -> Vec<Value> {
    let mut stored: Vec<Value> = Vec::new();
    let mut after = 0;
    loop {
        let page: Vec<Value> = client
            .get(format!("{path}?limit=200&after={after}"))
            .bearer_auth(token)
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
    stored
}

#[derive(diesel::QueryableByName)]
struct Check {
    #[diesel(sql_type = Text)]
    integrity_check: String,
}

/// `PRAGMA integrity_check` on the database file at `db`.
/// Kills the server with SIGKILL (no shutdown of any kind) and waits for it to be gone.
pub(crate) fn sigkill(server: Server) {
    let mut killed = server.child;
    killed.kill().unwrap();
    killed.wait().unwrap();
}

/// Edits a message over REST, asserting the edit is acknowledged.
async fn edit(client: &reqwest::Client, base: &str, token: &str, id: &str, content: &str) {
    let edited = client
        .patch(format!("{base}/api/v1/messages/{id}"))
        .bearer_auth(token)
        .json(&json!({ "content": content }))
        .send()
        .await
        .unwrap();
    assert_eq!(edited.status(), StatusCode::OK);
}

/// Deletes a message for everyone over REST, asserting the delete is acknowledged.
async fn delete_for_everyone(client: &reqwest::Client, base: &str, token: &str, id: &str) {
    let deleted = client
        .delete(format!("{base}/api/v1/messages/{id}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::OK);
}

pub(crate) fn integrity(db: &Path) -> Vec<String> {
    let database = chat_sqlite::Database::open(db.to_str().unwrap(), &Default::default()).unwrap();
    let check: Vec<Check> = diesel::sql_query("PRAGMA integrity_check")
        .load(&mut *database.conn().unwrap())
        .unwrap();
    check.into_iter().map(|c| c.integrity_check).collect()
}

/// Where in the load the server is killed.
#[derive(Debug, Clone, Copy)]
enum KillPoint {
    /// As soon as the first message is acknowledged.
    Early,
    /// With hundreds acknowledged and a batch of eight in flight.
    MidLoad,
    /// While a checkpoint copies the log into the database file: in WAL mode only a
    /// checkpoint writes to that file, so the kill comes the moment it grows.
    DuringCheckpoint,
}

#[tokio::test]
async fn acknowledged_messages_survive_sigkills_early_mid_load_and_during_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chat.db");
    let mut server = start(&db).await;
    let client = reqwest::Client::new();
    let (_, alice) = token(&client, &server.base, "alice").await;
    let (bob_id, _) = token(&client, &server.base, "bob").await;
    let conversation = direct(&client, &server.base, &alice, &bob_id).await;
    let messages = format!("/api/v1/conversations/{}/messages", conversation);

    let mut acknowledged: Vec<Ack> = Vec::new();
    for (round, point) in [
        KillPoint::Early,
        KillPoint::MidLoad,
        KillPoint::DuringCheckpoint,
    ]
    .into_iter()
    .enumerate()
    {
        // Eight senders; big messages make the log long, so checkpoints take a while.
        let names: Vec<String> = (0..8).map(|s| format!("r{round}s{s}")).collect();
        let padding = match point {
            KillPoint::DuringCheckpoint => 3000,
            _ => 0,
        };
        let path = format!("{}{messages}", server.base);
        let stop = Arc::new(AtomicBool::new(false));
        let (acks, senders) = start_senders(&client, &path, &alice, &names, padding, &stop);
        let count = || acks.lock().unwrap().len();
        match point {
            KillPoint::Early => wait_until("a first acknowledgement", || count() >= 1).await,
            KillPoint::MidLoad => wait_until("300 acknowledgements", || count() >= 300).await,
            KillPoint::DuringCheckpoint => {
                wait_until("20 acknowledgements", || count() >= 20).await;
                let size = || std::fs::metadata(&db).unwrap().len();
                let before = size();
                wait_until("a checkpoint growing the database file", || {
                    size() != before
                })
                .await;
            }
        }
        server.child.kill().unwrap(); // SIGKILL: no shutdown, no flush
        server.child.wait().unwrap();
        for sender in senders {
            sender.await.unwrap();
        }
        acknowledged.extend(acks.lock().unwrap().iter().cloned());
        assert_eq!(integrity(&db), ["ok"], "after the kill {point:?}");

        server = start(&db).await;
        let stored = history(&client, &format!("{}{messages}", server.base), &alice).await;

        let seqs: Vec<i64> = stored.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "after {point:?}: history pages are in order without repeats"
        );
        let mut client_ids: Vec<&str> = stored
            .iter()
            .map(|m| m["client_message_id"].as_str().unwrap())
            .collect();
        client_ids.sort_unstable();
        client_ids.dedup();
        assert_eq!(
            client_ids.len(),
            stored.len(),
            "after {point:?}: no message is stored twice"
        );
        for ack in &acknowledged {
            assert!(
                stored.iter().any(|m| m["id"] == ack.id.as_str()
                    && m["seq"] == ack.seq
                    && m["client_message_id"] == format!("{}-{}", ack.sender, ack.counter)),
                "after {point:?}: acknowledged message {ack:?} was lost"
            );
        }
        // Each sender's messages are stored in the order it sent them, with no gap: its
        // counters, read in seq order, are 0, 1, 2, ... up to what it was told (or one
        // more, the one in flight at the kill).
        let mut by_sender: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for message in &stored {
            let content = message["content"].as_str().unwrap();
            let mut words = content.split(' ');
            let (sender, counter) = (words.next().unwrap(), words.next().unwrap());
            by_sender
                .entry(sender.to_owned())
                .or_default()
                .push(counter.parse().unwrap());
        }
        let mut senders_seen = 0;
        for (sender, counters) in &by_sender {
            let expected: Vec<u64> = (0..counters.len() as u64).collect();
            assert_eq!(counters, &expected, "after {point:?}: {sender}'s messages");
            let told = acknowledged.iter().filter(|a| &a.sender == sender).count();
            assert!(
                (told..=told + 1).contains(&counters.len()),
                "after {point:?}: {sender} was told of {told}, {} are stored",
                counters.len()
            );
            senders_seen += usize::from(told > 0);
        }
        assert!(
            senders_seen >= 1,
            "after {point:?}: nothing was acknowledged"
        );
    }
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    assert_eq!(integrity(&db), ["ok"]);
}

#[tokio::test]
async fn a_backup_taken_while_messages_are_written_is_consistent_and_complete() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chat.db");
    let mut server = start(&db).await;
    let client = reqwest::Client::new();
    let (alice_id, alice) = token(&client, &server.base, "alice").await;
    let (bob_id, _) = token(&client, &server.base, "bob").await;
    let conversation = direct(&client, &server.base, &alice, &bob_id).await;
    let path = format!(
        "{}/api/v1/conversations/{}/messages",
        server.base, conversation
    );

    // Writers run before, during and after the backup.
    let names: Vec<String> = (0..4).map(|s| format!("w{s}")).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let (acks, writers) = start_senders(&client, &path, &alice, &names, 500, &stop);
    wait_until("200 acknowledgements", || acks.lock().unwrap().len() >= 200).await;
    let before_backup: Vec<Ack> = acks.lock().unwrap().clone();

    let backup = dir.path().join("backup.db");
    let run_backup = |target: std::path::PathBuf, log: &'static str| {
        let db = db.clone();
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_chat-server"))
                .arg("backup")
                .arg(target)
                .env("DATABASE_URL", db)
                .env("RUST_LOG", log)
                .status()
                .unwrap()
        })
    };
    let status = run_backup(backup.clone(), "warn").await.unwrap();
    assert!(status.success());
    let during = acks.lock().unwrap().len() - before_backup.len();
    let again = run_backup(backup.clone(), "off").await.unwrap();
    assert!(!again.success(), "an existing file is never overwritten");
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.await.unwrap();
    }
    assert!(
        during > 0,
        "the writers kept going while the backup ran, so it copied a database in use"
    );
    server.child.kill().unwrap();
    server.child.wait().unwrap();

    // The copy is consistent and holds every message acknowledged before it started.
    assert_eq!(integrity(&backup), ["ok"]);
    #[derive(diesel::QueryableByName)]
    struct Stored {
        #[diesel(sql_type = Text)]
        id: String,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        seq: i64,
    }
    let copy = chat_sqlite::Database::open(backup.to_str().unwrap(), &Default::default()).unwrap();
    let stored: Vec<Stored> = diesel::sql_query("SELECT id, seq FROM messages")
        .load(&mut *copy.conn().unwrap())
        .unwrap();
    drop(copy);
    for ack in &before_backup {
        assert!(
            stored.iter().any(|m| m.id == ack.id && m.seq == ack.seq),
            "{ack:?}, acknowledged before the backup, is not in it"
        );
    }

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
pub(crate) fn run_command(args: &[&str], db: &Path) -> (std::process::ExitStatus, String) {
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

#[tokio::test]
async fn an_acknowledged_edit_and_deletes_survive_a_sigkill_right_after() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chat.db");
    let server = start(&db).await;
    let client = reqwest::Client::new();
    let base = server.base.clone();
    let (_, alice) = token(&client, &base, "alice").await;
    let (bob_id, bob) = token(&client, &base, "bob").await;
    let conversation = direct(&client, &base, &alice, &bob_id).await;
    let path = format!("{base}/api/v1/conversations/{conversation}/messages");
    let mut ids = Vec::new();
    for text in ["to edit", "to delete", "to hide"] {
        let sent: Value = client
            .post(&path)
            .bearer_auth(&alice)
            .json(&json!({"content": text}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ids.push(sent["id"].as_str().unwrap().to_owned());
    }
    edit(&client, &base, &alice, &ids[0], "edited").await;
    delete_for_everyone(&client, &base, &alice, &ids[1]).await;
    let hidden = client
        .delete(format!("{base}/api/v1/messages/{}?scope=me", ids[2]))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();
    assert_eq!(hidden.status(), StatusCode::NO_CONTENT);
    sigkill(server); // SIGKILL the moment the last change is acknowledged
    assert_eq!(integrity(&db), ["ok"]);

    let mut restarted = start(&db).await;
    let path = format!(
        "{}/api/v1/conversations/{conversation}/messages",
        restarted.base
    );
    let seen = |page: Vec<Value>| -> Vec<Value> {
        page.iter()
            .map(|m| {
                json!([
                    m["id"],
                    m["content"],
                    m["edited_at"].is_string(),
                    m["deleted_at"].is_string()
                ])
            })
            .collect()
    };
    assert_eq!(
        seen(history(&client, &path, &alice).await),
        vec![
            json!([ids[0], "edited", true, false]),
            json!([ids[1], null, false, true]),
            json!([ids[2], "to hide", false, false]),
        ]
    );
    let bobs: Vec<Value> = seen(history(&client, &path, &bob).await);
    assert_eq!(bobs.len(), 2, "bob's hiding survived: {bobs:?}");
    restarted.child.kill().unwrap();
    restarted.child.wait().unwrap();
}

#[tokio::test]
async fn an_acknowledged_thread_reply_survives_a_sigkill_right_after_with_its_thread() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chat.db");
    let server = start(&db).await;
    let client = reqwest::Client::new();
    let base = server.base.clone();
    let (alice_id, alice) = token(&client, &base, "alice").await;
    let (bob_id, bob) = token(&client, &base, "bob").await;
    let conversation = direct(&client, &base, &alice, &bob_id).await;
    let path = format!("{base}/api/v1/conversations/{conversation}/messages");
    let send = |token: &str, body: Value| {
        client
            .post(&path)
            .bearer_auth(token.to_owned())
            .json(&body)
            .send()
    };
    let root: Value = send(&alice, json!({"content": "root"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let answer = send(
        &bob,
        json!({"content": "in the thread", "thread_root_id": root["id"]}),
    )
    .await
    .unwrap();
    assert_eq!(answer.status(), StatusCode::CREATED);
    let answer: Value = answer.json().await.unwrap();
    sigkill(server); // SIGKILL the moment the reply is acknowledged
    assert_eq!(integrity(&db), ["ok"]);

    let mut restarted = start(&db).await;
    let thread: Vec<Value> = client
        .get(format!(
            "{}/api/v1/messages/{}/thread",
            restarted.base,
            root["id"].as_str().unwrap()
        ))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(thread.len(), 1);
    assert_eq!(thread[0]["id"], answer["id"]);
    let path = format!(
        "{}/api/v1/conversations/{conversation}/messages",
        restarted.base
    );
    let main = history(&client, &path, &alice).await;
    assert_eq!(main.len(), 1, "the reply is in no history page");
    assert_eq!(
        main[0]["thread"],
        json!({
            "reply_count": 1,
            "last_reply_at": answer["created_at"],
            "last_reply_seq": answer["seq"],
            "participant_ids": [alice_id, bob_id],
        })
    );
    restarted.child.kill().unwrap();
    restarted.child.wait().unwrap();
}

#[tokio::test]
async fn acknowledged_mentions_and_their_edits_and_deletes_survive_a_sigkill_right_after() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chat.db");
    let server = start(&db).await;
    let client = reqwest::Client::new();
    let base = server.base.clone();
    let (_, alice) = token(&client, &base, "alice").await;
    let (bob_id, bob) = token(&client, &base, "bob").await;
    let conversation = direct(&client, &base, &alice, &bob_id).await;
    let path = format!("{base}/api/v1/conversations/{conversation}/messages");
    let mut ids = Vec::new();
    for text in ["@bob kept", "to edit", "@bob to delete"] {
        let response = client
            .post(&path)
            .bearer_auth(&alice)
            .json(&json!({"content": text}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let sent: Value = response.json().await.unwrap();
        ids.push(sent["id"].as_str().unwrap().to_owned());
    }
    edit(&client, &base, &alice, &ids[1], "edited for @BOB").await;
    delete_for_everyone(&client, &base, &alice, &ids[2]).await;
    sigkill(server); // SIGKILL the moment the last change is acknowledged
    assert_eq!(integrity(&db), ["ok"]);

    let mut restarted = start(&db).await;
    let path = format!(
        "{}/api/v1/conversations/{conversation}/messages",
        restarted.base
    );
    let mentions: Vec<Value> = history(&client, &path, &bob)
        .await
        .iter()
        .map(|m| json!([m["id"], m["mentions"]]))
        .collect();
    assert_eq!(
        mentions,
        vec![
            json!([ids[0], [bob_id]]),
            json!([ids[1], [bob_id]]),
            json!([ids[2], []]),
        ]
    );
    let counts: Value = client
        .get(format!("{}/api/v1/messages/unread/count", restarted.base))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(counts["unread_mentions"], 2, "{counts}");
    restarted.child.kill().unwrap();
    restarted.child.wait().unwrap();
}

#[tokio::test]
async fn the_search_index_holds_every_acknowledged_write_after_a_sigkill_right_after() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chat.db");
    let server = start(&db).await;
    let client = reqwest::Client::new();
    let base = server.base.clone();
    let (_, alice) = token(&client, &base, "alice").await;
    let (bob_id, _) = token(&client, &base, "bob").await;
    let conversation = direct(&client, &base, &alice, &bob_id).await;
    let path = format!("{base}/api/v1/conversations/{conversation}/messages");
    let send = |text: &str| {
        client
            .post(&path)
            .bearer_auth(&alice)
            .json(&json!({"content": text}))
            .send()
    };
    let mut ids = Vec::new();
    for text in ["alpha kept", "beta before", "delta gone"] {
        let sent: Value = send(text).await.unwrap().json().await.unwrap();
        ids.push(sent["id"].as_str().unwrap().to_owned());
    }
    edit(&client, &base, &alice, &ids[1], "gamma after").await;
    delete_for_everyone(&client, &base, &alice, &ids[2]).await;
    let last = send("epsilon last").await.unwrap();
    assert_eq!(last.status(), StatusCode::CREATED);
    sigkill(server); // SIGKILL the moment the last message is acknowledged
    // integrity_check checks the FTS5 index's structure too (it is contentless: what it
    // holds is checked by the searches below).
    assert_eq!(integrity(&db), ["ok"]);

    let mut restarted = start(&db).await;
    for (q, expected) in [
        ("alpha", vec!["alpha kept"]),
        ("beta", vec![]),
        ("gamma", vec!["gamma after"]),
        ("delta", vec![]),
        ("epsilon", vec!["epsilon last"]),
    ] {
        let page: Value = client
            .get(format!("{}/api/v1/search/messages?q={q}", restarted.base))
            .bearer_auth(&alice)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let found: Vec<&str> = page["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|hit| hit["message"]["content"].as_str().unwrap())
            .collect();
        assert_eq!(found, expected, "{q}");
    }
    restarted.child.kill().unwrap();
    restarted.child.wait().unwrap();
}

#[tokio::test]
async fn an_acknowledged_upload_and_a_send_with_it_survive_sigkills_right_after() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chat.db");
    let server = start(&db).await;
    let client = reqwest::Client::new();
    let base = server.base.clone();
    let (_, alice) = token(&client, &base, "alice").await;
    let (bob_id, bob) = token(&client, &base, "bob").await;
    let conversation = direct(&client, &base, &alice, &bob_id).await;
    // Big enough to take many chunks.
    let bytes: Vec<u8> = (0..3 * 1024 * 1024u32)
        .map(|i| b"abcdefghijklmnopqrstuvwxyz\n"[(i % 27) as usize])
        .collect();
    let body = crate::attachments::multipart("file", "big.txt", "text/plain", &bytes);
    let upload = |base: String, body: Vec<u8>| {
        client
            .post(format!("{base}/api/v1/attachments"))
            .bearer_auth(&alice)
            .header(
                "content-type",
                format!(
                    "multipart/form-data; boundary={}",
                    crate::attachments::BOUNDARY
                ),
            )
            .body(body)
            .send()
    };
    let stored = upload(base.clone(), body.clone()).await.unwrap();
    assert_eq!(stored.status(), StatusCode::CREATED);
    let stored: Value = stored.json().await.unwrap();
    sigkill(server); // SIGKILL the moment the upload is acknowledged
    assert_eq!(integrity(&db), ["ok"]);

    let server = start(&db).await;
    let file = format!(
        "{}/api/v1/attachments/{}",
        server.base,
        stored["id"].as_str().unwrap()
    );
    let download = |token: &str| client.get(&file).bearer_auth(token.to_owned()).send();
    let intact = download(&alice).await.unwrap();
    assert_eq!(intact.status(), StatusCode::OK);
    assert!(
        intact.bytes().await.unwrap() == bytes,
        "the bytes are intact"
    );
    let sent = client
        .post(format!(
            "{}/api/v1/conversations/{conversation}/messages",
            server.base
        ))
        .bearer_auth(&alice)
        .json(&json!({"content": "the file", "attachment_ids": [stored["id"]]}))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), StatusCode::CREATED);
    let killed_base = server.base.clone();
    sigkill(server); // SIGKILL the moment the send is acknowledged
    assert_eq!(integrity(&db), ["ok"]);

    let mut restarted = start(&db).await;
    let file = file.replace(&killed_base, &restarted.base);
    let seen = client.get(&file).bearer_auth(&bob).send().await.unwrap();
    assert_eq!(
        seen.status(),
        StatusCode::OK,
        "attached: the recipient may download it"
    );
    assert!(seen.bytes().await.unwrap() == bytes);
    let path = format!(
        "{}/api/v1/conversations/{conversation}/messages",
        restarted.base
    );
    let messages = history(&client, &path, &bob).await;
    assert_eq!(messages[0]["attachments"][0]["id"], stored["id"]);
    restarted.child.kill().unwrap();
    restarted.child.wait().unwrap();
}

/// A refresh, from the client's side: the new pair, or the status it was refused with.
async fn redeem(
    client: &reqwest::Client,
    base: &str,
    refresh_token: &Value,
) -> Result<Value, StatusCode> {
    let response = client
        .post(format!("{base}/api/v1/auth/refresh"))
        .json(&json!({"refresh_token": refresh_token}))
        .send()
        .await
        .unwrap();
    match response.status() {
        StatusCode::OK => Ok(response.json().await.unwrap()),
        refused => Err(refused),
    }
}

#[tokio::test]
async fn an_acknowledged_refresh_survives_a_sigkill_right_after_and_the_spent_token_stays_spent() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chat.db");
    let server = start(&db).await;
    let client = reqwest::Client::new();
    let base = server.base.clone();
    token(&client, &base, "alice").await;
    let login: Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": "alice", "password": "correct horse", "device_name": "phone"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rotated = redeem(&client, &base, &login["refresh_token"])
        .await
        .expect("the refresh is acknowledged");
    sigkill(server); // SIGKILL the moment the rotation is acknowledged
    assert_eq!(integrity(&db), ["ok"]);

    let mut restarted = start(&db).await;
    let base = restarted.base.clone();
    let me = client
        .get(format!("{base}/api/v1/auth/me"))
        .bearer_auth(rotated["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK, "the new access token works");
    let next = redeem(&client, &base, &rotated["refresh_token"])
        .await
        .expect("the new refresh token was stored before the answer");
    assert_eq!(next["session_id"], login["session_id"]);
    // The token spent before the crash is still spent: presenting it is reuse.
    assert_eq!(
        redeem(&client, &base, &login["refresh_token"]).await.err(),
        Some(StatusCode::UNAUTHORIZED)
    );
    assert_eq!(
        redeem(&client, &base, &next["refresh_token"]).await.err(),
        Some(StatusCode::UNAUTHORIZED),
        "the reuse ended the session"
    );
    restarted.child.kill().unwrap();
    restarted.child.wait().unwrap();
}
