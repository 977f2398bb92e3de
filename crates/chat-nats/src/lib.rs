//! The event bus on NATS core pub/sub: how the nodes of a cluster hear of each other's
//! domain events.
//!
//! [`ClusterPublisher`] is the node's [`chat_domain::ports::EventPublisher`]: it hands every
//! event to this node's own publishers (its WebSocket hub and token cache) at once, and queues
//! it for the broker; a subscriber task hands events from the other nodes to the same local
//! publishers. The wire format is in [`wire`].
//!
//! NATS core is at-most-once. Whenever this node may have missed events (it lost the broker
//! and got it back, or its subscription overflowed) or other nodes may have missed this node's
//! (it was off the broker, or its publish queue overflowed), the nodes concerned run their
//! resync hook: the server tells every socket to `sync` and forgets its verified tokens. So do
//! the survivors when another node falls silent (it may have died between a commit and its
//! publish): nodes beat once a [`HEARTBEAT_EVERY`] and are taken for dead after [`NODE_SILENT`].

mod cluster;
pub mod wire;

pub use cluster::{
    BusError, BusOptions, ClusterPublisher, HEARTBEAT_EVERY, NODE_SILENT, ResyncHook, SEQ_LAG,
};
