//! A node dies under load: its clients move to the other nodes and lose nothing.

use std::collections::HashSet;
use std::time::Duration;

use crate::client::{Device, Sending};
use crate::harness::Cluster;
use crate::whole::{assert_each_has_exactly, assert_stored_exactly_once, finish_when_whole};

#[tokio::test]
async fn sigkilling_a_node_under_send_load_loses_no_acknowledged_message() {
    let Some(mut cluster) = Cluster::start().await else {
        return;
    };
    // Six users in one group, two on each node, every one sending.
    let mut users = Vec::new();
    for i in 0..6 {
        users.push(cluster.nodes[i % 3].user(&format!("user{i}")).await);
    }
    let group = cluster.nodes[0].group(&users[0], &users[1..]).await;
    let mut devices = Vec::new();
    for (i, user) in users.iter().enumerate() {
        let sending = Sending {
            conversation: group.clone(),
        };
        devices.push(Device::start(user, cluster.ws_urls_from(i % 3), Some(sending)).await);
    }
    // Everyone is connected before anyone sends: each client must see every message.
    for device in &devices {
        device.start_sending();
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let acked_before_kill: Vec<usize> = devices
        .iter()
        .map(|d| d.seen.lock().unwrap().acked.len())
        .collect();
    cluster.nodes[1].kill();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for device in &devices {
        device.stop_sending();
    }
    // Each sender sees its message in flight through to its acknowledgement.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while devices
        .iter()
        .any(|d| d.seen.lock().unwrap().pending.is_some())
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "a sender's last message was never acknowledged"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let acked: HashSet<String> = devices
        .iter()
        .flat_map(|d| d.seen.lock().unwrap().acked.clone())
        .collect();

    let seen = finish_when_whole(devices, &acked, Duration::from_secs(30)).await;
    for (i, (name, seen)) in seen.iter().enumerate() {
        if i % 3 == 1 {
            assert!(seen.reconnects >= 1, "{name} was on the killed node");
        }
    }
    for ((name, seen), before) in seen.iter().zip(acked_before_kill) {
        assert!(
            before > 0 && seen.acked.len() > before,
            "{name} got messages through before the kill ({before}) and after it ({})",
            seen.acked.len() - before
        );
    }
    assert_each_has_exactly(&seen, &acked);
    assert_stored_exactly_once(&cluster.nodes[0], &users[0], &group, &acked).await;
}
