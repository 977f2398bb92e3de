//! [`SessionError`]: how a use case's refusal reaches a WebSocket client, as an `error` frame.
//! The codes and details are those of the REST error body (a test holds them equal), but
//! nothing here knows HTTP statuses.

use chat_domain::message::THREAD_ROOT_RULE;
use chat_domain::{DomainError, Resource, StoreError};

use crate::error::FieldErrorBody;

/// A use case's error as the session answers it: the `code`, `detail` and (for validation
/// errors) failing fields of an `error` frame.
#[derive(Debug)]
pub struct SessionError {
    pub code: &'static str,
    pub detail: String,
    pub errors: Option<Vec<FieldErrorBody>>,
}

impl SessionError {
    fn new(code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
            errors: None,
        }
    }

    pub fn internal() -> Self {
        Self::new("internal_error", "the server failed to handle the request")
    }
}

/// Whether the error says the caller's token no longer lets them act, so a connection
/// authenticated with it must end.
pub fn refuses_token(error: &DomainError) -> bool {
    matches!(
        error,
        DomainError::InvalidCredentials
            | DomainError::Unauthenticated(_)
            | DomainError::TokenExpired
    )
}

impl From<DomainError> for SessionError {
    fn from(error: DomainError) -> Self {
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
                ..Self::new("validation_error", "the request has invalid fields")
            },
            DomainError::Unprocessable(detail) => Self::new("invalid_operation", detail),
            DomainError::InvalidCredentials => {
                Self::new("invalid_credentials", "incorrect username or password")
            }
            DomainError::Unauthenticated(detail) => Self::new("unauthorized", detail),
            e @ DomainError::TokenExpired => Self::new("token_expired", e.to_string()),
            DomainError::Forbidden(detail) => Self::new("forbidden", detail),
            DomainError::NotTheSender(detail) => Self::new("not_the_sender", detail),
            e @ DomainError::MessageDeleted(_) => Self::new("message_deleted", e.to_string()),
            e @ DomainError::NotFound { resource, .. } => {
                let code = match resource {
                    Resource::User => "user_not_found",
                    Resource::Conversation => "conversation_not_found",
                    Resource::Message => "message_not_found",
                    Resource::Attachment => "attachment_not_found",
                    Resource::Session => "session_not_found",
                    Resource::Report => "report_not_found",
                    Resource::Webhook => "webhook_not_found",
                    Resource::DeadLetter => "dead_letter_not_found",
                };
                Self::new(code, e.to_string())
            }
            e @ DomainError::Conflict { field } => {
                let code = match field {
                    "username" => "username_taken",
                    "email" => "email_taken",
                    _ => "conflict",
                };
                Self::new(code, e.to_string())
            }
            e @ DomainError::IdempotencyConflict { .. } => {
                Self::new("idempotency_conflict", e.to_string())
            }
            DomainError::CapReached { code, detail } => Self::new(code, detail),
            // Uploads are HTTP only; the codes are the same.
            e @ DomainError::PayloadTooLarge { .. } => {
                Self::new("payload_too_large", e.to_string())
            }
            e @ DomainError::QuotaExceeded { .. } => Self::new("quota_exceeded", e.to_string()),
            e @ DomainError::UnsupportedMediaType(_) => {
                Self::new("unsupported_media_type", e.to_string())
            }
            e @ DomainError::ImageRefused(_) => Self::new("image_refused", e.to_string()),
            e @ DomainError::RateLimited { .. } => Self::new("rate_limited", e.to_string()),
            DomainError::Store(StoreError::Conflict { field }) => Self::new(
                "conflict",
                format!("{field} conflicts with a concurrent change; retry"),
            ),
            DomainError::Store(StoreError::Deactivated(user)) => Self::new(
                "user_not_found",
                DomainError::not_found(Resource::User, user).to_string(),
            ),
            DomainError::Store(StoreError::ReplyTarget) => Self::from(DomainError::invalid(
                "reply_to_id",
                "must be a message of this conversation that is not deleted",
            )),
            DomainError::Store(StoreError::ThreadRoot) => {
                Self::from(DomainError::invalid("thread_root_id", THREAD_ROOT_RULE))
            }
            DomainError::Store(StoreError::Attachments) => Self::from(DomainError::invalid(
                "attachment_ids",
                chat_domain::attachment::ATTACHMENT_IDS_RULE,
            )),
            DomainError::Store(StoreError::Missing) => {
                Self::new("not_found", "the resource no longer exists")
            }
            DomainError::Store(StoreError::Unavailable(detail)) => {
                tracing::error!(%detail, "storage unavailable");
                Self::new(
                    "storage_unavailable",
                    "the database is unavailable; retry shortly",
                )
            }
            DomainError::Blocked | DomainError::Store(StoreError::Blocked) => {
                Self::new("blocked", DomainError::Blocked.to_string())
            }
            DomainError::Credentials(detail) => {
                tracing::error!(%detail, "credential backend failed");
                Self::internal()
            }
        }
    }
}

impl From<actix_web::error::BlockingError> for SessionError {
    fn from(_: actix_web::error::BlockingError) -> Self {
        tracing::error!("blocking task was cancelled or panicked");
        Self::internal()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chat_domain::{MessageId, UserId};

    use super::*;
    use crate::error::ApiError;

    /// One error of every kind the domain reports.
    fn every_error(user: UserId, message: MessageId) -> Vec<DomainError> {
        vec![
            DomainError::invalid("content", "must not be empty"),
            DomainError::Unprocessable("a direct conversation has no name".into()),
            DomainError::InvalidCredentials,
            DomainError::Unauthenticated("token has been revoked".into()),
            DomainError::TokenExpired,
            DomainError::Forbidden("only an owner may".into()),
            DomainError::NotTheSender("only the sender may edit".into()),
            DomainError::MessageDeleted(message),
            DomainError::not_found(Resource::User, user),
            DomainError::not_found(Resource::Conversation, user),
            DomainError::not_found(Resource::Message, message),
            DomainError::Conflict { field: "username" },
            DomainError::Conflict { field: "email" },
            DomainError::Conflict { field: "name" },
            DomainError::IdempotencyConflict {
                client_message_id: "c-1".into(),
            },
            DomainError::CapReached {
                code: "too_many_pins",
                detail: "at most 50 pins".into(),
            },
            DomainError::RateLimited {
                retry_after: Duration::from_millis(1500),
            },
            StoreError::Conflict { field: "seq" }.into(),
            StoreError::Deactivated(user).into(),
            StoreError::ReplyTarget.into(),
            StoreError::ThreadRoot.into(),
            StoreError::Missing.into(),
            StoreError::Unavailable("connection refused".into()).into(),
            DomainError::Credentials("bcrypt failed".into()),
        ]
    }

    fn fields(errors: Option<Vec<FieldErrorBody>>) -> Option<Vec<(String, String)>> {
        errors.map(|all| all.into_iter().map(|f| (f.field, f.message)).collect())
    }

    #[test]
    fn an_error_frame_says_what_the_rest_error_body_says() {
        let (user, message) = (UserId::new(), MessageId::new());
        let (session, rest): (Vec<_>, Vec<_>) = every_error(user, message)
            .into_iter()
            .zip(every_error(user, message))
            .map(|(a, b)| (SessionError::from(a), ApiError::from(b)))
            .unzip();
        for (frame, body) in session.into_iter().zip(rest) {
            assert_eq!(
                (frame.code, &frame.detail, fields(frame.errors)),
                (body.code, &body.detail, fields(body.errors))
            );
        }
    }

    #[test]
    fn only_the_errors_the_rest_api_answers_401_end_a_connection() {
        for error in every_error(UserId::new(), MessageId::new()) {
            let refused = refuses_token(&error);
            let status = ApiError::from(error).status;
            assert_eq!(refused, status == actix_web::http::StatusCode::UNAUTHORIZED);
        }
    }
}
