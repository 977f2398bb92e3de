//! The web client at `/`: the page, its embedded assets with their types and caching, and the
//! JSON 404 for a file it does not have.

use reqwest::{Method, StatusCode, header};
use serde_json::Value;

use crate::helpers::spawn_app;

async fn get(app: &crate::helpers::TestApp, path: &str) -> reqwest::Response {
    app.request(Method::GET, path, None, None).await
}

#[tokio::test]
async fn the_root_serves_the_web_client_page_that_loads_the_app_module() {
    let app = spawn_app().await;

    let response = get(&app, "/").await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/html; charset=utf-8"
    );
    assert_eq!(response.headers()[header::CACHE_CONTROL], "no-cache");
    let html = response.text().await.unwrap();
    assert!(html.starts_with("<!doctype html>"));
    assert!(html.contains(r#"<script type="module" src="/assets/app.js"></script>"#));
    // The page works under a CSP without 'unsafe-inline' scripts: no inline script or handler.
    assert_eq!(html.matches("<script").count(), 1);
    assert!(!html.contains(" onclick="));
    for selector in [
        r#"id="connection""#,
        r#"id="auth""#,
        r#"data-action="login""#,
        r#"data-action="signup""#,
        r#"id="inbox""#,
        r#"id="composer""#,
        r#"name="attachment""#,
        r#"name="search""#,
    ] {
        assert!(html.contains(selector), "the page has {selector}");
    }
}

#[tokio::test]
async fn every_asset_the_page_and_its_modules_load_is_served_with_its_type() {
    let app = spawn_app().await;

    for (path, content_type, sample) in [
        (
            "/assets/app.js",
            "text/javascript; charset=utf-8",
            "import ",
        ),
        (
            "/assets/api.js",
            "text/javascript; charset=utf-8",
            "/api/v1/auth/refresh",
        ),
        (
            "/assets/socket.js",
            "text/javascript; charset=utf-8",
            "/api/v1/ws",
        ),
        (
            "/assets/store.js",
            "text/javascript; charset=utf-8",
            "export class Store",
        ),
        (
            "/assets/ui.js",
            "text/javascript; charset=utf-8",
            "export function",
        ),
        ("/assets/style.css", "text/css; charset=utf-8", "#messages"),
        ("/assets/icon.svg", "image/svg+xml", "<svg"),
    ] {
        let response = get(&app, path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            content_type,
            "{path}"
        );
        assert_eq!(
            response.headers()["x-content-type-options"],
            "nosniff",
            "{path}"
        );
        assert!(response.headers().contains_key(header::ETAG), "{path}");
        assert!(response.text().await.unwrap().contains(sample), "{path}");
    }
}

#[tokio::test]
async fn an_unchanged_asset_is_answered_304_without_a_body() {
    let app = spawn_app().await;
    let first = get(&app, "/assets/app.js").await;
    let etag = first.headers()[header::ETAG].to_str().unwrap().to_owned();

    let again = app
        .client
        .get(format!("{}/assets/app.js", app.address))
        .header(header::IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();

    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(again.headers()[header::ETAG], etag.as_str());
    assert!(again.bytes().await.unwrap().is_empty());

    let stale = app
        .client
        .get(format!("{}/assets/app.js", app.address))
        .header(header::IF_NONE_MATCH, "\"something-older\"")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_unknown_asset_is_a_json_404() {
    let app = spawn_app().await;

    for path in ["/assets/nope.js", "/assets/..%2FCargo.toml", "/assets/"] {
        let response = get(&app, path).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], "not_found", "{path}");
        assert!(body["detail"].is_string(), "{path}");
    }
}

#[tokio::test]
async fn the_page_answers_head_and_refuses_other_methods_with_a_json_405() {
    let app = spawn_app().await;

    let head = app.request(Method::HEAD, "/", None, None).await;
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(
        head.headers()[header::CONTENT_TYPE],
        "text/html; charset=utf-8"
    );

    let post = app.request(Method::POST, "/", None, None).await;
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(post.headers()[header::ALLOW], "GET, HEAD");
    let body: Value = post.json().await.unwrap();
    assert_eq!(body["code"], "method_not_allowed");
}
