//! The error contract: every failure is JSON with a stable code and the right status, and
//! the operational endpoints answer.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::spawn_app;

async fn error_body(response: reqwest::Response) -> Value {
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let body: Value = response.json().await.unwrap();
    assert!(
        body["detail"].is_string() && body["code"].is_string(),
        "{body}"
    );
    body
}

#[tokio::test]
async fn malformed_json_is_a_400_and_a_wrong_shape_a_422() {
    let app = spawn_app().await;
    let signup = format!("{}/api/v1/auth/signup", app.address);
    let send = |body: &'static str| {
        app.client
            .post(&signup)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let malformed = send("{\"username\": ").await.unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_body(malformed).await["code"], "malformed_json");
    let wrong_type = send(r#"{"username": 5, "email": "a@b.co", "password": "12345678"}"#)
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_body(wrong_type).await["code"], "validation_error");
    let unknown_field =
        send(r#"{"username":"abc","email":"a@b.co","password":"12345678","admin":true}"#)
            .await
            .unwrap();
    assert_eq!(unknown_field.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn a_wrong_content_type_is_a_415() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(format!("{}/api/v1/auth/signup", app.address))
        .header("content-type", "text/plain")
        .body("username=alice")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(error_body(response).await["code"], "unsupported_media_type");
    let login = app
        .client
        .post(format!("{}/api/v1/auth/login", app.address))
        .header("content-type", "text/plain")
        .body("alice")
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn a_request_with_too_many_headers_is_refused_with_431() {
    let app = spawn_app().await;
    let mut request = app.client.get(format!("{}/health", app.address));
    for i in 0..120 {
        request = request.header(format!("x-filler-{i}"), "x");
    }
    let response = request.send().await.unwrap();
    assert_eq!(
        response.status(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
}

#[tokio::test]
async fn an_oversized_body_is_a_413() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let direct = app.direct(&alice, &bob).await;
    let huge = serde_json::json!({"content": "x".repeat(70 * 1024)});
    let response = app
        .post(
            &format!("/api/v1/conversations/{direct}/messages"),
            &alice.token,
            huge,
        )
        .await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_body(response).await["code"], "payload_too_large");
}

#[tokio::test]
async fn bad_ids_are_422_unknown_methods_405_and_unknown_routes_a_json_404() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bad_id = app
        .get("/api/v1/conversations/not-a-uuid", &alice.token)
        .await;
    assert_eq!(bad_id.status(), StatusCode::UNPROCESSABLE_ENTITY);
    error_body(bad_id).await;
    let wrong_method = app.request(Method::DELETE, "/health", None, None).await;
    assert_eq!(wrong_method.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong_method.headers()["allow"], "GET, HEAD");
    assert_eq!(error_body(wrong_method).await["code"], "method_not_allowed");
    let nowhere = app.get("/api/v1/nowhere", &alice.token).await;
    assert_eq!(nowhere.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_body(nowhere).await["code"], "not_found");
}

#[tokio::test]
async fn health_reports_the_database_after_a_real_query() {
    let app = spawn_app().await;
    let response = app.request(Method::GET, "/health", None, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["database"], "ok");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));

    // Break the database under the running server: the check must notice rather than
    // answer from memory.
    let db = chat_sqlite::Database::open(
        app.dir.path().join("chat.db").to_str().unwrap(),
        &chat_sqlite::SqliteOptions::default(),
    )
    .unwrap();
    diesel::connection::SimpleConnection::batch_execute(
        &mut *db.conn().unwrap(),
        "ALTER TABLE users RENAME TO users_gone",
    )
    .unwrap();
    let down = app.request(Method::GET, "/health", None, None).await;
    assert_eq!(down.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = down.json().await.unwrap();
    assert_eq!(body["status"], "unavailable");
    assert!(
        body["database"]
            .as_str()
            .unwrap()
            .starts_with("unavailable")
    );
}

#[tokio::test]
async fn the_openapi_document_describes_every_endpoint_and_the_docs_page_is_served() {
    let app = spawn_app().await;
    let spec: Value = app
        .request(Method::GET, "/openapi.json", None, None)
        .await
        .json()
        .await
        .unwrap();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    let paths = spec["paths"].as_object().unwrap();
    for path in [
        "/api/v1/auth/signup",
        "/api/v1/auth/login",
        "/api/v1/auth/me",
        "/api/v1/users",
        "/api/v1/users/{user_id}",
        "/api/v1/users/me",
        "/api/v1/conversations",
        "/api/v1/conversations/{conversation_id}",
        "/api/v1/conversations/{conversation_id}/members",
        "/api/v1/conversations/{conversation_id}/members/{user_id}",
        "/api/v1/conversations/{conversation_id}/messages",
        "/api/v1/messages/{message_id}/read",
        "/api/v1/messages/unread/count",
        "/api/v1/ws",
        "/health",
    ] {
        assert!(paths.contains_key(path), "{path} is not documented");
    }
    let schemes = &spec["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(
        schemes["oauth2"]["flows"]["password"]["tokenUrl"],
        "/api/v1/auth/login"
    );

    let docs = app
        .client
        .get(format!("{}/docs/", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(docs.status(), StatusCode::OK);
    assert!(docs.text().await.unwrap().contains("swagger"));
}
