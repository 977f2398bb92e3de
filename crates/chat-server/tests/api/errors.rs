//! The error contract: every failure is JSON with a stable code and the right status, and
//! the operational endpoints answer.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{TestApp, spawn_app};

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
    let body = error_body(unknown_field).await;
    assert_eq!(body["code"], "validation_error", "{body}");
    assert_eq!(body["errors"][0]["field"], "admin", "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("unknown field `admin`"),
        "the error names the field: {body}"
    );
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
    let spec = app.openapi().await;
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    let paths = spec["paths"].as_object().unwrap();
    for path in [
        "/api/v1/auth/signup",
        "/api/v1/auth/login",
        "/api/v1/auth/logout",
        "/api/v1/auth/me",
        "/api/v1/users",
        "/api/v1/users/{user_id}",
        "/api/v1/users/me",
        "/api/v1/users/me/deactivate",
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

#[tokio::test]
async fn every_response_link_names_an_operation_and_its_parameters_as_openapi_spells_them() {
    let app = spawn_app().await;
    let spec = app.openapi().await;
    // operationId -> the names of its parameters.
    let mut operations = std::collections::HashMap::new();
    for item in spec["paths"].as_object().unwrap().values() {
        for operation in item.as_object().unwrap().values() {
            let names: Vec<String> = operation["parameters"]
                .as_array()
                .map(|params| {
                    params
                        .iter()
                        .map(|p| p["name"].as_str().unwrap().to_owned())
                        .collect()
                })
                .unwrap_or_default();
            operations.insert(operation["operationId"].as_str().unwrap().to_owned(), names);
        }
    }
    let mut links = Vec::new();
    for item in spec["paths"].as_object().unwrap().values() {
        for operation in item.as_object().unwrap().values() {
            for response in operation["responses"].as_object().unwrap().values() {
                if let Some(found) = response["links"].as_object() {
                    links.extend(
                        found
                            .iter()
                            .map(|(name, link)| (name.clone(), link.clone())),
                    );
                }
            }
        }
    }
    // Creating a conversation leads to its messages and members; sending, to marking read.
    assert!(links.len() >= 6, "{links:?}");
    for (name, link) in links {
        assert!(link.get("operation_id").is_none(), "{name}: {link}");
        let target = link["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: {link}"));
        let parameters = operations
            .get(target)
            .unwrap_or_else(|| panic!("{name} links to unknown operation {target}"));
        for parameter in link["parameters"].as_object().unwrap().keys() {
            assert!(
                parameters.contains(parameter),
                "{name}: {target} has no {parameter}"
            );
        }
    }
}

/// Every operation of the OpenAPI document, as `(METHOD, path template, documented statuses)`.
async fn documented_operations(app: &TestApp) -> Vec<(Method, String, Vec<u16>)> {
    let spec = app.openapi().await;
    let mut operations = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let statuses = operation["responses"]
                .as_object()
                .unwrap()
                .keys()
                .map(|status| status.parse().unwrap())
                .collect();
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            operations.push((method, path.clone(), statuses));
        }
    }
    assert!(operations.len() >= 20, "{operations:?}");
    operations
}

/// `template` with each `{parameter}` replaced by a fresh UUID: an id that names nothing.
fn with_unknown_ids(template: &str) -> String {
    template
        .split('/')
        .map(|part| {
            if part.starts_with('{') {
                uuid::Uuid::new_v4().to_string()
            } else {
                part.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Checks that `response` has one of the `documented` statuses and, if it is an error, is a
/// JSON error body with a code; returns a description of what is wrong.
async fn undocumented(
    response: reqwest::Response,
    documented: &[u16],
    what: &str,
) -> Option<String> {
    let status = response.status().as_u16();
    let body = response.text().await.unwrap();
    if !documented.contains(&status) {
        return Some(format!(
            "{what}: {status} is not documented ({documented:?}): {body}"
        ));
    }
    if status >= 400 {
        let parsed: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        if !(parsed["detail"].is_string() && parsed["code"].is_string()) {
            return Some(format!("{what}: {status} without a JSON error: {body}"));
        }
        if parsed["code"] == "not_found" {
            return Some(format!("{what}: no route serves it: {body}"));
        }
    }
    None
}

/// The list of operations comes from the OpenAPI document the server serves, so a new route
/// is checked as soon as it is documented.
#[tokio::test]
async fn every_documented_operation_is_served_with_documented_statuses_and_json_errors() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let operations = documented_operations(&app).await;
    let mut problems = Vec::new();
    for (method, template, statuses) in &operations {
        let path = with_unknown_ids(template);
        // Without a token, and with one (a fresh token each time: one of these is logout),
        // with an empty JSON object for the body of a write.
        let body = (*method != Method::GET).then(|| json!({}));
        let anonymous = app.request(method.clone(), &path, None, body.clone()).await;
        let what = format!("{method} {template} without a token");
        problems.extend(undocumented(anonymous, statuses, &what).await);
        let token = app.login("alice", "correct horse").await;
        let signed_in = app.request(method.clone(), &path, Some(&token), body).await;
        let what = format!("{method} {template} signed in");
        problems.extend(undocumented(signed_in, statuses, &what).await);
    }
    // An undeclared method on any documented path is a JSON 405 naming the declared ones.
    let methods = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
    ];
    let mut templates: Vec<&String> = operations.iter().map(|(_, t, _)| t).collect();
    templates.dedup();
    for template in templates {
        let mut declared: Vec<&str> = operations
            .iter()
            .filter(|(_, t, _)| t == template)
            .map(|(m, _, _)| m.as_str())
            .collect();
        declared.sort_unstable();
        for method in methods.iter().filter(|m| !declared.contains(&m.as_str())) {
            let response = app
                .request(
                    method.clone(),
                    &with_unknown_ids(template),
                    Some(&alice.token),
                    None,
                )
                .await;
            let what = format!("{method} {template}");
            if response.status() != StatusCode::METHOD_NOT_ALLOWED {
                problems.push(format!("{what}: expected 405, got {}", response.status()));
                continue;
            }
            let mut allowed: Vec<String> = response.headers()["allow"]
                .to_str()
                .unwrap()
                .split(',')
                .map(|m| m.trim().to_owned())
                .collect();
            // HEAD is GET without the body (RFC 9110): a GET resource may allow it unlisted.
            if declared.contains(&"GET") {
                allowed.retain(|m| m != "HEAD");
            }
            allowed.sort_unstable();
            if allowed != declared {
                problems.push(format!(
                    "{what}: Allow {allowed:?}, documented {declared:?}"
                ));
            }
            let body: Value = response.json().await.unwrap_or(Value::Null);
            if body["code"] != "method_not_allowed" {
                problems.push(format!("{what}: {body}"));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// The request line and headers of a GET, padded with one header to `len` bytes in all.
fn head_of_len(len: usize) -> Vec<u8> {
    let start = "GET /health HTTP/1.1\r\nHost: localhost\r\nX-Filler: ";
    let end = "\r\nConnection: close\r\n\r\n";
    format!("{start}{}{end}", "x".repeat(len - start.len() - end.len())).into_bytes()
}

/// Sends `head` on a fresh connection and returns the status line of the answer.
async fn status_line_for(app: &TestApp, head: &[u8]) -> String {
    let mut tcp = TcpStream::connect(app.address.trim_start_matches("http://"))
        .await
        .unwrap();
    tcp.write_all(head).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        let mut chunk = [0; 4096];
        while !answer.windows(2).any(|w| w == b"\r\n") {
            match tcp.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await
    .expect("an answer within 10 s");
    let answer = String::from_utf8_lossy(&answer);
    answer.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_request_head_over_128_kib_is_refused_with_431() {
    let app = spawn_app().await;
    assert_eq!(
        status_line_for(&app, &head_of_len(120 * 1024)).await,
        "HTTP/1.1 200 OK"
    );
    assert_eq!(
        status_line_for(&app, &head_of_len(129 * 1024)).await,
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
}

#[tokio::test]
async fn a_client_that_trickles_its_request_head_is_cut_off() {
    let app = spawn_app().await;
    let mut tcp = TcpStream::connect(app.address.trim_start_matches("http://"))
        .await
        .unwrap();
    // A slowloris: a head sent a byte at a time, four bytes a second. Sent in full it would
    // take a minute; the server allows 5 s for a whole head.
    let head = head_of_len(240);
    let (mut reader, mut writer) = tcp.split();
    let trickle = async {
        for byte in &head {
            if writer.write_all(std::slice::from_ref(byte)).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!("the whole head went through: the slow client was never cut off");
    };
    let cut_off = async {
        let mut answer = Vec::new();
        let mut chunk = [0; 1024];
        loop {
            match reader.read(&mut chunk).await {
                Ok(0) | Err(_) => return answer,
                Ok(n) => answer.extend_from_slice(&chunk[..n]),
            }
        }
    };
    let answer = tokio::select! {
        () = trickle => None,
        answer = cut_off => Some(answer),
    };
    // Cut off before the head was complete: the connection ended with at most a 408,
    // never the answer to the request.
    let answer =
        String::from_utf8_lossy(&answer.expect("the server ended the connection")).into_owned();
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    // The server still serves everyone else.
    let health = app.request(Method::GET, "/health", None, None).await;
    assert_eq!(health.status(), StatusCode::OK);
}
