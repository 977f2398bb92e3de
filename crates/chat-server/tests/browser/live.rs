//! Two people talking live: messages, typing, delivered and read ticks, unread badges, and a
//! reload that keeps the history.

use serde_json::Value;

use crate::harness::{PASSWORD, Scene, eventually, inbox_item};
use crate::helpers::TestUser;

#[tokio::test]
async fn two_browsers_exchange_messages_live_with_typing_and_read_ticks() {
    let Some(scene) = Scene::start().await else {
        return;
    };
    let (alice, bob) = (&scene.alice, &scene.bob);
    alice.screenshot("login").await;
    let conversation = scene.signed_up_and_talking().await;

    alice.send("Hi @bob, lunch at noon?").await;
    alice.wait_for_messages(&["Hi @bob, lunch at noon?"]).await;
    // Bob has not opened the conversation: it appears in his inbox, unread, and Alice's
    // message gets as far as delivered, never read.
    let badge = format!("{} .unread-badge", inbox_item(&conversation));
    bob.wait_for_text(&badge, "count one unread message", |t| t.trim() == "1")
        .await;
    let mention = format!("{} .mention-badge", inbox_item(&conversation));
    bob.wait_for_text(&mention, "count one mention", |t| t.contains('1'))
        .await;
    alice
        .wait_for_ticks("Hi @bob, lunch at noon?", "delivered")
        .await;
    // Carol, through the API, starts a group with Bob: it joins his inbox live, with its own
    // unread count.
    let carol = scene.server.user("carol").await;
    let found: Value = scene
        .server
        .get("/api/v1/users?q=bob", &carol.token)
        .await
        .json()
        .await
        .expect("a user search answers JSON");
    let bob_user = TestUser {
        id: found[0]["id"].as_str().expect("Bob is found").to_owned(),
        token: String::new(),
    };
    let team = scene.server.group(&carol, &[&bob_user]).await;
    scene
        .server
        .send(&carol, &team, "Who is in for the hike on Saturday?")
        .await;
    let team_badge = format!("{} .unread-badge", inbox_item(&team));
    bob.wait_for_text(&team_badge, "count one unread message", |t| t.trim() == "1")
        .await;
    bob.wait_for_text(&badge, "still count one unread message", |t| {
        t.trim() == "1"
    })
    .await;
    bob.screenshot("inbox").await;

    bob.open_conversation(&conversation).await;
    bob.wait_for_messages(&["Hi @bob, lunch at noon?"]).await;
    alice
        .wait_for_ticks("Hi @bob, lunch at noon?", "read")
        .await;
    bob.wait_for_gone(&badge).await;
    bob.wait_for_gone(&mention).await;

    // Bob types: Alice sees it, then his message, without reloading.
    bob.type_draft("Sure, the usual place").await;
    alice
        .wait_for_text("#typing", "name Bob", |t| t.contains("bob"))
        .await;
    bob.send("Sure, the usual place ✓").await;
    alice
        .wait_for_messages(&["Hi @bob, lunch at noon?", "Sure, the usual place ✓"])
        .await;
    alice
        .wait_for_text("#typing", "be empty once Bob sent", |t| t.trim().is_empty())
        .await;
    // Alice has the conversation open: Bob's message is read as it arrives.
    bob.wait_for_ticks("Sure, the usual place ✓", "read").await;

    alice.send("See you there").await;
    bob.wait_for_messages(&[
        "Hi @bob, lunch at noon?",
        "Sure, the usual place ✓",
        "See you there",
    ])
    .await;
    alice.wait_for_ticks("See you there", "read").await;
    scene.finish().await;
}

#[tokio::test]
async fn a_reload_keeps_the_session_and_the_history() {
    let Some(scene) = Scene::start().await else {
        return;
    };
    let (alice, bob) = (&scene.alice, &scene.bob);
    let conversation = scene.signed_up_and_talking().await;
    for text in ["one", "two", "three"] {
        alice.send(text).await;
    }
    bob.open_conversation(&conversation).await;
    bob.wait_for_messages(&["one", "two", "three"]).await;

    for browser in [alice, bob] {
        browser.reload().await;
        // Still signed in (the tokens are kept), the conversation that was open opens again,
        // and its history comes back from the server.
        browser.wait_for_signed_in().await;
        eventually(
            format_args!("{} to reopen the conversation", browser.name),
            || async {
                match browser.open_conversation_id_now().await {
                    Some(open) if open == conversation => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            },
        )
        .await;
        browser.wait_for_messages(&["one", "two", "three"]).await;
    }
    bob.send("four").await;
    alice
        .wait_for_messages(&["one", "two", "three", "four"])
        .await;
    scene.finish().await;
}

#[tokio::test]
async fn older_messages_load_on_scrolling_up_in_order_each_once() {
    let Some(scene) = Scene::start().await else {
        return;
    };
    let (alice, bob) = (&scene.alice, &scene.bob);
    let conversation = scene.signed_up_and_talking().await;
    // More than two pages of history, sent over the API.
    let sender = TestUser {
        id: String::new(),
        token: scene.server.login(&alice.name, PASSWORD).await,
    };
    let history: Vec<String> = (1..=120).map(|i| format!("Message {i}")).collect();
    for text in &history {
        scene.server.send(&sender, &conversation, text).await;
    }
    bob.open_conversation(&conversation).await;
    bob.wait_for_messages(&["Message 119", "Message 120"]).await;
    let first_page = bob.message_texts().await.expect("the messages are read");
    assert!(
        first_page.len() < history.len(),
        "a page, not the whole history: {}",
        first_page.len()
    );

    eventually("Bob to scroll back to the first message", || async {
        // Up to the top, where the client loads the page before.
        bob.js(
            "document.querySelector('#messages').scrollTop = 0; \
             document.querySelector('#messages').dispatchEvent(new Event('scroll'));",
            vec![],
        )
        .await?;
        let shown = bob.message_texts().await?;
        if shown == history {
            Ok(())
        } else {
            Err(format!(
                "{} messages, from {:?}",
                shown.len(),
                shown.first()
            ))
        }
    })
    .await;
    scene.finish().await;
}
