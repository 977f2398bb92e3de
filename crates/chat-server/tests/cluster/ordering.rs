//! `seq` stays exact across nodes: a reader that always asks for what comes after the
//! highest seq it has seen, while writers on every node commit concurrently, never skips a
//! message that commits late and never gets one twice.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::client::{id_of, seq_of};
use crate::harness::Cluster;

/// Writers per node, each sending this many messages one after another.
const WRITERS_PER_NODE: usize = 4;
const MESSAGES_PER_WRITER: usize = 40;

#[tokio::test]
async fn a_reader_paging_after_its_highest_seq_gets_every_message_of_three_writing_nodes_once() {
    let Some(cluster) = Cluster::start().await else {
        return;
    };
    let cluster = Arc::new(cluster);
    let mut writers = Vec::new();
    for i in 0..3 {
        writers.push(cluster.nodes[i].user(&format!("writer{i}")).await);
    }
    let reader = cluster.nodes[0].user("reader").await;
    let group = cluster.nodes[0].group(&reader, &writers).await;

    let done = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for (node, writer) in writers.iter().enumerate() {
        for w in 0..WRITERS_PER_NODE {
            let (cluster, writer, group) = (cluster.clone(), writer.clone(), group.clone());
            tasks.push(tokio::spawn(async move {
                let mut ids = Vec::new();
                for m in 0..MESSAGES_PER_WRITER {
                    let client_id = format!("{node}-{w}-{m}");
                    let message = cluster.nodes[node]
                        .try_send(&writer, &group, &client_id, &client_id)
                        .await
                        .unwrap_or_else(|| panic!("node {node} stores {client_id}"));
                    ids.push(id_of(&message));
                }
                ids
            }));
        }
    }
    let paging = {
        let (cluster, reader, group, done) =
            (cluster.clone(), reader.clone(), group.clone(), done.clone());
        tokio::spawn(async move {
            let mut read = Vec::new();
            let mut highest = 0;
            for page_number in 0.. {
                // Whether the writers were done before this page was asked for: an empty
                // page after that means the reader is through.
                let finished = done.load(Ordering::SeqCst);
                let node = &cluster.nodes[page_number % 3];
                let page = node.page_after(&reader, &group, highest, 20).await;
                if page.is_empty() && finished {
                    return read;
                }
                for message in page {
                    let seq = seq_of(&message);
                    assert!(seq > highest, "seq {seq} came after {highest}");
                    highest = seq;
                    read.push(id_of(&message));
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            unreachable!("the reader pages until it is through")
        })
    };
    let mut written = HashSet::new();
    for task in tasks {
        written.extend(task.await.expect("a writer finishes"));
    }
    done.store(true, Ordering::SeqCst);
    let read = paging.await.expect("the reader finishes");

    let distinct: HashSet<&String> = read.iter().collect();
    assert_eq!(distinct.len(), read.len(), "the reader got a message twice");
    let read: HashSet<String> = read.into_iter().collect();
    let missed: Vec<&String> = written.difference(&read).collect();
    assert!(
        missed.is_empty(),
        "the reader skipped {} of {} messages",
        missed.len(),
        written.len()
    );
    assert_eq!(read, written);
}
