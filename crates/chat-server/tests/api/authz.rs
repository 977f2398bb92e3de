//! The authorization matrix: every endpoint and every WebSocket frame type, for each kind of
//! caller, gives the documented status.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, expired_token, spawn_app_with, with_known_secret};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    NoToken,
    BadToken,
    ExpiredToken,
    Outsider,
    Member,
    Admin,
    Owner,
}

const CALLERS: [Caller; 7] = [
    Caller::NoToken,
    Caller::BadToken,
    Caller::ExpiredToken,
    Caller::Outsider,
    Caller::Member,
    Caller::Admin,
    Caller::Owner,
];

/// A group owned by `owner`, with `admin` as admin, `member` and `extra` as members, and one
/// message from the owner. Made afresh for each case so cases cannot disturb each other.
struct Group {
    id: String,
    message: String,
}

struct World {
    app: TestApp,
    owner: TestUser,
    admin: TestUser,
    member: TestUser,
    outsider: TestUser,
    extra: TestUser,
    expired: String,
}

impl World {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let app = spawn_app_with(with_known_secret(&dir), dir).await;
        let owner = app.user("owner").await;
        let expired = expired_token(&owner.id);
        Self {
            admin: app.user("admin").await,
            member: app.user("member").await,
            outsider: app.user("outsider").await,
            extra: app.user("extra").await,
            owner,
            expired,
            app,
        }
    }

    async fn group(&self) -> Group {
        let id = self
            .app
            .group(&self.owner, &[&self.admin, &self.member, &self.extra])
            .await;
        let promoted = self
            .app
            .put(
                &format!("/api/v1/conversations/{id}/members/{}", self.admin.id),
                &self.owner.token,
                json!({"role": "admin"}),
            )
            .await;
        assert_eq!(promoted.status(), StatusCode::OK);
        let message = self.app.send(&self.owner, &id, "hello").await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        Group { id, message }
    }

    fn token(&self, caller: Caller) -> Option<String> {
        match caller {
            Caller::NoToken => None,
            Caller::BadToken => Some("not.a.token".into()),
            Caller::ExpiredToken => Some(self.expired.clone()),
            Caller::Outsider => Some(self.outsider.token.clone()),
            Caller::Member => Some(self.member.token.clone()),
            Caller::Admin => Some(self.admin.token.clone()),
            Caller::Owner => Some(self.owner.token.clone()),
        }
    }
}

/// One endpoint: how to call it on a fresh group, and the status each authenticated kind of
/// caller gets (the three unauthenticated kinds always get 401).
struct Case {
    name: &'static str,
    method: Method,
    path: fn(&World, &Group) -> String,
    body: fn(&World) -> Option<Value>,
    outsider: u16,
    member: u16,
    admin: u16,
    owner: u16,
}

fn no_body(_: &World) -> Option<Value> {
    None
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "me",
            method: Method::GET,
            path: |_, _| "/api/v1/auth/me".into(),
            body: no_body,
            outsider: 200,
            member: 200,
            admin: 200,
            owner: 200,
        },
        Case {
            name: "list users",
            method: Method::GET,
            path: |_, _| "/api/v1/users".into(),
            body: no_body,
            outsider: 200,
            member: 200,
            admin: 200,
            owner: 200,
        },
        Case {
            name: "get user",
            method: Method::GET,
            path: |w, _| format!("/api/v1/users/{}", w.owner.id),
            body: no_body,
            outsider: 200,
            member: 200,
            admin: 200,
            owner: 200,
        },
        Case {
            name: "update profile",
            method: Method::PUT,
            path: |_, _| "/api/v1/users/me".into(),
            body: |_| Some(json!({"bio": "hi"})),
            outsider: 200,
            member: 200,
            admin: 200,
            owner: 200,
        },
        Case {
            name: "inbox",
            method: Method::GET,
            path: |_, _| "/api/v1/conversations".into(),
            body: no_body,
            outsider: 200,
            member: 200,
            admin: 200,
            owner: 200,
        },
        Case {
            name: "start group",
            method: Method::POST,
            path: |_, _| "/api/v1/conversations".into(),
            body: |w| {
                Some(json!({"participant_ids": [w.extra.id], "name": "new", "is_group": true}))
            },
            outsider: 201,
            member: 201,
            admin: 201,
            owner: 201,
        },
        Case {
            name: "details",
            method: Method::GET,
            path: |_, g| format!("/api/v1/conversations/{}", g.id),
            body: no_body,
            outsider: 404,
            member: 200,
            admin: 200,
            owner: 200,
        },
        Case {
            name: "rename",
            method: Method::PUT,
            path: |_, g| format!("/api/v1/conversations/{}", g.id),
            body: |_| Some(json!({"name": "renamed"})),
            outsider: 404,
            member: 403,
            admin: 200,
            owner: 200,
        },
        Case {
            name: "add member",
            method: Method::POST,
            path: |_, g| format!("/api/v1/conversations/{}/members", g.id),
            body: |w| Some(json!({"user_ids": [w.outsider.id]})),
            outsider: 404,
            member: 403,
            admin: 200,
            owner: 200,
        },
        Case {
            name: "set role",
            method: Method::PUT,
            path: |w, g| format!("/api/v1/conversations/{}/members/{}", g.id, w.extra.id),
            body: |_| Some(json!({"role": "admin"})),
            outsider: 404,
            member: 403,
            admin: 403,
            owner: 200,
        },
        Case {
            name: "remove member",
            method: Method::DELETE,
            path: |w, g| format!("/api/v1/conversations/{}/members/{}", g.id, w.extra.id),
            body: no_body,
            outsider: 404,
            member: 403,
            admin: 204,
            owner: 204,
        },
        Case {
            name: "remove the owner",
            method: Method::DELETE,
            path: |w, g| format!("/api/v1/conversations/{}/members/{}", g.id, w.owner.id),
            body: no_body,
            outsider: 404,
            member: 403,
            admin: 403,
            owner: 204,
        },
        Case {
            name: "send",
            method: Method::POST,
            path: |_, g| format!("/api/v1/conversations/{}/messages", g.id),
            body: |_| Some(json!({"content": "hi"})),
            outsider: 404,
            member: 201,
            admin: 201,
            owner: 201,
        },
        Case {
            name: "history",
            method: Method::GET,
            path: |_, g| format!("/api/v1/conversations/{}/messages", g.id),
            body: no_body,
            outsider: 404,
            member: 200,
            admin: 200,
            owner: 200,
        },
        Case {
            name: "mark read",
            method: Method::PUT,
            path: |_, g| format!("/api/v1/messages/{}/read", g.message),
            body: no_body,
            outsider: 404,
            member: 200,
            admin: 200,
            owner: 200,
        },
        Case {
            name: "unread count",
            method: Method::GET,
            path: |_, _| "/api/v1/messages/unread/count".into(),
            body: no_body,
            outsider: 200,
            member: 200,
            admin: 200,
            owner: 200,
        },
    ]
}

#[tokio::test]
async fn every_endpoint_gives_each_kind_of_caller_the_documented_status() {
    let world = World::new().await;
    let mut mismatches = Vec::new();
    for case in cases() {
        for caller in CALLERS {
            let group = world.group().await;
            let expected = match caller {
                Caller::NoToken | Caller::BadToken | Caller::ExpiredToken => 401,
                Caller::Outsider => case.outsider,
                Caller::Member => case.member,
                Caller::Admin => case.admin,
                Caller::Owner => case.owner,
            };
            let token = world.token(caller);
            let response = world
                .app
                .request(
                    case.method.clone(),
                    &(case.path)(&world, &group),
                    token.as_deref(),
                    (case.body)(&world),
                )
                .await;
            if response.status().as_u16() != expected {
                mismatches.push(format!(
                    "{} as {caller:?}: expected {expected}, got {}",
                    case.name,
                    response.status()
                ));
                continue;
            }
            // A client must tell an expired token (log in again) from a bad one.
            let code = match caller {
                Caller::ExpiredToken => "token_expired",
                Caller::NoToken | Caller::BadToken => "unauthorized",
                _ => continue,
            };
            let body: Value = response.json().await.unwrap();
            if body["code"] != code {
                mismatches.push(format!(
                    "{} as {caller:?}: expected code {code}, got {body}",
                    case.name
                ));
            }
        }
    }
    assert!(mismatches.is_empty(), "{mismatches:#?}");
}

#[tokio::test]
async fn every_websocket_frame_about_a_conversation_is_refused_to_outsiders_and_served_to_members()
{
    let world = World::new().await;
    let group = world.group().await;
    let frames = [
        json!({"type": "message", "conversation_id": group.id, "content": "hi", "client_message_id": "authz"}),
        json!({"type": "mark_read", "message_id": group.message}),
        json!({"type": "typing", "conversation_id": group.id}),
    ];
    let mut outsider = world.app.ws(&world.outsider).await;
    for frame in &frames {
        outsider.send_json(frame.clone()).await;
        let reply = outsider.next_json().await;
        assert_eq!(reply["type"], "error", "{frame} as outsider: {reply}");
        assert!(
            ["conversation_not_found", "message_not_found"]
                .contains(&reply["code"].as_str().unwrap()),
            "{frame} as outsider: {reply}"
        );
    }
    // Sync and ping concern only the caller: an outsider gets nothing of the group.
    outsider
        .send_json(json!({"type": "sync", "since_seq": 0}))
        .await;
    assert_eq!(outsider.next_json().await["type"], "synced");
    outsider.send_json(json!({"type": "ping"})).await;
    assert_eq!(outsider.next_json().await["type"], "pong");

    for member in [&world.member, &world.admin, &world.owner] {
        let mut ws = world.app.ws(member).await;
        ws.send_json(json!({"type": "sync", "since_seq": 0})).await;
        let first = ws.next_json().await;
        assert_eq!(first["type"], "new_message");
        assert_eq!(first["message"]["id"], group.message.as_str());
        assert_eq!(ws.next_json().await["type"], "synced");
        ws.send_json(json!({"type": "mark_read", "message_id": group.message}))
            .await;
        assert_eq!(
            ws.next_of_type("message_read").await["message_id"],
            group.message.as_str()
        );
    }
}
