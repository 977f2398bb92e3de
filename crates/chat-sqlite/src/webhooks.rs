//! [`WebhookStore`] over the `webhooks` and `webhook_deliveries` tables (see the migration
//! `2026-12-12-300001_outbox_webhooks`). One process writes a SQLite file, so a claim is one
//! statement under the writer lock; the lease still matters, for a dispatcher that dies
//! mid-send: its deliveries are claimed again once the lease runs out.

use chat_domain::ports::{StoreResult, WebhookStore};
use chat_domain::webhook::{
    DeliveryState, Lease, Webhook, WebhookDelivery, WebhookId, WebhookSecret, WebhookUrl,
};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamp};

use crate::SqliteStore;
use crate::error::{StorageError, StorageResult};
use crate::models::{id, ts};
use crate::outbox::{kind, refs};
use crate::schema::{webhook_deliveries, webhooks};
use crate::timestamp::Stored;

#[derive(Queryable, Selectable)]
#[diesel(table_name = webhooks, check_for_backend(diesel::sqlite::Sqlite))]
struct WebhookRow {
    id: String,
    url: String,
    secret: String,
    created_by: Option<String>,
    created_at: Stored,
}

impl TryFrom<WebhookRow> for Webhook {
    type Error = StorageError;

    fn try_from(row: WebhookRow) -> StorageResult<Self> {
        Ok(Webhook {
            id: WebhookId(id("webhook", &row.id)?),
            url: WebhookUrl::parse(&row.url)
                .map_err(|e| StorageError::corrupt("webhook url", e))?,
            secret: WebhookSecret::parse(&row.secret)
                .map_err(|_| StorageError::corrupt("webhook secret", "does not parse"))?,
            created_by: row.created_by.map(|u| id("webhook", &u)).transpose()?,
            created_at: row.created_at.utc(),
        })
    }
}

#[derive(Queryable, Selectable, QueryableByName)]
#[diesel(table_name = webhook_deliveries, check_for_backend(diesel::sqlite::Sqlite))]
struct DeliveryRow {
    id: i64,
    webhook_id: String,
    event_id: String,
    kind: String,
    conversation_id: Option<String>,
    message_id: Option<String>,
    user_id: Option<String>,
    report_id: Option<String>,
    seq: Option<i64>,
    count: i32,
    created_at: Stored,
    attempts: i32,
    first_attempt_at: Option<Stored>,
    next_attempt_at: Option<Stored>,
    last_error: Option<String>,
}

impl TryFrom<DeliveryRow> for WebhookDelivery {
    type Error = StorageError;

    fn try_from(row: DeliveryRow) -> StorageResult<Self> {
        Ok(WebhookDelivery {
            id: row.id,
            webhook_id: WebhookId(id("delivery", &row.webhook_id)?),
            event_id: id("delivery", &row.event_id)?,
            kind: kind(&row.kind)?,
            refs: refs(
                row.conversation_id,
                row.message_id,
                row.user_id,
                row.report_id,
                row.seq,
            )?,
            count: u32::try_from(row.count).unwrap_or(1),
            created_at: row.created_at.utc(),
            state: match row.next_attempt_at {
                Some(_) => DeliveryState::Pending,
                None => DeliveryState::Dead,
            },
            attempts: u32::try_from(row.attempts).unwrap_or(0),
            first_attempt_at: row.first_attempt_at.map(Stored::utc),
            next_attempt_at: row.next_attempt_at.map(Stored::utc),
            last_error: row.last_error,
        })
    }
}

/// The claim of [`WebhookStore::claim`] in one statement: the earliest pending deliveries
/// due (a leased one is due when its lease runs out), each with nothing before it in its
/// endpoint's and conversation's order that is pending and not due (anything before it that
/// is due is claimed with it, being earlier in id order).
const CLAIM: &str = "\
UPDATE webhook_deliveries SET lease_holder = ?1, next_attempt_at = ?2 \
WHERE id IN ( \
    SELECT d.id FROM webhook_deliveries d \
    WHERE d.next_attempt_at <= ?3 \
      AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e \
          WHERE e.webhook_id = d.webhook_id AND e.conversation_id IS d.conversation_id \
            AND e.id < d.id AND e.next_attempt_at > ?3) \
    ORDER BY d.id LIMIT ?4) \
RETURNING id, webhook_id, event_id, kind, conversation_id, message_id, user_id, report_id, \
    seq, count, created_at, attempts, first_attempt_at, next_attempt_at, last_error";

impl WebhookStore for SqliteStore {
    fn insert_webhook(&self, webhook: &Webhook) -> StoreResult<()> {
        self.write(|conn| {
            diesel::insert_into(webhooks::table)
                .values((
                    webhooks::id.eq(webhook.id.to_string()),
                    webhooks::url.eq(webhook.url.as_str()),
                    webhooks::secret.eq(webhook.secret.expose()),
                    webhooks::created_by.eq(webhook.created_by.map(|u| u.to_string())),
                    webhooks::created_at.eq(ts(webhook.created_at)),
                ))
                .execute(conn)?;
            Ok(())
        })
    }

    fn webhooks(&self) -> StoreResult<Vec<Webhook>> {
        self.read(|conn| {
            let rows: Vec<WebhookRow> = webhooks::table
                .order((webhooks::created_at, webhooks::id))
                .select(WebhookRow::as_select())
                .load(conn)?;
            rows.into_iter().map(Webhook::try_from).collect()
        })
    }

    fn find_webhook(&self, webhook: WebhookId) -> StoreResult<Option<Webhook>> {
        self.read(|conn| {
            webhooks::table
                .find(webhook.to_string())
                .select(WebhookRow::as_select())
                .first(conn)
                .optional()?
                .map(Webhook::try_from)
                .transpose()
        })
    }

    fn delete_webhook(&self, webhook: WebhookId) -> StoreResult<bool> {
        self.write(|conn| {
            diesel::delete(
                webhook_deliveries::table
                    .filter(webhook_deliveries::webhook_id.eq(webhook.to_string())),
            )
            .execute(conn)?;
            Ok(diesel::delete(webhooks::table.find(webhook.to_string())).execute(conn)? > 0)
        })
    }

    fn claim(
        &self,
        lease: &Lease,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<WebhookDelivery>> {
        self.write(|conn| {
            let mut rows: Vec<DeliveryRow> = diesel::sql_query(CLAIM)
                .bind::<Text, _>(&lease.holder)
                .bind::<Timestamp, _>(ts(lease.until))
                .bind::<Timestamp, _>(ts(now))
                .bind::<BigInt, _>(i64::from(limit))
                .load(conn)?;
            rows.sort_unstable_by_key(|row| row.id);
            rows.into_iter().map(WebhookDelivery::try_from).collect()
        })
    }

    fn delivered(&self, ids: &[i64], holder: &str) -> StoreResult<usize> {
        self.write(|conn| {
            let mut removed = 0;
            for chunk in ids.chunks(500) {
                removed += diesel::delete(
                    webhook_deliveries::table
                        .filter(webhook_deliveries::id.eq_any(chunk))
                        .filter(webhook_deliveries::lease_holder.eq(holder)),
                )
                .execute(conn)?;
            }
            Ok(removed)
        })
    }

    fn failed(
        &self,
        delivery: i64,
        holder: &str,
        error: &str,
        at: DateTime<Utc>,
        retry_at: Option<DateTime<Utc>>,
    ) -> StoreResult<bool> {
        self.write(|conn| {
            let held = webhook_deliveries::table
                .find(delivery)
                .filter(webhook_deliveries::lease_holder.eq(holder));
            let first: Option<Option<Stored>> = held
                .select(webhook_deliveries::first_attempt_at)
                .first(conn)
                .optional()?;
            let Some(first) = first else {
                return Ok(false);
            };
            diesel::update(held)
                .set((
                    webhook_deliveries::attempts.eq(webhook_deliveries::attempts + 1),
                    webhook_deliveries::first_attempt_at.eq(Some(first.map_or(ts(at), |f| f.0))),
                    webhook_deliveries::last_error.eq(error),
                    webhook_deliveries::next_attempt_at.eq(retry_at.map(ts)),
                    webhook_deliveries::lease_holder.eq(None::<String>),
                ))
                .execute(conn)?;
            Ok(true)
        })
    }

    fn release(&self, ids: &[i64], holder: &str, now: DateTime<Utc>) -> StoreResult<()> {
        self.write(|conn| {
            for chunk in ids.chunks(500) {
                diesel::update(
                    webhook_deliveries::table
                        .filter(webhook_deliveries::id.eq_any(chunk))
                        .filter(webhook_deliveries::lease_holder.eq(holder)),
                )
                .set((
                    webhook_deliveries::lease_holder.eq(None::<String>),
                    webhook_deliveries::next_attempt_at.eq(Some(ts(now))),
                ))
                .execute(conn)?;
            }
            Ok(())
        })
    }

    fn dead_letters(
        &self,
        webhook: Option<WebhookId>,
        before: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<WebhookDelivery>> {
        self.read(|conn| {
            let mut query = webhook_deliveries::table
                .filter(webhook_deliveries::next_attempt_at.is_null())
                .select(DeliveryRow::as_select())
                .order(webhook_deliveries::id.desc())
                .limit(i64::from(limit))
                .into_boxed();
            if let Some(webhook) = webhook {
                query = query.filter(webhook_deliveries::webhook_id.eq(webhook.to_string()));
            }
            if let Some(before) = before {
                query = query.filter(webhook_deliveries::id.lt(before));
            }
            let rows: Vec<DeliveryRow> = query.load(conn)?;
            rows.into_iter().map(WebhookDelivery::try_from).collect()
        })
    }

    fn replay(&self, delivery: i64, now: DateTime<Utc>) -> StoreResult<Option<WebhookDelivery>> {
        self.write(|conn| {
            let row: Option<DeliveryRow> = diesel::update(
                webhook_deliveries::table
                    .find(delivery)
                    .filter(webhook_deliveries::next_attempt_at.is_null()),
            )
            .set((
                webhook_deliveries::attempts.eq(0),
                webhook_deliveries::first_attempt_at.eq(None::<chrono::NaiveDateTime>),
                webhook_deliveries::next_attempt_at.eq(Some(ts(now))),
                webhook_deliveries::lease_holder.eq(None::<String>),
            ))
            .returning(DeliveryRow::as_returning())
            .get_result(conn)
            .optional()?;
            row.map(WebhookDelivery::try_from).transpose()
        })
    }
}
