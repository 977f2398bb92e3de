//! [`ConversationStore`] over the `conversations` and `conversation_members` tables.

use chat_domain::conversation::{
    Conversation, ConversationKind, ConversationName, InboxEntry, InboxFilter, Member,
    NewConversation, Role,
};
use chat_domain::message::Seq;
use chat_domain::paging::Page;
use chat_domain::ports::{ConversationStore, StoreResult};
use chat_domain::read_state::{MemberSettings, SettingsChanged, SettingsUpdate};
use chat_domain::webhook::{EventKind, EventRefs};
use chat_domain::{ConversationId, StoreError, UserId};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Nullable, Text, Timestamp};
use diesel::sqlite::SqliteConnection;

use crate::SqliteStore;
use crate::error::StorageResult;
use crate::mentions::INBOX_UNREAD_MENTIONS_SQL;
use crate::models::{ConversationRow, MemberRow, MessageRow, convert, id, ts, utc};
use crate::schema::{conversation_members, conversations, departures, messages};
use crate::seq;

/// The key that makes a direct conversation unique per pair, whichever of the two started it.
fn direct_key(a: UserId, b: UserId) -> String {
    let (low, high) = if a <= b { (a, b) } else { (b, a) };
    format!("{low}:{high}")
}

#[derive(QueryableByName)]
struct InboxRow {
    #[diesel(embed)]
    conversation: ConversationRow,
    #[diesel(sql_type = BigInt)]
    unread_count: i64,
    #[diesel(sql_type = BigInt)]
    unread_mentions: i64,
    #[diesel(sql_type = Nullable<Timestamp>)]
    muted_until: Option<NaiveDateTime>,
    #[diesel(sql_type = Bool)]
    is_archived: bool,
}

/// Whether the member `cm` has `c` archived at the bound time: archived, and either no
/// message newer than the archiving or muted then ([`MemberSettings::still_archived`]).
const STILL_ARCHIVED_SQL: &str = "(cm.archived_seq IS NOT NULL \
     AND (COALESCE(c.last_message_seq, 0) <= cm.archived_seq \
          OR (cm.muted_until IS NOT NULL AND cm.muted_until > ?)))";

/// A member's settings as stored, and the newest message of the conversation.
type StoredSettings = (Option<NaiveDateTime>, Option<i64>, Option<i64>);

fn stored_settings(
    conn: &mut SqliteConnection,
    id: &str,
    user: &str,
) -> StorageResult<Option<StoredSettings>> {
    Ok(conversation_members::table
        .inner_join(conversations::table)
        .filter(conversation_members::conversation_id.eq(id))
        .filter(conversation_members::user_id.eq(user))
        .select((
            conversation_members::muted_until,
            conversation_members::archived_seq,
            conversations::last_message_seq,
        ))
        .first(conn)
        .optional()?)
}

fn settings_at(
    (muted_until, archived_seq, last_seq): StoredSettings,
    now: DateTime<Utc>,
) -> MemberSettings {
    let muted_until = muted_until.map(utc);
    MemberSettings {
        archived: MemberSettings::still_archived(
            archived_seq.map(Seq),
            Seq(last_seq.unwrap_or(0)),
            muted_until,
            now,
        ),
        muted_until,
    }
}

/// The columns a settings update writes; `None` leaves a column as it is.
#[derive(AsChangeset)]
#[diesel(table_name = conversation_members)]
struct SettingsChangeset {
    settings_seq: i64,
    muted_until: Option<Option<NaiveDateTime>>,
    archived: Option<bool>,
    archived_seq: Option<Option<i64>>,
}

impl ConversationStore for SqliteStore {
    fn create(&self, new: &NewConversation) -> StoreResult<Seq> {
        let c = &new.conversation;
        let key = match (c.kind, new.members.as_slice()) {
            (ConversationKind::Direct, [(a, _), (b, _)]) => Some(direct_key(*a, *b)),
            (ConversationKind::Direct, _) => {
                return Err(StoreError::Unavailable(
                    "a direct conversation needs exactly two members".into(),
                ));
            }
            (ConversationKind::Group, _) => None,
        };
        let members: Vec<MemberRow> = new
            .members
            .iter()
            .map(|(user, role)| MemberRow {
                conversation_id: c.id.to_string(),
                user_id: user.to_string(),
                role: role.as_str().to_owned(),
                joined_at: ts(c.created_at),
                last_read_seq: 0,
                last_delivered_seq: 0,
                read_at: None,
            })
            .collect();
        self.write(|conn| {
            let seq = crate::seq::take(conn)?;
            diesel::insert_into(conversations::table)
                .values(&ConversationRow::new(c, key, seq))
                .execute(conn)?;
            for chunk in members.chunks(100) {
                diesel::insert_into(conversation_members::table)
                    .values(chunk)
                    .execute(conn)?;
            }
            let refs = change_refs(c.id, Some(c.created_by), seq);
            crate::outbox::record(conn, EventKind::ConversationCreated, &refs, c.created_at)?;
            Ok(seq)
        })
    }

    fn find(&self, id: ConversationId) -> StoreResult<Option<Conversation>> {
        self.read(|conn| {
            conversations::table
                .find(id.to_string())
                .select(ConversationRow::as_select())
                .first(conn)
                .optional()?
                .map(Conversation::try_from)
                .transpose()
        })
    }

    fn find_direct(&self, a: UserId, b: UserId) -> StoreResult<Option<Conversation>> {
        self.read(|conn| {
            conversations::table
                .filter(conversations::direct_key.eq(direct_key(a, b)))
                .select(ConversationRow::as_select())
                .first(conn)
                .optional()?
                .map(Conversation::try_from)
                .transpose()
        })
    }

    fn members_of(&self, ids: &[ConversationId]) -> StoreResult<Vec<Vec<Member>>> {
        let keys: Vec<String> = ids.iter().map(ToString::to_string).collect();
        // Where each conversation's members go; an id asked for twice gets them twice.
        let mut slots: std::collections::HashMap<&str, Vec<usize>> = Default::default();
        for (i, key) in keys.iter().enumerate() {
            slots.entry(key.as_str()).or_default().push(i);
        }
        let unique: Vec<&str> = slots.keys().copied().collect();
        self.read(|conn| {
            let mut rows: Vec<MemberRow> = Vec::new();
            // SQLite caps bound parameters per statement; stay well below it.
            for chunk in unique.chunks(500) {
                rows.extend(
                    conversation_members::table
                        .filter(conversation_members::conversation_id.eq_any(chunk))
                        .order(conversation_members::joined_at.asc())
                        .select(MemberRow::as_select())
                        .load(conn)?,
                );
            }
            let mut grouped: Vec<Vec<Member>> = vec![Vec::new(); ids.len()];
            for row in rows {
                if let Some(indexes) = slots.get(row.conversation_id.as_str()) {
                    let member = Member::try_from(row)?;
                    for &index in indexes {
                        grouped[index].push(member.clone());
                    }
                }
            }
            Ok(grouped)
        })
    }

    fn members(&self, id: ConversationId) -> StoreResult<Vec<Member>> {
        self.read(|conn| {
            convert(
                conversation_members::table
                    .filter(conversation_members::conversation_id.eq(id.to_string()))
                    .order(conversation_members::joined_at.asc())
                    .select(MemberRow::as_select())
                    .load(conn)?,
            )
        })
    }

    fn membership(&self, id: ConversationId, user: UserId) -> StoreResult<Option<Member>> {
        self.read(|conn| {
            conversation_members::table
                .find((id.to_string(), user.to_string()))
                .select(MemberRow::as_select())
                .first(conn)
                .optional()?
                .map(Member::try_from)
                .transpose()
        })
    }

    fn with_role(&self, user: UserId, role: Role) -> StoreResult<Vec<ConversationId>> {
        self.read(|conn| {
            let ids: Vec<String> = conversation_members::table
                .filter(conversation_members::user_id.eq(user.to_string()))
                .filter(conversation_members::role.eq(role.as_str()))
                .select(conversation_members::conversation_id)
                .load(conn)?;
            ids.iter()
                .map(|raw| crate::models::id("conversation id", raw))
                .collect()
        })
    }

    fn inbox(&self, user: UserId, page: Page, filter: InboxFilter) -> StoreResult<Vec<InboxEntry>> {
        let wanted = match filter.archived {
            None => "",
            Some(true) => "AND is_archived ",
            Some(false) => "AND NOT is_archived ",
        };
        let now = ts(filter.now);
        self.read(|conn| {
            // One row per membership of the user; each unread count is a range scan of the
            // (conversation_id, seq) index past the user's marker, so the cost follows the
            // user's conversations and unread messages, not the messages stored.
            let rows: Vec<InboxRow> = diesel::sql_query(format!(
                "SELECT * FROM (SELECT c.*, \
                   (SELECT COUNT(*) FROM messages m \
                     WHERE m.conversation_id = c.id AND m.seq > cm.last_read_seq \
                       AND m.sender_id <> cm.user_id AND m.deleted_at IS NULL \
                       AND (m.thread_root_id IS NULL OR EXISTS (SELECT 1 FROM thread_participants tp \
                             WHERE tp.root_id = m.thread_root_id AND tp.user_id = cm.user_id)) \
                       AND NOT EXISTS (SELECT 1 FROM hidden_messages h \
                                        WHERE h.user_id = cm.user_id \
                                          AND h.message_id = m.id)) AS unread_count, \
                   {INBOX_UNREAD_MENTIONS_SQL} AS unread_mentions, \
                   cm.muted_until AS muted_until, \
                   {STILL_ARCHIVED_SQL} AS is_archived \
                 FROM conversation_members cm \
                 JOIN conversations c ON c.id = cm.conversation_id \
                 WHERE cm.user_id = ?) \
                 WHERE 1 {wanted}\
                 ORDER BY last_activity_at DESC, id DESC \
                 LIMIT ? OFFSET ?",
            ))
            .bind::<Timestamp, _>(now)
            .bind::<Text, _>(user.to_string())
            .bind::<BigInt, _>(i64::from(page.limit))
            .bind::<BigInt, _>(i64::from(page.offset))
            .load(conn)?;

            let last_seqs: Vec<i64> = rows
                .iter()
                .filter_map(|r| r.conversation.last_message_seq)
                .collect();
            let last_messages = messages::table
                .filter(messages::seq.eq_any(&last_seqs))
                .select(MessageRow::as_select())
                .load(conn)?;
            let mut last_messages = crate::replies::complete(conn, last_messages)?;
            rows.into_iter()
                .map(|row| {
                    let last_seq = row.conversation.last_message_seq;
                    let last_activity_at = row.conversation.last_activity_at.and_utc();
                    let last_message = last_seq.and_then(|seq| {
                        let at = last_messages.iter().position(|m| m.seq.0 == seq)?;
                        Some(last_messages.swap_remove(at))
                    });
                    Ok(InboxEntry {
                        conversation: Conversation::try_from(row.conversation)?,
                        last_message,
                        unread_count: u64::try_from(row.unread_count).unwrap_or(0),
                        unread_mentions: u64::try_from(row.unread_mentions).unwrap_or(0),
                        last_activity_at,
                        settings: MemberSettings {
                            muted_until: row.muted_until.map(utc),
                            archived: row.is_archived,
                        },
                    })
                })
                .collect::<StorageResult<Vec<_>>>()
        })
    }

    fn rename(
        &self,
        id: ConversationId,
        name: &ConversationName,
        at: DateTime<Utc>,
    ) -> StoreResult<(Conversation, Seq)> {
        self.write(|conn| {
            if !exists(conn, id)? {
                return Ok(None);
            }
            let seq = crate::seq::take(conn)?;
            let row = diesel::update(conversations::table.find(id.to_string()))
                .set((
                    conversations::name.eq(name.as_str()),
                    conversations::updated_at.eq(ts(at)),
                    conversations::change_seq.eq(seq.0),
                ))
                .returning(ConversationRow::as_returning())
                .get_result(conn)?;
            let refs = change_refs(id, None, seq);
            crate::outbox::record(conn, EventKind::ConversationRenamed, &refs, at)?;
            Ok(Some((Conversation::try_from(row)?, seq)))
        })?
        .ok_or(StoreError::Missing)
    }

    fn add_members(
        &self,
        id: ConversationId,
        users: &[UserId],
        role: Role,
        max_members: usize,
        at: DateTime<Utc>,
    ) -> StoreResult<(Vec<UserId>, Option<Seq>)> {
        let conversation_id = id.to_string();
        self.write_membership(|conn| {
            let current: Vec<String> = conversation_members::table
                .filter(conversation_members::conversation_id.eq(&conversation_id))
                .select(conversation_members::user_id)
                .load(conn)?;
            let added: Vec<UserId> = users
                .iter()
                .copied()
                .filter(|u| !current.contains(&u.to_string()))
                .collect();
            if current.len() + added.len() > max_members {
                return Ok(Err(StoreError::Conflict { field: "members" }));
            }
            let rows: Vec<MemberRow> = added
                .iter()
                .map(|user| MemberRow {
                    conversation_id: conversation_id.clone(),
                    user_id: user.to_string(),
                    role: role.as_str().to_owned(),
                    joined_at: ts(at),
                    last_read_seq: 0,
                    last_delivered_seq: 0,
                    read_at: None,
                })
                .collect();
            if added.is_empty() {
                return Ok(Ok((added, None)));
            }
            for chunk in rows.chunks(100) {
                diesel::insert_into(conversation_members::table)
                    .values(chunk)
                    .execute(conn)?;
            }
            let keys: Vec<String> = added.iter().map(ToString::to_string).collect();
            diesel::delete(
                departures::table
                    .filter(departures::conversation_id.eq(&conversation_id))
                    .filter(departures::user_id.eq_any(&keys)),
            )
            .execute(conn)?;
            let seq = crate::seq::take(conn)?;
            diesel::update(conversations::table.find(&conversation_id))
                .set((
                    conversations::updated_at.eq(ts(at)),
                    conversations::change_seq.eq(seq.0),
                ))
                .execute(conn)?;
            for user in &added {
                let refs = change_refs(id, Some(*user), seq);
                crate::outbox::record(conn, EventKind::MemberAdded, &refs, at)?;
            }
            Ok(Ok((added, Some(seq))))
        })?
    }

    fn remove_member(
        &self,
        id: ConversationId,
        user: UserId,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<Seq>> {
        self.write_membership(|conn| {
            let removed = diesel::delete(
                conversation_members::table.find((id.to_string(), user.to_string())),
            )
            .execute(conn)?;
            if removed == 0 {
                return Ok(None);
            }
            let seq = crate::seq::take(conn)?;
            diesel::update(conversations::table.find(id.to_string()))
                .set((
                    conversations::updated_at.eq(ts(at)),
                    conversations::change_seq.eq(seq.0),
                ))
                .execute(conn)?;
            // A departure keeps the latest removal: re-adding deletes it, removing again
            // moves it.
            diesel::replace_into(departures::table)
                .values((
                    departures::conversation_id.eq(id.to_string()),
                    departures::user_id.eq(user.to_string()),
                    departures::seq.eq(seq.0),
                    departures::departed_at.eq(ts(at)),
                ))
                .execute(conn)?;
            let refs = change_refs(id, Some(user), seq);
            crate::outbox::record(conn, EventKind::MemberRemoved, &refs, at)?;
            Ok(Some(seq))
        })
    }

    fn set_role(&self, id: ConversationId, user: UserId, role: Role) -> StoreResult<Seq> {
        self.write_membership(|conn| {
            let updated = diesel::update(
                conversation_members::table.find((id.to_string(), user.to_string())),
            )
            .set(conversation_members::role.eq(role.as_str()))
            .execute(conn)?;
            if updated == 0 {
                return Ok(None);
            }
            let seq = crate::seq::take(conn)?;
            diesel::update(conversations::table.find(id.to_string()))
                .set(conversations::change_seq.eq(seq.0))
                .execute(conn)?;
            Ok(Some(seq))
        })?
        .ok_or(StoreError::Missing)
    }

    fn settings(
        &self,
        id: ConversationId,
        user: UserId,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<MemberSettings>> {
        let stored = self.read(|conn| stored_settings(conn, &id.to_string(), &user.to_string()))?;
        Ok(stored.map(|stored| settings_at(stored, now)))
    }

    fn update_settings(
        &self,
        id: ConversationId,
        user: UserId,
        update: &SettingsUpdate,
        at: DateTime<Utc>,
    ) -> StoreResult<SettingsChanged> {
        let (conversation_key, user_key) = (id.to_string(), user.to_string());
        let changed = self.write(|conn| {
            let key = (&conversation_key, &user_key);
            let exists = conversation_members::table
                .find(key)
                .select(conversation_members::user_id)
                .first::<String>(conn)
                .optional()?
                .is_some();
            if !exists {
                return Ok(None);
            }
            let change = seq::take(conn)?;
            diesel::update(conversation_members::table.find(key))
                .set(SettingsChangeset {
                    settings_seq: change.0,
                    muted_until: update.muted_until.map(|until| until.map(ts)),
                    archived: update.archived,
                    archived_seq: update.archived.map(|archived| archived.then_some(change.0)),
                })
                .execute(conn)?;
            let stored = stored_settings(conn, &conversation_key, &user_key)?;
            Ok(stored.map(|stored| (stored, change)))
        })?;
        let (stored, seq) = changed.ok_or(StoreError::Missing)?;
        Ok(SettingsChanged {
            conversation_id: id,
            user_id: user,
            settings: settings_at(stored, at),
            seq,
        })
    }

    fn muted(&self, user: UserId, now: DateTime<Utc>) -> StoreResult<Vec<ConversationId>> {
        self.read(|conn| {
            let ids: Vec<String> = conversation_members::table
                .filter(conversation_members::user_id.eq(user.to_string()))
                .filter(conversation_members::muted_until.gt(ts(now)))
                .select(conversation_members::conversation_id)
                .load(conn)?;
            ids.iter().map(|raw| id("conversation id", raw)).collect()
        })
    }
}

/// Whether the conversation exists, so a write to a missing one takes no seq.
fn exists(conn: &mut SqliteConnection, id: ConversationId) -> StorageResult<bool> {
    Ok(diesel::select(diesel::dsl::exists(
        conversations::table.find(id.to_string()),
    ))
    .get_result(conn)?)
}

/// What a change to a conversation's membership or name announces (see [`crate::outbox`]).
fn change_refs(conversation: ConversationId, user: Option<UserId>, seq: Seq) -> EventRefs {
    EventRefs {
        conversation_id: Some(conversation),
        user_id: user,
        seq: Some(seq),
        ..EventRefs::default()
    }
}
