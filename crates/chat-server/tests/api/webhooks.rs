//! Webhooks end to end: a receiver started by the test checks the signatures, the order of
//! each conversation's events, the retries after it answers 500, and (against the binary)
//! that a SIGKILL mid-dispatch loses no event.
//!
//! Most tests register their endpoint straight in the database, to keep to what they test;
//! the admin routes' success paths are in
//! `admins_register_list_and_remove_endpoints_and_replay_dead_letters`.

use std::collections::{HashMap, HashSet};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use chat_domain::ports::WebhookStore;
use chat_domain::webhook::{Webhook, WebhookId, WebhookSecret, WebhookUrl};
use chat_server::config::WebhookSettings;
use chat_sqlite::{Database, SqliteOptions, SqliteStore};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::binary::{Server, start_with, token};
use crate::helpers::{TestApp, spawn_app, spawn_app_with, test_config};

const HOOK_SECRET: &str = "whsec_end_to_end_0123456789";

/// What the receiver got: one entry per request, in the order they arrived.
#[derive(Debug, Clone)]
struct Seen {
    event_id: String,
    kind: String,
    body: Value,
    signed: bool,
    status: u16,
}

#[derive(Default)]
struct ReceiverState {
    seen: Mutex<Vec<Seen>>,
    /// Requests to answer 500 before answering 200.
    failures_left: AtomicUsize,
}

struct Receiver {
    url: String,
    state: Arc<ReceiverState>,
}

impl Receiver {
    fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    /// The events answered 200, in the order they arrived.
    fn delivered(&self) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.status == 200)
            .collect()
    }
}

async fn hook(req: HttpRequest, body: web::Bytes, state: web::Data<ReceiverState>) -> HttpResponse {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let now = chrono::Utc::now().timestamp();
    let signed =
        chat_http::webhooks::verify(HOOK_SECRET, &header("Chatd-Signature"), &body, now, 300);
    let failing = state
        .failures_left
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    let status = if failing { 500 } else { 200 };
    state.seen.lock().unwrap().push(Seen {
        event_id: header("Chatd-Event-Id"),
        kind: header("Chatd-Event-Type"),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        signed,
        status,
    });
    if failing {
        HttpResponse::InternalServerError().finish()
    } else {
        HttpResponse::Ok().finish()
    }
}

/// A receiver on a port of its own that answers 500 to its first `fail_first` requests.
fn receiver(fail_first: usize) -> Receiver {
    let state = Arc::new(ReceiverState {
        failures_left: AtomicUsize::new(fail_first),
        ..ReceiverState::default()
    });
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let data = web::Data::from(state.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/hook", web::post().to(hook))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    Receiver {
        url: format!("http://127.0.0.1:{port}/hook"),
        state,
    }
}

/// Registers `url` in the database file `db` directly (see the module doc).
fn register(db: &Path, url: &str) {
    let database = Database::open(&db.display().to_string(), &SqliteOptions::default()).unwrap();
    database.migrate().unwrap();
    let store = SqliteStore::new(Arc::new(database)).unwrap();
    store
        .insert_webhook(&Webhook {
            id: WebhookId::new(),
            url: WebhookUrl::parse(url).unwrap(),
            secret: WebhookSecret::parse(HOOK_SECRET).unwrap(),
            created_by: None,
            created_at: chrono::Utc::now(),
        })
        .unwrap();
}

/// Settings that make the dispatcher quick to notice, retry and re-claim.
fn quick() -> WebhookSettings {
    WebhookSettings {
        webhook_retry_base: Duration::from_millis(20),
        webhook_retry_max_delay: Duration::from_millis(100),
        webhook_poll_interval: Duration::from_millis(10),
        webhook_lease: Duration::from_secs(2),
        webhook_timeout: Duration::from_millis(500),
        notification_collapse: Duration::ZERO,
        ..WebhookSettings::default()
    }
}

async fn spawn_hooked_app(receiver: &Receiver) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    register(&dir.path().join("chat.db"), &receiver.url);
    let config = chat_server::Config {
        webhooks: quick(),
        ..test_config(&dir)
    };
    spawn_app_with(config, dir).await
}

/// Waits (within 60 s) until `done` holds.
async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..6_000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("gave up waiting: {what}");
}

fn message_ids(seen: &[Seen], kind: &str) -> HashSet<String> {
    seen.iter()
        .filter(|s| s.kind == kind)
        .filter_map(|s| s.body["data"]["message_id"].as_str().map(str::to_owned))
        .collect()
}

/// Asserts that each conversation's events (those with a seq) arrived in seq order.
fn assert_in_order_per_conversation(delivered: &[Seen]) {
    let mut last: HashMap<String, i64> = HashMap::new();
    for s in delivered {
        let data = &s.body["data"];
        let (Some(conversation), Some(seq)) =
            (data["conversation_id"].as_str(), data["seq"].as_i64())
        else {
            continue;
        };
        let previous = last.insert(conversation.to_owned(), seq).unwrap_or(0);
        assert!(
            seq > previous,
            "{} (seq {seq}) arrived after seq {previous} of its conversation",
            s.kind
        );
    }
}

#[tokio::test]
async fn an_endpoint_receives_every_change_signed_and_in_order_per_conversation() {
    let receiver = receiver(0);
    let app = spawn_hooked_app(&receiver).await;
    let [alice, bob, carol] = app.users(["alice", "bob", "carol"]).await;
    let group = app.group(&alice, &[&bob]).await;
    let direct = app.direct(&alice, &carol).await;
    let mut sent = Vec::new();
    for i in 0..10 {
        let to = if i % 2 == 0 { &group } else { &direct };
        let message = app.send(&alice, to, &format!("message {i}")).await;
        sent.push(message["id"].as_str().unwrap().to_owned());
    }
    let edited = app
        .request(
            reqwest::Method::PATCH,
            &format!("/api/v1/messages/{}", sent[0]),
            Some(&alice.token),
            Some(json!({"content": "edited"})),
        )
        .await;
    assert_eq!(edited.status(), StatusCode::OK);
    let deleted = app
        .delete(&format!("/api/v1/messages/{}", sent[1]), &alice.token)
        .await;
    assert_eq!(deleted.status(), StatusCode::OK);
    let renamed = app
        .request(
            reqwest::Method::PUT,
            &format!("/api/v1/conversations/{group}"),
            Some(&alice.token),
            Some(json!({"name": "renamed"})),
        )
        .await;
    assert!(renamed.status().is_success());

    wait_until("every event arrives", || {
        let seen = receiver.delivered();
        let kinds: HashSet<&str> = seen.iter().map(|s| s.kind.as_str()).collect();
        message_ids(&seen, "message.created").len() == sent.len()
            && ["message.edited", "message.deleted", "conversation.renamed"]
                .iter()
                .all(|k| kinds.contains(k))
    })
    .await;
    let delivered = receiver.delivered();
    assert!(
        delivered.iter().all(|s| s.signed),
        "every delivery is signed with the secret"
    );
    for s in &delivered {
        assert_eq!(
            s.body["id"],
            s.event_id.as_str(),
            "the body's id is the header's"
        );
        assert_eq!(s.body["type"], s.kind.as_str());
    }
    let ids: HashSet<&str> = delivered.iter().map(|s| s.event_id.as_str()).collect();
    assert_eq!(
        ids.len(),
        delivered.len(),
        "no event twice without a failure"
    );
    assert_in_order_per_conversation(&delivered);
    let created = delivered
        .iter()
        .find(|s| s.kind == "message.created" && s.body["data"]["message_id"] == sent[2].as_str())
        .unwrap();
    assert_eq!(created.body["data"]["message"]["content"], "message 2");
    assert_eq!(
        created.body["data"]["message"]["sender_id"],
        alice.id.as_str()
    );

    // Bob and Carol have no socket open: a notification per message, without its content.
    let notifications: Vec<&Seen> = delivered
        .iter()
        .filter(|s| s.kind == "notification")
        .collect();
    let to = |user: &str| {
        notifications
            .iter()
            .filter(|s| s.body["data"]["recipient_id"] == user)
            .count()
    };
    assert_eq!((to(&bob.id), to(&carol.id), to(&alice.id)), (5, 5, 0));
    for n in &notifications {
        let data = &n.body["data"];
        let sender = data["sender_name"].as_str().unwrap();
        assert!(
            sender.starts_with("alice"),
            "the sender's display name: {sender}"
        );
        assert!(data.get("content").is_none() && data.get("message").is_none());
        assert!(
            !n.body.to_string().contains("message "),
            "no content: {}",
            n.body
        );
    }
}

#[tokio::test]
async fn an_event_answered_500_is_sent_again_with_the_same_id_and_its_conversation_waits() {
    let receiver = receiver(2);
    let app = spawn_hooked_app(&receiver).await;
    let [alice, bob] = app.users(["alice", "bob"]).await;
    let group = app.group(&alice, &[&bob]).await;
    let mut sent = Vec::new();
    for i in 0..3 {
        let message = app.send(&alice, &group, &format!("message {i}")).await;
        sent.push(message["id"].as_str().unwrap().to_owned());
    }
    wait_until("every message arrives", || {
        message_ids(&receiver.delivered(), "message.created").len() == sent.len()
    })
    .await;
    let seen = receiver.seen();
    let first = &seen[0];
    assert_eq!(first.status, 500);
    let attempts: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.event_id == first.event_id)
        .collect();
    assert_eq!(
        attempts.iter().map(|s| s.status).collect::<Vec<_>>(),
        [500, 500, 200],
        "retried with the same id until it arrived"
    );
    let arrived = seen
        .iter()
        .position(|s| s.event_id == first.event_id && s.status == 200)
        .unwrap();
    assert!(
        seen[..arrived].iter().all(|s| s.event_id == first.event_id),
        "nothing of its conversation went ahead of the failing event"
    );
    assert_in_order_per_conversation(&receiver.delivered());
}

#[tokio::test]
async fn webhook_deliveries_and_failures_are_counted_in_the_metrics() {
    let receiver = receiver(2);
    let dir = tempfile::tempdir().unwrap();
    register(&dir.path().join("chat.db"), &receiver.url);
    let config = chat_server::Config {
        webhooks: quick(),
        ..test_config(&dir)
    };
    let (app, metrics) = crate::metrics::spawn_with_metrics(config, dir).await;
    let delivered = |scrape: &str| {
        crate::scrape::sample(
            scrape,
            "chatd_webhook_deliveries_total",
            &["result=\"delivered\""],
        )
    };
    let failed = |scrape: &str| {
        crate::scrape::sample(
            scrape,
            "chatd_webhook_deliveries_total",
            &["result=\"failed\""],
        )
    };
    // The recorder is the process's: other tests' servers count into it too, so this
    // test compares its own before and after.
    let before = crate::scrape::scrape(metrics).await;
    let [alice, bob] = app.users(["alice", "bob"]).await;
    let group = app.group(&alice, &[&bob]).await;
    app.send(&alice, &group, "counted").await;
    wait_until("the message arrives", || {
        message_ids(&receiver.delivered(), "message.created").len() == 1
    })
    .await;
    let after = crate::scrape::scrape(metrics).await;
    assert!(
        failed(&after) - failed(&before) >= 2.0,
        "the two 500s are counted as failed"
    );
    assert!(
        delivered(&after) - delivered(&before) >= 1.0,
        "the delivery is counted"
    );
    assert!(
        after.contains("chatd_webhook_outbox_depth"),
        "the outbox depth is exported"
    );
}

#[tokio::test]
async fn the_admin_webhook_routes_refuse_anonymous_callers_and_non_admins() {
    let app = spawn_app().await;
    let someone = app.user("someone").await;
    let webhook = uuid::Uuid::new_v4();
    let routes = [
        (
            reqwest::Method::POST,
            "/api/v1/admin/webhooks".to_owned(),
            Some(json!({"url": "https://example.com/x", "secret": "0123456789abcdef"})),
        ),
        (
            reqwest::Method::GET,
            "/api/v1/admin/webhooks".to_owned(),
            None,
        ),
        (
            reqwest::Method::DELETE,
            format!("/api/v1/admin/webhooks/{webhook}"),
            None,
        ),
        (
            reqwest::Method::GET,
            "/api/v1/admin/webhooks/dead-letters".to_owned(),
            None,
        ),
        (
            reqwest::Method::POST,
            "/api/v1/admin/webhooks/dead-letters/1/replay".to_owned(),
            None,
        ),
    ];
    for (method, path, body) in routes {
        let anonymous = app.request(method.clone(), &path, None, body.clone()).await;
        assert_eq!(
            anonymous.status(),
            StatusCode::UNAUTHORIZED,
            "{method} {path}"
        );
        let refused = app
            .request(method.clone(), &path, Some(&someone.token), body)
            .await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{method} {path}");
        let error: Value = refused.json().await.unwrap();
        assert_eq!(error["code"], "forbidden");
    }
    // Who may is decided before what: a non-admin learns nothing about the fields.
    let invalid = app
        .post(
            "/api/v1/admin/webhooks",
            &someone.token,
            json!({"url": "ftp://x", "secret": "short"}),
        )
        .await;
    assert_eq!(invalid.status(), StatusCode::FORBIDDEN);
    let openapi = app.openapi().await;
    for path in [
        "/api/v1/admin/webhooks",
        "/api/v1/admin/webhooks/{webhook_id}",
        "/api/v1/admin/webhooks/dead-letters",
        "/api/v1/admin/webhooks/dead-letters/{dead_letter_id}/replay",
    ] {
        assert!(openapi["paths"][path].is_object(), "{path} is documented");
    }
}

/// An admin made with `chat-server admin grant` registers, lists and removes endpoints and
/// replays a dead letter.
#[tokio::test]
async fn admins_register_list_and_remove_endpoints_and_replay_dead_letters() {
    let receiver = receiver(usize::MAX);
    let dir = tempfile::tempdir().unwrap();
    let config = chat_server::Config {
        webhooks: WebhookSettings {
            // Every failure is final: the first attempt makes a dead letter.
            webhook_give_up_after: Duration::ZERO,
            ..quick()
        },
        ..test_config(&dir)
    };
    let app = spawn_app_with(config.clone(), dir).await;
    let root = app.user("root").await;
    app.shutdown.stop().await;
    let granted = Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .args(["admin", "grant", "root"])
        .env("DATABASE_URL", &config.database_url)
        .env("RUST_LOG", "off")
        .status()
        .unwrap();
    assert!(granted.success());
    let app = spawn_app_with(config, app.dir).await;

    let invalid = app
        .post(
            "/api/v1/admin/webhooks",
            &root.token,
            json!({"url": "ftp://x", "secret": "short"}),
        )
        .await;
    assert_eq!(invalid.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let created = app
        .post(
            "/api/v1/admin/webhooks",
            &root.token,
            json!({"url": receiver.url, "secret": HOOK_SECRET}),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await.unwrap();
    assert!(created.get("secret").is_none(), "the secret is never shown");
    let listed: Value = app
        .get("/api/v1/admin/webhooks", &root.token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed[0]["id"], created["id"]);
    assert!(!listed.to_string().contains(HOOK_SECRET));

    let bob = app.user("bob").await;
    app.direct(&root, &bob).await;
    let mut dead: Vec<Value> = Vec::new();
    wait_until("a dead letter", || !receiver.seen().is_empty()).await;
    for _ in 0..600 {
        dead = app
            .get("/api/v1/admin/webhooks/dead-letters", &root.token)
            .await
            .json()
            .await
            .unwrap();
        if !dead.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(dead[0]["state"], "dead");
    assert_eq!(dead[0]["last_error"], "answered 500");
    receiver.state.failures_left.store(0, Ordering::SeqCst);
    let id = dead[0]["id"].as_i64().unwrap();
    let replayed = app
        .post(
            &format!("/api/v1/admin/webhooks/dead-letters/{id}/replay"),
            &root.token,
            json!({}),
        )
        .await;
    assert_eq!(replayed.status(), StatusCode::OK);
    let event = dead[0]["event_id"].as_str().unwrap().to_owned();
    wait_until("the replayed event arrives", || {
        receiver.delivered().iter().any(|s| s.event_id == event)
    })
    .await;
    let webhook = created["id"].as_str().unwrap();
    let removed = app
        .delete(&format!("/api/v1/admin/webhooks/{webhook}"), &root.token)
        .await;
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    let again = app
        .delete(&format!("/api/v1/admin/webhooks/{webhook}"), &root.token)
        .await;
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
}

// The binary, killed mid-dispatch.

/// The binary, with a dispatcher quick enough for a test: it polls often, and a delivery
/// cut off by the SIGKILL is sent again a second later.
async fn start(db: &Path) -> Server {
    start_with(
        db,
        &[
            ("CHAT_WEBHOOK_POLL_INTERVAL", "10ms"),
            ("CHAT_WEBHOOK_LEASE", "1s"),
            ("CHAT_WEBHOOK_TIMEOUT", "300ms"),
        ],
    )
    .await
}

#[tokio::test]
async fn a_sigkill_mid_dispatch_loses_no_event_and_a_repeat_keeps_its_id() {
    let receiver = receiver(0);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chat.db");
    register(&db, &receiver.url);
    let server = start(&db).await;
    let client = reqwest::Client::new();
    let (_, alice) = token(&client, &server.base, "alice").await;
    let (bob, _) = token(&client, &server.base, "bob").await;
    let conversation: Value = client
        .post(format!("{}/api/v1/conversations", server.base))
        .bearer_auth(&alice)
        .json(&json!({"participant_ids": [bob]}))
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
    let mut acknowledged = Vec::new();
    let mut killed = false;
    let mut server = Some(server);
    for i in 0..400 {
        let sent = client
            .post(&path)
            .bearer_auth(&alice)
            .json(&json!({"content": format!("message {i}")}))
            .send()
            .await;
        match sent {
            Ok(response) if response.status() == StatusCode::CREATED => {
                let message: Value = response.json().await.unwrap();
                acknowledged.push(message["id"].as_str().unwrap().to_owned());
            }
            _ => break,
        }
        // Once deliveries are flowing, and while messages are still being sent and
        // dispatched: SIGKILL, no shutdown of any kind.
        if !killed && message_ids(&receiver.delivered(), "message.created").len() >= 20 {
            let mut child = server.take().unwrap().child;
            child.kill().unwrap();
            child.wait().unwrap();
            killed = true;
            break;
        }
    }
    assert!(killed, "the dispatcher delivered while messages were sent");
    let server = start(&db).await;
    wait_until("every acknowledged message is announced", || {
        let arrived = message_ids(&receiver.delivered(), "message.created");
        acknowledged.iter().all(|id| arrived.contains(id))
    })
    .await;
    // A repeat (sent before the kill, acknowledged to nobody) keeps its event id.
    let mut ids_of: HashMap<String, HashSet<String>> = HashMap::new();
    for s in receiver
        .delivered()
        .iter()
        .filter(|s| s.kind == "message.created")
    {
        let message = s.body["data"]["message_id"].as_str().unwrap().to_owned();
        ids_of
            .entry(message)
            .or_default()
            .insert(s.event_id.clone());
    }
    assert!(
        ids_of.values().all(|ids| ids.len() == 1),
        "one event id per message, however often it was sent"
    );
    let mut child = server.child;
    child.kill().unwrap();
    child.wait().unwrap();
}
