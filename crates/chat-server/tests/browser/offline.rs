//! One browser loses the network: it catches up by itself once it is back, and what it wrote
//! meanwhile goes then, even after its page was closed.

use crate::harness::{Browser, Scene, eventually};
use crate::proxy::Proxy;

/// Bob reaches the server through a proxy that can be cut (see proxy.rs for why not
/// chromedriver's network emulation); the proxy, with his page loaded through it.
async fn bob_behind_a_proxy(scene: &mut Scene) -> Proxy {
    let upstream = scene
        .server
        .address
        .trim_start_matches("http://")
        .to_owned();
    let proxy = Proxy::start(&upstream).await;
    scene.bob.base = proxy.address.clone();
    scene.bob.goto("/").await;
    proxy
}

/// Waits until `browser` shows that it lost the connection.
async fn wait_until_offline(browser: &Browser) {
    eventually(
        format_args!("{}'s client to show it lost the connection", browser.name),
        || async {
            let state = browser.connection_state().await;
            if state == "online" {
                Err(state)
            } else {
                Ok(())
            }
        },
    )
    .await;
}

/// How many unsent messages the page keeps in `localStorage`.
async fn unsent_in_storage(browser: &Browser) -> u64 {
    browser
        .js(
            "return Object.keys(localStorage).filter(k => k.startsWith('chatd.unsent.')).length;",
            vec![],
        )
        .await
        .expect("localStorage can be read")
        .as_u64()
        .expect("a count")
}

#[tokio::test]
async fn a_browser_cut_off_the_network_catches_up_in_order_once_it_is_back() {
    let Some(mut scene) = Scene::start().await else {
        return;
    };
    let proxy = bob_behind_a_proxy(&mut scene).await;
    let (alice, bob) = (&scene.alice, &scene.bob);
    let conversation = scene.signed_up_and_talking().await;
    alice.send("Before the cut").await;
    bob.open_conversation(&conversation).await;
    bob.wait_for_messages(&["Before the cut"]).await;
    bob.wait_for_connection("online").await;

    proxy.cut();
    wait_until_offline(bob).await;
    let missed = ["Missed one", "Missed two", "Missed three"];
    for text in missed {
        alice.send(text).await;
    }
    alice
        .wait_for_messages(&["Before the cut", "Missed one", "Missed two", "Missed three"])
        .await;
    assert_eq!(
        bob.message_texts().await,
        Ok(vec!["Before the cut".to_owned()])
    );
    // Nothing reached Bob: Alice's messages are ticked sent, not delivered.
    for text in missed {
        alice.wait_for_ticks(text, "sent").await;
    }
    bob.screenshot("offline").await;

    proxy.restore();
    bob.wait_for_connection("online").await;
    bob.wait_for_messages(&["Before the cut", "Missed one", "Missed two", "Missed three"])
        .await;
    // Read once caught up, as the conversation is open: Alice's last message is ticked read.
    alice.wait_for_ticks("Missed three", "read").await;
    // Each message once, in the order it was sent, also after the catch-up settled.
    assert_eq!(
        bob.message_texts().await,
        Ok(
            ["Before the cut", "Missed one", "Missed two", "Missed three"]
                .map(str::to_owned)
                .to_vec()
        )
    );
    let seqs = bob
        .js(
            "return [...document.querySelectorAll('#messages .message')] \
             .map(m => Number(m.dataset.seq));",
            vec![],
        )
        .await
        .expect("the messages have seqs");
    let seqs: Vec<u64> = serde_json::from_value(seqs).expect("numbers");
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");

    // And it is live again.
    bob.send("Back online").await;
    alice
        .wait_for_messages(&["Missed three", "Back online"])
        .await;
    scene.finish().await;
}

#[tokio::test]
async fn a_message_written_offline_goes_once_after_the_page_was_closed_and_logging_out_drops_it() {
    let Some(mut scene) = Scene::start().await else {
        return;
    };
    let proxy = bob_behind_a_proxy(&mut scene).await;
    let (alice, bob) = (&scene.alice, &scene.bob);
    let conversation = scene.signed_up_and_talking().await;
    alice.send("Are you there?").await;
    bob.open_conversation(&conversation).await;
    bob.wait_for_messages(&["Are you there?"]).await;
    bob.wait_for_connection("online").await;

    // Bob answers while his network is down, and leaves the page before it is back.
    proxy.cut();
    wait_until_offline(bob).await;
    bob.send("Written offline").await;
    bob.wait_for(".message.pending").await;
    assert_eq!(unsent_in_storage(bob).await, 1);
    bob.client
        .goto("about:blank")
        .await
        .expect("Bob leaves the page");
    proxy.restore();

    // He comes back: the page sends it, and it arrives once.
    bob.goto("/").await;
    bob.wait_for_connection("online").await;
    alice
        .wait_for_messages(&["Are you there?", "Written offline"])
        .await;
    bob.open_conversation(&conversation).await;
    bob.wait_for_messages(&["Are you there?", "Written offline"])
        .await;
    bob.wait_for_gone(".message.pending").await;
    eventually("the sent message to leave localStorage", || async {
        match unsent_in_storage(bob).await {
            0 => Ok(()),
            n => Err(format!("{n} unsent")),
        }
    })
    .await;
    assert_eq!(
        alice.message_texts().await,
        Ok(["Are you there?", "Written offline"]
            .map(str::to_owned)
            .to_vec())
    );

    // Written offline, then logging out: nothing he wrote stays behind in the browser.
    proxy.cut();
    wait_until_offline(bob).await;
    bob.send("Never sent").await;
    bob.wait_for(".message.pending").await;
    assert_eq!(unsent_in_storage(bob).await, 1);
    bob.click("[data-action=logout]").await;
    bob.wait_for("#auth-form").await;
    assert_eq!(unsent_in_storage(bob).await, 0);
    scene.finish().await;
}
