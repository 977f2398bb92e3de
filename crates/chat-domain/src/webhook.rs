//! Webhooks: the endpoints admins register, the outbox of events written in the same
//! transaction as the change each announces, and the deliveries of those events to every
//! endpoint, with their retries and dead letters.
//!
//! The stores keep references (kind, ids, seq), never payloads: what is sent is built at
//! delivery time from the entities themselves (see
//! [`crate::service::WebhookService::payload`]), so the outbox costs an append a few small
//! columns, and the JSON shape lives only at the HTTP edge.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::error::DomainError;
use crate::message::Seq;
use crate::validation::FieldError;
use crate::{ConversationId, MessageId, UserId};

/// Identifies a registered webhook endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WebhookId(pub Uuid);

impl WebhookId {
    pub fn new() -> Self {
        Self(Uuid::new_v4())
    }
}

impl Default for WebhookId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Display for WebhookId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// An endpoint's URL: `http://` or `https://`, a host, no whitespace or control characters,
/// at most [`WebhookUrl::MAX_LEN`] bytes. Valid by construction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl(String);

impl WebhookUrl {
    pub const MAX_LEN: usize = 2048;

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let refuse = |why: &str| Err(FieldError::new("url", why));
        if raw.len() > Self::MAX_LEN {
            return refuse("must be at most 2048 characters");
        }
        if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return refuse("must not contain spaces or control characters");
        }
        let lower = raw.to_ascii_lowercase();
        let Some(rest) = lower
            .strip_prefix("https://")
            .or_else(|| lower.strip_prefix("http://"))
        else {
            return refuse("must be an http:// or https:// URL");
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        // No credentials in the URL: they would be shown to every admin who lists it.
        if authority.contains('@') {
            return refuse("must not carry a user name or password");
        }
        let host = match authority.strip_prefix('[') {
            // An IPv6 literal: `[::1]:8080`.
            Some(v6) => match v6.split_once(']') {
                Some((host, port)) if !host.is_empty() => {
                    if !(port.is_empty() || valid_port(port.strip_prefix(':'))) {
                        return refuse("has an invalid port");
                    }
                    host
                }
                _ => return refuse("has an invalid host"),
            },
            None => match authority.rsplit_once(':') {
                Some((host, port)) => {
                    if !valid_port(Some(port)) {
                        return refuse("has an invalid port");
                    }
                    host
                }
                None => authority,
            },
        };
        let host_ok = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'));
        if !host_ok {
            return refuse("has an invalid host");
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn valid_port(port: Option<&str>) -> bool {
    port.is_some_and(|p| !p.is_empty() && p.len() <= 5 && p.parse::<u16>().is_ok_and(|p| p > 0))
}

/// The secret an endpoint's deliveries are signed with. It is needed to sign, so it is kept
/// as given; it is never shown again (not listed, not logged: its `Debug` hides it).
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    pub const MIN_LEN: usize = 16;
    pub const MAX_LEN: usize = 256;

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let len = raw.chars().count();
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&len) {
            return Err(FieldError::new(
                "secret",
                "must be 16 to 256 characters (use a random string)",
            ));
        }
        if raw.chars().any(char::is_control) {
            return Err(FieldError::new(
                "secret",
                "must not contain control characters",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The secret's bytes, to sign with. Never log or return them.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(..)")
    }
}

/// A registered endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: WebhookId,
    pub url: WebhookUrl,
    pub secret: WebhookSecret,
    pub created_by: Option<UserId>,
    pub created_at: DateTime<Utc>,
}

/// What an event announces. Stored as [`EventKind::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    MessageCreated,
    MessageEdited,
    MessageDeleted,
    ConversationCreated,
    ConversationRenamed,
    MemberAdded,
    MemberRemoved,
    ReportCreated,
    /// A member with no open socket has a new message (see
    /// [`crate::service::WebhookService`]); made from a `message.created` when it is fanned
    /// out, never written by a change.
    Notification,
}

impl EventKind {
    pub const ALL: [EventKind; 9] = [
        EventKind::MessageCreated,
        EventKind::MessageEdited,
        EventKind::MessageDeleted,
        EventKind::ConversationCreated,
        EventKind::ConversationRenamed,
        EventKind::MemberAdded,
        EventKind::MemberRemoved,
        EventKind::ReportCreated,
        EventKind::Notification,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::MessageCreated => "message.created",
            EventKind::MessageEdited => "message.edited",
            EventKind::MessageDeleted => "message.deleted",
            EventKind::ConversationCreated => "conversation.created",
            EventKind::ConversationRenamed => "conversation.renamed",
            EventKind::MemberAdded => "member.added",
            EventKind::MemberRemoved => "member.removed",
            EventKind::ReportCreated => "report.created",
            EventKind::Notification => "notification",
        }
    }

    pub fn parse(stored: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == stored)
    }
}

/// What an event is about: references to the entities, read again when it is sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventRefs {
    pub conversation_id: Option<ConversationId>,
    pub message_id: Option<MessageId>,
    /// The member added or removed; the recipient of a notification.
    pub user_id: Option<UserId>,
    /// The report, for `report.created`.
    pub report_id: Option<Uuid>,
    /// The change's place in the change feed (a message's seq, an edit's change seq).
    pub seq: Option<Seq>,
}

/// An event a write put in the outbox, in the write's own transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEvent {
    /// Increasing in the order the events were written.
    pub id: i64,
    pub kind: EventKind,
    pub refs: EventRefs,
    pub created_at: DateTime<Utc>,
}

/// One event to deliver to every endpoint, made from an outbox event when it is fanned out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    /// The outbox event it comes from: it is queued only if this fan-out takes that event.
    pub source: i64,
    /// The id receivers de-duplicate by; the same for every attempt and every endpoint.
    pub event_id: Uuid,
    pub kind: EventKind,
    pub refs: EventRefs,
    /// How many messages a notification stands for (a burst collapsed into one); 1 otherwise.
    pub count: u32,
    pub created_at: DateTime<Utc>,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Waiting for its next attempt, or being attempted under a lease.
    Pending,
    /// Given up on after the retry period; an admin may replay it.
    Dead,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Dead => "dead",
        }
    }

    pub fn parse(stored: &str) -> Option<Self> {
        match stored {
            "pending" => Some(DeliveryState::Pending),
            "dead" => Some(DeliveryState::Dead),
            _ => None,
        }
    }
}

/// One event on its way to one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookDelivery {
    /// Increasing in the order deliveries were queued: within one endpoint and conversation,
    /// the order they are sent in.
    pub id: i64,
    pub webhook_id: WebhookId,
    pub event_id: Uuid,
    pub kind: EventKind,
    pub refs: EventRefs,
    pub count: u32,
    pub created_at: DateTime<Utc>,
    pub state: DeliveryState,
    /// Attempts made so far.
    pub attempts: u32,
    pub first_attempt_at: Option<DateTime<Utc>>,
    /// When it is due, or for a claimed one when its lease runs out; `None` for a dead
    /// letter.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Why the last attempt failed (a status code or a connection error; never a body).
    pub last_error: Option<String>,
}

/// A claim on deliveries: who holds them and until when. A node that dies mid-send loses
/// its lease when it runs out, and another node sends the delivery again (with the same
/// event id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The holder: one per dispatcher (node).
    pub holder: String,
    pub until: DateTime<Utc>,
}

/// How a failed delivery is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait after the first failure; doubled after each further one.
    pub base: Duration,
    /// The longest wait between two attempts.
    pub max_delay: Duration,
    /// After this long since the first attempt, a failure makes the delivery a dead letter.
    pub give_up_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::seconds(5),
            max_delay: Duration::hours(1),
            give_up_after: Duration::hours(24),
        }
    }
}

impl RetryPolicy {
    /// When to try again after the `attempts`th failed attempt, `jitter` (in `0.0..1.0`)
    /// spreading the wait over its upper half so that endpoints coming back are not hit by
    /// every retry at once; `None` once the delivery has been tried for
    /// [`Self::give_up_after`].
    pub fn next_attempt(
        &self,
        attempts: u32,
        first_attempt_at: DateTime<Utc>,
        now: DateTime<Utc>,
        jitter: f64,
    ) -> Option<DateTime<Utc>> {
        if now - first_attempt_at >= self.give_up_after {
            return None;
        }
        let doublings = attempts.saturating_sub(1).min(30);
        let full = self
            .base
            .checked_mul(1_i32 << doublings.min(30))
            .unwrap_or(self.max_delay)
            .min(self.max_delay);
        let millis = full.num_milliseconds() as f64;
        let wait = millis / 2.0 + millis / 2.0 * jitter.clamp(0.0, 1.0);
        Some(now + Duration::milliseconds(wait as i64))
    }
}

/// A registration as an admin asked for it, parsed.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub url: WebhookUrl,
    pub secret: WebhookSecret,
}

impl NewWebhook {
    /// Parses both fields, reporting every invalid one.
    pub fn parse(url: &str, secret: &str) -> Result<Self, DomainError> {
        match (WebhookUrl::parse(url), WebhookSecret::parse(secret)) {
            (Ok(url), Ok(secret)) => Ok(Self { url, secret }),
            (url, secret) => Err(DomainError::Validation(
                [url.err(), secret.err()].into_iter().flatten().collect(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_must_be_http_or_https_with_a_host() {
        for good in [
            "https://example.com/hook",
            "http://127.0.0.1:8080/x?y=1",
            "HTTPS://Example.com",
            "http://[::1]:9000/",
            "https://hooks.example.com",
        ] {
            assert!(WebhookUrl::parse(good).is_ok(), "{good} is a valid URL");
        }
        for bad in [
            "",
            "ftp://example.com",
            "https://",
            "https:///path",
            "https://exa mple.com",
            "https://user:pw@example.com/",
            "https://example.com:0/",
            "https://example.com:99999/",
            "https://[::1/",
            "javascript:alert(1)",
            "https://exa\u{0}mple.com",
        ] {
            assert!(WebhookUrl::parse(bad).is_err(), "{bad:?} is refused");
        }
    }

    #[test]
    fn a_secret_is_never_shown_by_debug_and_must_be_long_enough() {
        assert!(WebhookSecret::parse("short").is_err());
        let secret = WebhookSecret::parse("a-long-enough-secret").unwrap();
        assert!(!format!("{secret:?}").contains("long-enough"));
        assert_eq!(secret.expose(), "a-long-enough-secret");
    }

    #[test]
    fn retries_back_off_exponentially_within_their_jitter_and_stop_after_the_period() {
        let policy = RetryPolicy {
            base: Duration::seconds(10),
            max_delay: Duration::seconds(100),
            give_up_after: Duration::hours(24),
        };
        let start = DateTime::<Utc>::from_timestamp(1_000_000, 0).unwrap();
        let wait =
            |attempts, jitter| policy.next_attempt(attempts, start, start, jitter).unwrap() - start;
        assert_eq!(wait(1, 0.0), Duration::seconds(5));
        assert_eq!(wait(1, 1.0), Duration::seconds(10));
        assert_eq!(wait(2, 1.0), Duration::seconds(20));
        assert_eq!(wait(3, 0.0), Duration::seconds(20));
        assert_eq!(wait(20, 1.0), Duration::seconds(100), "capped");
        let late = start + Duration::hours(24);
        assert_eq!(policy.next_attempt(7, start, late, 0.5), None);
    }

    #[test]
    fn every_event_kind_reads_back_from_what_is_stored() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(EventKind::parse("nothing"), None);
    }
}
