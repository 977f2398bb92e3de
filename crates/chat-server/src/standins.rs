//! TEMPORARY, for the #17 branches only; removed when they merge. Stand-ins for ports whose
//! adapters another branch writes: presence (the presence branch). Never lands on main.

use chat_domain::UserId;
use chat_domain::ports::{PresenceDirectory, StoreResult};

pub struct StandIn;

impl PresenceDirectory for StandIn {
    fn online_among(&self, _: &[UserId]) -> StoreResult<Vec<UserId>> {
        Ok(Vec::new())
    }
}
