//! Blocking other users.

use actix_web::{HttpResponse, web};
use chat_domain::UserId;
use uuid::Uuid;

use crate::auth::CurrentUser;
use crate::dto::blocks::BlockResponse;
use crate::error::{ApiError, ErrorBody};
use crate::routes::resource;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/users/me/blocks", "GET").route(web::get().to(list_blocks)))
        .service(
            resource("/users/{user_id}/block", "PUT, DELETE")
                .route(web::put().to(block_user))
                .route(web::delete().to(unblock_user)),
        );
}

/// Block a user. They can no longer start a direct conversation with you, send into the one
/// you have, or add you to a group (they get 403 `blocked`); in groups you share their
/// messages still show. Idempotent.
#[utoipa::path(
    put, path = "/api/v1/users/{user_id}/block", tag = "users",
    params(("user_id" = Uuid, Path, description = "The user to block")),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 204, description = "Blocked (or already blocked)"),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 422, description = "That is you, or the id is not a UUID", body = ErrorBody),
    )
)]
pub async fn block_user(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let target = UserId::from(path.into_inner());
    state.run(move |s| s.blocks.block(user.id, target)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Lift a block. Idempotent.
#[utoipa::path(
    delete, path = "/api/v1/users/{user_id}/block", tag = "users",
    params(("user_id" = Uuid, Path, description = "The user to unblock")),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 204, description = "Not blocked (any more)"),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 422, description = "That is you, or the id is not a UUID", body = ErrorBody),
    )
)]
pub async fn unblock_user(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let target = UserId::from(path.into_inner());
    state
        .run(move |s| s.blocks.unblock(user.id, target))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The users you have blocked, the latest first.
#[utoipa::path(
    get, path = "/api/v1/users/me/blocks", tag = "users",
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "Your blocks, latest first", body = [BlockResponse]),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
    )
)]
pub async fn list_blocks(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
) -> Result<web::Json<Vec<BlockResponse>>, ApiError> {
    let blocked = state.run(move |s| s.blocks.blocked(user.id)).await?;
    Ok(web::Json(blocked.into_iter().map(Into::into).collect()))
}
