//! What server admins send and get back.

use chat_domain::admin::AuditRecord;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::users::UserResponse;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AdminUserParams {
    /// A case-insensitive substring of the username or full name, or a whole email address.
    pub q: Option<String>,
    /// 1–200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the page before.
    #[param(pattern = "^[0-9]{1,10}$")]
    pub cursor: Option<String>,
}

/// A page of users, with their emails.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AdminUserPage {
    pub users: Vec<UserResponse>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AdminReportParams {
    /// `open` or `resolved`; every report when left out.
    #[param(pattern = "^(open|resolved)$")]
    pub status: Option<String>,
    /// 1–200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveBody {
    /// What was done: at most 1000 characters.
    #[schema(max_length = 1000)]
    pub note: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Entries with an id below this one (the `id` of the last entry of the page before).
    #[param(minimum = 1)]
    pub before: Option<i64>,
    /// 1–200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// One admin action.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditEntryResponse {
    /// Increasing with every entry.
    pub id: i64,
    /// The admin who acted; `null` for the command line.
    pub actor_id: Option<Uuid>,
    /// `user.deactivate`, `user.reactivate`, `report.resolve`, `message.delete`,
    /// `admin.grant`, `admin.revoke`, ...
    #[schema(example = "user.deactivate")]
    pub action: String,
    /// The id of the user, message or report acted on.
    pub target: String,
    pub detail: String,
    pub at: DateTime<Utc>,
}

impl From<AuditRecord> for AuditEntryResponse {
    fn from(record: AuditRecord) -> Self {
        Self {
            id: record.id,
            actor_id: record.actor.map(|a| a.as_uuid()),
            action: record.action,
            target: record.target,
            detail: record.detail,
            at: record.at,
        }
    }
}
