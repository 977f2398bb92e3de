//! Webhook endpoints and dead letters, as admins register and read them. A secret goes in,
//! and never comes out.

use chat_domain::webhook::{DeliveryState, Webhook, WebhookDelivery};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookBody {
    /// Where events are POSTed: an `http://` or `https://` URL, without user name or
    /// password, at most 2048 characters.
    #[schema(
        example = "https://push.example.com/chatd",
        min_length = 1,
        max_length = 2048
    )]
    pub url: String,
    /// The key every delivery is signed with (`Chatd-Signature`): 16 to 256 characters,
    /// random. Stored to sign with; never shown again.
    #[schema(
        example = "whsec_3f9c1e0b7a6d4c2e8f1a",
        min_length = 16,
        max_length = 256
    )]
    pub secret: String,
}

/// A registered endpoint, without its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookResponse {
    pub id: Uuid,
    #[schema(example = "https://push.example.com/chatd")]
    pub url: String,
    /// The admin who registered it.
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

impl From<Webhook> for WebhookResponse {
    fn from(w: Webhook) -> Self {
        Self {
            id: w.id.0,
            url: w.url.as_str().to_owned(),
            created_by: w.created_by.map(Uuid::from),
            created_at: w.created_at,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeadLetterParams {
    /// Only this endpoint's dead letters (an unknown endpoint is 404).
    pub webhook_id: Option<Uuid>,
    /// Only dead letters with an id below this one: the last id of the previous page.
    pub before: Option<i64>,
    /// 1–100, default 50.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// An event given up on for one endpoint, or one replayed (then `state` is `pending`).
#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetterResponse {
    /// The dead letter's id: the one to replay.
    pub id: i64,
    pub webhook_id: Uuid,
    /// The event's id, the same in every attempt (receivers de-duplicate by it).
    pub event_id: Uuid,
    #[schema(example = "message.created")]
    pub event_type: String,
    /// `dead`, or `pending` once replayed.
    #[schema(example = "dead")]
    pub state: String,
    pub attempts: u32,
    pub first_attempt_at: Option<DateTime<Utc>>,
    /// Why the last attempt failed: a status code or the kind of failure.
    #[schema(example = "answered 500")]
    pub last_error: Option<String>,
    /// When the change it announces happened.
    pub created_at: DateTime<Utc>,
}

impl From<WebhookDelivery> for DeadLetterResponse {
    fn from(d: WebhookDelivery) -> Self {
        Self {
            id: d.id,
            webhook_id: d.webhook_id.0,
            event_id: d.event_id,
            event_type: d.kind.as_str().to_owned(),
            state: match d.state {
                DeliveryState::Pending => "pending",
                DeliveryState::Dead => "dead",
            }
            .to_owned(),
            attempts: d.attempts,
            first_attempt_at: d.first_attempt_at,
            last_error: d.last_error,
            created_at: d.created_at,
        }
    }
}
