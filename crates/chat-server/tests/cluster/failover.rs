//! A node dies under load: its clients move to the other nodes and lose nothing, and the
//! clients of the other nodes end with every message too.

use std::collections::HashSet;
use std::time::Duration;

use crate::client::{Device, Sending, User};
use crate::harness::Cluster;
use crate::whole::{assert_only_acknowledged, assert_stored_exactly_once, finish_when_whole};

/// The node SIGKILLed.
const KILLED: usize = 1;

/// What [`kill_a_node_under_send_load`] leaves behind.
struct AfterTheKill {
    cluster: Cluster,
    users: Vec<User>,
    group: String,
    /// Each device with the node it started on and how many of its messages were
    /// acknowledged before the kill.
    devices: Vec<(usize, usize, Device)>,
    /// Every message some sender got acknowledged.
    acked: HashSet<String>,
}

/// Six users in one group, two on each node, every one sending one message after another
/// over its WebSocket; node B is SIGKILLed 1.5 s in and the senders go on for 1.5 s more,
/// then each sees its message in flight through to its acknowledgement. `None` when the
/// cluster tests are skipped.
async fn kill_a_node_under_send_load() -> Option<AfterTheKill> {
    let mut cluster = Cluster::start().await?;
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
    cluster.nodes[KILLED].kill();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for device in &devices {
        device.stop_sending();
    }
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
    let devices = devices
        .into_iter()
        .zip(acked_before_kill)
        .enumerate()
        .map(|(i, (device, before))| (i % 3, before, device))
        .collect();
    Some(AfterTheKill {
        cluster,
        users,
        group,
        devices,
        acked,
    })
}

#[tokio::test]
async fn clients_of_a_sigkilled_node_reconnect_and_end_with_every_acknowledged_message_once() {
    let Some(after) = kill_a_node_under_send_load().await else {
        return;
    };
    let (moved, stayed): (Vec<_>, Vec<_>) = after
        .devices
        .into_iter()
        .partition(|(node, _, _)| *node == KILLED);
    let before: Vec<usize> = moved.iter().map(|(_, before, _)| *before).collect();
    let moved = moved.into_iter().map(|(_, _, device)| device).collect();
    let seen = finish_when_whole(moved, &after.acked, Duration::from_secs(30)).await;
    for ((name, seen), before) in seen.iter().zip(before) {
        assert!(seen.reconnects >= 1, "{name} was on the killed node");
        assert!(
            before > 0 && seen.acked.len() > before,
            "{name} got messages through before the kill ({before}) and after it ({})",
            seen.acked.len() - before
        );
    }
    assert_only_acknowledged(&seen, &after.acked);
    // The clients of the other nodes hold nothing that was not acknowledged either.
    let mut others = Vec::new();
    for (_, _, device) in stayed {
        others.push((device.name.clone(), device.finish().await));
    }
    assert_only_acknowledged(&others, &after.acked);
    let node = &after.cluster.nodes[0];
    assert_stored_exactly_once(node, &after.users[0], &after.group, &after.acked).await;
}

/// A message the killed node stored and acknowledged but never published reaches the other
/// nodes' clients through the resync the survivors run once the killed node falls silent.
#[tokio::test]
async fn clients_of_the_other_nodes_end_with_every_message_the_sigkilled_node_acknowledged() {
    let Some(after) = kill_a_node_under_send_load().await else {
        return;
    };
    let stayed = after
        .devices
        .into_iter()
        .filter(|(node, _, _)| *node != KILLED)
        .map(|(_, _, device)| device)
        .collect();
    let seen = finish_when_whole(stayed, &after.acked, Duration::from_secs(30)).await;
    assert_only_acknowledged(&seen, &after.acked);
}
