//! Presence across nodes: a socket on one node makes its user online as every node sees it,
//! the `presence` event reaches co-members whose sockets are on other nodes, and the user
//! goes offline everywhere once their last socket, wherever it was, closes.

use serde_json::Value;

use crate::client::User;
use crate::harness::{Cluster, Node};
use crate::ws::{PATIENCE, Ws};

async fn status(node: &Node, viewer: &User, user: &User) -> Value {
    let response = node
        .get(
            &format!("/api/v1/users/{}/presence", user.id),
            &viewer.token,
        )
        .await;
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    let presence: Value = response.json().await.expect("a presence");
    presence["status"].clone()
}

/// The next presence event about `user`, skipping others.
async fn next_presence_of(ws: &mut Ws, user: &User) -> Value {
    loop {
        let event = ws.next_of_type("presence").await;
        if event["user_id"] == user.id.as_str() {
            return event;
        }
    }
}

#[tokio::test]
async fn a_user_online_on_one_node_is_online_from_the_others_and_their_co_members_hear_it() {
    let Some(cluster) = Cluster::start().await else {
        return;
    };
    let [a, b, c] = [&cluster.nodes[0], &cluster.nodes[1], &cluster.nodes[2]];
    let alice = a.user("alice").await;
    let bob = b.user("bob").await;
    a.group(&alice, std::slice::from_ref(&bob)).await;
    let mut bobs = b.ws(&bob).await;

    let mut alices = a.ws(&alice).await;
    let online = next_presence_of(&mut bobs, &alice).await;
    assert_eq!(online["status"], "online", "{online}");
    assert_eq!(status(b, &bob, &alice).await, "online");
    assert_eq!(status(c, &bob, &alice).await, "online");

    alices.stream.close(None).await.expect("the close is sent");
    // Node A writes the count moments after the close; node B then sees her gone.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while status(b, &bob, &alice).await != "offline" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "alice never went offline on B"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let offline = next_presence_of(&mut bobs, &alice).await;
    assert_eq!(offline["status"], "offline", "{offline}");
    assert!(offline["last_seen_at"].is_string(), "{offline}");
}
