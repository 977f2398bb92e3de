//! Presence: one user's, several users' at once, and your last-seen privacy setting. Who
//! may see whose presence is the domain's decision (`PresenceService`): yourself, and those
//! who share a conversation with you and have not blocked you.

use actix_web::web;
use chat_domain::UserId;
use uuid::Uuid;

use crate::auth::CurrentUser;
use crate::dto::presence::{PresencePrivacy, PresenceQueryBody, PresenceResponse};
use crate::error::{ApiError, ErrorBody};
use crate::extract::Json;
use crate::routes::resource;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/users/me/privacy", "GET, PUT")
            .route(web::get().to(get_privacy))
            .route(web::put().to(set_privacy)),
    )
    .service(resource("/users/{user_id}/presence", "GET").route(web::get().to(get_presence)))
    .service(resource("/presence/query", "POST").route(web::post().to(query_presence)));
}

/// One user's presence: `online`, `away` or `offline` with when they were last seen. You
/// may see your own, and that of anyone who shares a conversation with you and has not
/// blocked you; anyone else is "not found", as a user who does not exist.
#[utoipa::path(
    get, path = "/api/v1/users/{user_id}/presence", tag = "users",
    params(("user_id" = Uuid, Path, description = "The user's id")),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "Their presence", body = PresenceResponse),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
        (status = 404, description = "No such user, or not one whose presence you may see", body = ErrorBody),
        (status = 422, description = "The id is not a UUID", body = ErrorBody),
    )
)]
pub async fn get_presence(
    state: web::Data<AppState>,
    CurrentUser(caller): CurrentUser,
    path: web::Path<Uuid>,
) -> Result<web::Json<PresenceResponse>, ApiError> {
    let target = UserId::from(path.into_inner());
    let viewer = caller.id;
    let presence = state.run(move |s| s.presence.get(viewer, target)).await?;
    Ok(web::Json(presence.into()))
}

/// Several users' presence at once (at most 200 ids), in the order asked, each once. Users
/// whose presence you may not see (as for the single read) or that do not exist are left
/// out, so the answer may be shorter than the question.
#[utoipa::path(
    post, path = "/api/v1/presence/query", tag = "users",
    request_body = PresenceQueryBody,
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "The presence of those you may see", body = [PresenceResponse]),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "More than 200 ids, or an id that is not a UUID", body = ErrorBody),
    )
)]
pub async fn query_presence(
    state: web::Data<AppState>,
    CurrentUser(caller): CurrentUser,
    body: Json<PresenceQueryBody>,
) -> Result<web::Json<Vec<PresenceResponse>>, ApiError> {
    let targets: Vec<UserId> = body
        .into_inner()
        .user_ids
        .into_iter()
        .map(UserId::from)
        .collect();
    let viewer = caller.id;
    let found = state
        .run(move |s| s.presence.query(viewer, &targets))
        .await?;
    Ok(web::Json(found.into_iter().map(Into::into).collect()))
}

/// Whether you hide when you were last seen.
#[utoipa::path(
    get, path = "/api/v1/users/me/privacy", tag = "users",
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "Your setting", body = PresencePrivacy),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
    )
)]
pub async fn get_privacy(
    state: web::Data<AppState>,
    CurrentUser(caller): CurrentUser,
) -> Result<web::Json<PresencePrivacy>, ApiError> {
    let user = caller.id;
    let hide_last_seen = state.run(move |s| s.presence.hides_last_seen(user)).await?;
    Ok(web::Json(PresencePrivacy { hide_last_seen }))
}

/// Hide when you were last seen (others then get null for yours, and you get null for
/// theirs), or show it again.
#[utoipa::path(
    put, path = "/api/v1/users/me/privacy", tag = "users",
    request_body = PresencePrivacy,
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "Your setting, as it now stands", body = PresencePrivacy),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Invalid fields", body = ErrorBody),
    )
)]
pub async fn set_privacy(
    state: web::Data<AppState>,
    CurrentUser(caller): CurrentUser,
    body: Json<PresencePrivacy>,
) -> Result<web::Json<PresencePrivacy>, ApiError> {
    let (user, hide) = (caller.id, body.into_inner().hide_last_seen);
    let hide_last_seen = state
        .run(move |s| s.presence.set_hide_last_seen(user, hide))
        .await?;
    Ok(web::Json(PresencePrivacy { hide_last_seen }))
}
