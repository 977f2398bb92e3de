//! Two "nodes" (two cluster publishers in one process) on a real NATS server.
//!
//! Needs `CHAT_TEST_NATS_URL` (e.g. `nats://127.0.0.1:4222`); the broker-restart test also
//! needs the `nats-server` binary, because it starts, kills and restarts its own broker. Each
//! test uses a subject of its own, so tests on the shared broker do not hear each other.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chat_domain::events::DomainEvent;
use chat_domain::ports::EventPublisher;
use chat_nats::wire::sample_events;
use chat_nats::{BusOptions, ClusterPublisher};

fn nats_url() -> Option<String> {
    let url = std::env::var("CHAT_TEST_NATS_URL").ok();
    if url.is_none() {
        skipped("chat-nats bus tests: set CHAT_TEST_NATS_URL to run them");
    }
    url
}

/// Says so on the real stderr: the test harness captures `eprintln!` of passing tests.
fn skipped(why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {why}");
}

/// What a node's own sockets and caches would have been handed.
#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl EventPublisher for Recorder {
    fn publish(&self, event: DomainEvent) {
        self.0.lock().unwrap().push(format!("{event:?}"));
    }
}

impl Recorder {
    fn seen(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    async fn wait_for(&self, count: usize) -> Vec<String> {
        for _ in 0..200 {
            if self.0.lock().unwrap().len() >= count {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        self.seen()
    }
}

struct Node {
    bus: Arc<ClusterPublisher>,
    local: Arc<Recorder>,
    resyncs: Arc<AtomicUsize>,
}

async fn node(url: &str, subject: &str, queue: usize) -> Node {
    let local = Arc::new(Recorder::default());
    let resyncs = Arc::new(AtomicUsize::new(0));
    let counter = resyncs.clone();
    let options = BusOptions {
        subject: subject.to_owned(),
        queue,
        ..BusOptions::new(url)
    };
    let bus = ClusterPublisher::start(
        options,
        local.clone(),
        Arc::new(move |_since_seq| {
            counter.fetch_add(1, Ordering::SeqCst);
        }),
    )
    .await
    .expect("joins the bus");
    Node {
        bus,
        local,
        resyncs,
    }
}

fn subject() -> String {
    format!("chatd.test.{}", uuid::Uuid::new_v4().simple())
}

fn debug(events: &[DomainEvent]) -> Vec<String> {
    events.iter().map(|e| format!("{e:?}")).collect()
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..400 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting until {what}");
}

#[tokio::test]
async fn two_nodes_deliver_each_others_events_of_every_kind() {
    let Some(url) = nats_url() else { return };
    let subject = subject();
    let a = node(&url, &subject, 1024).await;
    let b = node(&url, &subject, 1024).await;
    let from_a = sample_events();
    let from_b = sample_events();
    for event in &from_a {
        a.bus.publish(event.clone());
    }
    for event in &from_b {
        b.bus.publish(event.clone());
    }
    let mut expected_on_a = debug(&from_a);
    expected_on_a.extend(debug(&from_b));
    let mut expected_on_b = debug(&from_b);
    expected_on_b.extend(debug(&from_a));
    let mut on_a = a.local.wait_for(expected_on_a.len()).await;
    let mut on_b = b.local.wait_for(expected_on_b.len()).await;
    // Each node's own events come first (delivered at once); the other's arrive in order.
    assert_eq!(on_a[..from_a.len()], expected_on_a[..from_a.len()]);
    assert_eq!(on_b[..from_b.len()], expected_on_b[..from_b.len()]);
    on_a.sort();
    on_b.sort();
    expected_on_a.sort();
    expected_on_b.sort();
    assert_eq!(on_a, expected_on_a);
    assert_eq!(on_b, expected_on_b);
    assert!(a.bus.is_connected() && b.bus.is_connected());
    assert_eq!(a.resyncs.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_node_hears_every_event_published_after_it_joined_the_bus() {
    let Some(url) = nats_url() else { return };
    let subject = subject();
    let a = node(&url, &subject, 1024).await;
    // Each node joins and, at once, A publishes: a node's sockets catch up from the store
    // once it has joined, so an event another node publishes from then on must reach it.
    let mut joined = Vec::new();
    let mut published = Vec::new();
    for _ in 0..10 {
        joined.push(node(&url, &subject, 1024).await);
        let event = sample_events().remove(0);
        published.push(format!("{event:?}"));
        a.bus.publish(event);
    }
    for (i, b) in joined.iter().enumerate() {
        let expected = &published[i..];
        assert_eq!(
            b.local.wait_for(expected.len()).await,
            expected,
            "node {i} heard every event published after it joined"
        );
    }
}

#[tokio::test]
async fn a_node_delivers_its_own_event_once() {
    let Some(url) = nats_url() else { return };
    let subject = subject();
    let a = node(&url, &subject, 1024).await;
    let b = node(&url, &subject, 1024).await;
    let events = sample_events();
    for event in &events {
        a.bus.publish(event.clone());
    }
    // Once the other node has everything, anything echoed back to A would have arrived too.
    b.local.wait_for(events.len()).await;
    let marker = sample_events().remove(0);
    b.bus.publish(marker.clone());
    a.local.wait_for(events.len() + 1).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut expected = debug(&events);
    expected.push(format!("{marker:?}"));
    assert_eq!(a.local.seen(), expected);
}

#[tokio::test]
async fn a_node_that_drops_events_asks_the_others_to_resync() {
    let Some(url) = nats_url() else { return };
    let subject = subject();
    let a = node(&url, &subject, 1).await;
    let b = node(&url, &subject, 1024).await;
    // The publishing task cannot run between these calls: the one-slot queue overflows.
    let events = sample_events();
    for _ in 0..20 {
        for event in &events {
            a.bus.publish(event.clone());
        }
    }
    assert!(a.bus.dropped() > 0);
    assert_eq!(
        a.local.seen().len(),
        20 * events.len(),
        "local delivery is whole"
    );
    wait_until("the other node resyncs", || {
        b.resyncs.load(Ordering::SeqCst) == 1
    })
    .await;
    assert_eq!(
        a.resyncs.load(Ordering::SeqCst),
        0,
        "A's own sockets missed nothing"
    );
}

#[tokio::test]
async fn bytes_on_the_subject_that_are_not_an_event_are_ignored() {
    let Some(url) = nats_url() else { return };
    let subject = subject();
    let a = node(&url, &subject, 1024).await;
    let stranger = async_nats::connect(url.as_str()).await.expect("connects");
    stranger
        .publish(subject.clone(), "not an envelope".into())
        .await
        .unwrap();
    stranger.flush().await.unwrap();
    wait_until("the node has read it", || a.bus.undecodable() == 1).await;
    let b = node(&url, &subject, 1024).await;
    let event = sample_events().remove(0);
    b.bus.publish(event.clone());
    assert_eq!(a.local.wait_for(1).await, vec![format!("{event:?}")]);
}

#[tokio::test]
async fn a_node_that_falls_silent_makes_the_others_resync() {
    let Some(url) = nats_url() else { return };
    let subject = subject();
    let a = node(&url, &subject, 1024).await;
    // A node that says it is alive once and then dies (as a SIGKILLed one does), perhaps
    // with committed messages it never published.
    let doomed = async_nats::connect(url.as_str()).await.expect("connects");
    let beat = chat_nats::wire::Envelope::heartbeat(uuid::Uuid::new_v4()).encode();
    doomed.publish(subject.clone(), beat.into()).await.unwrap();
    doomed.flush().await.unwrap();
    drop(doomed);
    tokio::time::sleep(chat_nats::NODE_SILENT / 2).await;
    assert_eq!(
        a.resyncs.load(Ordering::SeqCst),
        0,
        "a node is not taken for dead before it has been silent for NODE_SILENT"
    );
    wait_until("the other node resyncs", || {
        a.resyncs.load(Ordering::SeqCst) == 1
    })
    .await;
    // A live peer keeps beating and is never taken for dead.
    let b = node(&url, &subject, 1024).await;
    tokio::time::sleep(chat_nats::NODE_SILENT * 2).await;
    assert_eq!(a.resyncs.load(Ordering::SeqCst), 1);
    assert_eq!(b.resyncs.load(Ordering::SeqCst), 0);
}

/// A private `nats-server` on a fixed port, which a test may kill and start again.
struct PrivateBroker {
    port: u16,
    child: Option<Child>,
}

impl PrivateBroker {
    fn start() -> Option<Self> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .ok()?
            .port();
        let mut broker = Self { port, child: None };
        broker.restart().ok()?;
        Some(broker)
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn restart(&mut self) -> std::io::Result<()> {
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        self.child = Some(child);
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        Err(std::io::Error::other("nats-server did not start listening"))
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test]
async fn after_the_broker_restarts_both_nodes_resync_and_events_flow_again() {
    if nats_url().is_none() {
        return;
    }
    let Some(mut broker) = PrivateBroker::start() else {
        skipped("chat-nats broker restart test: `nats-server` is not on PATH");
        return;
    };
    let subject = subject();
    let a = node(&broker.url(), &subject, 1024).await;
    let b = node(&broker.url(), &subject, 1024).await;

    broker.kill();
    wait_until("both nodes see the broker gone", || {
        !a.bus.is_connected() && !b.bus.is_connected()
    })
    .await;
    assert_eq!(a.resyncs.load(Ordering::SeqCst), 0);

    broker.restart().expect("the broker starts again");
    wait_until("both nodes resync", || {
        a.resyncs.load(Ordering::SeqCst) >= 1 && b.resyncs.load(Ordering::SeqCst) >= 1
    })
    .await;
    assert!(a.bus.is_connected() && b.bus.is_connected());

    let before = b.local.seen().len();
    let event = sample_events().remove(0);
    a.bus.publish(event.clone());
    let on_b = b.local.wait_for(before + 1).await;
    assert_eq!(on_b.last(), Some(&format!("{event:?}")));
}
