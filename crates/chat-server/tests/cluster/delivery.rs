//! Live events cross nodes: what happens on node A reaches the sockets held by B and C, and a
//! revocation on A closes the affected sockets wherever they are.

use reqwest::StatusCode;
use serde_json::json;

use crate::client::{PASSWORD, User};
use crate::harness::Cluster;
use crate::scrape::{sample, scrape};

/// alice, bob and carol in one group made on node A.
async fn three_in_a_group(cluster: &Cluster) -> ([User; 3], String) {
    let a = &cluster.nodes[0];
    let alice = a.user("alice").await;
    let bob = cluster.nodes[1].user("bob").await;
    let carol = cluster.nodes[2].user("carol").await;
    let group = a.group(&alice, &[bob.clone(), carol.clone()]).await;
    ([alice, bob, carol], group)
}

/// Every node's `chatd_bus_published_total` and `chatd_bus_received_total`, in node order.
async fn bus_counters(cluster: &Cluster) -> Vec<(f64, f64)> {
    let mut counters = Vec::new();
    for node in &cluster.nodes {
        let scraped = scrape(node.metrics).await;
        counters.push((
            sample(&scraped, "chatd_bus_published_total", &[]),
            sample(&scraped, "chatd_bus_received_total", &[]),
        ));
    }
    counters
}

#[tokio::test]
async fn a_message_sent_on_one_node_is_delivered_live_on_the_other_two() {
    let Some(cluster) = Cluster::start().await else {
        return;
    };
    let ([alice, bob, carol], group) = three_in_a_group(&cluster).await;
    let [a, b, c] = [&cluster.nodes[0], &cluster.nodes[1], &cluster.nodes[2]];
    let mut alice_ws = a.ws(&alice).await;
    let mut bob_ws = b.ws(&bob).await;
    let mut carol_ws = c.ws(&carol).await;
    let before = bus_counters(&cluster).await;

    alice_ws
        .send_json(json!({"type": "message", "conversation_id": group,
                          "content": "hello from A", "client_message_id": "a-1"}))
        .await;
    let sent = alice_ws.next_of_type("new_message").await;
    for ws in [&mut bob_ws, &mut carol_ws] {
        let delivered = ws.next_of_type("new_message").await;
        assert_eq!(delivered["message"]["id"], sent["message"]["id"]);
        assert_eq!(delivered["message"]["content"], "hello from A");
    }
    // Each node's metrics show its side of the crossing: A published, B and C received.
    // (Presence also crosses the bus, so the counters only grow by at least one.)
    let after = bus_counters(&cluster).await;
    assert!(
        after[0].0 > before[0].0,
        "A published: {before:?} -> {after:?}"
    );
    assert!(
        after[1].1 > before[1].1,
        "B received: {before:?} -> {after:?}"
    );
    assert!(
        after[2].1 > before[2].1,
        "C received: {before:?} -> {after:?}"
    );
}

#[tokio::test]
async fn mentions_decided_on_one_node_reach_the_other_two_and_an_edit_changes_them() {
    let Some(cluster) = Cluster::start().await else {
        return;
    };
    let ([alice, bob, carol], group) = three_in_a_group(&cluster).await;
    let [a, b, c] = [&cluster.nodes[0], &cluster.nodes[1], &cluster.nodes[2]];
    let mut alice_ws = a.ws(&alice).await;
    let mut bob_ws = b.ws(&bob).await;
    let mut carol_ws = c.ws(&carol).await;
    let mut both = vec![bob.id.clone(), carol.id.clone()];
    both.sort();

    alice_ws
        .send_json(json!({"type": "message", "conversation_id": group,
                          "content": "@all standup", "client_message_id": "a-1"}))
        .await;
    let sent = alice_ws.next_of_type("new_message").await;
    assert_eq!(sent["message"]["mentions"], json!(both));
    for ws in [&mut bob_ws, &mut carol_ws] {
        let delivered = ws.next_of_type("new_message").await;
        assert_eq!(delivered["message"]["mentions"], json!(both), "{delivered}");
    }

    alice_ws
        .send_json(
            json!({"type": "edit_message", "message_id": sent["message"]["id"],
                          "content": "standup, @Carol"}),
        )
        .await;
    for ws in [&mut bob_ws, &mut carol_ws] {
        let updated = ws.next_of_type("message_updated").await;
        assert_eq!(
            updated["message"]["mentions"],
            json!([carol.id]),
            "{updated}"
        );
    }
}

#[tokio::test]
async fn typing_on_one_node_is_shown_on_the_other_two() {
    let Some(cluster) = Cluster::start().await else {
        return;
    };
    let ([alice, bob, carol], group) = three_in_a_group(&cluster).await;
    let [a, b, c] = [&cluster.nodes[0], &cluster.nodes[1], &cluster.nodes[2]];
    let mut alice_ws = a.ws(&alice).await;
    let mut bob_ws = b.ws(&bob).await;
    let mut carol_ws = c.ws(&carol).await;

    bob_ws
        .send_json(json!({"type": "typing", "conversation_id": group, "is_typing": true}))
        .await;
    for ws in [&mut alice_ws, &mut carol_ws] {
        let typing = ws.next_of_type("user_typing").await;
        assert_eq!(typing["user_id"], bob.id.as_str());
        assert_eq!(typing["conversation_id"], group.as_str());
        assert_eq!(typing["is_typing"], true);
    }
}

#[tokio::test]
async fn a_read_receipt_on_one_node_reaches_the_other_two() {
    let Some(cluster) = Cluster::start().await else {
        return;
    };
    let ([alice, bob, carol], group) = three_in_a_group(&cluster).await;
    let [a, b, c] = [&cluster.nodes[0], &cluster.nodes[1], &cluster.nodes[2]];
    let message = a
        .try_send(&alice, &group, "read me", "a-1")
        .await
        .expect("the message is stored");
    let mut alice_ws = a.ws(&alice).await;
    let mut bob_ws = b.ws(&bob).await;
    let mut carol_ws = c.ws(&carol).await;

    carol_ws
        .send_json(json!({"type": "mark_read", "message_id": message["id"]}))
        .await;
    for ws in [&mut alice_ws, &mut bob_ws] {
        let read = ws.next_of_type("message_read").await;
        assert_eq!(read["user_id"], carol.id.as_str());
        assert_eq!(read["message_id"], message["id"]);
        assert_eq!(read["last_read_seq"], message["seq"]);
    }
}

#[tokio::test]
async fn a_reaction_and_a_pin_on_one_node_reach_the_other_two_with_their_seq() {
    let Some(cluster) = Cluster::start().await else {
        return;
    };
    let ([alice, bob, carol], group) = three_in_a_group(&cluster).await;
    let [a, b, c] = [&cluster.nodes[0], &cluster.nodes[1], &cluster.nodes[2]];
    let message = a
        .try_send(&alice, &group, "react to me", "a-1")
        .await
        .expect("the message is stored");
    let mut alice_ws = a.ws(&alice).await;
    let mut bob_ws = b.ws(&bob).await;
    let mut carol_ws = c.ws(&carol).await;

    carol_ws
        .send_json(json!({"type": "react", "message_id": message["id"], "emoji": "👍"}))
        .await;
    let mut seqs = Vec::new();
    for ws in [&mut alice_ws, &mut bob_ws] {
        let added = ws.next_of_type("reaction_added").await;
        assert_eq!(added["user_id"], carol.id.as_str());
        assert_eq!(added["message_id"], message["id"]);
        assert_eq!(
            (&added["emoji"], &added["count"]),
            (&json!("👍"), &json!(1))
        );
        assert!(added["seq"].as_i64() > message["seq"].as_i64());
        seqs.push(added["seq"].clone());
    }
    assert_eq!(seqs[0], seqs[1]);

    alice_ws
        .send_json(json!({"type": "pin", "conversation_id": group, "message_id": message["id"]}))
        .await;
    for ws in [&mut bob_ws, &mut carol_ws] {
        let pinned = ws.next_of_type("message_pinned").await;
        assert_eq!(pinned["user_id"], alice.id.as_str());
        assert_eq!(pinned["message_id"], message["id"]);
        assert!(pinned["seq"].as_i64() > seqs[0].as_i64());
    }
    // Every node reads the message as it now stands, `me` for the reader.
    let history = c.history(&carol, &group).await;
    assert_eq!(
        history[0]["reactions"],
        json!([{"emoji": "👍", "count": 1, "me": true}])
    );
    assert_eq!(history[0]["pinned_by"], alice.id.as_str());
}

#[tokio::test]
async fn a_logout_on_one_node_closes_that_tokens_socket_on_another_and_no_other() {
    let Some(cluster) = Cluster::start().await else {
        return;
    };
    let [a, b, c] = [&cluster.nodes[0], &cluster.nodes[1], &cluster.nodes[2]];
    let alice = a.user("alice").await;
    let laptop = User {
        token: b.login("alice", PASSWORD).await,
        ..alice.clone()
    };
    let mut phone_ws = c.ws(&alice).await;
    let mut laptop_ws = b.ws(&laptop).await;

    let logout = a
        .http
        .post(format!("{}/api/v1/auth/logout", a.base))
        .bearer_auth(&alice.token)
        .send()
        .await
        .expect("the logout reaches node A");
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);

    assert_eq!(phone_ws.next_json().await["code"], "unauthorized");
    assert_eq!(phone_ws.close_code().await, Some(1008));
    laptop_ws.assert_open().await;
}

#[tokio::test]
async fn a_password_change_on_one_node_closes_the_users_sockets_on_the_others() {
    let Some(cluster) = Cluster::start().await else {
        return;
    };
    let [a, b, c] = [&cluster.nodes[0], &cluster.nodes[1], &cluster.nodes[2]];
    let alice = a.user("alice").await;
    let mut on_b = b.ws(&alice).await;
    let mut on_c = c.ws(&alice).await;

    let changed = a
        .put(
            "/api/v1/users/me",
            &alice.token,
            json!({"password": "new password!", "current_password": PASSWORD}),
        )
        .await;
    assert_eq!(changed.status(), StatusCode::OK);

    for ws in [&mut on_b, &mut on_c] {
        assert_eq!(ws.next_json().await["code"], "unauthorized");
        assert_eq!(ws.close_code().await, Some(1008));
    }
}

#[tokio::test]
async fn a_message_reaching_sockets_on_the_other_nodes_comes_back_to_the_sender_as_delivered() {
    let Some(cluster) = Cluster::start().await else {
        return;
    };
    let ([alice, bob, carol], group) = three_in_a_group(&cluster).await;
    let [a, b, c] = [&cluster.nodes[0], &cluster.nodes[1], &cluster.nodes[2]];
    let mut alice_ws = a.ws(&alice).await;
    let mut bob_ws = b.ws(&bob).await;
    let mut carol_ws = c.ws(&carol).await;

    alice_ws
        .send_json(json!({"type": "message", "conversation_id": group,
                          "content": "did it arrive?", "client_message_id": "a-2"}))
        .await;
    let sent = alice_ws.next_of_type("new_message").await;
    let seq = sent["seq"].as_i64().unwrap();
    for ws in [&mut bob_ws, &mut carol_ws] {
        ws.next_of_type("new_message").await;
    }
    // Node B records Bob's delivery, node C Carol's; each announcement crosses to node A.
    let mut delivered = std::collections::BTreeMap::new();
    while delivered.len() < 2 {
        let frame = alice_ws.next_of_type("message_delivered").await;
        assert_eq!(frame["conversation_id"], group.as_str());
        delivered.insert(
            frame["user_id"].as_str().unwrap().to_owned(),
            frame["last_delivered_seq"].as_i64().unwrap(),
        );
    }
    let expected: std::collections::BTreeMap<String, i64> =
        [(bob.id.clone(), seq), (carol.id.clone(), seq)].into();
    assert_eq!(delivered, expected);
}
