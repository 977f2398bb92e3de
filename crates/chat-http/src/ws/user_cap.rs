//! How many WebSockets one user may hold (`CHAT_MAX_CONNECTIONS_PER_USER`), behind a small
//! trait: the cap is the edge's concern, not the domain's. [`MemoryConnectionCap`] counts
//! this node's connections (a single node, or a cluster that caps per node); a cluster
//! that caps per user across its nodes plugs in an implementation that shares the counts
//! (chat-postgres' `PgConnectionCap`).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;

use chat_domain::UserId;

/// Counts each user's open connections against a limit.
pub trait UserConnectionCap: Send + Sync {
    /// Takes one of `user`'s slots unless they already hold `limit`; `false` refuses the
    /// connection. Every `true` must be matched by one [`Self::release`]. May wait on
    /// another process when [`Self::may_block`] says so.
    fn claim(&self, user: UserId, limit: usize) -> bool;
    /// Gives a claimed slot back. Never blocks: it runs when a connection's task ends.
    fn release(&self, user: UserId);
    /// Whether [`Self::claim`] may wait on another process (a database): an async caller
    /// then makes it on the blocking pool.
    fn may_block(&self) -> bool {
        false
    }
}

const SHARDS: usize = 16;

/// This node's connections per user, in memory.
pub struct MemoryConnectionCap {
    shards: Box<[Mutex<HashMap<UserId, usize>>]>,
    hasher: RandomState,
}

impl Default for MemoryConnectionCap {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
        }
    }
}

impl MemoryConnectionCap {
    fn shard(&self, user: UserId) -> std::sync::MutexGuard<'_, HashMap<UserId, usize>> {
        let index = self.hasher.hash_one(user) as usize % self.shards.len();
        self.shards[index]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl UserConnectionCap for MemoryConnectionCap {
    fn claim(&self, user: UserId, limit: usize) -> bool {
        let mut shard = self.shard(user);
        let held = shard.entry(user).or_default();
        if *held >= limit {
            return false;
        }
        *held += 1;
        true
    }

    fn release(&self, user: UserId) {
        let mut shard = self.shard(user);
        if let Some(held) = shard.get_mut(&user) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                shard.remove(&user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_cannot_hold_more_connections_than_allowed_and_a_release_frees_one() {
        let cap = MemoryConnectionCap::default();
        let alice = UserId::new();
        assert!(cap.claim(alice, 2));
        assert!(cap.claim(alice, 2));
        assert!(!cap.claim(alice, 2));
        assert!(
            cap.claim(UserId::new(), 2),
            "other users have their own slots"
        );
        cap.release(alice);
        assert!(cap.claim(alice, 2));
        assert!(!cap.claim(alice, 2));
    }

    #[test]
    fn a_user_whose_connections_all_closed_is_forgotten() {
        let cap = MemoryConnectionCap::default();
        let alice = UserId::new();
        assert!(cap.claim(alice, 1));
        cap.release(alice);
        assert!(cap.shard(alice).is_empty());
    }
}
