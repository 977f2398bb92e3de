//! [`OutboxStore`] over the `outbox` table (see the migration
//! `2026-12-12-300001_outbox_webhooks`), and the functions every announced write calls in its
//! own transaction: [`record_appended`] for an append batch, [`record`] for anything else.
//! An event commits or rolls back with its change, and leaves the outbox only in the
//! transaction that queues its deliveries. Two nodes fanning out at once both try to delete
//! the same rows: the second waits for the first's row locks, then finds them gone and queues
//! nothing for them.

use std::collections::HashSet;

use chat_domain::message::Seq;
use chat_domain::ports::{OutboxStore, StoreResult};
use chat_domain::webhook::{EventKind, EventRefs, NewDelivery, OutboxEvent};
use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use uuid::Uuid;

use crate::PgStore;
use crate::error::{StorageError, StorageResult};
use crate::schema::{outbox, webhook_deliveries, webhooks};

/// Writes the `message.created` events of the messages with seqs `first..=last`, all
/// inserted by the batch being committed (it holds the `message_seq` lock they were taken
/// under), in the batch's transaction: one statement per batch.
pub(crate) fn record_appended(
    conn: &mut PgConnection,
    first: i64,
    last: i64,
) -> QueryResult<usize> {
    diesel::sql_query(
        "INSERT INTO outbox (kind, conversation_id, message_id, user_id, seq, created_at) \
         SELECT 'message.created', conversation_id, id, sender_id, seq, created_at \
         FROM messages WHERE seq BETWEEN $1 AND $2 ORDER BY seq",
    )
    .bind::<BigInt, _>(first)
    .bind::<BigInt, _>(last)
    .execute(conn)
}

/// Writes one event in the caller's transaction. Public for the writes of other features
/// (a report: `record(conn, EventKind::ReportCreated, &refs, at)` inside the report's insert
/// transaction).
pub fn record(
    conn: &mut PgConnection,
    kind: EventKind,
    refs: &EventRefs,
    at: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::insert_into(outbox::table)
        .values((
            outbox::kind.eq(kind.as_str()),
            outbox::conversation_id.eq(refs.conversation_id.map(Uuid::from)),
            outbox::message_id.eq(refs.message_id.map(Uuid::from)),
            outbox::user_id.eq(refs.user_id.map(Uuid::from)),
            outbox::report_id.eq(refs.report_id),
            outbox::seq.eq(refs.seq.map(|s| s.0)),
            outbox::created_at.eq(at),
        ))
        .execute(conn)
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = outbox, check_for_backend(diesel::pg::Pg))]
struct OutboxRow {
    id: i64,
    kind: String,
    conversation_id: Option<Uuid>,
    message_id: Option<Uuid>,
    user_id: Option<Uuid>,
    report_id: Option<Uuid>,
    seq: Option<i64>,
    created_at: DateTime<Utc>,
}

pub(crate) fn refs(
    conversation_id: Option<Uuid>,
    message_id: Option<Uuid>,
    user_id: Option<Uuid>,
    report_id: Option<Uuid>,
    seq: Option<i64>,
) -> EventRefs {
    EventRefs {
        conversation_id: conversation_id.map(Into::into),
        message_id: message_id.map(Into::into),
        user_id: user_id.map(Into::into),
        report_id,
        seq: seq.map(Seq),
    }
}

pub(crate) fn kind(stored: &str) -> StorageResult<EventKind> {
    EventKind::parse(stored).ok_or_else(|| StorageError::corrupt("event kind", stored))
}

impl OutboxStore for PgStore {
    fn pending_events(&self, limit: u32) -> StoreResult<Vec<OutboxEvent>> {
        self.read(|conn| {
            let rows: Vec<OutboxRow> = outbox::table
                .order(outbox::id)
                .limit(i64::from(limit))
                .select(OutboxRow::as_select())
                .load(conn)?;
            rows.into_iter()
                .map(|row| {
                    Ok(OutboxEvent {
                        id: row.id,
                        kind: kind(&row.kind)?,
                        refs: refs(
                            row.conversation_id,
                            row.message_id,
                            row.user_id,
                            row.report_id,
                            row.seq,
                        ),
                        created_at: row.created_at,
                    })
                })
                .collect()
        })
    }

    fn fan_out(
        &self,
        events: &[i64],
        deliveries: &[NewDelivery],
        at: DateTime<Utc>,
    ) -> StoreResult<Vec<i64>> {
        self.write(|conn| {
            let taken: Vec<i64> = diesel::delete(outbox::table.filter(outbox::id.eq_any(events)))
                .returning(outbox::id)
                .get_results(conn)?;
            let endpoints: Vec<Uuid> = webhooks::table
                .order(webhooks::created_at)
                .select(webhooks::id)
                .load(conn)?;
            let taken_set: HashSet<i64> = taken.iter().copied().collect();
            let rows: Vec<_> = deliveries
                .iter()
                .filter(|d| taken_set.contains(&d.source))
                .flat_map(|d| endpoints.iter().map(move |&w| delivery_row(w, d, at)))
                .collect();
            // PostgreSQL takes at most 65535 parameters per statement; a row has eleven.
            for chunk in rows.chunks(4096) {
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
    webhook_id: Uuid,
    event_id: Uuid,
    kind: &'static str,
    conversation_id: Option<Uuid>,
    message_id: Option<Uuid>,
    user_id: Option<Uuid>,
    report_id: Option<Uuid>,
    seq: Option<i64>,
    count: i32,
    created_at: DateTime<Utc>,
    next_attempt_at: Option<DateTime<Utc>>,
}

fn delivery_row(webhook: Uuid, d: &NewDelivery, at: DateTime<Utc>) -> NewDeliveryRow {
    NewDeliveryRow {
        webhook_id: webhook,
        event_id: d.event_id,
        kind: d.kind.as_str(),
        conversation_id: d.refs.conversation_id.map(Uuid::from),
        message_id: d.refs.message_id.map(Uuid::from),
        user_id: d.refs.user_id.map(Uuid::from),
        report_id: d.refs.report_id,
        seq: d.refs.seq.map(|s| s.0),
        count: i32::try_from(d.count).unwrap_or(i32::MAX),
        created_at: d.created_at,
        next_attempt_at: Some(at),
    }
}
