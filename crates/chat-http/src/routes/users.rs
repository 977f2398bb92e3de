//! Finding users and editing your own profile.

use actix_web::web;
use chat_domain::UserId;
use chat_domain::paging::Page;
use chat_domain::user::UserQuery;
use uuid::Uuid;

use crate::auth::CurrentUser;
use crate::dto::users::{
    DeactivateBody, PublicUserResponse, UpdateMeBody, UserListParams, UserResponse,
};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Json, Query};
use crate::routes::resource;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    // `/users/me` is registered before `/users/{user_id}` so "me" is never parsed as an id.
    cfg.service(
        resource("/users/me", "GET, PUT")
            .route(web::get().to(get_me))
            .route(web::put().to(update_me)),
    )
    .service(resource("/users/me/deactivate", "POST").route(web::post().to(deactivate_me)))
    .service(resource("/users", "GET").route(web::get().to(list_users)))
    .service(resource("/users/{user_id}", "GET").route(web::get().to(get_user)));
}

/// Search users by part of the username or full name, or by a whole email address. Answers
/// public profiles: nobody's email. The best match comes first: the username itself or the
/// whole email address, then usernames starting with `q`, then full names with a word
/// starting with it, then the rest; by username within each (all by username without `q`).
#[utoipa::path(
    get, path = "/api/v1/users", tag = "users",
    params(UserListParams),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "Users, best match first", body = [PublicUserResponse]),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
        (status = 422, description = "Bad paging parameters", body = ErrorBody),
    )
)]
pub async fn list_users(
    state: web::Data<AppState>,
    _caller: CurrentUser,
    params: Query<UserListParams>,
) -> Result<web::Json<Vec<PublicUserResponse>>, ApiError> {
    let params = params.into_inner();
    let page = Page::parse(params.limit, params.offset)
        .map_err(|e| ApiError::validation(e.field, e.message))?;
    let query = UserQuery {
        text: params
            .q
            .map(|q| q.trim().to_owned())
            .filter(|q| !q.is_empty()),
        page,
    };
    let users = state.run(move |s| s.accounts.search(&query)).await?;
    Ok(web::Json(users.into_iter().map(Into::into).collect()))
}

/// One user's public profile (no email, even your own: see `/users/me`).
#[utoipa::path(
    get, path = "/api/v1/users/{user_id}", tag = "users",
    params(("user_id" = Uuid, Path, description = "The user's id")),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "The user's public profile", body = PublicUserResponse),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 422, description = "The id is not a UUID", body = ErrorBody),
    )
)]
pub async fn get_user(
    state: web::Data<AppState>,
    _caller: CurrentUser,
    path: web::Path<Uuid>,
) -> Result<web::Json<PublicUserResponse>, ApiError> {
    let id = UserId::from(path.into_inner());
    let user = state.run(move |s| s.accounts.profile(id)).await?;
    Ok(web::Json(user.into()))
}

/// Your own profile (the same as `/auth/me`).
#[utoipa::path(
    get, path = "/api/v1/users/me", tag = "users",
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "You", body = UserResponse),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
    )
)]
pub async fn get_me(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
) -> Result<web::Json<UserResponse>, ApiError> {
    crate::routes::auth::me(state, CurrentUser(user)).await
}

/// Edit your profile, or change your password (with the current one).
#[utoipa::path(
    put, path = "/api/v1/users/me", tag = "users",
    request_body = UpdateMeBody,
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "The updated profile", body = UserResponse),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
        (status = 403, description = "current_password is wrong", body = ErrorBody),
        (status = 409, description = "Email taken", body = ErrorBody),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Invalid fields", body = ErrorBody),
    )
)]
pub async fn update_me(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
    body: Json<UpdateMeBody>,
) -> Result<web::Json<UserResponse>, ApiError> {
    let changes = body.into_inner().into();
    let updated = state
        .run(move |s| s.accounts.update_profile(user.id, changes))
        .await?;
    Ok(web::Json(updated.into()))
}

/// Deactivate your own account. Needs your password; every token of yours stops working,
/// your WebSocket connections are closed, and you can no longer log in.
#[utoipa::path(
    post, path = "/api/v1/users/me/deactivate", tag = "users",
    request_body = DeactivateBody,
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "The deactivated account", body = UserResponse),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
        (status = 403, description = "Wrong password", body = ErrorBody),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Invalid body", body = ErrorBody),
    )
)]
pub async fn deactivate_me(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
    body: Json<DeactivateBody>,
) -> Result<web::Json<UserResponse>, ApiError> {
    let password = body.into_inner().password;
    let user = state
        .run(move |s| s.accounts.deactivate(user.id, &password))
        .await?;
    Ok(web::Json(user.into()))
}
