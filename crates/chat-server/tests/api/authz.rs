//! The authorization matrix: every endpoint and every WebSocket frame type, for each kind of
//! caller, gives the documented status; a refused request changes nothing, and an outsider
//! cannot tell a conversation it is not in from one that does not exist.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, Ws, expired_token, spawn_app_with, with_known_secret};

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

/// A group owned by the cast's `owner`, with `admin` as admin, `member` and `extra` as
/// members, and one message from the owner. Made afresh for each case so cases cannot
/// disturb each other.
struct Group {
    id: String,
    message: String,
    seq: i64,
    /// An image (with a thumbnail) the owner sent with the message.
    attachment: String,
}

/// Who plays each part around a group.
struct Cast {
    owner: TestUser,
    admin: TestUser,
    member: TestUser,
    outsider: TestUser,
    extra: TestUser,
}

struct World {
    app: TestApp,
    /// The cast of most cases; cases that end the caller's access (logout, deactivation)
    /// get a fresh one each time.
    cast: Cast,
    expired: String,
    casts: AtomicUsize,
}

impl World {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let app = spawn_app_with(with_known_secret(&dir), dir).await;
        let cast = Cast {
            owner: app.user("owner").await,
            admin: app.user("admin").await,
            member: app.user("member").await,
            outsider: app.user("outsider").await,
            extra: app.user("extra").await,
        };
        Self {
            expired: expired_token(&cast.owner.id),
            cast,
            app,
            casts: AtomicUsize::new(0),
        }
    }

    /// A cast of users who have done nothing yet.
    async fn fresh_cast(&self) -> Cast {
        let n = self.casts.fetch_add(1, Ordering::Relaxed);
        Cast {
            owner: self.app.user(&format!("owner{n}")).await,
            admin: self.app.user(&format!("admin{n}")).await,
            member: self.app.user(&format!("member{n}")).await,
            outsider: self.app.user(&format!("outsider{n}")).await,
            extra: self.app.user(&format!("extra{n}")).await,
        }
    }

    async fn group(&self, cast: &Cast) -> Group {
        let id = self
            .app
            .group(&cast.owner, &[&cast.admin, &cast.member, &cast.extra])
            .await;
        let promoted = self
            .app
            .put(
                &format!("/api/v1/conversations/{id}/members/{}", cast.admin.id),
                &cast.owner.token,
                json!({"role": "admin"}),
            )
            .await;
        assert_eq!(promoted.status(), StatusCode::OK);
        let attachment = crate::attachments::upload(
            &self.app,
            &cast.owner,
            "a.png",
            &crate::attachments::png(400, 300),
        )
        .await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let message: Value = self
            .app
            .post(
                &format!("/api/v1/conversations/{id}/messages"),
                &cast.owner.token,
                json!({"content": "hello", "attachment_ids": [attachment]}),
            )
            .await
            .json()
            .await
            .unwrap();
        Group {
            id,
            message: message["id"].as_str().unwrap().to_owned(),
            seq: message["seq"].as_i64().unwrap(),
            attachment,
        }
    }

    fn token(&self, cast: &Cast, caller: Caller) -> Option<String> {
        match caller {
            Caller::NoToken => None,
            Caller::BadToken => Some("not.a.token".into()),
            Caller::ExpiredToken => Some(self.expired.clone()),
            Caller::Outsider => Some(cast.outsider.token.clone()),
            Caller::Member => Some(cast.member.token.clone()),
            Caller::Admin => Some(cast.admin.token.clone()),
            Caller::Owner => Some(cast.owner.token.clone()),
        }
    }

    /// Everything about a group a refused request could have changed, as its owner sees it:
    /// its name, who is in it with which role, its messages, and each member's read marker.
    async fn snapshot(&self, cast: &Cast, group: &Group) -> Value {
        let details: Value = self
            .app
            .get(
                &format!("/api/v1/conversations/{}", group.id),
                &cast.owner.token,
            )
            .await
            .json()
            .await
            .unwrap();
        let mut members: Vec<Value> = details["participants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| json!([p["id"], p["role"]]))
            .collect();
        members.sort_by_key(Value::to_string);
        let history: Vec<Value> = self
            .app
            .get(
                &format!("/api/v1/conversations/{}/messages", group.id),
                &cast.owner.token,
            )
            .await
            .json()
            .await
            .unwrap();
        let mut unread = Vec::new();
        for user in [
            &cast.owner,
            &cast.admin,
            &cast.member,
            &cast.outsider,
            &cast.extra,
        ] {
            let count: Value = self
                .app
                .get("/api/v1/messages/unread/count", &user.token)
                .await
                .json()
                .await
                .unwrap();
            // This group's entry only: other cases' groups come and go.
            let entry = count["conversations"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["conversation_id"] == group.id.as_str())
                .cloned();
            unread.push(entry.unwrap_or(Value::Null));
        }
        json!({
            "name": details["name"],
            "members": members,
            "messages": history.iter().map(|m| json!([m["id"], m["content"], m["is_read"], m["reactions"], m["pinned_at"]])).collect::<Vec<_>>(),
            "unread": unread,
        })
    }
}

/// One endpoint: how to call it on a fresh group, and the status each authenticated kind of
/// caller gets (the three unauthenticated kinds always get 401).
struct Case {
    name: &'static str,
    method: Method,
    /// The path as the OpenAPI document writes it.
    template: &'static str,
    path: fn(&Cast, &Group) -> String,
    body: fn(&Cast) -> Option<Value>,
    /// The call ends the caller's access, so each caller gets a fresh cast.
    fresh_cast: bool,
    outsider: u16,
    member: u16,
    admin: u16,
    owner: u16,
}

impl Case {
    /// Calls the endpoint about `group` with `token`.
    async fn call(
        &self,
        app: &TestApp,
        cast: &Cast,
        group: &Group,
        token: Option<&str>,
    ) -> reqwest::Response {
        app.request(
            self.method.clone(),
            &(self.path)(cast, group),
            token,
            (self.body)(cast),
        )
        .await
    }
}

fn no_body(_: &Cast) -> Option<Value> {
    None
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "me",
            method: Method::GET,
            template: "/api/v1/auth/me",
            path: |_, _| "/api/v1/auth/me".into(),
            body: no_body,
            fresh_cast: false,
            outsider: 200,
            member: 200,
            admin: 200,
            owner: 200,
        },
        Case {
            name: "list users",
            method: Method::GET,
            template: "/api/v1/users",
            path: |_, _| "/api/v1/users".into(),
            body: no_body,
            fresh_cast: false,
            outsider: 200,
            member: 200,
            admin: 200,
            owner: 200,
        },
        Case {
            name: "get user",
            method: Method::GET,
            template: "/api/v1/users/{user_id}",
            path: |c, _| format!("/api/v1/users/{}", c.owner.id),
            body: no_body,
            fresh_cast: false,
            outsider: 200,
            member: 200,
            admin: 200,
            owner: 200,
        },
        Case {
            name: "update profile",
            method: Method::PUT,
            template: "/api/v1/users/me",
            path: |_, _| "/api/v1/users/me".into(),
            body: |_| Some(json!({"bio": "hi"})),
            fresh_cast: false,
            outsider: 200,
            member: 200,
            admin: 200,
            owner: 200,
        },
        Case {
            name: "inbox",
            method: Method::GET,
            template: "/api/v1/conversations",
            path: |_, _| "/api/v1/conversations".into(),
            body: no_body,
            fresh_cast: false,
            outsider: 200,
            member: 200,
            admin: 200,
            owner: 200,
        },
        Case {
            name: "start group",
            method: Method::POST,
            template: "/api/v1/conversations",
            path: |_, _| "/api/v1/conversations".into(),
            body: |c| {
                Some(json!({"participant_ids": [c.extra.id], "name": "new", "is_group": true}))
            },
            fresh_cast: false,
            outsider: 201,
            member: 201,
            admin: 201,
            owner: 201,
        },
        Case {
            name: "details",
            method: Method::GET,
            template: "/api/v1/conversations/{conversation_id}",
            path: |_, g| format!("/api/v1/conversations/{}", g.id),
            body: no_body,
            fresh_cast: false,
            outsider: 404,
            member: 200,
            admin: 200,
            owner: 200,
        },
        Case {
            name: "rename",
            method: Method::PUT,
            template: "/api/v1/conversations/{conversation_id}",
            path: |_, g| format!("/api/v1/conversations/{}", g.id),
            body: |_| Some(json!({"name": "renamed"})),
            fresh_cast: false,
            outsider: 404,
            member: 403,
            admin: 200,
            owner: 200,
        },
        Case {
            name: "add member",
            method: Method::POST,
            template: "/api/v1/conversations/{conversation_id}/members",
            path: |_, g| format!("/api/v1/conversations/{}/members", g.id),
            body: |c| Some(json!({"user_ids": [c.outsider.id]})),
            fresh_cast: false,
            outsider: 404,
            member: 403,
            admin: 200,
            owner: 200,
        },
        Case {
            name: "set role",
            method: Method::PUT,
            template: "/api/v1/conversations/{conversation_id}/members/{user_id}",
            path: |c, g| format!("/api/v1/conversations/{}/members/{}", g.id, c.extra.id),
            body: |_| Some(json!({"role": "admin"})),
            fresh_cast: false,
            outsider: 404,
            member: 403,
            admin: 403,
            owner: 200,
        },
        Case {
            name: "remove member",
            method: Method::DELETE,
            template: "/api/v1/conversations/{conversation_id}/members/{user_id}",
            path: |c, g| format!("/api/v1/conversations/{}/members/{}", g.id, c.extra.id),
            body: no_body,
            fresh_cast: false,
            outsider: 404,
            member: 403,
            admin: 204,
            owner: 204,
        },
        Case {
            name: "remove the owner",
            method: Method::DELETE,
            template: "/api/v1/conversations/{conversation_id}/members/{user_id}",
            path: |c, g| format!("/api/v1/conversations/{}/members/{}", g.id, c.owner.id),
            body: no_body,
            fresh_cast: false,
            outsider: 404,
            member: 403,
            admin: 403,
            owner: 204,
        },
        Case {
            name: "send",
            method: Method::POST,
            template: "/api/v1/conversations/{conversation_id}/messages",
            path: |_, g| format!("/api/v1/conversations/{}/messages", g.id),
            body: |_| Some(json!({"content": "hi"})),
            fresh_cast: false,
            outsider: 404,
            member: 201,
            admin: 201,
            owner: 201,
        },
        Case {
            name: "history",
            method: Method::GET,
            template: "/api/v1/conversations/{conversation_id}/messages",
            path: |_, g| format!("/api/v1/conversations/{}/messages", g.id),
            body: no_body,
            fresh_cast: false,
            outsider: 404,
            member: 200,
            admin: 200,
            owner: 200,
        },
        Case {
            name: "thread",
            method: Method::GET,
            template: "/api/v1/messages/{message_id}/thread",
            path: |_, g| format!("/api/v1/messages/{}/thread", g.message),
            body: no_body,
            fresh_cast: false,
            outsider: 404,
            member: 200,
            admin: 200,
            owner: 200,
        },
        Case {
            name: "search in a conversation",
            method: Method::GET,
            template: "/api/v1/search/messages",
            path: |_, g| format!("/api/v1/search/messages?q=hi&conversation_id={}", g.id),
            body: no_body,
            fresh_cast: false,
            outsider: 404,
            member: 200,
            admin: 200,
            owner: 200,
        },
        Case {
            name: "mark read",
            method: Method::PUT,
            template: "/api/v1/messages/{message_id}/read",
            path: |_, g| format!("/api/v1/messages/{}/read", g.message),
            body: no_body,
            fresh_cast: false,
            outsider: 404,
            member: 200,
            admin: 200,
            owner: 200,
        },
        Case {
            name: "react",
            method: Method::PUT,
            template: "/api/v1/messages/{message_id}/reactions/{emoji}",
            path: |_, g| format!("/api/v1/messages/{}/reactions/%F0%9F%91%8D", g.message),
            body: no_body,
            fresh_cast: false,
            outsider: 404,
            member: 200,
            admin: 200,
            owner: 200,
        },
        Case {
            name: "unreact",
            method: Method::DELETE,
            template: "/api/v1/messages/{message_id}/reactions/{emoji}",
            path: |_, g| format!("/api/v1/messages/{}/reactions/%F0%9F%91%8D", g.message),
            body: no_body,
            fresh_cast: false,
            outsider: 404,
            member: 200,
            admin: 200,
            owner: 200,
        },
        Case {
            name: "list pins",
            method: Method::GET,
            template: "/api/v1/conversations/{conversation_id}/pins",
            path: |_, g| format!("/api/v1/conversations/{}/pins", g.id),
            body: no_body,
            fresh_cast: false,
            outsider: 404,
            member: 200,
            admin: 200,
            owner: 200,
        },
        Case {
            name: "pin",
            method: Method::PUT,
            template: "/api/v1/conversations/{conversation_id}/pins/{message_id}",
            path: |_, g| format!("/api/v1/conversations/{}/pins/{}", g.id, g.message),
            body: no_body,
            fresh_cast: false,
            outsider: 404,
            member: 403,
            admin: 200,
            owner: 200,
        },
        Case {
            name: "unpin",
            method: Method::DELETE,
            template: "/api/v1/conversations/{conversation_id}/pins/{message_id}",
            path: |_, g| format!("/api/v1/conversations/{}/pins/{}", g.id, g.message),
            body: no_body,
            fresh_cast: false,
            outsider: 404,
            member: 403,
            admin: 200,
            owner: 200,
        },
        Case {
            name: "set read marker",
            method: Method::PUT,
            template: "/api/v1/conversations/{conversation_id}/read",
            path: |_, g| format!("/api/v1/conversations/{}/read", g.id),
            body: |_| Some(json!({"last_read_seq": 0})),
            fresh_cast: false,
            outsider: 404,
            member: 200,
            admin: 200,
            owner: 200,
        },
        Case {
            name: "edit the owner's message",
            method: Method::PATCH,
            template: "/api/v1/messages/{message_id}",
            path: |_, g| format!("/api/v1/messages/{}", g.message),
            body: |_| Some(json!({"content": "edited"})),
            fresh_cast: false,
            outsider: 404,
            member: 403,
            admin: 403,
            owner: 200,
        },
        Case {
            name: "delete the owner's message for everyone",
            method: Method::DELETE,
            template: "/api/v1/messages/{message_id}",
            path: |_, g| format!("/api/v1/messages/{}", g.message),
            body: no_body,
            fresh_cast: false,
            outsider: 404,
            member: 403,
            admin: 200,
            owner: 200,
        },
        Case {
            name: "settings",
            method: Method::PUT,
            template: "/api/v1/conversations/{conversation_id}/settings",
            path: |_, g| format!("/api/v1/conversations/{}/settings", g.id),
            body: |_| Some(json!({"archived": true, "muted_until": "2099-01-01T00:00:00Z"})),
            fresh_cast: false,
            outsider: 404,
            member: 200,
            admin: 200,
            owner: 200,
        },
        Case {
            name: "delete the owner's message for me",
            method: Method::DELETE,
            template: "/api/v1/messages/{message_id}",
            path: |_, g| format!("/api/v1/messages/{}?scope=me", g.message),
            body: no_body,
            fresh_cast: false,
            outsider: 404,
            member: 204,
            admin: 204,
            owner: 204,
        },
        Case {
            name: "unread count",
            method: Method::GET,
            template: "/api/v1/messages/unread/count",
            path: |_, _| "/api/v1/messages/unread/count".into(),
            body: no_body,
            fresh_cast: false,
            outsider: 200,
            member: 200,
            admin: 200,
            owner: 200,
        },
        Case {
            name: "change feed",
            method: Method::GET,
            template: "/api/v1/sync",
            path: |_, _| "/api/v1/sync?since=0&limit=5".into(),
            body: no_body,
            fresh_cast: false,
            outsider: 200,
            member: 200,
            admin: 200,
            owner: 200,
        },
        Case {
            name: "download an attachment",
            method: Method::GET,
            template: "/api/v1/attachments/{attachment_id}",
            path: |_, g| format!("/api/v1/attachments/{}", g.attachment),
            body: no_body,
            fresh_cast: false,
            outsider: 404,
            member: 200,
            admin: 200,
            owner: 200,
        },
        Case {
            name: "download a thumbnail",
            method: Method::GET,
            template: "/api/v1/attachments/{attachment_id}/thumbnail",
            path: |_, g| format!("/api/v1/attachments/{}/thumbnail", g.attachment),
            body: no_body,
            fresh_cast: false,
            outsider: 404,
            member: 200,
            admin: 200,
            owner: 200,
        },
        Case {
            name: "my profile",
            method: Method::GET,
            template: "/api/v1/users/me",
            path: |_, _| "/api/v1/users/me".into(),
            body: no_body,
            fresh_cast: false,
            outsider: 200,
            member: 200,
            admin: 200,
            owner: 200,
        },
        // Blocking, reports and server admins (issue #17). None of these callers is a
        // server admin; the admin routes' own tests (safety.rs) grant one.
        Case {
            name: "block a user",
            method: Method::PUT,
            template: "/api/v1/users/{user_id}/block",
            path: |c, _| format!("/api/v1/users/{}/block", c.extra.id),
            body: |_| Some(json!({})),
            fresh_cast: false,
            outsider: 204,
            member: 204,
            admin: 204,
            owner: 204,
        },
        Case {
            name: "unblock a user",
            method: Method::DELETE,
            template: "/api/v1/users/{user_id}/block",
            path: |c, _| format!("/api/v1/users/{}/block", c.extra.id),
            body: no_body,
            fresh_cast: false,
            outsider: 204,
            member: 204,
            admin: 204,
            owner: 204,
        },
        Case {
            name: "list blocks",
            method: Method::GET,
            template: "/api/v1/users/me/blocks",
            path: |_, _| "/api/v1/users/me/blocks".into(),
            body: no_body,
            fresh_cast: false,
            outsider: 200,
            member: 200,
            admin: 200,
            owner: 200,
        },
        Case {
            name: "report a user",
            method: Method::POST,
            template: "/api/v1/reports",
            path: |_, _| "/api/v1/reports".into(),
            body: |c| Some(json!({"user_id": c.extra.id, "reason": "spam"})),
            fresh_cast: false,
            outsider: 201,
            member: 201,
            admin: 201,
            owner: 201,
        },
        Case {
            name: "admin: list users",
            method: Method::GET,
            template: "/api/v1/admin/users",
            path: |_, _| "/api/v1/admin/users".into(),
            body: no_body,
            fresh_cast: false,
            outsider: 403,
            member: 403,
            admin: 403,
            owner: 403,
        },
        Case {
            name: "admin: deactivate a user",
            method: Method::POST,
            template: "/api/v1/admin/users/{user_id}/deactivate",
            path: |c, _| format!("/api/v1/admin/users/{}/deactivate", c.extra.id),
            body: |_| Some(json!({})),
            fresh_cast: false,
            outsider: 403,
            member: 403,
            admin: 403,
            owner: 403,
        },
        Case {
            name: "admin: reactivate a user",
            method: Method::POST,
            template: "/api/v1/admin/users/{user_id}/reactivate",
            path: |c, _| format!("/api/v1/admin/users/{}/reactivate", c.extra.id),
            body: |_| Some(json!({})),
            fresh_cast: false,
            outsider: 403,
            member: 403,
            admin: 403,
            owner: 403,
        },
        Case {
            name: "admin: list reports",
            method: Method::GET,
            template: "/api/v1/admin/reports",
            path: |_, _| "/api/v1/admin/reports".into(),
            body: no_body,
            fresh_cast: false,
            outsider: 403,
            member: 403,
            admin: 403,
            owner: 403,
        },
        Case {
            name: "admin: resolve a report",
            method: Method::POST,
            template: "/api/v1/admin/reports/{report_id}/resolve",
            path: |_, _| format!("/api/v1/admin/reports/{}/resolve", uuid::Uuid::new_v4()),
            body: |_| Some(json!({"note": "done"})),
            fresh_cast: false,
            outsider: 403,
            member: 403,
            admin: 403,
            owner: 403,
        },
        Case {
            name: "admin: delete a message",
            method: Method::DELETE,
            template: "/api/v1/admin/messages/{message_id}",
            path: |_, g| format!("/api/v1/admin/messages/{}", g.message),
            body: no_body,
            fresh_cast: false,
            outsider: 403,
            member: 403,
            admin: 403,
            owner: 403,
        },
        Case {
            name: "admin: audit log",
            method: Method::GET,
            template: "/api/v1/admin/audit",
            path: |_, _| "/api/v1/admin/audit".into(),
            body: no_body,
            fresh_cast: false,
            outsider: 403,
            member: 403,
            admin: 403,
            owner: 403,
        },
        Case {
            name: "log out",
            method: Method::POST,
            template: "/api/v1/auth/logout",
            path: |_, _| "/api/v1/auth/logout".into(),
            body: no_body,
            fresh_cast: true,
            outsider: 204,
            member: 204,
            admin: 204,
            owner: 204,
        },
        Case {
            name: "list sessions",
            method: Method::GET,
            template: "/api/v1/auth/sessions",
            path: |_, _| "/api/v1/auth/sessions".into(),
            body: no_body,
            fresh_cast: false,
            outsider: 200,
            member: 200,
            admin: 200,
            owner: 200,
        },
        Case {
            name: "end the owner's session",
            method: Method::DELETE,
            template: "/api/v1/auth/sessions/{session_id}",
            path: |cast, _| format!("/api/v1/auth/sessions/{}", session_of(&cast.owner.token)),
            body: no_body,
            fresh_cast: true,
            outsider: 404,
            member: 404,
            admin: 404,
            owner: 204,
        },
        Case {
            name: "end the other sessions",
            method: Method::POST,
            template: "/api/v1/auth/sessions/revoke-others",
            path: |_, _| "/api/v1/auth/sessions/revoke-others".into(),
            body: no_body,
            fresh_cast: true,
            outsider: 200,
            member: 200,
            admin: 200,
            owner: 200,
        },
        Case {
            name: "deactivate",
            method: Method::POST,
            template: "/api/v1/users/me/deactivate",
            path: |_, _| "/api/v1/users/me/deactivate".into(),
            body: |_| Some(json!({"password": "correct horse"})),
            fresh_cast: true,
            outsider: 200,
            member: 200,
            admin: 200,
            owner: 200,
        },
        // Server admins only (webhooks): no caller of the matrix is one.
        Case {
            name: "register a webhook",
            method: Method::POST,
            template: "/api/v1/admin/webhooks",
            path: |_, _| "/api/v1/admin/webhooks".into(),
            body: |_| {
                Some(json!({"url": "https://example.com/hook", "secret": "0123456789abcdef"}))
            },
            fresh_cast: false,
            outsider: 403,
            member: 403,
            admin: 403,
            owner: 403,
        },
        // Server admins only (webhooks): no caller of the matrix is one.
        Case {
            name: "list webhooks",
            method: Method::GET,
            template: "/api/v1/admin/webhooks",
            path: |_, _| "/api/v1/admin/webhooks".into(),
            body: no_body,
            fresh_cast: false,
            outsider: 403,
            member: 403,
            admin: 403,
            owner: 403,
        },
        // Server admins only (webhooks): no caller of the matrix is one.
        Case {
            name: "remove a webhook",
            method: Method::DELETE,
            template: "/api/v1/admin/webhooks/{webhook_id}",
            path: |_, _| "/api/v1/admin/webhooks/0b7c6a4e-3f1d-4c7a-9a51-1f0e8b2d4c11".into(),
            body: no_body,
            fresh_cast: false,
            outsider: 403,
            member: 403,
            admin: 403,
            owner: 403,
        },
        // Server admins only (webhooks): no caller of the matrix is one.
        Case {
            name: "list dead letters",
            method: Method::GET,
            template: "/api/v1/admin/webhooks/dead-letters",
            path: |_, _| "/api/v1/admin/webhooks/dead-letters".into(),
            body: no_body,
            fresh_cast: false,
            outsider: 403,
            member: 403,
            admin: 403,
            owner: 403,
        },
        // Server admins only (webhooks): no caller of the matrix is one.
        Case {
            name: "replay a dead letter",
            method: Method::POST,
            template: "/api/v1/admin/webhooks/dead-letters/{dead_letter_id}/replay",
            path: |_, _| "/api/v1/admin/webhooks/dead-letters/1/replay".into(),
            body: no_body,
            fresh_cast: false,
            outsider: 403,
            member: 403,
            admin: 403,
            owner: 403,
        },
        // Presence (issue #17): an outsider shares no conversation with the owner.
        Case {
            name: "user presence",
            method: Method::GET,
            template: "/api/v1/users/{user_id}/presence",
            path: |c, _| format!("/api/v1/users/{}/presence", c.owner.id),
            body: no_body,
            // Earlier cases may have brought the shared cast's outsider into a conversation
            // with the owner.
            fresh_cast: true,
            outsider: 404,
            member: 200,
            admin: 200,
            owner: 200,
        },
        Case {
            name: "presence query",
            method: Method::POST,
            template: "/api/v1/presence/query",
            path: |_, _| "/api/v1/presence/query".into(),
            body: |c| Some(json!({"user_ids": [c.owner.id]})),
            fresh_cast: false,
            outsider: 200,
            member: 200,
            admin: 200,
            owner: 200,
        },
        Case {
            name: "privacy",
            method: Method::GET,
            template: "/api/v1/users/me/privacy",
            path: |_, _| "/api/v1/users/me/privacy".into(),
            body: no_body,
            fresh_cast: false,
            outsider: 200,
            member: 200,
            admin: 200,
            owner: 200,
        },
        Case {
            name: "set privacy",
            method: Method::PUT,
            template: "/api/v1/users/me/privacy",
            path: |_, _| "/api/v1/users/me/privacy".into(),
            body: |_| Some(json!({"hide_last_seen": false})),
            fresh_cast: false,
            outsider: 200,
            member: 200,
            admin: 200,
            owner: 200,
        },
    ]
}

/// Operations outside the matrix, each with the reason: they are open to anyone by design,
/// or their callers are checked by a test of their own.
const OUTSIDE_THE_MATRIX: [&str; 6] = [
    "POST /api/v1/auth/signup",  // open to anyone
    "POST /api/v1/auth/login",   // open to anyone
    "POST /api/v1/auth/refresh", // open to anyone holding a refresh token: tests/api/sessions.rs
    "GET /health",               // open to anyone
    "GET /api/v1/ws",            // the_websocket_endpoint_admits_...
    "POST /api/v1/attachments",  // any_signed_in_user_may_upload_and_nobody_else (multipart)
];

/// The login session a token (signed with the known secret) was issued in.
fn session_of(token: &str) -> String {
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_audience(&["chatd-api"]);
    let claims = jsonwebtoken::decode::<Value>(
        token,
        &jsonwebtoken::DecodingKey::from_secret(crate::helpers::TEST_SECRET.as_bytes()),
        &validation,
    )
    .expect("a token of the test secret");
    claims.claims["sid"]
        .as_str()
        .expect("a token of a session")
        .to_owned()
}

/// `text` with every id in `ids` replaced by `<id>`, to compare two answers about different ids.
fn without_ids(text: &str, ids: &[&str]) -> String {
    ids.iter()
        .fold(text.to_owned(), |text, id| text.replace(id, "<id>"))
}

#[tokio::test]
async fn every_endpoint_gives_each_kind_of_caller_the_documented_status() {
    let world = World::new().await;
    let mut mismatches = Vec::new();
    for case in cases() {
        for caller in CALLERS {
            let fresh;
            let cast = if case.fresh_cast {
                fresh = world.fresh_cast().await;
                &fresh
            } else {
                &world.cast
            };
            let group = world.group(cast).await;
            let expected = match caller {
                Caller::NoToken | Caller::BadToken | Caller::ExpiredToken => 401,
                Caller::Outsider => case.outsider,
                Caller::Member => case.member,
                Caller::Admin => case.admin,
                Caller::Owner => case.owner,
            };
            let what = format!("{} as {caller:?}", case.name);
            let token = world.token(cast, caller);
            let refused = expected >= 400;
            let before = if refused {
                Some(world.snapshot(cast, &group).await)
            } else {
                None
            };
            let response = case.call(&world.app, cast, &group, token.as_deref()).await;
            let status = response.status().as_u16();
            if status != expected {
                mismatches.push(format!("{what}: expected {expected}, got {status}"));
                continue;
            }
            let Some(before) = before else { continue };
            let body: Value = response.json().await.unwrap_or(Value::Null);
            if !(body["detail"].is_string() && body["code"].is_string()) {
                mismatches.push(format!("{what}: not a JSON error: {body}"));
            }
            // A client must tell an expired token (log in again) from a bad one.
            let code = match caller {
                Caller::ExpiredToken => Some("token_expired"),
                Caller::NoToken | Caller::BadToken => Some("unauthorized"),
                _ => None,
            };
            if let Some(code) = code
                && body["code"] != code
            {
                mismatches.push(format!("{what}: expected code {code}, got {body}"));
            }
            // A refused request changes nothing.
            let after = world.snapshot(cast, &group).await;
            if after != before {
                mismatches.push(format!("{what} changed the group: {before} -> {after}"));
            }
            // An outsider learns nothing: the same request about a conversation (or message)
            // that does not exist gets the same answer.
            if caller == Caller::Outsider && expected == 404 {
                let ghost = Group {
                    id: uuid::Uuid::new_v4().to_string(),
                    message: uuid::Uuid::new_v4().to_string(),
                    seq: 0,
                    attachment: uuid::Uuid::new_v4().to_string(),
                };
                let unknown = case.call(&world.app, cast, &ghost, token.as_deref()).await;
                let unknown_status = unknown.status().as_u16();
                let unknown: Value = unknown.json().await.unwrap_or(Value::Null);
                let ids = [
                    group.id.as_str(),
                    group.message.as_str(),
                    group.attachment.as_str(),
                    ghost.id.as_str(),
                    ghost.message.as_str(),
                    ghost.attachment.as_str(),
                ];
                // Each answer has a request id of its own; the rest must match.
                let without_request_id = |mut answer: Value| {
                    if let Some(fields) = answer.as_object_mut() {
                        fields.remove("request_id");
                    }
                    answer.to_string()
                };
                let (seen, ghostly) = (
                    without_ids(&without_request_id(body), &ids),
                    without_ids(&without_request_id(unknown), &ids),
                );
                if unknown_status != status || seen != ghostly {
                    mismatches.push(format!(
                        "{what}: {status} {seen} differs from a missing one's {unknown_status} {ghostly}"
                    ));
                }
            }
        }
    }
    assert!(mismatches.is_empty(), "{mismatches:#?}");
}

#[tokio::test]
async fn the_matrix_covers_every_operation_in_the_openapi_document() {
    let world = World::new().await;
    let spec = world.app.openapi().await;
    let mut documented: Vec<String> = spec["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, operations)| {
            operations
                .as_object()
                .unwrap()
                .keys()
                .map(move |method| format!("{} {path}", method.to_uppercase()))
        })
        .collect();
    documented.sort_unstable();
    let mut covered: Vec<String> = cases()
        .iter()
        .map(|case| format!("{} {}", case.method, case.template))
        .chain(OUTSIDE_THE_MATRIX.iter().map(|op| (*op).to_owned()))
        .collect();
    covered.sort_unstable();
    covered.dedup();
    assert_eq!(covered, documented);
}

#[tokio::test]
async fn the_websocket_endpoint_admits_signed_in_callers_and_refuses_the_rest() {
    let world = World::new().await;
    let cast = &world.cast;
    for caller in CALLERS {
        let url = match world.token(cast, caller) {
            Some(token) => format!("{}?token={token}", world.app.ws_url),
            None => world.app.ws_url.clone(),
        };
        let (stream, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("the WebSocket handshake succeeds");
        let mut ws = Ws { stream };
        let user = match caller {
            Caller::NoToken => {
                // A client with no token at all: its first frame is not a token.
                ws.send_json(json!({"type": "ping"})).await;
                None
            }
            Caller::BadToken | Caller::ExpiredToken => None,
            Caller::Outsider => Some(&cast.outsider),
            Caller::Member => Some(&cast.member),
            Caller::Admin => Some(&cast.admin),
            Caller::Owner => Some(&cast.owner),
        };
        let first = ws.next_json().await;
        match user {
            Some(user) => {
                assert_eq!(first["type"], "connected", "{caller:?}: {first}");
                assert_eq!(first["user_id"], user.id.as_str(), "{caller:?}");
            }
            None => {
                assert_eq!(first["type"], "error", "{caller:?}: {first}");
                let code = if caller == Caller::ExpiredToken {
                    "token_expired"
                } else {
                    "unauthorized"
                };
                assert_eq!(first["code"], code, "{caller:?}: {first}");
                assert_eq!(ws.close_code().await, Some(1008), "{caller:?}");
            }
        }
    }
}

/// How long a connection must stay quiet to count as "got nothing".
const SILENCE: Duration = Duration::from_millis(300);

#[tokio::test]
async fn every_websocket_frame_about_a_conversation_is_refused_to_outsiders_and_served_to_members()
{
    let world = World::new().await;
    let cast = &world.cast;
    let group = world.group(cast).await;
    // A member who only listens: whatever reaches the group reaches this connection.
    let mut listener = world.app.ws(&cast.extra).await;

    let mut outsider = world.app.ws(&cast.outsider).await;
    let frames = [
        json!({"type": "message", "conversation_id": group.id, "content": "hi", "client_message_id": "authz"}),
        json!({"type": "mark_read", "message_id": group.message}),
        json!({"type": "set_read_marker", "conversation_id": group.id, "last_read_seq": 0}),
        json!({"type": "edit_message", "message_id": group.message, "content": "mine", "ref": "e"}),
        json!({"type": "delete_message", "message_id": group.message, "ref": "d"}),
        json!({"type": "delete_message", "message_id": group.message, "scope": "me", "ref": "h"}),
        json!({"type": "react", "message_id": group.message, "emoji": "👍"}),
        json!({"type": "unreact", "message_id": group.message, "emoji": "👍"}),
        json!({"type": "pin", "conversation_id": group.id, "message_id": group.message}),
        json!({"type": "unpin", "conversation_id": group.id, "message_id": group.message}),
        json!({"type": "typing", "conversation_id": group.id}),
        json!({"type": "typing", "conversation_id": group.id, "is_typing": false}),
    ];
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
    // Neither the outsider's message nor its typing, a receipt, a change, a reaction or a pin
    // reached the group.
    listener.assert_silent(SILENCE).await;
    // Sync and ping concern only the caller: an outsider gets nothing of the group.
    outsider
        .send_json(json!({"type": "sync", "since_seq": 0}))
        .await;
    assert_eq!(
        outsider.next_json().await,
        json!({"type": "synced", "last_seq": 0, "has_more": false})
    );
    outsider.send_json(json!({"type": "ping"})).await;
    assert_eq!(outsider.next_json().await["type"], "pong");
    // A message to a user is anyone's to send: it goes to a direct conversation, not the group.
    outsider
        .send_json(
            json!({"type": "message", "recipient_id": cast.member.id, "content": "from outside"}),
        )
        .await;
    let direct = outsider.next_of_type("new_message").await;
    assert_eq!(direct["message"]["recipient_id"], cast.member.id.as_str());
    assert_ne!(direct["message"]["conversation_id"], group.id.as_str());
    listener.assert_silent(SILENCE).await;

    for member in [&cast.member, &cast.admin, &cast.owner] {
        let group = world.group(cast).await;
        // A message from someone else, so that reading it moves every caller's marker
        // (sending is reading: the owner has read its own).
        let unread = world.app.send(&cast.extra, &group.id, "read me").await;
        let mut listener = world.app.ws(&cast.extra).await;
        let mut ws = world.app.ws(member).await;

        ws.send_json(json!({"type": "sync", "since_seq": group.seq - 1}))
            .await;
        for id in [&json!(group.message), &unread["id"]] {
            let frame = ws.next_json().await;
            assert_eq!(frame["type"], "new_message", "{frame}");
            assert_eq!(&frame["message"]["id"], id);
        }
        assert_eq!(
            ws.next_json().await,
            json!({"type": "synced", "last_seq": unread["seq"], "has_more": false})
        );

        ws.send_json(json!({"type": "mark_read", "message_id": unread["id"]}))
            .await;
        let receipt = ws.next_of_type("message_read").await;
        assert_eq!(receipt["message_id"], unread["id"]);
        assert_eq!(receipt["user_id"], member.id.as_str());

        ws.send_message(&group.id, "from a member", "m-1").await;
        let sent = ws.next_of_type("new_message").await;
        assert_eq!(sent["message"]["conversation_id"], group.id.as_str());
        assert_eq!(sent["message"]["sender_id"], member.id.as_str());
        assert_eq!(sent["message"]["content"], "from a member");

        ws.send_json(json!({"type": "typing", "conversation_id": group.id}))
            .await;

        ws.send_json(
            json!({"type": "message", "recipient_id": cast.outsider.id, "content": "hi outsider"}),
        )
        .await;
        let direct = ws.next_of_type("new_message").await;
        assert_eq!(direct["message"]["sender_id"], member.id.as_str());
        assert_eq!(direct["message"]["recipient_id"], cast.outsider.id.as_str());
        assert_ne!(direct["message"]["conversation_id"], group.id.as_str());
        assert_eq!(
            outsider.next_of_type("new_message").await["message"]["id"],
            direct["message"]["id"]
        );

        // The group heard the receipt, the message and the typing; the direct message
        // stayed out of it.
        let mut heard = Vec::new();
        for _ in 0..3 {
            heard.push(listener.next_json().await);
        }
        heard.sort_by_key(|frame| frame["type"].to_string());
        assert_eq!(heard[0]["type"], "message_read", "{heard:?}");
        assert_eq!(heard[0]["user_id"], member.id.as_str());
        assert_eq!(heard[1]["type"], "new_message", "{heard:?}");
        assert_eq!(heard[1]["message"]["id"], sent["message"]["id"]);
        assert_eq!(heard[2]["type"], "user_typing", "{heard:?}");
        assert_eq!(heard[2]["user_id"], member.id.as_str());
        assert_eq!(heard[2]["conversation_id"], group.id.as_str());
        listener.assert_silent(SILENCE).await;
    }
}

#[tokio::test]
async fn any_signed_in_user_may_upload_and_nobody_else() {
    let world = World::new().await;
    let cast = &world.cast;
    for caller in CALLERS {
        let mut request = world
            .app
            .client
            .post(format!("{}/api/v1/attachments", world.app.address))
            .header(
                "content-type",
                format!(
                    "multipart/form-data; boundary={}",
                    crate::attachments::BOUNDARY
                ),
            )
            .body(crate::attachments::multipart(
                "file",
                "a.txt",
                "text/plain",
                b"hi",
            ));
        if let Some(token) = world.token(cast, caller) {
            request = request.bearer_auth(token);
        }
        let status = request.send().await.unwrap().status();
        let expected = match caller {
            Caller::NoToken | Caller::BadToken | Caller::ExpiredToken => StatusCode::UNAUTHORIZED,
            _ => StatusCode::CREATED,
        };
        assert_eq!(status, expected, "{caller:?}");
    }
}
