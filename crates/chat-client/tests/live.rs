//! The live connection against a real server, through a TCP proxy the tests can cut: a drop,
//! a refused reconnect for a while, then the link back. What a user relies on: nothing sent
//! while they were away is lost or shown twice, and nothing they sent is lost or stored twice.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chat_client::events::{Event, SendMessage};
use chat_client::live::{EndReason, Options, Status};
use chat_client::types::{HistoryCursor, NewConversation, NewMessage, Signup};
use chat_client::{Client, Live, Update};
use chat_server::{Application, Config, Shutdown};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use uuid::Uuid;

/// How long a test waits for something that should happen: generous, for debug builds on a
/// busy machine. No test measures time.
const PATIENCE: Duration = Duration::from_secs(30);

struct Server {
    address: SocketAddr,
    _shutdown: Shutdown,
    _dir: tempfile::TempDir,
}

fn config(dir: &tempfile::TempDir, token_ttl: Duration) -> Config {
    Config {
        token_ttl,
        ..Config::for_tests(format!("sqlite://{}", dir.path().join("chat.db").display()))
    }
}

async fn spawn_server(token_ttl: Duration) -> Server {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let app = Application::build(config(&dir, token_ttl))
        .await
        .expect("the server builds");
    let address = SocketAddr::from(([127, 0, 0, 1], app.port()));
    let shutdown = app.shutdown_handle();
    tokio::spawn(app.run_until_stopped());
    Server {
        address,
        _shutdown: shutdown,
        _dir: dir,
    }
}

/// A TCP proxy in front of the server whose links the test can cut, and which can refuse new
/// ones for a while (a network outage, as the client sees it).
struct Proxy {
    address: SocketAddr,
    refusing: Arc<AtomicBool>,
    cuts: watch::Sender<u64>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let address = listener.local_addr().expect("its address");
        let refusing = Arc::new(AtomicBool::new(false));
        let (cuts, _) = watch::channel(0);
        let proxy = Proxy {
            address,
            refusing: refusing.clone(),
            cuts: cuts.clone(),
        };
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if refusing.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let mut cut = cuts.subscribe();
                cut.mark_unchanged();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        proxy
    }

    fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Cuts every link open now; with `refuse`, new ones are dropped until [`Proxy::restore`].
    fn cut(&self, refuse: bool) {
        self.refusing.store(refuse, Ordering::SeqCst);
        self.cuts.send_modify(|n| *n += 1);
    }

    fn restore(&self) {
        self.refusing.store(false, Ordering::SeqCst);
    }
}

/// A new user, logged in through `base_url`.
async fn user(server: &Server, base_url: &str, name: &str) -> (Client, Uuid) {
    let direct = Client::new(&format!("http://{}", server.address)).expect("a client");
    let me = direct
        .signup(&Signup {
            username: name.into(),
            email: format!("{name}@example.com"),
            password: "correct horse battery".into(),
            full_name: None,
        })
        .await
        .expect("signup");
    let client = Client::new(base_url).expect("a client");
    client
        .login(name, "correct horse battery")
        .await
        .expect("login");
    (client, me.id)
}

/// Reconnects come quickly, so the tests do not wait on backoff.
fn quick() -> Options {
    Options {
        backoff_base: Duration::from_millis(50),
        backoff_cap: Duration::from_millis(300),
        ..Options::default()
    }
}

async fn next(live: &mut Live) -> Update {
    tokio::time::timeout(PATIENCE, live.next())
        .await
        .expect("an update in time")
        .expect("the connection goes on")
}

async fn until_status(live: &mut Live, wanted: impl Fn(&Status) -> bool) -> Status {
    loop {
        if let Update::Status(status) = next(live).await
            && wanted(&status)
        {
            return status;
        }
    }
}

/// The contents of the `new_message` events up to and including the one with `last`, in the
/// order yielded.
async fn messages_until(live: &mut Live, last: &str) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        if let Update::Event(Event::NewMessage(event)) = next(live).await {
            let content = event.message.content.unwrap_or_default();
            let done = content == last;
            seen.push(content);
            if done {
                return seen;
            }
        }
    }
}

/// Alice behind the proxy, Bob straight to the server, in one direct conversation.
struct Pair {
    _server: Server,
    proxy: Proxy,
    alice: Client,
    bob: Client,
    conversation: Uuid,
}

async fn pair(token_ttl: Duration) -> Pair {
    let server = spawn_server(token_ttl).await;
    let proxy = Proxy::start(server.address).await;
    let (alice, alice_id) = user(&server, &proxy.url(), "alice").await;
    let (bob, _) = user(&server, &format!("http://{}", server.address), "bob").await;
    let conversation = bob
        .create_conversation(&NewConversation::direct(alice_id))
        .await
        .expect("a conversation")
        .id;
    Pair {
        _server: server,
        proxy,
        alice,
        bob,
        conversation,
    }
}

impl Pair {
    async fn bob_says(&self, content: &str) {
        self.bob
            .send_message(self.conversation, &NewMessage::text(content))
            .await
            .expect("bob's message is stored");
    }
}

#[tokio::test]
async fn what_was_sent_during_an_outage_arrives_after_the_reconnect_in_order_and_once() {
    let pair = pair(Duration::from_secs(3600)).await;
    let mut alice = Live::connect(pair.alice.clone(), quick())
        .await
        .expect("alice connects");
    pair.bob_says("before").await;
    assert_eq!(messages_until(&mut alice, "before").await, ["before"]);

    pair.proxy.cut(true);
    until_status(&mut alice, |s| matches!(s, Status::Disconnected { .. })).await;
    for content in ["one", "two", "three"] {
        pair.bob_says(content).await;
    }
    pair.proxy.restore();
    until_status(&mut alice, |s| matches!(s, Status::Connected { .. })).await;
    assert_eq!(
        messages_until(&mut alice, "three").await,
        ["one", "two", "three"],
        "the catch-up brings what was missed, in order, and not what was seen before the drop"
    );

    pair.bob_says("after").await;
    assert_eq!(
        messages_until(&mut alice, "after").await,
        ["after"],
        "live messages follow, with nothing repeated before them"
    );
}

#[tokio::test]
async fn a_message_sent_while_the_link_is_down_is_delivered_exactly_once() {
    let pair = pair(Duration::from_secs(3600)).await;
    let mut alice = Live::connect(pair.alice.clone(), quick())
        .await
        .expect("alice connects");
    let mut bob = Live::connect(pair.bob.clone(), quick())
        .await
        .expect("bob connects");

    // Sent just as the link dies: it may or may not have reached the server.
    alice
        .send_message(SendMessage::to_conversation(pair.conversation, "racing"))
        .expect("queued");
    pair.proxy.cut(true);
    until_status(&mut alice, |s| matches!(s, Status::Disconnected { .. })).await;
    // Sent while the link is down.
    alice
        .send_message(SendMessage::to_conversation(pair.conversation, "offline"))
        .expect("queued");
    pair.proxy.restore();

    let mine = messages_until(&mut alice, "offline").await;
    assert_eq!(
        mine.iter().filter(|c| *c == "racing").count(),
        1,
        "{mine:?}"
    );

    // Bob's own message after both marks the end of what he will get of them.
    pair.bob_says("done").await;
    let bobs = messages_until(&mut bob, "done").await;
    assert_eq!(
        bobs.iter().filter(|c| *c == "racing").count(),
        1,
        "{bobs:?}"
    );
    assert_eq!(
        bobs.iter().filter(|c| *c == "offline").count(),
        1,
        "{bobs:?}"
    );

    let history = pair
        .bob
        .messages(pair.conversation, HistoryCursor::Latest, None)
        .await
        .expect("the history");
    let stored: Vec<_> = history
        .iter()
        .filter_map(|m| m.content.as_deref())
        .collect();
    assert_eq!(stored, ["racing", "offline", "done"], "each stored once");
}

#[tokio::test]
async fn after_close_the_connection_ends_and_does_not_come_back() {
    let pair = pair(Duration::from_secs(3600)).await;
    let mut alice = Live::connect(pair.alice.clone(), quick())
        .await
        .expect("alice connects");
    alice.close();
    loop {
        match tokio::time::timeout(PATIENCE, alice.next())
            .await
            .expect("the end comes in time")
        {
            Some(Update::Status(Status::Ended(reason))) => {
                assert_eq!(reason, EndReason::Closed);
                break;
            }
            Some(Update::Status(Status::Reconnecting { .. })) => panic!("reconnects after close"),
            Some(_) => continue,
            None => panic!("ended without saying so"),
        }
    }
    assert_eq!(alice.next().await, None, "nothing follows the end");
    assert!(
        alice.ping().is_err(),
        "a closed connection takes no more frames"
    );
}

#[tokio::test]
async fn a_token_that_expired_while_connected_is_refreshed_before_the_reconnect() {
    let pair = pair(Duration::from_secs(1)).await;
    let mut alice = Live::connect(pair.alice.clone(), quick())
        .await
        .expect("alice connects");
    // The client believes its token good for a long while (its clock is off, say), so the
    // reconnect presents a token the server finds expired.
    let mut session = pair.alice.session().await.expect("logged in");
    let stale_token = session.access_token.clone();
    session.refresh_at = chrono::Utc::now() + chrono::Duration::hours(1);
    session.expires_at = chrono::Utc::now() + chrono::Duration::hours(1);
    pair.alice.set_session(Some(session)).await;
    // A wait, not a measurement: past the token's one-second lifetime.
    tokio::time::sleep(Duration::from_secs(2)).await;

    pair.proxy.cut(false);
    until_status(&mut alice, |s| matches!(s, Status::Disconnected { .. })).await;
    until_status(&mut alice, |s| matches!(s, Status::Connected { .. })).await;
    let session = pair.alice.session().await.expect("still logged in");
    assert_ne!(session.access_token, stale_token, "the token was refreshed");
    pair.bob_says("still here").await;
    assert_eq!(
        messages_until(&mut alice, "still here").await,
        ["still here"]
    );
}

#[tokio::test]
async fn a_session_that_ended_ends_the_connection_without_reconnecting() {
    let pair = pair(Duration::from_secs(3600)).await;
    let mut alice = Live::connect(pair.alice.clone(), quick())
        .await
        .expect("alice connects");
    pair.alice.logout().await.expect("logged out");
    let ended = until_status(&mut alice, |s| matches!(s, Status::Ended(_))).await;
    assert!(
        matches!(ended, Status::Ended(EndReason::SessionEnded { .. })),
        "{ended:?}"
    );
    assert_eq!(alice.next().await, None);
}

#[tokio::test]
async fn a_connection_started_from_a_stored_position_catches_up_from_it_page_by_page() {
    let pair = pair(Duration::from_secs(3600)).await;
    let mut alice = Live::connect(pair.alice.clone(), quick())
        .await
        .expect("alice connects");
    pair.bob_says("seen").await;
    assert_eq!(messages_until(&mut alice, "seen").await, ["seen"]);
    let stored = alice.position();
    alice.close();
    while alice.next().await.is_some() {}

    for content in ["a", "b", "c", "d", "e"] {
        pair.bob_says(content).await;
    }
    let mut alice = Live::connect(
        pair.alice.clone(),
        Options {
            since: Some(stored),
            sync_page: 2,
            ..quick()
        },
    )
    .await
    .expect("alice connects again");
    let mut seen = Vec::new();
    loop {
        match next(&mut alice).await {
            Update::Event(Event::NewMessage(event)) => {
                seen.push(event.message.content.unwrap_or_default());
            }
            Update::Event(Event::Synced(synced)) if !synced.has_more => break,
            _ => {}
        }
    }
    assert_eq!(seen, ["a", "b", "c", "d", "e"], "all pages, in order");
    assert!(alice.position() > stored);
}

#[tokio::test]
async fn a_message_the_server_refused_is_not_sent_again_after_a_reconnect() {
    let pair = pair(Duration::from_secs(3600)).await;
    let mut alice = Live::connect(pair.alice.clone(), quick())
        .await
        .expect("alice connects");
    let id = alice
        .send_message(SendMessage::to_conversation(pair.conversation, "   "))
        .expect("queued");
    let refusal = loop {
        if let Update::Event(Event::Error(error)) = next(&mut alice).await {
            break error;
        }
    };
    assert_eq!(refusal.code, "validation_error");
    assert_eq!(refusal.reference.as_deref(), Some(id.as_str()));

    pair.proxy.cut(false);
    until_status(&mut alice, |s| matches!(s, Status::Connected { .. })).await;
    // Resends go out as the connection opens, before anything asked for after it: the
    // server answers frames in the order read, so a refusal of a resend comes before the pong.
    alice.ping().expect("the connection is up");
    loop {
        match next(&mut alice).await {
            Update::Event(Event::Error(error)) => panic!("refused again: {error:?}"),
            Update::Event(Event::Pong) => break,
            _ => {}
        }
    }
}

/// A stand-in gateway for what one server never does: a `resync` (clusters only), and a
/// catch-up whose frames arrive out of order. It checks the token, then plays its part.
// The handshake callback's signature, error type included, is tungstenite's.
#[allow(clippy::result_large_err)]
#[tokio::test]
async fn a_resync_catches_up_from_the_lower_position_and_yields_in_order() {
    use futures_util::{SinkExt, StreamExt};
    use serde_json::{Value, json};
    use tokio_tungstenite::tungstenite::Message as Frame;

    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let address = listener.local_addr().expect("its address");
    let user = Uuid::new_v4();
    let conversation = Uuid::new_v4();
    let pinned = move |seq: i64| {
        json!({"type": "message_pinned", "seq": seq, "message_id": Uuid::new_v4(),
               "conversation_id": conversation, "user_id": user,
               "timestamp": "2026-12-07T10:02:00Z"})
        .to_string()
    };
    let gateway = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("a connection");
        let mut socket = tokio_tungstenite::accept_hdr_async(
            tcp,
            |request: &tokio_tungstenite::tungstenite::handshake::server::Request, response| {
                assert_eq!(request.headers()["authorization"], "Bearer the-token");
                Ok(response)
            },
        )
        .await
        .expect("a WebSocket");
        let connected = json!({"type": "connected", "user_id": user, "last_seq": 10});
        socket
            .send(Frame::text(connected.to_string()))
            .await
            .unwrap();
        socket
            .send(Frame::text(
                json!({"type": "resync", "since_seq": 4}).to_string(),
            ))
            .await
            .unwrap();
        let sync = loop {
            if let Some(Ok(Frame::Text(text))) = socket.next().await {
                break serde_json::from_str::<Value>(&text).unwrap();
            }
        };
        // A live frame past the catch-up, then the catch-up's own, out of order.
        for seq in [12, 7, 5] {
            socket.send(Frame::text(pinned(seq))).await.unwrap();
        }
        let synced = json!({"type": "synced", "last_seq": 7, "has_more": false});
        socket.send(Frame::text(synced.to_string())).await.unwrap();
        // Keep the socket open until the client is done.
        while socket.next().await.is_some() {}
        sync
    });

    let client = Client::from_session(
        &format!("http://{address}"),
        chat_client::Session {
            access_token: "the-token".into(),
            refresh_token: "unused".into(),
            session_id: Uuid::new_v4(),
            expires_at: chrono::Utc::now() + chrono::Duration::hours(1),
            refresh_at: chrono::Utc::now() + chrono::Duration::hours(1),
        },
    )
    .expect("a client");
    let mut live = Live::connect(client, quick()).await.expect("connects");
    let mut positions = Vec::new();
    loop {
        match next(&mut live).await {
            Update::Event(Event::MessagePinned(pin)) => positions.push(pin.seq),
            Update::Event(Event::Synced(_)) => break,
            _ => {}
        }
    }
    assert_eq!(positions, [5, 7, 12], "in ascending position");
    assert_eq!(live.position(), 12);
    live.close();
    assert_eq!(
        gateway.await.expect("the gateway ran"),
        json!({"type": "sync", "since_seq": 4, "limit": 500}),
        "the catch-up starts from the resync's lower position"
    );
}
