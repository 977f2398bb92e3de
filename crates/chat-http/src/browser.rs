//! What browsers are told: CORS for the REST API (`CHAT_ALLOWED_ORIGINS`, through
//! `actix-cors`) and the security headers every response carries.
//!
//! WebSocket handshakes do not pass through here: the upgrade service checks their `Origin`
//! against the same list itself (`ws/upgrade.rs`).

use actix_cors::Cors;
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::DefaultHeaders;

use crate::request_id;

/// The Content-Security-Policy of every response that does not set its own (attachments
/// do). Same-origin scripts and styles only, plus inline styles, which the Swagger UI at
/// `/docs/` sets on its elements; no inline scripts (the Swagger UI's initializer and the web
/// client are files); images also from `blob:` and `data:` (upload previews, the Swagger
/// UI's icons); `fetch` to this origin and WebSockets to any host (`ws:`/`wss:`, since
/// `'self'` does not cover them in every browser); no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' blob: data:; \
     connect-src 'self' ws: wss:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; \
     base-uri 'none'; form-action 'self'";

/// `X-Content-Type-Options`, `X-Frame-Options`, `Referrer-Policy` and
/// [`CONTENT_SECURITY_POLICY`] on every response; a response that already has one keeps its
/// own.
pub fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add((header::REFERRER_POLICY, "no-referrer"))
        .add((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
}

/// CORS for the origins in `allowed` (`*`: any), compared as the WebSocket handshake
/// compares them (whole origin, case-insensitive). Preflights are answered; credentials are
/// off (the API authenticates with a bearer token, never a cookie). A request from any other
/// origin is served as if it had none, without CORS headers, so the browser keeps its
/// response from the page; a preflight from one is refused.
pub fn cors(allowed: &[String]) -> Cors {
    let cors = Cors::default()
        .allowed_methods([
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::RANGE,
            header::IF_NONE_MATCH,
            request_id::HEADER,
        ])
        .expose_headers([
            request_id::HEADER,
            header::RETRY_AFTER,
            header::ETAG,
            header::CONTENT_RANGE,
            header::ACCEPT_RANGES,
        ])
        .max_age(3600)
        .block_on_origin_mismatch(false);
    if allowed.iter().any(|origin| origin == "*") {
        return cors.allow_any_origin();
    }
    let allowed: Vec<String> = allowed.to_vec();
    cors.allowed_origin_fn(move |origin: &HeaderValue, _| {
        origin.to_str().is_ok_and(|origin| {
            allowed
                .iter()
                .any(|allowed| allowed.eq_ignore_ascii_case(origin))
        })
    })
}
