//! Message search over HTTP: what a hit carries, paging by cursor, what each user may find,
//! and the errors of a bad query.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, spawn_app};

/// `GET /api/v1/search/messages?{query}` as `user`, answered 200.
async fn search(app: &TestApp, user: &TestUser, query: &str) -> Value {
    let response = app
        .get(&format!("/api/v1/search/messages?{query}"), &user.token)
        .await;
    assert_eq!(response.status(), StatusCode::OK, "{query}");
    response.json().await.unwrap()
}

/// The contents of the hits of a search, in order.
async fn contents(app: &TestApp, user: &TestUser, query: &str) -> Vec<String> {
    search(app, user, query).await["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hit| hit["message"]["content"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_hit_is_the_message_as_history_shows_it_with_a_plain_snippet_and_highlights() {
    let app = spawn_app().await;
    let [alice, bob] = app.users(["alice", "bob"]).await;
    let group = app.group(&alice, &[&bob]).await;
    let sent = app
        .send(
            &alice,
            &group,
            "Shall we deploy to prod after <b>staging</b> is green?",
        )
        .await;
    app.send(&bob, &group, "lunch?").await;

    let page = search(&app, &bob, "q=deploy%20%22to%20prod%22%20stag*").await;
    assert_eq!(page["next_cursor"], Value::Null);
    let hits = page["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 1);
    let history: Value = app
        .get(
            &format!("/api/v1/conversations/{group}/messages"),
            &bob.token,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        hits[0]["message"], history[0],
        "the message as history shows it"
    );
    assert_eq!(hits[0]["message"]["conversation_id"], group.as_str());
    assert_eq!(hits[0]["message"]["id"], sent["id"]);
    assert_eq!(
        hits[0]["snippet"], "Shall we deploy to prod after <b>staging</b> is green?",
        "plain text, markup and all, never rendered"
    );
    assert_eq!(hits[0]["highlights"], json!([[9, 15], [16, 23], [33, 40]]));
}

#[tokio::test]
async fn pages_follow_the_cursor_without_repeats_in_both_orders() {
    let app = spawn_app().await;
    let [alice, bob] = app.users(["alice", "bob"]).await;
    let direct = app.direct(&alice, &bob).await;
    for i in 0..7 {
        let text = if i % 2 == 0 {
            "ping"
        } else {
            "ping and more words"
        };
        app.send(&alice, &direct, &format!("{text} {i}")).await;
    }
    for sort in ["relevance", "recent"] {
        let mut seen: Vec<String> = Vec::new();
        let mut query = format!("q=ping&sort={sort}&limit=3");
        loop {
            let page = search(&app, &bob, &query).await;
            for hit in page["hits"].as_array().unwrap() {
                seen.push(hit["message"]["content"].as_str().unwrap().to_owned());
            }
            match page["next_cursor"].as_str() {
                Some(cursor) => query = format!("q=ping&sort={sort}&limit=3&cursor={cursor}"),
                None => break,
            }
        }
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!((seen.len(), unique.len()), (7, 7), "{sort}: {seen:?}");
        if sort == "recent" {
            let expected: Vec<String> = (0..7)
                .rev()
                .map(|i| {
                    let text = if i % 2 == 0 {
                        "ping"
                    } else {
                        "ping and more words"
                    };
                    format!("{text} {i}")
                })
                .collect();
            assert_eq!(seen, expected);
        } else {
            assert!(
                seen[..4].iter().all(|s| !s.contains("more")),
                "shorter messages rank first: {seen:?}"
            );
        }
    }
}

#[tokio::test]
async fn each_user_finds_only_what_they_may_read_now() {
    let app = spawn_app().await;
    let [alice, bob, carol] = app.users(["alice", "bob", "carol"]).await;
    let group = app.group(&alice, &[&bob, &carol]).await;
    let private = app.direct(&alice, &bob).await;
    app.send(&alice, &group, "budget draft").await;
    app.send(&bob, &private, "budget secret").await;
    let hidden = app.send(&alice, &group, "budget hidden").await;
    let gone = app.send(&alice, &group, "budget gone").await;
    let edited = app.send(&alice, &group, "budget typo").await;

    let response = app
        .delete(
            &format!(
                "/api/v1/messages/{}?scope=me",
                hidden["id"].as_str().unwrap()
            ),
            &carol.token,
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let response = app
        .delete(
            &format!("/api/v1/messages/{}", gone["id"].as_str().unwrap()),
            &alice.token,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = app
        .request(
            reqwest::Method::PATCH,
            &format!("/api/v1/messages/{}", edited["id"].as_str().unwrap()),
            Some(&alice.token),
            Some(json!({"content": "budget fixed"})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);

    let mut found = contents(&app, &carol, "q=budget&sort=recent").await;
    found.sort();
    assert_eq!(found, ["budget draft", "budget fixed"]);
    let mut found = contents(&app, &bob, "q=budget&sort=recent").await;
    found.sort();
    assert_eq!(
        found,
        [
            "budget draft",
            "budget fixed",
            "budget hidden",
            "budget secret"
        ]
    );
    assert!(contents(&app, &carol, "q=typo").await.is_empty());
    assert!(contents(&app, &carol, "q=secret").await.is_empty());

    // A filter on someone else's conversation is 404, as its history is.
    let response = app
        .get(
            &format!("/api/v1/search/messages?q=budget&conversation_id={private}"),
            &carol.token,
        )
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        contents(&app, &bob, &format!("q=budget&conversation_id={private}")).await,
        ["budget secret"]
    );
    assert_eq!(
        contents(&app, &alice, &format!("q=budget&sender_id={}", bob.id)).await,
        ["budget secret"]
    );

    let response = app
        .delete(
            &format!("/api/v1/conversations/{group}/members/{}", carol.id),
            &alice.token,
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(
        contents(&app, &carol, "q=budget").await.is_empty(),
        "a removed member finds nothing"
    );
}

#[tokio::test]
async fn a_query_without_words_or_a_bad_parameter_is_422_on_its_field() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    for (query, field) in [
        ("", "q"),
        ("q=", "q"),
        ("q=%22%22%20*%20-%20(", "q"),
        ("q=a*", "q"),
        ("q=hi&sort=best", "sort"),
        ("q=hi&limit=0", "limit"),
        ("q=hi&limit=101", "limit"),
        ("q=hi&before=0", "before"),
        ("q=hi&cursor=garbage", "cursor"),
        ("q=hi&sort=recent&cursor=r3ff80000000000002a", "cursor"),
    ] {
        let response = app
            .get(&format!("/api/v1/search/messages?{query}"), &alice.token)
            .await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{query}"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], "validation_error", "{query}: {body}");
        assert_eq!(body["errors"][0]["field"], field, "{query}: {body}");
    }
    let response = app
        .get(
            "/api/v1/search/messages?q=hi&conversation_id=nope",
            &alice.token,
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // Query syntax of the stores is only words: no error, no false match.
    for q in [
        "NEAR%28a",
        "AND",
        "x%22%22%22",
        "a%3Ab",
        "%F0%9F%8E%89x",
        "-x",
        "x%5E",
    ] {
        let page = search(&app, &alice, &format!("q={q}")).await;
        assert_eq!(page["hits"], json!([]), "{q}");
    }
}
