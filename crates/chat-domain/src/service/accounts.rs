//! Signing up, logging in, recognising a token's bearer, and profiles.

use std::sync::{Arc, OnceLock};

use crate::events::DomainEvent;
use crate::ports::{
    AccessToken, Clock, DeviceTokens, EventPublisher, PasswordHasher, TokenClaims, TokenError,
    TokenIssuer, TokenRevocations, UserStore,
};
use crate::user::{
    BIO_MAX, Email, FULL_NAME_MAX, NewUser, Password, PasswordHash, ProfileUpdate, PublicProfile,
    User, UserQuery, Username, optional_line, optional_text, optional_url,
};
use crate::validation::Validator;
use crate::{DomainError, Resource, StoreError, UserId};

use super::sessions::{RefreshGrant, SessionService};
use super::{ConversationService, Ports, Throttle};
use crate::limits::Limits;

/// A sign-up form as received.
#[derive(Debug, Clone, Default)]
pub struct SignupRequest {
    pub username: String,
    pub email: String,
    pub password: String,
    pub full_name: Option<String>,
}

/// A profile edit as received. `None` leaves a field unchanged; an empty string clears an
/// optional one. A new password needs the current one.
#[derive(Debug, Clone, Default)]
pub struct ProfileChanges {
    pub email: Option<String>,
    pub full_name: Option<String>,
    pub avatar_url: Option<String>,
    pub bio: Option<String>,
    pub password: Option<String>,
    pub current_password: Option<String>,
}

/// A successful login: the access token, the refresh token of the session it opened, and a
/// device token that spares this client the account's lockout at its next logins (see
/// [`AccountService::log_in`]).
#[derive(Debug, Clone)]
pub struct LoggedIn {
    pub access: AccessToken,
    pub device_token: String,
    pub refresh: RefreshGrant,
}

/// Who is logging in, besides their credentials: what their session is listed as.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoginFrom<'a> {
    /// The caller's address: the key of per-address limits, and shown in their sessions.
    pub client: Option<&'a str>,
    /// The `device_token` of the client's last login, if it presented one.
    pub device_token: Option<&'a str>,
    /// The name the client gives its session (`device_name`); invalid is a validation error.
    pub device_name: Option<&'a str>,
    /// Its `User-Agent`, the session's label when it gives no name.
    pub user_agent: Option<&'a str>,
}

/// The bearer of a valid access token: the user and what their token says.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub user: User,
    pub claims: TokenClaims,
}

#[derive(Clone)]
pub struct AccountService {
    users: Arc<dyn UserStore>,
    throttle: Throttle,
    limits: Limits,
    revocations: Arc<dyn TokenRevocations>,
    events: Arc<dyn EventPublisher>,
    hasher: Arc<dyn PasswordHasher>,
    tokens: Arc<dyn TokenIssuer>,
    devices: Arc<dyn DeviceTokens>,
    clock: Arc<dyn Clock>,
    /// Deactivation hands the user's groups over, as leaving does.
    conversations: ConversationService,
    /// Each login opens a session; a password change or deactivation ends them all.
    sessions: SessionService,
    /// A hash to check against when the login names nobody, so an unknown user costs the
    /// same time as a wrong password and the response time does not reveal who exists.
    decoy_hash: Arc<OnceLock<PasswordHash>>,
}

impl AccountService {
    pub fn new(ports: &Ports) -> Self {
        Self {
            users: ports.users.clone(),
            throttle: Throttle::new(ports),
            limits: ports.limits,
            revocations: ports.revocations.clone(),
            events: ports.events.clone(),
            hasher: ports.hasher.clone(),
            tokens: ports.tokens.clone(),
            devices: ports.devices.clone(),
            clock: ports.clock.clone(),
            conversations: ConversationService::new(ports),
            sessions: SessionService::new(ports),
            decoy_hash: Arc::new(OnceLock::new()),
        }
    }

    /// Creates an account. Every invalid field is reported at once; a taken username or email
    /// is a conflict naming the field. `client` is the caller's address, for the sign-up limit.
    pub fn sign_up(
        &self,
        request: SignupRequest,
        client: Option<&str>,
    ) -> Result<User, DomainError> {
        if let Some(client) = client {
            self.throttle
                .acquire(&format!("signup:{client}"), self.limits.signups_per_address)?;
        }
        let mut v = Validator::new();
        let username = v.check(Username::parse(&request.username));
        let email = v.check(Email::parse(&request.email));
        let password = v.check(Password::parse("password", &request.password));
        let full_name = v.check(optional_line(
            "full_name",
            request.full_name.as_deref(),
            FULL_NAME_MAX,
        ));
        v.finish()?;
        let (Some(username), Some(email), Some(password), Some(full_name)) =
            (username, email, password, full_name)
        else {
            unreachable!("the validator fails when any field is missing");
        };

        match self.users.taken(username.as_str(), email.as_str())? {
            (true, _) => return Err(DomainError::Conflict { field: "username" }),
            (_, true) => return Err(DomainError::Conflict { field: "email" }),
            _ => {}
        }
        let password_hash = self
            .hasher
            .hash(&password)
            .map_err(DomainError::Credentials)?;
        let user = NewUser {
            id: UserId::new(),
            username,
            email,
            full_name,
            password_hash,
            created_at: self.clock.now(),
        };
        self.users.insert(&user).map_err(conflict_or_store)
    }

    /// Exchanges a username (or email) and password for an access token, and a fresh
    /// device token for the client to present at its next login. Every failure is the same
    /// [`DomainError::InvalidCredentials`] after the same amount of hashing work.
    ///
    /// Brute force is stopped without letting anyone lock anyone out (OWASP's "device
    /// cookie" pattern). A client presenting a valid `device_token` issued to this very
    /// account is trusted: its failures count against its own small budget only
    /// ([`Limits::login_failures_per_device`]), and the account's and address's budgets do
    /// not stop it. Any other client (no token, a forged or expired one, one issued to
    /// another account, or one from before the account's last password change) is untrusted: its failures count against the account and against
    /// `client` (the caller's address), and once either budget is spent its attempts are
    /// refused. A refusal is [`DomainError::RateLimited`], decided before any password
    /// is checked.
    pub fn log_in(
        &self,
        login: &str,
        password: &str,
        client: Option<&str>,
        device_token: Option<&str>,
    ) -> Result<LoggedIn, DomainError> {
        self.log_in_from(
            login,
            password,
            LoginFrom {
                client,
                device_token,
                ..LoginFrom::default()
            },
        )
    }

    /// [`Self::log_in`], opening a login session labelled as `from` says (see
    /// [`crate::session::device_label`]): the answer carries the session's first refresh
    /// token, and its access token names the session. An invalid `device_name` is a
    /// validation error, reported before anything else.
    pub fn log_in_from(
        &self,
        login: &str,
        password: &str,
        from: LoginFrom<'_>,
    ) -> Result<LoggedIn, DomainError> {
        let device_label = crate::session::device_label(from.device_name, from.user_agent)
            .map_err(|e| DomainError::Validation(vec![e]))?;
        let (client, device_token) = (from.client, from.device_token);
        let login = login.trim();
        let found = self.users.find_credentials(login)?;
        let device = device_token
            .and_then(|token| self.devices.verify(token).ok())
            .filter(|device| {
                found.as_ref().is_some_and(|(user, _)| {
                    user.id == device.user_id && user.token_generation == device.generation
                })
            });
        let keys: Vec<_> = match &device {
            Some(device) => vec![(
                format!("login-device:{}", device.device_id),
                self.limits.login_failures_per_device,
            )],
            None => {
                let account = match &found {
                    Some((user, _)) => user.id.to_string(),
                    None => login.to_lowercase(),
                };
                [
                    (
                        format!("login:{account}"),
                        self.limits.login_failures_per_account,
                    ),
                    (
                        format!("login-hourly:{account}"),
                        self.limits.login_failures_per_account_hourly,
                    ),
                ]
                .into_iter()
                .chain(client.map(|c| {
                    (
                        format!("login-addr:{c}"),
                        self.limits.login_failures_per_address,
                    )
                }))
                .collect()
            }
        };
        for (key, quota) in &keys {
            self.throttle.check(key, *quota)?;
        }
        let fail = || {
            for (key, quota) in &keys {
                // Spending the budget can itself hit the limit; the answer is the same.
                let _ = self.throttle.acquire(key, *quota);
            }
            DomainError::InvalidCredentials
        };
        let Some((user, hash)) = found else {
            let decoy = self.decoy_hash();
            self.hasher.verify(password, &decoy);
            return Err(fail());
        };
        if !self.hasher.verify(password, &hash) || !user.is_active {
            return Err(fail());
        }
        let now = self.clock.now();
        let device_token = self
            .devices
            .issue(user.id, user.token_generation, now)
            .map_err(DomainError::Credentials)?;
        let (access, refresh) = self.sessions.open(&user, device_label, client)?;
        Ok(LoggedIn {
            access,
            device_token,
            refresh,
        })
    }

    /// The active user an access token was issued to. Refuses a token that is malformed,
    /// expired, logged out, of an ended session, or older than the user's last password
    /// change or deactivation. A token naming a session costs one store read for it, as one
    /// from before sessions costs one for its own revocation: never both.
    pub fn authenticate(&self, token: &str) -> Result<Authenticated, DomainError> {
        let claims = self.tokens.verify(token).map_err(|error| match error {
            TokenError::Expired => DomainError::TokenExpired,
            TokenError::Invalid(_) => DomainError::Unauthenticated("invalid token".into()),
        })?;
        let user = match self.users.find(claims.user_id)? {
            Some(user) if user.is_active => user,
            Some(_) => {
                return Err(DomainError::Unauthenticated(
                    "account is deactivated".into(),
                ));
            }
            None => {
                return Err(DomainError::Unauthenticated(
                    "token names an unknown user".into(),
                ));
            }
        };
        let withdrawn = match claims.session_id {
            Some(session) => !self.sessions.honours(user.id, session)?,
            None => self.revocations.is_revoked(&claims.token_id)?,
        };
        if claims.generation != user.token_generation || withdrawn {
            return Err(DomainError::Unauthenticated(
                "token has been revoked".into(),
            ));
        }
        Ok(Authenticated { user, claims })
    }

    /// Whether a connection opened with `token`, which said `claims` when it was opened, may
    /// stay open. A token of a login session holds as long as that session of an active
    /// user with the same token generation does, past the token's own expiry: a socket is
    /// as good as the session it was opened in, so that clients do not reconnect every time
    /// their short-lived access token is refreshed, and ending the session (or a password
    /// change, or deactivation) still closes it. A token from before sessions holds as
    /// [`Self::authenticate`] says, so its expiry ends it.
    pub fn connection_holds(&self, token: &str, claims: &TokenClaims) -> Result<(), DomainError> {
        let Some(session) = claims.session_id else {
            return self.authenticate(token).map(|_| ());
        };
        match self.users.find(claims.user_id)? {
            Some(user) if user.is_active => {
                if user.token_generation != claims.generation
                    || !self.sessions.honours(user.id, session)?
                {
                    return Err(DomainError::Unauthenticated(
                        "token has been revoked".into(),
                    ));
                }
                Ok(())
            }
            Some(_) => Err(DomainError::Unauthenticated(
                "account is deactivated".into(),
            )),
            None => Err(DomainError::Unauthenticated(
                "token names an unknown user".into(),
            )),
        }
    }

    /// Ends the login session of the token the caller presented (every token issued in it,
    /// and its refresh token), or, for a token from before sessions, revokes that token;
    /// the caller's other sessions stay.
    pub fn log_out(&self, session: &Authenticated) -> Result<(), DomainError> {
        match session.claims.session_id {
            Some(id) => self.sessions.end_quietly(session.user.id, id)?,
            None => self
                .revocations
                .revoke(&session.claims.token_id, session.claims.expires_at)?,
        }
        self.events.publish(DomainEvent::AccessRevoked {
            user_id: session.user.id,
            token_id: Some(session.claims.token_id.clone()),
            session_id: session.claims.session_id,
            audience: vec![session.user.id],
        });
        Ok(())
    }

    /// Deactivates the caller's own account after checking their password. Every token of
    /// the user stops working and their open connections are closed. The user stays a member
    /// of their conversations, but every group they own passes to another active member, as
    /// when an owner leaves ([`ConversationService::hand_over_groups_of`]); from now on nobody
    /// can start a conversation with them or add them to one.
    pub fn deactivate(&self, id: UserId, password: &str) -> Result<User, DomainError> {
        let stored = self
            .users
            .password_hash(id)?
            .ok_or_else(|| DomainError::not_found(Resource::User, id))?;
        if !self.hasher.verify(password, &stored) {
            return Err(DomainError::Forbidden("password is incorrect".into()));
        }
        let user = self
            .users
            .deactivate(id, self.clock.now())
            .map_err(|e| match e {
                StoreError::Missing => DomainError::not_found(Resource::User, id),
                other => other.into(),
            })?;
        self.withdraw(id)?;
        Ok(user)
    }

    /// What follows an account's deactivation, by its owner or by an admin: every token,
    /// session and socket of the user ends, and the groups they own pass to another active
    /// member.
    pub(super) fn withdraw(&self, id: UserId) -> Result<(), DomainError> {
        self.revoke_all(id)?;
        self.conversations.hand_over_groups_of(id)
    }

    /// Withdraws every token of the user and ends every session, so no refresh token
    /// survives. The raised token generation already refuses them all, so the event goes
    /// first: sockets close even if ending the sessions fails.
    fn revoke_all(&self, id: UserId) -> Result<(), DomainError> {
        self.events.publish(DomainEvent::AccessRevoked {
            user_id: id,
            token_id: None,
            session_id: None,
            audience: vec![id],
        });
        self.sessions.end_all_quietly(id)
    }

    /// The caller's own account, email included: only its owner sees this view.
    pub fn own_account(&self, id: UserId) -> Result<User, DomainError> {
        self.users
            .find(id)?
            .ok_or_else(|| DomainError::not_found(Resource::User, id))
    }

    /// Another user as any signed-in user sees them: no email.
    pub fn profile(&self, id: UserId) -> Result<PublicProfile, DomainError> {
        self.own_account(id).map(PublicProfile::from)
    }

    /// Users matching a search, as public profiles (the caller's own included).
    pub fn search(&self, query: &UserQuery) -> Result<Vec<PublicProfile>, DomainError> {
        Ok(self
            .users
            .search(query)?
            .into_iter()
            .map(PublicProfile::from)
            .collect())
    }

    /// Applies a profile edit. Changing the password requires the current one (a wrong one is
    /// forbidden, a missing one invalid) and revokes every token issued before it.
    pub fn update_profile(&self, id: UserId, changes: ProfileChanges) -> Result<User, DomainError> {
        let mut v = Validator::new();
        let email = changes
            .email
            .as_deref()
            .and_then(|raw| v.check(Email::parse(raw)));
        let full_name = changes
            .full_name
            .as_deref()
            .and_then(|raw| v.check(optional_line("full_name", Some(raw), FULL_NAME_MAX)));
        let avatar_url = changes
            .avatar_url
            .as_deref()
            .and_then(|raw| v.check(optional_url("avatar_url", Some(raw))));
        let bio = changes
            .bio
            .as_deref()
            .and_then(|raw| v.check(optional_text("bio", Some(raw), BIO_MAX)));
        let password = changes
            .password
            .as_deref()
            .and_then(|raw| v.check(Password::parse("password", raw)));
        if changes.password.is_some() && changes.current_password.is_none() {
            v.check::<()>(Err(crate::validation::FieldError::new(
                "current_password",
                "is required to change the password",
            )));
        }
        v.finish()?;

        let password_hash = match (password, changes.current_password) {
            (Some(password), Some(current)) => {
                let stored = self
                    .users
                    .password_hash(id)?
                    .ok_or_else(|| DomainError::not_found(Resource::User, id))?;
                if !self.hasher.verify(&current, &stored) {
                    return Err(DomainError::Forbidden(
                        "current_password is incorrect".into(),
                    ));
                }
                Some(
                    self.hasher
                        .hash(&password)
                        .map_err(DomainError::Credentials)?,
                )
            }
            _ => None,
        };
        let password_changed = password_hash.is_some();
        let update = ProfileUpdate {
            email,
            full_name,
            avatar_url,
            bio,
            password_hash,
        };
        let user = self
            .users
            .update(id, &update, self.clock.now())
            .map_err(|e| match e {
                StoreError::Missing => DomainError::not_found(Resource::User, id),
                other => conflict_or_store(other),
            })?;
        if password_changed {
            self.revoke_all(id)?;
        }
        Ok(user)
    }

    fn decoy_hash(&self) -> PasswordHash {
        self.decoy_hash
            .get_or_init(|| {
                let decoy = Password::parse("password", &UserId::new().to_string())
                    .expect("a UUID is a valid password");
                // A failing hasher fails every real login too; an empty decoy keeps the
                // unknown-user path failing the same way.
                self.hasher
                    .hash(&decoy)
                    .unwrap_or_else(|_| PasswordHash(String::new()))
            })
            .clone()
    }
}

fn conflict_or_store(error: StoreError) -> DomainError {
    match error {
        StoreError::Conflict { field } => DomainError::Conflict { field },
        other => other.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::World;

    fn signup(name: &str) -> SignupRequest {
        SignupRequest {
            username: name.into(),
            email: format!("{name}@example.com"),
            password: "correct horse".into(),
            full_name: Some(format!("{name} Example")),
        }
    }

    #[test]
    fn signing_up_stores_a_hash_never_the_password() {
        let world = World::new();
        let user = world
            .services
            .accounts
            .sign_up(signup("alice"), None)
            .unwrap();
        let hash = world.store.password_hash(user.id).unwrap().unwrap();
        assert_ne!(hash.0, "correct horse");
        assert!(world.hasher.verify("correct horse", &hash));
    }

    #[test]
    fn every_invalid_signup_field_is_reported_at_once() {
        let world = World::new();
        let err = world
            .services
            .accounts
            .sign_up(
                SignupRequest {
                    username: "a".into(),
                    email: "nope".into(),
                    password: "short".into(),
                    full_name: None,
                },
                None,
            )
            .unwrap_err();
        let DomainError::Validation(errors) = err else {
            panic!("expected a validation error, got {err:?}");
        };
        let fields: Vec<_> = errors.iter().map(|e| e.field).collect();
        assert_eq!(fields, ["username", "email", "password"]);
    }

    #[test]
    fn usernames_are_unique_ignoring_case_and_emails_are_unique() {
        let world = World::new();
        world
            .services
            .accounts
            .sign_up(signup("alice"), None)
            .unwrap();
        let mut same_name = signup("ALICE");
        same_name.email = "other@example.com".into();
        assert!(matches!(
            world.services.accounts.sign_up(same_name, None),
            Err(DomainError::Conflict { field: "username" })
        ));
        let mut same_email = signup("bob");
        same_email.email = "Alice@Example.com".into();
        assert!(matches!(
            world.services.accounts.sign_up(same_email, None),
            Err(DomainError::Conflict { field: "email" })
        ));
    }

    #[test]
    fn login_accepts_username_or_email_and_the_token_identifies_the_user() {
        let world = World::new();
        let alice = world
            .services
            .accounts
            .sign_up(signup("alice"), None)
            .unwrap();
        for login in ["alice", "alice@example.com", "ALICE"] {
            let token = world
                .services
                .accounts
                .log_in(login, "correct horse", None, None)
                .unwrap();
            let me = world
                .services
                .accounts
                .authenticate(&token.access.token)
                .unwrap();
            assert_eq!(me.user.id, alice.id);
        }
    }

    #[test]
    fn unknown_user_and_wrong_password_fail_alike_after_hashing_work() {
        let world = World::new();
        world
            .services
            .accounts
            .sign_up(signup("alice"), None)
            .unwrap();
        let before = world.hasher.verifications();
        let wrong = world
            .services
            .accounts
            .log_in("alice", "wrong password", None, None);
        let unknown = world
            .services
            .accounts
            .log_in("nobody", "wrong password", None, None);
        assert!(matches!(wrong, Err(DomainError::InvalidCredentials)));
        assert!(matches!(unknown, Err(DomainError::InvalidCredentials)));
        assert_eq!(world.hasher.verifications() - before, 2);
    }

    #[test]
    fn changing_the_password_requires_the_current_one() {
        let world = World::new();
        let alice = world
            .services
            .accounts
            .sign_up(signup("alice"), None)
            .unwrap();
        let change = |current: Option<&str>| ProfileChanges {
            password: Some("new password!".into()),
            current_password: current.map(Into::into),
            ..Default::default()
        };
        let accounts = &world.services.accounts;
        assert!(matches!(
            accounts.update_profile(alice.id, change(None)),
            Err(DomainError::Validation(_))
        ));
        assert!(matches!(
            accounts.update_profile(alice.id, change(Some("wrong password"))),
            Err(DomainError::Forbidden(_))
        ));
        let before = accounts
            .log_in("alice", "correct horse", None, None)
            .unwrap();
        accounts
            .update_profile(alice.id, change(Some("correct horse")))
            .unwrap();
        assert!(matches!(
            accounts.authenticate(&before.access.token),
            Err(DomainError::Unauthenticated(_))
        ));
        assert!(
            accounts
                .log_in("alice", "correct horse", None, None)
                .is_err()
        );
        assert!(
            accounts
                .log_in("alice", "new password!", None, None)
                .is_ok()
        );
    }

    #[test]
    fn a_profile_edit_changes_only_the_fields_given_and_blank_clears() {
        let world = World::new();
        let alice = world
            .services
            .accounts
            .sign_up(signup("alice"), None)
            .unwrap();
        let updated = world
            .services
            .accounts
            .update_profile(
                alice.id,
                ProfileChanges {
                    bio: Some("hello".into()),
                    full_name: Some("  ".into()),
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(updated.bio.as_deref(), Some("hello"));
        assert_eq!(updated.full_name, None);
        assert_eq!(updated.email, alice.email);
    }

    #[test]
    fn an_expired_token_is_told_apart_from_an_invalid_one() {
        let world = World::new();
        let accounts = &world.services.accounts;
        assert!(matches!(
            accounts.authenticate("expired:whatever"),
            Err(DomainError::TokenExpired)
        ));
        assert!(matches!(
            accounts.authenticate("forged"),
            Err(DomainError::Unauthenticated(_))
        ));
    }

    #[test]
    fn a_deactivated_user_can_neither_log_in_nor_use_a_token() {
        let world = World::new();
        let alice = world
            .services
            .accounts
            .sign_up(signup("alice"), None)
            .unwrap();
        let token = world
            .services
            .accounts
            .log_in("alice", "correct horse", None, None)
            .unwrap();
        world
            .store
            .deactivate(alice.id, chrono::Utc::now())
            .unwrap();
        assert!(
            world
                .services
                .accounts
                .log_in("alice", "correct horse", None, None)
                .is_err()
        );
        assert!(matches!(
            world.services.accounts.authenticate(&token.access.token),
            Err(DomainError::Unauthenticated(_))
        ));
    }

    #[test]
    fn logging_out_revokes_only_the_token_used() {
        let world = World::new();
        world
            .services
            .accounts
            .sign_up(signup("alice"), None)
            .unwrap();
        let accounts = &world.services.accounts;
        let phone = accounts
            .log_in("alice", "correct horse", None, None)
            .unwrap();
        let laptop = accounts
            .log_in("alice", "correct horse", None, None)
            .unwrap();
        let session = accounts.authenticate(&phone.access.token).unwrap();
        world.events.take();
        accounts.log_out(&session).unwrap();
        assert!(accounts.authenticate(&phone.access.token).is_err());
        assert!(accounts.authenticate(&laptop.access.token).is_ok());
        assert!(matches!(
            world.events.take().as_slice(),
            [DomainEvent::AccessRevoked {
                token_id: Some(_),
                ..
            }]
        ));
    }

    #[test]
    fn deactivating_needs_the_password_and_ends_every_session() {
        let world = World::new();
        let alice = world
            .services
            .accounts
            .sign_up(signup("alice"), None)
            .unwrap();
        let accounts = &world.services.accounts;
        let token = accounts
            .log_in("alice", "correct horse", None, None)
            .unwrap();
        assert!(matches!(
            accounts.deactivate(alice.id, "wrong"),
            Err(DomainError::Forbidden(_))
        ));
        let deactivated = accounts.deactivate(alice.id, "correct horse").unwrap();
        assert!(!deactivated.is_active);
        assert!(accounts.authenticate(&token.access.token).is_err());
        assert!(
            accounts
                .log_in("alice", "correct horse", None, None)
                .is_err()
        );
    }

    /// Ten failed logins for alice, each from another address: her account's budget is spent.
    fn lock_out(accounts: &AccountService, login: &str) {
        for i in 0..10 {
            assert!(matches!(
                accounts.log_in(login, "guess", Some(&format!("203.0.113.{i}")), None),
                Err(DomainError::InvalidCredentials)
            ));
        }
    }

    #[test]
    fn failures_by_others_do_not_lock_out_a_client_with_a_device_token() {
        let world = World::new();
        world.user("alice");
        let accounts = &world.services.accounts;
        let phone = accounts
            .log_in("alice", "correct horse", Some("198.51.100.1"), None)
            .unwrap();
        lock_out(accounts, "alice");
        // The attacker, and any client without a device token, is still refused.
        assert!(matches!(
            accounts.log_in("alice", "correct horse", Some("192.0.2.7"), None),
            Err(DomainError::RateLimited { .. })
        ));
        let again = accounts
            .log_in(
                "alice",
                "correct horse",
                Some("192.0.2.7"),
                Some(&phone.device_token),
            )
            .unwrap();
        assert!(accounts.authenticate(&again.access.token).is_ok());
        // Each login hands out a fresh device token, and it is trusted too.
        assert_ne!(again.device_token, phone.device_token);
        assert!(
            accounts
                .log_in("alice", "correct horse", None, Some(&again.device_token))
                .is_ok()
        );
    }

    #[test]
    fn a_forged_device_token_or_one_for_another_account_gets_no_bypass() {
        let world = World::new();
        world.user("alice");
        world.user("bob");
        let accounts = &world.services.accounts;
        let bobs = accounts
            .log_in("bob", "correct horse", None, None)
            .unwrap()
            .device_token;
        let alices = accounts
            .log_in("alice", "correct horse", None, None)
            .unwrap()
            .device_token;
        lock_out(accounts, "alice");
        let forged = alices.replacen("device:", "forged:", 1);
        let other_generation = alices.replacen(":0:", ":1:", 1);
        for token in [
            bobs.as_str(),
            forged.as_str(),
            other_generation.as_str(),
            "",
            "device:not-a-user:0:1",
        ] {
            assert!(
                matches!(
                    accounts.log_in("alice", "correct horse", None, Some(token)),
                    Err(DomainError::RateLimited { .. })
                ),
                "{token}"
            );
        }
    }

    #[test]
    fn a_password_change_ends_the_trust_of_devices_that_logged_in_before_it() {
        let world = World::new();
        let alice = world.user("alice");
        let accounts = &world.services.accounts;
        let old_device = accounts
            .log_in("alice", "correct horse", None, None)
            .unwrap()
            .device_token;
        let changed = ProfileChanges {
            password: Some("new password!".into()),
            current_password: Some("correct horse".into()),
            ..Default::default()
        };
        accounts.update_profile(alice, changed).unwrap();
        let new_device = accounts
            .log_in("alice", "new password!", None, None)
            .unwrap()
            .device_token;
        lock_out(accounts, "alice");
        assert!(matches!(
            accounts.log_in("alice", "new password!", None, Some(&old_device)),
            Err(DomainError::RateLimited { .. })
        ));
        assert!(
            accounts
                .log_in("alice", "new password!", None, Some(&new_device))
                .is_ok()
        );
    }

    #[test]
    fn a_device_past_its_own_failure_budget_is_refused_but_the_account_is_not() {
        let world = World::new();
        world.user("alice");
        let accounts = &world.services.accounts;
        let device = accounts
            .log_in("alice", "correct horse", None, None)
            .unwrap()
            .device_token;
        let budget = Limits::default().login_failures_per_device.unwrap().burst;
        for _ in 0..budget {
            assert!(matches!(
                accounts.log_in("alice", "guess", Some("192.0.2.7"), Some(&device)),
                Err(DomainError::InvalidCredentials)
            ));
        }
        let before = world.hasher.verifications();
        assert!(matches!(
            accounts.log_in("alice", "correct horse", Some("192.0.2.7"), Some(&device)),
            Err(DomainError::RateLimited { .. })
        ));
        assert_eq!(world.hasher.verifications(), before);
        // The device's failures were its own: neither the account nor the address is locked.
        assert!(
            accounts
                .log_in("alice", "correct horse", Some("192.0.2.7"), None)
                .is_ok()
        );
    }

    #[test]
    fn others_see_a_profile_without_the_email_and_find_it_only_by_the_whole_address() {
        let world = World::new();
        let accounts = &world.services.accounts;
        let bob = world.user("bob");
        assert_eq!(
            accounts.own_account(bob).unwrap().email.as_str(),
            "bob@example.com"
        );
        let profile = accounts.profile(bob).unwrap();
        assert_eq!(profile.username.as_str(), "bob");
        let search = |text: &str| {
            accounts
                .search(&UserQuery {
                    text: Some(text.into()),
                    ..Default::default()
                })
                .unwrap()
                .into_iter()
                .map(|p| p.id)
                .collect::<Vec<_>>()
        };
        assert_eq!(search("BOB@example.com"), [bob]);
        assert!(search("@example.com").is_empty());
        assert!(search("bob@example").is_empty());
    }

    #[test]
    fn after_ten_failures_logins_are_refused_without_checking_the_password() {
        let world = World::new();
        world
            .services
            .accounts
            .sign_up(signup("alice"), None)
            .unwrap();
        let accounts = &world.services.accounts;
        for _ in 0..10 {
            assert!(matches!(
                accounts.log_in("alice", "guess", Some("203.0.113.9"), None),
                Err(DomainError::InvalidCredentials)
            ));
        }
        let before = world.hasher.verifications();
        // Even the right password is refused now, and no hash is computed for it.
        assert!(matches!(
            accounts.log_in("alice", "correct horse", Some("198.51.100.1"), None),
            Err(DomainError::RateLimited { .. })
        ));
        assert_eq!(world.hasher.verifications(), before);
        // The address that failed is refused for other accounts too.
        world.user("bob");
        assert!(matches!(
            accounts.log_in("bob", "correct horse", Some("203.0.113.9"), None),
            Err(DomainError::RateLimited { .. })
        ));
        assert!(
            accounts
                .log_in("bob", "correct horse", Some("198.51.100.1"), None)
                .is_ok()
        );
    }
}
