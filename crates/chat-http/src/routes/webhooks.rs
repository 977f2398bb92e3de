//! Webhook endpoints and their dead letters, for server admins (see docs/webhooks.md).

use actix_web::{HttpResponse, web};
use chat_domain::DomainError;
use chat_domain::paging::parse_limit;
use chat_domain::webhook::WebhookId;
use uuid::Uuid;

use crate::auth::CurrentUser;
use crate::dto::webhooks::{
    CreateWebhookBody, DeadLetterParams, DeadLetterResponse, WebhookResponse,
};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Json, Query};
use crate::routes::resource;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    // Before `/admin/webhooks/{webhook_id}`, which would take `dead-letters` for an id.
    cfg.service(
        resource("/admin/webhooks/dead-letters", "GET").route(web::get().to(list_dead_letters)),
    )
    .service(
        resource(
            "/admin/webhooks/dead-letters/{dead_letter_id}/replay",
            "POST",
        )
        .route(web::post().to(replay_dead_letter)),
    )
    .service(
        resource("/admin/webhooks", "GET, POST")
            .route(web::get().to(list_webhooks))
            .route(web::post().to(create_webhook)),
    )
    .service(
        resource("/admin/webhooks/{webhook_id}", "DELETE").route(web::delete().to(delete_webhook)),
    );
}

/// Runs a webhook use case on the blocking pool.
async fn run<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&chat_domain::service::WebhookService) -> Result<T, DomainError> + Send + 'static,
) -> Result<T, ApiError> {
    let service = state.webhooks.clone();
    Ok(web::block(move || f(&service)).await??)
}

/// Register a webhook endpoint (server admins).
///
/// From now on every event (messages sent, edited and deleted, conversations created and
/// renamed, members added and removed, reports, notifications) is POSTed to `url`, signed
/// with `secret` (see docs/webhooks.md). The secret is stored to sign with and never shown
/// again. Written to the audit log (with the URL, not the secret).
#[utoipa::path(
    post, path = "/api/v1/admin/webhooks", tag = "admin",
    request_body = CreateWebhookBody,
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 201, description = "Registered", body = WebhookResponse),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
        (status = 403, description = "Not a server admin", body = ErrorBody,
            example = json!({"detail": "only a server admin may do this", "code": "forbidden"})),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 415, description = "The body is not `application/json`", body = ErrorBody),
        (status = 422, description = "An invalid `url` or `secret`", body = ErrorBody,
            example = json!({"detail": "the request has invalid fields", "code": "validation_error",
                "errors": [{"field": "url", "message": "must be an http:// or https:// URL"}]})),
    )
)]
pub async fn create_webhook(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
    body: Json<CreateWebhookBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let webhook = run(&state, move |s| {
        s.register(user.id, &body.url, &body.secret)
    })
    .await?;
    Ok(HttpResponse::Created().json(WebhookResponse::from(webhook)))
}

/// List the webhook endpoints (server admins), without their secrets.
#[utoipa::path(
    get, path = "/api/v1/admin/webhooks", tag = "admin",
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "Every endpoint, oldest first", body = [WebhookResponse]),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
        (status = 403, description = "Not a server admin", body = ErrorBody),
    )
)]
pub async fn list_webhooks(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
) -> Result<web::Json<Vec<WebhookResponse>>, ApiError> {
    let webhooks = run(&state, move |s| s.list(user.id)).await?;
    Ok(web::Json(webhooks.into_iter().map(Into::into).collect()))
}

/// Remove a webhook endpoint (server admins), with what was still queued for it and its
/// dead letters. Written to the audit log.
#[utoipa::path(
    delete, path = "/api/v1/admin/webhooks/{webhook_id}", tag = "admin",
    params(("webhook_id" = Uuid, Path,)),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
        (status = 403, description = "Not a server admin", body = ErrorBody),
        (status = 404, description = "No such endpoint", body = ErrorBody,
            example = json!({"detail": "webhook 0b7c6a4e-3f1d-4c7a-9a51-1f0e8b2d4c11 not found", "code": "webhook_not_found"})),
        (status = 422, description = "The id is not a UUID", body = ErrorBody),
    )
)]
pub async fn delete_webhook(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let id = WebhookId(path.into_inner());
    run(&state, move |s| s.remove(user.id, id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// List dead letters (server admins): events given up on after 24 hours of retries, newest
/// first, of every endpoint or of one.
#[utoipa::path(
    get, path = "/api/v1/admin/webhooks/dead-letters", tag = "admin",
    params(DeadLetterParams),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "A page of dead letters, newest first", body = [DeadLetterResponse]),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
        (status = 403, description = "Not a server admin", body = ErrorBody),
        (status = 404, description = "`webhook_id` names no endpoint", body = ErrorBody),
        (status = 422, description = "A bad parameter", body = ErrorBody),
    )
)]
pub async fn list_dead_letters(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
    params: Query<DeadLetterParams>,
) -> Result<web::Json<Vec<DeadLetterResponse>>, ApiError> {
    let params = params.into_inner();
    let limit = match params.limit {
        None => 50,
        Some(_) => parse_limit(params.limit).map_err(|e| DomainError::Validation(vec![e]))?,
    };
    let webhook = params.webhook_id.map(WebhookId);
    let before = params.before;
    let dead = run(&state, move |s| {
        s.dead_letters(user.id, webhook, before, limit)
    })
    .await?;
    Ok(web::Json(dead.into_iter().map(Into::into).collect()))
}

/// Replay a dead letter (server admins): it is sent again from a first attempt, with the
/// same event id, in its turn among its conversation's events. Written to the audit log.
#[utoipa::path(
    post, path = "/api/v1/admin/webhooks/dead-letters/{dead_letter_id}/replay", tag = "admin",
    params(("dead_letter_id" = i64, Path, minimum = 1)),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "Queued again (`state` is `pending`)", body = DeadLetterResponse),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
        (status = 403, description = "Not a server admin", body = ErrorBody),
        (status = 404, description = "No such dead letter", body = ErrorBody,
            example = json!({"detail": "dead letter 42 not found", "code": "dead_letter_not_found"})),
        (status = 422, description = "The id is not a number", body = ErrorBody),
    )
)]
pub async fn replay_dead_letter(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
    path: web::Path<i64>,
) -> Result<web::Json<DeadLetterResponse>, ApiError> {
    let id = path.into_inner();
    let replayed = run(&state, move |s| s.replay(user.id, id)).await?;
    Ok(web::Json(replayed.into()))
}
