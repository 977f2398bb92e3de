//! The OpenAPI document served at `/openapi.json` and rendered at `/docs`.

use utoipa::openapi::security::{
    Flow, HttpAuthScheme, HttpBuilder, OAuth2, Password, Scopes, SecurityScheme,
};
use utoipa::{Modify, OpenApi};

use crate::routes::{auth, conversations, health, messages, users};
use crate::ws;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "chatd",
        description = "A real-time chat backend: accounts, direct and group conversations, \
                       messages, read receipts and unread counts over REST, and live delivery \
                       over one WebSocket at /api/v1/ws (protocol in docs/websocket.md).",
    ),
    paths(
        health::health,
        auth::signup,
        auth::login,
        auth::logout,
        auth::me,
        users::list_users,
        users::get_me,
        users::update_me,
        users::deactivate_me,
        users::get_user,
        conversations::create_conversation,
        conversations::list_conversations,
        conversations::get_conversation,
        conversations::rename_conversation,
        conversations::add_members,
        conversations::set_role,
        conversations::remove_member,
        conversations::send_message,
        conversations::list_messages,
        messages::mark_read,
        messages::unread_count,
        ws::connect,
    ),
    // Referenced only from a parameter, which utoipa does not collect by itself.
    components(schemas(crate::dto::messages::HistoryCursorParams)),
    modifiers(&Security),
    tags(
        (name = "auth", description = "Sign-up and tokens"),
        (name = "users", description = "Profiles"),
        (name = "conversations", description = "Direct conversations and groups"),
        (name = "messages", description = "Messages, read receipts, unread counts"),
        (name = "realtime", description = "The WebSocket gateway"),
        (name = "health", description = "Operations"),
    )
)]
pub struct ApiDoc;

/// Declares the two ways to present a token: a bearer header, and the OAuth2 password flow
/// that the docs page's Authorize button uses against the login endpoint.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "oauth2",
            SecurityScheme::OAuth2(OAuth2::new([Flow::Password(Password::new(
                "/api/v1/auth/login",
                Scopes::new(),
            ))])),
        );
    }
}
