//! REST routes, one module per resource, each registering itself in `configure`.

pub mod attachments;
pub mod auth;
pub mod conversations;
pub mod health;
pub mod member_state;
pub mod messages;
pub mod presence;
pub mod reactions;
pub mod search;
pub mod sessions;
pub mod sync;
pub mod users;
pub mod webhooks;
// The browser client at `/` (issue #18); not `web`, which names actix's module here.
pub mod web_client;

// Blocking, reports and server admins (issue #17).
pub mod admin;
pub mod blocks;
pub mod reports;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, Resource, web};

use crate::error::ApiError;

/// Registers every REST route and the WebSocket gateway under `/api/v1`, and `/health` and
/// the web client (`/`, `/assets/`) at the root.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(health::configure).service(
        // Most traffic is conversations and messages: their routes are tried first.
        web::scope("/api/v1")
            .configure(conversations::configure)
            .configure(member_state::configure)
            .configure(messages::configure)
            .configure(reactions::configure)
            .configure(sync::configure)
            .configure(search::configure)
            .configure(attachments::configure)
            .configure(auth::configure)
            .configure(sessions::configure)
            .configure(users::configure)
            .configure(blocks::configure)
            .configure(reports::configure)
            // Before `admin`, which might otherwise take the `/admin/webhooks` paths.
            .configure(webhooks::configure)
            .configure(admin::configure)
            .configure(presence::configure)
            .configure(crate::ws::configure),
    );
    cfg.configure(web_client::configure);
}

/// A resource whose other methods get 405 with an `Allow` header naming `allow`, instead of
/// falling through to the app's 404.
pub(crate) fn resource(path: &str, allow: &'static str) -> Resource {
    web::resource(path).default_service(web::to(move || async move {
        let mut response = actix_web::ResponseError::error_response(&ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("this endpoint accepts {allow}"),
        ));
        response
            .headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static(allow));
        Ok::<HttpResponse, actix_web::Error>(response)
    }))
}
