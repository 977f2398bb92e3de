//! [`FeedStore`]: a user's change feed, read from the `*_seq` columns each change leaves on
//! the row it changed (see the migration `2026-12-07-000007_message_changes`).
//!
//! Each kind of entry is one indexed query returning at most `limit` rows past the position;
//! the union of those, sorted, cut at `limit`, is the feed's page. The queries run in one
//! read transaction, so the page is one snapshot: a change that commits meanwhile is either
//! wholly in it or wholly after it, never half (which would let a page end past a change it
//! did not hold).

use chat_domain::feed::{FeedEntry, FeedItem, HiddenReply};
use chat_domain::message::Seq;
use chat_domain::ports::{FeedStore, StoreResult};
use chat_domain::read_state::{Delivered, ReadMarker};
use chat_domain::{ConversationId, UserId};
use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Nullable, Text, Timestamp};
use diesel::sqlite::SqliteConnection;

use crate::SqliteStore;
use crate::error::StorageResult;
use crate::models::{ConversationRow, MessageRow, id};
use crate::schema::messages;

/// Where the messages of the user's conversations past the position lie: those sent after it
/// (by the `(conversation_id, seq)` index), and those sent before it but changed after it (by
/// the partial `(conversation_id, change_seq)` index), less those the user hid. Only seqs and
/// positions are sorted; the page's rows are read afterwards by seq, so a catch-up from far
/// back sorts integers, not every message it passes over.
const MESSAGE_POSITIONS_SQL: &str = "SELECT f.seq, f.position FROM ( \
       SELECT m.seq, m.id, COALESCE(m.change_seq, m.seq) AS position \
         FROM conversation_members cm \
         JOIN messages m ON m.conversation_id = cm.conversation_id AND m.seq > ?1 \
        WHERE cm.user_id = ?2 \
       UNION ALL \
       SELECT m.seq, m.id, m.change_seq AS position \
         FROM conversation_members cm \
         JOIN messages m ON m.conversation_id = cm.conversation_id \
                        AND m.change_seq > ?1 AND m.seq <= ?1 \
        WHERE cm.user_id = ?2 \
     ) AS f \
     WHERE NOT EXISTS (SELECT 1 FROM hidden_messages h \
                        WHERE h.user_id = ?2 AND h.message_id = f.id) \
     ORDER BY f.position LIMIT ?3";

/// Every member's read marker in the user's conversations, moved past the position, with
/// the message at it.
const MARKERS_SQL: &str = "SELECT o.conversation_id, o.user_id, o.last_read_seq, o.read_at, \
            o.joined_at, o.marker_seq AS position, \
            (SELECT m.id FROM messages m WHERE m.conversation_id = o.conversation_id \
                AND m.seq = o.last_read_seq) AS message_id \
       FROM conversation_members cm \
       JOIN conversation_members o ON o.conversation_id = cm.conversation_id \
                                  AND o.marker_seq > ?1 \
      WHERE cm.user_id = ?2 \
      ORDER BY o.marker_seq LIMIT ?3";

/// Every other member's delivered marker in the user's conversations, moved past the
/// position (a user's own devices know what they received).
const DELIVERED_SQL: &str = "SELECT o.conversation_id, o.user_id, o.last_delivered_seq, \
            o.delivered_seq AS position \
       FROM conversation_members cm \
       JOIN conversation_members o ON o.conversation_id = cm.conversation_id \
                                  AND o.delivered_seq > ?1 \
      WHERE cm.user_id = ?2 AND o.user_id <> ?2 \
      ORDER BY o.delivered_seq LIMIT ?3";

/// The user's own settings changed past the position, as they now stand: an archive holds
/// only until a newer message arrives, unless the conversation is muted (`?4`: now), as
/// the inbox judges it.
const SETTINGS_SQL: &str = "SELECT cm.conversation_id, cm.settings_seq AS position, \
            cm.muted_until, \
            (cm.archived_seq IS NOT NULL \
             AND (COALESCE(c.last_message_seq, 0) <= cm.archived_seq \
                  OR (cm.muted_until IS NOT NULL AND cm.muted_until > ?4))) AS archived \
       FROM conversation_members cm JOIN conversations c ON c.id = cm.conversation_id \
      WHERE cm.user_id = ?2 AND cm.settings_seq > ?1 \
      ORDER BY cm.settings_seq LIMIT ?3";

const CONVERSATIONS_SQL: &str = "SELECT c.*, c.change_seq AS position \
       FROM conversation_members cm JOIN conversations c ON c.id = cm.conversation_id \
      WHERE cm.user_id = ?2 AND c.change_seq > ?1 \
      ORDER BY c.change_seq LIMIT ?3";

/// The messages the user hid, in conversations they are still in, with what a thread's
/// summary counts of a hidden thread reply.
const HIDDEN_SQL: &str = "SELECT h.conversation_id, h.message_id, h.seq AS position, \
            m.thread_root_id, m.seq AS message_seq, m.sender_id, m.created_at \
       FROM hidden_messages h \
       JOIN messages m ON m.id = h.message_id \
       JOIN conversation_members cm ON cm.conversation_id = h.conversation_id \
                                   AND cm.user_id = h.user_id \
      WHERE h.user_id = ?2 AND h.seq > ?1 ORDER BY h.seq LIMIT ?3";

const DEPARTURES_SQL: &str = "SELECT conversation_id, departed_at, seq AS position \
       FROM departures WHERE user_id = ?2 AND seq > ?1 ORDER BY seq LIMIT ?3";

#[derive(QueryableByName)]
struct MessagePosition {
    #[diesel(sql_type = BigInt)]
    seq: i64,
    #[diesel(sql_type = BigInt)]
    position: i64,
}

#[derive(QueryableByName)]
struct MarkerEntry {
    #[diesel(sql_type = Text)]
    conversation_id: String,
    #[diesel(sql_type = Text)]
    user_id: String,
    #[diesel(sql_type = BigInt)]
    last_read_seq: i64,
    #[diesel(sql_type = Nullable<Timestamp>)]
    read_at: Option<NaiveDateTime>,
    #[diesel(sql_type = Timestamp)]
    joined_at: NaiveDateTime,
    #[diesel(sql_type = Nullable<Text>)]
    message_id: Option<String>,
    #[diesel(sql_type = BigInt)]
    position: i64,
}

#[derive(QueryableByName)]
struct DeliveredEntry {
    #[diesel(sql_type = Text)]
    conversation_id: String,
    #[diesel(sql_type = Text)]
    user_id: String,
    #[diesel(sql_type = BigInt)]
    last_delivered_seq: i64,
    #[diesel(sql_type = BigInt)]
    position: i64,
}

#[derive(QueryableByName)]
struct SettingsEntry {
    #[diesel(sql_type = Text)]
    conversation_id: String,
    #[diesel(sql_type = Nullable<Timestamp>)]
    muted_until: Option<NaiveDateTime>,
    #[diesel(sql_type = Bool)]
    archived: bool,
    #[diesel(sql_type = BigInt)]
    position: i64,
}

#[derive(QueryableByName)]
struct ConversationEntry {
    #[diesel(embed)]
    conversation: ConversationRow,
    #[diesel(sql_type = BigInt)]
    position: i64,
}

#[derive(QueryableByName)]
struct HiddenEntry {
    #[diesel(sql_type = Text)]
    conversation_id: String,
    #[diesel(sql_type = Text)]
    message_id: String,
    #[diesel(sql_type = BigInt)]
    position: i64,
    #[diesel(sql_type = Nullable<Text>)]
    thread_root_id: Option<String>,
    #[diesel(sql_type = BigInt)]
    message_seq: i64,
    #[diesel(sql_type = Text)]
    sender_id: String,
    #[diesel(sql_type = Timestamp)]
    created_at: NaiveDateTime,
}

#[derive(QueryableByName)]
struct DepartureEntry {
    #[diesel(sql_type = Text)]
    conversation_id: String,
    #[diesel(sql_type = Timestamp)]
    departed_at: NaiveDateTime,
    #[diesel(sql_type = BigInt)]
    position: i64,
}

/// Runs one of the feed's queries: `?1` the position, `?2` the user, `?3` the limit.
fn load<T: QueryableByName<diesel::sqlite::Sqlite> + 'static>(
    conn: &mut SqliteConnection,
    sql: &str,
    user: &str,
    since: Seq,
    limit: u32,
) -> StorageResult<Vec<T>> {
    Ok(diesel::sql_query(sql)
        .bind::<BigInt, _>(since.0)
        .bind::<Text, _>(user)
        .bind::<BigInt, _>(i64::from(limit))
        .load(conn)?)
}

fn item(position: i64, entry: FeedEntry) -> FeedItem {
    FeedItem {
        position: Seq(position),
        entry,
    }
}

/// The first `limit` messages of the user's feed past `since`, each with its position, in
/// position order: [`MESSAGE_POSITIONS_SQL`], then the rows it names.
fn messages_past(
    conn: &mut SqliteConnection,
    user: &str,
    since: Seq,
    limit: u32,
) -> StorageResult<Vec<(i64, MessageRow)>> {
    let positions: Vec<MessagePosition> = load(conn, MESSAGE_POSITIONS_SQL, user, since, limit)?;
    let mut rows: HashMap<i64, MessageRow> = messages::table
        .filter(messages::seq.eq_any(positions.iter().map(|p| p.seq)))
        .select(MessageRow::as_select())
        .load(conn)?
        .into_iter()
        .map(|row| (row.seq, row))
        .collect();
    // Read in the same transaction as the positions: every row named is there.
    Ok(positions
        .into_iter()
        .filter_map(|p| rows.remove(&p.seq).map(|row| (p.position, row)))
        .collect())
}

fn read_feed(
    conn: &mut SqliteConnection,
    user: UserId,
    since: Seq,
    limit: u32,
) -> StorageResult<Vec<FeedItem>> {
    let key = user.to_string();
    let mut items = Vec::new();
    // Replayed messages carry their reactions, as every message read does; a message
    // deleted for everyone comes back as its tombstone, as every read shows it.
    let (positions, messages): (Vec<i64>, Vec<MessageRow>) =
        messages_past(conn, &key, since, limit)?.into_iter().unzip();
    let messages = crate::replies::complete(conn, messages)?;
    for (position, message) in positions.into_iter().zip(messages) {
        items.push(item(position, FeedEntry::Message(message)));
    }
    for row in load::<HiddenEntry>(conn, HIDDEN_SQL, &key, since, limit)? {
        let entry = FeedEntry::Hidden {
            conversation_id: id("conversation id", &row.conversation_id)?,
            message_id: id("message id", &row.message_id)?,
            thread_reply: match &row.thread_root_id {
                None => None,
                Some(root) => Some(HiddenReply {
                    thread_root_id: id("message id", root)?,
                    seq: Seq(row.message_seq),
                    sender_id: id("user id", &row.sender_id)?,
                    created_at: row.created_at.and_utc(),
                }),
            },
        };
        items.push(item(row.position, entry));
    }
    for row in load::<MarkerEntry>(conn, MARKERS_SQL, &key, since, limit)? {
        let conversation_id: ConversationId = id("conversation id", &row.conversation_id)?;
        let entry = FeedEntry::Marker {
            marker: ReadMarker {
                conversation_id,
                user_id: id("user id", &row.user_id)?,
                last_read_seq: Seq(row.last_read_seq),
                read_at: row.read_at.unwrap_or(row.joined_at).and_utc(),
                seq: Some(Seq(row.position)),
            },
            message_id: row
                .message_id
                .as_deref()
                .map(|m| id("message id", m))
                .transpose()?,
        };
        items.push(item(row.position, entry));
    }
    for row in load::<DeliveredEntry>(conn, DELIVERED_SQL, &key, since, limit)? {
        let entry = FeedEntry::Delivered(Delivered {
            conversation_id: id("conversation id", &row.conversation_id)?,
            user_id: id("user id", &row.user_id)?,
            last_delivered_seq: Seq(row.last_delivered_seq),
            seq: Seq(row.position),
        });
        items.push(item(row.position, entry));
    }
    let settings: Vec<SettingsEntry> = diesel::sql_query(SETTINGS_SQL)
        .bind::<BigInt, _>(since.0)
        .bind::<Text, _>(&key)
        .bind::<BigInt, _>(i64::from(limit))
        .bind::<Timestamp, _>(chrono::Utc::now().naive_utc())
        .load(conn)?;
    for row in settings {
        let entry = FeedEntry::Settings {
            conversation_id: id("conversation id", &row.conversation_id)?,
            muted_until: row.muted_until.map(|at| at.and_utc()),
            archived: row.archived,
        };
        items.push(item(row.position, entry));
    }
    for row in load::<ConversationEntry>(conn, CONVERSATIONS_SQL, &key, since, limit)? {
        let entry = FeedEntry::Conversation(row.conversation.try_into()?);
        items.push(item(row.position, entry));
    }
    for row in load::<DepartureEntry>(conn, DEPARTURES_SQL, &key, since, limit)? {
        let entry = FeedEntry::Departure {
            conversation_id: id("conversation id", &row.conversation_id)?,
            departed_at: row.departed_at.and_utc(),
        };
        items.push(item(row.position, entry));
    }
    items.sort_by_key(|item| item.position);
    items.truncate(limit as usize);
    Ok(items)
}

impl FeedStore for SqliteStore {
    fn feed(&self, user: UserId, since: Seq, limit: u32) -> StoreResult<Vec<FeedItem>> {
        self.read(|conn| conn.transaction(|conn| read_feed(conn, user, since, limit)))
    }
}
