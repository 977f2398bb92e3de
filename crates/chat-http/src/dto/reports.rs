//! Reports of messages and users for the server admins.

use chat_domain::report::Report;
use chat_domain::service::ReportRequest;
use chat_domain::{MessageId, UserId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// A report: give exactly one of `message_id` and `user_id`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportBody {
    /// A message you can see.
    pub message_id: Option<Uuid>,
    /// Any user but you.
    pub user_id: Option<Uuid>,
    /// Why: 1–1000 characters once trimmed.
    #[schema(example = "spam", min_length = 1, max_length = 1000)]
    pub reason: String,
}

impl From<ReportBody> for ReportRequest {
    fn from(body: ReportBody) -> Self {
        Self {
            message_id: body.message_id.map(MessageId::from),
            user_id: body.user_id.map(UserId::from),
            reason: body.reason,
        }
    }
}

/// A stored report.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReportResponse {
    pub id: Uuid,
    pub reporter_id: Uuid,
    /// The reported message, for a report of a message.
    pub message_id: Option<Uuid>,
    /// Whom the report is about: the reported user, or the reported message's sender.
    pub user_id: Uuid,
    pub reason: String,
    /// `open` or `resolved`.
    #[schema(example = "open")]
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// The admin who resolved it.
    pub resolved_by: Option<Uuid>,
    /// The admin's note on resolving it.
    pub note: Option<String>,
}

impl From<Report> for ReportResponse {
    fn from(report: Report) -> Self {
        let status = report.status().as_str().to_owned();
        let resolution = report.resolution;
        Self {
            id: report.id.as_uuid(),
            reporter_id: report.reporter_id.as_uuid(),
            message_id: report.message_id.map(|m| m.as_uuid()),
            user_id: report.subject_id.as_uuid(),
            reason: report.reason,
            status,
            created_at: report.created_at,
            resolved_at: resolution.as_ref().map(|r| r.resolved_at),
            resolved_by: resolution.as_ref().map(|r| r.resolved_by.as_uuid()),
            note: resolution.and_then(|r| r.note),
        }
    }
}
