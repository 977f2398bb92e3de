//! What server admins do, under `/api/v1/admin`: users, reports, deleting any message, and
//! the audit log. Every route answers 403 to anyone but a server admin (the domain decides,
//! [`chat_domain::service::AdminService`]).

use actix_web::web;
use chat_domain::paging::{Page, parse_limit};
use chat_domain::report::ReportStatus;
use chat_domain::{MessageId, ReportId, UserId};
use uuid::Uuid;

use crate::auth::CurrentUser;
use crate::dto::admin::{
    AdminReportParams, AdminUserPage, AdminUserParams, AuditEntryResponse, AuditParams, ResolveBody,
};
use crate::dto::messages::MessageResponse;
use crate::dto::reports::ReportResponse;
use crate::dto::users::UserResponse;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Json, Query};
use crate::routes::resource;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/admin/users", "GET").route(web::get().to(list_users)))
        .service(
            resource("/admin/users/{user_id}/deactivate", "POST")
                .route(web::post().to(deactivate_user)),
        )
        .service(
            resource("/admin/users/{user_id}/reactivate", "POST")
                .route(web::post().to(reactivate_user)),
        )
        .service(resource("/admin/reports", "GET").route(web::get().to(list_reports)))
        .service(
            resource("/admin/reports/{report_id}/resolve", "POST")
                .route(web::post().to(resolve_report)),
        )
        .service(
            resource("/admin/messages/{message_id}", "DELETE")
                .route(web::delete().to(delete_message)),
        )
        .service(resource("/admin/audit", "GET").route(web::get().to(audit_log)));
}

fn limit(raw: Option<i64>) -> Result<u32, ApiError> {
    parse_limit(raw).map_err(|e| ApiError::validation(e.field, e.message))
}

/// Every user, or those matching `q` as in `/users`, deactivated ones included, with their
/// emails.
#[utoipa::path(
    get, path = "/api/v1/admin/users", tag = "admin",
    params(AdminUserParams),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "A page of users, best match first", body = AdminUserPage),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
        (status = 403, description = "Not a server admin", body = ErrorBody),
        (status = 422, description = "Bad limit or cursor", body = ErrorBody),
    )
)]
pub async fn list_users(
    state: web::Data<AppState>,
    CurrentUser(admin): CurrentUser,
    params: Query<AdminUserParams>,
) -> Result<web::Json<AdminUserPage>, ApiError> {
    let params = params.into_inner();
    let offset = match params.cursor.as_deref() {
        None => 0,
        Some(raw) => raw
            .parse::<u32>()
            .map_err(|_| ApiError::validation("cursor", "must be a next_cursor from this list"))?,
    };
    let page = Page {
        limit: limit(params.limit)?,
        offset,
    };
    let users = state
        .run(move |s| s.admin.users(admin.id, params.q, page))
        .await?;
    let next_cursor = (users.len() == page.limit as usize)
        .then(|| offset.checked_add(page.limit))
        .flatten()
        .map(|next| next.to_string());
    Ok(web::Json(AdminUserPage {
        users: users.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

/// Deactivate an account: its tokens stop working, its sockets close, the groups it owns
/// pass to another member. Not your own (use `/users/me/deactivate`). Idempotent.
#[utoipa::path(
    post, path = "/api/v1/admin/users/{user_id}/deactivate", tag = "admin",
    params(("user_id" = Uuid, Path,)),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "The deactivated account", body = UserResponse),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
        (status = 403, description = "Not a server admin", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 422, description = "Your own account, or the id is not a UUID", body = ErrorBody),
    )
)]
pub async fn deactivate_user(
    state: web::Data<AppState>,
    CurrentUser(admin): CurrentUser,
    path: web::Path<Uuid>,
) -> Result<web::Json<UserResponse>, ApiError> {
    let user = UserId::from(path.into_inner());
    let user = state
        .run(move |s| s.admin.deactivate(admin.id, user))
        .await?;
    Ok(web::Json(user.into()))
}

/// Reactivate a deactivated account; its owner logs in again (old tokens stay dead).
/// Idempotent.
#[utoipa::path(
    post, path = "/api/v1/admin/users/{user_id}/reactivate", tag = "admin",
    params(("user_id" = Uuid, Path,)),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "The active account", body = UserResponse),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
        (status = 403, description = "Not a server admin", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 422, description = "The id is not a UUID", body = ErrorBody),
    )
)]
pub async fn reactivate_user(
    state: web::Data<AppState>,
    CurrentUser(admin): CurrentUser,
    path: web::Path<Uuid>,
) -> Result<web::Json<UserResponse>, ApiError> {
    let user = UserId::from(path.into_inner());
    let user = state
        .run(move |s| s.admin.reactivate(admin.id, user))
        .await?;
    Ok(web::Json(user.into()))
}

/// Reports, newest first, all or by status.
#[utoipa::path(
    get, path = "/api/v1/admin/reports", tag = "admin",
    params(AdminReportParams),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "Reports, newest first", body = [ReportResponse]),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
        (status = 403, description = "Not a server admin", body = ErrorBody),
        (status = 422, description = "Bad status or limit", body = ErrorBody),
    )
)]
pub async fn list_reports(
    state: web::Data<AppState>,
    CurrentUser(admin): CurrentUser,
    params: Query<AdminReportParams>,
) -> Result<web::Json<Vec<ReportResponse>>, ApiError> {
    let params = params.into_inner();
    let status = match params.status.as_deref() {
        None => None,
        Some(raw) => Some(
            ReportStatus::parse(raw)
                .ok_or_else(|| ApiError::validation("status", "must be open or resolved"))?,
        ),
    };
    let limit = limit(params.limit)?;
    let reports = state
        .run(move |s| s.admin.reports(admin.id, status, limit))
        .await?;
    Ok(web::Json(reports.into_iter().map(Into::into).collect()))
}

/// Resolve a report, with a note of what was done. Resolving it again changes nothing.
#[utoipa::path(
    post, path = "/api/v1/admin/reports/{report_id}/resolve", tag = "admin",
    params(("report_id" = Uuid, Path,)),
    request_body = ResolveBody,
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "The resolved report", body = ReportResponse),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
        (status = 403, description = "Not a server admin", body = ErrorBody),
        (status = 404, description = "No such report", body = ErrorBody),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Note too long, or the id is not a UUID", body = ErrorBody),
    )
)]
pub async fn resolve_report(
    state: web::Data<AppState>,
    CurrentUser(admin): CurrentUser,
    path: web::Path<Uuid>,
    body: Json<ResolveBody>,
) -> Result<web::Json<ReportResponse>, ApiError> {
    let id = ReportId::from(path.into_inner());
    let note = body.into_inner().note;
    let report = state
        .run(move |s| s.admin.resolve_report(admin.id, id, note.as_deref()))
        .await?;
    Ok(web::Json(report.into()))
}

/// Delete any message for everyone, in any conversation. Its members hear of it as of any
/// delete. Deleting it again changes nothing.
#[utoipa::path(
    delete, path = "/api/v1/admin/messages/{message_id}", tag = "admin",
    params(("message_id" = Uuid, Path,)),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "The tombstone", body = MessageResponse),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
        (status = 403, description = "Not a server admin", body = ErrorBody),
        (status = 404, description = "No such message", body = ErrorBody),
        (status = 422, description = "The id is not a UUID", body = ErrorBody),
    )
)]
pub async fn delete_message(
    state: web::Data<AppState>,
    CurrentUser(admin): CurrentUser,
    path: web::Path<Uuid>,
) -> Result<web::Json<MessageResponse>, ApiError> {
    let id = MessageId::from(path.into_inner());
    let tombstone = state
        .run(move |s| s.admin.delete_message(admin.id, id))
        .await?;
    Ok(web::Json(tombstone.into()))
}

/// The audit log of admin actions, newest first.
#[utoipa::path(
    get, path = "/api/v1/admin/audit", tag = "admin",
    params(AuditParams),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "Entries, newest first", body = [AuditEntryResponse]),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
        (status = 403, description = "Not a server admin", body = ErrorBody),
        (status = 422, description = "Bad before or limit", body = ErrorBody),
    )
)]
pub async fn audit_log(
    state: web::Data<AppState>,
    CurrentUser(admin): CurrentUser,
    params: Query<AuditParams>,
) -> Result<web::Json<Vec<AuditEntryResponse>>, ApiError> {
    let params = params.into_inner();
    if params.before.is_some_and(|b| b < 1) {
        return Err(ApiError::validation(
            "before",
            "must be a positive entry id",
        ));
    }
    let limit = limit(params.limit)?;
    let entries = state
        .run(move |s| s.admin.audit_log(admin.id, params.before, limit))
        .await?;
    Ok(web::Json(entries.into_iter().map(Into::into).collect()))
}
