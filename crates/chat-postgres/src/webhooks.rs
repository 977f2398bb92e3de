//! [`WebhookStore`] over the `webhooks` and `webhook_deliveries` tables (see the migration
//! `2026-12-12-300001_outbox_webhooks`).
//!
//! Several nodes claim at once. A claim first locks the endpoints no other claim holds
//! (`FOR UPDATE SKIP LOCKED`), then, in a statement of its own and so reading everything
//! committed before it got those locks, leases the deliveries it may send
//! (`FOR UPDATE SKIP LOCKED` again, against a node acknowledging meanwhile). One claim per
//! endpoint at a time is what keeps a conversation's order across nodes: a claim never sees
//! an earlier delivery of the conversation as free while another node is leasing it. The
//! lease itself is the delivery's `next_attempt_at`: a node that dies mid-send loses its
//! deliveries when the lease runs out, and another node sends them again (same event id).

use chat_domain::ports::{StoreResult, WebhookStore};
use chat_domain::webhook::{
    DeliveryState, Lease, Webhook, WebhookDelivery, WebhookId, WebhookSecret, WebhookUrl,
};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Text, Timestamptz, Uuid as SqlUuid};
use uuid::Uuid;

use crate::PgStore;
use crate::error::{StorageError, StorageResult};
use crate::outbox::{kind, refs};
use crate::schema::{webhook_deliveries, webhooks};

#[derive(Queryable, Selectable)]
#[diesel(table_name = webhooks, check_for_backend(diesel::pg::Pg))]
struct WebhookRow {
    id: Uuid,
    url: String,
    secret: String,
    created_by: Option<Uuid>,
    created_at: DateTime<Utc>,
}

impl TryFrom<WebhookRow> for Webhook {
    type Error = StorageError;

    fn try_from(row: WebhookRow) -> StorageResult<Self> {
        Ok(Webhook {
            id: WebhookId(row.id),
            url: WebhookUrl::parse(&row.url)
                .map_err(|e| StorageError::corrupt("webhook url", e))?,
            secret: WebhookSecret::parse(&row.secret)
                .map_err(|_| StorageError::corrupt("webhook secret", "does not parse"))?,
            created_by: row.created_by.map(Into::into),
            created_at: row.created_at,
        })
    }
}

#[derive(Queryable, Selectable, QueryableByName)]
#[diesel(table_name = webhook_deliveries, check_for_backend(diesel::pg::Pg))]
struct DeliveryRow {
    id: i64,
    webhook_id: Uuid,
    event_id: Uuid,
    kind: String,
    conversation_id: Option<Uuid>,
    message_id: Option<Uuid>,
    user_id: Option<Uuid>,
    report_id: Option<Uuid>,
    seq: Option<i64>,
    count: i32,
    created_at: DateTime<Utc>,
    attempts: i32,
    first_attempt_at: Option<DateTime<Utc>>,
    next_attempt_at: Option<DateTime<Utc>>,
    last_error: Option<String>,
}

impl TryFrom<DeliveryRow> for WebhookDelivery {
    type Error = StorageError;

    fn try_from(row: DeliveryRow) -> StorageResult<Self> {
        Ok(WebhookDelivery {
            id: row.id,
            webhook_id: WebhookId(row.webhook_id),
            event_id: row.event_id,
            kind: kind(&row.kind)?,
            refs: refs(
                row.conversation_id,
                row.message_id,
                row.user_id,
                row.report_id,
                row.seq,
            ),
            count: u32::try_from(row.count).unwrap_or(1),
            created_at: row.created_at,
            state: match row.next_attempt_at {
                Some(_) => DeliveryState::Pending,
                None => DeliveryState::Dead,
            },
            attempts: u32::try_from(row.attempts).unwrap_or(0),
            first_attempt_at: row.first_attempt_at,
            next_attempt_at: row.next_attempt_at,
            last_error: row.last_error,
        })
    }
}

/// The lease of [`WebhookStore::claim`], for the endpoints this claim has locked: the
/// earliest pending deliveries due (a leased one is due when its lease runs out), each with
/// nothing before it in its endpoint's and conversation's order that is pending and not due.
const CLAIM: &str = "\
UPDATE webhook_deliveries SET lease_holder = $1, next_attempt_at = $2 \
WHERE id IN ( \
    SELECT d.id FROM webhook_deliveries d \
    WHERE d.webhook_id = ANY($5) AND d.next_attempt_at <= $3 \
      AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e \
          WHERE e.webhook_id = d.webhook_id \
            AND e.conversation_id IS NOT DISTINCT FROM d.conversation_id \
            AND e.id < d.id AND e.next_attempt_at > $3) \
    ORDER BY d.id LIMIT $4 \
    FOR UPDATE SKIP LOCKED) \
RETURNING id, webhook_id, event_id, kind, conversation_id, message_id, user_id, report_id, \
    seq, count, created_at, attempts, first_attempt_at, next_attempt_at, last_error";

impl WebhookStore for PgStore {
    fn insert_webhook(&self, webhook: &Webhook) -> StoreResult<()> {
        self.write(|conn| {
            diesel::insert_into(webhooks::table)
                .values((
                    webhooks::id.eq(webhook.id.0),
                    webhooks::url.eq(webhook.url.as_str()),
                    webhooks::secret.eq(webhook.secret.expose()),
                    webhooks::created_by.eq(webhook.created_by.map(Uuid::from)),
                    webhooks::created_at.eq(webhook.created_at),
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
                .find(webhook.0)
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
                webhook_deliveries::table.filter(webhook_deliveries::webhook_id.eq(webhook.0)),
            )
            .execute(conn)?;
            Ok(diesel::delete(webhooks::table.find(webhook.0)).execute(conn)? > 0)
        })
    }

    fn claim(
        &self,
        lease: &Lease,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<WebhookDelivery>> {
        self.write(|conn| {
            let endpoints: Vec<Uuid> = webhooks::table
                .select(webhooks::id)
                .for_update()
                .skip_locked()
                .load(conn)?;
            if endpoints.is_empty() {
                return Ok(Vec::new());
            }
            let mut rows: Vec<DeliveryRow> = diesel::sql_query(CLAIM)
                .bind::<Text, _>(&lease.holder)
                .bind::<Timestamptz, _>(lease.until)
                .bind::<Timestamptz, _>(now)
                .bind::<BigInt, _>(i64::from(limit))
                .bind::<Array<SqlUuid>, _>(&endpoints)
                .load(conn)?;
            rows.sort_unstable_by_key(|row| row.id);
            rows.into_iter().map(WebhookDelivery::try_from).collect()
        })
    }

    fn delivered(&self, ids: &[i64], holder: &str) -> StoreResult<usize> {
        self.write(|conn| {
            Ok(diesel::delete(
                webhook_deliveries::table
                    .filter(webhook_deliveries::id.eq_any(ids))
                    .filter(webhook_deliveries::lease_holder.eq(holder)),
            )
            .execute(conn)?)
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
            let updated = diesel::update(
                webhook_deliveries::table
                    .find(delivery)
                    .filter(webhook_deliveries::lease_holder.eq(holder)),
            )
            .set((
                webhook_deliveries::attempts.eq(webhook_deliveries::attempts + 1),
                webhook_deliveries::first_attempt_at.eq(diesel::dsl::sql::<
                    diesel::sql_types::Nullable<Timestamptz>,
                >(
                    "COALESCE(first_attempt_at, "
                )
                .bind::<Timestamptz, _>(at)
                .sql(")")),
                webhook_deliveries::last_error.eq(error),
                webhook_deliveries::next_attempt_at.eq(retry_at),
                webhook_deliveries::lease_holder.eq(None::<String>),
            ))
            .execute(conn)?;
            Ok(updated > 0)
        })
    }

    fn release(&self, ids: &[i64], holder: &str, now: DateTime<Utc>) -> StoreResult<()> {
        self.write(|conn| {
            diesel::update(
                webhook_deliveries::table
                    .filter(webhook_deliveries::id.eq_any(ids))
                    .filter(webhook_deliveries::lease_holder.eq(holder)),
            )
            .set((
                webhook_deliveries::lease_holder.eq(None::<String>),
                webhook_deliveries::next_attempt_at.eq(Some(now)),
            ))
            .execute(conn)?;
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
                query = query.filter(webhook_deliveries::webhook_id.eq(webhook.0));
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
                webhook_deliveries::first_attempt_at.eq(None::<DateTime<Utc>>),
                webhook_deliveries::next_attempt_at.eq(Some(now)),
                webhook_deliveries::lease_holder.eq(None::<String>),
            ))
            .returning(DeliveryRow::as_returning())
            .get_result(conn)
            .optional()?;
            row.map(WebhookDelivery::try_from).transpose()
        })
    }
}
