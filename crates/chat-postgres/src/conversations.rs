//! [`ConversationStore`] over the `conversations` and `conversation_members` tables.
//!
//! Every write that changes who belongs to a conversation (or their role) first locks the
//! conversation's row. Appends lock the same rows before they read the members, so on every
//! node an append sees a membership change either whole or not at all, and a sender removed
//! before an append commits is refused, as with SQLite's single writer. The lock also makes
//! the member limit of [`ConversationStore::add_members`] hold against other nodes.

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
use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Nullable, Timestamptz, Uuid as SqlUuid};
use uuid::Uuid;

use crate::PgStore;
use crate::error::StorageResult;
use crate::mentions::UNREAD_MENTIONS_OF_MEMBER_SQL;
use crate::models::{ConversationRow, MemberRow, MessageRow, convert};
use crate::schema::{conversation_members, conversations, departures, messages};
use crate::seq;

/// The key that makes a direct conversation unique per pair, whichever of the two started it.
fn direct_key(a: UserId, b: UserId) -> String {
    let (low, high) = if a <= b { (a, b) } else { (b, a) };
    format!("{low}:{high}")
}

/// Locks the conversation's row until the transaction ends; see the module's doc.
fn lock_conversation(conn: &mut PgConnection, id: Uuid) -> StorageResult<()> {
    conversations::table
        .find(id)
        .select(conversations::id)
        .for_no_key_update()
        .load::<Uuid>(conn)?;
    Ok(())
}

#[derive(QueryableByName)]
struct InboxRow {
    #[diesel(embed)]
    conversation: ConversationRow,
    #[diesel(sql_type = BigInt)]
    unread_count: i64,
    #[diesel(sql_type = BigInt)]
    unread_mentions: i64,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    muted_until: Option<DateTime<Utc>>,
    #[diesel(sql_type = Bool)]
    is_archived: bool,
}

/// Whether the member `cm` has `c` archived at `$2`: archived, and either no message newer
/// than the archiving or muted then ([`MemberSettings::still_archived`]).
const STILL_ARCHIVED_SQL: &str = "(cm.archived_seq IS NOT NULL \
     AND (COALESCE(c.last_message_seq, 0) <= cm.archived_seq \
          OR (cm.muted_until IS NOT NULL AND cm.muted_until > $2)))";

/// A member's settings as stored, and the newest message of the conversation.
type StoredSettings = (Option<DateTime<Utc>>, Option<i64>, Option<i64>);

fn stored_settings(
    conn: &mut PgConnection,
    id: Uuid,
    user: Uuid,
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
    muted_until: Option<Option<DateTime<Utc>>>,
    archived: Option<bool>,
    archived_seq: Option<Option<i64>>,
}

impl ConversationStore for PgStore {
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
            .map(|(user, role)| {
                MemberRow::joining(c.id.into(), (*user).into(), *role, c.created_at)
            })
            .collect();
        self.write(|conn| {
            // The insert first: a refused second direct conversation takes no seq, and the
            // counter's lock is held for as short a time as can be.
            diesel::insert_into(conversations::table)
                .values(&ConversationRow::new(c, key, Seq::ZERO))
                .execute(conn)?;
            // PostgreSQL takes at most 65535 parameters per statement; a member row has six.
            for chunk in members.chunks(1000) {
                diesel::insert_into(conversation_members::table)
                    .values(chunk)
                    .execute(conn)?;
            }
            let seq = crate::seq::take(conn)?;
            diesel::update(conversations::table.find(Uuid::from(c.id)))
                .set(conversations::change_seq.eq(seq.0))
                .execute(conn)?;
            let refs = change_refs(c.id, Some(c.created_by), seq);
            crate::outbox::record(conn, EventKind::ConversationCreated, &refs, c.created_at)?;
            Ok(seq)
        })
    }

    fn find(&self, id: ConversationId) -> StoreResult<Option<Conversation>> {
        self.read(|conn| {
            conversations::table
                .find(Uuid::from(id))
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
        let keys = crate::models::uuids(ids);
        self.read(|conn| members_of(conn, &keys))
    }

    fn members(&self, id: ConversationId) -> StoreResult<Vec<Member>> {
        self.read(|conn| {
            convert(
                conversation_members::table
                    .filter(conversation_members::conversation_id.eq(Uuid::from(id)))
                    .order((
                        conversation_members::joined_at.asc(),
                        conversation_members::user_id.asc(),
                    ))
                    .select(MemberRow::as_select())
                    .load(conn)?,
            )
        })
    }

    fn membership(&self, id: ConversationId, user: UserId) -> StoreResult<Option<Member>> {
        self.read(|conn| {
            conversation_members::table
                .find((Uuid::from(id), Uuid::from(user)))
                .select(MemberRow::as_select())
                .first(conn)
                .optional()?
                .map(Member::try_from)
                .transpose()
        })
    }

    fn with_role(&self, user: UserId, role: Role) -> StoreResult<Vec<ConversationId>> {
        self.read(|conn| {
            let ids: Vec<Uuid> = conversation_members::table
                .filter(conversation_members::user_id.eq(Uuid::from(user)))
                .filter(conversation_members::role.eq(role.as_str()))
                .select(conversation_members::conversation_id)
                .load(conn)?;
            Ok(ids.into_iter().map(ConversationId::from).collect())
        })
    }

    fn inbox(&self, user: UserId, page: Page, filter: InboxFilter) -> StoreResult<Vec<InboxEntry>> {
        let wanted = match filter.archived {
            None => "",
            Some(true) => "WHERE is_archived ",
            Some(false) => "WHERE NOT is_archived ",
        };
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
                   {UNREAD_MENTIONS_OF_MEMBER_SQL} AS unread_mentions, \
                   cm.muted_until AS muted_until, \
                   {STILL_ARCHIVED_SQL} AS is_archived \
                 FROM conversation_members cm \
                 JOIN conversations c ON c.id = cm.conversation_id \
                 WHERE cm.user_id = $1) inbox \
                 {wanted}\
                 ORDER BY last_activity_at DESC, id DESC \
                 LIMIT $3 OFFSET $4",
            ))
            .bind::<SqlUuid, _>(Uuid::from(user))
            .bind::<Timestamptz, _>(filter.now)
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
                    let last_activity_at = row.conversation.last_activity_at;
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
                            muted_until: row.muted_until,
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
            let row = diesel::update(conversations::table.find(Uuid::from(id)))
                .set((
                    conversations::name.eq(name.as_str()),
                    conversations::updated_at.eq(at),
                ))
                .returning(ConversationRow::as_returning())
                .get_result(conn)
                .optional()?;
            let Some(row) = row else { return Ok(None) };
            let seq = take_change(conn, row.id)?;
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
        let conversation_id = Uuid::from(id);
        self.write(|conn| {
            lock_conversation(conn, conversation_id)?;
            let current: Vec<Uuid> = conversation_members::table
                .filter(conversation_members::conversation_id.eq(conversation_id))
                .select(conversation_members::user_id)
                .load(conn)?;
            let added: Vec<UserId> = users
                .iter()
                .copied()
                .filter(|&u| !current.contains(&u.into()))
                .collect();
            if current.len() + added.len() > max_members {
                return Ok(Err(StoreError::Conflict { field: "members" }));
            }
            let rows: Vec<MemberRow> = added
                .iter()
                .map(|&user| MemberRow::joining(conversation_id, user.into(), role, at))
                .collect();
            if added.is_empty() {
                return Ok(Ok((added, None)));
            }
            for chunk in rows.chunks(1000) {
                diesel::insert_into(conversation_members::table)
                    .values(chunk)
                    .execute(conn)?;
            }
            let keys: Vec<Uuid> = added.iter().map(|&u| u.into()).collect();
            diesel::delete(
                departures::table
                    .filter(departures::conversation_id.eq(conversation_id))
                    .filter(departures::user_id.eq_any(&keys)),
            )
            .execute(conn)?;
            diesel::update(conversations::table.find(conversation_id))
                .set(conversations::updated_at.eq(at))
                .execute(conn)?;
            let seq = take_change(conn, conversation_id)?;
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
        self.write(|conn| remove_member(conn, id.into(), user.into(), at))
    }

    fn set_role(&self, id: ConversationId, user: UserId, role: Role) -> StoreResult<Seq> {
        let conversation_id = Uuid::from(id);
        self.write(|conn| {
            lock_conversation(conn, conversation_id)?;
            let updated = diesel::update(
                conversation_members::table.find((conversation_id, Uuid::from(user))),
            )
            .set(conversation_members::role.eq(role.as_str()))
            .execute(conn)?;
            if updated == 0 {
                return Ok(None);
            }
            Ok(Some(take_change(conn, conversation_id)?))
        })?
        .ok_or(StoreError::Missing)
    }

    fn settings(
        &self,
        id: ConversationId,
        user: UserId,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<MemberSettings>> {
        let stored = self.read(|conn| stored_settings(conn, id.into(), user.into()))?;
        Ok(stored.map(|stored| settings_at(stored, now)))
    }

    fn update_settings(
        &self,
        id: ConversationId,
        user: UserId,
        update: &SettingsUpdate,
        at: DateTime<Utc>,
    ) -> StoreResult<SettingsChanged> {
        let key = (Uuid::from(id), Uuid::from(user));
        let changed = self.write(|conn| {
            let exists = conversation_members::table
                .find(key)
                .select(conversation_members::user_id)
                .first::<Uuid>(conn)
                .optional()?
                .is_some();
            if !exists {
                return Ok(None);
            }
            // The counter before the membership row, as appends take them: no deadlock.
            let change = seq::take(conn)?;
            let updated = diesel::update(conversation_members::table.find(key))
                .set(SettingsChangeset {
                    settings_seq: change.0,
                    muted_until: update.muted_until,
                    archived: update.archived,
                    archived_seq: update.archived.map(|archived| archived.then_some(change.0)),
                })
                .execute(conn)?;
            if updated == 0 {
                // Removed in between: the seq stays a gap, which the feed skips.
                return Ok(None);
            }
            let stored = stored_settings(conn, key.0, key.1)?;
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
            let ids: Vec<Uuid> = conversation_members::table
                .filter(conversation_members::user_id.eq(Uuid::from(user)))
                .filter(conversation_members::muted_until.gt(now))
                .select(conversation_members::conversation_id)
                .load(conn)?;
            Ok(ids.into_iter().map(ConversationId::from).collect())
        })
    }
}

/// Takes a seq for a change to the conversation and records it as the conversation's latest.
/// Last in the caller's transaction: the counter's lock is then held only until the commit.
fn take_change(conn: &mut PgConnection, conversation_id: Uuid) -> StorageResult<Seq> {
    let seq = crate::seq::take(conn)?;
    diesel::update(conversations::table.find(conversation_id))
        .set(conversations::change_seq.eq(seq.0))
        .execute(conn)?;
    Ok(seq)
}

/// [`ConversationStore::remove_member`] inside the caller's transaction.
pub(crate) fn remove_member(
    conn: &mut PgConnection,
    conversation_id: Uuid,
    user: Uuid,
    at: DateTime<Utc>,
) -> StorageResult<Option<Seq>> {
    lock_conversation(conn, conversation_id)?;
    let removed =
        diesel::delete(conversation_members::table.find((conversation_id, user))).execute(conn)?;
    if removed == 0 {
        return Ok(None);
    }
    diesel::update(conversations::table.find(conversation_id))
        .set(conversations::updated_at.eq(at))
        .execute(conn)?;
    let seq = take_change(conn, conversation_id)?;
    // A departure keeps the latest removal: re-adding deletes it, removing again moves it.
    diesel::insert_into(departures::table)
        .values((
            departures::conversation_id.eq(conversation_id),
            departures::user_id.eq(user),
            departures::seq.eq(seq.0),
            departures::departed_at.eq(at),
        ))
        .on_conflict((departures::conversation_id, departures::user_id))
        .do_update()
        .set((departures::seq.eq(seq.0), departures::departed_at.eq(at)))
        .execute(conn)?;
    let refs = change_refs(conversation_id.into(), Some(user.into()), seq);
    crate::outbox::record(conn, EventKind::MemberRemoved, &refs, at)?;
    Ok(Some(seq))
}

/// The members of several conversations, one list per key in the order of `keys` (a key
/// given twice gets its members twice), each list in joining order.
pub(crate) fn members_of(
    conn: &mut PgConnection,
    keys: &[Uuid],
) -> StorageResult<Vec<Vec<Member>>> {
    let mut slots: std::collections::HashMap<Uuid, Vec<usize>> = Default::default();
    for (i, &key) in keys.iter().enumerate() {
        slots.entry(key).or_default().push(i);
    }
    let unique: Vec<Uuid> = slots.keys().copied().collect();
    let rows: Vec<MemberRow> = conversation_members::table
        .filter(conversation_members::conversation_id.eq_any(&unique))
        .order((
            conversation_members::joined_at.asc(),
            conversation_members::user_id.asc(),
        ))
        .select(MemberRow::as_select())
        .load(conn)?;
    let mut grouped: Vec<Vec<Member>> = vec![Vec::new(); keys.len()];
    for row in rows {
        if let Some(indexes) = slots.get(&row.conversation_id) {
            let member = Member::try_from(row)?;
            for &index in indexes {
                grouped[index].push(member.clone());
            }
        }
    }
    Ok(grouped)
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
