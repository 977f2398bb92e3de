//! The rules of [`TokenRevocations`](crate::ports::TokenRevocations).

use chrono::{Duration, Utc};

use crate::contract::Stores;

/// A revoked token is revoked until it would have expired, revoking it again is harmless,
/// and no other token is revoked with it.
pub fn a_revoked_token_stays_revoked_and_others_are_not<S: Stores + ?Sized>(store: &S) {
    // Stores may forget tokens whose expiry has passed by the wall clock: expire later.
    let later = Utc::now() + Duration::hours(1);
    assert!(!store.is_revoked("a").unwrap());
    store.revoke("a", later).unwrap();
    store.revoke("a", later).unwrap();
    store.revoke("b", later + Duration::hours(1)).unwrap();
    assert!(store.is_revoked("a").unwrap());
    assert!(store.is_revoked("b").unwrap());
    assert!(!store.is_revoked("c").unwrap());
    assert!(!store.is_revoked("A").unwrap(), "token ids are exact");
}
