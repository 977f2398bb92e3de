//! Reactions to messages and pins in conversations.

use actix_web::web;
use chat_domain::{ConversationId, MessageId};
use uuid::Uuid;

use crate::auth::CurrentUser;
use crate::dto::messages::MessageResponse;
use crate::error::{ApiError, ErrorBody};
use crate::routes::resource;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/messages/{message_id}/reactions/{emoji}", "PUT, DELETE")
            .route(web::put().to(add_reaction))
            .route(web::delete().to(remove_reaction)),
    )
    .service(
        resource("/conversations/{conversation_id}/pins", "GET").route(web::get().to(list_pins)),
    )
    .service(
        resource(
            "/conversations/{conversation_id}/pins/{message_id}",
            "PUT, DELETE",
        )
        .route(web::put().to(pin_message))
        .route(web::delete().to(unpin_message)),
    );
}

/// React to a message with one emoji.
///
/// Any member of the message's conversation may react. `emoji` is exactly one emoji,
/// percent-encoded in the path (`%F0%9F%91%8D` for 👍). Idempotent: reacting again with an
/// emoji you already used changes nothing. Every member hears `reaction_added` over the
/// WebSocket.
#[utoipa::path(
    put, path = "/api/v1/messages/{message_id}/reactions/{emoji}", tag = "messages",
    params(
        ("message_id" = Uuid, Path,),
        ("emoji" = String, Path, description = "One emoji, percent-encoded", example = "👍"),
    ),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "The message as it now stands, from your side", body = MessageResponse,
            example = json!({
                "id": "0193a5c2-7f1e-7c3a-9d8e-2b4f6a1c0e55", "seq": 42,
                "conversation_id": "0193a5c2-1111-7c3a-9d8e-2b4f6a1c0e55",
                "sender_id": "0193a5c2-2222-7c3a-9d8e-2b4f6a1c0e55", "recipient_id": null,
                "content": "Ship it?", "client_message_id": null, "is_read": true,
                "created_at": "2026-12-07T10:00:00Z", "updated_at": "2026-12-07T10:00:00Z",
                "reactions": [{"emoji": "👍", "count": 2, "me": true}, {"emoji": "🎉", "count": 1, "me": false}],
                "pinned_at": null, "pinned_by": null, "reply_to": null, "mentions": []
            })),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
        (status = 404, description = "No such message, or not in your conversations", body = ErrorBody,
            example = json!({"detail": "message 0193a5c2-7f1e-7c3a-9d8e-2b4f6a1c0e55 not found", "code": "message_not_found"})),
        (status = 409, description = "The message was deleted (`message_deleted`), or it already carries the most distinct emoji allowed (`too_many_reactions`)", body = ErrorBody,
            example = json!({"detail": "a message takes at most 20 different emoji", "code": "too_many_reactions"})),
        (status = 422, description = "The id is not a UUID, or `emoji` is not exactly one emoji", body = ErrorBody,
            example = json!({"detail": "the request has invalid fields", "code": "validation_error",
                "errors": [{"field": "emoji", "message": "must be exactly one emoji"}]})),
        (status = 429, description = "Reacting or pinning too fast; see Retry-After", body = ErrorBody),
    )
)]
pub async fn add_reaction(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
    path: web::Path<(Uuid, String)>,
) -> Result<web::Json<MessageResponse>, ApiError> {
    let (id, emoji) = path.into_inner();
    let id = MessageId::from(id);
    let (view, _) = state
        .run(move |s| s.reactions.react(user.id, id, &emoji))
        .await?;
    Ok(web::Json(view.into()))
}

/// Take back your reaction with one emoji.
///
/// Idempotent: taking back a reaction you do not have changes nothing. Every member hears
/// `reaction_removed` over the WebSocket when it changed something.
#[utoipa::path(
    delete, path = "/api/v1/messages/{message_id}/reactions/{emoji}", tag = "messages",
    params(
        ("message_id" = Uuid, Path,),
        ("emoji" = String, Path, description = "One emoji, percent-encoded", example = "👍"),
    ),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "The message as it now stands, from your side", body = MessageResponse),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
        (status = 404, description = "No such message, or not in your conversations", body = ErrorBody,
            example = json!({"detail": "message 0193a5c2-7f1e-7c3a-9d8e-2b4f6a1c0e55 not found", "code": "message_not_found"})),
        (status = 422, description = "The id is not a UUID, or `emoji` is not exactly one emoji", body = ErrorBody),
        (status = 429, description = "Reacting or pinning too fast; see Retry-After", body = ErrorBody),
    )
)]
pub async fn remove_reaction(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
    path: web::Path<(Uuid, String)>,
) -> Result<web::Json<MessageResponse>, ApiError> {
    let (id, emoji) = path.into_inner();
    let id = MessageId::from(id);
    let (view, _) = state
        .run(move |s| s.reactions.unreact(user.id, id, &emoji))
        .await?;
    Ok(web::Json(view.into()))
}

/// The pinned messages of a conversation, the latest pin first.
#[utoipa::path(
    get, path = "/api/v1/conversations/{conversation_id}/pins", tag = "messages",
    params(("conversation_id" = Uuid, Path,)),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "Pinned messages, the latest pin first", body = [MessageResponse],
            example = json!([{
                "id": "0193a5c2-7f1e-7c3a-9d8e-2b4f6a1c0e55", "seq": 42,
                "conversation_id": "0193a5c2-1111-7c3a-9d8e-2b4f6a1c0e55",
                "sender_id": "0193a5c2-2222-7c3a-9d8e-2b4f6a1c0e55", "recipient_id": null,
                "content": "The release checklist is in the wiki", "client_message_id": null,
                "is_read": true, "created_at": "2026-12-07T10:00:00Z",
                "updated_at": "2026-12-07T10:00:00Z", "reactions": [],
                "pinned_at": "2026-12-07T10:15:00Z",
                "pinned_by": "0193a5c2-3333-7c3a-9d8e-2b4f6a1c0e55",
                "reply_to": null, "mentions": []
            }])),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
        (status = 404, description = "No such conversation, or you are not in it", body = ErrorBody,
            example = json!({"detail": "conversation 0193a5c2-1111-7c3a-9d8e-2b4f6a1c0e55 not found", "code": "conversation_not_found"})),
        (status = 422, description = "The id is not a UUID", body = ErrorBody),
    )
)]
pub async fn list_pins(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
    path: web::Path<Uuid>,
) -> Result<web::Json<Vec<MessageResponse>>, ApiError> {
    let id = ConversationId::from(path.into_inner());
    let pins = state.run(move |s| s.reactions.pins(user.id, id)).await?;
    Ok(web::Json(pins.into_iter().map(Into::into).collect()))
}

/// Pin a message in its conversation, for every member.
///
/// In a group, owners and admins pin; in a direct conversation, either member. Idempotent:
/// pinning a pinned message changes nothing. Every member hears `message_pinned` over the
/// WebSocket.
#[utoipa::path(
    put, path = "/api/v1/conversations/{conversation_id}/pins/{message_id}", tag = "messages",
    params(("conversation_id" = Uuid, Path,), ("message_id" = Uuid, Path,)),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "The message as it now stands, from your side", body = MessageResponse),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
        (status = 403, description = "A plain member of a group", body = ErrorBody,
            example = json!({"detail": "only an owner or admin can pin messages in a group", "code": "forbidden"})),
        (status = 404, description = "No such conversation (or you are not in it), or the message is not in it", body = ErrorBody),
        (status = 409, description = "The message was deleted (`message_deleted`), or the conversation has the most pins allowed (`too_many_pins`)", body = ErrorBody,
            example = json!({"detail": "a conversation holds at most 50 pinned messages", "code": "too_many_pins"})),
        (status = 422, description = "An id is not a UUID", body = ErrorBody),
        (status = 429, description = "Reacting or pinning too fast; see Retry-After", body = ErrorBody),
    )
)]
pub async fn pin_message(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<web::Json<MessageResponse>, ApiError> {
    let (conversation, message) = path.into_inner();
    let (conversation, message) = (ConversationId::from(conversation), MessageId::from(message));
    let (view, _) = state
        .run(move |s| s.reactions.pin(user.id, conversation, message))
        .await?;
    Ok(web::Json(view.into()))
}

/// Unpin a message; who may is as for pinning.
///
/// Idempotent: unpinning a message that is not pinned changes nothing. Every member hears
/// `message_unpinned` over the WebSocket when it changed something.
#[utoipa::path(
    delete, path = "/api/v1/conversations/{conversation_id}/pins/{message_id}", tag = "messages",
    params(("conversation_id" = Uuid, Path,), ("message_id" = Uuid, Path,)),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "The message as it now stands, from your side", body = MessageResponse),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
        (status = 403, description = "A plain member of a group", body = ErrorBody,
            example = json!({"detail": "only an owner or admin can pin messages in a group", "code": "forbidden"})),
        (status = 404, description = "No such conversation (or you are not in it), or the message is not in it", body = ErrorBody),
        (status = 422, description = "An id is not a UUID", body = ErrorBody),
        (status = 429, description = "Reacting or pinning too fast; see Retry-After", body = ErrorBody),
    )
)]
pub async fn unpin_message(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<web::Json<MessageResponse>, ApiError> {
    let (conversation, message) = path.into_inner();
    let (conversation, message) = (ConversationId::from(conversation), MessageId::from(message));
    let (view, _) = state
        .run(move |s| s.reactions.unpin(user.id, conversation, message))
        .await?;
    Ok(web::Json(view.into()))
}
