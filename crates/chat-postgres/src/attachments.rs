//! [`AttachmentStore`] over the `attachments` and `blobs` tables, and the parts of the
//! message writes and reads that concern attachments: checking and attaching uploads inside
//! an append batch, dropping them with a delete for everyone, and loading a page's
//! attachments with one query.
//!
//! Across nodes: a batch locks the unattached uploads it names (`FOR UPDATE`, in id order)
//! before it checks them, so two appends on two nodes cannot both attach one upload, and the
//! sweep's delete of an unattached upload waits for (and then skips) one being attached. The
//! quota's sum and insert are one step per uploader: the insert locks the uploader's row
//! first (`FOR NO KEY UPDATE`, which foreign-key checks do not wait for).

use std::collections::{HashMap, HashSet};

use chat_domain::attachment::{Attachment, BlobKey, FileName, Thumbnail};
use chat_domain::message::{Message, NewMessage};
use chat_domain::ports::{AttachmentStore, StoreResult};
use chat_domain::{AttachmentId, ConversationId, MessageId, StoreError, UserId};
use chrono::{DateTime, Utc};
use diesel::dsl::{exists, not, sql};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable};
use uuid::Uuid;

use crate::PgStore;
use crate::error::{StorageError, StorageResult};
use crate::schema::{attachments, blobs, users};

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = attachments, check_for_backend(diesel::pg::Pg))]
struct AttachmentRow {
    id: Uuid,
    uploader_id: Uuid,
    blob_key: String,
    name: String,
    size: i64,
    content_type: String,
    width: Option<i32>,
    height: Option<i32>,
    thumbnail_key: Option<String>,
    thumbnail_type: Option<String>,
    thumbnail_size: Option<i64>,
    created_at: DateTime<Utc>,
    message_id: Option<Uuid>,
    conversation_id: Option<Uuid>,
    position: i32,
}

fn key(raw: &str) -> StorageResult<BlobKey> {
    BlobKey::parse(raw).ok_or_else(|| StorageError::corrupt("blob key", raw))
}

impl TryFrom<AttachmentRow> for Attachment {
    type Error = StorageError;

    fn try_from(row: AttachmentRow) -> StorageResult<Self> {
        let thumbnail = match (row.thumbnail_key, row.thumbnail_type, row.thumbnail_size) {
            (Some(k), Some(content_type), Some(size)) => Some(Thumbnail {
                key: key(&k)?,
                content_type,
                size: size as u64,
            }),
            _ => None,
        };
        Ok(Attachment {
            id: row.id.into(),
            uploader_id: row.uploader_id.into(),
            name: FileName::parse(&row.name),
            size: row.size as u64,
            content_type: row.content_type,
            blob_key: key(&row.blob_key)?,
            width: row.width.map(|w| w as u32),
            height: row.height.map(|h| h as u32),
            thumbnail,
            created_at: row.created_at,
            message_id: row.message_id.map(MessageId::from),
            conversation_id: row.conversation_id.map(ConversationId::from),
        })
    }
}

impl From<&Attachment> for AttachmentRow {
    fn from(a: &Attachment) -> Self {
        Self {
            id: a.id.into(),
            uploader_id: a.uploader_id.into(),
            blob_key: a.blob_key.to_string(),
            name: a.name.as_str().to_owned(),
            size: a.size as i64,
            content_type: a.content_type.clone(),
            width: a.width.map(|w| w as i32),
            height: a.height.map(|h| h as i32),
            thumbnail_key: a.thumbnail.as_ref().map(|t| t.key.to_string()),
            thumbnail_type: a.thumbnail.as_ref().map(|t| t.content_type.clone()),
            thumbnail_size: a.thumbnail.as_ref().map(|t| t.size as i64),
            created_at: a.created_at,
            message_id: a.message_id.map(Uuid::from),
            conversation_id: a.conversation_id.map(Uuid::from),
            position: 0,
        }
    }
}

/// The messages with their attachments, one query for all of them.
pub(crate) fn with_attachments(
    conn: &mut PgConnection,
    mut page: Vec<Message>,
) -> StorageResult<Vec<Message>> {
    if page.is_empty() {
        return Ok(page);
    }
    let ids: Vec<Uuid> = page.iter().map(|m| m.id.into()).collect();
    let rows: Vec<AttachmentRow> = attachments::table
        .filter(attachments::message_id.eq_any(&ids))
        .order((attachments::message_id, attachments::position))
        .select(AttachmentRow::as_select())
        .load(conn)?;
    if rows.is_empty() {
        return Ok(page);
    }
    let mut by_message: HashMap<Uuid, Vec<Attachment>> = HashMap::new();
    for row in rows {
        let message = row.message_id.unwrap_or_default();
        by_message
            .entry(message)
            .or_default()
            .push(Attachment::try_from(row)?);
    }
    for (message, key) in page.iter_mut().zip(&ids) {
        if let Some(attached) = by_message.remove(key) {
            message.attachments = attached;
        }
    }
    Ok(page)
}

/// The unattached uploads a batch names, locked until it commits, with their uploaders; and
/// those already claimed by an earlier message of the batch.
pub(crate) struct Uploads {
    uploader: HashMap<Uuid, Uuid>,
    claimed: HashSet<Uuid>,
}

impl Uploads {
    /// One query, and none for a batch without files.
    pub(crate) fn of(conn: &mut PgConnection, batch: &[&NewMessage]) -> StorageResult<Self> {
        let mut ids: Vec<Uuid> = batch
            .iter()
            .flat_map(|m| m.attachment_ids.iter().map(|&id| Uuid::from(id)))
            .collect();
        let mut uploader = HashMap::new();
        if !ids.is_empty() {
            ids.sort_unstable();
            ids.dedup();
            let rows: Vec<(Uuid, Uuid)> = attachments::table
                .filter(attachments::id.eq_any(&ids))
                .filter(attachments::message_id.is_null())
                .order(attachments::id)
                .select((attachments::id, attachments::uploader_id))
                .for_update()
                .load(conn)?;
            uploader.extend(rows);
        }
        Ok(Self {
            uploader,
            claimed: HashSet::new(),
        })
    }

    /// [`StoreError::Attachments`] unless every upload `new` names is its sender's, not
    /// attached, and not claimed by an earlier message of the batch; else claims them.
    pub(crate) fn claim(&mut self, new: &NewMessage) -> Result<(), StoreError> {
        let sender = Uuid::from(new.sender_id);
        let ids: Vec<Uuid> = new.attachment_ids.iter().map(|&id| id.into()).collect();
        let ok = ids
            .iter()
            .all(|id| self.uploader.get(id) == Some(&sender) && !self.claimed.contains(id));
        if !ok {
            return Err(StoreError::Attachments);
        }
        self.claimed.extend(ids);
        Ok(())
    }
}

/// Inside an append, once the message is inserted: attaches the uploads it claimed, in
/// order, and returns them as attached.
pub(crate) fn attach(
    conn: &mut PgConnection,
    message: MessageId,
    conversation: ConversationId,
    ids: &[AttachmentId],
) -> StorageResult<Vec<Attachment>> {
    let mut attached = Vec::with_capacity(ids.len());
    for (position, attachment) in ids.iter().enumerate() {
        let row: AttachmentRow = diesel::update(attachments::table.find(Uuid::from(*attachment)))
            .set((
                attachments::message_id.eq(Uuid::from(message)),
                attachments::conversation_id.eq(Uuid::from(conversation)),
                attachments::position.eq(position as i32),
            ))
            .returning(AttachmentRow::as_returning())
            .get_result(conn)?;
        attached.push(Attachment::try_from(row)?);
    }
    Ok(attached)
}

/// Inside a delete for everyone: the message's attachments go (their blobs stay until a
/// sweep finds them unreferenced).
pub(crate) fn drop_for(conn: &mut PgConnection, message: MessageId) -> StorageResult<()> {
    diesel::delete(attachments::table.filter(attachments::message_id.eq(Uuid::from(message))))
        .execute(conn)?;
    Ok(())
}

fn used(conn: &mut PgConnection, user: UserId) -> StorageResult<u64> {
    let used: Option<i64> = attachments::table
        .filter(attachments::uploader_id.eq(Uuid::from(user)))
        .select(sql::<Nullable<BigInt>>("SUM(size)::BIGINT"))
        .first(conn)?;
    Ok(used.unwrap_or(0).max(0) as u64)
}

impl AttachmentStore for PgStore {
    fn touch_blob(&self, key: &BlobKey, size: u64, at: DateTime<Utc>) -> StoreResult<()> {
        self.write(|conn| {
            diesel::insert_into(blobs::table)
                .values((
                    blobs::key.eq(key.as_str()),
                    blobs::size.eq(size as i64),
                    blobs::last_put_at.eq(at),
                ))
                .on_conflict(blobs::key)
                .do_update()
                .set(blobs::last_put_at.eq(at))
                .execute(conn)?;
            Ok(())
        })
    }

    fn insert_upload(&self, attachment: &Attachment, quota_bytes: u64) -> StoreResult<bool> {
        self.write(|conn| {
            // One uploader's inserts take turns, on any node: the sum stays true to the insert.
            users::table
                .find(Uuid::from(attachment.uploader_id))
                .select(users::id)
                .for_no_key_update()
                .first::<Uuid>(conn)
                .optional()?;
            if used(conn, attachment.uploader_id)?.saturating_add(attachment.size) > quota_bytes {
                return Ok(false);
            }
            diesel::insert_into(attachments::table)
                .values(AttachmentRow::from(attachment))
                .execute(conn)?;
            Ok(true)
        })
    }

    fn find_upload(&self, id: AttachmentId) -> StoreResult<Option<Attachment>> {
        self.read(|conn| {
            attachments::table
                .find(Uuid::from(id))
                .select(AttachmentRow::as_select())
                .first(conn)
                .optional()?
                .map(Attachment::try_from)
                .transpose()
        })
    }

    fn used_bytes(&self, user: UserId) -> StoreResult<u64> {
        self.read(|conn| used(conn, user))
    }

    fn remove_unattached(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        self.write(|conn| {
            let removed = diesel::delete(
                attachments::table
                    .filter(attachments::message_id.is_null())
                    .filter(attachments::created_at.lt(before)),
            )
            .execute(conn)?;
            Ok(removed as u64)
        })
    }

    fn take_unreferenced_blobs(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<BlobKey>> {
        self.write(|conn| {
            let as_file = attachments::table.filter(attachments::blob_key.eq(blobs::key));
            let as_thumbnail =
                attachments::table.filter(attachments::thumbnail_key.eq(blobs::key.nullable()));
            // Locked and skipped when another node's sweep holds them: each blob is taken once.
            let keys: Vec<String> = blobs::table
                .filter(blobs::last_put_at.lt(before))
                .filter(not(exists(as_file)))
                .filter(not(exists(as_thumbnail)))
                .order(blobs::key)
                .limit(i64::from(limit))
                .select(blobs::key)
                .for_update()
                .skip_locked()
                .load(conn)?;
            diesel::delete(blobs::table.filter(blobs::key.eq_any(&keys))).execute(conn)?;
            keys.iter().map(|k| key(k)).collect()
        })
    }
}
