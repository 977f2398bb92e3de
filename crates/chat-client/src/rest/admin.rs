//! Reporting messages and users, and the server admins' routes: accounts, reports,
//! moderation, the audit log, webhooks and their dead letters. The admin routes answer
//! `403` to anyone not a server admin.

use reqwest::Method;
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use crate::types::{
    AdminUserPage, AuditEntry, DeadLetter, DeadLetterQuery, Me, Message, Report, ReportSubject,
    Webhook,
};
use crate::{Client, Error};

impl Client {
    /// Reports a message (and so its sender) or a user to the server admins.
    pub async fn report(&self, subject: ReportSubject, reason: &str) -> Result<Report, Error> {
        let body = match subject {
            ReportSubject::Message(id) => json!({ "message_id": id, "reason": reason }),
            ReportSubject::User(id) => json!({ "user_id": id, "reason": reason }),
        };
        self.call(Method::POST, "api/v1/reports", Some(&body)).await
    }

    /// Every account, deactivated ones included, with email addresses (admins); `q` filters
    /// as [`Client::list_users`] does. Page on with the answer's `next_cursor`.
    pub async fn admin_users(
        &self,
        q: Option<&str>,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Result<AdminUserPage, Error> {
        #[derive(Serialize)]
        struct Query<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            q: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            limit: Option<u32>,
            #[serde(skip_serializing_if = "Option::is_none")]
            cursor: Option<&'a str>,
        }
        self.get_query("api/v1/admin/users", &Query { q, limit, cursor })
            .await
    }

    /// Deactivates an account (admins): its sessions end and it can no longer log in.
    pub async fn deactivate_user(&self, user_id: Uuid) -> Result<Me, Error> {
        let path = format!("api/v1/admin/users/{user_id}/deactivate");
        self.call(Method::POST, &path, None::<&()>).await
    }

    /// Reactivates an account (admins).
    pub async fn reactivate_user(&self, user_id: Uuid) -> Result<Me, Error> {
        let path = format!("api/v1/admin/users/{user_id}/reactivate");
        self.call(Method::POST, &path, None::<&()>).await
    }

    /// Reports (admins), `open` or `resolved` ones, or both with `None`.
    pub async fn admin_reports(
        &self,
        status: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Vec<Report>, Error> {
        #[derive(Serialize)]
        struct Query<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            status: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            limit: Option<u32>,
        }
        self.get_query("api/v1/admin/reports", &Query { status, limit })
            .await
    }

    /// Resolves a report (admins), with a note for the record.
    pub async fn resolve_report(
        &self,
        report_id: Uuid,
        note: Option<&str>,
    ) -> Result<Report, Error> {
        self.call(
            Method::POST,
            &format!("api/v1/admin/reports/{report_id}/resolve"),
            Some(&json!({ "note": note })),
        )
        .await
    }

    /// Deletes any message for everyone (admins); answers its tombstone.
    pub async fn admin_delete_message(&self, message_id: Uuid) -> Result<Message, Error> {
        let path = format!("api/v1/admin/messages/{message_id}");
        self.call(Method::DELETE, &path, None::<&()>).await
    }

    /// The audit log (admins), newest first; page back with `before` the smallest id you
    /// have.
    pub async fn audit_log(
        &self,
        before: Option<i64>,
        limit: Option<u32>,
    ) -> Result<Vec<AuditEntry>, Error> {
        #[derive(Serialize)]
        struct Query {
            #[serde(skip_serializing_if = "Option::is_none")]
            before: Option<i64>,
            #[serde(skip_serializing_if = "Option::is_none")]
            limit: Option<u32>,
        }
        self.get_query("api/v1/admin/audit", &Query { before, limit })
            .await
    }

    /// Registers a webhook (admins): the server posts events to `url`, signed with
    /// `secret` (16 to 256 characters).
    pub async fn create_webhook(&self, url: &str, secret: &str) -> Result<Webhook, Error> {
        self.call(
            Method::POST,
            "api/v1/admin/webhooks",
            Some(&json!({ "url": url, "secret": secret })),
        )
        .await
    }

    /// The webhooks (admins).
    pub async fn webhooks(&self) -> Result<Vec<Webhook>, Error> {
        self.get("api/v1/admin/webhooks").await
    }

    /// Removes a webhook (admins).
    pub async fn delete_webhook(&self, webhook_id: Uuid) -> Result<(), Error> {
        let path = format!("api/v1/admin/webhooks/{webhook_id}");
        self.call_empty(Method::DELETE, &path, None::<&()>).await
    }

    /// Webhook deliveries that failed every attempt (admins).
    pub async fn dead_letters(&self, query: &DeadLetterQuery) -> Result<Vec<DeadLetter>, Error> {
        self.get_query("api/v1/admin/webhooks/dead-letters", query)
            .await
    }

    /// Sends a dead letter again from a first attempt (admins).
    pub async fn replay_dead_letter(&self, dead_letter_id: i64) -> Result<DeadLetter, Error> {
        let path = format!("api/v1/admin/webhooks/dead-letters/{dead_letter_id}/replay");
        self.call(Method::POST, &path, None::<&()>).await
    }
}
