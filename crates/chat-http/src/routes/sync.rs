//! The change feed: catching up on everything that changed while a client was away.

use actix_web::web;
use chat_domain::service::FeedQuery;

use crate::auth::CurrentUser;
use crate::dto::sync::{SyncParams, SyncResponse};
use crate::error::{ApiError, ErrorBody};
use crate::extract::Query;
use crate::routes::resource;
use crate::state::AppState;
use crate::ws::delivery::note_fetched;
use crate::ws::protocol::ServerFrame;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/sync", "GET").route(web::get().to(sync)));
}

/// Your change feed after a position.
///
/// Every change you may see — new messages, changed and deleted messages, messages you
/// hid, read markers, your own conversation settings, conversations created, renamed or
/// whose members changed, and your removal from one — once each, at the position (`seq`)
/// of its latest change, as it now stands, in ascending order. Each event is the JSON
/// object of the WebSocket frame a live client would have received for it. Applying the
/// events in order leaves a client with what fresh reads show; there is no retention limit.
/// Of a conversation you were removed from you see the removal and nothing else.
#[utoipa::path(
    get, path = "/api/v1/sync", tag = "messages",
    params(SyncParams),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "A page of your change feed", body = SyncResponse),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
        (status = 422, description = "`since` below 0, or `limit` outside 1–1000", body = ErrorBody),
    )
)]
pub async fn sync(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
    params: Query<SyncParams>,
) -> Result<web::Json<SyncResponse>, ApiError> {
    let query = FeedQuery::parse(params.since, params.limit)?;
    let (page, now) = state
        .run(move |s| Ok((s.sync.feed(user.id, query)?, s.sync.now())))
        .await?;
    // Fetched is delivered: noted for the next delivery flush, no write on this request.
    note_fetched(&state.hub, user.id, page.messages());
    let events = page
        .events
        .into_iter()
        .map(|event| ServerFrame::for_feed_event(event, now))
        .collect();
    Ok(web::Json(SyncResponse {
        events,
        next: page.next.0,
        has_more: page.has_more,
    }))
}
