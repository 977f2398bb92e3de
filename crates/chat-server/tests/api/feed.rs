//! The change feed end to end: a client that was offline while others changed things pages
//! `GET /api/v1/sync` from its old position, applies every event in order, and ends with
//! exactly what fresh REST reads show. The WebSocket `sync` replays the same events.

use std::collections::BTreeMap;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use chat_postgres::testing::TestDatabase;

use crate::helpers::{TestApp, TestUser, spawn_app, spawn_delivering_app};
use crate::postgres::spawn_delivering_node;

/// A small deterministic generator, so a failing run can be repeated from its seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// One message as the client keeps it: what REST reads of it show.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Message {
    id: String,
    sender: String,
    /// `None` once deleted for everyone.
    content: Option<String>,
    edited_at: Value,
    deleted_at: Value,
    /// `[{"emoji", "count", "me"}]`, as the caller sees them.
    reactions: Value,
    pinned_at: Value,
    pinned_by: Value,
    /// The ids the message mentions (issue #15, mentions).
    mentions: Value,
}

impl Message {
    fn from_json(m: &Value) -> Self {
        Self {
            id: m["id"].as_str().unwrap().to_owned(),
            sender: m["sender_id"].as_str().unwrap().to_owned(),
            content: m["content"].as_str().map(str::to_owned),
            edited_at: m["edited_at"].clone(),
            deleted_at: m["deleted_at"].clone(),
            reactions: m["reactions"].clone(),
            pinned_at: m["pinned_at"].clone(),
            pinned_by: m["pinned_by"].clone(),
            mentions: m["mentions"].clone(),
        }
    }

    /// The message as the comparison shows it, `read` from the reader's side.
    fn shown(&self, seq: i64, read: Option<bool>) -> Value {
        json!({
            "seq": seq, "id": self.id, "sender": self.sender, "content": self.content,
            "read": read, "edited_at": self.edited_at, "deleted_at": self.deleted_at,
            "reactions": self.reactions, "pinned_at": self.pinned_at, "pinned_by": self.pinned_by,
            "mentions": self.mentions,
        })
    }
}

/// One conversation as the client keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Conversation {
    name: Option<String>,
    /// Member id → role.
    members: BTreeMap<String, String>,
    /// Seq → message.
    messages: BTreeMap<i64, Message>,
    /// The client's own read marker.
    marker: i64,
    /// The position of the event that last set the marker as it stands: a message of the
    /// client's own with a seq above it moves the marker (sending is reading); one below it
    /// was sent before that marker was set, which already counts it.
    marker_position: i64,
    /// `muted_until` as REST shows it (the scenario mutes only until a far-off time).
    muted_until: Value,
    archived: bool,
    /// The position the archive was seen at: a message with a higher seq brings the
    /// conversation back unless it is muted.
    archive_position: i64,
    // --- Threads (issue #15) ---
    /// Root id → seq → thread reply: thread replies are in no history, only in threads.
    threads: BTreeMap<String, BTreeMap<i64, Message>>,
    /// Root id → its summary as the client keeps it (docs/websocket.md, "Threads").
    summaries: BTreeMap<String, ThreadKept>,
    // --- Delivered receipts (H9) ---
    /// Every other member's delivered marker as reads show it (never below their read
    /// marker, never going back): the highest of what `message_delivered`, `message_read`
    /// and their own messages said since `delivered_position`.
    delivered: BTreeMap<String, i64>,
    /// Per member, the position of the conversation state that last set `delivered` (a
    /// member added back starts again from there): their own messages below it count no more.
    delivered_position: BTreeMap<String, i64>,
}

// --- Threads (issue #15) ---
/// A root's summary as a client keeps it: the `thread` the root last came with from the
/// server, and the replies counted since (id → seq, sender, created_at).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct ThreadKept {
    base: Value,
    /// Reply id → its seq, who joined the thread with it (as first learned of), and when it
    /// was sent.
    counted: BTreeMap<String, (i64, Vec<String>, Value)>,
}

impl ThreadKept {
    /// The root came again, with `thread` as the server read it: it counts every reply so
    /// far.
    fn root_came(&mut self, thread: &Value) {
        self.base = thread.clone();
        let base_seq = self.base_seq();
        self.counted.retain(|_, (seq, _, _)| *seq > base_seq);
    }

    fn base_seq(&self) -> i64 {
        self.base["last_reply_seq"].as_i64().unwrap_or(0)
    }

    /// A reply the client learned of: counted once, unless the remembered summary has it.
    fn reply_came(&mut self, reply: &Value) {
        let seq = reply["seq"].as_i64().unwrap();
        if seq > self.base_seq() {
            let id = reply["id"].as_str().unwrap().to_owned();
            // Its sender and the members it mentions join with it, in ascending id.
            let mut joining: Vec<String> = reply["mentions"]
                .as_array()
                .map(|m| m.iter().map(|u| u.as_str().unwrap().to_owned()).collect())
                .unwrap_or_default();
            joining.push(reply["sender_id"].as_str().unwrap().to_owned());
            joining.sort();
            joining.dedup();
            self.counted
                .entry(id)
                .or_insert((seq, joining, reply["created_at"].clone()));
        }
    }

    /// The summary as REST shows it, for a root sent by `root_sender`.
    fn shown(&self, root_sender: &str) -> Value {
        if self.base.is_null() && self.counted.is_empty() {
            return Value::Null;
        }
        let mut shown = if self.base.is_null() {
            json!({"reply_count": 0, "last_reply_at": null, "last_reply_seq": 0,
                   "participant_ids": [root_sender]})
        } else {
            self.base.clone()
        };
        let mut counted: Vec<&(i64, Vec<String>, Value)> = self.counted.values().collect();
        counted.sort_by_key(|(seq, _, _)| *seq);
        for (seq, joining, at) in counted {
            shown["reply_count"] = json!(shown["reply_count"].as_u64().unwrap() + 1);
            shown["last_reply_seq"] = json!(seq);
            shown["last_reply_at"] = at.clone();
            let participants = shown["participant_ids"].as_array_mut().unwrap();
            for user in joining {
                if !participants.iter().any(|p| p == user.as_str()) {
                    participants.push(json!(user));
                }
            }
        }
        shown
    }
}

impl Conversation {
    /// Delivered receipts (H9): `user`'s delivered marker is at least `seq`.
    fn delivered_at_least(&mut self, user: &str, seq: i64) {
        let at = self.delivered.entry(user.to_owned()).or_default();
        *at = (*at).max(seq);
    }
}

impl Conversation {
    fn muted(&self) -> bool {
        !self.muted_until.is_null()
    }
}

/// What a client knows, built from the feed alone.
#[derive(Debug, Default)]
struct Client {
    me: String,
    /// The highest position applied: where the next catch-up starts.
    position: i64,
    conversations: BTreeMap<String, Conversation>,
}

impl Client {
    fn new(me: &TestUser) -> Self {
        Self {
            me: me.id.clone(),
            ..Self::default()
        }
    }

    /// Applies one event (a frame, or an event of `GET /sync`). Every kind of change a
    /// client can see lands here, and only here.
    fn apply(&mut self, event: &Value) {
        let seq = event["seq"].as_i64().expect("every event has a seq");
        assert!(
            seq > self.position,
            "events come in position order: {event}"
        );
        self.position = seq;
        let conversation_id = event["conversation_id"]
            .as_str()
            .or_else(|| event["message"]["conversation_id"].as_str())
            .expect("every event names its conversation")
            .to_owned();
        match event["type"].as_str().expect("a type") {
            // The replay forms of a message: sent, changed (edited, reacted to, pinned), or
            // deleted for everyone; each as it now stands.
            "new_message" | "message_updated" | "message_deleted" => {
                let m = &event["message"];
                let message_seq = m["seq"].as_i64().unwrap();
                let message = Message::from_json(m);
                let conversation = self.conversations.entry(conversation_id).or_default();
                if message.sender == self.me && message_seq > conversation.marker_position {
                    // Sending is reading.
                    conversation.marker = conversation.marker.max(message_seq);
                }
                // Delivered receipts (H9): sending is reading, and reading is receiving.
                let since = conversation.delivered_position.get(&message.sender);
                if message.sender != self.me && since.is_none_or(|p| message_seq > *p) {
                    conversation.delivered_at_least(&message.sender, message_seq);
                }
                // --- Threads (issue #15): a thread reply goes to its thread, counts in its
                // root's summary, and brings no archived conversation back. ---
                if let Some(root) = m["thread_root_id"].as_str() {
                    let kept = conversation.summaries.entry(root.to_owned()).or_default();
                    kept.reply_came(m);
                    let thread = conversation.threads.entry(root.to_owned()).or_default();
                    thread.insert(message_seq, message);
                    return;
                }
                let kept = conversation
                    .summaries
                    .entry(message.id.clone())
                    .or_default();
                kept.root_came(&m["thread"]);
                // --- end of threads ---
                if message_seq > conversation.archive_position && !conversation.muted() {
                    // A message newer than the archive brings the conversation back.
                    conversation.archived = false;
                }
                conversation.messages.insert(message_seq, message);
            }
            "message_hidden" => {
                if let Some(conversation) = self.conversations.get_mut(&conversation_id) {
                    conversation
                        .messages
                        .retain(|_, m| event["message_id"] != m.id.as_str());
                    // Threads (issue #15): a hidden thread reply leaves its thread's page, and
                    // still counts in its root's summary.
                    for thread in conversation.threads.values_mut() {
                        thread.retain(|_, m| event["message_id"] != m.id.as_str());
                    }
                    let reply = &event["thread_reply"];
                    if let Some(root) = reply["thread_root_id"].as_str() {
                        let mut counted = reply.clone();
                        counted["id"] = event["message_id"].clone();
                        let kept = conversation.summaries.entry(root.to_owned()).or_default();
                        kept.reply_came(&counted);
                    }
                }
            }
            "read_marker_updated" => {
                let conversation = self.conversations.entry(conversation_id).or_default();
                conversation.marker = event["last_read_seq"].as_i64().unwrap();
                conversation.marker_position = seq;
            }
            "conversation_settings_updated" => {
                let conversation = self.conversations.entry(conversation_id).or_default();
                conversation.muted_until = event["muted_until"].clone();
                conversation.archived = event["archived"].as_bool().unwrap();
                conversation.archive_position = seq;
            }
            // Another member's marker: what `is_read` of the client's own messages follows,
            // and (H9) what was read was received.
            "message_read" => {
                let conversation = self.conversations.entry(conversation_id).or_default();
                let user = event["user_id"].as_str().unwrap();
                conversation.delivered_at_least(user, event["last_read_seq"].as_i64().unwrap());
            }
            // Delivered receipts (H9): another member's delivered marker.
            "message_delivered" => {
                let conversation = self.conversations.entry(conversation_id).or_default();
                let user = event["user_id"].as_str().unwrap();
                let at = event["last_delivered_seq"].as_i64().unwrap();
                conversation.delivered_at_least(user, at);
            }
            "conversation_updated" => match event["change"].as_str().unwrap() {
                "state" => {
                    let conversation = self.conversations.entry(conversation_id).or_default();
                    let details = &event["conversation"];
                    conversation.name = event["name"].as_str().map(str::to_owned);
                    // As it stands now: a member added back starts from zero.
                    conversation.marker = event["last_read_seq"].as_i64().unwrap();
                    conversation.marker_position = seq;
                    conversation.muted_until = details["muted_until"].clone();
                    conversation.archived = details["archived"].as_bool().unwrap();
                    conversation.archive_position = seq;
                    conversation.members = details["participants"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|p| {
                            let id = p["id"].as_str().unwrap().to_owned();
                            (id, p["role"].as_str().unwrap().to_owned())
                        })
                        .collect();
                    // Delivered receipts (H9): every member's, as it stands.
                    conversation.delivered = delivered_of_others(details, &self.me);
                    conversation.delivered_position = conversation
                        .members
                        .keys()
                        .map(|id| (id.clone(), seq))
                        .collect();
                }
                "member_removed" if event["user_ids"][0] == self.me.as_str() => {
                    self.conversations.remove(&conversation_id);
                }
                other => panic!("a replay sends conversations whole, not {other}: {event}"),
            },
            other => panic!("an event the client does not know: {other}: {event}"),
        }
    }

    /// Pages the feed over REST from the client's position, `limit` events a page, applying
    /// every event. Returns the events applied.
    async fn catch_up(&mut self, app: &TestApp, token: &str, limit: u32) -> Vec<Value> {
        let mut applied = Vec::new();
        loop {
            let since = self.position;
            let page = sync_page(app, token, since, limit).await;
            let events = page["events"].as_array().unwrap();
            assert!(events.len() <= limit as usize, "{page}");
            for event in events {
                self.apply(event);
                applied.push(event.clone());
            }
            let next = page["next"].as_i64().unwrap();
            assert_eq!(
                next,
                if events.is_empty() {
                    since
                } else {
                    self.position
                }
            );
            self.position = next;
            if !page["has_more"].as_bool().unwrap() {
                return applied;
            }
            assert_eq!(
                events.len(),
                limit as usize,
                "a page short of the limit is the last"
            );
        }
    }

    /// What fresh REST reads should show, as the client sees it.
    fn expected(&self) -> Value {
        let mut expected = self.expected_without_mentions();
        // ---- Mentions (issue #15): the unread messages that mention the client, per
        // conversation and in total, muted conversations included.
        let mut total = 0;
        for (id, c) in &self.conversations {
            let mentions = self.unread_mentions(c);
            total += mentions;
            expected["conversations"][id]["unread_mentions"] = json!(mentions);
        }
        expected["total_unread_mentions"] = json!(total);
        // ---- End of mentions.
        expected
    }

    /// The unread messages of `c` (as the unread count counts them) that mention the client.
    fn unread_mentions(&self, c: &Conversation) -> usize {
        c.messages
            .iter()
            .filter(|(seq, m)| **seq > c.marker && m.sender != self.me)
            .filter(|(_, m)| m.content.is_some())
            .filter(|(_, m)| {
                let mentions = m.mentions.as_array().expect("every message has mentions");
                mentions.iter().any(|id| *id == self.me.as_str())
            })
            .count()
    }

    fn expected_without_mentions(&self) -> Value {
        let mut total = 0;
        let conversations: BTreeMap<&String, Value> = self
            .conversations
            .iter()
            .map(|(id, c)| {
                let mut unread = c
                    .messages
                    .iter()
                    .filter(|(seq, m)| **seq > c.marker && m.sender != self.me)
                    .filter(|(_, m)| m.content.is_some())
                    .count();
                // Threads (issue #15): a thread reply is unread only for the participants.
                for (root, replies) in &c.threads {
                    let follows = self.thread_shown(c, root)["participant_ids"]
                        .as_array()
                        .is_some_and(|p| p.iter().any(|u| u == self.me.as_str()));
                    if follows {
                        unread += replies
                            .iter()
                            .filter(|(seq, m)| **seq > c.marker && m.sender != self.me)
                            .filter(|(_, m)| m.content.is_some())
                            .count();
                    }
                }
                // A muted conversation keeps its count out of the badge.
                if !c.muted() {
                    total += unread;
                }
                (id, self.shown(c, unread))
            })
            .collect();
        json!({"conversations": conversations, "total_unread": total})
    }

    fn shown(&self, c: &Conversation, unread: usize) -> Value {
        let history: Vec<Value> = c
            .messages
            .iter()
            .map(|(seq, m)| {
                // Whether the client has read another's message follows its own marker.
                let read = (m.sender != self.me).then_some(*seq <= c.marker);
                m.shown(*seq, read)
            })
            .collect();
        // The latest pin first (thread replies may be pinned too).
        let mut pins: Vec<(&str, &str)> = c
            .messages
            .values()
            .chain(c.threads.values().flat_map(BTreeMap::values))
            .filter_map(|m| Some((m.pinned_at.as_str()?, m.id.as_str())))
            .collect();
        pins.sort_by(|a, b| b.cmp(a));
        let pins: Vec<&str> = pins.into_iter().map(|(_, id)| id).collect();
        json!({
            "name": c.name,
            "members": c.members,
            "unread_count": unread,
            "last_message": c.messages.values().next_back().map(|m| m.id.clone()),
            "muted_until": c.muted_until,
            "archived": c.archived,
            "history": history,
            "pins": pins,
            "threads": self.threads_shown(c),
            // Delivered receipts (H9).
            "delivered": c.members.keys()
                .filter(|id| **id != self.me)
                .map(|id| (id.clone(), c.delivered.get(id).copied().unwrap_or(0)))
                .collect::<BTreeMap<String, i64>>(),
        })
    }

    // --- Threads (issue #15) ---
    /// The summary of the root `root` of `c` as the client keeps it (null: no replies).
    fn thread_shown(&self, c: &Conversation, root: &str) -> Value {
        let Some(kept) = c.summaries.get(root) else {
            return Value::Null;
        };
        // A root the client does not hold shows nowhere; its replies count as the summary
        // it last came with says.
        match c.messages.values().find(|m| m.id == root) {
            Some(root) => kept.shown(&root.sender),
            None => kept.base.clone(),
        }
    }

    /// Every root of `c`'s history with replies: its summary and its thread's page.
    fn threads_shown(&self, c: &Conversation) -> BTreeMap<String, Value> {
        c.messages
            .values()
            .filter_map(|root| {
                let summary = self.thread_shown(c, &root.id);
                if summary.is_null() {
                    return None;
                }
                let replies: Vec<Value> = c
                    .threads
                    .get(&root.id)
                    .into_iter()
                    .flatten()
                    .map(|(seq, m)| {
                        let read = (m.sender != self.me).then_some(*seq <= c.marker);
                        m.shown(*seq, read)
                    })
                    .collect();
                Some((
                    root.id.clone(),
                    json!({"summary": summary, "replies": replies}),
                ))
            })
            .collect()
    }
}

/// Delivered receipts (H9): the other members' `last_delivered_seq` in a conversation as
/// REST shows it.
fn delivered_of_others(conversation: &Value, me: &str) -> BTreeMap<String, i64> {
    conversation["participants"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["id"] != me)
        .map(|p| {
            let id = p["id"].as_str().unwrap().to_owned();
            (id, p["last_delivered_seq"].as_i64().unwrap())
        })
        .collect()
}

/// Asserts that the client's state is what fresh reads show, naming the first conversation
/// that differs.
fn assert_same(client: &Value, fresh: &Value, context: &str) {
    let (mine, theirs) = (&client["conversations"], &fresh["conversations"]);
    let mut ids: Vec<&String> = mine.as_object().unwrap().keys().collect();
    ids.extend(theirs.as_object().unwrap().keys());
    ids.sort();
    ids.dedup();
    for id in ids {
        assert_eq!(
            mine[id], theirs[id],
            "{context}: conversation {id} (client, then fresh reads)"
        );
    }
    assert_eq!(client, fresh, "{context}");
}

async fn sync_page(app: &TestApp, token: &str, since: i64, limit: u32) -> Value {
    let response = app
        .get(&format!("/api/v1/sync?since={since}&limit={limit}"), token)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn json_of(app: &TestApp, path: &str, token: &str) -> Value {
    let response = app.get(path, token).await;
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.json().await.unwrap()
}

/// What fresh REST reads show the user: the inbox (with their settings), each
/// conversation's history, pins and members, and the unread counts.
async fn fresh_reads(app: &TestApp, user: &TestUser) -> Value {
    let inbox = json_of(app, "/api/v1/conversations?limit=200", &user.token).await;
    let counts = json_of(app, "/api/v1/messages/unread/count", &user.token).await;
    let per_conversation: BTreeMap<String, u64> = counts["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let id = c["conversation_id"].as_str().unwrap().to_owned();
            (id, c["unread_count"].as_u64().unwrap())
        })
        .collect();
    let mentions_per_conversation: BTreeMap<String, u64> = counts["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let id = c["conversation_id"].as_str().unwrap().to_owned();
            (id, c["unread_mentions"].as_u64().unwrap())
        })
        .collect();
    let mut conversations = BTreeMap::new();
    for entry in inbox.as_array().unwrap() {
        let id = entry["id"].as_str().unwrap().to_owned();
        let history_json = json_of(
            app,
            &format!("/api/v1/conversations/{id}/messages?limit=200"),
            &user.token,
        )
        .await;
        let history: Vec<Value> = history_json
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                let mine = m["sender_id"] == user.id.as_str();
                let read = (!mine).then(|| m["is_read"].as_bool().unwrap());
                Message::from_json(m).shown(m["seq"].as_i64().unwrap(), read)
            })
            .collect();
        // Threads (issue #15): each root's summary and its thread's page.
        let mut threads = BTreeMap::new();
        for root in history_roots(&history_json) {
            let page = json_of(
                app,
                &format!(
                    "/api/v1/messages/{}/thread?limit=200",
                    root["id"].as_str().unwrap()
                ),
                &user.token,
            )
            .await;
            let replies: Vec<Value> = page
                .as_array()
                .unwrap()
                .iter()
                .map(|m| {
                    assert_eq!(m["thread_root_id"], root["id"]);
                    let mine = m["sender_id"] == user.id.as_str();
                    let read = (!mine).then(|| m["is_read"].as_bool().unwrap());
                    Message::from_json(m).shown(m["seq"].as_i64().unwrap(), read)
                })
                .collect();
            threads.insert(
                root["id"].as_str().unwrap().to_owned(),
                json!({"summary": root["thread"], "replies": replies}),
            );
        }
        let pins = json_of(
            app,
            &format!("/api/v1/conversations/{id}/pins"),
            &user.token,
        )
        .await;
        let pins: Vec<&Value> = pins.as_array().unwrap().iter().map(|m| &m["id"]).collect();
        let members: BTreeMap<String, String> = entry["participants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let id = p["id"].as_str().unwrap().to_owned();
                (id, p["role"].as_str().unwrap().to_owned())
            })
            .collect();
        let unread = entry["unread_count"].as_u64().unwrap();
        assert_eq!(
            per_conversation.get(&id).copied().unwrap_or(0),
            unread,
            "the inbox and the unread counts agree"
        );
        // ---- Mentions (issue #15): the inbox and the unread counts agree on them too.
        let mentions = entry["unread_mentions"].as_u64().unwrap();
        assert_eq!(
            mentions_per_conversation.get(&id).copied().unwrap_or(0),
            mentions,
            "the inbox and the unread counts agree on mentions"
        );
        // ---- End of mentions.
        conversations.insert(
            id,
            json!({
                "unread_mentions": mentions,
                "name": entry["name"],
                "members": members,
                "unread_count": unread,
                "last_message": entry["last_message"]["id"],
                "muted_until": entry["muted_until"],
                "archived": entry["archived"],
                "history": history,
                "pins": pins,
                "threads": threads,
                "delivered": delivered_of_others(entry, &user.id),
            }),
        );
    }
    json!({
        "conversations": conversations,
        "total_unread": counts["unread_count"],
        "total_unread_mentions": counts["unread_mentions"],
    })
}

/// Threads (issue #15): the messages of a history page that are thread roots with replies.
fn history_roots(history: &Value) -> Vec<Value> {
    let roots = history.as_array().unwrap().iter();
    roots.filter(|m| !m["thread"].is_null()).cloned().collect()
}

/// A message the scenario sent.
#[derive(Debug, Clone)]
struct Sent {
    conversation: String,
    id: String,
    sender: String,
    seq: i64,
    /// Threads (issue #15): the root of the thread it is a reply in.
    thread_root: Option<String>,
}

/// The emoji the scenario reacts with.
const EMOJI: [&str; 3] = ["👍", "❤️", "🎉"];

/// The usernames of the scene: the offline user's first.
const NAMES: [&str; 4] = ["bob", "alice", "carol", "dave"];

/// What the `step`th send or edit adds to its content (issue #15, mentions): nothing, or
/// `@name`s of the scene (members or not, in any case) and `@all`. Drawn from a generator
/// of its own, so that the scenario's operations stay those of their seed.
fn mentions_for(step: usize) -> String {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (step as u64 + 1).wrapping_mul(0x2545_F491));
    let mut text = String::new();
    for _ in 0..rng.below(3) {
        let name = match rng.below(6) {
            0 => "all".to_owned(),
            1 => rng.pick(&NAMES).to_uppercase(),
            _ => (*rng.pick(&NAMES)).to_owned(),
        };
        text.push_str(&format!(" @{name}"));
    }
    text
}

/// `text` percent-encoded byte by byte, as a path segment.
fn encoded(text: &str) -> String {
    text.bytes().map(|b| format!("%{b:02X}")).collect()
}

/// Asserts that an operation of the scenario was done, or refused for one of the reasons
/// its random choice allows (a message deleted meanwhile, a sender no longer a member...);
/// never anything else.
async fn done_or_refused(response: reqwest::Response, allowed: &[&str], what: &str) {
    let status = response.status();
    if status.is_success() {
        return;
    }
    let body: Value = response.json().await.unwrap();
    assert!(
        status.is_client_error() && allowed.contains(&body["code"].as_str().unwrap_or("")),
        "{what}: {status} {body}"
    );
}

/// The people of the scenario: `offline` is the client that catches up.
struct Scene {
    app: TestApp,
    offline: TestUser,
    others: Vec<TestUser>,
    /// Every conversation with someone who stays in it: a group's owner (owners are never
    /// removed here), a direct conversation's member other than `offline`.
    conversations: Vec<(String, TestUser)>,
    /// How many of `conversations`, from the start, are groups.
    groups: usize,
    /// Every message sent.
    messages: Vec<Sent>,
    /// Threads (issue #15): the messages the offline user hid, which the scenario starts no
    /// thread on, and the roots of threads, which the offline user does not hide: a client
    /// cannot keep the summary of a root it does not see (docs/websocket.md, "Threads").
    /// Thread replies the offline user may hide: their replay says what the summary counts.
    hidden_by_offline: std::collections::BTreeSet<String>,
    roots: std::collections::BTreeSet<String>,
    /// Threads (issue #15): messages sent while the client was in step, which threads may
    /// start on: their replies reach the client without the root coming again, so only the
    /// client's own counting keeps the summary.
    old_roots: Vec<Sent>,
}

impl Scene {
    /// The scene on a server of its own.
    async fn on(app: TestApp) -> Self {
        let [offline, alice, carol, dave] = app.users(NAMES).await;
        let conversations = vec![
            (app.group(&alice, &[&offline, &carol]).await, alice.clone()),
            (app.group(&carol, &[&offline, &dave]).await, carol.clone()),
            (app.group(&dave, &[&alice]).await, dave.clone()),
            (app.direct(&alice, &offline).await, alice.clone()),
            (app.direct(&carol, &dave).await, carol.clone()),
        ];
        Self {
            app,
            offline,
            others: vec![alice, carol, dave],
            conversations,
            groups: 3,
            messages: Vec::new(),
            hidden_by_offline: Default::default(),
            roots: Default::default(),
            old_roots: Vec::new(),
        }
    }

    fn everyone(&self) -> Vec<&TestUser> {
        std::iter::once(&self.offline).chain(&self.others).collect()
    }

    fn user(&self, id: &str) -> TestUser {
        self.everyone()
            .into_iter()
            .find(|u| u.id == id)
            .cloned()
            .unwrap()
    }

    fn steady(&self, conversation: &str) -> (String, TestUser) {
        self.conversations
            .iter()
            .find(|(id, _)| id == conversation)
            .unwrap()
            .clone()
    }

    /// A conversation's members and their roles, as its steady member reads them.
    async fn members(&self, conversation: &(String, TestUser)) -> Vec<(String, String)> {
        let (id, reader) = conversation;
        let details = json_of(
            &self.app,
            &format!("/api/v1/conversations/{id}"),
            &reader.token,
        )
        .await;
        let mut members: Vec<(String, String)> = details["participants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let id = p["id"].as_str().unwrap().to_owned();
                (id, p["role"].as_str().unwrap().to_owned())
            })
            .collect();
        // In the scene's order, not by joining order (ties of which the store may list either
        // way), so a seed replays the same operations.
        let everyone = self.everyone();
        members.sort_by_key(|(id, _)| everyone.iter().position(|u| u.id == *id));
        members
    }

    /// A member of the sent message's conversation, the offline user (from another device)
    /// one time in two when they are a member.
    async fn member_of(&self, rng: &mut Rng, sent: &Sent) -> TestUser {
        let members = self.members(&self.steady(&sent.conversation)).await;
        let offline_is_member = members.iter().any(|(id, _)| *id == self.offline.id);
        if offline_is_member && rng.below(2) == 0 {
            return self.offline.clone();
        }
        self.user(&rng.pick(&members).0)
    }

    /// One random operation by anyone but the offline client (the offline user acts from
    /// their other device): messages sent, edited, deleted for everyone and for oneself,
    /// reactions, pins, read markers moved forward and back, mute and archive, renames,
    /// members added and removed (the offline user among them), roles.
    async fn random_operation(&mut self, rng: &mut Rng, step: usize) {
        let app = &self.app;
        let any = rng.pick(&self.conversations).clone();
        let group = rng.pick(&self.conversations[..self.groups]).clone();
        let (group_id, owner) = &group;
        let sent = (!self.messages.is_empty()).then(|| rng.pick(&self.messages).clone());
        let offline = self.offline.clone();
        // Delivered receipts (H9): one operation in ten.
        if rng.below(10) == 0 {
            return self.delivered_operation(rng, &any).await;
        }
        match (rng.below(23), sent) {
            (0..=4, _) => {
                let members = self.members(&any).await;
                let sender = self.user(&rng.pick(&members).0);
                let content = format!("m{step}{}", mentions_for(step));
                let message = app.send(&sender, &any.0, &content).await;
                self.messages.push(Sent {
                    conversation: any.0,
                    id: message["id"].as_str().unwrap().to_owned(),
                    sender: sender.id,
                    seq: message["seq"].as_i64().unwrap(),
                    thread_root: None,
                });
            }
            (5, Some(sent)) => {
                let reader = self.member_of(rng, &sent).await;
                let path = format!("/api/v1/messages/{}/read", sent.id);
                let response = app.put(&path, &reader.token, json!({})).await;
                done_or_refused(response, &["message_not_found"], "mark read").await;
            }
            (6, _) => {
                let path = format!("/api/v1/conversations/{group_id}");
                let body = json!({"name": format!("renamed {step}")});
                let status = app.put(&path, &owner.token, body).await.status();
                assert_eq!(status, StatusCode::OK);
            }
            (7, _) => {
                let members = self.members(&group).await;
                let outside: Vec<String> = self
                    .everyone()
                    .into_iter()
                    .filter(|u| !members.iter().any(|(id, _)| *id == u.id))
                    .map(|u| u.id.clone())
                    .collect();
                if outside.is_empty() {
                    return;
                }
                let user = rng.pick(&outside);
                let path = format!("/api/v1/conversations/{group_id}/members");
                let body = json!({"user_ids": [user]});
                let status = app.post(&path, &owner.token, body).await.status();
                assert!(status.is_success(), "{status}");
            }
            (8, _) => {
                let members = self.members(&group).await;
                let others: Vec<&(String, String)> =
                    members.iter().filter(|(id, _)| *id != owner.id).collect();
                if others.is_empty() {
                    return;
                }
                let user = &rng.pick(&others).0;
                let path = format!("/api/v1/conversations/{group_id}/members/{user}");
                let status = app.delete(&path, &owner.token).await.status();
                assert!(status.is_success(), "{status}");
            }
            (9, _) => {
                let members = self.members(&group).await;
                let others: Vec<&(String, String)> =
                    members.iter().filter(|(id, _)| *id != owner.id).collect();
                if others.is_empty() {
                    return;
                }
                let (user, role) = rng.pick(&others);
                let role = if role == "admin" { "member" } else { "admin" };
                let path = format!("/api/v1/conversations/{group_id}/members/{user}");
                let status = app
                    .put(&path, &owner.token, json!({"role": role}))
                    .await
                    .status();
                assert_eq!(status, StatusCode::OK);
            }
            (10, Some(sent)) => {
                // The sender edits (refused once they left or it was deleted).
                let sender = self.user(&sent.sender);
                let path = format!("/api/v1/messages/{}", sent.id);
                let body = json!({"content": format!("edited {step}{}", mentions_for(step))});
                let response = app
                    .request(Method::PATCH, &path, Some(&sender.token), Some(body))
                    .await;
                let allowed = ["message_not_found", "message_deleted"];
                done_or_refused(response, &allowed, "edit").await;
            }
            (11, Some(sent)) => {
                // For everyone: by the sender, or by a group's owner (moderation).
                let deleter = if rng.below(2) == 0 {
                    self.user(&sent.sender)
                } else {
                    self.steady(&sent.conversation).1
                };
                let path = format!("/api/v1/messages/{}", sent.id);
                let response = app.delete(&path, &deleter.token).await;
                let allowed = ["message_not_found", "not_the_sender"];
                done_or_refused(response, &allowed, "delete for everyone").await;
            }
            (12, Some(sent)) => {
                let hider = self.member_of(rng, &sent).await;
                // Threads (issue #15): see `hidden_by_offline`.
                if hider.id == offline.id {
                    if self.roots.contains(&sent.id) {
                        return;
                    }
                    self.hidden_by_offline.insert(sent.id.clone());
                }
                let path = format!("/api/v1/messages/{}?scope=me", sent.id);
                let response = app.delete(&path, &hider.token).await;
                done_or_refused(response, &["message_not_found"], "delete for me").await;
            }
            (13 | 14, Some(sent)) => {
                let reactor = self.member_of(rng, &sent).await;
                let emoji = *rng.pick(&EMOJI);
                let path = format!("/api/v1/messages/{}/reactions/{}", sent.id, encoded(emoji));
                let method = if rng.below(3) == 0 {
                    Method::DELETE
                } else {
                    Method::PUT
                };
                let response = app.request(method, &path, Some(&reactor.token), None).await;
                let allowed = ["message_not_found", "message_deleted"];
                done_or_refused(response, &allowed, "react").await;
            }
            (15, Some(sent)) => {
                // A group's owner, or a member of a direct conversation, pins.
                let (conversation, pinner) = self.steady(&sent.conversation);
                let path = format!("/api/v1/conversations/{conversation}/pins/{}", sent.id);
                let method = if rng.below(3) == 0 {
                    Method::DELETE
                } else {
                    Method::PUT
                };
                let response = app.request(method, &path, Some(&pinner.token), None).await;
                done_or_refused(response, &["message_deleted"], "pin").await;
            }
            (16, sent) => {
                // Mark unread (or read up to somewhere) from the offline user's other device.
                let last_read_seq = match (rng.below(3), sent) {
                    (0, _) | (_, None) => 0,
                    (1, Some(sent)) => sent.seq,
                    _ => 1 << 40,
                };
                let path = format!("/api/v1/conversations/{}/read", any.0);
                let body = json!({"last_read_seq": last_read_seq});
                let response = app.put(&path, &offline.token, body).await;
                let allowed = ["conversation_not_found"];
                done_or_refused(response, &allowed, "set read marker").await;
            }
            (17 | 18, _) => {
                let body = match rng.below(4) {
                    0 => json!({"muted_until": "2100-01-01T00:00:00Z"}),
                    1 => json!({"muted_until": null}),
                    2 => json!({"archived": true}),
                    _ => json!({"archived": false}),
                };
                let path = format!("/api/v1/conversations/{}/settings", any.0);
                let response = app.put(&path, &offline.token, body).await;
                let allowed = ["conversation_not_found"];
                done_or_refused(response, &allowed, "settings").await;
            }
            // --- Threads (issue #15): a reply in the thread of a message (or in the thread
            // a thread reply is in), by a member. ---
            (20..=22, Some(sent)) => {
                let sent = match rng.below(2) {
                    0 if !self.old_roots.is_empty() => rng.pick(&self.old_roots).clone(),
                    _ => sent,
                };
                let root = sent.thread_root.clone().unwrap_or_else(|| sent.id.clone());
                if self.hidden_by_offline.contains(&root) {
                    return;
                }
                let sender = self.member_of(rng, &sent).await;
                let path = format!("/api/v1/conversations/{}/messages", sent.conversation);
                let body = json!({
                    "content": format!("t{step}{}", mentions_for(step)),
                    "thread_root_id": root
                });
                let response = app.post(&path, &sender.token, body).await;
                if response.status() != StatusCode::CREATED {
                    // The root was deleted for everyone meanwhile.
                    done_or_refused(response, &["validation_error"], "thread reply").await;
                    return;
                }
                let message: Value = response.json().await.unwrap();
                self.roots.insert(root.clone());
                self.messages.push(Sent {
                    conversation: sent.conversation,
                    id: message["id"].as_str().unwrap().to_owned(),
                    sender: sender.id,
                    seq: message["seq"].as_i64().unwrap(),
                    thread_root: Some(root),
                });
            }
            (_, Some(sent)) => {
                // Mark read from the offline user's other device.
                let path = format!("/api/v1/messages/{}/read", sent.id);
                let response = app.put(&path, &offline.token, json!({})).await;
                done_or_refused(response, &["message_not_found"], "mark read").await;
            }
            (_, None) => {}
        }
    }
}

impl Scene {
    /// Delivered receipts (H9): a member other than the offline user fetches a
    /// conversation's history, which delivers its newest message to them; waits until
    /// reads show it (the fetch is recorded at the next delivery flush), so that the
    /// catch-up afterwards has it to replay.
    async fn delivered_operation(&mut self, rng: &mut Rng, conversation: &(String, TestUser)) {
        let members = self.members(conversation).await;
        let others: Vec<&(String, String)> = members
            .iter()
            .filter(|(id, _)| *id != self.offline.id)
            .collect();
        let fetcher = self.user(&rng.pick(&others).0);
        let (id, reader) = conversation;
        let history = json_of(
            &self.app,
            &format!("/api/v1/conversations/{id}/messages?limit=200"),
            &fetcher.token,
        )
        .await;
        let Some(newest) = history.as_array().unwrap().last() else {
            return;
        };
        let newest = newest["seq"].as_i64().unwrap();
        let path = format!("/api/v1/conversations/{id}");
        let deadline = tokio::time::Instant::now() + crate::ws::PATIENCE;
        loop {
            let details = json_of(&self.app, &path, &reader.token).await;
            let shown = delivered_of_others(&details, "");
            if shown[&fetcher.id] >= newest {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the fetch of {newest} was never recorded: {details}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}

/// The WebSocket `sync` from `since` with `limit` a page, every page: the frames before each
/// `synced`.
async fn ws_replay(app: &TestApp, user: &TestUser, since: i64, limit: u32) -> Vec<Value> {
    let mut ws = app.ws(user).await;
    let mut frames = Vec::new();
    let mut since = since;
    loop {
        ws.send_json(json!({"type": "sync", "since_seq": since, "limit": limit}))
            .await;
        loop {
            let frame = ws.next_json().await;
            if frame["type"] == "synced" {
                since = frame["last_seq"].as_i64().unwrap();
                if !frame["has_more"].as_bool().unwrap() {
                    return frames;
                }
                break;
            }
            frames.push(frame);
        }
    }
}

/// Without the timestamps of replayed events that were stamped when read, nor (H9) the
/// reader's own delivered marker in a conversation's members: the reader's own fetches (the
/// replays themselves) move it, and it is no change of the feed's.
fn comparable(events: &[Value], reader: &str) -> Vec<Value> {
    events
        .iter()
        .map(|e| {
            let mut e = e.clone();
            if let Some(object) = e.as_object_mut() {
                object.remove("timestamp");
            }
            if let Some(participants) = e["conversation"]["participants"].as_array_mut() {
                for p in participants.iter_mut().filter(|p| p["id"] == reader) {
                    p.as_object_mut().unwrap().remove("last_delivered_seq");
                }
            }
            e
        })
        .collect()
}

/// As [`comparable`], and a replayed message's frame named alike whether it came as new or
/// as changed: which one a message changed after it was sent comes as depends on where the
/// page holding it starts (docs/websocket.md, "Replayed frames").
fn paged_alike(events: &[Value], reader: &str) -> Vec<Value> {
    comparable(events, reader)
        .into_iter()
        .map(|mut e| {
            if e["type"] == "message_updated" {
                e["type"] = json!("new_message");
            }
            e
        })
        .collect()
}

/// One run of the proof: from an in-step client, `seed`'s random changes by everyone else
/// (the offline user's other device included), then the catch-up, compared with fresh reads
/// and with the WebSocket's replay. Adds to `seen` what the replay held.
async fn catch_up_after_random_changes(
    mut scene: Scene,
    seed: u64,
    seen: &mut std::collections::BTreeSet<String>,
) {
    let mut rng = Rng(seed);
    let offline = scene.offline.clone();

    // The client was in step once: it applied its whole feed, then went away.
    let mut client = Client::new(&offline);
    client.catch_up(&scene.app, &offline.token, 1000).await;
    assert_eq!(
        client.expected(),
        fresh_reads(&scene.app, &offline).await,
        "seed {seed}"
    );
    for _ in 0..5 {
        let (conversation, sender) = scene.conversations[0].clone();
        let message = scene.app.send(&sender, &conversation, "before").await;
        // Threads (issue #15): see `Scene::old_roots`.
        scene.old_roots.push(Sent {
            conversation,
            id: message["id"].as_str().unwrap().to_owned(),
            sender: sender.id.clone(),
            seq: message["seq"].as_i64().unwrap(),
            thread_root: None,
        });
    }
    client.catch_up(&scene.app, &offline.token, 2).await;
    let away_from = client.position;

    for step in 0..120 {
        scene.random_operation(&mut rng, step).await;
    }

    let applied = client.catch_up(&scene.app, &offline.token, 3).await;
    assert!(!applied.is_empty(), "seed {seed}");
    for event in &applied {
        let m = &event["message"];
        seen.extend(
            [
                Some(event["type"].as_str().unwrap().to_owned()),
                event["change"].as_str().map(str::to_owned),
                (!m["edited_at"].is_null() && !m["content"].is_null()).then(|| "edited".into()),
                m["reactions"]
                    .as_array()
                    .is_some_and(|r| !r.is_empty())
                    .then(|| "reacted".into()),
                (!m["pinned_at"].is_null()).then(|| "pinned".into()),
                m["mentions"]
                    .as_array()
                    .is_some_and(|r| !r.is_empty())
                    .then(|| "mentioned".into()),
                (!event["muted_until"].is_null()).then(|| "muted".into()),
                (event["archived"] == true).then(|| "archived".into()),
                // Threads (issue #15).
                m["thread_root_id"]
                    .is_string()
                    .then(|| "thread reply".into()),
                m["thread"].is_object().then(|| "thread root".into()),
                event["thread_reply"]
                    .is_object()
                    .then(|| "hidden thread reply".into()),
            ]
            .into_iter()
            .flatten(),
        );
    }
    let fresh = fresh_reads(&scene.app, &offline).await;
    if fresh["total_unread_mentions"].as_u64().unwrap() > 0 {
        seen.insert("unread_mentions".into());
    }
    assert_same(&client.expected(), &fresh, &format!("seed {seed}, after"));
    // The WebSocket replays the same events from the same position, in pages of the
    // same size; in pages of another size, the same but for which of a changed message
    // is new and which changed.
    let replayed = ws_replay(&scene.app, &offline, away_from, 3).await;
    let me = offline.id.as_str();
    assert_eq!(
        comparable(&replayed, me),
        comparable(&applied, me),
        "seed {seed}"
    );
    let replayed = ws_replay(&scene.app, &offline, away_from, 4).await;
    assert_eq!(
        paged_alike(&replayed, me),
        paged_alike(&applied, me),
        "seed {seed}"
    );
    // Nothing is left after the end.
    let end = sync_page(&scene.app, &offline.token, client.position, 10).await;
    assert_eq!(
        end,
        json!({"events": [], "next": client.position, "has_more": false})
    );
}

#[tokio::test]
async fn a_client_offline_while_others_changed_things_catches_up_exactly_by_paging_the_feed() {
    // Every kind of replayed frame, and the parts of a message that change, seen at least
    // once over the seeds: else the comparison proves less than it claims.
    let mut seen = std::collections::BTreeSet::new();
    for seed in [7_u64, 1_234_567, 987_654_321, 42, 2_718_281_828] {
        let scene = Scene::on(spawn_delivering_app().await).await;
        catch_up_after_random_changes(scene, seed, &mut seen).await;
    }
    let kinds = [
        "new_message",
        "message_updated",
        "message_deleted",
        "message_hidden",
        "message_read",
        "message_delivered",
        "read_marker_updated",
        "conversation_settings_updated",
        "state",
        "member_removed",
        "edited",
        "reacted",
        "pinned",
        "mentioned",
        "unread_mentions",
        "muted",
        "archived",
        "thread reply",
        "thread root",
        "hidden thread reply",
    ];
    let missing: Vec<&str> = kinds.into_iter().filter(|k| !seen.contains(*k)).collect();
    assert!(missing.is_empty(), "never replayed: {missing:?}");
}

#[tokio::test]
async fn on_postgresql_a_client_offline_while_others_changed_things_catches_up_exactly() {
    for seed in [7_u64, 42] {
        let Some(database) = TestDatabase::create("the change feed on PostgreSQL") else {
            return;
        };
        let scene = Scene::on(spawn_delivering_node(&database).await).await;
        catch_up_after_random_changes(scene, seed, &mut Default::default()).await;
    }
}

#[tokio::test]
async fn an_outsider_sees_nothing_of_a_conversation_and_a_removed_member_sees_only_the_removal() {
    let app = spawn_app().await;
    let [alice, bob, eve] = app.users(["alice", "bob", "eve"]).await;
    let group = app.group(&alice, &[&bob]).await;
    app.send(&alice, &group, "before").await;
    let empty = sync_page(&app, &eve.token, 0, 100).await;
    assert_eq!(empty, json!({"events": [], "next": 0, "has_more": false}));

    let status = app
        .delete(
            &format!("/api/v1/conversations/{group}/members/{}", bob.id),
            &alice.token,
        )
        .await
        .status();
    assert!(status.is_success());
    app.send(&alice, &group, "after").await;
    let path = format!("/api/v1/conversations/{group}");
    let status = app
        .put(&path, &alice.token, json!({"name": "secret plans"}))
        .await
        .status();
    assert_eq!(status, StatusCode::OK);

    let page = sync_page(&app, &bob.token, 0, 100).await;
    let events = page["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{page}");
    let removal = &events[0];
    assert_eq!(removal["type"], "conversation_updated");
    assert_eq!(removal["change"], "member_removed");
    assert_eq!(removal["conversation_id"], group.as_str());
    assert_eq!(removal["user_ids"], json!([bob.id]));
    assert!(!page.to_string().contains("secret plans"));
    assert!(!page.to_string().contains("after"));
    let eve_page = sync_page(&app, &eve.token, 0, 100).await;
    assert_eq!(eve_page["events"], json!([]));
}

#[tokio::test]
async fn a_bad_position_or_page_size_is_refused_with_the_field_named() {
    let app = spawn_app().await;
    let [alice] = app.users(["alice"]).await;
    for (query, field) in [
        ("since=-1", "since"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("since=abc", "since"),
    ] {
        let response = app
            .get(&format!("/api/v1/sync?{query}"), &alice.token)
            .await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{query}"
        );
        let body: Value = response.json().await.unwrap();
        assert!(body["code"].is_string(), "{body}");
        assert!(body.to_string().contains(field), "{query}: {body}");
    }
    let response = app
        .request(reqwest::Method::GET, "/api/v1/sync", None, None)
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // Over the WebSocket, the same refusal as an error frame.
    let mut ws = app.ws(&alice).await;
    ws.send_json(json!({"type": "sync", "since_seq": -5, "ref": "r1"}))
        .await;
    let error = ws.next_json().await;
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(error["code"], "validation_error", "{error}");
    assert_eq!(error["ref"], "r1");
}

#[tokio::test]
async fn live_frames_carry_the_position_a_client_resumes_from() {
    let app = spawn_app().await;
    let [alice, bob] = app.users(["alice", "bob"]).await;
    let mut ws = app.ws(&bob).await;
    let group = app.group(&alice, &[&bob]).await;
    let created = ws.next_of_type("conversation_updated").await;
    let sent = app.send(&alice, &group, "hello").await;
    let message = ws.next_of_type("new_message").await;
    assert_eq!(message["seq"], sent["seq"]);
    let path = format!("/api/v1/conversations/{group}");
    app.put(&path, &alice.token, json!({"name": "renamed"}))
        .await;
    let renamed = ws.next_of_type("conversation_updated").await;
    let (created, message, renamed) = (
        created["seq"].as_i64().unwrap(),
        message["seq"].as_i64().unwrap(),
        renamed["seq"].as_i64().unwrap(),
    );
    assert!(
        created < message && message < renamed,
        "{created} {message} {renamed}"
    );
    // Resuming from the last live frame's position misses nothing and repeats nothing.
    let page = sync_page(&app, &bob.token, renamed, 100).await;
    assert_eq!(page["events"], json!([]));
    let page = sync_page(&app, &bob.token, message, 100).await;
    assert_eq!(page["events"].as_array().unwrap().len(), 1);
    assert_eq!(page["events"][0]["seq"], renamed);
    assert_eq!(page["events"][0]["name"], "renamed");
}

#[tokio::test]
async fn a_member_added_back_catches_up_to_the_group_as_it_stands_with_their_marker_from_zero() {
    let app = spawn_app().await;
    let [alice, bob] = app.users(["alice", "bob"]).await;
    let group = app.group(&alice, &[&bob]).await;
    let mut client = Client::new(&bob);
    client.catch_up(&app, &bob.token, 100).await;

    app.send(&alice, &group, "one").await;
    // From Bob's other device: sending is reading, so his marker moves past "one".
    app.send(&bob, &group, "mine").await;
    let members = format!("/api/v1/conversations/{group}/members");
    let status = app
        .delete(&format!("{members}/{}", bob.id), &alice.token)
        .await
        .status();
    assert!(status.is_success());
    app.send(&alice, &group, "while bob was away").await;
    let status = app
        .post(&members, &alice.token, json!({"user_ids": [bob.id]}))
        .await
        .status();
    assert!(status.is_success());
    app.send(&alice, &group, "welcome back").await;

    client.catch_up(&app, &bob.token, 2).await;
    let fresh = fresh_reads(&app, &bob).await;
    assert_eq!(fresh["total_unread"], 3, "{fresh}");
    assert_same(&client.expected(), &fresh, "added back");
}
