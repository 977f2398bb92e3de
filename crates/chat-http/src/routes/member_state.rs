//! What a member sets for themselves in a conversation: the read marker, set explicitly
//! ("mark unread"), and the settings (mute, archive).

use actix_web::web;
use chat_domain::{ConversationId, DomainError};
use uuid::Uuid;

use crate::auth::CurrentUser;
use crate::dto::member_state::{
    ReadMarkerResponse, SetReadMarkerBody, SettingsResponse, UpdateSettingsBody,
};
use crate::error::{ApiError, ErrorBody};
use crate::extract::Json;
use crate::routes::resource;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/conversations/{conversation_id}/read", "PUT")
            .route(web::put().to(set_read_marker)),
    )
    .service(
        resource("/conversations/{conversation_id}/settings", "PUT")
            .route(web::put().to(update_settings)),
    );
}

/// Set your read marker in a conversation, back ("mark unread") or forward.
///
/// The marker goes onto the conversation's newest message with a seq at or below
/// `last_read_seq`: 0 marks everything unread, a seq past the newest message marks all read.
/// Your devices get `read_marker_updated`; when the marker moved forward the other members get
/// `message_read`, and of a move back they hear nothing.
#[utoipa::path(
    put, path = "/api/v1/conversations/{conversation_id}/read", tag = "conversations",
    params(("conversation_id" = Uuid, Path,)),
    request_body = SetReadMarkerBody,
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "Your read marker as it now stands, and what is unread", body = ReadMarkerResponse),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
        (status = 404, description = "No such conversation, or you are not in it", body = ErrorBody),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "last_read_seq missing or negative, or the id is not a UUID", body = ErrorBody),
    )
)]
pub async fn set_read_marker(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
    path: web::Path<Uuid>,
    body: Json<SetReadMarkerBody>,
) -> Result<web::Json<ReadMarkerResponse>, ApiError> {
    let id = ConversationId::from(path.into_inner());
    let seq = body.into_inner().last_read_seq;
    let set = state
        .run(move |s| s.messages.set_read_marker(user.id, id, seq))
        .await?;
    Ok(web::Json(set.into()))
}

/// Mute or archive a conversation, for you alone.
///
/// A field left out stays as it is. Your devices get `conversation_settings_updated`; nobody
/// else hears of it. A muted conversation keeps its unread count but stays out of the total
/// of `GET /api/v1/messages/unread/count`. An archived one leaves `GET
/// /api/v1/conversations?archived=false` until a new message arrives, unless it is muted.
#[utoipa::path(
    put, path = "/api/v1/conversations/{conversation_id}/settings", tag = "conversations",
    params(("conversation_id" = Uuid, Path,)),
    request_body = UpdateSettingsBody,
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "Your settings as they now stand", body = SettingsResponse),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
        (status = 404, description = "No such conversation, or you are not in it", body = ErrorBody),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "No field given, a field of the wrong type, or the id is not a UUID", body = ErrorBody),
    )
)]
pub async fn update_settings(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
    path: web::Path<Uuid>,
    body: Json<UpdateSettingsBody>,
) -> Result<web::Json<SettingsResponse>, ApiError> {
    let id = ConversationId::from(path.into_inner());
    let update = body.into_inner().into_update().ok_or_else(|| {
        ApiError::from(DomainError::invalid(
            "muted_until",
            "give muted_until or archived (or both)",
        ))
    })?;
    let change = state
        .run(move |s| s.conversations.update_settings(user.id, id, update))
        .await?;
    Ok(web::Json(change.into()))
}
