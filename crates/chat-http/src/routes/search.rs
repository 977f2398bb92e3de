//! Full-text search over the messages you can read.

use actix_web::web;

use crate::auth::CurrentUser;
use crate::dto::search::{SearchPageResponse, SearchParams};
use crate::error::{ApiError, ErrorBody};
use crate::extract::Query;
use crate::routes::resource;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/search/messages", "GET").route(web::get().to(search_messages)));
}

/// Search messages.
///
/// Finds the messages of the conversations you are a member of now, thread replies
/// included, that contain every term of `q`; never a message deleted for everyone nor one
/// you deleted for yourself. An edited message is found by its current text only. Each hit
/// is the message as history shows it, with a plain-text `snippet` and the character ranges
/// in it that matched. Page on with `next_cursor`; a page never repeats a hit of an earlier
/// one.
#[utoipa::path(
    get, path = "/api/v1/search/messages", tag = "messages",
    params(SearchParams),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "A page of hits, best first", body = SearchPageResponse,
            example = json!({
                "hits": [{
                    "message": {
                        "id": "0b7c6a4e-3f1d-4c7a-9a51-1f0e8b2d4c11", "seq": 42,
                        "conversation_id": "5d1e2f3a-4b5c-4d6e-8f70-81a2b3c4d5e6",
                        "sender_id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", "recipient_id": null,
                        "content": "Shall we deploy to prod after staging is green?",
                        "client_message_id": null, "is_read": true,
                        "created_at": "2026-12-06T16:20:00Z", "updated_at": "2026-12-06T16:20:00Z",
                        "edited_at": null, "deleted_at": null, "deleted_by": null,
                        "reactions": [], "pinned_at": null, "pinned_by": null, "reply_to": null,
                        "thread_root_id": null, "thread": null, "mentions": []
                    },
                    "snippet": "Shall we deploy to prod after staging is green?",
                    "highlights": [[9, 15], [16, 23], [30, 37]]
                }],
                "next_cursor": "r3ff80000000000002a"
            })),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
        (status = 404, description = "`conversation_id` is not one of your conversations", body = ErrorBody),
        (status = 422, description = "No word in `q`, or a bad parameter or cursor", body = ErrorBody),
    )
)]
pub async fn search_messages(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
    params: Query<SearchParams>,
) -> Result<web::Json<SearchPageResponse>, ApiError> {
    let request = params.into_inner().into();
    let page = state
        .run(move |s| s.search.messages(user.id, request))
        .await?;
    Ok(web::Json(page.into()))
}
