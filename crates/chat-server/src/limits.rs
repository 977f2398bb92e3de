//! Where the abuse-limit budgets and the per-user connection counts live: in this process's
//! memory when the node is alone (SQLite), in PostgreSQL when the nodes share a database, so
//! that the limits hold for the cluster rather than for each node (docs/scaling.md, "Limits
//! across nodes"). A WebSocket's frame budget is not here: it concerns one socket on one
//! node and always stays in memory.

use std::sync::Arc;

use chat_domain::UserId;
use chat_domain::ports::RateLimiter;
use chat_http::{MemoryConnectionCap, MemoryRateLimiter, UserConnectionCap};
use chat_postgres::{CapOptions, PgConnectionCap, PgDatabase, PgRateLimiter, SharedLimitOptions};

use crate::storage::Storage;

/// The budgets the services take from and the per-user connection cap the gateway claims.
pub struct Budgets {
    pub limiter: Arc<dyn RateLimiter>,
    pub user_connections: Arc<dyn UserConnectionCap>,
    /// This node's id among the nodes sharing the database, when it shares one.
    pub node: Option<uuid::Uuid>,
}

impl Budgets {
    /// Shared when the storage is shared (PostgreSQL), else this node's own. Blocks.
    pub fn for_storage(storage: &Storage) -> std::io::Result<Self> {
        match storage {
            Storage::Postgres(db) => Self::shared(db),
            Storage::Sqlite { .. } => Ok(Self::in_memory()),
        }
    }

    /// This node's own: a node alone on its database.
    pub fn in_memory() -> Self {
        Self {
            limiter: Arc::new(MemoryRateLimiter::default()),
            user_connections: Arc::new(MemoryConnectionCap::default()),
            node: None,
        }
    }

    /// Shared through `db` (migrated) with every node on it. The node registers under a
    /// new random id, so it starts with no connections counted; a node silent for 30 s
    /// stops counting. Blocks (it connects).
    pub fn shared(db: &PgDatabase) -> std::io::Result<Self> {
        let node = uuid::Uuid::new_v4();
        let cap = PgConnectionCap::start(db, node, CapOptions::default())?;
        tracing::info!(%node, "abuse limits and connection caps are shared through PostgreSQL");
        Ok(Self {
            limiter: Arc::new(PgRateLimiter::new(db, &SharedLimitOptions::default())?),
            user_connections: Arc::new(ClusterCap(cap)),
            node: Some(node),
        })
    }
}

/// chat-postgres' cap as the gateway's port (the adapter does not depend on the edge).
struct ClusterCap(PgConnectionCap);

impl UserConnectionCap for ClusterCap {
    fn claim(&self, user: UserId, limit: usize) -> bool {
        self.0.claim(user, limit)
    }

    fn release(&self, user: UserId) {
        self.0.release(user);
    }

    fn may_block(&self) -> bool {
        true
    }
}
