//! The OpenAPI document served at `/openapi.json` and rendered at `/docs`.

use utoipa::openapi::security::{
    Flow, HttpAuthScheme, HttpBuilder, OAuth2, Password, Scopes, SecurityScheme,
};
use utoipa::{Modify, OpenApi};

use crate::routes::sessions;
use crate::routes::webhooks;
use crate::routes::{
    admin, attachments, auth, blocks, conversations, health, member_state, messages, presence,
    reactions, reports, search, sync, users,
};
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
        member_state::set_read_marker,
        member_state::update_settings,
        messages::edit_message,
        messages::delete_message,
        messages::mark_read,
        messages::list_thread,
        messages::unread_count,
        search::search_messages,
        reactions::add_reaction,
        reactions::remove_reaction,
        reactions::list_pins,
        reactions::pin_message,
        reactions::unpin_message,
        sync::sync,
        attachments::upload,
        attachments::download,
        attachments::thumbnail,
        ws::connect,
        sessions::refresh,
        sessions::list,
        sessions::end,
        sessions::revoke_others,
        blocks::block_user,
        blocks::unblock_user,
        blocks::list_blocks,
        reports::create_report,
        admin::list_users,
        admin::deactivate_user,
        admin::reactivate_user,
        admin::list_reports,
        admin::resolve_report,
        admin::delete_message,
        admin::audit_log,
        webhooks::create_webhook,
        webhooks::list_webhooks,
        webhooks::delete_webhook,
        webhooks::list_dead_letters,
        webhooks::replay_dead_letter,
        presence::get_presence,
        presence::query_presence,
        presence::get_privacy,
        presence::set_privacy,
    ),
    // Referenced only from a parameter, which utoipa does not collect by itself.
    components(schemas(crate::dto::messages::HistoryCursorParams)),
    modifiers(&Security),
    tags(
        (name = "auth", description = "Sign-up and tokens"),
        (name = "users", description = "Profiles"),
        (name = "conversations", description = "Direct conversations and groups"),
        (name = "messages", description = "Messages, reactions, pins, read receipts, unread counts, the change feed"),
        (name = "attachments", description = "Files: upload, then send with a message's attachment_ids; download"),
        (name = "realtime", description = "The WebSocket gateway"),
        (name = "health", description = "Operations"),
        (name = "reports", description = "Reporting messages and users to the server admins"),
        (name = "admin", description = "Server admins: users, reports, moderation, the audit log"),
        (name = "admin", description = "Server admins: webhooks and their dead letters"),
    )
)]
pub struct ApiDoc;

/// The document as served. utoipa 5 writes the fields of a response's Link Object in snake
/// case (`operation_id`), where OpenAPI names them in camel case (`operationId`); clients and
/// fuzzers that follow links (schemathesis's stateful phase) would not see them. The names are
/// put right here, once, until utoipa does.
pub fn document() -> serde_json::Value {
    let mut document = serde_json::to_value(ApiDoc::openapi())
        .unwrap_or_else(|_| unreachable!("an OpenAPI document always serializes"));
    camel_case_links(&mut document);
    document
}

fn camel_case_links(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            if let Some(Value::Object(links)) = map.get_mut("links") {
                for link in links.values_mut() {
                    let Value::Object(link) = link else { continue };
                    for (snake, camel) in [
                        ("operation_id", "operationId"),
                        ("operation_ref", "operationRef"),
                        ("request_body", "requestBody"),
                    ] {
                        if let Some(field) = link.remove(snake) {
                            link.insert(camel.to_owned(), field);
                        }
                    }
                }
            }
            map.values_mut().for_each(camel_case_links);
        }
        Value::Array(items) => items.iter_mut().for_each(camel_case_links),
        _ => {}
    }
}

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
