//! Uploads and downloads (issue #16): the upload's answer, types read from the bytes, the
//! size limit and allow-list, images and thumbnails, sending files with a message over REST
//! and WebSocket, who may download, the serving headers, and delete for everyone.

use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{TestApp, TestUser, spawn_app, spawn_app_with, test_config};

pub const BOUNDARY: &str = "chatd-test-boundary";

/// A multipart/form-data body with one part `field` holding `bytes` as `filename`, sent
/// with the client type `client_type` (which the server must ignore).
pub fn multipart(field: &str, filename: &str, client_type: &str, bytes: &[u8]) -> Vec<u8> {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{field}\"; \
         filename=\"{filename}\"\r\nContent-Type: {client_type}\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

async fn upload_raw(app: &TestApp, token: &str, body: Vec<u8>) -> reqwest::Response {
    app.client
        .post(format!("{}/api/v1/attachments", app.address))
        .bearer_auth(token)
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(body)
        .send()
        .await
        .unwrap()
}

/// Uploads `bytes` as `name`; panics unless stored.
pub async fn upload(app: &TestApp, user: &TestUser, name: &str, bytes: &[u8]) -> Value {
    let response = upload_raw(
        app,
        &user.token,
        multipart("file", name, "text/plain", bytes),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

pub fn png(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
    });
    let mut bytes = std::io::Cursor::new(Vec::new());
    image.write_to(&mut bytes, image::ImageFormat::Png).unwrap();
    bytes.into_inner()
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn download(
    app: &TestApp,
    path: &str,
    token: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = app
        .client
        .get(format!("{}{path}", app.address))
        .bearer_auth(token);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> &'h str {
    headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

#[tokio::test]
async fn an_upload_answers_with_its_description_and_its_type_read_from_the_bytes() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bytes = png(640, 480);
    let stored = upload(&app, &alice, "../../holiday.txt", &bytes).await;
    assert_eq!(stored["name"], "holiday.txt");
    assert_eq!(stored["size"], bytes.len());
    assert_eq!(
        stored["content_type"], "image/png",
        "sniffed, not the client's text/plain"
    );
    assert_eq!(stored["sha256"], sha256(&bytes));
    assert_eq!(
        (stored["width"].as_u64(), stored["height"].as_u64()),
        (Some(640), Some(480))
    );
    let id = stored["id"].as_str().unwrap();
    assert_eq!(
        stored["thumbnail_url"],
        format!("/api/v1/attachments/{id}/thumbnail")
    );
    let thumbnail = download(
        &app,
        &format!("/api/v1/attachments/{id}/thumbnail"),
        &alice.token,
        &[],
    )
    .await;
    assert_eq!(thumbnail.status(), StatusCode::OK);
    let kind = header(thumbnail.headers(), "content-type").to_owned();
    let small = image::load_from_memory(&thumbnail.bytes().await.unwrap()).unwrap();
    assert_eq!((small.width(), small.height()), (320, 240), "{kind}");

    let text = upload(&app, &alice, "notes.png", "plain words\n".as_bytes()).await;
    assert_eq!(text["content_type"], "text/plain");
    assert_eq!(text["width"], Value::Null);
    assert_eq!(text["thumbnail_url"], Value::Null);
}

#[tokio::test]
async fn identical_bytes_are_stored_once() {
    let app = spawn_app().await;
    let [alice, bob] = app.users(["alice", "bob"]).await;
    let first = upload(&app, &alice, "a.txt", b"the same words").await;
    let second = upload(&app, &bob, "b.txt", b"the same words").await;
    assert_ne!(first["id"], second["id"]);
    assert_eq!(first["sha256"], second["sha256"]);
    let blobs = app.dir.path().join("chatd-data").join("blobs");
    let mut files = 0;
    let mut stack = vec![blobs];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                stack.push(entry.path());
            } else {
                files += 1;
            }
        }
    }
    assert_eq!(files, 1);
}

#[tokio::test]
async fn types_off_the_allow_list_are_refused_and_a_missing_part_is_a_field_error() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let html = b"<!DOCTYPE html><html><script>alert(1)</script></html>";
    let refused = upload_raw(
        &app,
        &alice.token,
        multipart("file", "x.png", "image/png", html),
    )
    .await;
    assert_eq!(refused.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["code"], "unsupported_media_type");

    let missing = upload_raw(
        &app,
        &alice.token,
        multipart("other", "x.txt", "text/plain", b"hi"),
    )
    .await;
    assert_eq!(missing.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["errors"][0]["field"], "file");

    let anonymous = app
        .client
        .post(format!("{}/api/v1/attachments", app.address))
        .body(multipart("file", "x.txt", "text/plain", b"hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_decompression_bomb_is_refused() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    // A valid PNG header claiming 100000 x 100000 pixels: refused from the header.
    let mut bomb = png(1, 1);
    bomb[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    bomb[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    let refused = upload_raw(
        &app,
        &alice.token,
        multipart("file", "bomb.png", "image/png", &bomb),
    )
    .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["code"].as_str().unwrap().starts_with("image_"),
        "{body}"
    );
}

#[tokio::test]
async fn a_file_past_the_limit_is_refused_before_the_server_reads_it_all() {
    let dir = tempfile::tempdir().unwrap();
    let config = chat_server::Config {
        upload_max_bytes: 1000,
        ..test_config(&dir)
    };
    let app = spawn_app_with(config, dir).await;
    let alice = app.user("alice").await;
    // Streamed past the limit with no length declared: cut off once it passes.
    let refused = upload_raw(
        &app,
        &alice.token,
        multipart("file", "big.txt", "text/plain", &[b'a'; 5000]),
    )
    .await;
    assert_eq!(refused.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["code"], "payload_too_large");

    // A declared length far past the limit: answered after the headers and a few bytes,
    // with the rest never sent.
    let port = app.address.rsplit(':').next().unwrap();
    let mut socket = tokio::net::TcpStream::connect(format!("127.0.0.1:{port}"))
        .await
        .unwrap();
    let head = format!(
        "POST /api/v1/attachments HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n\
         Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: 1073741824\r\n\r\n\
         --{BOUNDARY}\r\n",
        alice.token
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 1024];
    let read = tokio::time::timeout(std::time::Duration::from_secs(5), socket.read(&mut answer))
        .await
        .expect("answered without the body")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
}

#[tokio::test]
async fn files_sent_with_a_message_reach_members_only_and_go_with_a_delete_for_everyone() {
    let app = spawn_app().await;
    let [alice, bob, eve] = app.users(["alice", "bob", "eve"]).await;
    let group = app.group(&alice, &[&bob]).await;
    let file = upload(&app, &alice, "report.txt", b"quarterly numbers").await;
    let id = file["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/attachments/{id}");
    // Before it is sent, only its uploader sees it.
    assert_eq!(
        download(&app, &path, &alice.token, &[]).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        download(&app, &path, &bob.token, &[]).await.status(),
        StatusCode::NOT_FOUND
    );

    // Nobody may send another's upload.
    let stolen = app
        .post(
            &format!("/api/v1/conversations/{group}/messages"),
            &bob.token,
            json!({"content": "mine now", "attachment_ids": [id]}),
        )
        .await;
    assert_eq!(stolen.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = stolen.json().await.unwrap();
    assert_eq!(body["errors"][0]["field"], "attachment_ids");

    let mut bobs_socket = app.ws(&bob).await;
    let sent = app
        .post(
            &format!("/api/v1/conversations/{group}/messages"),
            &alice.token,
            json!({"content": "the report", "attachment_ids": [id]}),
        )
        .await;
    assert_eq!(sent.status(), StatusCode::CREATED);
    let sent: Value = sent.json().await.unwrap();
    assert_eq!(sent["attachments"], json!([file]));
    let live = bobs_socket.next_of_type("new_message").await;
    assert_eq!(live["message"]["attachments"], json!([file]), "{live}");
    let history: Value = app
        .get(
            &format!("/api/v1/conversations/{group}/messages"),
            &bob.token,
        )
        .await
        .json()
        .await
        .unwrap();
    let listed = history["messages"]
        .as_array()
        .or(history.as_array())
        .unwrap()
        .clone();
    assert!(
        listed.iter().any(|m| m["attachments"] == json!([file])),
        "{history}"
    );

    let seen = download(&app, &path, &bob.token, &[]).await;
    assert_eq!(seen.status(), StatusCode::OK);
    assert_eq!(seen.bytes().await.unwrap().as_ref(), b"quarterly numbers");
    assert_eq!(
        download(&app, &path, &eve.token, &[]).await.status(),
        StatusCode::NOT_FOUND
    );

    // Attached once only.
    let again = app
        .post(
            &format!("/api/v1/conversations/{group}/messages"),
            &alice.token,
            json!({"content": "again", "attachment_ids": [id]}),
        )
        .await;
    assert_eq!(again.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let message = sent["id"].as_str().unwrap();
    let deleted = app
        .delete(&format!("/api/v1/messages/{message}"), &alice.token)
        .await;
    assert!(deleted.status().is_success(), "{}", deleted.status());
    for user in [&alice, &bob] {
        assert_eq!(
            download(&app, &path, &user.token, &[]).await.status(),
            StatusCode::NOT_FOUND
        );
    }
}

#[tokio::test]
async fn a_file_is_sent_over_the_websocket_too() {
    let app = spawn_app().await;
    let [alice, bob] = app.users(["alice", "bob"]).await;
    let direct = app.direct(&alice, &bob).await;
    let file = upload(&app, &alice, "a.txt", b"over the socket").await;
    let mut socket = app.ws(&alice).await;
    socket
        .send_json(
            json!({"type": "message", "conversation_id": direct, "content": "see",
            "attachment_ids": [file["id"]], "client_message_id": "c1"}),
        )
        .await;
    let answer = socket.next_of_type("new_message").await;
    assert_eq!(answer["message"]["attachments"], json!([file]), "{answer}");
    let path = format!("/api/v1/attachments/{}", file["id"].as_str().unwrap());
    assert_eq!(
        download(&app, &path, &bob.token, &[]).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn downloads_carry_etag_ranges_and_headers_that_keep_scripts_from_running() {
    let dir = tempfile::tempdir().unwrap();
    let config = chat_server::Config {
        upload_types: Some("*".into()),
        ..test_config(&dir)
    };
    let app = spawn_app_with(config, dir).await;
    let alice = app.user("alice").await;
    let html = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>";
    let page = upload(&app, &alice, "page.html", html).await;
    let svg = upload(
        &app,
        &alice,
        "pic.svg",
        br#"<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#,
    )
    .await;
    let picture = upload(&app, &alice, "pic.png", &png(10, 10)).await;
    let path = |file: &Value| format!("/api/v1/attachments/{}", file["id"].as_str().unwrap());

    for file in [&page, &svg] {
        let response = download(&app, &path(file), &alice.token, &[]).await;
        let headers = response.headers();
        assert!(
            header(headers, "content-disposition").starts_with("attachment"),
            "{file}"
        );
        assert_eq!(header(headers, "x-content-type-options"), "nosniff");
        assert!(header(headers, "content-security-policy").contains("sandbox"));
        assert!(header(headers, "cache-control").starts_with("private"));
    }
    let response = download(&app, &path(&picture), &alice.token, &[]).await;
    assert!(header(response.headers(), "content-disposition").starts_with("inline"));
    assert_eq!(header(response.headers(), "content-type"), "image/png");

    let etag = format!("\"{}\"", page["sha256"].as_str().unwrap());
    let whole = download(&app, &path(&page), &alice.token, &[]).await;
    assert_eq!(header(whole.headers(), "etag"), etag);
    let unchanged = download(
        &app,
        &path(&page),
        &alice.token,
        &[("if-none-match", &etag)],
    )
    .await;
    assert_eq!(unchanged.status(), StatusCode::NOT_MODIFIED);

    let part = download(&app, &path(&page), &alice.token, &[("range", "bytes=2-5")]).await;
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        header(part.headers(), "content-range"),
        format!("bytes 2-5/{}", html.len())
    );
    assert_eq!(part.bytes().await.unwrap().as_ref(), &html[2..6]);
    let past = download(
        &app,
        &path(&page),
        &alice.token,
        &[("range", "bytes=5000-")],
    )
    .await;
    assert_eq!(past.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        header(past.headers(), "content-range"),
        format!("bytes */{}", html.len())
    );
}

#[tokio::test]
async fn an_upload_past_the_users_quota_is_refused_with_its_own_code() {
    let dir = tempfile::tempdir().unwrap();
    let config = chat_server::Config {
        upload_quota_bytes: 30,
        ..test_config(&dir)
    };
    let app = spawn_app_with(config, dir).await;
    let [alice, bob] = app.users(["alice", "bob"]).await;
    upload(&app, &alice, "a.txt", &[b'a'; 20]).await;
    let refused = upload_raw(
        &app,
        &alice.token,
        multipart("file", "b.txt", "text/plain", &[b'b'; 20]),
    )
    .await;
    assert_eq!(refused.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["code"], "quota_exceeded");
    // Each user has a quota of their own.
    upload(&app, &bob, "b.txt", &[b'b'; 20]).await;
}
