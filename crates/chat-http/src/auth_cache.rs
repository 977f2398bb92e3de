//! A short-lived, in-process memory of verified tokens, so a busy client's requests skip the
//! token check's database reads and its trip to the blocking pool. It vouches for who the
//! caller is, not for their profile: handlers that return the profile read it fresh.
//!
//! Correctness does not rest on the time limit: every revocation made through this process
//! (logout, password change, deactivation) reaches the cache as an `AccessRevoked` event and
//! evicts the user's entries at once. The limit only bounds how long a change made elsewhere
//! (another node, a direct database edit) can go unseen.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chat_domain::events::DomainEvent;
use chat_domain::ports::EventPublisher;
use chat_domain::service::Authenticated;

/// Entries kept before expired ones are swept, and the hard cap after a sweep.
const SWEEP_AT: usize = 65_536;

pub struct AuthCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, (Authenticated, Instant)>>,
}

impl AuthCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::default(),
        }
    }

    /// The bearer of `token`, if it was verified less than the time limit ago and has not
    /// expired since.
    pub fn get(&self, token: &str) -> Option<Authenticated> {
        self.get_at(token, Instant::now())
    }

    pub fn insert(&self, token: String, session: Authenticated) {
        self.insert_at(token, session, Instant::now());
    }

    /// Forgets every verified token: revocations may have been missed (the node was off its
    /// event bus), so each token is checked against the store again on its next use.
    pub fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    /// [`Self::get`] as of `now`, so that tests can drive time.
    fn get_at(&self, token: &str, now: Instant) -> Option<Authenticated> {
        let entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (session, at) = entries.get(token)?;
        let fresh = now.saturating_duration_since(*at) < self.ttl
            && session.claims.expires_at > chrono::Utc::now();
        fresh.then(|| session.clone())
    }

    /// [`Self::insert`] as of `now`.
    fn insert_at(&self, token: String, session: Authenticated, now: Instant) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= SWEEP_AT {
            let ttl = self.ttl;
            entries.retain(|_, (_, at)| now.saturating_duration_since(*at) < ttl);
            if entries.len() >= SWEEP_AT {
                entries.clear();
            }
        }
        entries.insert(token, (session, now));
    }
}

impl EventPublisher for AuthCache {
    /// Forgets the revoked token, the tokens of an ended session, or every token of a user
    /// whose access was withdrawn.
    fn publish(&self, event: DomainEvent) {
        if let DomainEvent::AccessRevoked {
            user_id,
            token_id,
            session_id,
            ..
        } = event
        {
            let mut entries = self
                .entries
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let revoked = (user_id, token_id.as_deref(), session_id);
            entries.retain(|_, (session, _)| {
                let claims = &session.claims;
                !DomainEvent::revokes(
                    revoked,
                    session.user.id,
                    &claims.token_id,
                    claims.session_id,
                )
            });
        }
    }
}

/// Sends every event to each of several publishers (the WebSocket hub, the token cache).
pub struct PublishAll(pub Vec<std::sync::Arc<dyn EventPublisher>>);

impl EventPublisher for PublishAll {
    fn publish(&self, event: DomainEvent) {
        if let Some((last, rest)) = self.0.split_last() {
            for publisher in rest {
                publisher.publish(event.clone());
            }
            last.publish(event);
        }
    }
}

#[cfg(test)]
mod tests {
    use chat_domain::ports::TokenClaims;
    use chat_domain::user::{Email, User, Username};
    use chat_domain::{SessionId, UserId};
    use chrono::Utc;

    use super::*;

    fn session(user: UserId, token_id: &str) -> Authenticated {
        in_session(user, token_id, None)
    }

    fn in_session(user: UserId, token_id: &str, session: Option<SessionId>) -> Authenticated {
        let now = Utc::now();
        Authenticated {
            user: User {
                id: user,
                username: Username::parse("alice").unwrap(),
                email: Email::parse("alice@example.com").unwrap(),
                full_name: None,
                avatar_url: None,
                bio: None,
                is_active: true,
                token_generation: 0,
                created_at: now,
                updated_at: now,
            },
            claims: TokenClaims {
                user_id: user,
                generation: 0,
                token_id: token_id.into(),
                issued_at: now,
                expires_at: now + chrono::Duration::hours(1),
                session_id: session,
            },
        }
    }

    #[test]
    fn a_verified_token_is_remembered_only_for_the_time_limit() {
        let ttl = Duration::from_secs(30);
        let cache = AuthCache::new(ttl);
        let alice = UserId::new();
        let verified = Instant::now();
        cache.insert_at("t1".into(), session(alice, "j1"), verified);
        assert_eq!(cache.get_at("t1", verified).unwrap().user.id, alice);
        assert!(cache.get_at("other", verified).is_none());
        let almost = verified + ttl - Duration::from_millis(1);
        assert_eq!(cache.get_at("t1", almost).unwrap().user.id, alice);
        assert!(cache.get_at("t1", verified + ttl).is_none());
        assert!(cache.get_at("t1", verified + 2 * ttl).is_none());
    }

    #[test]
    fn clearing_forgets_every_verified_token() {
        let cache = AuthCache::new(Duration::from_secs(30));
        cache.insert("t1".into(), session(UserId::new(), "j1"));
        cache.insert("t2".into(), session(UserId::new(), "j2"));
        cache.clear();
        assert!(cache.get("t1").is_none());
        assert!(cache.get("t2").is_none());
    }

    #[test]
    fn a_token_that_has_expired_since_it_was_verified_is_not_vouched_for() {
        let cache = AuthCache::new(Duration::from_secs(30));
        let mut expired = session(UserId::new(), "j1");
        expired.claims.expires_at = Utc::now() - chrono::Duration::seconds(1);
        let verified = Instant::now();
        cache.insert_at("t1".into(), expired, verified);
        assert!(cache.get_at("t1", verified).is_none());
    }

    #[test]
    fn a_cache_without_a_time_limit_remembers_nothing() {
        let cache = AuthCache::new(Duration::ZERO);
        let verified = Instant::now();
        cache.insert_at("t1".into(), session(UserId::new(), "j1"), verified);
        assert!(cache.get_at("t1", verified).is_none());
    }

    #[test]
    fn revocations_evict_the_token_or_every_token_of_the_user() {
        let cache = AuthCache::new(Duration::from_secs(60));
        let (alice, bob) = (UserId::new(), UserId::new());
        cache.insert("phone".into(), session(alice, "j-phone"));
        cache.insert("laptop".into(), session(alice, "j-laptop"));
        cache.insert("bob".into(), session(bob, "j-bob"));
        cache.publish(DomainEvent::AccessRevoked {
            user_id: alice,
            token_id: Some("j-phone".into()),
            session_id: None,
            audience: vec![alice],
        });
        assert!(cache.get("phone").is_none());
        assert!(cache.get("laptop").is_some());
        cache.publish(DomainEvent::AccessRevoked {
            user_id: alice,
            token_id: None,
            session_id: None,
            audience: vec![alice],
        });
        assert!(cache.get("laptop").is_none());
        assert!(cache.get("bob").is_some());
    }

    #[test]
    fn ending_a_session_evicts_every_token_of_that_session_only() {
        let cache = AuthCache::new(Duration::from_secs(60));
        let alice = UserId::new();
        let (phone, laptop) = (SessionId::new(), SessionId::new());
        cache.insert("phone-1".into(), in_session(alice, "j1", Some(phone)));
        cache.insert("phone-2".into(), in_session(alice, "j2", Some(phone)));
        cache.insert("laptop".into(), in_session(alice, "j3", Some(laptop)));
        cache.insert("old".into(), session(alice, "j4"));
        cache.publish(DomainEvent::AccessRevoked {
            user_id: alice,
            token_id: None,
            session_id: Some(phone),
            audience: vec![alice],
        });
        assert!(cache.get("phone-1").is_none());
        assert!(cache.get("phone-2").is_none());
        assert!(cache.get("laptop").is_some());
        assert!(cache.get("old").is_some());
    }
}
