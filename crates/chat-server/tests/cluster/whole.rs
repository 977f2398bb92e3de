//! The end state every loss test checks: each client's message store holds every
//! acknowledged message exactly once, and so does the database.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use serde_json::Value;

use crate::client::{Device, Seen, User, id_of, seq_of};
use crate::harness::Node;

/// Waits (up to `within`) until every device has received every message of `expected`,
/// then finishes the devices and returns what each saw. Panics naming the devices that
/// stayed short, and what they missed.
pub async fn finish_when_whole(
    devices: Vec<Device>,
    expected: &HashSet<String>,
    within: Duration,
) -> Vec<(String, Seen)> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let whole = devices.iter().all(|device| {
            let seen = device.seen.lock().unwrap();
            expected.iter().all(|id| seen.messages.contains_key(id))
        });
        if whole {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "after {within:?}:\n{}",
            shortfall(&devices, expected)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut seen = Vec::new();
    for device in devices {
        let name = device.name.clone();
        seen.push((name, device.finish().await));
    }
    seen
}

/// What each device misses of `expected`: the seqs, and which devices hold each.
fn shortfall(devices: &[Device], expected: &HashSet<String>) -> String {
    let mut holders: HashMap<&String, (i64, Vec<&str>)> = HashMap::new();
    for device in devices {
        let seen = device.seen.lock().unwrap();
        for id in expected {
            if let Some(&seq) = seen.messages.get(id) {
                holders
                    .entry(id)
                    .or_insert((seq, Vec::new()))
                    .1
                    .push(&device.name);
            }
        }
    }
    let mut lines = Vec::new();
    for device in devices {
        let seen = device.seen.lock().unwrap();
        let mut missing: Vec<String> = expected
            .iter()
            .filter(|id| !seen.messages.contains_key(*id))
            .map(|id| match holders.get(id) {
                Some((seq, names)) => format!("seq {seq} (held by {})", names.join(", ")),
                None => format!("{id} (held by nobody)"),
            })
            .collect();
        if missing.is_empty() {
            continue;
        }
        missing.sort_unstable();
        lines.push(format!(
            "{} misses {} of {}: {} (highest seq {}, {} reconnects, {} resyncs, gave up: {:?})",
            device.name,
            missing.len(),
            expected.len(),
            missing[..missing.len().min(10)].join("; "),
            seen.highest_seq,
            seen.reconnects,
            seen.resyncs,
            seen.gave_up,
        ));
    }
    lines.join("\n")
}

/// Asserts that each device holds nothing but messages of `expected` (with
/// [`finish_when_whole`]: exactly those), that no seq came with two ids and that no device
/// saw an error frame.
pub fn assert_only_acknowledged(seen: &[(String, Seen)], expected: &HashSet<String>) {
    for (name, seen) in seen {
        let got: HashSet<String> = seen.messages.keys().cloned().collect();
        let extra: Vec<&String> = got.difference(expected).collect();
        assert!(
            extra.is_empty(),
            "{name} holds {} messages nobody was told were stored: {extra:?}",
            extra.len()
        );
        assert!(
            seen.seq_clashes.is_empty(),
            "{name} got two messages with one seq: {:?}",
            seen.seq_clashes
        );
        assert!(
            seen.errors.is_empty(),
            "{name} got errors: {:?}",
            seen.errors
        );
    }
}

/// Asserts that the stored history of `conversation` holds each message of `expected` once,
/// in ascending seq, with no client message id stored twice.
pub async fn assert_stored_exactly_once(
    node: &Node,
    reader: &User,
    conversation: &str,
    expected: &HashSet<String>,
) {
    let history: Vec<Value> = node.history(reader, conversation).await;
    let mut by_client_id: BTreeMap<String, usize> = BTreeMap::new();
    for message in &history {
        *by_client_id
            .entry(
                message["client_message_id"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
            )
            .or_default() += 1;
    }
    let twice: Vec<_> = by_client_id.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "stored more than once: {twice:?}");
    assert!(
        history.windows(2).all(|w| seq_of(&w[0]) < seq_of(&w[1])),
        "the history is not in ascending seq"
    );
    let stored: HashSet<String> = history.iter().map(id_of).collect();
    assert_eq!(stored.len(), history.len(), "an id is stored twice");
    assert_eq!(
        &stored, expected,
        "the stored messages are not the acknowledged ones"
    );
}
