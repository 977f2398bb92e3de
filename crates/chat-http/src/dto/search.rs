//! The query and the page of a message search.

use chat_domain::service::{SearchPage, SearchRequest, SearchResult};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::dto::messages::MessageResponse;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Words, `"exact phrases"` and `prefix*` terms (a prefix of at least 2 letters), all of
    /// which a message must contain, ignoring case. Any other character separates words:
    /// there are no operators. At most 200 characters and 10 terms.
    #[param(example = "deploy \"to prod\" stag*", max_length = 200)]
    pub q: Option<String>,
    /// Only this conversation's messages (one you are not a member of is 404).
    pub conversation_id: Option<Uuid>,
    /// Only the messages this user sent.
    pub sender_id: Option<Uuid>,
    /// Only messages with a seq below this one.
    #[param(minimum = 1)]
    pub before: Option<i64>,
    /// Only messages with a seq above this one.
    #[param(minimum = 1)]
    pub after: Option<i64>,
    /// `relevance` (default: the best match first, the newest first among equals; only the
    /// newest 1,000 matches you can see are ranked) or `recent` (the newest first).
    #[param(example = "relevance")]
    pub sort: Option<String>,
    /// The `next_cursor` of the previous page, with the same other parameters.
    pub cursor: Option<String>,
    /// 1–100, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

impl From<SearchParams> for SearchRequest {
    fn from(p: SearchParams) -> Self {
        Self {
            q: p.q,
            conversation_id: p.conversation_id.map(Into::into),
            sender_id: p.sender_id.map(Into::into),
            before: p.before,
            after: p.after,
            sort: p.sort,
            cursor: p.cursor,
            limit: p.limit,
        }
    }
}

/// A page of search results.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchPageResponse {
    pub hits: Vec<SearchHitResponse>,
    /// Pass as `cursor` for the next page; `null` when there is none.
    pub next_cursor: Option<String>,
}

/// One message found: the message as every read shows it (its `conversation_id` says where
/// it is), and a plain-text snippet of it with the ranges that matched.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchHitResponse {
    pub message: MessageResponse,
    /// Up to 200 characters of the message around its first match, with `…` where it was
    /// cut. Plain text: render it as text, never as markup.
    pub snippet: String,
    /// `[start, end)` ranges of the snippet's characters (Unicode scalar values) that
    /// matched, ascending, never overlapping.
    #[schema(value_type = Vec<[usize; 2]>)]
    pub highlights: Vec<[usize; 2]>,
}

impl From<SearchResult> for SearchHitResponse {
    fn from(result: SearchResult) -> Self {
        Self {
            message: result.message.into(),
            snippet: result.snippet.text,
            highlights: result
                .snippet
                .highlights
                .into_iter()
                .map(|(start, end)| [start, end])
                .collect(),
        }
    }
}

impl From<SearchPage> for SearchPageResponse {
    fn from(page: SearchPage) -> Self {
        Self {
            hits: page.hits.into_iter().map(Into::into).collect(),
            next_cursor: page.next_cursor,
        }
    }
}
