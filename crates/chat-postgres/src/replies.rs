//! Replies: the `reply_to_id` column of `messages`. A reply stores its original's id only;
//! what it quotes is read from the original whenever the reply is read, one extra query for
//! a page that holds replies and none for a page without.

use std::collections::HashMap;

use chat_domain::message::{Message, NewMessage, ReplyTo};
use chat_domain::{ConversationId, MessageId, StoreError};
use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use uuid::Uuid;

use crate::error::{StorageError, StorageResult};
use crate::models::MessageRow;
use crate::schema::messages;

type OriginalRow = (Uuid, Uuid, Uuid, String, Option<DateTime<Utc>>);

/// The originals `ids` name, each with its conversation and what a reply quotes of it.
fn originals(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> StorageResult<HashMap<Uuid, (ConversationId, ReplyTo)>> {
    let rows: Vec<OriginalRow> = messages::table
        .filter(messages::id.eq_any(ids))
        .select((
            messages::id,
            messages::conversation_id,
            messages::sender_id,
            messages::content,
            messages::deleted_at,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, conversation, sender, content, deleted_at)| {
            let text = deleted_at.is_none().then_some(content.as_str());
            let quoted = ReplyTo::of(id.into(), sender.into(), text);
            (id, (conversation.into(), quoted))
        })
        .collect())
}

/// Message rows as every read hands them out: converted, with their reactions, their
/// mentions and, for replies, the quote of their original as it now stands.
pub(crate) fn complete(
    conn: &mut PgConnection,
    rows: Vec<MessageRow>,
) -> StorageResult<Vec<Message>> {
    let mut replies: Vec<(usize, Uuid)> = Vec::new();
    let mut page = Vec::with_capacity(rows.len());
    for (index, mut row) in rows.into_iter().enumerate() {
        if let Some(original) = row.reply_to_id.take() {
            replies.push((index, original));
        }
        page.push(Message::try_from(row)?);
    }
    let page = crate::reactions::with_reactions(conn, page)?;
    let page = crate::mentions::with_mentions(conn, page)?;
    let mut page = crate::attachments::with_attachments(conn, page)?;
    crate::threads::summarize(conn, &mut page)?;
    if replies.is_empty() {
        return Ok(page);
    }
    let ids: Vec<Uuid> = replies.iter().map(|(_, id)| *id).collect();
    let originals = originals(conn, &ids)?;
    for (index, original) in replies {
        let (_, quoted) = originals
            .get(&original)
            .ok_or_else(|| StorageError::corrupt("reply_to_id", original))?;
        page[index].reply_to = Some(Box::new(quoted.clone()));
    }
    Ok(page)
}

/// One message row as every read hands it out (see [`complete`]).
pub(crate) fn complete_one(
    conn: &mut PgConnection,
    row: Option<MessageRow>,
) -> StorageResult<Option<Message>> {
    Ok(complete(conn, row.into_iter().collect())?.pop())
}

/// The originals a batch of appends replies to, read in one query inside the append's
/// transaction (under its conversations' locks); no query for a batch without replies.
pub(crate) struct Targets(HashMap<Uuid, (ConversationId, ReplyTo)>);

impl Targets {
    pub(crate) fn of(conn: &mut PgConnection, batch: &[&NewMessage]) -> StorageResult<Self> {
        let ids: Vec<Uuid> = batch
            .iter()
            .filter_map(|m| m.reply_to_id.map(Uuid::from))
            .collect();
        if ids.is_empty() {
            return Ok(Self(HashMap::new()));
        }
        Ok(Self(originals(conn, &ids)?))
    }

    /// What `new` quotes: nothing if it replies to nothing, [`StoreError::ReplyTarget`]
    /// unless its original is a message of the same conversation that is not deleted.
    pub(crate) fn quote(&self, new: &NewMessage) -> Result<Option<ReplyTo>, StoreError> {
        let Some(original) = new.reply_to_id else {
            return Ok(None);
        };
        match self.0.get(&Uuid::from(original)) {
            Some((conversation, quoted))
                if *conversation == new.conversation_id && quoted.snippet.is_some() =>
            {
                Ok(Some(quoted.clone()))
            }
            _ => Err(StoreError::ReplyTarget),
        }
    }
}

/// The id of the message `new` replies to, as stored.
pub(crate) fn stored_id(new: &NewMessage) -> Option<Uuid> {
    new.reply_to_id.map(|id: MessageId| id.into())
}
