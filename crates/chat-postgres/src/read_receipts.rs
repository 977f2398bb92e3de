//! [`ReadReceiptStore`]: read markers live on the membership row.

use chat_domain::message::Seq;
use chat_domain::ports::{ReadReceiptStore, StoreResult};
use chat_domain::read_state::ReadMarker;
use chat_domain::{ConversationId, StoreError, UserId};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Uuid as SqlUuid};
use uuid::Uuid;

use crate::PgStore;
use crate::models::MemberRow;
use crate::schema::conversation_members;

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
           AND NOT EXISTS (SELECT 1 FROM hidden_messages h \
                            WHERE h.user_id = cm.user_id AND h.message_id = m.id)) \
       AS unread_count \
     FROM conversation_members cm WHERE cm.user_id = $1";

impl ReadReceiptStore for PgStore {
    fn advance(
        &self,
        conversation: ConversationId,
        user: UserId,
        seq: Seq,
        at: DateTime<Utc>,
    ) -> StoreResult<ReadMarker> {
        let key = (Uuid::from(conversation), Uuid::from(user));
        let row = self.write(|conn| {
            // Only forward: the row is re-checked under its lock, so of two nodes moving one
            // marker at once the further move wins.
            diesel::update(conversation_members::table.find(key))
                .filter(conversation_members::last_read_seq.lt(seq.0))
                .set((
                    conversation_members::last_read_seq.eq(seq.0),
                    conversation_members::read_at.eq(at),
                ))
                .execute(conn)?;
            Ok(conversation_members::table
                .find(key)
                .select(MemberRow::as_select())
                .first(conn)
                .optional()?)
        })?;
        let row = row.ok_or(StoreError::Missing)?;
        Ok(ReadMarker {
            conversation_id: conversation,
            user_id: user,
            last_read_seq: Seq(row.last_read_seq),
            read_at: row.read_at.unwrap_or(at),
        })
    }

    fn unread_counts(&self, user: UserId) -> StoreResult<Vec<(ConversationId, u64)>> {
        self.read(|conn| {
            let rows: Vec<UnreadRow> = diesel::sql_query(UNREAD_COUNTS_SQL)
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
