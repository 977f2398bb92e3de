//! Assembling the application: extractor limits and error handlers, routes, the realtime
//! gateway, the docs, and the fallback that keeps every error JSON.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{StatusCode, Uri, header};
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers};
use actix_web::{HttpResponse, web};
use utoipa_swagger_ui::SwaggerUi;

use crate::error::{self, ApiError, ErrorBody};
use crate::openapi;
use crate::routes;

/// The largest request body accepted, JSON or form.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Registers the whole API. The caller adds `web::Data<AppState>` to the app.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(MAX_BODY_BYTES)
            .error_handler(error::json_error),
    )
    .app_data(
        web::FormConfig::default()
            .limit(MAX_BODY_BYTES)
            .error_handler(error::form_error),
    )
    .app_data(web::PayloadConfig::default().limit(MAX_BODY_BYTES))
    .app_data(web::QueryConfig::default().error_handler(error::query_error))
    .app_data(web::PathConfig::default().error_handler(error::path_error))
    .configure(routes::configure)
    .service(web::redirect("/docs", "/docs/"))
    .service(
        SwaggerUi::new("/docs/{_:.*}").external_url_unchecked("/openapi.json", openapi::document()),
    )
    .default_service(web::to(not_found));
}

/// Serves `/api/v1/conversations/` as `/api/v1/conversations` (and `/health/` as `/health`):
/// a client that adds a slash gets the endpoint, not a 404. The docs keep their own slash,
/// which the Swagger UI's relative links depend on (`/docs` redirects to `/docs/`).
pub fn trim_trailing_slash(req: &mut ServiceRequest) {
    let path = req.path();
    if path.len() <= 1 || !path.ends_with('/') || path == "/docs/" || path.starts_with("/docs/") {
        return;
    }
    let trimmed = path.trim_end_matches('/');
    let trimmed = if trimmed.is_empty() { "/" } else { trimmed };
    let uri = match req.query_string() {
        "" => trimmed.to_owned(),
        query => format!("{trimmed}?{query}"),
    };
    if let Ok(uri) = uri.parse::<Uri>() {
        req.match_info_mut().get_mut().update(&uri);
        req.head_mut().uri = uri;
    }
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint",
    ))
}

/// Rewrites any error response that is not already JSON (actix's own plain-text and empty
/// 4xx/5xx responses, such as 405 or a payload error) into the API's error shape.
pub fn json_errors<B: MessageBody + 'static>() -> ErrorHandlers<B> {
    ErrorHandlers::new().default_handler(|res: ServiceResponse<B>| {
        let is_json = res
            .response()
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
        if is_json {
            return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
        }
        let status = res.status();
        let code = match status {
            StatusCode::NOT_FOUND => "not_found".to_owned(),
            StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed".to_owned(),
            StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large".to_owned(),
            s if s.is_server_error() => "internal_error".to_owned(),
            s => s
                .canonical_reason()
                .unwrap_or("error")
                .to_ascii_lowercase()
                .replace([' ', '-'], "_"),
        };
        let detail = status.canonical_reason().unwrap_or("error").to_owned();
        // The headers stay (`Allow`, CORS, security headers); only the body is replaced.
        let (req, old) = res.into_parts();
        let mut response = HttpResponse::build(status);
        for (name, value) in old.headers() {
            if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
                response.append_header((name.clone(), value.clone()));
            }
        }
        let response = response.json(ErrorBody {
            detail,
            code,
            errors: None,
            request_id: None,
        });
        Ok(ErrorHandlerResponse::Response(
            ServiceResponse::new(req, response).map_into_right_body(),
        ))
    })
}
