//! Searching the messages a user may see.

use std::collections::HashMap;
use std::sync::Arc;

use crate::conversation::ConversationKind;
use crate::message::{MessageView, Seq};
use crate::ports::{ConversationStore, SearchStore};
use crate::search::{
    MessageSearch, SearchCursor, SearchFilters, SearchOrder, SearchQuery, Snippet,
};
use crate::validation::{FieldError, Validator};
use crate::{ConversationId, DomainError, Resource, UserId};

use super::{Ports, view_message};

/// A search as a client asks for it, unparsed.
#[derive(Debug, Clone, Default)]
pub struct SearchRequest {
    pub q: Option<String>,
    pub conversation_id: Option<ConversationId>,
    pub sender_id: Option<UserId>,
    /// Only messages with a seq below this.
    pub before: Option<i64>,
    /// Only messages with a seq above this.
    pub after: Option<i64>,
    /// `relevance` (the default) or `recent`.
    pub sort: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

/// One message a search found, from the viewer's side, with its snippet.
#[derive(Debug, Clone)]
pub struct SearchResult {
    pub message: MessageView,
    pub snippet: Snippet,
}

/// A page of a search: the hits, and the cursor of the next page when there may be one.
#[derive(Debug, Clone)]
pub struct SearchPage {
    pub hits: Vec<SearchResult>,
    pub next_cursor: Option<String>,
}

#[derive(Clone)]
pub struct SearchService {
    conversations: Arc<dyn ConversationStore>,
    search: Arc<dyn SearchStore>,
}

impl SearchService {
    /// The page size when none is asked for.
    pub const DEFAULT_LIMIT: u32 = 20;
    /// The largest page.
    pub const MAX_LIMIT: u32 = 100;

    pub fn new(ports: &Ports) -> Self {
        Self {
            conversations: ports.conversations.clone(),
            search: ports.search.clone(),
        }
    }

    /// Searches the messages `viewer` may see (see [`SearchStore::search_messages`]). Every
    /// bad parameter is a validation error on its field; a `conversation_id` the viewer is
    /// not a member of is [`DomainError::NotFound`], as for its history.
    pub fn messages(
        &self,
        viewer: UserId,
        request: SearchRequest,
    ) -> Result<SearchPage, DomainError> {
        let mut v = Validator::new();
        let query = v.check(SearchQuery::parse(request.q.as_deref().unwrap_or("")));
        let order = v
            .check(
                request
                    .sort
                    .as_deref()
                    .map_or(Ok(SearchOrder::default()), SearchOrder::parse),
            )
            .unwrap_or_default();
        let cursor = match request.cursor.as_deref() {
            Some(raw) => v.check(SearchCursor::decode(raw, order)),
            None => None,
        };
        let before = v.check(seq_param("before", request.before));
        let after = v.check(seq_param("after", request.after));
        let limit = v.check(limit_param(request.limit));
        v.finish()?;
        let (Some(query), Some(before), Some(after), Some(limit)) = (query, before, after, limit)
        else {
            unreachable!("the validator fails when a parameter is missing");
        };
        if let Some(conversation) = request.conversation_id
            && self
                .conversations
                .membership(conversation, viewer)?
                .is_none()
        {
            return Err(DomainError::not_found(Resource::Conversation, conversation));
        }
        let search = MessageSearch {
            query,
            filters: SearchFilters {
                conversation: request.conversation_id,
                sender: request.sender_id,
                before,
                after,
            },
            order,
            cursor,
        };
        let mut hits = self.search.search_messages(viewer, &search, limit + 1)?;
        let next_cursor = if hits.len() > limit as usize {
            hits.truncate(limit as usize);
            hits.last()
                .map(|hit| SearchCursor::after(hit, order).encode())
        } else {
            None
        };

        let mut ids: Vec<ConversationId> = hits.iter().map(|h| h.message.conversation_id).collect();
        ids.sort();
        ids.dedup();
        let members = self.conversations.members_of(&ids)?;
        let mut seen = HashMap::with_capacity(ids.len());
        for (id, members) in ids.into_iter().zip(members) {
            let direct = self
                .conversations
                .find(id)?
                .is_some_and(|c| c.kind == ConversationKind::Direct);
            seen.insert(id, (members, direct));
        }
        let hits = hits
            .into_iter()
            .map(|hit| {
                let snippet = Snippet::of(&search.query, hit.message.text().unwrap_or(""));
                let (members, direct) = &seen[&hit.message.conversation_id];
                SearchResult {
                    message: view_message(hit.message, members, *direct, viewer),
                    snippet,
                }
            })
            .collect();
        Ok(SearchPage { hits, next_cursor })
    }
}

/// A seq bound: absent, or a positive integer.
fn seq_param(field: &'static str, raw: Option<i64>) -> Result<Option<Seq>, FieldError> {
    match raw {
        None => Ok(None),
        Some(seq) if seq > 0 => Ok(Some(Seq(seq))),
        Some(_) => Err(FieldError::new(field, "must be a positive seq")),
    }
}

fn limit_param(raw: Option<i64>) -> Result<u32, FieldError> {
    match raw {
        None => Ok(SearchService::DEFAULT_LIMIT),
        Some(l) if (1..=i64::from(SearchService::MAX_LIMIT)).contains(&l) => Ok(l as u32),
        Some(_) => Err(FieldError::new(
            "limit",
            format!("must be between 1 and {}", SearchService::MAX_LIMIT),
        )),
    }
}
