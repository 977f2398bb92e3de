//! Login sessions: redeeming a refresh token, and the caller's signed-in devices (list, sign
//! one out, sign out all the others).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use chat_domain::SessionId;
use uuid::Uuid;

use crate::auth::CurrentSession;
use crate::dto::sessions::{RefreshBody, RefreshResponse, RevokedResponse, SessionResponse};
use crate::error::{ApiError, ErrorBody};
use crate::extract::Json;
use crate::routes::auth::client_address;
use crate::routes::resource;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    // `revoke-others` before `{session_id}`, which would match it too.
    cfg.service(resource("/auth/refresh", "POST").route(web::post().to(refresh)))
        .service(resource("/auth/sessions", "GET").route(web::get().to(list)))
        .service(
            resource("/auth/sessions/revoke-others", "POST").route(web::post().to(revoke_others)),
        )
        .service(resource("/auth/sessions/{session_id}", "DELETE").route(web::delete().to(end)));
}

/// Redeem a refresh token for a new access token and a new refresh token.
///
/// The refresh token presented is spent: keep the new one. Presenting a refresh token that
/// was already redeemed is taken for theft and ends its whole session (every access and
/// refresh token of that login), so a client must never send the same one twice, not even
/// as a retry racing the first attempt. Failed refreshes count against the caller's address
/// like failed logins.
#[utoipa::path(
    post, path = "/api/v1/auth/refresh", tag = "auth",
    request_body = RefreshBody,
    responses(
        (status = 200, description = "The new pair", body = RefreshResponse),
        (status = 401, description = "Unknown, expired, ended or already redeemed refresh token (`unauthorized`)", body = ErrorBody),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Missing fields", body = ErrorBody),
        (status = 429, description = "Too many failed logins or refreshes from this address; see Retry-After", body = ErrorBody),
    )
)]
pub async fn refresh(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Json<RefreshBody>,
) -> Result<HttpResponse, ApiError> {
    let token = body.into_inner().refresh_token;
    let client = client_address(&req);
    let refreshed = state
        .run(move |s| s.sessions.refresh(&token, client.as_deref()))
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header(header::CacheControl(vec![header::CacheDirective::NoStore]))
        .json(RefreshResponse::from(refreshed)))
}

/// Your login sessions: every device signed in to your account, most recently used first.
#[utoipa::path(
    get, path = "/api/v1/auth/sessions", tag = "auth",
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "Your live sessions; `current` marks this request's", body = Vec<SessionResponse>),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
    )
)]
pub async fn list(
    state: web::Data<AppState>,
    CurrentSession(caller): CurrentSession,
) -> Result<web::Json<Vec<SessionResponse>>, ApiError> {
    let sessions = state.run(move |s| s.sessions.list(&caller)).await?;
    Ok(web::Json(sessions.into_iter().map(Into::into).collect()))
}

/// Sign one of your sessions out (this one included): its refresh token stops working, its
/// access tokens are refused at once and its WebSocket connections close, on every node.
#[utoipa::path(
    delete, path = "/api/v1/auth/sessions/{session_id}", tag = "auth",
    params(("session_id" = Uuid, Path,)),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 204, description = "The session is ended"),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
        (status = 404, description = "No live session of yours with that id (`session_not_found`)", body = ErrorBody),
        (status = 422, description = "`session_id` is no UUID (`validation_error`)", body = ErrorBody),
    )
)]
pub async fn end(
    state: web::Data<AppState>,
    CurrentSession(caller): CurrentSession,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let id = SessionId::from(path.into_inner());
    state.run(move |s| s.sessions.end(&caller, id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Sign out every session of yours but the one making this request.
#[utoipa::path(
    post, path = "/api/v1/auth/sessions/revoke-others", tag = "auth",
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "How many sessions were ended", body = RevokedResponse),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
    )
)]
pub async fn revoke_others(
    state: web::Data<AppState>,
    CurrentSession(caller): CurrentSession,
) -> Result<web::Json<RevokedResponse>, ApiError> {
    let ended = state.run(move |s| s.sessions.end_others(&caller)).await?;
    Ok(web::Json(RevokedResponse { ended }))
}
