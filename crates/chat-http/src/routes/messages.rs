//! Editing and deleting messages, read receipts and unread counts.

use actix_web::{HttpResponse, web};
use chat_domain::message::DeleteScope;
use chat_domain::service::Deleted;
use chat_domain::{DomainError, MessageId};
use uuid::Uuid;

use crate::auth::CurrentUser;
use crate::dto::messages::{
    DeleteParams, EditMessageBody, HistoryCursorParams, HistoryParams, MessageResponse,
    ReadReceiptResponse, UnreadCountResponse,
};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Json, Query};
use crate::routes::resource;
use crate::state::AppState;
use crate::ws::delivery::note_fetched;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/messages/unread/count", "GET").route(web::get().to(unread_count)))
        .service(
            resource("/messages/{message_id}", "PATCH, DELETE")
                .route(web::patch().to(edit_message))
                .route(web::delete().to(delete_message)),
        )
        .service(resource("/messages/{message_id}/read", "PUT").route(web::put().to(mark_read)))
        .service(
            resource("/messages/{message_id}/thread", "GET").route(web::get().to(list_thread)),
        );
}

/// A page of a message's thread: its replies, ascending by `seq`.
///
/// Paged as history is: no cursor, the latest `limit` replies; `before`/`after` a seq. Thread
/// replies are sent with `thread_root_id` and are in no page of the conversation's history;
/// their root carries `thread` (`reply_count`, `last_reply_at`, `last_reply_seq`,
/// `participant_ids`). A message without replies, or a thread reply, has an empty thread.
/// Replies you deleted for yourself are left out, as in history.
#[utoipa::path(
    get, path = "/api/v1/messages/{message_id}/thread", tag = "messages",
    params(
        ("message_id" = Uuid, Path, description = "The thread's root"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 200, description = "1–200, default 50."),
        ("cursor" = Option<HistoryCursorParams>, Query, style = Form, explode,
            description = "`before=<seq>` or `after=<seq>`, not both (422)"),
    ),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "The thread's replies in ascending seq order", body = [MessageResponse],
            example = json!([{
                "id": "0193a5c2-5555-7c3a-9d8e-2b4f6a1c0e55", "seq": 4121,
                "conversation_id": "5d1e2f3a-4b5c-4d6e-8f70-81a2b3c4d5e6",
                "sender_id": "0193a5c2-4444-7c3a-9d8e-2b4f6a1c0e55", "recipient_id": null,
                "content": "Friday works for me", "client_message_id": null, "is_read": false,
                "created_at": "2026-12-07T10:20:00Z", "updated_at": "2026-12-07T10:20:00Z",
                "edited_at": null, "deleted_at": null, "deleted_by": null, "reactions": [],
                "pinned_at": null, "pinned_by": null, "reply_to": null,
                "thread_root_id": "0193a5c2-3333-7c3a-9d8e-2b4f6a1c0e55", "thread": null
            }])),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
        (status = 404, description = "No such message, or not in your conversations", body = ErrorBody),
        (status = 422, description = "Bad id or paging parameters", body = ErrorBody),
    )
)]
pub async fn list_thread(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
    path: web::Path<Uuid>,
    params: Query<HistoryParams>,
) -> Result<web::Json<Vec<MessageResponse>>, ApiError> {
    let root = MessageId::from(path.into_inner());
    let (cursor, limit) = params.page()?;
    let page = state
        .run(move |s| s.messages.thread(user.id, root, cursor, limit))
        .await?;
    // Fetched is delivered, as for a history page.
    note_fetched(&state.hub, user.id, page.iter().map(|view| &view.message));
    Ok(web::Json(page.into_iter().map(Into::into).collect()))
}

/// Edit a message you sent.
///
/// Replaces its content (checked as when sending) and sets `edited_at`; every member gets a
/// `message_updated` frame. The same content again changes nothing and announces nothing.
/// `mentions` are decided again from the new content, among the members as they are now:
/// a member no longer named is no longer mentioned.
#[utoipa::path(
    patch, path = "/api/v1/messages/{message_id}", tag = "messages",
    params(("message_id" = Uuid, Path,)),
    request_body(content = EditMessageBody, example = json!({"content": "Hello, everyone! @all"})),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "The message as it now stands", body = MessageResponse,
            example = json!({
                "id": "0b7c6a4e-3f1d-4c7a-9a51-1f0e8b2d4c11", "seq": 42,
                "conversation_id": "5d1e2f3a-4b5c-4d6e-8f70-81a2b3c4d5e6",
                "sender_id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", "recipient_id": null,
                "content": "Hello, everyone! @all", "client_message_id": null, "is_read": false,
                "created_at": "2026-12-06T16:20:00Z", "updated_at": "2026-12-06T16:21:30Z",
                "edited_at": "2026-12-06T16:21:30Z", "deleted_at": null, "deleted_by": null,
                "reactions": [], "pinned_at": null, "pinned_by": null, "reply_to": null,
                "mentions": ["1f2e3d4c-5b6a-4978-8a9b-0c1d2e3f4a5b", "7e6d5c4b-3a29-4180-9f8e-7d6c5b4a3928"]
            })),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
        (status = 403, description = "Someone else's message (`not_the_sender`)", body = ErrorBody),
        (status = 404, description = "No such message, or not in your conversations", body = ErrorBody),
        (status = 409, description = "The message was deleted (`message_deleted`)", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Invalid content, or the id is not a UUID", body = ErrorBody),
    )
)]
pub async fn edit_message(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
    path: web::Path<Uuid>,
    body: Json<EditMessageBody>,
) -> Result<web::Json<MessageResponse>, ApiError> {
    let id = MessageId::from(path.into_inner());
    let content = body.into_inner().content;
    let (view, _) = state
        .run(move |s| s.messages.edit(user.id, id, &content))
        .await?;
    Ok(web::Json(view.into()))
}

/// Delete a message for everyone, or for yourself.
///
/// `scope=everyone` (the default): its sender may, and in a group so may an owner or admin;
/// the other member of a direct chat may not. The content is purged and a tombstone stays in
/// its place (`content: null`, `deleted_at`, `deleted_by`); every member gets a
/// `message_deleted` frame. Deleting again changes nothing and returns the tombstone.
///
/// `scope=me`: any member; the message leaves your history, catch-up, unread counts, pins
/// list and inbox only, and your own connections get a `message_hidden` frame (and a
/// `read_marker_updated` when your marker stood on this message of yours). Repeating it
/// changes nothing.
#[utoipa::path(
    delete, path = "/api/v1/messages/{message_id}", tag = "messages",
    params(("message_id" = Uuid, Path,), DeleteParams),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "Deleted for everyone: the tombstone", body = MessageResponse,
            example = json!({
                "id": "0b7c6a4e-3f1d-4c7a-9a51-1f0e8b2d4c11", "seq": 42,
                "conversation_id": "5d1e2f3a-4b5c-4d6e-8f70-81a2b3c4d5e6",
                "sender_id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", "recipient_id": null,
                "content": null, "client_message_id": null, "is_read": false,
                "created_at": "2026-12-06T16:20:00Z", "updated_at": "2026-12-06T16:25:00Z",
                "edited_at": null, "deleted_at": "2026-12-06T16:25:00Z",
                "deleted_by": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
            })),
        (status = 204, description = "Deleted for you (`scope=me`)"),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
        (status = 403, description = "Neither its sender nor a moderator of the group (`not_the_sender`)", body = ErrorBody),
        (status = 404, description = "No such message, or not in your conversations", body = ErrorBody),
        (status = 422, description = "Unknown scope, or the id is not a UUID", body = ErrorBody),
    )
)]
pub async fn delete_message(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
    path: web::Path<Uuid>,
    params: Query<DeleteParams>,
) -> Result<HttpResponse, ApiError> {
    let id = MessageId::from(path.into_inner());
    let scope = match params.into_inner().scope.as_deref() {
        None => DeleteScope::Everyone,
        Some(raw) => DeleteScope::parse(raw).map_err(|e| DomainError::Validation(vec![e]))?,
    };
    let deleted = state
        .run(move |s| s.messages.delete(user.id, id, scope))
        .await?;
    Ok(match deleted {
        Deleted::ForEveryone { tombstone, .. } => {
            HttpResponse::Ok().json(MessageResponse::from(*tombstone))
        }
        Deleted::ForMe { .. } => HttpResponse::NoContent().finish(),
    })
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
///
/// `unread_mentions` counts the unread messages that mention you (`mentions` holds your id):
/// per conversation, and in total over every conversation. A muted conversation's mentions
/// still count in that total, though its messages stay out of `unread_count`'s: a mute
/// silences a conversation's chatter, not what is addressed to you.
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
