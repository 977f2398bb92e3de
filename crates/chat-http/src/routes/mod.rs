//! REST routes, one module per resource, each registering itself in `configure`.

pub mod auth;
pub mod conversations;
pub mod health;
pub mod messages;
pub mod users;

use actix_web::web;

/// Registers every REST route and the WebSocket gateway under `/api/v1`, and `/health` at
/// the root.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(health::configure).service(
        web::scope("/api/v1")
            .configure(auth::configure)
            .configure(users::configure)
            .configure(conversations::configure)
            .configure(messages::configure)
            .configure(crate::ws::configure),
    );
}
