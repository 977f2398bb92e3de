//! The change feed end to end: a client that was offline while others changed things pages
//! `GET /api/v1/sync` from its old position, applies every event in order, and ends with
//! exactly what fresh REST reads show. The WebSocket `sync` replays the same events.

use std::collections::BTreeMap;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, spawn_app};

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

/// One message as the client keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Message {
    id: String,
    sender: String,
    /// `None` once deleted for everyone.
    content: Option<String>,
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
            "new_message" | "message_updated" | "message_deleted" => {
                let m = &event["message"];
                let seq = m["seq"].as_i64().unwrap();
                let sender = m["sender_id"].as_str().unwrap().to_owned();
                let conversation = self.conversations.entry(conversation_id).or_default();
                if sender == self.me {
                    // Sending is reading.
                    conversation.marker = conversation.marker.max(seq);
                }
                conversation.messages.insert(
                    seq,
                    Message {
                        id: m["id"].as_str().unwrap().to_owned(),
                        sender,
                        content: m["content"].as_str().map(str::to_owned),
                    },
                );
            }
            "message_hidden" => {
                if let Some(conversation) = self.conversations.get_mut(&conversation_id) {
                    conversation
                        .messages
                        .retain(|_, m| event["message_id"] != m.id.as_str());
                }
            }
            "read_marker_updated" => {
                let conversation = self.conversations.entry(conversation_id).or_default();
                conversation.marker = event["last_read_seq"].as_i64().unwrap();
            }
            // Another member's marker: what `is_read` of the client's own messages follows.
            "message_read" | "conversation_settings_updated" => {}
            "conversation_updated" => match event["change"].as_str().unwrap() {
                "state" => {
                    let conversation = self.conversations.entry(conversation_id).or_default();
                    conversation.name = event["name"].as_str().map(str::to_owned);
                    // As it stands now: a member added back starts from zero.
                    conversation.marker = event["last_read_seq"].as_i64().unwrap();
                    conversation.members = event["conversation"]["participants"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|p| {
                            let id = p["id"].as_str().unwrap().to_owned();
                            (id, p["role"].as_str().unwrap().to_owned())
                        })
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
        let mut total = 0;
        let conversations: BTreeMap<&String, Value> = self
            .conversations
            .iter()
            .map(|(id, c)| {
                let unread = c
                    .messages
                    .iter()
                    .filter(|(seq, m)| **seq > c.marker && m.sender != self.me)
                    .filter(|(_, m)| m.content.is_some())
                    .count();
                total += unread;
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
                json!([seq, m.id, m.sender, m.content, read])
            })
            .collect();
        json!({
            "name": c.name,
            "members": c.members,
            "unread_count": unread,
            "last_message": c.messages.values().next_back().map(|m| m.id.clone()),
            "history": history,
        })
    }
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

/// What fresh REST reads show the user: the inbox, each conversation's history and
/// members, and the unread counts.
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
    let mut conversations = BTreeMap::new();
    for entry in inbox.as_array().unwrap() {
        let id = entry["id"].as_str().unwrap().to_owned();
        let history = json_of(
            app,
            &format!("/api/v1/conversations/{id}/messages?limit=200"),
            &user.token,
        )
        .await;
        let history: Vec<Value> = history
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                let mine = m["sender_id"] == user.id.as_str();
                let read = (!mine).then(|| m["is_read"].as_bool().unwrap());
                json!([m["seq"], m["id"], m["sender_id"], m["content"], read])
            })
            .collect();
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
        conversations.insert(
            id,
            json!({
                "name": entry["name"],
                "members": members,
                "unread_count": unread,
                "last_message": entry["last_message"]["id"],
                "history": history,
            }),
        );
    }
    json!({"conversations": conversations, "total_unread": counts["unread_count"]})
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
    /// Every message sent, with its conversation.
    messages: Vec<(String, String)>,
}

impl Scene {
    async fn new() -> Self {
        let app = spawn_app().await;
        let [offline, alice, carol, dave] = app.users(["bob", "alice", "carol", "dave"]).await;
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

    /// One random operation by anyone but the offline client: messages (the offline user's
    /// other device sends too, which moves their marker), read markers, renames, members
    /// added and removed (the offline user among them), roles.
    async fn random_operation(&mut self, rng: &mut Rng, step: usize) {
        let app = &self.app;
        let any = rng.pick(&self.conversations).clone();
        let group = rng.pick(&self.conversations[..self.groups]).clone();
        let (group_id, owner) = &group;
        match rng.below(10) {
            0..=4 => {
                let members = self.members(&any).await;
                let sender = self.user(&rng.pick(&members).0);
                let message = app.send(&sender, &any.0, &format!("m{step}")).await;
                let id = message["id"].as_str().unwrap().to_owned();
                self.messages.push((any.0, id));
            }
            5 => {
                let Some((conversation, message)) = self
                    .messages
                    .get(rng.below(self.messages.len().max(1)))
                    .cloned()
                else {
                    return;
                };
                let steady = self
                    .conversations
                    .iter()
                    .find(|(id, _)| *id == conversation)
                    .unwrap()
                    .clone();
                let members = self.members(&steady).await;
                let reader = self.user(&rng.pick(&members).0);
                let path = format!("/api/v1/messages/{message}/read");
                let status = app.put(&path, &reader.token, json!({})).await.status();
                assert_eq!(status, StatusCode::OK);
            }
            6 => {
                let path = format!("/api/v1/conversations/{group_id}");
                let body = json!({"name": format!("renamed {step}")});
                let status = app.put(&path, &owner.token, body).await.status();
                assert_eq!(status, StatusCode::OK);
            }
            7 => {
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
            8 => {
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
            _ => {
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

/// Without the timestamps of replayed events that were stamped when read.
fn comparable(events: &[Value]) -> Vec<Value> {
    events
        .iter()
        .map(|e| {
            let mut e = e.clone();
            if let Some(object) = e.as_object_mut() {
                object.remove("timestamp");
            }
            e
        })
        .collect()
}

#[tokio::test]
async fn a_client_offline_while_others_changed_things_catches_up_exactly_by_paging_the_feed() {
    for seed in [7_u64, 1_234_567, 987_654_321, 42, 2_718_281_828] {
        let mut scene = Scene::new().await;
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
            scene.app.send(&sender, &conversation, "before").await;
        }
        client.catch_up(&scene.app, &offline.token, 2).await;
        let away_from = client.position;

        for step in 0..60 {
            scene.random_operation(&mut rng, step).await;
        }

        let applied = client.catch_up(&scene.app, &offline.token, 3).await;
        assert!(!applied.is_empty(), "seed {seed}");
        let fresh = fresh_reads(&scene.app, &offline).await;
        assert_same(&client.expected(), &fresh, &format!("seed {seed}, after"));
        // The WebSocket replays the same events from the same position.
        let replayed = ws_replay(&scene.app, &offline, away_from, 4).await;
        assert_eq!(comparable(&replayed), comparable(&applied), "seed {seed}");
        // Nothing is left after the end.
        let end = sync_page(&scene.app, &offline.token, client.position, 10).await;
        assert_eq!(
            end,
            json!({"events": [], "next": client.position, "has_more": false})
        );
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
