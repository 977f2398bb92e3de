//! One browser loses the network and catches up by itself once it is back.

use crate::harness::{Scene, eventually};
use crate::proxy::Proxy;

#[tokio::test]
async fn a_browser_cut_off_the_network_catches_up_in_order_once_it_is_back() {
    let Some(mut scene) = Scene::start().await else {
        return;
    };
    // Bob reaches the server through a proxy that can be cut (see proxy.rs for why not
    // chromedriver's network emulation).
    let upstream = scene
        .server
        .address
        .trim_start_matches("http://")
        .to_owned();
    let proxy = Proxy::start(&upstream).await;
    scene.bob.base = proxy.address.clone();
    scene.bob.goto("/").await;
    let (alice, bob) = (&scene.alice, &scene.bob);
    let conversation = scene.signed_up_and_talking().await;
    alice.send("Before the cut").await;
    bob.open_conversation(&conversation).await;
    bob.wait_for_messages(&["Before the cut"]).await;
    bob.wait_for_connection("online").await;

    proxy.cut();
    eventually("Bob's client to show it lost the connection", || async {
        let state = bob.connection_state().await;
        if state == "online" {
            Err(state)
        } else {
            Ok(())
        }
    })
    .await;
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
