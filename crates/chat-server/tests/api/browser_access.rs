//! What a browser is told: CORS for the origins in `CHAT_ALLOWED_ORIGINS` (and nothing for
//! any other), and the security headers on every response, the docs included.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::{TestApp, spawn_app, spawn_app_with, test_config};

const ALLOWED: &str = "https://app.example";

async fn spawn_app_allowing(origins: &[&str]) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let config = chat_server::Config {
        allowed_origins: origins.iter().map(|o| (*o).to_owned()).collect(),
        ..test_config(&dir)
    };
    spawn_app_with(config, dir).await
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).map(|v| v.to_str().unwrap())
}

/// A preflight for a `POST` with a token and a JSON body, from `origin`.
async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    app.client
        .request(
            Method::OPTIONS,
            format!("{}/api/v1/conversations", app.address),
        )
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization,content-type,x-request-id",
        )
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_allowed_origin_gets_its_preflight_answered_and_may_read_responses() {
    let app = spawn_app_allowing(&[ALLOWED]).await;
    let answer = preflight(&app, ALLOWED).await;
    assert!(answer.status().is_success(), "{}", answer.status());
    assert_eq!(
        header(&answer, "access-control-allow-origin"),
        Some(ALLOWED)
    );
    let methods = header(&answer, "access-control-allow-methods").unwrap();
    for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
        assert!(methods.contains(method), "{methods}");
    }
    let headers = header(&answer, "access-control-allow-headers")
        .unwrap()
        .to_ascii_lowercase();
    for name in ["authorization", "content-type", "x-request-id"] {
        assert!(headers.contains(name), "{headers}");
    }
    // No cookies: the API takes bearer tokens.
    assert_eq!(header(&answer, "access-control-allow-credentials"), None);

    let actual = app
        .client
        .get(format!("{}/health", app.address))
        .header("Origin", ALLOWED)
        .send()
        .await
        .unwrap();
    assert_eq!(actual.status(), StatusCode::OK);
    assert_eq!(
        header(&actual, "access-control-allow-origin"),
        Some(ALLOWED)
    );
    let exposed = header(&actual, "access-control-expose-headers")
        .unwrap()
        .to_ascii_lowercase();
    for name in ["x-request-id", "retry-after"] {
        assert!(exposed.contains(name), "{exposed}");
    }

    // An error is readable too: the page can show its detail.
    let error = app
        .client
        .get(format!("{}/api/v1/conversations", app.address))
        .header("Origin", ALLOWED)
        .send()
        .await
        .unwrap();
    assert_eq!(error.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(header(&error, "access-control-allow-origin"), Some(ALLOWED));
}

#[tokio::test]
async fn another_origin_gets_no_cors_headers() {
    let app = spawn_app_allowing(&[ALLOWED]).await;
    let evil = "https://evil.example";
    let answer = preflight(&app, evil).await;
    assert!(!answer.status().is_success(), "{}", answer.status());
    assert_eq!(header(&answer, "access-control-allow-origin"), None);
    assert_eq!(header(&answer, "access-control-allow-methods"), None);

    let actual = app
        .client
        .get(format!("{}/health", app.address))
        .header("Origin", evil)
        .send()
        .await
        .unwrap();
    // Served as if it came with no origin: the browser, not the server, keeps it from the page.
    assert_eq!(actual.status(), StatusCode::OK);
    assert_eq!(header(&actual, "access-control-allow-origin"), None);

    // With no origins configured, not even the allowed one of before.
    let closed = spawn_app().await;
    let answer = preflight(&closed, ALLOWED).await;
    assert_eq!(header(&answer, "access-control-allow-origin"), None);
}

#[tokio::test]
async fn a_star_allows_every_origin() {
    let app = spawn_app_allowing(&["*"]).await;
    let answer = preflight(&app, "https://anyone.example").await;
    assert!(answer.status().is_success(), "{}", answer.status());
    assert!(header(&answer, "access-control-allow-origin").is_some());
    let actual = app
        .client
        .get(format!("{}/health", app.address))
        .header("Origin", "https://anyone.example")
        .send()
        .await
        .unwrap();
    assert_eq!(actual.status(), StatusCode::OK);
    assert!(header(&actual, "access-control-allow-origin").is_some());
}

#[tokio::test]
async fn origins_are_compared_without_regard_to_case() {
    let app = spawn_app_allowing(&[ALLOWED]).await;
    let shouted = ALLOWED.to_ascii_uppercase();
    let answer = preflight(&app, &shouted).await;
    assert!(answer.status().is_success(), "{}", answer.status());
    assert_eq!(
        header(&answer, "access-control-allow-origin"),
        Some(shouted.as_str())
    );
}

fn assert_security_headers(response: &reqwest::Response) {
    assert_eq!(header(response, "x-content-type-options"), Some("nosniff"));
    assert_eq!(header(response, "x-frame-options"), Some("DENY"));
    assert_eq!(header(response, "referrer-policy"), Some("no-referrer"));
    // Every directive docs/security.md lists, in full; scripts fall back to default-src 'self'.
    assert_eq!(
        header(response, "content-security-policy"),
        Some(
            "default-src 'self'; img-src 'self' blob: data:; connect-src 'self' ws: wss:; \
             style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; \
             form-action 'self'"
        )
    );
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = spawn_app().await;
    let ok = app.request(Method::GET, "/health", None, None).await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert_security_headers(&ok);

    let error = app
        .request(Method::GET, "/api/v1/users/me", None, None)
        .await;
    assert_eq!(error.status(), StatusCode::UNAUTHORIZED);
    assert_security_headers(&error);
    let missing = app.request(Method::GET, "/nowhere", None, None).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_security_headers(&missing);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["code"], "not_found");
    // The web client's page and files, an unchanged one's 304 included.
    let page = app.request(Method::GET, "/", None, None).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert_security_headers(&page);
    let script = app.request(Method::GET, "/assets/app.js", None, None).await;
    assert_eq!(script.status(), StatusCode::OK);
    assert_security_headers(&script);
    let etag = header(&script, "etag").expect("an ETag").to_owned();
    let unchanged = app
        .client
        .get(format!("{}/assets/app.js", app.address))
        .header("If-None-Match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(unchanged.status(), StatusCode::NOT_MODIFIED);
    assert_security_headers(&unchanged);
}

#[tokio::test]
async fn the_docs_still_load_under_the_content_security_policy() {
    let app = spawn_app().await;
    let page = app.request(Method::GET, "/docs/", None, None).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert_security_headers(&page);
    let html = page.text().await.unwrap();
    // The CSP allows no inline script: every script of the page is a file of this origin.
    let scripts: Vec<&str> = html.split("<script").skip(1).collect();
    assert!(!scripts.is_empty(), "{html}");
    for script in &scripts {
        let tag = &script[..script.find('>').unwrap()];
        assert!(tag.contains("src=\"./"), "an inline script: <script{tag}>");
        let body = &script[script.find('>').unwrap() + 1..script.find("</script>").unwrap()];
        assert!(body.trim().is_empty(), "an inline script: {body}");
    }
    // The initializer it loads is served, and points at this origin's document.
    let initializer = app
        .request(Method::GET, "/docs/swagger-initializer.js", None, None)
        .await;
    assert_eq!(initializer.status(), StatusCode::OK);
    assert_security_headers(&initializer);
    let script = initializer.text().await.unwrap();
    assert!(script.contains("/openapi.json"), "{script}");
}
