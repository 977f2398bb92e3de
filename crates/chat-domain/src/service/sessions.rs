//! Login sessions: opening one at login, redeeming and rotating refresh tokens (with theft
//! detection), listing a user's signed-in devices and ending them. See [`crate::session`].

use std::sync::Arc;

use chrono::Duration;

use crate::events::DomainEvent;
use crate::limits::Limits;
use crate::ports::{
    AccessToken, Clock, EventPublisher, RefreshTokens, SessionStore, TokenIssuer, UserStore,
};
use crate::session::{NewSession, Rotation, Session};
use crate::user::User;
use crate::{DomainError, Resource, SessionId, UserId};

use super::{Authenticated, Ports, Throttle};

/// A refresh token handed to a client, and the session it belongs to.
#[derive(Debug, Clone)]
pub struct RefreshGrant {
    pub session_id: SessionId,
    /// The token itself: shown to the client once, stored only as its hash.
    pub token: String,
    /// How long it can be redeemed for.
    pub expires_in: Duration,
}

/// A redeemed refresh token: a new access token and the refresh token that replaces it.
#[derive(Debug, Clone)]
pub struct Refreshed {
    pub access: AccessToken,
    pub refresh: RefreshGrant,
}

/// One of the caller's sessions as they see it.
#[derive(Debug, Clone)]
pub struct SessionView {
    pub session: Session,
    /// Whether the caller's own token was issued in it.
    pub current: bool,
}

#[derive(Clone)]
pub struct SessionService {
    sessions: Arc<dyn SessionStore>,
    refresh: Arc<dyn RefreshTokens>,
    users: Arc<dyn UserStore>,
    tokens: Arc<dyn TokenIssuer>,
    events: Arc<dyn EventPublisher>,
    clock: Arc<dyn Clock>,
    throttle: Throttle,
    limits: Limits,
}

impl SessionService {
    pub fn new(ports: &Ports) -> Self {
        Self {
            sessions: ports.sessions.clone(),
            refresh: ports.refresh_tokens.clone(),
            users: ports.users.clone(),
            tokens: ports.tokens.clone(),
            events: ports.events.clone(),
            clock: ports.clock.clone(),
            throttle: Throttle::new(ports),
            limits: ports.limits,
        }
    }

    /// Opens a session for a user who just proved who they are, and issues its first access
    /// and refresh tokens.
    pub(super) fn open(
        &self,
        user: &User,
        device: Option<String>,
        client: Option<&str>,
    ) -> Result<(AccessToken, RefreshGrant), DomainError> {
        let now = self.clock.now();
        let id = SessionId::new();
        let lifetime = self.refresh.lifetime();
        let minted = self.refresh.mint(id);
        self.sessions.open_session(&NewSession {
            session: Session {
                id,
                user_id: user.id,
                device,
                client_address: client.map(str::to_owned),
                created_at: now,
                last_used_at: now,
                expires_at: now + lifetime,
                generation: user.token_generation,
                revoked: false,
            },
            refresh: minted.hash,
        })?;
        let access = self
            .tokens
            .issue_in_session(user.id, user.token_generation, id, now)
            .map_err(DomainError::Credentials)?;
        Ok((
            access,
            RefreshGrant {
                session_id: id,
                token: minted.token,
                expires_in: lifetime,
            },
        ))
    }

    /// Redeems a refresh token for a new access token and a new refresh token; the one
    /// presented is spent. Every refusal is [`DomainError::Unauthenticated`]: a token that
    /// is malformed, unknown, expired, of an ended session or of a user whose password
    /// changed or who was deactivated since the login. A spent token of a live session ends
    /// that session (theft detection): the client holding its current token must log in
    /// again too. That is strict on purpose: a client that sends the same refresh token
    /// twice at once (a retry racing the first try) ends its own session.
    ///
    /// Refusals count against `client`'s budget of failed logins
    /// ([`Limits::login_failures_per_address`]), so refresh tokens cannot be guessed any
    /// faster than passwords; once it is spent, refreshes from there are
    /// [`DomainError::RateLimited`].
    pub fn refresh(&self, token: &str, client: Option<&str>) -> Result<Refreshed, DomainError> {
        let budget = client.map(|c| format!("login-addr:{c}"));
        let quota = self.limits.login_failures_per_address;
        if let Some(key) = &budget {
            self.throttle.check(key, quota)?;
        }
        let fail = |why: &str| {
            if let Some(key) = &budget {
                // Spending the budget can itself hit the limit; the answer is the same.
                let _ = self.throttle.acquire(key, quota);
            }
            DomainError::Unauthenticated(why.to_owned())
        };
        let Some(presented) = self.refresh.read(token) else {
            return Err(fail("invalid refresh token"));
        };
        let lifetime = self.refresh.lifetime();
        let next = self.refresh.mint(presented.session_id);
        let now = self.clock.now();
        let rotation = self.sessions.rotate(
            presented.session_id,
            &presented.hash,
            &next.hash,
            now,
            now + lifetime,
        )?;
        let session = match rotation {
            Rotation::Rotated(session) => session,
            Rotation::Reused(session) => {
                self.announce_ended(session.user_id, session.id);
                return Err(fail(
                    "this refresh token was already used; its session has been ended, log in again",
                ));
            }
            Rotation::Unknown => return Err(fail("invalid or expired refresh token")),
        };
        let user = self.users.find(session.user_id)?;
        let Some(user) = user.filter(|u| u.is_active && u.token_generation == session.generation)
        else {
            // Revoked with the password change or deactivation; this covers a crash between
            // the two.
            self.end_quietly(session.user_id, session.id)?;
            return Err(fail("the session has ended; log in again"));
        };
        let access = self
            .tokens
            .issue_in_session(user.id, user.token_generation, session.id, now)
            .map_err(DomainError::Credentials)?;
        Ok(Refreshed {
            access,
            refresh: RefreshGrant {
                session_id: session.id,
                token: next.token,
                expires_in: lifetime,
            },
        })
    }

    /// Whether a verified token's session still stands: a token issued in a session is
    /// honoured only while that session of that user is live.
    pub(super) fn honours(&self, user: UserId, session: SessionId) -> Result<bool, DomainError> {
        Ok(self
            .sessions
            .find_session(session)?
            .is_some_and(|s| s.user_id == user && s.is_live()))
    }

    /// The caller's live sessions, most recently used first, marking the one they call from.
    pub fn list(&self, caller: &Authenticated) -> Result<Vec<SessionView>, DomainError> {
        let now = self.clock.now();
        Ok(self
            .sessions
            .sessions_of(caller.user.id, now)?
            .into_iter()
            .map(|session| SessionView {
                current: caller.claims.session_id == Some(session.id),
                session,
            })
            .collect())
    }

    /// Ends one of the caller's sessions (their current one included): its refresh token
    /// stops working, its access tokens are refused at once and its connections close on
    /// every node. Someone else's session, or one already ended, is not found.
    pub fn end(&self, caller: &Authenticated, id: SessionId) -> Result<(), DomainError> {
        if !self.sessions.end_session(caller.user.id, id)? {
            return Err(DomainError::not_found(Resource::Session, id));
        }
        self.announce_ended(caller.user.id, id);
        Ok(())
    }

    /// Ends every session of the caller but the one they call from, and says how many.
    pub fn end_others(&self, caller: &Authenticated) -> Result<usize, DomainError> {
        let ended = self
            .sessions
            .end_sessions(caller.user.id, caller.claims.session_id)?;
        for id in &ended {
            self.announce_ended(caller.user.id, *id);
        }
        Ok(ended.len())
    }

    /// Ends every session of the user, without an event: the caller announces that all the
    /// user's access is withdrawn (password change, deactivation).
    pub(super) fn end_all_quietly(&self, user: UserId) -> Result<(), DomainError> {
        self.sessions.end_sessions(user, None)?;
        Ok(())
    }

    /// Ends the caller's current session at logout; the caller announces it.
    pub(super) fn end_quietly(&self, user: UserId, id: SessionId) -> Result<(), DomainError> {
        self.sessions.end_session(user, id)?;
        Ok(())
    }

    fn announce_ended(&self, user: UserId, id: SessionId) {
        self.events.publish(DomainEvent::AccessRevoked {
            user_id: user,
            token_id: None,
            session_id: Some(id),
            audience: vec![user],
        });
    }
}

#[cfg(test)]
mod tests {
    use crate::events::DomainEvent;
    use crate::fakes::World;
    use crate::{DomainError, Resource, SessionId};

    use super::*;

    fn log_in(world: &World, user: &str) -> crate::service::LoggedIn {
        world
            .services
            .accounts
            .log_in(user, "correct horse", Some("192.0.2.1"), None)
            .unwrap()
    }

    fn authenticate(world: &World, token: &str) -> Result<Authenticated, DomainError> {
        world.services.accounts.authenticate(token)
    }

    #[test]
    fn a_login_opens_a_session_that_its_access_token_names() {
        let world = World::new();
        world.user("alice");
        let login = log_in(&world, "alice");
        let me = authenticate(&world, &login.access.token).unwrap();
        assert_eq!(me.claims.session_id, Some(login.refresh.session_id));
        let listed = world.services.sessions.list(&me).unwrap();
        assert_eq!(listed.len(), 1);
        assert!(listed[0].current);
        assert_eq!(
            listed[0].session.client_address.as_deref(),
            Some("192.0.2.1")
        );
    }

    #[test]
    fn a_refresh_token_is_spent_by_its_use_and_the_new_pair_works() {
        let world = World::new();
        world.user("alice");
        let login = log_in(&world, "alice");
        let sessions = &world.services.sessions;
        let refreshed = sessions.refresh(&login.refresh.token, None).unwrap();
        assert_ne!(refreshed.refresh.token, login.refresh.token);
        assert_eq!(refreshed.refresh.session_id, login.refresh.session_id);
        let me = authenticate(&world, &refreshed.access.token).unwrap();
        assert_eq!(me.claims.session_id, Some(login.refresh.session_id));
        let again = sessions.refresh(&refreshed.refresh.token, None).unwrap();
        assert!(authenticate(&world, &again.access.token).is_ok());
    }

    #[test]
    fn reusing_a_spent_refresh_token_ends_its_whole_session() {
        let world = World::new();
        world.user("alice");
        let login = log_in(&world, "alice");
        let sessions = &world.services.sessions;
        let legit = sessions.refresh(&login.refresh.token, None).unwrap();
        world.events.take();
        // The thief replays the stolen, already rotated token.
        assert!(matches!(
            sessions.refresh(&login.refresh.token, None),
            Err(DomainError::Unauthenticated(_))
        ));
        assert!(matches!(
            world.events.take().as_slice(),
            [DomainEvent::AccessRevoked { session_id: Some(id), token_id: None, .. }]
                if *id == login.refresh.session_id
        ));
        // Every token of the family is dead: the latest refresh token and the access tokens.
        assert!(sessions.refresh(&legit.refresh.token, None).is_err());
        assert!(authenticate(&world, &legit.access.token).is_err());
        assert!(authenticate(&world, &login.access.token).is_err());
    }

    #[test]
    fn a_malformed_or_unknown_refresh_token_is_refused_and_counts_as_a_failed_login() {
        let world = World::new();
        world.user("alice");
        let sessions = &world.services.sessions;
        let unknown = format!("refresh:{}:nope", SessionId::new());
        for token in ["", "garbage", unknown.as_str()] {
            assert!(matches!(
                sessions.refresh(token, Some("203.0.113.5")),
                Err(DomainError::Unauthenticated(_))
            ));
        }
        let budget = Limits::default().login_failures_per_address.unwrap().burst;
        for _ in 3..budget {
            let _ = sessions.refresh("garbage", Some("203.0.113.5"));
        }
        let login = log_in(&world, "alice");
        assert!(matches!(
            sessions.refresh(&login.refresh.token, Some("203.0.113.5")),
            Err(DomainError::RateLimited { .. })
        ));
        assert!(
            sessions
                .refresh(&login.refresh.token, Some("198.51.100.2"))
                .is_ok()
        );
    }

    #[test]
    fn ending_a_session_refuses_its_tokens_at_once_and_leaves_the_others() {
        let world = World::new();
        world.user("alice");
        let phone = log_in(&world, "alice");
        let laptop = log_in(&world, "alice");
        let me = authenticate(&world, &laptop.access.token).unwrap();
        world.events.take();
        world
            .services
            .sessions
            .end(&me, phone.refresh.session_id)
            .unwrap();
        assert!(authenticate(&world, &phone.access.token).is_err());
        assert!(
            world
                .services
                .sessions
                .refresh(&phone.refresh.token, None)
                .is_err()
        );
        assert!(authenticate(&world, &laptop.access.token).is_ok());
        assert!(matches!(
            world.events.take().as_slice(),
            [DomainEvent::AccessRevoked { session_id: Some(id), .. }] if *id == phone.refresh.session_id
        ));
        let listed = world.services.sessions.list(&me).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].session.id, laptop.refresh.session_id);
    }

    #[test]
    fn nobody_can_end_someone_elses_session() {
        let world = World::new();
        world.user("alice");
        world.user("mallory");
        let alice = log_in(&world, "alice");
        let mallory = log_in(&world, "mallory");
        let mallory = authenticate(&world, &mallory.access.token).unwrap();
        assert!(matches!(
            world
                .services
                .sessions
                .end(&mallory, alice.refresh.session_id),
            Err(DomainError::NotFound {
                resource: Resource::Session,
                ..
            })
        ));
        assert!(authenticate(&world, &alice.access.token).is_ok());
        assert!(
            world
                .services
                .sessions
                .refresh(&alice.refresh.token, None)
                .is_ok()
        );
    }

    #[test]
    fn revoking_the_others_keeps_only_the_current_session() {
        let world = World::new();
        world.user("alice");
        world.user("bob");
        let phone = log_in(&world, "alice");
        let tablet = log_in(&world, "alice");
        let laptop = log_in(&world, "alice");
        let bob = log_in(&world, "bob");
        let me = authenticate(&world, &laptop.access.token).unwrap();
        assert_eq!(world.services.sessions.end_others(&me).unwrap(), 2);
        for gone in [&phone, &tablet] {
            assert!(authenticate(&world, &gone.access.token).is_err());
        }
        assert!(authenticate(&world, &laptop.access.token).is_ok());
        assert!(authenticate(&world, &bob.access.token).is_ok());
    }

    #[test]
    fn a_password_change_or_logout_ends_sessions_and_their_refresh_tokens() {
        let world = World::new();
        let alice = world.user("alice");
        let phone = log_in(&world, "alice");
        let laptop = log_in(&world, "alice");
        let accounts = &world.services.accounts;
        let me = authenticate(&world, &laptop.access.token).unwrap();
        accounts.log_out(&me).unwrap();
        assert!(
            world
                .services
                .sessions
                .refresh(&laptop.refresh.token, None)
                .is_err()
        );
        assert!(authenticate(&world, &phone.access.token).is_ok());
        accounts
            .update_profile(
                alice,
                crate::service::ProfileChanges {
                    password: Some("new password!".into()),
                    current_password: Some("correct horse".into()),
                    ..Default::default()
                },
            )
            .unwrap();
        assert!(
            world
                .services
                .sessions
                .refresh(&phone.refresh.token, None)
                .is_err()
        );
    }

    #[test]
    fn a_session_from_before_a_password_change_cannot_be_refreshed_even_if_left_open() {
        let world = World::new();
        let alice = world.user("alice");
        let phone = log_in(&world, "alice");
        // As if the server died between raising the generation and ending the sessions.
        crate::ports::UserStore::update(
            &*world.store,
            alice,
            &crate::user::ProfileUpdate {
                password_hash: Some(crate::user::PasswordHash("other".into())),
                ..Default::default()
            },
            chrono::Utc::now(),
        )
        .unwrap();
        assert!(
            world
                .services
                .sessions
                .refresh(&phone.refresh.token, None)
                .is_err()
        );
        let stored = SessionStore::find_session(&*world.store, phone.refresh.session_id).unwrap();
        assert!(stored.unwrap().revoked);
    }

    #[test]
    fn a_connection_holds_while_its_session_lives_and_not_after() {
        let world = World::new();
        let alice = world.user("alice");
        let phone = log_in(&world, "alice");
        let accounts = &world.services.accounts;
        let me = authenticate(&world, &phone.access.token).unwrap();
        // Even once the token itself has expired (the fake's "expired:" form), the
        // connection opened with it holds while the session lives.
        assert!(
            accounts
                .connection_holds("expired:phone", &me.claims)
                .is_ok()
        );
        world
            .services
            .sessions
            .end(&me, phone.refresh.session_id)
            .unwrap();
        assert!(matches!(
            accounts.connection_holds("expired:phone", &me.claims),
            Err(DomainError::Unauthenticated(_))
        ));
        // A token from before sessions holds only as long as the token.
        let mut legacy = me.claims.clone();
        legacy.session_id = None;
        assert!(matches!(
            accounts.connection_holds("expired:old", &legacy),
            Err(DomainError::TokenExpired)
        ));
        let laptop = log_in(&world, "alice");
        let laptop_claims = authenticate(&world, &laptop.access.token).unwrap().claims;
        accounts.deactivate(alice, "correct horse").unwrap();
        assert!(
            accounts
                .connection_holds(&laptop.access.token, &laptop_claims)
                .is_err()
        );
    }

    #[test]
    fn a_token_from_before_sessions_still_works_until_it_expires() {
        let world = World::new();
        let alice = world.user("alice");
        // The fake access tokens of before sessions name no session.
        let old = format!("token:{alice}:0:99");
        let me = authenticate(&world, &old).unwrap();
        assert_eq!(me.claims.session_id, None);
        assert!(world.services.sessions.list(&me).unwrap().is_empty());
    }
}
