//! [`ReadReceiptStore`]: read markers live on the membership row.

use std::collections::HashMap;

use chat_domain::message::Seq;
use chat_domain::ports::{ReadReceiptStore, StoreResult};
use chat_domain::read_state::{Delivered, Delivery, MarkerSet, ReadMarker};
use chat_domain::{ConversationId, StoreError, UserId};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Uuid as SqlUuid};
use uuid::Uuid;

use crate::PgStore;
use crate::models::MemberRow;
use crate::schema::{conversation_members, hidden_messages, messages, thread_participants};
use crate::seq;
use diesel::dsl::{exists, not};

#[derive(QueryableByName)]
struct UnreadRow {
    #[diesel(sql_type = SqlUuid)]
    conversation_id: Uuid,
    #[diesel(sql_type = BigInt)]
    unread_count: i64,
}

/// Unread messages per conversation of one user: a range scan of the (conversation_id, seq)
/// index past each of the user's markers. Tombstones and messages the user hid are no unread
/// messages; the hidden check is a primary-key probe per unread message.
const UNREAD_COUNTS_SQL: &str = "SELECT cm.conversation_id, \
       (SELECT COUNT(*) FROM messages m \
         WHERE m.conversation_id = cm.conversation_id AND m.seq > cm.last_read_seq \
           AND m.sender_id <> cm.user_id AND m.deleted_at IS NULL \
           AND (m.thread_root_id IS NULL OR EXISTS (SELECT 1 FROM thread_participants tp \
                 WHERE tp.root_id = m.thread_root_id AND tp.user_id = cm.user_id)) \
           AND NOT EXISTS (SELECT 1 FROM hidden_messages h \
                            WHERE h.user_id = cm.user_id AND h.message_id = m.id)) \
       AS unread_count \
     FROM conversation_members cm WHERE cm.user_id = $1";

/// Moves the delivered markers of a batch, each to its seq at its position, where that is
/// still past both markers; returns those it moved.
const DELIVER_SQL: &str = "UPDATE conversation_members cm \
        SET last_delivered_seq = v.seq, delivered_seq = v.position \
       FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::bigint[]) AS v(c, u, seq, position) \
      WHERE cm.conversation_id = v.c AND cm.user_id = v.u \
        AND cm.last_delivered_seq < v.seq AND cm.last_read_seq < v.seq \
  RETURNING cm.conversation_id, cm.user_id, cm.last_delivered_seq, cm.delivered_seq";

#[derive(QueryableByName)]
struct MovedRow {
    #[diesel(sql_type = SqlUuid)]
    conversation_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    user_id: Uuid,
    #[diesel(sql_type = BigInt)]
    last_delivered_seq: i64,
    #[diesel(sql_type = BigInt)]
    delivered_seq: i64,
}

impl ReadReceiptStore for PgStore {
    fn deliver(&self, deliveries: &[Delivery]) -> StoreResult<Vec<Delivered>> {
        let deliveries = Delivery::highest_per_member(deliveries);
        if deliveries.is_empty() {
            return Ok(Vec::new());
        }
        self.write(|conn| {
            // Reading is receiving: a delivery moves a marker only past both. Which would
            // move is read first, without a lock, so that the counter (taken next, before any
            // membership row, as appends take them: no deadlock) is held only for one
            // statement and the commit, not for a round trip per member: a flush runs
            // beside the appends, which wait for the same counter.
            let conversations: Vec<Uuid> = deliveries
                .iter()
                .map(|d| d.conversation_id.into())
                .collect();
            let users: Vec<Uuid> = deliveries.iter().map(|d| d.user_id.into()).collect();
            let current: HashMap<(Uuid, Uuid), i64> = conversation_members::table
                .filter(conversation_members::conversation_id.eq_any(&conversations))
                .filter(conversation_members::user_id.eq_any(&users))
                .select((
                    conversation_members::conversation_id,
                    conversation_members::user_id,
                    conversation_members::last_delivered_seq,
                    conversation_members::last_read_seq,
                ))
                .load::<(Uuid, Uuid, i64, i64)>(conn)?
                .into_iter()
                .map(|(c, u, delivered, read)| ((c, u), delivered.max(read)))
                .collect();
            let moving: Vec<&Delivery> = deliveries
                .iter()
                .filter(|d| {
                    current
                        .get(&(d.conversation_id.into(), d.user_id.into()))
                        .is_some_and(|&shown| shown < d.seq.0)
                })
                .collect();
            if moving.is_empty() {
                return Ok(Vec::new());
            }
            let last = seq::take_many(conn, moving.len())?;
            let first = last.0 - moving.len() as i64 + 1;
            // Each moving marker its own position, in the order of the batch. A row is
            // re-checked under its lock: a move that lost to a further one meanwhile leaves
            // its seq a gap (as `advance` does) and is not reported.
            let moved: Vec<MovedRow> = diesel::sql_query(DELIVER_SQL)
                .bind::<Array<SqlUuid>, _>(
                    moving
                        .iter()
                        .map(|d| Uuid::from(d.conversation_id))
                        .collect::<Vec<_>>(),
                )
                .bind::<Array<SqlUuid>, _>(
                    moving
                        .iter()
                        .map(|d| Uuid::from(d.user_id))
                        .collect::<Vec<_>>(),
                )
                .bind::<Array<BigInt>, _>(moving.iter().map(|d| d.seq.0).collect::<Vec<_>>())
                .bind::<Array<BigInt>, _>((first..=last.0).collect::<Vec<_>>())
                .load(conn)?;
            let mut moved: Vec<Delivered> = moved
                .into_iter()
                .map(|row| Delivered {
                    conversation_id: row.conversation_id.into(),
                    user_id: row.user_id.into(),
                    last_delivered_seq: Seq(row.last_delivered_seq),
                    seq: Seq(row.delivered_seq),
                })
                .collect();
            moved.sort_by_key(|d| d.seq);
            Ok(moved)
        })
    }

    fn advance(
        &self,
        conversation: ConversationId,
        user: UserId,
        seq: Seq,
        at: DateTime<Utc>,
    ) -> StoreResult<ReadMarker> {
        let key = (Uuid::from(conversation), Uuid::from(user));
        let row = self.write(|conn| {
            // A marker already there takes no seq and writes nothing.
            let current: Option<i64> = conversation_members::table
                .find(key)
                .select(conversation_members::last_read_seq)
                .first(conn)
                .optional()?;
            if current.is_some_and(|current| current < seq.0) {
                // The counter before the membership row, as appends take them (an append
                // moves its sender's marker): no deadlock. Only forward: the row is
                // re-checked under its lock, so of two nodes moving one marker at once the
                // further move wins (the nearer one's seq stays a gap).
                let change = seq::take(conn)?;
                diesel::update(conversation_members::table.find(key))
                    .filter(conversation_members::last_read_seq.lt(seq.0))
                    .set((
                        conversation_members::last_read_seq.eq(seq.0),
                        conversation_members::read_at.eq(at),
                        conversation_members::marker_seq.eq(change.0),
                    ))
                    .execute(conn)?;
            }
            Ok(conversation_members::table
                .find(key)
                .select((MemberRow::as_select(), conversation_members::marker_seq))
                .first(conn)
                .optional()?)
        })?;
        let (row, marker_seq): (MemberRow, Option<i64>) = row.ok_or(StoreError::Missing)?;
        Ok(ReadMarker {
            conversation_id: conversation,
            user_id: user,
            last_read_seq: Seq(row.last_read_seq),
            read_at: row.read_at.unwrap_or(at),
            seq: marker_seq.map(Seq),
        })
    }

    fn set_marker(
        &self,
        conversation: ConversationId,
        user: UserId,
        seq: Seq,
        at: DateTime<Utc>,
    ) -> StoreResult<MarkerSet> {
        let key = (Uuid::from(conversation), Uuid::from(user));
        let set = self.write(|conn| {
            // The newest message at or below `seq`: a range scan of (conversation_id, seq).
            let onto: Option<(i64, Uuid)> = messages::table
                .filter(messages::conversation_id.eq(key.0))
                .filter(messages::seq.le(seq.0))
                .order(messages::seq.desc())
                .select((messages::seq, messages::id))
                .first(conn)
                .optional()?;
            let last_read_seq = onto.map_or(0, |(seq, _)| seq);
            // Thread replies count only in the threads the user follows.
            let follows = thread_participants::table
                .filter(
                    thread_participants::root_id
                        .nullable()
                        .eq(messages::thread_root_id),
                )
                .filter(thread_participants::user_id.eq(key.1));
            let unread: i64 = messages::table
                .filter(messages::conversation_id.eq(key.0))
                .filter(messages::seq.gt(last_read_seq))
                .filter(messages::sender_id.ne(key.1))
                .filter(messages::thread_root_id.is_null().or(exists(follows)))
                // As every unread count counts: no tombstone, nothing the user hid.
                .filter(messages::deleted_at.is_null())
                .filter(not(exists(
                    hidden_messages::table
                        .filter(hidden_messages::user_id.eq(key.1))
                        .filter(hidden_messages::message_id.eq(messages::id)),
                )))
                .count()
                .get_result(conn)?;
            let unread_mentions = crate::mentions::unread_in(conn, key.0, key.1, last_read_seq)?;
            // The counter before the membership row, as appends take them: no deadlock.
            let change = seq::take(conn)?;
            let current: Option<(i64, i64)> = conversation_members::table
                .find(key)
                .select((
                    conversation_members::last_read_seq,
                    conversation_members::last_delivered_seq,
                ))
                .for_update()
                .first(conn)
                .optional()?;
            let Some((previous, delivered)) = current else {
                return Ok(None);
            };
            diesel::update(conversation_members::table.find(key))
                .set((
                    conversation_members::last_read_seq.eq(last_read_seq),
                    conversation_members::read_at.eq(at),
                    conversation_members::marker_seq.eq(change.0),
                ))
                .execute(conn)?;
            if last_read_seq < previous && delivered < previous {
                // Marking unread takes nothing back from delivery: what was read was
                // received, so the delivered marker keeps up with where reading stood. The
                // counter is this transaction's already.
                let raised = seq::take(conn)?;
                diesel::update(conversation_members::table.find(key))
                    .set((
                        conversation_members::last_delivered_seq.eq(previous),
                        conversation_members::delivered_seq.eq(raised.0),
                    ))
                    .execute(conn)?;
            }
            Ok(Some(MarkerSet {
                marker: ReadMarker {
                    conversation_id: conversation,
                    user_id: user,
                    last_read_seq: Seq(last_read_seq),
                    read_at: at,
                    seq: Some(change),
                },
                message_id: onto.map(|(_, id)| id.into()),
                previous: Seq(previous),
                unread_count: u64::try_from(unread).unwrap_or(0),
                unread_mentions,
            }))
        })?;
        set.ok_or(StoreError::Missing)
    }

    fn unread_counts(&self, user: UserId) -> StoreResult<Vec<(ConversationId, u64)>> {
        self.counts(UNREAD_COUNTS_SQL, user)
    }

    fn unread_mentions(&self, user: UserId) -> StoreResult<Vec<(ConversationId, u64)>> {
        self.counts(&UNREAD_MENTIONS_SQL, user)
    }
}

/// Unread mentions per conversation of one user (see
/// [`crate::mentions::UNREAD_MENTIONS_OF_MEMBER_SQL`]).
static UNREAD_MENTIONS_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT cm.conversation_id, {} AS unread_count \
         FROM conversation_members cm WHERE cm.user_id = $1",
        crate::mentions::UNREAD_MENTIONS_OF_MEMBER_SQL
    )
});

impl PgStore {
    /// The non-zero counts of a query that counts, per conversation of `user`, in
    /// `unread_count`.
    fn counts(&self, query: &str, user: UserId) -> StoreResult<Vec<(ConversationId, u64)>> {
        self.read(|conn| {
            let rows: Vec<UnreadRow> = diesel::sql_query(query)
                .bind::<SqlUuid, _>(Uuid::from(user))
                .load(conn)?;
            Ok(rows
                .into_iter()
                .filter(|r| r.unread_count > 0)
                .map(|r| (r.conversation_id.into(), r.unread_count as u64))
                .collect())
        })
    }
}
