//! TEMPORARY, for the #17 branches only; removed when they merge. Stand-ins for ports whose
//! adapters another branch writes: blocks and admins (the safety branch). Never lands on
//! main.

use chat_domain::admin::{AuditEntry, AuditRecord};
use chat_domain::block::Block;
use chat_domain::ports::{AdminStore, BlockStore, StoreResult};
use chat_domain::{StoreError, UserId};
use chrono::{DateTime, Utc};

pub struct StandIn;

fn unavailable<T>() -> StoreResult<T> {
    Err(StoreError::Unavailable("not merged yet".into()))
}

impl BlockStore for StandIn {
    fn block(&self, _: UserId, _: UserId, _: DateTime<Utc>) -> StoreResult<bool> {
        unavailable()
    }
    fn unblock(&self, _: UserId, _: UserId) -> StoreResult<bool> {
        unavailable()
    }
    fn blocked_by(&self, _: UserId) -> StoreResult<Vec<Block>> {
        Ok(Vec::new())
    }
    fn blockers_of(&self, _: UserId, _: &[UserId]) -> StoreResult<Vec<UserId>> {
        Ok(Vec::new())
    }
}

impl AdminStore for StandIn {
    fn is_admin(&self, _: UserId) -> StoreResult<bool> {
        Ok(false)
    }
    fn set_admin(&self, _: UserId, _: bool) -> StoreResult<bool> {
        unavailable()
    }
    fn record(&self, _: &AuditEntry) -> StoreResult<AuditRecord> {
        unavailable()
    }
    fn audit_log(&self, _: Option<i64>, _: u32) -> StoreResult<Vec<AuditRecord>> {
        Ok(Vec::new())
    }
}
