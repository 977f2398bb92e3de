//! [`AttachmentStore`] over the `attachments` and `blobs` tables, and the parts of the
//! message writes and reads that concern attachments: checking and attaching uploads inside
//! an append, dropping them with a delete for everyone, and loading a page's attachments
//! with one query (none for a page of messages without any is not possible to know in
//! advance, so a page costs one indexed lookup).

use std::collections::HashMap;

use chat_domain::attachment::{Attachment, BlobKey, FileName, Thumbnail};
use chat_domain::message::Message;
use chat_domain::ports::{AttachmentStore, StoreResult};
use chat_domain::{AttachmentId, ConversationId, MessageId, StoreError, UserId};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::dsl::{exists, not, sql};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable};
use diesel::sqlite::SqliteConnection;

use crate::SqliteStore;
use crate::error::{StorageError, StorageResult};
use crate::models::{id, ts, utc};
use crate::schema::{attachments, blobs};

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = attachments, check_for_backend(diesel::sqlite::Sqlite))]
struct AttachmentRow {
    id: String,
    uploader_id: String,
    blob_key: String,
    name: String,
    size: i64,
    content_type: String,
    width: Option<i32>,
    height: Option<i32>,
    thumbnail_key: Option<String>,
    thumbnail_type: Option<String>,
    thumbnail_size: Option<i64>,
    created_at: NaiveDateTime,
    message_id: Option<String>,
    conversation_id: Option<String>,
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
            id: id("attachment id", &row.id)?,
            uploader_id: id("user id", &row.uploader_id)?,
            name: FileName::parse(&row.name),
            size: row.size as u64,
            content_type: row.content_type,
            blob_key: key(&row.blob_key)?,
            width: row.width.map(|w| w as u32),
            height: row.height.map(|h| h as u32),
            thumbnail,
            created_at: utc(row.created_at),
            message_id: row
                .message_id
                .as_deref()
                .map(|raw| id("message id", raw))
                .transpose()?,
            conversation_id: row
                .conversation_id
                .as_deref()
                .map(|raw| id("conversation id", raw))
                .transpose()?,
        })
    }
}

impl From<&Attachment> for AttachmentRow {
    fn from(a: &Attachment) -> Self {
        Self {
            id: a.id.to_string(),
            uploader_id: a.uploader_id.to_string(),
            blob_key: a.blob_key.to_string(),
            name: a.name.as_str().to_owned(),
            size: a.size as i64,
            content_type: a.content_type.clone(),
            width: a.width.map(|w| w as i32),
            height: a.height.map(|h| h as i32),
            thumbnail_key: a.thumbnail.as_ref().map(|t| t.key.to_string()),
            thumbnail_type: a.thumbnail.as_ref().map(|t| t.content_type.clone()),
            thumbnail_size: a.thumbnail.as_ref().map(|t| t.size as i64),
            created_at: ts(a.created_at),
            message_id: a.message_id.map(|m| m.to_string()),
            conversation_id: a.conversation_id.map(|c| c.to_string()),
            position: 0,
        }
    }
}

/// The messages with their attachments, one query for all of them.
pub(crate) fn with_attachments(
    conn: &mut SqliteConnection,
    mut page: Vec<Message>,
) -> StorageResult<Vec<Message>> {
    if page.is_empty() {
        return Ok(page);
    }
    let ids: Vec<String> = page.iter().map(|m| m.id.to_string()).collect();
    let rows: Vec<AttachmentRow> = attachments::table
        .filter(attachments::message_id.eq_any(&ids))
        .order((attachments::message_id, attachments::position))
        .select(AttachmentRow::as_select())
        .load(conn)?;
    if rows.is_empty() {
        return Ok(page);
    }
    let mut by_message: HashMap<String, Vec<Attachment>> = HashMap::new();
    for row in rows {
        let message = row.message_id.clone().unwrap_or_default();
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

/// Inside an append: [`StoreError::Attachments`] unless every id is an upload of `sender`'s
/// not attached yet. Called only for a message that names attachments.
pub(crate) fn check(
    conn: &mut SqliteConnection,
    sender: UserId,
    ids: &[AttachmentId],
) -> StorageResult<Result<(), StoreError>> {
    let raw: Vec<String> = ids.iter().map(ToString::to_string).collect();
    let attachable: i64 = attachments::table
        .filter(attachments::id.eq_any(&raw))
        .filter(attachments::uploader_id.eq(sender.to_string()))
        .filter(attachments::message_id.is_null())
        .count()
        .get_result(conn)?;
    Ok(if attachable as usize == ids.len() {
        Ok(())
    } else {
        Err(StoreError::Attachments)
    })
}

/// Inside an append, after [`check`]: attaches the uploads to the new message, in order, and
/// returns them as attached.
pub(crate) fn attach(
    conn: &mut SqliteConnection,
    message: MessageId,
    conversation: ConversationId,
    ids: &[AttachmentId],
) -> StorageResult<Vec<Attachment>> {
    let mut attached = Vec::with_capacity(ids.len());
    for (position, attachment) in ids.iter().enumerate() {
        let row: AttachmentRow = diesel::update(attachments::table.find(attachment.to_string()))
            .set((
                attachments::message_id.eq(message.to_string()),
                attachments::conversation_id.eq(conversation.to_string()),
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
pub(crate) fn drop_for(conn: &mut SqliteConnection, message: MessageId) -> StorageResult<()> {
    diesel::delete(attachments::table.filter(attachments::message_id.eq(message.to_string())))
        .execute(conn)?;
    Ok(())
}

fn used(conn: &mut SqliteConnection, user: UserId) -> StorageResult<u64> {
    let used: Option<i64> = attachments::table
        .filter(attachments::uploader_id.eq(user.to_string()))
        .select(sql::<Nullable<BigInt>>("SUM(size)"))
        .first(conn)?;
    Ok(used.unwrap_or(0).max(0) as u64)
}

impl AttachmentStore for SqliteStore {
    fn touch_blob(&self, key: &BlobKey, size: u64, at: DateTime<Utc>) -> StoreResult<()> {
        self.write(|conn| {
            diesel::insert_into(blobs::table)
                .values((
                    blobs::key.eq(key.as_str()),
                    blobs::size.eq(size as i64),
                    blobs::last_put_at.eq(ts(at)),
                ))
                .on_conflict(blobs::key)
                .do_update()
                .set(blobs::last_put_at.eq(ts(at)))
                .execute(conn)?;
            Ok(())
        })
    }

    fn insert_upload(&self, attachment: &Attachment, quota_bytes: u64) -> StoreResult<bool> {
        // The one writer makes the sum and the insert one step.
        self.write(|conn| {
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
                .find(id.to_string())
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
                    .filter(attachments::created_at.lt(ts(before))),
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
            let keys: Vec<String> = blobs::table
                .filter(blobs::last_put_at.lt(ts(before)))
                .filter(not(exists(as_file)))
                .filter(not(exists(as_thumbnail)))
                .order(blobs::key)
                .limit(i64::from(limit))
                .select(blobs::key)
                .load(conn)?;
            diesel::delete(blobs::table.filter(blobs::key.eq_any(&keys))).execute(conn)?;
            keys.iter().map(|k| key(k)).collect()
        })
    }
}
