//! The cluster publisher: local delivery at once, the broker through a bounded queue, and the
//! tasks that keep this node whole when the broker drops events.
//!
//! **Where a resync starts.** Events from different nodes reach a node in the order they were
//! published, not in `seq` order: a client may have seen seq 11 from node B while seq 10 from
//! node A, committed just before, was lost with the bus. Syncing from its highest seq would
//! skip 10. So a resync names a `since_seq` when it can: the highest seq this node had seen
//! [`SEQ_LAG`] before the events were lost. The store makes seqs visible in order, and an
//! event reaches the bus well within the lag after its commit, so every message at or below
//! that seq had reached this node before the loss; clients sync from the smaller of it and
//! their own highest seq. A node that has not run for the lag yet names the highest seq
//! committed before it joined the bus ([`BusOptions::start_seq`]): its sockets all connected
//! later, and each caught up from its own position when it did.
//!
//! **A node that dies.** A node killed between committing a message and publishing it takes
//! the event with it: its own clients reconnect elsewhere and sync, but the other nodes'
//! clients would hear nothing. So every node publishes a heartbeat once a
//! [`HEARTBEAT_EVERY`], and a node that has heard nothing from another for [`NODE_SILENT`]
//! resyncs its sockets from the seq it had seen [`SEQ_LAG`] before it last heard from it.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::client::RequestErrorKind;
use async_nats::connection::State;
use async_nats::{Client, Event};
use chat_domain::events::DomainEvent;
use chat_domain::ports::EventPublisher;
use futures_util::StreamExt;
use tokio::sync::{Notify, mpsc};
use uuid::Uuid;

use crate::wire::{Body, Envelope};

/// What the node does when it may have missed events: tell its sockets to `sync` (from the
/// given seq, if any, or else from their own highest) and forget cached verifications.
/// Called from a bus task; it must not block.
pub type ResyncHook = Arc<dyn Fn(Option<i64>) + Send + Sync>;

/// How long after its commit an event is taken to have reached every node on the bus.
pub const SEQ_LAG: Duration = Duration::from_secs(5);
/// How often a node tells the others it is alive.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);
/// How long another node may stay silent before it is taken for dead.
pub const NODE_SILENT: Duration = Duration::from_secs(3);
/// How often the silence of the other nodes is checked.
const SILENCE_CHECK_EVERY: Duration = Duration::from_millis(500);

/// How often the highest seen seq is sampled, and how long samples are kept.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);
const SAMPLES_KEPT: usize = 60;
/// "No lower bound": the pending resync lets clients use their own highest seq.
const NO_BOUND: i64 = i64::MAX;

/// How a node joins the bus.
#[derive(Debug, Clone)]
pub struct BusOptions {
    /// `nats://host:port` (several servers of one NATS cluster: comma-separated).
    pub url: String,
    /// The one subject every event of the cluster goes to.
    pub subject: String,
    /// Events waiting for the broker before new ones are dropped (and a resync is owed).
    pub queue: usize,
    /// How long the first connection may take; the server does not start without its bus.
    pub connect_timeout: Duration,
    /// How often the client checks a quiet connection: a dead link (no TCP reset) is noticed
    /// after two missed pings.
    pub ping_interval: Duration,
    /// Resync requests closer together than this are run once.
    pub resync_coalesce: Duration,
    /// The highest seq committed before this node joins the bus (the store's latest). A
    /// resync never names a lower one: everything up to it was there for a socket to catch
    /// up on when it connected.
    pub start_seq: i64,
}

impl BusOptions {
    pub const DEFAULT_SUBJECT: &'static str = "chatd.events";

    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            subject: Self::DEFAULT_SUBJECT.into(),
            queue: 65_536,
            connect_timeout: Duration::from_secs(5),
            ping_interval: Duration::from_secs(5),
            resync_coalesce: Duration::from_millis(200),
            start_seq: 0,
        }
    }
}

/// Why a node could not join the bus.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("cannot connect to the NATS server at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("cannot subscribe to {subject}: {reason}")]
    Subscribe { subject: String, reason: String },
}

/// What the node's tasks share.
struct Shared {
    node: Uuid,
    /// Events dropped on the way out (queue full, client closed) since the start.
    dropped: AtomicU64,
    /// Events from the broker that could not be read, since the start.
    undecodable: AtomicU64,
    /// Other nodes may have missed events of ours: a `Resync` envelope is owed.
    owe_resync: AtomicBool,
    /// Wakes the resync task.
    resync: Notify,
    /// The lowest `since_seq` asked for since the last resync ran ([`NO_BOUND`]: none).
    resync_since: AtomicI64,
    /// Times the resync hook ran.
    resyncs: AtomicU64,
    /// The highest message seq this node has seen, its own and the other nodes'.
    highest_seq: AtomicI64,
    /// `highest_seq` once a [`SAMPLE_EVERY`], newest last.
    samples: Mutex<VecDeque<(Instant, i64)>>,
    /// When this node first dropped an event since its last resync request went out.
    first_drop: Mutex<Option<Instant>>,
    /// The other nodes on the bus, and when each was last heard from.
    peers: Mutex<HashMap<Uuid, Instant>>,
}

impl Shared {
    /// Notes the position of an event that has one: a new message's seq, or a change's
    /// (the change feed's positions, which a resync starts from).
    fn saw(&self, event: &DomainEvent) {
        let seq = match event {
            DomainEvent::MessageCreated { message, .. } => message.message.seq,
            DomainEvent::MessageUpdated { message, .. }
            | DomainEvent::MessageDeleted { message, .. } => {
                message.message.change_seq.unwrap_or(message.message.seq)
            }
            DomainEvent::MessageHidden { hidden, .. } => hidden.seq,
            DomainEvent::ReactionAdded { change, .. }
            | DomainEvent::ReactionRemoved { change, .. } => change.seq,
            DomainEvent::MessagePinned { change, .. }
            | DomainEvent::MessageUnpinned { change, .. } => change.seq,
            DomainEvent::ConversationUpdated { seq, .. } => *seq,
            DomainEvent::MessageRead { receipt, .. } => match receipt.marker.seq {
                Some(seq) => seq,
                None => return,
            },
            DomainEvent::ReadMarkerSet { set, .. } => match set.marker.seq {
                Some(seq) => seq,
                None => return,
            },
            DomainEvent::SettingsChanged { change, .. } => change.seq,
            DomainEvent::MessageDelivered { delivered, .. } => delivered.seq,
            _ => return,
        };
        self.highest_seq.fetch_max(seq.0, Ordering::Relaxed);
    }

    /// The highest seq seen [`SEQ_LAG`] before `lost_at`: every message up to it had reached
    /// this node before then. A node that has not run that long has only its first sample,
    /// the seq committed before it joined. `None` only before that sample is taken.
    fn watermark(&self, lost_at: Instant) -> Option<i64> {
        let samples = self
            .samples
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let oldest = samples.front().map(|(_, seq)| *seq);
        let Some(cutoff) = lost_at.checked_sub(SEQ_LAG) else {
            return oldest;
        };
        samples
            .iter()
            .rev()
            .find(|(at, _)| *at <= cutoff)
            .map(|(_, seq)| *seq)
            .or(oldest)
    }

    /// Asks for a resync of this node's sockets; requests close together run once, from the
    /// lowest seq any of them named.
    fn request_resync(&self, since_seq: Option<i64>) {
        self.resync_since
            .fetch_min(since_seq.unwrap_or(NO_BOUND), Ordering::AcqRel);
        self.resync.notify_one();
    }

    /// Notes that `node` is alive.
    fn heard_from(&self, node: Uuid) {
        self.peers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(node, Instant::now());
    }

    /// Forgets the nodes silent for longer than [`NODE_SILENT`] as of `now`, and returns when
    /// the earliest of them was last heard from.
    fn departed(&self, now: Instant) -> Option<Instant> {
        let mut peers = self
            .peers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut earliest: Option<Instant> = None;
        peers.retain(|node, heard| {
            let silent = now.saturating_duration_since(*heard) > NODE_SILENT;
            if silent {
                tracing::warn!(%node, "a node fell silent on the event bus; resyncing");
                earliest = Some(earliest.map_or(*heard, |e| e.min(*heard)));
            }
            !silent
        });
        earliest
    }

    fn dropped_one(&self) {
        metrics::counter!("chatd_bus_publish_failures_total").increment(1);
        self.dropped.fetch_add(1, Ordering::Relaxed);
        self.first_drop
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get_or_insert_with(Instant::now);
    }
}

/// This node's [`EventPublisher`] in a cluster. See the crate documentation.
pub struct ClusterPublisher {
    local: Arc<dyn EventPublisher>,
    outbound: mpsc::Sender<Vec<u8>>,
    client: Client,
    shared: Arc<Shared>,
}

impl ClusterPublisher {
    /// Connects to the broker, subscribes, and starts the publishing, subscribing and resync
    /// tasks on the current Tokio runtime. `local` gets every event, this node's and the
    /// others'; `on_resync` runs whenever this node may have missed some.
    pub async fn start(
        options: BusOptions,
        local: Arc<dyn EventPublisher>,
        on_resync: ResyncHook,
    ) -> Result<Arc<Self>, BusError> {
        let node = Uuid::new_v4();
        let shared = Arc::new(Shared {
            node,
            dropped: AtomicU64::new(0),
            undecodable: AtomicU64::new(0),
            owe_resync: AtomicBool::new(false),
            resync: Notify::new(),
            resync_since: AtomicI64::new(NO_BOUND),
            resyncs: AtomicU64::new(0),
            highest_seq: AtomicI64::new(options.start_seq),
            samples: Mutex::new(VecDeque::from([(Instant::now(), options.start_seq)])),
            first_drop: Mutex::default(),
            peers: Mutex::default(),
        });
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let client = async_nats::ConnectOptions::new()
            .name(format!("chatd-{node}"))
            // This node delivered its own events already; the broker need not send them back.
            .no_echo()
            .max_reconnects(None)
            .reconnect_delay_callback(|attempts| {
                Duration::from_millis((attempts as u64).saturating_mul(100).min(2_000))
            })
            .connection_timeout(options.connect_timeout)
            .ping_interval(options.ping_interval)
            .event_callback(move |event| {
                let events = events_tx.clone();
                async move {
                    let _ = events.send(event);
                }
            })
            .connect(options.url.as_str())
            .await
            .map_err(|e| BusError::Connect {
                url: options.url.clone(),
                reason: e.to_string(),
            })?;
        let subscription = client
            .subscribe(options.subject.clone())
            .await
            .map_err(|e| BusError::Subscribe {
                subject: options.subject.clone(),
                reason: e.to_string(),
            })?;
        // Once the broker has the subscription, every event another node publishes from now
        // on reaches this one (and the node's sockets catch up on what came before).
        round_trip(&client)
            .await
            .map_err(|reason| BusError::Subscribe {
                subject: options.subject.clone(),
                reason,
            })?;
        let (outbound, outbound_rx) = mpsc::channel(options.queue.max(1));

        tokio::spawn(publish_loop(
            client.clone(),
            options.subject.clone(),
            outbound_rx,
            shared.clone(),
        ));
        tokio::spawn(subscribe_loop(subscription, local.clone(), shared.clone()));
        tokio::spawn(connection_watch(
            client.clone(),
            events_rx,
            outbound.clone(),
            shared.clone(),
        ));
        tokio::spawn(resync_loop(
            on_resync,
            options.resync_coalesce,
            shared.clone(),
        ));
        tokio::spawn(sample_loop(shared.clone()));
        tokio::spawn(heartbeat_loop(outbound.clone(), shared.clone()));
        tokio::spawn(silence_watch(shared.clone()));
        tracing::info!(%node, url = %options.url, subject = %options.subject, "joined the event bus");
        Ok(Arc::new(Self {
            local,
            outbound,
            client,
            shared,
        }))
    }

    /// This node's id on the bus, fresh each start.
    pub fn node(&self) -> Uuid {
        self.shared.node
    }

    /// Whether the node is connected to the broker now.
    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == State::Connected
    }

    /// Events this node could not hand to the broker since it started.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Messages from the bus this node could not read (not an envelope, or an event that
    /// breaks the domain's rules) since it started; each was logged and ignored.
    pub fn undecodable(&self) -> u64 {
        self.shared.undecodable.load(Ordering::Relaxed)
    }

    /// Times this node told its sockets to resync since it started.
    pub fn resyncs(&self) -> u64 {
        self.shared.resyncs.load(Ordering::Relaxed)
    }
}

impl EventPublisher for ClusterPublisher {
    /// Delivers to this node's sockets and caches, then queues the event for the broker
    /// without waiting: when the queue is full the event is dropped for the other nodes, and
    /// they are told to resync once the queue has room again.
    fn publish(&self, event: DomainEvent) {
        let bytes = Envelope::event(self.shared.node, &event).encode();
        self.shared.saw(&event);
        self.local.publish(event);
        if self.outbound.try_send(bytes).is_err() {
            self.shared.dropped_one();
            if !self.shared.owe_resync.swap(true, Ordering::AcqRel) {
                tracing::warn!(
                    dropped = self.dropped(),
                    "the event bus queue is full: events are dropped for the other nodes, \
                     which will be told to resync"
                );
            }
        }
    }
}

/// A round trip to the broker on `client`'s connection: once it is back, the broker has
/// processed everything the client sent before it, its subscriptions included.
///
/// `Client::flush` is no such thing: it returns once the bytes are in the socket, and the
/// broker may still read a `SUB` after it has routed another connection's `PUB` (a node that
/// had just joined missed events published right after). The client offers no `PING`, so this
/// is a request to a fresh inbox nobody listens on: the broker handles one connection's
/// messages in order and answers it at once with "no responders".
async fn round_trip(client: &Client) -> Result<(), String> {
    match client.request(client.new_inbox(), "".into()).await {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == RequestErrorKind::NoResponders => Ok(()),
        Err(error) => Err(error.to_string()),
    }
}

/// Sends queued events to the broker in order; after a loss, once there is room again, tells
/// every other node to resync.
async fn publish_loop(
    client: Client,
    subject: String,
    mut queue: mpsc::Receiver<Vec<u8>>,
    shared: Arc<Shared>,
) {
    while let Some(bytes) = queue.recv().await {
        match client.publish(subject.clone(), bytes.into()).await {
            Ok(()) => metrics::counter!("chatd_bus_published_total").increment(1),
            Err(error) => {
                shared.dropped_one();
                shared.owe_resync.store(true, Ordering::Release);
                tracing::warn!(%error, "an event could not be published");
            }
        }
        if shared.owe_resync.swap(false, Ordering::AcqRel) {
            let first_drop = shared
                .first_drop
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            let since_seq = first_drop.and_then(|at| shared.watermark(at));
            let resync = Envelope::resync(shared.node, since_seq).encode();
            if let Err(error) = client.publish(subject.clone(), resync.into()).await {
                shared.owe_resync.store(true, Ordering::Release);
                tracing::warn!(%error, "a resync request could not be published");
            } else {
                tracing::info!("asked the other nodes to resync");
            }
        }
    }
}

/// Hands events from other nodes to the local publishers.
async fn subscribe_loop(
    mut subscription: async_nats::Subscriber,
    local: Arc<dyn EventPublisher>,
    shared: Arc<Shared>,
) {
    while let Some(message) = subscription.next().await {
        let envelope = match Envelope::decode(&message.payload) {
            Ok(envelope) => envelope,
            Err(error) => {
                shared.undecodable.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%error, "a bus message is not an envelope; ignored");
                continue;
            }
        };
        if envelope.node == shared.node {
            continue;
        }
        shared.heard_from(envelope.node);
        match envelope.body {
            Body::Event(wire) => match DomainEvent::try_from(wire) {
                Ok(event) => {
                    metrics::counter!("chatd_bus_received_total").increment(1);
                    shared.saw(&event);
                    local.publish(event);
                }
                Err(error) => {
                    shared.undecodable.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%error, from = %envelope.node, "an event from the bus is invalid; ignored");
                }
            },
            Body::Resync { since_seq } => {
                tracing::info!(from = %envelope.node, ?since_seq, "another node asked for a resync");
                shared.request_resync(since_seq);
            }
            Body::Heartbeat => {}
        }
    }
    tracing::warn!("the event bus subscription ended");
}

/// Follows the connection: once it is back after a loss, this node's sockets resync (it may
/// have missed events) and so do the other nodes' (they may have missed this node's).
async fn connection_watch(
    client: Client,
    mut events: mpsc::UnboundedReceiver<Event>,
    outbound: mpsc::Sender<Vec<u8>>,
    shared: Arc<Shared>,
) {
    let mut lost_at = None;
    while let Some(event) = events.recv().await {
        match event {
            Event::Disconnected => {
                lost_at.get_or_insert_with(Instant::now);
                tracing::warn!("lost the event bus; reconnecting");
            }
            Event::Connected if lost_at.is_some() => {
                let since_seq = lost_at.take().and_then(|at| shared.watermark(at));
                // The client subscribes again right after it reports the connection: a round
                // trip orders this after the broker has those subscriptions, so events
                // published after the resync reach this node.
                if let Err(error) = round_trip(&client).await {
                    tracing::warn!(%error, "no round trip to the broker after reconnecting");
                }
                tracing::info!(?since_seq, "back on the event bus; resyncing");
                shared.request_resync(since_seq);
                let resync = Envelope::resync(shared.node, since_seq).encode();
                if outbound.try_send(resync).is_err() {
                    shared.dropped_one();
                    shared.owe_resync.store(true, Ordering::Release);
                }
            }
            Event::SlowConsumer(_) => {
                tracing::warn!("this node fell behind the event bus and lost events; resyncing");
                shared.request_resync(shared.watermark(Instant::now()));
            }
            other => tracing::info!(event = %other, "event bus"),
        }
    }
}

/// Runs the hook once per burst of requests: a broker restart asks each node to resync once
/// for itself and once for every other node that came back.
async fn resync_loop(hook: ResyncHook, coalesce: Duration, shared: Arc<Shared>) {
    loop {
        shared.resync.notified().await;
        tokio::time::sleep(coalesce).await;
        // Requests made during the pause are covered by this run.
        let _ = tokio::time::timeout(Duration::ZERO, shared.resync.notified()).await;
        let since = shared.resync_since.swap(NO_BOUND, Ordering::AcqRel);
        shared.resyncs.fetch_add(1, Ordering::Relaxed);
        hook((since != NO_BOUND).then_some(since));
    }
}

/// Tells the other nodes this one is alive, through the same queue as its events: a node
/// whose events cannot get out is not taken for alive either.
async fn heartbeat_loop(outbound: mpsc::Sender<Vec<u8>>, shared: Arc<Shared>) {
    let beat = Envelope::heartbeat(shared.node).encode();
    let mut tick = tokio::time::interval(HEARTBEAT_EVERY);
    loop {
        tick.tick().await;
        // A full queue already owes the others a resync; the beat can wait for the next tick.
        let _ = outbound.try_send(beat.clone());
    }
}

/// Resyncs this node's sockets when another node falls silent: it may have died with
/// committed messages it never published.
async fn silence_watch(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(SILENCE_CHECK_EVERY);
    loop {
        tick.tick().await;
        if let Some(last_heard) = shared.departed(Instant::now()) {
            shared.request_resync(shared.watermark(last_heard));
        }
    }
}

/// Samples the highest seen seq, for [`Shared::watermark`].
async fn sample_loop(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    loop {
        tick.tick().await;
        let seq = shared.highest_seq.load(Ordering::Relaxed);
        let mut samples = shared
            .samples
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if samples.len() >= SAMPLES_KEPT {
            samples.pop_front();
        }
        samples.push_back((Instant::now(), seq));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> Shared {
        Shared {
            node: Uuid::new_v4(),
            dropped: AtomicU64::new(0),
            undecodable: AtomicU64::new(0),
            owe_resync: AtomicBool::new(false),
            resync: Notify::new(),
            resync_since: AtomicI64::new(NO_BOUND),
            resyncs: AtomicU64::new(0),
            highest_seq: AtomicI64::new(0),
            samples: Mutex::default(),
            first_drop: Mutex::default(),
            peers: Mutex::default(),
        }
    }

    #[test]
    fn a_conversation_change_moves_the_highest_seq_seen_like_a_message() {
        let shared = shared();
        let at = chrono::Utc::now();
        let conversation = chat_domain::conversation::Conversation {
            id: chat_domain::ConversationId::new(),
            kind: chat_domain::conversation::ConversationKind::Direct,
            name: None,
            created_by: chat_domain::UserId::new(),
            created_at: at,
            updated_at: at,
        };
        shared.saw(&DomainEvent::ConversationUpdated {
            conversation,
            seq: chat_domain::message::Seq(12),
            change: chat_domain::conversation::ConversationChange::Created,
            actor: chat_domain::UserId::new(),
            audience: Vec::new(),
            at,
        });
        assert_eq!(shared.highest_seq.load(Ordering::Relaxed), 12);
    }

    #[test]
    fn a_resync_starts_from_the_highest_seq_seen_a_lag_before_the_loss() {
        let shared = shared();
        let now = Instant::now();
        let at = |ago: u64| now.checked_sub(Duration::from_secs(ago)).unwrap();
        shared
            .samples
            .lock()
            .unwrap()
            .extend([(at(9), 10), (at(7), 20), (at(5), 30), (at(1), 40)]);
        assert_eq!(shared.watermark(now), Some(30));
        assert_eq!(shared.watermark(at(2)), Some(20));
        assert_eq!(
            shared.watermark(at(5)),
            Some(10),
            "no sample is old enough: the oldest, taken when the node joined"
        );
    }

    #[test]
    fn a_node_younger_than_the_lag_resyncs_from_the_seq_committed_before_it_joined() {
        let young = shared();
        young
            .samples
            .lock()
            .unwrap()
            .push_back((Instant::now(), 77));
        assert_eq!(young.watermark(Instant::now()), Some(77));
        assert_eq!(shared().watermark(Instant::now()), None, "no sample at all");
    }

    #[test]
    fn a_node_silent_too_long_is_departed_once_from_when_it_was_last_heard() {
        let shared = shared();
        let (gone, alive) = (Uuid::new_v4(), Uuid::new_v4());
        let now = Instant::now();
        shared.peers.lock().unwrap().extend([
            (gone, now.checked_sub(NODE_SILENT * 2).unwrap()),
            (alive, now),
        ]);
        assert_eq!(
            shared.departed(now),
            Some(now.checked_sub(NODE_SILENT * 2).unwrap())
        );
        assert_eq!(shared.departed(now), None, "a departed node is forgotten");
        assert!(shared.peers.lock().unwrap().contains_key(&alive));
    }

    #[test]
    fn requests_close_together_resync_from_the_lowest_seq_named() {
        let shared = shared();
        shared.request_resync(Some(30));
        shared.request_resync(Some(12));
        shared.request_resync(None);
        assert_eq!(shared.resync_since.load(Ordering::Acquire), 12);
    }

    #[test]
    fn every_event_with_a_position_in_the_feed_raises_the_highest_seq_seen() {
        for event in crate::wire::sample_events() {
            let shared = shared();
            shared.saw(&event);
            let positioned = !matches!(
                event,
                DomainEvent::Typing { .. }
                    | DomainEvent::AccessRevoked { .. }
                    | DomainEvent::PresenceChanged { .. }
            );
            assert_eq!(
                shared.highest_seq.load(Ordering::Relaxed) > 0,
                positioned,
                "{event:?}"
            );
        }
    }
}
