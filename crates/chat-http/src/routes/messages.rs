//! Read receipts and unread counts.

use actix_web::web;
use chat_domain::MessageId;
use uuid::Uuid;

use crate::auth::CurrentUser;
use crate::dto::messages::{ReadReceiptResponse, UnreadCountResponse};
use crate::error::{ApiError, ErrorBody};
use crate::routes::resource;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/messages/unread/count", "GET").route(web::get().to(unread_count)))
        .service(resource("/messages/{message_id}/read", "PUT").route(web::put().to(mark_read)));
}

/// Mark a message, and every earlier message of its conversation, read.
///
/// Idempotent; marking an older message after a newer one changes nothing.
#[utoipa::path(
    put, path = "/api/v1/messages/{message_id}/read", tag = "messages",
    params(("message_id" = Uuid, Path,)),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "Your read marker as it now stands", body = ReadReceiptResponse),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
        (status = 404, description = "No such message, or not in your conversations", body = ErrorBody),
        (status = 422, description = "The id is not a UUID", body = ErrorBody),
    )
)]
pub async fn mark_read(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
    path: web::Path<Uuid>,
) -> Result<web::Json<ReadReceiptResponse>, ApiError> {
    let id = MessageId::from(path.into_inner());
    let (receipt, _) = state
        .run(move |s| s.messages.mark_read(user.id, id))
        .await?;
    Ok(web::Json(receipt.into()))
}

/// Your unread messages, in total and per conversation.
#[utoipa::path(
    get, path = "/api/v1/messages/unread/count", tag = "messages",
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "Unread counts", body = UnreadCountResponse),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
    )
)]
pub async fn unread_count(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
) -> Result<web::Json<UnreadCountResponse>, ApiError> {
    let counts = state
        .run(move |s| s.messages.unread_counts(user.id))
        .await?;
    Ok(web::Json(counts.into()))
}
