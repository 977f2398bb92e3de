//! What a conversation offers beyond plain messages, seen from both browsers: edits,
//! deletes, reactions, replies, an image attachment, search and presence.

use fantoccini::Locator;
use serde_json::json;

use crate::harness::{Browser, PASSWORD, Scene, eventually, inbox_item};

/// Edits the own message `text` to `new_text` with the message's inline editor.
async fn edit(browser: &Browser, text: &str, new_text: &str) {
    let selector = browser.message_selector(text).await;
    browser.act_on(text, "edit").await;
    let content = format!("{new_text}{}", fantoccini::key::Key::Enter);
    browser
        .fill(&format!("{selector} textarea[name=edit]"), &content)
        .await;
}

/// Waits until `selector`, in `browser`, has a descendant `part` whose text contains
/// `wanted`.
async fn wait_for_part(browser: &Browser, selector: &str, part: &str, wanted: &str) {
    let css = format!("{selector} {part}");
    browser
        .wait_for_text(&css, &format!("contain {wanted:?}"), |t| t.contains(wanted))
        .await;
}

/// A small PNG picture (a blue and orange field) written to `path`.
fn write_picture(path: &std::path::Path) {
    let picture = image::RgbImage::from_fn(160, 100, |x, _| {
        if x < 80 {
            image::Rgb([40, 90, 200])
        } else {
            image::Rgb([240, 150, 40])
        }
    });
    picture.save(path).expect("the picture is written");
}

#[tokio::test]
async fn edits_deletes_reactions_replies_and_an_image_reach_the_other_browser() {
    let Some(scene) = Scene::start().await else {
        return;
    };
    let (alice, bob) = (&scene.alice, &scene.bob);
    let conversation = scene.signed_up_and_talking().await;
    alice.send("The meeting is on Tuesdya").await;
    alice.send("Ignore this one").await;
    bob.open_conversation(&conversation).await;
    bob.wait_for_messages(&["The meeting is on Tuesdya", "Ignore this one"])
        .await;
    let edited = alice.message_selector("The meeting is on Tuesdya").await;
    let deleted = alice.message_selector("Ignore this one").await;

    edit(
        alice,
        "The meeting is on Tuesdya",
        "The meeting is on Tuesday",
    )
    .await;
    for browser in [alice, bob] {
        browser.message("The meeting is on Tuesday").await;
        browser.wait_for(&format!("{edited} .edited")).await;
    }

    alice.act_on("Ignore this one", "delete").await;
    for browser in [alice, bob] {
        browser.wait_for(&format!("{deleted}.deleted")).await;
        browser
            .wait_for_text(
                &format!("{deleted} .content"),
                "lose the deleted text",
                |t| !t.contains("Ignore this one"),
            )
            .await;
    }

    bob.act_on("The meeting is on Tuesday", "react").await;
    bob.click(&format!(
        "{edited} [data-action=pick-reaction][data-emoji=\"👍\"]"
    ))
    .await;
    for browser in [alice, bob] {
        wait_for_part(browser, &edited, ".reactions", "👍 1").await;
    }

    bob.act_on("The meeting is on Tuesday", "reply").await;
    bob.send("Tuesday works for me").await;
    let reply = alice.message_selector("Tuesday works for me").await;
    for browser in [alice, bob] {
        browser.message("Tuesday works for me").await;
        wait_for_part(browser, &reply, ".reply-to", "The meeting is on Tuesday").await;
    }

    // A picture: uploaded with the attachments API, shown inline on both sides (fetched
    // with the bearer token, drawn from a blob: URL).
    let picture = scene.server.dir.path().join("table.png");
    write_picture(&picture);
    let input = alice
        .client
        .find(Locator::Css("#composer input[type=file][name=attachment]"))
        .await
        .expect("the composer has a file input");
    input
        .send_keys(&picture.display().to_string())
        .await
        .expect("the file is picked");
    alice.send("Our table").await;
    for browser in [alice, bob] {
        let preview = format!(
            "{} img.attachment-preview",
            browser.message_selector("Our table").await
        );
        eventually(
            format_args!("{} to draw the picture", browser.name),
            || async {
                let drawn = browser
                    .js(
                        "const i = document.querySelector(arguments[0]); \
                         return i ? [i.complete && i.naturalWidth > 0, i.src.split(':')[0]] : null;",
                        vec![json!(preview)],
                    )
                    .await?;
                if drawn == json!([true, "blob"]) {
                    Ok(())
                } else {
                    Err(drawn.to_string())
                }
            },
        )
        .await;
    }
    alice.wait_for_ticks("Our table", "read").await;
    alice.screenshot("conversation").await;
    scene.finish().await;
}

#[tokio::test]
async fn search_finds_a_message_and_opens_its_conversation() {
    let Some(scene) = Scene::start().await else {
        return;
    };
    let (alice, bob) = (&scene.alice, &scene.bob);
    let with_bob = scene.signed_up_and_talking().await;
    alice
        .send("The quarterly report is in the shared folder")
        .await;
    alice.send("Something else entirely").await;
    // Bob has not opened the conversation: the search result opens it.
    bob.wait_for(&inbox_item(&with_bob)).await;
    assert_eq!(bob.open_conversation_id_now().await, None);

    bob.fill("input[name=search]", "quarterly").await;
    let result = "#search-results .search-result";
    bob.wait_for_text(result, "find the message", |t| {
        t.contains("quarterly report")
    })
    .await;
    bob.screenshot("search").await;
    bob.click(result).await;
    eventually("Bob's search result to open its conversation", || async {
        let open = bob.open_conversation_id_now().await;
        if open.as_deref() == Some(with_bob.as_str()) {
            Ok(())
        } else {
            Err(format!("{open:?}"))
        }
    })
    .await;
    bob.message("The quarterly report is in the shared folder")
        .await;
    scene.finish().await;
}

#[tokio::test]
async fn presence_shows_the_other_user_away_offline_and_back_after_logging_in() {
    let Some(scene) = Scene::start().await else {
        return;
    };
    let (alice, bob) = (&scene.alice, &scene.bob);
    let conversation = scene.signed_up_and_talking().await;
    alice.send("Are you there?").await;
    bob.open_conversation(&conversation).await;
    alice.wait_for_presence("online").await;
    bob.wait_for_presence("online").await;

    // Bob switches to another tab: his chat tab is hidden, and Alice sees him away; back on
    // it, he is online again.
    let chat_tab = bob.client.window().await.expect("Bob's tab");
    let other_tab = bob.client.new_window(true).await.expect("a new tab");
    bob.client
        .switch_to_window(other_tab.handle)
        .await
        .expect("Bob switches tabs");
    alice.wait_for_presence("away").await;
    bob.client
        .switch_to_window(chat_tab)
        .await
        .expect("Bob switches back");
    alice.wait_for_presence("online").await;

    // Bob logs out: his socket closes, and Alice sees him go offline, live.
    bob.click("[data-action=logout]").await;
    bob.wait_for("#auth").await;
    alice.wait_for_presence("offline").await;

    // A wrong password is refused on the auth screen; the right one brings Bob back, with
    // his conversation, and Alice sees him online again.
    bob.log_in_with("not the password").await;
    bob.wait_for_text("#auth-error", "say why", |t| !t.trim().is_empty())
        .await;
    assert!(
        bob.is_shown("#auth").await,
        "a wrong password keeps the auth screen"
    );
    bob.log_in_with(PASSWORD).await;
    bob.wait_for_signed_in().await;
    bob.open_conversation(&conversation).await;
    bob.wait_for_messages(&["Are you there?"]).await;
    alice.wait_for_presence("online").await;
    scene.finish().await;
}
