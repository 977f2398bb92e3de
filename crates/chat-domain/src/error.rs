//! The errors a use case reports to its caller, and the error a port reports to a use case.

use crate::validation::FieldError;

/// The kind of thing that was not found (or is not visible to the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    User,
    Conversation,
    Message,
    Attachment,
    /// A login session of the caller's.
    Session,
    Report,
    Webhook,
    DeadLetter,
}

impl Resource {
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::User => "user",
            Resource::Conversation => "conversation",
            Resource::Message => "message",
            Resource::Attachment => "attachment",
            Resource::Session => "session",
            Resource::Report => "report",
            Resource::Webhook => "webhook",
            Resource::DeadLetter => "dead letter",
        }
    }
}

/// What went wrong in a use case, phrased for the caller. The HTTP edge maps each variant to
/// one status and one stable error code.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// One or more fields did not parse into their domain types.
    #[error("the request has invalid fields")]
    Validation(Vec<FieldError>),
    /// The request is well-formed but asks for something the rules forbid for everyone
    /// (renaming a direct conversation, say).
    #[error("{0}")]
    Unprocessable(String),
    /// Login failed. Deliberately says nothing about which part was wrong.
    #[error("incorrect username or password")]
    InvalidCredentials,
    /// The access token is missing, malformed, or names a user who cannot act.
    #[error("{0}")]
    Unauthenticated(String),
    /// The access token was genuine but its lifetime is over: log in again.
    #[error("token has expired; log in again")]
    TokenExpired,
    /// The caller is known but not allowed to do this.
    #[error("{0}")]
    Forbidden(String),
    /// Only a message's sender may do this to it (edit it; delete it, unless a group's owner
    /// or admin moderates).
    #[error("{0}")]
    NotTheSender(String),
    /// The message was deleted for everyone; it takes no more changes (edits, reactions,
    /// pins).
    #[error("message {0} was deleted")]
    MessageDeleted(crate::MessageId),
    /// The thing does not exist, or the caller may not know that it does.
    #[error("{} {id} not found", .resource.as_str())]
    NotFound { resource: Resource, id: String },
    /// A unique value is already taken.
    #[error("{field} is already taken")]
    Conflict { field: &'static str },
    /// The sender already used this retry key (client message id) in this conversation for a
    /// message with other content: a retry must repeat the message it retries.
    #[error(
        "client_message_id {client_message_id:?} was already used in this conversation for a \
         message with other content"
    )]
    IdempotencyConflict { client_message_id: String },
    /// A cap on how many of something may exist was reached (distinct emoji on a message,
    /// pins in a conversation). `code` names the cap for clients: `too_many_reactions`,
    /// `too_many_pins`.
    #[error("{detail}")]
    CapReached { code: &'static str, detail: String },
    /// Too many attempts: the caller may try again after `retry_after`.
    #[error("too many requests; retry in {} s", .retry_after.as_secs().max(1))]
    RateLimited { retry_after: std::time::Duration },
    /// An upload is larger than the limit (`max_bytes`).
    #[error("the file is larger than the limit of {max_bytes} bytes")]
    PayloadTooLarge { max_bytes: u64 },
    /// An upload would take the user's stored files past their quota.
    #[error("the file would take your uploads past your quota of {quota_bytes} bytes")]
    QuotaExceeded { quota_bytes: u64 },
    /// An upload's content type (sniffed from its bytes) is not on the allow-list.
    #[error("files of type {0} are not accepted")]
    UnsupportedMediaType(String),
    /// An image upload that cannot be inspected: too many pixels, or corrupt.
    #[error(transparent)]
    ImageRefused(#[from] crate::attachment::ImageRefused),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A credential adapter (hasher, token signer) failed for a reason that is not the caller's.
    #[error("credential backend failed: {0}")]
    Credentials(String),
    /// The other user has blocked the caller: no direct conversation with them, no message
    /// into one, no adding them to a group. Says no more than that.
    #[error("this user does not accept this from you")]
    Blocked,
}

impl DomainError {
    pub fn not_found(resource: Resource, id: impl ToString) -> Self {
        DomainError::NotFound {
            resource,
            id: id.to_string(),
        }
    }

    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        DomainError::Validation(vec![FieldError::new(field, message)])
    }
}

/// What a storage port reports. Adapters map their driver's errors into this once.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the write; `field` names the domain field it guards.
    #[error("{field} already exists")]
    Conflict { field: &'static str },
    /// The row the write refers to does not exist (any more).
    #[error("referenced row does not exist")]
    Missing,
    /// The write would reach this deactivated account (a direct message to it).
    #[error("user {0} is deactivated")]
    Deactivated(crate::UserId),
    /// A reply's `reply_to_id` is no message of the reply's conversation, or one deleted for
    /// everyone: nothing was stored.
    #[error("the message replied to is not in this conversation or is deleted")]
    ReplyTarget,
    /// A thread reply's `thread_root_id` is no message of the reply's conversation, one
    /// deleted for everyone, or itself a thread reply: nothing was stored.
    #[error("the thread root is not in this conversation, is deleted or is a thread reply")]
    ThreadRoot,
    /// An `attachment_ids` entry is no upload of the sender's that is still unattached:
    /// nothing was stored.
    #[error("an attachment is not the sender's own unattached upload")]
    Attachments,
    /// The store could not be reached or failed; nothing the caller did caused it.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A direct message whose other member has blocked the sender: nothing was stored.
    #[error("the recipient has blocked the sender")]
    Blocked,
}
