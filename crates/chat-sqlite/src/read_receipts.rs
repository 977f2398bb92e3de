//! [`ReadReceiptStore`]: read markers live on the membership row.

use chat_domain::message::Seq;
use chat_domain::ports::{ReadReceiptStore, StoreResult};
use chat_domain::read_state::{Delivered, Delivery, MarkerSet, ReadMarker};
use chat_domain::{ConversationId, StoreError, UserId};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use crate::SqliteStore;
use crate::models::{MemberRow, id, ts};
use crate::schema::{conversation_members, hidden_messages, messages, thread_participants};
use crate::seq;
use diesel::dsl::{exists, not};

#[derive(QueryableByName)]
struct UnreadRow {
    #[diesel(sql_type = Text)]
    conversation_id: String,
    #[diesel(sql_type = BigInt)]
    unread_count: i64,
}

/// Unread messages per conversation of one user: a range scan of the (conversation_id, seq)
/// index past each of the user's markers. Tombstones and messages the user hid are no unread
/// messages, nor thread replies in threads the user does not follow; the hidden and the
/// participant checks are a primary-key probe per unread message.
pub(crate) const UNREAD_COUNTS_SQL: &str = "SELECT cm.conversation_id, \
       (SELECT COUNT(*) FROM messages m \
         WHERE m.conversation_id = cm.conversation_id AND m.seq > cm.last_read_seq \
           AND m.sender_id <> cm.user_id AND m.deleted_at IS NULL \
           AND (m.thread_root_id IS NULL OR EXISTS (SELECT 1 FROM thread_participants tp \
                 WHERE tp.root_id = m.thread_root_id AND tp.user_id = cm.user_id)) \
           AND NOT EXISTS (SELECT 1 FROM hidden_messages h \
                            WHERE h.user_id = cm.user_id AND h.message_id = m.id)) \
       AS unread_count \
     FROM conversation_members cm WHERE cm.user_id = ?";

impl ReadReceiptStore for SqliteStore {
    fn deliver(&self, deliveries: &[Delivery]) -> StoreResult<Vec<Delivered>> {
        let deliveries = Delivery::highest_per_member(deliveries);
        if deliveries.is_empty() {
            return Ok(Vec::new());
        }
        self.write(|conn| {
            let mut moved = Vec::new();
            for d in deliveries {
                let (conversation_key, user_key) =
                    (d.conversation_id.to_string(), d.user_id.to_string());
                let key = (&conversation_key, &user_key);
                // Forward only, and only past the read marker: reading is receiving.
                let moves = diesel::update(conversation_members::table.find(key))
                    .filter(conversation_members::last_delivered_seq.lt(d.seq.0))
                    .filter(conversation_members::last_read_seq.lt(d.seq.0))
                    .set(conversation_members::last_delivered_seq.eq(d.seq.0))
                    .execute(conn)?;
                if moves == 0 {
                    continue;
                }
                let change = seq::take(conn)?;
                diesel::update(conversation_members::table.find(key))
                    .set(conversation_members::delivered_seq.eq(change.0))
                    .execute(conn)?;
                moved.push(Delivered {
                    conversation_id: d.conversation_id,
                    user_id: d.user_id,
                    last_delivered_seq: d.seq,
                    seq: change,
                });
            }
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
        let (conversation_key, user_key) = (conversation.to_string(), user.to_string());
        let key = (&conversation_key, &user_key);
        let row = self.write(|conn| {
            let moved = diesel::update(conversation_members::table.find(key))
                .filter(conversation_members::last_read_seq.lt(seq.0))
                .set((
                    conversation_members::last_read_seq.eq(seq.0),
                    conversation_members::read_at.eq(ts(at)),
                ))
                .execute(conn)?;
            // Only a move takes a position: a repeated or older receipt costs no write.
            if moved > 0 {
                let change = seq::take(conn)?;
                diesel::update(conversation_members::table.find(key))
                    .set(conversation_members::marker_seq.eq(change.0))
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
            read_at: row.read_at().unwrap_or(at),
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
        let (conversation_key, user_key) = (conversation.to_string(), user.to_string());
        let key = (&conversation_key, &user_key);
        let set = self.write(|conn| {
            let Some(previous) = conversation_members::table
                .find(key)
                .select(conversation_members::last_read_seq)
                .first::<i64>(conn)
                .optional()?
            else {
                return Ok(None);
            };
            // The newest message at or below `seq`: a range scan of (conversation_id, seq).
            let onto: Option<(i64, String)> = messages::table
                .filter(messages::conversation_id.eq(&conversation_key))
                .filter(messages::seq.le(seq.0))
                .order(messages::seq.desc())
                .select((messages::seq, messages::id))
                .first(conn)
                .optional()?;
            let last_read_seq = onto.as_ref().map_or(0, |(seq, _)| *seq);
            let change = seq::take(conn)?;
            diesel::update(conversation_members::table.find(key))
                .set((
                    conversation_members::last_read_seq.eq(last_read_seq),
                    conversation_members::read_at.eq(ts(at)),
                    conversation_members::marker_seq.eq(change.0),
                ))
                .execute(conn)?;
            // Thread replies count only in the threads the user follows.
            let follows = thread_participants::table
                .filter(
                    thread_participants::root_id
                        .nullable()
                        .eq(messages::thread_root_id),
                )
                .filter(thread_participants::user_id.eq(&user_key));
            if last_read_seq < previous {
                // Marking unread takes nothing back from delivery: what was read was
                // received, so the delivered marker keeps up with where reading stood.
                let raised = diesel::update(conversation_members::table.find(key))
                    .filter(conversation_members::last_delivered_seq.lt(previous))
                    .set(conversation_members::last_delivered_seq.eq(previous))
                    .execute(conn)?;
                if raised > 0 {
                    let delivered = seq::take(conn)?;
                    diesel::update(conversation_members::table.find(key))
                        .set(conversation_members::delivered_seq.eq(delivered.0))
                        .execute(conn)?;
                }
            }
            let unread: i64 = messages::table
                .filter(messages::conversation_id.eq(&conversation_key))
                .filter(messages::seq.gt(last_read_seq))
                .filter(messages::sender_id.ne(&user_key))
                .filter(messages::thread_root_id.is_null().or(exists(follows)))
                // As every unread count counts: no tombstone, nothing the user hid.
                .filter(messages::deleted_at.is_null())
                .filter(not(exists(
                    hidden_messages::table
                        .filter(hidden_messages::user_id.eq(&user_key))
                        .filter(hidden_messages::message_id.eq(messages::id)),
                )))
                .count()
                .get_result(conn)?;
            let unread_mentions =
                crate::mentions::unread_in(conn, &conversation_key, &user_key, last_read_seq)?;
            let message_id = onto.map(|(_, raw)| id("message id", &raw)).transpose()?;
            Ok(Some(MarkerSet {
                marker: ReadMarker {
                    conversation_id: conversation,
                    user_id: user,
                    last_read_seq: Seq(last_read_seq),
                    read_at: at,
                    seq: Some(change),
                },
                message_id,
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
        self.counts(crate::mentions::UNREAD_MENTIONS_SQL, user)
    }
}

impl SqliteStore {
    /// The non-zero counts of a query that counts, per conversation of `user`, in
    /// `unread_count`.
    fn counts(&self, query: &'static str, user: UserId) -> StoreResult<Vec<(ConversationId, u64)>> {
        self.read(|conn| {
            let rows: Vec<UnreadRow> = diesel::sql_query(query)
                .bind::<Text, _>(user.to_string())
                .load(conn)?;
            rows.into_iter()
                .filter(|r| r.unread_count > 0)
                .map(|r| {
                    Ok((
                        id("conversation id", &r.conversation_id)?,
                        r.unread_count as u64,
                    ))
                })
                .collect()
        })
    }
}
