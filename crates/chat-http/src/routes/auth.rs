//! Sign-up, login and "who am I".

use actix_web::http::header::{self, ContentType};
use actix_web::{HttpRequest, HttpResponse, web};

use chat_domain::service::LoginFrom;

use crate::auth::{CurrentSession, CurrentUser};
use crate::dto::users::{LoginBody, SignupBody, TokenResponse, UserResponse};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Json, form_from_bytes, json_from_slice};
use crate::routes::resource;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/auth/signup", "POST").route(web::post().to(signup)))
        .service(resource("/auth/login", "POST").route(web::post().to(login)))
        .service(resource("/auth/logout", "POST").route(web::post().to(logout)))
        .service(resource("/auth/me", "GET").route(web::get().to(me)));
}

/// Create an account.
#[utoipa::path(
    post, path = "/api/v1/auth/signup", tag = "auth",
    request_body = SignupBody,
    responses(
        (status = 201, description = "The new account", body = UserResponse),
        (status = 409, description = "Username or email taken", body = ErrorBody),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Invalid fields", body = ErrorBody),
        (status = 429, description = "Too many sign-ups from this address; see Retry-After", body = ErrorBody),
    )
)]
pub async fn signup(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Json<SignupBody>,
) -> Result<HttpResponse, ApiError> {
    let request = body.into_inner().into();
    let client = client_address(&req);
    let user = state
        .run(move |s| s.accounts.sign_up(request, client.as_deref()))
        .await?;
    Ok(HttpResponse::Created().json(UserResponse::from(user)))
}

/// Exchange a username (or email) and password for a bearer token and a refresh token.
///
/// Accepts a JSON body or the OAuth2 password-grant form, so the docs' Authorize button works.
/// Each login opens a session, listed under `device_name` (or else the `User-Agent`) at
/// `GET /api/v1/auth/sessions`. The access token is short-lived (`expires_in`); redeem the
/// `refresh_token` at `POST /api/v1/auth/refresh` for a new pair before it runs out. A
/// client that ignores the refresh token simply logs in again when the access token expires.
/// The answer carries a `device_token`: send it with your next login to this account and
/// failed logins by others (which lock the account for clients without one) do not stop
/// you; your own failures then count against that device alone.
#[utoipa::path(
    post, path = "/api/v1/auth/login", tag = "auth",
    request_body(
        content(
            (LoginBody = "application/json"),
            (LoginBody = "application/x-www-form-urlencoded"),
        )
    ),
    responses(
        (status = 200, description = "A bearer token", body = TokenResponse),
        (status = 401, description = "Wrong username or password", body = ErrorBody),
        (status = 400, description = "Malformed JSON, or a form whose `grant_type` is not `password` (`unsupported_grant_type`)", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Neither JSON nor a form", body = ErrorBody),
        (status = 422, description = "Missing fields, or an invalid `device_name`", body = ErrorBody),
        (status = 429, description = "Too many failed logins for this account or address (or, with a device token, for this device); see Retry-After", body = ErrorBody),
    )
)]
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let credentials = parse_login(&req, &body)?;
    let client = client_address(&req);
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let token = state
        .run(move |s| {
            s.accounts.log_in_from(
                &credentials.username,
                &credentials.password,
                LoginFrom {
                    client: client.as_deref(),
                    device_token: credentials.device_token.as_deref(),
                    device_name: credentials.device_name.as_deref(),
                    user_agent: user_agent.as_deref(),
                },
            )
        })
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header(header::CacheControl(vec![header::CacheDirective::NoStore]))
        .json(TokenResponse::from(token)))
}

/// The peer's IP address, the key of per-address limits. Forwarding headers are not trusted:
/// behind a proxy, every client shares the proxy's address budget.
pub(crate) fn client_address(req: &HttpRequest) -> Option<String> {
    req.peer_addr().map(|addr| addr.ip().to_string())
}

fn parse_login(req: &HttpRequest, body: &[u8]) -> Result<LoginBody, ApiError> {
    let mime = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    match mime.as_deref() {
        Some("application/x-www-form-urlencoded") => {
            check_grant_type(body)?;
            form_from_bytes(body)
        }
        Some(m) if m == ContentType::json().0.essence_str() || m.ends_with("+json") => {
            json_from_slice(body)
        }
        _ => Err(ApiError::new(
            actix_web::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send JSON or an application/x-www-form-urlencoded form",
        )),
    }
}

/// An OAuth2 form may name its grant; only the password grant (or none) is served here, and
/// any other gets OAuth2's `unsupported_grant_type` (RFC 6749 §5.2) rather than a login
/// attempt with whatever fields it carries.
fn check_grant_type(body: &[u8]) -> Result<(), ApiError> {
    let grant = form_urlencoded::parse(body).find(|(key, _)| key == "grant_type");
    match grant {
        None => Ok(()),
        Some((_, value)) if value == "password" => Ok(()),
        Some(_) => Err(ApiError::new(
            actix_web::http::StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only the OAuth2 password grant (grant_type=password) is supported",
        )),
    }
}

/// End the session of the token this request carries (for a token from before sessions,
/// revoke that token): its access and refresh tokens stop working and WebSocket connections
/// opened with them close. The user's other sessions stay.
#[utoipa::path(
    post, path = "/api/v1/auth/logout", tag = "auth",
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 204, description = "The token is revoked"),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
    )
)]
pub async fn logout(
    state: web::Data<AppState>,
    CurrentSession(session): CurrentSession,
) -> Result<HttpResponse, ApiError> {
    state.run(move |s| s.accounts.log_out(&session)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The authenticated caller.
#[utoipa::path(
    get, path = "/api/v1/auth/me", tag = "auth",
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "You", body = UserResponse),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
    )
)]
pub async fn me(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
) -> Result<web::Json<UserResponse>, ApiError> {
    // The caller's identity may come from the token cache; the profile is read fresh.
    let user = state.run(move |s| s.accounts.own_account(user.id)).await?;
    Ok(web::Json(user.into()))
}
