//! [`OutboxStore`] over the `outbox` table (see the migration
//! `2026-12-12-300001_outbox_webhooks`), and the functions every announced write calls in its
//! own transaction: [`record_appended`] for an append batch, [`record`] for anything else.
//! Nothing is announced that was not stored, and nothing stored goes unannounced: the event
//! commits or rolls back with its change, and leaves the outbox only in the transaction that
//! queues its deliveries.

use chat_domain::ports::{OutboxStore, StoreResult};
use chat_domain::webhook::{EventKind, EventRefs, NewDelivery, OutboxEvent};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel::sqlite::SqliteConnection;

use crate::SqliteStore;
use crate::error::{StorageError, StorageResult};
use crate::models::{id, ts};
use crate::schema::{outbox, webhook_deliveries, webhooks};
use crate::timestamp::Stored;

/// Writes the `message.created` events of the messages with seqs `first..=last`, all
/// inserted by the batch being committed, in the batch's transaction: one statement per
/// batch, as the search index is filled ([`crate::search::index_appended`]).
pub(crate) fn record_appended(
    conn: &mut SqliteConnection,
    first: i64,
    last: i64,
) -> QueryResult<usize> {
    diesel::sql_query(
        "INSERT INTO outbox (kind, conversation_id, message_id, user_id, seq, created_at) \
         SELECT 'message.created', conversation_id, id, sender_id, seq, created_at \
         FROM messages WHERE seq BETWEEN ? AND ? ORDER BY seq",
    )
    .bind::<BigInt, _>(first)
    .bind::<BigInt, _>(last)
    .execute(conn)
}

/// Writes one event in the caller's transaction. Public for the writes of other features
/// (a report: `record(conn, EventKind::ReportCreated, &refs, at)` inside the report's insert
/// transaction).
pub fn record(
    conn: &mut SqliteConnection,
    kind: EventKind,
    refs: &EventRefs,
    at: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::insert_into(outbox::table)
        .values((
            outbox::kind.eq(kind.as_str()),
            outbox::conversation_id.eq(refs.conversation_id.map(|c| c.to_string())),
            outbox::message_id.eq(refs.message_id.map(|m| m.to_string())),
            outbox::user_id.eq(refs.user_id.map(|u| u.to_string())),
            outbox::report_id.eq(refs.report_id.map(|r| r.to_string())),
            outbox::seq.eq(refs.seq.map(|s| s.0)),
            outbox::created_at.eq(ts(at)),
        ))
        .execute(conn)
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = outbox, check_for_backend(diesel::sqlite::Sqlite))]
struct OutboxRow {
    id: i64,
    kind: String,
    conversation_id: Option<String>,
    message_id: Option<String>,
    user_id: Option<String>,
    report_id: Option<String>,
    seq: Option<i64>,
    created_at: Stored,
}

/// The references of a stored event or delivery, parsed.
pub(crate) fn refs(
    conversation_id: Option<String>,
    message_id: Option<String>,
    user_id: Option<String>,
    report_id: Option<String>,
    seq: Option<i64>,
) -> StorageResult<EventRefs> {
    Ok(EventRefs {
        conversation_id: conversation_id.map(|c| id("outbox", &c)).transpose()?,
        message_id: message_id.map(|m| id("outbox", &m)).transpose()?,
        user_id: user_id.map(|u| id("outbox", &u)).transpose()?,
        report_id: report_id.map(|r| id("outbox", &r)).transpose()?,
        seq: seq.map(chat_domain::message::Seq),
    })
}

pub(crate) fn kind(stored: &str) -> StorageResult<EventKind> {
    EventKind::parse(stored).ok_or_else(|| StorageError::corrupt("event kind", stored))
}

impl TryFrom<OutboxRow> for OutboxEvent {
    type Error = StorageError;

    fn try_from(row: OutboxRow) -> StorageResult<Self> {
        Ok(OutboxEvent {
            id: row.id,
            kind: kind(&row.kind)?,
            refs: refs(
                row.conversation_id,
                row.message_id,
                row.user_id,
                row.report_id,
                row.seq,
            )?,
            created_at: row.created_at.utc(),
        })
    }
}

impl OutboxStore for SqliteStore {
    fn pending_events(&self, limit: u32) -> StoreResult<Vec<OutboxEvent>> {
        self.read(|conn| {
            let rows: Vec<OutboxRow> = outbox::table
                .order(outbox::id)
                .limit(i64::from(limit))
                .select(OutboxRow::as_select())
                .load(conn)?;
            rows.into_iter().map(OutboxEvent::try_from).collect()
        })
    }

    fn fan_out(
        &self,
        events: &[i64],
        deliveries: &[NewDelivery],
        at: DateTime<Utc>,
    ) -> StoreResult<Vec<i64>> {
        self.write(|conn| {
            let mut taken: Vec<i64> = Vec::with_capacity(events.len());
            for chunk in events.chunks(500) {
                taken.extend(
                    diesel::delete(outbox::table.filter(outbox::id.eq_any(chunk)))
                        .returning(outbox::id)
                        .get_results::<i64>(conn)?,
                );
            }
            let endpoints: Vec<String> = webhooks::table
                .order(webhooks::created_at)
                .select(webhooks::id)
                .load(conn)?;
            let taken_set: std::collections::HashSet<i64> = taken.iter().copied().collect();
            let rows: Vec<_> = deliveries
                .iter()
                .filter(|d| taken_set.contains(&d.source))
                .flat_map(|d| endpoints.iter().map(move |w| delivery_row(w, d, at)))
                .collect();
            for chunk in rows.chunks(100) {
                diesel::insert_into(webhook_deliveries::table)
                    .values(chunk)
                    .execute(conn)?;
            }
            Ok(taken)
        })
    }
}

#[derive(Insertable)]
#[diesel(table_name = webhook_deliveries)]
struct NewDeliveryRow {
    webhook_id: String,
    event_id: String,
    kind: &'static str,
    conversation_id: Option<String>,
    message_id: Option<String>,
    user_id: Option<String>,
    report_id: Option<String>,
    seq: Option<i64>,
    count: i32,
    created_at: NaiveDateTime,
    next_attempt_at: Option<NaiveDateTime>,
}

fn delivery_row(webhook: &str, d: &NewDelivery, at: DateTime<Utc>) -> NewDeliveryRow {
    NewDeliveryRow {
        webhook_id: webhook.to_owned(),
        event_id: d.event_id.to_string(),
        kind: d.kind.as_str(),
        conversation_id: d.refs.conversation_id.map(|c| c.to_string()),
        message_id: d.refs.message_id.map(|m| m.to_string()),
        user_id: d.refs.user_id.map(|u| u.to_string()),
        report_id: d.refs.report_id.map(|r| r.to_string()),
        seq: d.refs.seq.map(|s| s.0),
        count: i32::try_from(d.count).unwrap_or(i32::MAX),
        created_at: ts(d.created_at),
        next_attempt_at: Some(ts(at)),
    }
}
