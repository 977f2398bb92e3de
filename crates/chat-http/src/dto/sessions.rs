//! Bodies of the session routes: redeeming a refresh token and the list of signed-in devices.

use chat_domain::service::{Refreshed, SessionView};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::dto::time::rfc3339;

/// A refresh token to redeem.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RefreshBody {
    /// The `refresh_token` of the last login or refresh. It is spent by this call.
    #[schema(min_length = 1)]
    pub refresh_token: String,
}

/// A new access token and the refresh token that replaces the one redeemed.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefreshResponse {
    pub access_token: String,
    /// Always `bearer`.
    #[schema(example = "bearer")]
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    #[schema(example = 900)]
    pub expires_in: i64,
    /// Single use: redeem it at `POST /api/v1/auth/refresh` for the next pair. Presenting
    /// one that was already redeemed ends its whole session.
    pub refresh_token: String,
    /// Seconds until the refresh token expires.
    #[schema(example = 5_184_000)]
    pub refresh_expires_in: i64,
    /// The login session both tokens belong to.
    pub session_id: Uuid,
}

impl From<Refreshed> for RefreshResponse {
    fn from(refreshed: Refreshed) -> Self {
        Self {
            access_token: refreshed.access.token,
            token_type: "bearer",
            expires_in: refreshed.access.expires_in.num_seconds(),
            refresh_token: refreshed.refresh.token,
            refresh_expires_in: refreshed.refresh.expires_in.num_seconds(),
            session_id: refreshed.refresh.session_id.as_uuid(),
        }
    }
}

/// One of your login sessions: a device you are signed in on.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SessionResponse {
    pub id: Uuid,
    /// The `device_name` given at login, or else the client's user agent.
    pub device: Option<String>,
    /// The address it logged in from.
    pub client_address: Option<String>,
    #[serde(serialize_with = "rfc3339")]
    pub created_at: DateTime<Utc>,
    /// When it last logged in or refreshed.
    #[serde(serialize_with = "rfc3339")]
    pub last_used_at: DateTime<Utc>,
    /// Whether this request's token belongs to it.
    pub current: bool,
}

impl From<SessionView> for SessionResponse {
    fn from(view: SessionView) -> Self {
        let session = view.session;
        Self {
            id: session.id.as_uuid(),
            device: session.device,
            client_address: session.client_address,
            created_at: session.created_at,
            last_used_at: session.last_used_at,
            current: view.current,
        }
    }
}

/// How many sessions were ended.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RevokedResponse {
    pub ended: usize,
}
