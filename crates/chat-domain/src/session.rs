//! Login sessions: one per successful login, the family of every refresh token rotated from
//! it. A session is what a user sees in their list of signed-in devices and what they end
//! when they sign one out; every access token issued in it names it (`sid`), so ending it
//! stops them at once.
//!
//! A refresh token is single use: redeeming it rotates the session onto a new one. Only its
//! SHA-256 is stored, so a copy of the database grants nothing. Presenting a refresh token
//! of a live session that is not its current one means two parties hold the family (the
//! legitimate client rotated past a token someone else kept, or the other way round): the
//! whole session is ended ("theft detection", OAuth 2.0 Security BCP §4.14).

use chrono::{DateTime, Utc};

use crate::validation::{FieldError, allowed_in_line};
use crate::{SessionId, UserId};

/// The longest device label kept, in characters. A longer user agent is cut.
pub const DEVICE_MAX: usize = 200;

/// The longest `device_name` a client may give.
pub const DEVICE_NAME_MAX: usize = 100;

/// The SHA-256 of a refresh token, as stored: the token itself is never kept.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RefreshHash(pub String);

/// A refresh token as handed to the client, once; and what the store keeps of it.
#[derive(Debug, Clone)]
pub struct MintedRefresh {
    pub token: String,
    pub hash: RefreshHash,
}

/// What a presented refresh token says: which session it claims to belong to, and its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentedRefresh {
    pub session_id: SessionId,
    pub hash: RefreshHash,
}

/// One login of a user, as the store keeps it (without its refresh token's hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: SessionId,
    pub user_id: UserId,
    /// The name the client gave at login, or else its user agent.
    pub device: Option<String>,
    /// The address the client logged in from.
    pub client_address: Option<String>,
    pub created_at: DateTime<Utc>,
    /// When it last logged in or refreshed.
    pub last_used_at: DateTime<Utc>,
    /// When its current refresh token stops working.
    pub expires_at: DateTime<Utc>,
    /// The user's token generation at login: a password change or deactivation raises it,
    /// and a session from before that can no longer be refreshed.
    pub generation: i64,
    /// Ended: logged out, signed out from another device, or its family was reused.
    pub revoked: bool,
}

impl Session {
    /// Whether its access tokens are honoured: not ended. Its refresh token has its own
    /// expiry; an access token already issued lives out its own short lifetime.
    pub fn is_live(&self) -> bool {
        !self.revoked
    }
}

/// A session to store at login, with the hash of its first refresh token.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub session: Session,
    pub refresh: RefreshHash,
}

/// What redeeming a refresh token did; see [`crate::ports::SessionStore::rotate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The token was the session's current one: it is spent, and the session now answers to
    /// the next one. The session as it now stands.
    Rotated(Session),
    /// The token named a live session but is not its current one: the session was ended
    /// just now. The session as it stood before.
    Reused(Session),
    /// No live, unexpired session answers to the token.
    Unknown,
}

/// The label a session is listed under: the client's `device_name` if it gave one (one line,
/// at most [`DEVICE_NAME_MAX`] characters; blank is none), or else its user agent, cut to
/// [`DEVICE_MAX`] characters and stripped of anything but printable characters.
pub fn device_label(
    device_name: Option<&str>,
    user_agent: Option<&str>,
) -> Result<Option<String>, FieldError> {
    if let Some(name) = device_name.map(str::trim).filter(|n| !n.is_empty()) {
        if name.chars().count() > DEVICE_NAME_MAX {
            return Err(FieldError::new(
                "device_name",
                format!("must be at most {DEVICE_NAME_MAX} characters long"),
            ));
        }
        if !name.chars().all(allowed_in_line) {
            return Err(FieldError::new(
                "device_name",
                "must be one line without control or text-direction characters",
            ));
        }
        return Ok(Some(name.to_owned()));
    }
    let agent: String = user_agent
        .unwrap_or_default()
        .chars()
        .filter(|c| allowed_in_line(*c))
        .take(DEVICE_MAX)
        .collect();
    let agent = agent.trim();
    Ok((!agent.is_empty()).then(|| agent.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_device_name_wins_over_the_user_agent() {
        assert_eq!(
            device_label(Some("  Alice's phone "), Some("curl/8")).unwrap(),
            Some("Alice's phone".into())
        );
        assert_eq!(
            device_label(Some("  "), Some("curl/8")).unwrap(),
            Some("curl/8".into())
        );
        assert_eq!(device_label(None, None).unwrap(), None);
    }

    #[test]
    fn a_bad_device_name_is_refused_but_a_bad_user_agent_is_cleaned() {
        assert!(device_label(Some(&"x".repeat(DEVICE_NAME_MAX + 1)), None).is_err());
        assert!(device_label(Some("two\nlines"), None).is_err());
        assert!(device_label(Some("a\u{202E}b"), None).is_err());
        let agent = format!("Mozilla\u{1}/5.0 {}", "y".repeat(500));
        let label = device_label(None, Some(&agent)).unwrap().unwrap();
        assert!(label.starts_with("Mozilla/5.0 "));
        assert_eq!(label.chars().count(), DEVICE_MAX);
    }
}
