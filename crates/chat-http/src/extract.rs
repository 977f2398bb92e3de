//! Request extractors whose errors a client can act on: JSON bodies and query strings are
//! read with `serde_path_to_error`, so a 422 names the field that failed (`content`,
//! `participant_ids[1]`, `limit`) and says what was expected in words a client knows
//! ("expected a string", "invalid UUID"), never a Rust type name.

use std::ops::{Deref, DerefMut};

use actix_web::dev::Payload;
use actix_web::http::{StatusCode, header};
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, FieldErrorBody};

/// A JSON request body, like `web::Json`, with field-level errors.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T> Json<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for Json<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> DerefMut for Json<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_json = is_json(req);
        let bytes = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            if !is_json {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "the body must be JSON (Content-Type: application/json)",
                )
                .into());
            }
            let bytes = bytes.await.map_err(|error| {
                if error.as_response_error().status_code() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::too_large()
                } else {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "bad_request",
                        "the body could not be read",
                    )
                }
            })?;
            Ok(Json(json_from_slice(&bytes)?))
        })
    }
}

/// `application/json` or any `+json` type.
fn is_json(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .is_some_and(|m| m == "application/json" || m.ends_with("+json"))
}

/// Reads a JSON object body: 400 `malformed_json` when it is not JSON, 422
/// `validation_error` naming the field when it is JSON of the wrong shape.
pub fn json_from_slice<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    // serde's derived structs also accept an array of the fields in order; every body of
    // this API is an object, and the documents say so.
    if body.trim_ascii_start().starts_with(b"[") {
        return Err(field_error(".", "invalid type: array, expected an object"));
    }
    let malformed = |error: serde_json::Error| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!(
                "the body is not valid JSON: {}",
                strip_position(&error.to_string())
            ),
        )
    };
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if inner.is_data() {
            field_error(&path, &inner.to_string())
        } else {
            malformed(inner)
        }
    })?;
    deserializer.end().map_err(malformed)?;
    Ok(value)
}

/// Reads an `application/x-www-form-urlencoded` body; errors as for JSON.
pub fn form_from_bytes<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let deserializer = serde_urlencoded::Deserializer::new(form_urlencoded::parse(body));
    serde_path_to_error::deserialize(deserializer)
        .map_err(|error| field_error(&error.path().to_string(), &error.inner().to_string()))
}

/// A query string, like `web::Query`, with field-level errors.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T> Query<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for Query<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned> FromRequest for Query<T> {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(form_from_bytes(req.query_string().as_bytes()).map(Query))
    }
}

/// A 422 for the field at `path` (`.` is the whole body).
fn field_error(path: &str, raw: &str) -> ApiError {
    let message = client_message(raw);
    let field = field_name(path, raw);
    ApiError {
        errors: Some(vec![FieldErrorBody {
            field,
            message: message.clone(),
        }]),
        ..ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
            format!("the request has invalid fields: {message}"),
        )
    }
}

/// The field an error is about: its path, or for a missing field (reported at the object
/// that lacks it) the path of that field.
fn field_name(path: &str, raw: &str) -> String {
    let missing = raw
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    match (path, missing) {
        (".", Some(name)) => name.to_owned(),
        (".", None) => "body".to_owned(),
        (parent, Some(name)) => format!("{parent}.{name}"),
        (path, None) => path.to_owned(),
    }
}

/// Removes serde_json's ` at line 1 column 15`.
fn strip_position(raw: &str) -> &str {
    match raw.rfind(" at line ") {
        Some(at) if raw[at..].contains(" column ") => &raw[..at],
        _ => raw,
    }
}

/// Rewrites a deserializer's message into the vocabulary of JSON and of the API: no Rust
/// type names (`struct SendMessageBody`, `u64`), no parser internals.
pub fn client_message(raw: &str) -> String {
    let raw = strip_position(raw);
    if let Some(reason) = raw.split_once("UUID parsing failed: ").map(|(_, r)| r) {
        return format!("invalid UUID: {reason}");
    }
    if raw.contains("UUID parsing failed") || raw.contains("invalid length") && raw.contains("UUID")
    {
        return "invalid UUID".to_owned();
    }
    // Integers in query strings and forms are parsed from text by `str::parse`.
    match raw {
        "invalid digit found in string" | "cannot parse integer from empty string" => {
            return "expected an integer".to_owned();
        }
        "number too large to fit in target type" | "number too small to fit in target type" => {
            return "integer out of range".to_owned();
        }
        "provided string was not `true` or `false`" => {
            return "expected `true` or `false`".to_owned();
        }
        _ => {}
    }
    let Some((before, expected)) = raw.split_once(", expected ") else {
        return raw.to_owned();
    };
    // serde's "one of" lists are field or variant names, the API's own words.
    if expected.starts_with("one of ") || expected.starts_with('`') {
        return raw.to_owned();
    }
    let what = describe_expected(expected);
    // "invalid length 0" of a whole struct read from an array is not about length at all.
    if before.starts_with("invalid length") && what == "an object" {
        return "expected an object".to_owned();
    }
    format!("{before}, expected {what}")
}

/// "struct Foo with 2 elements" -> "an object", "u64" -> "a non-negative integer", and so on.
fn describe_expected(expected: &str) -> &str {
    let first = expected.split_whitespace().next().unwrap_or("");
    match first {
        "struct" | "map" => "an object",
        "enum" | "variant" => "one of the documented values",
        "tuple" | "sequence" => "an array",
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a non-negative integer",
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "an integer",
        "f32" | "f64" => "a number",
        "a" if expected == "a sequence" => "an array",
        "a" if expected == "a map" => "an object",
        _ if first.contains("::") || first.chars().next().is_some_and(char::is_uppercase) => {
            "a different value"
        }
        _ => expected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        content: String,
        ids: Vec<uuid::Uuid>,
        count: Option<u64>,
    }

    fn error(json: &str) -> (String, String) {
        let error = json_from_slice::<Body>(json.as_bytes()).unwrap_err();
        assert_eq!(error.status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
        let field = error.errors.unwrap().remove(0);
        (field.field, field.message)
    }

    #[test]
    fn a_wrong_type_names_the_field_and_the_json_type_expected() {
        assert_eq!(
            error(r#"{"content": 5, "ids": []}"#),
            (
                "content".into(),
                "invalid type: integer `5`, expected a string".into()
            )
        );
        assert_eq!(
            error(r#"{"content": "a", "ids": [], "count": -1}"#),
            (
                "count".into(),
                "invalid value: integer `-1`, expected a non-negative integer".into()
            )
        );
    }

    #[test]
    fn a_bad_array_element_is_named_by_its_index() {
        let (field, message) =
            error(r#"{"content": "a", "ids": ["0b7c4f4e-3d4f-4b8e-9d47-6c7c3f0a1b2c", "nope"]}"#);
        assert_eq!(field, "ids[1]");
        assert!(message.starts_with("invalid UUID"), "{message}");
    }

    #[test]
    fn missing_and_unknown_fields_are_named() {
        assert_eq!(
            error(r#"{"ids": []}"#),
            ("content".into(), "missing field `content`".into())
        );
        let (field, message) = error(r#"{"content": "a", "ids": [], "admin": true}"#);
        assert_eq!(field, "admin");
        assert!(message.starts_with("unknown field `admin`"), "{message}");
    }

    #[test]
    fn a_body_of_the_wrong_shape_never_names_a_rust_type() {
        for json in [r#"["a", []]"#, r#"["a"]"#, "[]", "5", "null", r#""text""#] {
            let (field, message) = error(json);
            assert_eq!(field, "body", "{json}");
            assert!(message.contains("expected an object"), "{json}: {message}");
            assert!(!message.contains("Body"), "{json}: {message}");
        }
    }

    #[test]
    fn malformed_json_is_a_400_without_positions_of_the_parser() {
        let error = json_from_slice::<Body>(b"{\"content\": ").unwrap_err();
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
        assert_eq!(error.code, "malformed_json");
        let trailing = json_from_slice::<Body>(br#"{"content": "a", "ids": []} x"#).unwrap_err();
        assert_eq!(trailing.code, "malformed_json");
    }

    #[test]
    fn query_strings_name_the_parameter() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Params {
            limit: Option<i64>,
        }
        let error = form_from_bytes::<Params>(b"limit=abc").unwrap_err();
        let field = error.errors.unwrap().remove(0);
        assert_eq!(
            (field.field.as_str(), field.message.as_str()),
            ("limit", "expected an integer")
        );
    }
}
