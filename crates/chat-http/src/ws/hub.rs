//! The connection registry and the publisher that fans domain events out to it.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use bytestring::ByteString;
use chat_domain::events::DomainEvent;
use chat_domain::ports::{EventPublisher, PresenceDirectory, StoreResult};
use chat_domain::presence::PresenceStatus;
use chat_domain::{SessionId, UserId};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{Notify, mpsc, watch};

use super::WsConfig;
use super::delivery::DeliveryTracker;
use super::protocol::ServerFrame;

const SHARDS: usize = 32;

#[derive(Clone)]
struct Connection {
    id: u64,
    /// The id of the token the connection authenticated with.
    token_id: String,
    /// The login session that token was issued in, if any: ending it closes the connection.
    session_id: Option<SessionId>,
    /// Woken when that token (or every token of the user) is revoked.
    revoked: Arc<Notify>,
    outbound: mpsc::Sender<ByteString>,
    /// Woken when the connection's queue overflowed: its session closes it (1013).
    overflowed: Arc<Notify>,
    /// Its client said it is away (a `presence` frame).
    away: bool,
}

/// A user's status from their connections on this node.
fn local_status(connections: &[Connection]) -> PresenceStatus {
    let away = connections.iter().filter(|c| c.away).count();
    PresenceStatus::of_sockets(connections.len(), away)
}

/// Told when a user's status on this node changes (a first socket, a last one closing, all
/// of them away), with the status before and after. Called outside the hub's locks, on
/// whichever thread made the change; it must not block.
pub trait PresenceListener: Send + Sync {
    fn changed(&self, user: UserId, before: PresenceStatus, after: PresenceStatus);
}

type Shard = RwLock<HashMap<UserId, Vec<Connection>>>;

/// Every open, authenticated connection on this node, by user. Sharded so that fan-out to
/// different users does not contend on one lock; no lock is ever held across an await.
pub struct Hub {
    shards: Box<[Shard]>,
    hasher: RandomState,
    next_id: AtomicU64,
    count: AtomicUsize,
    /// Every open socket, pending or authenticated: a graceful stop waits for them all.
    sockets: AtomicUsize,
    /// Sockets that authenticated, held against `max_connections`.
    authenticated: AtomicUsize,
    /// Sockets that have not authenticated yet, in total and by client address. They have
    /// their own budget, so that handshakes that never send a token cannot lock real users
    /// out of the node.
    pending: Mutex<Pending>,
    /// Woken when the last socket closes.
    drained: Notify,
    shutdown: watch::Sender<bool>,
    config: WsConfig,
    /// New messages handed to members' sockets, until the next delivery flush.
    deliveries: DeliveryTracker,
    /// Told of presence changes, once set.
    presence: OnceLock<Arc<dyn PresenceListener>>,
}

/// A connection's place in the hub; dropping it leaves the hub.
pub struct Registration {
    hub: Arc<Hub>,
    user: UserId,
    id: u64,
    pub outbound: mpsc::Receiver<ByteString>,
    pub overflowed: Arc<Notify>,
    pub revoked: Arc<Notify>,
    pub shutdown: watch::Receiver<bool>,
}

impl Hub {
    pub fn new(config: WsConfig) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
            hasher: RandomState::new(),
            next_id: AtomicU64::new(1),
            count: AtomicUsize::new(0),
            sockets: AtomicUsize::new(0),
            authenticated: AtomicUsize::new(0),
            pending: Mutex::default(),
            drained: Notify::new(),
            shutdown: watch::Sender::new(false),
            config,
            deliveries: DeliveryTracker::default(),
            presence: OnceLock::new(),
        }
    }

    /// Sets who is told of presence changes on this node; only the first call counts.
    pub fn set_presence_listener(&self, listener: Arc<dyn PresenceListener>) {
        let _ = self.presence.set(listener);
    }

    fn presence_changed(&self, user: UserId, before: PresenceStatus, after: PresenceStatus) {
        if before != after
            && let Some(listener) = self.presence.get()
        {
            listener.changed(user, before, after);
        }
    }

    /// Marks one of the user's connections away (or not), as its client said.
    pub fn set_away(&self, user: UserId, id: u64, away: bool) {
        let (before, after) = {
            let mut shard = self
                .shard(user)
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let Some(connections) = shard.get_mut(&user) else {
                return;
            };
            let before = local_status(connections);
            for connection in connections.iter_mut().filter(|c| c.id == id) {
                connection.away = away;
            }
            (before, local_status(connections))
        };
        self.presence_changed(user, before, after);
    }

    pub fn config(&self) -> &WsConfig {
        &self.config
    }

    /// What reached members on this node since the last delivery flush.
    pub fn deliveries(&self) -> &DeliveryTracker {
        &self.deliveries
    }

    /// Open, authenticated connections on this node.
    pub fn connection_count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Open sockets that have not authenticated yet.
    pub fn pending_count(&self) -> usize {
        self.lock_pending().total
    }

    /// Claims a slot for a new socket. One whose handshake carries a token is settled at
    /// once (accepted or refused in the time it takes to check the token), so it takes an
    /// authenticated slot straight away, released if the token fails. One that will send its
    /// token in a frame takes a slot of `peer`'s share of the pending budget until it does.
    /// Refused while shutting down, when every authenticated slot is taken (the socket could
    /// not be served once it authenticated), or when the pending budget, the node's or the
    /// address's, is spent.
    pub fn open_socket(
        self: &Arc<Self>,
        peer: Option<IpAddr>,
        has_token: bool,
    ) -> Result<Socket, OpenRefused> {
        if *self.shutdown.borrow() {
            return Err(OpenRefused::Full);
        }
        if has_token {
            if !self.claim_authenticated() {
                return Err(OpenRefused::Full);
            }
            self.sockets.fetch_add(1, Ordering::AcqRel);
            return Ok(Socket {
                hub: self.clone(),
                state: SlotState::Authenticated,
            });
        }
        if self.authenticated.load(Ordering::Acquire) >= self.config.max_connections {
            return Err(OpenRefused::Full);
        }
        {
            let mut pending = self.lock_pending();
            if pending.total >= self.config.max_pending_connections {
                return Err(OpenRefused::TooManyPending);
            }
            if let Some(ip) = peer {
                let mine = pending.by_address.entry(ip).or_default();
                if *mine >= self.config.max_pending_per_address {
                    return Err(OpenRefused::TooManyPendingFromAddress);
                }
                *mine += 1;
            }
            pending.total += 1;
        }
        self.sockets.fetch_add(1, Ordering::AcqRel);
        Ok(Socket {
            hub: self.clone(),
            state: SlotState::Pending(peer),
        })
    }

    fn claim_authenticated(&self) -> bool {
        let max = self.config.max_connections;
        self.authenticated
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok()
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn release_pending(&self, peer: Option<IpAddr>) {
        let mut pending = self.lock_pending();
        pending.total -= 1;
        if let Some(ip) = peer
            && let Some(count) = pending.by_address.get_mut(&ip)
        {
            *count -= 1;
            if *count == 0 {
                pending.by_address.remove(&ip);
            }
        }
    }

    /// Adds a connection for `user`, authenticated with the token `token_id`; events for the
    /// user are queued from this moment. The per-user cap is not the hub's: the session
    /// claims a slot from its [`UserConnectionCap`](super::UserConnectionCap) first.
    pub fn register(self: &Arc<Self>, user: UserId, token_id: &str) -> Registration {
        self.register_in_session(user, token_id, None)
    }

    /// [`Self::register`] for a token issued in login session `session_id`: ending that
    /// session closes the connection too.
    pub fn register_in_session(
        self: &Arc<Self>,
        user: UserId,
        token_id: &str,
        session_id: Option<SessionId>,
    ) -> Registration {
        let (tx, rx) = mpsc::channel(self.config.outbound_queue.max(1));
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let overflowed = Arc::new(Notify::new());
        let revoked = Arc::new(Notify::new());
        let connection = Connection {
            id,
            token_id: token_id.to_owned(),
            session_id,
            revoked: revoked.clone(),
            outbound: tx,
            overflowed: overflowed.clone(),
            away: false,
        };
        let (before, after) = {
            let mut shard = self
                .shard(user)
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let connections = shard.entry(user).or_default();
            let before = local_status(connections);
            connections.push(connection);
            (before, local_status(connections))
        };
        self.count.fetch_add(1, Ordering::Relaxed);
        self.presence_changed(user, before, after);
        let mut shutdown = self.shutdown.subscribe();
        // A connection registered after the shutdown began still sees it.
        if *shutdown.borrow() {
            shutdown.mark_changed();
        }
        Registration {
            hub: self.clone(),
            user,
            id,
            outbound: rx,
            overflowed,
            revoked,
            shutdown,
        }
    }

    /// Asks every session to close with 1001 (going away).
    pub fn shut_down(&self) {
        self.shutdown.send_replace(true);
    }

    /// Resolves once [`Hub::shut_down`] has been called, at once if it already was.
    pub fn shutting_down(&self) -> impl Future<Output = ()> + use<> {
        let mut shutdown = self.shutdown.subscribe();
        async move {
            let _ = shutdown.wait_for(|down| *down).await;
        }
    }

    /// Resolves once every socket has closed. Upgraded connections live outside the HTTP
    /// server's own connection tracking, so a graceful stop waits here for their close
    /// frames to go out before it stops the workers they run on.
    pub async fn drained(&self) {
        loop {
            let notified = self.drained.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if self.sockets.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }

    /// Queues one serialized frame for every connection of every user in `audience`. Never
    /// waits: a connection whose queue is full is told to close instead.
    pub fn deliver(&self, audience: &[UserId], frame: &ByteString) {
        self.deliver_noting(audience, frame, |_| {});
    }

    /// [`Self::deliver`], calling `reached` for each user with a connection that took the
    /// frame into its queue.
    fn deliver_noting(
        &self,
        audience: &[UserId],
        frame: &ByteString,
        mut reached: impl FnMut(UserId),
    ) {
        let mut queued = 0_u64;
        for user in audience {
            let shard = self
                .shard(*user)
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let Some(connections) = shard.get(user) else {
                continue;
            };
            let mut taken = false;
            for connection in connections {
                match connection.outbound.try_send(frame.clone()) {
                    Ok(()) => {
                        taken = true;
                        queued += 1;
                    }
                    Err(TrySendError::Closed(_)) => {}
                    Err(TrySendError::Full(_)) => connection.overflowed.notify_one(),
                }
            }
            if taken {
                reached(*user);
            }
        }
        if queued > 0 {
            metrics::counter!("chatd_deliveries_total").increment(queued);
        }
    }

    /// Tells every open connection on this node to `sync`, from `since_seq` if that is lower
    /// than the client's highest seq: events may have been missed (the node was off its event
    /// bus). Never waits: a connection whose queue is full is told to close, and its client
    /// syncs when it reconnects.
    pub fn resync_all(&self, since_seq: Option<i64>) {
        let frame = ServerFrame::Resync { since_seq }.to_text();
        for shard in &self.shards {
            let shard = shard
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for connection in shard.values().flatten() {
                match connection.outbound.try_send(frame.clone()) {
                    Ok(()) | Err(TrySendError::Closed(_)) => {}
                    Err(TrySendError::Full(_)) => connection.overflowed.notify_one(),
                }
            }
        }
    }

    /// Tells the user's connections that used `token_id` or a token of session `session_id`
    /// (or all of them, when both are `None`) that their access is gone.
    fn revoke(&self, user: UserId, token_id: Option<&str>, session_id: Option<SessionId>) {
        let shard = self
            .shard(user)
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for connection in shard.get(&user).into_iter().flatten() {
            let revoked = (user, token_id, session_id);
            if DomainEvent::revokes(revoked, user, &connection.token_id, connection.session_id) {
                connection.revoked.notify_one();
            }
        }
    }

    fn shard(&self, user: UserId) -> &Shard {
        let index = self.hasher.hash_one(user) as usize % self.shards.len();
        &self.shards[index]
    }

    fn unregister(&self, user: UserId, id: u64) {
        let (before, after) = {
            let mut shard = self
                .shard(user)
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let Some(connections) = shard.get_mut(&user) else {
                return;
            };
            let (count, before) = (connections.len(), local_status(connections));
            connections.retain(|c| c.id != id);
            if connections.len() < count {
                self.count.fetch_sub(1, Ordering::Relaxed);
            }
            let after = local_status(connections);
            if connections.is_empty() {
                shard.remove(&user);
            }
            (before, after)
        };
        self.presence_changed(user, before, after);
    }
}

/// Sockets that have not authenticated yet.
#[derive(Default)]
struct Pending {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

/// Why a handshake gets no socket slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenRefused {
    /// Every authenticated slot is taken, or the node is shutting down.
    Full,
    /// The node's budget of not-yet-authenticated sockets is spent.
    TooManyPending,
    /// This client address holds its share of not-yet-authenticated sockets.
    TooManyPendingFromAddress,
}

enum SlotState {
    Pending(Option<IpAddr>),
    Authenticated,
}

/// A claimed socket slot, pending until [`Socket::authenticated`], released on drop.
pub struct Socket {
    hub: Arc<Hub>,
    state: SlotState,
}

impl Socket {
    /// Moves the socket from the pending budget to an authenticated slot. `false` when the
    /// node has no authenticated slot left (another socket took the last one since the
    /// handshake); the socket stays pending and should be closed.
    pub fn authenticated(&mut self) -> bool {
        let SlotState::Pending(peer) = self.state else {
            return true;
        };
        let claimed = self.hub.claim_authenticated();
        if claimed {
            self.hub.release_pending(peer);
            self.state = SlotState::Authenticated;
        }
        claimed
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        match self.state {
            SlotState::Pending(peer) => self.hub.release_pending(peer),
            SlotState::Authenticated => {
                self.hub.authenticated.fetch_sub(1, Ordering::AcqRel);
            }
        }
        if self.hub.sockets.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.hub.drained.notify_waiters();
        }
    }
}

impl Registration {
    /// This connection's id, unique on this node.
    pub fn id(&self) -> u64 {
        self.id
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.hub.unregister(self.user, self.id);
    }
}

/// This node's sockets: the presence directory of a node alone, and this node's part of a
/// cluster's.
impl PresenceDirectory for Hub {
    fn online_among(&self, users: &[UserId]) -> StoreResult<Vec<UserId>> {
        Ok(self
            .status_among(users)?
            .into_iter()
            .map(|(user, _)| user)
            .collect())
    }

    fn status_among(&self, users: &[UserId]) -> StoreResult<Vec<(UserId, PresenceStatus)>> {
        Ok(users
            .iter()
            .filter_map(|user| {
                let shard = self
                    .shard(*user)
                    .read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                shard.get(user).map(|c| (*user, local_status(c)))
            })
            .collect())
    }
}

impl EventPublisher for Hub {
    /// Serializes the event once and shares the bytes between all its recipients.
    fn publish(&self, event: DomainEvent) {
        if let DomainEvent::AccessRevoked {
            user_id,
            token_id,
            session_id,
            ..
        } = &event
        {
            self.revoke(*user_id, token_id.as_deref(), *session_id);
            return;
        }
        if event.audience().is_empty() {
            return;
        }
        let Some(frame) = ServerFrame::for_event(&event) else {
            return;
        };
        if let DomainEvent::MessageCreated {
            message, audience, ..
        } = &event
        {
            // A new message in a member's socket queue is delivered to them; the sender's
            // own devices need no receipt (sending is reading).
            let message = &message.message;
            let mut reached = Vec::new();
            self.deliver_noting(audience, &frame.to_text(), |user| {
                if user != message.sender_id {
                    reached.push(user);
                }
            });
            self.deliveries
                .note(message.conversation_id, message.seq, &reached);
        } else {
            self.deliver(event.audience(), &frame.to_text());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub(queue: usize) -> Arc<Hub> {
        Arc::new(Hub::new(WsConfig {
            outbound_queue: queue,
            ..WsConfig::default()
        }))
    }

    #[tokio::test]
    async fn every_connection_of_every_audience_member_gets_the_frame() {
        let hub = hub(8);
        let (alice, bob, eve) = (UserId::new(), UserId::new(), UserId::new());
        let mut a1 = hub.register(alice, "t");
        let mut a2 = hub.register(alice, "t");
        let mut b = hub.register(bob, "t");
        let mut e = hub.register(eve, "t");
        hub.deliver(&[alice, bob], &ByteString::from_static("hi"));
        for r in [&mut a1, &mut a2, &mut b] {
            assert_eq!(r.outbound.recv().await.unwrap(), "hi");
        }
        assert!(e.outbound.try_recv().is_err());
        assert_eq!(hub.connection_count(), 4);
    }

    #[tokio::test]
    async fn a_new_message_queued_to_a_members_socket_is_noted_delivered_to_them_only() {
        use chat_domain::ConversationId;
        use chat_domain::message::{Message, MessageContent, MessageView, Seq};
        use chat_domain::{MessageId, read_state::Delivery};

        let hub = hub(8);
        let (alice, bob, carol) = (UserId::new(), UserId::new(), UserId::new());
        let _alices = hub.register(alice, "t");
        let mut bobs = hub.register(bob, "t");
        let conversation = ConversationId::new();
        let now = chrono::Utc::now();
        let message = Message {
            id: MessageId::new(),
            seq: Seq(7),
            conversation_id: conversation,
            sender_id: alice,
            content: Some(MessageContent::parse("hi").unwrap()),
            client_message_id: None,
            created_at: now,
            updated_at: now,
            edited_at: None,
            deletion: None,
            change_seq: None,
            reactions: Vec::new(),
            pin: None,
            reply_to: None,
            thread_root_id: None,
            thread: None,
            mentions: Vec::new(),
            attachments: Vec::new(),
        };
        hub.publish(DomainEvent::MessageCreated {
            message: MessageView {
                message,
                recipient_id: None,
                is_read: false,
                viewer: alice,
            },
            // Carol has no socket on this node: nothing reached her here.
            audience: vec![alice, bob, carol],
            at: now,
        });
        assert!(bobs.outbound.try_recv().is_ok());
        assert_eq!(
            hub.deliveries().take(),
            [Delivery {
                conversation_id: conversation,
                user_id: bob,
                seq: Seq(7),
            }],
            "not the sender, and not carol"
        );
    }

    #[tokio::test]
    async fn resync_reaches_every_open_connection_once() {
        let hub = hub(1);
        let alice = UserId::new();
        let mut connections: Vec<_> = (0..3)
            .map(|_| hub.register(alice, "t"))
            .chain((0..40).map(|_| hub.register(UserId::new(), "t")))
            .collect();
        hub.resync_all(Some(7));
        for registration in &mut connections {
            assert_eq!(
                registration.outbound.try_recv().unwrap(),
                r#"{"type":"resync","since_seq":7}"#
            );
            assert!(registration.outbound.try_recv().is_err(), "sent once");
        }
        // A connection whose queue is full is closed rather than left behind.
        hub.resync_all(None);
        let flagged = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            connections[0].overflowed.notified(),
        );
        assert!(
            flagged.await.is_err(),
            "the queue had room for the second resync"
        );
        hub.resync_all(None);
        let flagged = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            connections[0].overflowed.notified(),
        );
        assert!(flagged.await.is_ok(), "a full queue is flagged");
    }

    #[tokio::test]
    async fn a_full_queue_flags_the_connection_instead_of_waiting() {
        let hub = hub(1);
        let alice = UserId::new();
        let registration = hub.register(alice, "t");
        let frame = ByteString::from_static("x");
        let flagged = || {
            tokio::time::timeout(
                std::time::Duration::from_millis(50),
                registration.overflowed.notified(),
            )
        };
        hub.deliver(&[alice], &frame);
        assert!(flagged().await.is_err(), "a queue with room is not flagged");
        hub.deliver(&[alice], &frame);
        assert!(flagged().await.is_ok(), "a full queue is flagged at once");
    }

    #[derive(Default)]
    struct Changes(Mutex<Vec<(UserId, PresenceStatus, PresenceStatus)>>);

    impl PresenceListener for Changes {
        fn changed(&self, user: UserId, before: PresenceStatus, after: PresenceStatus) {
            self.0.lock().unwrap().push((user, before, after));
        }
    }

    #[test]
    fn a_user_is_online_while_any_socket_is_and_away_only_when_all_say_so() {
        use PresenceStatus::{Away, Offline, Online};
        let hub = hub(4);
        let changes = Arc::new(Changes::default());
        hub.set_presence_listener(changes.clone());
        let (alice, bob) = (UserId::new(), UserId::new());
        let status = |user| hub.status_among(&[user]).unwrap().first().map(|s| s.1);
        let phone = hub.register(alice, "t");
        let laptop = hub.register(alice, "t");
        assert_eq!(status(alice), Some(Online));
        assert_eq!(status(bob), None);
        hub.set_away(alice, phone.id(), true);
        assert_eq!(status(alice), Some(Online), "the laptop is not away");
        hub.set_away(alice, laptop.id(), true);
        assert_eq!(status(alice), Some(Away));
        drop(laptop);
        assert_eq!(status(alice), Some(Away));
        hub.set_away(alice, phone.id(), false);
        drop(phone);
        assert_eq!(status(alice), None);
        assert_eq!(hub.online_among(&[alice, bob]).unwrap(), []);
        assert_eq!(
            *changes.0.lock().unwrap(),
            [
                (alice, Offline, Online),
                (alice, Online, Away),
                (alice, Away, Online),
                (alice, Online, Offline),
            ],
            "only changes of status are told"
        );
    }

    #[tokio::test]
    async fn dropping_a_registration_leaves_the_hub() {
        let hub = hub(4);
        let alice = UserId::new();
        let registration = hub.register(alice, "t");
        assert_eq!(hub.connection_count(), 1);
        drop(registration);
        assert_eq!(hub.connection_count(), 0);
        hub.deliver(&[alice], &ByteString::from_static("nobody"));
    }

    #[tokio::test]
    async fn ending_a_session_reaches_only_the_connections_of_its_tokens() {
        let hub = hub(4);
        let alice = UserId::new();
        let (ended, kept) = (SessionId::new(), SessionId::new());
        let phone = hub.register_in_session(alice, "t1", Some(ended));
        let laptop = hub.register_in_session(alice, "t2", Some(kept));
        let old = hub.register(alice, "t3");
        hub.publish(DomainEvent::AccessRevoked {
            user_id: alice,
            token_id: None,
            session_id: Some(ended),
            audience: vec![alice],
        });
        let wait = |registration: &Registration| {
            let revoked = registration.revoked.clone();
            async move {
                tokio::time::timeout(std::time::Duration::from_millis(50), revoked.notified())
                    .await
                    .is_ok()
            }
        };
        assert!(wait(&phone).await);
        assert!(!wait(&laptop).await);
        assert!(!wait(&old).await);
    }

    #[tokio::test]
    async fn revoking_a_token_reaches_only_the_connections_that_used_it() {
        let hub = hub(4);
        let alice = UserId::new();
        let phone = hub.register(alice, "phone");
        let laptop = hub.register(alice, "laptop");
        hub.publish(DomainEvent::AccessRevoked {
            user_id: alice,
            token_id: Some("phone".into()),
            session_id: None,
            audience: vec![alice],
        });
        let phone_told = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            phone.revoked.notified(),
        );
        assert!(phone_told.await.is_ok());
        let laptop_told = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            laptop.revoked.notified(),
        );
        assert!(laptop_told.await.is_err());
    }

    #[test]
    fn authenticated_slots_stop_at_the_node_limit_and_come_back() {
        let hub = Arc::new(Hub::new(WsConfig {
            max_connections: 1,
            ..WsConfig::default()
        }));
        let mut slot = hub.open_socket(None, false).unwrap();
        assert!(slot.authenticated());
        assert_eq!(hub.open_socket(None, false).err(), Some(OpenRefused::Full));
        drop(slot);
        assert!(hub.open_socket(None, false).is_ok());
    }

    #[test]
    fn pending_sockets_have_their_own_budget_in_total_and_per_address() {
        let hub = Arc::new(Hub::new(WsConfig {
            max_connections: 2,
            max_pending_connections: 3,
            max_pending_per_address: 2,
            ..WsConfig::default()
        }));
        let (a, b, c): (IpAddr, IpAddr, IpAddr) = (
            "10.0.0.1".parse().unwrap(),
            "10.0.0.2".parse().unwrap(),
            "10.0.0.3".parse().unwrap(),
        );
        // More pending sockets than the node has authenticated slots.
        let a1 = hub.open_socket(Some(a), false).unwrap();
        let _a2 = hub.open_socket(Some(a), false).unwrap();
        assert_eq!(
            hub.open_socket(Some(a), false).err(),
            Some(OpenRefused::TooManyPendingFromAddress)
        );
        let mut b1 = hub.open_socket(Some(b), false).unwrap();
        assert_eq!(
            hub.open_socket(Some(c), false).err(),
            Some(OpenRefused::TooManyPending)
        );
        assert_eq!(hub.pending_count(), 3);
        // Authenticating leaves the pending budget.
        assert!(b1.authenticated());
        assert_eq!(hub.pending_count(), 2);
        let mut c1 = hub.open_socket(Some(c), false).unwrap();
        assert!(c1.authenticated());
        // Both authenticated slots are taken: pending ones cannot be served.
        assert_eq!(
            hub.open_socket(Some(b), false).err(),
            Some(OpenRefused::Full)
        );
        drop(a1);
        assert_eq!(hub.pending_count(), 1);
        drop(c1);
        assert!(hub.open_socket(Some(a), false).is_ok());
    }

    #[test]
    fn a_handshake_with_a_token_takes_an_authenticated_slot_not_a_pending_one() {
        let hub = Arc::new(Hub::new(WsConfig {
            max_connections: 1,
            max_pending_per_address: 1,
            ..WsConfig::default()
        }));
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let _idle = hub.open_socket(Some(ip), false).unwrap();
        // The address's pending share is spent; a socket with its token still gets in.
        let mut with_token = hub.open_socket(Some(ip), true).unwrap();
        assert!(with_token.authenticated());
        assert_eq!(hub.pending_count(), 1);
        assert_eq!(hub.open_socket(None, true).err(), Some(OpenRefused::Full));
        drop(with_token);
        assert!(hub.open_socket(None, true).is_ok());
    }
}
