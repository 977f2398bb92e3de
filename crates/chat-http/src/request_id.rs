//! Request ids: every request carries an `X-Request-Id`, taken from the client when it is a
//! sane token or made here, so that one id ties together the client's report, the response,
//! every log line of the request and its JSON error body.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::InternalError;
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse, ResponseError};
use tracing::Instrument;

use crate::error::ApiError;

/// The header the id travels in, both ways.
pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The longest id taken from a client.
pub const MAX_LEN: usize = 128;

/// A request's id, in the request's extensions for handlers that want it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// The client's id if it is sane (1 to [`MAX_LEN`] characters of `A-Z a-z 0-9 . _ -`: safe in
/// a log line and a header), else a fresh UUID.
pub fn from_headers(headers: &HeaderMap) -> RequestId {
    let given = headers
        .get(&HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|id| is_sane(id));
    RequestId(given.map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned))
}

fn is_sane(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl RequestId {
    /// The id as a header value (always valid: it is plain ASCII).
    pub fn header_value(&self) -> HeaderValue {
        HeaderValue::from_str(&self.0).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
    }
}

/// Middleware (`actix_web::middleware::from_fn`), the outermost: settles the request's id,
/// puts it in the request's own header (so actix's request log line can print it), runs the
/// request inside a `request` span carrying it, and returns it in the response's header and
/// in the `request_id` field of a JSON error body, an error that no inner layer turned into a
/// response included.
pub async fn assign(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let id = from_headers(req.headers());
    let value = id.header_value();
    req.headers_mut().insert(HEADER, value.clone());
    req.extensions_mut().insert(id.clone());
    let span = tracing::info_span!("request", request_id = %id.0);
    match next.call(req).instrument(span).await {
        Ok(response) => {
            let (request, response) = response.map_into_boxed_body().into_parts();
            let mut response = with_id_in_error_body(response, &id).await;
            response.headers_mut().insert(HEADER, value);
            Ok(ServiceResponse::new(request, response))
        }
        Err(error) => {
            let mut response = with_id_in_error_body(error.error_response(), &id).await;
            response.headers_mut().insert(HEADER, value);
            Err(InternalError::from_response(error, response).into())
        }
    }
}

/// Adds `"request_id"` to a JSON error body (an object). Error bodies are small and already
/// in memory, so reading one whole costs nothing a success pays.
async fn with_id_in_error_body(response: HttpResponse, id: &RequestId) -> HttpResponse {
    let is_json_error = (response.status().is_client_error()
        || response.status().is_server_error())
        && response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !is_json_error {
        return response;
    }
    let (response, body) = response.into_parts();
    let Ok(bytes) = actix_web::body::to_bytes(body).await else {
        return ApiError::internal().error_response();
    };
    let body = match serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&bytes) {
        Ok(mut object) => {
            object.insert("request_id".into(), id.0.clone().into());
            serde_json::to_vec(&object).map_or(bytes, Into::into)
        }
        Err(_) => bytes,
    };
    response.set_body(BoxBody::new(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(id: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(HEADER, HeaderValue::from_str(id).unwrap());
        headers
    }

    #[test]
    fn a_sane_id_is_kept_and_anything_else_replaced_by_a_uuid() {
        assert_eq!(from_headers(&with("abc-123_x.y")).0, "abc-123_x.y");
        let long = "a".repeat(MAX_LEN);
        assert_eq!(from_headers(&with(&long)).0, long);
        for bad in ["", "has space", "semi;colon", "ü", &"a".repeat(MAX_LEN + 1)] {
            let mut headers = HeaderMap::new();
            // From bytes: a header may carry non-ASCII octets, which are not text.
            headers.insert(HEADER, HeaderValue::from_bytes(bad.as_bytes()).unwrap());
            let made = from_headers(&headers).0;
            assert!(uuid::Uuid::parse_str(&made).is_ok(), "{bad:?} gave {made}");
        }
        assert!(uuid::Uuid::parse_str(&from_headers(&HeaderMap::new()).0).is_ok());
    }
}
