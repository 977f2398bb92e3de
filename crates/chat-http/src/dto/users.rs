//! Accounts, tokens and profiles.

use chat_domain::service::{LoggedIn, ProfileChanges, SignupRequest};
use chat_domain::user::{PublicProfile, User};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupBody {
    /// 3–32 letters, digits, `_`, `.` or `-`; unique ignoring case.
    #[schema(
        example = "alice",
        min_length = 3,
        max_length = 32,
        pattern = "^[A-Za-z0-9_.-]{3,32}$"
    )]
    pub username: String,
    #[schema(
        example = "alice@example.com",
        max_length = 254,
        pattern = "^[\\x21-\\x3F\\x41-\\x7E]{1,64}@([A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?\\.)+[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$"
    )]
    pub email: String,
    /// 8 characters to 72 bytes.
    #[schema(example = "correct horse battery", min_length = 8, max_length = 72)]
    pub password: String,
    /// At most 100 characters on one line, no control or text-direction characters.
    #[schema(
        example = "Alice Liddell",
        max_length = 100,
        pattern = "^[^\\x00-\\x1F\\x7F-\\x9F\\u061C\\u200E\\u200F\\u202A-\\u202E\\u2066-\\u2069]*$"
    )]
    pub full_name: Option<String>,
}

impl From<SignupBody> for SignupRequest {
    fn from(body: SignupBody) -> Self {
        Self {
            username: body.username,
            email: body.email,
            password: body.password,
            full_name: body.full_name,
        }
    }
}

/// Login credentials, as JSON or as an OAuth2 password-grant form.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginBody {
    /// The username or the email address.
    #[schema(example = "alice", min_length = 1, max_length = 254)]
    pub username: String,
    #[schema(example = "correct horse battery", min_length = 1)]
    pub password: String,
    /// The `device_token` of this client's last successful login to this account, if it
    /// has one. It spares the client the lockout that others' failed attempts cause.
    pub device_token: Option<String>,
    /// What to list this login's session as (`"Alice's phone"`); without it, the
    /// `User-Agent`. One line, at most 100 characters.
    #[schema(example = "Alice's phone", max_length = 100)]
    pub device_name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `bearer`.
    #[schema(example = "bearer")]
    pub token_type: &'static str,
    /// Seconds until the token expires.
    #[schema(example = 900)]
    pub expires_in: i64,
    /// Keep this and send it with this account's next login: failed logins by others do
    /// not lock out a client that presents it. Not an access token; it grants nothing else.
    pub device_token: String,
    /// Redeem it at `POST /api/v1/auth/refresh` for a new access token (and a new refresh
    /// token) before `expires_in` runs out. Single use; keep it secret.
    pub refresh_token: String,
    /// Seconds until the refresh token expires.
    #[schema(example = 5_184_000)]
    pub refresh_expires_in: i64,
    /// The login session this opened (see `GET /api/v1/auth/sessions`).
    pub session_id: uuid::Uuid,
}

impl From<LoggedIn> for TokenResponse {
    fn from(login: LoggedIn) -> Self {
        Self {
            access_token: login.access.token,
            token_type: "bearer",
            expires_in: login.access.expires_in.num_seconds(),
            device_token: login.device_token,
            refresh_token: login.refresh.token,
            refresh_expires_in: login.refresh.expires_in.num_seconds(),
            session_id: login.refresh.session_id.as_uuid(),
        }
    }
}

/// Your own account, as only you see it: with your email address.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserResponse {
    pub id: Uuid,
    pub username: String,
    pub email: String,
    pub full_name: Option<String>,
    pub avatar_url: Option<String>,
    pub bio: Option<String>,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<User> for UserResponse {
    fn from(user: User) -> Self {
        Self {
            id: user.id.as_uuid(),
            username: user.username.as_str().to_owned(),
            email: user.email.as_str().to_owned(),
            full_name: user.full_name,
            avatar_url: user.avatar_url,
            bio: user.bio,
            is_active: user.is_active,
            created_at: user.created_at,
            updated_at: user.updated_at,
        }
    }
}

/// Another user as every signed-in user sees them. Email addresses are shown to their owner
/// only.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PublicUserResponse {
    pub id: Uuid,
    pub username: String,
    pub full_name: Option<String>,
    pub avatar_url: Option<String>,
    pub bio: Option<String>,
    /// `false` once the user deactivated their account.
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
}

impl From<PublicProfile> for PublicUserResponse {
    fn from(user: PublicProfile) -> Self {
        Self {
            id: user.id.as_uuid(),
            username: user.username.as_str().to_owned(),
            full_name: user.full_name,
            avatar_url: user.avatar_url,
            bio: user.bio,
            is_active: user.is_active,
            created_at: user.created_at,
        }
    }
}

/// A profile edit. Absent fields stay as they are; an empty string clears an optional field.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMeBody {
    #[schema(
        max_length = 254,
        pattern = "^[\\x21-\\x3F\\x41-\\x7E]{1,64}@([A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?\\.)+[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$"
    )]
    pub email: Option<String>,
    /// At most 100 characters on one line, no control or text-direction characters.
    #[schema(
        max_length = 100,
        pattern = "^[^\\x00-\\x1F\\x7F-\\x9F\\u061C\\u200E\\u200F\\u202A-\\u202E\\u2066-\\u2069]*$"
    )]
    pub full_name: Option<String>,
    /// An absolute http(s) URL.
    #[schema(
        max_length = 2048,
        pattern = "^(|https?://[^\\s\\x00-\\x1F\\x7F-\\x9F]+)$"
    )]
    pub avatar_url: Option<String>,
    /// At most 500 characters; line breaks are the only control characters allowed.
    #[schema(max_length = 500, pattern = "^[^\\x00-\\x09\\x0B-\\x1F\\x7F-\\x9F]*$")]
    pub bio: Option<String>,
    /// A new password (8 characters to 72 bytes); requires `current_password`.
    #[schema(min_length = 8, max_length = 72)]
    pub password: Option<String>,
    pub current_password: Option<String>,
}

impl From<UpdateMeBody> for ProfileChanges {
    fn from(body: UpdateMeBody) -> Self {
        Self {
            email: body.email,
            full_name: body.full_name,
            avatar_url: body.avatar_url,
            bio: body.bio,
            password: body.password,
            current_password: body.current_password,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeactivateBody {
    /// Your current password.
    pub password: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserListParams {
    /// A case-insensitive substring of the username or full name, or a whole email address
    /// (a part of an address matches nothing).
    pub q: Option<String>,
    /// 1–200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// Default 0.
    #[param(minimum = 0, maximum = 4294967295_i64)]
    pub offset: Option<i64>,
}
