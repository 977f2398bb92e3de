//! The bearer-token extractor: a handler that takes [`CurrentUser`] runs only for a request
//! with a valid token of an active user.

use std::future::Future;
use std::pin::Pin;

use actix_web::http::header::{self, HeaderMap};
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use chat_domain::service::Authenticated;
use chat_domain::user::User;

use crate::error::ApiError;
use crate::state::AppState;

/// The authenticated caller. Their identity is current; the rest of the profile may be a few
/// seconds old (see [`crate::auth_cache`]).
pub struct CurrentUser(pub User);

/// The authenticated caller with the claims of the token they presented (for logout).
pub struct CurrentSession(pub Authenticated);

/// The token in an `Authorization: Bearer <token>` header, if the header is there at all.
pub fn bearer_token(headers: &HeaderMap) -> Option<Result<String, ApiError>> {
    let value = headers.get(header::AUTHORIZATION)?;
    let token = value
        .to_str()
        .ok()
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| ApiError::unauthorized("the Authorization header must be 'Bearer <token>'"));
    Some(token)
}

impl FromRequest for CurrentSession {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer_token(req.headers());
        Box::pin(async move {
            let state = state.ok_or_else(ApiError::internal)?;
            let token =
                token.ok_or_else(|| ApiError::unauthorized("authentication required"))??;
            Ok(CurrentSession(state.authenticate(token).await?))
        })
    }
}

impl FromRequest for CurrentUser {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let session = CurrentSession::from_request(req, payload);
        Box::pin(async move { Ok(CurrentUser(session.await?.0.user)) })
    }
}
