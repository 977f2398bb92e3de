//! Reporting a message or a user to the server admins.

use actix_web::{HttpResponse, web};

use crate::auth::CurrentUser;
use crate::dto::reports::{ReportBody, ReportResponse};
use crate::error::{ApiError, ErrorBody};
use crate::extract::Json;
use crate::routes::resource;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/reports", "POST").route(web::post().to(create_report)));
}

/// Report a message you can see, or a user, to the server admins. Give exactly one of
/// `message_id` and `user_id`. Rate-limited per reporter.
#[utoipa::path(
    post, path = "/api/v1/reports", tag = "reports",
    request_body = ReportBody,
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 201, description = "Stored, open", body = ReportResponse),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
        (status = 404, description = "No such user, or no such message in your conversations", body = ErrorBody),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Not exactly one target, no reason, or yourself", body = ErrorBody),
        (status = 429, description = "Too many reports; see Retry-After", body = ErrorBody),
    )
)]
pub async fn create_report(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
    body: Json<ReportBody>,
) -> Result<HttpResponse, ApiError> {
    let request = body.into_inner().into();
    let report = state
        .run(move |s| s.reports.report(user.id, request))
        .await?;
    Ok(HttpResponse::Created().json(ReportResponse::from(report)))
}
