//! `ApiError`: the one JSON error shape, and the one place domain and extractor errors become
//! HTTP statuses.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use chat_domain::attachment::ATTACHMENT_IDS_RULE;
use chat_domain::message::THREAD_ROOT_RULE;
use chat_domain::{DomainError, StoreError};
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A sentence for humans; may change between versions.
    #[schema(example = "conversation 0b7c… not found")]
    pub detail: String,
    /// A stable snake_case code for programs.
    #[schema(example = "conversation_not_found")]
    pub code: String,
    /// For validation errors (422): every field that failed and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldErrorBody>>,
    /// The request's id, as in its `X-Request-Id` response header: quote it when reporting a
    /// problem. Filled in by [`crate::request_id::assign`] on the way out.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "3f1c2a9e-5d0b-4f7a-9c41-2b8e6d7a1f03")]
    pub request_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FieldErrorBody {
    pub field: String,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
#[error("{status}: {detail}")]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    pub errors: Option<Vec<FieldErrorBody>>,
    /// For 429: seconds until a retry can succeed (the `Retry-After` header).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            errors: None,
            retry_after: None,
        }
    }

    pub fn validation(field: &str, message: impl Into<String>) -> Self {
        Self {
            errors: Some(vec![FieldErrorBody {
                field: field.into(),
                message: message.into(),
            }]),
            ..Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_error",
                "the request has invalid fields",
            )
        }
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }

    pub fn too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the body is larger than the server accepts",
        )
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "the server failed to handle the request",
        )
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            detail: self.detail.clone(),
            code: self.code.into(),
            errors: self.errors.clone(),
            request_id: None,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        self.response_with_request_id(None)
    }
}

impl ApiError {
    /// The error's response, its body carrying `request_id` when one is given. Routes leave
    /// it to [`crate::request_id::assign`]; the WebSocket handshake, which answers outside
    /// the middleware, names it here.
    pub fn response_with_request_id(&self, request_id: Option<String>) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 6750 §3: an expired token is an `invalid_token`; say so for generic clients.
            let challenge = if self.code == "token_expired" {
                "Bearer error=\"invalid_token\", error_description=\"the access token expired\""
            } else {
                "Bearer"
            };
            response.insert_header((
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            ));
        }
        if let Some(seconds) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, seconds));
        }
        response.json(ErrorBody {
            request_id,
            ..self.body()
        })
    }
}

impl From<DomainError> for ApiError {
    fn from(error: DomainError) -> Self {
        use StatusCode as S;
        match error {
            DomainError::Validation(fields) => Self {
                errors: Some(
                    fields
                        .iter()
                        .map(|f| FieldErrorBody {
                            field: f.field.into(),
                            message: f.message.clone(),
                        })
                        .collect(),
                ),
                ..Self::new(
                    S::UNPROCESSABLE_ENTITY,
                    "validation_error",
                    "the request has invalid fields",
                )
            },
            DomainError::Unprocessable(detail) => {
                Self::new(S::UNPROCESSABLE_ENTITY, "invalid_operation", detail)
            }
            DomainError::InvalidCredentials => Self::new(
                S::UNAUTHORIZED,
                "invalid_credentials",
                "incorrect username or password",
            ),
            DomainError::Unauthenticated(detail) => Self::unauthorized(detail),
            e @ DomainError::TokenExpired => {
                Self::new(S::UNAUTHORIZED, "token_expired", e.to_string())
            }
            DomainError::Forbidden(detail) => Self::new(S::FORBIDDEN, "forbidden", detail),
            DomainError::NotTheSender(detail) => Self::new(S::FORBIDDEN, "not_the_sender", detail),
            e @ DomainError::MessageDeleted(_) => {
                Self::new(S::CONFLICT, "message_deleted", e.to_string())
            }
            e @ DomainError::NotFound { resource, .. } => {
                let code = match resource {
                    chat_domain::Resource::User => "user_not_found",
                    chat_domain::Resource::Conversation => "conversation_not_found",
                    chat_domain::Resource::Message => "message_not_found",
                    chat_domain::Resource::Attachment => "attachment_not_found",
                    chat_domain::Resource::Session => "session_not_found",
                    chat_domain::Resource::Report => "report_not_found",
                    chat_domain::Resource::Webhook => "webhook_not_found",
                    chat_domain::Resource::DeadLetter => "dead_letter_not_found",
                };
                Self::new(S::NOT_FOUND, code, e.to_string())
            }
            e @ DomainError::Conflict { field } => {
                let code = match field {
                    "username" => "username_taken",
                    "email" => "email_taken",
                    _ => "conflict",
                };
                Self::new(S::CONFLICT, code, e.to_string())
            }
            e @ DomainError::IdempotencyConflict { .. } => {
                Self::new(S::CONFLICT, "idempotency_conflict", e.to_string())
            }
            DomainError::CapReached { code, detail } => Self::new(S::CONFLICT, code, detail),
            e @ DomainError::PayloadTooLarge { .. } => {
                Self::new(S::PAYLOAD_TOO_LARGE, "payload_too_large", e.to_string())
            }
            e @ DomainError::QuotaExceeded { .. } => {
                Self::new(S::PAYLOAD_TOO_LARGE, "quota_exceeded", e.to_string())
            }
            e @ DomainError::UnsupportedMediaType(_) => Self::new(
                S::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                e.to_string(),
            ),
            DomainError::ImageRefused(refused) => {
                let code = match refused {
                    chat_domain::attachment::ImageRefused::TooLarge { .. } => "image_too_large",
                    chat_domain::attachment::ImageRefused::Corrupt => "image_corrupt",
                };
                Self::new(S::UNPROCESSABLE_ENTITY, code, refused.to_string())
            }
            e @ DomainError::RateLimited { retry_after } => {
                let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                Self {
                    retry_after: Some(seconds.max(1)),
                    ..Self::new(S::TOO_MANY_REQUESTS, "rate_limited", e.to_string())
                }
            }
            DomainError::Store(StoreError::Conflict { field }) => Self::new(
                S::CONFLICT,
                "conflict",
                format!("{field} conflicts with a concurrent change; retry"),
            ),
            DomainError::Store(StoreError::Deactivated(user)) => Self::new(
                S::NOT_FOUND,
                "user_not_found",
                DomainError::not_found(chat_domain::Resource::User, user).to_string(),
            ),
            // The message service words this itself; any other caller gets the same field.
            DomainError::Store(StoreError::ReplyTarget) => Self::from(DomainError::invalid(
                "reply_to_id",
                "must be a message of this conversation that is not deleted",
            )),
            DomainError::Store(StoreError::ThreadRoot) => {
                Self::from(DomainError::invalid("thread_root_id", THREAD_ROOT_RULE))
            }
            DomainError::Store(StoreError::Attachments) => {
                Self::from(DomainError::invalid("attachment_ids", ATTACHMENT_IDS_RULE))
            }
            DomainError::Store(StoreError::Missing) => {
                Self::new(S::NOT_FOUND, "not_found", "the resource no longer exists")
            }
            DomainError::Store(StoreError::Unavailable(detail)) => {
                tracing::error!(%detail, "storage unavailable");
                Self::new(
                    S::SERVICE_UNAVAILABLE,
                    "storage_unavailable",
                    "the database is unavailable; retry shortly",
                )
            }
            DomainError::Credentials(detail) => {
                tracing::error!(%detail, "credential backend failed");
                Self::internal()
            }
            // The same words whichever layer noticed: the store refusing a direct message,
            // or the domain refusing a new conversation.
            DomainError::Blocked | DomainError::Store(StoreError::Blocked) => {
                Self::new(S::FORBIDDEN, "blocked", DomainError::Blocked.to_string())
            }
        }
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(_: actix_web::error::BlockingError) -> Self {
        tracing::error!("blocking task was cancelled or panicked");
        Self::internal()
    }
}

/// A JSON body that could not be read by `web::Json` (the routes use
/// [`crate::extract::Json`], whose errors name the field; this covers any other use).
pub fn json_error(
    error: actix_web::error::JsonPayloadError,
    _req: &HttpRequest,
) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as E;
    let api = match &error {
        E::OverflowKnownLength { .. } | E::Overflow { .. } => ApiError::too_large(),
        E::ContentType => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the body must be JSON (Content-Type: application/json)",
        ),
        E::Deserialize(e) if e.is_data() => {
            ApiError::validation("body", crate::extract::client_message(&e.to_string()))
        }
        E::Deserialize(_) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "the body is not valid JSON",
        ),
        _ => ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "the body could not be read",
        ),
    };
    api.into()
}

/// A query string that does not parse (the routes use [`crate::extract::Query`], whose
/// errors name the parameter; this covers any other use).
pub fn query_error(
    error: actix_web::error::QueryPayloadError,
    _req: &HttpRequest,
) -> actix_web::Error {
    use actix_web::error::QueryPayloadError as E;
    let message = match &error {
        E::Deserialize(e) => crate::extract::client_message(&e.to_string()),
        _ => "the query string could not be read".to_owned(),
    };
    ApiError::validation("query", message).into()
}

/// A path parameter that does not parse. Every parameter of this API is a UUID, so the
/// first one that is not is named (`conversation_id`).
pub fn path_error(error: actix_web::error::PathError, req: &HttpRequest) -> actix_web::Error {
    let bad = req
        .match_info()
        .iter()
        .find(|(_, value)| uuid::Uuid::parse_str(value).is_err());
    match bad {
        Some((name, _)) => ApiError::validation(name, "invalid UUID"),
        None => {
            let actix_web::error::PathError::Deserialize(e) = &error else {
                return ApiError::validation("path", "invalid path parameter").into();
            };
            ApiError::validation("path", crate::extract::client_message(&e.to_string()))
        }
    }
    .into()
}

/// A form body that could not be read.
pub fn form_error(
    error: actix_web::error::UrlencodedError,
    _req: &HttpRequest,
) -> actix_web::Error {
    use actix_web::error::UrlencodedError as E;
    let api = match &error {
        E::Overflow { .. } | E::UnknownLength => ApiError::too_large(),
        E::ContentType => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the body must be a form (application/x-www-form-urlencoded)",
        ),
        E::Parse(e) => ApiError::validation("body", crate::extract::client_message(&e.to_string())),
        _ => ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "the body could not be read",
        ),
    };
    api.into()
}
