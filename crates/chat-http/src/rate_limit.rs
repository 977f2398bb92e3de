//! The single-node [`RateLimiter`]: token buckets kept in memory.
//!
//! Each key holds one instant, its "theoretical arrival time" (GCRA): an action is allowed
//! while that instant is no further ahead of now than the quota's burst allows. Hand-written
//! rather than taken from `governor` because login limiting needs to *look* at a budget
//! without spending it (failures spend, attempts only check).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chat_domain::limits::Quota;
use chat_domain::ports::RateLimiter;

const SHARDS: usize = 16;
/// A shard this large is swept of keys whose budget is full again.
const SWEEP_AT: usize = 4096;

pub struct MemoryRateLimiter {
    shards: Box<[Mutex<HashMap<String, Instant>>]>,
    hasher: RandomState,
}

impl Default for MemoryRateLimiter {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
        }
    }
}

impl MemoryRateLimiter {
    fn decide(&self, key: &str, quota: Quota, take: bool) -> Result<(), Duration> {
        let now = Instant::now();
        let interval = quota.refill_interval();
        let tolerance = interval * quota.burst.saturating_sub(1);
        let shard = &self.shards[self.hasher.hash_one(key) as usize % self.shards.len()];
        let mut shard = shard
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let arrival = shard.get(key).copied().unwrap_or(now).max(now);
        let ahead = arrival - now;
        if ahead > tolerance {
            return Err(ahead - tolerance);
        }
        if take {
            if shard.len() >= SWEEP_AT {
                shard.retain(|_, at| *at > now);
            }
            shard.insert(key.to_owned(), arrival + interval);
        }
        Ok(())
    }
}

impl RateLimiter for MemoryRateLimiter {
    fn acquire(&self, key: &str, quota: Quota) -> Result<(), Duration> {
        self.decide(key, quota, true)
    }

    fn check(&self, key: &str, quota: Quota) -> Result<(), Duration> {
        self.decide(key, quota, false)
    }
}

#[cfg(test)]
mod tests {
    use super::MemoryRateLimiter;

    chat_domain::rate_limiter_contract_tests!(Some(Box::new(MemoryRateLimiter::default())));
}
