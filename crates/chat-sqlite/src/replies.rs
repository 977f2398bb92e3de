//! Replies: the `reply_to_id` column of `messages`. A reply stores its original's id only;
//! what it quotes is read from the original whenever the reply is read, one extra query for
//! a page that holds replies and none for a page without. [`complete`] is where every read
//! completes its rows: reactions, quotes and thread summaries.

use std::collections::HashMap;

use chat_domain::message::{Message, ReplyTo};
use chat_domain::{ConversationId, MessageId, StoreError, UserId};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;

use crate::error::StorageResult;
use crate::models::{MessageRow, id};
use crate::schema::messages;

/// Message rows as every read hands them out: converted, with their reactions, their
/// mentions and, for replies, the quote of their original as it now stands.
pub(crate) fn complete(
    conn: &mut SqliteConnection,
    rows: Vec<MessageRow>,
) -> StorageResult<Vec<Message>> {
    let mut replies: Vec<(usize, String)> = Vec::new();
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
    let ids: Vec<&str> = replies.iter().map(|(_, id)| id.as_str()).collect();
    let originals: HashMap<String, ReplyTo> = messages::table
        .filter(messages::id.eq_any(&ids))
        .select((
            messages::id,
            messages::sender_id,
            messages::content,
            messages::deleted_at,
        ))
        .load::<(String, String, String, Option<NaiveDateTime>)>(conn)?
        .into_iter()
        .map(|(raw, sender, content, deleted_at)| {
            let text = deleted_at.is_none().then_some(content.as_str());
            let quoted = ReplyTo::of(id("message id", &raw)?, id("user id", &sender)?, text);
            Ok((raw, quoted))
        })
        .collect::<StorageResult<_>>()?;
    for (index, original) in replies {
        page[index].reply_to =
            Some(Box::new(originals.get(&original).cloned().ok_or_else(
                || crate::error::StorageError::corrupt("reply_to_id", &original),
            )?));
    }
    Ok(page)
}

/// One message row as every read hands it out (see [`complete`]).
pub(crate) fn complete_one(
    conn: &mut SqliteConnection,
    row: Option<MessageRow>,
) -> StorageResult<Option<Message>> {
    Ok(complete(conn, row.into_iter().collect())?.pop())
}

/// What a reply from `conversation` to `original` will quote, read inside the append's
/// transaction: [`StoreError::ReplyTarget`] unless `original` is a message of the same
/// conversation that is not deleted.
pub(crate) fn target(
    conn: &mut SqliteConnection,
    conversation: ConversationId,
    original: MessageId,
) -> StorageResult<Result<ReplyTo, StoreError>> {
    let found: Option<(String, String, String, Option<NaiveDateTime>)> = messages::table
        .filter(messages::id.eq(original.to_string()))
        .select((
            messages::conversation_id,
            messages::sender_id,
            messages::content,
            messages::deleted_at,
        ))
        .first(conn)
        .optional()?;
    Ok(match found {
        Some((in_conversation, sender, content, None))
            if in_conversation == conversation.to_string() =>
        {
            let sender: UserId = id("user id", &sender)?;
            Ok(ReplyTo::of(original, sender, Some(&content)))
        }
        _ => Err(StoreError::ReplyTarget),
    })
}
