//! Login sessions across nodes: ending a session on one node closes its sockets on another.

use reqwest::StatusCode;
use serde_json::Value;

use crate::client::{PASSWORD, User};
use crate::harness::Cluster;

#[tokio::test]
async fn ending_a_session_on_one_node_closes_its_socket_on_another_and_no_other() {
    let Some(cluster) = Cluster::start().await else {
        return;
    };
    let [a, b, c] = [&cluster.nodes[0], &cluster.nodes[1], &cluster.nodes[2]];
    let alice = a.user("alice").await;
    let phone = User {
        token: c.login("alice", PASSWORD).await,
        ..alice.clone()
    };
    let laptop = User {
        token: b.login("alice", PASSWORD).await,
        ..alice.clone()
    };
    let listed: Vec<Value> = a
        .get("/api/v1/auth/sessions", &phone.token)
        .await
        .json()
        .await
        .unwrap();
    let phone_session = listed
        .iter()
        .find(|s| s["current"] == true)
        .expect("the phone's session is listed as current")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut phone_ws = c.ws(&phone).await;
    let mut laptop_ws = b.ws(&laptop).await;

    let ended = a
        .http
        .delete(format!("{}/api/v1/auth/sessions/{phone_session}", a.base))
        .bearer_auth(&laptop.token)
        .send()
        .await
        .expect("the request reaches node A");
    assert_eq!(ended.status(), StatusCode::NO_CONTENT);

    assert_eq!(phone_ws.next_json().await["code"], "unauthorized");
    assert_eq!(phone_ws.close_code().await, Some(1008));
    laptop_ws.assert_open().await;
    let refused = c.get("/api/v1/auth/me", &phone.token).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
}
