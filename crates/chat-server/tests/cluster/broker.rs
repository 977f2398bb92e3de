//! The broker goes away and comes back: every node tells its sockets to `resync`, and the
//! clients end with every message sent meanwhile.

use std::collections::HashSet;
use std::time::Duration;

use crate::client::{Device, id_of};
use crate::harness::Cluster;
use crate::whole::{assert_only_acknowledged, assert_stored_exactly_once, finish_when_whole};

#[tokio::test]
async fn after_a_broker_cut_every_client_that_resyncs_ends_with_every_message() {
    let Some(mut cluster) = Cluster::start().await else {
        return;
    };
    // Six users in one group, two on each node; they only receive. Messages go over REST.
    let mut users = Vec::new();
    for i in 0..6 {
        users.push(cluster.nodes[i % 3].user(&format!("user{i}")).await);
    }
    let group = cluster.nodes[0].group(&users[0], &users[1..]).await;
    let mut devices = Vec::new();
    for (i, user) in users.iter().enumerate() {
        devices.push(Device::start(user, cluster.ws_urls_from(i % 3), None).await);
    }

    let mut stored = HashSet::new();
    let mut send_round = async |cluster: &Cluster, round: &str| {
        for (i, user) in users.iter().enumerate() {
            let client_id = format!("{round}-{i}");
            let message = cluster.nodes[i % 3]
                .try_send(user, &group, &format!("{round} from user{i}"), &client_id)
                .await
                .unwrap_or_else(|| panic!("node {} stores {client_id}", i % 3));
            stored.insert(id_of(&message));
        }
    };
    send_round(&cluster, "before").await;
    // A node names where its clients must sync from after a loss: the highest seq it had
    // seen chat_nats::SEQ_LAG before it (a node up for less than that names none). Let the
    // nodes run that long, as nodes in service have.
    tokio::time::sleep(chat_nats::SEQ_LAG + Duration::from_secs(2)).await;
    send_round(&cluster, "settled").await;
    cluster.broker.kill();
    for round in ["cut-1", "cut-2", "cut-3"] {
        send_round(&cluster, round).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cluster.broker.restart().await;
    send_round(&cluster, "after").await;

    let seen = finish_when_whole(devices, &stored, Duration::from_secs(30)).await;
    assert!(
        seen.iter().all(|(_, s)| s.resyncs >= 1),
        "every socket was told to resync: {:?}",
        seen.iter().map(|(n, s)| (n, s.resyncs)).collect::<Vec<_>>()
    );
    assert_only_acknowledged(&seen, &stored);
    assert_stored_exactly_once(&cluster.nodes[0], &users[0], &group, &stored).await;
}
