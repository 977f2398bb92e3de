//! Conversations, their members, and the messages in them.

use actix_web::{HttpResponse, web};
use chat_domain::conversation::Role;
use chat_domain::paging::Page;
use chat_domain::{ConversationId, UserId};
use uuid::Uuid;

use crate::auth::CurrentUser;
use crate::dto::conversations::{
    AddMembersBody, ConversationResponse, ConversationSummaryResponse, CreateConversationBody,
    RenameConversationBody, SetRoleBody,
};
use crate::dto::member_state::InboxParams;
use crate::dto::messages::{HistoryCursorParams, HistoryParams, MessageResponse, SendMessageBody};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Json, Query};
use crate::routes::resource;
use crate::state::AppState;
use crate::ws::delivery::note_fetched;

pub fn configure(cfg: &mut web::ServiceConfig) {
    // Routes are tried in order, each pattern with a path parameter through a regex: the
    // busiest one goes first.
    cfg.service(
        resource("/conversations/{conversation_id}/messages", "GET, POST")
            .route(web::post().to(send_message))
            .route(web::get().to(list_messages)),
    )
    .service(
        resource("/conversations", "GET, POST")
            .route(web::post().to(create_conversation))
            .route(web::get().to(list_conversations)),
    )
    .service(
        resource("/conversations/{conversation_id}", "GET, PUT")
            .route(web::get().to(get_conversation))
            .route(web::put().to(rename_conversation)),
    )
    .service(
        resource("/conversations/{conversation_id}/members", "POST")
            .route(web::post().to(add_members)),
    )
    .service(
        resource(
            "/conversations/{conversation_id}/members/{user_id}",
            "PUT, DELETE",
        )
        .route(web::put().to(set_role))
        .route(web::delete().to(remove_member)),
    );
}

/// Start a direct conversation or a group.
///
/// With one other participant and no `is_group`, returns the pair's existing direct
/// conversation (200) or creates it (201).
#[utoipa::path(
    post, path = "/api/v1/conversations", tag = "conversations",
    request_body = CreateConversationBody,
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 201, description = "Created", body = ConversationResponse, links(
            ("History" = (operation_id = "list_messages", parameters(("conversation_id" = "$response.body#/id")))),
            ("Send" = (operation_id = "send_message", parameters(("conversation_id" = "$response.body#/id")))),
            ("AddMembers" = (operation_id = "add_members", parameters(("conversation_id" = "$response.body#/id")))),
            ("SetRole" = (operation_id = "set_role", parameters(("conversation_id" = "$response.body#/id"), ("user_id" = "$response.body#/participants/1/id")))),
            ("RemoveMember" = (operation_id = "remove_member", parameters(("conversation_id" = "$response.body#/id"), ("user_id" = "$response.body#/participants/1/id")))),
        )),
        (status = 200, description = "The pair's existing direct conversation", body = ConversationResponse, links(
            ("History" = (operation_id = "list_messages", parameters(("conversation_id" = "$response.body#/id")))),
            ("Send" = (operation_id = "send_message", parameters(("conversation_id" = "$response.body#/id")))),
            ("AddMembers" = (operation_id = "add_members", parameters(("conversation_id" = "$response.body#/id")))),
            ("SetRole" = (operation_id = "set_role", parameters(("conversation_id" = "$response.body#/id"), ("user_id" = "$response.body#/participants/1/id")))),
            ("RemoveMember" = (operation_id = "remove_member", parameters(("conversation_id" = "$response.body#/id"), ("user_id" = "$response.body#/participants/1/id")))),
        )),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
        (status = 404, description = "A participant does not exist or is deactivated", body = ErrorBody),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Invalid request", body = ErrorBody),
        (status = 429, description = "Too many conversations created or members added; see Retry-After", body = ErrorBody),
    )
)]
pub async fn create_conversation(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
    body: Json<CreateConversationBody>,
) -> Result<HttpResponse, ApiError> {
    let request = body.into_inner().into();
    let (details, created) = state
        .run(move |s| s.conversations.create(user.id, request))
        .await?;
    let body = ConversationResponse::from(details);
    Ok(if created {
        HttpResponse::Created().json(body)
    } else {
        HttpResponse::Ok().json(body)
    })
}

/// Your conversations, most recent activity first.
///
/// `?archived=false` is the inbox proper, `?archived=true` the archive; left out, every
/// conversation is listed, archived or not. Each carries your own `muted_until` and
/// `archived`.
#[utoipa::path(
    get, path = "/api/v1/conversations", tag = "conversations",
    params(InboxParams),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "Your inbox", body = [ConversationSummaryResponse]),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
        (status = 422, description = "Bad paging parameters", body = ErrorBody),
    )
)]
pub async fn list_conversations(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
    params: Query<InboxParams>,
) -> Result<web::Json<Vec<ConversationSummaryResponse>>, ApiError> {
    let page = Page::parse(params.limit, params.offset)
        .map_err(|e| ApiError::validation(e.field, e.message))?;
    let archived = params.archived;
    let inbox = state
        .run(move |s| s.conversations.inbox(user.id, page, archived))
        .await?;
    Ok(web::Json(inbox.into_iter().map(Into::into).collect()))
}

/// A conversation you are in, with its participants and their roles.
#[utoipa::path(
    get, path = "/api/v1/conversations/{conversation_id}", tag = "conversations",
    params(("conversation_id" = Uuid, Path,)),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "The conversation", body = ConversationResponse),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
        (status = 404, description = "No such conversation, or you are not in it", body = ErrorBody),
        (status = 422, description = "The id is not a UUID", body = ErrorBody),
    )
)]
pub async fn get_conversation(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
    path: web::Path<Uuid>,
) -> Result<web::Json<ConversationResponse>, ApiError> {
    let id = ConversationId::from(path.into_inner());
    let details = state
        .run(move |s| s.conversations.details(user.id, id))
        .await?;
    Ok(web::Json(details.into()))
}

/// Rename a group (owner or admin).
#[utoipa::path(
    put, path = "/api/v1/conversations/{conversation_id}", tag = "conversations",
    params(("conversation_id" = Uuid, Path,)),
    request_body = RenameConversationBody,
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "The renamed group", body = ConversationResponse),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
        (status = 403, description = "Not an owner or admin", body = ErrorBody),
        (status = 404, description = "No such conversation, or you are not in it", body = ErrorBody),
        (status = 409, description = "client_message_id already used here for other content (`idempotency_conflict`)", body = ErrorBody),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Invalid name, or a direct conversation", body = ErrorBody),
    )
)]
pub async fn rename_conversation(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
    path: web::Path<Uuid>,
    body: Json<RenameConversationBody>,
) -> Result<web::Json<ConversationResponse>, ApiError> {
    let id = ConversationId::from(path.into_inner());
    let name = body.into_inner().name;
    let details = state
        .run(move |s| s.conversations.rename(user.id, id, &name))
        .await?;
    Ok(web::Json(details.into()))
}

/// Add members to a group (owner or admin).
#[utoipa::path(
    post, path = "/api/v1/conversations/{conversation_id}/members", tag = "conversations",
    params(("conversation_id" = Uuid, Path,)),
    request_body = AddMembersBody,
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "The group with its members", body = ConversationResponse),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
        (status = 403, description = "Not an owner or admin", body = ErrorBody),
        (status = 404, description = "No such conversation, or a user does not exist or is deactivated", body = ErrorBody),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Invalid request, or a direct conversation", body = ErrorBody),
        (status = 429, description = "Too many conversations created or members added; see Retry-After", body = ErrorBody),
    )
)]
pub async fn add_members(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
    path: web::Path<Uuid>,
    body: Json<AddMembersBody>,
) -> Result<web::Json<ConversationResponse>, ApiError> {
    let id = ConversationId::from(path.into_inner());
    let user_ids = body
        .into_inner()
        .user_ids
        .into_iter()
        .map(Into::into)
        .collect();
    let details = state
        .run(move |s| s.conversations.add_members(user.id, id, user_ids))
        .await?;
    Ok(web::Json(details.into()))
}

/// Remove a member (owner or admin), or leave (yourself).
#[utoipa::path(
    delete, path = "/api/v1/conversations/{conversation_id}/members/{user_id}", tag = "conversations",
    params(("conversation_id" = Uuid, Path,), ("user_id" = Uuid, Path,)),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
        (status = 403, description = "Not allowed to remove this member", body = ErrorBody),
        (status = 404, description = "No such conversation or member", body = ErrorBody),
        (status = 422, description = "Bad id, or a direct conversation", body = ErrorBody),
    )
)]
pub async fn remove_member(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (conversation, target) = path.into_inner();
    let (id, target) = (ConversationId::from(conversation), UserId::from(target));
    state
        .run(move |s| s.conversations.remove_member(user.id, id, target))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Change a member's role (owner only). Making someone `owner` hands ownership over.
#[utoipa::path(
    put, path = "/api/v1/conversations/{conversation_id}/members/{user_id}", tag = "conversations",
    params(("conversation_id" = Uuid, Path,), ("user_id" = Uuid, Path,)),
    request_body = SetRoleBody,
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "The group with its members", body = ConversationResponse),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
        (status = 403, description = "Not the owner", body = ErrorBody),
        (status = 404, description = "No such conversation or member", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Unknown role, your own role, or a direct conversation", body = ErrorBody),
    )
)]
pub async fn set_role(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
    path: web::Path<(Uuid, Uuid)>,
    body: Json<SetRoleBody>,
) -> Result<web::Json<ConversationResponse>, ApiError> {
    let (conversation, target) = path.into_inner();
    let role = Role::parse(&body.role)
        .ok_or_else(|| ApiError::validation("role", "must be owner, admin or member"))?;
    let (id, target) = (ConversationId::from(conversation), UserId::from(target));
    let details = state
        .run(move |s| s.conversations.set_role(user.id, id, target, role))
        .await?;
    Ok(web::Json(details.into()))
}

/// Send a message.
///
/// A retry with a `client_message_id` you already used in this conversation returns the
/// stored message with 200 and uses up no `seq`; the same id with other content is 409
/// `idempotency_conflict`. In another conversation the same id is another message.
///
/// With `reply_to_id` the message replies to another message of the same conversation and
/// carries `reply_to: {"id", "sender_id", "snippet"}`, the snippet read from the original as it
/// now stands (null once the original is deleted). A `reply_to_id` naming no message of this
/// conversation, or a deleted one, is 422 `validation_error` on `reply_to_id` (not 404: the
/// conversation exists, and a message you cannot read is refused exactly as a missing one).
///
/// With `thread_root_id` the message goes into that message's thread: it carries
/// `thread_root_id`, is read from `GET /api/v1/messages/{id}/thread` and catch-up but not
/// from this conversation's history or the inbox, counts as unread only for the thread's
/// participants (its root's sender and everyone who replied in it), and the root's `thread`
/// summary counts it. A `thread_root_id` naming no message of this conversation, a deleted
/// one, or a thread reply is 422 `validation_error` on `thread_root_id`.
/// `@username` in the content (any case; not inside a word, so `bob@example.com` is no
/// mention) mentions that member, and `@all` in a group every member: the message carries
/// `mentions`, the members mentioned but you, ascending by id, decided as it is stored. A
/// name that is no member's is plain text, and `@all` in a direct conversation mentions
/// nobody. Each mentioned member's `unread_mentions` counts it until they read it.
#[utoipa::path(
    post, path = "/api/v1/conversations/{conversation_id}/messages", tag = "messages",
    params(("conversation_id" = Uuid, Path,)),
    request_body(content = SendMessageBody, examples(
        ("message" = (value = json!({"content": "Hello!", "client_message_id": "7d1c2f0e-tab-3"}))),
        ("reply" = (value = json!({"content": "Ship it!", "reply_to_id": "0193a5c2-7f1e-7c3a-9d8e-2b4f6a1c0e55"}))),
        ("thread reply" = (value = json!({"content": "Friday works for me", "thread_root_id": "0193a5c2-3333-7c3a-9d8e-2b4f6a1c0e55"}))),
        ("mention" = (value = json!({"content": "@bob can you review? cc @all"}))),
    )),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 201, description = "Stored", body = MessageResponse,
            links(
            ("MarkRead" = (operation_id = "mark_read", parameters(("message_id" = "$response.body#/id")))),
        ),
            example = json!({
                "id": "0193a5c2-8a2b-7c3a-9d8e-2b4f6a1c0e55", "seq": 43,
                "conversation_id": "0193a5c2-1111-7c3a-9d8e-2b4f6a1c0e55",
                "sender_id": "0193a5c2-3333-7c3a-9d8e-2b4f6a1c0e55", "recipient_id": null,
                "content": "Ship it! @alice", "client_message_id": null, "is_read": false,
                "created_at": "2026-12-07T10:01:00Z", "updated_at": "2026-12-07T10:01:00Z",
                "edited_at": null, "deleted_at": null, "deleted_by": null,
                "reactions": [], "pinned_at": null, "pinned_by": null,
                "reply_to": {
                    "id": "0193a5c2-7f1e-7c3a-9d8e-2b4f6a1c0e55",
                    "sender_id": "0193a5c2-2222-7c3a-9d8e-2b4f6a1c0e55",
                    "snippet": "Ship it?"
                },
                "thread_root_id": null, "thread": null,
                "mentions": ["0193a5c2-2222-7c3a-9d8e-2b4f6a1c0e55"]
            })),
        (status = 200, description = "Already stored by an earlier send with this client_message_id", body = MessageResponse),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
        (status = 404, description = "No such conversation, or you are not in it", body = ErrorBody),
        (status = 409, description = "client_message_id already used here for other content (`idempotency_conflict`)", body = ErrorBody),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Invalid content, a `reply_to_id` that is no message of this conversation or a deleted one, or a `thread_root_id` that is no message of this conversation, a deleted one or a thread reply", body = ErrorBody,
            examples(
                ("reply_to_id" = (value = json!({"detail": "the request has invalid fields", "code": "validation_error",
                    "errors": [{"field": "reply_to_id", "message": "must be a message of this conversation that is not deleted"}]}))),
                ("thread_root_id" = (value = json!({"detail": "the request has invalid fields", "code": "validation_error",
                    "errors": [{"field": "thread_root_id", "message": "must be a message of this conversation that is not deleted and is no thread reply"}]}))),
            )),
        (status = 429, description = "Sending too fast; see Retry-After", body = ErrorBody),
    )
)]
pub async fn send_message(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
    path: web::Path<Uuid>,
    body: Json<SendMessageBody>,
) -> Result<HttpResponse, ApiError> {
    let id = ConversationId::from(path.into_inner());
    let request = body.into_inner().into();
    let (message, created) = state.send_message(user.id, id, request).await?;
    let body = MessageResponse::from(message);
    Ok(if created {
        HttpResponse::Created().json(body)
    } else {
        HttpResponse::Ok().json(body)
    })
}

/// A page of history, ascending by `seq`.
///
/// No cursor: the latest `limit`. `before`: the `limit` just before that seq. `after`: the
/// `limit` just after it.
#[utoipa::path(
    get, path = "/api/v1/conversations/{conversation_id}/messages", tag = "messages",
    params(
        ("conversation_id" = Uuid, Path,),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 200, description = "1–200, default 50."),
        ("cursor" = Option<HistoryCursorParams>, Query, style = Form, explode,
            description = "`before=<seq>` or `after=<seq>`, not both (422)"),
    ),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "Messages in ascending seq order", body = [MessageResponse]),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
        (status = 404, description = "No such conversation, or you are not in it", body = ErrorBody),
        (status = 422, description = "Bad id or paging parameters", body = ErrorBody),
    )
)]
pub async fn list_messages(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
    path: web::Path<Uuid>,
    params: Query<HistoryParams>,
) -> Result<web::Json<Vec<MessageResponse>>, ApiError> {
    let id = ConversationId::from(path.into_inner());
    let (cursor, limit) = params.page()?;
    let page = state
        .run(move |s| s.messages.history(user.id, id, cursor, limit))
        .await?;
    // Fetched is delivered: noted for the next delivery flush, no write on this request.
    note_fetched(&state.hub, user.id, page.iter().map(|view| &view.message));
    Ok(web::Json(page.into_iter().map(Into::into).collect()))
}
